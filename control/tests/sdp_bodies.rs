//! SDP bodies shaped like those that real user agents and relays send (fixtures in
//! `sdp_fixtures/`, written from their public documentation, issue reports and test
//! suites, with keys and addresses of our own): each is read, checked and written back
//! byte for byte, then rewritten the way srtpgate rewrites an offer.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use control::sdp::*;
use relay::srtp::{MasterKey, Suite};

const RELAY: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// Reads a fixture, checks its round trips, and returns it parsed.
fn fixture(name: &str) -> SessionDescription {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdp_fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains('\r'), "{name}: fixtures are stored with LF");
    let crlf = text.replace('\n', "\r\n");
    let sdp = SessionDescription::parse_strict(&crlf).unwrap();
    assert_eq!(sdp.to_string(), crlf, "{name}: written back differently");
    assert_eq!(SessionDescription::parse(&text).unwrap(), sdp, "{name}: LF");
    assert_eq!(
        SessionDescription::parse_bytes_strict(crlf.as_bytes()).unwrap(),
        sdp
    );
    assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
    sdp
}

/// What srtpgate does to one side's offer: its own address and ports, ICE and DTLS
/// removed, the peer's keys replaced by one key of its own, RTCP on the next port.
fn rewrite_for_sdes(sdp: &mut SessionDescription, key: &MasterKey, suite: Suite) {
    sdp.origin.set_ip(RELAY);
    sdp.bump_version();
    if sdp.connection.is_some() {
        sdp.set_connection_address(RELAY);
    }
    sdp.remove_ice();
    sdp.remove_dtls();
    sdp.remove_attributes("crypto");
    for (i, m) in sdp.media.iter_mut().enumerate() {
        let port = 40000 + 2 * i as u16;
        m.set_port(port);
        m.set_connection_address(RELAY);
        m.remove_ice();
        m.remove_dtls();
        m.set_proto(Proto::rtp(true, false, m.proto.has_feedback()));
        m.set_crypto(&[Crypto::new(1, suite, std::slice::from_ref(key))]);
        m.set_rtcp_mux(false);
        m.set_rtcp(Some(Rtcp::new(port + 1, None)));
    }
}

/// Checks a rewritten body: reparsed equal, only our key in it, every media on the relay.
fn check_rewritten(sdp: &SessionDescription, original_keys: &[String]) {
    let text = sdp.to_string();
    let again = SessionDescription::parse_strict(&text).unwrap();
    assert_eq!(again, *sdp);
    for k in original_keys {
        assert!(!text.contains(k.as_str()), "a peer key survived: {text}");
    }
    for m in &again.media {
        assert_eq!(again.connection_for(m).unwrap().ip(), Some(RELAY));
        assert!(m.proto.is_srtp() && !m.proto.is_dtls());
        assert_eq!(m.cryptos().count(), 1);
        assert!(m.candidates().next().is_none() && m.fingerprints().unwrap().is_empty());
        assert_eq!(m.rtcp().unwrap().unwrap().port, m.port + 1);
    }
}

fn key() -> MasterKey {
    MasterKey::new(Suite::AesCm128HmacSha1_80, &[0x5a; 16], &[0xa5; 14]).unwrap()
}

/// The base64 key-salt of every crypto line, to check none survives a rewrite.
fn keys_of(sdp: &SessionDescription) -> Vec<String> {
    sdp.media
        .iter()
        .flat_map(|m| m.cryptos())
        .flat_map(|c| c.unwrap().keys)
        .map(|k| {
            k.as_str()["inline:".len()..]
                .split('|')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn baresip_offer() {
    let mut sdp = fixture("baresip_offer.sdp");
    assert_eq!(sdp.attribute_value("tool"), Some("baresip 3.10.1"));
    let m = &sdp.media[0];
    assert_eq!(m.proto, Proto::RtpSavp);
    assert_eq!(m.bandwidth("AS"), Some(128));
    assert_eq!(m.ptime().unwrap(), Some(20));
    assert_eq!(m.fmtp(96), Some("stereo=1;sprop-stereo=1"));
    assert_eq!(m.rtpmap(96).unwrap().unwrap().params.as_deref(), Some("2"));
    let ssrc = m.ssrcs().next().unwrap().unwrap();
    assert_eq!((ssrc.id, ssrc.attribute.as_str()), (229498086, "cname"));
    let cryptos: Vec<Crypto> = m.cryptos().collect::<Result<_, _>>().unwrap();
    assert_eq!(cryptos[0].suite().unwrap(), Suite::AesCm128HmacSha1_80);
    assert_eq!(cryptos[1].suite().unwrap(), Suite::AesCm128HmacSha1_32);
    for c in &cryptos {
        assert_eq!(c.master_keys().unwrap().len(), 1);
    }
    let peer_keys = keys_of(&sdp);
    rewrite_for_sdes(&mut sdp, &key(), Suite::AesCm128HmacSha1_80);
    check_rewritten(&sdp, &peer_keys);
    // The crypto line took the place of the first old one, before a=ptime.
    let names: Vec<&str> = sdp.media[0]
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(&names[names.len() - 3..], ["crypto", "ptime", "rtcp"]);
}

#[test]
fn rtpengine_answer() {
    let sdp = fixture("rtpengine_answer.sdp");
    let m = &sdp.media[0];
    // rtpengine puts c= in the media section and a=rtcp after the direction.
    assert!(sdp.connection.is_none());
    assert_eq!(
        sdp.connection_for(m).unwrap().ip(),
        Some("203.0.113.1".parse().unwrap())
    );
    assert_eq!(m.rtcp().unwrap(), Some(Rtcp::new(30011, None)));
    assert_eq!(sdp.direction_for(m), Direction::SendRecv);
    // Unpadded base64, as rtpengine writes it, is accepted.
    let c = m.cryptos().next().unwrap().unwrap();
    assert_eq!(c.tag, 3);
    let k = &c.master_keys().unwrap()[0];
    assert_eq!((k.key().len(), k.salt().len()), (32, 14));
    let cands: Vec<Candidate> = m.candidates().collect::<Result<_, _>>().unwrap();
    assert_eq!(cands.len(), 2);
    assert_eq!((cands[0].component, cands[1].component), (1, 2));
    assert_eq!(cands[1].port, 30011);
    assert_eq!(m.ice_ufrag(), Some("2Dpn5kQ9"));
}

#[test]
fn linphone_offer_with_several_crypto_lines() {
    let mut sdp = fixture("linphone_offer.sdp");
    assert_eq!(sdp.session_name, "Talk");
    assert!(sdp
        .attribute_value("rtcp-xr")
        .unwrap()
        .contains("voip-metrics"));
    let audio = &sdp.media[0];
    assert!(audio.proto.has_feedback() && audio.proto.is_srtp());
    let suites: Vec<Suite> = audio
        .cryptos()
        .map(|c| c.unwrap().suite().unwrap())
        .collect();
    assert_eq!(
        suites,
        [
            Suite::AesCm128HmacSha1_80,
            Suite::AesCm128HmacSha1_32,
            Suite::Aes256CmHmacSha1_80,
            Suite::Aes256CmHmacSha1_32
        ]
    );
    for c in audio.cryptos() {
        c.unwrap().master_keys().unwrap();
    }
    assert_eq!(
        audio.rtpmap(100).unwrap().unwrap().encoding,
        "telephone-event"
    );
    assert_eq!(sdp.media[1].cryptos().count(), 2);
    let peer_keys = keys_of(&sdp);
    rewrite_for_sdes(&mut sdp, &key(), Suite::AesCm128HmacSha1_80);
    assert_eq!(sdp.media[0].proto, Proto::RtpSavpf);
    check_rewritten(&sdp, &peer_keys);
    assert_eq!(sdp.attributes_named("rtcp-xr").count(), 1);
}

#[test]
fn chrome_webrtc_offer() {
    let mut sdp = fixture("chrome_offer.sdp");
    assert_eq!(sdp.attribute_value("group"), Some("BUNDLE 0 1"));
    // A value with a leading space is kept as it is.
    assert_eq!(
        sdp.attribute_value("msid-semantic"),
        Some(" WMS 6b7c1f0e-3d2a-4b9e-9c55-2a1f7d3e8b40")
    );
    let audio = &sdp.media[0];
    assert_eq!(audio.proto, Proto::UdpTlsRtpSavpf);
    assert!(audio.proto.is_dtls() && audio.proto.is_srtp() && audio.proto.has_feedback());
    assert_eq!(audio.mid(), Some("0"));
    assert!(audio.rtcp_mux());
    assert_eq!(sdp.setup_for(audio).unwrap(), Some(Setup::ActPass));
    let fp = &sdp.fingerprints_for(audio).unwrap()[0];
    assert_eq!((fp.hash.as_str(), fp.digest.len()), ("sha-256", 32));
    assert_eq!(sdp.ice_ufrag_for(audio), Some("2Dpn"));
    assert_eq!(sdp.ice_options_for(audio), ["trickle"]);
    let cands: Vec<Candidate> = audio.candidates().collect::<Result<_, _>>().unwrap();
    assert_eq!(cands.len(), 3);
    assert_eq!(cands[1].kind, CandidateType::Srflx);
    assert_eq!(cands[1].rel_port, Some(51472));
    assert_eq!(cands[1].extension("network-cost"), Some("10"));
    assert_eq!(cands[2].transport, "tcp");
    assert_eq!(cands[2].extension("tcptype"), Some("active"));
    let rtcp = audio.rtcp().unwrap().unwrap();
    assert_eq!(
        rtcp.address.unwrap().ip(),
        Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    );
    let video = &sdp.media[1];
    let ssrcs: Vec<Ssrc> = video.ssrcs().collect::<Result<_, _>>().unwrap();
    assert_eq!(ssrcs.len(), 4);
    assert_eq!(ssrcs[1].attribute, "msid");
    assert!(ssrcs[1].value.as_deref().unwrap().contains(' '));
    assert_eq!(video.fmtp(97), Some("apt=96"));

    rewrite_for_sdes(&mut sdp, &key(), Suite::AesCm128HmacSha1_80);
    check_rewritten(&sdp, &[]);
    assert_eq!(sdp.media[0].proto, Proto::RtpSavpf);
    let out = sdp.to_string();
    for gone in [
        "a=ice-",
        "a=candidate",
        "a=fingerprint",
        "a=setup",
        "a=rtcp-mux",
    ] {
        assert!(!out.contains(gone), "{gone} left in {out}");
    }
    // Everything else stays, in order: BUNDLE, msid, extmap, ssrc lines.
    for kept in [
        "a=group:BUNDLE 0 1",
        "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    ] {
        assert!(out.contains(kept), "{kept} lost");
    }
    assert!(out.contains("a=ssrc-group:FID 91024771 1866566251\r\na=ssrc:91024771 cname:"));
}

#[test]
fn asterisk_offer_with_rtcp_port() {
    let mut sdp = fixture("asterisk_offer.sdp");
    assert_eq!(sdp.session_name, "Asterisk");
    let m = &sdp.media[0];
    assert_eq!(m.rtcp().unwrap(), Some(Rtcp::new(12753, None)));
    assert_eq!(m.attribute_value("maxptime"), Some("150"));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    let peer_keys = keys_of(&sdp);
    rewrite_for_sdes(&mut sdp, &key(), Suite::AesCm128HmacSha1_80);
    check_rewritten(&sdp, &peer_keys);
    // Asterisk writes a=crypto first; the new key goes there too.
    assert!(sdp.media[0].attributes[0].is("crypto"));
    assert!(sdp.media[0].attributes.last().unwrap().is("rtcp"));
}

#[test]
fn freeswitch_offer_with_suites_the_relay_lacks() {
    let mut sdp = fixture("freeswitch_offer.sdp");
    let m = &sdp.media[0];
    assert!(m.rtcp_mux());
    let rtcp = m.rtcp().unwrap().unwrap();
    assert_eq!(rtcp.port, m.port);
    assert_eq!(rtcp.address.unwrap().address, "192.0.2.60");
    let cryptos: Vec<Crypto> = m.cryptos().collect::<Result<_, _>>().unwrap();
    assert_eq!(cryptos.len(), 6);
    // AEAD_AES_256_GCM_8 is valid SDES but not a suite srtpgate implements.
    assert!(matches!(
        cryptos[0].suite(),
        Err(CryptoError::UnknownSuite(_))
    ));
    let usable: Vec<Suite> = cryptos.iter().filter_map(|c| c.suite().ok()).collect();
    assert_eq!(usable[0], Suite::AeadAes256Gcm);
    assert_eq!(cryptos[2].master_keys().unwrap()[0].salt().len(), 12);
    assert_eq!(cryptos[4].master_keys().unwrap()[0].key().len(), 24);
    let peer_keys = keys_of(&sdp);
    rewrite_for_sdes(&mut sdp, &key(), Suite::AesCm128HmacSha1_80);
    check_rewritten(&sdp, &peer_keys);
}

#[test]
fn pjsip_offer_with_optional_srtp() {
    let mut sdp = fixture("pjsip_offer.sdp");
    assert_eq!(sdp.bandwidth("AS"), Some(84));
    assert_eq!(sdp.attribute("X-nat").unwrap().value_str(), "0");
    let m = &sdp.media[0];
    // RTP/AVP with a=crypto: SRTP offered as an option (RFC 8643).
    assert!(!m.proto.is_srtp());
    assert_eq!(m.cryptos().count(), 1);
    assert_eq!(m.bandwidth("TIAS"), Some(64000));
    let rtcp = m.rtcp().unwrap().unwrap();
    assert_eq!(
        (rtcp.port, rtcp.address.unwrap().address.as_str()),
        (4001, "192.0.2.83")
    );
    let peer_keys = keys_of(&sdp);
    rewrite_for_sdes(&mut sdp, &key(), Suite::AesCm128HmacSha1_80);
    check_rewritten(&sdp, &peer_keys);
}

#[test]
fn every_fixture_is_tested() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdp_fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "asterisk_offer.sdp",
            "baresip_offer.sdp",
            "chrome_offer.sdp",
            "freeswitch_offer.sdp",
            "linphone_offer.sdp",
            "pjsip_offer.sdp",
            "rtpengine_answer.sdp"
        ]
    );
}
