//! A worker: one thread, pinned to a core, owning its ports, sockets, flows, SRTP contexts
//! and counters. Its loop receives a batch, transforms every packet in place, sends the
//! batch, and between batches applies commands. It never locks, never allocates for an
//! RTP/RTCP packet, never logs per packet and never waits on a slow consumer.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;

use crate::packet::{classify, PacketKind, RtpView};

use super::command::{Command, EngineEvent, Reply, Request};
use super::flow::{Flow, Peer, Transform};
use super::io::{Batch, Out, PacketIo, PacketMeta, BUF_SIZE};
use super::stats::{WorkerStats, WorkerStatsSnapshot};
use super::table::PortTable;
use super::tap::{TapKind, TapWhat};

/// How long a worker waits in I/O when idle, which bounds how late timers run.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
const IDLE_SCAN_EVERY_MS: u64 = 500;

pub(crate) struct Worker {
    pub(crate) id: usize,
    pub(crate) io: Box<dyn PacketIo>,
    pub(crate) table: PortTable,
    pub(crate) commands: Arc<ArrayQueue<Request>>,
    pub(crate) events: Arc<ArrayQueue<EngineEvent>>,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) idle_timeout_ms: u64,
    pub(crate) epoch: Instant,
    /// A one-packet batch for slow-path replies, made on first use.
    pub(crate) raw: Option<Batch>,
}

/// Per-batch context shared by every packet of the batch.
struct Clock {
    now_ms: u64,
    now_us: u64,
    unix_nanos: u64,
}

impl Worker {
    pub(crate) fn run(mut self) {
        // Timers of this thread (the coalescing window) fire on time instead of up to the
        // default 50 µs late.
        // SAFETY: PR_SET_TIMERSLACK takes an integer and touches no memory of ours.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
        let mut batch = Batch::new();
        let mut local = WorkerStatsSnapshot::default();
        let mut next_idle_scan = 0u64;
        loop {
            if !self.apply_commands(&mut local) {
                break;
            }
            let n = match self.io.recv(&mut batch, POLL_TIMEOUT) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(worker = self.id, error = %e, "receive failed");
                    std::thread::sleep(Duration::from_millis(10));
                    0
                }
            };
            let started = Instant::now();
            let since = started.duration_since(self.epoch);
            let clock = Clock {
                now_ms: since.as_millis() as u64,
                now_us: since.as_micros() as u64,
                unix_nanos: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            };
            if n > 0 {
                local.batches += 1;
                local.packets_received += n as u64;
                for i in 0..n {
                    let (meta, buf) = (&mut batch.meta[i], &mut batch.bufs[i]);
                    self.process(meta, buf, &clock, &mut local);
                }
                let report = self.io.send(&mut batch);
                local.packets_sent += report.sent;
                local.send_failures += report.failed;
                local.busy_ns += started.elapsed().as_nanos() as u64;
            }
            let late = self.io.take_report();
            local.packets_sent += late.sent;
            local.send_failures += late.failed;
            if clock.now_ms >= next_idle_scan {
                self.scan_idle(clock.now_ms);
                next_idle_scan = clock.now_ms + IDLE_SCAN_EVERY_MS;
            }
            local.flush_into(&self.stats);
        }
        let last = self.io.flush();
        local.packets_sent += last.sent;
        local.send_failures += last.failed;
        local.flush_into(&self.stats);
    }

    /// Handles one received datagram; sets `meta.out` when it is to be sent.
    #[inline]
    fn process(
        &mut self,
        meta: &mut PacketMeta,
        buf: &mut [u8; BUF_SIZE],
        clock: &Clock,
        st: &mut WorkerStatsSnapshot,
    ) {
        if meta.oversized {
            st.oversized += 1;
            return;
        }
        let kind = classify(&buf[..meta.len]);
        let rtcp = match kind {
            PacketKind::Rtp => false,
            PacketKind::Rtcp => true,
            PacketKind::Stun | PacketKind::Dtls => {
                self.punt(meta, kind, &buf[..meta.len], st);
                return;
            }
            _ => {
                st.malformed += 1;
                return;
            }
        };
        let Some(port) = self.table.get_mut(meta.local) else {
            st.unknown_port += 1;
            return;
        };
        let Some(flow) = port.flow.as_mut() else {
            st.unknown_port += 1;
            return;
        };
        let latched = port.peer.filter(|p| p.latched);
        if flow.spec.strict_source && latched.is_some_and(|p| p.addr != meta.peer) {
            flow.counters.wrong_source += 1;
            st.wrong_source += 1;
            return;
        }
        flow.counters.packets_in += 1;
        flow.counters.bytes_in += meta.len as u64;
        flow.counters.rtcp_in += rtcp as u64;
        flow.last_seen_ms = clock.now_ms;
        flow.idle_reported = false;
        let tap_kind = if rtcp { TapKind::Rtcp } else { TapKind::Rtp };
        for t in flow.taps.iter().filter(|t| t.what == TapWhat::AsReceived) {
            t.offer(tap_kind, clock.unix_nanos, &buf[..meta.len]);
        }
        let len = match &mut flow.spec.ingress {
            Transform::Plain => meta.len,
            Transform::Srtp(ctx) => {
                let r = if rtcp {
                    ctx.unprotect_rtcp(&mut buf[..meta.len])
                } else {
                    ctx.unprotect(&mut buf[..meta.len])
                };
                match r {
                    Ok(n) => n,
                    Err(e) => {
                        flow.count_ingress_error(e);
                        match e {
                            crate::srtp::Error::AuthFailed => st.auth_failures += 1,
                            crate::srtp::Error::Replay | crate::srtp::Error::ReplayOld => {
                                st.replays += 1
                            }
                            _ => st.srtp_errors += 1,
                        }
                        return;
                    }
                }
            }
        };
        // Latching: an authenticated packet may always move the peer (NAT rebinding); a
        // plain one only sets it the first time.
        let authenticated = flow.spec.ingress.is_srtp();
        if flow.spec.latch
            && port.peer.map(|p| p.addr) != Some(meta.peer)
            && (authenticated || latched.is_none())
        {
            port.peer = Some(Peer {
                addr: meta.peer,
                latched: true,
            });
            flow.counters.latches += 1;
        }
        if !rtcp {
            if let Some(v) = RtpView::new(&buf[..len]) {
                let units = clock.now_us * flow.spec.clock_rate as u64 / 1_000_000;
                flow.stats.update(v.ssrc(), v.seq(), v.timestamp(), units);
            }
        }
        let out_port = if rtcp {
            flow.spec.rtcp_out
        } else {
            flow.spec.rtp_out
        };
        // The destination is the peer of the port the packet leaves from.
        let Some(dest) = self.table.get(out_port).and_then(|p| p.peer) else {
            if let Some(f) = self.table.get_mut(meta.local).and_then(|p| p.flow.as_mut()) {
                f.counters.no_destination += 1;
            }
            st.no_destination += 1;
            return;
        };
        let Some(flow) = self.table.get_mut(meta.local).and_then(|p| p.flow.as_mut()) else {
            return;
        };
        // Plaintext taps see what is relayed: not packets dropped for want of a destination
        // (e.g. while a call's flows are being installed), so delivered = relayed.
        for t in flow.taps.iter().filter(|t| t.what == TapWhat::Plaintext) {
            t.offer(tap_kind, clock.unix_nanos, &buf[..len]);
        }
        let out_len = match &mut flow.spec.egress {
            Transform::Plain => len,
            Transform::Srtp(ctx) => {
                let r = if rtcp {
                    ctx.protect_rtcp(buf, len)
                } else {
                    ctx.protect(buf, len)
                };
                match r {
                    Ok(n) => n,
                    Err(_) => {
                        flow.counters.protect_errors += 1;
                        st.srtp_errors += 1;
                        return;
                    }
                }
            }
        };
        flow.counters.packets_out += 1;
        flow.counters.bytes_out += out_len as u64;
        meta.out = Some(Out {
            from: out_port,
            to: dest.addr,
            len: out_len,
        });
    }

    fn punt(&self, meta: &PacketMeta, kind: PacketKind, data: &[u8], st: &mut WorkerStatsSnapshot) {
        if self.table.get(meta.local).is_none() {
            st.unknown_port += 1;
            return;
        }
        let ev = EngineEvent::SlowPath {
            local: meta.local,
            from: meta.peer,
            kind,
            data: data.to_vec(),
        };
        if self.events.push(ev).is_ok() {
            st.slow_path += 1;
        } else {
            st.slow_path_dropped += 1;
        }
    }

    fn scan_idle(&mut self, now_ms: u64) {
        let timeout = self.idle_timeout_ms;
        let events = &self.events;
        for (local, flow) in self.table.flows_mut() {
            if !flow.idle_reported && now_ms.saturating_sub(flow.last_seen_ms) >= timeout {
                // Reported once; if the queue is full, the next scan tries again.
                flow.idle_reported = events.push(EngineEvent::Idle { local }).is_ok();
            }
        }
    }

    /// Applies queued commands; false when the worker is to stop.
    fn apply_commands(&mut self, st: &mut WorkerStatsSnapshot) -> bool {
        while let Some(req) = self.commands.pop() {
            st.commands += 1;
            let stop = matches!(req.command, Command::Shutdown);
            let reply = self.apply(req.command);
            if let Some(tx) = req.reply {
                let _ = tx.send(reply);
            }
            if stop {
                return false;
            }
        }
        true
    }

    fn apply(&mut self, command: Command) -> Reply {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        match command {
            Command::Attach(local, socket) => {
                if !self.table.attach(local) {
                    return Reply::Failed(format!("{local} is outside this worker's table"));
                }
                match self.io.attach(local, socket) {
                    Ok(()) => Reply::Done,
                    Err(e) => {
                        self.table.detach(local);
                        Reply::Failed(format!("attaching {local}: {e}"))
                    }
                }
            }
            Command::Detach(local) => {
                self.io.detach(local);
                self.table.detach(local);
                Reply::Done
            }
            Command::Install(local, spec) => match self.table.get_mut(local) {
                Some(p) => {
                    // A re-install keeps the taps of the flow it replaces, and takes those
                    // attached while the port had no flow.
                    let mut flow = Flow::new(*spec, now_ms);
                    if let Some(old) = p.flow.take() {
                        flow.taps = old.taps;
                    }
                    flow.taps.append(&mut p.pending_taps);
                    p.flow = Some(flow);
                    Reply::Done
                }
                None => Reply::NoSuchPort,
            },
            Command::UpdateKeys {
                local,
                ingress,
                egress,
            } => match self.flow_mut(local) {
                Ok(f) => {
                    if let Some(t) = ingress {
                        f.spec.ingress = t;
                    }
                    if let Some(t) = egress {
                        f.spec.egress = t;
                    }
                    Reply::Done
                }
                Err(r) => r,
            },
            Command::SetPeer(local, addr) => match self.table.get_mut(local) {
                Some(p) => {
                    p.peer = addr.map(|addr| Peer {
                        addr,
                        latched: false,
                    });
                    Reply::Done
                }
                None => Reply::NoSuchPort,
            },
            Command::AttachTap(local, tap) => match self.table.get_mut(local) {
                Some(p) => {
                    let taps = match p.flow.as_mut() {
                        Some(f) => &mut f.taps,
                        None => &mut p.pending_taps,
                    };
                    taps.retain(|t| t.id != tap.id);
                    taps.push(tap);
                    Reply::Done
                }
                None => Reply::NoSuchPort,
            },
            Command::DetachTap(local, id) => match self.table.get_mut(local) {
                Some(p) => {
                    if let Some(f) = p.flow.as_mut() {
                        f.taps.retain(|t| t.id != id);
                    }
                    p.pending_taps.retain(|t| t.id != id);
                    Reply::Done
                }
                None => Reply::NoSuchPort,
            },
            Command::Remove(local) => match self.table.get_mut(local) {
                Some(p) => {
                    p.flow = None;
                    p.pending_taps.clear();
                    Reply::Done
                }
                None => Reply::NoSuchPort,
            },
            Command::Query(local) => match self.table.get(local) {
                Some(p) => match &p.flow {
                    Some(f) => Reply::Flow {
                        counters: Box::new(f.snapshot(now_ms)),
                        peer: p.peer,
                    },
                    None => Reply::NoSuchFlow,
                },
                None => Reply::NoSuchPort,
            },
            Command::SendRaw { local, to, data } => {
                if self.table.get(local).is_none() {
                    return Reply::NoSuchPort;
                }
                let batch = self.raw.get_or_insert_with(|| Batch::with_capacity(1));
                let n = data.len().min(BUF_SIZE);
                batch.bufs[0][..n].copy_from_slice(&data[..n]);
                batch.meta[0].out = Some(Out {
                    from: local,
                    to,
                    len: n,
                });
                batch.len = 1;
                let r = self.io.send(batch);
                if r.sent == 1 {
                    Reply::Done
                } else {
                    Reply::Failed("send failed".into())
                }
            }
            Command::Shutdown => Reply::Done,
        }
    }

    fn flow_mut(&mut self, local: super::LocalPort) -> Result<&mut Flow, Reply> {
        match self.table.get_mut(local) {
            Some(p) => p.flow.as_mut().ok_or(Reply::NoSuchFlow),
            None => Err(Reply::NoSuchPort),
        }
    }
}
