//! Header names (full and compact forms), comma-separated header lists, and the typed views
//! the proxy needs: name-addr (From, To, Contact, Route), Via, CSeq and generic parameters.

use super::uri::Uri;
use super::ParseError;

/// The full, lower-case name of a header, expanding RFC 3261 / 3265 / 3515 / 4028 compact
/// forms (`v` → `via`, `i` → `call-id`, …).
pub fn canonical(name: &str) -> String {
    let full = match name.len() {
        1 => match name.as_bytes()[0].to_ascii_lowercase() {
            b'i' => "call-id",
            b'm' => "contact",
            b'e' => "content-encoding",
            b'l' => "content-length",
            b'c' => "content-type",
            b'f' => "from",
            b's' => "subject",
            b'k' => "supported",
            b't' => "to",
            b'v' => "via",
            b'r' => "refer-to",
            b'o' => "event",
            b'u' => "allow-events",
            b'b' => "referred-by",
            b'x' => "session-expires",
            b'a' => "accept-contact",
            b'j' => "reject-contact",
            b'd' => "request-disposition",
            b'y' => "identity",
            b'n' => "identity-info",
            _ => return name.to_ascii_lowercase(),
        },
        _ => return name.to_ascii_lowercase(),
    };
    full.to_string()
}

/// Headers whose values are comma-separated lists that may be split and combined.
pub fn is_list(canonical: &str) -> bool {
    matches!(
        canonical,
        "via"
            | "contact"
            | "route"
            | "record-route"
            | "allow"
            | "supported"
            | "require"
            | "proxy-require"
            | "unsupported"
            | "accept"
            | "accept-encoding"
            | "accept-language"
            | "content-encoding"
            | "path"
            | "p-asserted-identity"
            | "allow-events"
    )
}

/// Headers that must appear at most once (RFC 3261 section 7.3.1 and 20).
pub fn is_single(canonical: &str) -> bool {
    matches!(
        canonical,
        "to" | "from" | "call-id" | "cseq" | "max-forwards" | "content-type" | "expires"
    )
}

/// A SIP token character (RFC 3261 section 25.1).
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Result<Vec<&str>, ParseError> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(ParseError::Unbalanced("quote"));
    }
    if angle {
        return Err(ParseError::Unbalanced("angle bracket"));
    }
    out.push(value[start..].trim());
    Ok(out.into_iter().filter(|s| !s.is_empty()).collect())
}

/// `;name=value` parameters, in order; names lower-cased, values as written (quotes kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the leading `;` optional).
    pub fn parse(s: &str) -> Result<Params, ParseError> {
        let mut out = Vec::new();
        for part in split_outside_quotes(s, ';')? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (n, v) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
                None => (part, None),
            };
            if !is_token(n) {
                return Err(ParseError::BadParam(n.chars().take(32).collect()));
            }
            if let Some(v) = &v {
                // Tokens, quoted strings, and IPv6 addresses with or without brackets
                // (RFC 5118 4.5, 4.6).
                let ok = is_token(v)
                    || is_quoted(v)
                    || (!v.is_empty() && v.chars().all(|c| is_token_char(c) || "[]:".contains(c)));
                if !ok {
                    return Err(ParseError::BadParam(n.to_string()));
                }
            }
            out.push((n.to_ascii_lowercase(), v));
        }
        Ok(Params(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(p) => p.1 = value,
            None => self.0.push((name.to_ascii_lowercase(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

fn is_quoted(v: &str) -> bool {
    v.len() >= 2 && v.starts_with('"') && v.ends_with('"')
}

/// Splits at `sep` outside double quotes.
pub fn split_outside_quotes(s: &str, sep: char) -> Result<Vec<&str>, ParseError> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if quoted {
        return Err(ParseError::Unbalanced("quote"));
    }
    out.push(&s[start..]);
    Ok(out)
}

/// `"Display" <uri>;params`, `<uri>;params` or a bare `uri;params` (From, To, Contact,
/// Route, Record-Route, P-Asserted-Identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
    /// Whether the URI was inside angle brackets (then it is written back that way).
    pub bracketed: bool,
}

impl NameAddr {
    pub fn parse(s: &str) -> Result<NameAddr, ParseError> {
        let s = s.trim();
        if let Some(lt) = find_unquoted(s, '<') {
            let display = s[..lt].trim();
            let display = if display.is_empty() {
                None
            } else if is_quoted(display) {
                Some(display.to_string())
            } else {
                // An unquoted display name is a sequence of tokens.
                if !display.split_whitespace().all(is_token) {
                    return Err(ParseError::BadDisplayName);
                }
                Some(display.to_string())
            };
            let rest = &s[lt + 1..];
            let gt = rest
                .find('>')
                .ok_or(ParseError::Unbalanced("angle bracket"))?;
            let inner = &rest[..gt];
            // No whitespace inside the angle brackets (RFC 3261 LAQUOT / RAQUOT).
            if inner.starts_with(char::is_whitespace) || inner.ends_with(char::is_whitespace) {
                return Err(ParseError::BadNameAddr);
            }
            let uri = Uri::parse(inner)?;
            let after = rest[gt + 1..].trim_start();
            if !after.is_empty() && !after.starts_with(';') {
                return Err(ParseError::BadNameAddr);
            }
            Ok(NameAddr {
                display,
                uri,
                params: Params::parse(after)?,
                bracketed: true,
            })
        } else {
            // addr-spec: URI parameters belong to the header, not the URI (RFC 3261 20.10).
            let (u, p) = match s.find(';') {
                Some(i) => (s[..i].trim_end(), &s[i..]),
                None => (s, ""),
            };
            if u.contains(char::is_whitespace) || u.contains(['?', ',']) {
                return Err(ParseError::BadNameAddr);
            }
            Ok(NameAddr {
                display: None,
                uri: Uri::parse(u)?,
                params: Params::parse(p)?,
                bracketed: false,
            })
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").filter(|t| !t.is_empty())
    }
}

impl std::fmt::Display for NameAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        if self.bracketed || self.display.is_some() {
            write!(f, "<{}>{}", self.uri, self.params)
        } else {
            write!(f, "{}{}", self.uri, self.params)
        }
    }
}

fn find_unquoted(s: &str, want: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == want && !quoted {
            return Some(i);
        }
    }
    None
}

/// One Via entry: `SIP/2.0/UDP host:port;branch=…;rport;received=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(s: &str) -> Result<Via, ParseError> {
        let s = s.trim();
        let (proto, rest) = split_protocol(s).ok_or(ParseError::BadVia)?;
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest.trim(), ""),
        };
        let (host, port) = split_host_port(sent_by).ok_or(ParseError::BadVia)?;
        Ok(Via {
            transport: proto.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params: Params::parse(params)?,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").filter(|b| !b.is_empty())
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// `SIP / 2.0 / UDP rest` with optional LWS around the slashes: (transport, rest).
fn split_protocol(s: &str) -> Option<(&str, &str)> {
    let mut parts = s.splitn(3, '/');
    let name = parts.next()?.trim();
    let version = parts.next()?.trim();
    let tail = parts.next()?.trim_start();
    if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
        return None;
    }
    let end = tail.find(|c: char| c.is_whitespace()).unwrap_or(tail.len());
    let transport = &tail[..end];
    if !is_token(transport) {
        return None;
    }
    Some((transport, tail[end..].trim_start()))
}

/// `host[:port]` with IPv6 references in brackets.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let rest = &s[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p.trim()),
            None if rest.trim().is_empty() => None,
            None => return None,
        };
        (&s[..=end], port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.trim(), Some(p.trim())),
            None => (s, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// `CSeq: 4711 INVITE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: String,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let mut it = s.split_whitespace();
        let (Some(n), Some(m), None) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::BadCSeq);
        };
        // RFC 3261: the sequence number is a 32-bit unsigned integer below 2**31.
        let seq: u32 = n.parse().map_err(|_| ParseError::BadCSeq)?;
        if seq >= 1 << 31 || !is_token(m) {
            return Err(ParseError::BadCSeq);
        }
        Ok(CSeq {
            seq,
            method: m.to_string(),
        })
    }
}

impl std::fmt::Display for CSeq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Unquotes a quoted-string (`"a\"b"` → `a"b`); a token is returned as it is.
pub fn unquote(v: &str) -> String {
    let v = v.trim();
    if !is_quoted(v) {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len());
    let mut escaped = false;
    for c in v[1..v.len() - 1].chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}
