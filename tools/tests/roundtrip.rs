//! srtp-pcap on synthetic captures: encrypt then decrypt gives back the very same frames,
//! across link layers, IP versions, suites and session parameters.

mod common;

use common::*;
use relay::srtp::Suite;
use srtpgate_tools::link::LinkLayer;
use srtpgate_tools::pcap::{PcapHeader, Record, DEFAULT_SNAPLEN};
use srtpgate_tools::srtp_pcap::{
    run, Config, KeySet, Mode, OnFailure, SessionParams, StreamSpec, Summary,
};

fn transform(config: Config, input: &[u8]) -> (Summary, Vec<u8>) {
    let mut out = Vec::new();
    let summary = run(input, &mut out, config).expect("run");
    (summary, out)
}

fn with_mode(mut c: Config, mode: Mode) -> Config {
    c.mode = mode;
    c
}

/// Encrypts `input`, checks the SRTP frames, decrypts, and checks the frames came back.
fn round_trip(config: Config, header: &PcapHeader, records: &[Record]) -> (Summary, Summary) {
    let input = pcap_bytes(header, records);
    let (enc_sum, encrypted) = transform(with_mode(config.clone(), Mode::Encrypt), &input);
    let (eh, erecs) = read_all(&encrypted);
    assert_eq!(eh.linktype(), header.linktype());
    assert_eq!(eh.nanos, header.nanos);
    let link = header.linktype();
    for (plain, srtp) in records.iter().zip(&erecs) {
        assert_eq!((plain.ts_sec, plain.ts_frac), (srtp.ts_sec, srtp.ts_frac));
        assert_eq!(srtp.orig_len as usize, srtp.data.len());
        if let Some(v) = udp_view(link, &srtp.data) {
            assert!(v.checksums_ok(&srtp.data), "encrypted frame checksums");
            let p = udp_view(link, &plain.data).expect("plain view");
            let (pp, sp) = (p.payload(&plain.data), v.payload(&srtp.data));
            if (128..=191).contains(&pp[0]) {
                assert!(sp.len() >= pp.len(), "SRTP is no shorter than RTP");
                assert_ne!(sp, pp, "payload was protected");
            }
        }
    }
    let (dec_sum, decrypted) = transform(with_mode(config, Mode::Decrypt), &encrypted);
    let (dh, drecs) = read_all(&decrypted);
    assert_eq!(dh.linktype(), header.linktype());
    assert_eq!(drecs, records, "decrypt(encrypt(x)) == x");
    (enc_sum, dec_sum)
}

fn header(link: LinkLayer) -> PcapHeader {
    PcapHeader::new(link.linktype(), false)
}

#[test]
fn every_link_layer_and_ip_version() {
    let links = [
        LinkLayer::Ethernet { vlans: &[] },
        LinkLayer::Ethernet { vlans: &[100, 200] },
        LinkLayer::LinuxSll,
        LinkLayer::LinuxSll2,
        LinkLayer::Raw,
        LinkLayer::Null,
    ];
    let suite = Suite::AesCm128HmacSha1_80;
    let cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 1, None)]);
    for link in links {
        for (src, dst) in [
            ("192.0.2.1:5004", "198.51.100.2:40000"),
            ("[2001:db8::1]:5004", "[2001:db8::2]:40000"),
        ] {
            let (src, dst) = (addr(src), addr(dst));
            let mut frames = vec![frame(link, src, dst, &stun())];
            frames.extend(call_frames(link, src, dst, 50));
            let (enc, dec) = round_trip(cfg.clone(), &header(link), &records_of(&frames));
            for s in [&enc, &dec] {
                assert_eq!(
                    (s.rtp, s.rtcp, s.not_rtp, s.failed()),
                    (50, 5, 1, 0),
                    "{link:?}"
                );
                assert_eq!(s.packets_written, 56);
            }
        }
    }
}

#[test]
fn every_suite() {
    let link = LinkLayer::Ethernet { vlans: &[] };
    let frames = call_frames(link, addr("192.0.2.1:5004"), addr("192.0.2.2:6000"), 30);
    for suite in Suite::ALL {
        let cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 9, None)]);
        let (_, dec) = round_trip(cfg, &header(link), &records_of(&frames));
        assert_eq!((dec.rtp, dec.rtcp, dec.failed()), (30, 3, 0), "{suite}");
    }
}

#[test]
fn session_parameters() {
    let link = LinkLayer::Raw;
    let frames = call_frames(link, addr("192.0.2.1:5004"), addr("192.0.2.2:6000"), 40);
    let params = [
        SessionParams {
            kdr: 16,
            ..Default::default()
        },
        SessionParams {
            unencrypted_srtp: true,
            unencrypted_srtcp: true,
            ..Default::default()
        },
        SessionParams {
            unauthenticated_srtp: true,
            ..Default::default()
        },
    ];
    for suite in [Suite::AesCm128HmacSha1_32, Suite::AeadAes256Gcm] {
        for p in params {
            if p.unauthenticated_srtp && suite == Suite::AeadAes256Gcm {
                continue;
            }
            let mut cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 3, None)]);
            cfg.params = p;
            let (_, dec) = round_trip(cfg, &header(link), &records_of(&frames));
            assert_eq!(
                (dec.rtp, dec.rtcp, dec.failed()),
                (40, 4, 0),
                "{suite} {p:?}"
            );
        }
    }
}

#[test]
fn unencrypted_srtp_leaves_payload_readable() {
    let link = LinkLayer::Raw;
    let suite = Suite::AesCm128HmacSha1_80;
    let frames = call_frames(link, addr("192.0.2.1:5004"), addr("192.0.2.2:6000"), 3);
    let mut cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 3, None)]);
    cfg.params.unencrypted_srtp = true;
    let (_, out) = transform(cfg, &pcap_bytes(&header(link), &records_of(&frames)));
    let (_, recs) = read_all(&out);
    let v = udp_view(link.linktype(), &recs[0].data).unwrap();
    assert_eq!(
        &v.payload(&recs[0].data)[..172],
        &rtp(SSRC, FIRST_SEQ, 0)[..]
    );
}

#[test]
fn nanosecond_big_endian_input() {
    // Write a big-endian nanosecond file by hand, then round-trip it.
    let link = LinkLayer::Ethernet { vlans: &[] };
    let frames = call_frames(link, addr("192.0.2.1:5004"), addr("192.0.2.2:6000"), 12);
    let mut f = vec![0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4];
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&DEFAULT_SNAPLEN.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes());
    for (i, fr) in frames.iter().enumerate() {
        for x in [7, 999_999_000 + i as u32, fr.len() as u32, fr.len() as u32] {
            f.extend_from_slice(&x.to_be_bytes());
        }
        f.extend_from_slice(fr);
    }
    let suite = Suite::AeadAes128Gcm;
    let cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 5, None)]);
    let (s, enc) = transform(cfg.clone(), &f);
    assert_eq!(s.rtp, 12);
    let (s, dec) = transform(with_mode(cfg, Mode::Decrypt), &enc);
    assert_eq!(s.rtp, 12);
    let (h, recs) = read_all(&dec);
    assert!(h.nanos && !h.big_endian);
    assert_eq!(recs.len(), frames.len());
    for (i, (r, fr)) in recs.iter().zip(&frames).enumerate() {
        assert_eq!(&r.data, fr);
        assert_eq!((r.ts_sec, r.ts_frac), (7, 999_999_000 + i as u32));
    }
}

#[test]
fn mki_selects_the_key() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (k1, k2) = (inline_key(suite, 1, Some(1)), inline_key(suite, 2, Some(2)));
    let link = LinkLayer::Raw;
    let frames = call_frames(link, addr("192.0.2.1:5004"), addr("192.0.2.2:6000"), 20);
    let input = pcap_bytes(&header(link), &records_of(&frames));
    // Encrypt with the second key only: every packet carries MKI 2.
    let (_, enc) = transform(
        config(Mode::Encrypt, suite, std::slice::from_ref(&k2)),
        &input,
    );
    let (s, dec) = transform(config(Mode::Decrypt, suite, &[k1.clone(), k2]), &enc);
    assert_eq!((s.rtp, s.rtcp, s.failed()), (20, 2, 0));
    assert_eq!(read_all(&dec).1, records_of(&frames));
    // With only the first key, every packet names an unknown MKI.
    let (s, _) = transform(config(Mode::Decrypt, suite, &[k1]), &enc);
    assert_eq!(s.failures.get("SRTP: unknown MKI"), Some(&20));
    assert_eq!(s.failures.get("SRTCP: unknown MKI"), Some(&2));
}

#[test]
fn directions_keep_their_own_replay_state() {
    // Both directions send the same SSRC and sequence numbers under the same key: with
    // one context for both, the second direction would be all replays.
    let suite = Suite::AesCm128HmacSha1_80;
    let link = LinkLayer::Ethernet { vlans: &[] };
    let (a, b) = (addr("192.0.2.1:5004"), addr("192.0.2.2:6000"));
    let mut frames = call_frames(link, a, b, 20);
    frames.extend(call_frames(link, b, a, 20));
    let cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 1, None)]);
    let (_, dec) = round_trip(cfg, &header(link), &records_of(&frames));
    assert_eq!(
        (dec.rtp, dec.rtcp, dec.directions, dec.failed()),
        (40, 4, 2, 0)
    );
}

#[test]
fn streams_ports_failures_and_replays() {
    let suite = Suite::AesCm128HmacSha1_80;
    let link = LinkLayer::Ethernet { vlans: &[] };
    let (a, b, c) = (
        addr("192.0.2.1:5004"),
        addr("192.0.2.2:6000"),
        addr("192.0.2.3:7000"),
    );
    let (ka, kb) = (inline_key(suite, 1, None), inline_key(suite, 2, None));
    // a->b under ka with one packet corrupted, b->a under kb, c->b under ka, then a replay.
    let encrypt = |src, dst, key: &String| {
        let frames = call_frames(link, src, dst, 10);
        let input = pcap_bytes(&header(link), &records_of(&frames));
        let (_, enc) = transform(
            config(Mode::Encrypt, suite, std::slice::from_ref(key)),
            &input,
        );
        read_all(&enc).1
    };
    let mut recs = encrypt(a, b, &ka);
    let last = recs[2].data.len() - 1;
    recs[2].data[last] ^= 0x55;
    recs.extend(encrypt(b, a, &kb));
    recs.extend(encrypt(c, b, &ka));
    recs.push(recs[0].clone());
    let input = pcap_bytes(&header(link), &recs);

    let stream: StreamSpec = format!("{b}>{a}={suite}:{kb}")
        .parse()
        .expect("stream spec");
    let mut cfg = config(Mode::Decrypt, suite, std::slice::from_ref(&ka));
    cfg.streams = vec![stream];
    cfg.ports = vec![5004];
    let (s, out) = transform(cfg.clone(), &input);
    // a->b and b->a decrypt (port 5004 on both); c->b is on no selected port.
    assert_eq!((s.rtp, s.rtcp, s.unselected), (19, 2, 11));
    assert_eq!(s.failures.get("SRTP: replayed packet"), Some(&1));
    assert_eq!(s.failures.get("SRTP: authentication failed"), Some(&1));
    assert_eq!(s.packets_written, s.packets_read - 2);
    for r in read_all(&out).1 {
        let v = udp_view(link.linktype(), &r.data).unwrap();
        assert!(v.checksums_ok(&r.data));
    }

    cfg.on_failure = OnFailure::Keep;
    cfg.ports.clear();
    let (s, out) = transform(cfg, &input);
    assert_eq!((s.rtp, s.unselected, s.failed()), (29, 0, 2));
    let out = read_all(&out).1;
    assert_eq!(out.len(), recs.len());
    assert_eq!(out[out.len() - 1], recs[recs.len() - 1], "kept unchanged");

    // Without the stream, b->a fails under ka.
    let (s, _) = transform(config(Mode::Decrypt, suite, &[ka]), &input);
    assert_eq!(s.failures.get("SRTP: authentication failed"), Some(&11));
    assert_eq!(s.failures.get("SRTCP: authentication failed"), Some(&1));
}

#[test]
fn trailers_are_dropped_and_cut_packets_copied() {
    let suite = Suite::AesCm128HmacSha1_80;
    let link = LinkLayer::Ethernet { vlans: &[] };
    let (a, b) = (addr("192.0.2.1:5004"), addr("192.0.2.2:6000"));
    let key = inline_key(suite, 1, None);
    let frames = call_frames(link, a, b, 2);
    let input = pcap_bytes(&header(link), &records_of(&frames));
    let (_, enc) = transform(
        config(Mode::Encrypt, suite, std::slice::from_ref(&key)),
        &input,
    );
    let mut recs = read_all(&enc).1;
    // Ethernet padding / FCS after the IP packet.
    recs[0].data.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    recs[0].orig_len += 4;
    // The capture kept only 100 bytes of the second packet.
    recs[1].data.truncate(100);
    let (s, dec) = transform(
        config(Mode::Decrypt, suite, &[key]),
        &pcap_bytes(&header(link), &recs),
    );
    assert_eq!((s.rtp, s.truncated), (1, 1));
    let out = read_all(&dec).1;
    assert_eq!(out[0].data, frames[0]);
    assert_eq!(out[0].orig_len as usize, frames[0].len());
    assert_eq!(out[1], recs[1]);
}

#[test]
fn stream_specs_parse_and_refuse() {
    let suite = Suite::AeadAes256Gcm;
    let k = inline_key(suite, 4, None);
    let s: StreamSpec = format!("[2001:db8::1]:5004>[2001:db8::2]:6000=AEAD_AES_256_GCM:{k}")
        .parse()
        .unwrap();
    assert_eq!(s.src, addr("[2001:db8::1]:5004"));
    assert_eq!(s.keys.suite, suite);
    let two = format!(
        "192.0.2.1:1>192.0.2.2:2=AES_CM_128_HMAC_SHA1_80:{},{}",
        inline_key(Suite::AesCm128HmacSha1_80, 1, Some(1)),
        inline_key(Suite::AesCm128HmacSha1_80, 2, Some(2))
    );
    assert_eq!(two.parse::<StreamSpec>().unwrap().keys.keys.len(), 2);
    for bad in [
        "192.0.2.1:1>192.0.2.2:2".to_string(),
        format!("192.0.2.1>192.0.2.2:2=AEAD_AES_256_GCM:{k}"),
        format!("192.0.2.1:1=AEAD_AES_256_GCM:{k}"),
        format!("192.0.2.1:1>192.0.2.2:2=AES_CM_128_HMAC_SHA1_80:{k}"),
        format!("192.0.2.1:1>192.0.2.2:2=NO_SUCH_SUITE:{k}"),
    ] {
        let err = bad.parse::<StreamSpec>().unwrap_err().to_string();
        let b64 = k.trim_start_matches("inline:");
        assert!(!err.contains(b64), "error shows the key: {err}");
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let suite = Suite::AesCm128HmacSha1_80;
    let mut cfg = config(Mode::Decrypt, suite, &[inline_key(suite, 1, None)]);
    cfg.params.kdr = 3;
    assert!(run(&[][..], Vec::new(), cfg.clone()).is_err());
    cfg.params.kdr = 0;
    // Two keys without MKIs.
    cfg.default_keys = Some(
        KeySet::parse(
            suite,
            &[inline_key(suite, 1, None), inline_key(suite, 2, None)],
        )
        .unwrap(),
    );
    let err = run(&[][..], Vec::new(), cfg.clone()).unwrap_err();
    assert!(err.to_string().contains("MKI"), "{err}");
    cfg.default_keys = None;
    assert!(run(&[][..], Vec::new(), cfg.clone()).is_err());
    cfg.ports = vec![5004];
    assert!(run(&[][..], Vec::new(), cfg).is_err());
}
