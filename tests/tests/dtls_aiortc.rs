//! DTLS-SRTP and ICE against an independent WebRTC stack: aiortc (PyPI) through
//! `tests/scripts/webrtc_peer.py`, bridged by srtpgate to an SDES-SRTP endpoint, a plain
//! RTP endpoint, or a second aiortc peer (separate handshakes per leg). The SDES and plain
//! endpoints are srtpgate's own SRTP code here, which the libsrtp tests check separately.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use control::config::Config;
use control::daemon::Daemon;
use control::ng::bencode::{decode, Value};
use control::sdp::SessionDescription;
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

fn aiortc_available() {
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    if ok(Command::new("python3").args(["-c", "import aiortc"])) {
        return;
    }
    let _ = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "aiortc",
        ])
        .status();
    assert!(
        ok(Command::new("python3").args(["-c", "import aiortc"])),
        "aiortc is needed: python3 -m pip install aiortc"
    );
}

fn start(port_min: u16) -> Daemon {
    aiortc_available();
    let mut c = Config::default();
    c.ng.listen = "127.0.0.1:0".parse().unwrap();
    c.metrics.listen = None;
    c.media.port_min = port_min;
    c.media.port_max = port_min + 99;
    c.media.workers = 1;
    c.media.pin = false;
    c.dtls.handshake_timeout = 8;
    Daemon::start(&c).unwrap()
}

fn text(v: &Value, k: &str) -> String {
    String::from_utf8_lossy(
        v.get(k.as_bytes())
            .and_then(|x| x.as_bytes())
            .unwrap_or_default(),
    )
    .into_owned()
}

fn offer(call: &str, sdp: &str, extra: &[(&str, Value)]) -> String {
    let mut d = Value::dict()
        .with("command", "offer")
        .with("call-id", call)
        .with("from-tag", "a")
        .with("sdp", sdp);
    for (k, v) in extra {
        d = d.with(k, v.clone());
    }
    text(&ng_daemon(d), "sdp")
}

thread_local! {
    static DAEMON: std::cell::Cell<Option<SocketAddr>> = const { std::cell::Cell::new(None) };
}

fn ng_daemon(dict: Value) -> Value {
    let addr = DAEMON.with(|d| d.get()).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut msg = b"aiortc_2 ".to_vec();
    msg.extend_from_slice(&dict.encode());
    sock.send_to(&msg, addr).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let sp = buf.iter().position(|b| *b == b' ').unwrap();
    let v = decode(&buf[sp + 1..n]).unwrap();
    assert_eq!(text(&v, "result"), "ok", "{v:?}");
    v
}

fn answer(call: &str, sdp: &str) -> String {
    let d = Value::dict()
        .with("command", "answer")
        .with("call-id", call)
        .with("from-tag", "a")
        .with("to-tag", "b")
        .with("sdp", sdp);
    text(&ng_daemon(d), "sdp")
}

/// An aiortc peer speaking one JSON object per line.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn(mode: &str, seconds: u32) -> Peer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/webrtc_peer.py");
        let mut child = Command::new("python3")
            .args([script, mode, "--seconds", &seconds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    fn read(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn sdp(&mut self) -> String {
        self.read()["sdp"].as_str().unwrap().to_string()
    }

    fn give(&mut self, sdp: &str) {
        let line = serde_json::json!({ "sdp": sdp }).to_string();
        writeln!(self.stdin, "{line}").unwrap();
    }

    /// Waits for the peer's report: audio frames received.
    fn frames(mut self) -> u64 {
        let r = self.read();
        let _ = self.child.wait();
        r["frames"].as_u64().unwrap_or(0)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SDES or plain RTP endpoint: sends 20 ms PCMU packets to the relay and counts what
/// it can unprotect (or, plain, what parses as RTP).
struct Endpoint {
    sock: UdpSocket,
    key: Option<(Suite, MasterKey)>,
}

impl Endpoint {
    fn new(key: Option<(Suite, MasterKey)>) -> Endpoint {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Endpoint { sock, key }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn sdp(&self, tag: u32) -> String {
        let (proto, crypto) = match &self.key {
            Some((s, k)) => (
                "RTP/SAVP",
                format!("a=crypto:{tag} {s} {}\r\n", k.to_inline()),
            ),
            None => ("RTP/AVP", String::new()),
        };
        format!(
            "v=0\r\no=- 9 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n{crypto}a=sendrecv\r\n",
            self.port()
        )
    }

    /// Runs media for `secs` against `relay`, receiving with `rx` (srtpgate's key toward
    /// this endpoint); returns packets received intact.
    fn run(self, relay: SocketAddr, rx: Option<(Suite, MasterKey)>, secs: u64) -> JoinHandle<u64> {
        std::thread::spawn(move || {
            let mut tx = self
                .key
                .map(|(s, k)| SrtpContext::new(Policy::new(s, k)).unwrap());
            let mut rx = rx.map(|(s, k)| SrtpContext::new(Policy::new(s, k)).unwrap());
            let end = Instant::now() + Duration::from_secs(secs);
            let (mut seq, mut got) = (0u16, 0u64);
            let mut buf = [0u8; 2048];
            while Instant::now() < end {
                let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78];
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                pkt.extend([0xFFu8; 160]);
                let len = pkt.len();
                pkt.resize(len + 64, 0);
                let n = match tx.as_mut() {
                    Some(c) => c.protect(&mut pkt, len).unwrap(),
                    None => len,
                };
                let _ = self.sock.send_to(&pkt[..n], relay);
                seq = seq.wrapping_add(1);
                if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                    let ok = match rx.as_mut() {
                        Some(c) => c.unprotect(&mut buf[..n]).is_ok(),
                        None => n > 12 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 0,
                    };
                    got += u64::from(ok);
                }
            }
            got
        })
    }
}

/// srtpgate's address, and its first crypto line (suite, key, tag), from a rewritten SDP.
fn relay_side(sdp: &str) -> (SocketAddr, Option<(Suite, MasterKey, u32)>) {
    let sdp = SessionDescription::parse(sdp).unwrap();
    let m = &sdp.media[0];
    let ip = sdp.connection_for(m).unwrap().ip().unwrap();
    let key = m.cryptos().next().map(|c| {
        let c = c.unwrap();
        (
            c.suite().unwrap(),
            c.master_keys().unwrap().remove(0),
            c.tag,
        )
    });
    (SocketAddr::new(ip, m.port), key)
}

fn fresh(suite: Suite) -> MasterKey {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; suite.key_salt_len()];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    MasterKey::from_key_salt(suite, &b).unwrap()
}

fn use_daemon(d: &Daemon) {
    DAEMON.with(|c| c.set(Some(d.ng_addr())));
}

#[test]
fn webrtc_offer_bridged_to_sdes_and_to_plain_rtp() {
    let d = start(42000);
    use_daemon(&d);
    for (call, sdes) in [("w2s", true), ("w2p", false)] {
        let mut web = Peer::spawn("offer", 6);
        let proto = if sdes { "RTP/SAVP" } else { "RTP/AVP" };
        let toward = offer(
            call,
            &web.sdp(),
            &[
                ("transport-protocol", Value::string(proto)),
                ("ICE", Value::string("remove")),
            ],
        );
        assert!(
            !toward.contains("fingerprint") && !toward.contains("ice-"),
            "{toward}"
        );
        let (relay, ours) = relay_side(&toward);
        let ep_key = ours.as_ref().map(|(s, _, _)| (*s, fresh(*s)));
        let tag = ours.as_ref().map_or(1, |o| o.2);
        let ep = Endpoint::new(ep_key);
        let back = answer(call, &ep.sdp(tag));
        assert!(
            back.contains("UDP/TLS/RTP/SAVPF") && back.contains("a=setup:active"),
            "{back}"
        );
        assert!(back.contains("a=ice-lite") && back.contains("a=fingerprint:sha-256"));
        web.give(&back);
        let got = ep
            .run(relay, ours.map(|(s, k, _)| (s, k)), 5)
            .join()
            .unwrap();
        let frames = web.frames();
        assert!(
            got > 50,
            "{call}: the endpoint got {got} packets from the WebRTC peer"
        );
        assert!(
            frames > 50,
            "{call}: the WebRTC peer decoded {frames} frames"
        );
    }
    let s = &d.metrics().security;
    assert_eq!(s.dtls_handshakes.load(Ordering::Relaxed), 2);
    assert!(s.stun_requests.load(Ordering::Relaxed) > 0);
}

#[test]
fn sdes_offer_answered_by_webrtc() {
    let d = start(42200);
    use_daemon(&d);
    let suite = Suite::AesCm128HmacSha1_80;
    let ep = Endpoint::new(Some((suite, fresh(suite))));
    let extra = [
        ("transport-protocol", Value::string("UDP/TLS/RTP/SAVPF")),
        ("ICE", Value::string("force")),
        ("flags", Value::List(vec![Value::string("generate-mid")])),
    ];
    let toward = offer("s2w", &ep.sdp(1), &extra);
    assert!(
        toward.contains("a=setup:actpass") && toward.contains("a=ice-ufrag"),
        "{toward}"
    );
    let mut web = Peer::spawn("answer", 6);
    web.give(&toward);
    let back = answer("s2w", &web.sdp());
    assert!(
        back.contains("RTP/SAVP ") && back.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80"),
        "{back}"
    );
    let (relay, ours) = relay_side(&back);
    let got = ep
        .run(relay, ours.map(|(s, k, _)| (s, k)), 5)
        .join()
        .unwrap();
    let frames = web.frames();
    assert!(got > 50, "the SDES endpoint got {got} packets");
    assert!(frames > 50, "the WebRTC peer decoded {frames} frames");
    assert_eq!(
        d.metrics().security.dtls_handshakes.load(Ordering::Relaxed),
        1
    );
}

#[test]
fn webrtc_to_webrtc_with_a_handshake_per_leg() {
    let d = start(42400);
    use_daemon(&d);
    let mut a = Peer::spawn("offer", 6);
    let a_sdp = a.sdp();
    let toward_b = offer("w2w", &a_sdp, &[]);
    let mut b = Peer::spawn("answer", 6);
    b.give(&toward_b);
    let b_sdp = b.sdp();
    let toward_a = answer("w2w", &b_sdp);
    a.give(&toward_a);
    // Never end-to-end: each peer sees srtpgate's certificate, not the other peer's.
    let fp = |s: &str| {
        let sdp = SessionDescription::parse(s).unwrap();
        sdp.fingerprints_for(&sdp.media[0]).unwrap()[0]
            .digest
            .clone()
    };
    assert_eq!(fp(&toward_a), fp(&toward_b));
    assert_ne!(fp(&toward_b), fp(&a_sdp));
    let (fa, fb) = (a.frames(), b.frames());
    assert!(fa > 50 && fb > 50, "frames: offerer {fa}, answerer {fb}");
    assert_eq!(
        d.metrics().security.dtls_handshakes.load(Ordering::Relaxed),
        2
    );
}

#[test]
fn wrong_fingerprint_fails_the_leg() {
    let d = start(42600);
    use_daemon(&d);
    let mut web = Peer::spawn("offer", 4);
    let sdp = web.sdp();
    // Change one digit of every fingerprint srtpgate is told about.
    let bad: String = sdp
        .lines()
        .map(|l| match l.strip_prefix("a=fingerprint:") {
            Some(v) => {
                let flipped = if v.ends_with('0') { '1' } else { '0' };
                format!("a=fingerprint:{}{flipped}\r\n", &v[..v.len() - 1])
            }
            None => format!("{l}\n"),
        })
        .collect();
    let suite = Suite::AesCm128HmacSha1_80;
    let toward = offer(
        "bad",
        &bad,
        &[("transport-protocol", Value::string("RTP/SAVP"))],
    );
    let (relay, ours) = relay_side(&toward);
    let ep = Endpoint::new(Some((suite, fresh(suite))));
    let tag = ours.as_ref().map_or(1, |o| o.2);
    let ep = Endpoint {
        key: ours.as_ref().map(|(s, _, _)| (*s, fresh(*s))),
        ..ep
    };
    web.give(&answer("bad", &ep.sdp(tag)));
    let got = ep
        .run(relay, ours.map(|(s, k, _)| (s, k)), 3)
        .join()
        .unwrap();
    let _ = web.frames();
    let s = &d.metrics().security;
    assert_eq!(got, 0, "no media through a leg whose handshake failed");
    assert_eq!(s.dtls_handshakes.load(Ordering::Relaxed), 0);
    assert!(s.dtls_fingerprint_mismatch.load(Ordering::Relaxed) >= 1);
}
