//! The sans-IO ng front: datagrams in, datagrams out.
//!
//! [`NgServer::handle_datagram`] does everything for a synchronous call layer. A call
//! layer that answers later (after a worker acknowledged a flow change, say) uses the
//! two halves instead: [`NgServer::receive`] hands out a [`Pending`] request, and
//! [`NgServer::respond`] turns the eventual [`NgResponse`] into the reply datagram;
//! retransmissions arriving in between are dropped, as the first reply will answer them.
//!
//! The server itself answers what needs no call state: `ping`, malformed requests,
//! and commands srtpgate does not implement. It adds the request's ignored options to
//! the `warning` of `ok` replies, fills the per-proxy control statistics of `statistics`
//! replies, and counts requests by command and errors by kind.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::bencode::{Limits, Value};
use super::cache::{CacheLookup, RequestCache};
use super::frame;
use super::request::{Command, NgRequest, RequestError};
use super::response::NgResponse;
use super::stats::{ControlStatistics, ProxyStatistics};

/// The call layer: acts on a request and says what to answer.
pub trait NgHandler {
    fn handle(&mut self, req: &NgRequest) -> NgResponse;
}

/// Limits and lifetimes of an [`NgServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NgServerConfig {
    /// How long replies are kept for retransmissions (Kamailio retries for ~5 s).
    pub cache_ttl: Duration,
    pub cache_max_entries: usize,
    pub cache_max_bytes: usize,
    /// Cookies longer than this are answered (with an error) but never cached.
    pub max_cookie_len: usize,
    pub decode_limits: Limits,
    /// Proxies tracked separately in the control statistics; more share one entry.
    pub max_proxies: usize,
}

impl Default for NgServerConfig {
    fn default() -> Self {
        NgServerConfig {
            cache_ttl: Duration::from_secs(30),
            cache_max_entries: 65_536,
            cache_max_bytes: 64 << 20,
            max_cookie_len: 256,
            decode_limits: Limits::default(),
            max_proxies: 1024,
        }
    }
}

/// What the server counted since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NgCounters {
    pub datagrams: u64,
    /// Parsed requests by command name (unsupported commands included).
    pub requests: BTreeMap<String, u64>,
    /// Error replies and dropped datagrams by kind: framing (`no_separator`, ...),
    /// decoding (`leading_zero`, ...), request (`missing_call_id`, `wrong_type`, ...),
    /// `unsupported_command`, and `handler` for errors the call layer answered.
    pub errors: BTreeMap<&'static str, u64>,
    /// Requests answered again from the cache.
    pub retransmissions: u64,
    /// Known cookies from the same sender with a different payload (answered from cache).
    pub cookie_reuses: u64,
    /// Copies dropped because the first was still being processed.
    pub in_flight_drops: u64,
    /// `load limit` replies.
    pub load_limits: u64,
    /// `ok` replies that carried a warning about ignored options.
    pub ignored_options: u64,
}

/// How the request was encoded; the reply uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Bencode,
    Json,
}

/// A request handed to the call layer, to be answered through [`NgServer::respond`].
#[derive(Debug)]
pub struct Pending {
    pub request: NgRequest,
    peer: SocketAddr,
    cookie: Vec<u8>,
    payload_hash: u64,
    format: Format,
}

/// What to do with a received datagram.
#[derive(Debug)]
pub enum Received {
    /// Send these bytes to the sender.
    Reply(Vec<u8>),
    /// Send nothing.
    Drop,
    /// Hand the request to the call layer, then pass its answer to [`NgServer::respond`].
    Request(Box<Pending>),
}

/// The ng protocol front of the daemon.
pub struct NgServer {
    config: NgServerConfig,
    cache: RequestCache,
    counters: NgCounters,
    proxies: HashMap<IpAddr, ProxyStatistics>,
}

impl Default for NgServer {
    fn default() -> Self {
        NgServer::new(NgServerConfig::default())
    }
}

impl NgServer {
    pub fn new(config: NgServerConfig) -> NgServer {
        NgServer {
            cache: RequestCache::new(
                config.cache_ttl,
                config.cache_max_entries,
                config.cache_max_bytes,
            ),
            config,
            counters: NgCounters::default(),
            proxies: HashMap::new(),
        }
    }

    /// Handles one datagram with a synchronous call layer; returns the reply, if any.
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: Instant,
        handler: &mut impl NgHandler,
    ) -> Option<Vec<u8>> {
        match self.receive(from, bytes, now) {
            Received::Reply(reply) => Some(reply),
            Received::Drop => None,
            Received::Request(pending) => {
                let response = handler.handle(&pending.request);
                Some(self.respond(*pending, response, now))
            }
        }
    }

    /// First half: frames, deduplicates and parses a datagram.
    pub fn receive(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> Received {
        self.counters.datagrams += 1;
        let f = match frame::split(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.count_error(e.kind());
                return Received::Drop;
            }
        };
        if f.cookie.len() > self.config.max_cookie_len {
            self.count_error("cookie_too_long");
            let reason = format!("cookie longer than {} bytes", self.config.max_cookie_len);
            let payload = NgResponse::error(reason).encode();
            return Received::Reply(frame::join(f.cookie, &payload));
        }
        match self.cache.lookup(from, f.cookie, f.payload, now) {
            CacheLookup::Retransmission(reply) => {
                let reply = reply.to_vec();
                self.counters.retransmissions += 1;
                return Received::Reply(reply);
            }
            CacheLookup::CookieReuse(reply) => {
                let reply = reply.to_vec();
                self.counters.cookie_reuses += 1;
                return Received::Reply(reply);
            }
            CacheLookup::InFlight => {
                self.counters.in_flight_drops += 1;
                return Received::Drop;
            }
            CacheLookup::New => {}
        }
        let (format, parsed) = self.parse(f.payload);
        let pending = Pending {
            request: NgRequest::default(),
            peer: from,
            cookie: f.cookie.to_vec(),
            payload_hash: super::cache::payload_hash(f.payload),
            format,
        };
        let request = match parsed {
            Ok(r) => r,
            Err(e) => {
                self.count_error(e.kind());
                self.proxy(from).errors += 1;
                let response = NgResponse::error(e.to_string());
                return Received::Reply(self.finish(pending, &response, now));
            }
        };
        *self
            .counters
            .requests
            .entry(request.command.name().to_owned())
            .or_default() += 1;
        let immediate = match &request.command {
            Command::Ping => Some(NgResponse::pong()),
            Command::Unsupported(name) => {
                self.count_error("unsupported_command");
                self.proxy(from).errors += 1;
                Some(NgResponse::error(format!(
                    "Unsupported command \"{name}\": not implemented by srtpgate"
                )))
            }
            _ => None,
        };
        if let Some(response) = immediate {
            self.count_command(from, &request.command);
            return Received::Reply(self.finish(pending, &response, now));
        }
        Received::Request(Box::new(Pending { request, ..pending }))
    }

    /// Second half: the reply datagram for a request's response (also cached).
    pub fn respond(&mut self, pending: Pending, response: NgResponse, now: Instant) -> Vec<u8> {
        let mut response = response;
        let command = pending.request.command.clone();
        self.count_command(pending.peer, &command);
        match &mut response {
            NgResponse::Error(_) => {
                self.count_error("handler");
                self.proxy(pending.peer).errors += 1;
            }
            NgResponse::LoadLimit(_) => self.counters.load_limits += 1,
            NgResponse::Pong => {}
            NgResponse::Ok(ok) => {
                if !pending.request.unsupported.is_empty() {
                    self.counters.ignored_options += 1;
                    ok.warnings.push(format!(
                        "Unsupported by srtpgate, ignored: {}",
                        pending.request.unsupported.join(", ")
                    ));
                }
                if let Some(stats) = &mut ok.statistics {
                    if stats.control.is_none() {
                        stats.control = Some(self.control_statistics());
                    }
                }
            }
        }
        self.finish(pending, &response, now)
    }

    /// Counters since start.
    pub fn counters(&self) -> &NgCounters {
        &self.counters
    }

    /// ng commands per proxy, as the `statistics` reply's `controlstatistics`.
    pub fn control_statistics(&self) -> ControlStatistics {
        let mut proxies: Vec<ProxyStatistics> = self.proxies.values().copied().collect();
        proxies.sort_by_key(|p| p.proxy);
        ControlStatistics { proxies }
    }

    /// Cached replies, for metrics.
    pub fn cached_replies(&self) -> usize {
        self.cache.len()
    }

    fn parse(&self, payload: &[u8]) -> (Format, Result<NgRequest, RequestError>) {
        match payload.first() {
            None => (Format::Bencode, Err(RequestError::NoPayload)),
            Some(b'{') => {
                let parsed = super::json::decode(payload, self.config.decode_limits.max_depth)
                    .map_err(RequestError::Json)
                    .and_then(|v| NgRequest::from_value(&v));
                (Format::Json, parsed)
            }
            Some(b'd') => {
                let parsed = super::bencode::decode_with(payload, self.config.decode_limits)
                    .map_err(RequestError::from)
                    .and_then(|v| NgRequest::from_value(&v));
                (Format::Bencode, parsed)
            }
            Some(&b) => (Format::Bencode, Err(RequestError::UnknownFormat(b))),
        }
    }

    /// Encodes, frames and caches a reply.
    fn finish(&mut self, pending: Pending, response: &NgResponse, now: Instant) -> Vec<u8> {
        let value: Value = response.to_value();
        let payload = match pending.format {
            Format::Bencode => value.encode(),
            Format::Json => super::json::encode(&value),
        };
        let reply = frame::join(&pending.cookie, &payload);
        self.cache.complete_hashed(
            pending.peer,
            &pending.cookie,
            pending.payload_hash,
            reply.clone(),
            now,
        );
        reply
    }

    fn count_error(&mut self, kind: &'static str) {
        *self.counters.errors.entry(kind).or_default() += 1;
    }

    fn count_command(&mut self, peer: SocketAddr, command: &Command) {
        let p = self.proxy(peer);
        let slot = match command {
            Command::Ping => &mut p.ping,
            Command::Offer => &mut p.offer,
            Command::Answer => &mut p.answer,
            Command::Delete => &mut p.delete,
            Command::Query => &mut p.query,
            Command::List => &mut p.list,
            Command::StartRecording => &mut p.start_recording,
            Command::StopRecording => &mut p.stop_recording,
            Command::Statistics => &mut p.statistics,
            Command::Unsupported(_) => return,
        };
        *slot += 1;
    }

    /// The statistics of one proxy; past `max_proxies`, new proxies share one entry
    /// reported under 0.0.0.0.
    fn proxy(&mut self, peer: SocketAddr) -> &mut ProxyStatistics {
        let ip = peer.ip();
        if !self.proxies.contains_key(&ip) && self.proxies.len() >= self.config.max_proxies {
            let overflow = IpAddr::from([0, 0, 0, 0]);
            return self
                .proxies
                .entry(overflow)
                .or_insert_with(|| ProxyStatistics::new(overflow));
        }
        self.proxies
            .entry(ip)
            .or_insert_with(|| ProxyStatistics::new(ip))
    }
}
