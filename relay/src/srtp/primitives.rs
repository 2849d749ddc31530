//! The crypto primitives behind SRTP, exposed only so that `bench/benches/backends.rs` can
//! measure them against the alternatives that were not chosen. Not part of the API.

use super::crypto::{ctr_xor, AesKey, Gcm, HmacSha1};

/// HMAC-SHA1 with precomputed pad states over RustCrypto's SHA-1 compression.
pub struct Hmac(HmacSha1);

impl Hmac {
    pub fn new(key: &[u8]) -> Self {
        Hmac(HmacSha1::new(key))
    }

    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 20] {
        self.0.mac(parts)
    }
}

/// AES counter mode (RFC 3711 §4.1.1) over RustCrypto `aes` with the key expanded once.
pub struct AesCm(AesKey);

impl AesCm {
    /// `key` must be 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        AesKey::new(key).ok().map(AesCm)
    }

    pub fn xor(&self, iv: &[u8; 16], data: &mut [u8]) {
        ctr_xor(&self.0, iv, data)
    }
}

/// AES-GCM through `ring`.
pub struct AesGcm(Gcm);

impl AesGcm {
    /// `key` must be 16 or 32 bytes.
    pub fn new(key: &[u8]) -> Option<Self> {
        Gcm::new(key).ok().map(AesGcm)
    }

    pub fn seal(&self, nonce: [u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        self.0.seal(nonce, aad, data)
    }
}
