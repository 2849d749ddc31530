//! End to end below the call layer: an SRTP call through the real engine, both flows tapped
//! after decryption, X3 delivered over mutual TLS to li-receiver. The WAV files hold the
//! tones each side sent, every relayed packet was delivered (and nothing else: a forged
//! packet is neither relayed nor delivered), and a node with a certificate the agency does
//! not trust gets nowhere.

mod li_support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use li_support::*;
use relay::engine::{
    tap, Command, Engine, EngineConfig, FlowSpec, LocalPort, PortShape, TapWhat, Transform,
};
use relay::li::{
    CallTap, DeliveryConfig, DestinationSpec, Interception, Transport, X3Delivery, Xid,
    LABEL_FROM_TARGET, LABEL_TO_TARGET,
};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

fn ctx(seed: u8) -> SrtpContext {
    let key: Vec<u8> = (0..SUITE.key_len() as u8).map(|b| b ^ seed).collect();
    let salt: Vec<u8> = (0..SUITE.salt_len() as u8)
        .map(|b| b.wrapping_mul(7) ^ seed)
        .collect();
    SrtpContext::new(Policy::new(
        SUITE,
        MasterKey::new(SUITE, &key, &salt).unwrap(),
    ))
    .unwrap()
}

fn rtp(pt: u8, seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn at(l: LocalPort) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], l.port))
}

fn xid() -> Xid {
    "5e1f0000-aaaa-4bbb-8ccc-0123456789ab".parse().unwrap()
}

fn did() -> Xid {
    "d0d0d0d0-1111-4222-8333-444455556666".parse().unwrap()
}

/// Sends `plain` protected with `tx` from `from` to the relay port `to`, and checks that
/// `peer` receives it protected with the relay's egress key (`rx`).
fn relay_one(
    plain: &[u8],
    tx: &mut SrtpContext,
    from: &UdpSocket,
    to: LocalPort,
    peer: &UdpSocket,
    rx: &mut SrtpContext,
) {
    let mut p = plain.to_vec();
    p.resize(plain.len() + 16, 0);
    let n = tx.protect(&mut p, plain.len()).unwrap();
    from.send_to(&p[..n], at(to)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    let m = rx.unprotect(&mut buf[..n]).unwrap();
    assert_eq!(&buf[..m], plain, "media changed");
}

#[test]
fn srtp_call_tapped_and_delivered_over_mutual_tls_to_li_receiver() {
    let dir = temp_dir("li-engine");
    let pki = pki("agency CA");
    for (name, pem) in [
        ("ca.pem", &pki.ca),
        ("server.pem", &pki.server_cert),
        ("server.key", &pki.server_key),
    ] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let out = dir.join("out");
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let mut receiver = start_receiver(
        &out,
        &[
            "--tls-cert",
            &path("server.pem"),
            "--tls-key",
            &path("server.key"),
            "--client-ca",
            &path("ca.pem"),
        ],
    );

    let engine = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: 46200,
        port_max: 46299,
        ..Default::default()
    })
    .unwrap();
    let pa = engine
        .allocate(0, None, PortShape::Single, 1)
        .unwrap()
        .ports[0];
    let pb = engine
        .allocate(0, Some(0), PortShape::Single, 1)
        .unwrap()
        .ports[0];
    // A → relay (key 1) → B (key 2); B → relay (key 3) → A (key 4).
    let mut spec_a = FlowSpec::plain(pb);
    spec_a.ingress = Transform::Srtp(Box::new(ctx(1)));
    spec_a.egress = Transform::Srtp(Box::new(ctx(2)));
    let mut spec_b = FlowSpec::plain(pa);
    spec_b.ingress = Transform::Srtp(Box::new(ctx(3)));
    spec_b.egress = Transform::Srtp(Box::new(ctx(4)));
    engine.install(pa, spec_a).unwrap();
    engine.install(pb, spec_b).unwrap();
    let (a, b) = (udp(), udp());
    engine.set_peer(pa, Some(a.local_addr().unwrap())).unwrap();
    engine.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();

    let delivery = X3Delivery::start(DeliveryConfig::default()).unwrap();
    let transport = Transport::mutual_tls(
        pki.ca.as_bytes(),
        pki.client_cert.as_bytes(),
        pki.client_key.as_bytes(),
        "agency.test",
    )
    .unwrap();
    delivery
        .add_destination(
            did(),
            DestinationSpec {
                address: receiver.addr,
                transport,
            },
        )
        .unwrap();
    let (ta, ra) = tap(11, TapWhat::Plaintext, LABEL_FROM_TARGET, 512);
    let (tb, rb) = tap(12, TapWhat::Plaintext, LABEL_TO_TARGET, 512);
    let mut from = CallTap::from_label(11, ra, LABEL_FROM_TARGET);
    from.endpoints = Some((a.local_addr().unwrap(), at(pa)));
    let mut to = CallTap::from_label(12, rb, LABEL_TO_TARGET);
    to.endpoints = Some((at(pa), a.local_addr().unwrap()));
    let cid = delivery
        .attach(
            42,
            vec![Interception {
                xid: xid(),
                destinations: vec![did()],
            }],
            vec![from, to],
        )
        .unwrap();
    engine.apply(pa, Command::AttachTap(pa, ta)).unwrap();
    engine.apply(pb, Command::AttachTap(pb, tb)).unwrap();

    // 5 s of audio each way: A sends a 1 kHz µ-law tone, B a 400 Hz A-law tone.
    let (mut a_tx, mut b_rx, mut b_tx, mut a_rx) = (ctx(1), ctx(2), ctx(3), ctx(4));
    const PACKETS: u16 = 250;
    for k in 0..PACKETS {
        let pcm = tone(1000.0, k as usize * 160, 160);
        let p = rtp(0, 7000 + k, 0xa11ce, &ulaw(&pcm));
        relay_one(&p, &mut a_tx, &a, pa, &b, &mut b_rx);
        let pcm = tone(400.0, k as usize * 160, 160);
        let p = rtp(8, 100 + k, 0xb0b, &alaw(&pcm));
        relay_one(&p, &mut b_tx, &b, pb, &a, &mut a_rx);
    }
    // A forged packet fails authentication: not relayed, not delivered.
    let mut forged = rtp(0, 7000 + PACKETS, 0xa11ce, &[0xff; 160]);
    forged.extend_from_slice(&[0; 10]);
    a.send_to(&forged, at(pa)).unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let relayed = loop {
        let (fa, _) = engine.query(pa).unwrap();
        let (fb, _) = engine.query(pb).unwrap();
        let c = delivery.task_counts(&xid()).unwrap();
        if fa.auth_failures == 1 && c.delivered == fa.packets_out + fb.packets_out {
            assert_eq!(c.dropped(), 0, "{c:?}");
            break fa.packets_out + fb.packets_out;
        }
        assert!(Instant::now() < deadline, "delivery incomplete: {c:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(relayed, 2 * PACKETS as u64);
    let stats = delivery.destination_stats(&did()).unwrap();
    assert!(stats.connected && stats.connects == 1, "{stats:?}");
    engine.apply(pa, Command::DetachTap(pa, 11)).unwrap();
    engine.apply(pb, Command::DetachTap(pb, 12)).unwrap();
    delivery.detach(42).unwrap();
    delivery.shutdown();
    engine.shutdown();
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.stop().success());

    let sum = receiver.summary();
    assert_eq!(sum["totals"]["x3"].as_u64(), Some(relayed));
    assert_eq!(sum["totals"]["malformed"], 0);
    assert_eq!(sum["totals"]["pduSequenceGaps"], 0);
    let streams = sum["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    for s in streams {
        assert_eq!(s["xid"], xid().to_string());
        assert_eq!(s["correlationId"], format!("{cid:016x}"));
        assert_eq!(s["packets"], PACKETS as u64);
        assert_eq!(s["gaps"], 0);
        assert_eq!(s["late"], 0);
        let (freq, other, pt) = if s["direction"] == "from-target" {
            (1000.0, 400.0, 0)
        } else {
            (400.0, 1000.0, 8)
        };
        assert_eq!(s["payloadTypes"], serde_json::json!([pt]));
        let wav = out.join(s["wav"].as_str().unwrap());
        let pcm = wav_samples(&wav);
        assert_eq!(pcm.len(), PACKETS as usize * 160);
        assert!(
            tone_share(&pcm, freq) > 0.9,
            "{} Hz in {}",
            freq,
            s["direction"]
        );
        assert!(tone_share(&pcm, other) < 0.01);
        if let Some(f) = sox_frequency(&wav) {
            assert!((f - freq).abs() < freq * 0.05, "sox: {f} Hz, want {freq}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_node_the_agency_does_not_trust_cannot_deliver() {
    let dir = temp_dir("li-engine-untrusted");
    let agency = pki("agency CA");
    let stranger = pki("some other CA");
    std::fs::write(dir.join("ca.pem"), &agency.ca).unwrap();
    std::fs::write(dir.join("server.pem"), &agency.server_cert).unwrap();
    std::fs::write(dir.join("server.key"), &agency.server_key).unwrap();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let mut receiver = start_receiver(
        &dir.join("out"),
        &[
            "--tls-cert",
            &path("server.pem"),
            "--tls-key",
            &path("server.key"),
            "--client-ca",
            &path("ca.pem"),
        ],
    );
    let delivery = X3Delivery::start(DeliveryConfig {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        ..Default::default()
    })
    .unwrap();
    // Trusts the agency, but presents a certificate from a CA the agency does not know.
    let transport = Transport::mutual_tls(
        agency.ca.as_bytes(),
        stranger.client_cert.as_bytes(),
        stranger.client_key.as_bytes(),
        "agency.test",
    )
    .unwrap();
    delivery
        .add_destination(
            did(),
            DestinationSpec {
                address: receiver.addr,
                transport,
            },
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // With TLS 1.3 the client may finish its side of the handshake before the agency
    // rejects its certificate: the rejection then arrives as an alert and closes the link.
    let refused = |s: relay::li::DestinationStats| s.connect_failures + s.disconnects;
    while refused(delivery.destination_stats(&did()).unwrap()) < 2 {
        assert!(Instant::now() < deadline, "the stranger was never refused");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A wrong server name is refused by the node itself.
    assert!(Transport::mutual_tls(b"not pem", b"", b"", "agency.test").is_err());
    delivery.shutdown();
    assert!(receiver.stop().success());
    let s = receiver.summary();
    assert!(s["totals"]["tlsFailures"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["totals"]["pdus"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
