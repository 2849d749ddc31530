//! Calls sent to voicemail by srtpgate's SIP edge, with real baresip phones: bob has a
//! mailbox whose policy sends unanswered and busy calls to voicemail. Alice calls bob;
//! bob's phone rings and is not answered (no auto-answer) — after the mailbox's
//! `no-answer-timeout` srtpgate cancels bob's phone and answers alice itself; alice sends
//! a tone for 3 s and hangs up. The message lands in bob's mailbox, sealed, and `vm-play`
//! with bob's key plays the tone. A second run has bob reject the call (486): the same
//! deposit, counted as `busy`. The deposit counters are read from the metrics page. A
//! third run makes alice a lawful-interception target (X1 task, `li-receiver` as the
//! agency): the call is intercepted from its routing on, and after it went to voicemail
//! the agency still receives alice's tone live over X3. A fourth run has alice call the
//! fixed voicemail URI `voicemail` without diversion information: the message lands in her
//! own mailbox. Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::ng;
use srtpgate_tests::e2e::ports;
use srtpgate_tests::e2e::process::{wait_until, Child, Workdir};
use srtpgate_tests::e2e::relay::{Relay, MEDIA_PORTS};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::tools::tool;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{Context, E2eError, Result};

/// How long bob's phone rings before voicemail takes the call.
const NO_ANSWER_SECS: u64 = 3;
/// How long alice talks to voicemail.
const TALK_SECS: f64 = 3.0;

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

fn metrics(addr: SocketAddr) -> Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    Ok(out)
}

fn phone(wd: &Workdir, user: &str, sip: u16) -> Result<Baresip> {
    let ua = UserAgent {
        user: user.into(),
        tone_hz: CALLER_TONE_HZ,
        media: MediaEnc::SrtpMandatory,
        auto_answer: false,
    };
    let mut p = Baresip::start(wd, &ua)?;
    p.register(
        SocketAddr::from((Ipv4Addr::LOCALHOST, sip)),
        Duration::from_secs(5),
    )?;
    Ok(p)
}

const TOKEN: &str = "e2e-vmroute-li-admin-token-0123456789";
const XID: &str = "2f6b1d3e-9c4a-4e8b-a7d5-0c1e2f3a4b5c";
const DID: &str = "8e7d6c5b-4a39-4281-b7f6-e5d4c3b2a190";

/// POSTs one X1 request; returns the HTTP status.
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

/// The agency: `li-receiver` on a free port, writing to `<wd>/li-out`.
fn agency(wd: &Workdir) -> Result<(Child, SocketAddr, PathBuf)> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let out = wd.subdir("li-out")?;
    let mut cmd = Command::new(tool("li-receiver")?);
    cmd.arg("--out")
        .arg(&out)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--strict");
    let mut child = Child::spawn(wd, "li-receiver", cmd)?;
    wait_until("li-receiver to listen", Duration::from_secs(10), || {
        child.check_running()?;
        Ok(TcpStream::connect(addr).is_ok().then_some(()))
    })?;
    Ok((child, addr, out))
}

/// Seconds of the caller's tone in the best from-target stream the agency wrote.
fn intercepted_tone(out: &Path) -> Result<f64> {
    let summary: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(out.join("summary.json")).context("no summary.json")?,
    )
    .map_err(|e| E2eError::new(format!("summary.json: {e}")))?;
    let mut best = 0.0_f64;
    for s in summary["streams"].as_array().cloned().unwrap_or_default() {
        if s["direction"].as_str() != Some("from-target") || s["xid"].as_str() != Some(XID) {
            continue;
        }
        let Some(w) = s["wav"].as_str() else { continue };
        let w = PathBuf::from(w);
        let w = if w.is_absolute() { w } else { out.join(w) };
        let wav = Wav::read(&w)?;
        let t = ToneReport::analyse(&wav.samples, wav.rate, f64::from(CALLER_TONE_HZ));
        best = best.max(t.tone_secs());
    }
    Ok(best)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bob lets his phone ring.
    NoAnswer,
    /// Bob rejects the call.
    Busy,
    /// Bob lets it ring, and alice is an LI target.
    Intercepted,
    /// Alice calls the fixed voicemail URI: her own mailbox.
    FixedUri,
}

fn run(wd: &Workdir, mode: Mode) -> Result<Vec<String>> {
    let (busy, li) = (mode == Mode::Busy, mode == Mode::Intercepted);
    let mut notes = Vec::new();
    let vm = tool("vm-play")?;
    let key = wd.path().join("mailbox.key");
    let public = keygen(&vm, &key)?;
    let data = wd.path().join("voicemail");

    let Relay::Srtpgate { binary } = Relay::srtpgate()? else {
        return Err(E2eError::new("not srtpgate"));
    };
    let ngaddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let maddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let port_min = ports::free_block(MEDIA_PORTS)?;
    let sip = ports::free_block(2)?;
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let mut agency = if li { Some(agency(wd)?) } else { None };
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "[ng]\nlisten = \"{ngaddr}\"\n[metrics]\nlisten = \"{maddr}\"\n\
         [media]\nport-min = {port_min}\nport-max = {}\nworkers = 1\npin = false\n\
         interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
         [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n\
         [voicemail]\ndata-dir = {:?}\nmax-message-length = 30\nuri = \"voicemail\"\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\npublic-key = \"{public}\"\n\
         on-no-answer = true\non-busy = true\nno-answer-timeout = {NO_ANSWER_SECS}\n\
         [[voicemail.mailboxes]]\nid = \"alice\"\nowner = \"sip:alice@127.0.0.1\"\npublic-key = \"{public}\"\n",
        port_min + MEDIA_PORTS - 1,
        data.display().to_string(),
    );
    if li {
        let _ = write!(
            cfg,
            "[li]\nadmin-listen = \"{admin}\"\nadmin-token = \"{TOKEN}\"\nstore = {:?}\n",
            wd.path().join("li.json").display().to_string(),
        );
    }
    let cfg_path = wd.path().join("srtpgate.toml");
    fs::write(&cfg_path, cfg)?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config")
        .arg(&cfg_path)
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

    if let Some((_, agency_addr, _)) = &agency {
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
    }
    let mut bob = phone(wd, "bob", sip)?;
    let mut alice = phone(wd, "alice", sip)?;
    let dialled = Instant::now();
    if mode == Mode::FixedUri {
        alice.dial(&format!("sip:voicemail@127.0.0.1:{sip}"))?;
    } else {
        alice.dial(&format!("sip:bob@127.0.0.1:{sip}"))?;
        bob.wait_event("CALL_INCOMING", &[], Duration::from_secs(5))?;
        alice.wait_event("CALL_RINGING", &["CALL_CLOSED"], Duration::from_secs(5))?;
    }
    if busy {
        // Rejecting an incoming call: baresip answers 486 Busy Here.
        bob.hangup()?;
    }
    alice.wait_event(
        "CALL_ESTABLISHED",
        &["CALL_CLOSED"],
        Duration::from_secs(NO_ANSWER_SECS + 5),
    )?;
    let rang = dialled.elapsed();
    notes.push(format!("alice reached voicemail after {rang:.1?}"));
    let rings = matches!(mode, Mode::NoAnswer | Mode::Intercepted);
    if rings && rang < Duration::from_secs(NO_ANSWER_SECS) {
        return Err(E2eError::new(format!(
            "voicemail answered after {rang:?}, before the no-answer timeout"
        )));
    }
    if mode != Mode::FixedUri {
        // Bob's phone stops ringing (CANCEL) or ended the call itself (busy); it never
        // answers.
        let closed =
            bob.wait_event("CALL_CLOSED", &["CALL_ESTABLISHED"], Duration::from_secs(5))?;
        notes.push(format!("bob's phone: CALL_CLOSED({})", closed.param));
    }
    alice.expect_no_event("CALL_CLOSED", Duration::from_secs_f64(TALK_SECS))?;
    alice.hangup()?;
    alice.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_millis(500));

    let page = metrics(maddr)?;
    let reason = match mode {
        Mode::Busy => "busy",
        Mode::FixedUri => "fixed-uri",
        Mode::NoAnswer | Mode::Intercepted => "no-answer",
    };
    let want = format!("srtpgate_sip_voicemail_deposits_total{{reason=\"{reason}\"}} 1");
    if !page.contains(&want) {
        let lines: Vec<&str> = page.lines().filter(|l| l.contains("voicemail")).collect();
        return Err(E2eError::new(format!("metrics lack {want:?}: {lines:?}")));
    }
    notes.push(format!("metrics: {want}"));
    alice.stop();
    bob.stop();
    relay.stop(Duration::from_secs(2));
    if let Some((mut child, _, out)) = agency.take() {
        child.stop(Duration::from_secs(5));
        let tone = intercepted_tone(&out)?;
        notes.push(format!(
            "X3 from-target: {tone:.1} s of the {CALLER_TONE_HZ} Hz tone"
        ));
        if tone < TALK_SECS - 1.0 {
            return Err(E2eError::new(format!(
                "the agency got only {tone:.1} s of alice's tone after the call went to voicemail"
            )));
        }
    }

    let (mailbox, other) = match mode {
        Mode::FixedUri => ("alice", "bob"),
        _ => ("bob", "alice"),
    };
    if fs::read_dir(data.join(other)).is_ok_and(|mut d| d.next().is_some()) {
        return Err(E2eError::new(format!(
            "a message landed in {other}'s mailbox"
        )));
    }
    let dir = data.join(mailbox);
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let msgs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".pcapng"))
        .collect();
    if msgs.len() != 1 || files.len() != 1 {
        return Err(E2eError::new(format!(
            "expected exactly one closed message in {}, found {files:?}",
            dir.display()
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
        "vm-play: {:.2} s of audio, {:.2} s of {} Hz tone",
        w.duration_secs(),
        rep.tone_secs(),
        CALLER_TONE_HZ
    ));
    if !(TALK_SECS - 1.0..=TALK_SECS + 2.0).contains(&w.duration_secs())
        || rep.tone_secs() < TALK_SECS - 1.0
    {
        return Err(E2eError::new(format!(
            "expected about {TALK_SECS} s of the tone: {:.2} s of audio, {:.2} s of tone",
            w.duration_secs(),
            rep.tone_secs()
        )));
    }
    Ok(notes)
}

#[test]
fn unanswered_call_lands_in_the_callees_mailbox() {
    check("vmroute-no-answer", Mode::NoAnswer);
}

#[test]
fn rejected_call_lands_in_the_callees_mailbox() {
    check("vmroute-busy", Mode::Busy);
}

#[test]
fn intercepted_caller_is_still_intercepted_in_voicemail() {
    check("vmroute-li", Mode::Intercepted);
}

/// Alice calls `voicemail` (no diversion information): her own mailbox takes the message.
#[test]
fn fixed_uri_without_diversion_is_the_callers_own_mailbox() {
    check("vmroute-fixed", Mode::FixedUri);
}

fn check(name: &str, mode: Mode) {
    let wd = Workdir::new(name).expect("work directory");
    match run(&wd, mode) {
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
