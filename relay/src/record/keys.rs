//! Mailbox key pairs (X25519, as DHKEM(X25519, HKDF-SHA256) of RFC 9180 uses them), their
//! text forms, and the system random source.
//!
//! The relay only ever holds public keys. Private keys live with the mailbox owner
//! (`vm-play keygen` writes one); they zeroize on drop and never print.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, Serializable};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// First line of a private key file.
pub const KEY_FILE_LABEL: &str = "srtpgate-mailbox-private-key-v1";

/// Why a key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key is not base64 of 32 bytes")]
    BadPublicKey,
    #[error("public key is a low-order X25519 point, which no private key can open")]
    WeakPublicKey,
    #[error("not a srtpgate mailbox private key file (expected \"{KEY_FILE_LABEL}\" then base64 of 32 bytes)")]
    BadPrivateKey,
    #[error("the system random source failed")]
    Random,
}

/// Fills `out` from the operating system's random source.
pub fn random_bytes(out: &mut [u8]) -> Result<(), KeyError> {
    SystemRandom::new().fill(out).map_err(|_| KeyError::Random)
}

/// A mailbox's X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// A public key from its 32 bytes. Refuses the points of small order, for which every
    /// sealed envelope would have a shared secret of zero.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map_err(|_| KeyError::BadPublicKey)?;
        // A trial encapsulation computes DH with a fresh scalar; hpke refuses an all-zero
        // result, which is what every low-order point gives.
        let mut rng = super::envelope::OsRng::default();
        let ok = hpke::setup_sender::<
            hpke::aead::AesGcm128,
            hpke::kdf::HkdfSha256,
            X25519HkdfSha256,
            _,
        >(&hpke::OpModeS::Base, &pk, b"key check", &mut rng);
        if rng.failed() {
            return Err(KeyError::Random);
        }
        ok.map_err(|_| KeyError::WeakPublicKey)?;
        Ok(PublicKey(bytes))
    }

    /// A public key from standard base64 (padded or not), surrounding spaces ignored.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let t = text.trim().trim_end_matches('=');
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(t)
            .map_err(|_| KeyError::BadPublicKey)?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| KeyError::BadPublicKey)?;
        Self::from_bytes(bytes)
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn to_hpke(self) -> Result<<X25519HkdfSha256 as hpke::Kem>::PublicKey, KeyError> {
        <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&self.0)
            .map_err(|_| KeyError::BadPublicKey)
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// A mailbox's X25519 private key. Zeroized on drop; `Debug` shows nothing of it.
pub struct PrivateKey {
    sk: <X25519HkdfSha256 as hpke::Kem>::PrivateKey,
    public: PublicKey,
}

impl PrivateKey {
    /// A new key pair from the system random source (RFC 9180 DeriveKeyPair over 32
    /// random bytes).
    pub fn generate() -> Result<Self, KeyError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        random_bytes(&mut ikm[..])?;
        let (sk, pk) = X25519HkdfSha256::derive_keypair(&ikm[..]);
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        Ok(PrivateKey {
            sk,
            public: PublicKey(public),
        })
    }

    /// The private key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(bytes)
            .map_err(|_| KeyError::BadPrivateKey)?;
        let pk = X25519HkdfSha256::sk_to_pk(&sk);
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        Ok(PrivateKey {
            sk,
            public: PublicKey(public),
        })
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The key file text: the label line, then the private key in base64.
    pub fn to_key_file(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 32]);
        self.sk.write_exact(&mut raw[..]);
        Zeroizing::new(format!("{KEY_FILE_LABEL}\n{}\n", STANDARD.encode(&raw[..])))
    }

    /// Parses the text [`to_key_file`](Self::to_key_file) writes.
    pub fn from_key_file(text: &str) -> Result<Self, KeyError> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(KEY_FILE_LABEL) {
            return Err(KeyError::BadPrivateKey);
        }
        let b64 = lines.next().ok_or(KeyError::BadPrivateKey)?;
        if lines.next().is_some() {
            return Err(KeyError::BadPrivateKey);
        }
        let raw = Zeroizing::new(STANDARD.decode(b64).map_err(|_| KeyError::BadPrivateKey)?);
        if raw.len() != 32 {
            return Err(KeyError::BadPrivateKey);
        }
        Self::from_bytes(&raw)
    }

    pub(crate) fn hpke(&self) -> &<X25519HkdfSha256 as hpke::Kem>::PrivateKey {
        &self.sk
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(for {})", self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip_and_debug_hides_the_key() {
        let k = PrivateKey::generate().unwrap();
        let text = k.to_key_file();
        let back = PrivateKey::from_key_file(&text).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        let secret_b64 = text.lines().nth(1).unwrap().to_string();
        assert!(!format!("{k:?}").contains(&secret_b64));
        assert!(PrivateKey::from_key_file("garbage").is_err());
        assert!(PrivateKey::from_key_file(&format!("{KEY_FILE_LABEL}\nAAAA\n")).is_err());
    }

    #[test]
    fn public_keys_parse_and_weak_ones_are_refused() {
        let k = PrivateKey::generate().unwrap().public_key();
        assert_eq!(PublicKey::from_base64(&k.to_base64()).unwrap(), k);
        assert_eq!(PublicKey::from_base64("AAAA"), Err(KeyError::BadPublicKey));
        assert_eq!(PublicKey::from_base64("!!"), Err(KeyError::BadPublicKey));
        assert_eq!(PublicKey::from_bytes([0; 32]), Err(KeyError::WeakPublicKey));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(PublicKey::from_bytes(one), Err(KeyError::WeakPublicKey));
    }
}
