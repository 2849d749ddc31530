//! Every engine transform over real UDP on 127.0.0.1, for both I/O backends, with SRTP made
//! and checked by the system libsrtp2 at the endpoints: SRTP→SRTP (different suites and
//! keys), SRTP→RTP, RTP→SRTP and RTP→RTP, for RTP and RTCP, with rtcp-mux and with separate
//! RTCP ports, across a sequence-number wrap (ROC 0→1), an SSRC change and interleaved SSRCs.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use relay::engine::{Backend, Engine, EngineConfig, FlowSpec, LocalPort, PortShape, Transform};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};
use srtpgate_tests::libsrtp::{Direction, LibSrtp};
use srtpgate_tests::packets::{rtcp_sr_sdes, rtp, RtpShape};

static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

/// One side of the relay: `None` is plain RTP.
#[derive(Clone, Copy)]
struct Side {
    suite: Option<Suite>,
    /// Seeds for the endpoint→relay and relay→endpoint keys.
    seed: u8,
}

fn key_salt(suite: Suite, seed: u8) -> Vec<u8> {
    (0..suite.key_salt_len())
        .map(|i| (i as u8).wrapping_mul(29) ^ seed)
        .collect()
}

fn ours(suite: Suite, seed: u8) -> Transform {
    let ks = key_salt(suite, seed);
    let m = MasterKey::from_key_salt(suite, &ks).unwrap();
    Transform::Srtp(Box::new(SrtpContext::new(Policy::new(suite, m)).unwrap()))
}

fn transform(side: Side, seed: u8) -> Transform {
    side.suite.map_or(Transform::Plain, |s| ours(s, seed))
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn to(l: LocalPort) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], l.port))
}

/// The relay's ports facing one endpoint: RTP and RTCP (the same port with rtcp-mux).
struct Ports {
    rtp: LocalPort,
    rtcp: LocalPort,
}

fn ports(e: &Engine, mux: bool) -> Ports {
    if mux {
        let p = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
        Ports { rtp: p, rtcp: p }
    } else {
        let a = e.allocate(0, Some(0), PortShape::Pair, 1).unwrap();
        assert_eq!(a.ports[0].port % 2, 0);
        assert_eq!(a.ports[1].port, a.ports[0].port + 1);
        Ports {
            rtp: a.ports[0],
            rtcp: a.ports[1],
        }
    }
}

/// Installs the flows for traffic arriving from `from` and leaving toward `toward`.
fn install(e: &Engine, from: &Ports, from_side: Side, toward: &Ports, toward_side: Side) {
    let spec = |_: ()| FlowSpec {
        ingress: transform(from_side, from_side.seed),
        egress: transform(toward_side, toward_side.seed ^ 0x80),
        rtp_out: toward.rtp,
        rtcp_out: toward.rtcp,
        latch: true,
        strict_source: false,
        clock_rate: 8000,
    };
    e.install(from.rtp, spec(())).unwrap();
    if from.rtcp != from.rtp {
        e.install(from.rtcp, spec(())).unwrap();
    }
}

struct Endpoint {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    tx: Option<LibSrtp>,
    rx: Option<LibSrtp>,
}

impl Endpoint {
    fn new(side: Side) -> Self {
        Endpoint {
            rtp: endpoint(),
            rtcp: endpoint(),
            tx: side
                .suite
                .map(|s| LibSrtp::new(s, &key_salt(s, side.seed), Direction::Outbound).unwrap()),
            rx: side.suite.map(|s| {
                LibSrtp::new(s, &key_salt(s, side.seed ^ 0x80), Direction::Inbound).unwrap()
            }),
        }
    }

    fn send(&mut self, plain: &[u8], rtcp: bool, relay: &Ports) {
        let wire = match (&mut self.tx, rtcp) {
            (Some(l), false) => l.protect_vec(plain).unwrap(),
            (Some(l), true) => l.protect_rtcp_vec(plain).unwrap(),
            (None, _) => plain.to_vec(),
        };
        let (sock, port) = if rtcp {
            (&self.rtcp, relay.rtcp)
        } else {
            (&self.rtp, relay.rtp)
        };
        sock.send_to(&wire, to(port)).unwrap();
    }

    fn recv(&mut self, rtcp: bool) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let sock = if rtcp && !self.mux() {
            &self.rtcp
        } else {
            &self.rtp
        };
        let (n, _) = sock.recv_from(&mut buf).expect("relayed packet");
        match (&mut self.rx, rtcp) {
            (Some(l), false) => l
                .unprotect_vec(&buf[..n])
                .expect("libsrtp unprotects what the relay sent"),
            (Some(l), true) => l
                .unprotect_rtcp_vec(&buf[..n])
                .expect("libsrtp unprotects the relay's SRTCP"),
            (None, _) => buf[..n].to_vec(),
        }
    }

    fn mux(&self) -> bool {
        self.rtcp.local_addr().unwrap() == self.rtp.local_addr().unwrap()
    }
}

fn run(backend: Backend, a_side: Side, b_side: Side, mux: bool) {
    let base = 48000 + NEXT_RANGE.fetch_add(1, Ordering::Relaxed) * 40;
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 39,
        backend,
        ..Default::default()
    })
    .unwrap();
    if relay::engine::io::uring::probe().is_ok() || backend == Backend::Batch {
        assert_eq!(e.backend(), backend);
    }
    let (pa, pb) = (ports(&e, mux), ports(&e, mux));
    install(&e, &pa, a_side, &pb, b_side);
    install(&e, &pb, b_side, &pa, a_side);
    let (mut a, mut b) = (Endpoint::new(a_side), Endpoint::new(b_side));
    if mux {
        a.rtcp = a.rtp.try_clone().unwrap();
        b.rtcp = b.rtp.try_clone().unwrap();
    }
    // Addresses from SDP for both sides.
    e.set_peer(pa.rtp, Some(a.rtp.local_addr().unwrap()))
        .unwrap();
    e.set_peer(pb.rtp, Some(b.rtp.local_addr().unwrap()))
        .unwrap();
    if !mux {
        e.set_peer(pa.rtcp, Some(a.rtcp.local_addr().unwrap()))
            .unwrap();
        e.set_peer(pb.rtcp, Some(b.rtcp.local_addr().unwrap()))
            .unwrap();
    }
    // A→B: 120 packets over the sequence wrap, an SSRC change half-way, RTCP every 20.
    for i in 0..120u32 {
        let seq = 65500u16.wrapping_add(i as u16);
        let ssrc = if i < 60 { 0xa1 } else { 0xa2 };
        let plain = rtp(RtpShape::varied(i as usize), seq, i * 160, ssrc, i as u64);
        a.send(&plain, false, &pa);
        assert_eq!(b.recv(false), plain, "A->B packet {i}");
        if i % 20 == 19 {
            let r = rtcp_sr_sdes(ssrc, 1, 12, i as u64);
            a.send(&r, true, &pa);
            assert_eq!(b.recv(true), r, "A->B RTCP after packet {i}");
        }
    }
    // B→A: two SSRCs interleaved.
    for i in 0..40u32 {
        let ssrc = 0xb0 + (i % 2);
        let plain = rtp(
            RtpShape::plain(160),
            (i / 2) as u16,
            i * 80,
            ssrc,
            1000 + i as u64,
        );
        b.send(&plain, false, &pb);
        assert_eq!(a.recv(false), plain, "B->A packet {i}");
    }
    let r = rtcp_sr_sdes(0xb0, 0, 8, 7);
    b.send(&r, true, &pb);
    assert_eq!(a.recv(true), r);
    let (c, _) = e.query(pa.rtp).unwrap();
    assert_eq!(
        c.auth_failures + c.replays + c.srtp_errors + c.protect_errors,
        0
    );
    e.shutdown();
}

const CM80: Option<Suite> = Some(Suite::AesCm128HmacSha1_80);
const GCM128: Option<Suite> = Some(Suite::AeadAes128Gcm);
const CM256_32: Option<Suite> = Some(Suite::Aes256CmHmacSha1_32);

macro_rules! matrix {
    ($($name:ident: $a:expr, $b:expr;)*) => {
        mod batch {
            use super::*;
            $(
                #[test]
                fn $name() {
                    run(Backend::Batch, Side { suite: $a, seed: 1 }, Side { suite: $b, seed: 2 }, true);
                    run(Backend::Batch, Side { suite: $a, seed: 3 }, Side { suite: $b, seed: 4 }, false);
                }
            )*
        }
        mod uring {
            use super::*;
            $(
                #[test]
                fn $name() {
                    run(Backend::Uring, Side { suite: $a, seed: 1 }, Side { suite: $b, seed: 2 }, true);
                    run(Backend::Uring, Side { suite: $a, seed: 3 }, Side { suite: $b, seed: 4 }, false);
                }
            )*
        }
    };
}

matrix! {
    srtp_to_srtp_other_suite: CM80, GCM128;
    srtp_to_srtp_same_suite: CM256_32, CM256_32;
    srtp_to_rtp: GCM128, None;
    rtp_to_srtp: None, CM80;
    rtp_to_rtp: None, None;
}
