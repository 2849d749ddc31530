//! Routed calls that go to voicemail instead: when the called user has a mailbox whose
//! policy says so, a call that is not answered in time, is answered busy, or cannot reach
//! the user is answered by srtpgate with a deposit (like a forward to voicemail). The
//! callee's branches are cancelled, its media anchor is freed and the caller's original
//! offer is anchored again for the deposit; a 2xx from the callee that races the CANCEL
//! is acknowledged and ended with BYE (RFC 3261 9.1, 15).

use std::time::{Duration, Instant};

use super::super::message::Message;
use super::super::transaction::{ServerKey, LINGER};
use super::super::Flow;
use super::Proxy;

/// When routed calls to a user with a mailbox are answered by voicemail instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedirectPolicy {
    /// The callee did not answer within `no_answer_timeout`.
    pub on_no_answer: bool,
    /// The callee answered 486 Busy Here or 600 Busy Everywhere.
    pub on_busy: bool,
    /// The callee has no registered contact, or answered 480 or 408.
    pub on_unavailable: bool,
    pub no_answer_timeout: Duration,
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        RedirectPolicy {
            on_no_answer: false,
            on_busy: false,
            on_unavailable: false,
            no_answer_timeout: Duration::from_secs(20),
        }
    }
}

impl RedirectPolicy {
    pub fn any(&self) -> bool {
        self.on_no_answer || self.on_busy || self.on_unavailable
    }

    /// The reason a final failure with `code` goes to voicemail under this policy.
    pub fn on_failure(&self, code: u16) -> Option<DepositReason> {
        match code {
            486 | 600 if self.on_busy => Some(DepositReason::Busy),
            480 | 408 if self.on_unavailable => Some(DepositReason::Unavailable),
            _ => None,
        }
    }
}

/// Why srtpgate answered a call with a deposit (counted per reason in the metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DepositReason {
    /// A call to a mailbox's voicemail URI (`uri-user`).
    Direct,
    NoAnswer,
    Busy,
    /// No registered contact, 480 or 408.
    Unavailable,
    /// A call to the fixed voicemail URI.
    FixedUri,
}

impl DepositReason {
    pub const ALL: [DepositReason; 5] = [
        DepositReason::Direct,
        DepositReason::NoAnswer,
        DepositReason::Busy,
        DepositReason::Unavailable,
        DepositReason::FixedUri,
    ];

    /// The label in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DepositReason::Direct => "direct",
            DepositReason::NoAnswer => "no-answer",
            DepositReason::Busy => "busy",
            DepositReason::Unavailable => "unavailable",
            DepositReason::FixedUri => "fixed-uri",
        }
    }
}

/// Deposits started, per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DepositCounts {
    pub direct: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub unavailable: u64,
    pub fixed_uri: u64,
}

impl DepositCounts {
    pub fn get(&self, r: DepositReason) -> u64 {
        match r {
            DepositReason::Direct => self.direct,
            DepositReason::NoAnswer => self.no_answer,
            DepositReason::Busy => self.busy,
            DepositReason::Unavailable => self.unavailable,
            DepositReason::FixedUri => self.fixed_uri,
        }
    }

    pub(super) fn add(&mut self, r: DepositReason) {
        let c = match r {
            DepositReason::Direct => &mut self.direct,
            DepositReason::NoAnswer => &mut self.no_answer,
            DepositReason::Busy => &mut self.busy,
            DepositReason::Unavailable => &mut self.unavailable,
            DepositReason::FixedUri => &mut self.fixed_uri,
        };
        *c += 1;
    }
}

/// A routed INVITE (by its server transaction) that may still go to voicemail.
pub(super) struct Redirect {
    mailbox: String,
    policy: RedirectPolicy,
    /// When the no-answer timer fires (`on_no_answer` only).
    deadline: Option<Instant>,
    auth_user: Option<String>,
    /// The call went to voicemail: the callee's branches lost.
    pub(super) diverted: bool,
}

impl Proxy {
    /// The mailbox and policy of a called `user`, when its calls may go to voicemail.
    fn redirect_of(&self, user: &str) -> Option<(String, RedirectPolicy)> {
        let dep = self.deposit.as_ref()?;
        let mailbox = dep.mailbox_of(user)?;
        let policy = dep.redirect_policy(&mailbox);
        policy.any().then_some((mailbox, policy))
    }

    /// A new INVITE to the local `user` is about to be forwarded on `key`: remember its
    /// mailbox and start the no-answer timer when the user's policy asks for it. A call
    /// without an SDP offer is never diverted (a deposit needs the caller's offer).
    pub(super) fn plan_redirect(
        &mut self,
        key: &ServerKey,
        req: &Message,
        user: &str,
        auth_user: Option<&str>,
        now: Instant,
    ) {
        if !Self::has_sdp(req) {
            return;
        }
        let Some((mailbox, policy)) = self.redirect_of(user) else {
            return;
        };
        let deadline = policy.on_no_answer.then(|| now + policy.no_answer_timeout);
        self.redirects.insert(
            key.clone(),
            Redirect {
                mailbox,
                policy,
                deadline,
                auth_user: auth_user.map(str::to_string),
                diverted: false,
            },
        );
    }

    /// The called `user` has no registered contact: with `on-unavailable`, the caller
    /// deposits at once. `true` when the request was answered here.
    pub(super) fn redirect_unreachable(
        &mut self,
        req: &Message,
        reply_to: &Flow,
        user: &str,
        auth_user: Option<&str>,
    ) -> bool {
        if req.method() != Some("INVITE") || !Self::has_sdp(req) {
            return false;
        }
        let Some((mailbox, policy)) = self.redirect_of(user) else {
            return false;
        };
        if !policy.on_unavailable {
            return false;
        }
        match self.start_deposit(
            req,
            reply_to,
            &mailbox,
            auth_user,
            DepositReason::Unavailable,
        ) {
            Ok(_) => true,
            Err(e) => {
                // Answered as before: the user is not reachable.
                tracing::info!(call = %req.call_id(), error = %e, "voicemail refused the deposit");
                false
            }
        }
    }

    /// Whether the call of server transaction `key` already went to voicemail.
    pub(super) fn is_diverted(&self, key: &ServerKey) -> bool {
        self.redirects.get(key).is_some_and(|r| r.diverted)
    }

    /// No-answer timers; forgets redirects whose transaction is gone.
    pub(super) fn redirect_tick(&mut self, now: Instant) {
        self.redirects.retain(|k, _| self.servers.contains_key(k));
        let due: Vec<ServerKey> = self
            .redirects
            .iter()
            .filter(|(_, r)| !r.diverted && r.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(r) = self.redirects.get_mut(&key) {
                r.deadline = None;
            }
            let open = self
                .servers
                .get(&key)
                .is_some_and(|s| s.final_code.is_none() && !s.canceled);
            if open {
                self.divert(&key, DepositReason::NoAnswer, now);
            }
        }
    }

    /// Every branch failed with best `code`: voicemail takes the call when the policy says
    /// so. `true` when it did (nothing else must be sent upstream).
    pub(super) fn redirect_on_failure(&mut self, key: &ServerKey, code: u16, now: Instant) -> bool {
        let Some(reason) = self
            .redirects
            .get(key)
            .filter(|r| !r.diverted)
            .and_then(|r| r.policy.on_failure(code))
        else {
            return false;
        };
        self.divert(key, reason, now)
    }

    /// Answers the caller of `key` with a deposit: the callee's media anchor goes, the
    /// caller's original offer is anchored for voicemail, the 200 OK goes upstream and the
    /// branches still ringing are cancelled. When voicemail refuses (e.g. no audio
    /// stream, a full disk), a busy or unavailable call ends as it would have (`false`) and a
    /// call that rang too long gets 480.
    fn divert(&mut self, key: &ServerKey, reason: DepositReason, now: Instant) -> bool {
        let Some(st) = self.servers.get(key) else {
            return false;
        };
        let (req, reply_to, branches) =
            (st.request.clone(), st.reply_to.clone(), st.branches.clone());
        let Some(r) = self.redirects.get_mut(key) else {
            return false;
        };
        r.diverted = true;
        r.deadline = None;
        let (mailbox, auth_user) = (r.mailbox.clone(), r.auth_user.clone());
        // The offer toward the callee is dropped; the deposit anchors the caller's offer
        // again under the same Call-ID (new ports, srtpgate's own key toward the caller).
        self.end_call(req.call_id());
        let started = self.start_deposit(&req, &reply_to, &mailbox, auth_user.as_deref(), reason);
        let ok = started.is_ok();
        match started {
            Ok(bytes) => {
                tracing::info!(call = %req.call_id(), reason = reason.as_str(), "call sent to voicemail");
                if let Some(st) = self.servers.get_mut(key) {
                    st.last_response = Some(bytes);
                    st.final_code = Some(200);
                    st.retransmit = None;
                    st.expires = Some(now + LINGER);
                }
            }
            Err(e) => {
                tracing::info!(call = %req.call_id(), reason = reason.as_str(), error = %e, "voicemail refused the deposit");
                if reason != DepositReason::NoAnswer {
                    if let Some(r) = self.redirects.get_mut(key) {
                        r.diverted = false;
                    }
                    return false;
                }
                let text = format!("Temporarily Unavailable (voicemail: {e})");
                self.reply_code(&req, &reply_to, 480, &text);
                if let Some(st) = self.servers.get_mut(key) {
                    st.final_code = Some(480);
                    st.expires = Some(now + LINGER);
                }
            }
        }
        for b in branches {
            self.cancel_branch(&b);
        }
        ok || reason == DepositReason::NoAnswer
    }
}
