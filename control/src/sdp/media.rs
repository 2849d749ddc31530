//! A media section: the `m=` line and everything up to the next `m=`.

use std::fmt;
use std::net::IpAddr;

use super::attribute::{self, shared_attribute_methods};
use super::crypto::Crypto;
use super::fields::{digits, Connection, Line, Proto};
use super::ice::Candidate;
use super::layout::{self, Item, Slot};
use super::values::{payload_type, Rtcp, RtpMap, Ssrc};
use super::{AttrError, Attribute, CryptoError, SdpError};

/// One `m=` section (RFC 8866 §5.14).
#[derive(Clone, Debug)]
pub struct MediaDescription {
    /// "audio", "video", "application", "image", ...
    pub media: String,
    pub port: u16,
    /// The `/<number of ports>` part of the port field.
    pub port_count: Option<u16>,
    pub proto: Proto,
    pub formats: Vec<String>,
    /// The media-level `c=`; without it the session-level one applies.
    pub connection: Option<Connection>,
    pub attributes: Vec<Attribute>,
    /// Other lines (`i=`, `b=`, `k=`, unknown types) in order.
    pub lines: Vec<Line>,
    pub(crate) layout: Vec<Slot>,
}

impl MediaDescription {
    /// A media section without lines other than `m=`.
    pub fn new(media: &str, port: u16, proto: Proto, formats: &[&str]) -> Self {
        MediaDescription {
            media: media.to_string(),
            port,
            port_count: None,
            proto,
            formats: formats.iter().map(|f| f.to_string()).collect(),
            connection: None,
            attributes: Vec::new(),
            lines: Vec::new(),
            layout: vec![Slot::Connection],
        }
    }

    /// Parses the value of an `m=` line (`line` is its number, for errors).
    pub(crate) fn parse_m_line(value: &str, line: usize) -> Result<Self, SdpError> {
        let bad = |what| SdpError::BadMedia { line, what };
        let mut f = value.split_ascii_whitespace();
        let (Some(media), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) else {
            return Err(bad("expected media, port and protocol"));
        };
        let (port, count) = match port.split_once('/') {
            Some((p, c)) => (p, Some(c)),
            None => (port, None),
        };
        let number = |s: &str| -> Result<u16, SdpError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("port is not a number"));
            }
            digits(s).ok_or(SdpError::PortOutOfRange { line })
        };
        let mut m = MediaDescription::new(media, number(port)?, Proto::parse(proto), &[]);
        m.port_count = count.map(number).transpose()?;
        m.formats = f.map(str::to_string).collect();
        m.layout.clear();
        Ok(m)
    }

    pub(crate) fn plan(&self) -> Vec<Item> {
        layout::plan(
            &self.layout,
            self.lines.len(),
            self.attributes.len(),
            self.connection.is_some(),
        )
    }

    pub(crate) fn write_m_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")
    }

    shared_attribute_methods!();

    pub fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    pub fn set_proto(&mut self, proto: Proto) {
        self.proto = proto;
    }

    /// Whether the stream is rejected or disabled (port 0, RFC 3264 §6).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// Sets the media-level `c=` to `ip` (adding one when the section inherited the
    /// session-level connection).
    pub fn set_connection_address(&mut self, ip: IpAddr) {
        match &mut self.connection {
            Some(c) => c.set_ip(ip),
            None => self.connection = Some(Connection::new(ip)),
        }
    }

    /// The formats that are RTP payload types (0 to 127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| payload_type(f).ok())
    }

    /// Every `a=rtpmap`, parsed.
    pub fn rtpmaps(&self) -> impl Iterator<Item = Result<RtpMap, AttrError>> + '_ {
        self.attributes_named("rtpmap")
            .map(|a| RtpMap::parse(a.value_str()))
    }

    /// The `a=rtpmap` for payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Result<Option<RtpMap>, AttrError> {
        self.attributes_named("rtpmap")
            .find(|a| first_word(a.value_str()) == Some(pt))
            .map(|a| RtpMap::parse(a.value_str()))
            .transpose()
    }

    /// The parameters of the `a=fmtp` for payload type `pt` ("" when it has none).
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attributes_named("fmtp").find_map(|a| {
            let v = a.value_str().trim_start();
            let (format, params) = v.split_once(' ').unwrap_or((v, ""));
            (payload_type(format).ok() == Some(pt)).then(|| params.trim_start())
        })
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Result<Option<Rtcp>, AttrError> {
        self.attribute("rtcp")
            .map(|a| Rtcp::parse(a.value_str()))
            .transpose()
    }

    /// Replaces `a=rtcp` with `rtcp`, or removes it.
    pub fn set_rtcp(&mut self, rtcp: Option<Rtcp>) {
        attribute::replace_all(
            &mut self.attributes,
            &["rtcp"],
            rtcp.map(|r| r.to_attribute()),
        );
    }

    /// Whether `a=rtcp-mux` (RFC 5761) is present.
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// Adds `a=rtcp-mux` (once) or removes it.
    pub fn set_rtcp_mux(&mut self, on: bool) {
        if !on {
            self.remove_attributes("rtcp-mux");
        } else if !self.rtcp_mux() {
            self.add_attribute(Attribute::flag("rtcp-mux"));
        }
    }

    /// Every `a=crypto`, parsed; a malformed one yields its error and the others still come.
    pub fn cryptos(&self) -> impl Iterator<Item = Result<Crypto, CryptoError>> + '_ {
        self.attributes_named("crypto")
            .map(|a| Crypto::parse(a.value_str()))
    }

    /// Replaces every `a=crypto` with `cryptos`, in the place of the first old one.
    pub fn set_crypto(&mut self, cryptos: &[Crypto]) {
        attribute::replace_all(
            &mut self.attributes,
            &["crypto"],
            cryptos.iter().map(Crypto::to_attribute),
        );
    }

    /// Every `a=candidate`, parsed.
    pub fn candidates(&self) -> impl Iterator<Item = Result<Candidate, AttrError>> + '_ {
        self.attributes_named("candidate")
            .map(|a| Candidate::parse(a.value_str()))
    }

    /// Whether `a=end-of-candidates` (RFC 8840) is present.
    pub fn end_of_candidates(&self) -> bool {
        self.has_attribute("end-of-candidates")
    }

    /// `a=mid` (RFC 9143 / RFC 5888).
    pub fn mid(&self) -> Option<&str> {
        self.attribute_value("mid")
    }

    /// Every `a=ssrc`, parsed.
    pub fn ssrcs(&self) -> impl Iterator<Item = Result<Ssrc, AttrError>> + '_ {
        self.attributes_named("ssrc")
            .map(|a| Ssrc::parse(a.value_str()))
    }

    /// `a=ptime` in milliseconds (an integer; a fraction is refused).
    pub fn ptime(&self) -> Result<Option<u32>, AttrError> {
        self.attribute_value("ptime")
            .map(|v| digits(v.trim()).ok_or(AttrError::Bad("ptime")))
            .transpose()
    }
}

fn first_word(v: &str) -> Option<u8> {
    payload_type(v.split_ascii_whitespace().next()?).ok()
}

impl PartialEq for MediaDescription {
    fn eq(&self, other: &Self) -> bool {
        self.media == other.media
            && self.port == other.port
            && self.port_count == other.port_count
            && self.proto == other.proto
            && self.formats == other.formats
            && self.connection == other.connection
            && self.attributes == other.attributes
            && self.lines == other.lines
            && self.plan() == other.plan()
    }
}

impl Eq for MediaDescription {}
