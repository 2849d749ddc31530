//! Sealed voicemail through srtpgate's SIP edge: a mailbox key pair is made with
//! `vm-play keygen`, srtpgate is started with a `[voicemail]` table naming the mailbox, a
//! real baresip phone (SDES-SRTP, registered) calls the voicemail URI `vm-bob` and sends a
//! tone for about 3 s, then hangs up. The stored message must exist, must not carry the
//! tone in its bytes, must play back with `vm-play --wav` as the tone of about the right
//! duration, and must be refused with a wrong key. A call to an unknown mailbox gets 404.
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
use srtpgate_tests::e2e::process::{wait_until, Child, Workdir};
use srtpgate_tests::e2e::relay::{Relay, MEDIA_PORTS};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::tools::tool;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{Context, E2eError, Result};

/// `vm-play`: `VM_PLAY_BIN`, else `target/debug/vm-play`, else built with cargo.
fn vm_play() -> Result<PathBuf> {
    match std::env::var_os("VM_PLAY_BIN") {
        Some(p) => Ok(PathBuf::from(p)),
        None => tool("vm-play"),
    }
}

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

fn messages(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".pcapng"))
                .collect()
        })
        .unwrap_or_default()
}

/// RTP payloads of a classic pcap of plain RTP over IPv4/UDP (link type raw IP or Ethernet).
fn pcap_rtp_payloads(b: &[u8]) -> Result<Vec<Vec<u8>>> {
    let le32 = |at: usize| -> Option<u32> {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    // Microsecond or nanosecond timestamps.
    if !matches!(le32(0), Some(0xa1b2_c3d4 | 0xa1b2_3c4d)) {
        return Err(E2eError::new("vm-play --pcap: not a little-endian pcap"));
    }
    let link_skip = match le32(20) {
        Some(1) => 14,
        _ => 0,
    };
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(incl) = le32(at + 8) {
        let start = at + 16;
        let Some(rec) = b.get(start..start + incl as usize) else {
            break;
        };
        if let Some(ip) = rec.get(link_skip..) {
            let ihl = usize::from(ip.first().copied().unwrap_or(0x45) & 0x0f) * 4;
            if let Some(rtp) = ip.get(ihl + 8..) {
                let cc = usize::from(rtp.first().copied().unwrap_or(0) & 0x0f);
                if let Some(p) = rtp.get(12 + 4 * cc..) {
                    out.push(p.to_vec());
                }
            }
        }
        at = start + incl as usize;
    }
    Ok(out)
}

fn run(wd: &Workdir, max_len: u64, media: MediaEnc) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = vm_play()?;
    let key = wd.path().join("bob.key");
    let public = keygen(&vm, &key)?;
    let wrong = wd.path().join("other.key");
    keygen(&vm, &wrong)?;
    let data = wd.path().join("voicemail");

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
         [voicemail]\ndata-dir = {:?}\nuri-user = \"vm-<user>\"\nmax-message-length = {max_len}\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\npublic-key = \"{public}\"\n",
        port_min + MEDIA_PORTS - 1,
        data.display().to_string(),
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

    // An unknown mailbox: refused, nothing stored.
    a.dial(&format!("sip:vm-nobody@127.0.0.1:{sip}"))?;
    let closed = a.wait_event(
        "CALL_CLOSED",
        &["CALL_ESTABLISHED"],
        Duration::from_secs(10),
    )?;
    notes.push(format!("unknown mailbox: {closed:?}"));
    if !format!("{closed:?}").contains("404") {
        return Err(E2eError::new(format!(
            "expected 404 for an unknown mailbox: {closed:?}"
        )));
    }

    a.dial(&format!("sip:vm-bob@127.0.0.1:{sip}"))?;
    a.wait_event(
        "CALL_ESTABLISHED",
        &["CALL_CLOSED"],
        Duration::from_secs(10),
    )?;
    // Talk for 3 s and hang up; with a shorter maximum length srtpgate hangs up itself.
    let talk = 3.0_f64.min(max_len as f64);
    if max_len > 3 {
        a.expect_no_event("CALL_CLOSED", Duration::from_secs(3))?;
        a.hangup()?;
        a.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    } else {
        let closed = a.wait_event("CALL_CLOSED", &[], Duration::from_secs(max_len + 4))?;
        notes.push(format!(
            "srtpgate ended the call at the maximum length: {}",
            closed.param
        ));
    }
    std::thread::sleep(Duration::from_millis(500));
    a.stop();
    relay.stop(Duration::from_secs(2));

    let files = messages(&data.join("bob"));
    if files.len() != 1 {
        return Err(E2eError::new(format!(
            "expected one message in {}, found {files:?}",
            data.join("bob").display()
        )));
    }
    let msg = &files[0];
    let parts: Vec<_> = fs::read_dir(data.join("bob"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    if !parts.is_empty() {
        return Err(E2eError::new(
            "a .part file was left: the message was not closed",
        ));
    }
    let bytes = fs::read(msg)?;
    notes.push(format!("stored {} ({} bytes)", msg.display(), bytes.len()));
    // The file read as G.711 µ-law must not carry the tone: the payloads are ciphertext.
    let as_ulaw: Vec<i16> = bytes.iter().map(|&b| ulaw_decode(b)).collect();
    let on_disk = ToneReport::analyse(&as_ulaw, 8000, f64::from(CALLER_TONE_HZ));
    if on_disk.tone_secs() > 0.2 {
        return Err(E2eError::new(format!(
            "the stored file carries {:.1} s of the tone in clear",
            on_disk.tone_secs()
        )));
    }

    let wav = wd.path().join("message.wav");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&key)
        .arg(msg)
        .arg("--wav")
        .arg(&wav)
        .output()?;
    if !o.status.success() {
        return Err(E2eError::new(format!(
            "vm-play with the mailbox key failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    // The tone's own G.711 bytes (the plain RTP payloads vm-play recovers) must not
    // appear in the stored file.
    let pcap = wd.path().join("message.pcap");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&key)
        .arg(msg)
        .arg("--pcap")
        .arg(&pcap)
        .output()?;
    if !o.status.success() {
        return Err(E2eError::new(format!(
            "vm-play --pcap failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let payloads = pcap_rtp_payloads(&fs::read(&pcap)?)?;
    let mut probes = 0;
    for p in payloads.iter().filter(|p| p.len() >= 160) {
        for chunk in p.chunks_exact(16) {
            probes += 1;
            if bytes.windows(16).any(|w| w == chunk) {
                return Err(E2eError::new(
                    "the stored file contains G.711 payload bytes of the tone in clear",
                ));
            }
        }
    }
    if probes < 50 {
        return Err(E2eError::new(format!(
            "too few plain payloads to probe ({} packets)",
            payloads.len()
        )));
    }
    notes.push(format!(
        "{} plain payloads, none of {probes} 16-byte G.711 chunks found in the stored file",
        payloads.len()
    ));
    let w = Wav::read(&wav)?;
    let rep = ToneReport::analyse(&w.samples, w.rate, f64::from(CALLER_TONE_HZ));
    notes.push(format!(
        "vm-play: {:.2} s of audio, {:.2} s of {} Hz tone",
        w.duration_secs(),
        rep.tone_secs(),
        CALLER_TONE_HZ
    ));
    if !(talk - 1.0..=talk + 2.0).contains(&w.duration_secs()) || rep.tone_secs() < talk - 1.0 {
        return Err(E2eError::new(format!(
            "expected about {talk} s of the tone: {:.2} s of audio, {:.2} s of tone",
            w.duration_secs(),
            rep.tone_secs()
        )));
    }
    let bad_wav = wd.path().join("wrong.wav");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&wrong)
        .arg(msg)
        .arg("--wav")
        .arg(&bad_wav)
        .output()?;
    if o.status.success() || bad_wav.exists() {
        return Err(E2eError::new(
            "vm-play with a wrong key must fail and write nothing",
        ));
    }
    notes.push(format!(
        "wrong key refused: {}",
        String::from_utf8_lossy(&o.stderr).trim()
    ));
    Ok(notes)
}

#[test]
fn deposit_through_the_sip_edge_is_sealed() {
    check("voicemail", 30, MediaEnc::SrtpMandatory);
}

/// A plain RTP caller: srtpgate protects the media on receipt under a fresh key and seals
/// that key, so the file is ciphertext all the same.
#[test]
fn plain_rtp_deposit_is_sealed_too() {
    check("voicemail-plain", 30, MediaEnc::Plain);
}

/// A 2 s maximum length: the message is closed at 2 s and srtpgate sends the BYE.
#[test]
fn maximum_length_ends_the_deposit() {
    check("voicemail-max", 2, MediaEnc::SrtpMandatory);
}

fn check(name: &str, max_len: u64, media: MediaEnc) {
    let wd = Workdir::new(name).expect("work directory");
    match run(&wd, max_len, media) {
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
