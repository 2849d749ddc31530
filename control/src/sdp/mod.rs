//! SDP (RFC 8866): a parser and writer that keeps what it does not understand, with typed
//! access to what a media relay reads and rewrites (connection addresses, ports, protocols,
//! `a=crypto`, `a=rtcp`, `a=rtcp-mux`, direction, DTLS and ICE attributes).
//!
//! Every line keeps its place within its section, unknown line types and attributes are
//! kept verbatim, and the writer uses CRLF (LF-only input is accepted). For a well-formed
//! body `parse(s).to_string()` is `s` with CRLF line endings, and for any parsed description
//! `parse(d.to_string()) == d`.
//!
//! [`SessionDescription::parse`] checks the lines that shape the description (`v=`, `o=`,
//! `s=`, `c=`, `m=`) and keeps attributes as text, as rtpengine does: a malformed `a=crypto`
//! among good ones is reported when it is read ([`MediaDescription::cryptos`]), not by
//! failing the whole offer. [`SessionDescription::parse_strict`] also checks every typed
//! attribute and says on which line one is wrong.
//!
//! ```
//! use control::sdp::{Direction, Proto, SessionDescription};
//! let mut sdp = SessionDescription::parse(
//!     "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
//!      m=audio 49170 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n",
//! )
//! .unwrap();
//! let m = &mut sdp.media[0];
//! m.set_port(30000);
//! m.set_proto(Proto::RtpSavp);
//! m.set_direction(Direction::SendOnly);
//! assert_eq!(
//!     sdp.to_string(),
//!     "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
//!      m=audio 30000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"
//! );
//! ```

mod attribute;
mod crypto;
mod error;
mod fields;
mod ice;
mod layout;
mod media;
mod parse;
mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

pub use attribute::{Attribute, DTLS_ATTRIBUTES, ICE_ATTRIBUTES};
pub use crypto::{Crypto, KeyParam};
pub use error::{AttrError, CryptoError, SdpError};
pub use fields::{AddrType, Connection, Line, Origin, Proto};
pub use ice::{Candidate, CandidateType};
pub use media::MediaDescription;
pub use values::{Direction, Fingerprint, Rtcp, RtpMap, Setup, Ssrc};

use attribute::shared_attribute_methods;
use layout::{Item, Slot};

/// The largest SDP body accepted, in bytes.
pub const MAX_SDP_SIZE: usize = 64 * 1024;

/// A whole SDP body: the session section and its media sections.
#[derive(Clone, Debug)]
pub struct SessionDescription {
    pub origin: Origin,
    /// The `s=` text as written (may be " " or "-").
    pub session_name: String,
    /// The session-level `c=`, the default for media sections without their own.
    pub connection: Option<Connection>,
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i=`, `u=`, `e=`, `p=`, `b=`, `t=`, `r=`, `z=`, `k=`,
    /// unknown types) in order.
    pub lines: Vec<Line>,
    /// The media sections; empty is valid (e.g. an offer that adds media later).
    pub media: Vec<MediaDescription>,
    pub(crate) layout: Vec<Slot>,
}

impl SessionDescription {
    /// Parses a body; attributes are kept as text (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        parse::parse(text, false)
    }

    /// Parses a body and also checks `a=crypto`, `a=rtcp`, `a=fingerprint`, `a=setup`,
    /// `a=candidate`, `a=rtpmap`, `a=ssrc` and `a=ptime` against their grammars.
    pub fn parse_strict(text: &str) -> Result<Self, SdpError> {
        parse::parse(text, true)
    }

    /// [`parse`](Self::parse) for raw bytes, refusing what is not UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, SdpError> {
        Self::parse(utf8(bytes)?)
    }

    /// [`parse_strict`](Self::parse_strict) for raw bytes, refusing what is not UTF-8.
    pub fn parse_bytes_strict(bytes: &[u8]) -> Result<Self, SdpError> {
        Self::parse_strict(utf8(bytes)?)
    }

    /// A description with `v=0`, the given `o=` and `s=`, `t=0 0` and nothing else.
    pub fn new(origin: Origin, session_name: impl Into<String>) -> Self {
        SessionDescription {
            origin,
            session_name: session_name.into(),
            connection: None,
            attributes: Vec::new(),
            lines: vec![Line::new('t', "0 0")],
            media: Vec::new(),
            layout: vec![Slot::Origin, Slot::Name, Slot::Connection, Slot::Line],
        }
    }

    shared_attribute_methods!();

    /// Sets the session-level `c=` to `ip` (adding one if there was none).
    pub fn set_connection_address(&mut self, ip: IpAddr) {
        match &mut self.connection {
            Some(c) => c.set_ip(ip),
            None => self.connection = Some(Connection::new(ip)),
        }
    }

    /// Increments `o=`'s session version, as every changed offer or answer must
    /// (RFC 3264 §8).
    pub fn bump_version(&mut self) {
        self.origin.sess_version = self.origin.sess_version.wrapping_add(1);
    }

    /// Whether `a=ice-lite` is present (a session-level attribute, RFC 8839 §5.3).
    pub fn ice_lite(&self) -> bool {
        self.has_attribute("ice-lite")
    }

    /// The connection that applies to `m`: its own `c=`, else the session's.
    pub fn connection_for<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// The direction of `m`: its own, else the session's, else `sendrecv`.
    pub fn direction_for(&self, m: &MediaDescription) -> Direction {
        m.direction().or(self.direction()).unwrap_or_default()
    }

    /// The fingerprints that apply to `m`: its own, else the session's (RFC 8122 §5).
    pub fn fingerprints_for(&self, m: &MediaDescription) -> Result<Vec<Fingerprint>, AttrError> {
        let own = m.fingerprints()?;
        if own.is_empty() {
            self.fingerprints()
        } else {
            Ok(own)
        }
    }

    /// The `a=setup` role that applies to `m`: its own, else the session's.
    pub fn setup_for(&self, m: &MediaDescription) -> Result<Option<Setup>, AttrError> {
        match m.setup()? {
            Some(s) => Ok(Some(s)),
            None => self.setup(),
        }
    }

    /// The ICE username fragment for `m`: its own, else the session's (RFC 8839 §5.4).
    pub fn ice_ufrag_for<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a str> {
        m.ice_ufrag().or(self.ice_ufrag())
    }

    /// The ICE password for `m`: its own, else the session's.
    pub fn ice_pwd_for<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a str> {
        m.ice_pwd().or(self.ice_pwd())
    }

    /// The ICE options for `m`: its own, else the session's.
    pub fn ice_options_for<'a>(&'a self, m: &'a MediaDescription) -> Vec<&'a str> {
        let own = m.ice_options();
        if own.is_empty() {
            self.ice_options()
        } else {
            own
        }
    }

    fn plan(&self) -> Vec<Item> {
        layout::plan(
            &self.layout,
            self.lines.len(),
            self.attributes.len(),
            self.connection.is_some(),
        )
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, SdpError> {
    if bytes.len() > MAX_SDP_SIZE {
        return Err(SdpError::TooLarge {
            size: bytes.len(),
            limit: MAX_SDP_SIZE,
        });
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        SdpError::NotUtf8 {
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
        }
    })
}

/// Writes one section's lines in `plan` order.
fn write_section(
    f: &mut fmt::Formatter<'_>,
    plan: &[Item],
    session: Option<&SessionDescription>,
    connection: Option<&Connection>,
    attributes: &[Attribute],
    lines: &[Line],
) -> fmt::Result {
    for item in plan {
        match (item, session) {
            (Item::Origin, Some(s)) => write!(f, "o={}\r\n", s.origin)?,
            (Item::Name, Some(s)) => write!(f, "s={}\r\n", s.session_name)?,
            (Item::Origin | Item::Name, None) => {}
            (Item::Connection, _) => {
                if let Some(c) = connection {
                    write!(f, "c={c}\r\n")?;
                }
            }
            (Item::Line(i), _) => {
                if let Some(l) = lines.get(*i) {
                    write!(f, "{l}\r\n")?;
                }
            }
            (Item::Attr(i), _) => {
                if let Some(a) = attributes.get(*i) {
                    write!(f, "a={a}\r\n")?;
                }
            }
        }
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        write_section(
            f,
            &self.plan(),
            Some(self),
            self.connection.as_ref(),
            &self.attributes,
            &self.lines,
        )?;
        for m in &self.media {
            m.write_m_line(f)?;
            write_section(
                f,
                &m.plan(),
                None,
                m.connection.as_ref(),
                &m.attributes,
                &m.lines,
            )?;
        }
        Ok(())
    }
}

impl PartialEq for SessionDescription {
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin
            && self.session_name == other.session_name
            && self.connection == other.connection
            && self.attributes == other.attributes
            && self.lines == other.lines
            && self.media == other.media
            && self.plan() == other.plan()
    }
}

impl Eq for SessionDescription {}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
