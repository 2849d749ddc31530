//! `a=crypto` (SDES, RFC 4568 §9.1):
//! `<tag> <crypto-suite> <key-params> [<session-param> ...]`, where key-params is one or
//! more `inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>]` joined by ';'.
//!
//! The suite stays a string (peers offer suites this relay does not implement, such as
//! `AEAD_AES_256_GCM_8`); [`Crypto::suite`] maps it to [`Suite`] on demand. Key parameters
//! are zeroized on drop and never printed by `Debug`.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use relay::srtp::{MasterKey, Suite};
use zeroize::Zeroizing;

use super::attribute::redact_inline_keys;
use super::fields::digits;
use super::{Attribute, CryptoError};

/// One key parameter, `inline:<key||salt>[|lifetime][|MKI:length]`, as written.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyParam(Zeroizing<String>);

impl KeyParam {
    /// Checks the grammar of a key parameter: `inline:` (any case), base64 key-salt,
    /// then an optional lifetime (`n` or `2^n`) and an optional `value:length` MKI.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let (method, info) = text.split_once(':').ok_or(CryptoError::NotInline)?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoError::NotInline);
        }
        let mut fields = info.split('|');
        let key_salt = fields.next().unwrap_or_default();
        decode_key_salt(key_salt).ok_or(CryptoError::BadBase64)?;
        let rest: Vec<&str> = fields.collect();
        let (lifetime, mki) = match rest[..] {
            [] => (None, None),
            [one] if one.contains(':') => (None, Some(one)),
            [one] => (Some(one), None),
            [lifetime, mki] => (Some(lifetime), Some(mki)),
            _ => return Err(CryptoError::BadMki),
        };
        if let Some(l) = lifetime {
            let ok = match l.strip_prefix("2^") {
                Some(exp) => digits::<u8>(exp).is_some(),
                None => digits::<u64>(l).is_some_and(|v| v > 0),
            };
            if !ok {
                return Err(CryptoError::BadLifetime);
            }
        }
        if let Some(m) = mki {
            let (value, len) = m.split_once(':').ok_or(CryptoError::BadMki)?;
            let value_ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            if !value_ok || !digits::<u8>(len).is_some_and(|l| (1..=128).contains(&l)) {
                return Err(CryptoError::BadMki);
            }
        }
        Ok(KeyParam(Zeroizing::new(text.to_string())))
    }

    /// The key parameter of `key`, with padded base64.
    pub fn from_master_key(key: &MasterKey) -> Self {
        KeyParam(Zeroizing::new(key.to_inline()))
    }

    /// The parameter as written (contains the key: keep it out of logs).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The master key this parameter carries for `suite`.
    pub fn master_key(&self, suite: Suite) -> Result<MasterKey, CryptoError> {
        let info = self.0.split_once(':').map_or("", |(_, info)| info);
        let normalized = Zeroizing::new(format!("inline:{info}"));
        Ok(MasterKey::from_inline(suite, &normalized)?)
    }
}

impl fmt::Debug for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyParam({:?})", redact_inline_keys(&self.0))
    }
}

fn decode_key_salt(b64: &str) -> Option<Zeroizing<Vec<u8>>> {
    if b64.is_empty() {
        return None;
    }
    STANDARD
        .decode(b64)
        .or_else(|_| STANDARD_NO_PAD.decode(b64.trim_end_matches('=')))
        .ok()
        .map(Zeroizing::new)
}

/// `KDR=n`: n is 0 to 24 (RFC 4568 §6.3).
fn kdr_exponent(v: &str) -> Option<u8> {
    digits(v).filter(|n| *n <= 24)
}

/// `WSH=n`: n is at least 64 (RFC 4568 §6.3).
fn window_size(v: &str) -> Option<u32> {
    digits(v).filter(|n| *n >= 64)
}

/// An `a=crypto` attribute value.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    /// 1 to 9 digits; the answer repeats the tag of the offer it accepts.
    pub tag: u32,
    pub suite: String,
    /// At least one.
    pub keys: Vec<KeyParam>,
    /// Session parameters as written: `UNENCRYPTED_SRTP`, `KDR=n`, `WSH=n`, `FEC_ORDER=...`.
    pub session_params: Vec<String>,
}

impl Crypto {
    pub const UNENCRYPTED_SRTP: &'static str = "UNENCRYPTED_SRTP";
    pub const UNENCRYPTED_SRTCP: &'static str = "UNENCRYPTED_SRTCP";
    pub const UNAUTHENTICATED_SRTP: &'static str = "UNAUTHENTICATED_SRTP";

    /// A crypto attribute for `suite` carrying `keys` (written with padded base64).
    /// `keys` must not be empty: RFC 4568 requires at least one key parameter.
    pub fn new(tag: u32, suite: Suite, keys: &[MasterKey]) -> Self {
        Crypto {
            tag,
            suite: suite.name().to_string(),
            keys: keys.iter().map(KeyParam::from_master_key).collect(),
            session_params: Vec::new(),
        }
    }

    /// Parses the text after `a=crypto:`.
    pub fn parse(value: &str) -> Result<Self, CryptoError> {
        let mut f = value.split_ascii_whitespace();
        let tag = f.next().ok_or(CryptoError::MissingValue)?;
        if tag.len() > 9 {
            return Err(CryptoError::BadTag);
        }
        let tag = digits(tag).ok_or(CryptoError::BadTag)?;
        let suite = f.next().ok_or(CryptoError::BadSuite)?;
        if !suite
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(CryptoError::BadSuite);
        }
        let keys = f
            .next()
            .ok_or(CryptoError::MissingKey)?
            .split(';')
            .map(KeyParam::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let session_params: Vec<String> = f.map(str::to_string).collect();
        let crypto = Crypto {
            tag,
            suite: suite.to_string(),
            keys,
            session_params,
        };
        for p in &crypto.session_params {
            let kdr_ok = p
                .strip_prefix("KDR=")
                .map(|v| v.len() <= 2 && kdr_exponent(v).is_some());
            if kdr_ok == Some(false) {
                return Err(CryptoError::BadSessionParam("KDR"));
            }
            if p.strip_prefix("WSH=").map(window_size) == Some(None) {
                return Err(CryptoError::BadSessionParam("WSH"));
            }
        }
        Ok(crypto)
    }

    /// The suite, if the relay implements it (aliases such as `AES_CM_256_...` accepted).
    pub fn suite(&self) -> Result<Suite, CryptoError> {
        self.suite
            .parse()
            .map_err(|_| CryptoError::UnknownSuite(self.suite.chars().take(64).collect()))
    }

    /// Every key parameter as a master key of this suite, with lifetime and MKI.
    pub fn master_keys(&self) -> Result<Vec<MasterKey>, CryptoError> {
        let suite = self.suite()?;
        self.keys.iter().map(|k| k.master_key(suite)).collect()
    }

    fn has_param(&self, name: &str) -> bool {
        self.session_params.iter().any(|p| p == name)
    }

    fn param_value(&self, name: &str) -> Option<&str> {
        self.session_params
            .iter()
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    }

    pub fn unencrypted_srtp(&self) -> bool {
        self.has_param(Self::UNENCRYPTED_SRTP)
    }

    pub fn unencrypted_srtcp(&self) -> bool {
        self.has_param(Self::UNENCRYPTED_SRTCP)
    }

    pub fn unauthenticated_srtp(&self) -> bool {
        self.has_param(Self::UNAUTHENTICATED_SRTP)
    }

    /// `KDR=n`: the key derivation rate is 2^n packets (n ≤ 24); `None` when absent.
    pub fn kdr(&self) -> Option<u8> {
        kdr_exponent(self.param_value("KDR")?)
    }

    /// `WSH=n`: the replay window size hint in packets (at least 64); `None` when absent.
    pub fn wsh(&self) -> Option<u32> {
        window_size(self.param_value("WSH")?)
    }

    /// Adds a session parameter such as [`Crypto::UNENCRYPTED_SRTCP`] or `"KDR=10"`.
    pub fn with_session_param(mut self, param: impl Into<String>) -> Self {
        self.session_params.push(param.into());
        self
    }

    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("crypto", self.to_string())
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite)?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(k.as_str())?;
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("keys", &self.keys)
            .field("session_params", &self.session_params)
            .finish()
    }
}
