//! DTLS-SRTP and ICE-lite legs through the daemon's ng socket, with hostile or silent
//! peers: a handshake that never completes (retransmitted, then timed out), DTLS from an
//! unexpected source, STUN with a bad MESSAGE-INTEGRITY, a STUN flood, and what srtpgate
//! writes into the SDP. Each is rejected and counted. (Interop with a real WebRTC stack,
//! aiortc, is in tests/tests/dtls_aiortc.rs.)

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use control::daemon::Daemon;
use control::ice::stun::{attr, Message, MessageWriter, BINDING_REQUEST, BINDING_SUCCESS};
use control::ng::bencode::{decode, Value};
use control::sdp::{SessionDescription, Setup};

mod kit;
use kit::daemon_config;

fn start(port_min: u16) -> Daemon {
    let mut c = daemon_config(port_min, 100);
    c.dtls.handshake_timeout = 3;
    Daemon::start(&c).unwrap()
}

struct Ng {
    sock: UdpSocket,
    to: SocketAddr,
    seq: u32,
}

impl Ng {
    fn new(d: &Daemon) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Ng {
            sock,
            to: d.ng_addr(),
            seq: 0,
        }
    }

    fn cmd(&mut self, dict: Value) -> Value {
        self.seq += 1;
        let cookie = format!("dtls_{}", self.seq);
        let mut d = format!("{cookie} ").into_bytes();
        d.extend_from_slice(&dict.encode());
        self.sock.send_to(&d, self.to).unwrap();
        let mut buf = vec![0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).expect("an ng reply");
        let sp = buf.iter().position(|b| *b == b' ').unwrap();
        decode(&buf[sp + 1..n]).unwrap()
    }
}

fn text(v: &Value, k: &str) -> String {
    String::from_utf8_lossy(
        v.get(k.as_bytes())
            .and_then(|x| x.as_bytes())
            .unwrap_or_default(),
    )
    .into_owned()
}

fn request(command: &str, call: &str, sdp: &str, extra: &[(&str, Value)]) -> Value {
    let mut d = Value::dict()
        .with("command", command)
        .with("call-id", call)
        .with("from-tag", "caller")
        .with("sdp", sdp);
    if command == "answer" {
        d = d.with("to-tag", "callee");
    }
    for (k, v) in extra {
        d = d.with(k, v.clone());
    }
    d
}

const FINGERPRINT: &str = "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3E:4B:65:2E:5A:9B:C3:11:2F:4E:70:E8";

/// A DTLS-SRTP endpoint's SDP (no ICE unless `ice`).
fn dtls_sdp(port: u16, setup: &str, ice: bool) -> String {
    let mut s = format!(
        "v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n\
         a=fingerprint:{FINGERPRINT}\r\na=setup:{setup}\r\na=sendrecv\r\n"
    );
    if ice {
        s.push_str("a=ice-ufrag:peer\r\na=ice-pwd:peerpasswordpeerpassword\r\n");
        s.push_str(&format!(
            "a=candidate:1 1 UDP 2130706431 127.0.0.1 {port} typ host\r\n"
        ));
    }
    s
}

fn plain_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 8 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

fn relay_port(sdp: &str) -> SocketAddr {
    let sdp = SessionDescription::parse(sdp).unwrap();
    let m = &sdp.media[0];
    SocketAddr::new(sdp.connection_for(m).unwrap().ip().unwrap(), m.port)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn silent_peer_gets_retransmissions_then_the_handshake_times_out() {
    let d = start(41000);
    let mut ng = Ng::new(&d);
    let (a, b) = (endpoint(), endpoint());
    let offer = ng.cmd(request(
        "offer",
        "silent",
        &dtls_sdp(a.local_addr().unwrap().port(), "passive", false),
        &[],
    ));
    assert_eq!(text(&offer, "result"), "ok", "{offer:?}");
    // srtpgate answers the offerer `active` when it offered `passive`; the offer onwards is
    // plain RTP (same transport unless asked): request it as RTP/AVP explicitly.
    let answer = ng.cmd(request(
        "answer",
        "silent",
        &plain_sdp(b.local_addr().unwrap().port()),
        &[],
    ));
    let text_answer = text(&answer, "sdp");
    let sdp = SessionDescription::parse(&text_answer).unwrap();
    let m = &sdp.media[0];
    assert_eq!(m.proto.as_str(), "UDP/TLS/RTP/SAVPF");
    assert_eq!(m.setup().unwrap(), Some(Setup::Active));
    assert!(m.fingerprints().unwrap()[0].digest.len() == 32);
    assert!(!text_answer.contains("a=crypto"));
    // The ClientHello comes, and again after the retransmission timer.
    let mut buf = [0u8; 2048];
    let mut hellos = 0;
    let end = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < end {
        if let Ok((n, from)) = a.recv_from(&mut buf) {
            assert_eq!(from, relay_port(&text_answer));
            assert_eq!(buf[0], 22, "a DTLS handshake record");
            assert!(n > 13);
            hellos += 1;
        }
    }
    assert!(hellos >= 2, "ClientHello retransmitted ({hellos})");
    let s = &d.metrics().security;
    wait_for("the handshake timeout", || {
        s.dtls_timeouts.load(Ordering::Relaxed) == 1
    });
    assert_eq!(s.dtls_handshakes.load(Ordering::Relaxed), 0);
}

#[test]
fn dtls_from_an_unexpected_source_is_dropped_and_counted() {
    let d = start(41200);
    let mut ng = Ng::new(&d);
    let (a, b, stranger) = (endpoint(), endpoint(), endpoint());
    ng.cmd(request(
        "offer",
        "stranger",
        &dtls_sdp(a.local_addr().unwrap().port(), "active", false),
        &[],
    ));
    let answer = ng.cmd(request(
        "answer",
        "stranger",
        &plain_sdp(b.local_addr().unwrap().port()),
        &[],
    ));
    let relay = relay_port(&text(&answer, "sdp"));
    // A well-framed DTLS record from an address that is not the endpoint's.
    let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
    rec.extend_from_slice(&[1, 0, 0, 0]);
    for _ in 0..3 {
        stranger.send_to(&rec, relay).unwrap();
    }
    let s = &d.metrics().security;
    wait_for("unexpected-source drops", || {
        s.dtls_unexpected_source.load(Ordering::Relaxed) == 3
    });
    // Malformed DTLS from the endpoint itself is dropped too, and counted.
    a.send_to(&[22, 0xfe, 0xfd, 0, 0], relay).unwrap();
    wait_for("malformed drop", || {
        s.dtls_dropped.load(Ordering::Relaxed) >= 1
    });
}

fn binding_request(username: &str, pwd: &str, tid: u8) -> Vec<u8> {
    MessageWriter::new(BINDING_REQUEST, &[tid; 12])
        .attribute(attr::USERNAME, username.as_bytes())
        .attribute(attr::PRIORITY, &1_862_270_975u32.to_be_bytes())
        .attribute(attr::ICE_CONTROLLING, &[3; 8])
        .attribute(attr::USE_CANDIDATE, &[])
        .integrity(pwd.as_bytes())
        .fingerprint()
}

#[test]
fn ice_lite_answers_valid_checks_rejects_bad_integrity_and_survives_a_flood() {
    let d = start(41400);
    let mut ng = Ng::new(&d);
    let (a, b) = (endpoint(), endpoint());
    ng.cmd(request(
        "offer",
        "ice",
        &dtls_sdp(a.local_addr().unwrap().port(), "actpass", true),
        &[],
    ));
    let answer = ng.cmd(request(
        "answer",
        "ice",
        &plain_sdp(b.local_addr().unwrap().port()),
        &[],
    ));
    let text_answer = text(&answer, "sdp");
    let sdp = SessionDescription::parse(&text_answer).unwrap();
    assert!(sdp.ice_lite(), "{text_answer}");
    let m = &sdp.media[0];
    let (ufrag, pwd) = (
        m.ice_ufrag().unwrap().to_string(),
        m.ice_pwd().unwrap().to_string(),
    );
    assert!(ufrag.len() >= 4 && pwd.len() >= 22);
    let cand = m.candidates().next().unwrap().unwrap();
    let relay = relay_port(&text_answer);
    assert_eq!((cand.ip(), cand.port), (Some(relay.ip()), relay.port()));
    assert!(m.rtcp_mux() && m.mid().is_some());
    let mut buf = [0u8; 2048];
    // A valid check: success with our address, integrity under srtpgate's password.
    let stun = |a: &UdpSocket, buf: &mut [u8]| loop {
        // srtpgate, active toward this endpoint, also starts DTLS once the check passed.
        let (n, _) = a.recv_from(buf).unwrap();
        if buf[0] < 4 {
            return n;
        }
    };
    a.send_to(&binding_request(&format!("{ufrag}:peer"), &pwd, 1), relay)
        .unwrap();
    let n = stun(&a, &mut buf);
    let r = Message::parse(&buf[..n]).unwrap();
    assert_eq!(r.kind, BINDING_SUCCESS);
    assert_eq!(r.mapped_address(), Some(a.local_addr().unwrap()));
    assert!(r.integrity_ok(pwd.as_bytes()));
    // A bad MESSAGE-INTEGRITY: 401, counted.
    a.send_to(
        &binding_request(&format!("{ufrag}:peer"), "not-the-password-at-all", 2),
        relay,
    )
    .unwrap();
    let n = stun(&a, &mut buf);
    assert_eq!(Message::parse(&buf[..n]).unwrap().error_code(), Some(401));
    let s = &d.metrics().security;
    wait_for("counters", || {
        s.stun_requests.load(Ordering::Relaxed) == 1
            && s.stun_unauthorized.load(Ordering::Relaxed) == 1
    });
    // A flood: bounded by the leg's rate limit; the daemon keeps answering ng.
    let flood = binding_request(&format!("{ufrag}:peer"), "wrong-wrong-wrong-wrong", 3);
    for _ in 0..3000 {
        let _ = a.send_to(&flood, relay);
    }
    wait_for("rate limiting", || {
        s.rate_limited.load(Ordering::Relaxed) > 0
    });
    let pong = ng.cmd(Value::dict().with("command", "ping"));
    assert_eq!(text(&pong, "result"), "pong");
    assert!(s.stun_unauthorized.load(Ordering::Relaxed) < 3000);
}

#[test]
fn sdes_offer_toward_webrtc_gets_dtls_ice_and_mux() {
    let d = start(41600);
    let mut ng = Ng::new(&d);
    let a = endpoint();
    let sdp = plain_sdp(a.local_addr().unwrap().port());
    let extra = [
        ("transport-protocol", Value::string("UDP/TLS/RTP/SAVPF")),
        ("ICE", Value::string("force")),
    ];
    let offer = ng.cmd(request("offer", "webrtc", &sdp, &extra));
    let t = text(&offer, "sdp");
    let o = SessionDescription::parse(&t).unwrap();
    let m = &o.media[0];
    assert_eq!(m.proto.as_str(), "UDP/TLS/RTP/SAVPF", "{t}");
    assert_eq!(m.setup().unwrap(), Some(Setup::ActPass));
    assert!(m.rtcp_mux() && m.ice_ufrag().is_some() && o.ice_lite() && !t.contains("a=crypto"));
    // DTLS=passive asks for the passive role; DTLS=off refuses UDP/TLS.
    let passive = ng.cmd(request(
        "offer",
        "webrtc2",
        &sdp,
        &[extra[0].clone(), ("DTLS", Value::string("passive"))],
    ));
    assert!(text(&passive, "sdp").contains("a=setup:passive"));
    let off = ng.cmd(request(
        "offer",
        "webrtc3",
        &sdp,
        &[extra[0].clone(), ("DTLS", Value::string("off"))],
    ));
    assert_eq!(text(&off, "result"), "error");
    // ICE=remove: no ICE onwards even from an ICE offerer.
    let b = endpoint();
    let removed = ng.cmd(request(
        "offer",
        "webrtc4",
        &dtls_sdp(b.local_addr().unwrap().port(), "actpass", true),
        &[("ICE", Value::string("remove"))],
    ));
    let t = text(&removed, "sdp");
    assert!(
        !t.contains("ice-ufrag") && !t.contains("candidate") && t.contains("a=fingerprint"),
        "{t}"
    );
}
