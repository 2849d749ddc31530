//! From decrypted RTP to audio samples and to a plain RTP capture.

use std::io::Write;
use std::net::SocketAddr;

use relay::record::Packet;
use relay::srtp::rtp_header_len;

use crate::pcap::{PcapHeader, PcapWriter, Record, LINKTYPE_RAW};
use crate::udp::build_ip_udp;

use super::g711::{alaw_to_linear, ulaw_to_linear};

/// Sample rate of G.711.
pub const RATE: u32 = 8000;
/// A timestamp jump larger than this (forward) or any jump backward starts a new segment
/// right after the audio so far, rather than inserting silence or overwriting.
const MAX_GAP: u32 = 10 * RATE;

/// Why a direction could not be turned into audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("direction {0} holds no G.711 audio (payload types 0 or 8)")]
    NoAudio(u32),
    #[error("writing the capture: {0}")]
    Io(#[from] std::io::Error),
}

/// The audio of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub samples: Vec<i16>,
    /// Packets of other payload types (comfort noise, DTMF events, other codecs) skipped.
    pub skipped: u64,
    /// Packets that were not valid RTP.
    pub malformed: u64,
}

impl Decoded {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / RATE as f64
    }
}

/// Decodes the G.711 packets of direction `leg`, each placed at its RTP timestamp (lost
/// packets become silence; a new SSRC continues where the audio ended).
pub fn decode_leg(packets: &[Packet], leg: u32) -> Result<Decoded, AudioError> {
    let mut out = Decoded::default();
    // (ssrc, timestamp of sample 0 of the segment, sample index where the segment starts)
    let mut base: Option<(u32, u32, usize)> = None;
    let mut audio = 0u64;
    for p in packets.iter().filter(|p| p.leg == leg) {
        let Some((pt, ssrc, ts, payload)) = g711_payload(&p.rtp) else {
            out.malformed += 1;
            continue;
        };
        let expand: fn(u8) -> i16 = match pt {
            0 => ulaw_to_linear,
            8 => alaw_to_linear,
            _ => {
                out.skipped += 1;
                continue;
            }
        };
        audio += 1;
        let end = out.samples.len();
        let at = match base {
            Some((s, t0, start)) if s == ssrc => {
                let rel = ts.wrapping_sub(t0);
                let pos = start as u64 + rel as u64;
                if rel as u64 > (end - start) as u64 + MAX_GAP as u64 {
                    base = Some((ssrc, ts, end));
                    end
                } else {
                    pos as usize
                }
            }
            _ => {
                base = Some((ssrc, ts, end));
                end
            }
        };
        if out.samples.len() < at + payload.len() {
            out.samples.resize(at + payload.len(), 0);
        }
        for (d, b) in out.samples[at..].iter_mut().zip(payload) {
            *d = expand(*b);
        }
    }
    if audio == 0 {
        return Err(AudioError::NoAudio(leg));
    }
    Ok(out)
}

/// Payload type, SSRC, timestamp and payload (padding removed) of an RTP packet.
fn g711_payload(rtp: &[u8]) -> Option<(u8, u32, u32, &[u8])> {
    let h = rtp_header_len(rtp).ok()?;
    let mut end = rtp.len();
    if rtp[0] & 0x20 != 0 {
        let pad = *rtp.last()? as usize;
        if pad == 0 || pad > end - h {
            return None;
        }
        end -= pad;
    }
    let be32 = |at: usize| u32::from_be_bytes([rtp[at], rtp[at + 1], rtp[at + 2], rtp[at + 3]]);
    Some((rtp[1] & 0x7f, be32(8), be32(4), &rtp[h..end]))
}

/// Writes every packet as plain RTP over UDP/IPv4 in a classic pcap (LINKTYPE_RAW,
/// nanosecond timestamps): direction N from 192.0.2.(N+1):5004 to 192.0.2.100:4000. The
/// addresses are documentation addresses: the message does not keep the real ones.
pub fn rtp_pcap<W: Write>(w: W, packets: &[Packet]) -> Result<u64, AudioError> {
    let mut out = PcapWriter::new(w, &PcapHeader::new(LINKTYPE_RAW, true))?;
    let dst = SocketAddr::from(([192, 0, 2, 100], 4000));
    let mut n = 0;
    for p in packets {
        let src = SocketAddr::from(([192, 0, 2, (p.leg as u8).wrapping_add(1)], 5004));
        let Some(frame) = build_ip_udp(src, dst, &p.rtp) else {
            continue;
        };
        out.write_record(&Record {
            ts_sec: (p.unix_nanos / 1_000_000_000) as u32,
            ts_frac: (p.unix_nanos % 1_000_000_000) as u32,
            orig_len: frame.len() as u32,
            data: frame,
        })?;
        n += 1;
    }
    out.finish()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(pt: u8, ssrc: u32, ts: u32, payload: &[u8]) -> Packet {
        let mut rtp = vec![0x80, pt, 0, 0];
        rtp.extend_from_slice(&ts.to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        rtp.extend_from_slice(payload);
        Packet {
            leg: 0,
            unix_nanos: 0,
            rtp,
        }
    }

    #[test]
    fn packets_land_at_their_timestamps() {
        let p = [
            pkt(0, 1, 1000, &[0x80; 4]),
            pkt(0, 1, 1008, &[0x80; 4]), // 4 samples lost before it
            pkt(13, 1, 1012, &[0; 1]),   // comfort noise: skipped
            pkt(8, 2, 5, &[0xd5; 2]),    // new SSRC, A-law: appended
        ];
        let d = decode_leg(&p, 0).unwrap();
        assert_eq!(d.samples.len(), 14);
        assert_eq!(&d.samples[4..8], &[0; 4]);
        assert_eq!(d.samples[0], 32124);
        assert_eq!(d.samples[13], 8);
        assert_eq!(d.skipped, 1);
        assert!(matches!(decode_leg(&p, 1), Err(AudioError::NoAudio(1))));
    }

    #[test]
    fn wild_timestamps_do_not_allocate_or_panic() {
        let p = [
            pkt(0, 1, 0, &[0xff; 160]),
            pkt(0, 1, u32::MAX - 3, &[0xff; 160]),
            pkt(0, 1, 0x8000_0000, &[0xff; 160]),
        ];
        let d = decode_leg(&p, 0).unwrap();
        assert_eq!(d.samples.len(), 480);
    }
}
