//! Helpers shared by the SIP tests: message text with CRLF line ends, a proxy on a media
//! anchor that needs no relay, and reading what the proxy sends.

#![allow(dead_code)]

pub mod deposit;
pub mod net;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::sip::config::MediaPolicy;
use control::sip::digest::{Algorithm, StaticUsers};
use control::sip::media::{MediaAnchor, MediaFailure, OfferPolicy};
use control::sip::proxy::{Proxy, ProxyConfig};
use control::sip::registrar::RegistrarConfig;
use control::sip::{Flow, Message, ParseError, Transmit, Transport};

/// `text` with every `\n` made `\r\n`, and `{LEN}` replaced by the length of the body
/// (whatever follows the first blank line).
pub fn msg(text: &str) -> Vec<u8> {
    let t = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let body_len = t.find("\r\n\r\n").map_or(0, |i| t.len() - i - 4);
    t.replace("{LEN}", &body_len.to_string()).into_bytes()
}

pub const EDGE: &str = "127.0.0.1:5060";

pub fn udp(from: &str) -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: from.parse().unwrap(),
        conn: None,
    }
}

/// What the fake anchor was asked to do.
#[derive(Default, Debug)]
pub struct AnchorLog {
    pub offers: Vec<(String, String, Option<String>, OfferPolicy)>,
    pub answers: Vec<(String, String, String)>,
    pub deletes: Vec<String>,
    pub identities: Vec<String>,
}

/// A media anchor that rewrites nothing but records every call it gets.
pub struct FakeAnchor(pub Arc<Mutex<AnchorLog>>);

impl MediaAnchor for FakeAnchor {
    fn offer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        sdp: &[u8],
        _source: std::net::IpAddr,
        policy: OfferPolicy,
    ) -> Result<Vec<u8>, MediaFailure> {
        self.0.lock().unwrap().offers.push((
            call_id.into(),
            from_tag.into(),
            to_tag.map(str::to_string),
            policy,
        ));
        Ok(sdp.to_vec())
    }
    fn answer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &[u8],
        _source: std::net::IpAddr,
    ) -> Result<Vec<u8>, MediaFailure> {
        self.0
            .lock()
            .unwrap()
            .answers
            .push((call_id.into(), from_tag.into(), to_tag.into()));
        Ok(sdp.to_vec())
    }
    fn delete(&mut self, call_id: &str) {
        self.0.lock().unwrap().deletes.push(call_id.into());
    }
    fn srtp_of(&self, _call_id: &str, _tag: &str) -> Option<bool> {
        None
    }
    fn set_identity(&mut self, _call_id: &str, identity: String) {
        self.0.lock().unwrap().identities.push(identity);
    }
    fn exists(&self, _call_id: &str) -> bool {
        true
    }
}

pub fn config(users: &[(&str, &str)]) -> ProxyConfig {
    let mut store = StaticUsers::new();
    for (u, p) in users {
        store.add(u, "srtpgate", p);
    }
    ProxyConfig {
        listeners: vec![
            (Transport::Udp, EDGE.parse::<SocketAddr>().unwrap()),
            (Transport::Tcp, EDGE.parse::<SocketAddr>().unwrap()),
        ],
        advertise: None,
        realm: "srtpgate".into(),
        users: Arc::new(store),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        nonce_lifetime: Duration::from_secs(300),
        outbound: None,
        routes: Vec::new(),
        toward_callee: MediaPolicy::SrtpOptional,
        toward_caller: MediaPolicy::SrtpOptional,
        registrar: RegistrarConfig::default(),
        invite_timeout: Duration::from_secs(180),
    }
}

/// A proxy with no users (loopback only) on the fake anchor.
pub fn fake_proxy() -> (Proxy, Arc<Mutex<AnchorLog>>) {
    let log = Arc::new(Mutex::new(AnchorLog::default()));
    let p = Proxy::new(config(&[]), Box::new(FakeAnchor(log.clone())));
    (p, log)
}

/// The messages sent, parsed.
pub fn parsed(out: &[Transmit]) -> Vec<(Flow, Message)> {
    out.iter()
        .map(|t| {
            (
                t.flow.clone(),
                Message::parse(&t.bytes).unwrap_or_else(|e| {
                    panic!(
                        "proxy sent unparsable {e}: {}",
                        String::from_utf8_lossy(&t.bytes)
                    )
                }),
            )
        })
        .collect()
}

/// Feeds one message, returns the parsed output.
pub fn feed(p: &mut Proxy, bytes: &[u8], from: &Flow) -> Vec<(Flow, Message)> {
    parsed(&p.handle(bytes, from.clone(), Instant::now()))
}

/// The status code of the only response sent.
pub fn status_of(out: &[(Flow, Message)]) -> Option<u16> {
    out.iter().find_map(|(_, m)| m.code())
}

/// Parses `text` (see [`msg`]) or fails the test.
pub fn parses(text: &str) -> Message {
    let b = msg(text);
    Message::parse(&b).unwrap_or_else(|e| panic!("should parse ({e}):\n{text}"))
}

pub fn rejected(text: &str) -> ParseError {
    match Message::parse(&msg(text)) {
        Ok(_) => panic!("should be rejected:\n{text}"),
        Err(e) => e,
    }
}

/// The status the proxy answers a request with (status line only).
pub fn answered(text: &str) -> u16 {
    let (mut p, _) = fake_proxy();
    let out = p.handle(&msg(text), udp("127.0.0.1:5099"), std::time::Instant::now());
    // Read the status line only: a response to a broken request copies its broken Via.
    out.iter()
        .find_map(|t| {
            let line = String::from_utf8_lossy(&t.bytes);
            let code = line.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
            Some(code)
        })
        .unwrap_or_else(|| panic!("no response to:\n{text}"))
}
