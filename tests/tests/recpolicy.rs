//! The per-user recording policy end to end: srtpgate with its SIP edge and
//! `[voicemail] record-users = ["alice"]`, the operator's key pair made with
//! `vm-play keygen`. Three real baresip phones (SDES-SRTP) register; alice calls bob and
//! both send a tone; then bob calls carol. Exactly one recording is stored, sealed: closed
//! after the hang-up, no tone in clear in its bytes, and `vm-play` with the operator's key
//! gives alice's tone in one direction and bob's in the other; a wrong key is refused.
//! Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{talk_call, Baresip, UserAgent};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::process::{run_in_workdir, wait_until, Workdir};
use srtpgate_tests::e2e::relay::{start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::{CALLEE_TONE_HZ, CALLER_TONE_HZ};
use srtpgate_tests::e2e::sip_edge::wait_no_calls;
use srtpgate_tests::e2e::voicemail::{no_tone_in_clear, stored_files as recordings, VmPlay};
use srtpgate_tests::e2e::{Context, E2eError, Result};

const TALK: Duration = Duration::from_secs(2);
const CAROL_TONE_HZ: u32 = 880;

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = VmPlay::locate()?;
    let (key, public) = vm.key_pair(wd.path(), "operator.key")?;
    let (wrong, _) = vm.key_pair(wd.path(), "other.key")?;
    let data = wd.path().join("data");

    let ports = EdgePorts::allocate()?;
    let ngaddr = ports.ng;
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "[daemon]\ndrain-grace = 0\n\
         [voicemail]\ndata-dir = {:?}\nrecording-public-key = \"{public}\"\n\
         record-users = [\"alice\"]\n",
        data.display().to_string(),
    );
    let mut relay = start_srtpgate_with_config(wd, &ports, &cfg, Metrics::Off, "info")?;

    let mut a = Baresip::start(wd, &UserAgent::sdes("alice", CALLER_TONE_HZ, false))?;
    let mut b = Baresip::start(wd, &UserAgent::sdes("bob", CALLEE_TONE_HZ, true))?;
    let mut c = Baresip::start(wd, &UserAgent::sdes("carol", CAROL_TONE_HZ, true))?;
    for p in [&mut a, &mut b, &mut c] {
        p.register(ports.registrar(), Duration::from_secs(5))?;
    }
    let rec_dir = data.join("recordings");
    talk_call(&mut a, &mut b, &ports.uri("bob"), TALK)?;
    wait_until(
        "the recording of alice's call to be closed",
        Duration::from_secs(5),
        || Ok((recordings(&rec_dir).0.len() == 1).then_some(())),
    )?;
    notes.push("alice → bob: one recording, closed after the hang-up".into());
    talk_call(&mut b, &mut c, &ports.uri("carol"), TALK)?;
    wait_no_calls(ngaddr, "bob's call with carol to end in the relay")?;
    std::thread::sleep(Duration::from_millis(500));
    a.stop();
    b.stop();
    c.stop();
    relay.process.stop(Duration::from_secs(2));

    let (done, other) = recordings(&rec_dir);
    if done.len() != 1 || !other.is_empty() {
        return Err(E2eError::new(format!(
            "expected exactly one closed recording (bob → carol is not recorded): {done:?}, others {other:?}"
        )));
    }
    notes.push("bob → carol: not recorded".into());
    let file = &done[0];
    let bytes = fs::read(file)?;
    for hz in [CALLER_TONE_HZ, CALLEE_TONE_HZ] {
        no_tone_in_clear(&bytes, hz)?;
    }
    notes.push(format!("{} bytes, no tone in clear", bytes.len()));

    // Each direction with the operator's key: alice's tone one way, bob's the other.
    let mut heard = Vec::new();
    for leg in 0..2u32 {
        let w = vm.leg_wav(&key, file, leg, &wd.path().join(format!("leg{leg}.wav")))?;
        let best = [CALLER_TONE_HZ, CALLEE_TONE_HZ]
            .into_iter()
            .map(|hz| (hz, ToneReport::analyse(&w.samples, w.rate, f64::from(hz))))
            .max_by(|x, y| x.1.tone_secs().total_cmp(&y.1.tone_secs()))
            .context("no tone analysed")?;
        notes.push(format!(
            "leg {leg}: {:.2} s of audio, {:.2} s of the {} Hz tone",
            w.duration_secs(),
            best.1.tone_secs(),
            best.0
        ));
        if best.1.tone_secs() < TALK.as_secs_f64() - 1.0 {
            return Err(E2eError::new(format!(
                "leg {leg}: too little tone: {notes:?}"
            )));
        }
        heard.push(best.0);
    }
    heard.sort();
    if heard != [CALLER_TONE_HZ, CALLEE_TONE_HZ] {
        return Err(E2eError::new(format!(
            "expected alice's and bob's tones, one per direction: {heard:?}"
        )));
    }
    vm.refuses(&wrong, file, &wd.path().join("wrong.wav"))?;
    notes.push("a wrong key is refused".into());
    Ok(notes)
}

#[test]
fn calls_of_a_listed_user_are_recorded_sealed() {
    run_in_workdir("recpolicy", run);
}
