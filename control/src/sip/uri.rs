//! SIP and SIPS URIs (RFC 3261 section 19.1); other schemes (`tel:`, …) are kept as text.

use std::net::IpAddr;

use super::header::{split_host_port, Params};
use super::ParseError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// Any other absolute URI, kept verbatim.
    Other(String),
}

/// `sip:user:password@host:port;params?headers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// User part, still %-escaped as written.
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// `?h=v&…`, as written (without the `?`).
    pub headers: Option<String>,
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let s = s.trim();
        let bad = || ParseError::BadUri(s.chars().take(64).collect());
        let colon = s.find(':').ok_or_else(bad)?;
        let scheme = &s[..colon];
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(bad());
        }
        if s.contains(|c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>') {
            return Err(bad());
        }
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "sip" => false,
            "sips" => true,
            _ => return Ok(Uri::Other(s.to_string())),
        };
        let rest = &s[colon + 1..];
        // The user part (which may hold `;`, `?` and escaped `@`) ends at the last '@';
        // headers (`?…`) follow the host part.
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((a, h)) => (a, Some(h.to_string())),
            None => (hostpart, None),
        };
        let (user, password) = match userinfo {
            Some(u) => {
                let (u, p) = match u.split_once(':') {
                    Some((u, p)) => (u, Some(p.to_string())),
                    None => (u, None),
                };
                if u.is_empty() || !u.chars().all(is_user_char) {
                    return Err(bad());
                }
                check_escapes(u).ok_or_else(bad)?;
                (Some(u.to_string()), p)
            }
            None => (None, None),
        };
        let (hp, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], &hostpart[i..]),
            None => (hostpart, ""),
        };
        let (host, port) = split_host_port(hp).ok_or_else(bad)?;
        if !valid_host(host) {
            return Err(bad());
        }
        Ok(Uri::Sip(SipUri {
            secure,
            user,
            password,
            host: host.to_string(),
            port,
            params: Params::parse(params)?,
            headers,
        }))
    }

    pub fn sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }

    /// The user part, unescaped when it is valid UTF-8 after unescaping.
    pub fn user(&self) -> Option<String> {
        self.sip()?.user.as_deref().map(unescape)
    }
}

impl SipUri {
    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// The `transport=` parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.params.get("transport").map(str::to_ascii_lowercase)
    }
}

impl std::fmt::Display for Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uri::Other(s) => f.write_str(s),
            Uri::Sip(u) => {
                f.write_str(if u.secure { "sips:" } else { "sip:" })?;
                if let Some(user) = &u.user {
                    f.write_str(user)?;
                    if let Some(p) = &u.password {
                        write!(f, ":{p}")?;
                    }
                    f.write_str("@")?;
                }
                f.write_str(&u.host)?;
                if let Some(p) = u.port {
                    write!(f, ":{p}")?;
                }
                write!(f, "{}", u.params)?;
                if let Some(h) = &u.headers {
                    write!(f, "?{h}")?;
                }
                Ok(())
            }
        }
    }
}

fn is_user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,;?/".contains(c)
}

fn check_escapes(s: &str) -> Option<()> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            if !h.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Some(())
}

fn valid_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[') {
        return inner
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Decodes `%XX` escapes; invalid sequences are kept as written.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
