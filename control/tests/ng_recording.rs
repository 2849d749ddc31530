//! ng `start recording` / `stop recording`: both directions of an SDES call written in the
//! sealed voicemail format to the operator's recording public key; readable with the
//! private key only, no plaintext on disk, and a clear error when recording is not set up.

use std::path::Path;
use std::time::Duration;

use control::config::Config;
use control::daemon::Daemon;
use control::ng::bencode::Value;
use relay::record::PrivateKey;
use relay::srtp::{MasterKey, Suite};

fn start(port_min: u16, data: Option<(&Path, &PrivateKey)>) -> Daemon {
    let mut c = Config::default();
    c.ng.listen = "127.0.0.1:0".parse().unwrap();
    c.metrics.listen = None;
    c.sip.enabled = false;
    c.media.port_min = port_min;
    c.media.port_max = port_min + 99;
    c.media.workers = 1;
    c.media.pin = false;
    if let Some((dir, key)) = data {
        c.voicemail.data_dir = Some(dir.to_path_buf());
        c.voicemail.recording_public_key = Some(key.public_key().to_base64());
    }
    c.validate().unwrap();
    Daemon::start(&c).unwrap()
}

mod ngkit;
use ngkit::*;

fn rec(c: &mut Client, command: &str, call: &str) -> Value {
    c.cmd(Value::dict().with("command", command).with("call-id", call))
}

#[test]
fn recording_is_sealed_to_the_operator_key() {
    let dir = std::env::temp_dir().join(format!("sg-ngrec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key = PrivateKey::generate().unwrap();
    let d = start(58600, Some((&dir, &key)));
    let mut c = Client::new(&d);
    let (a, b) = (endpoint(), endpoint());
    let suite = Suite::AesCm128HmacSha1_80;
    let a_key = MasterKey::new(suite, &[5; 16], &[6; 14]).unwrap();
    let b_key = MasterKey::new(suite, &[7; 16], &[8; 14]).unwrap();
    let r = c.cmd(offer(
        "rec-1",
        "tag-a",
        &sdp(
            a.local_addr().unwrap().port(),
            Some(("1 AES_CM_128_HMAC_SHA1_80", &a_key)),
        ),
        &[],
    ));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let (relay_for_b, k) = relay_side(&s(&r, "sdp"));
    let relay_key_b = k.unwrap().1;
    let r = c.cmd(answer(
        "rec-1",
        "tag-a",
        "tag-b",
        &sdp(
            b.local_addr().unwrap().port(),
            Some(("1 AES_CM_128_HMAC_SHA1_80", &b_key)),
        ),
    ));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let (relay_for_a, k) = relay_side(&s(&r, "sdp"));
    let relay_key_a = k.unwrap().1;

    assert_eq!(s(&rec(&mut c, "start recording", "rec-1"), "result"), "ok");
    let r = rec(&mut c, "start recording", "nope");
    assert_eq!(s(&r, "result"), "error", "{r:?}");

    let mut buf = [0u8; 2048];
    let (mut a_tx, mut b_rx) = (ctx(&a_key), ctx(&relay_key_b));
    let (mut b_tx, mut a_rx) = (ctx(&b_key), ctx(&relay_key_a));
    for seq in 0..10u16 {
        let p = protect(&mut a_tx, seq);
        a.send_to(&p, relay_for_a).unwrap();
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(b_rx.unprotect(&mut buf[..n]).unwrap(), 172);
        let p = protect(&mut b_tx, seq);
        b.send_to(&p, relay_for_b).unwrap();
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(a_rx.unprotect(&mut buf[..n]).unwrap(), 172);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s(&rec(&mut c, "stop recording", "rec-1"), "result"), "ok");

    let files: Vec<_> = std::fs::read_dir(dir.join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".pcapng"), "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    // The plaintext payload (0x00 bytes after the header, as protect() makes it) is
    // nowhere in the file as a run: the payloads are stored encrypted.
    assert!(!bytes.windows(64).any(|w| w.iter().all(|&x| x == 0)));
    let mut per_leg = [0usize; 2];
    let summary = relay::record::read(&bytes[..], &key, |p| {
        per_leg[p.leg as usize] += 1;
        assert!(p.rtp[12..].iter().all(|&x| x == 0));
    })
    .unwrap();
    assert_eq!(summary.legs.len(), 2, "{:?}", summary.legs);
    assert_eq!(per_leg, [10, 10]);
    let other = PrivateKey::generate().unwrap();
    assert!(relay::record::read(&bytes[..], &other, |_| {}).is_err());
    assert!(!bytes
        .windows(16)
        .any(|w| w == a_key.key() || w == b_key.key()));

    // A second stop is harmless (ok, with a warning).
    let r = rec(&mut c, "stop recording", "rec-1");
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    assert!(!s(&r, "warning").is_empty(), "{r:?}");
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn recording_without_a_key_is_a_clear_error() {
    let d = start(58800, None);
    let mut c = Client::new(&d);
    let r = rec(&mut c, "start recording", "x");
    assert_eq!(s(&r, "result"), "error");
    assert!(
        s(&r, "error-reason").contains("recording-public-key"),
        "{r:?}"
    );
    d.drain_and_stop(Duration::ZERO);
}
