//! Reading an SDP body line by line into a [`SessionDescription`].

use super::crypto::Crypto;
use super::fields::{Connection, Line, Origin};
use super::ice::Candidate;
use super::layout::{add_connection_slot, Slot};
use super::values::{Fingerprint, Rtcp, RtpMap, Setup, Ssrc};
use super::{AttrError, Attribute, MediaDescription, SdpError, SessionDescription, MAX_SDP_SIZE};

/// The parts of one section being read.
#[derive(Default)]
struct Section {
    connection: Option<Connection>,
    attributes: Vec<Attribute>,
    lines: Vec<Line>,
    layout: Vec<Slot>,
}

impl Section {
    /// Takes one line that is not `v=`, `o=`, `s=` or `m=`.
    fn take(&mut self, kind: char, value: &str, line: usize, strict: bool) -> Result<(), SdpError> {
        match kind {
            'c' if !self.layout.contains(&Slot::Connection) => {
                let c = Connection::parse(value)
                    .map_err(|what| SdpError::BadConnection { line, what })?;
                self.connection = Some(c);
                self.layout.push(Slot::Connection);
            }
            'a' => {
                let a = Attribute::parse(value);
                if strict {
                    check_attribute(&a, line)?;
                }
                self.attributes.push(a);
                self.layout.push(Slot::Attr);
            }
            _ => {
                self.lines.push(Line::new(kind, value));
                self.layout.push(Slot::Line);
            }
        }
        Ok(())
    }

    fn finish(mut self, media: bool) -> Self {
        let kinds: Vec<char> = self.lines.iter().map(|l| l.kind).collect();
        add_connection_slot(&mut self.layout, &kinds, media);
        self
    }
}

fn finish_media(m: &mut MediaDescription, s: Section) {
    let s = s.finish(true);
    m.connection = s.connection;
    m.attributes = s.attributes;
    m.lines = s.lines;
    m.layout = s.layout;
}

/// Parses `text`; with `strict`, the typed attributes must be well-formed too.
pub(crate) fn parse(text: &str, strict: bool) -> Result<SessionDescription, SdpError> {
    if text.len() > MAX_SDP_SIZE {
        return Err(SdpError::TooLarge {
            size: text.len(),
            limit: MAX_SDP_SIZE,
        });
    }
    let mut seen_version = false;
    let mut origin: Option<Origin> = None;
    let mut name: Option<String> = None;
    let mut session = Section::default();
    let mut media: Vec<MediaDescription> = Vec::new();
    let mut current: Option<(MediaDescription, Section)> = None;

    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() {
            continue;
        }
        if raw.contains(['\r', '\0']) {
            return Err(SdpError::ControlCharacter { line });
        }
        let (kind, value) = split_line(raw, line)?;
        if !seen_version {
            if kind != 'v' {
                return Err(SdpError::MissingVersion { line });
            }
            if value.trim() != "0" {
                return Err(SdpError::BadVersion { line });
            }
            seen_version = true;
            continue;
        }
        if kind == 'm' {
            if let Some((mut m, s)) = current.take() {
                finish_media(&mut m, s);
                media.push(m);
            }
            let m = MediaDescription::parse_m_line(value, line)?;
            current = Some((m, Section::default()));
            continue;
        }
        if let Some((_, section)) = &mut current {
            if matches!(kind, 'v' | 'o' | 's') {
                return Err(SdpError::Misplaced { line, kind });
            }
            section.take(kind, value, line, strict)?;
            continue;
        }
        match kind {
            'v' => return Err(SdpError::Duplicate { line, kind }),
            'o' => {
                if origin.is_some() {
                    return Err(SdpError::Duplicate { line, kind });
                }
                let o = Origin::parse(value).map_err(|what| SdpError::BadOrigin { line, what })?;
                origin = Some(o);
                session.layout.push(Slot::Origin);
            }
            's' => {
                if name.is_some() {
                    return Err(SdpError::Duplicate { line, kind });
                }
                name = Some(value.to_string());
                session.layout.push(Slot::Name);
            }
            _ => session.take(kind, value, line, strict)?,
        }
    }
    if !seen_version {
        return Err(SdpError::Empty);
    }
    if let Some((mut m, s)) = current.take() {
        finish_media(&mut m, s);
        media.push(m);
    }
    let origin = origin.ok_or(SdpError::Missing { kind: 'o' })?;
    let session_name = name.ok_or(SdpError::Missing { kind: 's' })?;
    let session = session.finish(false);
    Ok(SessionDescription {
        origin,
        session_name,
        connection: session.connection,
        attributes: session.attributes,
        lines: session.lines,
        media,
        layout: session.layout,
    })
}

/// Splits `<letter>=<value>`.
fn split_line(raw: &str, line: usize) -> Result<(char, &str), SdpError> {
    let Some(eq) = raw.find('=') else {
        return Err(SdpError::MissingEquals { line });
    };
    let kind = raw.as_bytes()[0];
    if eq != 1 || !kind.is_ascii_alphabetic() {
        return Err(SdpError::BadLineType { line });
    }
    Ok((kind as char, &raw[2..]))
}

/// Checks the value of each attribute whose grammar this module knows.
fn check_attribute(a: &Attribute, line: usize) -> Result<(), SdpError> {
    const CHECKED: &[&str] = &[
        "crypto",
        "rtcp",
        "fingerprint",
        "setup",
        "candidate",
        "rtpmap",
        "ssrc",
        "ptime",
    ];
    let Some(name) = CHECKED.iter().copied().find(|n| a.is(n)) else {
        return Ok(());
    };
    let bad = |error: AttrError| SdpError::BadAttribute { line, name, error };
    let Some(v) = a.value.as_deref() else {
        return Err(match name {
            "crypto" => SdpError::BadCrypto {
                line,
                error: super::CryptoError::MissingValue,
            },
            _ => bad(AttrError::MissingValue),
        });
    };
    match name {
        "crypto" => Crypto::parse(v)
            .map(drop)
            .map_err(|error| SdpError::BadCrypto { line, error }),
        "rtcp" => Rtcp::parse(v).map(drop).map_err(bad),
        "fingerprint" => Fingerprint::parse(v).map(drop).map_err(bad),
        "setup" => Setup::parse(v).map(drop).map_err(bad),
        "candidate" => Candidate::parse(v).map(drop).map_err(bad),
        "rtpmap" => RtpMap::parse(v).map(drop).map_err(bad),
        "ssrc" => Ssrc::parse(v).map(drop).map_err(bad),
        _ => super::fields::digits::<u32>(v.trim())
            .map(drop)
            .ok_or(bad(AttrError::Bad("ptime"))),
    }
}
