//! SRTP key derivation (RFC 3711 §4.3, RFC 6188 §3, RFC 7714 §11) and the session keys
//! it produces.

use zeroize::Zeroize;

use super::crypto::{ctr_xor, encrypt_block, AesKey, Gcm, HmacSha1};
use super::{CipherKind, Error, MasterKey, Suite};

/// Key derivation labels (RFC 3711 §4.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// The AES-CM PRF: `out` = first bytes of AES-CM(master key, IV = (key_id XOR salt) * 2^16)
/// with key_id = label || r. A 96-bit (GCM) master salt is used as its left 96 bits of 112.
pub fn derive(master: &MasterKey, label: Label, r: u64, out: &mut [u8]) -> Result<(), Error> {
    let prf = AesKey::new(master.key())?;
    let mut iv = [0u8; 16];
    iv[..master.salt().len()].copy_from_slice(master.salt());
    // key_id occupies the low 56 bits of the 112-bit x, i.e. bytes 7..14 of the IV.
    let key_id = ((label as u64) << 48) | (r & 0xFFFF_FFFF_FFFF);
    for (i, b) in key_id.to_be_bytes()[1..].iter().enumerate() {
        iv[7 + i] ^= b;
    }
    out.iter_mut().for_each(|b| *b = 0);
    ctr_xor(&prf, &iv, out);
    Ok(())
}

/// The derived keys for one direction kind (SRTP or SRTCP) and one key-derivation epoch.
pub(crate) struct SessionKeys {
    pub(crate) cipher: SessionCipher,
    pub(crate) salt: [u8; 14],
    pub(crate) auth: Option<HmacSha1>,
}

// One per session and direction, never per packet; boxing the f8 keys would only add an
// indirection on the fast path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum SessionCipher {
    Null,
    Cm(AesKey),
    /// f8: the session key, and IV-mask cipher keyed with k_e XOR (k_s || 0x55..).
    F8 {
        key: AesKey,
        iv_key: AesKey,
    },
    Gcm(Gcm),
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl SessionKeys {
    /// Derives the SRTP (`rtcp == false`) or SRTCP keys for epoch `r`.
    pub(crate) fn derive(
        suite: Suite,
        master: &MasterKey,
        rtcp: bool,
        r: u64,
    ) -> Result<Self, Error> {
        let (le, la, ls) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
        };
        let mut ke = zeroize::Zeroizing::new([0u8; 32]);
        let ke = &mut ke[..suite.key_len()];
        derive(master, le, r, ke)?;
        let mut salt = zeroize::Zeroizing::new([0u8; 14]);
        derive(master, ls, r, &mut salt[..suite.salt_len()])?;
        let mut ka = zeroize::Zeroizing::new([0u8; 20]);
        let ka = &mut ka[..suite.auth_key_len()];
        derive(master, la, r, ka)?;
        Self::from_parts(suite, ke, &salt[..suite.salt_len()], ka)
    }

    /// Session keys from their raw bytes: encryption key, salt (`suite.salt_len()` bytes)
    /// and HMAC key (empty for AEAD suites).
    pub(crate) fn from_parts(
        suite: Suite,
        ke: &[u8],
        salt_in: &[u8],
        ka: &[u8],
    ) -> Result<Self, Error> {
        if ke.len() != suite.key_len()
            || salt_in.len() != suite.salt_len()
            || ka.len() != suite.auth_key_len()
        {
            return Err(Error::InvalidPolicy(
                "session key lengths do not match the suite",
            ));
        }
        let mut salt = [0u8; 14];
        salt[..salt_in.len()].copy_from_slice(salt_in);
        let auth = if ka.is_empty() {
            None
        } else {
            Some(HmacSha1::new(ka))
        };
        let cipher = match suite.cipher() {
            CipherKind::Null => SessionCipher::Null,
            CipherKind::AesCm => SessionCipher::Cm(AesKey::new(ke)?),
            CipherKind::AesGcm => SessionCipher::Gcm(Gcm::new(ke)?),
            CipherKind::AesF8 => {
                let mut masked = zeroize::Zeroizing::new([0x55u8; 16]);
                masked[..14].copy_from_slice(&salt);
                masked.iter_mut().zip(ke.iter()).for_each(|(m, k)| *m ^= k);
                SessionCipher::F8 {
                    key: AesKey::new(ke)?,
                    iv_key: AesKey::new(&masked[..])?,
                }
            }
        };
        Ok(SessionKeys { cipher, salt, auth })
    }

    /// For f8: IV' = E(k_e XOR m, IV).
    pub(crate) fn f8_iv_prime(iv_key: &AesKey, iv: [u8; 16]) -> [u8; 16] {
        let mut b = iv;
        encrypt_block(iv_key, &mut b);
        b
    }
}
