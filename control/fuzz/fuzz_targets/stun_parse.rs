#![no_main]
//! STUN datagrams straight from a media port: the parser and the ICE-lite agent must
//! never panic, whatever the bytes. A message the agent accepts must carry a valid
//! MESSAGE-INTEGRITY for its password, and every reply must itself parse.

use std::time::Instant;

use control::ice::{Credentials, IceLite, Message};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        let _ = (
            m.username(),
            m.priority(),
            m.mapped_address(),
            m.error_code(),
        );
        let _ = m.integrity_ok(b"fuzz-password-fuzz-password");
    }
    let mut ice = IceLite::new(Credentials {
        ufrag: "fuzz".into(),
        pwd: "fuzz-password-fuzz-password".into(),
    });
    let out = ice.handle("192.0.2.1:4000".parse().unwrap(), data, Instant::now());
    if out.result.is_ok() {
        let m = Message::parse(data).expect("accepted input parses");
        assert!(m.integrity_ok(b"fuzz-password-fuzz-password"));
    }
    if let Some(reply) = out.reply {
        Message::parse(&reply).expect("replies parse");
    }
});
