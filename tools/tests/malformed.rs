//! Damaged and hostile captures give clean errors, never panics.

mod common;

use std::process::Command;

use common::*;
use proptest::prelude::*;
use relay::srtp::Suite;
use srtpgate_tools::link::LinkLayer;
use srtpgate_tools::pcap::{PcapError, PcapHeader, PcapReader};
use srtpgate_tools::srtp_pcap::{run, Mode, RunError};

fn le_header(magic: u32, major: u16, snaplen: u32, link: u32) -> Vec<u8> {
    let mut v = magic.to_le_bytes().to_vec();
    v.extend_from_slice(&major.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&snaplen.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    v
}

fn record_header(caplen: u32, orig: u32) -> Vec<u8> {
    [1u32, 2, caplen, orig]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

fn decrypt(input: &[u8]) -> Result<(), RunError> {
    let suite = Suite::AesCm128HmacSha1_80;
    let cfg = config(Mode::Decrypt, suite, &[inline_key(suite, 1, None)]);
    run(input, Vec::new(), cfg).map(drop)
}

fn read_error(input: &[u8]) -> PcapError {
    match decrypt(input) {
        Err(RunError::Open(e)) => e,
        Err(RunError::Read { error, .. }) => error,
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn file_headers() {
    assert!(matches!(read_error(&[]), PcapError::TruncatedFileHeader));
    assert!(matches!(
        read_error(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]),
        PcapError::TruncatedFileHeader
    ));
    assert!(matches!(
        read_error(&le_header(0xdead_beef, 2, 65535, 1)),
        PcapError::BadMagic(_)
    ));
    assert!(matches!(
        read_error(&le_header(0x0a0d_0d0a, 2, 65535, 1)),
        PcapError::Pcapng
    ));
    assert!(matches!(
        read_error(&le_header(0xa1b2_c3d4, 1, 65535, 1)),
        PcapError::BadVersion { major: 1, .. }
    ));
    assert!(matches!(
        decrypt(&le_header(0xa1b2_c3d4, 2, 65535, 147)),
        Err(RunError::LinkType(147))
    ));
    // A header and no packets is a valid, empty capture.
    assert!(decrypt(&le_header(0xa1b2_c3d4, 2, 65535, 1)).is_ok());
}

#[test]
fn records() {
    let good = frame(
        LinkLayer::Ethernet { vlans: &[] },
        addr("192.0.2.1:1"),
        addr("192.0.2.2:2"),
        &[0x80; 40],
    );
    let mut f = le_header(0xa1b2_c3d4, 2, 100, 1);
    f.extend(record_header(good.len() as u32, good.len() as u32));
    f.extend(&good);
    let valid = f.len();

    f.extend(&record_header(10, 10)[..7]);
    match decrypt(&f) {
        Err(RunError::Read { error, summary }) => {
            assert!(matches!(
                error,
                PcapError::TruncatedRecordHeader { index: 2, got: 7 }
            ));
            assert_eq!(summary.packets_read, 1, "packets before the damage count");
        }
        other => panic!("{other:?}"),
    }

    f.truncate(valid);
    f.extend(record_header(50, 50));
    f.extend([0; 20]);
    assert!(matches!(
        read_error(&f),
        PcapError::TruncatedRecord {
            index: 2,
            want: 50,
            got: 20
        }
    ));

    f.truncate(valid);
    f.extend(record_header(101, 101));
    f.extend([0; 101]);
    assert!(matches!(
        read_error(&f),
        PcapError::CaplenOverSnaplen {
            caplen: 101,
            snaplen: 100,
            ..
        }
    ));

    // A snapshot length of 2^32-1 does not let a record ask for 4 GiB.
    let mut f = le_header(0xa1b2_c3d4, 2, u32::MAX, 1);
    f.extend(record_header(u32::MAX, u32::MAX));
    assert!(matches!(
        read_error(&f),
        PcapError::CaplenOverSnaplen { .. }
    ));
}

#[test]
fn hostile_frames_are_copied_not_trusted() {
    // Headers that claim more than is there, at every layer.
    let link = LinkLayer::Ethernet { vlans: &[] };
    let base = frame(link, addr("192.0.2.1:1"), addr("192.0.2.2:2"), &[0x80; 40]);
    let ip = 14;
    let mut frames = Vec::new();
    for (at, value) in [
        (ip, 0x4f),          // IHL 60 bytes
        (ip, 0x41),          // IHL 4 bytes
        (ip + 2, 0xff),      // total length beyond the frame
        (ip + 3, 0x01),      // total length too small
        (ip + 20 + 4, 0xff), // UDP length beyond the packet
        (ip + 20 + 5, 0x03), // UDP length below 8
        (ip + 29, 200),      // RTCP whose body is garbage
        (ip + 28, 0x8f),     // 15 CSRCs
        (ip + 28, 0x90),     // extension beyond the packet
    ] {
        let mut f = base.clone();
        f[at] = value;
        frames.push(f);
    }
    frames.push(base[..ip + 10].to_vec());
    frames.push(Vec::new());
    let bytes = pcap_bytes(&PcapHeader::new(1, false), &records_of(&frames));
    let suite = Suite::AeadAes128Gcm;
    for mode in [Mode::Decrypt, Mode::Encrypt] {
        let cfg = config(mode, suite, &[inline_key(suite, 1, None)]);
        let mut out = Vec::new();
        let s = run(&bytes[..], &mut out, cfg).expect("run");
        assert_eq!(s.packets_read, frames.len() as u64);
    }
}

#[test]
fn the_binary_reports_errors_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("srtp-pcap-malformed");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.pcap");
    std::fs::write(&bad, b"this is not a capture file at all").unwrap();
    let out = dir.join("out.pcap");
    let suite = Suite::AesCm128HmacSha1_80;
    let key = inline_key(suite, 1, None);
    let exe = env!("CARGO_BIN_EXE_srtp-pcap");
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "decrypt".into(),
                "--in".into(),
                bad.display().to_string(),
                "--out".into(),
                out.display().to_string(),
                "--suite".into(),
                suite.to_string(),
                "--key".into(),
                key.clone(),
            ],
            "not a pcap file",
        ),
        (
            vec![
                "decrypt".into(),
                "--in".into(),
                dir.join("missing.pcap").display().to_string(),
                "--out".into(),
                out.display().to_string(),
                "--suite".into(),
                suite.to_string(),
                "--key".into(),
                key.clone(),
            ],
            "missing.pcap",
        ),
        (
            vec![
                "encrypt".into(),
                "--in".into(),
                bad.display().to_string(),
                "--out".into(),
                out.display().to_string(),
                "--suite".into(),
                "AEAD_AES_128_GCM".into(),
                "--key".into(),
                key.clone(),
            ],
            "key 1: key-salt is 30 bytes",
        ),
        (
            vec![
                "decrypt".into(),
                "--in".into(),
                bad.display().to_string(),
                "--out".into(),
                out.display().to_string(),
                "--stream".into(),
                format!("192.0.2.1:1>192.0.2.2=AES_CM_128_HMAC_SHA1_80:{key}"),
            ],
            "bad socket address",
        ),
        (
            vec![
                "decrypt".into(),
                "--in".into(),
                bad.display().to_string(),
                "--out".into(),
                out.display().to_string(),
                "--suite".into(),
                suite.to_string(),
                "--key".into(),
                key.clone(),
                "--kdr".into(),
                "12".into(),
            ],
            "power of two",
        ),
    ];
    cases.push((
        vec![
            "decrypt".into(),
            "--in".into(),
            bad.display().to_string(),
            "--out".into(),
            bad.display().to_string(),
            "--suite".into(),
            suite.to_string(),
            "--key".into(),
            key.clone(),
        ],
        "same file",
    ));
    let b64 = key.trim_start_matches("inline:");
    for (args, want) in cases {
        let o = Command::new(exe).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains(b64), "the key leaked into: {err}");
    }
}

fn valid_capture() -> Vec<u8> {
    let link = LinkLayer::Ethernet { vlans: &[5] };
    let suite = Suite::AesCm128HmacSha1_80;
    let mut frames = call_frames(link, addr("192.0.2.1:5004"), addr("192.0.2.2:6000"), 6);
    frames.extend(call_frames(
        LinkLayer::Ethernet { vlans: &[] },
        addr("[2001:db8::1]:5004"),
        addr("[2001:db8::2]:6000"),
        6,
    ));
    let plain = pcap_bytes(&PcapHeader::new(1, false), &records_of(&frames));
    let mut out = Vec::new();
    let cfg = config(Mode::Encrypt, suite, &[inline_key(suite, 1, None)]);
    run(&plain[..], &mut out, cfg).expect("encrypt");
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn garbage_never_panics(
        link in prop::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276]),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut f = le_header(0xa1b2_c3d4, 2, 1500, link);
        f.extend(body);
        let _ = decrypt(&f);
        let mut r = PcapReader::new(&f[..]).unwrap();
        while let Ok(Some(_)) = r.next_record() {}
    }

    #[test]
    fn mutated_captures_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = valid_capture();
        for (at, x) in flips {
            let i = 24 + at.index(f.len() - 24);
            f[i] ^= x;
        }
        f.truncate(24 + cut.index(f.len() - 23));
        let _ = decrypt(&f);
    }
}
