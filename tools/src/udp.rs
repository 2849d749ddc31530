//! UDP over IPv4 and IPv6 inside a captured frame: finding the datagram, replacing its
//! payload (fixing every length and checksum), checking checksums, and building datagrams.

use std::net::{IpAddr, SocketAddr};

const PROTO_UDP: u8 = 17;
/// IPv6 extension headers walked before giving up.
const MAX_EXT_HEADERS: usize = 8;

/// Why a frame's IP packet is not one whole UDP datagram that can be rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotUdp {
    #[error("malformed IP header")]
    BadIp,
    #[error("IP packet cut short by the capture")]
    Truncated,
    #[error("IP fragment")]
    Fragment,
    #[error("not UDP")]
    OtherProtocol,
    #[error("malformed UDP header")]
    BadUdp,
}

/// Where the IP and UDP headers and the UDP payload lie in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpView {
    pub ip_off: usize,
    pub ipv6: bool,
    pub udp_off: usize,
    pub payload_off: usize,
    pub payload_end: usize,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn v4(bytes: &[u8]) -> IpAddr {
    IpAddr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default())
}

fn v6(bytes: &[u8]) -> IpAddr {
    IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default())
}

impl UdpView {
    /// Finds the UDP datagram in the IP packet at `frame[ip_off..]`.
    pub fn locate(frame: &[u8], ip_off: usize) -> Result<UdpView, NotUdp> {
        let ip = frame.get(ip_off..).ok_or(NotUdp::BadIp)?;
        let (ipv6, udp_rel, ip_len, src, dst) = match ip.first().map(|b| b >> 4) {
            Some(4) => {
                if ip.len() < 20 {
                    return Err(NotUdp::Truncated);
                }
                let ihl = 4 * (ip[0] & 0x0f) as usize;
                let total = be16(ip, 2) as usize;
                if ihl < 20 || total < ihl {
                    return Err(NotUdp::BadIp);
                }
                if total > ip.len() {
                    return Err(NotUdp::Truncated);
                }
                if be16(ip, 6) & 0x3fff != 0 {
                    return Err(NotUdp::Fragment);
                }
                if ip[9] != PROTO_UDP {
                    return Err(NotUdp::OtherProtocol);
                }
                (false, ihl, total, v4(&ip[12..16]), v4(&ip[16..20]))
            }
            Some(6) => {
                if ip.len() < 40 {
                    return Err(NotUdp::Truncated);
                }
                let payload_len = be16(ip, 4) as usize;
                if payload_len == 0 {
                    // Jumbogram or offloaded segment: no usable length.
                    return Err(NotUdp::BadIp);
                }
                let total = 40 + payload_len;
                if total > ip.len() {
                    return Err(NotUdp::Truncated);
                }
                let udp_rel = ipv6_udp_offset(&ip[..total])?;
                (true, udp_rel, total, v6(&ip[8..24]), v6(&ip[24..40]))
            }
            _ => return Err(NotUdp::BadIp),
        };
        if udp_rel + 8 > ip_len {
            return Err(NotUdp::BadUdp);
        }
        let udp = &ip[udp_rel..ip_len];
        let udp_len = be16(udp, 4) as usize;
        if udp_len < 8 || udp_len > udp.len() {
            return Err(NotUdp::BadUdp);
        }
        let udp_off = ip_off + udp_rel;
        Ok(UdpView {
            ip_off,
            ipv6,
            udp_off,
            payload_off: udp_off + 8,
            payload_end: udp_off + udp_len,
            src: SocketAddr::new(src, be16(udp, 0)),
            dst: SocketAddr::new(dst, be16(udp, 2)),
        })
    }

    pub fn payload<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.payload_off..self.payload_end]
    }

    /// A copy of `frame` carrying `payload` instead, with the IP length, IPv4 header
    /// checksum, UDP length and UDP checksum set to match. Anything after the UDP
    /// datagram (Ethernet padding or trailer) is left out. `None` when the datagram
    /// would exceed what IP can carry.
    pub fn replace_payload(&self, frame: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
        let udp_len = 8 + payload.len();
        let ip_len = self.udp_off - self.ip_off + udp_len;
        let mut out = Vec::with_capacity(self.payload_off + payload.len());
        out.extend_from_slice(&frame[..self.payload_off]);
        out.extend_from_slice(payload);
        let ip = &mut out[self.ip_off..];
        if self.ipv6 {
            let len = u16::try_from(ip_len - 40).ok()?;
            ip[4..6].copy_from_slice(&len.to_be_bytes());
        } else {
            let len = u16::try_from(ip_len).ok()?;
            ip[2..4].copy_from_slice(&len.to_be_bytes());
            let ihl = 4 * (ip[0] & 0x0f) as usize;
            ip[10..12].fill(0);
            let sum = !fold(sum_words(0, &ip[..ihl]));
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        let udp_rel = self.udp_off - self.ip_off;
        let len16 = u16::try_from(udp_len).ok()?;
        ip[udp_rel + 4..udp_rel + 6].copy_from_slice(&len16.to_be_bytes());
        ip[udp_rel + 6..udp_rel + 8].fill(0);
        let sum = udp_checksum(self.ipv6, ip, udp_rel, udp_len);
        ip[udp_rel + 6..udp_rel + 8].copy_from_slice(&sum.to_be_bytes());
        Some(out)
    }

    /// Whether the IPv4 header checksum (always true for IPv6) and the UDP checksum of
    /// `frame` are right. A zero UDP checksum over IPv4 means "none" and counts as right.
    pub fn checksums_ok(&self, frame: &[u8]) -> bool {
        let ip = &frame[self.ip_off..];
        if !self.ipv6 {
            let ihl = 4 * (ip[0] & 0x0f) as usize;
            if fold(sum_words(0, &ip[..ihl])) != 0xffff {
                return false;
            }
        }
        let udp_rel = self.udp_off - self.ip_off;
        let udp_len = self.payload_end - self.udp_off;
        let stored = be16(ip, udp_rel + 6);
        if stored == 0 && !self.ipv6 {
            return true;
        }
        let mut copy = ip[..udp_rel + udp_len].to_vec();
        copy[udp_rel + 6..udp_rel + 8].fill(0);
        udp_checksum(self.ipv6, &copy, udp_rel, udp_len) == stored
    }
}

/// Offset of the UDP header in an IPv6 packet, past hop-by-hop and destination options.
fn ipv6_udp_offset(ip: &[u8]) -> Result<usize, NotUdp> {
    let mut next = ip[6];
    let mut off = 40;
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            PROTO_UDP => return Ok(off),
            // Hop-by-hop and destination options do not change the pseudo-header.
            0 | 60 => {
                if off + 2 > ip.len() {
                    return Err(NotUdp::BadIp);
                }
                next = ip[off];
                off += 8 * (ip[off + 1] as usize + 1);
            }
            44 => return Err(NotUdp::Fragment),
            _ => return Err(NotUdp::OtherProtocol),
        }
    }
    Err(NotUdp::OtherProtocol)
}

fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u64) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The UDP checksum of the datagram at `ip[udp_rel..udp_rel + udp_len]` (its checksum
/// field zeroed), with the pseudo-header taken from the IP header at `ip[0..]`.
fn udp_checksum(ipv6: bool, ip: &[u8], udp_rel: usize, udp_len: usize) -> u16 {
    let mut acc = if ipv6 {
        sum_words(0, &ip[8..40])
    } else {
        sum_words(0, &ip[12..20])
    };
    acc += PROTO_UDP as u64 + udp_len as u64;
    acc = sum_words(acc, &ip[udp_rel..udp_rel + udp_len]);
    match !fold(acc) {
        0 => 0xffff,
        s => s,
    }
}

/// An IP packet (v4 or v6, after the family of `src`) carrying one UDP datagram, with
/// right lengths and checksums. `None` when the addresses are of different families
/// or the payload is too large.
pub fn build_ip_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let mut ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, PROTO_UDP, 0, 0];
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, PROTO_UDP, 64];
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h
        }
        _ => return None,
    };
    let udp_off = ip.len();
    ip.extend_from_slice(&src.port().to_be_bytes());
    ip.extend_from_slice(&dst.port().to_be_bytes());
    ip.extend_from_slice(&[0; 4]);
    let view = UdpView {
        ip_off: 0,
        ipv6: src.is_ipv6(),
        udp_off,
        payload_off: udp_off + 8,
        payload_end: udp_off + 8,
        src,
        dst,
    };
    view.replace_payload(&ip, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_datagrams_parse_with_good_checksums() {
        for (s, d) in [
            ("192.0.2.1:5004", "198.51.100.7:40000"),
            ("[2001:db8::1]:5004", "[2001:db8::2]:6000"),
        ] {
            let (s, d) = (s.parse().unwrap(), d.parse().unwrap());
            let pkt = build_ip_udp(s, d, b"hello, odd length").unwrap();
            let v = UdpView::locate(&pkt, 0).unwrap();
            assert_eq!((v.src, v.dst), (s, d));
            assert_eq!(v.payload(&pkt), b"hello, odd length");
            assert!(v.checksums_ok(&pkt));
            let longer = v.replace_payload(&pkt, &[0xab; 300]).unwrap();
            let w = UdpView::locate(&longer, 0).unwrap();
            assert_eq!(w.payload(&longer), &[0xab; 300][..]);
            assert!(w.checksums_ok(&longer));
            let mut bad = longer.clone();
            bad[w.payload_off] ^= 1;
            assert!(!w.checksums_ok(&bad));
        }
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The classic worked example of the Internet checksum over an IPv4 header.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(!fold(sum_words(0, &h)), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(fold(sum_words(0, &h)), 0xffff);
    }

    #[test]
    fn fragments_and_short_packets_are_refused() {
        let s: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let mut pkt = build_ip_udp(s, s, &[1, 2, 3]).unwrap();
        assert_eq!(UdpView::locate(&pkt[..25], 0), Err(NotUdp::Truncated));
        pkt[6] = 0x20;
        assert_eq!(UdpView::locate(&pkt, 0), Err(NotUdp::Fragment));
        pkt[6] = 0;
        pkt[9] = 6;
        assert_eq!(UdpView::locate(&pkt, 0), Err(NotUdp::OtherProtocol));
        pkt[9] = 17;
        pkt[24..26].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpView::locate(&pkt, 0), Err(NotUdp::BadUdp));
        assert_eq!(UdpView::locate(&pkt, 100), Err(NotUdp::BadIp));
    }
}
