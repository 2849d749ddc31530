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
use std::time::Duration;

use serde_json::Value;
use srtpgate_tests::e2e::baresip::{Baresip, UserAgent};
use srtpgate_tests::e2e::ports;
use srtpgate_tests::e2e::process::{run_in_workdir, wait_until, Workdir};
use srtpgate_tests::e2e::relay::{start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::voicemail::{expect_talk, VmPlay};
use srtpgate_tests::e2e::{Context, E2eError, Result};

const TOKEN: &str = "e2e-vm-api-admin-token-0123";
const USERS: [(&str, &str); 2] = [("alice", "alice-secret"), ("bob", "bob-secret")];
const TALK: Duration = Duration::from_secs(2);

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

/// bob lists his messages.
fn bobs_listing(api: SocketAddr) -> Result<Answer> {
    http(
        api,
        "GET",
        "/v1/mailboxes/bob/messages",
        Auth::User("bob"),
        "",
    )
}

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = VmPlay::locate()?;
    let (key, public) = vm.key_pair(wd.path(), "bob.key")?;
    let data = wd.path().join("voicemail");

    let ports = EdgePorts::allocate()?;
    let api = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "digest-algorithms = [\"MD5\"]\n\
         [voicemail]\ndata-dir = {:?}\napi-listen = \"{api}\"\napi-admin-token = \"{TOKEN}\"\n",
        data.display().to_string(),
    );
    for (u, p) in USERS {
        let _ = write!(
            cfg,
            "[[sip.users]]\nusername = \"{u}\"\npassword = \"{p}\"\n"
        );
    }
    let mut relay = start_srtpgate_with_config(wd, &ports, &cfg, Metrics::Off, "info")?;

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
    let ua = UserAgent::sdes("alice", CALLER_TONE_HZ, false);
    let mut phone = Baresip::start(wd, &ua)?;
    phone.register_account(
        &ports.uri("alice"),
        Some(USERS[0].1),
        Duration::from_secs(5),
    )?;
    phone.dial_established(&ports.uri("vm-bob"))?;
    phone.talk_and_hang_up(TALK)?;
    phone.stop();

    // bob lists his mailbox (the message appears once the deposit is closed).
    let mut list = Value::Null;
    wait_until("the message to be listed", Duration::from_secs(5), || {
        let a = bobs_listing(api)?;
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
    let w = vm.wav(&key, &downloaded, &wd.path().join("message.wav"))?;
    notes.push(format!("downloaded {} bytes", got.body.len()));
    notes.push(expect_talk(&w, CALLER_TONE_HZ, TALK.as_secs_f64())?);

    // bob deletes it.
    expect(
        &http(api, "DELETE", &path, Auth::User("bob"), "")?,
        200,
        "bob deleting his message",
    )?;
    let a = bobs_listing(api)?;
    if a.json()?["messages"] != serde_json::json!([]) {
        return Err(E2eError::new("the message is still listed after deletion"));
    }
    if data.join("bob").join(format!("{id}.pcapng")).exists() {
        return Err(E2eError::new(
            "the message file is still there after deletion",
        ));
    }
    relay.process.stop(Duration::from_secs(2));
    Ok(notes)
}

#[test]
fn mailbox_created_over_the_api_takes_a_deposit_that_its_owner_downloads() {
    run_in_workdir("vmapi", run);
}
