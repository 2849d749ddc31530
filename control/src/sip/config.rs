//! The `[sip]` table of the daemon configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// How media toward one side of a call is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaPolicy {
    /// SRTP (SDES) only: offers go out as RTP/SAVP with a=crypto, no fallback; offers
    /// from this side without SRTP are refused with 488.
    SrtpRequired,
    /// Toward a callee: offer SRTP, and retry once with RTP/AVP on 488/415. From a caller:
    /// accept either.
    SrtpOptional,
    /// Plain RTP only: offers go out as RTP/AVP; SRTP offers from this side are refused.
    RtpOnly,
}

/// One digest user.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SipUser {
    pub username: String,
    pub password: String,
    /// Defaults to `[sip] realm`.
    #[serde(default)]
    pub realm: Option<String>,
}

impl std::fmt::Debug for SipUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipUser")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Calls whose Request-URI user starts with `prefix` take this route.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SipRoute {
    pub prefix: String,
    /// Send there (`host:port`, optionally `;transport=tcp`) instead of registered contacts.
    #[serde(default)]
    pub next_hop: Option<String>,
    #[serde(default)]
    pub toward_callee: Option<MediaPolicy>,
    #[serde(default)]
    pub toward_caller: Option<MediaPolicy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SipConfig {
    /// Start the SIP edge with the daemon.
    pub enabled: bool,
    pub listen_udp: Vec<SocketAddr>,
    pub listen_tcp: Vec<SocketAddr>,
    pub listen_tls: Vec<SocketAddr>,
    /// PEM certificate chain and private key for TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Host written into Via and Record-Route when the listen address is not reachable as
    /// it is (NAT, wildcard binds).
    pub advertise: Option<String>,
    pub realm: String,
    pub users: Vec<SipUser>,
    /// Digest algorithms offered, in order (`SHA-256`, `MD5`).
    pub digest_algorithms: Vec<String>,
    /// Seconds a nonce stays valid.
    pub nonce_lifetime: u64,
    /// Next hop (`host:port[;transport=tcp]`) for requests to users not registered here.
    pub outbound: Option<String>,
    pub routes: Vec<SipRoute>,
    /// Default policies.
    pub toward_callee: MediaPolicy,
    pub toward_caller: MediaPolicy,
    pub default_expires: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    /// REGISTERs per second allowed from one source address.
    pub register_rate: u32,
    /// Seconds an INVITE may ring before the branch is cancelled with 408 (Timer C).
    pub invite_timeout: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        let lo: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5060));
        SipConfig {
            enabled: true,
            listen_udp: vec![lo],
            listen_tcp: vec![lo],
            listen_tls: Vec::new(),
            tls_cert: None,
            tls_key: None,
            advertise: None,
            realm: "srtpgate".into(),
            users: Vec::new(),
            digest_algorithms: vec!["SHA-256".into(), "MD5".into()],
            nonce_lifetime: 300,
            outbound: None,
            routes: Vec::new(),
            toward_callee: MediaPolicy::SrtpOptional,
            toward_caller: MediaPolicy::SrtpOptional,
            default_expires: 3600,
            min_expires: 60,
            max_expires: 7200,
            register_rate: 20,
            invite_timeout: 180,
        }
    }
}

/// A `[sip]` table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipConfigError {
    #[error("SIP listens on {0}, beyond loopback, but no [[sip.users]] are configured: anyone could register")]
    OpenWithoutUsers(SocketAddr),
    #[error("[sip] listen-tls needs tls-cert and tls-key")]
    TlsWithoutCert,
    #[error("[sip] digest algorithm {0:?} is not supported (SHA-256, MD5)")]
    Algorithm(String),
    #[error("[sip] min-expires {min} is above max-expires {max}")]
    Expires { min: u32, max: u32 },
}

impl SipConfig {
    pub fn validate(&self) -> Result<(), SipConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.users.is_empty() {
            let all = self
                .listen_udp
                .iter()
                .chain(&self.listen_tcp)
                .chain(&self.listen_tls);
            for a in all {
                if !a.ip().is_loopback() {
                    return Err(SipConfigError::OpenWithoutUsers(*a));
                }
            }
        }
        if !self.listen_tls.is_empty() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err(SipConfigError::TlsWithoutCert);
        }
        for a in &self.digest_algorithms {
            if super::digest::Algorithm::parse(a).is_none() {
                return Err(SipConfigError::Algorithm(a.clone()));
            }
        }
        if self.min_expires > self.max_expires {
            return Err(SipConfigError::Expires {
                min: self.min_expires,
                max: self.max_expires,
            });
        }
        Ok(())
    }
}
