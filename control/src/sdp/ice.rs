//! `a=candidate` (RFC 8839 §5.1):
//! `<foundation> <component> <transport> <priority> <address> <port> typ <type>
//!  [raddr <address>] [rport <port>] *(<extension name> <extension value>)`.

use std::fmt;
use std::net::IpAddr;

use super::fields::digits;
use super::values::parse_port;
use super::{AttrError, Attribute};

/// The candidate type (RFC 8445 §5.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CandidateType {
    Host,
    Srflx,
    Prflx,
    Relay,
    Other(String),
}

impl CandidateType {
    pub fn parse(s: &str) -> Self {
        match s {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            other => CandidateType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
            CandidateType::Other(s) => s,
        }
    }
}

/// One ICE candidate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub foundation: String,
    /// 1 for RTP, 2 for RTCP.
    pub component: u16,
    /// "UDP" or "TCP" as written (case varies between implementations).
    pub transport: String,
    pub priority: u32,
    /// An IP address, or a host name such as an mDNS `.local` name.
    pub address: String,
    pub port: u16,
    pub kind: CandidateType,
    pub rel_addr: Option<String>,
    pub rel_port: Option<u16>,
    /// Extension attributes in order, e.g. `("generation", "0")`, `("tcptype", "active")`.
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// A host candidate for `ip`:`port`.
    pub fn host(foundation: &str, component: u16, priority: u32, ip: IpAddr, port: u16) -> Self {
        Candidate {
            foundation: foundation.to_string(),
            component,
            transport: "UDP".to_string(),
            priority,
            address: ip.to_string(),
            port,
            kind: CandidateType::Host,
            rel_addr: None,
            rel_port: None,
            extensions: Vec::new(),
        }
    }

    /// Parses the text after `a=candidate:`.
    pub fn parse(value: &str) -> Result<Self, AttrError> {
        let f: Vec<&str> = value.split_ascii_whitespace().collect();
        let [foundation, component, transport, priority, address, port, typ, kind, rest @ ..] =
            &f[..]
        else {
            return Err(AttrError::Missing("candidate fields"));
        };
        let foundation_ok = foundation.len() <= 32
            && foundation
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        if !foundation_ok {
            return Err(AttrError::Bad("foundation"));
        }
        if !typ.eq_ignore_ascii_case("typ") {
            return Err(AttrError::Missing("typ"));
        }
        let mut c = Candidate {
            foundation: foundation.to_string(),
            component: digits(component)
                .filter(|c| (1..=256).contains(c))
                .ok_or(AttrError::Bad("component"))?,
            transport: transport.to_string(),
            priority: digits(priority).ok_or(AttrError::Bad("priority"))?,
            address: address.to_string(),
            port: parse_port(port)?,
            kind: CandidateType::parse(kind),
            rel_addr: None,
            rel_port: None,
            extensions: Vec::new(),
        };
        let mut rest = rest;
        if let [name, addr, tail @ ..] = rest {
            if *name == "raddr" {
                c.rel_addr = Some(addr.to_string());
                rest = tail;
            }
        }
        if let [name, port, tail @ ..] = rest {
            if *name == "rport" {
                c.rel_port = Some(parse_port(port)?);
                rest = tail;
            }
        }
        let pairs = rest.chunks(2);
        for pair in pairs {
            let [name, value] = pair else {
                return Err(AttrError::Bad("extension without a value"));
            };
            c.extensions.push((name.to_string(), value.to_string()));
        }
        Ok(c)
    }

    /// The value of extension `name`, e.g. "generation".
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The address as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("candidate", self.to_string())
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.kind.as_str()
        )?;
        if let Some(a) = &self.rel_addr {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.rel_port {
            write!(f, " rport {p}")?;
        }
        for (n, v) in &self.extensions {
            write!(f, " {n} {v}")?;
        }
        Ok(())
    }
}
