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
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use srtpgate_tests::e2e::baresip::{Baresip, UserAgent};
use srtpgate_tests::e2e::li::{activate_task, Agency, Delivery};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::ports;
use srtpgate_tests::e2e::process::{run_in_workdir, Workdir};
use srtpgate_tests::e2e::relay::{metrics_page, start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::voicemail::{expect_talk, only_message, VmPlay};
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{E2eError, Result};

/// How long bob's phone rings before voicemail takes the call.
const NO_ANSWER_SECS: u64 = 3;
/// How long alice talks to voicemail.
const TALK_SECS: f64 = 3.0;

fn phone(wd: &Workdir, user: &str, ports: &EdgePorts) -> Result<Baresip> {
    let ua = UserAgent::sdes(user, CALLER_TONE_HZ, false);
    Baresip::start_registered(wd, &ua, ports.registrar())
}

const TOKEN: &str = "e2e-vmroute-li-admin-token-0123456789";
const XID: &str = "2f6b1d3e-9c4a-4e8b-a7d5-0c1e2f3a4b5c";
const DID: &str = "8e7d6c5b-4a39-4281-b7f6-e5d4c3b2a190";

/// Seconds of the caller's tone in the best from-target stream of the task the agency got.
fn intercepted_tone(got: &Delivery) -> Result<f64> {
    let mut best = 0.0_f64;
    for s in got.streams() {
        if s["direction"].as_str() != Some("from-target") || s["xid"].as_str() != Some(XID) {
            continue;
        }
        if s["wav"].as_str().is_none() {
            continue;
        }
        let wav = Wav::read(&got.wav(&s)?)?;
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
    let vm = VmPlay::locate()?;
    let (key, public) = vm.key_pair(wd.path(), "mailbox.key")?;
    let data = wd.path().join("voicemail");

    let ports = EdgePorts::allocate()?;
    let maddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let mut agency = if li { Some(Agency::start(wd)?) } else { None };
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "[metrics]\nlisten = \"{maddr}\"\n\
         [voicemail]\ndata-dir = {:?}\nmax-message-length = 30\nuri = \"voicemail\"\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\npublic-key = \"{public}\"\n\
         on-no-answer = true\non-busy = true\nno-answer-timeout = {NO_ANSWER_SECS}\n\
         [[voicemail.mailboxes]]\nid = \"alice\"\nowner = \"sip:alice@127.0.0.1\"\npublic-key = \"{public}\"\n",
        data.display().to_string(),
    );
    if li {
        let _ = write!(
            cfg,
            "[li]\nadmin-listen = \"{admin}\"\nadmin-token = \"{TOKEN}\"\nstore = {:?}\n",
            wd.path().join("li.json").display().to_string(),
        );
    }
    let mut relay =
        start_srtpgate_with_config(wd, &ports, &cfg, Metrics::FromConfig, "info,control=debug")?;

    if let Some(agency) = &agency {
        activate_task(admin, TOKEN, agency.addr, DID, XID, "sip:alice@127.0.0.1")?;
    }
    let mut bob = phone(wd, "bob", &ports)?;
    let mut alice = phone(wd, "alice", &ports)?;
    let dialled = Instant::now();
    if mode == Mode::FixedUri {
        alice.dial(&ports.uri("voicemail"))?;
    } else {
        alice.dial(&ports.uri("bob"))?;
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
    alice.talk_and_hang_up(Duration::from_secs_f64(TALK_SECS))?;
    std::thread::sleep(Duration::from_millis(500));

    let page = metrics_page(maddr)?;
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
    relay.process.stop(Duration::from_secs(2));
    if let Some(agency) = agency.take() {
        let tone = intercepted_tone(&agency.finish()?)?;
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
    let msg = only_message(&data.join(mailbox))?;
    let w = vm.wav(&key, &msg, &wd.path().join("message.wav"))?;
    notes.push(expect_talk(&w, CALLER_TONE_HZ, TALK_SECS)?);
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
    run_in_workdir(name, |wd| run(wd, mode));
}
