//! The srtpgate daemon: the media engine, the ng control socket, engine events and timers,
//! metrics, and draining on SIGTERM.

mod handler;
mod query;
mod record_policy;
mod recording;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use handler::CallControl;
pub use record_policy::RecordUsers;

use crate::call::CallRegistry;
use crate::config::Config;
use crate::metrics::{self, ControlMetrics};
use crate::ng::{NgServer, NgServerConfig};
use relay::engine::{Engine, EngineEvent};

/// A running daemon.
pub struct Daemon {
    engine: Arc<Engine>,
    registry: Arc<Mutex<CallRegistry>>,
    metrics: Arc<ControlMetrics>,
    draining: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    ng_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    sip: Option<crate::sip_edge::SipEdge>,
    li: Option<crate::li_admin::LiNode>,
    voicemail: Option<Arc<Mutex<crate::voicemail::MailboxStore>>>,
    vm_api: Option<crate::vm_api::VmApi>,
}

impl Daemon {
    /// Starts the engine and every listener of `config`.
    pub fn start(config: &Config) -> anyhow::Result<Daemon> {
        let engine = Arc::new(Engine::start(config.engine()?)?);
        let metrics = Arc::new(ControlMetrics::default());
        let registry = Arc::new(Mutex::new(CallRegistry::new(
            engine.clone(),
            metrics.clone(),
            config.ng.max_calls,
        )));
        let draining = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let socket = UdpSocket::bind(config.ng.listen)
            .map_err(|e| anyhow::anyhow!("binding the ng socket {}: {e}", config.ng.listen))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let ng_addr = socket.local_addr()?;
        let li = crate::li_admin::start_configured(&config.li, registry.clone())?;
        let li_calls = li.as_ref().map(|l| l.calls.clone());
        let recordings = recording::CallRecordings::configured(&config.voicemail)
            .map(|r| Arc::new(Mutex::new(r)));
        let mut control = CallControl {
            li: li_calls.clone(),
            registry: registry.clone(),
            metrics: metrics.clone(),
            draining: draining.clone(),
            started: SystemTime::now(),
            delete_delay: config.ng.delete_delay,
            strict_source: config.media.strict_source,
            recordings: recordings.clone(),
        };
        let mut threads = Vec::new();
        let (stop_ng, m) = (stop.clone(), metrics.clone());
        threads.push(std::thread::Builder::new().name("srtpgate-ng".into()).spawn(move || {
            let mut server = NgServer::new(NgServerConfig::default());
            let mut buf = vec![0u8; 65536];
            let mut seen = (0u64, 0u64);
            while !stop_ng.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                if let Some(reply) = server.handle_datagram(from, &buf[..n], Instant::now(), &mut control) {
                    if let Err(e) = socket.send_to(&reply, from) {
                        tracing::warn!(peer = %from, error = %e, "sending an ng reply failed");
                    }
                }
                let c = server.counters();
                // Errors the call layer answered are counted there; the rest are malformed input.
                let bad: u64 = c.errors.iter().filter(|(k, _)| **k != "handler").map(|(_, v)| v).sum();
                let retx = c.retransmissions;
                m.ng_retransmissions.fetch_add(retx - seen.0, Ordering::Relaxed);
                m.ng_malformed.fetch_add(bad - seen.1, Ordering::Relaxed);
                seen = (retx, bad);
            }
        })?);
        let identity = Arc::new(config.dtls.identity()?);
        registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_dtls_identity(
                identity,
                Duration::from_secs(config.dtls.handshake_timeout.max(1)),
            );
        // The SIP edge's calls are matched as soon as their media is installed, like ng's.
        let li_hook: Option<crate::sip::media::AnswerHook> = li_calls.clone().map(|li| {
            Arc::new(move |reg: &CallRegistry, call_id: &str| li.call_changed(reg, call_id))
                as crate::sip::media::AnswerHook
        });
        // Calls of the users the recording policy lists are recorded from their answer on.
        // Voicemail deposits are not: a message is sealed to its mailbox owner only.
        let after_answer = match recordings.clone() {
            Some(rec) => {
                let li = li_hook.clone();
                Some(Arc::new(move |reg: &CallRegistry, call_id: &str| {
                    if let Some(li) = &li {
                        li(reg, call_id);
                    }
                    recording::lock(&rec).after_answer(reg, call_id);
                }) as crate::sip::media::AnswerHook)
            }
            None => li_hook.clone(),
        };
        let (stop_ev, reg, eng, li_ev, rec_ev) = (
            stop.clone(),
            registry.clone(),
            engine.clone(),
            li_calls.clone(),
            recordings.clone(),
        );
        threads.push(
            std::thread::Builder::new()
                .name("srtpgate-events".into())
                .spawn(move || {
                    events_loop(&stop_ev, &reg, &eng, li_ev.as_deref(), rec_ev.as_ref())
                })?,
        );
        // Mailboxes from the configuration, and crashed messages recovered, before any
        // call can deposit.
        let voicemail = crate::voicemail::config::open_configured(&config.voicemail)?
            .map(|s| Arc::new(Mutex::new(s)));
        let vm_api =
            crate::vm_api::start_configured(&config.voicemail, &config.sip, voicemail.as_ref())?;
        // Greeting files are read (and refused when unusable) before any call can deposit.
        let greetings = match &voicemail {
            Some(_) => crate::sip::greeting::Greetings::load(&config.voicemail)?,
            None => Default::default(),
        };
        let sip = crate::sip_edge::start_with_daemon(
            &config.sip,
            registry.clone(),
            draining.clone(),
            config.media.strict_source,
            after_answer,
            voicemail.clone().map(|store| {
                Box::new(
                    crate::sip::deposit::RegistryDeposit::new(
                        registry.clone(),
                        store,
                        config.voicemail.clone(),
                    )
                    .with_after_answer(li_hook)
                    .with_greetings(greetings),
                ) as Box<dyn crate::sip::deposit::Deposit>
            }),
        )?;
        let metrics_addr = match config.metrics.listen {
            Some(addr) => {
                // A weak reference: the metrics thread must not keep the engine alive.
                let (eng, m) = (Arc::downgrade(&engine), metrics.clone());
                let sip_counters = sip.as_ref().map(|s| s.counters_handle());
                let li_metrics = li_calls.clone();
                let rec_metrics = recordings.as_ref().map(|r| recording::lock(r).counts());
                let vm_api_counters = vm_api.as_ref().map(|a| a.counters_handle());
                let body = Arc::new(move || {
                    let mut page =
                        metrics::render(&m, &eng.upgrade().map(|e| e.stats()).unwrap_or_default());
                    if let Some(c) = sip_counters
                        .as_ref()
                        .and_then(|c| c.lock().ok().map(|c| c.clone()))
                    {
                        metrics::render_sip(&mut page, &c);
                    }
                    if let Some(li) = &li_metrics {
                        metrics::render_li(
                            &mut page,
                            li.intercepted_calls(),
                            &li.delivery().totals(),
                        );
                    }
                    if let Some(c) = &rec_metrics {
                        metrics::render_recordings(&mut page, c);
                    }
                    if let Some(c) = &vm_api_counters {
                        metrics::render_vm_api(&mut page, c);
                    }
                    page
                });
                Some(
                    metrics::serve(addr, body)
                        .map_err(|e| anyhow::anyhow!("binding the metrics socket {addr}: {e}"))?,
                )
            }
            None => None,
        };
        tracing::info!(ng = %ng_addr, metrics = ?metrics_addr, workers = engine.workers(), backend = ?engine.backend(), "srtpgate ready");
        Ok(Daemon {
            engine,
            registry,
            metrics,
            draining,
            stop,
            threads,
            ng_addr,
            metrics_addr,
            sip,
            li,
            voicemail,
            vm_api,
        })
    }

    /// The X1 admin listener, when `[li]` is configured.
    pub fn li_admin(&self) -> Option<&crate::li_admin::LiAdmin> {
        self.li.as_ref().map(|l| &l.admin)
    }

    /// Interception of live calls, when `[li]` is configured.
    pub fn li_calls(&self) -> Option<&crate::li_admin::LiCalls> {
        self.li.as_ref().map(|l| l.calls.as_ref())
    }

    /// The voicemail mailbox store, when `[voicemail]` is configured.
    pub fn voicemail(&self) -> Option<&Arc<Mutex<crate::voicemail::MailboxStore>>> {
        self.voicemail.as_ref()
    }

    /// The voicemail HTTP API, when `[voicemail] api-listen` is configured.
    pub fn vm_api(&self) -> Option<&crate::vm_api::VmApi> {
        self.vm_api.as_ref()
    }

    /// The SIP edge, when it runs.
    pub fn sip(&self) -> Option<&crate::sip_edge::SipEdge> {
        self.sip.as_ref()
    }

    pub fn ng_addr(&self) -> SocketAddr {
        self.ng_addr
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn metrics(&self) -> &ControlMetrics {
        &self.metrics
    }

    fn calls(&self) -> usize {
        self.registry.lock().map_or(0, |r| r.len())
    }

    /// Refuses new calls, keeps media of existing ones for up to `grace` (or until they
    /// end), then stops everything.
    pub fn drain_and_stop(self, grace: Duration) {
        self.draining.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + grace;
        let mut n = self.calls();
        if n > 0 {
            tracing::info!(
                calls = n,
                grace_s = grace.as_secs(),
                "draining: new calls refused, media kept"
            );
        }
        while n > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            n = self.calls();
        }
        self.stop_now();
    }

    fn stop_now(mut self) {
        if let Some(sip) = self.sip.take() {
            sip.stop();
        }
        if let Some(li) = self.li.take() {
            li.admin.stop();
        }
        if let Some(api) = self.vm_api.take() {
            api.stop();
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Ok(mut reg) = self.registry.lock() {
            let ids: Vec<String> = reg.calls().map(|c| c.id.clone()).collect();
            for id in ids {
                let _ = reg.delete(&id, Duration::ZERO);
            }
        }
        drop(self.registry);
        match Arc::try_unwrap(self.engine) {
            Ok(e) => e.shutdown(),
            Err(_) => tracing::warn!("engine still referenced at shutdown; workers stop on drop"),
        }
    }
}

/// Engine events and timers. STUN and DTLS datagrams are handled within ~10 ms (DTLS
/// retransmits after 1 s, ICE checks are paced at tens of ms); at most `SLOW_PATH_BUDGET`
/// per round, the rest dropped and counted, so a flood costs bounded CPU. Idle flows and
/// delayed deletes are looked at every 200 ms.
fn events_loop(
    stop: &AtomicBool,
    reg: &Mutex<CallRegistry>,
    eng: &Engine,
    li: Option<&crate::li_admin::LiCalls>,
    recordings: Option<&recording::SharedRecordings>,
) {
    const ROUND: Duration = Duration::from_millis(10);
    const SLOW_PATH_BUDGET: usize = 256;
    let mut events = Vec::new();
    let mut idle = Vec::new();
    let mut last_tick = Instant::now();
    let mut last_timers = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(ROUND);
        events.clear();
        eng.poll_events(&mut events);
        let now = Instant::now();
        let mut r = reg.lock().unwrap_or_else(|p| p.into_inner());
        let mut handled = 0usize;
        for e in events.drain(..) {
            match e {
                EngineEvent::SlowPath {
                    local,
                    from,
                    kind,
                    data,
                } => {
                    if handled < SLOW_PATH_BUDGET {
                        handled += 1;
                        r.slow_path(local, from, kind, &data, now);
                    } else {
                        r.slow_path_overload();
                    }
                }
                other => idle.push(other),
            }
        }
        if now.duration_since(last_timers) >= Duration::from_millis(20) {
            last_timers = now;
            r.tick_secure(now);
        }
        if now.duration_since(last_tick) >= Duration::from_millis(200) {
            last_tick = now;
            let gone = r.tick(&idle);
            idle.clear();
            for id in gone {
                tracing::info!(call = %id, "call removed (timer or media timeout)");
            }
            // Calls the SIP edge set up, and calls timers removed, are (un)tapped here.
            if let Some(li) = li {
                li.tick(&r);
            }
            // Recordings of calls that are gone are closed with their end block.
            if let Some(rec) = recordings {
                recording::lock(rec).tick(&r);
            }
        }
    }
}
