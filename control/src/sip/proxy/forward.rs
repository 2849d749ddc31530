//! Forwarding requests: the targets of a new call (registered contacts, a route's next hop,
//! the outbound proxy), branches with their own Via and client transaction, Record-Route,
//! in-dialog requests, hop-by-hop ACK and CANCEL.

use std::time::Instant;

use super::super::body;
use super::super::config::MediaPolicy;
use super::super::header::NameAddr;
use super::super::media::OfferPolicy;
use super::super::message::{Message, StartLine};
use super::super::registrar::aor_key;
use super::super::transaction::{ClientState, ClientTxn, ServerKey, ServerTxn, T1, TIMEOUT};
use super::super::uri::Uri;
use super::super::{Flow, Transport};
use super::calls::{offerer_must, srtp_toward, CallState};
use super::request::branch_prefix;
use super::Proxy;

/// One place a request is forwarded to.
pub(super) struct Target {
    /// New Request-URI (a registered contact), or `None` to keep it.
    pub uri: Option<String>,
    pub flow: Flow,
}

impl Proxy {
    /// A new call or out-of-dialog request: find targets, anchor the offer, fork.
    pub(super) fn route_initial(
        &mut self,
        req: Message,
        flow: Flow,
        reply_to: Flow,
        ruri: Uri,
        auth_user: Option<String>,
        now: Instant,
    ) {
        let user = aor_key(&ruri).unwrap_or_default();
        let rule = self
            .config
            .routes
            .iter()
            .find(|r| user.starts_with(&r.prefix.to_ascii_lowercase()))
            .cloned();
        let (toward_callee, toward_caller) = match &rule {
            Some(r) => (r.toward_callee, r.toward_caller),
            None => (self.config.toward_callee, self.config.toward_caller),
        };
        let mut targets: Vec<Target> = Vec::new();
        let local_user = rule.as_ref().and_then(|r| r.next_hop.as_ref()).is_none();
        if let Some(hop) = rule.as_ref().and_then(|r| r.next_hop.clone()) {
            targets.push(Target {
                uri: None,
                flow: Self::hop_flow(&hop),
            });
        } else {
            for b in self.registrar.lookup(&user, now) {
                targets.push(Target {
                    uri: Some(b.uri_text.clone()),
                    flow: b.flow.clone(),
                });
            }
            if targets.is_empty()
                && self.redirect_unreachable(&req, &reply_to, &user, auth_user.as_deref())
            {
                return;
            }
            if targets.is_empty() {
                if let Some(hop) = self.config.outbound.clone() {
                    targets.push(Target {
                        uri: None,
                        flow: Self::hop_flow(&hop),
                    });
                }
            }
        }
        if targets.is_empty() {
            return self.reply_code(&req, &reply_to, 404, "Not Found");
        }
        let Some(key) = ServerKey::of(&req) else {
            return self.reply_code(&req, &reply_to, 400, "Bad Request (Via branch)");
        };
        let invite = req.method() == Some("INVITE");
        let mut fwd = req.clone();
        let mut may_retry = false;
        if invite {
            let call_id = req.call_id().to_string();
            let policy = OfferPolicy {
                srtp_toward_answerer: srtp_toward(toward_callee),
                offerer_must_srtp: offerer_must(toward_caller),
            };
            match self.media_offer(&mut fwd, &flow, policy) {
                Ok(anchored) => {
                    if anchored {
                        self.counters.calls_anchored += 1;
                        let id = Self::identity_json(&req, auth_user.as_deref());
                        self.media.set_identity(&call_id, id);
                    }
                    may_retry = anchored && toward_callee == MediaPolicy::SrtpOptional;
                }
                Err(e) => {
                    tracing::info!(call = %call_id, reason = %e, "offer refused");
                    let tag = self.random_hex(6);
                    let mut r = req.response(488, "Not Acceptable Here", Some(&tag));
                    r.set(
                        "Warning",
                        format!("305 srtpgate \"{}\"", e.0.replace('"', "'")),
                    );
                    return self.reply(&req, &reply_to, r);
                }
            }
            let caller_tag = req
                .from()
                .ok()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default();
            self.calls.insert(
                call_id,
                CallState {
                    caller_tag,
                    toward_callee,
                    toward_caller,
                    delayed_offer: !Self::has_sdp(&req),
                    established: false,
                    created: now,
                    cseq_shift: 0,
                },
            );
        }
        let mut st = ServerTxn::new(req.clone(), reply_to.clone());
        if invite {
            let trying = req.response(100, "Trying", None).to_bytes();
            st.last_response = Some(trying.clone());
            self.send(reply_to, trying);
        }
        self.servers.insert(key.clone(), st);
        if invite && local_user {
            self.plan_redirect(&key, &req, &user, auth_user.as_deref(), now);
        }
        for t in targets {
            self.forward_branch(&key, &fwd, t, &flow, true, may_retry, now);
        }
    }

    /// Forwards `base` on a new branch of server transaction `key`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_branch(
        &mut self,
        key: &ServerKey,
        base: &Message,
        target: Target,
        in_flow: &Flow,
        record_route: bool,
        may_retry_plain: bool,
        now: Instant,
    ) -> Option<String> {
        let mut m = base.clone();
        if let (Some(uri), StartLine::Request { uri: ruri, .. }) = (&target.uri, &mut m.start) {
            *ruri = uri.clone();
        }
        if record_route && m.method() == Some("INVITE") {
            self.add_record_route(&mut m, in_flow.transport, target.flow.transport);
        }
        let Some(branch) = self.push_via(&mut m, base, target.flow.transport) else {
            tracing::warn!(transport = ?target.flow.transport, "no listener for the target's transport");
            return None;
        };
        let bytes = m.to_bytes();
        self.send(target.flow.clone(), bytes.clone());
        let method = m.method().unwrap_or("").to_string();
        let udp = target.flow.transport == Transport::Udp;
        self.clients.insert(
            format!("{branch} {method}"),
            ClientTxn {
                server: Some(key.clone()),
                request: m,
                bytes,
                flow: target.flow,
                state: ClientState::Calling,
                retransmit: udp.then_some((now + T1, T1)),
                deadline: now + TIMEOUT,
                cancel_pending: false,
                retried_plain: false,
                may_retry_plain,
                expires: None,
            },
        );
        if let Some(st) = self.servers.get_mut(key) {
            st.branches.push(branch.clone());
        }
        Some(branch)
    }

    /// Adds our Via (new branch) and decrements Max-Forwards; returns the branch.
    fn push_via(
        &mut self,
        m: &mut Message,
        base: &Message,
        transport: Transport,
    ) -> Option<String> {
        let (host, port) = self.local(transport)?;
        let branch = format!("{}.{}", branch_prefix(base), self.random_hex(8));
        let mf = m.max_forwards().ok().flatten().unwrap_or(71);
        m.set("Max-Forwards", mf.saturating_sub(1).to_string());
        m.push_front(
            "Via",
            format!(
                "SIP/2.0/{} {host}:{port};branch={branch};rport",
                transport.via_name()
            ),
        );
        Some(branch)
    }

    fn record_route_uri(&self, transport: Transport) -> Option<String> {
        let (host, port) = self.local(transport)?;
        Some(match transport {
            Transport::Udp => format!("<sip:{host}:{port};lr>"),
            t => format!("<sip:{host}:{port};transport={};lr>", t.param()),
        })
    }

    /// Record-Route so in-dialog requests come through here; two entries when the two
    /// sides use different transports (RFC 3261 16.6 item 4, "double record-routing").
    fn add_record_route(&self, m: &mut Message, inbound: Transport, outbound: Transport) {
        if let Some(rr) = self.record_route_uri(inbound) {
            m.push_front("Record-Route", rr);
        }
        if inbound != outbound {
            if let Some(rr) = self.record_route_uri(outbound) {
                m.push_front("Record-Route", rr);
            }
        }
    }

    /// In-dialog requests (BYE, re-INVITE, UPDATE, PRACK, INFO, …) and ACKs for 2xx.
    /// `reply_to` is `None` for ACK (no response, no transaction).
    pub(super) fn forward_in_dialog(
        &mut self,
        mut req: Message,
        flow: Flow,
        reply_to: Option<Flow>,
        now: Instant,
    ) {
        // Only dialogs this proxy set up, or requests from a registered phone, are relayed:
        // anything else would make srtpgate an open relay for forged in-dialog requests.
        let known = self.calls.contains_key(req.call_id())
            || self.registrar.is_registered_flow(&flow, now)
            || (self.config.users.is_empty() && flow.remote.ip().is_loopback());
        if !known {
            if let Some(to) = reply_to {
                self.reply_code(&req, &to, 481, "Call/Transaction Does Not Exist");
            }
            return;
        }
        let Some(dest) = self.next_hop_of(&req, now) else {
            if let Some(to) = reply_to {
                self.reply_code(&req, &to, 404, "Not Found (no route for in-dialog request)");
            }
            return;
        };
        let method = req.method().unwrap_or("").to_string();
        let Some(reply_to) = reply_to else {
            // ACK for a 2xx: stateless, end to end.
            self.media_ack(&mut req, &flow);
            self.shift_cseq(&mut req);
            if let Some(state) = self.calls.get_mut(req.call_id()) {
                state.established = true;
            }
            let base = req.clone();
            if self.push_via(&mut req, &base, dest.transport).is_some() {
                let bytes = req.to_bytes();
                self.send(dest, bytes);
            }
            return;
        };
        let Some(key) = ServerKey::of(&req) else {
            return self.reply_code(&req, &reply_to, 400, "Bad Request (Via branch)");
        };
        let original = req.clone();
        if matches!(method.as_str(), "INVITE" | "UPDATE") {
            let policy = self.reoffer_policy(&req);
            if let Err(e) = self.media_offer(&mut req, &flow, policy) {
                let tag = self.random_hex(6);
                let mut r = original.response(488, "Not Acceptable Here", Some(&tag));
                r.set(
                    "Warning",
                    format!("305 srtpgate \"{}\"", e.0.replace('"', "'")),
                );
                return self.reply(&original, &reply_to, r);
            }
        } else if body::sdp(&req).is_some() && method != "MESSAGE" && method != "INFO" {
            // PRACK/other bodies with SDP would carry keys across: not relayed.
            req.set_body(None, Vec::new());
        }
        if method == "BYE" {
            self.end_call(req.call_id().to_string().as_str());
        }
        self.shift_cseq(&mut req);
        let mut st = ServerTxn::new(original.clone(), reply_to.clone());
        if method == "INVITE" {
            let trying = original.response(100, "Trying", None).to_bytes();
            st.last_response = Some(trying.clone());
            self.send(reply_to, trying);
        }
        self.servers.insert(key.clone(), st);
        let target = Target {
            uri: None,
            flow: dest,
        };
        self.forward_branch(&key, &req, target, &flow, false, false, now);
    }

    /// Sends CANCEL on a branch that has answered provisionally; marks others to cancel
    /// once they do (RFC 3261 9.1).
    pub(super) fn cancel_branch(&mut self, branch: &str) {
        let Some(ct) = self.clients.get_mut(&format!("{branch} INVITE")) else {
            return;
        };
        match ct.state {
            ClientState::Completed => return,
            ClientState::Calling => {
                ct.cancel_pending = true;
                return;
            }
            ClientState::Proceeding => {}
        }
        ct.cancel_pending = false;
        let cancel = hop_request(&ct.request, "CANCEL", None);
        let flow = ct.flow.clone();
        self.send(flow, cancel.to_bytes());
    }

    /// The hop-by-hop ACK for a failure response on a branch (RFC 3261 17.1.1.3).
    pub(super) fn ack_failure(&mut self, ct_request: &Message, resp: &Message, flow: Flow) {
        let ack = hop_request(ct_request, "ACK", resp.get("to"));
        self.send(flow, ack.to_bytes());
    }
}

/// CANCEL or ACK for a request we sent: same Request-URI, top Via, From, Call-ID, CSeq
/// number and Route; To from the response for ACK.
fn hop_request(req: &Message, method: &str, to: Option<&str>) -> Message {
    let mut m = Message {
        start: StartLine::Request {
            method: method.into(),
            uri: req.request_uri().unwrap_or("").to_string(),
        },
        headers: Vec::new(),
        body: Vec::new(),
    };
    if let Ok(Some(via)) = req.clone().pop_front("via") {
        m.set("Via", via);
    }
    m.set("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(v) = req.get(name) {
            m.set(name, v);
        }
    }
    m.set("To", to.or(req.get("to")).unwrap_or(""));
    let seq = req.cseq().map(|c| c.seq).unwrap_or(1);
    m.set("CSeq", format!("{seq} {method}"));
    for r in req.get_all("route").unwrap_or_default() {
        if NameAddr::parse(r).is_ok() {
            m.headers.push(super::super::Header {
                name: "Route".into(),
                value: r.to_string(),
            });
        }
    }
    m
}
