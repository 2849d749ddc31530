//! The per-user recording policy end to end: srtpgate with its SIP edge and
//! `[voicemail] record-users = ["alice"]`, the operator's key pair made with
//! `vm-play keygen`. Three real baresip phones (SDES-SRTP) register; alice calls bob and
//! both send a tone; then bob calls carol. Exactly one recording is stored, sealed: closed
//! after the hang-up, no tone in clear in its bytes, and `vm-play` with the operator's key
//! gives alice's tone in one direction and bob's in the other; a wrong key is refused.
//! Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::media::{ulaw_decode, ToneReport};
use srtpgate_tests::e2e::process::{wait_until, Child, Workdir};
use srtpgate_tests::e2e::relay::{Relay, MEDIA_PORTS};
use srtpgate_tests::e2e::scenario::{CALLEE_TONE_HZ, CALLER_TONE_HZ};
use srtpgate_tests::e2e::sip_edge::ng_calls;
use srtpgate_tests::e2e::tools::tool;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{ng, ports, Context, E2eError, Result};

const TALK: Duration = Duration::from_secs(2);
const CAROL_TONE_HZ: u32 = 880;

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

fn phone(user: &str, tone_hz: u32, auto_answer: bool) -> UserAgent {
    UserAgent {
        user: user.into(),
        tone_hz,
        media: MediaEnc::SrtpMandatory,
        auto_answer,
    }
}

/// Registers the phone without authentication (srtpgate's loopback default).
fn register(p: &mut Baresip, sip: u16) -> Result<()> {
    let user = p.ua.user.clone();
    let mut params = format!("<sip:{user}@127.0.0.1:{sip}>;regint=600;audio_codecs=pcmu");
    if p.ua.auto_answer {
        params.push_str(";answermode=auto");
    }
    params.push_str(p.ua.media.account_param());
    let r = p
        .ctrl
        .command("uanew", Some(&params), Duration::from_secs(5))?;
    if !r.ok {
        return Err(E2eError::new(format!("uanew {user}: {}", r.data.trim())));
    }
    p.wait_event("REGISTER_OK", &["REGISTER_FAIL"], Duration::from_secs(5))
        .map(|_| ())
}

/// `caller` calls `callee`, both talk for `TALK`, `caller` hangs up.
fn call(caller: &mut Baresip, callee: &mut Baresip, sip: u16) -> Result<()> {
    caller.dial(&format!("sip:{}@127.0.0.1:{sip}", callee.ua.user))?;
    let setup = Duration::from_secs(10);
    callee.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
    caller.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
    caller.expect_no_event("CALL_CLOSED", TALK)?;
    caller.hangup()?;
    caller.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    callee.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    Ok(())
}

/// Files in the recordings directory: (complete `.pcapng`, anything else).
fn recordings(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let all: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    all.into_iter()
        .partition(|p| p.to_string_lossy().ends_with(".pcapng"))
}

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = vm_play()?;
    let key = wd.path().join("operator.key");
    let public = keygen(&vm, &key)?;
    let wrong = wd.path().join("other.key");
    keygen(&vm, &wrong)?;
    let data = wd.path().join("data");

    let Relay::Srtpgate { binary } = Relay::srtpgate()? else {
        return Err(E2eError::new("not srtpgate"));
    };
    let ngaddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let port_min = ports::free_block(MEDIA_PORTS)?;
    let sip = ports::free_block(2)?;
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "[ng]\nlisten = \"{ngaddr}\"\n[daemon]\ndrain-grace = 0\n\
         [media]\nport-min = {port_min}\nport-max = {}\nworkers = 1\npin = false\n\
         interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
         [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n\
         [voicemail]\ndata-dir = {:?}\nrecording-public-key = \"{public}\"\n\
         record-users = [\"alice\"]\n",
        port_min + MEDIA_PORTS - 1,
        data.display().to_string(),
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

    let mut a = Baresip::start(wd, &phone("alice", CALLER_TONE_HZ, false))?;
    let mut b = Baresip::start(wd, &phone("bob", CALLEE_TONE_HZ, true))?;
    let mut c = Baresip::start(wd, &phone("carol", CAROL_TONE_HZ, true))?;
    for p in [&mut a, &mut b, &mut c] {
        register(p, sip)?;
    }
    let rec_dir = data.join("recordings");
    call(&mut a, &mut b, sip)?;
    wait_until(
        "the recording of alice's call to be closed",
        Duration::from_secs(5),
        || Ok((recordings(&rec_dir).0.len() == 1).then_some(())),
    )?;
    notes.push("alice → bob: one recording, closed after the hang-up".into());
    call(&mut b, &mut c, sip)?;
    wait_until(
        "bob's call with carol to end in the relay",
        Duration::from_secs(5),
        || Ok((ng_calls(ngaddr)? == 0).then_some(())),
    )?;
    std::thread::sleep(Duration::from_millis(500));
    a.stop();
    b.stop();
    c.stop();
    relay.stop(Duration::from_secs(2));

    let (done, other) = recordings(&rec_dir);
    if done.len() != 1 || !other.is_empty() {
        return Err(E2eError::new(format!(
            "expected exactly one closed recording (bob → carol is not recorded): {done:?}, others {other:?}"
        )));
    }
    notes.push("bob → carol: not recorded".into());
    let file = &done[0];
    let bytes = fs::read(file)?;
    let as_ulaw: Vec<i16> = bytes.iter().map(|&x| ulaw_decode(x)).collect();
    for hz in [CALLER_TONE_HZ, CALLEE_TONE_HZ] {
        let on_disk = ToneReport::analyse(&as_ulaw, 8000, f64::from(hz));
        if on_disk.tone_secs() > 0.2 {
            return Err(E2eError::new(format!(
                "the recording carries {:.1} s of the {hz} Hz tone in clear",
                on_disk.tone_secs()
            )));
        }
    }
    notes.push(format!("{} bytes, no tone in clear", bytes.len()));

    // Each direction with the operator's key: alice's tone one way, bob's the other.
    let mut heard = Vec::new();
    for leg in 0..2u32 {
        let wav = wd.path().join(format!("leg{leg}.wav"));
        let o = Command::new(&vm)
            .arg("--key")
            .arg(&key)
            .arg(file)
            .args(["--leg", &leg.to_string(), "--wav"])
            .arg(&wav)
            .output()?;
        if !o.status.success() {
            return Err(E2eError::new(format!(
                "vm-play --leg {leg}: {}",
                String::from_utf8_lossy(&o.stderr)
            )));
        }
        let w = Wav::read(&wav)?;
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
    let bad = wd.path().join("wrong.wav");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&wrong)
        .arg(file)
        .arg("--wav")
        .arg(&bad)
        .output()?;
    if o.status.success() || bad.exists() {
        return Err(E2eError::new("vm-play with a wrong key must fail"));
    }
    notes.push("a wrong key is refused".into());
    Ok(notes)
}

#[test]
fn calls_of_a_listed_user_are_recorded_sealed() {
    let wd = Workdir::new("recpolicy").expect("work directory");
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
