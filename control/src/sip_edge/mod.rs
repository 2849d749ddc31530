//! The SIP edge's I/O: UDP sockets, TCP and TLS listeners and connections, feeding the
//! sans-IO [`Proxy`] on one thread that owns it, and carrying out what it returns.

mod conns;
pub(crate) mod tls;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::call::CallRegistry;
use crate::sip::config::SipConfig;
use crate::sip::digest::{Algorithm, StaticUsers};
use crate::sip::media::{AnswerHook, RegistryAnchor};
use crate::sip::message::MAX_MESSAGE;
use crate::sip::proxy::{Counters, NextHop, Proxy, ProxyConfig, RouteRule};
use crate::sip::registrar::RegistrarConfig;
use crate::sip::{Flow, Transmit, Transport};

use conns::Connections;

/// A message received, on its way to the proxy thread.
pub(crate) struct Inbound {
    pub bytes: Vec<u8>,
    pub flow: Flow,
}

/// The running SIP edge.
pub struct SipEdge {
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    counters: Arc<Mutex<Counters>>,
}

/// Parses a next hop: `host:port`, `sip:host:port;transport=tcp`, …
pub fn parse_next_hop(s: &str) -> anyhow::Result<NextHop> {
    let text = if s.contains(':') && (s.starts_with("sip:") || s.starts_with("sips:")) {
        s.to_string()
    } else {
        format!("sip:{s}")
    };
    let uri =
        crate::sip::uri::Uri::parse(&text).map_err(|e| anyhow::anyhow!("next hop {s:?}: {e}"))?;
    let flow = crate::sip::proxy::resolve(&uri)
        .with_context(|| format!("next hop {s:?} does not resolve"))?;
    Ok(NextHop {
        transport: flow.transport,
        addr: flow.remote,
    })
}

fn bind_all(addrs: &[SocketAddr], what: &str) -> anyhow::Result<Vec<UdpSocket>> {
    addrs
        .iter()
        .map(|a| UdpSocket::bind(a).with_context(|| format!("binding SIP {what} {a}")))
        .collect()
}

impl SipEdge {
    /// Binds every listener of `config` and starts the proxy thread.
    pub fn start(
        config: &SipConfig,
        registry: Arc<Mutex<CallRegistry>>,
        draining: Arc<AtomicBool>,
        strict_source: bool,
    ) -> anyhow::Result<SipEdge> {
        SipEdge::start_with_hook(config, registry, draining, strict_source, None, None)
    }

    /// [`SipEdge::start`], with `after_answer` run synchronously after each answer installs
    /// a call's media (before the answer is forwarded).
    pub fn start_with_hook(
        config: &SipConfig,
        registry: Arc<Mutex<CallRegistry>>,
        draining: Arc<AtomicBool>,
        strict_source: bool,
        after_answer: Option<AnswerHook>,
        deposit: Option<Box<dyn crate::sip::deposit::Deposit>>,
    ) -> anyhow::Result<SipEdge> {
        config.validate()?;
        let stop = Arc::new(AtomicBool::new(false));
        let udp_socks = bind_all(&config.listen_udp, "UDP")?;
        let tcp_listeners = config
            .listen_tcp
            .iter()
            .map(|a| std::net::TcpListener::bind(a).with_context(|| format!("binding SIP TCP {a}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tls_listeners = config
            .listen_tls
            .iter()
            .map(|a| std::net::TcpListener::bind(a).with_context(|| format!("binding SIP TLS {a}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let tls_config = if tls_listeners.is_empty() {
            None
        } else {
            let (cert, key) = match (&config.tls_cert, &config.tls_key) {
                (Some(c), Some(k)) => (c, k),
                _ => anyhow::bail!("[sip] listen-tls needs tls-cert and tls-key"),
            };
            Some(tls::server_config(cert, key)?)
        };
        let udp: Vec<SocketAddr> = udp_socks
            .iter()
            .map(|s| s.local_addr())
            .collect::<Result<_, _>>()?;
        let tcp: Vec<SocketAddr> = tcp_listeners
            .iter()
            .map(|s| s.local_addr())
            .collect::<Result<_, _>>()?;
        let tls: Vec<SocketAddr> = tls_listeners
            .iter()
            .map(|s| s.local_addr())
            .collect::<Result<_, _>>()?;

        let mut users = StaticUsers::new();
        for u in &config.users {
            users.add(
                &u.username,
                u.realm.as_deref().unwrap_or(&config.realm),
                &u.password,
            );
        }
        if config.users.is_empty() {
            tracing::warn!(
                "SIP edge: no [[sip.users]] configured, so REGISTER and calls are accepted \
                 WITHOUT authentication, from loopback sources only"
            );
        }
        let mut routes = Vec::new();
        for r in &config.routes {
            routes.push(RouteRule {
                prefix: r.prefix.clone(),
                next_hop: r.next_hop.as_deref().map(parse_next_hop).transpose()?,
                toward_callee: r.toward_callee.unwrap_or(config.toward_callee),
                toward_caller: r.toward_caller.unwrap_or(config.toward_caller),
            });
        }
        let mut listeners = Vec::new();
        listeners.extend(udp.iter().map(|a| (Transport::Udp, *a)));
        listeners.extend(tcp.iter().map(|a| (Transport::Tcp, *a)));
        listeners.extend(tls.iter().map(|a| (Transport::Tls, *a)));
        let proxy_config = ProxyConfig {
            listeners,
            advertise: config.advertise.clone(),
            realm: config.realm.clone(),
            users: Arc::new(users),
            algorithms: config
                .digest_algorithms
                .iter()
                .filter_map(|a| Algorithm::parse(a))
                .collect(),
            nonce_lifetime: Duration::from_secs(config.nonce_lifetime.max(10)),
            outbound: config.outbound.as_deref().map(parse_next_hop).transpose()?,
            routes,
            toward_callee: config.toward_callee,
            toward_caller: config.toward_caller,
            registrar: RegistrarConfig {
                default_expires: config.default_expires,
                min_expires: config.min_expires,
                max_expires: config.max_expires,
                max_contacts: 10,
                rate_per_source: config.register_rate,
            },
            invite_timeout: Duration::from_secs(config.invite_timeout.max(1)),
        };
        let anchor = RegistryAnchor {
            registry,
            draining,
            strict_source,
            after_answer,
        };
        let mut proxy = Proxy::new(proxy_config, Box::new(anchor));
        if let Some(d) = deposit {
            proxy.set_deposit(d);
        }
        let (tx, rx) = mpsc::channel::<Inbound>();
        let conns = Arc::new(Connections::new(tx.clone(), stop.clone()));
        let mut threads = Vec::new();
        let udp_send: Vec<Arc<UdpSocket>> = udp_socks.into_iter().map(Arc::new).collect();
        for s in &udp_send {
            threads.push(spawn_udp(s.clone(), tx.clone(), stop.clone())?);
        }
        for l in tcp_listeners {
            threads.push(conns.clone().spawn_acceptor(l, Transport::Tcp, None)?);
        }
        for l in tls_listeners {
            threads.push(
                conns
                    .clone()
                    .spawn_acceptor(l, Transport::Tls, tls_config.clone())?,
            );
        }
        let counters = Arc::new(Mutex::new(Counters::default()));
        let (c, s) = (counters.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name("srtpgate-sip".into())
                .spawn(move || run_proxy(proxy, rx, udp_send, conns, c, s))?,
        );
        tracing::info!(udp = ?udp, tcp = ?tcp, tls = ?tls, realm = %config.realm, users = config.users.len(), "SIP edge listening");
        Ok(SipEdge {
            threads,
            stop,
            udp,
            tcp,
            tls,
            counters,
        })
    }

    /// The live counters, for the metrics endpoint.
    pub fn counters_handle(&self) -> Arc<Mutex<Counters>> {
        self.counters.clone()
    }

    /// A snapshot of the proxy's counters.
    pub fn counters(&self) -> Counters {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Stops every thread of the edge.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for SipEdge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn spawn_udp(
    sock: Arc<UdpSocket>,
    tx: Sender<Inbound>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;
    std::thread::Builder::new()
        .name("srtpgate-sip-udp".into())
        .spawn(move || {
            let mut buf = vec![0u8; MAX_MESSAGE + 1];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                // Keep-alive CRLFs (and anything shorter) are not messages.
                if n <= 4 {
                    continue;
                }
                let flow = Flow {
                    transport: Transport::Udp,
                    remote: from,
                    conn: None,
                };
                if tx
                    .send(Inbound {
                        bytes: buf[..n].to_vec(),
                        flow,
                    })
                    .is_err()
                {
                    break;
                }
            }
        })
}

fn run_proxy(
    mut proxy: Proxy,
    rx: Receiver<Inbound>,
    udp: Vec<Arc<UdpSocket>>,
    conns: Arc<Connections>,
    counters: Arc<Mutex<Counters>>,
    stop: Arc<AtomicBool>,
) {
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let out = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => proxy.handle(&m.bytes, m.flow, Instant::now()),
            Err(RecvTimeoutError::Timeout) => Vec::new(),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        deliver(out, &udp, &conns);
        let now = Instant::now();
        if now.duration_since(last_tick) >= Duration::from_millis(50) {
            last_tick = now;
            let out = proxy.tick(now);
            deliver(out, &udp, &conns);
            if let Ok(mut c) = counters.lock() {
                *c = proxy.counters().clone();
            }
        }
    }
}

fn deliver(out: Vec<Transmit>, udp: &[Arc<UdpSocket>], conns: &Arc<Connections>) {
    for t in out {
        match t.flow.transport {
            Transport::Udp => {
                let sock = udp
                    .iter()
                    .find(|s| {
                        s.local_addr()
                            .is_ok_and(|a| a.is_ipv4() == t.flow.remote.is_ipv4())
                    })
                    .or(udp.first());
                match sock {
                    Some(s) => {
                        if let Err(e) = s.send_to(&t.bytes, t.flow.remote) {
                            tracing::debug!(peer = %t.flow.remote, error = %e, "SIP UDP send failed");
                        }
                    }
                    None => tracing::warn!(peer = %t.flow.remote, "no SIP UDP socket to send from"),
                }
            }
            Transport::Tcp | Transport::Tls => conns.send(t),
        }
    }
}

/// Starts the SIP edge as the daemon does: not at all when `[sip] enabled = false`; when
/// the default listeners (127.0.0.1:5060) are taken, the daemon runs on without SIP and
/// says so; explicitly configured listeners that cannot be bound are an error.
pub fn start_with_daemon(
    config: &SipConfig,
    registry: Arc<Mutex<CallRegistry>>,
    draining: Arc<AtomicBool>,
    strict_source: bool,
    after_answer: Option<AnswerHook>,
    deposit: Option<Box<dyn crate::sip::deposit::Deposit>>,
) -> anyhow::Result<Option<SipEdge>> {
    if !config.enabled {
        tracing::info!("SIP edge disabled");
        return Ok(None);
    }
    let defaults = SipConfig::default();
    let default_listeners = config.listen_udp == defaults.listen_udp
        && config.listen_tcp == defaults.listen_tcp
        && config.listen_tls.is_empty();
    match SipEdge::start_with_hook(
        config,
        registry,
        draining,
        strict_source,
        after_answer,
        deposit,
    ) {
        Ok(e) => Ok(Some(e)),
        Err(e) if default_listeners => {
            tracing::warn!(
                "SIP edge NOT started: {e:#} (another SIP server on 127.0.0.1:5060? choose \
                 other addresses with --sip-listen or [sip] listen-udp/listen-tcp)"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
