//! The voicemail HTTP API end to end: srtpgate starts with voicemail on and no mailbox at
//! all; the admin creates mailbox `bob` over the API with a key pair made by `vm-play
//! keygen`; a real baresip phone (alice, SDES-SRTP, digest-authenticated) deposits a tone
//! at `vm-bob` without any restart; bob, with his SIP password over HTTP Basic, lists the
//! message, downloads it byte for byte as stored and plays it with `vm-play`; alice cannot
//! see bob's mailbox; bob deletes the message. Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
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

const TOKEN: &str = "e2e-vm-api-admin-token-0123";
const USERS: [(&str, &str); 2] = [("alice", "alice-secret"), ("bob", "bob-secret")];
const TALK: Duration = Duration::from_secs(2);

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

/// Standard base64 with padding (RFC 4648), for the Basic credentials.
fn base64(b: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(c.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(c.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

enum Auth<'a> {
    Admin,
    User(&'a str),
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the API's answer is not JSON")
    }
}

fn http(api: SocketAddr, method: &str, path: &str, auth: Auth, body: &str) -> Result<Answer> {
    let auth = match auth {
        Auth::Admin => format!("Bearer {TOKEN}"),
        Auth::User(u) => {
            let pw = USERS.iter().find(|(n, _)| *n == u).map_or("", |(_, p)| p);
            format!("Basic {}", base64(format!("{u}:{pw}").as_bytes()))
        }
    };
    let mut s = TcpStream::connect(api).context("connecting to the voicemail API")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: srtpgate\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP head in the API's answer")?;
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context(format!("status line {head:?}"))?;
    let length: Option<usize> = head.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    });
    let body = out[end + 4..].to_vec();
    if length != Some(body.len()) {
        return Err(E2eError::new(format!(
            "{method} {path}: Content-Length {length:?} but {} bytes came",
            body.len()
        )));
    }
    Ok(Answer { status, body })
}

fn expect(a: &Answer, status: u16, what: &str) -> Result<()> {
    if a.status != status {
        return Err(E2eError::new(format!(
            "{what}: expected {status}, got {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        )));
    }
    Ok(())
}

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = vm_play()?;
    let key = wd.path().join("bob.key");
    let public = keygen(&vm, &key)?;
    let data = wd.path().join("voicemail");

    let Relay::Srtpgate { binary } = Relay::srtpgate()? else {
        return Err(E2eError::new("not srtpgate"));
    };
    let ngaddr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let api = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let port_min = ports::free_block(MEDIA_PORTS)?;
    let sip = ports::free_block(2)?;
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "[ng]\nlisten = \"{ngaddr}\"\n\
         [media]\nport-min = {port_min}\nport-max = {}\nworkers = 1\npin = false\n\
         interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
         [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n\
         digest-algorithms = [\"MD5\"]\n\
         [voicemail]\ndata-dir = {:?}\napi-listen = \"{api}\"\napi-admin-token = \"{TOKEN}\"\n",
        port_min + MEDIA_PORTS - 1,
        data.display().to_string(),
    );
    for (u, p) in USERS {
        let _ = write!(
            cfg,
            "[[sip.users]]\nusername = \"{u}\"\npassword = \"{p}\"\n"
        );
    }
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

    // No mailbox yet; the admin creates bob's.
    let a = http(api, "GET", "/v1/mailboxes", Auth::Admin, "")?;
    expect(&a, 200, "listing mailboxes")?;
    if a.json()?["mailboxes"] != serde_json::json!([]) {
        return Err(E2eError::new("mailboxes before any was created"));
    }
    let body = format!("{{\"owner\":\"sip:bob@127.0.0.1\",\"public_key\":\"{public}\"}}");
    expect(
        &http(api, "PUT", "/v1/mailboxes/bob", Auth::Admin, &body)?,
        201,
        "creating bob's mailbox",
    )?;

    // alice deposits at vm-bob.
    let ua = UserAgent {
        user: "alice".into(),
        tone_hz: CALLER_TONE_HZ,
        media: MediaEnc::SrtpMandatory,
        auto_answer: false,
    };
    let mut phone = Baresip::start(wd, &ua)?;
    let params = format!(
        "<sip:alice@127.0.0.1:{sip}>;auth_pass={};regint=600;audio_codecs=pcmu{}",
        USERS[0].1,
        ua.media.account_param()
    );
    let r = phone
        .ctrl
        .command("uanew", Some(&params), Duration::from_secs(5))?;
    if !r.ok {
        return Err(E2eError::new(format!("uanew: {}", r.data.trim())));
    }
    phone.wait_event("REGISTER_OK", &["REGISTER_FAIL"], Duration::from_secs(5))?;
    phone.dial(&format!("sip:vm-bob@127.0.0.1:{sip}"))?;
    phone.wait_event(
        "CALL_ESTABLISHED",
        &["CALL_CLOSED"],
        Duration::from_secs(10),
    )?;
    phone.expect_no_event("CALL_CLOSED", TALK)?;
    phone.hangup()?;
    phone.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    phone.stop();

    // bob lists his mailbox (the message appears once the deposit is closed).
    let mut list = Value::Null;
    wait_until("the message to be listed", Duration::from_secs(5), || {
        let a = http(
            api,
            "GET",
            "/v1/mailboxes/bob/messages",
            Auth::User("bob"),
            "",
        )?;
        expect(&a, 200, "bob listing his messages")?;
        list = a.json()?["messages"].clone();
        Ok(list.as_array().is_some_and(|l| !l.is_empty()).then_some(()))
    })?;
    let entries = list.as_array().cloned().unwrap_or_default();
    if entries.len() != 1 || entries[0]["complete"] != true {
        return Err(E2eError::new(format!(
            "expected one complete message: {list}"
        )));
    }
    let id = entries[0]["id"].as_str().unwrap_or("").to_string();
    notes.push(format!("bob's listing: {}", entries[0]));

    // alice is not bob: his mailbox does not exist for her.
    let path = format!("/v1/mailboxes/bob/messages/{id}");
    expect(
        &http(api, "GET", &path, Auth::User("alice"), "")?,
        404,
        "alice downloading bob's message",
    )?;

    // Download: the sealed file exactly as stored; it plays with bob's key.
    let got = http(api, "GET", &path, Auth::User("bob"), "")?;
    expect(&got, 200, "bob downloading his message")?;
    let stored = fs::read(data.join("bob").join(format!("{id}.pcapng")))?;
    if got.body != stored {
        return Err(E2eError::new(format!(
            "the download ({} bytes) differs from the stored file ({} bytes)",
            got.body.len(),
            stored.len()
        )));
    }
    let downloaded = wd.path().join("downloaded.pcapng");
    fs::write(&downloaded, &got.body)?;
    let wav = wd.path().join("message.wav");
    let o = Command::new(&vm)
        .arg("--key")
        .arg(&key)
        .arg(&downloaded)
        .arg("--wav")
        .arg(&wav)
        .output()?;
    if !o.status.success() {
        return Err(E2eError::new(format!(
            "vm-play on the downloaded message failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )));
    }
    let w = Wav::read(&wav)?;
    let rep = ToneReport::analyse(&w.samples, w.rate, f64::from(CALLER_TONE_HZ));
    let talk = TALK.as_secs_f64();
    notes.push(format!(
        "downloaded {} bytes; vm-play: {:.2} s of audio, {:.2} s of {} Hz",
        got.body.len(),
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

    // bob deletes it.
    expect(
        &http(api, "DELETE", &path, Auth::User("bob"), "")?,
        200,
        "bob deleting his message",
    )?;
    let a = http(
        api,
        "GET",
        "/v1/mailboxes/bob/messages",
        Auth::User("bob"),
        "",
    )?;
    if a.json()?["messages"] != serde_json::json!([]) {
        return Err(E2eError::new("the message is still listed after deletion"));
    }
    if data.join("bob").join(format!("{id}.pcapng")).exists() {
        return Err(E2eError::new(
            "the message file is still there after deletion",
        ));
    }
    relay.stop(Duration::from_secs(2));
    Ok(notes)
}

#[test]
fn mailbox_created_over_the_api_takes_a_deposit_that_its_owner_downloads() {
    let wd = Workdir::new("vmapi").expect("work directory");
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
