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
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::process::{require, run_in_workdir, Workdir};
use srtpgate_tests::e2e::relay::{start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::voicemail::{no_tone_in_clear, only_message, VmPlay};
use srtpgate_tests::e2e::wav::{tone_wav, Wav};
use srtpgate_tests::e2e::{E2eError, Result};

const GREETING_HZ: f64 = 600.0;
const BEEP_HZ: f64 = 1000.0;

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
    let vm = VmPlay::locate()?;
    let (key, public) = vm.key_pair(wd.path(), "bob.key")?;
    let data = wd.path().join("voicemail");
    let greeting = greeting_file(wd, kind)?;

    let ports = EdgePorts::allocate()?;
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "[voicemail]\ndata-dir = {:?}\nmax-message-length = 30\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\n\
         public-key = \"{public}\"\ngreeting = {:?}\n",
        data.display().to_string(),
        greeting.display().to_string(),
    );
    let mut relay =
        start_srtpgate_with_config(wd, &ports, &cfg, Metrics::Off, "info,control=debug")?;

    let ua = UserAgent::new("alice", CALLER_TONE_HZ, media, false);
    let mut a = Baresip::start_registered(wd, &ua, ports.registrar())?;
    a.dial_established(&ports.uri("vm-bob"))?;
    // Greeting (1 s) and beep (0.4 s) play while the caller already talks; 4 s in all.
    a.talk_and_hang_up(Duration::from_secs(4))?;
    std::thread::sleep(Duration::from_millis(500));
    let heard = a.recording();
    a.stop();
    relay.process.stop(Duration::from_secs(2));
    if matches!(media, MediaEnc::DtlsSrtp)
        && !relay.process.log_contains("DTLS-SRTP handshake completed")
    {
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
    let msg = only_message(&data.join("bob"))?;
    no_tone_in_clear(&fs::read(&msg)?, CALLER_TONE_HZ)?;
    let w = vm.wav(&key, &msg, &wd.path().join("message.wav"))?;
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
    run_in_workdir(name, |wd| run(wd, media, kind));
}
