//! Typed attribute values: direction, `a=setup`, `a=fingerprint`, `a=rtcp`, `a=rtpmap`,
//! `a=ssrc`. Each parses the text after `a=<name>:` and writes it back.

use std::fmt;
use std::net::IpAddr;

use super::fields::{digits, Connection};
use super::{AttrError, Attribute};

/// Media direction (RFC 8866 §6.7, RFC 3264 §6.1). Without one, media is `sendrecv`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute names, in the order of the variants.
    pub const NAMES: &'static [&'static str] = &["sendrecv", "sendonly", "recvonly", "inactive"];

    /// The direction an attribute name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction seen from the other side: an answer to `sendonly` is `recvonly`.
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `a=setup` role of a connection-oriented or DTLS transport (RFC 4145 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
    HoldConn,
}

impl Setup {
    pub fn parse(value: &str) -> Result<Self, AttrError> {
        [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(value.trim()))
        .ok_or(AttrError::Bad("setup role"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `a=fingerprint` (RFC 8122 §5): a hash function and the certificate's digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The hash function token as written, e.g. "sha-256".
    pub hash: String,
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// Parses `<hash-func> <XX:XX:...>`; hex digits of either case are accepted.
    pub fn parse(value: &str) -> Result<Self, AttrError> {
        let mut f = value.split_ascii_whitespace();
        let hash = f.next().ok_or(AttrError::MissingValue)?;
        if !hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(AttrError::Bad("hash function"));
        }
        let hex = f.next().ok_or(AttrError::Missing("fingerprint"))?;
        if f.next().is_some() {
            return Err(AttrError::Bad("fingerprint"));
        }
        let digest = hex
            .split(':')
            .map(|octet| {
                if octet.len() != 2 {
                    return None;
                }
                u8::from_str_radix(octet, 16).ok()
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(AttrError::Bad("fingerprint"))?;
        Ok(Fingerprint {
            hash: hash.to_string(),
            digest,
        })
    }

    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("fingerprint", self.to_string())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hash)?;
        for (i, b) in self.digest.iter().enumerate() {
            let sep = if i == 0 { ' ' } else { ':' };
            write!(f, "{sep}{b:02X}")?;
        }
        Ok(())
    }
}

/// An `a=rtcp` (RFC 3605): the RTCP port, and an address when it differs from `c=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub address: Option<Connection>,
}

impl Rtcp {
    pub fn new(port: u16, ip: Option<IpAddr>) -> Self {
        Rtcp {
            port,
            address: ip.map(Connection::new),
        }
    }

    /// Parses `<port> [<nettype> <addrtype> <address>]`.
    pub fn parse(value: &str) -> Result<Self, AttrError> {
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let (port, rest) = f.split_first().ok_or(AttrError::MissingValue)?;
        let port = parse_port(port)?;
        let address = match rest {
            [] => None,
            [net, addr_type, address] => Some(
                Connection::from_parts(net, addr_type, address)
                    .map_err(|_| AttrError::Bad("address"))?,
            ),
            _ => return Err(AttrError::Bad("address")),
        };
        Ok(Rtcp { port, address })
    }

    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("rtcp", self.to_string())
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(a) = &self.address {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// A port number: digits only, at most 65535.
pub(crate) fn parse_port(s: &str) -> Result<u16, AttrError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AttrError::Bad("port"));
    }
    digits(s).ok_or(AttrError::PortOutOfRange)
}

/// An `a=rtpmap` (RFC 8866 §6.6): `<payload type> <encoding>/<clock rate>[/<params>]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    /// Encoding parameters, e.g. the channel count of audio.
    pub params: Option<String>,
}

impl RtpMap {
    pub fn parse(value: &str) -> Result<Self, AttrError> {
        let (pt, rest) = value
            .trim()
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or(AttrError::Missing("encoding"))?;
        let payload_type = payload_type(pt)?;
        let mut parts = rest.trim().splitn(3, '/');
        let encoding = parts.next().unwrap_or_default();
        if encoding.is_empty() {
            return Err(AttrError::Missing("encoding"));
        }
        let clock_rate = digits(parts.next().ok_or(AttrError::Missing("clock rate"))?)
            .ok_or(AttrError::Bad("clock rate"))?;
        Ok(RtpMap {
            payload_type,
            encoding: encoding.to_string(),
            clock_rate,
            params: parts.next().map(str::to_string),
        })
    }

    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("rtpmap", self.to_string())
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(p) = &self.params {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// An RTP payload type: 0 to 127.
pub(crate) fn payload_type(s: &str) -> Result<u8, AttrError> {
    digits::<u8>(s)
        .filter(|pt| *pt < 128)
        .ok_or(AttrError::Bad("payload type"))
}

/// An `a=ssrc` (RFC 5576 §4.1): `<ssrc-id> <attribute>[:<value>]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ssrc {
    pub id: u32,
    pub attribute: String,
    pub value: Option<String>,
}

impl Ssrc {
    pub fn parse(value: &str) -> Result<Self, AttrError> {
        let (id, rest) = value
            .split_once(' ')
            .ok_or(AttrError::Missing("source attribute"))?;
        let id = digits(id).ok_or(AttrError::Bad("SSRC"))?;
        let (attribute, value) = match rest.split_once(':') {
            Some((a, v)) => (a, Some(v.to_string())),
            None => (rest, None),
        };
        if attribute.is_empty() {
            return Err(AttrError::Missing("source attribute"));
        }
        Ok(Ssrc {
            id,
            attribute: attribute.to_string(),
            value,
        })
    }

    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("ssrc", self.to_string())
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id, self.attribute)?;
        if let Some(v) = &self.value {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}
