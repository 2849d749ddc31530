//! Deterministic RTP and RTCP packets for tests and benchmarks: well-formed, with varied
//! header shapes (CSRCs, header extensions, marker bits) and payload lengths.

/// Fills `out` with bytes from a small linear congruential generator seeded by `seed`.
pub fn fill(out: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in out {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *b = (x >> 56) as u8;
    }
}

/// The shape of one RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpShape {
    pub csrcs: u8,
    /// Header extension length in 32-bit words (0 for none).
    pub ext_words: u16,
    pub marker: bool,
    pub payload_type: u8,
    pub payload_len: usize,
}

impl RtpShape {
    /// A plain 12-byte header and `payload_len` bytes of payload.
    pub fn plain(payload_len: usize) -> Self {
        RtpShape {
            csrcs: 0,
            ext_words: 0,
            marker: false,
            payload_type: 0,
            payload_len,
        }
    }

    /// The `i`-th of a varied series: CSRCs every 5th packet, a one-byte-header extension
    /// every 7th, a marker every 13th, and payload lengths around AES block boundaries up
    /// to 1200 bytes.
    pub fn varied(i: usize) -> Self {
        const LENS: [usize; 12] = [160, 0, 1, 15, 16, 17, 31, 33, 100, 1188, 127, 640];
        RtpShape {
            csrcs: if i % 5 == 1 { 2 } else { 0 },
            ext_words: if i % 7 == 2 { 2 } else { 0 },
            marker: i % 13 == 0,
            payload_type: if i % 3 == 0 { 111 } else { 0 },
            payload_len: LENS[i % LENS.len()],
        }
    }
}

/// An RTP packet with sequence number `seq`, timestamp `ts`, SSRC `ssrc` and a payload
/// derived from `seed`.
pub fn rtp(shape: RtpShape, seq: u16, ts: u32, ssrc: u32, seed: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + 4 * shape.csrcs as usize + shape.payload_len + 64);
    let x = if shape.ext_words > 0 { 0x10 } else { 0 };
    p.push(0x80 | x | (shape.csrcs & 0x0f));
    p.push((shape.payload_type & 0x7f) | if shape.marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..shape.csrcs as u32 {
        p.extend_from_slice(&(0x0c5c_0000 + c).to_be_bytes());
    }
    if shape.ext_words > 0 {
        // RFC 8285 one-byte header form: id 1, length 2 (3 bytes), then padding.
        p.extend_from_slice(&[0xbe, 0xde]);
        p.extend_from_slice(&shape.ext_words.to_be_bytes());
        let mut ext = vec![0u8; 4 * shape.ext_words as usize];
        ext[0] = 0x12;
        fill(&mut ext[1..4], seed ^ 0xe7);
        p.extend_from_slice(&ext);
    }
    let start = p.len();
    p.resize(start + shape.payload_len, 0);
    fill(&mut p[start..], seed);
    p
}

/// A compound RTCP packet: a sender report with `blocks` report blocks (0..=31), then an
/// SDES packet with one CNAME chunk of `cname_len` bytes (1..=255). `seed` varies the
/// report contents.
pub fn rtcp_sr_sdes(ssrc: u32, blocks: u8, cname_len: usize, seed: u64) -> Vec<u8> {
    let blocks = blocks.min(31);
    let cname_len = cname_len.clamp(1, 255);
    let mut p = Vec::with_capacity(28 + 24 * blocks as usize + cname_len + 16);
    // SR: header, SSRC, NTP timestamp (8), RTP timestamp, packet and octet counts.
    let sr_words = 6 + 6 * blocks as u16;
    p.push(0x80 | blocks);
    p.push(200);
    p.extend_from_slice(&sr_words.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    let mut info = [0u8; 20];
    fill(&mut info, seed);
    p.extend_from_slice(&info);
    for b in 0..blocks as u64 {
        let mut block = [0u8; 24];
        fill(&mut block, seed.wrapping_add(b + 1));
        p.extend_from_slice(&block);
    }
    // SDES: one chunk (SSRC, CNAME item, END item, zero padding to a 32-bit boundary).
    let chunk_len = 4 + 2 + cname_len + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    p.push(0x81);
    p.push(202);
    p.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.push(1);
    p.push(cname_len as u8);
    p.extend((0..cname_len).map(|i| b'a' + ((seed as usize + i) % 26) as u8));
    p.resize(p.len() + 1 + padded - chunk_len, 0);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_headers_are_well_formed() {
        for i in 0..40 {
            let s = RtpShape::varied(i);
            let p = rtp(s, 65535, 1, 2, i as u64);
            let h = relay::srtp::rtp_header_len(&p).unwrap();
            assert_eq!(h + s.payload_len, p.len());
            let ext = if s.ext_words > 0 {
                4 + 4 * s.ext_words as usize
            } else {
                0
            };
            assert_eq!(h, 12 + 4 * s.csrcs as usize + ext);
        }
    }

    #[test]
    fn rtcp_lengths_add_up() {
        for (blocks, cname) in [(0, 1), (1, 16), (3, 3), (2, 255)] {
            let p = rtcp_sr_sdes(7, blocks, cname, 1);
            let sr = 4 * (u16::from_be_bytes([p[2], p[3]]) as usize + 1);
            let sdes = 4 * (u16::from_be_bytes([p[sr + 2], p[sr + 3]]) as usize + 1);
            assert_eq!(sr + sdes, p.len(), "{blocks} {cname}");
            assert_eq!(p.len() % 4, 0);
        }
    }
}
