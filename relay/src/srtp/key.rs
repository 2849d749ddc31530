//! Master keys, MKIs and the SDES `inline:` key parameter (RFC 4568 §6.1).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{Error, Suite};

/// A master key identifier: 1 to 4 bytes carried in every packet (RFC 3711 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Mki {
    bytes: [u8; 4],
    len: u8,
}

impl Mki {
    /// The MKI `value` written in `len` bytes, big-endian (as in SDES `|value:len`).
    pub fn new(value: u32, len: usize) -> Result<Self, Error> {
        if !(1..=4).contains(&len) || (len < 4 && value >> (8 * len) != 0) {
            return Err(Error::InvalidPolicy("MKI must fit in 1..=4 bytes"));
        }
        let mut bytes = [0; 4];
        bytes[..len].copy_from_slice(&value.to_be_bytes()[4 - len..]);
        Ok(Mki {
            bytes,
            len: len as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn value(&self) -> u32 {
        self.as_bytes().iter().fold(0, |v, b| (v << 8) | *b as u32)
    }
}

/// One master key and master salt, with its optional MKI and lifetime (in packets).
/// The bytes are zeroized on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    bytes: [u8; 46],
    key_len: u8,
    salt_len: u8,
    #[zeroize(skip)]
    mki: Option<Mki>,
    #[zeroize(skip)]
    lifetime: Option<u64>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_len", &self.key_len)
            .field("salt_len", &self.salt_len)
            .field("mki", &self.mki)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// Why an SDES `inline:` parameter was refused. Never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InlineError {
    #[error("key parameter does not start with \"inline:\"")]
    NotInline,
    #[error("key is not valid base64")]
    BadBase64,
    #[error("key-salt is {got} bytes, {suite} needs {want}")]
    WrongLength {
        suite: Suite,
        got: usize,
        want: usize,
    },
    #[error("bad lifetime {0:?}")]
    BadLifetime(String),
    #[error("bad MKI {0:?}")]
    BadMki(String),
}

impl MasterKey {
    /// A master key from key and salt bytes; their lengths must suit `suite`.
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<Self, Error> {
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(Error::InvalidPolicy(
                "master key or salt length does not match the suite",
            ));
        }
        let mut bytes = [0; 46];
        bytes[..key.len()].copy_from_slice(key);
        bytes[key.len()..key.len() + salt.len()].copy_from_slice(salt);
        Ok(MasterKey {
            bytes,
            key_len: key.len() as u8,
            salt_len: salt.len() as u8,
            mki: None,
            lifetime: None,
        })
    }

    /// A master key from the concatenated key||salt as carried by SDES.
    pub fn from_key_salt(suite: Suite, key_salt: &[u8]) -> Result<Self, Error> {
        if key_salt.len() != suite.key_salt_len() {
            return Err(Error::InvalidPolicy(
                "key-salt length does not match the suite",
            ));
        }
        let (k, s) = key_salt.split_at(suite.key_len());
        Self::new(suite, k, s)
    }

    pub fn with_mki(mut self, mki: Mki) -> Self {
        self.mki = Some(mki);
        self
    }

    /// Limits how many packets (SRTP and SRTCP together) this key may protect or unprotect.
    pub fn with_lifetime(mut self, packets: u64) -> Self {
        self.lifetime = Some(packets);
        self
    }

    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    pub fn salt(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..(self.key_len + self.salt_len) as usize]
    }

    pub fn mki(&self) -> Option<Mki> {
        self.mki
    }

    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    /// Parses an RFC 4568 key parameter: `inline:<base64 key||salt>[|lifetime][|MKI:length]`.
    /// Both padded and unpadded base64 are accepted. Lifetime may be decimal or `2^n`.
    pub fn from_inline(suite: Suite, param: &str) -> Result<Self, InlineError> {
        let rest = param
            .strip_prefix("inline:")
            .ok_or(InlineError::NotInline)?;
        let mut parts = rest.split('|');
        let b64 = parts.next().unwrap_or_default();
        let mut raw = zeroize::Zeroizing::new(
            STANDARD
                .decode(b64)
                .or_else(|_| STANDARD_NO_PAD.decode(b64.trim_end_matches('=')))
                .map_err(|_| InlineError::BadBase64)?,
        );
        let want = suite.key_salt_len();
        if raw.len() != want {
            return Err(InlineError::WrongLength {
                suite,
                got: raw.len(),
                want,
            });
        }
        let mut key = Self::from_key_salt(suite, &raw).map_err(|_| InlineError::BadBase64)?;
        raw.zeroize();
        for part in parts {
            if let Some((v, l)) = part.split_once(':') {
                let bad = || InlineError::BadMki(part.chars().take(32).collect());
                let value: u32 = v.parse().map_err(|_| bad())?;
                let len: usize = l.parse().map_err(|_| bad())?;
                key.mki = Some(Mki::new(value, len).map_err(|_| bad())?);
            } else {
                key.lifetime = Some(parse_lifetime(part)?);
            }
        }
        Ok(key)
    }

    /// The key parameter as written in SDP, always with padded base64.
    pub fn to_inline(&self) -> String {
        let mut s = format!(
            "inline:{}",
            STANDARD.encode(&self.bytes[..(self.key_len + self.salt_len) as usize])
        );
        if let Some(l) = self.lifetime {
            if l.is_power_of_two() {
                s.push_str(&format!("|2^{}", l.trailing_zeros()));
            } else {
                s.push_str(&format!("|{l}"));
            }
        }
        if let Some(m) = self.mki {
            s.push_str(&format!("|{}:{}", m.value(), m.len()));
        }
        s
    }
}

fn parse_lifetime(s: &str) -> Result<u64, InlineError> {
    let bad = || InlineError::BadLifetime(s.chars().take(32).collect());
    if let Some(exp) = s.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| bad())?;
        if e > 48 {
            return Err(bad());
        }
        Ok(1u64 << e)
    } else {
        let v: u64 = s.parse().map_err(|_| bad())?;
        if v == 0 {
            return Err(bad());
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4568_example_parses() {
        // RFC 4568 §6.1 example key parameter.
        let k = MasterKey::from_inline(
            Suite::AesCm128HmacSha1_80,
            "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
        )
        .unwrap();
        assert_eq!(k.lifetime(), Some(1 << 20));
        assert_eq!(k.mki().unwrap().as_bytes(), &[0, 0, 0, 1]);
        assert_eq!(k.key().len(), 16);
        assert_eq!(k.salt().len(), 14);
        assert_eq!(
            k.to_inline(),
            "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4"
        );
    }

    #[test]
    fn padded_and_unpadded_gcm256_keys() {
        let bytes: Vec<u8> = (0..44).collect();
        let padded = format!("inline:{}", STANDARD.encode(&bytes));
        let unpadded = format!("inline:{}", STANDARD_NO_PAD.encode(&bytes));
        assert!(padded.ends_with('='));
        let a = MasterKey::from_inline(Suite::AeadAes256Gcm, &padded).unwrap();
        let b = MasterKey::from_inline(Suite::AeadAes256Gcm, &unpadded).unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.salt(), &bytes[32..]);
        assert_eq!(a.to_inline(), padded);
    }

    #[test]
    fn bad_parameters_are_typed() {
        let s = Suite::AesCm128HmacSha1_80;
        assert_eq!(
            MasterKey::from_inline(s, "uri:x").unwrap_err(),
            InlineError::NotInline
        );
        assert_eq!(
            MasterKey::from_inline(s, "inline:!!!").unwrap_err(),
            InlineError::BadBase64
        );
        assert!(matches!(
            MasterKey::from_inline(s, "inline:AAAA").unwrap_err(),
            InlineError::WrongLength {
                got: 3,
                want: 30,
                ..
            }
        ));
        let k = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert!(matches!(
            MasterKey::from_inline(s, &format!("{k}|2^99")),
            Err(InlineError::BadLifetime(_))
        ));
        assert!(matches!(
            MasterKey::from_inline(s, &format!("{k}|300:1")),
            Err(InlineError::BadMki(_))
        ));
        assert!(matches!(
            MasterKey::from_inline(s, &format!("{k}|1:5")),
            Err(InlineError::BadMki(_))
        ));
    }

    #[test]
    fn debug_hides_the_key() {
        let k = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0xAB; 16], &[0xCD; 14]).unwrap();
        let d = format!("{k:?}");
        assert!(
            !d.contains("171") && !d.to_lowercase().contains("ab"),
            "{d}"
        );
    }
}
