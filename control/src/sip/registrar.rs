//! The registrar (RFC 3261 section 10): bindings of an address-of-record (the user part of
//! the To URI; srtpgate serves one domain) to contacts, each remembered with the flow the
//! REGISTER came over so that requests reach phones behind NAT (RFC 3581, RFC 5626 style
//! connection reuse). Sans-IO: fed requests and time, returns responses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::header::{NameAddr, Params};
use super::message::{parse_delta, Message};
use super::uri::Uri;
use super::Flow;

/// Limits of the registrar.
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    pub max_contacts: usize,
    /// REGISTERs per second allowed from one source address (burst: twice that).
    pub rate_per_source: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            max_contacts: 10,
            rate_per_source: 20,
        }
    }
}

/// One contact of an address-of-record.
#[derive(Clone, Debug)]
pub struct Binding {
    /// The Contact URI as registered.
    pub uri: Uri,
    pub uri_text: String,
    /// The Contact header value as registered (for 200 OK listings).
    pub contact: String,
    pub expires_at: Instant,
    /// Where the REGISTER came from: requests for this contact go there.
    pub flow: Flow,
    pub call_id: String,
    pub cseq: u32,
    /// The user that authenticated the registration, if any.
    pub auth_user: Option<String>,
}

/// Outcome of a REGISTER.
pub struct RegisterOutcome {
    pub response: Message,
    /// Bindings added or refreshed.
    pub changed: usize,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub struct Registrar {
    config: RegistrarConfig,
    bindings: HashMap<String, Vec<Binding>>,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The address-of-record key: the To URI's user part, lower-cased.
pub fn aor_key(uri: &Uri) -> Option<String> {
    uri.user().map(|u| u.to_ascii_lowercase())
}

impl Registrar {
    pub fn new(config: RegistrarConfig) -> Self {
        Registrar {
            config,
            bindings: HashMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Whether one more REGISTER from `ip` is within the rate limit (token bucket).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let rate = f64::from(self.config.rate_per_source.max(1));
        if self.buckets.len() > 100_000 {
            self.buckets
                .retain(|_, b| now.duration_since(b.at) < Duration::from_secs(10));
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: rate * 2.0,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate * 2.0);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Handles an authenticated (or loopback-trusted) REGISTER.
    pub fn register(
        &mut self,
        req: &Message,
        flow: Flow,
        auth_user: Option<&str>,
        now: Instant,
    ) -> RegisterOutcome {
        let reply = |code, reason: &str| RegisterOutcome {
            response: req.response(code, reason, Some("reg")),
            changed: 0,
        };
        let Ok(to) = req.to() else {
            return reply(400, "Bad Request (To)");
        };
        if to.uri.sip().is_none() {
            return reply(416, "Unsupported URI Scheme");
        }
        let Some(aor) = aor_key(&to.uri) else {
            return reply(404, "Not Found (no user in To)");
        };
        if let Some(u) = auth_user {
            if !u.eq_ignore_ascii_case(&aor) {
                return reply(403, "Forbidden (user may not register this address)");
            }
        }
        let Ok(cseq) = req.cseq() else {
            return reply(400, "Bad Request (CSeq)");
        };
        let header_expires = req.get("expires").and_then(parse_delta);
        let Ok(contacts) = req.get_all("contact") else {
            return reply(400, "Bad Request (Contact)");
        };
        let call_id = req.call_id().to_string();
        let mut changed = 0;
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return reply(400, "Bad Request (wildcard Contact needs Expires: 0)");
            }
            self.bindings.remove(&aor);
        } else {
            let mut parsed = Vec::new();
            for c in &contacts {
                match NameAddr::parse(c) {
                    Ok(na) => parsed.push(na),
                    Err(_) => return reply(400, "Bad Request (Contact)"),
                }
            }
            for na in parsed {
                let asked = na
                    .params
                    .get("expires")
                    .and_then(parse_delta)
                    .or(header_expires)
                    .unwrap_or(self.config.default_expires);
                if asked != 0 && asked < self.config.min_expires {
                    let mut r = req.response(423, "Interval Too Brief", Some("reg"));
                    r.set("Min-Expires", self.config.min_expires.to_string());
                    return RegisterOutcome {
                        response: r,
                        changed: 0,
                    };
                }
                let expires = asked.min(self.config.max_expires);
                let uri_text = na.uri.to_string();
                let list = self.bindings.entry(aor.clone()).or_default();
                let existing = list.iter().position(|b| b.uri_text == uri_text);
                if let Some(i) = existing {
                    if list[i].call_id == call_id && cseq.seq <= list[i].cseq {
                        continue; // out of order
                    }
                    list.remove(i);
                }
                if expires == 0 {
                    continue;
                }
                if list.len() >= self.config.max_contacts {
                    // Oldest binding makes room.
                    list.remove(0);
                }
                let mut shown = na.clone();
                shown.params = Params(
                    na.params
                        .0
                        .iter()
                        .filter(|(n, _)| n != "expires")
                        .cloned()
                        .collect(),
                );
                list.push(Binding {
                    uri: na.uri,
                    uri_text,
                    contact: shown.to_string(),
                    expires_at: now + Duration::from_secs(u64::from(expires)),
                    flow: flow.clone(),
                    call_id: call_id.clone(),
                    cseq: cseq.seq,
                    auth_user: auth_user.map(str::to_string),
                });
                changed += 1;
            }
            if self.bindings.get(&aor).is_some_and(Vec::is_empty) {
                self.bindings.remove(&aor);
            }
        }
        let mut r = req.response(200, "OK", Some("reg"));
        for b in self.lookup(&aor, now) {
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            r.headers.push(super::Header {
                name: "Contact".into(),
                value: format!("{};expires={left}", b.contact),
            });
        }
        RegisterOutcome {
            response: r,
            changed,
        }
    }

    /// The live contacts of an address-of-record.
    pub fn lookup(&self, aor: &str, now: Instant) -> Vec<Binding> {
        self.bindings
            .get(&aor.to_ascii_lowercase())
            .map(|l| l.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default()
    }

    /// The binding whose Contact URI is `uri` (a target from a dialog), to reach it over
    /// the flow it registered from.
    pub fn by_contact(&self, uri: &Uri, now: Instant) -> Option<&Binding> {
        let text = uri.to_string();
        self.bindings
            .values()
            .flatten()
            .find(|b| b.expires_at > now && (b.uri_text == text || same_target(&b.uri, uri)))
    }

    /// Whether a live binding was registered over this flow (same transport and address).
    pub fn is_registered_flow(&self, flow: &Flow, now: Instant) -> bool {
        self.bindings.values().flatten().any(|b| {
            b.expires_at > now && b.flow.transport == flow.transport && b.flow.remote == flow.remote
        })
    }

    /// Drops expired bindings; returns how many went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut gone = 0;
        self.bindings.retain(|_, l| {
            let before = l.len();
            l.retain(|b| b.expires_at > now);
            gone += before - l.len();
            !l.is_empty()
        });
        gone
    }

    /// Number of live bindings.
    pub fn len(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}

fn same_target(a: &Uri, b: &Uri) -> bool {
    match (a.sip(), b.sip()) {
        (Some(a), Some(b)) => {
            a.user == b.user && a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    fn req(contacts: &[&str], expires: Option<u32>, cseq: u32) -> Message {
        let mut t = String::from(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKr\r\n\
             From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: r1\r\n",
        );
        t.push_str(&format!("CSeq: {cseq} REGISTER\r\n"));
        for c in contacts {
            t.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = expires {
            t.push_str(&format!("Expires: {e}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        Message::parse(t.as_bytes()).unwrap()
    }

    fn flow() -> Flow {
        Flow {
            transport: Transport::Udp,
            remote: "127.0.0.1:5071".parse().unwrap(),
            conn: None,
        }
    }

    #[test]
    fn contacts_expire_refresh_and_unregister() {
        let mut r = Registrar::new(RegistrarConfig::default());
        let t0 = Instant::now();
        let out = r.register(
            &req(
                &["<sip:alice@10.0.0.1>;expires=120", "<sip:alice@10.0.0.2>"],
                Some(600),
                1,
            ),
            flow(),
            None,
            t0,
        );
        assert_eq!(out.response.code(), Some(200));
        assert_eq!(out.changed, 2);
        assert_eq!(r.lookup("ALICE", t0).len(), 2);
        assert_eq!(r.lookup("alice", t0 + Duration::from_secs(121)).len(), 1);
        // Out-of-order CSeq from the same Call-ID is ignored.
        let stale = r.register(
            &req(&["<sip:alice@10.0.0.2>"], Some(0), 1),
            flow(),
            None,
            t0,
        );
        assert_eq!(stale.changed, 0);
        assert_eq!(r.lookup("alice", t0).len(), 2);
        // Un-register one, then all with the wildcard.
        r.register(
            &req(&["<sip:alice@10.0.0.2>"], Some(0), 2),
            flow(),
            None,
            t0,
        );
        assert_eq!(r.lookup("alice", t0).len(), 1);
        let bad = r.register(&req(&["*"], Some(60), 3), flow(), None, t0);
        assert_eq!(bad.response.code(), Some(400));
        r.register(&req(&["*"], Some(0), 4), flow(), None, t0);
        assert!(r.lookup("alice", t0).is_empty());
        assert_eq!(r.expire(t0), 0);
    }

    #[test]
    fn too_brief_wrong_user_and_rate_limit() {
        let mut r = Registrar::new(RegistrarConfig::default());
        let t0 = Instant::now();
        let out = r.register(
            &req(&["<sip:alice@10.0.0.1>"], Some(5), 1),
            flow(),
            None,
            t0,
        );
        assert_eq!(out.response.code(), Some(423));
        assert_eq!(out.response.get("min-expires"), Some("60"));
        let out = r.register(
            &req(&["<sip:alice@10.0.0.1>"], None, 2),
            flow(),
            Some("bob"),
            t0,
        );
        assert_eq!(out.response.code(), Some(403));
        let ip = "192.0.2.1".parse().unwrap();
        let allowed = (0..100).filter(|_| r.allow(ip, t0)).count();
        assert_eq!(allowed, 40);
        assert!(r.allow(ip, t0 + Duration::from_secs(1)));
    }
}
