//! Message files through the synchronous recording core: SRTP stored exactly as received
//! and decrypted back with the mailbox key, refused packets, plain legs protected under a
//! fresh key, several directions, re-keying, a known ROC, every modified byte refused,
//! wrong keys, clean refusal when space is short, and the file read by tshark.

mod record_common;

use std::path::Path;
use std::time::Duration;

use record_common::*;
use relay::engine::TapKind;
use relay::record::pcapng::{self, BlockReader};
use relay::record::{
    read, scan, FsyncPolicy, LegSource, MessageSession, Origin, PrivateKey, ReadError, RecordError,
    RecorderConfig, StopReason,
};

fn config(dir: &Path, key: &PrivateKey) -> RecorderConfig {
    RecorderConfig {
        dir: dir.to_path_buf(),
        mailbox_id: "mbx-1".into(),
        recipient: key.public_key(),
        fsync: FsyncPolicy::OnClose,
        min_free_bytes: 0,
        max_duration: None,
        poll_interval: Duration::from_millis(5),
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-record-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn srtp_leg(seed: u8) -> (String, LegSource) {
    (
        "caller".into(),
        LegSource::Srtp {
            policy: policy(seed),
            initial_roc: 0,
        },
    )
}

fn packets_on_disk(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut r = BlockReader::new(&bytes[..]);
    let mut out = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        if b.block_type == pcapng::EPB {
            out.push(pcapng::parse_packet(&b).unwrap().data.to_vec());
        }
    }
    out
}

#[test]
fn srtp_is_stored_as_received_and_decrypts_with_the_mailbox_key() {
    let dir = tempdir("asreceived");
    let key = PrivateKey::generate().unwrap();
    let mut s = MessageSession::new(&config(&dir, &key), vec![srtp_leg(1)], 1_000).unwrap();
    let mut tx = sender(1);
    let frames = tone_frames(1000.0, 400);
    let mut sent = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let seq = 65_530u16.wrapping_add(i as u16);
        let p = protect(&mut tx, &rtp(0, seq, i as u32 * 160, 0x1234, f));
        s.on_packet(0, TapKind::Rtp, 2_000 + i as u64, &p, false);
        if i == 3 {
            // A replay and a forgery (other keys) are refused, and so is RTCP.
            s.on_packet(0, TapKind::Rtp, 0, &p, false);
            let forged = protect(&mut sender(9), &rtp(0, seq + 1, 0, 0x1234, f));
            s.on_packet(0, TapKind::Rtp, 0, &forged, false);
            s.on_packet(0, TapKind::Rtcp, 0, &[0x80, 200, 0, 1, 0, 0, 0, 1], false);
            s.on_packet(0, TapKind::Rtp, 0, &[1, 2, 3], false);
        }
        sent.push(p);
    }
    let st = s.stats();
    assert_eq!(st.stored, frames.len() as u64);
    assert_eq!(
        (
            st.refused_replay,
            st.refused_auth,
            st.rtcp_skipped,
            st.refused_malformed
        ),
        (1, 1, 1, 1)
    );
    let info = s.finish(0).unwrap().unwrap();
    assert!(info.complete);
    assert!(info.path.to_string_lossy().ends_with(".pcapng"));
    assert!(!info.path.with_extension("pcapng.part").exists());

    // On disk: the very datagrams sent, and none of the tone's bytes.
    assert_eq!(packets_on_disk(&info.path), sent);
    let file = std::fs::read(&info.path).unwrap();
    assert!(!contains_any_window(&file, &frames, 8));

    let mut got = Vec::new();
    let sum = read(&file[..], &key, |p| got.push(p)).unwrap();
    assert!(sum.is_complete());
    assert_eq!(sum.mailbox_id.as_deref(), Some("mbx-1"));
    assert_eq!(sum.recording_id, Some(info.recording_id));
    assert_eq!(sum.origins, vec![Some(Origin::AsReceived)]);
    let end = sum.end.unwrap();
    assert_eq!(
        (end.packets, end.refused, end.reason),
        (20, 4, StopReason::Normal)
    );
    assert_eq!(got.len(), frames.len());
    for (i, p) in got.iter().enumerate() {
        assert_eq!(&p.rtp[12..], &frames[i][..]);
        assert_eq!(p.unix_nanos, 2_000 + i as u64);
    }

    // Without the key the relay can still list it, and a wrong key is refused clearly.
    let listed = scan(&file[..]).unwrap();
    assert_eq!((listed.packets, listed.end.is_some()), (20, true));
    let wrong = PrivateKey::generate().unwrap();
    let e = read(&file[..], &wrong, |_| {}).unwrap_err();
    assert!(e.to_string().contains("another mailbox key"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plain_leg_is_protected_on_receipt_under_a_fresh_key() {
    let dir = tempdir("plain");
    let key = PrivateKey::generate().unwrap();
    let legs = vec![("caller".to_string(), LegSource::Plain), srtp_leg(2)];
    let mut s = MessageSession::new(&config(&dir, &key), legs, 1).unwrap();
    let frames = tone_frames(440.0, 200);
    let mut tx = sender(2);
    for (i, f) in frames.iter().enumerate() {
        let plain = rtp(8, 100 + i as u16, i as u32 * 160, 7, f);
        s.on_packet(0, TapKind::Rtp, i as u64, &plain, false);
        let other = protect(&mut tx, &rtp(0, 500 + i as u16, 0, 8, &[0xAA; 20]));
        s.on_packet(1, TapKind::Rtp, i as u64, &other, false);
        if i == 0 {
            // A repeated plain packet would reuse keystream: refused.
            s.on_packet(0, TapKind::Rtp, 0, &plain, false);
        }
    }
    assert_eq!(s.stats().refused_replay, 1);
    let info = s.finish(0).unwrap().unwrap();
    let file = std::fs::read(&info.path).unwrap();
    assert!(!contains_any_window(&file, &frames, 8));
    let mut legs = [Vec::new(), Vec::new()];
    let sum = read(&file[..], &key, |p| legs[p.leg as usize].push(p.rtp)).unwrap();
    assert_eq!(sum.legs, vec!["caller".to_string(), "caller".to_string()]);
    assert_eq!(
        sum.origins,
        vec![Some(Origin::Reprotected), Some(Origin::AsReceived)]
    );
    assert_eq!(legs[0].len(), frames.len());
    for (i, p) in legs[0].iter().enumerate() {
        assert_eq!(p, &rtp(8, 100 + i as u16, i as u32 * 160, 7, &frames[i]));
    }
    assert!(legs[1].iter().all(|p| p[12..] == [0xAA; 20]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rekeying_writes_a_second_envelope_and_a_known_roc_is_carried() {
    let dir = tempdir("rekey");
    let key = PrivateKey::generate().unwrap();
    let legs = vec![(
        "caller".to_string(),
        LegSource::Srtp {
            policy: policy(3),
            initial_roc: 5,
        },
    )];
    let mut s = MessageSession::new(&config(&dir, &key), legs, 1).unwrap();
    let mut tx = sender(3);
    relay::srtp::test_hooks::start_rtp_stream_at(&mut tx, 42, (5 << 16) | 65_534);
    for i in 0..6u16 {
        let p = protect(
            &mut tx,
            &rtp(0, 65_534u16.wrapping_add(i), 0, 42, &[i as u8; 10]),
        );
        s.on_packet(0, TapKind::Rtp, 0, &p, false);
    }
    s.rekey(0, policy(4)).unwrap();
    let mut tx2 = sender(4);
    for i in 0..4u16 {
        let p = protect(&mut tx2, &rtp(0, 10 + i, 0, 42, &[0x40 + i as u8; 10]));
        s.on_packet(0, TapKind::Rtp, 0, &p, false);
    }
    assert_eq!(s.stats().stored, 10);
    let info = s.finish(0).unwrap().unwrap();
    let file = std::fs::read(&info.path).unwrap();
    let mut got = Vec::new();
    read(&file[..], &key, |p| got.push(p.rtp[12])).unwrap();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5, 0x40, 0x41, 0x42, 0x43]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn small_message(dir: &Path, key: &PrivateKey) -> Vec<u8> {
    let mut s = MessageSession::new(&config(dir, key), vec![srtp_leg(5)], 1).unwrap();
    let mut tx = sender(5);
    for i in 0..3u16 {
        let p = protect(&mut tx, &rtp(0, i, 0, 1, &[i as u8; 8]));
        s.on_packet(0, TapKind::Rtp, 0, &p, false);
    }
    let info = s.finish(0).unwrap().unwrap();
    std::fs::read(info.path).unwrap()
}

#[test]
fn every_modified_byte_of_a_message_is_refused() {
    let dir = tempdir("tamper");
    let key = PrivateKey::generate().unwrap();
    let file = small_message(&dir, &key);
    read(&file[..], &key, |_| {}).unwrap();
    for i in 0..file.len() {
        let mut m = file.clone();
        m[i] ^= if i % 2 == 0 { 0x01 } else { 0x80 };
        let r = read(&m[..], &key, |_| {});
        assert!(r.is_err(), "modified byte {i} of {} accepted", file.len());
    }
    // Cut anywhere inside a block: refused until recovery; cut at a block boundary: read,
    // and reported incomplete.
    let r = read(&file[..file.len() - 5], &key, |_| {});
    assert!(matches!(r, Err(ReadError::Structure(_))), "{r:?}");
    let end_len = pcapng::le32(&file, file.len() - 4) as usize;
    let sum = read(&file[..file.len() - end_len], &key, |_| {}).unwrap();
    assert!(!sum.is_complete());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn short_of_space_the_recording_is_refused_and_nothing_is_left() {
    let dir = tempdir("full");
    let key = PrivateKey::generate().unwrap();
    let mut cfg = config(&dir, &key);
    cfg.min_free_bytes = u64::MAX;
    let r = MessageSession::new(&cfg, vec![srtp_leg(1)], 1);
    assert!(matches!(r, Err(RecordError::DiskFull { .. })));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // A message that never got a packet leaves nothing either.
    let s = MessageSession::new(&config(&dir, &key), vec![srtp_leg(1)], 1).unwrap();
    assert_eq!(s.finish(0).unwrap(), None);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tshark_reads_the_file_structure() {
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("tshark not installed; skipped");
        return;
    }
    let dir = tempdir("tshark");
    let key = PrivateKey::generate().unwrap();
    let file = small_message(&dir, &key);
    let path = dir.join("m.pcapng");
    std::fs::write(&path, &file).unwrap();
    let out = std::process::Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-o",
            "uat:user_dlts:\"User 0 (DLT=147)\",\"rtp\",\"0\",\"\",\"0\",\"\"",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.interface_name",
            "-e",
            "rtp.seq",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The envelope and end blocks show as records of their own, without RTP.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let rtp: Vec<&str> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rtp, vec!["caller\t0", "caller\t1", "caller\t2"], "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
