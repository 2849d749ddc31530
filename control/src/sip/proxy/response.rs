//! Responses received on our branches: matching, hop-by-hop ACK, the SRTP→RTP retry on
//! 488/415, media answers in 18x/2xx, choosing the best final response of a fork, and
//! relaying upstream.

use std::time::Instant;

use super::super::body;
use super::super::media::OfferPolicy;
use super::super::message::Message;
use super::super::transaction::{ClientState, ServerKey, LINGER, T1};
use super::super::{Flow, Transport};
use super::forward::Target;
use super::request::sanitize;
use super::Proxy;

/// Rank of a final response for choosing among branches (RFC 3261 16.7 item 6): 6xx
/// first, then the lowest class; lower is better.
fn rank(code: u16) -> (u16, u16) {
    match code {
        600..=699 => (0, code),
        503 => (5, 500),
        c => (c / 100, c),
    }
}

impl Proxy {
    pub(super) fn on_response(&mut self, mut resp: Message, flow: Flow, now: Instant) {
        let (Ok(via), Ok(cseq), Some(code)) = (resp.top_via(), resp.cseq(), resp.code()) else {
            self.counters.malformed += 1;
            return;
        };
        let Some(branch) = via.branch().map(str::to_string) else {
            return;
        };
        let ckey = format!("{branch} {}", cseq.method);
        if resp.pop_front("via").is_err() {
            return;
        }
        let Some(ct) = self.clients.get_mut(&ckey) else {
            // A 2xx retransmitted after the transaction ended goes upstream statelessly.
            if cseq.method == "INVITE" && (200..300).contains(&code) {
                self.relay_stateless(resp, &flow);
            }
            return;
        };
        let invite = ct.is_invite();
        if ct.state == ClientState::Completed {
            self.counters.retransmissions += 1;
            let (server, req, f) = (ct.server.clone(), ct.request.clone(), ct.flow.clone());
            let diverted = server.as_ref().is_some_and(|k| self.is_diverted(k));
            if invite && code >= 300 {
                self.ack_failure(&req, &resp, f);
            } else if invite && code >= 200 && diverted {
                // The callee's 2xx again: our ACK was lost; the BYE already went.
                self.abandon_callee(&resp, &flow, false);
            } else if invite && code >= 200 {
                self.relay_stateless(resp, &flow);
            }
            return;
        }
        if invite || code >= 200 {
            ct.retransmit = None;
        }
        if code < 200 {
            ct.state = ClientState::Proceeding;
            if invite {
                ct.deadline = now + self.config.invite_timeout;
            }
        } else {
            ct.state = ClientState::Completed;
            ct.expires = Some(now + LINGER);
        }
        let cancel_now = ct.cancel_pending && code < 200;
        let (server, req, ct_flow) = (ct.server.clone(), ct.request.clone(), ct.flow.clone());
        if invite && code >= 300 {
            self.ack_failure(&req, &resp, ct_flow);
        }
        if cancel_now {
            self.cancel_branch(&branch);
        }
        let Some(skey) = server else { return };
        if code == 100 {
            return;
        }
        if invite && code < 300 && self.is_diverted(&skey) {
            // The call went to voicemail: provisional responses are not relayed, a 2xx
            // that raced the CANCEL is acknowledged and ended at once (RFC 3261 15).
            if code >= 200 {
                self.counters.late_answers += 1;
                tracing::info!(call = %resp.call_id(), "callee answered after the call went to voicemail; ending its dialog");
                self.abandon_callee(&resp, &flow, true);
            }
            return;
        }
        if code >= 300 {
            return self.branch_failed(&skey, &branch, resp, now);
        }
        self.relay_up(&skey, resp, &flow, now);
        if code >= 200 && invite {
            // The other branches of a fork lose.
            let others: Vec<String> = self
                .servers
                .get(&skey)
                .map(|s| {
                    s.branches
                        .iter()
                        .filter(|b| **b != branch)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for b in others {
                self.cancel_branch(&b);
            }
        }
    }

    /// A 2xx (or provisional) response forwarded upstream, its SDP anchored.
    fn relay_up(&mut self, skey: &ServerKey, mut resp: Message, flow: &Flow, now: Instant) {
        let Some(st) = self.servers.get(skey) else {
            return;
        };
        let req = st.request.clone();
        let code = resp.code().unwrap_or(500);
        if let Err(e) = self.media_response(&req, &mut resp, flow) {
            tracing::warn!(call = %req.call_id(), error = %e, "SDP in a response could not be anchored");
            if code < 200 {
                // Drop the early SDP rather than pass keys through.
                resp.set_body(None, Vec::new());
            } else {
                if (200..300).contains(&code) && req.method() == Some("INVITE") {
                    self.abandon_callee(&resp, flow, true);
                }
                let tag = self.random_hex(6);
                resp = req.response(
                    500,
                    &sanitize(&format!("Server Internal Error (media: {e})")),
                    Some(&tag),
                );
            }
        }
        // Upstream, a response carries the CSeq of the request as received.
        if let Some(c) = req.get("cseq") {
            resp.set("CSeq", c);
        }
        let final_code = resp.code().unwrap_or(500);
        if (200..300).contains(&final_code) && req.method() == Some("INVITE") {
            if let Some(s) = self.calls.get_mut(req.call_id()) {
                s.established = true;
            }
        }
        let bytes = resp.to_bytes();
        let Some(st) = self.servers.get_mut(skey) else {
            return;
        };
        st.last_response = Some(bytes.clone());
        if final_code >= 200 {
            st.final_code = Some(final_code);
            st.expires = Some(now + LINGER);
            if final_code >= 300 && st.is_invite() && st.reply_to.transport == Transport::Udp {
                st.retransmit = Some((now + T1, T1));
            }
        }
        let to = st.reply_to.clone();
        self.send(to, bytes);
        if final_code >= 300 {
            self.after_failure(&req);
        }
    }

    /// A callee's 2xx that cannot be relayed (SDP the relay cannot take, or the call went
    /// to voicemail meanwhile): its dialog is confirmed and closed at once (ACK, then BYE
    /// unless `bye` is false because it already went).
    fn abandon_callee(&mut self, resp: &Message, flow: &Flow, bye: bool) {
        let target = resp
            .get("contact")
            .and_then(|c| super::super::header::NameAddr::parse(c).ok())
            .map(|c| c.uri.to_string());
        let (Some(target), Ok(cseq)) = (target, resp.cseq()) else {
            return;
        };
        let requests = [("ACK", cseq.seq), ("BYE", cseq.seq.saturating_add(1))];
        for (method, seq) in requests.into_iter().take(if bye { 2 } else { 1 }) {
            let mut m = Message {
                start: super::super::StartLine::Request {
                    method: method.into(),
                    uri: target.clone(),
                },
                headers: Vec::new(),
                body: Vec::new(),
            };
            for name in ["From", "To", "Call-ID"] {
                if let Some(v) = resp.get(name) {
                    m.set(name, v);
                }
            }
            m.set("CSeq", format!("{seq} {method}"));
            m.set("Max-Forwards", "70");
            let base = m.clone();
            let Some((host, port)) = self.local(flow.transport) else {
                return;
            };
            let branch = format!(
                "{}.{}",
                super::request::branch_prefix(&base),
                self.random_hex(8)
            );
            m.push_front(
                "Via",
                format!(
                    "SIP/2.0/{} {host}:{port};branch={branch};rport",
                    flow.transport.via_name()
                ),
            );
            self.send(flow.clone(), m.to_bytes());
        }
    }

    /// Media goes when an initial INVITE fails (a failed re-INVITE keeps the call).
    fn after_failure(&mut self, req: &Message) {
        let initial = req.to().ok().is_some_and(|t| t.tag().is_none());
        if initial && req.method() == Some("INVITE") {
            let id = req.call_id().to_string();
            let established = self.calls.get(&id).is_some_and(|c| c.established);
            if !established {
                self.end_call(&id);
            }
        }
    }

    /// A 2xx for which no transaction remains: relayed by its Via (RFC 3261 16.7 item 10).
    fn relay_stateless(&mut self, mut resp: Message, flow: &Flow) {
        let Ok(via) = resp.top_via() else { return };
        let server = self
            .servers
            .iter()
            .find(|(k, _)| k.branch == via.branch().unwrap_or("") && k.method == "INVITE")
            .map(|(_, s)| (s.request.clone(), s.reply_to.clone()));
        let Some((req, to)) = server else { return };
        if self.media_response(&req, &mut resp, flow).is_err() {
            return;
        }
        if let Some(c) = req.get("cseq") {
            resp.set("CSeq", c);
        }
        self.send(to, resp.to_bytes());
    }

    /// A branch ended with a failure: retry it with plain RTP on 488/415 when allowed,
    /// else remember the response and answer upstream once every branch is done.
    pub(super) fn branch_failed(
        &mut self,
        skey: &ServerKey,
        branch: &str,
        resp: Message,
        now: Instant,
    ) {
        let code = resp.code().unwrap_or(500);
        let ckey = format!("{branch} INVITE");
        let retry = self
            .clients
            .get(&ckey)
            .is_some_and(|c| c.may_retry_plain && !c.retried_plain)
            && matches!(code, 488 | 415)
            && self
                .servers
                .get(skey)
                .is_some_and(|s| !s.canceled && s.final_code.is_none());
        if retry && self.retry_plain(skey, branch, now) {
            return;
        }
        let Some(st) = self.servers.get_mut(skey) else {
            return;
        };
        let better = st
            .best
            .as_ref()
            .is_none_or(|b| rank(code) < rank(b.code().unwrap_or(500)));
        if better {
            st.best = Some(resp);
        }
        let all_done = st.branches.iter().all(|b| {
            let m = st.request.method().unwrap_or("");
            self.clients
                .get(&format!("{b} {m}"))
                .is_none_or(|c| c.state == ClientState::Completed)
        });
        if !all_done || st.final_code.is_some() {
            return;
        }
        if !st.canceled {
            let best_code = st.best.as_ref().and_then(Message::code).unwrap_or(408);
            if self.redirect_on_failure(skey, best_code, now) {
                return;
            }
        }
        let Some(st) = self.servers.get_mut(skey) else {
            return;
        };
        let req = st.request.clone();
        let best = if st.canceled {
            req.response(487, "Request Terminated", Some("cancelled"))
        } else {
            st.best
                .take()
                .unwrap_or_else(|| req.response(408, "Request Timeout", Some("timeout")))
        };
        let flow = st.reply_to.clone();
        self.relay_final_failure(skey, best, &flow, now);
    }

    fn relay_final_failure(
        &mut self,
        skey: &ServerKey,
        mut resp: Message,
        flow: &Flow,
        now: Instant,
    ) {
        // Bodies of failure responses are not relayed (no SDP passes unanchored).
        if body::sdp(&resp).is_some() {
            resp.set_body(None, Vec::new());
        }
        let code = resp.code().unwrap_or(500);
        if code >= 400 && code != 487 {
            tracing::debug!(code, "final failure relayed");
        }
        self.relay_up(skey, resp, flow, now);
    }

    /// Re-sends the INVITE of a branch with a plain RTP offer (once).
    fn retry_plain(&mut self, skey: &ServerKey, branch: &str, now: Instant) -> bool {
        let Some(old) = self.clients.get(&format!("{branch} INVITE")) else {
            return false;
        };
        let target_uri = old.request.request_uri().map(str::to_string);
        let flow = old.flow.clone();
        let Some(st) = self.servers.get(skey) else {
            return false;
        };
        let mut fwd = st.request.clone();
        let in_flow = st.reply_to.clone();
        let call_id = fwd.call_id().to_string();
        if let Some(state) = self.calls.get_mut(&call_id) {
            state.cseq_shift += 1;
        }
        self.shift_cseq(&mut fwd);
        let policy = OfferPolicy {
            srtp_toward_answerer: Some(false),
            offerer_must_srtp: None,
        };
        if self.media_offer(&mut fwd, &in_flow, policy).is_err() {
            return false;
        }
        self.counters.plain_retries += 1;
        tracing::info!(call = %fwd.call_id(), "callee refused SRTP; retrying the branch with RTP/AVP");
        let target = Target {
            uri: target_uri,
            flow,
        };
        let Some(new) = self.forward_branch(skey, &fwd, target, &in_flow, true, false, now) else {
            return false;
        };
        if let Some(c) = self.clients.get_mut(&format!("{new} INVITE")) {
            c.retried_plain = true;
        }
        if let Some(st) = self.servers.get_mut(skey) {
            st.branches.retain(|b| b != branch);
        }
        true
    }
}
