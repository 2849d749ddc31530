//! The voicemail HTTP API (docs/voicemail.md, "The HTTP API"): mailboxes and their sealed
//! messages over HTTP/1.1 with JSON bodies (in TLS when `api-tls-cert` and `api-tls-key`
//! are set), off unless `[voicemail] api-listen` is set. Two kinds of callers:
//! - the admin, with `Authorization: Bearer <api-admin-token>`;
//! - a mailbox owner, with HTTP Basic and the credentials of their `[[sip.users]]` entry,
//!   who sees only the mailboxes whose owner's user part is their user name.
//!
//! Each connection carries one request and is served on a thread of its own, at most
//! `api-max-connections` at once (more are answered 503); every read and write has a
//! timeout and the request head a deadline. Message downloads are streamed from the file.
//! Tokens and passwords are compared in constant time and never logged; an address with
//! too many failed authentications is refused for a while (`limiter`).

mod limiter;
mod routes;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::http::{self, HttpError, SecretDigest};
use crate::voicemail::config::{token_ok, VoicemailConfig};
use crate::voicemail::MailboxStore;

use routes::{error, Reply};
pub use routes::{rfc3339, Caller, Route};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// Counters of the voicemail API (no labels naming mailboxes or users).
#[derive(Default, Debug)]
pub struct ApiCounters {
    pub requests: AtomicU64,
    /// Answered 2xx.
    pub ok: AtomicU64,
    /// 401: no, a malformed or a wrong token or password.
    pub unauthorized: AtomicU64,
    /// 403: an owner asked for what only the admin may do.
    pub forbidden: AtomicU64,
    /// 400: not HTTP, bad JSON, bad ids or keys, unknown query.
    pub malformed: AtomicU64,
    /// 413 and 431: body or head too large.
    pub too_large: AtomicU64,
    /// 404: unknown path, mailbox or message (or a mailbox of someone else).
    pub not_found: AtomicU64,
    /// 405: a method the resource does not have.
    pub bad_method: AtomicU64,
    /// 409: a conflict with what is stored.
    pub conflict: AtomicU64,
    /// 503: every connection slot busy.
    pub busy: AtomicU64,
    /// 429: too many failed authentications from the client's address.
    pub throttled: AtomicU64,
    /// 500: the store failed (disk).
    pub failed: AtomicU64,
    /// Message files sent, and their bytes.
    pub downloads: AtomicU64,
    pub download_bytes: AtomicU64,
}

impl ApiCounters {
    fn count(&self, status: u16) {
        let c = match status {
            200..=299 => &self.ok,
            401 => &self.unauthorized,
            403 => &self.forbidden,
            404 => &self.not_found,
            405 => &self.bad_method,
            409 => &self.conflict,
            429 => &self.throttled,
            413 | 431 => &self.too_large,
            503 => &self.busy,
            400..=499 => &self.malformed,
            _ => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// The password digests of the SIP users, by user name.
pub struct OwnerCredentials {
    users: Vec<(String, SecretDigest)>,
}

impl OwnerCredentials {
    /// From `[[sip.users]]` (whatever their realm: Basic carries none).
    pub fn from_sip(config: &crate::sip::config::SipConfig) -> OwnerCredentials {
        OwnerCredentials {
            users: config
                .users
                .iter()
                .map(|u| (u.username.clone(), SecretDigest::of(u.password.as_bytes())))
                .collect(),
        }
    }

    /// Whether `password` is the password of `user`. Every entry is compared, so the time
    /// taken says nothing about which users exist.
    pub fn check(&self, user: &str, password: &[u8]) -> bool {
        let mut found = false;
        for (name, digest) in &self.users {
            let same_name = name.as_bytes() == user.as_bytes();
            let matches = digest.matches(password);
            found |= same_name & matches;
        }
        std::hint::black_box(found)
    }
}

struct Shared {
    store: Arc<Mutex<MailboxStore>>,
    admin: Option<SecretDigest>,
    owners: OwnerCredentials,
    counters: Arc<ApiCounters>,
    active: AtomicUsize,
    max_connections: usize,
    failures: limiter::AuthFailures,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A running voicemail API listener.
pub struct VmApi {
    listener: http::Listener,
    counters: Arc<ApiCounters>,
}

impl VmApi {
    /// Binds `listen` and serves the API over `store` (in TLS with `tls`). Without
    /// `admin_token` every bearer request is refused; owners authenticate against `owners`.
    pub fn start(
        listen: SocketAddr,
        admin_token: Option<&str>,
        owners: OwnerCredentials,
        store: Arc<Mutex<MailboxStore>>,
        max_connections: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<VmApi> {
        let counters = Arc::new(ApiCounters::default());
        let shared = Arc::new(Shared {
            store,
            admin: admin_token.map(|t| SecretDigest::of(t.as_bytes())),
            owners,
            counters: counters.clone(),
            active: AtomicUsize::new(0),
            max_connections: max_connections.max(1),
            failures: limiter::AuthFailures::default(),
            tls,
        });
        let listener = http::Listener::start(listen, "srtpgate-vm-api", move |stream| {
            accepted(stream, &shared)
        })?;
        Ok(VmApi { listener, counters })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    pub fn counters(&self) -> &ApiCounters {
        &self.counters
    }

    /// A handle on the counters for the metrics page.
    pub fn counters_handle(&self) -> Arc<ApiCounters> {
        self.counters.clone()
    }

    /// Stops accepting; connections being served finish on their own (bounded by the
    /// I/O timeouts).
    pub fn stop(self) {
        self.listener.stop();
    }
}

/// A new connection: served on a thread of its own, or refused with 503 when every slot
/// is taken.
fn accepted(stream: TcpStream, shared: &Arc<Shared>) {
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        refuse_busy(stream, &shared.counters);
        return;
    }
    let sh = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("srtpgate-vm-conn".into())
        .spawn(move || {
            let _ = serve(stream, &sh);
            sh.active.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    }
}

fn refuse_busy(mut s: TcpStream, counters: &ApiCounters) {
    counters.count(503);
    if http::prepare(&s, Duration::from_millis(200)).is_ok() {
        let body = serde_json::json!({"error": "too many connections; retry later"});
        if http::respond_json(&mut s, 503, "Retry-After: 1\r\n", &body).is_ok() {
            http::close_gracefully(&mut s, MAX_HEAD, Duration::from_millis(50));
        }
    }
}

fn serve(s: TcpStream, sh: &Shared) -> std::io::Result<()> {
    http::prepare(&s, IO_TIMEOUT)?;
    let ip = s.peer_addr().map(|a| a.ip()).ok();
    let drain = |s: &mut TcpStream| http::close_gracefully(s, MAX_BODY, Duration::from_millis(500));
    match &sh.tls {
        None => {
            let mut s = s;
            if reply(&mut s, ip, sh)? >= 400 {
                drain(&mut s);
            }
        }
        Some(config) => {
            let mut conn =
                rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
            let mut s = s;
            // The handshake first: a client that does not speak TLS gets an alert at most,
            // never an HTTP answer.
            while conn.is_handshaking() {
                if conn.complete_io(&mut s).is_err() {
                    sh.counters.count(400);
                    let _ = conn.write_tls(&mut s);
                    return Ok(());
                }
            }
            let mut t = rustls::StreamOwned::new(conn, s);
            let status = reply(&mut t, ip, sh)?;
            t.conn.send_close_notify();
            t.flush()?;
            if status >= 400 {
                drain(&mut t.sock);
            }
        }
    }
    Ok(())
}

/// Answers one request on `s` (plain or TLS); gives the status sent.
fn reply<S: Read + Write>(s: &mut S, ip: Option<IpAddr>, sh: &Shared) -> std::io::Result<u16> {
    let reply = answer(s, ip, sh);
    let status = reply.status();
    sh.counters.count(status);
    match reply {
        Reply::Json {
            status,
            extra,
            body,
        } => http::respond_json(s, status, extra, &body)?,
        Reply::File { file, size, name } => {
            let extra = format!("Content-Disposition: attachment; filename=\"{name}\"\r\n");
            http::write_head(s, 200, "application/octet-stream", size, &extra)?;
            let sent = std::io::copy(&mut Read::take(&file, size), s)?;
            s.flush()?;
            sh.counters.downloads.fetch_add(1, Ordering::Relaxed);
            sh.counters
                .download_bytes
                .fetch_add(sent, Ordering::Relaxed);
        }
    }
    Ok(status)
}

fn refused(e: HttpError) -> Reply {
    error(e.status, e.message)
}

/// Reads, authenticates, routes and carries out one request.
fn answer(s: &mut impl Read, ip: Option<IpAddr>, sh: &Shared) -> Reply {
    let mut req = match http::read_head(s, MAX_HEAD, Instant::now() + HEAD_DEADLINE) {
        Ok(r) => r,
        Err(e) => return refused(e),
    };
    // Authentication comes before anything else about the request is looked at; an
    // address with too many recent failures is not even checked.
    if ip.is_some_and(|ip| sh.failures.blocked(ip, Instant::now())) {
        return Reply::Json {
            status: 429,
            extra: "Retry-After: 60\r\n",
            body: serde_json::json!({"error": "too many failed authentications from this address; retry later"}),
        };
    }
    let caller = match authenticate(req.authorization.as_deref(), sh) {
        Some(c) => c,
        None => {
            if let Some(ip) = ip {
                sh.failures.failed(ip, Instant::now());
            }
            tracing::info!(target: "srtpgate::vm_audit", method = %req.method, "voicemail API request refused: missing or wrong credentials");
            return unauthorized();
        }
    };
    let route = match routes::route(&req.method, req.path(), req.query()) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let body = match http::read_body(s, &mut req, MAX_BODY, route.has_body()) {
        Ok(b) => b,
        Err(e) => return refused(e),
    };
    let reply = routes::handle(&route, &caller, &body, &sh.store);
    let who = match &caller {
        Caller::Admin => "admin",
        Caller::Owner(_) => "owner",
    };
    tracing::info!(target: "srtpgate::vm_audit", operation = route.name(), caller = who, status = reply.status(), "voicemail API request");
    reply
}

fn unauthorized() -> Reply {
    Reply::Json {
        status: 401,
        extra: "WWW-Authenticate: Basic realm=\"srtpgate voicemail\", charset=\"UTF-8\"\r\nWWW-Authenticate: Bearer\r\n",
        body: serde_json::json!({"error": "missing or wrong credentials (Bearer admin token, or Basic user and password)"}),
    }
}

fn authenticate(auth: Option<&[u8]>, sh: &Shared) -> Option<Caller> {
    if let Some(token) = http::bearer(auth) {
        return sh
            .admin
            .as_ref()
            .is_some_and(|d| d.matches(token))
            .then_some(Caller::Admin);
    }
    if http::is_basic(auth) {
        let (user, password) = http::basic(auth)?;
        return sh
            .owners
            .check(&user, password.as_bytes())
            .then_some(Caller::Owner(user));
    }
    None
}

/// Starts the API when `[voicemail] api-listen` is configured, over the daemon's store
/// (shared with the SIP deposit back end, so a mailbox added here takes deposits at once).
pub fn start_configured(
    config: &VoicemailConfig,
    sip: &crate::sip::config::SipConfig,
    store: Option<&Arc<Mutex<MailboxStore>>>,
) -> anyhow::Result<Option<VmApi>> {
    let Some(listen) = config.api_listen else {
        return Ok(None);
    };
    let Some(store) = store else {
        anyhow::bail!("voicemail: api-listen needs data-dir");
    };
    let token = match (&config.api_admin_token, &config.api_admin_token_file) {
        (Some(t), _) => Some(zeroize::Zeroizing::new(t.0.clone())),
        (None, Some(path)) => {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!(
                    "voicemail: reading api-admin-token-file {}: {e}",
                    path.display()
                )
            })?);
            let first =
                zeroize::Zeroizing::new(text.lines().next().unwrap_or("").trim().to_string());
            if !token_ok(&first) {
                anyhow::bail!(
                    "voicemail: api-admin-token-file {}: the first line must be a token of at least 16 characters, without spaces",
                    path.display()
                );
            }
            Some(first)
        }
        (None, None) => None,
    };
    let owners = OwnerCredentials::from_sip(sip);
    if token.is_none() {
        tracing::warn!("voicemail API: no api-admin-token; only mailbox owners can use it");
    }
    if owners.users.is_empty() {
        tracing::info!("voicemail API: no [[sip.users]]; only the admin can use it");
    }
    let tls = match (&config.api_tls_cert, &config.api_tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::sip_edge::tls::server_config(cert, key)
                .map_err(|e| anyhow::anyhow!("voicemail API TLS: {e:#}"))?,
        ),
        _ => None,
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "voicemail API listens beyond loopback in plain HTTP: set api-tls-cert and api-tls-key or put a TLS proxy in front of it, Basic passwords and the token travel in clear");
    }
    let https = tls.is_some();
    let api = VmApi::start(
        listen,
        token.as_deref().map(String::as_str),
        owners,
        store.clone(),
        config.api_max_connections,
        tls,
    )
    .map_err(|e| anyhow::anyhow!("binding the voicemail API socket {listen}: {e}"))?;
    tracing::info!(addr = %api.addr(), tls = https, "voicemail API listening");
    Ok(Some(api))
}
