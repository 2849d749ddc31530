//! `vm-play`: the mailbox owner's tool for srtpgate voicemail.
//!
//! - `vm-play keygen --out mailbox.key`: makes a mailbox key pair, writes the private key
//!   (mode 0600) and prints the public key (base64) to give to the operator.
//! - `vm-play --key mailbox.key MESSAGE.pcapng --wav out.wav [--pcap out.pcap]`: opens the
//!   sealed message, checks every block, decrypts with srtpgate's SRTP code and writes the
//!   audio and/or a plain RTP capture. A modified file or a wrong key is refused (exit 1)
//!   and nothing is written.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use relay::record::{read, PrivateKey};
use srtpgate_tools::vm::{decode_leg, rtp_pcap, wav};

#[derive(Parser)]
#[command(
    name = "vm-play",
    version,
    about = "Open sealed srtpgate voicemail with the mailbox private key",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    play: Play,
}

#[derive(Subcommand)]
enum Command {
    /// Make a mailbox key pair: the private key goes to --out, the public key to stdout.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct Play {
    /// The mailbox private key file (from `vm-play keygen`).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The message (.pcapng) as downloaded from srtpgate.
    #[arg(value_name = "MESSAGE")]
    message: Option<PathBuf>,
    /// Write the audio of one direction as 16-bit 8 kHz WAV (G.711 decoded).
    #[arg(long, value_name = "FILE")]
    wav: Option<PathBuf>,
    /// Write every decrypted packet as plain RTP over UDP in a classic pcap.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Which direction goes to the WAV (0 is the caller of a voicemail).
    #[arg(long, default_value_t = 0)]
    leg: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Some(Command::Keygen { out }) => keygen(&out),
        None => play(cli.play),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm-play: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    let key = PrivateKey::generate()?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "creating {} (an existing key is never overwritten)",
                out.display()
            )
        })?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(key.to_key_file().as_bytes())?;
    f.sync_all()?;
    println!("{}", key.public_key());
    Ok(())
}

fn play(args: Play) -> anyhow::Result<()> {
    let (Some(key_path), Some(message)) = (args.key, args.message) else {
        bail!("usage: vm-play --key MAILBOX.key MESSAGE.pcapng [--wav OUT.wav] [--pcap OUT.pcap], or vm-play keygen --out FILE");
    };
    let meta =
        std::fs::metadata(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "vm-play: warning: {} is readable by others; chmod 600 it",
            key_path.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?,
    );
    let key = PrivateKey::from_key_file(&text).with_context(|| key_path.display().to_string())?;
    let file = File::open(&message).with_context(|| format!("opening {}", message.display()))?;
    let mut packets = Vec::new();
    let summary = read(BufReader::new(file), &key, |p| packets.push(p))
        .with_context(|| format!("{} refused", message.display()))?;
    eprintln!(
        "message {} for mailbox {}: {} packets in {} direction(s) ({})",
        summary
            .recording_id
            .map(|r| r.to_string())
            .unwrap_or_default(),
        summary.mailbox_id.as_deref().unwrap_or("?"),
        summary.packets,
        summary.legs.len(),
        summary.legs.join(", ")
    );
    if !summary.is_complete() {
        eprintln!("vm-play: warning: the message is incomplete (the relay stopped before closing it, or the file was cut at a block boundary)");
    }
    if let Some(path) = &args.wav {
        let audio = decode_leg(&packets, args.leg)?;
        let mut w = BufWriter::new(create(path)?);
        wav::write_wav(&mut w, srtpgate_tools::vm::audio::RATE, &audio.samples)?;
        w.flush()?;
        eprintln!(
            "{}: {:.2} s of audio (direction {}, {} packets of other payload types skipped)",
            path.display(),
            audio.seconds(),
            args.leg,
            audio.skipped
        );
    }
    if let Some(path) = &args.pcap {
        let n = rtp_pcap(BufWriter::new(create(path)?), &packets)?;
        eprintln!("{}: {n} plain RTP packets", path.display());
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}
