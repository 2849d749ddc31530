//! The slow path of DTLS-SRTP and ICE-lite legs: the engine punts STUN and DTLS datagrams
//! (RFC 7983) to the control plane; this file hands each to the state machines of the leg
//! whose port it arrived on, sends their replies out of the same port, and when a handshake
//! completes installs the keys exactly as SDES keys are installed. Work is bounded: a token
//! bucket per leg, and datagrams for ports without such a leg are dropped and counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay::engine::{Command, LocalPort};
use relay::packet::PacketKind;

use super::crypto::CryptoLine;
use super::install::leg_mut;
use super::model::{Call, Leg, Negotiated};
use super::registry::{CallError, CallRegistry};
use crate::dtls::{DtlsEvent, DtlsIdentity, DtlsSession, Output, Role};
use crate::ice::{CheckError, Credentials, IceLite};
use crate::sdp::Fingerprint;

/// Slow-path datagrams a leg may cost per second, and the burst allowed.
const RATE_PER_S: f64 = 100.0;
const BURST: f64 = 200.0;

/// A simple token bucket.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            tokens: BURST,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * RATE_PER_S).min(BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The state machines of one DTLS and/or ICE leg, keyed by the leg's RTP port.
pub(super) struct Transport {
    call: String,
    monologue: usize,
    index: usize,
    ice: Option<IceLite>,
    dtls: Option<DtlsSession>,
    /// What the running session was made for: a change restarts it.
    dtls_params: Option<(Role, Vec<Fingerprint>)>,
    /// The address the DTLS association talks with, once known.
    dtls_peer: Option<SocketAddr>,
    /// A DTLS datagram that arrived before the answer said which role to take.
    early: Option<(SocketAddr, Vec<u8>)>,
    bucket: Bucket,
}

/// DTLS identity, handshake timeout and the per-leg transports.
pub struct SecureState {
    identity: Option<Arc<DtlsIdentity>>,
    pub(super) handshake_timeout: Duration,
    pub(super) transports: HashMap<LocalPort, Transport>,
    /// Every port of a transport's leg → the key of the transport.
    pub(super) by_port: HashMap<LocalPort, LocalPort>,
}

impl Default for SecureState {
    fn default() -> Self {
        SecureState {
            identity: None,
            handshake_timeout: Duration::from_secs(20),
            transports: HashMap::new(),
            by_port: HashMap::new(),
        }
    }
}

impl CallRegistry {
    /// Uses `identity` for every DTLS leg from now on (else one is generated on first use).
    pub fn set_dtls_identity(&mut self, identity: Arc<DtlsIdentity>, handshake_timeout: Duration) {
        self.secure.identity = Some(identity);
        self.secure.handshake_timeout = handshake_timeout;
    }

    pub(super) fn identity(&mut self) -> Result<Arc<DtlsIdentity>, CallError> {
        if let Some(id) = &self.secure.identity {
            return Ok(id.clone());
        }
        let id = Arc::new(
            DtlsIdentity::generate("sha-256").map_err(|e| CallError::Dtls(e.to_string()))?,
        );
        self.secure.identity = Some(id.clone());
        Ok(id)
    }

    /// srtpgate's fingerprint with `hash`, or the configured one.
    pub(super) fn our_fingerprint(&mut self, hash: Option<&str>) -> Result<Fingerprint, CallError> {
        let id = self.identity()?;
        Ok(hash
            .and_then(|h| id.fingerprint_with(h))
            .unwrap_or_else(|| id.fingerprint()))
    }

    /// Creates, updates or removes the transport of leg `i` of monologue `m` to match the
    /// leg; starts a client handshake when the peer's address is known.
    pub(super) fn ensure_transport(
        &mut self,
        call: &mut Call,
        m: usize,
        i: usize,
    ) -> Result<(), CallError> {
        let now = Instant::now();
        let leg = leg_mut(call, m, i).clone();
        let key = leg.ports.rtp;
        if leg.dtls.is_none() && leg.ice.is_none() {
            self.drop_transport(key);
            return Ok(());
        }
        let t = self
            .secure
            .transports
            .entry(key)
            .or_insert_with(|| Transport {
                call: call.id.clone(),
                monologue: m,
                index: i,
                ice: None,
                dtls: None,
                dtls_params: None,
                dtls_peer: None,
                early: None,
                bucket: Bucket::new(now),
            });
        self.secure.by_port.insert(leg.ports.rtp, key);
        self.secure.by_port.insert(leg.ports.rtcp, key);
        match (&leg.ice, &mut t.ice) {
            (None, ice) => *ice = None,
            (Some(c), Some(ice)) if ice.local() == c => {}
            (Some(c), ice) => *ice = Some(IceLite::new(c.clone())),
        }
        if let Some(ice) = &mut t.ice {
            ice.set_remote_ufrag(leg.remote.ice.as_ref().map(|r| r.ufrag.as_str()));
        }
        let Some(d) = &leg.dtls else {
            t.dtls = None;
            t.dtls_params = None;
            return Ok(());
        };
        let Some(role) = d.role else { return Ok(()) };
        let params = (role, d.remote_fingerprints.clone());
        if t.dtls_params.as_ref() == Some(&params) {
            return Ok(());
        }
        // New or changed parameters: a fresh association.
        let Some(id) = self.secure.identity.clone() else {
            return Err(CallError::Dtls("no DTLS identity".into()));
        };
        let timeout = self.secure.handshake_timeout;
        let t = self
            .secure
            .transports
            .get_mut(&key)
            .ok_or(CallError::UnknownCall)?;
        t.dtls = Some(
            DtlsSession::new(&id, role, params.1.clone(), now, timeout)
                .map_err(|e| CallError::Dtls(e.to_string()))?,
        );
        t.dtls_params = Some(params);
        t.dtls_peer = None;
        let d = leg_mut(call, m, i);
        d.want = None;
        if let Some(ld) = &mut d.dtls {
            ld.connected = false;
            ld.failure = None;
        }
        match role {
            Role::Client => self.start_client(call, key, now),
            Role::Server => {
                if let Some((from, data)) = self
                    .secure
                    .transports
                    .get_mut(&key)
                    .and_then(|t| t.early.take())
                {
                    self.dtls_datagram(call, key, key, from, &data, now);
                }
            }
        }
        Ok(())
    }

    /// Sends a client's first flight once there is an address to send it to.
    fn start_client(&mut self, call: &mut Call, key: LocalPort, now: Instant) {
        let Some(t) = self.secure.transports.get_mut(&key) else {
            return;
        };
        let (m, i) = (t.monologue, t.index);
        let Some(session) = t.dtls.as_mut() else {
            return;
        };
        if session.role() != Role::Client || t.dtls_peer.is_some() || session.is_over() {
            return;
        }
        let leg = leg_mut(call, m, i);
        let to = match &t.ice {
            Some(ice) => ice.selected(),
            None => leg.remote.rtp_addr(),
        };
        let Some(to) = to else { return };
        t.dtls_peer = Some(to);
        let out = session.start();
        self.dtls_output(call, key, key, to, out, now);
    }

    pub(super) fn drop_transport(&mut self, key: LocalPort) {
        if self.secure.transports.remove(&key).is_some() {
            self.secure.by_port.retain(|_, k| *k != key);
        }
    }

    /// Counts a slow-path datagram dropped because the control plane is over its budget.
    pub fn slow_path_overload(&self) {
        self.metrics
            .security
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Hands a punted STUN or DTLS datagram to the leg it belongs to.
    pub fn slow_path(
        &mut self,
        local: LocalPort,
        from: SocketAddr,
        kind: PacketKind,
        data: &[u8],
        now: Instant,
    ) {
        let sm = self.metrics.clone();
        let Some(&key) = self.secure.by_port.get(&local) else {
            sm.security.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(t) = self.secure.transports.get_mut(&key) else {
            return;
        };
        if !t.bucket.take(now) {
            sm.security.rate_limited.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let id = t.call.clone();
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        match kind {
            PacketKind::Stun => self.stun_datagram(&mut call, key, local, from, data, now),
            PacketKind::Dtls => self.dtls_datagram(&mut call, key, local, from, data, now),
            _ => {}
        }
        self.calls.insert(id, call);
    }

    fn stun_datagram(
        &mut self,
        call: &mut Call,
        key: LocalPort,
        local: LocalPort,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let sm = self.metrics.clone();
        let Some(t) = self.secure.transports.get_mut(&key) else {
            return;
        };
        let (m, i) = (t.monologue, t.index);
        let Some(ice) = t.ice.as_mut() else {
            sm.security.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let out = ice.handle(from, data, now);
        let selected = ice.selected();
        match out.result {
            Ok(_) => sm.security.stun_requests.fetch_add(1, Ordering::Relaxed),
            Err(CheckError::BadIntegrity | CheckError::WrongUsername) => sm
                .security
                .stun_unauthorized
                .fetch_add(1, Ordering::Relaxed),
            Err(CheckError::NotRequest) => 0,
            Err(_) => sm.security.stun_malformed.fetch_add(1, Ordering::Relaxed),
        };
        if let Some(reply) = out.reply {
            self.send(local, from, reply);
        }
        if out.result.is_ok() {
            let leg = leg_mut(call, m, i);
            if selected.is_some() && leg.ice_selected != selected {
                leg.ice_selected = selected;
                let leg = leg.clone();
                if let Err(e) = self.set_leg_peers(&leg) {
                    tracing::warn!(call = %call.id, error = %e, "pointing a leg at the ICE-selected address failed");
                }
            }
            self.start_client(call, key, now);
        }
    }

    fn dtls_datagram(
        &mut self,
        call: &mut Call,
        key: LocalPort,
        local: LocalPort,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let sm = self.metrics.clone();
        let Some(t) = self.secure.transports.get_mut(&key) else {
            return;
        };
        let (m, i) = (t.monologue, t.index);
        if local != key {
            // DTLS on a separate RTCP port: only the RTP component is keyed by DTLS.
            sm.security.dtls_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let leg = leg_mut(call, m, i);
        let expected = match (&t.ice, t.dtls_peer) {
            (_, Some(p)) => p == from,
            (Some(ice), None) => ice.is_valid_source(from, now),
            (None, None) => leg.remote.rtp_addr().is_none_or(|a| a == from),
        };
        if !expected {
            sm.security
                .dtls_unexpected_source
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(session) = t.dtls.as_mut() else {
            // Before the answer: keep the latest datagram for when the role is known.
            if leg.dtls.is_some() && data.len() <= 2048 {
                t.early = Some((from, data.to_vec()));
            } else {
                sm.security.dtls_dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        };
        match session.handle(data, now) {
            Ok(out) => {
                t.dtls_peer.get_or_insert(from);
                self.dtls_output(call, key, local, from, out, now);
            }
            Err(_) => {
                sm.security.dtls_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends a session's datagrams and acts on what happened.
    fn dtls_output(
        &mut self,
        call: &mut Call,
        key: LocalPort,
        local: LocalPort,
        to: SocketAddr,
        out: Output,
        _now: Instant,
    ) {
        for d in out.datagrams {
            self.send(local, to, d);
        }
        let Some(event) = out.event else { return };
        let Some(t) = self.secure.transports.get(&key) else {
            return;
        };
        let (m, i) = (t.monologue, t.index);
        let sm = self.metrics.clone();
        match event {
            DtlsEvent::Connected(keys) => {
                sm.security.dtls_handshakes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(call = %call.id, port = %key, suite = %keys.suite, "DTLS-SRTP handshake completed");
                let line = |k| CryptoLine {
                    tag: 0,
                    suite: keys.suite,
                    key: k,
                    extra_keys: Vec::new(),
                    params: Vec::new(),
                };
                let leg = leg_mut(call, m, i);
                leg.want = Some(Negotiated {
                    rx: Some(line(keys.remote.clone())),
                    tx: Some(line(keys.local.clone())),
                });
                if let Some(d) = &mut leg.dtls {
                    d.connected = true;
                }
                if let Some(p) = leg.partner {
                    if let Err(e) = self.try_install(call, m, p, i) {
                        tracing::warn!(call = %call.id, error = %e, "installing DTLS-SRTP keys failed");
                    }
                }
            }
            DtlsEvent::Failed(why) => {
                match why {
                    crate::dtls::DtlsFailure::FingerprintMismatch => sm
                        .security
                        .dtls_fingerprint_mismatch
                        .fetch_add(1, Ordering::Relaxed),
                    crate::dtls::DtlsFailure::Timeout => {
                        sm.security.dtls_timeouts.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => sm.security.dtls_failures.fetch_add(1, Ordering::Relaxed),
                };
                tracing::warn!(call = %call.id, port = %key, reason = %why, "DTLS-SRTP handshake failed; the leg gets no media");
                if let Some(d) = &mut leg_mut(call, m, i).dtls {
                    d.failure = Some(why.to_string());
                }
            }
            DtlsEvent::Closed => {
                tracing::info!(call = %call.id, port = %key, "DTLS association closed by the peer");
            }
        }
    }

    fn send(&self, local: LocalPort, to: SocketAddr, data: Vec<u8>) {
        let r = self
            .engine
            .apply(local, Command::SendRaw { local, to, data });
        if let Err(e) = r {
            tracing::debug!(port = %local, error = %e, "slow-path send failed");
        }
    }

    /// Runs DTLS timers (retransmissions, handshake timeouts) and ICE consent.
    pub fn tick_secure(&mut self, now: Instant) {
        let keys: Vec<LocalPort> = self.secure.transports.keys().copied().collect();
        for key in keys {
            let Some(t) = self.secure.transports.get_mut(&key) else {
                continue;
            };
            let id = t.call.clone();
            let (m, i) = (t.monologue, t.index);
            let lost = t.ice.as_mut().is_some_and(|ice| ice.consent_lost(now));
            let selected = t.ice.as_ref().and_then(|ice| ice.selected());
            let out = match (t.dtls.as_mut(), t.dtls_peer) {
                (Some(s), Some(peer)) if !s.is_connected() && !s.is_over() => {
                    Some((s.tick(now), peer))
                }
                _ => None,
            };
            if !lost && out.is_none() {
                continue;
            }
            let Some(mut call) = self.calls.remove(&id) else {
                continue;
            };
            if lost {
                self.metrics
                    .security
                    .ice_consent_lost
                    .fetch_add(1, Ordering::Relaxed);
                let leg = leg_mut(&mut call, m, i);
                leg.ice_selected = selected;
                let mut leg: Leg = leg.clone();
                if selected.is_none() {
                    // Consent lost: stop sending toward the endpoint.
                    leg.remote.addr = None;
                }
                let _ = self.set_leg_peers(&leg);
            }
            if let Some((out, peer)) = out {
                self.dtls_output(&mut call, key, key, peer, out, now);
            }
            self.calls.insert(id, call);
        }
    }
}

/// Fresh ICE credentials, or the leg's own when it has them.
pub(super) fn credentials(current: &Option<Credentials>) -> Result<Credentials, CallError> {
    match current {
        Some(c) => Ok(c.clone()),
        None => Credentials::random().ok_or(CallError::Random(super::crypto::RandomError)),
    }
}
