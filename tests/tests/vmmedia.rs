//! Voicemail media through srtpgate's SIP edge: a DTLS-SRTP deposit with a greeting. A
//! registered baresip phone with `mediaenc=dtls_srtp` (UDP/TLS/RTP/SAVPF, session-level
//! fingerprint, `a=setup:actpass`, no ICE) calls `vm-bob`. srtpgate answers with its own
//! certificate's fingerprint, runs the handshake on the caller-facing relay port, plays a
//! 1 s greeting (a 600 Hz tone from a WAV file) and the 1 kHz beep, and records the
//! caller's 440 Hz tone sealed to bob's key. The test checks what the phone heard (the
//! greeting tone, then the beep, in that order), that the stored message is sealed (no
//! tone in clear) and that `vm-play` with bob's key plays the caller's tone back. The
//! same again with an SDES-SRTP caller and a raw A-law greeting made by sox.
//! Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::media::{ulaw_decode, ToneReport};
use srtpgate_tests::e2e::ng;
use srtpgate_tests::e2e::ports;
use srtpgate_tests::e2e::process::{require, wait_until, Child, Workdir};
use srtpgate_tests::e2e::relay::{Relay, MEDIA_PORTS};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::tools::tool;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{Context, E2eError, Result};

const GREETING_HZ: f64 = 600.0;
const BEEP_HZ: f64 = 1000.0;

fn keygen(vm: &Path, out: &Path) -> Result<String> {
    let o = Command::new(vm)
        .args(["keygen", "--out"])
        .arg(out)
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

/// 8 kHz mono 16-bit PCM WAV of a tone.
fn tone_wav(hz: f64, secs: f64) -> Vec<u8> {
    let n = (8000.0 * secs) as usize;
    let data: Vec<u8> = (0..n)
        .map(|i| (12000.0 * (std::f64::consts::TAU * hz * i as f64 / 8000.0).sin()) as i16)
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    for v in [16u32, 1 | (1 << 16), 8000, 16000, 2 | (16 << 16)] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

/// The greeting file: a WAV written here, or raw A-law made by sox's own G.711 encoder.
#[derive(Clone, Copy)]
enum GreetingFile {
    Wav,
    SoxAlaw,
}

fn greeting_file(wd: &Workdir, kind: GreetingFile) -> Result<PathBuf> {
    match kind {
        GreetingFile::Wav => {
            let p = wd.path().join("greeting.wav");
            fs::write(&p, tone_wav(GREETING_HZ, 1.0))?;
            Ok(p)
        }
        GreetingFile::SoxAlaw => {
            let sox = require("sox", "sox")?;
            let p = wd.path().join("greeting.al");
            let o = Command::new(sox)
                .args(["-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "al"])
                .arg(&p)
                .args(["synth", "1", "sine", &GREETING_HZ.to_string(), "vol", "0.4"])
                .output()?;
            if !o.status.success() {
                return Err(E2eError::new(format!(
                    "sox: {}",
                    String::from_utf8_lossy(&o.stderr)
                )));
            }
            Ok(p)
        }
    }
}

fn run(wd: &Workdir, media: MediaEnc, kind: GreetingFile) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = tool("vm-play")?;
    let key = wd.path().join("bob.key");
    let public = keygen(&vm, &key)?;
    let data = wd.path().join("voicemail");
    let greeting = greeting_file(wd, kind)?;

    let Relay::Srtpgate { binary } = Relay::srtpgate()? else {
        return Err(E2eError::new("not srtpgate"));
    };
    let ngaddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let port_min = ports::free_block(MEDIA_PORTS)?;
    let sip = ports::free_block(2)?;
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "[ng]\nlisten = \"{ngaddr}\"\n\
         [media]\nport-min = {port_min}\nport-max = {}\nworkers = 1\npin = false\n\
         interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
         [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n\
         [voicemail]\ndata-dir = {:?}\nmax-message-length = 30\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\n\
         public-key = \"{public}\"\ngreeting = {:?}\n",
        port_min + MEDIA_PORTS - 1,
        data.display().to_string(),
        greeting.display().to_string(),
    );
    let cfg_path = wd.path().join("srtpgate.toml");
    fs::write(&cfg_path, cfg)?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config")
        .arg(&cfg_path)
        .args(["--metrics-listen", "off"])
        .env("SRTPGATE_LOG", "info,control=debug")
        .env("NO_COLOR", "1");
    let mut relay = Child::spawn(wd, "srtpgate", cmd)?;
    wait_until(
        "srtpgate to answer ng ping",
        Duration::from_secs(10),
        || {
            relay.check_running()?;
            Ok(ng::ping(ngaddr, Duration::from_millis(100))?.then_some(()))
        },
    )?;

    let ua = UserAgent {
        user: "alice".into(),
        tone_hz: CALLER_TONE_HZ,
        media,
        auto_answer: false,
    };
    let mut a = Baresip::start(wd, &ua)?;
    let aor = format!("sip:alice@127.0.0.1:{sip}");
    let params = format!(
        "<{aor}>;regint=600;audio_codecs=pcmu{}",
        ua.media.account_param()
    );
    let r = a
        .ctrl
        .command("uanew", Some(&params), Duration::from_secs(5))?;
    if !r.ok {
        return Err(E2eError::new(format!("uanew: {}", r.data.trim())));
    }
    a.wait_event("REGISTER_OK", &["REGISTER_FAIL"], Duration::from_secs(5))?;
    a.dial(&format!("sip:vm-bob@127.0.0.1:{sip}"))?;
    a.wait_event(
        "CALL_ESTABLISHED",
        &["CALL_CLOSED"],
        Duration::from_secs(10),
    )?;
    // Greeting (1 s) and beep (0.4 s) play while the caller already talks; 4 s in all.
    a.expect_no_event("CALL_CLOSED", Duration::from_secs(4))?;
    a.hangup()?;
    a.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(500));
    let heard = a.recording();
    a.stop();
    relay.stop(Duration::from_secs(2));
    if matches!(media, MediaEnc::DtlsSrtp) && !relay.log_contains("DTLS-SRTP handshake completed") {
        return Err(E2eError::new("srtpgate logged no completed DTLS handshake"));
    }

    // What the phone heard: the greeting's tone, then the beep.
    let heard = Wav::read(&heard?)?;
    let g = ToneReport::analyse(&heard.samples, heard.rate, GREETING_HZ);
    let b = ToneReport::analyse(&heard.samples, heard.rate, BEEP_HZ);
    notes.push(format!(
        "the caller heard {:.1} s of the {GREETING_HZ} Hz greeting and {:.1} s of the beep",
        g.tone_secs(),
        b.tone_secs()
    ));
    if g.tone_secs() < 0.6 || b.tone_secs() < 0.2 || b.tone_secs() > 0.6 {
        return Err(E2eError::new(format!(
            "the caller should hear about 1 s of greeting and 0.4 s of beep: {:.1} s, {:.1} s",
            g.tone_secs(),
            b.tone_secs()
        )));
    }
    // The beep comes after the greeting.
    match (g.last_secs, b.first_secs) {
        (Some(g_end), Some(b_start)) if b_start + 0.1 >= g_end => {}
        (g_end, b_start) => {
            return Err(E2eError::new(format!(
                "the beep should follow the greeting: greeting ends at {g_end:?} s, beep starts at {b_start:?} s"
            )))
        }
    }

    // The stored message: one, closed, sealed.
    let dir = data.join("bob");
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .context("the mailbox directory")?
        .flatten()
        .map(|e| e.path())
        .collect();
    let msgs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcapng"))
        .collect();
    if msgs.len() != 1 || files.len() != 1 {
        return Err(E2eError::new(format!(
            "expected exactly one closed message: {files:?}"
        )));
    }
    let bytes = fs::read(msgs[0])?;
    let as_ulaw: Vec<i16> = bytes.iter().map(|&b| ulaw_decode(b)).collect();
    let clear = ToneReport::analyse(&as_ulaw, 8000, f64::from(CALLER_TONE_HZ));
    if clear.tone_secs() > 0.2 {
        return Err(E2eError::new(format!(
            "the stored file carries {:.1} s of the tone in clear",
            clear.tone_secs()
        )));
    }
    let wav = wd.path().join("message.wav");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&key)
        .arg(msgs[0])
        .arg("--wav")
        .arg(&wav)
        .output()?;
    if !o.status.success() {
        return Err(E2eError::new(format!(
            "vm-play with the mailbox key failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let w = Wav::read(&wav)?;
    let rep = ToneReport::analyse(&w.samples, w.rate, f64::from(CALLER_TONE_HZ));
    notes.push(format!(
        "vm-play: {:.2} s of audio, {:.2} s of the caller's {CALLER_TONE_HZ} Hz tone",
        w.duration_secs(),
        rep.tone_secs()
    ));
    // Recording starts once the handshake gave keys (baresip may lose the first
    // ClientHello: up to about a second later than the answer).
    if rep.tone_secs() < 2.5 || w.duration_secs() > 5.5 {
        return Err(E2eError::new(format!(
            "expected about 3-4 s of the caller's tone: {:.2} s of audio, {:.2} s of tone",
            w.duration_secs(),
            rep.tone_secs()
        )));
    }
    Ok(notes)
}

#[test]
fn dtls_srtp_deposit_with_greeting() {
    check("vmmedia-dtls", MediaEnc::DtlsSrtp, GreetingFile::Wav);
}

/// The same with an SDES-SRTP caller (baresip `srtp-mand`, libsrtp inside) and a raw A-law
/// greeting file made by sox, sent in the caller's PCMU.
#[test]
fn sdes_deposit_with_an_alaw_greeting() {
    check(
        "vmmedia-sdes",
        MediaEnc::SrtpMandatory,
        GreetingFile::SoxAlaw,
    );
}

fn check(name: &str, media: MediaEnc, kind: GreetingFile) {
    let wd = Workdir::new(name).expect("work directory");
    match run(&wd, media, kind) {
        Ok(notes) => {
            for n in notes {
                println!("ok: {n}");
            }
        }
        Err(e) => {
            wd.keep();
            panic!(
                "{e}\n\nwork directory: {}\n{}",
                wd.path().display(),
                wd.log_tails(40)
            );
        }
    }
}
