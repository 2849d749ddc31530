//! The ng test client and the SDP and SRTP helpers the daemon-level ng tests share.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use control::daemon::Daemon;
use control::ng::bencode::{decode, Value};
use control::sdp::SessionDescription;
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

pub struct Client {
    pub sock: UdpSocket,
    pub to: SocketAddr,
    pub seq: u32,
}

impl Client {
    pub fn new(d: &Daemon) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Client {
            sock,
            to: d.ng_addr(),
            seq: 0,
        }
    }

    pub fn raw(&self, datagram: &[u8]) -> Vec<u8> {
        self.sock.send_to(datagram, self.to).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).expect("an ng reply");
        buf.truncate(n);
        buf
    }

    /// Sends `dict` under a fresh Kamailio-style cookie; returns (cookie, decoded reply).
    pub fn send(&mut self, dict: Value) -> (String, Value) {
        self.seq += 1;
        let cookie = format!("1_4242_{}", self.seq);
        let mut d = format!("{cookie} ").into_bytes();
        d.extend_from_slice(&dict.encode());
        let reply = self.raw(&d);
        let sp = reply.iter().position(|b| *b == b' ').unwrap();
        assert_eq!(&reply[..sp], cookie.as_bytes());
        (cookie, decode(&reply[sp + 1..]).unwrap())
    }

    pub fn cmd(&mut self, dict: Value) -> Value {
        self.send(dict).1
    }
}

pub fn s(v: &Value, k: &str) -> String {
    String::from_utf8(
        v.get(k.as_bytes())
            .and_then(|x| x.as_bytes())
            .unwrap_or_default()
            .to_vec(),
    )
    .unwrap()
}

pub fn sdp(port: u16, crypto: Option<(&str, &MasterKey)>) -> String {
    let proto = if crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut s = format!(
        "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    if let Some((line, key)) = crypto {
        s.push_str(&format!("a=crypto:{line} {}\r\n", key.to_inline()));
    }
    s
}

pub fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// The relay port, and the first crypto key with its suite, from a rewritten SDP.
pub fn relay_side(text: &str) -> (SocketAddr, Option<(Suite, MasterKey)>) {
    let sdp = SessionDescription::parse(text).unwrap();
    let m = &sdp.media[0];
    let ip = sdp.connection_for(m).unwrap().ip().unwrap();
    let key = m.cryptos().next().map(|c| {
        let c = c.unwrap();
        let suite = c.suite().unwrap();
        (suite, c.master_keys().unwrap().remove(0))
    });
    (SocketAddr::new(ip, m.port), key)
}

pub fn offer(call: &str, from: &str, sdp: &str, flags: &[&str]) -> Value {
    let mut d = Value::dict()
        .with("command", "offer")
        .with("call-id", call)
        .with("from-tag", from)
        .with("sdp", sdp);
    if !flags.is_empty() {
        d = d.with(
            "flags",
            Value::List(flags.iter().map(Value::string).collect()),
        );
    }
    d
}

pub fn answer(call: &str, from: &str, to: &str, sdp: &str) -> Value {
    Value::dict()
        .with("command", "answer")
        .with("call-id", call)
        .with("from-tag", from)
        .with("to-tag", to)
        .with("sdp", sdp)
}

pub fn ctx(k: &MasterKey) -> SrtpContext {
    SrtpContext::new(Policy::new(Suite::AesCm128HmacSha1_80, k.clone())).unwrap()
}

pub fn protect(c: &mut SrtpContext, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172 + 10];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&[0, 0, 0, 9]);
    let n = c.protect(&mut p, 172).unwrap();
    p.truncate(n);
    p
}
