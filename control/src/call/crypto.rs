//! SDES negotiation for one media stream: which suites srtpgate offers toward a side, which
//! offered line it accepts, and fresh keys from the system CSPRNG. A key one side offered is
//! never given to the other side: every key srtpgate writes is generated here.

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use relay::srtp::{CipherKind, MasterKey, Policy, Suite};

/// The suites srtpgate offers when it adds SRTP toward a side that did not ask for any
/// particular suite: every encrypting counter-mode and AEAD suite, strongest first (the
/// order rtpengine uses; f8 and NULL only when an offerer asks for them).
pub fn default_offer() -> Vec<Suite> {
    Suite::ALL
        .into_iter()
        .filter(|s| matches!(s.cipher(), CipherKind::AesCm | CipherKind::AesGcm))
        .collect()
}

/// Why no key could be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// A fresh master key and salt for `suite` from the operating system's CSPRNG.
pub fn fresh_key(suite: Suite) -> Result<MasterKey, RandomError> {
    let mut bytes = Zeroizing::new([0u8; 46]);
    let n = suite.key_salt_len();
    SystemRandom::new()
        .fill(&mut bytes[..n])
        .map_err(|_| RandomError)?;
    MasterKey::from_key_salt(suite, &bytes[..n]).map_err(|_| RandomError)
}

/// One `a=crypto` line as negotiated: the tag, the suite and the key of whoever sends
/// with it.
#[derive(Clone, Debug)]
pub struct CryptoLine {
    pub tag: u32,
    pub suite: Suite,
    pub key: MasterKey,
    /// Further keys on the same line (selected by MKI).
    pub extra_keys: Vec<MasterKey>,
    /// Session parameters written on the line (UNENCRYPTED_SRTCP, …), kept verbatim.
    pub params: Vec<String>,
}

impl CryptoLine {
    /// The SRTP policy of the line's keys, with the session parameters it turns on
    /// (UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP; others change nothing).
    pub fn policy(&self) -> Policy {
        let mut p = Policy::new(self.suite, self.key.clone());
        p.keys.extend(self.extra_keys.iter().cloned());
        for param in &self.params {
            match param.as_str() {
                "UNENCRYPTED_SRTP" => p.unencrypted_srtp = true,
                "UNENCRYPTED_SRTCP" => p.unencrypted_srtcp = true,
                "UNAUTHENTICATED_SRTP" => p.unauthenticated_srtp = true,
                _ => {}
            }
        }
        p
    }
}

/// Which suites to put in an offer toward a side, given the suites the other side offered
/// (in its order) and the operator's exclusions. With nothing offered (plain RTP on the
/// other side), the default list.
pub fn suites_to_offer(offered: &[Suite], excluded: &[Suite], only: &[Suite]) -> Vec<Suite> {
    let base: Vec<Suite> = if offered.is_empty() {
        default_offer()
    } else {
        offered.to_vec()
    };
    let mut out: Vec<Suite> = Vec::new();
    for s in base {
        if !excluded.contains(&s) && (only.is_empty() || only.contains(&s)) && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Fresh keys for `suites`, tagged 1, 2, … in order.
pub fn offer_lines(suites: &[Suite]) -> Result<Vec<CryptoLine>, RandomError> {
    suites
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(CryptoLine {
                tag: i as u32 + 1,
                suite: *s,
                key: fresh_key(*s)?,
                extra_keys: Vec::new(),
                params: Vec::new(),
            })
        })
        .collect()
}

/// The line of an offer that an answer accepts: the offered line with the suite the far
/// side chose when there is one, else the first offered line srtpgate supports.
pub fn choose(offered: &[CryptoLine], preferred: Option<Suite>) -> Option<&CryptoLine> {
    preferred
        .and_then(|p| offered.iter().find(|l| l.suite == p))
        .or_else(|| offered.first())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_and_sized() {
        let a = fresh_key(Suite::AeadAes256Gcm).unwrap();
        let b = fresh_key(Suite::AeadAes256Gcm).unwrap();
        assert_eq!(a.key().len(), 32);
        assert_eq!(a.salt().len(), 12);
        assert_ne!(a.key(), b.key());
        assert!(
            a.to_inline().ends_with('='),
            "padded base64: {}",
            a.to_inline().len()
        );
    }

    #[test]
    fn offers_follow_the_offerer_or_the_default() {
        let cm80 = Suite::AesCm128HmacSha1_80;
        let cm32 = Suite::AesCm128HmacSha1_32;
        assert_eq!(suites_to_offer(&[cm80, cm32], &[], &[]), vec![cm80, cm32]);
        assert_eq!(suites_to_offer(&[cm80, cm32], &[cm32], &[]), vec![cm80]);
        assert_eq!(suites_to_offer(&[], &[], &[]), default_offer());
        assert_eq!(default_offer().len(), 8);
        assert_eq!(default_offer()[0], Suite::AeadAes256Gcm);
        assert_eq!(suites_to_offer(&[], &[], &[cm80]), vec![cm80]);
        let lines = offer_lines(&[cm80, cm32]).unwrap();
        assert_eq!(lines.iter().map(|l| l.tag).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn answers_prefer_the_far_sides_choice() {
        let lines = offer_lines(&[Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm]).unwrap();
        assert_eq!(choose(&lines, Some(Suite::AeadAes128Gcm)).unwrap().tag, 2);
        assert_eq!(choose(&lines, Some(Suite::AeadAes256Gcm)).unwrap().tag, 1);
        assert_eq!(choose(&lines, None).unwrap().tag, 1);
        assert!(choose(&[], None).is_none());
    }
}
