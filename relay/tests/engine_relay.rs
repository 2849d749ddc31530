//! Engine behaviours over real UDP sockets on 127.0.0.1, with srtpgate's own SRTP at the
//! endpoints: strict source, latching rules, idle reports, bad-input counters. Plain and
//! SRTP relaying on both backends is in `engine_backends.rs`; interop with libsrtp
//! endpoints is in the tests crate.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use relay::engine::{Engine, EngineConfig, FlowSpec, LocalPort, PortShape, Transform};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

fn engine() -> Engine {
    // Each test gets its own port range so tests can run in parallel.
    let base = 41000 + NEXT_RANGE.fetch_add(1, Ordering::Relaxed) * 100;
    Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 99,
        ..Default::default()
    })
    .unwrap()
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn ctx(suite: Suite, seed: u8) -> SrtpContext {
    let key: Vec<u8> = (0..suite.key_len() as u8).map(|b| b ^ seed).collect();
    let salt: Vec<u8> = (0..suite.salt_len() as u8)
        .map(|b| b.wrapping_mul(3) ^ seed)
        .collect();
    SrtpContext::new(Policy::new(
        suite,
        MasterKey::new(suite, &key, &salt).unwrap(),
    ))
    .unwrap()
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(seq as u32 * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn addr(l: LocalPort) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], l.port))
}

#[test]
fn strict_source_drops_other_sources_after_latching() {
    let e = engine();
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let pb = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
    let mut spec = FlowSpec::plain(pb);
    spec.strict_source = true;
    e.install(pa, spec).unwrap();
    let (a, intruder, b) = (endpoint(), endpoint(), endpoint());
    e.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
    let mut buf = [0u8; 2048];
    a.send_to(&rtp(1, 1, b"first"), addr(pa)).unwrap();
    assert_eq!(b.recv_from(&mut buf).unwrap().0, 17);
    intruder.send_to(&rtp(2, 1, b"other"), addr(pa)).unwrap();
    a.send_to(&rtp(3, 1, b"third"), addr(pa)).unwrap();
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[12..n], b"third", "the intruder's packet was relayed");
    let (c, peer) = e.query(pa).unwrap();
    assert_eq!(c.wrong_source, 1);
    assert_eq!(peer.unwrap().addr, a.local_addr().unwrap());
    e.shutdown();
}

#[test]
fn plain_flows_latch_once_srtp_flows_follow_authenticated_sources() {
    let e = engine();
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let pb = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
    e.install(pa, FlowSpec::plain(pb)).unwrap();
    let (a1, a2, b) = (endpoint(), endpoint(), endpoint());
    e.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
    let mut buf = [0u8; 2048];
    a1.send_to(&rtp(1, 1, b"x"), addr(pa)).unwrap();
    b.recv_from(&mut buf).unwrap();
    a2.send_to(&rtp(2, 1, b"y"), addr(pa)).unwrap();
    b.recv_from(&mut buf).unwrap();
    assert_eq!(
        e.query(pa).unwrap().1.unwrap().addr,
        a1.local_addr().unwrap(),
        "plain RTP re-latched"
    );

    // With SRTP, a new source that authenticates (NAT rebinding) moves the peer.
    let suite = Suite::AesCm128HmacSha1_80;
    let mut spec = FlowSpec::plain(pb);
    spec.ingress = Transform::Srtp(Box::new(ctx(suite, 9)));
    e.install(pa, spec).unwrap();
    let mut tx = ctx(suite, 9);
    for (seq, sock) in [(10u16, &a1), (11, &a2)] {
        let mut p = rtp(seq, 1, b"z");
        let n = p.len();
        p.resize(n + 10, 0);
        tx.protect(&mut p, n).unwrap();
        sock.send_to(&p, addr(pa)).unwrap();
        b.recv_from(&mut buf).unwrap();
    }
    assert_eq!(
        e.query(pa).unwrap().1.unwrap().addr,
        a2.local_addr().unwrap()
    );
    e.shutdown();
}

#[test]
fn idle_flows_are_reported_not_removed() {
    let base = 41000 + NEXT_RANGE.fetch_add(1, Ordering::Relaxed) * 100;
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 99,
        idle_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .unwrap();
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let pb = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
    e.install(pa, FlowSpec::plain(pb)).unwrap();
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while events.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        e.poll_events(&mut events);
    }
    assert_eq!(events, vec![relay::engine::EngineEvent::Idle { local: pa }]);
    // Still installed: the control plane decides.
    e.query(pa).unwrap();
    // Reported once per idle period.
    std::thread::sleep(Duration::from_millis(700));
    events.clear();
    e.poll_events(&mut events);
    assert!(events.is_empty(), "{events:?}");
    e.shutdown();
}

#[test]
fn runts_garbage_and_unknown_ports_are_counted() {
    let e = engine();
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let a = endpoint();
    // No flow installed yet: RTP counts as unknown port.
    a.send_to(&rtp(1, 1, b"x"), addr(pa)).unwrap();
    a.send_to(&[0xff; 40], addr(pa)).unwrap();
    a.send_to(&[0x80], addr(pa)).unwrap();
    a.send_to(&[0u8; 3000], addr(pa)).unwrap();
    a.send_to(&[0x00, 0x01, 0, 0], addr(pa)).unwrap(); // STUN-like: slow path
    std::thread::sleep(Duration::from_millis(200));
    let s = e.stats()[0];
    assert_eq!(s.unknown_port, 1);
    assert_eq!(s.malformed, 2);
    assert_eq!(s.oversized, 1);
    assert_eq!(s.slow_path, 1);
    let mut ev = Vec::new();
    e.poll_events(&mut ev);
    assert!(matches!(
        &ev[..],
        [relay::engine::EngineEvent::SlowPath {
            kind: relay::packet::PacketKind::Stun,
            ..
        }]
    ));
    e.shutdown();
}
