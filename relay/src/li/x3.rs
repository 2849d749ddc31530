//! ETSI TS 103 221-2 X2/X3 PDUs: the encoder used for delivery and a decoder that validates
//! every field (for the receiving side and for tests).
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! offset  size  field
//!      0     2  Version (5)
//!      2     2  PDU Type: 1 X2, 2 X3, 3 Keepalive, 4 Keepalive Acknowledgement
//!      4     4  Header Length: 40 + length of the conditional attributes
//!      8     4  Payload Length
//!     12     2  Payload Format (8 = RTP packet; 0 for keepalives)
//!     14     2  Payload Direction (2 = to the target, 3 = from the target; 0 for keepalives)
//!     16    16  XID (UUID of the task)
//!     32     8  Correlation ID
//!     40     …  Conditional attributes: Type (2), Length (2), Value (Length bytes)
//!  HL     PL    Payload
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use super::uuid::Xid;

/// The version this encoder writes and the decoder accepts.
pub const VERSION: u16 = 5;
/// Length of the fixed part of the header.
pub const FIXED_HEADER_LEN: usize = 40;
/// The decoder refuses headers longer than this (attributes are small).
pub const MAX_HEADER_LEN: u32 = 64 * 1024;
/// The decoder refuses payloads longer than this (an RTP packet is far smaller).
pub const MAX_PAYLOAD_LEN: u32 = 1024 * 1024;

/// PDU Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PduType {
    X2 = 1,
    X3 = 2,
    Keepalive = 3,
    KeepaliveAck = 4,
}

impl PduType {
    pub fn from_u16(v: u16) -> Option<PduType> {
        Some(match v {
            1 => PduType::X2,
            2 => PduType::X3,
            3 => PduType::Keepalive,
            4 => PduType::KeepaliveAck,
            _ => return None,
        })
    }
}

/// Payload Format values (TS 103 221-2 table of payload formats).
pub mod format {
    /// Reserved: used by keepalive PDUs.
    pub const KEEPALIVE: u16 = 0;
    pub const ETSI_102_232_1: u16 = 1;
    pub const TS_33_128: u16 = 2;
    pub const TS_33_108: u16 = 3;
    pub const PROPRIETARY: u16 = 4;
    pub const IPV4: u16 = 5;
    pub const IPV6: u16 = 6;
    pub const ETHERNET: u16 = 7;
    pub const RTP: u16 = 8;
    pub const SIP: u16 = 9;
    /// The highest value the decoder knows.
    pub const MAX_KNOWN: u16 = 16;
}

/// Payload Direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Reserved for keepalives.
    Keepalive = 0,
    /// Not known to the point of interception.
    Unknown = 1,
    /// Sent to (received by) the target.
    ToTarget = 2,
    /// Sent from the target.
    FromTarget = 3,
    /// The result of data in more than one direction.
    Combined = 4,
    /// Direction does not apply.
    NotApplicable = 5,
}

impl Direction {
    pub fn from_u16(v: u16) -> Option<Direction> {
        Some(match v {
            0 => Direction::Keepalive,
            1 => Direction::Unknown,
            2 => Direction::ToTarget,
            3 => Direction::FromTarget,
            4 => Direction::Combined,
            5 => Direction::NotApplicable,
            _ => return None,
        })
    }
}

/// Conditional attribute types used here.
pub mod attr {
    pub const SEQUENCE_NUMBER: u16 = 8;
    pub const TIMESTAMP: u16 = 9;
    pub const SOURCE_IPV4: u16 = 10;
    pub const DESTINATION_IPV4: u16 = 11;
    pub const SOURCE_IPV6: u16 = 12;
    pub const DESTINATION_IPV6: u16 = 13;
    pub const SOURCE_PORT: u16 = 14;
    pub const DESTINATION_PORT: u16 = 15;
    pub const IP_PROTOCOL: u16 = 16;
}

/// One conditional attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute<'a> {
    /// Sequence number of the PDU on its connection.
    SequenceNumber(u32),
    /// Time of interception: seconds and nanoseconds since the Unix epoch.
    Timestamp {
        secs: u32,
        nanos: u32,
    },
    SourceIpv4(Ipv4Addr),
    DestinationIpv4(Ipv4Addr),
    SourceIpv6(Ipv6Addr),
    DestinationIpv6(Ipv6Addr),
    SourcePort(u16),
    DestinationPort(u16),
    IpProtocol(u8),
    /// Any other attribute, kept as bytes.
    Other {
        kind: u16,
        value: &'a [u8],
    },
}

impl Attribute<'_> {
    fn kind(&self) -> u16 {
        match self {
            Attribute::SequenceNumber(_) => attr::SEQUENCE_NUMBER,
            Attribute::Timestamp { .. } => attr::TIMESTAMP,
            Attribute::SourceIpv4(_) => attr::SOURCE_IPV4,
            Attribute::DestinationIpv4(_) => attr::DESTINATION_IPV4,
            Attribute::SourceIpv6(_) => attr::SOURCE_IPV6,
            Attribute::DestinationIpv6(_) => attr::DESTINATION_IPV6,
            Attribute::SourcePort(_) => attr::SOURCE_PORT,
            Attribute::DestinationPort(_) => attr::DESTINATION_PORT,
            Attribute::IpProtocol(_) => attr::IP_PROTOCOL,
            Attribute::Other { kind, .. } => *kind,
        }
    }

    fn encoded_len(&self) -> usize {
        4 + match self {
            Attribute::SequenceNumber(_) => 4,
            Attribute::Timestamp { .. } => 8,
            Attribute::SourceIpv4(_) | Attribute::DestinationIpv4(_) => 4,
            Attribute::SourceIpv6(_) | Attribute::DestinationIpv6(_) => 16,
            Attribute::SourcePort(_) | Attribute::DestinationPort(_) => 2,
            Attribute::IpProtocol(_) => 1,
            Attribute::Other { value, .. } => value.len(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kind().to_be_bytes());
        out.extend_from_slice(&((self.encoded_len() - 4) as u16).to_be_bytes());
        match self {
            Attribute::SequenceNumber(n) => out.extend_from_slice(&n.to_be_bytes()),
            Attribute::Timestamp { secs, nanos } => {
                out.extend_from_slice(&secs.to_be_bytes());
                out.extend_from_slice(&nanos.to_be_bytes());
            }
            Attribute::SourceIpv4(a) | Attribute::DestinationIpv4(a) => {
                out.extend_from_slice(&a.octets())
            }
            Attribute::SourceIpv6(a) | Attribute::DestinationIpv6(a) => {
                out.extend_from_slice(&a.octets())
            }
            Attribute::SourcePort(p) | Attribute::DestinationPort(p) => {
                out.extend_from_slice(&p.to_be_bytes())
            }
            Attribute::IpProtocol(p) => out.push(*p),
            Attribute::Other { value, .. } => out.extend_from_slice(value),
        }
    }
}

/// The fixed fields of a PDU header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub pdu_type: PduType,
    pub payload_format: u16,
    pub direction: Direction,
    pub xid: Xid,
    pub correlation_id: u64,
}

impl Header {
    /// The header of a keepalive or keepalive acknowledgement: format and direction 0, nil
    /// XID, and `correlation_id` carrying the keepalive's own number (echoed in the ack).
    pub fn keepalive(ack: bool, number: u64) -> Header {
        Header {
            pdu_type: if ack {
                PduType::KeepaliveAck
            } else {
                PduType::Keepalive
            },
            payload_format: format::KEEPALIVE,
            direction: Direction::Keepalive,
            xid: Xid::NIL,
            correlation_id: number,
        }
    }
}

/// Why a PDU could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("attribute of type {0} is longer than 65535 bytes")]
    AttributeTooLong(u16),
    #[error("payload of {0} bytes is longer than the decoder limit")]
    PayloadTooLong(usize),
}

/// Appends one PDU to `out`; returns its length.
pub fn encode(
    header: &Header,
    attributes: &[Attribute<'_>],
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    for a in attributes {
        if a.encoded_len() - 4 > u16::MAX as usize {
            return Err(EncodeError::AttributeTooLong(a.kind()));
        }
    }
    if payload.len() > MAX_PAYLOAD_LEN as usize {
        return Err(EncodeError::PayloadTooLong(payload.len()));
    }
    let attr_len: usize = attributes.iter().map(Attribute::encoded_len).sum();
    let header_len = FIXED_HEADER_LEN + attr_len;
    let start = out.len();
    out.reserve(header_len + payload.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&(header.pdu_type as u16).to_be_bytes());
    out.extend_from_slice(&(header_len as u32).to_be_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&header.payload_format.to_be_bytes());
    out.extend_from_slice(&(header.direction as u16).to_be_bytes());
    out.extend_from_slice(&header.xid.0);
    out.extend_from_slice(&header.correlation_id.to_be_bytes());
    for a in attributes {
        a.write(out);
    }
    out.extend_from_slice(payload);
    Ok(out.len() - start)
}

/// Why bytes are not a valid PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("PDU cut short: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("unsupported version {0} (expected 5)")]
    Version(u16),
    #[error("unknown PDU type {0}")]
    PduType(u16),
    #[error("header length {0} is below the fixed 40 bytes")]
    HeaderTooShort(u32),
    #[error("header length {0} exceeds the limit")]
    HeaderTooLong(u32),
    #[error("payload length {0} exceeds the limit")]
    PayloadTooLong(u32),
    #[error("unknown payload format {0}")]
    PayloadFormat(u16),
    #[error("unknown payload direction {0}")]
    Direction(u16),
    #[error("{pdu_type:?} PDU with payload format {format} and direction {direction}")]
    WrongFormatForType {
        pdu_type: PduType,
        format: u16,
        direction: u16,
    },
    #[error("keepalive PDU carries a payload of {0} bytes")]
    KeepalivePayload(u32),
    #[error("attribute header at offset {0} runs past the header length")]
    AttributeHeaderOverrun(usize),
    #[error("attribute of type {kind} at offset {offset} runs past the header length")]
    AttributeOverrun { kind: u16, offset: usize },
    #[error("attribute of type {kind} has length {len}, expected {want}")]
    AttributeLength { kind: u16, len: u16, want: u16 },
    #[error("attribute of type {0} appears twice")]
    DuplicateAttribute(u16),
    #[error("timestamp nanoseconds {0} are not below one second")]
    TimestampNanos(u32),
}

/// A decoded, validated PDU borrowing from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu<'a> {
    pub header: Header,
    pub attributes: Vec<Attribute<'a>>,
    pub payload: &'a [u8],
}

impl Pdu<'_> {
    pub fn sequence_number(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::SequenceNumber(n) => Some(*n),
            _ => None,
        })
    }

    /// Seconds and nanoseconds since the Unix epoch.
    pub fn timestamp(&self) -> Option<(u32, u32)> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Timestamp { secs, nanos } => Some((*secs, *nanos)),
            _ => None,
        })
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The total length of the PDU at the start of `buf` once its first 12 bytes are there
/// (`Ok(None)` before that), after checking the version, type and lengths. A stream reader
/// calls this to know how many bytes to wait for.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < 12 {
        return Ok(None);
    }
    let version = be16(buf, 0);
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let t = be16(buf, 2);
    PduType::from_u16(t).ok_or(DecodeError::PduType(t))?;
    let hl = be32(buf, 4);
    let pl = be32(buf, 8);
    if (hl as usize) < FIXED_HEADER_LEN {
        return Err(DecodeError::HeaderTooShort(hl));
    }
    if hl > MAX_HEADER_LEN {
        return Err(DecodeError::HeaderTooLong(hl));
    }
    if pl > MAX_PAYLOAD_LEN {
        return Err(DecodeError::PayloadTooLong(pl));
    }
    Ok(Some(hl as usize + pl as usize))
}

/// Decodes and validates the PDU at the start of `buf`; returns it and its length (bytes
/// after it are left alone).
pub fn decode(buf: &[u8]) -> Result<(Pdu<'_>, usize), DecodeError> {
    let total = frame_len(buf)?.ok_or(DecodeError::Truncated {
        need: FIXED_HEADER_LEN,
        have: buf.len(),
    })?;
    let need = total.max(FIXED_HEADER_LEN);
    if buf.len() < need {
        return Err(DecodeError::Truncated {
            need,
            have: buf.len(),
        });
    }
    let pdu_type = PduType::from_u16(be16(buf, 2)).ok_or(DecodeError::PduType(be16(buf, 2)))?;
    let hl = be32(buf, 4) as usize;
    let pl = be32(buf, 8);
    let format = be16(buf, 12);
    let dir = be16(buf, 14);
    if format > format::MAX_KNOWN {
        return Err(DecodeError::PayloadFormat(format));
    }
    let direction = Direction::from_u16(dir).ok_or(DecodeError::Direction(dir))?;
    let keepalive = matches!(pdu_type, PduType::Keepalive | PduType::KeepaliveAck);
    if keepalive && pl != 0 {
        return Err(DecodeError::KeepalivePayload(pl));
    }
    // Format and direction 0 are reserved for keepalives, and keepalives use nothing else.
    if keepalive != (format == format::KEEPALIVE) || keepalive != (dir == 0) {
        return Err(DecodeError::WrongFormatForType {
            pdu_type,
            format,
            direction: dir,
        });
    }
    let mut xid = [0u8; 16];
    xid.copy_from_slice(&buf[16..32]);
    let mut cid = [0u8; 8];
    cid.copy_from_slice(&buf[32..40]);
    let header = Header {
        pdu_type,
        payload_format: format,
        direction,
        xid: crate::li::uuid::Uuid(xid),
        correlation_id: u64::from_be_bytes(cid),
    };
    let attributes = decode_attributes(&buf[..hl])?;
    Ok((
        Pdu {
            header,
            attributes,
            payload: &buf[hl..total],
        },
        total,
    ))
}

fn decode_attributes(header: &[u8]) -> Result<Vec<Attribute<'_>>, DecodeError> {
    let mut out = Vec::new();
    let mut seen: u32 = 0; // bit per known attribute type 8..=16
    let mut off = FIXED_HEADER_LEN;
    while off < header.len() {
        if header.len() - off < 4 {
            return Err(DecodeError::AttributeHeaderOverrun(off));
        }
        let kind = be16(header, off);
        let len = be16(header, off + 2);
        let start = off + 4;
        let end = start + len as usize;
        if end > header.len() {
            return Err(DecodeError::AttributeOverrun { kind, offset: off });
        }
        let v = &header[start..end];
        let want = match kind {
            attr::SEQUENCE_NUMBER | attr::SOURCE_IPV4 | attr::DESTINATION_IPV4 => Some(4),
            attr::TIMESTAMP => Some(8),
            attr::SOURCE_IPV6 | attr::DESTINATION_IPV6 => Some(16),
            attr::SOURCE_PORT | attr::DESTINATION_PORT => Some(2),
            attr::IP_PROTOCOL => Some(1),
            _ => None,
        };
        if let Some(want) = want {
            if len != want {
                return Err(DecodeError::AttributeLength { kind, len, want });
            }
            let bit = 1u32 << (kind - attr::SEQUENCE_NUMBER);
            if seen & bit != 0 {
                return Err(DecodeError::DuplicateAttribute(kind));
            }
            seen |= bit;
        }
        let ip4 = || Ipv4Addr::new(v[0], v[1], v[2], v[3]);
        let ip6 = || {
            let mut o = [0u8; 16];
            o.copy_from_slice(v);
            Ipv6Addr::from(o)
        };
        out.push(match kind {
            attr::SEQUENCE_NUMBER => Attribute::SequenceNumber(be32(v, 0)),
            attr::TIMESTAMP if be32(v, 4) >= 1_000_000_000 => {
                return Err(DecodeError::TimestampNanos(be32(v, 4)))
            }
            attr::TIMESTAMP => Attribute::Timestamp {
                secs: be32(v, 0),
                nanos: be32(v, 4),
            },
            attr::SOURCE_IPV4 => Attribute::SourceIpv4(ip4()),
            attr::DESTINATION_IPV4 => Attribute::DestinationIpv4(ip4()),
            attr::SOURCE_IPV6 => Attribute::SourceIpv6(ip6()),
            attr::DESTINATION_IPV6 => Attribute::DestinationIpv6(ip6()),
            attr::SOURCE_PORT => Attribute::SourcePort(be16(v, 0)),
            attr::DESTINATION_PORT => Attribute::DestinationPort(be16(v, 0)),
            attr::IP_PROTOCOL => Attribute::IpProtocol(v[0]),
            _ => Attribute::Other { kind, value: v },
        });
        off = end;
    }
    Ok(out)
}

#[cfg(test)]
#[path = "x3_tests.rs"]
mod tests;
