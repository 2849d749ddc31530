//! The sealed envelope: one direction's SRTP key material, sealed with HPKE (RFC 9180,
//! base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM) to the mailbox's public
//! key, in a pcapng custom block. docs/voicemail.md gives the layout byte by byte.

use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use zeroize::{Zeroize, Zeroizing};

use crate::srtp::{MasterKey, Mki, Policy, Suite};

use super::integrity::ChainKey;
use super::keys::{PrivateKey, PublicKey};
use super::pcapng::{self, le16, le32, le64, pad4, Block};

/// Format id at the start of every srtpgate custom block, after the PEN.
pub const FORMAT_ID: &[u8; 4] = b"SGVM";
pub const FORMAT_VERSION: u8 = 1;
pub const RECORD_ENVELOPE: u8 = 1;
pub const RECORD_END: u8 = 2;
/// RFC 9180 identifiers of the suite used.
pub const KEM_ID: u16 = 0x0020;
pub const KDF_ID: u16 = 0x0001;
pub const AEAD_ID: u16 = 0x0001;
/// HPKE `info`.
pub const HPKE_INFO: &[u8] = b"srtpgate voicemail envelope v1";
/// HPKE exporter context of the key that MACs every later block.
pub const EXPORT_CONTEXT: &[u8] = b"srtpgate voicemail block MAC v1";
const TAG_LEN: usize = 16;
const MAX_KEYS: usize = 16;
/// Offset of the custom data in a custom block (type, length, PEN).
const DATA_AT: usize = 12;
/// Fixed part of the envelope record before the mailbox id.
const FIXED: usize = 112;

/// Why an envelope could not be made or opened. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope block is malformed: {0}")]
    Malformed(&'static str),
    #[error("envelope uses HPKE suite {0:#06x}/{1:#06x}/{2:#06x}, not DHKEM(X25519)/HKDF-SHA256/AES-128-GCM")]
    UnsupportedSuite(u16, u16, u16),
    #[error("the message was sealed to another mailbox key ({0}), not to this private key")]
    WrongRecipient(PublicKey),
    #[error(
        "the file was modified before the envelope (the digest of the preceding bytes differs)"
    )]
    ModifiedBefore,
    #[error("the envelope does not open: it was modified, or the key is wrong")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("the sealed key material is malformed: {0}")]
    BadKeyMaterial(&'static str),
    #[error("mailbox id must be 1 to 255 bytes")]
    MailboxId,
    #[error("the system random source failed")]
    Random,
}

/// Where the keys came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The peer's own SRTP keys: the packets are stored exactly as received.
    AsReceived = 0,
    /// Fresh keys made by srtpgate: a plain (or unencrypted) leg protected on receipt.
    Reprotected = 1,
}

/// What a reader needs to decrypt one direction: the SRTP parameters and master keys,
/// and the index of the first packet stored under them. Keys zeroize on drop.
#[derive(Clone)]
pub struct KeyMaterial {
    pub suite: Suite,
    pub keys: Vec<MasterKey>,
    pub kdr: u64,
    pub ssrc: u32,
    pub roc: u32,
    pub seq: u16,
    pub origin: Origin,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("suite", &self.suite)
            .field("keys", &self.keys.len())
            .field("kdr", &self.kdr)
            .field("ssrc", &self.ssrc)
            .field("roc", &self.roc)
            .field("seq", &self.seq)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Wire codes of the SRTP suites in the sealed key material.
const SUITES: [(u8, Suite); 11] = [
    (1, Suite::AesCm128HmacSha1_80),
    (2, Suite::AesCm128HmacSha1_32),
    (3, Suite::Aes192CmHmacSha1_80),
    (4, Suite::Aes192CmHmacSha1_32),
    (5, Suite::Aes256CmHmacSha1_80),
    (6, Suite::Aes256CmHmacSha1_32),
    (7, Suite::AeadAes128Gcm),
    (8, Suite::AeadAes256Gcm),
    (9, Suite::F8_128HmacSha1_80),
    (10, Suite::NullHmacSha1_80),
    (11, Suite::NullHmacSha1_32),
];

impl KeyMaterial {
    /// The SRTP policy that decrypts what was stored under this material.
    pub fn policy(&self) -> Policy {
        let mut p = Policy::new(self.suite, self.keys[0].clone());
        p.keys = self.keys.clone();
        p.kdr = self.kdr;
        p
    }

    fn mki_len(&self) -> usize {
        self.keys
            .first()
            .and_then(|k| k.mki())
            .map_or(0, |m| m.len())
    }

    /// The plaintext that is sealed.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let bad = EnvelopeError::BadKeyMaterial;
        let code = SUITES
            .iter()
            .find(|(_, s)| *s == self.suite)
            .map(|(c, _)| *c)
            .ok_or(bad("unknown suite"))?;
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return Err(bad("1 to 16 master keys"));
        }
        let mki_len = self.mki_len();
        let mut out = Zeroizing::new(Vec::with_capacity(28 + self.keys.len() * 50));
        out.extend_from_slice(&[1, code, self.origin as u8, self.keys.len() as u8]);
        out.extend_from_slice(&[mki_len as u8, 0, 0, 0]);
        out.extend_from_slice(&self.kdr.to_le_bytes());
        out.extend_from_slice(&self.ssrc.to_le_bytes());
        out.extend_from_slice(&self.roc.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for k in &self.keys {
            if k.mki().map_or(0, |m| m.len()) != mki_len {
                return Err(bad("master keys with MKIs of different lengths"));
            }
            out.extend_from_slice(k.key());
            out.extend_from_slice(k.salt());
            if let Some(m) = k.mki() {
                out.extend_from_slice(m.as_bytes());
            }
        }
        Ok(out)
    }

    /// Parses [`encode`](Self::encode)'s output; every length must be exact.
    pub fn decode(b: &[u8]) -> Result<Self, EnvelopeError> {
        let bad = EnvelopeError::BadKeyMaterial;
        if b.len() < 28 || b[0] != 1 {
            return Err(bad("unknown version or too short"));
        }
        let suite = SUITES
            .iter()
            .find(|(c, _)| *c == b[1])
            .map(|(_, s)| *s)
            .ok_or(bad("unknown suite"))?;
        let origin = match b[2] {
            0 => Origin::AsReceived,
            1 => Origin::Reprotected,
            _ => return Err(bad("unknown origin")),
        };
        let (n, mki_len) = (b[3] as usize, b[4] as usize);
        if n == 0 || n > MAX_KEYS || mki_len > 4 || (n > 1 && mki_len == 0) {
            return Err(bad("bad key count or MKI length"));
        }
        if b[5..8] != [0, 0, 0] || b[26..28] != [0, 0] {
            return Err(bad("reserved bytes set"));
        }
        let each = suite.key_len() + suite.salt_len() + mki_len;
        if b.len() != 28 + n * each {
            return Err(bad("length does not match the suite and key count"));
        }
        let mut keys = Vec::with_capacity(n);
        for chunk in b[28..].chunks_exact(each) {
            let (key, rest) = chunk.split_at(suite.key_len());
            let (salt, mki) = rest.split_at(suite.salt_len());
            let mut k = MasterKey::new(suite, key, salt).map_err(|_| bad("key length"))?;
            if mki_len > 0 {
                let v = mki.iter().fold(0u32, |v, x| (v << 8) | *x as u32);
                k = k.with_mki(Mki::new(v, mki_len).map_err(|_| bad("MKI"))?);
            }
            keys.push(k);
        }
        let kdr = le64(b, 8);
        if kdr != 0 && (!kdr.is_power_of_two() || kdr > 1 << 24) {
            return Err(bad("key derivation rate"));
        }
        Ok(KeyMaterial {
            suite,
            keys,
            kdr,
            ssrc: le32(b, 16),
            roc: le32(b, 20),
            seq: le16(b, 24),
            origin,
        })
    }
}

/// The cleartext fields of an envelope, all of them authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The interface (call direction) whose packets the keys decrypt.
    pub interface: u32,
    /// 0 for the file's first envelope, then 1, 2, … in file order.
    pub number: u32,
    pub recording_id: [u8; 16],
    /// When the recording started, ns since the Unix epoch.
    pub start_unix_nanos: u64,
    pub mailbox_id: String,
    /// The public key the envelope is sealed to.
    pub recipient: PublicKey,
    /// SHA-256 of every byte of the file before this block.
    pub prefix_digest: [u8; 32],
}

/// `rand_core` 0.9 over the system random source, without a panic: a failure is
/// remembered and checked by the caller before anything made from the bytes is used.
#[derive(Default)]
pub(crate) struct OsRng {
    failed: bool,
}

impl OsRng {
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }
}

impl hpke::rand_core::RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        if super::keys::random_bytes(dst).is_err() {
            self.failed = true;
        }
    }
}

impl hpke::rand_core::CryptoRng for OsRng {}

/// Seals `km` to `header.recipient`; returns the whole custom block and the key that
/// MACs the blocks after it (used from the file's first envelope).
pub fn seal(
    header: &EnvelopeHeader,
    km: &KeyMaterial,
) -> Result<(Vec<u8>, ChainKey), EnvelopeError> {
    let m = header.mailbox_id.len();
    if m == 0 || m > 255 {
        return Err(EnvelopeError::MailboxId);
    }
    let plain = km.encode()?;
    let ct_len = plain.len() + TAG_LEN;
    let head = header_bytes(header, ct_len)?;
    let pk = header
        .recipient
        .to_hpke()
        .map_err(|_| EnvelopeError::Seal)?;
    let mut rng = OsRng::default();
    let setup = hpke::setup_sender::<AesGcm128, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        &mut rng,
    );
    if rng.failed() {
        return Err(EnvelopeError::Random);
    }
    let (enc, mut ctx) = setup.map_err(|_| EnvelopeError::Seal)?;
    // The AAD is the block itself up to the ciphertext, with the encapsulated key in it.
    let mut block = head;
    block.splice(DATA_AT + FIXED + m..DATA_AT + FIXED + m, enc.to_bytes());
    let ct = ctx.seal(&plain, &block).map_err(|_| EnvelopeError::Seal)?;
    if ct.len() != ct_len {
        return Err(EnvelopeError::Seal);
    }
    let mut chain = Zeroizing::new([0u8; 32]);
    ctx.export(EXPORT_CONTEXT, &mut chain[..])
        .map_err(|_| EnvelopeError::Seal)?;
    block.extend_from_slice(&ct);
    let total = block.len() + pad4(block.len()) + 4;
    block.resize(total - 4, 0);
    block.extend_from_slice(&(total as u32).to_le_bytes());
    Ok((block, ChainKey::new(chain)))
}

/// The block from its type through the ciphertext length, without `enc` (32 bytes that
/// go right after the mailbox id).
fn header_bytes(h: &EnvelopeHeader, ct_len: usize) -> Result<Vec<u8>, EnvelopeError> {
    let m = h.mailbox_id.len();
    let ct16 = u16::try_from(ct_len).map_err(|_| EnvelopeError::Seal)?;
    let data_len = FIXED + m + 32 + 2 + ct_len;
    let total = DATA_AT + data_len + pad4(data_len) + 4;
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&pcapng::CUSTOM.to_le_bytes());
    b.extend_from_slice(&(total as u32).to_le_bytes());
    b.extend_from_slice(&pcapng::PEN.to_le_bytes());
    b.extend_from_slice(FORMAT_ID);
    b.extend_from_slice(&[FORMAT_VERSION, RECORD_ENVELOPE, 0, 0]);
    b.extend_from_slice(&h.interface.to_le_bytes());
    b.extend_from_slice(&h.number.to_le_bytes());
    b.extend_from_slice(&h.recording_id);
    b.extend_from_slice(&h.start_unix_nanos.to_le_bytes());
    b.extend_from_slice(&KEM_ID.to_le_bytes());
    b.extend_from_slice(&KDF_ID.to_le_bytes());
    b.extend_from_slice(&AEAD_ID.to_le_bytes());
    b.extend_from_slice(&[m as u8, 0]);
    b.extend_from_slice(h.recipient.as_bytes());
    b.extend_from_slice(&h.prefix_digest);
    b.extend_from_slice(h.mailbox_id.as_bytes());
    b.extend_from_slice(&ct16.to_le_bytes());
    Ok(b)
}

/// The record type of an srtpgate custom block's data (after the PEN).
pub fn record_type(data: &[u8]) -> Result<u8, EnvelopeError> {
    if data.len() < 8 || &data[..4] != FORMAT_ID {
        return Err(EnvelopeError::Malformed(
            "custom block without the SGVM format id",
        ));
    }
    if data[4] != FORMAT_VERSION {
        return Err(EnvelopeError::Malformed("unknown format version"));
    }
    if data[6..8] != [0, 0] {
        return Err(EnvelopeError::Malformed("reserved bytes set"));
    }
    Ok(data[5])
}

/// A parsed envelope block, not yet opened.
pub struct SealedEnvelope<'a> {
    pub header: EnvelopeHeader,
    enc: &'a [u8],
    ct: &'a [u8],
    aad: &'a [u8],
}

/// Parses an envelope block; every length and padding byte is checked.
pub fn parse(block: &Block) -> Result<SealedEnvelope<'_>, EnvelopeError> {
    let bad = EnvelopeError::Malformed;
    let b = &block.bytes;
    let data = pcapng::parse_custom(block).map_err(|_| bad("not an srtpgate custom block"))?;
    if record_type(data)? != RECORD_ENVELOPE {
        return Err(bad("not an envelope record"));
    }
    if data.len() < FIXED + 1 + 32 + 2 {
        return Err(bad("too short"));
    }
    let (kem, kdf, aead) = (le16(data, 40), le16(data, 42), le16(data, 44));
    if (kem, kdf, aead) != (KEM_ID, KDF_ID, AEAD_ID) {
        return Err(EnvelopeError::UnsupportedSuite(kem, kdf, aead));
    }
    let m = data[46] as usize;
    if m == 0 || data[47] != 0 {
        return Err(bad("bad mailbox id length"));
    }
    let ct_len_at = FIXED + m + 32;
    if data.len() < ct_len_at + 2 {
        return Err(bad("too short"));
    }
    let ct_len = le16(data, ct_len_at) as usize;
    let end = ct_len_at + 2 + ct_len;
    if data.len() != end + pad4(end) || data[end..].iter().any(|&x| x != 0) {
        return Err(bad("length or padding does not match the ciphertext"));
    }
    let mailbox_id = std::str::from_utf8(&data[FIXED..FIXED + m])
        .map_err(|_| bad("mailbox id is not UTF-8"))?
        .to_string();
    let mut recipient = [0u8; 32];
    recipient.copy_from_slice(&data[48..80]);
    let recipient = PublicKey::from_bytes(recipient).map_err(|_| bad("bad recipient key"))?;
    let mut recording_id = [0u8; 16];
    recording_id.copy_from_slice(&data[16..32]);
    let mut prefix_digest = [0u8; 32];
    prefix_digest.copy_from_slice(&data[80..112]);
    Ok(SealedEnvelope {
        header: EnvelopeHeader {
            interface: le32(data, 8),
            number: le32(data, 12),
            recording_id,
            start_unix_nanos: le64(data, 32),
            mailbox_id,
            recipient,
            prefix_digest,
        },
        enc: &data[FIXED + m..ct_len_at],
        ct: &data[ct_len_at + 2..end],
        aad: &b[..DATA_AT + ct_len_at + 2],
    })
}

impl SealedEnvelope<'_> {
    /// Opens the envelope with the mailbox private key, given the digest of the file bytes
    /// that precede it as the reader computed them.
    pub fn open(
        &self,
        key: &PrivateKey,
        prefix_digest: &[u8; 32],
    ) -> Result<(KeyMaterial, ChainKey), EnvelopeError> {
        if self.header.recipient != key.public_key() {
            return Err(EnvelopeError::WrongRecipient(self.header.recipient));
        }
        if &self.header.prefix_digest != prefix_digest {
            return Err(EnvelopeError::ModifiedBefore);
        }
        let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(self.enc)
            .map_err(|_| EnvelopeError::Open)?;
        let mut ctx = hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            key.hpke(),
            &enc,
            HPKE_INFO,
        )
        .map_err(|_| EnvelopeError::Open)?;
        let mut plain = Zeroizing::new(
            ctx.open(self.ct, self.aad)
                .map_err(|_| EnvelopeError::Open)?,
        );
        let km = KeyMaterial::decode(&plain);
        plain.zeroize();
        let mut chain = Zeroizing::new([0u8; 32]);
        ctx.export(EXPORT_CONTEXT, &mut chain[..])
            .map_err(|_| EnvelopeError::Open)?;
        Ok((km?, ChainKey::new(chain)))
    }
}
