//! SIP messages (RFC 3261 section 7): start line, headers in their original order and
//! spelling (unfolded), body. Parsing checks what a proxy relies on and keeps the rest as
//! text; writing puts back what was read, with a Content-Length that matches the body.

use super::header::{canonical, is_list, is_single, is_token, split_list, CSeq, NameAddr, Via};
use super::uri::Uri;
use super::ParseError;

/// Largest message accepted on any transport.
pub const MAX_MESSAGE: usize = 65_535;
/// Most headers in one message.
const MAX_HEADERS: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// One header line as received: name as written (compact or full), value unfolded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

impl Message {
    /// Parses one message from a datagram (or a frame cut by [`super::framing`]). A body
    /// longer than Content-Length is cut; a shorter one is an error (RFC 3261 18.3).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge(bytes.len()));
        }
        // Leading CRLFs (keep-alives, stray line ends) are skipped (RFC 3261 7.5).
        let start = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(ParseError::Empty)?;
        let bytes = &bytes[start..];
        let (head_len, body_at) = head_end(bytes).ok_or(ParseError::NoHeaderEnd)?;
        let head = std::str::from_utf8(&bytes[..head_len]).map_err(|_| ParseError::NotUtf8)?;
        let lines = unfold(head);
        let mut it = lines.into_iter();
        let first = it.next().ok_or(ParseError::Empty)?;
        let start = parse_start_line(&first)?;
        let mut headers = Vec::new();
        for line in it {
            if headers.len() >= MAX_HEADERS {
                return Err(ParseError::TooManyHeaders);
            }
            headers.push(parse_header_line(&line)?);
        }
        let mut msg = Message {
            start,
            headers,
            body: Vec::new(),
        };
        let rest = &bytes[body_at..];
        msg.body = match msg.content_length()? {
            Some(n) if n > rest.len() => {
                return Err(ParseError::BodyTruncated {
                    declared: n,
                    got: rest.len(),
                })
            }
            Some(n) => rest[..n].to_vec(),
            None => rest.to_vec(),
        };
        msg.validate()?;
        Ok(msg)
    }

    /// Checks the mandatory headers and single-valued headers (RFC 3261 8.1.1, 20).
    fn validate(&self) -> Result<(), ParseError> {
        for name in ["to", "from", "call-id", "cseq", "via"] {
            if self.get(name).is_none() {
                return Err(ParseError::MissingHeader(name));
            }
        }
        for h in &self.headers {
            let c = canonical(&h.name);
            if is_single(&c)
                && self
                    .headers
                    .iter()
                    .filter(|o| canonical(&o.name) == c)
                    .count()
                    > 1
            {
                return Err(ParseError::Repeated(c));
            }
        }
        let cseq = self.cseq()?;
        if let StartLine::Request { method, uri } = &self.start {
            if cseq.method != *method {
                return Err(ParseError::CSeqMismatch);
            }
            match Uri::parse(uri)? {
                Uri::Sip(u) if u.headers.is_some() => {
                    return Err(ParseError::BadUri("headers in a Request-URI".into()))
                }
                _ => {}
            }
            self.max_forwards()?;
        }
        self.from()?;
        self.to()?;
        self.vias()?;
        if self.call_id().is_empty() {
            return Err(ParseError::MissingHeader("call-id"));
        }
        if let Some(e) = self.get("expires") {
            parse_delta(e).ok_or(ParseError::BadValue("expires"))?;
        }
        Ok(())
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first value of a header (by full or compact name).
    pub fn get(&self, name: &str) -> Option<&str> {
        let want = canonical(name);
        self.headers
            .iter()
            .find(|h| canonical(&h.name) == want)
            .map(|h| h.value.as_str())
    }

    /// Every value of a header, list headers split at top-level commas.
    pub fn get_all(&self, name: &str) -> Result<Vec<&str>, ParseError> {
        let want = canonical(name);
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| canonical(&h.name) == want) {
            if is_list(&want) {
                out.extend(split_list(&h.value)?);
            } else {
                out.push(h.value.as_str());
            }
        }
        Ok(out)
    }

    pub fn call_id(&self) -> &str {
        self.get("call-id").unwrap_or("")
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.get("cseq").ok_or(ParseError::MissingHeader("cseq"))?)
    }

    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.get("from").ok_or(ParseError::MissingHeader("from"))?)
    }

    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.get("to").ok_or(ParseError::MissingHeader("to"))?)
    }

    pub fn vias(&self) -> Result<Vec<Via>, ParseError> {
        self.get_all("via")?.into_iter().map(Via::parse).collect()
    }

    pub fn top_via(&self) -> Result<Via, ParseError> {
        self.vias()?
            .into_iter()
            .next()
            .ok_or(ParseError::MissingHeader("via"))
    }

    /// Max-Forwards (0–255); `None` when absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.get("max-forwards") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u8>()
                .map(Some)
                .map_err(|_| ParseError::BadValue("max-forwards")),
        }
    }

    fn content_length(&self) -> Result<Option<usize>, ParseError> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|h| canonical(&h.name) == "content-length")
            .map(|h| h.value.trim())
            .collect();
        let Some(first) = values.first() else {
            return Ok(None);
        };
        if values.len() > 1 {
            return Err(ParseError::Repeated("content-length".into()));
        }
        if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadValue("content-length"));
        }
        first
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ParseError::BadValue("content-length"))
    }

    pub fn content_type(&self) -> Option<String> {
        self.get("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Removes every header with this name.
    pub fn remove(&mut self, name: &str) {
        let want = canonical(name);
        self.headers.retain(|h| canonical(&h.name) != want);
    }

    /// Replaces the first header with this name, or appends it.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let want = canonical(name);
        let value = value.into();
        match self.headers.iter_mut().find(|h| canonical(&h.name) == want) {
            Some(h) => h.value = value,
            None => self.headers.push(Header {
                name: name.to_string(),
                value,
            }),
        }
    }

    /// Inserts a header before every other header of the same name (Via, Record-Route).
    pub fn push_front(&mut self, name: &str, value: impl Into<String>) {
        let want = canonical(name);
        let at = self
            .headers
            .iter()
            .position(|h| canonical(&h.name) == want)
            .unwrap_or(self.headers.len());
        self.headers.insert(
            at,
            Header {
                name: name.to_string(),
                value: value.into(),
            },
        );
    }

    /// Removes the first element of a list header (top Via, top Route).
    pub fn pop_front(&mut self, name: &str) -> Result<Option<String>, ParseError> {
        let want = canonical(name);
        let Some(i) = self.headers.iter().position(|h| canonical(&h.name) == want) else {
            return Ok(None);
        };
        let parts = split_list(&self.headers[i].value)?;
        let first = parts.first().map(|s| s.to_string());
        if parts.len() <= 1 {
            self.headers.remove(i);
        } else {
            self.headers[i].value = parts[1..].join(", ");
        }
        Ok(first)
    }

    /// Replaces the first element of a list header (the top Via) where it stands.
    pub fn replace_front(&mut self, name: &str, value: &str) -> Result<(), ParseError> {
        let want = canonical(name);
        let Some(i) = self.headers.iter().position(|h| canonical(&h.name) == want) else {
            return Err(ParseError::MissingHeader("via"));
        };
        let mut parts: Vec<String> = split_list(&self.headers[i].value)?
            .into_iter()
            .map(str::to_string)
            .collect();
        match parts.first_mut() {
            Some(p) => *p = value.to_string(),
            None => parts.push(value.to_string()),
        }
        self.headers[i].value = parts.join(", ");
        Ok(())
    }

    /// Sets the body and its Content-Type (or removes both for an empty body).
    pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
        match content_type {
            Some(ct) => self.set("Content-Type", ct),
            None if body.is_empty() => self.remove("content-type"),
            None => {}
        }
        self.body = body;
    }

    /// The message as bytes, Content-Length rewritten to the body's length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512 + self.headers.len() * 40);
        match &self.start {
            StartLine::Request { method, uri } => {
                out.push_str(&format!("{method} {uri} SIP/2.0\r\n"));
            }
            StartLine::Response { code, reason } => {
                out.push_str(&format!("SIP/2.0 {code} {reason}\r\n"));
            }
        }
        for h in &self.headers {
            if canonical(&h.name) == "content-length" {
                continue;
            }
            out.push_str(&h.name);
            out.push_str(": ");
            out.push_str(&h.value);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// A response to this request (RFC 3261 8.2.6): Via, From, To, Call-ID and CSeq copied;
    /// `to_tag` added to To when it has none.
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut headers = Vec::new();
        for h in &self.headers {
            let c = canonical(&h.name);
            if matches!(c.as_str(), "via" | "from" | "call-id" | "cseq") {
                headers.push(h.clone());
            } else if c == "to" {
                let mut value = h.value.clone();
                if let (Some(tag), Ok(to)) = (to_tag, NameAddr::parse(&h.value)) {
                    if to.tag().is_none() {
                        value.push_str(";tag=");
                        value.push_str(tag);
                    }
                }
                headers.push(Header {
                    name: h.name.clone(),
                    value,
                });
            }
        }
        Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers,
            body: Vec::new(),
        }
    }
}

/// A delta-seconds value (Expires, expires=); overlarge values saturate (RFC 3261 20.19).
pub fn parse_delta(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32),
    )
}

/// Where the header section ends: (its length, where the body starts). Bare LF line ends
/// are tolerated.
pub fn head_end(b: &[u8]) -> Option<(usize, usize)> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = b.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((l, l + 2)),
        (Some(c), _) => Some((c, c + 4)),
        (None, Some(l)) => Some((l, l + 2)),
        (None, None) => None,
    }
}

/// Splits the header section into logical lines, joining folded continuation lines.
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.starts_with([' ', '\t']) && !lines.is_empty() {
            if let Some(last) = lines.last_mut() {
                let trimmed = last.trim_end().len();
                last.truncate(trimmed);
                last.push(' ');
                last.push_str(raw.trim_start());
            }
        } else {
            lines.push(raw.to_string());
        }
    }
    lines
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::BadStartLine)?;
        if version != "2.0" {
            return Err(ParseError::BadVersion);
        }
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStatus);
        }
        let code: u16 = code.parse().map_err(|_| ParseError::BadStatus)?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStatus);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    // Method SP Request-URI SP SIP-Version, single spaces, nothing else (RFC 4475 3.1.2.7-9).
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(ParseError::BadStartLine);
    };
    if !is_token(method) || uri.is_empty() {
        return Err(ParseError::BadStartLine);
    }
    match version.strip_prefix("SIP/") {
        Some("2.0") => {}
        Some(_) => return Err(ParseError::BadVersion),
        None => return Err(ParseError::BadStartLine),
    }
    Uri::parse(uri)?;
    Ok(StartLine::Request {
        method: method.to_string(),
        uri: uri.to_string(),
    })
}

fn parse_header_line(line: &str) -> Result<Header, ParseError> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| ParseError::BadHeader(line.chars().take(32).collect()))?;
    let name = name.trim_end_matches([' ', '\t']);
    if !is_token(name) {
        return Err(ParseError::BadHeader(name.chars().take(32).collect()));
    }
    Ok(Header {
        name: name.to_string(),
        value: value.trim().to_string(),
    })
}
