//! A receiver thread: waits on its sockets, reads batches with `recvmmsg`, decrypts each
//! packet with the key the relay announced for that leg, checks it against what was sent
//! and accounts for it (latency from the kernel's receive timestamp).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hdrhistogram::Histogram;
use relay::srtp::{Error as SrtpError, SrtpContext};

use crate::account::{Arrival, StreamAccount};
use crate::io::{Poller, RecvBatch};
use crate::packet::{check, stream_of, thread_cpu_ns};

/// The receive side of one stream.
pub struct RxStream {
    pub id: u32,
    /// Index of the socket it must arrive on, in the receiver's `fds`.
    pub socket: usize,
    pub ctx: Option<SrtpContext>,
    pub account: StreamAccount,
}

/// Counts of packets that were not a first copy of a sent packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anomalies {
    /// Failed SRTP authentication, or decrypted to something the bench did not send.
    pub corrupt: u64,
    /// An SSRC that is no stream of this run.
    pub unknown: u64,
    /// A stream's packet on another endpoint's socket.
    pub misrouted: u64,
    /// Older than the SRTP replay window: cannot be checked.
    pub too_old: u64,
}

/// A receiver thread's sockets and streams.
pub struct ReceiverWork {
    pub fds: Vec<RawFd>,
    pub streams: Vec<RxStream>,
    /// Stream id → index in `streams` (u32::MAX: not this receiver's).
    pub index: Vec<u32>,
    pub payload: usize,
    pub latency: Histogram<u64>,
    pub anomalies: Anomalies,
    /// Datagrams read.
    pub datagrams: u64,
}

/// A histogram of nanoseconds from 1 ns to 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

impl ReceiverWork {
    pub fn new(
        fds: Vec<RawFd>,
        streams: Vec<RxStream>,
        total_streams: usize,
        payload: usize,
    ) -> Self {
        let mut index = vec![u32::MAX; total_streams];
        for (i, s) in streams.iter().enumerate() {
            if let Some(slot) = index.get_mut(s.id as usize) {
                *slot = i as u32;
            }
        }
        ReceiverWork {
            fds,
            streams,
            index,
            payload,
            latency: new_histogram(),
            anomalies: Anomalies::default(),
            datagrams: 0,
        }
    }

    /// Clears per-phase results; stream `i` expects counters from `bases[i]` up to `bound`.
    pub fn reset(&mut self, bases: &[u64], bound: u64) {
        for (s, &b) in self.streams.iter_mut().zip(bases) {
            s.account.reset(b, bound);
        }
        self.latency.reset();
        self.anomalies = Anomalies::default();
        self.datagrams = 0;
    }

    fn handle(&mut self, socket: usize, pkt: &mut [u8], recv_ns: u64) {
        let Some(id) = stream_of(pkt) else {
            self.anomalies.unknown += 1;
            return;
        };
        let Some(&i) = self.index.get(id as usize).filter(|&&i| i != u32::MAX) else {
            self.anomalies.unknown += 1;
            return;
        };
        let s = &mut self.streams[i as usize];
        if s.socket != socket {
            self.anomalies.misrouted += 1;
            return;
        }
        let len = match &mut s.ctx {
            Some(ctx) => match ctx.unprotect(pkt) {
                Ok(l) => l,
                Err(SrtpError::Replay) => {
                    s.account.duplicates += 1;
                    return;
                }
                Err(SrtpError::ReplayOld) => {
                    self.anomalies.too_old += 1;
                    return;
                }
                Err(_) => {
                    self.anomalies.corrupt += 1;
                    return;
                }
            },
            None => pkt.len(),
        };
        let Ok(m) = check(&pkt[..len], self.payload) else {
            self.anomalies.corrupt += 1;
            return;
        };
        match s.account.record(m.counter, m.sent_ns, recv_ns) {
            Arrival::InOrder | Arrival::Reordered => {
                let lat = recv_ns.saturating_sub(m.sent_ns).max(1);
                let _ = self.latency.record(lat.min(100_000_000_000));
            }
            Arrival::Duplicate => {}
            Arrival::OutOfRange => self.anomalies.corrupt += 1,
        }
    }
}

/// What a receiver thread did in one phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReceiverOutcome {
    pub tid: u32,
    pub cpu_ns: u64,
    /// Time runnable but waiting for a CPU.
    pub wait_ns: u64,
}

/// Receives until `stop` is set (checked at least every 20 ms).
pub fn run(work: &mut ReceiverWork, stop: &AtomicBool, received: &AtomicU64) -> ReceiverOutcome {
    let tid = crate::procstat::gettid();
    let cpu0 = thread_cpu_ns();
    let wait0 = crate::procstat::thread_wait_ns(std::process::id(), tid).unwrap_or(0);
    let poller = match Poller::new(&work.fds) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("srtpgate-bench: receiver cannot poll its sockets: {e}");
            return ReceiverOutcome {
                tid,
                cpu_ns: 0,
                wait_ns: 0,
            };
        }
    };
    let mut batch = RecvBatch::default();
    let mut ready = [0usize; 64];
    while !stop.load(Ordering::Relaxed) {
        let n = poller.wait(&mut ready, 20);
        for &socket in &ready[..n] {
            let fd = work.fds[socket];
            // Bounded per wake-up so that one busy socket does not starve the others.
            for _ in 0..64 {
                let got = match batch.recv(fd) {
                    Ok(0) | Err(_) => break,
                    Ok(got) => got,
                };
                work.datagrams += got as u64;
                received.fetch_add(got as u64, Ordering::Relaxed);
                for k in 0..got {
                    let len = batch.lens[k];
                    let stamp = batch.stamps[k];
                    let pkt = &mut batch.bufs[k][..len];
                    work.handle(socket, pkt, stamp);
                }
            }
        }
    }
    ReceiverOutcome {
        tid,
        cpu_ns: thread_cpu_ns().saturating_sub(cpu0),
        wait_ns: crate::procstat::thread_wait_ns(std::process::id(), tid)
            .unwrap_or(0)
            .saturating_sub(wait0),
    }
}
