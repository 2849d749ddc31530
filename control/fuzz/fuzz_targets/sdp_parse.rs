//! Arbitrary bytes into the SDP parser (lenient and strict). Whatever parses must write out
//! to text that parses again to an equal description and writes out identically, also
//! after the edits a relay makes; every typed accessor must return, never panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use control::sdp::{Crypto, Direction, MediaDescription, Rtcp, SessionDescription};
use relay::srtp::{MasterKey, Suite};

fn round_trip(sdp: &SessionDescription) {
    let written = sdp.to_string();
    let again = SessionDescription::parse(&written).expect("written SDP must parse");
    assert_eq!(&again, sdp, "written SDP parsed differently");
    assert_eq!(again.to_string(), written, "second write differs");
}

fn read_everything(sdp: &SessionDescription, m: &MediaDescription) {
    let _ = sdp.connection_for(m).map(|c| c.ip());
    let _ = sdp.direction_for(m);
    let _ = sdp.fingerprints_for(m);
    let _ = sdp.setup_for(m);
    let _ = (
        sdp.ice_ufrag_for(m),
        sdp.ice_pwd_for(m),
        sdp.ice_options_for(m),
    );
    for c in m.cryptos().flatten() {
        let _ = (c.suite(), c.master_keys(), c.kdr(), c.wsh(), c.to_string());
    }
    for pt in m.payload_types() {
        let _ = (m.rtpmap(pt), m.fmtp(pt));
    }
    let _ = (
        m.rtcp(),
        m.ptime(),
        m.mid(),
        m.rtcp_mux(),
        m.bandwidth("AS"),
    );
    let _ = m.candidates().flatten().map(|c| c.to_string()).count();
    let _ = m.ssrcs().flatten().map(|s| s.to_string()).count();
    let _ = m.rtpmaps().flatten().map(|r| r.to_string()).count();
    let _ = format!("{sdp:?}");
}

fn relay_edits(sdp: &mut SessionDescription) {
    let relay = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    let Ok(key) = MasterKey::new(Suite::AesCm128HmacSha1_80, &[1; 16], &[2; 14]) else {
        return;
    };
    sdp.origin.set_ip(relay);
    sdp.bump_version();
    sdp.remove_ice();
    for (i, m) in sdp.media.iter_mut().enumerate() {
        let port = 30000u16.wrapping_add(2 * i as u16);
        m.set_port(port);
        m.set_connection_address(relay);
        m.remove_ice();
        m.remove_dtls();
        m.set_crypto(&[Crypto::new(
            1,
            Suite::AesCm128HmacSha1_80,
            std::slice::from_ref(&key),
        )]);
        m.set_rtcp_mux(i % 2 == 0);
        m.set_rtcp(Some(Rtcp::new(port.wrapping_add(1), None)));
        m.set_direction(Direction::SendRecv);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let parsers: [fn(&[u8]) -> _; 2] = [
        SessionDescription::parse_bytes,
        SessionDescription::parse_bytes_strict,
    ];
    for parse in parsers {
        let Ok(mut sdp) = parse(data) else {
            continue;
        };
        round_trip(&sdp);
        for m in &sdp.media {
            read_everything(&sdp, m);
        }
        relay_edits(&mut sdp);
        round_trip(&sdp);
    }
});
