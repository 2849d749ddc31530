//! Offer/answer against the engine: allocating ports, choosing keys, installing flows, and
//! deleting calls. Sans-SDP: callers hand in [`RemoteMedia`] parsed from SDP and get back the
//! [`LocalMedia`] to write into the SDP they forward.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use relay::engine::{Engine, EngineError, EngineEvent, LocalPort, PortShape};
use relay::srtp::Suite;

use super::crypto::{offer_lines, suites_to_offer, RandomError};
use super::install::{leg_mut, leg_ref};
use super::model::{
    Call, Leg, LegDtls, LegPorts, LocalDtls, LocalIce, LocalMedia, Monologue, RemoteMedia,
};
use super::secure::{credentials, SecureState};
use crate::ice::Credentials;
use crate::metrics::ControlMetrics;
use crate::sdp::{Candidate, Setup};

/// Why an offer, answer or delete failed. Messages go to the proxy as `error-reason`; they
/// never carry keys.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("Unknown call-id")]
    UnknownCall,
    #[error("Unknown from-tag")]
    UnknownTag,
    #[error("SDP has no media")]
    NoMedia,
    #[error("load limit: {0} calls")]
    LoadLimit(usize),
    #[error("answer for media stream {0} does not match the offer")]
    AnswerMismatch(usize),
    #[error("answer accepted crypto tag {tag} which was not offered")]
    UnknownCryptoTag { tag: u32 },
    #[error("SRTP requested but no usable crypto suite was offered")]
    NoCryptoSuite,
    #[error("no media interface {0}")]
    UnknownInterface(usize),
    #[error("media engine: {0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Random(#[from] RandomError),
    #[error("invalid SRTP parameters: {0}")]
    Srtp(#[from] relay::srtp::Error),
    #[error("DTLS: {0}")]
    Dtls(String),
    #[error("media stream {0} offers only DTLS-SRTP, and DTLS is off")]
    DtlsOff(usize),
}

/// The `a=setup` role srtpgate prefers (ng `DTLS=active/passive`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DtlsPreference {
    /// Take the client role when the peer leaves the choice (the default).
    #[default]
    Active,
    Passive,
}

/// How the relay treats the side an offer goes to.
#[derive(Clone, Debug, Default)]
pub struct OfferOptions {
    /// Force SRTP (`Some(true)`) or plain RTP (`Some(false)`) toward the answerer; `None`
    /// keeps the offerer's transport.
    pub srtp_toward_answerer: Option<bool>,
    /// Suites never to offer (`SDES-no-…`).
    pub exclude_suites: Vec<Suite>,
    /// Offer only these (`SDES-only-…`); empty for no restriction.
    pub only_suites: Vec<Suite>,
    /// Interface index for ports facing the offerer and the answerer.
    pub offerer_iface: usize,
    pub answerer_iface: usize,
    pub label: Option<String>,
    pub strict_source: bool,
    /// Never learn endpoint addresses from packets (asymmetric RTP).
    pub asymmetric: bool,
    /// Offer rtcp-mux toward the answerer (`Some(true)`), withhold it (`Some(false)`), or
    /// pass on what the offerer said (`None`).
    pub mux_toward_answerer: Option<bool>,
    /// DTLS-SRTP toward the answerer (`Some(true)`), SDES or plain (`Some(false)`), or
    /// whatever the offerer uses (`None`).
    pub dtls_toward_answerer: Option<bool>,
    /// Neither accept nor offer DTLS-SRTP (`DTLS=off`).
    pub dtls_off: bool,
    pub dtls_preference: DtlsPreference,
    /// The hash of the fingerprint written (`DTLS-fingerprint`); `None`: the configured one.
    pub fingerprint_hash: Option<String>,
    /// ICE-lite toward the answerer (`Some(true)`: `ICE=force`), none (`Some(false)`:
    /// `ICE=remove`), or when the offerer does ICE (`None`).
    pub ice_toward_answerer: Option<bool>,
    /// An RTCP feedback profile toward the answerer (from `transport-protocol`); `None`:
    /// as offered, and always toward ICE endpoints.
    pub feedback_toward_answerer: Option<bool>,
}

/// Options of an answer.
#[derive(Clone, Debug, Default)]
pub struct AnswerOptions {
    pub label: Option<String>,
    pub strict_source: bool,
    /// Answer the offerer without rtcp-mux even when it offered it.
    pub reject_offerer_mux: bool,
    pub dtls_preference: DtlsPreference,
    pub fingerprint_hash: Option<String>,
    /// No ICE toward the offerer even when it offered ICE (`ICE=remove`).
    pub remove_ice_toward_offerer: bool,
}

/// All calls, and which call each local port belongs to.
pub struct CallRegistry {
    pub(super) engine: Arc<Engine>,
    pub(super) metrics: Arc<ControlMetrics>,
    pub(super) calls: HashMap<String, Call>,
    port_owner: HashMap<LocalPort, String>,
    max_calls: usize,
    pub(super) secure: SecureState,
}

impl CallRegistry {
    pub fn new(engine: Arc<Engine>, metrics: Arc<ControlMetrics>, max_calls: usize) -> Self {
        CallRegistry {
            engine,
            metrics,
            calls: HashMap::new(),
            port_owner: HashMap::new(),
            max_calls,
            secure: SecureState::default(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A handle on the engine for threads that outlive a lock on the registry.
    pub fn engine_handle(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    pub fn call(&self, id: &str) -> Option<&Call> {
        self.calls.get(id)
    }

    pub fn call_mut(&mut self, id: &str) -> Option<&mut Call> {
        self.calls.get_mut(id)
    }

    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.values()
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Handles an offer from `from_tag` (to `to_tag` when known, e.g. a re-INVITE). On error,
    /// a call this offer created is removed again with everything it allocated.
    pub fn offer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        media: &[RemoteMedia],
        opts: &OfferOptions,
    ) -> Result<Vec<LocalMedia>, CallError> {
        if media.is_empty() {
            return Err(CallError::NoMedia);
        }
        let created = !self.calls.contains_key(call_id);
        if created && self.calls.len() >= self.max_calls {
            self.metrics.load_limit.fetch_add(1, Ordering::Relaxed);
            return Err(CallError::LoadLimit(self.max_calls));
        }
        let mut call = self
            .calls
            .remove(call_id)
            .unwrap_or_else(|| Call::new(call_id));
        let before: Vec<LocalPort> = call.ports();
        let result = self.offer_in(&mut call, from_tag, to_tag.unwrap_or(""), media, opts);
        self.track_ports(&call, &before);
        match result {
            Ok(out) => {
                call.last_signal = SystemTime::now();
                if created {
                    self.metrics.calls_created.fetch_add(1, Ordering::Relaxed);
                }
                self.calls.insert(call_id.to_string(), call);
                self.metrics
                    .calls_active
                    .store(self.calls.len() as u64, Ordering::Relaxed);
                Ok(out)
            }
            Err(e) => {
                if created {
                    self.free(&call);
                } else {
                    self.calls.insert(call_id.to_string(), call);
                }
                Err(e)
            }
        }
    }

    fn offer_in(
        &mut self,
        call: &mut Call,
        from_tag: &str,
        to_tag: &str,
        media: &[RemoteMedia],
        opts: &OfferOptions,
    ) -> Result<Vec<LocalMedia>, CallError> {
        let x = ensure_monologue(call, from_tag);
        let y = ensure_monologue(call, to_tag);
        if opts.label.is_some() {
            call.monologues[x].label = opts.label.clone();
        }
        let mut out = Vec::with_capacity(media.len());
        for (i, remote) in media.iter().enumerate() {
            self.ensure_leg(call, x, i, opts.offerer_iface)?;
            let y_ports = self.ensure_leg(call, y, i, opts.answerer_iface)?;
            // DTLS-SRTP from the offerer when it offers no SDES keys to use instead.
            let x_dtls = match &remote.dtls {
                Some(_) if !remote.crypto.is_empty() => false,
                Some(_) if opts.dtls_off && remote.port != 0 => return Err(CallError::DtlsOff(i)),
                Some(_) => !opts.dtls_off,
                None => false,
            };
            // The offerer's side: addresses and keys as offered.
            let xl = leg_mut(call, x, i);
            xl.remote = remote.clone();
            xl.srtp = remote.srtp;
            xl.latch = !opts.asymmetric;
            xl.strict = opts.strict_source;
            xl.dtls = match (x_dtls, xl.dtls.take()) {
                (false, _) => None,
                (true, Some(d))
                    if Some(&d.remote_fingerprints)
                        == remote.dtls.as_ref().map(|r| &r.fingerprints) =>
                {
                    Some(d)
                }
                (true, _) => Some(LegDtls {
                    remote_fingerprints: remote.dtls.clone().unwrap_or_default().fingerprints,
                    ..Default::default()
                }),
            };
            xl.ice = match remote.ice {
                Some(_) => Some(credentials(&xl.ice)?),
                None => None,
            };
            // Toward the answerer: the same transport unless told otherwise.
            let dtls_y = opts.dtls_toward_answerer.unwrap_or(x_dtls) && !opts.dtls_off;
            let srtp_y = dtls_y || opts.srtp_toward_answerer.unwrap_or(remote.srtp);
            let ice_y = opts.ice_toward_answerer.unwrap_or(remote.ice.is_some());
            let setup_y = match opts.dtls_preference {
                DtlsPreference::Passive => Setup::Passive,
                DtlsPreference::Active => Setup::ActPass,
            };
            let fingerprint = if dtls_y {
                Some(self.our_fingerprint(opts.fingerprint_hash.as_deref())?)
            } else {
                None
            };
            let yl = leg_mut(call, y, i);
            yl.srtp = srtp_y;
            yl.latch = !opts.asymmetric;
            yl.strict = opts.strict_source;
            yl.dtls = match (dtls_y, yl.dtls.take()) {
                (false, _) => None,
                (true, Some(d)) => Some(LegDtls {
                    setup: Some(setup_y),
                    ..d
                }),
                (true, None) => Some(LegDtls {
                    setup: Some(setup_y),
                    ..Default::default()
                }),
            };
            yl.ice = if ice_y {
                Some(credentials(&yl.ice)?)
            } else {
                None
            };
            let offered = if remote.srtp {
                remote.suites()
            } else {
                Vec::new()
            };
            let suites = suites_to_offer(&offered, &opts.exclude_suites, &opts.only_suites);
            if srtp_y && !dtls_y {
                if suites.is_empty() {
                    return Err(CallError::NoCryptoSuite);
                }
                let same: Vec<Suite> = yl.local_crypto.iter().map(|c| c.suite).collect();
                // Keys stay the same across re-offers unless the suites change.
                if same != suites {
                    yl.local_crypto = offer_lines(&suites)?;
                }
            } else {
                yl.local_crypto.clear();
            }
            let rejected = remote.port == 0;
            // ICE endpoints (WebRTC) need rtcp-mux.
            let mux = ice_y || opts.mux_toward_answerer.unwrap_or(remote.rtcp_mux);
            let addr = self.advertised(opts.answerer_iface)?;
            let yl = leg_ref(call, y, i);
            out.push(LocalMedia {
                addr,
                port: if rejected { 0 } else { y_ports.rtp.port },
                rtcp_port: y_ports.rtcp.port,
                rtcp_mux: mux,
                srtp: srtp_y,
                crypto: yl.local_crypto.clone(),
                rejected,
                dtls: fingerprint.map(|fingerprint| LocalDtls {
                    fingerprint,
                    setup: setup_y,
                }),
                ice: yl.ice.as_ref().map(|c| local_ice(c, addr, y_ports, mux)),
                feedback: opts.feedback_toward_answerer.or(ice_y.then_some(true)),
            });
            // The answerer may check connectivity (and start DTLS) before its answer
            // reaches srtpgate: its ICE agent exists from now on.
            if !rejected {
                self.ensure_transport(call, y, i)?;
            }
            // A re-offer may move the offerer: redirect media toward it at once.
            let xl = leg_ref(call, x, i);
            if xl.negotiated.is_some() {
                let xl = xl.clone();
                self.set_leg_peers(&xl)?;
            }
        }
        Ok(out)
    }

    /// Handles the answer from `to_tag` to the offer from `from_tag`; installs the flows.
    pub fn answer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        media: &[RemoteMedia],
        opts: &AnswerOptions,
    ) -> Result<Vec<LocalMedia>, CallError> {
        if media.is_empty() {
            return Err(CallError::NoMedia);
        }
        let mut call = self.calls.remove(call_id).ok_or(CallError::UnknownCall)?;
        let result = self.answer_in(&mut call, from_tag, to_tag, media, opts);
        call.last_signal = SystemTime::now();
        self.calls.insert(call_id.to_string(), call);
        result
    }

    /// Allocates the ports of leg `i` of monologue `m` if it has none yet.
    fn ensure_leg(
        &mut self,
        call: &mut Call,
        m: usize,
        i: usize,
        iface: usize,
    ) -> Result<LegPorts, CallError> {
        if let Some(l) = call.monologues[m].leg(i) {
            return Ok(l.ports);
        }
        let a = self
            .engine
            .allocate(iface, call.worker, PortShape::Pair, 1)?;
        call.worker = Some(a.worker);
        let ports = LegPorts {
            rtp: a.ports[0],
            rtcp: a.ports[1],
        };
        call.monologues[m].legs.push(Leg {
            index: i,
            ports,
            remote: RemoteMedia::default(),
            local_crypto: Vec::new(),
            srtp: false,
            negotiated: None,
            mux: false,
            latch: true,
            strict: false,
            dtls: None,
            ice: None,
            partner: None,
            want: None,
            ice_selected: None,
        });
        Ok(ports)
    }

    fn track_ports(&mut self, call: &Call, before: &[LocalPort]) {
        for p in call.ports() {
            if !before.contains(&p) {
                self.port_owner.insert(p, call.id.clone());
            }
        }
    }

    /// Deletes a call now, or after `delay`. With `to_tag`/`from_tag` naming one branch of
    /// a forked call that still has others, only that branch goes.
    pub fn delete(&mut self, call_id: &str, delay: Duration) -> Result<(), CallError> {
        let call = self.calls.get_mut(call_id).ok_or(CallError::UnknownCall)?;
        if !delay.is_zero() {
            call.delete_at = Some(Instant::now() + delay);
            return Ok(());
        }
        let call = self.calls.remove(call_id).ok_or(CallError::UnknownCall)?;
        self.free(&call);
        self.metrics.calls_deleted.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .calls_active
            .store(self.calls.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn free(&mut self, call: &Call) {
        for m in &call.monologues {
            for l in &m.legs {
                self.drop_transport(l.ports.rtp);
            }
        }
        for p in call.ports() {
            self.port_owner.remove(&p);
            if let Err(e) = self.engine.release(p) {
                tracing::warn!(port = %p, error = %e, "releasing a media port failed");
            }
        }
    }

    /// Runs timers and engine events: delayed deletes, and calls whose every flow went
    /// idle. Returns the ids of calls removed.
    pub fn tick(&mut self, events: &[EngineEvent]) -> Vec<String> {
        let now = Instant::now();
        let mut gone: Vec<String> = self
            .calls
            .values()
            .filter(|c| c.delete_at.is_some_and(|t| t <= now))
            .map(|c| c.id.clone())
            .collect();
        for e in events {
            if let EngineEvent::Idle { local } = e {
                if let Some(id) = self.port_owner.get(local) {
                    if !gone.contains(id) && self.all_idle(id) {
                        self.metrics.calls_timed_out.fetch_add(1, Ordering::Relaxed);
                        gone.push(id.clone());
                    }
                }
            }
        }
        for id in &gone {
            let _ = self.delete(id, Duration::ZERO);
        }
        gone
    }

    /// Whether every installed flow of the call has seen no packet for the idle timeout.
    fn all_idle(&self, id: &str) -> bool {
        let Some(call) = self.calls.get(id) else {
            return false;
        };
        let idle = self.engine.config().idle_timeout;
        call.ports()
            .into_iter()
            .all(|p| match self.engine.query(p) {
                Ok((c, _)) => Duration::from_millis(c.idle_ms) >= idle,
                Err(_) => true,
            })
    }
}

fn ensure_monologue(call: &mut Call, tag: &str) -> usize {
    match call.monologue_index(tag) {
        Some(i) => i,
        None => {
            call.monologues.push(Monologue::new(tag));
            call.monologues.len() - 1
        }
    }
}

/// The ICE-lite attributes toward an endpoint: credentials and a host candidate per
/// component (only RTP with rtcp-mux).
pub(super) fn local_ice(
    c: &Credentials,
    addr: std::net::IpAddr,
    ports: LegPorts,
    mux: bool,
) -> LocalIce {
    // RFC 8445 §5.1.2.1 with type preference 126 (host) and local preference 65535.
    let priority = |component: u32| (126 << 24) | (65535 << 8) | (256 - component);
    let mut candidates = vec![Candidate::host("1", 1, priority(1), addr, ports.rtp.port)];
    if !mux {
        candidates.push(Candidate::host("1", 2, priority(2), addr, ports.rtcp.port));
    }
    LocalIce {
        credentials: c.clone(),
        candidates,
    }
}
