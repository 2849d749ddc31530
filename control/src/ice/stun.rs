//! STUN messages as ICE uses them (RFC 5389 / RFC 8489, RFC 8445 §7): a parser that
//! never panics on hostile bytes, MESSAGE-INTEGRITY (HMAC-SHA1 with the short-term
//! password) and FINGERPRINT (CRC-32 XOR 0x5354554e) checks, and a writer for responses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ring::hmac;

pub const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER: usize = 20;
const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// Method and class together, as on the wire.
pub const BINDING_REQUEST: u16 = 0x0001;
pub const BINDING_SUCCESS: u16 = 0x0101;
pub const BINDING_ERROR: u16 = 0x0111;
pub const BINDING_INDICATION: u16 = 0x0011;

/// Attribute types srtpgate reads or writes.
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// Why bytes are not a STUN message srtpgate can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    #[error("shorter than a STUN header")]
    Short,
    #[error("the two top bits of the type are not zero")]
    NotStun,
    #[error("no magic cookie (RFC 3489 messages are not used by ICE)")]
    NoMagicCookie,
    #[error("length field {0} does not match the datagram")]
    Length(usize),
    #[error("attribute runs past the end of the message")]
    Truncated,
    #[error("attributes after MESSAGE-INTEGRITY other than FINGERPRINT")]
    AfterIntegrity,
    #[error("attributes after FINGERPRINT")]
    AfterFingerprint,
    #[error("bad FINGERPRINT")]
    Fingerprint,
    #[error("bad MESSAGE-INTEGRITY attribute length")]
    IntegrityLength,
}

/// A parsed STUN message, borrowing the datagram it came from.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub kind: u16,
    pub transaction: [u8; 12],
    bytes: &'a [u8],
    attrs: Vec<(u16, &'a [u8])>,
    /// Offset of the MESSAGE-INTEGRITY attribute header, if present.
    integrity_at: Option<usize>,
}

impl<'a> Message<'a> {
    /// Parses and checks the framing, and FINGERPRINT when present.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, StunError> {
        if bytes.len() < HEADER {
            return Err(StunError::Short);
        }
        let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
        if kind & 0xC000 != 0 {
            return Err(StunError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) != MAGIC_COOKIE {
            return Err(StunError::NoMagicCookie);
        }
        if !len.is_multiple_of(4) || HEADER + len != bytes.len() {
            return Err(StunError::Length(len));
        }
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&bytes[8..20]);
        let mut attrs = Vec::new();
        let mut integrity_at = None;
        let mut fingerprint_at = None;
        let mut at = HEADER;
        while at < bytes.len() {
            let head = bytes.get(at..at + 4).ok_or(StunError::Truncated)?;
            let t = u16::from_be_bytes([head[0], head[1]]);
            let l = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let value = bytes.get(at + 4..at + 4 + l).ok_or(StunError::Truncated)?;
            if fingerprint_at.is_some() {
                return Err(StunError::AfterFingerprint);
            }
            if integrity_at.is_some() && t != attr::FINGERPRINT {
                return Err(StunError::AfterIntegrity);
            }
            match t {
                attr::MESSAGE_INTEGRITY if l != 20 => return Err(StunError::IntegrityLength),
                attr::MESSAGE_INTEGRITY => integrity_at = Some(at),
                attr::FINGERPRINT => fingerprint_at = Some(at),
                _ => {}
            }
            attrs.push((t, value));
            at += 4 + l.div_ceil(4) * 4;
        }
        if at != bytes.len() {
            return Err(StunError::Truncated);
        }
        if let Some(f) = fingerprint_at {
            let value = attrs.last().map(|a| a.1).unwrap_or_default();
            let got = value
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| StunError::Fingerprint)?;
            if got != fingerprint_over(bytes, f) {
                return Err(StunError::Fingerprint);
            }
        }
        Ok(Message {
            kind,
            transaction,
            bytes,
            attrs,
            integrity_at,
        })
    }

    /// The value of the first attribute of type `t`.
    pub fn attribute(&self, t: u16) -> Option<&'a [u8]> {
        self.attrs.iter().find(|a| a.0 == t).map(|a| a.1)
    }

    pub fn has(&self, t: u16) -> bool {
        self.attribute(t).is_some()
    }

    /// Attribute types present, in order.
    pub fn attribute_types(&self) -> impl Iterator<Item = u16> + '_ {
        self.attrs.iter().map(|a| a.0)
    }

    pub fn username(&self) -> Option<&'a str> {
        self.attribute(attr::USERNAME)
            .and_then(|u| std::str::from_utf8(u).ok())
    }

    pub fn priority(&self) -> Option<u32> {
        self.attribute(attr::PRIORITY)
            .and_then(|v| v.try_into().ok())
            .map(u32::from_be_bytes)
    }

    pub fn has_fingerprint(&self) -> bool {
        self.has(attr::FINGERPRINT)
    }

    /// Whether MESSAGE-INTEGRITY is present and matches `key` (constant-time compare).
    pub fn integrity_ok(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else {
            return false;
        };
        let Some(mac) = self.bytes.get(at + 4..at + 24) else {
            return false;
        };
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        let mut ctx = hmac::Context::with_key(&k);
        ctx.update(&self.bytes[..2]);
        ctx.update(&length_field(at + 24 - HEADER));
        ctx.update(&self.bytes[4..at]);
        let tag = ctx.sign();
        openssl::memcmp::eq(tag.as_ref(), mac)
    }

    /// The address of (XOR-)MAPPED-ADDRESS, as a client reads a response.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        if let Some(v) = self.attribute(attr::XOR_MAPPED_ADDRESS) {
            return decode_address(v, Some(&self.transaction));
        }
        decode_address(self.attribute(attr::MAPPED_ADDRESS)?, None)
    }

    /// ERROR-CODE as a number (e.g. 401).
    pub fn error_code(&self) -> Option<u16> {
        let v = self.attribute(attr::ERROR_CODE)?;
        (v.len() >= 4).then(|| u16::from(v[2] & 7) * 100 + u16::from(v[3]))
    }
}

fn length_field(len: usize) -> [u8; 2] {
    (len as u16).to_be_bytes()
}

/// FINGERPRINT of the message whose FINGERPRINT attribute header starts at `at`.
fn fingerprint_over(bytes: &[u8], at: usize) -> u32 {
    let mut c = Crc32::new();
    c.update(&bytes[..2]);
    c.update(&length_field(at + 8 - HEADER));
    c.update(&bytes[4..at]);
    c.finish() ^ FINGERPRINT_XOR
}

fn decode_address(v: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(t) = xor {
        port ^= (MAGIC_COOKIE >> 16) as u16;
        mask[4..].copy_from_slice(t);
    } else {
        mask = [0; 16];
    }
    let ip = match family {
        1 => {
            let b: [u8; 4] = v.get(4..8)?.try_into().ok()?;
            let x: Vec<u8> = b.iter().zip(mask).map(|(a, m)| a ^ m).collect();
            IpAddr::V4(Ipv4Addr::new(x[0], x[1], x[2], x[3]))
        }
        2 => {
            let b: [u8; 16] = v.get(4..20)?.try_into().ok()?;
            let mut x = [0u8; 16];
            for i in 0..16 {
                x[i] = b[i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(x))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Builds a STUN message attribute by attribute.
pub struct MessageWriter {
    buf: Vec<u8>,
}

impl MessageWriter {
    pub fn new(kind: u16, transaction: &[u8; 12]) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&kind.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(transaction);
        MessageWriter { buf }
    }

    fn set_length(&mut self, len: usize) {
        self.buf[2..4].copy_from_slice(&length_field(len));
    }

    pub fn attribute(mut self, t: u16, value: &[u8]) -> Self {
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        let len = self.buf.len() - HEADER;
        self.set_length(len);
        self
    }

    /// XOR-MAPPED-ADDRESS of `addr`.
    pub fn xor_mapped_address(self, addr: SocketAddr) -> Self {
        let t: [u8; 12] = self.buf[8..20].try_into().unwrap_or([0; 12]);
        let mut mask = [0u8; 16];
        mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        mask[4..].copy_from_slice(&t);
        let mut v = vec![0u8];
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        match addr.ip() {
            IpAddr::V4(ip) => {
                v.push(1);
                v.extend_from_slice(&port.to_be_bytes());
                v.extend(ip.octets().iter().zip(mask).map(|(a, m)| a ^ m));
            }
            IpAddr::V6(ip) => {
                v.push(2);
                v.extend_from_slice(&port.to_be_bytes());
                v.extend(ip.octets().iter().zip(mask).map(|(a, m)| a ^ m));
            }
        }
        self.attribute(attr::XOR_MAPPED_ADDRESS, &v)
    }

    /// ERROR-CODE with a reason phrase.
    pub fn error(self, code: u16, reason: &str) -> Self {
        let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
        v.extend_from_slice(reason.as_bytes());
        self.attribute(attr::ERROR_CODE, &v)
    }

    /// MESSAGE-INTEGRITY over everything written so far, keyed with `key`.
    pub fn integrity(mut self, key: &[u8]) -> Self {
        let len = self.buf.len() + 24 - HEADER;
        self.set_length(len);
        let k = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
        let tag = hmac::sign(&k, &self.buf);
        let mac = tag.as_ref().to_vec();
        self.attribute(attr::MESSAGE_INTEGRITY, &mac)
    }

    /// FINGERPRINT, last.
    pub fn fingerprint(mut self) -> Vec<u8> {
        let at = self.buf.len();
        self.set_length(at + 8 - HEADER);
        let value = fingerprint_over(&self.buf, at);
        self.attribute(attr::FINGERPRINT, &value.to_be_bytes()).buf
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// CRC-32 (ISO-HDLC, the one of zlib and Ethernet), bitwise: messages are short and few.
struct Crc32(u32);

impl Crc32 {
    fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u32::from(b);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
    }

    fn finish(self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
#[path = "stun_tests.rs"]
mod tests;
