//! Media checks: G.711 µ-law decoding, tone detection with the Goertzel algorithm, and the
//! RTP/SRTP packets of one call leg, decrypted with libsrtp (an implementation no one here
//! wrote) using the key the leg's SDP announced.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::net::SocketAddrV4;
use std::str::FromStr;

use relay::srtp::{MasterKey, Suite};

use super::capture::Datagram;
use super::sip::Crypto;
use super::{Context, E2eError, Result};
use crate::libsrtp::{Direction, LibSrtp};

/// G.711 µ-law to 16-bit linear.
pub fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// The share of the energy of `x` that lies at `hz` (1.0 for a pure sine whose frequency
/// falls on a bin of this window length, near 0 for noise or another tone).
pub fn tone_fraction(x: &[f64], rate: f64, hz: f64) -> f64 {
    let energy: f64 = x.iter().map(|v| v * v).sum();
    if x.is_empty() || energy == 0.0 {
        return 0.0;
    }
    let c = 2.0 * (2.0 * PI * hz / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for v in x {
        let s = v + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2;
    2.0 * power / (x.len() as f64 * energy)
}

/// Where a tone is present in a signal, in windows of [`ToneReport::WINDOW_SECS`].
#[derive(Clone, Debug, PartialEq)]
pub struct ToneReport {
    pub hz: f64,
    pub duration_secs: f64,
    pub windows: usize,
    /// Windows where the tone holds at least [`ToneReport::MIN_FRACTION`] of the energy.
    pub tone_windows: usize,
    /// Windows with (nearly) no energy at all.
    pub silent_windows: usize,
    /// Start of the first and end of the last tone window, in seconds.
    pub first_secs: Option<f64>,
    pub last_secs: Option<f64>,
    /// Mean tone fraction over non-silent windows.
    pub mean_fraction: f64,
}

impl ToneReport {
    pub const WINDOW_SECS: f64 = 0.1;
    pub const MIN_FRACTION: f64 = 0.6;
    /// RMS below which a window counts as silent (about -50 dBFS).
    pub const SILENCE_RMS: f64 = 100.0;

    pub fn analyse(samples: &[i16], rate: u32, hz: f64) -> ToneReport {
        let n = ((f64::from(rate) * Self::WINDOW_SECS) as usize).max(1);
        let mut r = ToneReport {
            hz,
            duration_secs: samples.len() as f64 / f64::from(rate.max(1)),
            windows: 0,
            tone_windows: 0,
            silent_windows: 0,
            first_secs: None,
            last_secs: None,
            mean_fraction: 0.0,
        };
        let mut sum = 0.0;
        for (i, w) in samples.chunks_exact(n).enumerate() {
            r.windows += 1;
            let x: Vec<f64> = w.iter().map(|&s| f64::from(s)).collect();
            let rms = (x.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
            if rms < Self::SILENCE_RMS {
                r.silent_windows += 1;
                continue;
            }
            let f = tone_fraction(&x, f64::from(rate), hz);
            sum += f;
            if f >= Self::MIN_FRACTION {
                r.tone_windows += 1;
                let t = i as f64 * Self::WINDOW_SECS;
                r.first_secs.get_or_insert(t);
                r.last_secs = Some(t + Self::WINDOW_SECS);
            }
        }
        let loud = r.windows - r.silent_windows;
        if loud > 0 {
            r.mean_fraction = sum / loud as f64;
        }
        r
    }

    pub fn tone_secs(&self) -> f64 {
        self.tone_windows as f64 * Self::WINDOW_SECS
    }

    /// Share of all windows that carry the tone.
    pub fn coverage(&self) -> f64 {
        if self.windows == 0 {
            0.0
        } else {
            self.tone_windows as f64 / self.windows as f64
        }
    }
}

/// An RTP packet's header fields and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtp {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Whether a datagram is RTCP (RFC 5761: payload types 64..=95 after the marker bit).
pub fn is_rtcp(b: &[u8]) -> bool {
    b.len() >= 8 && b[0] >> 6 == 2 && (64..=95).contains(&(b[1] & 0x7f))
}

/// The RTP header length (fixed part, CSRCs, extension), if `b` looks like RTP.
fn rtp_header_len(b: &[u8]) -> Option<usize> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(b[0] & 0x0f);
    if b[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*b.get(len + 2)?, *b.get(len + 3)?]);
        len += 4 + 4 * usize::from(words);
    }
    (len <= b.len()).then_some(len)
}

/// Parses plaintext RTP (padding removed). `trailer` bytes at the end (an SRTP tag) are not
/// payload.
pub fn parse_rtp(b: &[u8], trailer: usize) -> Option<Rtp> {
    let h = rtp_header_len(b)?;
    let mut end = b.len().checked_sub(trailer)?;
    if end < h {
        return None;
    }
    if b[0] & 0x20 != 0 && trailer == 0 {
        let pad = usize::from(*b.get(end - 1)?);
        end = end.checked_sub(pad).filter(|&e| e >= h)?;
    }
    Some(Rtp {
        pt: b[1] & 0x7f,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b[h..end].to_vec(),
    })
}

/// The SRTP master key of one direction, from an SDES `a=crypto` line.
#[derive(Clone)]
pub struct LegKey {
    pub suite: Suite,
    key_salt: Vec<u8>,
}

impl LegKey {
    pub fn from_crypto(c: &Crypto) -> Result<LegKey> {
        let suite = Suite::from_str(&c.suite).context("a=crypto suite")?;
        let m = MasterKey::from_inline(suite, &c.key_params)
            .map_err(|e| E2eError::new(format!("a=crypto:{} key: {e}", c.tag)))?;
        let mut key_salt = m.key().to_vec();
        key_salt.extend_from_slice(m.salt());
        Ok(LegKey { suite, key_salt })
    }
}

/// One direction of media between two UDP endpoints.
#[derive(Clone)]
pub struct Leg {
    pub name: String,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    /// The key this leg's sender announced; `None` for plain RTP.
    pub key: Option<LegKey>,
}

/// What was seen on one leg.
#[derive(Clone, Debug, Default)]
pub struct LegReport {
    pub name: String,
    pub srtp: bool,
    /// RTP-looking datagrams (RTCP excluded).
    pub rtp_datagrams: usize,
    pub rtcp_datagrams: usize,
    /// With a key: how many authenticated and decrypted, and how many did not.
    pub authenticated: usize,
    pub auth_failed: usize,
    /// Plaintext RTP, in arrival order (decrypted on SRTP legs).
    pub packets: Vec<Rtp>,
    /// Payload bytes as they crossed the wire (ciphertext on SRTP legs, tag excluded), by
    /// (SSRC, sequence number).
    pub wire_payloads: HashMap<(u32, u16), Vec<u8>>,
    /// Datagram arrival times (first, last).
    pub span: Option<(f64, f64)>,
    /// Arrival times of the first and last RTP datagram (no RTCP, STUN or DTLS).
    pub rtp_span: Option<(f64, f64)>,
}

impl LegReport {
    /// The PCMU audio of the leg, decoded.
    pub fn pcmu_audio(&self) -> Vec<i16> {
        self.packets
            .iter()
            .filter(|p| p.pt == 0)
            .flat_map(|p| p.payload.iter().map(|&u| ulaw_decode(u)))
            .collect()
    }

    /// The wire payloads decoded as if they were PCMU: a tone found here means the audio
    /// crossed in clear.
    pub fn wire_as_pcmu(&self) -> Vec<i16> {
        let mut keys: Vec<_> = self.wire_payloads.keys().copied().collect();
        keys.sort_by_key(|&(ssrc, seq)| (ssrc, seq));
        keys.iter()
            .flat_map(|k| self.wire_payloads[k].iter().map(|&u| ulaw_decode(u)))
            .collect()
    }
}

/// Collects the leg's datagrams from a capture and, on SRTP legs, authenticates and
/// decrypts every RTP packet with libsrtp.
pub fn analyse_leg(datagrams: &[Datagram], leg: &Leg) -> Result<LegReport> {
    let mut r = LegReport {
        name: leg.name.clone(),
        srtp: leg.key.is_some(),
        ..LegReport::default()
    };
    let mut session = match &leg.key {
        Some(k) => Some(
            LibSrtp::new(k.suite, &k.key_salt, Direction::Inbound)
                .map_err(|e| E2eError::new(format!("libsrtp session for {}: {e}", leg.name)))?,
        ),
        None => None,
    };
    let tag = leg.key.as_ref().map_or(0, |k| k.suite.rtp_tag_len());
    for d in datagrams
        .iter()
        .filter(|d| d.src == leg.src && d.dst == leg.dst)
    {
        let span = r.span.get_or_insert((d.time, d.time));
        span.1 = d.time;
        if is_rtcp(&d.payload) {
            r.rtcp_datagrams += 1;
            continue;
        }
        let Some(wire) = parse_rtp(&d.payload, tag) else {
            continue;
        };
        r.rtp_datagrams += 1;
        let rtp_span = r.rtp_span.get_or_insert((d.time, d.time));
        rtp_span.1 = d.time;
        r.wire_payloads
            .insert((wire.ssrc, wire.seq), wire.payload.clone());
        match session.as_mut() {
            None => r.packets.push(wire),
            Some(s) => match s.unprotect_vec(&d.payload) {
                Ok(plain) => match parse_rtp(&plain, 0) {
                    Some(p) => {
                        r.authenticated += 1;
                        r.packets.push(p);
                    }
                    None => r.auth_failed += 1,
                },
                Err(_) => r.auth_failed += 1,
            },
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: u32, secs: f64, amp: f64) -> Vec<i16> {
        let n = (f64::from(rate) * secs) as usize;
        (0..n)
            .map(|i| (amp * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
    }

    #[test]
    fn goertzel_finds_the_tone_and_only_it() {
        let s = sine(440.0, 8000, 2.0, 12000.0);
        let r = ToneReport::analyse(&s, 8000, 440.0);
        assert_eq!(r.windows, 20);
        assert_eq!(r.tone_windows, 20);
        assert!((r.tone_secs() - 2.0).abs() < 1e-9);
        assert!(r.mean_fraction > 0.95);
        let other = ToneReport::analyse(&s, 8000, 660.0);
        assert_eq!(other.tone_windows, 0);
        let silence = ToneReport::analyse(&[0i16; 8000], 8000, 440.0);
        assert_eq!(silence.silent_windows, 10);
    }

    #[test]
    fn tone_survives_ulaw_but_not_noise() {
        let s = sine(660.0, 8000, 1.0, 10000.0);
        // Round-trip through a crude µ-law encoder: search the code whose decode is nearest.
        let table: Vec<i16> = (0..=255u8).map(ulaw_decode).collect();
        let coded: Vec<i16> = s
            .iter()
            .map(|&x| {
                *table
                    .iter()
                    .min_by_key(|&&t| (i32::from(t) - i32::from(x)).abs())
                    .unwrap()
            })
            .collect();
        assert_eq!(ToneReport::analyse(&coded, 8000, 660.0).tone_windows, 10);
        let mut noise = vec![0u8; 8000];
        crate::packets::fill(&mut noise, 7);
        let noise: Vec<i16> = noise.into_iter().map(ulaw_decode).collect();
        assert_eq!(ToneReport::analyse(&noise, 8000, 660.0).tone_windows, 0);
    }

    #[test]
    fn rtp_parsing_and_rtcp_demux() {
        let mut p = vec![0x80, 0x00, 0x12, 0x34, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(&[0xaa; 160]);
        let r = parse_rtp(&p, 0).unwrap();
        assert_eq!((r.pt, r.seq, r.ts, r.ssrc), (0, 0x1234, 160, 0x0102_0304));
        assert_eq!(r.payload.len(), 160);
        assert_eq!(parse_rtp(&p, 10).unwrap().payload.len(), 150);
        assert!(!is_rtcp(&p));
        assert!(is_rtcp(&[0x80, 200, 0, 6, 1, 2, 3, 4]));
    }
}
