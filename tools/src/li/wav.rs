//! 16-bit mono PCM WAV files whose sizes are filled in when they are finished.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

/// A WAV file being written.
pub struct WavWriter {
    out: BufWriter<File>,
    samples: u64,
}

/// WAV sizes are 32-bit: stop before the file would overflow them.
const MAX_SAMPLES: u64 = (u32::MAX as u64 - 36) / 2;

impl WavWriter {
    pub fn create(path: &Path, rate: u32) -> io::Result<WavWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut h = Vec::with_capacity(44);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&36u32.to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&1u16.to_le_bytes()); // mono
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * 2).to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&0u32.to_le_bytes());
        out.write_all(&h)?;
        Ok(WavWriter { out, samples: 0 })
    }

    pub fn write(&mut self, samples: impl IntoIterator<Item = i16>) -> io::Result<()> {
        for s in samples {
            if self.samples >= MAX_SAMPLES {
                break;
            }
            self.out.write_all(&s.to_le_bytes())?;
            self.samples += 1;
        }
        Ok(())
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Writes the sizes into the header and closes the file.
    pub fn finish(mut self) -> io::Result<()> {
        let data = (self.samples * 2) as u32;
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&(36 + data).to_le_bytes())?;
        self.out.seek(SeekFrom::Start(40))?;
        self.out.write_all(&data.to_le_bytes())?;
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_sizes() {
        let p = std::env::temp_dir().join(format!("wav-test-{}.wav", std::process::id()));
        let mut w = WavWriter::create(&p, 8000).unwrap();
        w.write([1i16, -2, 3]).unwrap();
        w.finish().unwrap();
        let b = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(b.len(), 50);
        assert_eq!(&b[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 42);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 8000);
        assert_eq!(u32::from_le_bytes(b[40..44].try_into().unwrap()), 6);
        assert_eq!(&b[44..], &[1, 0, 0xfe, 0xff, 3, 0]);
    }
}
