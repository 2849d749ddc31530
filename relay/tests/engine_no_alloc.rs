//! After warm-up, the worker loop relays SRTP without a single heap allocation: every
//! allocation in the process is counted while only pre-built packets move.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use relay::engine::{Engine, EngineConfig, FlowSpec, PortShape, Transform};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn ctx(suite: Suite, seed: u8) -> SrtpContext {
    let key = vec![seed; suite.key_len()];
    let salt = vec![seed ^ 0x55; suite.salt_len()];
    SrtpContext::new(Policy::new(
        suite,
        MasterKey::new(suite, &key, &salt).unwrap(),
    ))
    .unwrap()
}

#[test]
fn worker_loop_does_not_allocate_after_warm_up() {
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: 45000,
        port_max: 45099,
        ..Default::default()
    })
    .unwrap();
    let suite = Suite::AesCm128HmacSha1_80;
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let pb = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
    let mut spec = FlowSpec::plain(pb);
    spec.ingress = Transform::Srtp(Box::new(ctx(suite, 1)));
    spec.egress = Transform::Srtp(Box::new(ctx(suite, 2)));
    e.install(pa, spec).unwrap();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    e.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], pa.port));

    // Pre-build every packet (RTP and RTCP) before counting.
    let mut tx = ctx(suite, 1);
    let total = 3000u16;
    let packets: Vec<Vec<u8>> = (0..total)
        .map(|i| {
            let mut p = vec![0u8; 12 + 160 + 32];
            if i % 50 == 49 {
                // An RTCP receiver report every 50 packets.
                p[..8].copy_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 0xa]);
                let n = tx.protect_rtcp(&mut p, 8).unwrap();
                p.truncate(n);
            } else {
                p[0] = 0x80;
                p[2..4].copy_from_slice(&i.to_be_bytes());
                p[8..12].copy_from_slice(&0xau32.to_be_bytes());
                let n = tx.protect(&mut p, 172).unwrap();
                p.truncate(n);
            }
            p
        })
        .collect();
    let mut buf = [0u8; 2048];
    let warm = 500usize;
    for p in &packets[..warm] {
        a.send_to(p, to).unwrap();
        b.recv_from(&mut buf).unwrap();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    assert!(before > 0, "the counting allocator is in use");
    for p in &packets[warm..] {
        a.send_to(p, to).unwrap();
        b.recv_from(&mut buf).unwrap();
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(
        after - before,
        0,
        "allocations while relaying {} packets",
        packets.len() - warm
    );
    let (c, _) = e.query(pa).unwrap();
    assert_eq!(c.packets_out, total as u64);
    e.shutdown();
}
