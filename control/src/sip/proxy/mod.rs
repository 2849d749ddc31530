//! The stateful proxy at the access edge: registrar front, digest challenges, routing to
//! registered contacts (forking) or a next hop, Record-Route, transaction matching, CANCEL,
//! timeouts, and the media anchoring of every SDP it forwards. Sans-IO: [`Proxy::handle`]
//! takes one received message, [`Proxy::tick`] runs timers; both return what to send.

mod calls;
mod diversion;
mod forward;
mod redirect;
mod request;
mod response;
mod timers;
mod voicemail;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ring::rand::{SecureRandom, SystemRandom};

use super::config::MediaPolicy;
use super::digest::{Algorithm, CredentialStore, DigestAuth};
use super::media::MediaAnchor;
use super::message::Message;
use super::registrar::{Registrar, RegistrarConfig};
use super::transaction::{ClientTxn, ServerKey, ServerTxn};
use super::uri::Uri;
use super::{Flow, Transmit, Transport};

pub use calls::CallState;
pub use redirect::{DepositCounts, DepositReason, RedirectPolicy};
pub use request::resolve;

/// A next hop: where to send, over what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub transport: Transport,
    pub addr: SocketAddr,
}

/// A route chosen by Request-URI user prefix.
#[derive(Clone, Debug)]
pub struct RouteRule {
    pub prefix: String,
    pub next_hop: Option<NextHop>,
    pub toward_callee: MediaPolicy,
    pub toward_caller: MediaPolicy,
}

/// Everything the proxy needs to know about its setting.
pub struct ProxyConfig {
    /// The addresses srtpgate listens on, per transport.
    pub listeners: Vec<(Transport, SocketAddr)>,
    /// Host for Via and Record-Route, when the listen address will not do.
    pub advertise: Option<String>,
    pub realm: String,
    pub users: Arc<dyn CredentialStore>,
    pub algorithms: Vec<Algorithm>,
    pub nonce_lifetime: Duration,
    pub outbound: Option<NextHop>,
    pub routes: Vec<RouteRule>,
    pub toward_callee: MediaPolicy,
    pub toward_caller: MediaPolicy,
    pub registrar: RegistrarConfig,
    pub invite_timeout: Duration,
}

/// What happened, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    pub malformed: u64,
    pub retransmissions: u64,
    pub registrations: u64,
    pub auth_failures: u64,
    pub rate_limited: u64,
    pub calls_anchored: u64,
    pub media_failures: u64,
    pub plain_retries: u64,
    pub timeouts: u64,
    /// Calls answered by voicemail, per reason.
    pub deposits: DepositCounts,
    /// 2xx from a callee whose call had already gone to voicemail (acknowledged and ended
    /// with BYE).
    pub late_answers: u64,
    /// Error responses sent by the proxy itself, by code.
    pub errors: HashMap<u16, u64>,
}

/// The SIP proxy and registrar.
pub struct Proxy {
    config: ProxyConfig,
    auth: DigestAuth,
    registrar: Registrar,
    media: Box<dyn MediaAnchor>,
    servers: HashMap<ServerKey, ServerTxn>,
    clients: HashMap<String, ClientTxn>,
    calls: HashMap<String, CallState>,
    counters: Counters,
    out: Vec<Transmit>,
    rng: SystemRandom,
    last_sweep: Option<Instant>,
    /// Voicemail deposits answered by the proxy itself, and their 200 OK (retransmissions).
    deposit: Option<Box<dyn super::deposit::Deposit>>,
    deposit_answers: HashMap<String, Vec<u8>>,
    deposit_byes: HashMap<String, (Message, Flow)>,
    /// Deposits' 200 OK over UDP not yet acknowledged (retransmitted until the ACK).
    deposit_unacked: HashMap<String, voicemail::Unacked>,
    /// The time of the message or timer being handled.
    now: Instant,
    /// Routed calls that may still go to voicemail (no answer, busy, unavailable).
    redirects: HashMap<ServerKey, redirect::Redirect>,
}

impl Proxy {
    pub fn new(config: ProxyConfig, media: Box<dyn MediaAnchor>) -> Self {
        let rng = SystemRandom::new();
        let mut secret = [0u8; 32];
        if rng.fill(&mut secret).is_err() {
            // Without randomness nonces would be forgeable; a time-derived key is the
            // last resort and is reported.
            tracing::error!("system RNG failed; digest nonces use a weak key");
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            secret[..16].copy_from_slice(&t.to_le_bytes());
        }
        let auth = DigestAuth::new(
            &config.realm,
            &secret,
            config.nonce_lifetime,
            config.algorithms.clone(),
        );
        Proxy {
            registrar: Registrar::new(config.registrar.clone()),
            config,
            auth,
            media,
            servers: HashMap::new(),
            clients: HashMap::new(),
            calls: HashMap::new(),
            counters: Counters::default(),
            out: Vec::new(),
            rng,
            last_sweep: None,
            deposit: None,
            deposit_answers: HashMap::new(),
            deposit_byes: HashMap::new(),
            deposit_unacked: HashMap::new(),
            now: Instant::now(),
            redirects: HashMap::new(),
        }
    }

    /// Answers calls to voicemail URIs with `deposit` (see [`super::deposit`]).
    pub fn set_deposit(&mut self, deposit: Box<dyn super::deposit::Deposit>) {
        self.deposit = Some(deposit);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// Live transactions (server, client) and call states, to check that none leak.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.servers.len(), self.clients.len(), self.calls.len())
    }

    /// Handles one message received on `flow`; returns what to send.
    pub fn handle(&mut self, bytes: &[u8], flow: Flow, now: Instant) -> Vec<Transmit> {
        self.counters.received += 1;
        self.now = now;
        match Message::parse(bytes) {
            Ok(msg) if msg.is_request() => self.on_request(msg, flow, now),
            Ok(msg) => self.on_response(msg, flow, now),
            Err(e) => {
                self.counters.malformed += 1;
                tracing::debug!(peer = %flow.remote, error = %e, "malformed SIP message");
                let (code, reason) = e.status();
                if let Some(bytes) = request::raw_error_response(bytes, code, &reason) {
                    self.count_error(code);
                    self.send(flow, bytes);
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, flow: Flow, bytes: Vec<u8>) {
        self.out.push(Transmit { flow, bytes });
    }

    fn count_error(&mut self, code: u16) {
        *self.counters.errors.entry(code).or_default() += 1;
    }

    /// Random hex for tags and branches.
    fn random_hex(&self, bytes: usize) -> String {
        let mut b = [0u8; 16];
        let n = bytes.min(16);
        let _ = self.rng.fill(&mut b[..n]);
        hex::encode(&b[..n])
    }

    /// Our address for `transport`: (host for Via/Record-Route, port).
    fn local(&self, transport: Transport) -> Option<(String, u16)> {
        let (_, addr) = self
            .config
            .listeners
            .iter()
            .find(|(t, _)| *t == transport)?;
        let host = match &self.config.advertise {
            Some(h) => h.clone(),
            None => match addr.ip() {
                IpAddr::V6(v6) => format!("[{v6}]"),
                ip => ip.to_string(),
            },
        };
        Some((host, addr.port()))
    }

    /// Whether `uri` names this proxy (a Route entry, or a Request-URI without a user).
    fn is_local_uri(&self, uri: &Uri) -> bool {
        let Some(u) = uri.sip() else { return false };
        let ip = u.ip();
        let host_ok = self
            .config
            .advertise
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(&u.host))
            || self.config.listeners.iter().any(|(_, a)| {
                Some(a.ip()) == ip
                    || (a.ip().is_unspecified() && ip.is_some())
                    || (a.ip().is_loopback() && u.host.eq_ignore_ascii_case("localhost"))
            });
        let default_port = if u.secure || u.transport().as_deref() == Some("tls") {
            5061
        } else {
            5060
        };
        let port = u.port.unwrap_or(default_port);
        host_ok && self.config.listeners.iter().any(|(_, a)| a.port() == port)
    }
}
