//! Sealed voicemail messages and recordings: the `vm-play` tool (key pairs, playback of a
//! sealed file to WAV or pcap, refusal of a wrong key), the files a mailbox directory
//! holds, and the checks that a stored file carries no tone in clear and that a playback
//! holds the tone a phone sent for about as long as it talked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::media::{ulaw_decode, ToneReport};
use super::tools::tool;
use super::wav::Wav;
use super::{Context, E2eError, Result};

/// The `vm-play` binary: `VM_PLAY_BIN`, else `target/debug/vm-play`, else built with cargo.
pub struct VmPlay {
    pub bin: PathBuf,
}

impl VmPlay {
    pub fn locate() -> Result<VmPlay> {
        let bin = match std::env::var_os("VM_PLAY_BIN") {
            Some(p) => PathBuf::from(p),
            None => tool("vm-play")?,
        };
        Ok(VmPlay { bin })
    }

    /// `vm-play keygen --out KEY`: writes a private key to `key` and returns the public
    /// key it prints (for a mailbox's `public-key`).
    pub fn keygen(&self, key: &Path) -> Result<String> {
        let o = Command::new(&self.bin)
            .args(["keygen", "--out"])
            .arg(key)
            .output()
            .context("running vm-play keygen")?;
        if !o.status.success() {
            return Err(E2eError::new(format!(
                "vm-play keygen: {}",
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// [`keygen`](Self::keygen) into `<dir>/<name>`: returns the private key's path and
    /// the public key.
    pub fn key_pair(&self, dir: &Path, name: &str) -> Result<(PathBuf, String)> {
        let key = dir.join(name);
        let public = self.keygen(&key)?;
        Ok((key, public))
    }

    /// `vm-play --key KEY MSG EXTRA... OUT`, whatever its exit status.
    fn run(&self, key: &Path, msg: &Path, extra: &[&str], out: &Path) -> Result<Output> {
        Command::new(&self.bin)
            .arg("--key")
            .arg(key)
            .arg(msg)
            .args(extra)
            .arg(out)
            .output()
            .context("running vm-play")
    }

    /// `vm-play --key KEY MSG EXTRA... OUT`, which must succeed.
    fn run_ok(&self, key: &Path, msg: &Path, extra: &[&str], out: &Path) -> Result<()> {
        let o = self.run(key, msg, extra, out)?;
        if !o.status.success() {
            return Err(E2eError::new(format!(
                "vm-play {} {}: {}",
                msg.display(),
                extra.join(" "),
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        Ok(())
    }

    /// Opens the sealed `msg` with `key` and writes its audio to `wav`; reads that back.
    pub fn wav(&self, key: &Path, msg: &Path, wav: &Path) -> Result<Wav> {
        self.run_ok(key, msg, &["--wav"], wav)?;
        Wav::read(wav)
    }

    /// Like [`wav`](Self::wav) for one direction (`--leg`) of a two-way recording.
    pub fn leg_wav(&self, key: &Path, msg: &Path, leg: u32, wav: &Path) -> Result<Wav> {
        self.run_ok(key, msg, &["--leg", &leg.to_string(), "--wav"], wav)?;
        Wav::read(wav)
    }

    /// Opens the sealed `msg` with `key` and writes the plain RTP to the classic pcap `pcap`.
    pub fn pcap(&self, key: &Path, msg: &Path, pcap: &Path) -> Result<()> {
        self.run_ok(key, msg, &["--pcap"], pcap)
    }

    /// Playing `msg` with the `wrong` key must fail and write no `wav`; returns what
    /// vm-play said.
    pub fn refuses(&self, wrong: &Path, msg: &Path, wav: &Path) -> Result<String> {
        let o = self.run(wrong, msg, &["--wav"], wav)?;
        if o.status.success() || wav.exists() {
            return Err(E2eError::new(
                "vm-play with a wrong key must fail and write nothing",
            ));
        }
        Ok(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

/// The files in `dir` split into sealed, closed files (`*.pcapng`) and anything else (a
/// `.part` still being written, ...). A missing directory holds nothing.
pub fn stored_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let all: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    all.into_iter()
        .partition(|p| p.to_string_lossy().ends_with(".pcapng"))
}

/// The sealed, closed messages (`*.pcapng`) in a mailbox directory.
pub fn sealed_messages(dir: &Path) -> Vec<PathBuf> {
    stored_files(dir).0
}

/// The one file of a mailbox directory, which must be a closed message (`*.pcapng`):
/// nothing else, no second message, no `.part` left.
pub fn only_message(dir: &Path) -> Result<PathBuf> {
    let (msgs, others) = stored_files(dir);
    match (msgs.as_slice(), others.is_empty()) {
        ([one], true) => Ok(one.clone()),
        _ => Err(E2eError::new(format!(
            "expected exactly one closed message in {}, found {msgs:?} and {others:?}",
            dir.display()
        ))),
    }
}

/// `bytes` (a stored file) read as G.711 µ-law must not carry more than 0.2 s of a
/// `hz` tone: media payloads on disk are ciphertext.
pub fn no_tone_in_clear(bytes: &[u8], hz: u32) -> Result<()> {
    let as_ulaw: Vec<i16> = bytes.iter().map(|&b| ulaw_decode(b)).collect();
    let on_disk = ToneReport::analyse(&as_ulaw, 8000, f64::from(hz));
    if on_disk.tone_secs() > 0.2 {
        return Err(E2eError::new(format!(
            "the stored file carries {:.1} s of the {hz} Hz tone in clear",
            on_disk.tone_secs()
        )));
    }
    Ok(())
}

/// A playback of a caller who talked for `talk` seconds: between `talk - 1` and
/// `talk + 2` s of audio, of which at least `talk - 1` s is the `hz` tone. Returns a note.
pub fn expect_talk(w: &Wav, hz: u32, talk: f64) -> Result<String> {
    let rep = ToneReport::analyse(&w.samples, w.rate, f64::from(hz));
    if !(talk - 1.0..=talk + 2.0).contains(&w.duration_secs()) || rep.tone_secs() < talk - 1.0 {
        return Err(E2eError::new(format!(
            "expected about {talk} s of the tone: {:.2} s of audio, {:.2} s of tone",
            w.duration_secs(),
            rep.tone_secs()
        )));
    }
    Ok(format!(
        "vm-play: {:.2} s of audio, {:.2} s of {hz} Hz tone",
        w.duration_secs(),
        rep.tone_secs(),
    ))
}
