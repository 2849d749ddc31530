//! Voicemail greetings: the audio srtpgate plays to a caller after answering a deposit.
//! Files are read once at start-up (8 kHz mono 16-bit PCM WAV, or raw G.711 µ-law `.ul` /
//! A-law `.al`); anything else stops the start-up with a message saying what was found.
//! Greetings are kept as 16-bit linear samples and encoded per call in the codec the caller
//! offered (PCMU or PCMA), 160 samples (20 ms) per packet.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::sdp::MediaDescription;
use crate::voicemail::config::{VoicemailConfig, VoicemailConfigError};

/// Samples per second of every greeting (G.711's clock).
pub const RATE: usize = 8000;
/// Samples per packet: 20 ms.
pub const FRAME: usize = RATE / 50;
/// The longest greeting accepted, in seconds.
pub const MAX_SECONDS: usize = 120;
/// The beep after the greeting: 1 kHz for 400 ms.
pub const BEEP_HZ: usize = 1000;
pub const BEEP_MS: usize = 400;

/// Why a greeting file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GreetingError {
    #[error("{path}: cannot read: {why}")]
    Read { path: String, why: String },
    #[error("{path}: {why}")]
    Format { path: String, why: String },
}

/// One greeting: 8 kHz 16-bit linear samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    samples: Vec<i16>,
}

impl Greeting {
    /// From samples at 8 kHz (e.g. synthesized); at most [`MAX_SECONDS`].
    pub fn from_samples(samples: Vec<i16>) -> Option<Greeting> {
        (!samples.is_empty() && samples.len() <= MAX_SECONDS * RATE).then_some(Greeting { samples })
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Reads a greeting file; the extension says what it is (`.wav`, `.ul`/`.ulaw`/`.mu`,
    /// `.al`/`.alaw`, case-insensitive).
    pub fn load(path: &Path) -> Result<Greeting, GreetingError> {
        let name = path.display().to_string();
        let format = |why: String| GreetingError::Format {
            path: name.clone(),
            why,
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let decode: fn(&[u8]) -> Result<Vec<i16>, String> = match ext.as_str() {
            "wav" => wav_samples,
            "ul" | "ulaw" | "mu" => |b| Ok(b.iter().map(|&x| ulaw_to_linear(x)).collect()),
            "al" | "alaw" => |b| Ok(b.iter().map(|&x| alaw_to_linear(x)).collect()),
            _ => {
                return Err(format(format!(
                    "unknown greeting format {ext:?}: use an 8 kHz mono 16-bit PCM .wav, \
                     or raw G.711 .ul (µ-law) or .al (A-law)"
                )))
            }
        };
        // Header, plus the longest greeting as 16-bit samples.
        let limit = (MAX_SECONDS * RATE * 2 + 4096) as u64;
        let bytes = read_limited(path, limit).map_err(|why| GreetingError::Read {
            path: name.clone(),
            why,
        })?;
        let samples = decode(&bytes).map_err(format)?;
        if samples.is_empty() {
            return Err(format("the greeting has no audio".into()));
        }
        if samples.len() > MAX_SECONDS * RATE {
            return Err(format(format!(
                "the greeting is longer than {MAX_SECONDS} s"
            )));
        }
        Ok(Greeting { samples })
    }

    /// The greeting's packets (160 samples each, the last padded with silence) in `codec`.
    pub fn frames(&self, codec: Codec) -> Vec<[u8; FRAME]> {
        self.samples
            .chunks(FRAME)
            .map(|c| {
                let mut f = [codec.encode(0); FRAME];
                for (o, &s) in f.iter_mut().zip(c) {
                    *o = codec.encode(s);
                }
                f
            })
            .collect()
    }
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "larger than a {MAX_SECONDS} s greeting can be ({limit} bytes)"
        ));
    }
    Ok(bytes)
}

/// The samples of a RIFF/WAVE file that is 8 kHz, mono, 16-bit PCM; anything else is
/// refused with what was found.
fn wav_samples(b: &[u8]) -> Result<Vec<i16>, String> {
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut at = 12;
    let mut format_ok = false;
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32_at(at + 4) as usize;
        let body = at + 8;
        let end = body.saturating_add(len).min(b.len());
        if id == b"fmt " {
            if end - body < 16 {
                return Err("the fmt chunk is too short".into());
            }
            let tag = u16_at(body);
            let channels = u16_at(body + 2);
            let rate = u32_at(body + 4);
            let bits = u16_at(body + 14);
            // WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes are the format tag.
            let tag = if tag == 0xfffe && end - body >= 26 {
                u16_at(body + 24)
            } else {
                tag
            };
            if tag != 1 || channels != 1 || rate != RATE as u32 || bits != 16 {
                return Err(format!(
                    "the WAV is format {tag}, {channels} channel(s), {rate} Hz, {bits} bits: \
                     a greeting must be PCM (format 1), 1 channel, 8000 Hz, 16 bits"
                ));
            }
            format_ok = true;
        } else if id == b"data" {
            if !format_ok {
                return Err("the data chunk comes before a fmt chunk".into());
            }
            return Ok(b[body..end]
                .chunks_exact(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]))
                .collect());
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len).saturating_add(len & 1);
    }
    Err(if format_ok {
        "no data chunk".into()
    } else {
        "no fmt chunk".into()
    })
}

/// The G.711 codecs a greeting can be sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551).
    pub fn static_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn encode(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => linear_to_ulaw(s),
            Codec::Pcma => linear_to_alaw(s),
        }
    }

    /// The first of the caller's formats that is PCMU or PCMA at 8 kHz, in the caller's
    /// order of preference, with the payload type the caller gave it; `None` when it
    /// offered neither (no greeting can be played then).
    pub fn choose(m: &MediaDescription) -> Option<(Codec, u8)> {
        m.formats.iter().find_map(|f| {
            let pt: u8 = f.parse().ok().filter(|pt| *pt < 128)?;
            match m.rtpmap(pt).ok().flatten() {
                Some(map) if map.clock_rate == 8000 => {
                    if map.encoding.eq_ignore_ascii_case("PCMU") {
                        Some((Codec::Pcmu, pt))
                    } else if map.encoding.eq_ignore_ascii_case("PCMA") {
                        Some((Codec::Pcma, pt))
                    } else {
                        None
                    }
                }
                Some(_) => None,
                None => match pt {
                    0 => Some((Codec::Pcmu, 0)),
                    8 => Some((Codec::Pcma, 8)),
                    _ => None,
                },
            }
        })
    }
}

/// G.711 µ-law of a 16-bit sample: sign, 3-bit segment and 4-bit step of the biased
/// magnitude, all bits inverted.
pub fn linear_to_ulaw(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let v = i32::from(s);
    let sign = if v < 0 { 0x80 } else { 0 };
    let mag = v.abs().min(CLIP) + BIAS;
    // The highest set bit is 7..=14; the segment counts from 7.
    let seg = (31 - mag.leading_zeros() as i32 - 7).clamp(0, 7);
    let step = (mag >> (seg + 3)) & 0x0f;
    !(sign | (seg << 4) | step) as u8
}

/// G.711 A-law of a 16-bit sample (13-bit magnitude, segments 0..7, even bits inverted).
pub fn linear_to_alaw(s: i16) -> u8 {
    let v = i32::from(s) >> 3;
    let (mag, mask) = if v >= 0 { (v, 0xd5) } else { (-v - 1, 0x55) };
    let seg = (0..8).find(|&k| mag < (0x20 << k)).unwrap_or(8);
    if seg >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let step = if seg < 2 {
        (mag >> 1) & 0x0f
    } else {
        (mag >> seg) & 0x0f
    };
    (((seg << 4) | step) ^ mask) as u8
}

pub fn ulaw_to_linear(b: u8) -> i16 {
    let v = !b;
    let seg = i32::from((v >> 4) & 0x07);
    let mag = (((i32::from(v & 0x0f) << 3) + 0x84) << seg) - 0x84;
    (if v & 0x80 != 0 { -mag } else { mag }) as i16
}

pub fn alaw_to_linear(b: u8) -> i16 {
    let v = b ^ 0x55;
    let seg = i32::from((v >> 4) & 0x07);
    let step = i32::from(v & 0x0f);
    let mag = if seg == 0 {
        (step << 4) + 8
    } else {
        ((step << 4) + 0x108) << (seg - 1)
    };
    (if v & 0x80 != 0 { mag } else { -mag }) as i16
}

/// The beep: a 1 kHz sine for 400 ms at a quarter of full scale.
pub fn beep() -> Greeting {
    let n = RATE * BEEP_MS / 1000;
    let samples = (0..n)
        .map(|i| {
            let t = i as f64 / RATE as f64;
            (8192.0 * (2.0 * std::f64::consts::PI * BEEP_HZ as f64 * t).sin()).round() as i16
        })
        .collect();
    Greeting { samples }
}

/// Every configured greeting, loaded at start-up.
#[derive(Clone, Debug, Default)]
pub struct Greetings {
    default: Option<Arc<Greeting>>,
    per_mailbox: HashMap<String, Arc<Greeting>>,
    /// Play the beep after the greeting.
    pub beep: bool,
}

impl Greetings {
    /// Loads `[voicemail] greeting` and each mailbox's `greeting`; a file that cannot be
    /// used is an error naming it.
    pub fn load(c: &VoicemailConfig) -> Result<Greetings, VoicemailConfigError> {
        let load = |p: &PathBuf| {
            Greeting::load(p)
                .map(Arc::new)
                .map_err(|e| VoicemailConfigError(format!("greeting {e}")))
        };
        let mut g = Greetings {
            default: c.greeting.as_ref().map(load).transpose()?,
            per_mailbox: HashMap::new(),
            beep: c.beep,
        };
        for m in &c.mailboxes {
            if let Some(p) = &m.greeting {
                g.per_mailbox.insert(m.id.clone(), load(p)?);
            }
        }
        Ok(g)
    }

    /// A default greeting for every mailbox (for tests and embedding).
    pub fn with_default(mut self, greeting: Greeting) -> Self {
        self.default = Some(Arc::new(greeting));
        self
    }

    /// The greeting of `mailbox`: its own, else the default.
    pub fn for_mailbox(&self, mailbox: &str) -> Option<Arc<Greeting>> {
        self.per_mailbox
            .get(mailbox)
            .or(self.default.as_ref())
            .cloned()
    }
}

#[cfg(test)]
#[path = "greeting_tests.rs"]
mod tests;
