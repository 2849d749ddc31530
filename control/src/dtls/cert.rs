//! srtpgate's DTLS identity: a certificate and key generated at start-up (ECDSA P-256,
//! self-signed, as WebRTC endpoints use) or loaded from PEM files, its `a=fingerprint`, and
//! the OpenSSL context every DTLS-SRTP session is created from.

use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    SslContext, SslContextBuilder, SslMethod, SslOptions, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509NameBuilder, X509};

use crate::sdp::Fingerprint;

/// The use_srtp profiles offered and accepted (RFC 5764, RFC 7714), preferred first.
pub const SRTP_PROFILES: &str =
    "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

/// Why the DTLS identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("OpenSSL: {0}")]
    Ssl(#[from] ErrorStack),
    #[error("unknown fingerprint hash {0:?} (sha-1, sha-224, sha-256, sha-384, sha-512)")]
    Hash(String),
}

/// The digest an `a=fingerprint` hash token names.
pub fn digest_named(name: &str) -> Option<MessageDigest> {
    Some(match name.to_ascii_lowercase().as_str() {
        "sha-1" => MessageDigest::sha1(),
        "sha-224" => MessageDigest::sha224(),
        "sha-256" => MessageDigest::sha256(),
        "sha-384" => MessageDigest::sha384(),
        "sha-512" => MessageDigest::sha512(),
        _ => return None,
    })
}

/// srtpgate's certificate, its private key, and the context sessions come from.
pub struct DtlsIdentity {
    cert: X509,
    context: SslContext,
    hash: String,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// A fresh self-signed ECDSA P-256 certificate valid for a year; `hash` is the
    /// fingerprint hash written into SDP by default.
    pub fn generate(hash: &str) -> Result<Self, CertError> {
        Self::generate_with_profiles(hash, SRTP_PROFILES)
    }

    /// Like [`generate`](Self::generate), offering only `profiles` (colon-separated
    /// OpenSSL names): for tests of each profile.
    pub fn generate_with_profiles(hash: &str, profiles: &str) -> Result<Self, CertError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, "srtpgate")?;
        let name = name.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        // A day in the past, against peers whose clocks run behind.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (from, until) = (
            Asn1Time::from_unix(now - 86_400)?,
            Asn1Time::days_from_now(365)?,
        );
        b.set_not_before(&from)?;
        b.set_not_after(&until)?;
        b.sign(&key, MessageDigest::sha256())?;
        Self::new(b.build(), key, hash, profiles)
    }

    /// A certificate and key from PEM files.
    pub fn load(cert: &Path, key: &Path, hash: &str) -> Result<Self, CertError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| CertError::Read {
                path: p.display().to_string(),
                reason: e.to_string(),
            })
        };
        let c = X509::from_pem(&read(cert)?)?;
        let k = PKey::private_key_from_pem(&read(key)?)?;
        Self::new(c, k, hash, SRTP_PROFILES)
    }

    fn new(cert: X509, key: PKey<Private>, hash: &str, profiles: &str) -> Result<Self, CertError> {
        if digest_named(hash).is_none() {
            return Err(CertError::Hash(hash.to_string()));
        }
        let mut b = SslContextBuilder::new(SslMethod::dtls())?;
        b.set_certificate(&cert)?;
        b.set_private_key(&key)?;
        b.check_private_key()?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_tlsext_use_srtp(profiles)?;
        b.set_options(
            SslOptions::NO_RENEGOTIATION | SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET,
        );
        b.set_session_cache_mode(openssl::ssl::SslSessionCacheMode::OFF);
        // Each session installs its own callback that checks the SDP fingerprint.
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        Ok(DtlsIdentity {
            cert,
            context: b.build(),
            hash: hash.to_ascii_lowercase(),
        })
    }

    pub fn context(&self) -> &SslContext {
        &self.context
    }

    /// The `a=fingerprint` of the certificate with the configured hash.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint_with(&self.hash)
            .unwrap_or_else(|| Fingerprint {
                hash: self.hash.clone(),
                digest: Vec::new(),
            })
    }

    /// The `a=fingerprint` with another hash (the ng `DTLS-fingerprint` option).
    pub fn fingerprint_with(&self, hash: &str) -> Option<Fingerprint> {
        let d = self.cert.digest(digest_named(hash)?).ok()?;
        Some(Fingerprint {
            hash: hash.to_ascii_lowercase(),
            digest: d.to_vec(),
        })
    }
}

/// Whether `cert` matches any of `expected` (each with its own hash function).
pub fn matches_fingerprint(cert: &openssl::x509::X509Ref, expected: &[Fingerprint]) -> bool {
    expected.iter().any(|f| {
        digest_named(&f.hash)
            .and_then(|md| cert.digest(md).ok())
            .is_some_and(|d| d.len() == f.digest.len() && openssl::memcmp::eq(&d, &f.digest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_has_fingerprints() {
        let id = DtlsIdentity::generate("sha-256").unwrap();
        let f = id.fingerprint();
        assert_eq!(f.hash, "sha-256");
        assert_eq!(f.digest.len(), 32);
        assert_eq!(id.fingerprint_with("SHA-1").unwrap().digest.len(), 20);
        assert!(matches_fingerprint(&id.cert, std::slice::from_ref(&f)));
        let mut wrong = f;
        wrong.digest[0] ^= 1;
        assert!(!matches_fingerprint(&id.cert, &[wrong]));
        assert!(matches!(
            DtlsIdentity::generate("md5"),
            Err(CertError::Hash(_))
        ));
    }

    #[test]
    fn loads_pem_files() {
        let id = DtlsIdentity::generate("sha-256").unwrap();
        let dir = std::env::temp_dir().join(format!("srtpgate-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        // A certificate whose key does not match is refused.
        std::fs::write(dir.join("c.pem"), id.cert.to_pem().unwrap()).unwrap();
        std::fs::write(dir.join("k.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(DtlsIdentity::load(&dir.join("c.pem"), &dir.join("k.pem"), "sha-256").is_err());
        assert!(matches!(
            DtlsIdentity::load(&dir.join("none.pem"), &dir.join("k.pem"), "sha-256"),
            Err(CertError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
