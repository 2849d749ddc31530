//! The RTP packets the bench sends: a template per stream, in which only the sequence
//! number, the timestamp, the packet counter and the send time change from packet to packet.
//!
//! Payload layout (big-endian): `"SGB1"`, stream id (u32), packet counter (u64), send time
//! (u64, nanoseconds of CLOCK_REALTIME, the clock the kernel stamps received datagrams
//! with), then a fill byte particular to the stream up to the payload size.

/// First bytes of every payload.
pub const MAGIC: [u8; 4] = *b"SGB1";
/// RTP header length (no CSRC, no extension).
pub const HEADER: usize = 12;
/// Smallest payload that holds the marker fields.
pub const MIN_PAYLOAD: usize = 24;
/// Largest payload accepted (fits a loopback datagram with any SRTP trailer).
pub const MAX_PAYLOAD: usize = 1400;
/// Room for a whole SRTP packet in a send or receive buffer.
pub const BUF_LEN: usize = HEADER + MAX_PAYLOAD + relay::srtp::MAX_SRTP_TRAILER + 64;
/// SSRCs are this plus the stream id.
pub const SSRC_BASE: u32 = 0x5347_0000;
/// RTP timestamp units per packet (20 ms at 8 kHz).
pub const TS_STEP: u32 = 160;

/// The fields that change per packet, read back from a received payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub stream: u32,
    pub counter: u64,
    pub sent_ns: u64,
}

/// Why a received packet is not one the bench sent on that stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    TooShort,
    NotRtp,
    Magic,
    /// The payload names another stream than the SSRC.
    Stream,
    /// Sequence number or timestamp disagree with the counter.
    Header,
    Fill,
}

/// The fill byte of a stream's payload.
pub fn fill_byte(stream: u32) -> u8 {
    (stream as u8).wrapping_mul(31) ^ 0xA5
}

/// The first sequence number of a stream.
pub fn first_seq(stream: u32) -> u16 {
    (stream.wrapping_mul(7919) & 0x7fff) as u16
}

/// The first RTP timestamp of a stream.
pub fn first_ts(stream: u32) -> u32 {
    stream.wrapping_mul(0x9E37_79B9)
}

/// The RTP packet template of a stream: header and payload with zeroed per-packet fields.
pub fn template(stream: u32, payload: usize, payload_type: u8) -> Vec<u8> {
    let payload = payload.clamp(MIN_PAYLOAD, MAX_PAYLOAD);
    let mut p = vec![fill_byte(stream); HEADER + payload];
    p[0] = 0x80;
    p[1] = payload_type & 0x7f;
    p[2..4].fill(0);
    p[4..8].fill(0);
    p[8..12].copy_from_slice(&SSRC_BASE.wrapping_add(stream).to_be_bytes());
    p[12..16].copy_from_slice(&MAGIC);
    p[16..20].copy_from_slice(&stream.to_be_bytes());
    p[20..36].fill(0);
    p
}

/// Writes the per-packet fields of packet `counter` of `stream` into a copy of its template.
pub fn stamp(pkt: &mut [u8], stream: u32, counter: u64, sent_ns: u64) {
    let seq = first_seq(stream).wrapping_add(counter as u16);
    let ts = first_ts(stream).wrapping_add((counter as u32).wrapping_mul(TS_STEP));
    pkt[2..4].copy_from_slice(&seq.to_be_bytes());
    pkt[4..8].copy_from_slice(&ts.to_be_bytes());
    pkt[20..28].copy_from_slice(&counter.to_be_bytes());
    pkt[28..36].copy_from_slice(&sent_ns.to_be_bytes());
}

/// The stream an RTP packet claims by its SSRC.
pub fn stream_of(pkt: &[u8]) -> Option<u32> {
    if pkt.len() < HEADER || pkt[0] >> 6 != 2 {
        return None;
    }
    let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
    Some(ssrc.wrapping_sub(SSRC_BASE))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Checks a received RTP packet (decrypted) of `payload` bytes against what the bench sent
/// and returns its marker.
pub fn check(pkt: &[u8], payload: usize) -> Result<Marker, Mismatch> {
    let payload = payload.clamp(MIN_PAYLOAD, MAX_PAYLOAD);
    if pkt.len() < HEADER + MIN_PAYLOAD {
        return Err(Mismatch::TooShort);
    }
    let stream = stream_of(pkt).ok_or(Mismatch::NotRtp)?;
    if pkt[12..16] != MAGIC {
        return Err(Mismatch::Magic);
    }
    if be_u32(&pkt[16..20]) != stream {
        return Err(Mismatch::Stream);
    }
    if pkt.len() != HEADER + payload {
        return Err(Mismatch::TooShort);
    }
    let counter = be_u64(&pkt[20..28]);
    let sent_ns = be_u64(&pkt[28..36]);
    let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
    let ts = be_u32(&pkt[4..8]);
    if seq != first_seq(stream).wrapping_add(counter as u16)
        || ts != first_ts(stream).wrapping_add((counter as u32).wrapping_mul(TS_STEP))
    {
        return Err(Mismatch::Header);
    }
    let fill = fill_byte(stream);
    if pkt[36..].iter().any(|&b| b != fill) {
        return Err(Mismatch::Fill);
    }
    Ok(Marker {
        stream,
        counter,
        sent_ns,
    })
}

/// Nanoseconds of CLOCK_REALTIME (the clock of SO_TIMESTAMPNS).
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_template_checks() {
        let mut p = template(7, 160, 0);
        stamp(&mut p, 7, 70_000, 123);
        let m = check(&p, 160).unwrap();
        assert_eq!(
            m,
            Marker {
                stream: 7,
                counter: 70_000,
                sent_ns: 123
            }
        );
        let mut bad = p.clone();
        bad[100] ^= 1;
        assert_eq!(check(&bad, 160), Err(Mismatch::Fill));
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert_eq!(check(&bad, 160), Err(Mismatch::Header));
        let mut other = template(8, 160, 0);
        stamp(&mut other, 8, 1, 1);
        other[16..20].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(check(&other, 160), Err(Mismatch::Stream));
        assert_eq!(check(&p[..40], 160), Err(Mismatch::TooShort));
    }
}
