//! ng `start recording` / `stop recording`: both directions of an SDES call written in the
//! sealed voicemail format to the operator's recording public key; readable with the
//! private key only, no plaintext on disk, and a clear error when recording is not set up.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use control::config::Config;
use control::daemon::Daemon;
use control::ng::bencode::{decode, Value};
use control::sdp::SessionDescription;
use relay::record::PrivateKey;
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

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

struct Client {
    sock: UdpSocket,
    to: SocketAddr,
    seq: u32,
}

impl Client {
    fn new(d: &Daemon) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Client {
            sock,
            to: d.ng_addr(),
            seq: 0,
        }
    }

    fn raw(&self, datagram: &[u8]) -> Vec<u8> {
        self.sock.send_to(datagram, self.to).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).expect("an ng reply");
        buf.truncate(n);
        buf
    }

    /// Sends `dict` under a fresh Kamailio-style cookie; returns (cookie, decoded reply).
    fn send(&mut self, dict: Value) -> (String, Value) {
        self.seq += 1;
        let cookie = format!("1_4242_{}", self.seq);
        let mut d = format!("{cookie} ").into_bytes();
        d.extend_from_slice(&dict.encode());
        let reply = self.raw(&d);
        let sp = reply.iter().position(|b| *b == b' ').unwrap();
        assert_eq!(&reply[..sp], cookie.as_bytes());
        (cookie, decode(&reply[sp + 1..]).unwrap())
    }

    fn cmd(&mut self, dict: Value) -> Value {
        self.send(dict).1
    }
}

fn s(v: &Value, k: &str) -> String {
    String::from_utf8(
        v.get(k.as_bytes())
            .and_then(|x| x.as_bytes())
            .unwrap_or_default()
            .to_vec(),
    )
    .unwrap()
}

fn sdp(port: u16, crypto: Option<(&str, &MasterKey)>) -> String {
    let proto = if crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut s = format!(
        "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    if let Some((line, key)) = crypto {
        s.push_str(&format!("a=crypto:{line} {}\r\n", key.to_inline()));
    }
    s
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

/// The relay port, and the first crypto key with its suite, from a rewritten SDP.
fn relay_side(text: &str) -> (SocketAddr, Option<(Suite, MasterKey)>) {
    let sdp = SessionDescription::parse(text).unwrap();
    let m = &sdp.media[0];
    let ip = sdp.connection_for(m).unwrap().ip().unwrap();
    let key = m.cryptos().next().map(|c| {
        let c = c.unwrap();
        let suite = c.suite().unwrap();
        (suite, c.master_keys().unwrap().remove(0))
    });
    (SocketAddr::new(ip, m.port), key)
}

fn offer(call: &str, from: &str, sdp: &str, flags: &[&str]) -> Value {
    let mut d = Value::dict()
        .with("command", "offer")
        .with("call-id", call)
        .with("from-tag", from)
        .with("sdp", sdp);
    if !flags.is_empty() {
        d = d.with(
            "flags",
            Value::List(flags.iter().map(Value::string).collect()),
        );
    }
    d
}

fn answer(call: &str, from: &str, to: &str, sdp: &str) -> Value {
    Value::dict()
        .with("command", "answer")
        .with("call-id", call)
        .with("from-tag", from)
        .with("to-tag", to)
        .with("sdp", sdp)
}

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

fn ctx(k: &MasterKey) -> SrtpContext {
    SrtpContext::new(Policy::new(Suite::AesCm128HmacSha1_80, k.clone())).unwrap()
}

fn protect(c: &mut SrtpContext, seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172 + 10];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&[0, 0, 0, 9]);
    let n = c.protect(&mut p, 172).unwrap();
    p.truncate(n);
    p
}
