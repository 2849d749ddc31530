//! A voicemail deposit by an intercepted caller: srtpgate with `[li]` and `[voicemail]`,
//! `li-receiver` as the agency, a task for alice activated over X1. alice (baresip,
//! SDES-SRTP) deposits a 3 s tone to `vm-bob`: the agency receives the tone alice sent
//! live over X3, and the sealed message is stored and plays back with the mailbox key as
//! for any caller. bob's mailbox has a greeting (a 1 s 600 Hz tone): the agency also
//! receives it, and the beep, toward the target. Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::process::{wait_until, Child, Workdir};
use srtpgate_tests::e2e::relay::{Relay, MEDIA_PORTS};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::tools::tool;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{ng, ports, Context, E2eError, Result};

const TOKEN: &str = "e2e-vm-li-admin-token-0123456789";
const XID: &str = "5d0f3c1a-8e2b-4c7d-9a61-2f4e8b9c0d1e";
const DID: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// A tool binary of this workspace: `target/debug/<name>`, built with cargo when missing.
/// POST one X1 request; returns the HTTP status.
fn x1(addr: SocketAddr, body: &serde_json::Value) -> Result<u16> {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "POST /x1 HTTP/1.1\r\nHost: x1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context(format!("X1 reply: {out:?}"))
}

const GREETING_HZ: f64 = 600.0;

/// 8 kHz mono 16-bit PCM WAV of a 1 s tone.
fn greeting_wav(hz: f64) -> Vec<u8> {
    let data: Vec<u8> = (0..8000)
        .map(|i| (12000.0 * (std::f64::consts::TAU * hz * f64::from(i) / 8000.0).sin()) as i16)
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

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = tool("vm-play")?;
    let key = wd.path().join("bob.key");
    let o = Command::new(&vm)
        .args(["keygen", "--out"])
        .arg(&key)
        .output()?;
    if !o.status.success() {
        return Err(E2eError::new("vm-play keygen failed"));
    }
    let public = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let greeting = wd.path().join("greeting.wav");
    fs::write(&greeting, greeting_wav(GREETING_HZ))?;

    let agency_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let agency_out = wd.subdir("li-out")?;
    let mut cmd = Command::new(tool("li-receiver")?);
    cmd.arg("--out")
        .arg(&agency_out)
        .arg("--listen")
        .arg(agency_addr.to_string())
        .arg("--strict");
    let mut agency = Child::spawn(wd, "li-receiver", cmd)?;
    wait_until("li-receiver to listen", Duration::from_secs(10), || {
        agency.check_running()?;
        Ok(TcpStream::connect(agency_addr).is_ok().then_some(()))
    })?;

    let Relay::Srtpgate { binary } = Relay::srtpgate()? else {
        return Err(E2eError::new("not srtpgate"));
    };
    let ngaddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let port_min = ports::free_block(MEDIA_PORTS)?;
    let sip = ports::free_block(2)?;
    let data = wd.path().join("voicemail");
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "[ng]\nlisten = \"{ngaddr}\"\n\
         [media]\nport-min = {port_min}\nport-max = {}\nworkers = 1\npin = false\n\
         interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
         [li]\nadmin-listen = \"{admin}\"\nadmin-token = \"{TOKEN}\"\nstore = {:?}\n\
         [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n\
         [voicemail]\ndata-dir = {:?}\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\npublic-key = \"{public}\"\n\
         greeting = {:?}\n",
        port_min + MEDIA_PORTS - 1,
        wd.path().join("li.json").display().to_string(),
        data.display().to_string(),
        greeting.display().to_string(),
    );
    let cfg_path = wd.path().join("srtpgate.toml");
    fs::write(&cfg_path, cfg)?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config")
        .arg(&cfg_path)
        .args(["--metrics-listen", "off"])
        .env("SRTPGATE_LOG", "info")
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
    for op in [
        serde_json::json!({"operation": "CreateDestination", "destinationDetails": {
            "dId": DID, "friendlyName": "e2e agency", "deliveryType": "X3Only",
            "deliveryAddress": {"ipAddressPort": {"address": "127.0.0.1",
                                "port": {"TCPPort": agency_addr.port()}}}}}),
        serde_json::json!({"operation": "ActivateTask", "taskDetails": {
            "xId": XID, "targetIdentifiers": [{"sipUri": "sip:alice@127.0.0.1"}],
            "deliveryType": "X3Only", "listOfDIDs": [DID]}}),
    ] {
        let status = x1(admin, &op)?;
        if status != 200 {
            return Err(E2eError::new(format!(
                "X1 {}: HTTP {status}",
                op["operation"]
            )));
        }
    }

    let ua = UserAgent {
        user: "alice".into(),
        tone_hz: CALLER_TONE_HZ,
        media: MediaEnc::SrtpMandatory,
        auto_answer: false,
    };
    let mut a = Baresip::start(wd, &ua)?;
    let params = format!(
        "<sip:alice@127.0.0.1:{sip}>;regint=600;audio_codecs=pcmu{}",
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
    a.expect_no_event("CALL_CLOSED", Duration::from_secs(3))?;
    a.hangup()?;
    a.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(800));
    a.stop();
    relay.stop(Duration::from_secs(2));
    agency.stop(Duration::from_secs(5));

    let summary: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(agency_out.join("summary.json")).context("no summary.json")?,
    )
    .map_err(|e| E2eError::new(format!("summary.json: {e}")))?;
    let streams = summary["streams"].as_array().cloned().unwrap_or_default();
    let from_target = streams
        .iter()
        .find(|s| s["direction"].as_str() == Some("from-target") && s["xid"].as_str() == Some(XID))
        .context(format!("no from-target stream delivered: {summary}"))?;
    let wav = PathBuf::from(from_target["wav"].as_str().context("no WAV")?);
    let wav = if wav.is_absolute() {
        wav
    } else {
        agency_out.join(wav)
    };
    let w = Wav::read(&wav)?;
    let t = ToneReport::analyse(&w.samples, w.rate, f64::from(CALLER_TONE_HZ));
    notes.push(format!(
        "X3 from-target: {:.1} s of the {CALLER_TONE_HZ} Hz tone",
        t.tone_secs()
    ));
    if t.tone_secs() < 2.0 {
        return Err(E2eError::new(format!(
            "the agency got only {:.1} s of the tone: {summary}",
            t.tone_secs()
        )));
    }

    // The greeting and the beep, toward the target.
    let to_target = streams
        .iter()
        .find(|s| s["direction"].as_str() == Some("to-target") && s["xid"].as_str() == Some(XID))
        .context(format!("no to-target stream delivered: {summary}"))?;
    let wav = PathBuf::from(to_target["wav"].as_str().context("no WAV")?);
    let wav = if wav.is_absolute() {
        wav
    } else {
        agency_out.join(wav)
    };
    let w = Wav::read(&wav)?;
    let g = ToneReport::analyse(&w.samples, w.rate, GREETING_HZ);
    let b = ToneReport::analyse(&w.samples, w.rate, 1000.0);
    notes.push(format!(
        "X3 to-target: {:.1} s of the {GREETING_HZ} Hz greeting, {:.1} s of the beep",
        g.tone_secs(),
        b.tone_secs()
    ));
    if g.tone_secs() < 0.6 || b.tone_secs() < 0.2 {
        return Err(E2eError::new(format!(
            "the agency should get the greeting and the beep toward the target: {:.1} s, {:.1} s",
            g.tone_secs(),
            b.tone_secs()
        )));
    }

    let msgs: Vec<PathBuf> = fs::read_dir(data.join("bob"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".pcapng"))
        .collect();
    if msgs.len() != 1 {
        return Err(E2eError::new(format!(
            "expected one stored message: {msgs:?}"
        )));
    }
    let out = wd.path().join("message.wav");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&key)
        .arg(&msgs[0])
        .arg("--wav")
        .arg(&out)
        .output()?;
    if !o.status.success() {
        return Err(E2eError::new(format!(
            "vm-play: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let w = Wav::read(&out)?;
    let t = ToneReport::analyse(&w.samples, w.rate, f64::from(CALLER_TONE_HZ));
    notes.push(format!(
        "stored message: {:.1} s of the tone",
        t.tone_secs()
    ));
    if t.tone_secs() < 2.0 {
        return Err(E2eError::new("the stored message lacks the tone"));
    }
    Ok(notes)
}

#[test]
fn deposit_by_a_target_is_delivered_live_and_stored_sealed() {
    let wd = Workdir::new("voicemail-li").expect("work directory");
    match run(&wd) {
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
