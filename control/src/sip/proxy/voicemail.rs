//! Requests the proxy answers itself for voicemail deposits (see [`crate::sip::deposit`]):
//! the initial INVITE to a voicemail URI (200 with srtpgate's SDP, or 404 for an unknown
//! mailbox), its ACK, and requests inside the deposit's dialog (BYE ends it).

use std::time::{Duration, Instant};

use super::super::body;
use super::super::header::NameAddr;
use super::super::media::MediaFailure;
use super::super::message::Message;
use super::super::transaction::{T1, T2, TIMEOUT};
use super::super::uri::Uri;
use super::super::{Flow, Transport};
use super::diversion::{caller_user, diverting_user};
use super::{DepositReason, Proxy};

impl Proxy {
    /// Handles `req` when it belongs to voicemail; `false` leaves it to the proxy.
    /// `auth_user`: the caller's authenticated user name, for the call's identities.
    pub(super) fn deposit_request(
        &mut self,
        req: &Message,
        reply_to: &Flow,
        ruri: Option<&Uri>,
        auth_user: Option<&str>,
    ) -> bool {
        let Some(dep) = self.deposit.as_mut() else {
            return false;
        };
        let method = req.method().unwrap_or("").to_string();
        let call_id = req.call_id().to_string();
        let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_string));
        if dep.active(&call_id) {
            if method == "ACK" {
                self.deposit_unacked.remove(&call_id);
                return true;
            }
            if to_tag.is_none() {
                // A retransmitted initial INVITE: the same answer again.
                if let Some(bytes) = self.deposit_answers.get(&call_id).cloned() {
                    self.send(reply_to.clone(), bytes);
                }
                return true;
            }
            match method.as_str() {
                "BYE" => {
                    dep.stop(&call_id);
                    self.deposit_answers.remove(&call_id);
                    self.deposit_byes.remove(&call_id);
                    self.deposit_unacked.remove(&call_id);
                    let resp = req.response(200, "OK", None);
                    self.reply(req, reply_to, resp);
                }
                "INVITE" | "UPDATE" => self.reply_code(
                    req,
                    reply_to,
                    488,
                    "Not Acceptable Here (voicemail keeps its media)",
                ),
                _ => {
                    let resp = req.response(200, "OK", None);
                    self.reply(req, reply_to, resp);
                }
            }
            return true;
        }
        let parsed = match ruri {
            Some(_) => None,
            None => req.request_uri().and_then(|u| Uri::parse(u).ok()),
        };
        let Some(user) = ruri
            .or(parsed.as_ref())
            .and_then(|u| u.sip())
            .and_then(|u| u.user.clone())
        else {
            return false;
        };
        let fixed = dep.is_fixed_uri(&user);
        let direct = match dep.mailbox_for(&user) {
            Some(m) => Some(m),
            None if fixed => None,
            None => return false,
        };
        if method == "ACK" {
            // The ACK of a refusal (404, 488) ends here.
            return true;
        }
        if method != "INVITE" || to_tag.is_some() {
            return false;
        }
        let (mailbox, reason) = match direct {
            Some(m) => (m, DepositReason::Direct),
            None => (
                self.fixed_uri_mailbox(req, ruri, auth_user),
                DepositReason::FixedUri,
            ),
        };
        let Some(mailbox) = mailbox else {
            self.reply_code(req, reply_to, 404, "Not Found (no such mailbox)");
            return true;
        };
        if body::sdp(req).is_none() {
            self.reply_code(
                req,
                reply_to,
                488,
                "Not Acceptable Here (voicemail needs an SDP offer)",
            );
            return true;
        }
        if let Err(e) = self.start_deposit(req, reply_to, &mailbox, auth_user, reason) {
            let tag = self.random_hex(6);
            let mut r = req.response(488, "Not Acceptable Here", Some(&tag));
            r.set(
                "Warning",
                format!(
                    "305 srtpgate \"{}\"",
                    super::request::sanitize(&e.0).replace('"', "'")
                ),
            );
            self.reply(req, reply_to, r);
        }
        true
    }

    /// The mailbox of a call to the fixed voicemail URI: the diverting user's when the
    /// request names one (no fallback: a diversion to a user without a mailbox is 404),
    /// else the caller's own.
    fn fixed_uri_mailbox(
        &self,
        req: &Message,
        ruri: Option<&Uri>,
        auth_user: Option<&str>,
    ) -> Option<String> {
        let dep = self.deposit.as_ref()?;
        let parsed = match ruri {
            Some(u) => u.clone(),
            None => Uri::parse(req.request_uri()?).ok()?,
        };
        let user = match diverting_user(req, &parsed) {
            Some(u) => u,
            None => caller_user(req, auth_user)?,
        };
        dep.mailbox_of(&user)
    }

    /// Answers the INVITE `req` with a deposit into `mailbox`: srtpgate's SDP in a 200 OK
    /// (returned, and kept for retransmissions), with a to-tag and Contact of its own.
    /// On an error nothing was sent and nothing is recorded.
    pub(super) fn start_deposit(
        &mut self,
        req: &Message,
        reply_to: &Flow,
        mailbox: &str,
        auth_user: Option<&str>,
        reason: DepositReason,
    ) -> Result<Vec<u8>, MediaFailure> {
        let offer =
            body::sdp(req).ok_or_else(|| MediaFailure("voicemail needs an SDP offer".into()))?;
        let call_id = req.call_id().to_string();
        let from_tag = req
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_string))
            .unwrap_or_default();
        let tag = self.random_hex(6);
        let identity = Self::identity_json(req, auth_user);
        let Some(dep) = self.deposit.as_mut() else {
            return Err(MediaFailure("voicemail is not configured".into()));
        };
        let answer = dep
            .start(&call_id, &from_tag, &tag, mailbox, &offer, &identity)
            .inspect_err(|_| self.counters.media_failures += 1)?;
        self.counters.deposits.add(reason);
        tracing::info!(call = %call_id, mailbox = %mailbox, reason = reason.as_str(), "voicemail answers the call");
        let mut resp = req.response(200, "OK", Some(&tag));
        if let Some((host, port)) = self.local(reply_to.transport) {
            let user = req
                .request_uri()
                .and_then(|u| Uri::parse(u).ok())
                .and_then(|u| u.sip().and_then(|s| s.user.clone()))
                .unwrap_or_else(|| "voicemail".into());
            let transport = reply_to.transport.param();
            resp.set(
                "Contact",
                format!("<sip:{user}@{host}:{port};transport={transport}>"),
            );
        }
        resp.set("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
        resp.set_body(Some("application/sdp"), answer);
        resp.set("Server", "srtpgate");
        let bytes = resp.to_bytes();
        if let Some(bye) = self.deposit_bye(req, &tag, reply_to) {
            self.deposit_byes
                .insert(call_id.clone(), (bye, reply_to.clone()));
        }
        if reply_to.transport == Transport::Udp {
            self.deposit_unacked.insert(
                call_id.clone(),
                Unacked {
                    flow: reply_to.clone(),
                    next: self.now + T1,
                    gap: T1,
                    give_up: self.now + TIMEOUT,
                },
            );
        }
        self.deposit_answers.insert(call_id, bytes.clone());
        self.send(reply_to.clone(), bytes.clone());
        Ok(bytes)
    }
}

/// A deposit's 200 OK sent over UDP and not yet acknowledged.
pub(super) struct Unacked {
    flow: Flow,
    next: Instant,
    gap: Duration,
    give_up: Instant,
}

impl Proxy {
    /// The BYE srtpgate sends to end a deposit itself (maximum length, disk full).
    fn deposit_bye(&self, invite: &Message, our_tag: &str, to: &Flow) -> Option<Message> {
        let contact = NameAddr::parse(invite.get("contact")?).ok()?;
        let (host, port) = self.local(to.transport)?;
        let branch = format!("z9hG4bKsgvm{}", self.random_hex(8));
        let text = format!(
            "BYE {} SIP/2.0\r\nVia: SIP/2.0/{} {host}:{port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {};tag={our_tag}\r\nTo: {}\r\nCall-ID: {}\r\n\
             CSeq: 1 BYE\r\nServer: srtpgate\r\nContent-Length: 0\r\n\r\n",
            contact.uri,
            to.transport.via_name(),
            invite.get("to")?,
            invite.get("from")?,
            invite.call_id(),
        );
        Message::parse(text.as_bytes()).ok()
    }

    /// Retransmits unacknowledged 200 OKs of deposits over UDP (T1 doubling up to T2,
    /// RFC 3261 13.3.1.4); a deposit whose 200 got no ACK in 64*T1 is ended like one whose
    /// recording stopped by itself: BYE to the caller, message closed, media freed.
    pub(super) fn deposit_tick(&mut self, now: Instant) {
        let Some(dep) = self.deposit.as_ref() else {
            return;
        };
        let mut ended = dep.finished();
        let mut resend = Vec::new();
        for (id, u) in self.deposit_unacked.iter_mut() {
            if u.give_up <= now {
                tracing::info!(call = %id, "voicemail: no ACK for the 200 OK; ending the deposit");
                ended.push(id.clone());
            } else if u.next <= now {
                u.gap = (u.gap * 2).min(T2);
                u.next = now + u.gap;
                resend.push((id.clone(), u.flow.clone()));
            }
        }
        for (id, flow) in resend {
            if let Some(bytes) = self.deposit_answers.get(&id).cloned() {
                self.send(flow, bytes);
            }
        }
        ended.sort();
        ended.dedup();
        for call_id in ended {
            self.deposit_unacked.remove(&call_id);
            if let Some((bye, flow)) = self.deposit_byes.remove(&call_id) {
                self.send(flow, bye.to_bytes());
            }
            self.deposit_answers.remove(&call_id);
            if let Some(dep) = self.deposit.as_mut() {
                dep.stop(&call_id);
            }
        }
    }
}
