//! Voicemail greeting playback through the deposit back end on a real engine: a test
//! caller offers SDES-SRTP from a UDP socket on 127.0.0.1, takes srtpgate's key from the
//! answer, receives the greeting from the relay port it was told to send to, decrypts it
//! and finds the greeting file's audio in order, paced at 20 ms, then the beep. Also: the
//! caller's codec preference (PCMA), a caller without G.711 (no greeting, still recorded),
//! a BYE in the middle of the greeting (playback stops), and the caller's own media
//! recorded while the greeting plays.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::call::CallRegistry;
use control::metrics::ControlMetrics;
use control::sip::deposit::{Deposit, RegistryDeposit};
use control::sip::greeting::Greetings;
use control::voicemail::config::VoicemailConfig;
use control::voicemail::MailboxStore;
use relay::engine::{Engine, EngineConfig};
use relay::record::PrivateKey;
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

struct Setup {
    dep: RegistryDeposit,
    dir: PathBuf,
    key: PrivateKey,
}

fn setup(name: &str, port_min: u16, greeting: Option<(&str, &[u8])>, beep: bool) -> Setup {
    setup_with(name, port_min, greeting, beep, None)
}

fn setup_with(
    name: &str,
    port_min: u16,
    greeting: Option<(&str, &[u8])>,
    beep: bool,
    advertise: Option<std::net::IpAddr>,
) -> Setup {
    let dir = std::env::temp_dir().join(format!("sg-vmgreet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let engine = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min,
        port_max: port_min + 49,
        interfaces: vec![relay::engine::Interface {
            name: "default".into(),
            bind: "127.0.0.1".parse().unwrap(),
            advertise,
        }],
        ..Default::default()
    })
    .unwrap();
    let registry = Arc::new(Mutex::new(CallRegistry::new(
        Arc::new(engine),
        Arc::new(ControlMetrics::default()),
        10,
    )));
    let key = PrivateKey::generate().unwrap();
    let mut store = MailboxStore::open(&dir.join("store")).unwrap();
    store
        .add("bob", "sip:bob@example.org", &key.public_key().to_base64())
        .unwrap();
    let mut config = VoicemailConfig {
        data_dir: Some(dir.join("store")),
        min_free_bytes: 0,
        beep,
        ..Default::default()
    };
    if let Some((file, bytes)) = greeting {
        let p = dir.join(file);
        std::fs::write(&p, bytes).unwrap();
        config.greeting = Some(p);
    }
    let greetings = Greetings::load(&config).unwrap();
    let dep = RegistryDeposit::new(registry, Arc::new(Mutex::new(store)), config)
        .with_greetings(greetings);
    Setup { dep, dir, key }
}

fn offer(port: u16, formats: &str, key: &MasterKey) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP {formats}\r\na=rtcp-mux\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 {}\r\na=sendrecv\r\n",
        key.to_inline()
    )
}

/// The relay's port and srtpgate's key toward the caller, from the answer.
fn answer(sdp: &[u8]) -> (u16, MasterKey) {
    let text = std::str::from_utf8(sdp).unwrap();
    let port = audio_port(text);
    let inline = text
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 "))
        .unwrap();
    (port, MasterKey::from_inline(SUITE, inline.trim()).unwrap())
}

fn caller() -> (UdpSocket, MasterKey) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    let k = MasterKey::new(SUITE, &[3; 16], &[4; 14]).unwrap();
    (s, k)
}

/// A test caller that offered `formats` to deposit `id` and got the answer.
struct Call {
    sock: UdpSocket,
    /// The caller's own key (its offer).
    ckey: MasterKey,
    /// The relay port the caller sends to, from the answer.
    relay_port: u16,
    /// srtpgate's key toward the caller, from the answer.
    key: MasterKey,
    answer: Vec<u8>,
    /// When the answer came back.
    answered: Instant,
}

fn call(dep: &mut RegistryDeposit, id: &str, formats: &str) -> Call {
    let (sock, ckey) = caller();
    let port = sock.local_addr().unwrap().port();
    let sdp = offer(port, formats, &ckey);
    let ans = dep
        .start(id, "atag", "btag", "bob", sdp.as_bytes(), "{}")
        .unwrap();
    let answered = Instant::now();
    let (relay_port, key) = answer(&ans);
    Call {
        sock,
        ckey,
        relay_port,
        key,
        answer: ans,
        answered,
    }
}

impl Call {
    /// Receives the greeting at the caller's socket (see [`receive`]).
    fn receive(&self, max: usize) -> Vec<Received> {
        receive(&self.sock, self.relay_port, &self.key, max)
    }
}

/// `count` SRTP packets of 0x55 from `from` to the relay port, protected with `ckey`.
fn talk(from: &UdpSocket, ckey: &MasterKey, relay_port: u16, count: u16) {
    let mut tx = SrtpContext::new(Policy::new(SUITE, ckey.clone())).unwrap();
    for i in 0..count {
        let mut p = vec![0x80, 0, 0, i as u8, 0, 0, 0, 0, 0, 0, 0, 9];
        p.extend_from_slice(&[0x55; 160]);
        let n = p.len();
        p.resize(n + 16, 0);
        let len = tx.protect(&mut p, n).unwrap();
        from.send_to(&p[..len], ("127.0.0.1", relay_port)).unwrap();
    }
}

/// A made-up SHA-256 fingerprint (00:01:…:1F) for DTLS-SRTP offers.
fn fingerprint() -> String {
    (0..32)
        .map(|i| format!("{i:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The port on the answer's `m=audio` line.
fn audio_port(text: &str) -> u16 {
    text.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .parse()
        .unwrap()
}

struct Received {
    at: Instant,
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

/// Receives and decrypts packets until none came for 600 ms (or `max` arrived).
fn receive(sock: &UdpSocket, relay_port: u16, key: &MasterKey, max: usize) -> Vec<Received> {
    let mut ctx = SrtpContext::new(Policy::new(SUITE, key.clone())).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < max {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            break;
        };
        let at = Instant::now();
        assert_eq!(
            from.port(),
            relay_port,
            "greeting from the port the caller sends to"
        );
        let len = ctx
            .unprotect(&mut buf[..n])
            .expect("authenticates with srtpgate's key");
        let p = &buf[..len];
        out.push(Received {
            at,
            marker: p[1] & 0x80 != 0,
            pt: p[1] & 0x7f,
            seq: u16::from_be_bytes([p[2], p[3]]),
            ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
            ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
            payload: p[12..].to_vec(),
        });
    }
    out
}

/// One RTP stream, 160 samples a packet, paced at 20 ms (never early), the marker on the
/// first packet only.
fn check_stream(r: &[Received], pt: u8) {
    let t0 = r[0].at;
    for (n, p) in r.iter().enumerate() {
        assert_eq!(p.pt, pt);
        assert_eq!(p.marker, n == 0, "marker on packet {n}");
        assert_eq!(p.ssrc, r[0].ssrc);
        assert_eq!(p.seq, r[0].seq.wrapping_add(n as u16));
        assert_eq!(p.ts, r[0].ts.wrapping_add(160 * n as u32));
        assert_eq!(p.payload.len(), 160);
        // Sent on a 20 ms schedule: packet n is never ahead of it by more than the arrival
        // jitter of packet 0 on a loaded machine (a burst would be seconds ahead).
        let due = Duration::from_millis(20 * n as u64);
        assert!(
            p.at.duration_since(t0) + Duration::from_millis(60) >= due,
            "packet {n} arrived {:?} after the first",
            p.at.duration_since(t0)
        );
    }
}

/// µ-law and A-law both keep the sign in bit 7 (set: positive); sign changes per 160.
fn sign_changes(frame: &[u8]) -> usize {
    frame
        .windows(2)
        .filter(|w| (w[0] & 0x80) != (w[1] & 0x80))
        .count()
}

#[test]
fn ulaw_greeting_then_beep_reaches_the_caller_in_order_and_paced() {
    // One second of distinct µ-law bytes (0x7f, µ-law's "-0", aside: it plays as 0xff).
    let file: Vec<u8> = (0..8000u32)
        .map(|i| ((i * 7 + i / 160) % 256) as u8)
        .map(|b| if b == 0x7f { 0x7e } else { b })
        .collect();
    let s = setup("ulaw", 59200, Some(("hello.ul", &file)), true);
    // A plaintext tap on the sink-facing port, attached when the media is installed (where
    // lawful interception attaches its taps): the greeting enters the relay there, like a
    // callee's media.
    let (tap_tx, tap_rx) = relay::engine::tap(77, relay::engine::TapWhat::Plaintext, 0, 256);
    let tap_tx = Mutex::new(Some(tap_tx));
    let hook: control::sip::media::AnswerHook = Arc::new(move |reg: &CallRegistry, call: &str| {
        let sink_port = reg
            .call(call)
            .and_then(|c| c.monologue("btag"))
            .and_then(|m| m.leg(0))
            .unwrap()
            .ports
            .rtp;
        let t = tap_tx.lock().unwrap().take().unwrap();
        reg.engine()
            .apply(sink_port, relay::engine::Command::AttachTap(sink_port, t))
            .unwrap();
    });
    let mut dep = s.dep.with_after_answer(Some(hook));
    let c = call(&mut dep, "g-1", "0 8 101");
    // The caller talks meanwhile; its media is recorded as usual.
    talk(&c.sock, &c.ckey, c.relay_port, 10);
    let r = c.receive(200);
    assert_eq!(r.len(), 50 + 20, "50 greeting packets and a 400 ms beep");
    check_stream(&r, 0);
    // The caller gets the 200 OK before the first packet: a lead-in of 200 ms.
    assert!(r[0].at.duration_since(c.answered) >= Duration::from_millis(150));
    let got: Vec<u8> = r[..50].iter().flat_map(|p| p.payload.clone()).collect();
    assert_eq!(got, file, "the greeting file byte for byte, in order");
    for (n, p) in r[50..].iter().enumerate() {
        let c = sign_changes(&p.payload);
        // 1 kHz: 20 half periods in 160 samples at 8 kHz.
        assert!((38..=41).contains(&c), "beep packet {n}: {c} sign changes");
    }
    let mut tapped = Vec::new();
    while let Some(rec) = tap_rx.try_recv() {
        tapped.push(rec.bytes()[12..].to_vec());
    }
    assert_eq!(
        tapped.len(),
        70,
        "the tap saw every greeting and beep packet in clear"
    );
    assert_eq!(tapped[..50].concat(), file);
    // Over a second on the wire: paced, not a burst.
    assert!(r[69].at.duration_since(r[0].at) >= Duration::from_millis(69 * 20 - 60));
    assert!(!dep.finished().contains(&"g-1".to_string()));
    dep.stop("g-1");
    // The caller's 10 packets were stored, sealed to bob.
    let msgs = files(&s.dir.join("store"), "pcapng");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let mut stored = 0;
    relay::record::read(std::fs::File::open(&msgs[0]).unwrap(), &s.key, |p| {
        assert_eq!(&p.rtp[12..], &[0x55; 160]);
        stored += 1;
    })
    .unwrap();
    assert_eq!(stored, 10);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Files under `dir` (recursively) with extension `ext`.
fn files(dir: &std::path::Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p, ext));
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
    out
}

fn wav(samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    for v in [16u32, 1 | (1 << 16), 8000, 16000, 2 | (16 << 16)] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

/// G.711 A-law expansion (ITU-T G.711 table), written here independently.
fn alaw(b: u8) -> i32 {
    let v = b ^ 0x55;
    let seg = ((v >> 4) & 7) as i32;
    let q = (v & 0x0f) as i32;
    let mag = if seg == 0 {
        q * 16 + 8
    } else {
        (q * 16 + 264) << (seg - 1)
    };
    if v & 0x80 != 0 {
        mag
    } else {
        -mag
    }
}

#[test]
fn wav_greeting_goes_out_in_the_callers_pcma() {
    // 0.4 s of a 250 Hz sine at half scale.
    let samples: Vec<i16> = (0..3200)
        .map(|i| (16000.0 * (i as f64 * 250.0 * std::f64::consts::TAU / 8000.0).sin()) as i16)
        .collect();
    let mut s = setup("alaw", 59250, Some(("hello.wav", &wav(&samples))), false);
    let r = call(&mut s.dep, "g-2", "9 8 0").receive(200);
    assert_eq!(r.len(), 20, "0.4 s, no beep");
    check_stream(&r, 8);
    let got: Vec<i32> = r
        .iter()
        .flat_map(|p| p.payload.iter().map(|&b| alaw(b)))
        .collect();
    for (i, (&want, &g)) in samples.iter().zip(&got).enumerate() {
        // A-law's step is at most 1/32 of the magnitude (plus the smallest step).
        let tol = (i32::from(want).abs() / 16).max(32);
        assert!(
            (i32::from(want) - g).abs() <= tol,
            "sample {i}: {want} vs {g}"
        );
    }
    s.dep.stop("g-2");
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn no_greeting_without_g711_and_bye_stops_playback() {
    let long = vec![0x10u8; 8000 * 10];
    let mut s = setup("stop", 59300, Some(("long.ul", &long)), true);
    // A caller with neither PCMU nor PCMA: nothing is played, the deposit runs.
    assert!(call(&mut s.dep, "g-3", "9 101").receive(10).is_empty());
    assert!(s.dep.active("g-3"));
    s.dep.stop("g-3");
    // A 10 s greeting ended by BYE after about half a second.
    let c = call(&mut s.dep, "g-4", "0");
    let first = c.receive(25);
    assert_eq!(first.len(), 25);
    let t = Instant::now();
    s.dep.stop("g-4");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop waits at most a frame or so"
    );
    assert!(!s.dep.active("g-4"));
    // At most what was already in flight arrives afterwards.
    let mut buf = [0u8; 2048];
    let mut late = 0;
    while c.sock.recv_from(&mut buf).is_ok() {
        late += 1;
    }
    // (Under load a few packets can be on their way while BYE is handled.)
    assert!(late <= 10, "{late} packets after BYE");
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// A DTLS-SRTP caller: answered with srtpgate's fingerprint and `a=setup:active`, and a
/// ClientHello comes from the relay port. This caller never answers the handshake: when
/// it times out the deposit reports itself finished (the proxy then sends BYE), and
/// nothing is stored.
#[test]
fn dtls_caller_gets_a_fingerprint_and_a_failed_handshake_ends_the_deposit() {
    let s = setup("dtls", 59350, Some(("hello.ul", &[0xff; 800])), true);
    let mut dep = s.dep;
    let identity = control::dtls::DtlsIdentity::generate("sha-256").unwrap();
    let ours = identity
        .fingerprint()
        .to_attribute()
        .value_str()
        .to_string();
    dep.registry
        .lock()
        .unwrap()
        .set_dtls_identity(Arc::new(identity), Duration::from_secs(1));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let fp = fingerprint();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\n\
         m=audio {port} UDP/TLS/RTP/SAVPF 0\r\na=sendrecv\r\n"
    );
    let ans = dep
        .start("d-1", "atag", "btag", "bob", sdp.as_bytes(), "{}")
        .unwrap();
    let ans = String::from_utf8(ans).unwrap();
    assert!(ans.contains("UDP/TLS/RTP/SAVPF"), "{ans}");
    assert!(ans.contains("a=setup:active"), "{ans}");
    assert!(ans.contains(&format!("a=fingerprint:{ours}")), "{ans}");
    assert!(!ans.contains("a=crypto"), "{ans}");
    let relay_port = audio_port(&ans);
    // srtpgate is the DTLS client: its ClientHello (content type 22, handshake type 1).
    let mut buf = [0u8; 2048];
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(from.port(), relay_port);
    assert!(
        n > 13 && buf[0] == 22 && buf[13] == 1,
        "{:?}",
        &buf[..n.min(16)]
    );
    assert!(dep.finished().is_empty(), "still handshaking");
    // The events thread's job in the daemon: DTLS timers.
    let t = Instant::now();
    while !dep.finished().contains(&"d-1".to_string()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the failed handshake was not reported"
        );
        dep.registry.lock().unwrap().tick_secure(Instant::now());
        std::thread::sleep(Duration::from_millis(50));
    }
    dep.stop("d-1");
    assert!(files(&s.dir.join("store"), "pcapng").is_empty());
    assert!(files(&s.dir.join("store"), "part").is_empty());
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Symmetric RTP: the caller's SDP names one address but its media comes from another (a
/// NAT). Once the relay has latched onto the real source, the greeting goes there.
#[test]
fn greeting_follows_the_callers_latched_source() {
    let file = vec![0x20u8; 8000];
    let mut s = setup("nat", 59400, Some(("hello.ul", &file)), false);
    let announced = call(&mut s.dep, "n-1", "0");
    let (real, _) = caller();
    // The caller talks from `real` right away.
    talk(&real, &announced.ckey, announced.relay_port, 3);
    let at_real = receive(&real, announced.relay_port, &announced.key, 100);
    let at_announced = announced.receive(100);
    assert_eq!(
        at_real.len() + at_announced.len(),
        50,
        "every packet went somewhere"
    );
    assert!(
        at_real.len() >= 45,
        "after latching the greeting goes to the real source: {} there, {} to the SDP address",
        at_real.len(),
        at_announced.len()
    );
    // The packets at the real source are the end of the same stream.
    let last = at_real.last().unwrap();
    assert_eq!(
        last.seq,
        at_real[0].seq.wrapping_add(at_real.len() as u16 - 1)
    );
    assert!(at_real.iter().all(|p| p.payload == [0x20; 160]));
    s.dep.stop("n-1");
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Media threads are bounded: with a limit of one, a second deposit while a greeting plays
/// gets no greeting, and a DTLS-SRTP caller is refused; once the first greeting is over,
/// greetings play again.
#[test]
fn media_threads_are_bounded() {
    let s = setup("limit", 59450, Some(("hello.ul", &[0x30; 1600])), false);
    let mut dep = s.dep.with_media_thread_limit(1);
    let a = call(&mut dep, "l-1", "0");
    // While the first greeting plays: no greeting for the second caller…
    let b = call(&mut dep, "l-2", "0");
    // … and a DTLS-SRTP caller is refused.
    let fp = fingerprint();
    let dtls = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\nm=audio 4000 UDP/TLS/RTP/SAVP 0\r\n"
    );
    let e = dep
        .start("l-3", "atag", "btag", "bob", dtls.as_bytes(), "{}")
        .unwrap_err();
    assert!(e.0.contains("busy"), "{e}");
    assert!(!dep.active("l-3"));
    assert_eq!(a.receive(100).len(), 10);
    assert!(b.receive(100).is_empty());
    dep.stop("l-1");
    dep.stop("l-2");
    // The first thread is over: the next caller hears the greeting.
    assert_eq!(call(&mut dep, "l-4", "0").receive(100).len(), 10);
    dep.stop("l-4");
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// With an advertised address that is not local (NAT), there is no sink socket: the
/// greeting goes straight out of the caller-facing port to the caller, the same stream.
#[test]
fn greeting_without_a_sink_goes_out_of_the_callers_port() {
    let file: Vec<u8> = (0..1600u32).map(|i| (i % 120) as u8 + 1).collect();
    let mut s = setup_with(
        "nosink",
        59500,
        Some(("hello.ul", &file)),
        false,
        Some("192.0.2.1".parse().unwrap()),
    );
    let c = call(&mut s.dep, "x-1", "0");
    assert!(String::from_utf8_lossy(&c.answer).contains("c=IN IP4 192.0.2.1"));
    let r = c.receive(100);
    assert_eq!(r.len(), 10);
    check_stream(&r, 0);
    let got: Vec<u8> = r.iter().flat_map(|p| p.payload.clone()).collect();
    assert_eq!(got, file);
    s.dep.stop("x-1");
    let _ = std::fs::remove_dir_all(&s.dir);
}
