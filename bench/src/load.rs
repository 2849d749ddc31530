//! The load: endpoint sockets, calls set up on the relay, and the streams of those calls
//! split over sender and receiver threads. A load runs one or more phases (one for `run`,
//! one per step of `step`) and reports each with the relay's and its own CPU use.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite, MAX_WINDOW};

use crate::account::StreamAccount;
use crate::calls::{open_sockets, CallPlan, CallSetup, SetupError};
use crate::io::RawAddr;
use crate::ng_client::NgClient;
use crate::packet::template;
use crate::procstat;
use crate::receiver::{self, new_histogram, Anomalies, ReceiverWork, RxStream};
use crate::report::{Drops, GeneratorCpu, Latency, PhaseReport, RelayCpu, ThreadUse};
use crate::sender::{self, Pace, TxGroup, TxStream};

/// How the load is spread over the bench's threads and sockets.
#[derive(Clone, Debug)]
pub struct LoadShape {
    pub calls: usize,
    pub senders: usize,
    pub receivers: usize,
    /// RTP payload bytes.
    pub payload: usize,
    /// Legs that share one endpoint socket (1: a socket per leg, as phones have).
    pub legs_per_socket: usize,
    pub local_ip: IpAddr,
}

/// One phase: how fast, how long, and how long to wait for stragglers afterwards.
#[derive(Clone, Copy, Debug)]
pub struct PhaseSpec {
    pub pace: Pace,
    pub duration: Duration,
    pub drain: Duration,
}

/// Calls set up on the relay and the streams that run through them.
pub struct Load {
    _sockets: Vec<UdpSocket>,
    senders: Vec<Vec<TxGroup>>,
    receivers: Vec<ReceiverWork>,
    pub call_ids: Vec<String>,
    pub streams: usize,
    /// Streams whose key the relay passed through instead of re-encrypting.
    pub passthrough: usize,
    relay_ports: Vec<u16>,
    local_ports: Vec<u16>,
    /// ng round-trip times of offer and answer, microseconds.
    pub setup_rtt_us: Vec<f64>,
    pub setup_seconds: f64,
    /// Latency histogram (ns) of the last phase.
    pub last_latency: hdrhistogram::Histogram<u64>,
}

fn context(key: Option<(Suite, MasterKey)>) -> Option<SrtpContext> {
    let (suite, key) = key?;
    let mut policy = Policy::new(suite, key);
    policy.replay_window = MAX_WINDOW;
    SrtpContext::new(policy).ok()
}

impl Load {
    /// Opens the endpoints and sets every call up; on a failure the calls already set up are
    /// deleted before the error returns.
    pub fn setup(
        ng: &mut NgClient,
        plan: &CallPlan,
        shape: &LoadShape,
        progress: Option<&ProgressBar>,
    ) -> Result<Load, SetupError> {
        let g = shape.legs_per_socket.max(1);
        let per_side = shape.calls.div_ceil(g);
        let sockets = open_sockets(shape.local_ip, 2 * per_side)?;
        let addr = |i: usize| {
            sockets[i]
                .local_addr()
                .map_err(|source| SetupError::Socket {
                    ip: shape.local_ip,
                    source,
                })
        };
        let t0 = Instant::now();
        let mut calls: Vec<CallSetup> = Vec::with_capacity(shape.calls);
        let mut rtt = Vec::with_capacity(shape.calls);
        for i in 0..shape.calls {
            let (a, b) = (addr(i / g)?, addr(per_side + i / g)?);
            let t = Instant::now();
            match plan.setup(ng, i, a, b) {
                Ok(c) => calls.push(c),
                Err(e) => {
                    for c in &calls {
                        let _ = plan.delete(ng, &c.call_id);
                    }
                    return Err(e);
                }
            }
            rtt.push(t.elapsed().as_secs_f64() * 1e6 / 2.0);
            if let Some(p) = progress {
                p.inc(1);
            }
        }
        let setup_seconds = t0.elapsed().as_secs_f64();
        let s_threads = shape.senders.max(1);
        let r_threads = shape.receivers.max(1);
        let streams = 2 * shape.calls;
        let mut senders: Vec<Vec<TxGroup>> = (0..s_threads).map(|_| Vec::new()).collect();
        let mut group_of: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut rx: Vec<(Vec<std::os::fd::RawFd>, Vec<RxStream>)> =
            (0..r_threads).map(|_| (Vec::new(), Vec::new())).collect();
        let mut rx_slot: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut passthrough = 0;
        let mut relay_ports = Vec::new();
        let mut call_ids = Vec::new();
        for (i, c) in calls.into_iter().enumerate() {
            call_ids.push(c.call_id);
            let a_sock = i / g;
            let b_sock = per_side + i / g;
            for (dir, plan, tx_sock, rx_sock) in [
                (0u32, c.a_to_b, a_sock, b_sock),
                (1, c.b_to_a, b_sock, a_sock),
            ] {
                let id = 2 * i as u32 + dir;
                passthrough += plan.passthrough as usize;
                relay_ports.push(plan.dest.port());
                let &mut (t, gi) = group_of.entry(tx_sock).or_insert_with(|| {
                    let t = tx_sock % s_threads;
                    senders[t].push(TxGroup {
                        fd: sockets[tx_sock].as_raw_fd(),
                        streams: Vec::new(),
                    });
                    (t, senders[t].len() - 1)
                });
                senders[t][gi].streams.push(TxStream {
                    id,
                    dest: RawAddr::new(plan.dest),
                    ctx: context(plan.tx_key),
                    template: template(id, shape.payload, 0),
                    next: 0,
                    failed: 0,
                });
                let &mut (r, fi) = rx_slot.entry(rx_sock).or_insert_with(|| {
                    let r = rx_sock % r_threads;
                    rx[r].0.push(sockets[rx_sock].as_raw_fd());
                    (r, rx[r].0.len() - 1)
                });
                rx[r].1.push(RxStream {
                    id,
                    socket: fi,
                    ctx: context(plan.rx_key),
                    account: StreamAccount::new(0),
                });
            }
        }
        let receivers = rx
            .into_iter()
            .map(|(fds, st)| ReceiverWork::new(fds, st, streams, shape.payload))
            .collect();
        let local_ports = sockets
            .iter()
            .filter_map(|s| s.local_addr().ok().map(|a| a.port()))
            .collect();
        relay_ports.sort_unstable();
        relay_ports.dedup();
        Ok(Load {
            _sockets: sockets,
            senders,
            receivers,
            call_ids,
            streams,
            passthrough,
            relay_ports,
            local_ports,
            setup_rtt_us: rtt,
            setup_seconds,
            last_latency: new_histogram(),
        })
    }

    /// Deletes every call; returns how many deletes failed.
    pub fn teardown(&self, ng: &mut NgClient, plan: &CallPlan) -> usize {
        self.call_ids
            .iter()
            .filter(|id| plan.delete(ng, id).is_err())
            .count()
    }

    /// Runs one phase and reports it. `relay_pid` is the relay process whose CPU is read.
    pub fn run_phase(
        &mut self,
        spec: PhaseSpec,
        relay_pid: Option<u32>,
        progress: Option<&ProgressBar>,
    ) -> PhaseReport {
        let dur = spec.duration.as_secs_f64();
        let upper = match spec.pace {
            Pace::PerStream(pps) => (dur * pps * 1.2) as u64 + 64,
            Pace::Max => (dur * 4e6) as u64 + 64,
        };
        let mut bases = vec![0u64; self.streams];
        for g in self.senders.iter().flatten() {
            for s in &g.streams {
                bases[s.id as usize] = s.next;
            }
        }
        for r in &mut self.receivers {
            let b: Vec<u64> = r.streams.iter().map(|s| bases[s.id as usize]).collect();
            let bound = b.iter().max().copied().unwrap_or(0) + upper;
            r.reset(&b, bound);
        }
        let failed0: u64 = self
            .senders
            .iter()
            .flatten()
            .flat_map(|g| &g.streams)
            .map(|s| s.failed)
            .sum();
        let mut watched = self.relay_ports.clone();
        watched.extend(&self.local_ports);
        let drops0 = procstat::udp_drops(&watched);
        let relay0 = relay_pid.and_then(procstat::process_cpu_ns);
        let relay_threads0 = relay_pid.map(procstat::threads).unwrap_or_default();
        let self0 = procstat::self_cpu_ns().unwrap_or(0);
        let sent = AtomicU64::new(0);
        let received = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let abort = AtomicBool::new(false);
        let start = Instant::now();
        let (senders_out, receivers_out, send_wall) = std::thread::scope(|scope| {
            let rx: Vec<_> = self
                .receivers
                .iter_mut()
                .enumerate()
                .map(|(i, w)| {
                    let (stop, received) = (&stop, &received);
                    std::thread::Builder::new()
                        .name(format!("bench-rx{i}"))
                        .spawn_scoped(scope, move || receiver::run(w, stop, received))
                        .expect("spawn receiver")
                })
                .collect();
            let tx: Vec<_> = self
                .senders
                .iter_mut()
                .enumerate()
                .map(|(i, groups)| {
                    let (sent, abort) = (&sent, &abort);
                    std::thread::Builder::new()
                        .name(format!("bench-tx{i}"))
                        .spawn_scoped(scope, move || {
                            sender::run(groups, spec.pace, start, spec.duration, sent, abort)
                        })
                        .expect("spawn sender")
                })
                .collect();
            // Bounded: senders stop at the deadline; abort them if they overrun it badly.
            let hard = spec.duration + Duration::from_secs(10);
            while tx.iter().any(|h| !h.is_finished()) {
                if start.elapsed() > hard {
                    abort.store(true, Ordering::Relaxed);
                }
                if let Some(p) = progress {
                    let t = start.elapsed().as_secs_f64().max(1e-3);
                    p.set_position(
                        (start.elapsed().as_millis() as u64).min(spec.duration.as_millis() as u64),
                    );
                    p.set_message(format!(
                        "sent {:.0}/s, received {:.0}/s",
                        sent.load(Ordering::Relaxed) as f64 / t,
                        received.load(Ordering::Relaxed) as f64 / t
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let send_wall = start.elapsed();
            let senders_out: Vec<_> = tx
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect();
            // Drain: until nothing arrived for 100 ms, at most spec.drain.
            let drain_end = Instant::now() + spec.drain;
            let mut last = received.load(Ordering::Relaxed);
            let mut quiet_since = Instant::now();
            while Instant::now() < drain_end {
                std::thread::sleep(Duration::from_millis(20));
                let now = received.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    quiet_since = Instant::now();
                } else if quiet_since.elapsed() >= Duration::from_millis(100) {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            let receivers_out: Vec<_> = rx
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect();
            (senders_out, receivers_out, send_wall)
        });
        let window = start.elapsed().as_secs_f64();
        let relay1 = relay_pid.and_then(procstat::process_cpu_ns);
        let relay_threads1 = relay_pid.map(procstat::threads).unwrap_or_default();
        let self1 = procstat::self_cpu_ns().unwrap_or(0);
        let drops1 = procstat::udp_drops(&watched);
        let drops = |ports: &[u16]| -> u64 {
            ports
                .iter()
                .map(|p| {
                    drops1
                        .get(p)
                        .unwrap_or(&0)
                        .saturating_sub(*drops0.get(p).unwrap_or(&0))
                })
                .sum()
        };
        let send_s = spec
            .duration
            .as_secs_f64()
            .min(send_wall.as_secs_f64())
            .max(1e-3);

        let mut hist = new_histogram();
        let mut anomalies = Anomalies::default();
        let (mut delivered, mut dups, mut reordered, mut stale) = (0u64, 0u64, 0u64, 0u64);
        let (mut jit_sum, mut jit_max, mut jit_n) = (0f64, 0f64, 0usize);
        for r in &self.receivers {
            let _ = hist.add(&r.latency);
            anomalies.corrupt += r.anomalies.corrupt;
            anomalies.unknown += r.anomalies.unknown;
            anomalies.misrouted += r.anomalies.misrouted;
            anomalies.too_old += r.anomalies.too_old;
            for s in &r.streams {
                delivered += s.account.unique;
                dups += s.account.duplicates;
                reordered += s.account.reordered;
                stale += s.account.stale;
                if s.account.unique > 1 {
                    jit_sum += s.account.jitter_ns;
                    jit_max = jit_max.max(s.account.jitter_ns);
                    jit_n += 1;
                }
            }
        }
        let sent_n: u64 = senders_out.iter().map(|o| o.sent).sum();
        let failed_n: u64 = self
            .senders
            .iter()
            .flatten()
            .flat_map(|g| &g.streams)
            .map(|s| s.failed)
            .sum::<u64>()
            - failed0;
        let scheduled: u64 = senders_out.iter().map(|o| o.scheduled).sum();
        let lost = sent_n.saturating_sub(delivered);

        let thread_use = |name: String, tid: u32, cpu_ns: u64| ThreadUse {
            name,
            tid,
            cpu_s: cpu_ns as f64 / 1e9,
            busy: cpu_ns as f64 / 1e9 / window,
            starved: 0.0,
        };
        let senders_use: Vec<ThreadUse> = senders_out
            .iter()
            .enumerate()
            .map(|(i, o)| ThreadUse {
                busy: o.cpu_ns as f64 / o.wall_ns.max(1) as f64,
                starved: o.wait_ns as f64 / o.wall_ns.max(1) as f64,
                ..thread_use(format!("bench-tx{i}"), o.tid, o.cpu_ns)
            })
            .collect();
        let receivers_use: Vec<ThreadUse> = receivers_out
            .iter()
            .enumerate()
            .map(|(i, o)| ThreadUse {
                starved: o.wait_ns as f64 / 1e9 / window,
                ..thread_use(format!("bench-rx{i}"), o.tid, o.cpu_ns)
            })
            .collect();
        let cores_allowed = procstat::allowed_cpus();
        let gen_cpu_s = self1.saturating_sub(self0) as f64 / 1e9;
        let mut warnings = Vec::new();
        let sender_saturated = senders_use.iter().any(|t| t.busy > 0.9);
        let gen_saturated = gen_cpu_s / window > 0.9 * cores_allowed as f64;
        if sender_saturated || gen_saturated {
            warnings.push(format!(
                "the generator is saturated (senders up to {:.0}% busy, all bench threads {:.2} of {} cores): the relay may not be the bottleneck; add --senders, cores, or --legs-per-socket",
                senders_use.iter().map(|t| t.busy * 100.0).fold(0.0, f64::max),
                gen_cpu_s / window,
                cores_allowed
            ));
        }
        if scheduled > 0 && (sent_n + failed_n) < scheduled * 99 / 100 {
            warnings.push(format!(
                "the senders fell behind the schedule: {} of {} packets went out",
                sent_n + failed_n,
                scheduled
            ));
        }
        if self.passthrough > 0 {
            warnings.push(format!(
                "the relay passed {} of {} streams' SDES keys through (no re-encryption there); choose --answer-suite different from --suite to make it re-encrypt",
                self.passthrough, self.streams
            ));
        }
        if failed_n > 0 {
            warnings.push(format!("the kernel refused {failed_n} sends"));
        }

        let relay_cpu = match (relay_pid, relay0, relay1) {
            (Some(pid), Some(c0), Some(c1)) => {
                let cpu_s = c1.saturating_sub(c0) as f64 / 1e9;
                let before: HashMap<u32, (u64, u64)> = relay_threads0
                    .iter()
                    .map(|t| (t.tid, (t.cpu_ns, t.wait_ns)))
                    .collect();
                let mut threads: Vec<ThreadUse> = relay_threads1
                    .iter()
                    .map(|t| {
                        let (c0, w0) = before.get(&t.tid).copied().unwrap_or((0, 0));
                        ThreadUse {
                            starved: t.wait_ns.saturating_sub(w0) as f64 / 1e9 / window,
                            ..thread_use(t.name.clone(), t.tid, t.cpu_ns.saturating_sub(c0))
                        }
                    })
                    .filter(|t| t.cpu_s > 0.0)
                    .collect();
                threads.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
                Some(RelayCpu {
                    pid,
                    name: procstat::process_name(pid).unwrap_or_default(),
                    cpu_s,
                    cores: cpu_s / window,
                    packets_per_core_s: if cpu_s > 0.0 {
                        delivered as f64 / cpu_s
                    } else {
                        0.0
                    },
                    us_per_packet: if delivered > 0 {
                        cpu_s * 1e6 / delivered as f64
                    } else {
                        0.0
                    },
                    threads,
                })
            }
            _ => None,
        };
        let starved: Vec<String> = relay_cpu
            .iter()
            .flat_map(|r| r.threads.iter())
            .chain(senders_use.iter())
            .chain(receivers_use.iter())
            .filter(|t| t.starved > 0.1)
            .map(|t| format!("{} {:.0}%", t.name, t.starved * 100.0))
            .collect();
        if !starved.is_empty() {
            warnings.push(format!(
                "threads waited for a CPU (other work on their cores): {}; latency and maximum rates are not the relay's own, CPU per packet still is",
                starved.join(", ")
            ));
        }
        let latency_us = Latency::from_histogram(&hist);
        self.last_latency = hist;
        PhaseReport {
            target_pps: match spec.pace {
                Pace::PerStream(pps) => Some(pps * self.streams as f64),
                Pace::Max => None,
            },
            duration_s: send_s,
            window_s: window,
            sent: sent_n,
            send_failed: failed_n,
            delivered,
            lost,
            loss_ratio: if sent_n > 0 {
                lost as f64 / sent_n as f64
            } else {
                0.0
            },
            duplicates: dups,
            reordered,
            stale,
            anomalies,
            offered_pps: sent_n as f64 / send_s,
            delivered_pps: delivered as f64 / send_s,
            latency_us,
            jitter_us_mean: if jit_n > 0 {
                jit_sum / jit_n as f64 / 1e3
            } else {
                0.0
            },
            jitter_us_max: jit_max / 1e3,
            relay_cpu,
            generator: GeneratorCpu {
                cpu_s: gen_cpu_s,
                cores_allowed,
                cores_used: gen_cpu_s / window,
                senders: senders_use,
                receivers: receivers_use,
                saturated: sender_saturated || gen_saturated,
            },
            drops: Drops {
                relay_sockets: drops(&self.relay_ports),
                bench_sockets: drops(&self.local_ports),
            },
            warnings,
        }
    }
}
