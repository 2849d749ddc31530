//! A scripted network around the proxy: a real relay engine behind it, phones that are
//! just addresses, and helpers to build requests, answer them and push media through.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::call::crypto::CryptoLine;
use control::call::sdp::extract;
use control::call::CallRegistry;
use control::metrics::ControlMetrics;
use control::sdp::SessionDescription;
use control::sip::body;
use control::sip::media::RegistryAnchor;
use control::sip::proxy::Proxy;
use control::sip::{Flow, Message};
use relay::engine::{Engine, EngineConfig};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

use super::{config, msg, parsed, udp};

pub const ALICE: &str = "127.0.0.1:5071";
pub const BOB1: &str = "127.0.0.1:5072";
pub const BOB2: &str = "127.0.0.1:5073";

/// Relay port blocks for these tests start at 14000, below Linux's ephemeral port range
/// (32768–60999), so client sockets of other programs never hold them.
pub struct Net {
    pub proxy: Proxy,
    pub registry: Arc<Mutex<CallRegistry>>,
    pub now: Instant,
}

impl Net {
    pub fn new(base: u16, users: &[(&str, &str)]) -> Net {
        let engine = Engine::start(EngineConfig {
            workers: 1,
            pin: false,
            port_min: base,
            port_max: base + 99,
            ..Default::default()
        })
        .unwrap();
        let registry = Arc::new(Mutex::new(CallRegistry::new(
            Arc::new(engine),
            Arc::new(ControlMetrics::default()),
            100,
        )));
        let anchor = RegistryAnchor {
            registry: registry.clone(),
            draining: Arc::new(AtomicBool::new(false)),
            strict_source: false,
            after_answer: None,
        };
        Net {
            proxy: Proxy::new(config(users), Box::new(anchor)),
            registry,
            now: Instant::now(),
        }
    }

    pub fn send(&mut self, from: &str, text: &str) -> Vec<(Flow, Message)> {
        self.send_bytes(from, &msg(text))
    }

    pub fn send_bytes(&mut self, from: &str, bytes: &[u8]) -> Vec<(Flow, Message)> {
        parsed(&self.proxy.handle(bytes, udp(from), self.now))
    }

    pub fn reply(
        &mut self,
        from: &str,
        req: &Message,
        code: u16,
        tag: &str,
        sdp: Option<&str>,
    ) -> Vec<(Flow, Message)> {
        let mut r = req.response(code, "Reason", Some(tag));
        r.set("Contact", format!("<sip:bob@{from}>"));
        if let Some(s) = sdp {
            r.set_body(Some("application/sdp"), s.as_bytes().to_vec());
        }
        let b = r.to_bytes();
        self.send_bytes(from, &b)
    }

    pub fn advance(&mut self, d: Duration) -> Vec<(Flow, Message)> {
        self.now += d;
        parsed(&self.proxy.tick(self.now))
    }

    pub fn calls(&self) -> usize {
        self.registry.lock().unwrap().len()
    }

    pub fn register(&mut self, user: &str, at: &str) {
        let out = self.send(at, &register(user, at, 1, ""));
        assert_eq!(only(&out, at).code(), Some(200), "REGISTER {user}");
    }
}

pub fn register(user: &str, at: &str, cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {at};branch=z9hG4bKreg{cseq}{user};rport\n\
         From: <sip:{user}@127.0.0.1>;tag=r{user}\nTo: <sip:{user}@127.0.0.1>\nCall-ID: reg-{user}-{at}\n\
         CSeq: {cseq} REGISTER\nMax-Forwards: 70\nContact: <sip:{user}@{at}>\nExpires: 600\n{auth}Content-Length: 0\n\n"
    )
}

/// An SDP offer or answer for `port` with one AES_CM_128_HMAC_SHA1_80 key (or plain).
pub fn sdp(port: u16, key: Option<&MasterKey>) -> String {
    let (proto, crypto) = match key {
        Some(k) => (
            "RTP/SAVP",
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {}\r\n", k.to_inline()),
        ),
        None => ("RTP/AVP", String::new()),
    };
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n{crypto}a=sendrecv\r\n"
    )
}

pub fn invite(call: &str, branch: &str, cseq: u32, to_tag: Option<&str>, sdp: &str) -> String {
    let to = match to_tag {
        Some(t) => format!("<sip:bob@127.0.0.1>;tag={t}"),
        None => "<sip:bob@127.0.0.1>".into(),
    };
    let route = if to_tag.is_some() {
        "Route: <sip:127.0.0.1:5060;lr>\n"
    } else {
        ""
    };
    let ruri = if to_tag.is_some() {
        "sip:bob@127.0.0.1:5072"
    } else {
        "sip:bob@127.0.0.1"
    };
    format!(
        "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\n{route}\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=atag\nTo: {to}\nCall-ID: {call}\nCSeq: {cseq} INVITE\n\
         Max-Forwards: 70\nContact: <sip:alice@{ALICE}>\nP-Asserted-Identity: <sip:+4930123@example.net>\n\
         Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
        sdp.len()
    )
}

pub fn in_dialog(method: &str, call: &str, branch: &str, cseq: u32, to_tag: &str) -> String {
    format!(
        "{method} sip:bob@127.0.0.1:5072 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\n\
         Route: <sip:127.0.0.1:5060;lr>\nFrom: <sip:alice@127.0.0.1>;tag=atag\nTo: <sip:bob@127.0.0.1>;tag={to_tag}\n\
         Call-ID: {call}\nCSeq: {cseq} {method}\nMax-Forwards: 70\nContent-Length: 0\n\n"
    )
}

pub fn cancel(call: &str, branch: &str) -> String {
    format!(
        "CANCEL sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=atag\nTo: <sip:bob@127.0.0.1>\nCall-ID: {call}\n\
         CSeq: 1 CANCEL\nMax-Forwards: 70\nContent-Length: 0\n\n"
    )
}

/// The messages sent to `to`.
pub fn to<'a>(out: &'a [(Flow, Message)], to: &str) -> Vec<&'a Message> {
    let a: SocketAddr = to.parse().unwrap();
    out.iter()
        .filter(|(f, _)| f.remote == a)
        .map(|(_, m)| m)
        .collect()
}

pub fn only<'a>(out: &'a [(Flow, Message)], dest: &str) -> &'a Message {
    let v = to(out, dest);
    assert_eq!(v.len(), 1, "expected one message to {dest}, got {out:#?}");
    v[0]
}

pub fn find<'a>(
    out: &'a [(Flow, Message)],
    dest: &str,
    what: impl Fn(&Message) -> bool,
) -> &'a Message {
    to(out, dest)
        .into_iter()
        .find(|m| what(m))
        .unwrap_or_else(|| panic!("no such message to {dest} in {out:#?}"))
}

/// (relay address, key) from an SDP body the proxy forwarded.
pub fn relay_side(m: &Message) -> (SocketAddr, Option<CryptoLine>) {
    let sdp = SessionDescription::parse_bytes(&body::sdp(m).expect("SDP")).unwrap();
    let media = extract(&sdp, None).unwrap();
    (
        media[0].rtp_addr().unwrap(),
        media[0].crypto.first().cloned(),
    )
}

pub fn ctx(suite: Suite, key: &MasterKey) -> SrtpContext {
    SrtpContext::new(Policy::new(suite, key.clone())).unwrap()
}

pub fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0x5a; 160]);
    p
}

pub fn media_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// Protects an RTP packet with `tx`, sends it to `relay`, receives it at `at`, and checks
/// it unprotects with `rx` into the same packet.
pub fn through(
    from: &UdpSocket,
    tx: &mut SrtpContext,
    relay: SocketAddr,
    at: &UdpSocket,
    rx: &mut SrtpContext,
    seq: u16,
) {
    through_packet(from, tx, relay, at, rx, &rtp(seq));
}

/// [`through`] with the RTP packet `plain` of the caller's making.
pub fn through_packet(
    from: &UdpSocket,
    tx: &mut SrtpContext,
    relay: SocketAddr,
    at: &UdpSocket,
    rx: &mut SrtpContext,
    plain: &[u8],
) {
    let mut p = plain.to_vec();
    p.resize(plain.len() + 32, 0);
    let n = tx.protect(&mut p, plain.len()).unwrap();
    from.send_to(&p[..n], relay).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = at.recv_from(&mut buf).expect("relayed");
    let m = rx
        .unprotect(&mut buf[..n])
        .expect("decrypts with the key the relay signalled");
    assert_eq!(&buf[..m], plain);
}
