//! What the proxy remembers about each call (by Call-ID) for its media: who offered, the
//! policies of the route, and the SDP rewriting of requests and responses.

use std::time::Instant;

use super::super::body;
use super::super::config::MediaPolicy;
use super::super::media::{MediaFailure, OfferPolicy};
use super::super::message::Message;
use super::super::Flow;
use super::Proxy;

/// The media side of one call.
#[derive(Clone, Debug)]
pub struct CallState {
    pub caller_tag: String,
    pub toward_callee: MediaPolicy,
    pub toward_caller: MediaPolicy,
    /// The initial INVITE carried no SDP: the 2xx offers and the ACK answers.
    pub delayed_offer: bool,
    /// A dialog was confirmed (2xx forwarded).
    pub established: bool,
    pub created: Instant,
    /// Added to the CSeq of requests from the caller toward the callee: a branch retried
    /// with plain RTP goes out with CSeq + 1, or the callee would take the retry for a
    /// merged request (RFC 3261 8.2.2.2) and answer 482.
    pub cseq_shift: u32,
}

/// What to offer toward a callee under `p`.
pub fn srtp_toward(p: MediaPolicy) -> Option<bool> {
    match p {
        MediaPolicy::SrtpRequired | MediaPolicy::SrtpOptional => Some(true),
        MediaPolicy::RtpOnly => Some(false),
    }
}

/// What an offering side must speak under `p`.
pub fn offerer_must(p: MediaPolicy) -> Option<bool> {
    match p {
        MediaPolicy::SrtpRequired => Some(true),
        MediaPolicy::SrtpOptional => None,
        MediaPolicy::RtpOnly => Some(false),
    }
}

fn tag_of(header: Result<super::super::header::NameAddr, super::super::ParseError>) -> String {
    header
        .ok()
        .and_then(|n| n.tag().map(str::to_string))
        .unwrap_or_default()
}

impl Proxy {
    /// Anchors the offer in an INVITE, re-INVITE or UPDATE; the body is replaced in place.
    /// `srtp` overrides what to offer toward the answerer.
    pub(super) fn media_offer(
        &mut self,
        req: &mut Message,
        flow: &Flow,
        policy: OfferPolicy,
    ) -> Result<bool, MediaFailure> {
        let Some(sdp) = body::sdp(req) else {
            return Ok(false);
        };
        let call_id = req.call_id().to_string();
        let from = tag_of(req.from());
        let to = tag_of(req.to());
        let to = (!to.is_empty()).then_some(to);
        let out = self
            .media
            .offer(
                &call_id,
                &from,
                to.as_deref(),
                &sdp,
                flow.remote.ip(),
                policy,
            )
            .inspect_err(|_| self.counters.media_failures += 1)?;
        body::replace_sdp(req, out);
        Ok(true)
    }

    /// The policy of an offer inside a dialog: toward the other side, what it negotiated.
    pub(super) fn reoffer_policy(&self, req: &Message) -> OfferPolicy {
        let call_id = req.call_id();
        let to = tag_of(req.to());
        let state = self.calls.get(call_id);
        let toward = self.media.srtp_of(call_id, &to).or_else(|| {
            state.map(|s| {
                let from_caller = tag_of(req.from()) == s.caller_tag;
                srtp_toward(if from_caller {
                    s.toward_callee
                } else {
                    s.toward_caller
                })
                .unwrap_or(true)
            })
        });
        OfferPolicy {
            srtp_toward_answerer: toward,
            offerer_must_srtp: None,
        }
    }

    /// Rewrites the SDP of a response to `req` (an answer, or the offer of a 2xx to an
    /// INVITE that had none).
    pub(super) fn media_response(
        &mut self,
        req: &Message,
        resp: &mut Message,
        flow: &Flow,
    ) -> Result<(), MediaFailure> {
        let Some(sdp) = body::sdp(resp) else {
            return Ok(());
        };
        let call_id = req.call_id().to_string();
        let from = tag_of(req.from());
        let to = tag_of(resp.to());
        let ip = flow.remote.ip();
        let out = if Self::has_sdp(req) {
            self.media.answer(&call_id, &from, &to, &sdp, ip)
        } else if req.method() == Some("INVITE") {
            // Delayed offer: the callee offers in its response, the caller answers in ACK.
            let toward_caller = self
                .calls
                .get(&call_id)
                .map_or(MediaPolicy::SrtpOptional, |s| s.toward_caller);
            let policy = OfferPolicy {
                srtp_toward_answerer: match toward_caller {
                    MediaPolicy::SrtpOptional => None,
                    p => srtp_toward(p),
                },
                offerer_must_srtp: None,
            };
            self.media
                .offer(&call_id, &to, Some(&from), &sdp, ip, policy)
        } else {
            return Ok(());
        };
        let out = out.inspect_err(|_| self.counters.media_failures += 1)?;
        body::replace_sdp(resp, out);
        Ok(())
    }

    /// The SDP in an ACK answers the offer a 2xx made (delayed offer).
    pub(super) fn media_ack(&mut self, ack: &mut Message, flow: &Flow) {
        let Some(sdp) = body::sdp(ack) else { return };
        let call_id = ack.call_id().to_string();
        let caller = tag_of(ack.from());
        let callee = tag_of(ack.to());
        match self
            .media
            .answer(&call_id, &callee, &caller, &sdp, flow.remote.ip())
        {
            Ok(out) => body::replace_sdp(ack, out),
            Err(e) => {
                self.counters.media_failures += 1;
                tracing::warn!(call = %call_id, error = %e, "SDP in ACK could not be anchored");
                // Never forward the caller's keys: strip the body.
                ack.set_body(None, Vec::new());
            }
        }
    }

    /// Applies the call's CSeq shift to a request from the caller toward the callee.
    pub(super) fn shift_cseq(&self, req: &mut Message) {
        let Some(state) = self.calls.get(req.call_id()) else {
            return;
        };
        if state.cseq_shift == 0 || tag_of(req.from()) != state.caller_tag {
            return;
        }
        if let Ok(c) = req.cseq() {
            let seq = c.seq.saturating_add(state.cseq_shift);
            req.set("CSeq", format!("{seq} {}", c.method));
        }
    }

    /// Frees a call's media and state.
    pub(super) fn end_call(&mut self, call_id: &str) {
        self.media.delete(call_id);
        self.calls.remove(call_id);
    }

    /// Identities for lawful interception and voicemail, as JSON attached to the call.
    pub(super) fn identity_json(req: &Message, auth_user: Option<&str>) -> String {
        serde_json::json!({
            "caller": {
                "from": req.get("from"),
                "p_asserted_identity": req.get("p-asserted-identity"),
                "authenticated_user": auth_user,
            },
            "callee": {
                "to": req.get("to"),
                "request_uri": req.request_uri(),
            },
        })
        .to_string()
    }
}
