//! Link-layer headers of captured frames: where the IP packet starts, and how to build a
//! header in front of one (for tests and synthetic captures).

use crate::pcap::{
    LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14,
};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// VLAN tags skipped before giving up on a frame.
const MAX_VLAN_TAGS: usize = 4;

/// Whether frames of this link type can be read.
pub fn is_supported(linktype: u16) -> bool {
    matches!(
        linktype,
        LINKTYPE_NULL
            | LINKTYPE_ETHERNET
            | LINKTYPE_RAW_12
            | LINKTYPE_RAW_14
            | LINKTYPE_RAW
            | LINKTYPE_LOOP
            | LINKTYPE_LINUX_SLL
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_LINUX_SLL2
    )
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Offset of an IPv4 or IPv6 packet in `frame`, or `None` when the frame carries
/// something else (ARP, LLC, an unsupported link type, a runt).
pub fn ip_offset(linktype: u16, frame: &[u8]) -> Option<usize> {
    let at = match linktype {
        LINKTYPE_ETHERNET => {
            let mut off = 12;
            let mut tags = 0;
            loop {
                let ethertype = be16(frame, off)?;
                if VLAN_TPIDS.contains(&ethertype) && tags < MAX_VLAN_TAGS {
                    off += 4;
                    tags += 1;
                    continue;
                }
                if ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_IPV6 {
                    return None;
                }
                break off + 2;
            }
        }
        LINKTYPE_LINUX_SLL => ip_ethertype(be16(frame, 14)?, 16)?,
        LINKTYPE_LINUX_SLL2 => ip_ethertype(be16(frame, 0)?, 20)?,
        // The address family's byte order depends on the capturing host; the IP version
        // nibble checked below says all that is needed.
        LINKTYPE_NULL | LINKTYPE_LOOP => 4,
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => 0,
        _ => return None,
    };
    match frame.get(at)? >> 4 {
        4 | 6 => Some(at),
        _ => None,
    }
}

fn ip_ethertype(ethertype: u16, at: usize) -> Option<usize> {
    (ethertype == ETHERTYPE_IPV4 || ethertype == ETHERTYPE_IPV6).then_some(at)
}

/// A link layer to put in front of a synthetic IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLayer {
    /// Ethernet II with the given 802.1Q VLAN tags (outermost first).
    Ethernet {
        vlans: &'static [u16],
    },
    LinuxSll,
    LinuxSll2,
    /// No link header.
    Raw,
    /// BSD loopback, family written in little-endian order.
    Null,
}

impl LinkLayer {
    pub fn linktype(self) -> u16 {
        match self {
            LinkLayer::Ethernet { .. } => LINKTYPE_ETHERNET,
            LinkLayer::LinuxSll => LINKTYPE_LINUX_SLL,
            LinkLayer::LinuxSll2 => LINKTYPE_LINUX_SLL2,
            LinkLayer::Raw => LINKTYPE_RAW,
            LinkLayer::Null => LINKTYPE_NULL,
        }
    }

    /// The link header for an IP packet of version 4 or 6 (`ipv6`).
    pub fn header(self, ipv6: bool) -> Vec<u8> {
        let ethertype = if ipv6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 };
        let mac = [0x02, 0, 0x5e, 0x10, 0, 1];
        match self {
            LinkLayer::Ethernet { vlans } => {
                let mut h = Vec::with_capacity(14 + 4 * vlans.len());
                h.extend_from_slice(&mac);
                h.extend_from_slice(&[0x02, 0, 0x5e, 0x10, 0, 2]);
                for vid in vlans {
                    h.extend_from_slice(&0x8100u16.to_be_bytes());
                    h.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
                }
                h.extend_from_slice(&ethertype.to_be_bytes());
                h
            }
            LinkLayer::LinuxSll => {
                let mut h = vec![0, 0, 0, 1, 0, 6];
                h.extend_from_slice(&mac);
                h.extend_from_slice(&[0, 0]);
                h.extend_from_slice(&ethertype.to_be_bytes());
                h
            }
            LinkLayer::LinuxSll2 => {
                let mut h = ethertype.to_be_bytes().to_vec();
                h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
                h.extend_from_slice(&mac);
                h.extend_from_slice(&[0, 0]);
                h
            }
            LinkLayer::Raw => Vec::new(),
            LinkLayer::Null => {
                let family: u32 = if ipv6 { 24 } else { 2 };
                family.to_le_bytes().to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_again() {
        for link in [
            LinkLayer::Ethernet { vlans: &[] },
            LinkLayer::Ethernet { vlans: &[7, 300] },
            LinkLayer::LinuxSll,
            LinkLayer::LinuxSll2,
            LinkLayer::Raw,
            LinkLayer::Null,
        ] {
            for v6 in [false, true] {
                let mut f = link.header(v6);
                let len = f.len();
                f.push(if v6 { 0x60 } else { 0x45 });
                assert_eq!(ip_offset(link.linktype(), &f), Some(len), "{link:?}");
            }
        }
    }

    #[test]
    fn runts_and_other_protocols_are_none() {
        assert_eq!(ip_offset(LINKTYPE_ETHERNET, &[0; 13]), None);
        let mut arp = LinkLayer::Ethernet { vlans: &[] }.header(false);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        arp.push(0x45);
        assert_eq!(ip_offset(LINKTYPE_ETHERNET, &arp), None);
        let mut tags = vec![0u8; 12];
        for _ in 0..64 {
            tags.extend_from_slice(&[0x81, 0, 0, 1]);
        }
        assert_eq!(ip_offset(LINKTYPE_ETHERNET, &tags), None);
        assert_eq!(ip_offset(LINKTYPE_RAW, &[0x15]), None);
        assert_eq!(ip_offset(999, &[0x45; 40]), None);
    }
}
