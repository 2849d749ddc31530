//! Crashes and full disks, in child processes (this test binary run again with an
//! environment variable that turns one test into the child):
//! - the recorder is killed with SIGKILL mid-message; recovery keeps every whole block and
//!   the mailbox key reads every packet the recorder had stored;
//! - the file size limit (RLIMIT_FSIZE, which fails writes the way a full disk does) is hit
//!   mid-message; the message is closed at its last whole block and reads back intact.

mod record_common;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use record_common::*;
use relay::engine::TapKind;
use relay::record::{
    read, recover_dir, FsyncPolicy, Leg, LegSource, MessageSession, PrivateKey, PublicKey,
    Recorder, RecorderConfig, Recovered, StopReason,
};

const CHILD_DIR: &str = "SRTPGATE_RECORD_CHILD_DIR";
const CHILD_KEY: &str = "SRTPGATE_RECORD_CHILD_KEY";
const CHILD_MODE: &str = "SRTPGATE_RECORD_CHILD_MODE";

fn config(dir: &Path, recipient: PublicKey) -> RecorderConfig {
    RecorderConfig {
        dir: dir.to_path_buf(),
        mailbox_id: "crash-box".into(),
        recipient,
        fsync: FsyncPolicy::Never,
        min_free_bytes: 0,
        max_duration: None,
        poll_interval: Duration::from_millis(2),
    }
}

fn child_env() -> Option<(PathBuf, PublicKey, String)> {
    let dir = std::env::var(CHILD_DIR).ok()?;
    let key = PublicKey::from_base64(&std::env::var(CHILD_KEY).ok()?).ok()?;
    Some((dir.into(), key, std::env::var(CHILD_MODE).ok()?))
}

/// The child: records from the engine until killed, printing how much is stored.
#[test]
fn child_recorder() {
    let Some((dir, key, mode)) = child_env() else {
        return;
    };
    if mode != "kill" {
        return;
    }
    let (engine, pa, taps) = engine_with_tap(52200, 11);
    let rec = Recorder::start(
        config(&dir, key),
        vec![Leg {
            name: "caller".into(),
            source: LegSource::Srtp {
                policy: policy(11),
                initial_roc: 0,
            },
            tap: taps,
        }],
    )
    .unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut tx = sender(11);
    for i in 0u32.. {
        let seq = i as u16;
        let p = protect(
            &mut tx,
            &rtp(0, seq, i * 160, 0xbeef, &i.to_be_bytes().repeat(40)),
        );
        phone.send_to(&p, port_addr(pa)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
        if i % 10 == 0 {
            println!("stored {}", rec.stats().stored);
        }
    }
    drop(engine);
}

/// The child: writes until the file size limit stops it, then closes the message.
#[test]
fn child_disk_full() {
    let Some((dir, key, mode)) = child_env() else {
        return;
    };
    if mode != "full" {
        return;
    }
    // SAFETY: plain libc calls with valid arguments, in a process of our own.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: 6000,
            rlim_max: 6000,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let legs = vec![(
        "caller".to_string(),
        LegSource::Srtp {
            policy: policy(12),
            initial_roc: 0,
        },
    )];
    let mut s = MessageSession::new(&config(&dir, key), legs, 1).unwrap();
    let mut tx = sender(12);
    for i in 0..200u16 {
        let p = protect(&mut tx, &rtp(0, i, 0, 5, &[i as u8; 160]));
        s.on_packet(0, TapKind::Rtp, i as u64, &p, false);
    }
    let st = s.stats();
    let stopped = s.writer().stopped();
    let info = s.finish(0).unwrap().unwrap();
    println!(
        "stored {} discarded {} stopped {:?} complete {}",
        st.stored, st.discarded, stopped, info.complete
    );
}

fn run_child(test: &str, mode: &str, dir: &Path, key: &PrivateKey) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_KEY, key.public_key().to_base64())
        .env(CHILD_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn kill_9_mid_recording_then_recovery_keeps_what_was_stored() {
    if child_env().is_some() {
        return;
    }
    let dir = tempdir("kill");
    let key = PrivateKey::generate().unwrap();
    let mut child = run_child("child_recorder", "kill", &dir, &key);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reported = 0u64;
    while reported < 150 && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(at) = line.find("stored ") {
            reported = line[at + 7..].trim().parse().unwrap_or(0);
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(reported >= 150, "the child stored only {reported} packets");

    let parts: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(parts.len(), 1, "one .part file expected");
    let recovered = recover_dir(&dir).unwrap();
    assert_eq!(recovered.len(), 1);
    let Ok(Recovered::Message { path, packets, .. }) = &recovered[0].1 else {
        panic!("{:?}", recovered[0].1);
    };
    assert!(*packets >= reported, "{packets} < {reported}");
    let file = std::fs::read(path).unwrap();
    let mut seqs = Vec::new();
    let sum = read(&file[..], &key, |p| {
        let i = u32::from_be_bytes([p.rtp[12], p.rtp[13], p.rtp[14], p.rtp[15]]);
        assert_eq!(p.rtp[12..], i.to_be_bytes().repeat(40)[..]);
        seqs.push(i);
    })
    .unwrap();
    assert!(!sum.is_complete(), "a killed recording has no end block");
    assert_eq!(seqs.len() as u64, *packets);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_closes_the_message_at_its_last_whole_block() {
    if child_env().is_some() {
        return;
    }
    let dir = tempdir("full");
    let key = PrivateKey::generate().unwrap();
    let child = run_child("child_disk_full", "full", &dir, &key);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // libtest may print "test child_disk_full ... " on the same line.
    let line = text
        .lines()
        .find_map(|l| l.find("stored ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no report in {text}"));
    let stored: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(line.contains("stopped Some(DiskFull)"), "{line}");
    assert!(stored > 5 && stored < 200, "{line}");

    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".pcapng"));
    let file = std::fs::read(&files[0]).unwrap();
    assert!(file.len() <= 6000);
    let mut n = 0u64;
    let sum = read(&file[..], &key, |p| {
        assert_eq!(p.rtp[12..], [n as u8; 160][..]);
        n += 1;
    })
    .unwrap();
    assert_eq!(n, stored);
    if let Some(end) = sum.end {
        assert_eq!(end.reason, StopReason::DiskFull);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
