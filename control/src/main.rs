//! `srtpgate`: the SRTP media relay daemon.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use control::config::{Config, InterfaceConfig};

/// SRTP media relay for the access edge of VoIP/IMS networks.
#[derive(Debug, Parser)]
#[command(name = "srtpgate", version, about)]
struct Cli {
    /// TOML configuration file; built-in defaults apply to everything it leaves out.
    #[arg(long, short = 'c', value_name = "FILE", env = "SRTPGATE_CONFIG")]
    config: Option<PathBuf>,
    /// UDP address of the ng control protocol [default: 127.0.0.1:2223].
    #[arg(long, value_name = "ADDR:PORT")]
    ng_listen: Option<SocketAddr>,
    /// Address media ports are bound on (replaces the configured interfaces) [default: 127.0.0.1].
    #[arg(long, value_name = "IP")]
    interface: Option<IpAddr>,
    /// Address written into SDP for --interface, when it differs (NAT).
    #[arg(long, value_name = "IP", requires = "interface")]
    advertise: Option<IpAddr>,
    /// First media port [default: 30000].
    #[arg(long, value_name = "PORT")]
    port_min: Option<u16>,
    /// Last media port [default: 39999].
    #[arg(long, value_name = "PORT")]
    port_max: Option<u16>,
    /// Media worker threads, 0 for one per core [default: 0].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Media I/O backend: batch, or uring (falls back to batch where the kernel refuses it)
    /// [default: batch].
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Receive coalescing window in µs while media flows, 0 to take every packet at once
    /// [default: 500].
    #[arg(long, value_name = "US")]
    coalesce_us: Option<u64>,
    /// Prometheus metrics address (`off` to disable) [default: 127.0.0.1:9103].
    #[arg(long, value_name = "ADDR:PORT|off")]
    metrics_listen: Option<String>,
    /// SIP edge address, UDP and TCP (repeatable; `off` disables the SIP edge)
    /// [default: 127.0.0.1:5060].
    #[arg(long, value_name = "ADDR:PORT|off")]
    sip_listen: Vec<String>,
    /// SIP over TLS (SIPS) address; needs --sip-tls-cert and --sip-tls-key.
    #[arg(long, value_name = "ADDR:PORT")]
    sip_tls_listen: Vec<SocketAddr>,
    /// PEM certificate chain for SIP over TLS.
    #[arg(long, value_name = "FILE")]
    sip_tls_cert: Option<PathBuf>,
    /// PEM private key for SIP over TLS.
    #[arg(long, value_name = "FILE")]
    sip_tls_key: Option<PathBuf>,
    /// Next hop for calls to users not registered here (`host:port[;transport=tcp]`).
    #[arg(long, value_name = "HOST:PORT")]
    sip_outbound: Option<String>,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `control=debug`.
    #[arg(long, default_value = "info", env = "SRTPGATE_LOG")]
    log: String,
}

impl Cli {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if let Some(a) = self.ng_listen {
            c.ng.listen = a;
        }
        if let Some(ip) = self.interface {
            c.media.interfaces = vec![InterfaceConfig {
                name: "default".into(),
                bind: ip,
                advertise: self.advertise,
            }];
        }
        if let Some(p) = self.port_min {
            c.media.port_min = p;
        }
        if let Some(p) = self.port_max {
            c.media.port_max = p;
        }
        if let Some(w) = self.workers {
            c.media.workers = w;
        }
        if let Some(b) = &self.backend {
            c.media.backend = b.clone();
        }
        if let Some(us) = self.coalesce_us {
            c.media.coalesce_us = us;
        }
        if let Some(m) = &self.metrics_listen {
            c.metrics.listen = match m.as_str() {
                "off" | "none" => None,
                a => Some(
                    a.parse()
                        .with_context(|| format!("--metrics-listen {a:?}"))?,
                ),
            };
        }
        self.sip_overrides(&mut c)?;
        c.validate().context("invalid configuration")?;
        Ok(c)
    }
}

impl Cli {
    fn sip_overrides(&self, c: &mut Config) -> anyhow::Result<()> {
        if self.sip_listen.iter().any(|s| s == "off" || s == "none") {
            c.sip.enabled = false;
        } else if !self.sip_listen.is_empty() {
            let addrs = self
                .sip_listen
                .iter()
                .map(|a| a.parse().with_context(|| format!("--sip-listen {a:?}")))
                .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
            c.sip.listen_udp = addrs.clone();
            c.sip.listen_tcp = addrs;
        }
        if !self.sip_tls_listen.is_empty() {
            c.sip.listen_tls = self.sip_tls_listen.clone();
        }
        if let Some(p) = &self.sip_tls_cert {
            c.sip.tls_cert = Some(p.clone());
        }
        if let Some(p) = &self.sip_tls_key {
            c.sip.tls_key = Some(p.clone());
        }
        if let Some(o) = &self.sip_outbound {
            c.sip.outbound = Some(o.clone());
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("--log")?)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = cli.config()?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    let daemon = control::daemon::Daemon::start(&config)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        ports = %format_args!("{}-{}", config.media.port_min, config.media.port_max),
        "srtpgate started"
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let grace = Duration::from_secs(config.daemon.drain_grace);
    tracing::info!(grace_s = grace.as_secs(), "srtpgate stopping on signal");
    daemon.drain_and_stop(grace);
    tracing::info!("srtpgate stopped");
    Ok(())
}
