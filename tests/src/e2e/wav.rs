//! A reader for the 16-bit PCM WAV files baresip's `sndfile` writes. A file whose header
//! was never finalised (process killed) is read up to its end.

use std::path::Path;

use super::{Context, E2eError, Result};

/// Mono samples (the first channel) and their rate.
#[derive(Clone, Debug)]
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl Wav {
    pub fn read(path: &Path) -> Result<Wav> {
        let b = std::fs::read(path).context(format!("reading {}", path.display()))?;
        Wav::parse(&b).context(format!("parsing {}", path.display()))
    }

    pub fn parse(b: &[u8]) -> Result<Wav> {
        if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
            return Err(E2eError::new("not a RIFF/WAVE file"));
        }
        let le16 = |at: usize| b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
        let le32 = |at: usize| {
            b.get(at..at + 4)
                .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        };
        let mut at = 12;
        let mut fmt: Option<(u16, u16, u32, u16)> = None;
        while at + 8 <= b.len() {
            let id = &b[at..at + 4];
            let size = le32(at + 4).unwrap_or(0) as usize;
            let body = at + 8;
            if id == b"fmt " {
                let format = le16(body).context("short fmt chunk")?;
                let channels = le16(body + 2).context("short fmt chunk")?;
                let rate = le32(body + 4).context("short fmt chunk")?;
                let bits = le16(body + 14).context("short fmt chunk")?;
                fmt = Some((format, channels, rate, bits));
            } else if id == b"data" {
                let (format, channels, rate, bits) = fmt.context("data chunk before fmt")?;
                // 1 = PCM, 0xfffe = WAVE_FORMAT_EXTENSIBLE (PCM subformat assumed).
                if !(format == 1 || format == 0xfffe) || bits != 16 || channels == 0 {
                    return Err(E2eError::new(format!(
                        "unsupported WAV format {format:#x}, {bits} bits, {channels} channels"
                    )));
                }
                let end = if size == 0 || body + size > b.len() {
                    b.len()
                } else {
                    body + size
                };
                let frame = 2 * usize::from(channels);
                let samples = b[body..end]
                    .chunks_exact(frame)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]))
                    .collect();
                return Ok(Wav {
                    rate,
                    channels,
                    samples,
                });
            }
            at = body + size + (size & 1);
        }
        Err(E2eError::new("no data chunk"))
    }

    pub fn duration_secs(&self) -> f64 {
        if self.rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.rate)
    }
}

/// The bytes of an 8 kHz mono 16-bit PCM WAV file holding `secs` seconds of a `hz` sine
/// (amplitude 12000), e.g. a voicemail greeting.
pub fn tone_wav(hz: f64, secs: f64) -> Vec<u8> {
    let n = (8000.0 * secs) as usize;
    let data: Vec<u8> = (0..n)
        .map(|i| (12000.0 * (std::f64::consts::TAU * hz * i as f64 / 8000.0).sin()) as i16)
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    for v in [16u32, 1 | (1 << 16), 8000, 16000, 2 | (16 << 16)] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(samples: &[i16], data_size: Option<u32>) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        let n = data_size.unwrap_or(2 * samples.len() as u32);
        b.extend_from_slice(&n.to_le_bytes());
        for s in samples {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_finalised_and_unfinalised_files() {
        let s = [1i16, -2, 300, -32768];
        let w = Wav::parse(&wav(&s, None)).unwrap();
        assert_eq!((w.rate, w.samples.as_slice()), (8000, &s[..]));
        let w = Wav::parse(&wav(&s, Some(0))).unwrap();
        assert_eq!(w.samples.len(), 4);
        assert!((Wav::parse(&wav(&[0; 8000], None)).unwrap().duration_secs() - 1.0).abs() < 1e-9);
        assert!(Wav::parse(b"RIFF").is_err());
    }
}
