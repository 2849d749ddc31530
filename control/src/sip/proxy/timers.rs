//! Timers: retransmissions over UDP (A, E, G), transaction timeouts (B, F, C) turned into
//! 408 on the branch, expiry of finished transactions, registrations and call states.

use std::time::{Duration, Instant};

use super::super::transaction::{backoff, ClientState, LINGER, T2, TIMEOUT};
use super::super::Transmit;
use super::Proxy;

/// How often call states are checked against the relay (media idle timeouts).
const CALL_SWEEP: Duration = Duration::from_secs(5);
/// A call state with no confirmed dialog is dropped after this long.
const EARLY_CALL_LIMIT: Duration = Duration::from_secs(600);

impl Proxy {
    /// Runs every timer due at `now`; returns what to send. Call it every ~100 ms.
    pub fn tick(&mut self, now: Instant) -> Vec<Transmit> {
        self.now = now;
        self.client_timers(now);
        self.server_timers(now);
        self.registrar.expire(now);
        self.deposit_tick(now);
        self.redirect_tick(now);
        if self
            .last_sweep
            .is_none_or(|t| now.duration_since(t) >= CALL_SWEEP)
        {
            self.last_sweep = Some(now);
            self.sweep_calls(now);
        }
        std::mem::take(&mut self.out)
    }

    fn client_timers(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut timed_out = Vec::new();
        let mut gone = Vec::new();
        for (k, c) in self.clients.iter_mut() {
            if let Some(exp) = c.expires {
                if exp <= now {
                    gone.push(k.clone());
                }
                continue;
            }
            if c.state != ClientState::Completed && c.deadline <= now {
                timed_out.push(k.clone());
                continue;
            }
            if let Some((at, gap)) = c.retransmit {
                let retransmits = match c.state {
                    ClientState::Calling => true,
                    ClientState::Proceeding => !c.is_invite(),
                    ClientState::Completed => false,
                };
                if at <= now && retransmits {
                    let next = if c.state == ClientState::Proceeding {
                        T2
                    } else {
                        backoff(gap, c.is_invite())
                    };
                    c.retransmit = Some((now + next, next));
                    resend.push((c.flow.clone(), c.bytes.clone()));
                }
            }
        }
        for k in gone {
            self.clients.remove(&k);
        }
        for (flow, bytes) in resend {
            self.send(flow, bytes);
        }
        for k in timed_out {
            self.branch_timeout(&k, now);
        }
    }

    /// Timer B/F (no answer) or C (rang too long): CANCEL if it rang, then 408.
    fn branch_timeout(&mut self, key: &str, now: Instant) {
        self.counters.timeouts += 1;
        let Some(c) = self.clients.get_mut(key) else {
            return;
        };
        let ringing = c.state == ClientState::Proceeding && c.is_invite();
        c.state = ClientState::Completed;
        c.retransmit = None;
        c.expires = Some(now + LINGER);
        let (server, req) = (c.server.clone(), c.request.clone());
        let branch = key.split(' ').next().unwrap_or("").to_string();
        if ringing {
            // cancel_branch needs the branch still in Proceeding.
            if let Some(c) = self.clients.get_mut(key) {
                c.state = ClientState::Proceeding;
            }
            self.cancel_branch(&branch);
            if let Some(c) = self.clients.get_mut(key) {
                c.state = ClientState::Completed;
            }
        }
        let Some(skey) = server else { return };
        let mut resp = req.response(408, "Request Timeout", Some("timeout"));
        let _ = resp.pop_front("via");
        if req.method() == Some("INVITE") {
            self.branch_failed(&skey, &branch, resp, now);
        } else if let Some(st) = self.servers.get(&skey) {
            if st.final_code.is_none() {
                let original = st.request.clone();
                let to = st.reply_to.clone();
                self.reply_code(&original, &to, 408, "Request Timeout");
                if let Some(st) = self.servers.get_mut(&skey) {
                    st.final_code = Some(408);
                    st.expires = Some(now + LINGER);
                }
            }
        }
    }

    fn server_timers(&mut self, now: Instant) {
        let mut resend = Vec::new();
        self.servers.retain(|_, s| {
            if s.expires.is_some_and(|e| e <= now) {
                return false;
            }
            if let Some((at, gap)) = s.retransmit {
                if at <= now {
                    let next = (gap * 2).min(T2);
                    s.retransmit = Some((now + next, next));
                    if let Some(b) = &s.last_response {
                        resend.push((s.reply_to.clone(), b.clone()));
                    }
                }
            }
            // A transaction that never finished is dropped after a generous bound.
            s.final_code.is_some() || s.expires.is_some() || {
                let limit = TIMEOUT * 8;
                s.ring_deadline.get_or_insert(now + limit);
                s.ring_deadline.is_some_and(|d| d > now)
            }
        });
        for (flow, bytes) in resend {
            self.send(flow, bytes);
        }
    }

    /// Call states whose media the relay has dropped (idle timeout, deleted over ng), and
    /// calls that never got an answer, go.
    fn sweep_calls(&mut self, now: Instant) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            let Some(c) = self.calls.get(&id) else {
                continue;
            };
            let stale_early = !c.established && now.duration_since(c.created) > EARLY_CALL_LIMIT;
            let pending = self
                .servers
                .values()
                .any(|s| s.request.call_id() == id && s.final_code.is_none());
            if stale_early || (!pending && !self.media.exists(&id)) {
                tracing::debug!(call = %id, "call state dropped");
                self.end_call(&id);
            }
        }
    }
}
