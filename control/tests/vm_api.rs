//! The voicemail HTTP API over real HTTP on loopback, with the daemon running: the admin
//! provisions mailboxes (bad ids, owners and keys refused), owners authenticate with their
//! SIP credentials and see only their own mailboxes, list and download messages byte for
//! byte, rotate their key and delete messages; bad requests are refused, counted, and lose
//! nothing that was stored.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use control::config::Config;
use control::daemon::Daemon;
use control::sip::config::SipUser;
use control::voicemail::config::{mailbox_for, Secret};
use control::voicemail::MailboxStore;
use relay::record::PrivateKey;
use serde_json::{json, Value};

mod kit;
use kit::{daemon_config, record};

const TOKEN: &str = "vm-api-test-token-0123456789";
/// 32 zero bytes: a low-order X25519 point.
const LOW_ORDER: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-vmapi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn key() -> String {
    PrivateKey::generate().unwrap().public_key().to_base64()
}

fn config(port_min: u16, dir: &Path) -> Config {
    let mut c = daemon_config(port_min, 20);
    c.sip.enabled = false;
    for (u, p) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
        c.sip.users.push(SipUser {
            username: u.into(),
            password: p.into(),
            realm: None,
        });
    }
    c.voicemail.data_dir = Some(dir.to_path_buf());
    c.voicemail.api_listen = Some("127.0.0.1:0".parse().unwrap());
    c.voicemail.api_admin_token = Some(Secret(TOKEN.into()));
    c
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before reading all of an oversized request.
    let _ = s.write_all(request);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8(out[..end].to_vec()).unwrap();
    Response {
        status: head[9..12].parse().unwrap(),
        head,
        body: out[end + 4..].to_vec(),
    }
}

enum Auth<'a> {
    None,
    Admin,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

fn call(addr: SocketAddr, method: &str, path: &str, auth: Auth, body: Option<&Value>) -> Response {
    let auth = match auth {
        Auth::None => String::new(),
        Auth::Admin => format!("Authorization: Bearer {TOKEN}\r\n"),
        Auth::Bearer(t) => format!("Authorization: Bearer {t}\r\n"),
        Auth::Basic(u, p) => format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        ),
    };
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let length = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    raw(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}{length}\r\n{body}").as_bytes(),
    )
}

fn mailbox(owner: &str, key: &str) -> Value {
    json!({"owner": owner, "public_key": key})
}

/// A daemon with the API on (see `config`) in `dir`, and mailbox `id` of `owner` created
/// through the API (201) holding one message of `packets` packets, whose bytes come back.
fn api_with_message(
    dir: &Path,
    port_min: u16,
    id: &str,
    owner: &str,
    packets: u16,
) -> (Daemon, SocketAddr, Vec<u8>) {
    let d = Daemon::start(&config(port_min, dir)).unwrap();
    let a = d.vm_api().unwrap().addr();
    let r = put_mailbox(a, id, owner, &key());
    assert_eq!(r.status, 201);
    let bytes = record(&d.voicemail().unwrap().lock().unwrap(), id, packets);
    (d, a, bytes)
}

/// `PUT /v1/mailboxes/{id}` as the admin: mailbox `id` of `owner` with public key `key`.
fn put_mailbox(a: SocketAddr, id: &str, owner: &str, key: &str) -> Response {
    call(
        a,
        "PUT",
        &format!("/v1/mailboxes/{id}"),
        Auth::Admin,
        Some(&mailbox(owner, key)),
    )
}

#[test]
fn admin_provisions_and_owners_see_only_their_own() {
    let dir = tempdir("flow");
    let mut c = config(46100, &dir);
    c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    let d = Daemon::start(&c).unwrap();
    let a = d.vm_api().unwrap().addr();
    let store = d.voicemail().unwrap().clone();

    // The admin creates, then replaces, a mailbox.
    let (k1, k2) = (key(), key());
    let r = put_mailbox(a, "alice-box", "sip:alice@example.org", &k1);
    assert_eq!(r.status, 201, "{:?}", r.json());
    assert_eq!(r.json()["public_key"], k1);
    let r = put_mailbox(a, "alice-box", "sip:alice@example.org", &k2);
    assert_eq!(r.status, 200);
    let r = put_mailbox(a, "bob-box", "sip:bob@example.org", &key());
    assert_eq!(r.status, 201);
    // Deposits use the same store: the new mailbox takes messages at once.
    assert_eq!(
        mailbox_for(&store.lock().unwrap(), "alice").as_deref(),
        Some("alice-box")
    );

    // Bad keys, ids and owners are refused with a clear error, and change nothing.
    let refusals = [
        (
            "/v1/mailboxes/alice-box",
            mailbox("sip:alice@x", "not a key"),
            "public key",
        ),
        (
            "/v1/mailboxes/alice-box",
            mailbox("sip:alice@x", LOW_ORDER),
            "low-order",
        ),
        (
            "/v1/mailboxes/alice-box",
            mailbox("line\nbreak", &key()),
            "owner",
        ),
        (
            "/v1/mailboxes/.hidden",
            mailbox("sip:x@x", &key()),
            "mailbox id",
        ),
        (
            "/v1/mailboxes/alice-box",
            json!({"owner": "sip:a@x"}),
            "public_key",
        ),
        (
            "/v1/mailboxes/alice-box",
            json!({"owner": "sip:a@x", "public_key": key(), "admin": true}),
            "unknown field",
        ),
    ];
    for (path, body, what) in refusals {
        let r = call(a, "PUT", path, Auth::Admin, Some(&body));
        let e = r.json()["error"].as_str().unwrap_or("").to_string();
        assert_eq!(r.status, 400, "{body}: {e}");
        assert!(e.contains(what), "{body}: {e}");
    }
    let r = call(a, "GET", "/v1/mailboxes/alice-box", Auth::Admin, None);
    assert_eq!(r.json()["public_key"], k2);
    let r = call(a, "GET", "/v1/mailboxes", Auth::Admin, None);
    assert_eq!(r.json()["mailboxes"].as_array().unwrap().len(), 2);

    // A message, recorded as a deposit would be.
    let bytes = record(&store.lock().unwrap(), "alice-box", 25);
    let alice = || Auth::Basic("alice", "alice-pw");
    let bob = || Auth::Basic("bob", "bob-pw");

    // The owner sees their mailbox only, and its messages from the file structure.
    let r = call(a, "GET", "/v1/mailboxes", alice(), None);
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["alice-box"]);
    let r = call(a, "GET", "/v1/mailboxes/alice-box/messages", alice(), None);
    assert_eq!(r.status, 200);
    let list = r.json()["messages"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(m["packets"], 25);
    assert_eq!(m["size"], bytes.len() as u64);
    assert_eq!(m["complete"], true);
    assert!(m["start"].as_str().unwrap().ends_with('Z'), "{m}");
    assert!(m["end_unix_nanos"].as_u64().unwrap() >= m["start_unix_nanos"].as_u64().unwrap());
    let msg = m["id"].as_str().unwrap().to_string();

    // Download: exactly the file on disk.
    let path = format!("/v1/mailboxes/alice-box/messages/{msg}");
    let r = call(a, "GET", &path, alice(), None);
    assert_eq!(r.status, 200);
    let on_disk = std::fs::read(dir.join("alice-box").join(format!("{msg}.pcapng"))).unwrap();
    assert_eq!(r.body, on_disk);
    assert_eq!(r.body, bytes);
    assert_eq!(r.header("content-length"), Some(bytes.len().to_string()));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    let r = call(a, "GET", &path, Auth::Admin, None);
    assert_eq!((r.status, r.body == bytes), (200, true));

    // Another owner: the mailbox is not theirs, so it does not exist for them.
    for (m, p) in [
        ("GET", "/v1/mailboxes/alice-box"),
        ("GET", "/v1/mailboxes/alice-box/messages"),
        ("GET", path.as_str()),
        ("DELETE", path.as_str()),
    ] {
        assert_eq!(call(a, m, p, bob(), None).status, 404, "{m} {p}");
    }
    let r = call(
        a,
        "PUT",
        "/v1/mailboxes/alice-box/public-key",
        bob(),
        Some(&json!({"public_key": key()})),
    );
    assert_eq!(r.status, 404);
    // What only the admin may do.
    let r = call(
        a,
        "PUT",
        "/v1/mailboxes/bob-box",
        bob(),
        Some(&mailbox("sip:bob@example.org", &key())),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        call(a, "DELETE", "/v1/mailboxes/bob-box", bob(), None).status,
        403
    );

    // Wrong or missing credentials.
    for auth in [
        Auth::Basic("alice", "bob-pw"),
        Auth::Basic("alice", ""),
        Auth::Basic("mallory", "alice-pw"),
        Auth::Bearer("vm-api-test-token-012345678"),
        Auth::Bearer("alice-pw"),
        Auth::None,
    ] {
        let r = call(a, "GET", "/v1/mailboxes", auth, None);
        assert_eq!(r.status, 401);
        assert!(r.header("www-authenticate").is_some());
    }
    let r = raw(
        a,
        b"GET /v1/mailboxes HTTP/1.1\r\nAuthorization: Basic !!notbase64\r\n\r\n",
    );
    assert_eq!(r.status, 401);

    // Key rotation by the owner; persisted; a bad key refused.
    let k3 = key();
    let r = call(
        a,
        "PUT",
        "/v1/mailboxes/alice-box/public-key",
        alice(),
        Some(&json!({"public_key": k3})),
    );
    assert_eq!((r.status, r.json()["public_key"].clone()), (200, json!(k3)));
    let r = call(
        a,
        "PUT",
        "/v1/mailboxes/alice-box/public-key",
        alice(),
        Some(&json!({"public_key": LOW_ORDER})),
    );
    assert_eq!(r.status, 400);
    let disk = MailboxStore::open(&dir).unwrap();
    assert_eq!(disk.get("alice-box").unwrap().public_key.to_base64(), k3);
    assert_eq!(
        disk.get("alice-box").unwrap().owner,
        "sip:alice@example.org"
    );
    drop(disk);

    // The owner deletes the message.
    assert_eq!(call(a, "DELETE", &path, alice(), None).status, 200);
    assert!(!dir.join("alice-box").join(format!("{msg}.pcapng")).exists());
    assert_eq!(call(a, "DELETE", &path, alice(), None).status, 404);
    assert_eq!(call(a, "GET", &path, alice(), None).status, 404);

    // The admin deletes a mailbox with its messages.
    record(&store.lock().unwrap(), "bob-box", 3);
    let r = call(
        a,
        "DELETE",
        "/v1/mailboxes/bob-box?delete-messages=true",
        Auth::Admin,
        None,
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert!(!dir.join("bob-box").exists());
    assert_eq!(
        call(a, "GET", "/v1/mailboxes/bob-box", Auth::Admin, None).status,
        404
    );
    assert!(MailboxStore::open(&dir).unwrap().get("bob-box").is_none());

    // Counted, and on the metrics page.
    let counters = d.vm_api().unwrap().counters();
    assert!(counters.unauthorized.load(Ordering::Relaxed) >= 7);
    assert!(counters.forbidden.load(Ordering::Relaxed) >= 2);
    assert_eq!(counters.downloads.load(Ordering::Relaxed), 2);
    let mut s = TcpStream::connect(d.metrics_addr().unwrap()).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    let unauthorized = counters.unauthorized.load(Ordering::Relaxed);
    assert!(
        page.contains(&format!(
            "srtpgate_vm_api_responses_total{{outcome=\"unauthorized\"}} {unauthorized}"
        )),
        "{page}"
    );
    assert!(page.contains(&format!(
        "srtpgate_vm_api_download_bytes_total {}",
        2 * bytes.len()
    )));
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_requests_are_refused_counted_and_lose_nothing() {
    let dir = tempdir("bad");
    let (d, a, bytes) = api_with_message(&dir, 46120, "box", "sip:alice@example.org", 10);
    let json_before = std::fs::read(dir.join("mailboxes.json")).unwrap();
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let alice = format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode("alice:alice-pw")
    );

    let cases: Vec<(Vec<u8>, u16)> = vec![
        // Oversized head, oversized body, truncated body.
        (
            format!(
                "GET /v1/mailboxes HTTP/1.1\r\n{auth}X-Filler: {}\r\n\r\n",
                "x".repeat(20_000)
            )
            .into_bytes(),
            431,
        ),
        (
            format!("PUT /v1/mailboxes/box HTTP/1.1\r\n{auth}Content-Length: 10000000\r\n\r\n{{")
                .into_bytes(),
            413,
        ),
        (
            format!("PUT /v1/mailboxes/box HTTP/1.1\r\n{auth}Content-Length: 50\r\n\r\n{{}}")
                .into_bytes(),
            400,
        ),
        // Not HTTP, malformed JSON, no body, chunked.
        (b"hello\r\n\r\n".to_vec(), 400),
        (b"GET /v1/mailboxes HTTP/3\r\n\r\n".to_vec(), 400),
        (
            format!("PUT /v1/mailboxes/box HTTP/1.1\r\n{auth}Content-Length: 5\r\n\r\n{{nope")
                .into_bytes(),
            400,
        ),
        (
            format!("PUT /v1/mailboxes/box HTTP/1.1\r\n{auth}Content-Length: 2\r\n\r\n[]")
                .into_bytes(),
            400,
        ),
        (
            format!("PUT /v1/mailboxes/box HTTP/1.1\r\n{auth}\r\n").into_bytes(),
            400,
        ),
        (
            format!("PUT /v1/mailboxes/box HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                .into_bytes(),
            400,
        ),
        // Unknown paths and methods.
        (format!("GET /v2/mailboxes HTTP/1.1\r\n{auth}\r\n").into_bytes(), 404),
        (format!("GET /v1/mailboxes/box/keys HTTP/1.1\r\n{auth}\r\n").into_bytes(), 404),
        (format!("POST /v1/mailboxes HTTP/1.1\r\n{auth}\r\n").into_bytes(), 405),
        (format!("PATCH /v1/mailboxes/box HTTP/1.1\r\n{auth}\r\n").into_bytes(), 405),
        // Path traversal, as an admin and as an owner.
        (format!("GET /v1/mailboxes/../messages HTTP/1.1\r\n{auth}\r\n").into_bytes(), 400),
        (format!("DELETE /v1/mailboxes/.. HTTP/1.1\r\n{auth}\r\n").into_bytes(), 400),
        (
            format!("DELETE /v1/mailboxes/%2e%2e?delete-messages=true HTTP/1.1\r\n{auth}\r\n")
                .into_bytes(),
            400,
        ),
        (
            format!("GET /v1/mailboxes/box/messages/..%2F..%2Fmailboxes.json HTTP/1.1\r\n{alice}\r\n")
                .into_bytes(),
            400,
        ),
        (
            format!("DELETE /v1/mailboxes/box/messages/../../mailboxes.json HTTP/1.1\r\n{alice}\r\n")
                .into_bytes(),
            404,
        ),
        // Unknown query.
        (
            format!("DELETE /v1/mailboxes/box?delete-messages=maybe HTTP/1.1\r\n{auth}\r\n")
                .into_bytes(),
            400,
        ),
    ];
    for (req, status) in &cases {
        let r = raw(a, req);
        let shown = String::from_utf8_lossy(&req[..req.len().min(80)]).to_string();
        assert_eq!(r.status, *status, "{shown}: {:?}", r.json());
        assert!(r.json()["error"].is_string(), "{shown}");
        if *status == 405 {
            assert!(r.header("allow").is_some());
        }
    }

    // Nothing stored was touched.
    assert_eq!(
        std::fs::read(dir.join("mailboxes.json")).unwrap(),
        json_before
    );
    let r = call(a, "GET", "/v1/mailboxes/box/messages", Auth::Admin, None);
    let msg = r.json()["messages"][0]["id"].as_str().unwrap().to_string();
    let r = call(
        a,
        "GET",
        &format!("/v1/mailboxes/box/messages/{msg}"),
        Auth::Basic("alice", "alice-pw"),
        None,
    );
    assert_eq!(r.body, bytes);

    let c = d.vm_api().unwrap().counters();
    let get = |x: &std::sync::atomic::AtomicU64| x.load(Ordering::Relaxed);
    assert_eq!(get(&c.too_large), 2);
    assert_eq!(get(&c.bad_method), 2);
    assert_eq!(get(&c.not_found), 3);
    assert_eq!(get(&c.malformed), 12);
    assert_eq!(get(&c.requests), cases.len() as u64 + 3);
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connections_beyond_the_cap_are_answered_busy() {
    let dir = tempdir("busy");
    let mut c = config(46140, &dir);
    c.voicemail.api_max_connections = 1;
    let d = Daemon::start(&c).unwrap();
    let a = d.vm_api().unwrap().addr();
    // A client that connects and says nothing holds the only slot.
    let mut idle = TcpStream::connect(a).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let r = call(a, "GET", "/v1/mailboxes", Auth::Admin, None);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    // Once it finishes, the slot is free again.
    idle.write_all(b"GET /v1/mailboxes HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut sink = Vec::new();
    idle.read_to_end(&mut sink).unwrap();
    assert!(sink.starts_with(b"HTTP/1.1 401"));
    drop(idle);
    let mut status = 0;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50));
        status = call(a, "GET", "/v1/mailboxes", Auth::Admin, None).status;
        if status != 503 {
            break;
        }
    }
    assert_eq!(status, 200);
    assert!(d.vm_api().unwrap().counters().busy.load(Ordering::Relaxed) >= 1);
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn token_file_and_configuration_checks() {
    let dir = tempdir("config");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "file-token-abcdefghijklmnop\n").unwrap();
    let mut c = config(46160, &dir.join("vm"));
    c.voicemail.api_admin_token = None;
    c.voicemail.api_admin_token_file = Some(token_file.clone());
    c.validate().unwrap();
    let d = Daemon::start(&c).unwrap();
    let a = d.vm_api().unwrap().addr();
    let r = call(
        a,
        "GET",
        "/v1/mailboxes",
        Auth::Bearer("file-token-abcdefghijklmnop"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        call(a, "GET", "/v1/mailboxes", Auth::Admin, None).status,
        401
    );
    d.drain_and_stop(Duration::ZERO);

    // A token file with a short token stops the start-up.
    std::fs::write(&token_file, "short\n").unwrap();
    let e = Daemon::start(&c).err().expect("a short token is refused");
    assert!(format!("{e:#}").contains("api-admin-token-file"), "{e:#}");

    // Off unless configured; api-listen without data-dir is refused.
    let mut off = config(46160, &dir.join("vm"));
    off.voicemail.api_listen = None;
    off.voicemail.api_admin_token = None;
    let d = Daemon::start(&off).unwrap();
    assert!(d.vm_api().is_none());
    d.drain_and_stop(Duration::ZERO);
    let mut no_dir = config(46160, &dir.join("vm"));
    no_dir.voicemail.data_dir = None;
    assert!(no_dir.validate().is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn large_messages_stream_to_several_clients_at_once() {
    let dir = tempdir("large");
    // About 1.2 MB: larger than one socket buffer's worth of writes.
    let (d, a, bytes) = api_with_message(&dir, 46180, "big", "sip:bob@example.org", 6000);
    assert!(bytes.len() > 1_000_000);
    let r = call(a, "GET", "/v1/mailboxes/big/messages", Auth::Admin, None);
    let msg = r.json()["messages"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/v1/mailboxes/big/messages/{msg}");

    // A client that connects and says nothing does not hold up the others: they are
    // served while it is still waiting for its answer.
    let mut idle = TcpStream::connect(a).unwrap();
    let downloads: Vec<_> = (0..3)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || call(a, "GET", &p, Auth::Basic("bob", "bob-pw"), None))
        })
        .collect();
    for t in downloads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(bytes.len().to_string()));
        assert!(r.body == bytes, "download differs from the stored file");
    }
    idle.set_nonblocking(true).unwrap();
    let mut one = [0u8; 1];
    assert_eq!(
        idle.read(&mut one).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "the idle client was answered before the downloads were served"
    );
    let c = d.vm_api().unwrap().counters();
    assert_eq!(c.downloads.load(Ordering::Relaxed), 3);
    assert_eq!(
        c.download_bytes.load(Ordering::Relaxed),
        3 * bytes.len() as u64
    );
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repeated_failed_logins_are_throttled() {
    let dir = tempdir("throttle");
    let d = Daemon::start(&config(46200, &dir)).unwrap();
    let a = d.vm_api().unwrap().addr();
    assert_eq!(
        call(a, "GET", "/v1/mailboxes", Auth::Admin, None).status,
        200
    );
    // 20 wrong passwords in a row are each told 401 ...
    for i in 0..20 {
        let pw = format!("guess-{i}");
        let r = call(a, "GET", "/v1/mailboxes", Auth::Basic("alice", &pw), None);
        assert_eq!(r.status, 401, "attempt {i}");
    }
    // ... then the address is refused before its credentials are looked at, right or not.
    let r = call(
        a,
        "GET",
        "/v1/mailboxes",
        Auth::Basic("alice", "alice-pw"),
        None,
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("60"));
    assert_eq!(
        call(a, "GET", "/v1/mailboxes", Auth::Admin, None).status,
        429
    );
    let c = d.vm_api().unwrap().counters();
    assert_eq!(c.unauthorized.load(Ordering::Relaxed), 20);
    assert_eq!(c.throttled.load(Ordering::Relaxed), 2);
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One request over TLS, trusting `root`; returns the status and body.
fn call_tls(
    addr: SocketAddr,
    root: &rustls::pki_types::CertificateDer<'static>,
    request: &str,
) -> (u16, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut t = rustls::StreamOwned::new(conn, tcp);
    t.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    t.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    (status, out[end + 4..].to_vec())
}

#[test]
fn the_api_speaks_tls_when_given_a_certificate() {
    let dir = tempdir("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    let mut c = config(46220, &dir.join("vm"));
    c.voicemail.api_tls_cert = Some(dir.join("cert.pem"));
    c.voicemail.api_tls_key = Some(dir.join("key.pem"));
    let d = Daemon::start(&c).unwrap();
    let a = d.vm_api().unwrap().addr();
    let root = ck.cert.der().clone();

    let body = mailbox("sip:bob@example.org", &key()).to_string();
    let (st, _) = call_tls(
        a,
        &root,
        &format!(
            "PUT /v1/mailboxes/bob HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(st, 201);
    let bytes = record(&d.voicemail().unwrap().lock().unwrap(), "bob", 40);
    let basic = base64::engine::general_purpose::STANDARD.encode("bob:bob-pw");
    let (st, list) = call_tls(
        a,
        &root,
        &format!("GET /v1/mailboxes/bob/messages HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n"),
    );
    assert_eq!(st, 200);
    let list: Value = serde_json::from_slice(&list).unwrap();
    let msg = list["messages"][0]["id"].as_str().unwrap();
    let (st, got) = call_tls(
        a,
        &root,
        &format!(
            "GET /v1/mailboxes/bob/messages/{msg} HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n"
        ),
    );
    assert_eq!(st, 200);
    assert!(
        got == bytes,
        "the download over TLS differs from the stored file"
    );
    let (st, _) = call_tls(
        a,
        &root,
        "GET /v1/mailboxes HTTP/1.1\r\nAuthorization: Basic Ym9iOndyb25n\r\n\r\n",
    );
    assert_eq!(st, 401);

    // Plain HTTP to the TLS listener gets no HTTP answer, and is counted as malformed.
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET /v1/mailboxes HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        !out.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    let counters = d.vm_api().unwrap().counters();
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
    assert_eq!(counters.downloads.load(Ordering::Relaxed), 1);

    // A certificate without its key stops the start-up.
    let mut bad = c.clone();
    bad.voicemail.api_tls_key = Some(dir.join("missing.pem"));
    let e = Daemon::start(&bad).err().expect("a missing key is refused");
    assert!(format!("{e:#}").contains("voicemail API TLS"), "{e:#}");
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_mailboxes_survive_a_restart_and_configured_ones_are_rewritten() {
    use control::voicemail::config::MailboxConfig;
    let dir = tempdir("restart");
    let configured = key();
    let mut c = config(46240, &dir);
    c.voicemail.mailboxes.push(MailboxConfig {
        id: "cfg".into(),
        owner: "sip:alice@example.org".into(),
        public_key: configured.clone(),
        ..Default::default()
    });
    let d = Daemon::start(&c).unwrap();
    let a = d.vm_api().unwrap().addr();
    let (api_key, rotated) = (key(), key());
    let r = put_mailbox(a, "made-by-api", "sip:bob@example.org", &api_key);
    assert_eq!(r.status, 201);
    let r = call(
        a,
        "PUT",
        "/v1/mailboxes/cfg/public-key",
        Auth::Basic("alice", "alice-pw"),
        Some(&json!({"public_key": rotated})),
    );
    assert_eq!(r.status, 200);
    d.drain_and_stop(Duration::ZERO);

    let d = Daemon::start(&c).unwrap();
    let a = d.vm_api().unwrap().addr();
    let r = call(a, "GET", "/v1/mailboxes/made-by-api", Auth::Admin, None);
    assert_eq!(
        (r.status, r.json()["public_key"].clone()),
        (200, json!(api_key))
    );
    // The configuration is written into the store at every start-up.
    let r = call(a, "GET", "/v1/mailboxes/cfg", Auth::Admin, None);
    assert_eq!(r.json()["public_key"], json!(configured));
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}
