//! A voicemail deposit by an intercepted caller: srtpgate with `[li]` and `[voicemail]`,
//! `li-receiver` as the agency, a task for alice activated over X1. alice (baresip,
//! SDES-SRTP) deposits a 3 s tone to `vm-bob`: the agency receives the tone alice sent
//! live over X3, and the sealed message is stored and plays back with the mailbox key as
//! for any caller. bob's mailbox has a greeting (a 1 s 600 Hz tone): the agency also
//! receives it, and the beep, toward the target. Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, UserAgent};
use srtpgate_tests::e2e::li::{activate_task, Agency};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::process::{run_in_workdir, Workdir};
use srtpgate_tests::e2e::relay::{start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::voicemail::{sealed_messages, VmPlay};
use srtpgate_tests::e2e::wav::{tone_wav, Wav};
use srtpgate_tests::e2e::{ports, E2eError, Result};

const TOKEN: &str = "e2e-vm-li-admin-token-0123456789";
const XID: &str = "5d0f3c1a-8e2b-4c7d-9a61-2f4e8b9c0d1e";
const DID: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const GREETING_HZ: f64 = 600.0;

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = VmPlay::locate()?;
    let (key, public) = vm.key_pair(wd.path(), "bob.key")?;
    let greeting = wd.path().join("greeting.wav");
    fs::write(&greeting, tone_wav(GREETING_HZ, 1.0))?;

    let agency = Agency::start(wd)?;

    let ports = EdgePorts::allocate()?;
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let data = wd.path().join("voicemail");
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "[li]\nadmin-listen = \"{admin}\"\nadmin-token = \"{TOKEN}\"\nstore = {:?}\n\
         [voicemail]\ndata-dir = {:?}\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\npublic-key = \"{public}\"\n\
         greeting = {:?}\n",
        wd.path().join("li.json").display().to_string(),
        data.display().to_string(),
        greeting.display().to_string(),
    );
    let mut relay = start_srtpgate_with_config(wd, &ports, &cfg, Metrics::Off, "info")?;
    activate_task(admin, TOKEN, agency.addr, DID, XID, "sip:alice@127.0.0.1")?;

    let ua = UserAgent::sdes("alice", CALLER_TONE_HZ, false);
    let mut a = Baresip::start_registered(wd, &ua, ports.registrar())?;
    a.dial_established(&ports.uri("vm-bob"))?;
    a.talk_and_hang_up(Duration::from_secs(3))?;
    std::thread::sleep(Duration::from_millis(800));
    a.stop();
    relay.process.stop(Duration::from_secs(2));
    let got = agency.finish()?;
    let summary = &got.summary;

    let from_target = got.stream("from-target", XID)?;
    let wav = got.wav(&from_target)?;
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
    let to_target = got.stream("to-target", XID)?;
    let wav = got.wav(&to_target)?;
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

    let msgs = sealed_messages(&data.join("bob"));
    if msgs.len() != 1 {
        return Err(E2eError::new(format!(
            "expected one stored message: {msgs:?}"
        )));
    }
    let w = vm.wav(&key, &msgs[0], &wd.path().join("message.wav"))?;
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
    run_in_workdir("voicemail-li", run);
}
