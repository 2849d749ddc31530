//! A sender thread: paces its streams (or sends as fast as it can), fills batches from the
//! streams' templates, protects them and hands each batch to `sendmmsg`.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use relay::srtp::SrtpContext;

use crate::io::{RawAddr, SendBatch, BATCH};
use crate::packet::{realtime_ns, stamp, thread_cpu_ns};

/// The send side of one stream.
pub struct TxStream {
    pub id: u32,
    pub dest: RawAddr,
    pub ctx: Option<SrtpContext>,
    pub template: Vec<u8>,
    /// Counter of the next packet.
    pub next: u64,
    /// Packets the kernel refused, over the stream's life.
    pub failed: u64,
}

/// Streams that share one sending socket.
pub struct TxGroup {
    pub fd: RawFd,
    pub streams: Vec<TxStream>,
}

/// How fast to send.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Packets per second per stream.
    PerStream(f64),
    /// As fast as the sender can.
    Max,
}

/// What a sender thread did in one phase.
#[derive(Clone, Debug, Default)]
pub struct SenderOutcome {
    pub tid: u32,
    pub cpu_ns: u64,
    /// Time runnable but waiting for a CPU.
    pub wait_ns: u64,
    pub wall_ns: u64,
    /// Packets accepted by the kernel.
    pub sent: u64,
    /// Packets the kernel refused.
    pub failed: u64,
    /// Packets the schedule asked for (0 at `Pace::Max`).
    pub scheduled: u64,
}

/// Runs one phase of `duration` from `start` for the streams of `groups`.
pub fn run(
    groups: &mut [TxGroup],
    pace: Pace,
    start: Instant,
    duration: Duration,
    sent_total: &AtomicU64,
    abort: &AtomicBool,
) -> SenderOutcome {
    set_timer_slack();
    let tid = crate::procstat::gettid();
    let cpu0 = thread_cpu_ns();
    let wait0 = crate::procstat::thread_wait_ns(std::process::id(), tid).unwrap_or(0);
    let streams: usize = groups.iter().map(|g| g.streams.len()).sum();
    let mut out = SenderOutcome {
        tid,
        ..Default::default()
    };
    if streams == 0 {
        return out;
    }
    // Stream j of m starts j/m of an interval late, so packets spread evenly in time.
    let bases: Vec<Vec<u64>> = groups
        .iter()
        .map(|g| g.streams.iter().map(|s| s.next).collect())
        .collect();
    let tick = match pace {
        Pace::PerStream(pps) => {
            Duration::from_secs_f64((1.0 / (pps * streams as f64)).clamp(50e-6, 1e-3))
        }
        Pace::Max => Duration::ZERO,
    };
    let mut batch = SendBatch::default();
    let mut owner = [0usize; BATCH];
    let dur_s = duration.as_secs_f64();
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= dur_s || abort.load(Ordering::Relaxed) {
            break;
        }
        let mut any = false;
        let mut j = 0usize;
        for (gi, g) in groups.iter_mut().enumerate() {
            let per_round = BATCH.div_ceil(g.streams.len()).max(1) as u64;
            batch.count = 0;
            let mut now = realtime_ns();
            for (si, &base) in bases[gi].iter().enumerate() {
                let due = match pace {
                    Pace::PerStream(pps) => {
                        let phase = j as f64 / streams as f64;
                        let target = base + (t * pps + phase) as u64;
                        target.saturating_sub(g.streams[si].next)
                    }
                    Pace::Max => per_round,
                };
                j += 1;
                for _ in 0..due {
                    let s = &mut g.streams[si];
                    let c = batch.count;
                    let buf = &mut batch.bufs[c];
                    let len = s.template.len();
                    buf[..len].copy_from_slice(&s.template);
                    stamp(&mut buf[..len], s.id, s.next, now);
                    let len = match &mut s.ctx {
                        Some(ctx) => match ctx.protect(buf, len) {
                            Ok(l) => l,
                            Err(_) => {
                                // Cannot happen with a valid policy; count it as refused.
                                s.next += 1;
                                s.failed += 1;
                                out.failed += 1;
                                continue;
                            }
                        },
                        None => len,
                    };
                    s.next += 1;
                    batch.lens[c] = len;
                    batch.dests[c] = Some(s.dest);
                    owner[c] = si;
                    batch.count += 1;
                    if batch.count == BATCH {
                        flush(g, &mut batch, &owner, &mut out, sent_total);
                        now = realtime_ns();
                    }
                    any = true;
                }
            }
            if batch.count > 0 {
                flush(g, &mut batch, &owner, &mut out, sent_total);
            }
        }
        if !any && !tick.is_zero() {
            std::thread::sleep(tick);
        }
    }
    if let Pace::PerStream(pps) = pace {
        for j in 0..streams {
            let phase = j as f64 / streams as f64;
            out.scheduled += (dur_s * pps + phase) as u64;
        }
    }
    out.cpu_ns = thread_cpu_ns().saturating_sub(cpu0);
    out.wait_ns = crate::procstat::thread_wait_ns(std::process::id(), tid)
        .unwrap_or(0)
        .saturating_sub(wait0);
    out.wall_ns = start.elapsed().as_nanos() as u64;
    out
}

fn flush(
    g: &mut TxGroup,
    batch: &mut SendBatch,
    owner: &[usize; BATCH],
    out: &mut SenderOutcome,
    sent_total: &AtomicU64,
) {
    let ok = batch.send(g.fd);
    out.sent += ok as u64;
    for (&failed, &o) in batch.failed.iter().zip(owner).take(batch.count) {
        if failed {
            g.streams[o].failed += 1;
            out.failed += 1;
        }
    }
    sent_total.fetch_add(ok as u64, Ordering::Relaxed);
    batch.count = 0;
}

/// Sleeps as precisely as the kernel allows (the default slack is 50 µs).
fn set_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}
