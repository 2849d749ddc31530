//! The examples of the RFCs this module implements, read and written back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use relay::srtp::Suite;

use super::round_trip;
use crate::sdp::*;

#[test]
fn rfc8866_section5_example() {
    let sdp = round_trip(&[
        "v=0",
        "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1",
        "s=Call to John Smith",
        "i=SDP Offer #1",
        "u=http://www.jdoe.example.com/home.html",
        "e=Jane Doe <jane@jdoe.example.com>",
        "p=+1 617 555-6011",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "m=audio 49180 RTP/AVP 0",
        "m=video 51372 RTP/AVP 99",
        "c=IN IP6 2001:db8::2",
        "a=rtpmap:99 h263-1998/90000",
    ]);
    assert_eq!(sdp.origin.username, "jdoe");
    assert_eq!(sdp.origin.sess_id, "3724394400");
    assert_eq!(sdp.origin.sess_version, 3724394405);
    assert_eq!(sdp.origin.addr_type, AddrType::Ip4);
    assert_eq!(sdp.session_name, "Call to John Smith");
    let kinds: Vec<char> = sdp.lines.iter().map(|l| l.kind).collect();
    assert_eq!(kinds, ['i', 'u', 'e', 'p', 't']);
    assert_eq!(sdp.media.len(), 3);
    let (a1, a2, v) = (&sdp.media[0], &sdp.media[1], &sdp.media[2]);
    assert_eq!((a1.port, a2.port, v.port), (49170, 49180, 51372));
    assert_eq!(a1.proto, Proto::RtpAvp);
    assert_eq!(a1.formats, ["0"]);
    // Media without c= use the session's; the video has its own, IPv6.
    let session_ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    assert_eq!(sdp.connection_for(a1).unwrap().ip(), Some(session_ip));
    let v6: Ipv6Addr = "2001:db8::2".parse().unwrap();
    assert_eq!(sdp.connection_for(v).unwrap().ip(), Some(v6.into()));
    assert_eq!(v.connection.as_ref().unwrap().addr_type, AddrType::Ip6);
    let map = v.rtpmap(99).unwrap().unwrap();
    assert_eq!(
        (map.encoding.as_str(), map.clock_rate),
        ("h263-1998", 90000)
    );
    assert_eq!(sdp.direction_for(a1), Direction::SendRecv);
}

#[test]
fn rfc8866_multicast_connection_and_port_count() {
    // §5.7 and §5.14: TTL, address count, port count.
    let sdp = round_trip(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 233.252.0.1/127/3",
        "t=0 0",
        "m=video 49170/2 RTP/AVP 31",
        "c=IN IP6 ff00::db8:0:101/3",
    ]);
    let c = sdp.connection.as_ref().unwrap();
    assert_eq!(c.address, "233.252.0.1");
    assert_eq!((c.ttl, c.num_addresses), (Some(127), Some(3)));
    let m = &sdp.media[0];
    assert_eq!(m.port_count, Some(2));
    let c6 = m.connection.as_ref().unwrap();
    assert_eq!((c6.ttl, c6.num_addresses), (None, Some(3)));
}

#[test]
fn rfc4568_offer_with_several_keys() {
    // RFC 4568 §6 / §9 example offer (lines unfolded).
    let sdp = round_trip(&[
        "v=0",
        "o=sam 2890844526 2890842807 IN IP4 10.47.16.5",
        "s=SRTP Discussion",
        "i=A discussion of Secure RTP",
        "u=http://www.example.com/seminars/srtp.pdf",
        "e=marge@example.com (Marge Simpson)",
        "c=IN IP4 168.2.17.12",
        "t=2873397496 2873404696",
        "m=audio 49170 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 \
         inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP",
        "a=crypto:2 F8_128_HMAC_SHA1_80 \
         inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
         inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
        "m=video 51372 RTP/SAVP 31",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 \
         inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32",
        "m=application 32416 udp wb",
        "a=orient:portrait",
    ]);
    let audio: Vec<Crypto> = sdp.media[0].cryptos().collect::<Result<_, _>>().unwrap();
    assert_eq!(audio.len(), 2);
    assert!(sdp.media[0].proto.is_srtp());
    assert!(!sdp.media[0].proto.is_dtls());
    assert_eq!(audio[0].tag, 1);
    assert_eq!(audio[0].suite().unwrap(), Suite::AesCm128HmacSha1_80);
    assert_eq!(audio[0].session_params, ["FEC_ORDER=FEC_SRTP"]);
    let k = &audio[0].master_keys().unwrap()[0];
    assert_eq!(k.lifetime(), Some(1 << 20));
    assert_eq!(k.mki().unwrap().value(), 1);
    assert_eq!(k.mki().unwrap().len(), 4);
    // Two keys told apart by MKI, for a suite given as a string.
    assert_eq!(audio[1].suite, "F8_128_HMAC_SHA1_80");
    let keys = audio[1].master_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1].mki().unwrap().value(), 2);
    // A 32-byte MKI is valid SDP but more than SRTP here carries.
    let video = sdp.media[1].cryptos().next().unwrap().unwrap();
    assert_eq!(video.master_keys().unwrap_err(), CryptoError::BadMki);
    // Unknown protocol and attribute kept as they are.
    let app = &sdp.media[2];
    assert_eq!(app.proto, Proto::Other("udp".into()));
    assert!(!app.proto.is_rtp());
    assert_eq!(app.attribute_value("orient"), Some("portrait"));
}

#[test]
fn rfc4568_mki_without_lifetime_and_session_params() {
    let c = Crypto::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4 \
         KDR=23 UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP WSH=128",
    )
    .unwrap();
    let k = &c.master_keys().unwrap()[0];
    assert_eq!(k.lifetime(), None);
    assert_eq!(k.mki().unwrap().value(), 1066);
    assert_eq!(c.kdr(), Some(23));
    assert_eq!(c.wsh(), Some(128));
    assert!(c.unencrypted_srtcp() && c.unauthenticated_srtp() && !c.unencrypted_srtp());
}

#[test]
fn rfc3264_offer_answer_and_hold() {
    // §10.1: the offer and the answer, with "s=" left empty.
    let offer = round_trip(&[
        "v=0",
        "o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com",
        "s=",
        "c=IN IP4 host.atlanta.example.com",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0 8 97",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:97 iLBC/8000",
        "m=video 51372 RTP/AVP 31 32",
        "a=rtpmap:31 H261/90000",
        "a=rtpmap:32 MPV/90000",
    ]);
    assert_eq!(offer.session_name, "");
    // A host name is a valid address but not an IP.
    assert_eq!(offer.connection.as_ref().unwrap().ip(), None);
    let audio = &offer.media[0];
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 8, 97]);
    assert_eq!(audio.rtpmap(97).unwrap().unwrap().encoding, "iLBC");
    assert_eq!(audio.rtpmap(31).unwrap(), None);

    let answer = round_trip(&[
        "v=0",
        "o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com",
        "s=",
        "c=IN IP4 host.biloxi.example.com",
        "t=0 0",
        "m=audio 49174 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "m=video 0 RTP/AVP 32",
        "a=rtpmap:32 MPV/90000",
    ]);
    assert!(answer.media[1].is_rejected());

    // §8.4: putting a stream on hold with a=sendonly.
    let hold = round_trip(&[
        "v=0",
        "o=alice 2890844526 2890844527 IN IP4 host.atlanta.example.com",
        "s=",
        "c=IN IP4 host.atlanta.example.com",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendonly",
    ]);
    let m = &hold.media[0];
    assert_eq!(hold.direction_for(m), Direction::SendOnly);
    assert_eq!(hold.direction_for(m).reversed(), Direction::RecvOnly);
}

#[test]
fn rfc8122_fingerprint_example() {
    let sdp = round_trip(&[
        "v=0",
        "o=- 25678 753849 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=image 54111 TCP/TLS t38",
        "a=setup:passive",
        "a=fingerprint:SHA-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB",
    ]);
    let m = &sdp.media[0];
    let fp = &sdp.fingerprints_for(m).unwrap()[0];
    assert_eq!(fp.hash, "SHA-1");
    assert_eq!(fp.digest.len(), 20);
    assert_eq!(fp.digest[0], 0x4A);
    assert_eq!(
        fp.to_attribute().to_string(),
        m.attribute("fingerprint").unwrap().to_string()
    );
    assert_eq!(sdp.setup_for(m).unwrap(), Some(Setup::Passive));
    assert!(!m.proto.is_srtp());
}

#[test]
fn rfc8839_ice_example() {
    let sdp = round_trip(&[
        "v=0",
        "o=jdoe 2890844526 2890842807 IN IP4 203.0.113.141",
        "s=",
        "c=IN IP4 192.0.2.3",
        "t=0 0",
        "a=ice-options:ice2",
        "a=ice-pacing:50",
        "a=ice-pwd:asd88fgpdd777uzjYhagZg",
        "a=ice-ufrag:8hhY",
        "m=audio 45664 RTP/AVP 0",
        "b=RS:0",
        "b=RR:0",
        "a=rtpmap:0 PCMU/8000",
        "a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host",
        "a=candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport 8998",
    ]);
    let m = &sdp.media[0];
    // Credentials and options are inherited from the session level.
    assert_eq!(m.ice_ufrag(), None);
    assert_eq!(sdp.ice_ufrag_for(m), Some("8hhY"));
    assert_eq!(sdp.ice_pwd_for(m), Some("asd88fgpdd777uzjYhagZg"));
    assert_eq!(sdp.ice_options_for(m), ["ice2"]);
    assert_eq!(m.bandwidth("RS"), Some(0));
    let c: Vec<Candidate> = m.candidates().collect::<Result<_, _>>().unwrap();
    assert_eq!(c[0].kind, CandidateType::Host);
    assert_eq!(c[0].priority, 2130706431);
    assert_eq!(c[1].kind, CandidateType::Srflx);
    assert_eq!(c[1].rel_addr.as_deref(), Some("203.0.113.141"));
    assert_eq!(c[1].rel_port, Some(8998));
    assert_eq!(
        c[1].to_string(),
        m.attributes_named("candidate").nth(1).unwrap().value_str()
    );
    let mut stripped = sdp.clone();
    assert_eq!(stripped.remove_ice(), 4);
    assert_eq!(stripped.media[0].remove_ice(), 2);
    assert!(!stripped.to_string().contains("ice") && !stripped.to_string().contains("cand"));
}

#[test]
fn rfc3605_rtcp_attribute() {
    let sdp = round_trip(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "a=rtcp:53020",
        "m=audio 49172 RTP/AVP 0",
        "a=rtcp:53020 IN IP4 126.16.64.4",
        "m=audio 49174 RTP/AVP 0",
        "a=rtcp:53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD",
    ]);
    let r0 = sdp.media[0].rtcp().unwrap().unwrap();
    assert_eq!((r0.port, r0.address), (53020, None));
    let r1 = sdp.media[1].rtcp().unwrap().unwrap();
    let ip: IpAddr = "126.16.64.4".parse().unwrap();
    assert_eq!(r1.address.as_ref().unwrap().ip(), Some(ip));
    assert_eq!(r1, Rtcp::new(53020, Some(ip)));
    let r2 = sdp.media[2].rtcp().unwrap().unwrap();
    assert_eq!(r2.address.unwrap().addr_type, AddrType::Ip6);
}
