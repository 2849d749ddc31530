//! Sealed voicemail and call recordings (docs/voicemail.md).
//!
//! One pcapng file per message. Each call direction is an interface (LINKTYPE_USER0: the
//! bare SRTP datagram, exactly as received, tag kept). Before a direction's first packet
//! comes an envelope: a custom block (type 0x00000BAD, PEN 32473, format id "SGVM") that
//! holds the direction's SRTP master keys, salt, suite, MKIs, KDR, and the SSRC, ROC and
//! sequence number of its first stored packet, sealed with HPKE (RFC 9180: DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, AES-128-GCM) to the mailbox's public key. The relay keeps no
//! copy of the keys once the message is closed, so nothing it has can decrypt the file.
//!
//! - [`writer`]: the file, crash-safe (temporary name, one write per block, fsync policy).
//! - [`recorder`]: drains engine taps on its own thread and feeds a writer.
//! - [`reader`]: with the private key, opens, verifies and decrypts a message.
//! - [`recover`]: after a crash, keeps every whole block of a half-written message.

pub mod envelope;
pub mod integrity;
pub mod keys;
pub mod pcapng;
pub mod reader;
pub mod recorder;
pub mod recover;
pub mod writer;

pub use envelope::{EnvelopeError, KeyMaterial, Origin};
pub use integrity::{EndRecord, StopReason};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use reader::{read, scan, Packet, ReadError, Summary};
pub use recorder::{Leg, LegSource, MessageSession, Recorder, RecorderConfig, RecorderStats};
pub use recover::{recover, recover_dir, Recovered};
pub use writer::{FsyncPolicy, MessageConfig, MessageInfo, MessageWriter, RecordError};

/// A message's random 128-bit id; its file is `<32 hex digits>.pcapng`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordingId(pub [u8; 16]);

impl RecordingId {
    pub fn random() -> Result<Self, KeyError> {
        let mut b = [0u8; 16];
        keys::random_bytes(&mut b)?;
        Ok(RecordingId(b))
    }

    /// Parses 32 hex digits (either case).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut b = [0u8; 16];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(RecordingId(b))
    }
}

impl std::fmt::Display for RecordingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for RecordingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordingId({self})")
    }
}
