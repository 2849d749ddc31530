//! SRTP crypto suites (RFC 4568 names), with their key, salt and tag sizes.

use std::fmt;
use std::str::FromStr;

/// How a suite encrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherKind {
    /// AES in counter mode (RFC 3711 §4.1.1, RFC 6188).
    AesCm,
    /// AES in f8 mode (RFC 3711 §4.1.2).
    AesF8,
    /// AES-GCM AEAD (RFC 7714).
    AesGcm,
    /// No encryption (authentication only).
    Null,
}

/// An SRTP crypto suite, as named in SDES `a=crypto` lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    Aes192CmHmacSha1_80,
    Aes192CmHmacSha1_32,
    Aes256CmHmacSha1_80,
    Aes256CmHmacSha1_32,
    AeadAes128Gcm,
    AeadAes256Gcm,
    F8_128HmacSha1_80,
    NullHmacSha1_80,
    NullHmacSha1_32,
}

impl Suite {
    /// Every suite, strongest first, in the order an offer lists them.
    pub const ALL: [Suite; 11] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::Aes256CmHmacSha1_80,
        Suite::Aes256CmHmacSha1_32,
        Suite::Aes192CmHmacSha1_80,
        Suite::Aes192CmHmacSha1_32,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::F8_128HmacSha1_80,
        Suite::NullHmacSha1_80,
        Suite::NullHmacSha1_32,
    ];

    /// The RFC 4568 / RFC 6188 / RFC 7714 name.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            Suite::F8_128HmacSha1_80 => "F8_128_HMAC_SHA1_80",
            Suite::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            Suite::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
        }
    }

    pub const fn cipher(self) -> CipherKind {
        match self {
            Suite::AesCm128HmacSha1_80
            | Suite::AesCm128HmacSha1_32
            | Suite::Aes192CmHmacSha1_80
            | Suite::Aes192CmHmacSha1_32
            | Suite::Aes256CmHmacSha1_80
            | Suite::Aes256CmHmacSha1_32 => CipherKind::AesCm,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => CipherKind::AesGcm,
            Suite::F8_128HmacSha1_80 => CipherKind::AesF8,
            Suite::NullHmacSha1_80 | Suite::NullHmacSha1_32 => CipherKind::Null,
        }
    }

    /// Length of the master key in bytes (also the session encryption key length).
    pub const fn key_len(self) -> usize {
        match self {
            Suite::Aes192CmHmacSha1_80 | Suite::Aes192CmHmacSha1_32 => 24,
            Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 | Suite::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Length of the master salt in bytes (also the session salt length).
    pub const fn salt_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 12,
            _ => 14,
        }
    }

    /// Length of the SDES `inline:` key-salt string once decoded.
    pub const fn key_salt_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Length of the HMAC-SHA1 session authentication key; 0 for AEAD suites.
    pub const fn auth_key_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 0,
            _ => 20,
        }
    }

    /// Length of the SRTP authentication tag (the AEAD tag for GCM).
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_32
            | Suite::Aes192CmHmacSha1_32
            | Suite::Aes256CmHmacSha1_32
            | Suite::NullHmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
            _ => 10,
        }
    }

    /// Length of the SRTCP authentication tag: 80 bits for every HMAC suite (RFC 4568 §6.2),
    /// the AEAD tag for GCM.
    pub const fn rtcp_tag_len(self) -> usize {
        match self.cipher() {
            CipherKind::AesGcm => 16,
            _ => 10,
        }
    }

    /// Whether the suite encrypts at all.
    pub const fn encrypts(self) -> bool {
        !matches!(self.cipher(), CipherKind::Null)
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A suite name that is not one of [`Suite::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SRTP crypto suite {0:?}")]
pub struct UnknownSuite(pub String);

impl FromStr for Suite {
    type Err = UnknownSuite;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // rtpengine and RFC 6188 both use AES_192_CM / AES_256_CM; some peers write
        // AES_CM_256 — accept that spelling too.
        let alias = match s {
            "AES_CM_192_HMAC_SHA1_80" => Some(Suite::Aes192CmHmacSha1_80),
            "AES_CM_192_HMAC_SHA1_32" => Some(Suite::Aes192CmHmacSha1_32),
            "AES_CM_256_HMAC_SHA1_80" => Some(Suite::Aes256CmHmacSha1_80),
            "AES_CM_256_HMAC_SHA1_32" => Some(Suite::Aes256CmHmacSha1_32),
            _ => None,
        };
        alias
            .or_else(|| {
                Suite::ALL
                    .iter()
                    .copied()
                    .find(|x| x.name().eq_ignore_ascii_case(s))
            })
            .ok_or_else(|| UnknownSuite(s.chars().take(64).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Suite::ALL {
            assert_eq!(s.name().parse::<Suite>().unwrap(), s);
        }
        assert!("AES_CM_129_HMAC_SHA1_80".parse::<Suite>().is_err());
    }

    #[test]
    fn sizes_match_the_rfcs() {
        assert_eq!(Suite::AesCm128HmacSha1_80.key_salt_len(), 30);
        assert_eq!(Suite::Aes256CmHmacSha1_80.key_salt_len(), 46);
        assert_eq!(Suite::Aes192CmHmacSha1_32.key_salt_len(), 38);
        assert_eq!(Suite::AeadAes128Gcm.key_salt_len(), 28);
        assert_eq!(Suite::AeadAes256Gcm.key_salt_len(), 44);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtp_tag_len(), 4);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtcp_tag_len(), 10);
    }
}
