//! HTTP digest authentication for SIP (RFC 3261 22, RFC 8760): challenges with MD5 and
//! SHA-256, qop=auth, stateless nonces (a timestamp sealed with HMAC-SHA-256 under a secret
//! made at start-up), and verification against a pluggable credential store. Passwords
//! never reach a log or a response.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use md5::Digest as _;
use ring::hmac;
use zeroize::Zeroizing;

use super::header::{split_list, unquote};

/// Digest algorithms, in the order offered (RFC 8760: strongest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex::encode(md5::Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => {
                hex::encode(ring::digest::digest(&ring::digest::SHA256, data.as_bytes()))
            }
        }
    }
}

/// Where passwords come from: users in the configuration, or any other store.
pub trait CredentialStore: Send + Sync {
    /// The password of `user` in `realm`, if the user exists.
    fn password(&self, user: &str, realm: &str) -> Option<Zeroizing<String>>;
    /// Whether any user is configured (with none, only loopback may register unauthenticated).
    fn is_empty(&self) -> bool;
}

/// Users from the configuration: (username, realm) → password.
#[derive(Default)]
pub struct StaticUsers {
    users: HashMap<(String, String), Zeroizing<String>>,
}

impl StaticUsers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, user: &str, realm: &str, password: &str) {
        self.users.insert(
            (user.to_string(), realm.to_string()),
            Zeroizing::new(password.to_string()),
        );
    }
}

impl CredentialStore for StaticUsers {
    fn password(&self, user: &str, realm: &str) -> Option<Zeroizing<String>> {
        self.users
            .get(&(user.to_string(), realm.to_string()))
            .cloned()
    }

    fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The parameters of an `Authorization` / `Proxy-Authorization` header.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

impl Credentials {
    /// Parses `Digest username="…", realm="…", …`; `None` for other schemes or garbage.
    pub fn parse(value: &str) -> Option<Credentials> {
        let v = value.trim();
        let (scheme, rest) = v.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let mut c = Credentials::default();
        for part in split_list(rest).ok()? {
            let (k, v) = part.split_once('=')?;
            let v = unquote(v);
            match k.trim().to_ascii_lowercase().as_str() {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v.to_ascii_lowercase(),
                "algorithm" => c.algorithm = Some(v),
                "qop" => c.qop = Some(v),
                "nc" => c.nc = Some(v),
                "cnonce" => c.cnonce = Some(v),
                "opaque" => c.opaque = Some(v),
                _ => {}
            }
        }
        (!c.username.is_empty() && !c.nonce.is_empty()).then_some(c)
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials for this realm")]
    Missing,
    #[error("unknown user")]
    UnknownUser,
    #[error("nonce was not issued here")]
    BadNonce,
    #[error("nonce expired")]
    Stale,
    #[error("unsupported digest algorithm")]
    Algorithm,
    #[error("wrong digest response")]
    WrongResponse,
}

/// Issues challenges and checks answers for one realm.
pub struct DigestAuth {
    realm: String,
    key: hmac::Key,
    lifetime: Duration,
    algorithms: Vec<Algorithm>,
}

impl DigestAuth {
    /// `secret` seals nonces; use fresh random bytes per process.
    pub fn new(realm: &str, secret: &[u8], lifetime: Duration, algorithms: Vec<Algorithm>) -> Self {
        DigestAuth {
            realm: realm.to_string(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            lifetime,
            algorithms,
        }
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn seal(&self, ts: u64) -> String {
        let tag = hmac::sign(&self.key, &ts.to_be_bytes());
        let mut raw = ts.to_be_bytes().to_vec();
        raw.extend_from_slice(&tag.as_ref()[..16]);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn nonce(&self, now: SystemTime) -> String {
        self.seal(now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// One challenge header value per algorithm, in order of preference.
    pub fn challenges(&self, now: SystemTime, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    a.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Checks `c` for a request with `method`; returns the authenticated username.
    pub fn verify(
        &self,
        c: &Credentials,
        method: &str,
        store: &dyn CredentialStore,
        now: SystemTime,
    ) -> Result<String, AuthError> {
        if c.realm != self.realm {
            return Err(AuthError::Missing);
        }
        let alg = match &c.algorithm {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or(AuthError::Algorithm)?,
        };
        if !self.algorithms.contains(&alg) {
            return Err(AuthError::Algorithm);
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c.nonce.as_bytes())
            .map_err(|_| AuthError::BadNonce)?;
        let ts = raw
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or(AuthError::BadNonce)?;
        if !constant_eq(self.seal(ts).as_bytes(), c.nonce.as_bytes()) {
            return Err(AuthError::BadNonce);
        }
        let password = store
            .password(&c.username, &self.realm)
            .ok_or(AuthError::UnknownUser)?;
        let ha1 = Zeroizing::new(alg.hex(&format!("{}:{}:{}", c.username, c.realm, *password)));
        let ha2 = alg.hex(&format!("{method}:{}", c.uri));
        let expected = match (c.qop.as_deref(), &c.nc, &c.cnonce) {
            (Some(q), Some(nc), Some(cn)) if q.eq_ignore_ascii_case("auth") => {
                alg.hex(&format!("{}:{}:{nc}:{cn}:auth:{ha2}", *ha1, c.nonce))
            }
            (Some(_), _, _) => return Err(AuthError::WrongResponse),
            (None, _, _) => alg.hex(&format!("{}:{}:{ha2}", *ha1, c.nonce)),
        };
        if !constant_eq(expected.as_bytes(), c.response.as_bytes()) {
            return Err(AuthError::WrongResponse);
        }
        let issued = UNIX_EPOCH + Duration::from_secs(ts);
        if now.duration_since(issued).unwrap_or_default() > self.lifetime {
            return Err(AuthError::Stale);
        }
        Ok(c.username.clone())
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 section 3.5's worked example (MD5, qop=auth).
    #[test]
    fn rfc2617_example() {
        let a = Algorithm::Md5;
        let ha1 = a.hex("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = a.hex("GET:/dir/index.html");
        let r = a.hex(&format!(
            "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
        ));
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 section 3.9.1's SHA-256 example.
    #[test]
    fn rfc7616_sha256_example() {
        let a = Algorithm::Sha256;
        let ha1 = a.hex("Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = a.hex("GET:/dir/index.html");
        let r = a.hex(&format!(
            "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
        ));
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    fn answer(
        auth: &DigestAuth,
        alg: Algorithm,
        user: &str,
        pw: &str,
        method: &str,
    ) -> Credentials {
        let nonce = auth.nonce(SystemTime::now());
        let ha1 = alg.hex(&format!("{user}:{}:{pw}", auth.realm()));
        let ha2 = alg.hex(&format!("{method}:sip:example.com"));
        Credentials {
            username: user.into(),
            realm: auth.realm().into(),
            nonce: nonce.clone(),
            uri: "sip:example.com".into(),
            response: alg.hex(&format!("{ha1}:{nonce}:00000001:xyz:auth:{ha2}")),
            algorithm: Some(alg.name().into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("xyz".into()),
            opaque: None,
        }
    }

    #[test]
    fn verifies_both_algorithms_and_refuses_wrong_ones() {
        let auth = DigestAuth::new(
            "edge",
            b"secret",
            Duration::from_secs(60),
            vec![Algorithm::Sha256, Algorithm::Md5],
        );
        let mut users = StaticUsers::new();
        users.add("alice", "edge", "pw");
        let now = SystemTime::now();
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let c = answer(&auth, alg, "alice", "pw", "REGISTER");
            assert_eq!(auth.verify(&c, "REGISTER", &users, now).unwrap(), "alice");
            assert_eq!(
                auth.verify(&c, "INVITE", &users, now),
                Err(AuthError::WrongResponse)
            );
            let bad = answer(&auth, alg, "alice", "nope", "REGISTER");
            assert_eq!(
                auth.verify(&bad, "REGISTER", &users, now),
                Err(AuthError::WrongResponse)
            );
        }
        let c = answer(&auth, Algorithm::Md5, "mallory", "pw", "REGISTER");
        assert_eq!(
            auth.verify(&c, "REGISTER", &users, now),
            Err(AuthError::UnknownUser)
        );
        let mut forged = answer(&auth, Algorithm::Md5, "alice", "pw", "REGISTER");
        forged.nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
        assert_eq!(
            auth.verify(&forged, "REGISTER", &users, now),
            Err(AuthError::BadNonce)
        );
        let later = now + Duration::from_secs(120);
        let c = answer(&auth, Algorithm::Md5, "alice", "pw", "REGISTER");
        assert_eq!(
            auth.verify(&c, "REGISTER", &users, later),
            Err(AuthError::Stale)
        );
    }

    #[test]
    fn parses_authorization_headers() {
        let c = Credentials::parse(
            "Digest username=\"bob\",realm=\"r\", nonce=\"n\", uri=\"sip:r\", \
             response=\"ABC\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c, d\"",
        )
        .unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.response, "abc");
        assert_eq!(c.cnonce.as_deref(), Some("c, d"));
        assert!(Credentials::parse("Basic Ym9iOnB3").is_none());
    }
}
