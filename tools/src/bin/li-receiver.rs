//! li-receiver: receive X3 (ETSI TS 103 221-2) from srtpgate and keep what arrives.
//!
//! Writes into `--out`: per XID and correlation id `<xid>_<cid>.pcap` (RTP/RTCP as UDP/IP),
//! per direction `<xid>_<cid>_<from-target|to-target>.wav` (G.711 µ-law/A-law decoded), and
//! `summary.json`; prints the summary at exit (SIGINT, SIGTERM or `--duration`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use srtpgate_tools::li::{tls_config, ReceiverConfig, X3Receiver};

#[derive(Parser)]
#[command(
    version,
    about = "Receive ETSI TS 103 221-2 X3 PDUs; write pcap and WAV per intercepted call"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Exit with status 2 at the first malformed PDU.
    #[arg(long)]
    strict: bool,
    /// TLS: this certificate chain (PEM); with --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS: require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, requires = "tls_cert")]
    client_ca: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(tls_config(c, k, args.client_ca.as_deref())?),
        _ => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    let until = match args.duration {
        Some(d) if d.is_finite() && d >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(d)),
        Some(_) => anyhow::bail!("--duration must be a non-negative number of seconds"),
        None => None,
    };
    let receiver = X3Receiver::bind(
        ReceiverConfig {
            listen: args.listen,
            tls,
            strict: args.strict,
        },
        &args.out,
    )?;
    println!(
        "li-receiver listening on {} ({})",
        receiver.local_addr()?,
        if args.tls_cert.is_some() {
            "tls"
        } else {
            "tcp"
        }
    );
    let outcome = receiver.run(&stop, until)?;
    let json = serde_json::to_string_pretty(&outcome.summary)?;
    std::fs::write(args.out.join("summary.json"), json).context("writing summary.json")?;
    print!("{}", outcome.summary.text());
    if outcome.failed {
        eprintln!("li-receiver: stopped on malformed input or an output error");
        std::process::exit(2);
    }
    Ok(())
}
