//! The ng commands, carried out on the call registry: what srtpgate does for each request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::call::sdp::{extract, rewrite, suites_named, RewriteOptions};
use crate::call::{
    AnswerOptions, CallError, CallRegistry, DtlsPreference, OfferOptions, RemoteMedia,
};
use crate::metrics::ControlMetrics;
use crate::ng::{
    Command, Dtls, FingerprintHash, Flag, Ice, NgHandler, NgRequest, NgResponse, Replace, RtcpMux,
    Transport, TransportProtocol,
};
use crate::sdp::SessionDescription;

use super::query::{call_stats, statistics};

/// Carries out ng requests. Shared state sits behind a mutex: signalling is rare next to
/// media, and the media path never takes it.
pub struct CallControl {
    pub(crate) registry: Arc<Mutex<CallRegistry>>,
    pub(crate) metrics: Arc<ControlMetrics>,
    pub(crate) draining: Arc<AtomicBool>,
    pub(crate) started: SystemTime,
    /// Seconds a `delete` without `delete-delay` waits before freeing media.
    pub(crate) delete_delay: u64,
    pub(crate) strict_source: bool,
    /// Lawful interception of live calls, when configured.
    pub(crate) li: Option<Arc<crate::li_admin::LiCalls>>,
    /// Sealed call recordings, when `[voicemail] recording-public-key` is set.
    pub(crate) recordings: Option<super::recording::SharedRecordings>,
}

impl NgHandler for CallControl {
    fn handle(&mut self, req: &NgRequest) -> NgResponse {
        self.metrics.ng_requests.fetch_add(1, Ordering::Relaxed);
        let resp = match &req.command {
            Command::Offer => self.offer(req),
            Command::Answer => self.answer(req),
            Command::Delete => self.delete(req),
            Command::Query => self.query(req),
            Command::List => self.list(req),
            Command::Statistics => self.statistics(),
            Command::StartRecording => self.start_recording(req),
            Command::StopRecording => self.stop_recording(req),
            Command::Ping => NgResponse::pong(),
            Command::Unsupported(name) => {
                NgResponse::error(format!("Unsupported command \"{name}\""))
            }
        };
        if resp.is_error() {
            self.metrics.ng_errors.fetch_add(1, Ordering::Relaxed);
        }
        resp
    }
}

/// Options srtpgate accepts in the request but does not act on: reported in `warning`.
fn ignored_options(req: &NgRequest) -> Vec<String> {
    let mut w = Vec::new();
    if req.ice == Some(Ice::Optional) {
        w.push("ICE=optional (treated as ICE=default)".to_string());
    }
    if !req.codec.is_empty() {
        w.push("codec (no transcoding)".to_string());
    }
    if req.tos.is_some() {
        w.push("TOS".to_string());
    }
    if req.address_family.is_some() {
        w.push("address-family".to_string());
    }
    for r in &req.replace {
        if !matches!(r, Replace::Origin | Replace::SessionConnection) {
            w.push(format!("replace {r:?}"));
        }
    }
    for f in &req.flags {
        if matches!(
            f,
            Flag::MediaHandover
                | Flag::PortLatching
                | Flag::NoPortLatching
                | Flag::LoopProtect
                | Flag::OriginalSendrecv
                | Flag::GenerateMid
                | Flag::Reset
                | Flag::FullRtcpAttribute
        ) {
            w.push(format!("flag {f:?}"));
        }
    }
    let s = &req.sdes;
    if s.unencrypted_srtp || s.unencrypted_srtcp || s.unauthenticated_srtp || s.lifetime || s.nonew
    {
        w.push("SDES session parameters".to_string());
    }
    w
}

fn dtls_preference(req: &NgRequest) -> DtlsPreference {
    match req.dtls {
        Some(Dtls::Passive) => DtlsPreference::Passive,
        _ => DtlsPreference::Active,
    }
}

fn fingerprint_hash(h: FingerprintHash) -> &'static str {
    match h {
        FingerprintHash::Sha1 => "sha-1",
        FingerprintHash::Sha224 => "sha-224",
        FingerprintHash::Sha256 => "sha-256",
        FingerprintHash::Sha384 => "sha-384",
        FingerprintHash::Sha512 => "sha-512",
    }
}

fn parse_sdp(req: &NgRequest) -> Result<SessionDescription, NgResponse> {
    let text = req
        .sdp_str()
        .ok_or_else(|| NgResponse::error("No SDP body in message"))?;
    let sdp = SessionDescription::parse(text)
        .map_err(|e| NgResponse::error(format!("Failed to parse SDP: {e}")))?;
    if sdp.media.is_empty() {
        return Err(NgResponse::error("SDP has no media sections"));
    }
    Ok(sdp)
}

/// The request's SDP and what it says about each media stream (with the SIP source
/// address in place of the SDP's when the proxy asks for it).
fn sdp_media(req: &NgRequest) -> Result<(SessionDescription, Vec<RemoteMedia>), NgResponse> {
    let sdp = parse_sdp(req)?;
    let source = req
        .received_from
        .as_ref()
        .filter(|_| req.has(Flag::SipSourceAddress))
        .map(|r| r.address);
    let media = extract(&sdp, source).map_err(|e| NgResponse::error(e.to_string()))?;
    Ok((sdp, media))
}

fn required<'a>(v: &'a Option<String>, what: &str) -> Result<&'a str, NgResponse> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| NgResponse::error(format!("No {what} in message")))
}

fn finish(resp: NgResponse, warnings: Vec<String>) -> NgResponse {
    if warnings.is_empty() {
        resp
    } else {
        resp.warn(warnings.join("; "))
    }
}

impl CallControl {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallRegistry> {
        // A panic while holding the lock would be a bug; carry on with the data as it is.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call_error(&self, req: &NgRequest, e: CallError) -> NgResponse {
        match e {
            CallError::LoadLimit(_) if req.supports_load_limit => NgResponse::load_limit(None),
            CallError::LoadLimit(_) => NgResponse::error("Parallel session limit reached"),
            CallError::Engine(relay::engine::EngineError::NoPorts { .. }) => {
                NgResponse::error("Ran out of ports")
            }
            e => NgResponse::error(e.to_string()),
        }
    }

    fn interface(&self, reg: &CallRegistry, name: &Option<String>) -> Result<usize, NgResponse> {
        match name {
            None => Ok(0),
            Some(n) => reg
                .engine()
                .interface(n)
                .ok_or_else(|| NgResponse::error(format!("Unknown interface \"{n}\""))),
        }
    }

    fn rewrite_options(req: &NgRequest) -> RewriteOptions {
        RewriteOptions {
            replace_origin: req.replace.contains(&Replace::Origin),
            media_address: req.media_address,
            no_rtcp_attribute: req.has(Flag::NoRtcpAttribute),
            generate_mid: req.has(Flag::GenerateMid),
        }
    }

    fn offer(&mut self, req: &NgRequest) -> NgResponse {
        let (call_id, from_tag) = match (
            required(&req.call_id, "call-id"),
            required(&req.from_tag, "from-tag"),
        ) {
            (Ok(c), Ok(f)) => (c, f),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let (mut sdp, media) = match sdp_media(req) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let mut warnings = ignored_options(req);
        let (srtp_toward_answerer, dtls_toward_answerer) = match req.transport {
            Some(Transport::Protocol(p)) => {
                let dtls = matches!(
                    p,
                    TransportProtocol::UdpTlsRtpSavp | TransportProtocol::UdpTlsRtpSavpf
                );
                (Some(p.is_secure()), Some(dtls))
            }
            Some(Transport::Accept) | None => (None, None),
        };
        let dtls_off = req.dtls == Some(Dtls::Off);
        if dtls_off && dtls_toward_answerer == Some(true) {
            return NgResponse::error("DTLS is off but the transport-protocol is UDP/TLS");
        }
        if req.sdes.off && srtp_toward_answerer == Some(true) && dtls_toward_answerer != Some(true)
        {
            return NgResponse::error(
                "SDES is off but SDES-SRTP was requested; ask for UDP/TLS/RTP/SAVP(F) for DTLS-SRTP",
            );
        }
        let (exclude, bad_no) = suites_named(&req.sdes.no);
        let (only, bad_only) = suites_named(&req.sdes.only);
        warnings.extend(
            bad_no
                .into_iter()
                .chain(bad_only)
                .map(|s| format!("unknown SDES suite {s}")),
        );
        for m in &media {
            warnings.extend(
                m.unsupported_suites
                    .iter()
                    .map(|s| format!("crypto suite {s} not supported, ignored")),
            );
        }
        let mux =
            if req.rtcp_mux.contains(&RtcpMux::Offer) || req.rtcp_mux.contains(&RtcpMux::Require) {
                Some(true)
            } else if req.rtcp_mux.contains(&RtcpMux::Demux) {
                Some(false)
            } else {
                None
            };
        let mut reg = self.lock();
        let (offerer_iface, answerer_iface) = match (
            self.interface(&reg, &req.direction[0]),
            self.interface(&reg, &req.direction[1]),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        if self.draining.load(Ordering::Relaxed) && reg.call(call_id).is_none() {
            return NgResponse::error("srtpgate is shutting down and takes no new calls");
        }
        let opts = OfferOptions {
            srtp_toward_answerer,
            exclude_suites: exclude,
            only_suites: only,
            offerer_iface,
            answerer_iface,
            label: req.label.clone(),
            strict_source: self.strict_source || req.has(Flag::StrictSource),
            asymmetric: req.has(Flag::Asymmetric),
            mux_toward_answerer: mux,
            dtls_toward_answerer,
            dtls_off,
            dtls_preference: dtls_preference(req),
            fingerprint_hash: req
                .dtls_fingerprint
                .map(|h| fingerprint_hash(h).to_string()),
            feedback_toward_answerer: match req.transport {
                Some(Transport::Protocol(p)) => Some(p.as_str().ends_with('F')),
                _ => None,
            },
            ice_toward_answerer: match req.ice {
                Some(Ice::Remove) => Some(false),
                Some(Ice::Force) => Some(true),
                _ if req.has(Flag::RejectIce) => Some(false),
                _ => None,
            },
        };
        let locals = match reg.offer(call_id, from_tag, req.to_tag.as_deref(), &media, &opts) {
            Ok(l) => l,
            Err(e) => return self.call_error(req, e),
        };
        if let Some(call) = reg.call_mut(call_id) {
            if req.metadata.is_some() {
                call.metadata = req.metadata.clone();
            }
            if let Some(r) = req.record_call {
                call.record = r;
            }
        }
        // Taps go on the call's ports now, so its flows carry them from their first packet.
        if let Some(li) = &self.li {
            li.call_changed(&reg, call_id);
        }
        warnings.extend(self.record_call(&reg, call_id, req.record_call));
        rewrite(&mut sdp, &locals, &Self::rewrite_options(req));
        finish(NgResponse::with_sdp(sdp.to_string()), warnings)
    }

    fn answer(&mut self, req: &NgRequest) -> NgResponse {
        let ids = (
            required(&req.call_id, "call-id"),
            required(&req.from_tag, "from-tag"),
            required(&req.to_tag, "to-tag"),
        );
        let (call_id, from_tag, to_tag) = match ids {
            (Ok(c), Ok(f), Ok(t)) => (c, f, t),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return e,
        };
        let (mut sdp, media) = match sdp_media(req) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let opts = AnswerOptions {
            label: req.label.clone(),
            strict_source: self.strict_source || req.has(Flag::StrictSource),
            reject_offerer_mux: req.rtcp_mux.contains(&RtcpMux::Reject),
            dtls_preference: dtls_preference(req),
            fingerprint_hash: req
                .dtls_fingerprint
                .map(|h| fingerprint_hash(h).to_string()),
            remove_ice_toward_offerer: req.ice == Some(Ice::Remove),
        };
        let mut warnings = ignored_options(req);
        let locals = {
            let mut reg = self.lock();
            match reg.answer(call_id, from_tag, to_tag, &media, &opts) {
                Ok(l) => {
                    if let Some(li) = &self.li {
                        li.call_changed(&reg, call_id);
                    }
                    if let Some(call) = reg.call_mut(call_id) {
                        if let Some(r) = req.record_call {
                            call.record = r;
                        }
                    }
                    warnings.extend(self.record_call(&reg, call_id, req.record_call));
                    l
                }
                Err(e) => {
                    drop(reg);
                    return self.call_error(req, e);
                }
            }
        };
        rewrite(&mut sdp, &locals, &Self::rewrite_options(req));
        finish(NgResponse::with_sdp(sdp.to_string()), warnings)
    }

    fn delete(&mut self, req: &NgRequest) -> NgResponse {
        let call_id = match required(&req.call_id, "call-id") {
            Ok(c) => c,
            Err(e) => return e,
        };
        let delay = Duration::from_secs(req.delete_delay.map_or(self.delete_delay, u64::from));
        let mut warnings = Vec::new();
        if req.has(Flag::ToTag) {
            warnings.push("to-tag: the whole call is deleted".to_string());
        }
        let deleted = {
            let mut reg = self.lock();
            self.recording_ends(&reg, call_id);
            let r = reg.delete(call_id, delay);
            if let Some(li) = &self.li {
                li.call_changed(&reg, call_id);
            }
            r
        };
        match deleted {
            Ok(()) => finish(NgResponse::ok(), warnings),
            Err(CallError::UnknownCall) if !req.has(Flag::Fatal) => {
                NgResponse::ok().warn("Call-ID not found")
            }
            Err(e) => NgResponse::error(e.to_string()),
        }
    }

    fn query(&mut self, req: &NgRequest) -> NgResponse {
        let call_id = match required(&req.call_id, "call-id") {
            Ok(c) => c,
            Err(e) => return e,
        };
        let reg = self.lock();
        match reg.call(call_id) {
            Some(call) => NgResponse::query(call_stats(&reg, call)),
            None => NgResponse::error("Unknown call-id"),
        }
    }

    fn list(&mut self, req: &NgRequest) -> NgResponse {
        let limit = req.limit.unwrap_or(32) as usize;
        let reg = self.lock();
        NgResponse::list(reg.calls().take(limit).map(|c| c.id.clone()).collect())
    }

    fn statistics(&mut self) -> NgResponse {
        let reg = self.lock();
        NgResponse::statistics(statistics(&reg, &self.metrics, self.started))
    }
}
