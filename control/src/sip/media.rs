//! Media anchoring for the SIP edge: every SDP body the proxy forwards goes through
//! [`crate::call`] (the same registry the ng front end drives), so that addresses point at
//! the relay and each leg gets its own SDES keys. [`MediaAnchor`] is what the proxy needs;
//! [`RegistryAnchor`] implements it on the shared [`CallRegistry`].

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::call::sdp::{extract, rewrite, RewriteOptions};
use crate::call::{AnswerOptions, CallError, CallRegistry, OfferOptions};
use crate::sdp::SessionDescription;

/// Why a body could not be anchored; the text goes into a 488's Warning header and never
/// carries keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MediaFailure(pub String);

/// What the offerer's side must speak, and what to offer toward the answerer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfferPolicy {
    /// `Some(true)`: SRTP toward the answerer, `Some(false)`: plain RTP, `None`: as offered.
    pub srtp_toward_answerer: Option<bool>,
    /// `Some(true)`: the offer must be SRTP; `Some(false)`: must be plain RTP.
    pub offerer_must_srtp: Option<bool>,
}

/// The media side of the proxy.
pub trait MediaAnchor: Send {
    /// Anchors an offer from `from_tag`; returns the body to forward.
    fn offer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        sdp: &[u8],
        source: IpAddr,
        policy: OfferPolicy,
    ) -> Result<Vec<u8>, MediaFailure>;
    /// Anchors the answer from `to_tag` to the offer `from_tag` made; returns the body to
    /// forward.
    fn answer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &[u8],
        source: IpAddr,
    ) -> Result<Vec<u8>, MediaFailure>;
    /// Frees the call's media.
    fn delete(&mut self, call_id: &str);
    /// Whether the side with `tag` negotiated SRTP (for re-offers toward it).
    fn srtp_of(&self, call_id: &str, tag: &str) -> Option<bool>;
    /// Attaches identities (JSON) to the call, for lawful interception and voicemail.
    fn set_identity(&mut self, call_id: &str, identity: String);
    /// Whether the call still has media (the relay drops calls whose media went idle).
    fn exists(&self, call_id: &str) -> bool;
}

/// Run with the registry still locked right after a call's identities were set (after the
/// offer) and right after an answer installed its media, before the message is forwarded.
pub type AnswerHook = Arc<dyn Fn(&CallRegistry, &str) + Send + Sync>;

/// [`MediaAnchor`] on the daemon's shared call registry.
pub struct RegistryAnchor {
    pub registry: Arc<Mutex<CallRegistry>>,
    /// Refuse new calls (the daemon is draining).
    pub draining: Arc<AtomicBool>,
    pub strict_source: bool,
    /// Called after identities are set and after every successful answer (lawful
    /// interception attaches its taps here).
    pub after_answer: Option<AnswerHook>,
}

impl RegistryAnchor {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallRegistry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn parse(sdp: &[u8]) -> Result<SessionDescription, MediaFailure> {
    let sdp = SessionDescription::parse_bytes(sdp)
        .map_err(|e| MediaFailure(format!("SDP not understood: {e}")))?;
    if sdp.media.is_empty() {
        return Err(MediaFailure("SDP has no media".into()));
    }
    Ok(sdp)
}

fn call_failure(e: CallError) -> MediaFailure {
    match e {
        CallError::Engine(relay::engine::EngineError::NoPorts { .. }) => {
            MediaFailure("the relay ran out of media ports".into())
        }
        e => MediaFailure(e.to_string()),
    }
}

impl MediaAnchor for RegistryAnchor {
    fn offer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        sdp: &[u8],
        _source: IpAddr,
        policy: OfferPolicy,
    ) -> Result<Vec<u8>, MediaFailure> {
        let mut sdp = parse(sdp)?;
        let media = extract(&sdp, None).map_err(|e| MediaFailure(e.to_string()))?;
        if let Some(must) = policy.offerer_must_srtp {
            for m in media.iter().filter(|m| m.port != 0) {
                // DTLS-SRTP is SRTP too: its keys come from the handshake, not a=crypto.
                let dtls = m.dtls.is_some();
                if (m.srtp || dtls) != must {
                    return Err(MediaFailure(if must {
                        "SRTP (RTP/SAVP with a=crypto, or DTLS-SRTP) is required".into()
                    } else {
                        "only plain RTP (RTP/AVP) is accepted".into()
                    }));
                }
                if must && !dtls && m.crypto.is_empty() {
                    return Err(MediaFailure("no supported a=crypto suite offered".into()));
                }
            }
        }
        let mut reg = self.lock();
        if self.draining.load(Ordering::Relaxed) && reg.call(call_id).is_none() {
            return Err(MediaFailure("the relay is shutting down".into()));
        }
        let opts = OfferOptions {
            srtp_toward_answerer: policy.srtp_toward_answerer,
            // The edge's policies speak of SDES-SRTP or plain RTP toward the answerer;
            // a DTLS-SRTP offerer (WebRTC) is answered by the call layer as it is.
            dtls_toward_answerer: policy.srtp_toward_answerer.map(|_| false),
            // A DTLS offerer's SAVPF is WebRTC's profile; SIP phones that get SDES or plain
            // RTP from the edge expect RTP/SAVP or RTP/AVP (baresip rejects the others).
            feedback_toward_answerer: (policy.srtp_toward_answerer.is_some()
                && media.iter().any(|m| m.dtls.is_some()))
            .then_some(false),
            strict_source: self.strict_source,
            ..Default::default()
        };
        let locals = reg
            .offer(call_id, from_tag, to_tag, &media, &opts)
            .map_err(call_failure)?;
        drop(reg);
        rewrite(&mut sdp, &locals, &RewriteOptions::default());
        Ok(sdp.to_string().into_bytes())
    }

    fn answer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &[u8],
        _source: IpAddr,
    ) -> Result<Vec<u8>, MediaFailure> {
        let mut sdp = parse(sdp)?;
        let media = extract(&sdp, None).map_err(|e| MediaFailure(e.to_string()))?;
        let opts = AnswerOptions {
            strict_source: self.strict_source,
            ..Default::default()
        };
        let locals = {
            let mut reg = self.lock();
            let locals = reg
                .answer(call_id, from_tag, to_tag, &media, &opts)
                .map_err(call_failure)?;
            if let Some(hook) = &self.after_answer {
                hook(&reg, call_id);
            }
            locals
        };
        rewrite(&mut sdp, &locals, &RewriteOptions::default());
        Ok(sdp.to_string().into_bytes())
    }

    fn delete(&mut self, call_id: &str) {
        let _ = self.lock().delete(call_id, std::time::Duration::ZERO);
    }

    fn srtp_of(&self, call_id: &str, tag: &str) -> Option<bool> {
        let reg = self.lock();
        let m = reg.call(call_id)?.monologue(tag)?;
        m.legs.first().map(|l| l.srtp)
    }

    fn set_identity(&mut self, call_id: &str, identity: String) {
        let mut reg = self.lock();
        if let Some(c) = reg.call_mut(call_id) {
            c.metadata = Some(identity);
            if let Some(hook) = &self.after_answer {
                hook(&reg, call_id);
            }
        }
    }

    fn exists(&self, call_id: &str) -> bool {
        self.lock().call(call_id).is_some()
    }
}
