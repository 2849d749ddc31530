//! The X1 admin listener (ETSI TS 103 221-1 operations as JSON over HTTP/1.1, see
//! docs/li.md): off unless `[li] admin-listen` is configured; every request must carry
//! `Authorization: Bearer <admin-token>`, compared in constant time. One request per
//! connection, handled on the listener's own thread (X1 traffic is a few requests a day);
//! nothing here touches the media path.
//!
//! Logs never name a task, target or destination: only the operation and the status.

mod calls;
mod x1;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay::li::LiTasks;

use crate::http::{self, SecretDigest};

pub use calls::{identities, LiCalls, NodeTls};
pub use x1::Effect;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole request head must arrive within this.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);

/// Counters of the admin listener (no labels, nothing about tasks).
#[derive(Default, Debug)]
pub struct AdminCounters {
    pub requests: AtomicU64,
    /// Requests refused with 401 (no or a wrong bearer token).
    pub unauthorized: AtomicU64,
    /// Requests refused with 400 (not HTTP, not JSON, unknown operation or field).
    pub malformed: AtomicU64,
    /// X1 operations refused by the task model (unknown XID, duplicate, …).
    pub refused: AtomicU64,
}

/// Called after an operation changed tasks or destinations (with the tasks still locked
/// by nobody): the daemon re-runs matching over live calls.
pub type OnChange = Arc<dyn Fn(Effect) + Send + Sync>;

/// A running admin listener.
pub struct LiAdmin {
    listener: http::Listener,
    counters: Arc<AdminCounters>,
}

impl LiAdmin {
    /// Binds `listen` and serves X1 requests against `tasks`.
    pub fn start(
        listen: SocketAddr,
        token: &str,
        tasks: Arc<Mutex<LiTasks>>,
        on_change: OnChange,
    ) -> std::io::Result<LiAdmin> {
        let counters = Arc::new(AdminCounters::default());
        let token = SecretDigest::of(token.as_bytes());
        let c = counters.clone();
        // One request at a time, on the accepting thread.
        let listener = http::Listener::start(listen, "srtpgate-li-x1", move |stream| {
            let _ = serve(stream, &token, &tasks, &c, &on_change);
        })?;
        Ok(LiAdmin { listener, counters })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    pub fn counters(&self) -> &AdminCounters {
        &self.counters
    }

    pub fn stop(self) {
        self.listener.stop();
    }
}

fn respond(
    s: &mut TcpStream,
    status: u16,
    extra: &str,
    body: &serde_json::Value,
) -> std::io::Result<()> {
    http::respond_json(s, status, extra, body)
}

fn serve(
    mut s: TcpStream,
    token: &SecretDigest,
    tasks: &Mutex<LiTasks>,
    counters: &AdminCounters,
    on_change: &OnChange,
) -> std::io::Result<()> {
    http::prepare(&s, IO_TIMEOUT)?;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let mut req = match http::read_head(&mut s, MAX_HEAD, Instant::now() + HEAD_DEADLINE) {
        Ok(r) => r,
        Err(e) => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            return respond(&mut s, 400, "", &x1::malformed(e.message).body);
        }
    };
    // Authentication comes before anything else about the request is looked at.
    let presented = http::bearer(req.authorization.as_deref());
    if !presented.is_some_and(|p| token.matches(p)) {
        counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(target: "srtpgate::li_audit", "X1 request refused: missing or wrong bearer token");
        let body = serde_json::json!({"operation": "ErrorResponse",
            "errorInformation": {"errorCode": "Unauthorized", "errorDescription": "missing or wrong bearer token"}});
        return respond(&mut s, 401, "WWW-Authenticate: Bearer\r\n", &body);
    }
    if req.target != "/x1" {
        counters.malformed.fetch_add(1, Ordering::Relaxed);
        return respond(
            &mut s,
            404,
            "",
            &x1::malformed("the only resource is /x1").body,
        );
    }
    if req.method != "POST" {
        counters.malformed.fetch_add(1, Ordering::Relaxed);
        return respond(
            &mut s,
            405,
            "Allow: POST\r\n",
            &x1::malformed("use POST").body,
        );
    }
    let body = match http::read_body(&mut s, &mut req, MAX_BODY, true) {
        Ok(b) => b,
        Err(e) => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
            let message = if e.status == 413 {
                "body larger than 1 MiB"
            } else {
                e.message
            };
            return respond(&mut s, e.status, "", &x1::malformed(message).body);
        }
    };
    let reply = {
        let mut t = tasks.lock().unwrap_or_else(|p| p.into_inner());
        x1::handle(&mut t, &body)
    };
    match reply.status {
        200 => {}
        400 => {
            counters.malformed.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            counters.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
    tracing::info!(target: "srtpgate::li_audit", status = reply.status, "X1 request");
    if reply.effect != Effect::None {
        on_change(reply.effect);
    }
    respond(&mut s, reply.status, "", &reply.body)
}

/// LI as the daemon runs it: the admin listener and the interception of live calls.
pub struct LiNode {
    pub admin: LiAdmin,
    pub calls: Arc<LiCalls>,
}

/// Starts LI when `[li] admin-listen` is configured (the daemon's entry): the task store,
/// X3 delivery, and the admin listener, whose changes re-run matching over `registry`.
pub fn start_configured(
    config: &crate::config::LiConfig,
    registry: Arc<Mutex<crate::call::CallRegistry>>,
) -> anyhow::Result<Option<LiNode>> {
    let Some(listen) = config.admin_listen else {
        return Ok(None);
    };
    config.validate()?;
    let (Some(token), Some(store)) = (&config.admin_token, &config.store) else {
        anyhow::bail!("li: admin-listen needs admin-token and store");
    };
    let tasks =
        LiTasks::open(store).map_err(|e| anyhow::anyhow!("li: opening the task store: {e}"))?;
    let tasks = Arc::new(Mutex::new(tasks));
    let read = |p: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
        p.as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| anyhow::anyhow!("li: reading {}: {e}", p.display()))
            })
            .transpose()
    };
    let tls = NodeTls {
        cert: read(&config.x3_cert)?,
        key: read(&config.x3_key)?,
        ca: read(&config.x3_ca)?,
    };
    let calls = LiCalls::start(tasks.clone(), tls)?;
    let li = calls.clone();
    let on_change: OnChange = Arc::new(move |effect| {
        if effect == Effect::DestinationsChanged {
            li.sync_destinations();
        }
        let reg = registry.lock().unwrap_or_else(|p| p.into_inner());
        li.reconcile_all(&reg);
    });
    let admin = LiAdmin::start(listen, token, tasks, on_change)
        .map_err(|e| anyhow::anyhow!("binding the LI admin socket {listen}: {e}"))?;
    Ok(Some(LiNode { admin, calls }))
}
