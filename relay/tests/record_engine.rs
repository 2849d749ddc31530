//! Recording from the engine: an SRTP flow with an as-received tap, a G.711 tone sent over
//! UDP, the recorder on its own thread. The stored payloads are the caller's ciphertext,
//! the mailbox key gets the tone back, and forged packets are neither relayed nor stored.

mod record_common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use record_common::*;
use relay::record::{read, FsyncPolicy, Leg, LegSource, PrivateKey, Recorder, RecorderConfig};

#[test]
fn an_srtp_deposit_is_recorded_as_received_and_opens_with_the_mailbox_key() {
    let dir = std::env::temp_dir().join(format!("srtpgate-record-engine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (engine, pa, taps) = engine_with_tap(52000, 7);
    let key = PrivateKey::generate().unwrap();
    let rec = Recorder::start(
        RecorderConfig {
            dir: dir.clone(),
            mailbox_id: "box-7".into(),
            recipient: key.public_key(),
            fsync: FsyncPolicy::EveryPackets(10),
            min_free_bytes: 1 << 20,
            max_duration: None,
            poll_interval: Duration::from_millis(5),
        },
        vec![Leg {
            name: "caller".into(),
            source: LegSource::Srtp {
                policy: policy(7),
                initial_roc: 0,
            },
            tap: taps,
        }],
    )
    .unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut tx = sender(7);
    let frames = tone_frames(1000.0, 1000);
    for (i, f) in frames.iter().enumerate() {
        let p = protect(&mut tx, &rtp(0, 3000 + i as u16, i as u32 * 160, 0xcafe, f));
        phone.send_to(&p, port_addr(pa)).unwrap();
        if i % 10 == 0 {
            let forged = protect(&mut sender(8), &rtp(0, 60_000 + i as u16, 0, 0xcafe, f));
            phone.send_to(&forged, port_addr(pa)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.stats().stored < frames.len() as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = rec.stats();
    let info = rec.stop().unwrap().unwrap();
    let (counters, _) = engine.query(pa).unwrap();
    engine.shutdown();
    assert_eq!(stats.stored, 50, "{stats:?}");
    assert_eq!(stats.refused_auth, 5, "{stats:?}");
    assert_eq!(counters.auth_failures, 5);
    assert!(info.complete);

    let file = std::fs::read(&info.path).unwrap();
    assert!(
        !contains_any_window(&file, &frames, 8),
        "the tone's G.711 bytes are in the file"
    );
    let mut got = Vec::new();
    let sum = read(&file[..], &key, |p| got.push(p.rtp)).unwrap();
    assert!(sum.is_complete());
    assert_eq!(got.len(), 50);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(&p[12..], &frames[i][..], "packet {i}");
    }
    let wrong = PrivateKey::generate().unwrap();
    assert!(read(&file[..], &wrong, |_| {}).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
