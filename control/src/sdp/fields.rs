//! The typed SDP lines other than attributes: `o=`, `c=`, the `m=` protocol, and the raw
//! lines kept as they came (`i=`, `b=`, `t=`, unknown letters, ...).

use std::fmt;
use std::net::IpAddr;

/// Parses a non-empty string of ASCII digits (no sign, no spaces) as a number.
pub(crate) fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The address type of `o=` and `c=` lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
    /// Any other token, kept as written.
    Other(String),
}

impl AddrType {
    pub fn parse(s: &str) -> Self {
        match s {
            "IP4" => AddrType::Ip4,
            "IP6" => AddrType::Ip6,
            other => AddrType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
            AddrType::Other(s) => s,
        }
    }

    /// `IP4` or `IP6`, as suits `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }
}

impl fmt::Display for AddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as a string: implementations use numbers wider than 64 bits.
    pub sess_id: String,
    pub sess_version: u64,
    pub net_type: String,
    pub addr_type: AddrType,
    pub address: String,
}

impl Origin {
    /// An origin `<username> <sess_id> <sess_version> IN IP4|IP6 <ip>`.
    pub fn new(username: &str, sess_id: &str, sess_version: u64, ip: IpAddr) -> Self {
        Origin {
            username: username.to_string(),
            sess_id: sess_id.to_string(),
            sess_version,
            net_type: "IN".to_string(),
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
        }
    }

    /// Parses the value of an `o=` line; the error says what was wrong.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let [username, sess_id, version, net_type, addr_type, address] = f[..] else {
            return Err("expected six fields");
        };
        Ok(Origin {
            username: username.to_string(),
            sess_id: sess_id.to_string(),
            sess_version: digits(version).ok_or("session version is not a 64-bit number")?,
            net_type: net_type.to_string(),
            addr_type: AddrType::parse(addr_type),
            address: address.to_string(),
        })
    }

    /// The address as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Sets the address (and its type) to `ip`.
    pub fn set_ip(&mut self, ip: IpAddr) {
        self.net_type = "IN".to_string();
        self.addr_type = AddrType::of(ip);
        self.address = ip.to_string();
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.sess_id,
            self.sess_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

/// A `c=` line (RFC 8866 §5.7), also the address part of `a=rtcp` (RFC 3605).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: AddrType,
    /// An IP address or a host name; see [`Connection::ip`].
    pub address: String,
    /// IPv4 multicast TTL (`addr/ttl`).
    pub ttl: Option<u8>,
    /// Number of multicast addresses (`addr/ttl/n` for IPv4, `addr/n` for IPv6).
    pub num_addresses: Option<u32>,
}

impl Connection {
    /// `IN IP4 <ip>` or `IN IP6 <ip>`.
    pub fn new(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".to_string(),
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
            ttl: None,
            num_addresses: None,
        }
    }

    /// Parses the value of a `c=` line; the error says what was wrong.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let [net_type, addr_type, address] = f[..] else {
            return Err("expected three fields");
        };
        Self::from_parts(net_type, addr_type, address)
    }

    pub(crate) fn from_parts(
        net_type: &str,
        addr_type: &str,
        address: &str,
    ) -> Result<Self, &'static str> {
        let addr_type = AddrType::parse(addr_type);
        let mut c = Connection {
            net_type: net_type.to_string(),
            addr_type,
            address: address.to_string(),
            ttl: None,
            num_addresses: None,
        };
        let mut parts = address.split('/');
        let base = parts.next().unwrap_or_default();
        let first = parts.next();
        let second = parts.next();
        match (&c.addr_type, first, second, parts.next()) {
            (AddrType::Other(_), ..) | (_, None, ..) => {}
            (AddrType::Ip4, Some(ttl), n, None) => {
                c.ttl = Some(digits(ttl).ok_or("bad multicast TTL")?);
                c.num_addresses = n
                    .map(|n| digits(n).ok_or("bad number of addresses"))
                    .transpose()?;
                c.address = base.to_string();
            }
            (AddrType::Ip6, Some(n), None, None) => {
                c.num_addresses = Some(digits(n).ok_or("bad number of addresses")?);
                c.address = base.to_string();
            }
            _ => return Err("too many '/' parts in the address"),
        }
        if c.address.is_empty() {
            return Err("empty address");
        }
        Ok(c)
    }

    /// The address as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Sets a unicast address: `IN IP4|IP6 <ip>`, without TTL or address count.
    pub fn set_ip(&mut self, ip: IpAddr) {
        *self = Connection::new(ip);
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(n) = self.num_addresses {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// The transport protocol of an `m=` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    RtpAvp,
    RtpSavp,
    RtpAvpf,
    RtpSavpf,
    UdpTlsRtpSavp,
    UdpTlsRtpSavpf,
    /// Any other protocol, kept as written (`udptl`, `TCP/DTLS/RTP/SAVPF`, `UDP/BFCP`...).
    Other(String),
}

impl Proto {
    /// The protocol named `s`; names are case-sensitive, unknown ones become `Other`.
    pub fn parse(s: &str) -> Self {
        match s {
            "RTP/AVP" => Proto::RtpAvp,
            "RTP/SAVP" => Proto::RtpSavp,
            "RTP/AVPF" => Proto::RtpAvpf,
            "RTP/SAVPF" => Proto::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => Proto::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => Proto::UdpTlsRtpSavpf,
            other => Proto::Other(other.to_string()),
        }
    }

    /// The RTP profile with the given properties (`dtls` implies `srtp`).
    pub fn rtp(srtp: bool, dtls: bool, feedback: bool) -> Self {
        match (srtp || dtls, dtls, feedback) {
            (false, _, false) => Proto::RtpAvp,
            (false, _, true) => Proto::RtpAvpf,
            (true, false, false) => Proto::RtpSavp,
            (true, false, true) => Proto::RtpSavpf,
            (true, true, false) => Proto::UdpTlsRtpSavp,
            (true, true, true) => Proto::UdpTlsRtpSavpf,
        }
    }

    /// The protocol as written in an `m=` line.
    pub fn as_str(&self) -> &str {
        match self {
            Proto::RtpAvp => "RTP/AVP",
            Proto::RtpSavp => "RTP/SAVP",
            Proto::RtpAvpf => "RTP/AVPF",
            Proto::RtpSavpf => "RTP/SAVPF",
            Proto::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            Proto::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
            Proto::Other(s) => s,
        }
    }

    fn profile(&self) -> Option<&str> {
        let mut parts = self.as_str().rsplit('/');
        let profile = parts.next()?;
        parts
            .any(|p| p.eq_ignore_ascii_case("RTP"))
            .then_some(profile)
    }

    /// Whether this is an RTP profile (`.../RTP/<profile>`).
    pub fn is_rtp(&self) -> bool {
        self.profile().is_some()
    }

    /// Whether media is SRTP (a SAVP or SAVPF profile).
    pub fn is_srtp(&self) -> bool {
        self.profile()
            .is_some_and(|p| p.eq_ignore_ascii_case("SAVP") || p.eq_ignore_ascii_case("SAVPF"))
    }

    /// Whether SRTP is keyed by DTLS (RFC 5764, RFC 7850: `UDP/TLS/...`, `TCP/DTLS/...`).
    pub fn is_dtls(&self) -> bool {
        self.is_srtp()
            && self
                .as_str()
                .split('/')
                .any(|p| p.eq_ignore_ascii_case("TLS") || p.eq_ignore_ascii_case("DTLS"))
    }

    /// Whether the profile has RTCP feedback (AVPF or SAVPF, RFC 4585 / RFC 5124).
    pub fn has_feedback(&self) -> bool {
        self.profile()
            .is_some_and(|p| p.eq_ignore_ascii_case("AVPF") || p.eq_ignore_ascii_case("SAVPF"))
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Proto {
    fn from(s: &str) -> Self {
        Proto::parse(s)
    }
}

/// A line kept as written: `i=`, `u=`, `e=`, `p=`, `b=`, `t=`, `r=`, `z=`, `k=`, a second
/// `c=` in a section, and any line type this parser does not know.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Line {
    /// The line type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

impl Line {
    pub fn new(kind: char, value: impl Into<String>) -> Self {
        Line {
            kind,
            value: value.into(),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind, self.value)
    }
}

impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // k= carries an encryption key (RFC 4566 §5.12): never print it.
        let value = if self.kind == 'k' {
            "<redacted>"
        } else {
            &self.value
        };
        write!(f, "Line({}={:?})", self.kind, value)
    }
}
