//! RFC 7983 (updating RFC 5764 §5.1.2): telling apart what arrives on one media port by its
//! first byte, and RTP from RTCP by the payload-type byte (RFC 5761 §4).

/// What a datagram on a media port is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// First byte 0–3.
    Stun,
    /// First byte 16–19.
    Zrtp,
    /// First byte 20–63.
    Dtls,
    /// First byte 64–79.
    TurnChannel,
    /// First byte 128–191, second byte outside 192–223.
    Rtp,
    /// First byte 128–191, second byte 192–223 (RTCP packet types 200–207 with the marker
    /// bit position set, plus the reserved range RFC 5761 keeps clear).
    Rtcp,
    /// Anything else, including empty datagrams.
    Unknown,
}

impl PacketKind {
    /// Packets that belong to the control plane's slow path (ICE and DTLS-SRTP).
    pub fn is_slow_path(self) -> bool {
        matches!(self, PacketKind::Stun | PacketKind::Dtls)
    }
}

/// Classifies a datagram by its first two bytes.
#[inline]
pub fn classify(pkt: &[u8]) -> PacketKind {
    let Some(&b0) = pkt.first() else {
        return PacketKind::Unknown;
    };
    match b0 {
        0..=3 => PacketKind::Stun,
        16..=19 => PacketKind::Zrtp,
        20..=63 => PacketKind::Dtls,
        64..=79 => PacketKind::TurnChannel,
        128..=191 => match pkt.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7983_ranges() {
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun); // binding request
        assert_eq!(classify(&[0x01, 0x01]), PacketKind::Stun); // binding success
        assert_eq!(classify(&[0x16, 0xfe, 0xfd]), PacketKind::Dtls); // handshake, DTLS 1.2
        assert_eq!(classify(&[0x17, 0xfe, 0xfd]), PacketKind::Dtls); // application data
        assert_eq!(classify(&[0x14]), PacketKind::Dtls);
        assert_eq!(classify(&[0x3f]), PacketKind::Dtls);
        assert_eq!(classify(&[0x10]), PacketKind::Zrtp);
        assert_eq!(classify(&[0x40, 0]), PacketKind::TurnChannel);
        assert_eq!(classify(&[0x80, 0x00]), PacketKind::Rtp); // PCMU
        assert_eq!(classify(&[0x80, 0xe0]), PacketKind::Rtp); // PT 96 with marker
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp); // SR
        assert_eq!(classify(&[0x81, 201]), PacketKind::Rtcp); // RR
        assert_eq!(classify(&[0x80, 206]), PacketKind::Rtcp); // PSFB
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[0xff, 0]), PacketKind::Unknown);
        assert_eq!(classify(&[0x05]), PacketKind::Unknown);
    }

    #[test]
    fn only_stun_and_dtls_take_the_slow_path() {
        assert!(PacketKind::Stun.is_slow_path());
        assert!(PacketKind::Dtls.is_slow_path());
        assert!(!PacketKind::Rtp.is_slow_path());
        assert!(!PacketKind::Zrtp.is_slow_path());
    }
}
