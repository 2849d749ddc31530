//! RIFF/WAVE writing: 16-bit PCM, mono.

use std::io::{self, Write};

/// Writes `samples` as a mono 16-bit PCM WAV file at `rate` Hz.
pub fn write_wav<W: Write>(mut w: W, rate: u32, samples: &[i16]) -> io::Result<()> {
    let data_len = u32::try_from(samples.len() * 2)
        .ok()
        .filter(|n| *n <= u32::MAX - 36)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too long for a WAV file"))?;
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    w.write_all(&h)?;
    let mut body = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        body.extend_from_slice(&s.to_le_bytes());
    }
    w.write_all(&body)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_is_44_bytes_and_sizes_add_up() {
        let mut out = Vec::new();
        super::write_wav(&mut out, 8000, &[1, -1, 300]).unwrap();
        assert_eq!(out.len(), 44 + 6);
        assert_eq!(&out[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(out[4..8].try_into().unwrap()), 36 + 6);
        assert_eq!(u32::from_le_bytes(out[40..44].try_into().unwrap()), 6);
        assert_eq!(&out[44..46], &1i16.to_le_bytes());
    }
}
