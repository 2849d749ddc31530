//! The engine's relay scenarios over both packet I/O backends (epoll + recvmmsg/sendmmsg and
//! io_uring), plus the `PacketIo` contract checked on each backend directly. Where the
//! kernel refuses io_uring, the `uring` tests check that the engine fell back to the batch
//! backend and run the scenarios there.
//!
//! Port ranges: 43000 + n * 100, n unique per test (engine_relay.rs uses 41000–42999).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::engine::io::{self, Batch, Out, PacketIo, MAX_BATCH, MAX_DATAGRAM};
use relay::engine::{
    Backend, Engine, EngineConfig, FlowSpec, LocalPort, PortShape, Transform, Waker,
};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

fn uring_available() -> bool {
    io::uring::probe().is_ok()
}

fn engine(backend: Backend, n: u16) -> Engine {
    let base = 43000 + n * 100;
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 99,
        backend,
        ..Default::default()
    })
    .unwrap();
    let expected = match backend {
        Backend::Uring if uring_available() => Backend::Uring,
        _ => Backend::Batch,
    };
    assert_eq!(e.backend(), expected);
    e
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn ctx(suite: Suite, seed: u8) -> SrtpContext {
    let key: Vec<u8> = (0..suite.key_len() as u8).map(|b| b ^ seed).collect();
    let salt: Vec<u8> = (0..suite.salt_len() as u8)
        .map(|b| b.wrapping_mul(7) ^ seed)
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
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn addr(l: LocalPort) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], l.port))
}

/// Two single ports on one worker relaying plainly to each other; B's peer is set.
fn plain_call(e: &Engine, b: &UdpSocket) -> (LocalPort, LocalPort) {
    let al = e.allocate(0, None, PortShape::Single, 1).unwrap();
    let bl = e
        .allocate(0, Some(al.worker), PortShape::Single, 1)
        .unwrap();
    let (pa, pb) = (al.ports[0], bl.ports[0]);
    e.install(pa, FlowSpec::plain(pb)).unwrap();
    e.install(pb, FlowSpec::plain(pa)).unwrap();
    e.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
    (pa, pb)
}

fn plain_rtp_both_ways_with_latching(backend: Backend, n: u16) {
    let e = engine(backend, n);
    let (a, b) = (endpoint(), endpoint());
    let (pa, pb) = plain_call(&e, &b);
    let mut buf = [0u8; 2048];
    for seq in 0..20u16 {
        a.send_to(&rtp(seq, 1, b"hello"), addr(pa)).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr(pb));
        assert_eq!(&buf[..n], &rtp(seq, 1, b"hello")[..]);
    }
    b.send_to(&rtp(7, 2, b"back"), addr(pb)).unwrap();
    let (n, from) = a.recv_from(&mut buf).unwrap();
    assert_eq!(from, addr(pa));
    assert_eq!(&buf[..n], &rtp(7, 2, b"back")[..]);
    let (c, peer) = e.query(pa).unwrap();
    assert_eq!((c.packets_in, c.packets_out, c.latches), (20, 20, 1));
    assert_eq!(peer.unwrap().addr, a.local_addr().unwrap());
    e.shutdown();
}

fn srtp_to_srtp_with_different_suites(backend: Backend, n: u16) {
    let e = engine(backend, n);
    for (s_a, s_b) in [
        (Suite::AesCm128HmacSha1_80, Suite::AeadAes256Gcm),
        (Suite::AeadAes128Gcm, Suite::Aes256CmHmacSha1_32),
    ] {
        let al = e.allocate(0, None, PortShape::Single, 1).unwrap();
        let bl = e
            .allocate(0, Some(al.worker), PortShape::Single, 1)
            .unwrap();
        let (pa, pb) = (al.ports[0], bl.ports[0]);
        let mut spec_a = FlowSpec::plain(pb);
        spec_a.ingress = Transform::Srtp(Box::new(ctx(s_a, 1)));
        spec_a.egress = Transform::Srtp(Box::new(ctx(s_b, 2)));
        let mut spec_b = FlowSpec::plain(pa);
        spec_b.ingress = Transform::Srtp(Box::new(ctx(s_b, 3)));
        spec_b.egress = Transform::Srtp(Box::new(ctx(s_a, 4)));
        e.install(pa, spec_a).unwrap();
        e.install(pb, spec_b).unwrap();
        let (a, b) = (endpoint(), endpoint());
        e.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
        let (mut a_tx, mut b_rx, mut b_tx, mut a_rx) =
            (ctx(s_a, 1), ctx(s_b, 2), ctx(s_b, 3), ctx(s_a, 4));
        let mut buf = [0u8; 2048];
        // Across the sequence number wrap.
        for seq in 65500..=65535u16 {
            let plain = rtp(seq, 0xa, &[seq as u8; 160]);
            let mut p = plain.clone();
            p.resize(plain.len() + 32, 0);
            let n = a_tx.protect(&mut p, plain.len()).unwrap();
            a.send_to(&p[..n], addr(pa)).unwrap();
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr(pb));
            let m = b_rx.unprotect(&mut buf[..n]).unwrap();
            assert_eq!(&buf[..m], &plain[..]);
        }
        let plain = rtp(1, 0xb, b"reply");
        let mut p = plain.clone();
        p.resize(plain.len() + 32, 0);
        let n = b_tx.protect(&mut p, plain.len()).unwrap();
        b.send_to(&p[..n], addr(pb)).unwrap();
        let (n, _) = a.recv_from(&mut buf).unwrap();
        let m = a_rx.unprotect(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..m], &plain[..]);
        // A forged packet is counted, neither relayed nor latched.
        let forged = endpoint();
        let mut f = rtp(9, 0xa, &[0; 160]);
        f.extend_from_slice(&[0; 16]);
        forged.send_to(&f, addr(pa)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (c, peer) = e.query(pa).unwrap();
            if c.auth_failures == 1 || Instant::now() > deadline {
                assert_eq!(c.auth_failures, 1);
                assert_eq!(peer.unwrap().addr, a.local_addr().unwrap());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    e.shutdown();
}

fn bursts_fill_batches(backend: Backend, n: u16) {
    let e = engine(backend, n);
    let (a, b) = (endpoint(), endpoint());
    let (pa, _) = plain_call(&e, &b);
    let mut buf = [0u8; 2048];
    let mut seq = 0u16;
    // Bursts larger than a batch, each drained before the next so no socket buffer
    // overflows; every packet must arrive, intact and in order.
    for _burst in 0..10 {
        let first = seq;
        for _ in 0..150 {
            a.send_to(&rtp(seq, 5, &[seq as u8; 172]), addr(pa))
                .unwrap();
            seq += 1;
        }
        for want in first..seq {
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &rtp(want, 5, &[want as u8; 172])[..]);
        }
    }
    let (c, _) = e.query(pa).unwrap();
    assert_eq!((c.packets_in, c.packets_out), (1500, 1500));
    let st = e.stats()[0];
    assert!(st.batches <= st.packets_received);
    assert_eq!(st.send_failures, 0);
    eprintln!(
        "{:?}: {} packets in {} batches",
        e.backend(),
        st.packets_received,
        st.batches
    );
    e.shutdown();
}

fn detach_and_reattach_while_traffic_flows(backend: Backend, n: u16) {
    let e = Arc::new(engine(backend, n));
    let (a, b) = (endpoint(), endpoint());
    let (pa, _) = plain_call(&e, &b);
    // A steady stream on the call that stays, and a spray at the temporary call's ports,
    // so ports are detached with datagrams arriving and receives in flight.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let temp = Arc::new(AtomicU32::new(0));
    let sender = {
        let (stop, sent, temp) = (stop.clone(), sent.clone(), temp.clone());
        let a = a.try_clone().unwrap();
        std::thread::spawn(move || {
            let spray = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut seq = 0u16;
            while !stop.load(Ordering::Relaxed) {
                a.send_to(&rtp(seq, 9, b"steady"), addr(pa)).unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
                let ports = temp.load(Ordering::Relaxed);
                for port in [ports >> 16, ports & 0xffff] {
                    if port != 0 {
                        // Not RTP (RFC 7983: nothing starts with 0xff), so dropped before
                        // it could latch a peer.
                        let _ = spray.send_to(&[0xff; 40], ("127.0.0.1", port as u16));
                    }
                }
                seq = seq.wrapping_add(1);
                std::thread::sleep(Duration::from_micros(100));
            }
        })
    };
    // 150 calls over the 49 pairs left in a 100-port range: every port is handed out again
    // and again, which fails (the engine skips ports it cannot bind, and runs out) unless
    // detach really closed the socket.
    let c = endpoint();
    let mut buf = [0u8; 2048];
    for round in 0..150u16 {
        let (px, py) = plain_call(&e, &c);
        temp.store(
            u32::from(px.port) << 16 | u32::from(py.port),
            Ordering::Relaxed,
        );
        let x = endpoint();
        x.send_to(&rtp(round, 11, b"temp"), addr(px)).unwrap();
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr(py));
        assert_eq!(&buf[..n], &rtp(round, 11, b"temp")[..]);
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        e.release(px).unwrap();
        e.release(py).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    // The spray was read and dropped; the steady call kept flowing through all of it.
    std::thread::sleep(Duration::from_millis(50));
    assert!(e.stats()[0].malformed > 0);
    let (counters, _) = e.query(pa).unwrap();
    assert!(counters.packets_in > 0);
    assert!(counters.packets_out > 0);
    assert!(sent.load(Ordering::Relaxed) >= counters.packets_in);
    let mut got = 0;
    b.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while b.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert!(got > 0);
    match Arc::try_unwrap(e) {
        Ok(e) => e.shutdown(),
        Err(_) => panic!("engine still shared"),
    }
}

fn commands_answered_promptly_while_idle(backend: Backend, n: u16) {
    let e = engine(backend, n);
    let b = endpoint();
    let (pa, _) = plain_call(&e, &b);
    // The worker waits up to 100 ms in I/O when idle; only a working waker answers a
    // command sent in the middle of that wait well before it ends.
    let mut took = Vec::new();
    for _ in 0..11 {
        std::thread::sleep(Duration::from_millis(30));
        let t = Instant::now();
        e.query(pa).unwrap();
        took.push(t.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(median < Duration::from_millis(25), "median {median:?}");
    e.shutdown();
}

fn oversized_datagrams_are_counted(backend: Backend, n: u16) {
    let e = engine(backend, n);
    let (a, b) = (endpoint(), endpoint());
    let (pa, _) = plain_call(&e, &b);
    let mut buf = [0u8; 4096];
    a.send_to(&rtp(1, 3, &vec![1; MAX_DATAGRAM - 12]), addr(pa))
        .unwrap();
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(n, MAX_DATAGRAM);
    // Just over the limit, and longer than a whole buffer (truncated by the kernel).
    a.send_to(&rtp(2, 3, &vec![2; MAX_DATAGRAM - 11]), addr(pa))
        .unwrap();
    a.send_to(&rtp(3, 3, &[3; 3000]), addr(pa)).unwrap();
    a.send_to(&rtp(4, 3, b"after"), addr(pa)).unwrap();
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &rtp(4, 3, b"after")[..]);
    // The worker publishes its counters just after sending.
    let deadline = Instant::now() + Duration::from_secs(2);
    while e.stats()[0].oversized < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(e.stats()[0].oversized, 2);
    e.shutdown();
}

macro_rules! on_both_backends {
    ($($name:ident => $n:expr),* $(,)?) => {
        mod batch {
            $(#[test]
            fn $name() {
                super::$name(super::Backend::Batch, $n)
            })*
        }
        mod uring {
            $(#[test]
            fn $name() {
                super::$name(super::Backend::Uring, 10 + $n)
            })*
        }
    };
}

on_both_backends! {
    plain_rtp_both_ways_with_latching => 0,
    srtp_to_srtp_with_different_suites => 1,
    bursts_fill_batches => 2,
    detach_and_reattach_while_traffic_flows => 3,
    commands_answered_promptly_while_idle => 4,
    oversized_datagrams_are_counted => 5,
}

// ---- The PacketIo contract, on each backend without an engine ----

fn bound() -> (UdpSocket, LocalPort) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    let l = LocalPort {
        iface: 0,
        port: s.local_addr().unwrap().port(),
    };
    (s, l)
}

/// One received datagram: the port it came in on, its source, its bytes, and whether it was
/// marked oversized.
type Received = (LocalPort, SocketAddr, Vec<u8>, bool);

/// Receives until `want` datagrams arrived (or two seconds passed); returns them with the
/// largest batch seen.
fn recv_n(io: &mut dyn PacketIo, want: usize) -> (Vec<Received>, usize) {
    let mut batch = Batch::new();
    let mut got = Vec::new();
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while got.len() < want && Instant::now() < deadline {
        let n = io.recv(&mut batch, Duration::from_millis(50)).unwrap();
        largest = largest.max(n);
        for i in 0..n {
            let m = batch.meta[i];
            got.push((
                m.local,
                m.peer,
                batch.bufs[i][..m.len].to_vec(),
                m.oversized,
            ));
        }
    }
    (got, largest)
}

fn contract(mut io: Box<dyn PacketIo>, waker: Arc<Waker>) {
    let (s1, l1) = bound();
    let (s2, l2) = bound();
    io.attach(l1, s1).unwrap();
    io.attach(l2, s2).unwrap();
    let peer = endpoint();
    // Queued before the first recv: batches fill to the brim.
    for i in 0..150u16 {
        let to = if i % 3 == 0 { l2 } else { l1 };
        peer.send_to(&i.to_be_bytes(), addr(to)).unwrap();
    }
    let (got, largest) = recv_n(&mut *io, 150);
    assert_eq!(got.len(), 150);
    eprintln!("{}: largest batch {largest}", io.name());
    assert!(largest > 1, "{}: no batching", io.name());
    assert!(largest <= MAX_BATCH);
    let mut seen: Vec<u16> = got
        .iter()
        .map(|(local, from, data, big)| {
            let i = u16::from_be_bytes([data[0], data[1]]);
            assert_eq!(*local, if i % 3 == 0 { l2 } else { l1 });
            assert_eq!(*from, peer.local_addr().unwrap());
            assert!(!big);
            i
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..150).collect::<Vec<_>>());
    // Oversized and truncated datagrams are marked.
    peer.send_to(&vec![7; MAX_DATAGRAM], addr(l1)).unwrap();
    peer.send_to(&vec![8; MAX_DATAGRAM + 1], addr(l1)).unwrap();
    peer.send_to(&vec![9; 5000], addr(l1)).unwrap();
    let (got, _) = recv_n(&mut *io, 3);
    let marks: Vec<(usize, bool)> = got.iter().map(|g| (g.2.len(), g.3)).collect();
    assert_eq!(marks[0], (MAX_DATAGRAM, false));
    assert!(marks[1].1 && marks[2].1, "{marks:?}");
    // A full batch out, from both ports, plus one from a port that is not attached.
    let mut batch = Batch::new();
    for i in 0..MAX_BATCH {
        batch.bufs[i][..2].copy_from_slice(&(i as u16).to_be_bytes());
        batch.meta[i].out = Some(Out {
            from: if i < 40 { l1 } else { l2 },
            to: peer.local_addr().unwrap(),
            len: 2,
        });
    }
    batch.meta[MAX_BATCH - 1].out.as_mut().unwrap().from = LocalPort { iface: 0, port: 1 };
    batch.len = MAX_BATCH;
    let r = io.send(&mut batch);
    // A backend may queue sends until its next wait; flush hands them over.
    let f = io.flush();
    assert_eq!(
        (r.sent + f.sent, r.failed + f.failed),
        (MAX_BATCH as u64 - 1, 1)
    );
    let mut buf = [0u8; 64];
    for i in 0..MAX_BATCH - 1 {
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &(i as u16).to_be_bytes());
        assert_eq!(from, addr(if i < 40 { l1 } else { l2 }));
    }
    // The waker interrupts a long wait.
    let w = waker.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        w.wake();
    });
    let started = Instant::now();
    let n = io.recv(&mut batch, Duration::from_secs(10)).unwrap();
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
    // Detach closes the socket: the port can be bound again at once, and attached again.
    for _ in 0..20 {
        peer.send_to(b"late", addr(l1)).unwrap();
    }
    io.detach(l1);
    let again = UdpSocket::bind(addr(l1)).unwrap();
    again.set_nonblocking(true).unwrap();
    io.attach(l1, again).unwrap();
    peer.send_to(b"again", addr(l1)).unwrap();
    let (got, _) = recv_n(&mut *io, 1);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, &got[0].2[..]), (l1, &b"again"[..]));
    // Dropping with receives in flight and datagrams queued is clean.
    peer.send_to(b"unread", addr(l2)).unwrap();
    drop(io);
    UdpSocket::bind(addr(l2)).unwrap();
}

/// Many more datagrams queued at once than the io_uring backend below has provided buffers
/// (16): its receives run dry (ENOBUFS), are re-armed, and nothing queued is lost.
fn flood(mut io: Box<dyn PacketIo>) {
    let peer = endpoint();
    let mut ports = Vec::new();
    for _ in 0..8 {
        let (s, l) = bound();
        io.attach(l, s).unwrap();
        ports.push(l);
    }
    // Armed now, with nothing to read yet.
    let mut batch = Batch::new();
    assert_eq!(io.recv(&mut batch, Duration::ZERO).unwrap(), 0);
    for i in 0..160u16 {
        for l in &ports {
            peer.send_to(&i.to_be_bytes(), addr(*l)).unwrap();
        }
    }
    let (got, largest) = recv_n(&mut *io, 1280);
    assert_eq!(got.len(), 1280, "{}", io.name());
    assert!(largest > 1);
    // And receiving goes on afterwards on every port.
    for l in &ports {
        peer.send_to(b"after", addr(*l)).unwrap();
    }
    let (got, _) = recv_n(&mut *io, 8);
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|g| g.2 == b"after"));
}

#[test]
fn batch_backend_flood() {
    let waker = Arc::new(Waker::new().unwrap());
    flood(Box::new(io::batch::BatchIo::new(waker).unwrap()));
}

#[test]
fn uring_backend_flood() {
    if io::uring::probe().is_err() {
        return;
    }
    let waker = Arc::new(Waker::new().unwrap());
    flood(Box::new(
        io::uring::UringIo::with_buffers(waker, 16).unwrap(),
    ));
}

#[test]
fn batch_backend_contract() {
    let waker = Arc::new(Waker::new().unwrap());
    contract(
        Box::new(io::batch::BatchIo::new(waker.clone()).unwrap()),
        waker,
    );
}

#[test]
fn uring_backend_contract() {
    if let Err(e) = io::uring::probe() {
        eprintln!("io_uring unavailable here ({e}); the engine tests cover the fallback");
        return;
    }
    let waker = Arc::new(Waker::new().unwrap());
    contract(
        Box::new(io::uring::UringIo::new(waker.clone()).unwrap()),
        waker,
    );
}

#[test]
fn uring_backend_built_on_one_thread_runs_on_another() {
    // The engine builds a backend on the control thread and moves it to its worker.
    if io::uring::probe().is_err() {
        return;
    }
    let waker = Arc::new(Waker::new().unwrap());
    let io: Box<dyn PacketIo> = Box::new(io::uring::UringIo::new(waker.clone()).unwrap());
    std::thread::spawn(move || contract(io, waker))
        .join()
        .unwrap();
}

#[test]
fn uring_leaves_the_calling_thread_alone() {
    // The kernel interrupts every thread that created or used a ring when the ring is torn
    // down; the control plane's thread must never be one of them.
    let s = endpoint();
    s.set_read_timeout(Some(Duration::from_millis(40))).unwrap();
    let mut buf = [0u8; 16];
    for n in 0..4 {
        let _ = io::uring::probe();
        let e = engine(Backend::Uring, 30 + n);
        e.shutdown();
        for _ in 0..2 {
            let err = s.recv_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
        }
    }
}

/// Receive coalescing: the first packet after a pause comes at once; while packets keep
/// coming, the ones that arrive within the window share one `recv`.
fn coalescing(mut io: Box<dyn PacketIo>, waker: Arc<Waker>) {
    let window = Duration::from_millis(300);
    io.set_coalesce(window);
    let socks: Vec<(UdpSocket, LocalPort)> = (0..4).map(|_| bound()).collect();
    let ports: Vec<LocalPort> = socks.iter().map(|s| s.1).collect();
    for (s, l) in socks {
        io.attach(l, s).unwrap();
    }
    let peer = endpoint();
    let mut batch = Batch::new();
    // Idle: nothing comes in 50 ms.
    assert_eq!(io.recv(&mut batch, Duration::from_millis(50)).unwrap(), 0);
    // The first packet after the pause is not held for the window (which is 300 ms; the
    // bound below only keeps a loaded machine from failing the test).
    peer.send_to(b"first", addr(ports[0])).unwrap();
    let t = Instant::now();
    let mut n = 0;
    while n == 0 && t.elapsed() < Duration::from_secs(2) {
        n = io.recv(&mut batch, Duration::from_secs(2)).unwrap();
    }
    assert_eq!(n, 1, "{}", io.name());
    assert!(t.elapsed() < window, "{}: first packet held", io.name());
    // Traffic is flowing now: four packets, one per socket, 20 ms apart, all within the
    // window, come back in one batch.
    let sender = {
        let peer = peer.try_clone().unwrap();
        let ports = ports.clone();
        std::thread::spawn(move || {
            for (i, l) in ports.iter().enumerate() {
                peer.send_to(&[i as u8], addr(*l)).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let n = io.recv(&mut batch, Duration::from_secs(2)).unwrap();
    sender.join().unwrap();
    let mut got: Vec<u8> = (0..n).map(|i| batch.bufs[i][0]).collect();
    got.sort();
    assert_eq!(
        got,
        vec![0, 1, 2, 3],
        "{}: one wake-up for the window",
        io.name()
    );
    // Still flowing: a command (the waker) cuts the window short.
    let w = waker.clone();
    let kick = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        w.wake();
    });
    let t = Instant::now();
    assert_eq!(io.recv(&mut batch, Duration::from_secs(2)).unwrap(), 0);
    kick.join().unwrap();
    assert!(
        t.elapsed() < window,
        "{}: command held for the window",
        io.name()
    );
    // Nothing more: back to waiting for the first packet.
    assert_eq!(io.recv(&mut batch, Duration::from_millis(50)).unwrap(), 0);
    assert_eq!(io.recv(&mut batch, Duration::from_millis(50)).unwrap(), 0);
}

#[test]
fn batch_backend_coalesces() {
    let waker = Arc::new(Waker::new().unwrap());
    coalescing(
        Box::new(io::batch::BatchIo::new(waker.clone()).unwrap()),
        waker,
    );
}

#[test]
fn uring_backend_coalesces() {
    if !uring_available() {
        return;
    }
    let waker = Arc::new(Waker::new().unwrap());
    coalescing(
        Box::new(io::uring::UringIo::new(waker.clone()).unwrap()),
        waker,
    );
}
