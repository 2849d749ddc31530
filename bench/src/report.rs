//! What a run reports: serializable structures (the `--json` output) and the human table.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::receiver::Anomalies;

/// Latency percentiles, microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let us = |ns: u64| ns as f64 / 1e3;
        Latency {
            samples: h.len(),
            mean: h.mean() / 1e3,
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// CPU time of one thread over a phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ThreadUse {
    pub name: String,
    pub tid: u32,
    pub cpu_s: f64,
    /// CPU time over wall time (1.0: the thread never waited).
    pub busy: f64,
    /// Time runnable but waiting for a CPU, over wall time (other work on its cores).
    #[serde(default)]
    pub starved: f64,
}

/// The relay process's CPU use over a phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RelayCpu {
    pub pid: u32,
    pub name: String,
    /// User + system seconds (from /proc/PID/stat).
    pub cpu_s: f64,
    /// Average cores busy.
    pub cores: f64,
    /// Delivered packets per relay CPU second: packets/s per core.
    pub packets_per_core_s: f64,
    /// Relay CPU microseconds per delivered packet.
    pub us_per_packet: f64,
    pub threads: Vec<ThreadUse>,
}

/// The bench's own CPU use over a phase.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GeneratorCpu {
    pub cpu_s: f64,
    pub cores_allowed: usize,
    pub cores_used: f64,
    pub senders: Vec<ThreadUse>,
    pub receivers: Vec<ThreadUse>,
    pub saturated: bool,
}

/// Datagrams the kernel dropped on full socket buffers during a phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Drops {
    /// On the relay's media ports (the relay did not read fast enough).
    pub relay_sockets: u64,
    /// On the bench's endpoint sockets (the bench did not read fast enough).
    pub bench_sockets: u64,
}

/// One phase: a load held for a duration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PhaseReport {
    /// Offered rate asked for (packets/s, all streams); `None` for `--rate max`.
    pub target_pps: Option<f64>,
    /// Sending time.
    pub duration_s: f64,
    /// Sending plus draining time (the CPU window).
    pub window_s: f64,
    pub sent: u64,
    pub send_failed: u64,
    /// Distinct packets received intact.
    pub delivered: u64,
    pub lost: u64,
    pub loss_ratio: f64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Packets of an earlier phase.
    pub stale: u64,
    pub anomalies: Anomalies,
    pub offered_pps: f64,
    pub delivered_pps: f64,
    pub latency_us: Latency,
    pub jitter_us_mean: f64,
    pub jitter_us_max: f64,
    pub relay_cpu: Option<RelayCpu>,
    pub generator: GeneratorCpu,
    pub drops: Drops,
    pub warnings: Vec<String>,
}

/// How the calls were set up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SetupReport {
    pub calls: usize,
    pub streams: usize,
    pub seconds: f64,
    /// ng request round trips (offer and answer), microseconds.
    pub ng_rtt_us_p50: f64,
    pub ng_rtt_us_max: f64,
    pub passthrough_streams: usize,
    pub delete_failures: usize,
}

/// The configuration a report was made with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    pub ng: String,
    pub media: String,
    pub suite: String,
    pub answer_suites: Vec<String>,
    pub calls: usize,
    pub payload: usize,
    pub senders: usize,
    pub receivers: usize,
    pub legs_per_socket: usize,
    pub flags: Vec<String>,
    pub command: String,
}

/// The `--json` output of `run`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    pub tool: String,
    pub config: RunConfig,
    pub setup: SetupReport,
    pub result: PhaseReport,
}

/// The knee of a step run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Knee {
    pub offered_pps: f64,
    pub delivered_pps: f64,
    pub loss_ratio: f64,
    pub p99_us: f64,
}

/// The `--json` output of `step`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepReport {
    pub tool: String,
    pub config: RunConfig,
    pub setup: SetupReport,
    pub max_loss: f64,
    pub max_p99_us: f64,
    pub steps: Vec<PhaseReport>,
    pub knee: Option<Knee>,
    pub stopped_because: String,
}

fn pct(r: f64) -> String {
    format!("{:.4}%", r * 100.0)
}

/// The human table of one phase.
pub fn phase_table(p: &PhaseReport) -> String {
    let mut s = String::new();
    let target = p
        .target_pps
        .map_or("max".to_string(), |t| format!("{t:.0} pkt/s"));
    let _ = writeln!(s, "  offered (asked)      {target}");
    let _ = writeln!(
        s,
        "  offered              {:.0} pkt/s  ({} packets in {:.2} s{})",
        p.offered_pps,
        p.sent,
        p.duration_s,
        if p.send_failed > 0 {
            format!(", {} refused by the kernel", p.send_failed)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "  delivered            {:.0} pkt/s  ({} packets)",
        p.delivered_pps, p.delivered
    );
    let _ = writeln!(
        s,
        "  lost                 {} ({})   dropped at relay sockets {}, at bench sockets {}",
        p.lost,
        pct(p.loss_ratio),
        p.drops.relay_sockets,
        p.drops.bench_sockets
    );
    let _ = writeln!(
        s,
        "  duplicates {}   reordered {}   corrupt {}   misrouted {}   unknown {}   too old {}   stale {}",
        p.duplicates,
        p.reordered,
        p.anomalies.corrupt,
        p.anomalies.misrouted,
        p.anomalies.unknown,
        p.anomalies.too_old,
        p.stale
    );
    let l = &p.latency_us;
    let _ = writeln!(
        s,
        "  latency µs           p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (send → kernel receive, {} samples)",
        l.p50, l.p90, l.p99, l.p999, l.max, l.samples
    );
    let _ = writeln!(
        s,
        "  jitter µs            mean {:.1}  max {:.1}",
        p.jitter_us_mean, p.jitter_us_max
    );
    match &p.relay_cpu {
        Some(r) => {
            let _ = writeln!(
                s,
                "  relay CPU            {:.2} s in {:.2} s = {:.2} cores ({} pid {})",
                r.cpu_s, p.window_s, r.cores, r.name, r.pid
            );
            let _ = writeln!(
                s,
                "  relay per core       {:.0} pkt/s per core, {:.2} µs CPU per packet",
                r.packets_per_core_s, r.us_per_packet
            );
            let busiest: Vec<String> = r
                .threads
                .iter()
                .take(4)
                .map(|t| {
                    format!(
                        "{} {:.0}% (waited for a CPU {:.0}%)",
                        t.name,
                        t.busy * 100.0,
                        t.starved * 100.0
                    )
                })
                .collect();
            if !busiest.is_empty() {
                let _ = writeln!(s, "  relay threads        {}", busiest.join(", "));
            }
        }
        None => {
            let _ = writeln!(
                s,
                "  relay CPU            unknown (no relay process found; pass --pid)"
            );
        }
    }
    let g = &p.generator;
    let threads: Vec<String> = g
        .senders
        .iter()
        .chain(&g.receivers)
        .map(|t| format!("{} {:.0}%", t.name, t.busy * 100.0))
        .collect();
    let _ = writeln!(
        s,
        "  bench CPU            {:.2} of {} cores ({})",
        g.cores_used,
        g.cores_allowed,
        threads.join(", ")
    );
    for w in &p.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    s
}

/// The header lines of a report.
pub fn setup_table(c: &RunConfig, s: &SetupReport) -> String {
    format!(
        "relay {}: {} calls ({} streams), media {}, suite {} (B accepts {}), {}-byte payload\n\
         setup {:.2} s, ng round trip p50 {:.0} µs max {:.0} µs; {} sender and {} receiver threads, {} legs per socket\n",
        c.ng,
        s.calls,
        s.streams,
        c.media,
        c.suite,
        c.answer_suites.join(","),
        c.payload,
        s.seconds,
        s.ng_rtt_us_p50,
        s.ng_rtt_us_max,
        c.senders,
        c.receivers,
        c.legs_per_socket
    )
}

/// One line per step, for the step table.
pub fn step_line(p: &PhaseReport) -> String {
    format!(
        "{:>12.0} {:>12.0} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>9}",
        p.offered_pps,
        p.delivered_pps,
        pct(p.loss_ratio),
        p.latency_us.p50,
        p.latency_us.p99,
        p.latency_us.p999,
        p.relay_cpu
            .as_ref()
            .map_or("-".to_string(), |r| format!("{:.0}", r.packets_per_core_s)),
        p.relay_cpu
            .as_ref()
            .map_or("-".to_string(), |r| format!("{:.2}", r.us_per_packet)),
    )
}

pub const STEP_HEADER: &str =
    "   offered/s  delivered/s       loss   p50 µs    p99 µs  p99.9 µs  pkt/s/core  µs/pkt";
