//! What a relay does to an offer: rewrite addresses, ports and profiles, replace keys,
//! strip ICE and DTLS, set RTCP and direction; and what order the result comes out in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use relay::srtp::{MasterKey, Suite};

use super::{crlf, round_trip};
use crate::sdp::*;

const RELAY: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));

fn offer() -> SessionDescription {
    round_trip(&[
        "v=0",
        "o=- 1545997027 1 IN IP4 198.51.100.1",
        "s=tester",
        "t=0 0",
        "m=audio 2000 RTP/SAVP 0 8",
        "c=IN IP4 198.51.100.1",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv",
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:VAzLKvoE3jG9cdH/AZsl/ZqWNXrUzyM4Gw6chrFr",
        "a=ptime:20",
    ])
}

#[test]
fn relay_rewrite_keeps_everything_else_in_place() {
    let mut sdp = offer();
    sdp.origin.set_ip(RELAY);
    sdp.bump_version();
    let key = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0x11; 16], &[0x22; 14]).unwrap();
    let inline = key.to_inline();
    let m = &mut sdp.media[0];
    m.set_port(30000);
    m.set_connection_address(RELAY);
    m.set_crypto(&[Crypto::new(1, Suite::AesCm128HmacSha1_80, &[key])]);
    m.set_rtcp(Some(Rtcp::new(30001, None)));
    assert_eq!(
        sdp.to_string(),
        crlf(&[
            "v=0",
            "o=- 1545997027 2 IN IP4 203.0.113.1",
            "s=tester",
            "t=0 0",
            "m=audio 30000 RTP/SAVP 0 8",
            "c=IN IP4 203.0.113.1",
            "a=rtpmap:0 PCMU/8000",
            "a=sendrecv",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {inline}"),
            "a=ptime:20",
            "a=rtcp:30001",
        ])
    );
    assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
}

#[test]
fn crypto_written_with_padded_base64() {
    let key = MasterKey::new(Suite::AeadAes256Gcm, &[7; 32], &[9; 12]).unwrap();
    let c = Crypto::new(3, Suite::AeadAes256Gcm, &[key]).with_session_param("UNENCRYPTED_SRTCP");
    let text = c.to_attribute().to_string();
    assert!(
        text.starts_with("crypto:3 AEAD_AES_256_GCM inline:"),
        "{text}"
    );
    assert!(text.ends_with("= UNENCRYPTED_SRTCP"), "{text}");
    let back = Crypto::parse(c.to_string().as_str()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.master_keys().unwrap()[0].key(), &[7; 32]);
}

#[test]
fn media_connection_added_where_rfc_puts_it() {
    let mut sdp = round_trip(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "i=voice",
        "b=AS:64",
        "a=sendrecv",
    ]);
    sdp.media[0].set_connection_address(IpAddr::V6(Ipv6Addr::LOCALHOST));
    sdp.set_connection_address(RELAY);
    let out = sdp.to_string();
    assert!(out.contains("c=IN IP4 203.0.113.1\r\nt=0 0\r\n"), "{out}");
    assert!(
        out.ends_with(
            "m=audio 4000 RTP/AVP 0\r\ni=voice\r\nc=IN IP6 ::1\r\nb=AS:64\r\na=sendrecv\r\n"
        ),
        "{out}"
    );
    assert_eq!(SessionDescription::parse(&out).unwrap(), sdp);
}

#[test]
fn strip_dtls_and_ice_and_turn_into_sdes() {
    let mut sdp = round_trip(&[
        "v=0",
        "o=- 7 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Zp3u",
        "a=ice-pwd:c4bL1cRbzsvPOpV2ztxZKvYh",
        "a=fingerprint:sha-256 01:02:03",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
    ]);
    let m = &mut sdp.media[0];
    assert!(m.proto.is_dtls() && m.proto.has_feedback());
    assert_eq!(m.remove_dtls(), 2);
    assert_eq!(m.remove_ice(), 2);
    m.set_proto(Proto::rtp(true, false, false));
    m.set_rtcp_mux(false);
    m.set_rtcp(None);
    m.set_direction(Direction::RecvOnly);
    m.set_rtcp_mux(true);
    m.set_rtcp_mux(true);
    let out = sdp.to_string();
    assert!(
        out.ends_with(
            "m=audio 9 RTP/SAVP 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\n\
             a=rtpmap:111 opus/48000/2\r\na=rtcp-mux\r\n"
        ),
        "{out}"
    );
    assert_eq!(SessionDescription::parse(&out).unwrap(), sdp);
}

#[test]
fn misplaced_lines_keep_their_place() {
    // Some peers put c= and b= after attributes; a relay must not reorder them.
    let sdp = round_trip(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "a=tool:x",
        "c=IN IP4 192.0.2.1",
        "m=audio 4000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "c=IN IP4 192.0.2.2",
        "a=sendrecv",
        "b=AS:64",
        "y=unknown line type",
        "a=ptime:20",
    ]);
    let mut edited = sdp.clone();
    edited.media[0].add_attribute(Attribute::new("maxptime", "40"));
    edited.media[0].lines.push(Line::new('b', "TIAS:64000"));
    let out = edited.to_string();
    assert!(
        out.ends_with(
            "a=rtpmap:0 PCMU/8000\r\nc=IN IP4 192.0.2.2\r\na=sendrecv\r\nb=AS:64\r\n\
             y=unknown line type\r\nb=TIAS:64000\r\na=ptime:20\r\na=maxptime:40\r\n"
        ),
        "{out}"
    );
    assert_eq!(SessionDescription::parse(&out).unwrap(), edited);
    assert_ne!(edited, sdp);
}

#[test]
fn built_from_scratch() {
    let mut sdp = SessionDescription::new(Origin::new("-", "42", 1, RELAY), "srtpgate");
    sdp.set_connection_address(RELAY);
    let mut m = MediaDescription::new("audio", 30000, Proto::RtpAvp, &["0", "101"]);
    m.add_attribute(
        RtpMap::parse("101 telephone-event/8000")
            .unwrap()
            .to_attribute(),
    );
    m.add_attribute(Attribute::new("fmtp", "101 0-16"));
    m.set_direction(Direction::SendRecv);
    sdp.media.push(m);
    sdp.lines.push(Line::new('b', "AS:80"));
    let out = sdp.to_string();
    assert_eq!(
        out,
        crlf(&[
            "v=0",
            "o=- 42 1 IN IP4 203.0.113.1",
            "s=srtpgate",
            "c=IN IP4 203.0.113.1",
            "t=0 0",
            "b=AS:80",
            "m=audio 30000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=sendrecv",
        ])
    );
    let back = SessionDescription::parse_strict(&out).unwrap();
    assert_eq!(back, sdp);
    assert_eq!(back.media[0].fmtp(101), Some("0-16"));
    assert_eq!(back.media[0].fmtp(0), None);
}

#[test]
fn attribute_names_match_without_case() {
    let mut sdp = round_trip(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 4000 RTP/SAVP 0",
        "a=CRYPTO:1 AES_CM_128_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv",
        "a=SendOnly",
    ]);
    let m = &mut sdp.media[0];
    assert_eq!(m.cryptos().count(), 1);
    assert_eq!(m.direction(), Some(Direction::SendOnly));
    m.set_crypto(&[]);
    assert!(!sdp.to_string().contains("inline"));
}

#[test]
fn debug_output_hides_keys() {
    let sdp = offer();
    let debug = format!("{sdp:?}");
    assert!(!debug.contains("cJOJ7kxQ"), "{debug}");
    assert!(debug.contains("inline:<redacted>"), "{debug}");
    let c = sdp.media[0].cryptos().next().unwrap().unwrap();
    assert!(!format!("{c:?}").contains("cJOJ7kxQ"));
    let k = Line::new('k', "clear:secret");
    assert!(!format!("{k:?}").contains("secret"));
}

#[test]
fn obsolete_key_lines_can_be_dropped() {
    let mut sdp = round_trip(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "k=clear:secret",
        "m=audio 4000 RTP/AVP 0",
        "k=prompt",
        "a=sendrecv",
    ]);
    assert_eq!(sdp.remove_lines('k'), 1);
    assert_eq!(sdp.media[0].remove_lines('k'), 1);
    assert_eq!(sdp.media[0].remove_lines('k'), 0);
    let out = sdp.to_string();
    assert!(!out.contains("k="), "{out}");
    assert_eq!(SessionDescription::parse(&out).unwrap(), sdp);
}

#[test]
fn session_without_media_is_valid() {
    let sdp = round_trip(&["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"]);
    assert!(sdp.media.is_empty());
}
