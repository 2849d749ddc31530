//! SRTP protect and unprotect for every suite, srtpgate against the system libsrtp2 in the
//! same run: 172-byte RTP packets (12-byte header, 160-byte G.711 payload) and 1200-byte
//! ones. Benchmark ids are `<group>/<implementation>/<suite>/<size>`.
//!
//! `cargo bench -p srtpgate-bench --bench srtp [-- <filter>]`. Timing is kept short so the
//! whole run takes a few minutes; these environment variables change it:
//! `SRTP_BENCH_WARMUP_MS` (default 1000), `SRTP_BENCH_MEASURE_MS` (default 2000),
//! `SRTP_BENCH_SAMPLES` (default 50).
//!
//! A sender refuses to reuse a packet index and a receiver refuses replays, so every
//! iteration uses a new sequence number: protect rewrites the sequence number in place (the
//! payload is whatever the last iteration left, which costs the same to encrypt), and
//! unprotect gets packets protected outside the timed routine (`iter_batched_ref`, in
//! batches of 256 so that they are still in cache).
//! libsrtp 2.5's AES-192 derives different keys from srtpgate's (cisco/libsrtp#763), which
//! does not change its speed; each implementation unprotects packets from its own sender.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};
use srtpgate_tests::libsrtp::{Direction, LibSrtp};
use srtpgate_tests::packets::{rtp, RtpShape};

/// RTP packet sizes: G.711 20 ms, and a typical video packet.
const SIZES: [usize; 2] = [172, 1200];
/// Room for any trailer.
const SLACK: usize = 64;
const SSRC: u32 = 0x5eed_0001;
/// Packets protected ahead of each timed batch of unprotects: few enough to stay in the
/// L2 cache, as a packet just received would be.
const BATCH: u64 = 256;

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn key_salt(suite: Suite) -> Vec<u8> {
    (0..suite.key_salt_len() as u8)
        .map(|i| i.wrapping_mul(97) ^ 0x3c)
        .collect()
}

fn ours(suite: Suite) -> SrtpContext {
    let key = MasterKey::from_key_salt(suite, &key_salt(suite)).expect("key");
    SrtpContext::new(Policy::new(suite, key)).expect("context")
}

fn theirs(suite: Suite, dir: Direction) -> LibSrtp {
    LibSrtp::new(suite, &key_salt(suite), dir).expect("libsrtp session")
}

/// One sender of either implementation.
enum Sender {
    Ours(SrtpContext),
    Theirs(LibSrtp),
}

impl Sender {
    fn protect(&mut self, buf: &mut [u8], len: usize) -> usize {
        match self {
            Sender::Ours(c) => c.protect(buf, len).expect("srtpgate protect"),
            Sender::Theirs(c) => c.protect(buf, len).expect("libsrtp protect"),
        }
    }
}

/// A template RTP packet of `size` bytes in a buffer with room for the trailer.
fn packet(size: usize) -> Vec<u8> {
    let mut p = rtp(RtpShape::plain(size - 12), 0, 0, SSRC, size as u64);
    p.resize(size + SLACK, 0);
    p
}

fn set_seq(buf: &mut [u8], seq: u16) {
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
}

fn implementations(suite: Suite) -> Vec<&'static str> {
    let mut v = vec!["srtpgate"];
    if LibSrtp::supports(suite) {
        v.push("libsrtp");
    }
    v
}

fn bench_protect(c: &mut Criterion) {
    let mut group = c.benchmark_group("protect");
    for suite in Suite::ALL {
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            for imp in implementations(suite) {
                let mut tx = match imp {
                    "srtpgate" => Sender::Ours(ours(suite)),
                    _ => Sender::Theirs(theirs(suite, Direction::Outbound)),
                };
                let mut buf = packet(size);
                let mut seq = 0u16;
                let id = BenchmarkId::new(format!("{imp}/{suite}"), size);
                group.bench_function(id, |b| {
                    b.iter(|| {
                        seq = seq.wrapping_add(1);
                        set_seq(&mut buf, seq);
                        tx.protect(std::hint::black_box(&mut buf), size)
                    })
                });
            }
        }
    }
    group.finish();
}

/// A protected packet and its length, made outside the timed routine.
struct Protected {
    buf: Vec<u8>,
    len: usize,
}

fn bench_unprotect(c: &mut Criterion) {
    let mut group = c.benchmark_group("unprotect");
    for suite in Suite::ALL {
        for size in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            for imp in implementations(suite) {
                let (mut tx, mut rx_ours, mut rx_theirs) = match imp {
                    "srtpgate" => (Sender::Ours(ours(suite)), Some(ours(suite)), None),
                    _ => (
                        Sender::Theirs(theirs(suite, Direction::Outbound)),
                        None,
                        Some(theirs(suite, Direction::Inbound)),
                    ),
                };
                let template = packet(size);
                let mut seq = 0u16;
                let mut fresh = || {
                    seq = seq.wrapping_add(1);
                    let mut buf = template.clone();
                    set_seq(&mut buf, seq);
                    let len = tx.protect(&mut buf, size);
                    Protected { buf, len }
                };
                let id = BenchmarkId::new(format!("{imp}/{suite}"), size);
                match (&mut rx_ours, &mut rx_theirs) {
                    (Some(rx), _) => group.bench_function(id, |b| {
                        b.iter_batched_ref(
                            &mut fresh,
                            |p| {
                                rx.unprotect(&mut p.buf[..p.len])
                                    .expect("srtpgate unprotect")
                            },
                            BatchSize::NumIterations(BATCH),
                        )
                    }),
                    (_, Some(rx)) => group.bench_function(id, |b| {
                        b.iter_batched_ref(
                            &mut fresh,
                            |p| {
                                rx.unprotect(&mut p.buf[..p.len])
                                    .expect("libsrtp unprotect")
                            },
                            BatchSize::NumIterations(BATCH),
                        )
                    }),
                    _ => unreachable!("one receiver per implementation"),
                };
            }
        }
    }
    group.finish();
}

fn config() -> Criterion {
    let samples = std::env::var("SRTP_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    Criterion::default()
        .warm_up_time(env_ms("SRTP_BENCH_WARMUP_MS", 1000))
        .measurement_time(env_ms("SRTP_BENCH_MEASURE_MS", 2000))
        .sample_size(samples)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_protect, bench_unprotect
}
criterion_main!(benches);
