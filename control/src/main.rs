//! `srtpgate`: the SRTP media relay daemon.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use control::config::Config;

/// SRTP media relay for the access edge of VoIP/IMS networks.
#[derive(Debug, Parser)]
#[command(name = "srtpgate", version, about)]
struct Cli {
    /// UDP address of the ng control protocol.
    #[arg(long, value_name = "ADDR:PORT")]
    ng_listen: Option<SocketAddr>,
    /// Address media ports are bound on.
    #[arg(long, value_name = "IP")]
    interface: Option<IpAddr>,
    /// First media port (inclusive).
    #[arg(long, value_name = "PORT")]
    port_min: Option<u16>,
    /// Last media port (inclusive).
    #[arg(long, value_name = "PORT")]
    port_max: Option<u16>,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `control=debug`.
    #[arg(long, default_value = "info", env = "SRTPGATE_LOG")]
    log: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("--log")?)
        .with_target(false)
        .init();

    let mut config = Config::default();
    if let Some(a) = cli.ng_listen {
        config.ng_listen = a;
    }
    if let Some(ip) = cli.interface {
        config.media_interface = ip;
    }
    if let Some(p) = cli.port_min {
        config.port_min = p;
    }
    if let Some(p) = cli.port_max {
        config.port_max = p;
    }
    config.validate().context("invalid configuration")?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        ng = %config.ng_listen,
        media = %config.media_interface,
        ports = %format_args!("{}-{}", config.port_min, config.port_max),
        "srtpgate started"
    );
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("srtpgate stopping on signal");
    Ok(())
}
