//! `srtp-pcap`: decrypts SRTP/SRTCP in a pcap file into plain RTP/RTCP that Wireshark can
//! play, or encrypts plain RTP/RTCP into SRTP/SRTCP.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use relay::srtp::Suite;
use srtpgate_tools::srtp_pcap::{
    run, Config, KeySet, Mode, OnFailure, RunError, SessionParams, StreamSpec,
};

#[derive(Parser)]
#[command(
    name = "srtp-pcap",
    version,
    about = "Decrypt or encrypt SRTP/SRTCP in pcap files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SRTP/SRTCP in, plain RTP/RTCP out (with fixed IP/UDP lengths and checksums).
    Decrypt(Opts),
    /// Plain RTP/RTCP in, SRTP/SRTCP out.
    Encrypt(Opts),
}

#[derive(Clone, Copy, ValueEnum)]
enum Failed {
    /// Copy packets that fail unchanged.
    Keep,
    /// Leave packets that fail out of the output.
    Drop,
}

#[derive(Args)]
struct Opts {
    /// Input capture (classic pcap; "-" for standard input).
    #[arg(long = "in", value_name = "IN.pcap")]
    input: PathBuf,
    /// Output capture ("-" for standard output).
    #[arg(long = "out", value_name = "OUT.pcap")]
    output: PathBuf,
    /// Crypto suite of --key, as named in SDP a=crypto (e.g. AES_CM_128_HMAC_SHA1_80).
    #[arg(long)]
    suite: Option<Suite>,
    /// SDES key parameter "inline:BASE64[|LIFETIME][|MKI:LEN]"; repeat for several MKIs.
    /// With encrypt, the first key is used.
    #[arg(long = "key", value_name = "inline:...")]
    keys: Vec<String>,
    /// Use --key only on UDP packets from or to this port (repeatable); default: all.
    #[arg(long = "port", value_name = "N")]
    ports: Vec<u16>,
    /// Keys for one direction: SRC_IP:PORT>DST_IP:PORT=SUITE:inline:...[,inline:...]
    /// (repeatable; IPv6 in brackets). Takes precedence over --key.
    #[arg(long = "stream", value_name = "SPEC")]
    streams: Vec<String>,
    /// What to do with packets that fail authentication, replay checks or encryption.
    #[arg(long, value_enum, default_value = "drop")]
    failed: Failed,
    /// SDES UNENCRYPTED_SRTP: RTP payloads are authenticated but not encrypted.
    #[arg(long)]
    unencrypted_srtp: bool,
    /// SDES UNENCRYPTED_SRTCP: RTCP is authenticated but not encrypted.
    #[arg(long)]
    unencrypted_srtcp: bool,
    /// SDES UNAUTHENTICATED_SRTP: SRTP packets carry no authentication tag.
    #[arg(long)]
    unauthenticated_srtp: bool,
    /// Key derivation rate in packets: 0 (default), a power of two, or 2^E
    /// (SDP's KDR=E is --kdr 2^E).
    #[arg(long, value_name = "N", value_parser = parse_kdr, default_value = "0")]
    kdr: u64,
}

fn parse_kdr(s: &str) -> Result<u64, String> {
    let v = match s.strip_prefix("2^") {
        Some(e) => {
            let e: u32 = e.parse().map_err(|_| format!("bad exponent in {s:?}"))?;
            if e > 24 {
                return Err("the key derivation rate is at most 2^24".into());
            }
            1u64 << e
        }
        None => s.parse().map_err(|_| format!("bad number {s:?}"))?,
    };
    if v != 0 && (!v.is_power_of_two() || v > 1 << 24) {
        return Err("the key derivation rate must be 0 or a power of two up to 2^24".into());
    }
    Ok(v)
}

fn config(mode: Mode, o: &Opts) -> anyhow::Result<Config> {
    let default_keys = match (o.suite, o.keys.is_empty()) {
        (Some(suite), false) => Some(KeySet::parse(suite, &o.keys)?),
        (None, false) => bail!("--key needs --suite"),
        (Some(_), true) => bail!("--suite needs --key"),
        (None, true) => None,
    };
    let streams = o
        .streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<StreamSpec>()
                .with_context(|| format!("--stream number {}", i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Config {
        mode,
        default_keys,
        ports: o.ports.clone(),
        streams,
        params: SessionParams {
            kdr: o.kdr,
            unencrypted_srtp: o.unencrypted_srtp,
            unencrypted_srtcp: o.unencrypted_srtcp,
            unauthenticated_srtp: o.unauthenticated_srtp,
        },
        on_failure: match o.failed {
            Failed::Keep => OnFailure::Keep,
            Failed::Drop => OnFailure::Drop,
        },
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mode, opts) = match &cli.command {
        Command::Decrypt(o) => (Mode::Decrypt, o),
        Command::Encrypt(o) => (Mode::Encrypt, o),
    };
    match execute(mode, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("srtp-pcap: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(mode: Mode, o: &Opts) -> anyhow::Result<()> {
    let config = config(mode, o)?;
    if let (Ok(i), Ok(out)) = (o.input.canonicalize(), o.output.canonicalize()) {
        if i == out {
            bail!("--in and --out name the same file; it would be overwritten while read");
        }
    }
    let input: Box<dyn Read> = if o.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = File::open(&o.input).with_context(|| format!("opening {}", o.input.display()))?;
        Box::new(f)
    };
    let output: Box<dyn Write> = if o.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let f =
            File::create(&o.output).with_context(|| format!("creating {}", o.output.display()))?;
        Box::new(f)
    };
    match run(BufReader::new(input), BufWriter::new(output), config) {
        Ok(summary) => {
            eprint!("{summary}");
            Ok(())
        }
        Err(RunError::Read { error, summary }) => {
            eprint!("{summary}");
            bail!(
                "{} is damaged after packet {}: {error} (the packets before it were written)",
                o.input.display(),
                summary.packets_read
            )
        }
        Err(e) => Err(e.into()),
    }
}
