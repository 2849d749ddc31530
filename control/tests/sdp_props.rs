//! Properties of the SDP parser and writer over generated bodies: no input panics, every
//! parsed description writes out to text that reads back equal and writes out the same,
//! and this still holds after the edits a relay makes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use control::sdp::*;
use proptest::prelude::*;
use relay::srtp::{MasterKey, Suite};

/// Lines that occur in real bodies, well-formed or not, in any order.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("c=IN IP4 192.0.2.1".to_string()),
        Just("c=IN IP6 2001:db8::1".to_string()),
        Just("c=IN IP4 233.252.0.1/127/2".to_string()),
        Just("c=IN IP4 bad/x".to_string()),
        Just("c=ATM NSAP 47.0005.80.ffe100".to_string()),
        (0u32..70000, "[a-z]{1,6}", prop_oneof![
            Just("RTP/AVP"), Just("RTP/SAVP"), Just("UDP/TLS/RTP/SAVPF"), Just("udptl")
        ])
            .prop_map(|(p, media, proto)| format!("m={media} {p} {proto} 0 8 101")),
        Just("m=audio 9/2 RTP/AVPF".to_string()),
        Just("a=rtpmap:0 PCMU/8000".to_string()),
        Just("a=rtpmap:300 x".to_string()),
        Just("a=fmtp:101 0-16".to_string()),
        Just("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv|2^20|1:4".to_string()),
        Just("a=crypto:x AES inline:!!".to_string()),
        Just("a=rtcp:9 IN IP4 0.0.0.0".to_string()),
        Just("a=rtcp:99999".to_string()),
        Just("a=rtcp-mux".to_string()),
        Just("a=candidate:1 1 UDP 2130706431 192.0.2.1 9 typ host generation 0".to_string()),
        Just("a=candidate:1 1 UDP".to_string()),
        Just("a=fingerprint:sha-256 AB:CD".to_string()),
        Just("a=setup:actpass".to_string()),
        Just("a=ssrc:1 cname:x y".to_string()),
        Just("a=ptime:20".to_string()),
        Just("a=sendonly".to_string()),
        Just("a=".to_string()),
        Just("a=:x:y".to_string()),
        Just("b=AS:64".to_string()),
        Just("t=0 0".to_string()),
        Just("k=clear:x".to_string()),
        Just(String::new()),
        Just("   ".to_string()),
        "[b-z]=[ -~]{0,24}",
        "a=[a-zA-Z-]{1,10}(:[ -~]{0,24})?",
        "[ -~]{0,12}",
    ]
}

fn body() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..40),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, trailing)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("v=0{eol}o=- 1 1 IN IP4 192.0.2.9{eol}s=-{eol}");
            text.push_str(&lines.join(eol));
            if trailing {
                text.push_str(eol);
            }
            text
        })
}

/// The round trip every parsed description must pass.
fn assert_round_trip(sdp: &SessionDescription) {
    let written = sdp.to_string();
    let again = SessionDescription::parse(&written).unwrap();
    assert_eq!(&again, sdp, "{written}");
    assert_eq!(again.to_string(), written);
}

#[derive(Clone, Debug)]
enum Edit {
    Port(u16),
    Address(bool),
    SessionAddress,
    Crypto,
    RemoveIce,
    RemoveDtls,
    Mux(bool),
    Rtcp(Option<u16>),
    Direction(u8),
    Add(String),
    Remove(String),
    AddLine(char),
    PopAttribute,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<u16>().prop_map(Edit::Port),
        any::<bool>().prop_map(Edit::Address),
        Just(Edit::SessionAddress),
        Just(Edit::Crypto),
        Just(Edit::RemoveIce),
        Just(Edit::RemoveDtls),
        any::<bool>().prop_map(Edit::Mux),
        any::<Option<u16>>().prop_map(Edit::Rtcp),
        (0u8..4).prop_map(Edit::Direction),
        "[a-z-]{1,8}".prop_map(Edit::Add),
        prop_oneof![Just("rtpmap"), Just("crypto"), Just("sendonly")]
            .prop_map(|s| Edit::Remove(s.to_string())),
        prop_oneof![Just('b'), Just('i'), Just('y')].prop_map(Edit::AddLine),
        Just(Edit::PopAttribute),
    ]
}

fn apply(sdp: &mut SessionDescription, edits: &[Edit]) {
    let key = MasterKey::new(Suite::AesCm128HmacSha1_32, &[1; 16], &[2; 14]).unwrap();
    for (i, e) in edits.iter().enumerate() {
        if let Edit::SessionAddress = e {
            sdp.set_connection_address(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)));
            continue;
        }
        let n = sdp.media.len();
        let Some(m) = sdp.media.get_mut(i % n.max(1)) else {
            continue;
        };
        match e {
            Edit::Port(p) => m.set_port(*p),
            Edit::Address(v6) => m.set_connection_address(if *v6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }),
            Edit::SessionAddress => {}
            Edit::Crypto => m.set_crypto(&[Crypto::new(
                7,
                Suite::AesCm128HmacSha1_32,
                std::slice::from_ref(&key),
            )]),
            Edit::RemoveIce => drop(m.remove_ice()),
            Edit::RemoveDtls => drop(m.remove_dtls()),
            Edit::Mux(on) => m.set_rtcp_mux(*on),
            Edit::Rtcp(p) => m.set_rtcp(p.map(|p| Rtcp::new(p, None))),
            Edit::Direction(d) => m.set_direction(
                [
                    Direction::SendRecv,
                    Direction::SendOnly,
                    Direction::RecvOnly,
                    Direction::Inactive,
                ][*d as usize],
            ),
            Edit::Add(name) => m.add_attribute(Attribute::new(name.as_str(), "1")),
            Edit::Remove(name) => drop(m.remove_attributes(name)),
            Edit::AddLine(kind) => m.lines.push(Line::new(*kind, "x")),
            Edit::PopAttribute => drop(m.attributes.pop()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parsed_bodies_round_trip(text in body()) {
        if let Ok(sdp) = SessionDescription::parse(&text) {
            assert_round_trip(&sdp);
        }
        if let Ok(strict) = SessionDescription::parse_strict(&text) {
            assert_eq!(SessionDescription::parse(&text).unwrap(), strict);
        }
    }

    #[test]
    fn edited_bodies_round_trip(text in body(), edits in prop::collection::vec(edit(), 0..12)) {
        if let Ok(mut sdp) = SessionDescription::parse(&text) {
            apply(&mut sdp, &edits);
            assert_round_trip(&sdp);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}", bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(sdp) = SessionDescription::parse(&text) {
            assert_round_trip(&sdp);
        }
        if let Ok(sdp) = SessionDescription::parse_bytes(&bytes) {
            assert_round_trip(&sdp);
        }
    }
}
