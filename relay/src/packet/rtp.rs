//! Read-only views of RTP and RTCP headers.

/// The fixed RTP header fields (RFC 3550 §5.1) of a datagram at least 12 bytes long.
#[derive(Clone, Copy, Debug)]
pub struct RtpView<'a> {
    pkt: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// A view, or `None` when `pkt` is too short or not version 2.
    pub fn new(pkt: &'a [u8]) -> Option<Self> {
        (pkt.len() >= 12 && pkt[0] >> 6 == 2).then_some(RtpView { pkt })
    }

    pub fn marker(&self) -> bool {
        self.pkt[1] & 0x80 != 0
    }

    pub fn payload_type(&self) -> u8 {
        self.pkt[1] & 0x7f
    }

    pub fn seq(&self) -> u16 {
        u16::from_be_bytes([self.pkt[2], self.pkt[3]])
    }

    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.pkt[4], self.pkt[5], self.pkt[6], self.pkt[7]])
    }

    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.pkt[8], self.pkt[9], self.pkt[10], self.pkt[11]])
    }
}

/// The common RTCP header (RFC 3550 §6.4) of a datagram at least 8 bytes long.
#[derive(Clone, Copy, Debug)]
pub struct RtcpView<'a> {
    pkt: &'a [u8],
}

impl<'a> RtcpView<'a> {
    pub fn new(pkt: &'a [u8]) -> Option<Self> {
        (pkt.len() >= 8 && pkt[0] >> 6 == 2).then_some(RtcpView { pkt })
    }

    pub fn packet_type(&self) -> u8 {
        self.pkt[1]
    }

    /// SSRC of the sender of the first packet of the compound.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.pkt[4], self.pkt[5], self.pkt[6], self.pkt[7]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_fields() {
        let p = [0x80, 0x88, 0x12, 0x34, 0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef];
        let v = RtpView::new(&p).unwrap();
        assert!(v.marker());
        assert_eq!(v.payload_type(), 8);
        assert_eq!(v.seq(), 0x1234);
        assert_eq!(v.timestamp(), 256);
        assert_eq!(v.ssrc(), 0xdeadbeef);
        assert!(RtpView::new(&p[..11]).is_none());
        assert!(RtpView::new(&[0x40; 12]).is_none());
        let r = RtcpView::new(&[0x81, 200, 0, 6, 1, 2, 3, 4]).unwrap();
        assert_eq!(r.packet_type(), 200);
        assert_eq!(r.ssrc(), 0x01020304);
    }
}
