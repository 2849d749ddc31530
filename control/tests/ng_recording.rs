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

mod kit;
use kit::daemon_config;

fn start(port_min: u16, data: Option<(&Path, &PrivateKey)>) -> Daemon {
    start_with(port_min, data, |_| {})
}

/// An ng-only daemon on 100 media ports from `port_min`, recording to `data` (directory,
/// operator key) when given, with `tweak` applied to its configuration last.
fn start_with(
    port_min: u16,
    data: Option<(&Path, &PrivateKey)>,
    tweak: impl FnOnce(&mut Config),
) -> Daemon {
    let mut c = daemon_config(port_min, 100);
    c.sip.enabled = false;
    if let Some((dir, key)) = data {
        c.voicemail.data_dir = Some(dir.to_path_buf());
        c.voicemail.recording_public_key = Some(key.public_key().to_base64());
    }
    tweak(&mut c);
    c.validate().unwrap();
    Daemon::start(&c).unwrap()
}

/// Endpoint a's and b's keys in every call here.
fn a_key() -> MasterKey {
    MasterKey::new(Suite::AesCm128HmacSha1_80, &[5; 16], &[6; 14]).unwrap()
}

fn b_key() -> MasterKey {
    MasterKey::new(Suite::AesCm128HmacSha1_80, &[7; 16], &[8; 14]).unwrap()
}

/// An SDES offer or answer body for media at `sock` protected with `key`.
fn sdes_sdp(sock: &std::net::UdpSocket, key: &MasterKey) -> String {
    sdp(
        sock.local_addr().unwrap().port(),
        Some(("1 AES_CM_128_HMAC_SHA1_80", key)),
    )
}

mod ngkit;
use ngkit::*;

fn rec(c: &mut Client, command: &str, call: &str) -> Value {
    c.cmd(Value::dict().with("command", command).with("call-id", call))
}

#[test]
fn recording_is_sealed_to_the_operator_key() {
    let (dir, key, d) = recording_daemon("ngrec", 58600, |_| {});
    let mut c = Client::new(&d);
    let (mut call, _, _) = SdesCall::set_up(&mut c, "rec-1", &[], None, |_| {});

    assert_eq!(s(&rec(&mut c, "start recording", "rec-1"), "result"), "ok");
    let r = rec(&mut c, "start recording", "nope");
    assert_eq!(s(&r, "result"), "error", "{r:?}");

    call.both_ways(0..10, 0);
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
        .any(|w| w == a_key().key() || w == b_key().key()));

    // A second stop is harmless (ok, with a warning).
    let r = rec(&mut c, "stop recording", "rec-1");
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    assert!(!s(&r, "warning").is_empty(), "{r:?}");
    finish(d, &dir);
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

/// An answered SDES call between two local endpoints, with each side's sending and
/// receiving contexts.
struct SdesCall {
    a: std::net::UdpSocket,
    b: std::net::UdpSocket,
    relay_for_a: std::net::SocketAddr,
    relay_for_b: std::net::SocketAddr,
    a_tx: relay::srtp::SrtpContext,
    a_rx: relay::srtp::SrtpContext,
    b_tx: relay::srtp::SrtpContext,
    b_rx: relay::srtp::SrtpContext,
}

impl SdesCall {
    /// Offers and answers `call`, with `offer_flags` in the offer and `answer_extra`
    /// (key, value) in the answer; returns the call and both replies.
    fn set_up(
        c: &mut Client,
        call: &str,
        offer_flags: &[&str],
        answer_extra: Option<(&str, &str)>,
        between: impl FnOnce(&mut Client),
    ) -> (SdesCall, Value, Value) {
        let (a, b) = (endpoint(), endpoint());
        let (a_key, b_key) = (a_key(), b_key());
        let offered = c.cmd(offer(call, "tag-a", &sdes_sdp(&a, &a_key), offer_flags));
        assert_eq!(s(&offered, "result"), "ok", "{offered:?}");
        let (relay_for_b, k) = relay_side(&s(&offered, "sdp"));
        let relay_key_b = k.unwrap().1;
        between(c);
        let mut req = answer(call, "tag-a", "tag-b", &sdes_sdp(&b, &b_key));
        if let Some((k, v)) = answer_extra {
            req = req.with(k, v);
        }
        let answered = c.cmd(req);
        assert_eq!(s(&answered, "result"), "ok", "{answered:?}");
        let (relay_for_a, k) = relay_side(&s(&answered, "sdp"));
        let relay_key_a = k.unwrap().1;
        let call = SdesCall {
            relay_for_a,
            relay_for_b,
            a_tx: ctx(&a_key),
            b_rx: ctx(&relay_key_b),
            b_tx: ctx(&b_key),
            a_rx: ctx(&relay_key_a),
            a,
            b,
        };
        (call, offered, answered)
    }

    /// a → b with sequence number `seq`, checked on arrival.
    fn a_to_b(&mut self, seq: u16) {
        let mut buf = [0u8; 2048];
        let p = protect(&mut self.a_tx, seq);
        self.a.send_to(&p, self.relay_for_a).unwrap();
        let (n, _) = self.b.recv_from(&mut buf).unwrap();
        assert_eq!(self.b_rx.unprotect(&mut buf[..n]).unwrap(), 172);
    }

    /// For each of `seqs`: a → b with it, then b → a with it plus `b_offset`.
    fn both_ways(&mut self, seqs: std::ops::Range<u16>, b_offset: u16) {
        for seq in seqs {
            self.a_to_b(seq);
            self.b_to_a(seq + b_offset);
        }
    }

    /// b → a with sequence number `seq`, checked on arrival.
    fn b_to_a(&mut self, seq: u16) {
        let mut buf = [0u8; 2048];
        let p = protect(&mut self.b_tx, seq);
        self.b.send_to(&p, self.relay_for_b).unwrap();
        let (n, _) = self.a.recv_from(&mut buf).unwrap();
        assert_eq!(self.a_rx.unprotect(&mut buf[..n]).unwrap(), 172);
    }
}

fn recordings_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("recordings"))
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The sequence numbers stored per direction (decrypted and authenticated with `key`),
/// and whether the file was closed with its end block.
fn read_back(path: &Path, key: &PrivateKey) -> ([Vec<u16>; 2], bool) {
    let bytes = std::fs::read(path).unwrap();
    let mut seqs = [Vec::new(), Vec::new()];
    let summary = relay::record::read(&bytes[..], key, |p| {
        assert!(p.rtp[12..].iter().all(|&x| x == 0));
        seqs[p.leg as usize].push(u16::from_be_bytes([p.rtp[2], p.rtp[3]]));
    })
    .unwrap();
    (seqs, summary.end.is_some())
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A daemon (see `start_with`) recording to a fresh directory `sg-{name}-PID`, sealed to
/// a new operator key; the directory and the key come back to read the recordings.
fn recording_daemon(
    name: &str,
    port_min: u16,
    tweak: impl FnOnce(&mut Config),
) -> (std::path::PathBuf, PrivateKey, Daemon) {
    let dir = tempdir(name);
    let key = PrivateKey::generate().unwrap();
    let d = start_with(port_min, Some((&dir, &key)), tweak);
    (dir, key, d)
}

/// Stops `d` at once and removes its recording directory.
fn finish(d: Daemon, dir: &Path) {
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn recording_started_after_a_rollover_decrypts() {
    let (dir, key, d) = recording_daemon("ngrec-roc", 58900, |_| {});
    let mut c = Client::new(&d);
    let (mut call, _, _) = SdesCall::set_up(&mut c, "roc-1", &[], None, |_| {});
    // a → b has rolled over (ROC 1) before the recording starts; b → a stands at 65530
    // (ROC 0) and rolls over once the recording runs.
    for seq in (65500..=65535).chain(0..10) {
        call.a_to_b(seq);
    }
    for seq in 65490..=65530 {
        call.b_to_a(seq);
    }
    assert_eq!(s(&rec(&mut c, "start recording", "roc-1"), "result"), "ok");
    for seq in 10..30 {
        call.a_to_b(seq);
    }
    for seq in (65531..=65535).chain(0..15) {
        call.b_to_a(seq);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s(&rec(&mut c, "stop recording", "roc-1"), "result"), "ok");
    let files = recordings_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let (seqs, closed) = read_back(&files[0], &key);
    assert!(closed);
    // Each direction has its own interface; their order follows the call's monologues.
    let a_side: Vec<u16> = (10..30).collect();
    let b_side: Vec<u16> = (65531..=65535).chain(0..15).collect();
    assert!(
        seqs.contains(&a_side) && seqs.contains(&b_side),
        "stored {seqs:?}"
    );
    finish(d, &dir);
}

#[test]
fn record_call_and_early_start_begin_at_the_answer() {
    let (dir, key, d) = recording_daemon("ngrec-offer", 59000, |_| {});
    let mut c = Client::new(&d);

    // The flag in the offer: no warning about it, recorded from the answer on, closed by
    // delete without any recording command.
    let (mut call, offered, answered) =
        SdesCall::set_up(&mut c, "rc-1", &["record-call"], None, |_| {});
    for r in [&offered, &answered] {
        assert!(!s(r, "warning").contains("record"), "{r:?}");
    }
    call.both_ways(0..10, 100);
    std::thread::sleep(Duration::from_millis(200));
    let r = c.cmd(
        Value::dict()
            .with("command", "delete")
            .with("call-id", "rc-1"),
    );
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let files = recordings_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let (seqs, closed) = read_back(&files[0], &key);
    assert!(closed);
    assert!(seqs.contains(&(0..10).collect()) && seqs.contains(&(100..110).collect()));

    // `start recording` between offer and answer is remembered.
    let (mut call, _, _) = SdesCall::set_up(&mut c, "rc-2", &[], None, |c| {
        let r = rec(c, "start recording", "rc-2");
        assert_eq!(s(&r, "result"), "ok", "{r:?}");
    });
    call.both_ways(0..5, 0);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s(&rec(&mut c, "stop recording", "rc-2"), "result"), "ok");
    let files = recordings_in(&dir);
    assert_eq!(files.len(), 2, "{files:?}");

    // `record-call: no` in the answer cancels the offer's request: nothing recorded.
    let (mut call, _, _) =
        SdesCall::set_up(&mut c, "rc-3", &[], Some(("record-call", "no")), |c| {
            assert_eq!(s(&rec(c, "start recording", "rc-3"), "result"), "ok")
        });
    for seq in 0..5 {
        call.a_to_b(seq);
    }
    let r = rec(&mut c, "stop recording", "rc-3");
    assert!(!s(&r, "warning").is_empty(), "{r:?}");
    assert_eq!(recordings_in(&dir).len(), 2);
    finish(d, &dir);
}

#[test]
fn record_call_without_a_key_warns() {
    let d = start(59100, None);
    let mut c = Client::new(&d);
    let (_call, offered, _) = SdesCall::set_up(&mut c, "nk-1", &["record-call"], None, |_| {});
    assert!(
        s(&offered, "warning").contains("recording-public-key"),
        "{offered:?}"
    );
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn a_call_dropped_for_idle_media_closes_its_recording() {
    let (dir, key, d) = recording_daemon("ngrec-idle", 59200, |c| c.media.idle_timeout = 1);
    let mut c = Client::new(&d);
    let (mut call, _, _) = SdesCall::set_up(&mut c, "idle-1", &["record-call"], None, |_| {});
    call.both_ways(0..5, 0);
    // No more media: the relay drops the call after about a second, and the recording is
    // closed and renamed complete without any signalling.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let done = loop {
        let files = recordings_in(&dir);
        if files.len() == 1 && files[0].extension().is_some_and(|e| e == "pcapng") {
            break files[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not closed: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (seqs, closed) = read_back(&done, &key);
    assert!(closed, "the end block is there");
    assert_eq!(seqs, [(0..5).collect::<Vec<_>>(), (0..5).collect()]);
    let r = c.cmd(
        Value::dict()
            .with("command", "query")
            .with("call-id", "idle-1"),
    );
    assert_eq!(s(&r, "result"), "error", "the call is gone: {r:?}");
    finish(d, &dir);
}

#[test]
fn a_recorded_call_re_keyed_by_a_re_invite_stays_recorded() {
    let (dir, key, d) = recording_daemon("ngrec-rekey", 59300, |_| {});
    let mut c = Client::new(&d);
    let (mut call, offered, answered) =
        SdesCall::set_up(&mut c, "rk-1", &["record-call"], None, |_| {});
    call.both_ways(0..5, 100);
    // A re-INVITE in which both endpoints change their keys.
    let a_key2 = MasterKey::new(Suite::AesCm128HmacSha1_80, &[9; 16], &[10; 14]).unwrap();
    let b_key2 = MasterKey::new(Suite::AesCm128HmacSha1_80, &[11; 16], &[12; 14]).unwrap();
    let r = c.cmd(offer("rk-1", "tag-a", &sdes_sdp(&call.a, &a_key2), &[]).with("to-tag", "tag-b"));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let (relay_for_b, k) = relay_side(&s(&r, "sdp"));
    assert_eq!(relay_for_b, call.relay_for_b);
    let relay_key_b = k.unwrap().1;
    let r = c.cmd(answer(
        "rk-1",
        "tag-a",
        "tag-b",
        &sdes_sdp(&call.b, &b_key2),
    ));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let (relay_for_a, k) = relay_side(&s(&r, "sdp"));
    assert_eq!(relay_for_a, call.relay_for_a);
    let relay_key_a = k.unwrap().1;
    // The endpoints protect with their new keys; each takes the relay's key as signalled
    // (a context kept when the relay's key did not change).
    call.a_tx = ctx(&a_key2);
    call.b_tx = ctx(&b_key2);
    let (_, old_b) = relay_side(&s(&offered, "sdp"));
    if old_b.unwrap().1.key() != relay_key_b.key() {
        call.b_rx = ctx(&relay_key_b);
    }
    let (_, old_a) = relay_side(&s(&answered, "sdp"));
    if old_a.unwrap().1.key() != relay_key_a.key() {
        call.a_rx = ctx(&relay_key_a);
    }
    call.both_ways(5..10, 100);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s(&rec(&mut c, "stop recording", "rk-1"), "result"), "ok");
    let files = recordings_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let (mut seqs, closed) = read_back(&files[0], &key);
    assert!(closed);
    seqs.sort();
    assert_eq!(seqs, [(0..10).collect::<Vec<_>>(), (100..110).collect()]);
    finish(d, &dir);
}

fn metrics_page(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    page
}

/// The per-user policy on an ng call (its `metadata` names the user); a `stop recording`
/// is respected by the policy at the next re-offer/answer; the metrics count it all.
#[test]
fn the_policy_records_ng_calls_and_respects_a_stop() {
    let (dir, key, d) = recording_daemon("ngrec-policy", 59500, |c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        c.voicemail.record_users = vec!["sip:alice@example.org".into()];
    });
    let mut c = Client::new(&d);
    // Not listed: not recorded.
    let (mut other, _, _) = SdesCall::set_up(&mut c, "pol-0", &[], None, |_| {});
    other.a_to_b(0);
    let meta = |v: Value| v.with("metadata", "sip:alice@example.org, sip:bob@example.org");
    let a = endpoint();
    let a_key = a_key();
    let offer_sdp = sdes_sdp(&a, &a_key);
    let r = c.cmd(meta(offer("pol-1", "tag-a", &offer_sdp, &[])));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let b = endpoint();
    let answer_sdp = sdes_sdp(&b, &b_key());
    let r = c.cmd(answer("pol-1", "tag-a", "tag-b", &answer_sdp));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let (relay_for_a, _) = relay_side(&s(&r, "sdp"));
    let mut a_tx = ctx(&a_key);
    for seq in 0..5 {
        a.send_to(&protect(&mut a_tx, seq), relay_for_a).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let page = metrics_page(d.metrics_addr().unwrap());
    assert!(page.contains("srtpgate_recordings 1\n"), "{page}");
    assert!(
        page.contains("srtpgate_recordings_started_total 1\n"),
        "{page}"
    );
    assert_eq!(s(&rec(&mut c, "stop recording", "pol-1"), "result"), "ok");
    // A re-offer and answer: the policy does not start it again.
    let r = c.cmd(meta(
        offer("pol-1", "tag-a", &offer_sdp, &[]).with("to-tag", "tag-b"),
    ));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let r = c.cmd(answer("pol-1", "tag-a", "tag-b", &answer_sdp));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    for seq in 5..10 {
        a.send_to(&protect(&mut a_tx, seq), relay_for_a).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let files = recordings_in(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let (seqs, closed) = read_back(&files[0], &key);
    assert!(closed);
    assert_eq!(seqs[0], (0..5).collect::<Vec<_>>(), "{seqs:?}");
    let page = metrics_page(d.metrics_addr().unwrap());
    for line in [
        "srtpgate_recordings 0\n",
        "srtpgate_recordings_waiting 0\n",
        "srtpgate_recordings_started_total 1\n",
        "srtpgate_recordings_failed_total 0\n",
        "srtpgate_recordings_closed_total{outcome=\"stored\"} 1\n",
    ] {
        assert!(page.contains(line), "{line} in {page}");
    }
    finish(d, &dir);
}

/// A recording the disk cannot take (less free space than `min-free-bytes`) is refused
/// with a clear error and counted; the call goes on.
#[test]
fn a_recording_the_disk_cannot_take_is_refused_and_counted() {
    let (dir, _key, d) = recording_daemon("ngrec-full", 59600, |c| {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        c.voicemail.min_free_bytes = u64::MAX;
    });
    let mut c = Client::new(&d);
    let (mut call, _, _) = SdesCall::set_up(&mut c, "full-1", &[], None, |_| {});
    let r = rec(&mut c, "start recording", "full-1");
    assert_eq!(s(&r, "result"), "error", "{r:?}");
    assert!(s(&r, "error-reason").contains("cannot start"), "{r:?}");
    call.a_to_b(0);
    call.b_to_a(0);
    let page = metrics_page(d.metrics_addr().unwrap());
    assert!(
        page.contains("srtpgate_recordings_failed_total 1\n"),
        "{page}"
    );
    assert!(page.contains("srtpgate_recordings 0\n"), "{page}");
    assert!(recordings_in(&dir)
        .iter()
        .all(|p| !p.to_string_lossy().ends_with(".pcapng")));
    finish(d, &dir);
}
