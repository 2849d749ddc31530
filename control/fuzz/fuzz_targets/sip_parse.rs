#![no_main]
//! SIP bytes straight from the network: the message parser, the stream framer, URI and
//! header parsers, digest credentials, and the whole proxy (registrar, transactions,
//! routing) must never panic, whatever the bytes. A parsed message written back must
//! parse again to the same start line, headers and body.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::sip::config::MediaPolicy;
use control::sip::digest::{Algorithm, Credentials, StaticUsers};
use control::sip::framing::Framer;
use control::sip::header::{NameAddr, Via};
use control::sip::media::{MediaAnchor, MediaFailure, OfferPolicy};
use control::sip::proxy::{Proxy, ProxyConfig};
use control::sip::registrar::RegistrarConfig;
use control::sip::uri::Uri;
use control::sip::{body, Flow, Message, Transport};

/// Media that passes bodies through unchanged.
struct Passthrough;

impl MediaAnchor for Passthrough {
    fn offer(&mut self, _: &str, _: &str, _: Option<&str>, sdp: &[u8], _: IpAddr, _: OfferPolicy) -> Result<Vec<u8>, MediaFailure> {
        Ok(sdp.to_vec())
    }
    fn answer(&mut self, _: &str, _: &str, _: &str, sdp: &[u8], _: IpAddr) -> Result<Vec<u8>, MediaFailure> {
        Ok(sdp.to_vec())
    }
    fn delete(&mut self, _: &str) {}
    fn srtp_of(&self, _: &str, _: &str) -> Option<bool> {
        None
    }
    fn set_identity(&mut self, _: &str, _: String) {}
    fn exists(&self, _: &str) -> bool {
        true
    }
}

fn proxy() -> Proxy {
    let mut users = StaticUsers::new();
    users.add("alice", "srtpgate", "pw");
    let lo = "127.0.0.1:5060".parse().unwrap();
    let config = ProxyConfig {
        listeners: vec![(Transport::Udp, lo), (Transport::Tcp, lo)],
        advertise: None,
        realm: "srtpgate".into(),
        users: Arc::new(users),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        nonce_lifetime: Duration::from_secs(300),
        outbound: None,
        routes: Vec::new(),
        toward_callee: MediaPolicy::SrtpOptional,
        toward_caller: MediaPolicy::SrtpOptional,
        registrar: RegistrarConfig::default(),
        invite_timeout: Duration::from_secs(180),
    };
    Proxy::new(config, Box::new(Passthrough))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let again = Message::parse(&m.to_bytes()).expect("a written message parses again");
        assert_eq!(again.start, m.start);
        assert_eq!(again.body, m.body);
        let _ = (m.vias(), m.from(), m.to(), m.cseq(), body::sdp(&m));
        for h in &m.headers {
            let _ = (Uri::parse(&h.value), NameAddr::parse(&h.value), Via::parse(&h.value));
            let _ = Credentials::parse(&h.value);
        }
    }
    let mut f = Framer::default();
    for chunk in data.chunks(7) {
        f.push(chunk);
        while let Ok(Some(_)) = f.next_frame() {}
    }
    let mut p = proxy();
    let now = Instant::now();
    let flow = Flow {
        transport: Transport::Udp,
        remote: "127.0.0.1:5099".parse().unwrap(),
        conn: None,
    };
    let _ = p.handle(data, flow, now);
    let _ = p.tick(now + Duration::from_secs(40));
});
