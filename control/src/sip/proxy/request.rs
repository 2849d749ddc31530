//! Requests received: checks, retransmissions, REGISTER, authentication, CANCEL, ACK, and
//! the choice of where a request goes.

use std::time::{Instant, SystemTime};

use super::super::body;
use super::super::digest::{AuthError, Credentials};
use super::super::header::{canonical, NameAddr, Via};
use super::super::message::{head_end, Message};
use super::super::transaction::ServerKey;
use super::super::uri::Uri;
use super::super::{Flow, Transport};
use super::{NextHop, Proxy};

/// Methods the edge routes; anything else is forwarded too (RFC 3261 16), these are listed
/// in Allow.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, UPDATE, PRACK, OPTIONS, INFO, MESSAGE, REGISTER";
/// Extensions this proxy supports itself (Proxy-Require).
const SUPPORTED: [&str; 0] = [];
/// Via entries of ours a request may carry before it is a loop.
const BRANCH_MAGIC: &str = "z9hG4bKsg";

/// A minimal response to a request too broken to parse, built from its raw header lines
/// (Via, From, To, Call-ID, CSeq copied as they are). `None` for responses, ACKs, or when
/// the needed headers cannot be found.
pub fn raw_error_response(bytes: &[u8], code: u16, reason: &str) -> Option<Vec<u8>> {
    let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let bytes = &bytes[start..];
    let head_len = head_end(bytes).map_or(bytes.len().min(16_384), |(h, _)| h);
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next()?;
    if first.starts_with("SIP/") || first.starts_with("ACK ") {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {}\r\n", sanitize(reason));
    let mut have = [false; 5];
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let c = canonical(name.trim());
        let i = match c.as_str() {
            "via" => 0,
            "from" => 1,
            "to" => 2,
            "call-id" => 3,
            "cseq" => 4,
            _ => continue,
        };
        if i != 0 && have[i] {
            continue;
        }
        have[i] = true;
        out.push_str(&format!("{}: {}\r\n", name.trim(), sanitize(value.trim())));
    }
    if !have.iter().all(|&h| h) {
        return None;
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// Reason phrases and copied values: printable, one line.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// RFC 3581 / 3261 18.2.1: note where the request really came from in its top Via.
fn stamp_via(req: &mut Message, flow: &Flow) -> Option<()> {
    let mut via = req.top_via().ok()?;
    let ip = flow.remote.ip().to_string();
    if via.host.trim_start_matches('[').trim_end_matches(']') != ip {
        via.params.set("received", Some(ip));
    }
    if via.params.has("rport") {
        via.params
            .set("rport", Some(flow.remote.port().to_string()));
        if !via.params.has("received") {
            via.params
                .set("received", Some(flow.remote.ip().to_string()));
        }
    }
    req.replace_front("via", &via.to_string()).ok()
}

/// Where responses to a request go (RFC 3261 18.2.2, RFC 3581 4): back over the same
/// connection on streams; to the source port with rport; else to the Via port at the
/// source address.
fn reply_flow(req: &Message, flow: &Flow) -> Flow {
    if flow.transport.is_stream() {
        return flow.clone();
    }
    match req.top_via() {
        Ok(v) if !v.params.has("rport") => {
            let mut f = flow.clone();
            f.remote.set_port(v.port.unwrap_or(5060));
            f
        }
        _ => flow.clone(),
    }
}

impl Proxy {
    /// Sends a response the proxy itself makes for `req`.
    pub(super) fn reply(&mut self, req: &Message, to: &Flow, mut resp: Message) {
        let code = resp.code().unwrap_or(500);
        if code >= 400 {
            self.count_error(code);
        }
        resp.set("Server", "srtpgate");
        let bytes = resp.to_bytes();
        if let Some(key) = ServerKey::of(req) {
            if let Some(st) = self.servers.get_mut(&key) {
                st.last_response = Some(bytes.clone());
            }
        }
        self.send(to.clone(), bytes);
    }

    pub(super) fn reply_code(&mut self, req: &Message, to: &Flow, code: u16, reason: &str) {
        let tag = self.random_hex(6);
        let resp = req.response(code, &sanitize(reason), Some(&tag));
        self.reply(req, to, resp);
    }

    pub(super) fn on_request(&mut self, mut req: Message, flow: Flow, now: Instant) {
        if stamp_via(&mut req, &flow).is_none() {
            self.counters.malformed += 1;
            return;
        }
        let reply_to = reply_flow(&req, &flow);
        let method = req.method().unwrap_or("").to_string();
        if method == "ACK" {
            if self.deposit_request(&req, &reply_to, None, None) {
                return;
            }
            return self.on_ack(req, flow, now);
        }
        if method != "CANCEL" {
            if let Some(key) = ServerKey::of(&req) {
                if let Some(st) = self.servers.get(&key) {
                    self.counters.retransmissions += 1;
                    if let Some(b) = st.last_response.clone() {
                        let to = st.reply_to.clone();
                        self.send(to, b);
                    }
                    return;
                }
            }
        }
        match req.max_forwards() {
            Ok(Some(0)) if method == "OPTIONS" => {
                return self.answer_options(&req, &reply_to);
            }
            Ok(Some(0)) => return self.reply_code(&req, &reply_to, 483, "Too Many Hops"),
            _ => {}
        }
        if self.is_loop(&req) {
            return self.reply_code(&req, &reply_to, 482, "Loop Detected");
        }
        if let Some(bad) = self.unsupported_requirement(&req) {
            let tag = self.random_hex(6);
            let mut r = req.response(420, "Bad Extension", Some(&tag));
            r.set("Unsupported", bad);
            return self.reply(&req, &reply_to, r);
        }
        if method == "CANCEL" {
            return self.on_cancel(req, reply_to);
        }
        let own_routes = self.strip_own_routes(&mut req);
        let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_string));
        let has_route = req.get("route").is_some();
        if to_tag.is_some() && self.deposit_request(&req, &reply_to, None, None) {
            return;
        }
        if to_tag.is_some() || has_route {
            return self.forward_in_dialog(req, flow, Some(reply_to), now);
        }
        let ruri = match req.request_uri().map(Uri::parse) {
            Some(Ok(u)) => u,
            _ => return self.reply_code(&req, &reply_to, 416, "Unsupported URI Scheme"),
        };
        let for_us = ruri.sip().is_some_and(|u| u.user.is_none()) && self.is_local_uri(&ruri);
        if method == "REGISTER" {
            if let Some(bad) = unsupported_require(&req) {
                let tag = self.random_hex(6);
                let mut r = req.response(420, "Bad Extension", Some(&tag));
                r.set("Unsupported", bad);
                return self.reply(&req, &reply_to, r);
            }
            return self.on_register(req, flow, reply_to, now);
        }
        if ruri.sip().is_none() && (own_routes > 0 || self.config.outbound.is_none()) {
            return self.reply_code(&req, &reply_to, 416, "Unsupported URI Scheme");
        }
        if for_us {
            if let Some(bad) = unsupported_require(&req) {
                let tag = self.random_hex(6);
                let mut r = req.response(420, "Bad Extension", Some(&tag));
                r.set("Unsupported", bad);
                return self.reply(&req, &reply_to, r);
            }
            return match method.as_str() {
                "OPTIONS" => self.answer_options(&req, &reply_to),
                _ => self.reply_code(&req, &reply_to, 404, "Not Found (no user in Request-URI)"),
            };
        }
        let user = match self.authenticate(&req, &flow, true, now) {
            Ok(u) => u,
            Err(resp) => return self.reply(&req, &reply_to, resp),
        };
        if self.deposit_request(&req, &reply_to, Some(&ruri), user.as_deref()) {
            return;
        }
        self.route_initial(req, flow, reply_to, ruri, user, now);
    }

    fn answer_options(&mut self, req: &Message, to: &Flow) {
        let tag = self.random_hex(6);
        let mut r = req.response(200, "OK", Some(&tag));
        r.set("Allow", ALLOW);
        r.set("Accept", "application/sdp");
        self.reply(req, to, r);
    }

    /// A Via of ours whose branch carries the same loop hash means this request came back
    /// unchanged (RFC 3261 16.3 item 4); a spiral (changed Request-URI) is fine.
    fn is_loop(&self, req: &Message) -> bool {
        let hash = loop_hash(req);
        req.vias()
            .unwrap_or_default()
            .iter()
            .skip(1)
            .any(|v: &Via| {
                v.branch()
                    .and_then(|b| b.strip_prefix(BRANCH_MAGIC))
                    .is_some_and(|b| b.starts_with(&hash))
            })
    }

    fn unsupported_requirement(&self, req: &Message) -> Option<String> {
        let list = req.get_all("proxy-require").ok()?;
        let bad: Vec<&str> = list
            .into_iter()
            .filter(|o| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(o)))
            .collect();
        (!bad.is_empty()).then(|| bad.join(", "))
    }

    /// Removes Route entries at the top that name this proxy; returns how many.
    fn strip_own_routes(&self, req: &mut Message) -> usize {
        let mut n = 0;
        while let Some(first) = req
            .get_all("route")
            .ok()
            .and_then(|v| v.first().map(|s| s.to_string()))
        {
            match NameAddr::parse(&first) {
                Ok(na) if self.is_local_uri(&na.uri) => {
                    let _ = req.pop_front("route");
                    n += 1;
                }
                _ => break,
            }
        }
        n
    }

    /// Digest authentication of a REGISTER (`proxy` false: 401) or a call (true: 407).
    /// With no users configured, only loopback sources are served, unauthenticated.
    pub(super) fn authenticate(
        &mut self,
        req: &Message,
        flow: &Flow,
        proxy: bool,
        now: Instant,
    ) -> Result<Option<String>, Message> {
        let tag = self.random_hex(6);
        if self.config.users.is_empty() {
            if flow.remote.ip().is_loopback() {
                return Ok(None);
            }
            self.counters.auth_failures += 1;
            return Err(req.response(
                403,
                "Forbidden (no users configured: loopback only)",
                Some(&tag),
            ));
        }
        if proxy && self.trusted_peer(flow) {
            return Ok(None);
        }
        let header = if proxy {
            "proxy-authorization"
        } else {
            "authorization"
        };
        let method = req.method().unwrap_or("");
        let wall = SystemTime::now();
        let mut stale = false;
        let mut tried = false;
        for h in req.headers.iter().filter(|h| canonical(&h.name) == header) {
            let Some(c) = Credentials::parse(&h.value) else {
                continue;
            };
            if c.realm != self.auth.realm() {
                continue;
            }
            tried = true;
            match self
                .auth
                .verify(&c, method, self.config.users.as_ref(), wall)
            {
                Ok(user) => return Ok(Some(user)),
                Err(AuthError::Stale) => stale = true,
                Err(e) => {
                    tracing::info!(peer = %flow.remote, user = %c.username, error = %e, "SIP authentication failed");
                }
            }
        }
        if tried && !stale {
            self.counters.auth_failures += 1;
        }
        let _ = now;
        let (code, reason, name) = if proxy {
            (407, "Proxy Authentication Required", "Proxy-Authenticate")
        } else {
            (401, "Unauthorized", "WWW-Authenticate")
        };
        let mut r = req.response(code, reason, Some(&tag));
        for c in self.auth.challenges(wall, stale) {
            r.headers.push(super::super::Header {
                name: name.into(),
                value: c,
            });
        }
        Err(r)
    }

    /// Requests from a configured next hop (a trunk) are not challenged.
    fn trusted_peer(&self, flow: &Flow) -> bool {
        let ip = flow.remote.ip();
        self.config
            .outbound
            .as_ref()
            .is_some_and(|h| h.addr.ip() == ip)
            || self
                .config
                .routes
                .iter()
                .filter_map(|r| r.next_hop.as_ref())
                .any(|h| h.addr.ip() == ip)
    }

    fn on_register(&mut self, req: Message, flow: Flow, reply_to: Flow, now: Instant) {
        if !self.registrar.allow(flow.remote.ip(), now) {
            self.counters.rate_limited += 1;
            let tag = self.random_hex(6);
            let mut r = req.response(503, "Service Unavailable (REGISTER rate limit)", Some(&tag));
            r.set("Retry-After", "5");
            return self.reply(&req, &reply_to, r);
        }
        let user = match self.authenticate(&req, &flow, false, now) {
            Ok(u) => u,
            Err(resp) => return self.reply(&req, &reply_to, resp),
        };
        let outcome = self.registrar.register(&req, flow, user.as_deref(), now);
        if outcome.response.code() == Some(200) {
            self.counters.registrations += 1;
        }
        self.reply(&req, &reply_to, outcome.response);
    }

    fn on_cancel(&mut self, req: Message, reply_to: Flow) {
        let Some(mut key) = ServerKey::of(&req) else {
            return self.reply_code(&req, &reply_to, 400, "Bad Request (Via branch)");
        };
        key.method = "INVITE".into();
        let Some(st) = self.servers.get_mut(&key) else {
            return self.reply_code(&req, &reply_to, 481, "Call/Transaction Does Not Exist");
        };
        let pending = st.final_code.is_none();
        if pending {
            st.canceled = true;
        }
        let branches = st.branches.clone();
        let resp = req.response(200, "OK", None);
        let bytes = resp.to_bytes();
        self.send(reply_to, bytes);
        if pending {
            for b in branches {
                self.cancel_branch(&b);
            }
        }
    }

    fn on_ack(&mut self, mut req: Message, flow: Flow, now: Instant) {
        if let Some(key) = ServerKey::of(&req) {
            if let Some(st) = self.servers.get_mut(&key) {
                if st.final_code.is_some_and(|c| c >= 300) {
                    // Hop-by-hop ACK of a failure response: it ends here.
                    st.retransmit = None;
                    return;
                }
            }
        }
        self.strip_own_routes(&mut req);
        self.forward_in_dialog(req, flow, None, now);
    }

    /// Where an in-dialog (or pre-routed) request goes: the next Route, else the registered
    /// flow of the Request-URI's contact, else the Request-URI itself.
    pub(super) fn next_hop_of(&self, req: &Message, now: Instant) -> Option<Flow> {
        if let Some(route) = req
            .get_all("route")
            .ok()
            .and_then(|r| r.first().map(|s| s.to_string()))
        {
            let na = NameAddr::parse(&route).ok()?;
            return resolve(&na.uri);
        }
        let ruri = Uri::parse(req.request_uri()?).ok()?;
        if let Some(b) = self.registrar.by_contact(&ruri, now) {
            return Some(b.flow.clone());
        }
        resolve(&ruri)
    }

    pub(super) fn hop_flow(hop: &NextHop) -> Flow {
        Flow {
            transport: hop.transport,
            remote: hop.addr,
            conn: None,
        }
    }

    pub(super) fn has_sdp(msg: &Message) -> bool {
        body::sdp(msg).is_some()
    }
}

/// Require options of a request the proxy itself answers that it does not support.
fn unsupported_require(req: &Message) -> Option<String> {
    let list = req.get_all("require").ok()?;
    let bad: Vec<&str> = list
        .into_iter()
        .filter(|o| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(o)))
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

/// The loop hash of a request: what stays the same when it loops back unchanged.
pub(super) fn loop_hash(req: &Message) -> String {
    let data = format!(
        "{}|{}|{}|{}",
        req.request_uri().unwrap_or(""),
        req.from()
            .ok()
            .and_then(|f| f.tag().map(str::to_string))
            .unwrap_or_default(),
        req.call_id(),
        req.cseq().map(|c| c.seq).unwrap_or(0)
    );
    let d = ring::digest::digest(&ring::digest::SHA256, data.as_bytes());
    hex::encode(&d.as_ref()[..4])
}

pub(super) fn branch_prefix(req: &Message) -> String {
    format!("{BRANCH_MAGIC}{}", loop_hash(req))
}

/// The flow for a URI: its IP host and port, over its transport (sips: TLS). Host names
/// are resolved with the system resolver.
pub fn resolve(uri: &Uri) -> Option<Flow> {
    let u = uri.sip()?;
    let transport = match u.transport() {
        Some(t) => Transport::parse(&t)?,
        None if u.secure => Transport::Tls,
        None => Transport::Udp,
    };
    let port = u.port.unwrap_or(if transport == Transport::Tls {
        5061
    } else {
        5060
    });
    let ip = match u.ip() {
        Some(ip) => ip,
        None => {
            use std::net::ToSocketAddrs;
            (u.host.as_str(), port).to_socket_addrs().ok()?.next()?.ip()
        }
    };
    Some(Flow {
        transport,
        remote: std::net::SocketAddr::new(ip, port),
        conn: None,
    })
}
