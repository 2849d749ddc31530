//! Integrity of the blocks after the first envelope: each packet block and the end block
//! carry a MAC over the digest of every byte before them and over themselves, keyed with a
//! secret exported from the first envelope's HPKE context. Only the mailbox owner can
//! derive that key, so only the owner can check it — and the relay forgets it when the
//! message is closed, so it cannot forge blocks afterwards either.

use ring::digest;
use ring::hmac;
use zeroize::Zeroizing;

use super::envelope::{record_type, EnvelopeError, FORMAT_ID, FORMAT_VERSION, RECORD_END};
use super::pcapng::{self, le32, le64, MAC_LEN};

/// The MAC key of a message. Zeroized on drop; never printed.
pub struct ChainKey(Zeroizing<[u8; 32]>);

impl ChainKey {
    pub(crate) fn new(k: Zeroizing<[u8; 32]>) -> Self {
        ChainKey(k)
    }

    /// HMAC-SHA256(key, prefix digest || block with its MAC bytes zero), cut to 16 bytes.
    pub fn mac(&self, prefix: &[u8; 32], block: &[u8], mac_at: usize) -> [u8; MAC_LEN] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0[..]);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(prefix);
        ctx.update(&block[..mac_at]);
        ctx.update(&[0; MAC_LEN]);
        ctx.update(&block[mac_at + MAC_LEN..]);
        let tag = ctx.sign();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }

    /// Fills in the MAC of `block`.
    pub fn sign(&self, prefix: &[u8; 32], block: &mut [u8], mac_at: usize) {
        let m = self.mac(prefix, block, mac_at);
        block[mac_at..mac_at + MAC_LEN].copy_from_slice(&m);
    }

    /// Checks the MAC of `block` in constant time.
    pub fn verify(&self, prefix: &[u8; 32], block: &[u8], mac_at: usize) -> bool {
        let want = self.mac(prefix, block, mac_at);
        let got = &block[mac_at..mac_at + MAC_LEN];
        want.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

/// SHA-256 of everything written or read so far.
#[derive(Clone)]
pub struct RunningDigest(digest::Context);

impl Default for RunningDigest {
    fn default() -> Self {
        RunningDigest(digest::Context::new(&digest::SHA256))
    }
}

impl RunningDigest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of the bytes so far (the running state goes on).
    pub fn current(&self) -> [u8; 32] {
        let d = self.0.clone().finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

/// Why a message stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Closed by the control plane (BYE, or the deposit ended).
    Normal = 0,
    /// The configured maximum length was reached.
    MaxLength = 1,
    /// The disk was full (or a file size limit reached): packets after that were not stored.
    DiskFull = 2,
    /// Another write error.
    WriteError = 3,
}

impl StopReason {
    fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            0 => StopReason::Normal,
            1 => StopReason::MaxLength,
            2 => StopReason::DiskFull,
            3 => StopReason::WriteError,
            _ => return None,
        })
    }
}

/// What the end block says about the message, MAC-protected like packet blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndRecord {
    pub end_unix_nanos: u64,
    /// Packet blocks in the file.
    pub packets: u64,
    /// Packets lost before the recorder saw them (tap queue full: the disk was slow).
    pub dropped: u64,
    /// Packets the recorder refused: failed authentication, replays, malformed, RTCP.
    pub refused: u64,
    pub reason: StopReason,
}

const END_DATA_LEN: usize = 48 + MAC_LEN;

impl EndRecord {
    /// The end block, unsigned, and the offset of its MAC.
    pub fn block(&self) -> (Vec<u8>, usize) {
        let mut d = Vec::with_capacity(END_DATA_LEN);
        d.extend_from_slice(FORMAT_ID);
        d.extend_from_slice(&[FORMAT_VERSION, RECORD_END, 0, 0]);
        d.extend_from_slice(&self.end_unix_nanos.to_le_bytes());
        d.extend_from_slice(&self.packets.to_le_bytes());
        d.extend_from_slice(&self.dropped.to_le_bytes());
        d.extend_from_slice(&self.refused.to_le_bytes());
        d.extend_from_slice(&(self.reason as u32).to_le_bytes());
        d.extend_from_slice(&[0; 4]);
        d.extend_from_slice(&[0; MAC_LEN]);
        // Type, length, PEN, then the data: the MAC is at 12 + 48.
        (pcapng::custom(&d), 12 + 48)
    }

    /// Parses an end block's data (after the PEN); returns the record and the MAC offset
    /// within the block.
    pub fn parse(data: &[u8]) -> Result<(Self, usize), EnvelopeError> {
        let bad = EnvelopeError::Malformed;
        if record_type(data)? != RECORD_END {
            return Err(bad("not an end record"));
        }
        if data.len() != END_DATA_LEN || data[44..48] != [0; 4] {
            return Err(bad("end record length or reserved bytes"));
        }
        let reason = StopReason::from_code(le32(data, 40)).ok_or(bad("unknown stop reason"))?;
        Ok((
            EndRecord {
                end_unix_nanos: le64(data, 8),
                packets: le64(data, 16),
                dropped: le64(data, 24),
                refused: le64(data, 32),
                reason,
            },
            12 + 48,
        ))
    }
}
