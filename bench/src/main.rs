//! `srtpgate-bench`: load tester for any relay that speaks the rtpengine ng protocol.
//!
//! `srtpgate-bench run --ng 127.0.0.1:2223 --calls 100 --pps-per-stream 50 --duration 30s`
//! `srtpgate-bench step --ng 127.0.0.1:2223 --calls 100 --start-rate 10000 --factor 1.5`
//! `srtpgate-bench compare DIR --a srtpgate --b rtpengine`

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::calls::{CallPlan, Media};
use bench::load::{Load, LoadShape, PhaseSpec};
use bench::ng_client::NgClient;
use bench::report::{self, RunConfig, RunReport, SetupReport, StepReport};
use bench::sender::Pace;
use bench::{compare, plot, procstat};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use relay::srtp::Suite;

#[derive(Parser)]
#[command(
    name = "srtpgate-bench",
    version,
    about = "Load tester for relays that speak the rtpengine ng protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set calls up, stream for a duration, report, tear the calls down.
    Run(RunArgs),
    /// Raise the offered rate step by step until loss or p99 latency exceed their bounds;
    /// print the knee.
    Step(StepArgs),
    /// Print the ratio table of two relays from `run --json` reports in a directory.
    Compare(CompareArgs),
    /// Wait until the relay answers ng `ping` (for scripts that start a relay).
    Ping(PingArgs),
}

#[derive(Args)]
struct PingArgs {
    #[arg(long, value_name = "ADDR:PORT")]
    ng: SocketAddr,
    /// Give up after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    wait: Duration,
}

fn ping(a: PingArgs) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + a.wait;
    let mut ng = NgClient::new(a.ng, Duration::from_millis(200), 1)?;
    loop {
        match ng.ping() {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() >= deadline => {
                bail!("no pong from {} within {:?}: {e}", a.ng, a.wait)
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 30s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("bad duration unit in {s:?}: ms, s or m")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Args, Clone)]
struct Common {
    /// The relay's ng address.
    #[arg(long, value_name = "ADDR:PORT")]
    ng: SocketAddr,
    /// Calls (each has two streams, A→B and B→A).
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// srtp, rtp, srtp-to-rtp or rtp-to-srtp.
    #[arg(long, default_value = "srtp")]
    media: Media,
    /// The SRTP suite A offers.
    #[arg(long, default_value = "AES_CM_128_HMAC_SHA1_80")]
    suite: Suite,
    /// Suites B accepts from the relay's offer, in order of preference [default: --suite].
    #[arg(long, value_delimiter = ',')]
    answer_suite: Vec<Suite>,
    /// Extra entries of the ng `flags` list (repeatable).
    #[arg(long = "flag", value_name = "FLAG")]
    flags: Vec<String>,
    /// Do not send the `SDES-pad` flag (rtpengine writes unpadded keys without it).
    #[arg(long)]
    no_sdes_pad: bool,
    /// ng `metadata` sent with every offer (e.g. `sip:alice@example.com`, which srtpgate
    /// matches against lawful-interception tasks).
    #[arg(long)]
    metadata: Option<String>,
    /// RTP payload bytes per packet (160: 20 ms of G.711).
    #[arg(long, default_value_t = 160)]
    payload: usize,
    /// Sender threads.
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Receiver threads.
    #[arg(long, default_value_t = 1)]
    receivers: usize,
    /// Call legs that share one endpoint socket (more batching per sendmmsg).
    #[arg(long, default_value_t = 1)]
    legs_per_socket: usize,
    /// Address of the bench's endpoints.
    #[arg(long, default_value = "127.0.0.1")]
    local: IpAddr,
    /// PID of the relay (default: the owner of the ng port, else --relay-name).
    #[arg(long)]
    pid: Option<u32>,
    /// Process name of the relay, to find its PID.
    #[arg(long)]
    relay_name: Option<String>,
    /// Wait for each ng reply.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    ng_timeout: Duration,
    /// Attempts per ng request.
    #[arg(long, default_value_t = 3)]
    ng_attempts: u32,
    /// How long to wait for late packets after sending stops.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    drain: Duration,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a PNG plot (latency distribution for run; latency and loss against load for step).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// No progress display.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Packets per second of each stream.
    #[arg(long, default_value_t = 50.0)]
    pps_per_stream: f64,
    /// Total offered packets/s (overrides --pps-per-stream), or `max`.
    #[arg(long)]
    rate: Option<String>,
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
}

#[derive(Args)]
struct StepArgs {
    #[command(flatten)]
    common: Common,
    /// Offered packets/s (all streams) of the first step.
    #[arg(long, default_value_t = 10_000.0)]
    start_rate: f64,
    /// Each step offers this many times the previous one.
    #[arg(long, default_value_t = 1.5)]
    factor: f64,
    /// Stop after this offered rate.
    #[arg(long, default_value_t = 2_000_000.0)]
    max_rate: f64,
    #[arg(long, default_value_t = 12)]
    max_steps: usize,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    step_duration: Duration,
    /// Loss ratio the knee must stay under.
    #[arg(long, default_value_t = 0.001)]
    max_loss: f64,
    /// p99 latency the knee must stay under.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    max_p99: Duration,
}

#[derive(Args)]
struct CompareArgs {
    /// Directory with NAME-equal.json, NAME-max.json and NAME-rtp.json for both relays.
    dir: PathBuf,
    #[arg(long, default_value = "srtpgate")]
    a: String,
    #[arg(long, default_value = "rtpengine")]
    b: String,
}

struct Session {
    ng: NgClient,
    plan: CallPlan,
    shape: LoadShape,
    load: Load,
    pid: Option<u32>,
    config: RunConfig,
}

fn progress(quiet: bool, len: u64, template: &str) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn find_relay(c: &Common) -> Option<u32> {
    if let Some(p) = c.pid {
        return Some(p);
    }
    if let Some(name) = &c.relay_name {
        return procstat::pids_named(name).first().copied();
    }
    procstat::pid_owning_udp_port(c.ng.port())
}

fn open(c: &Common) -> anyhow::Result<Session> {
    if c.calls == 0 {
        bail!("--calls must be at least 1");
    }
    if !(bench::packet::MIN_PAYLOAD..=bench::packet::MAX_PAYLOAD).contains(&c.payload) {
        bail!(
            "--payload must be {}..={} bytes",
            bench::packet::MIN_PAYLOAD,
            bench::packet::MAX_PAYLOAD
        );
    }
    let mut ng = NgClient::new(c.ng, c.ng_timeout, c.ng_attempts)?;
    ng.ping()
        .with_context(|| format!("the relay at {} does not answer ng ping", c.ng))?;
    let pid = find_relay(c);
    let mut flags = c.flags.clone();
    if !c.no_sdes_pad {
        flags.insert(0, "SDES-pad".into());
    }
    let answer_suites = if c.answer_suite.is_empty() {
        vec![c.suite]
    } else {
        c.answer_suite.clone()
    };
    let plan = CallPlan {
        media: c.media,
        suite: c.suite,
        answer_suites: answer_suites.clone(),
        flags: flags.clone(),
        call_id_prefix: format!(
            "srtpgate-bench-{}-{}",
            std::process::id(),
            bench::packet::realtime_ns() % 1_000_000_007
        ),
        metadata: c.metadata.clone(),
    };
    let shape = LoadShape {
        calls: c.calls,
        senders: c.senders.max(1),
        receivers: c.receivers.max(1),
        payload: c.payload,
        legs_per_socket: c.legs_per_socket.max(1),
        local_ip: c.local,
    };
    let bar = progress(
        c.quiet,
        c.calls as u64,
        "setting up calls {bar:40} {pos}/{len}",
    );
    let load = Load::setup(&mut ng, &plan, &shape, Some(&bar))?;
    bar.finish_and_clear();
    let config = RunConfig {
        ng: c.ng.to_string(),
        media: c.media.name().into(),
        suite: if c.media == Media::Rtp {
            "none".into()
        } else {
            c.suite.name().into()
        },
        answer_suites: answer_suites.iter().map(|s| s.name().to_string()).collect(),
        calls: c.calls,
        payload: c.payload,
        senders: shape.senders,
        receivers: shape.receivers,
        legs_per_socket: shape.legs_per_socket,
        flags,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    Ok(Session {
        ng,
        plan,
        shape,
        load,
        pid,
        config,
    })
}

impl Session {
    fn setup_report(&self, delete_failures: usize) -> SetupReport {
        let mut rtt = self.load.setup_rtt_us.clone();
        rtt.sort_by(f64::total_cmp);
        SetupReport {
            calls: self.shape.calls,
            streams: self.load.streams,
            seconds: self.load.setup_seconds,
            ng_rtt_us_p50: rtt.get(rtt.len() / 2).copied().unwrap_or(0.0),
            ng_rtt_us_max: rtt.last().copied().unwrap_or(0.0),
            passthrough_streams: self.load.passthrough,
            delete_failures,
        }
    }

    fn phase(
        &mut self,
        pace: Pace,
        duration: Duration,
        drain: Duration,
        quiet: bool,
        label: &str,
    ) -> report::PhaseReport {
        let bar = progress(
            quiet,
            duration.as_millis() as u64,
            &format!(
                "{label} {{bar:40}} {{elapsed}}/{} {{msg}}",
                humantime(duration)
            ),
        );
        let r = self.load.run_phase(
            PhaseSpec {
                pace,
                duration,
                drain,
            },
            self.pid,
            Some(&bar),
        );
        bar.finish_and_clear();
        r
    }

    fn teardown(&mut self) -> usize {
        self.load.teardown(&mut self.ng, &self.plan)
    }
}

fn humantime(d: Duration) -> String {
    format!("{:.0}s", d.as_secs_f64())
}

fn write_json<T: serde::Serialize>(path: &Option<PathBuf>, value: &T) -> anyhow::Result<()> {
    if let Some(p) = path {
        let text = serde_json::to_string_pretty(value)?;
        std::fs::write(p, text + "\n").with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn check_delivery(p: &report::PhaseReport) -> anyhow::Result<()> {
    if p.sent > 0 && p.delivered == 0 {
        let why = if p.anomalies.corrupt > 0 {
            format!(
                "{} packets arrived but failed authentication or checks (wrong keys?)",
                p.anomalies.corrupt
            )
        } else if p.anomalies.misrouted + p.anomalies.unknown > 0 {
            "packets arrived on the wrong endpoints".to_string()
        } else {
            "nothing came back".to_string()
        };
        bail!("the relay delivered none of {} packets: {why}", p.sent);
    }
    Ok(())
}

fn run(a: RunArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let mut s = open(c)?;
    let pace = match a.rate.as_deref() {
        Some("max") => Pace::Max,
        Some(r) => {
            let total: f64 = r
                .parse()
                .with_context(|| format!("--rate {r:?}: a number of packets/s or `max`"))?;
            if total <= 0.0 {
                bail!("--rate must be positive");
            }
            Pace::PerStream(total / s.load.streams as f64)
        }
        None => Pace::PerStream(a.pps_per_stream),
    };
    if let Pace::PerStream(p) = pace {
        if !(p > 0.0 && p.is_finite()) {
            bail!("the per-stream rate must be positive");
        }
    }
    let result = s.phase(pace, a.duration, c.drain, c.quiet, "streaming");
    let deletes = s.teardown();
    let report = RunReport {
        tool: format!("srtpgate-bench {}", env!("CARGO_PKG_VERSION")),
        config: s.config.clone(),
        setup: s.setup_report(deletes),
        result,
    };
    print!("{}", report::setup_table(&report.config, &report.setup));
    print!("{}", report::phase_table(&report.result));
    if deletes > 0 {
        println!("  warning: {deletes} deletes failed");
    }
    write_json(&c.json, &report)?;
    if let Some(p) = &c.plot {
        let title = format!(
            "{} via {} ({:.0} pkt/s offered)",
            c.media.name(),
            c.ng,
            report.result.offered_pps
        );
        plot::plot_run(p, &title, &s.load.last_latency, report.result.loss_ratio)?;
    }
    check_delivery(&report.result)
}

fn step(a: StepArgs) -> anyhow::Result<()> {
    let c = &a.common;
    if a.factor <= 1.0 || a.start_rate <= 0.0 {
        bail!("--factor must be above 1 and --start-rate positive");
    }
    let mut s = open(c)?;
    let mut steps = Vec::new();
    let mut knee = None;
    let mut rate = a.start_rate;
    let max_p99_us = a.max_p99.as_secs_f64() * 1e6;
    let mut stopped = format!("reached --max-steps {}", a.max_steps);
    println!("{}", report::STEP_HEADER);
    for i in 0..a.max_steps {
        if rate > a.max_rate {
            stopped = format!("reached --max-rate {}", a.max_rate);
            break;
        }
        let label = format!("step {} at {:.0} pkt/s", i + 1, rate);
        let p = s.phase(
            Pace::PerStream(rate / s.load.streams as f64),
            a.step_duration,
            c.drain,
            c.quiet,
            &label,
        );
        println!("{}", report::step_line(&p));
        let ok = p.loss_ratio < a.max_loss && p.latency_us.p99 < max_p99_us && p.delivered > 0;
        let saturated = p.generator.saturated;
        if ok {
            knee = Some(report::Knee {
                offered_pps: p.offered_pps,
                delivered_pps: p.delivered_pps,
                loss_ratio: p.loss_ratio,
                p99_us: p.latency_us.p99,
            });
        }
        steps.push(p);
        if !ok {
            stopped = "loss or p99 latency exceeded the bound".into();
            break;
        }
        if saturated {
            stopped = "the generator saturated before the relay did".into();
            break;
        }
        rate *= a.factor;
    }
    let deletes = s.teardown();
    let report = StepReport {
        tool: format!("srtpgate-bench {}", env!("CARGO_PKG_VERSION")),
        config: s.config.clone(),
        setup: s.setup_report(deletes),
        max_loss: a.max_loss,
        max_p99_us,
        steps,
        knee,
        stopped_because: stopped,
    };
    print!("{}", report::setup_table(&report.config, &report.setup));
    if let Some(last) = report.steps.last() {
        print!("last step:\n{}", report::phase_table(last));
    }
    println!("stopped: {}", report.stopped_because);
    match &report.knee {
        Some(k) => println!(
            "knee: {:.0} pkt/s offered, {:.0} delivered, loss {:.4}%, p99 {:.1} µs (loss < {}%, p99 < {:.0} µs)",
            k.offered_pps,
            k.delivered_pps,
            k.loss_ratio * 100.0,
            k.p99_us,
            a.max_loss * 100.0,
            max_p99_us
        ),
        None => println!("knee: none (the first step already exceeded the bounds)"),
    }
    write_json(&c.json, &report)?;
    if let Some(p) = &c.plot {
        plot::plot_steps(
            p,
            &format!("{} via {}", c.media.name(), c.ng),
            &report.steps,
        )?;
    }
    match report.steps.first() {
        Some(first) => check_delivery(first),
        None => Ok(()),
    }
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => run(a),
        Command::Step(a) => step(a),
        Command::Ping(a) => ping(a),
        Command::Compare(a) => compare::table(&a.dir, &a.a, &a.b)
            .map(|t| print!("{t}"))
            .map_err(anyhow::Error::from),
    };
    if let Err(e) = r {
        eprintln!("srtpgate-bench: error: {e:#}");
        std::process::exit(1);
    }
}
