//! Daemon configuration: built-in defaults (so `srtpgate` runs with no file), a TOML file,
//! and command-line overrides applied on top by the binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use relay::engine::{Backend, EngineConfig, Interface};
use serde::Deserialize;

/// Everything the daemon needs to start. Every field has a default that keeps the daemon
/// on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub ng: NgConfig,
    pub media: MediaConfig,
    pub metrics: MetricsConfig,
    pub daemon: DaemonConfig,
    /// The built-in SIP access edge (registrar and proxy); see docs/sip-edge.md.
    pub sip: crate::sip::config::SipConfig,
    /// DTLS-SRTP: srtpgate's certificate and handshake limits; see docs/dtls.md.
    pub dtls: DtlsConfig,
    /// Lawful interception: the X1 admin listener and the X3 node identity (off unless set).
    pub li: LiConfig,
    /// Sealed voicemail: store, mailboxes, deposit URI; see docs/voicemail.md.
    pub voicemail: crate::voicemail::config::VoicemailConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NgConfig {
    /// UDP address of the ng control protocol.
    pub listen: SocketAddr,
    /// Most calls at once; further offers are answered `load limit`.
    pub max_calls: usize,
    /// Seconds a deleted call keeps its media when the request gives no `delete-delay`.
    pub delete_delay: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MediaConfig {
    /// Addresses media ports are bound on; the first is the default.
    pub interfaces: Vec<InterfaceConfig>,
    pub port_min: u16,
    pub port_max: u16,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Pin each worker to a core.
    pub pin: bool,
    /// `batch` (epoll + recvmmsg/sendmmsg) or `uring`.
    pub backend: String,
    /// Seconds without packets before a call's media is considered dead.
    pub idle_timeout: u64,
    /// Drop packets from sources other than the latched one.
    pub strict_source: bool,
    /// Receive coalescing window in microseconds (0..=10000; 0 off): while media flows, a
    /// worker lets this much time pass between batches so one wake-up serves several
    /// packets.
    pub coalesce_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InterfaceConfig {
    pub name: String,
    pub bind: IpAddr,
    /// Address written into SDP when it differs from `bind` (NAT).
    #[serde(default)]
    pub advertise: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// Prometheus metrics over HTTP (`GET /metrics`); `None` turns them off.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonConfig {
    /// Seconds media keeps flowing after SIGTERM while new offers are refused.
    pub drain_grace: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DtlsConfig {
    /// PEM certificate; with `key`. Without both, one is generated at start-up.
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<std::path::PathBuf>,
    /// Hash of the `a=fingerprint` written into SDP (sha-1, sha-224, sha-256, sha-384,
    /// sha-512).
    pub fingerprint_hash: String,
    /// Seconds a handshake may take before the leg fails.
    pub handshake_timeout: u64,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        DtlsConfig {
            cert: None,
            key: None,
            fingerprint_hash: "sha-256".into(),
            handshake_timeout: 20,
        }
    }
}

impl DtlsConfig {
    /// srtpgate's DTLS identity: loaded from `cert`/`key`, or generated.
    pub fn identity(&self) -> Result<crate::dtls::DtlsIdentity, ConfigError> {
        let r = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => crate::dtls::DtlsIdentity::load(c, k, &self.fingerprint_hash),
            (None, None) => crate::dtls::DtlsIdentity::generate(&self.fingerprint_hash),
            _ => {
                return Err(ConfigError::Dtls(
                    "dtls.cert and dtls.key go together".into(),
                ))
            }
        };
        r.map_err(|e| ConfigError::Dtls(e.to_string()))
    }
}

/// `[li]`: lawful interception. Everything is off unless `admin-listen` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LiConfig {
    /// Address of the X1 admin listener (JSON over HTTP/1.1, POST /x1).
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token every X1 request must carry (`Authorization: Bearer …`).
    pub admin_token: Option<String>,
    /// The task and destination store (one JSON file, mode 0600).
    pub store: Option<std::path::PathBuf>,
    /// This node's client certificate and key (PEM) for mutual TLS toward destinations.
    pub x3_cert: Option<std::path::PathBuf>,
    pub x3_key: Option<std::path::PathBuf>,
    /// CA (PEM) for destinations whose `security.tls` names no `caFile`.
    pub x3_ca: Option<std::path::PathBuf>,
}

impl LiConfig {
    pub fn enabled(&self) -> bool {
        self.admin_listen.is_some()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: &str| Err(ConfigError::Li(s.into()));
        if self.x3_cert.is_some() != self.x3_key.is_some() {
            return bad("li.x3-cert and li.x3-key go together");
        }
        if !self.enabled() {
            if self.admin_token.is_some() || self.store.is_some() {
                return bad("li.admin-token and li.store need li.admin-listen");
            }
            return Ok(());
        }
        match &self.admin_token {
            None => return bad("li.admin-listen needs li.admin-token"),
            Some(t) if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return bad("li.admin-token must be at least 16 characters, without spaces")
            }
            Some(_) => {}
        }
        if self.store.is_none() {
            return bad("li.admin-listen needs li.store (tasks must survive a restart)");
        }
        Ok(())
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Default for NgConfig {
    fn default() -> Self {
        NgConfig {
            listen: SocketAddr::new(LOOPBACK, 2223),
            max_calls: 10_000,
            delete_delay: 0,
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            interfaces: vec![InterfaceConfig {
                name: "default".into(),
                bind: LOOPBACK,
                advertise: None,
            }],
            port_min: 30000,
            port_max: 39999,
            workers: 0,
            pin: true,
            backend: "batch".into(),
            idle_timeout: 60,
            strict_source: false,
            coalesce_us: relay::engine::DEFAULT_COALESCE.as_micros() as u64,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: Some(SocketAddr::new(LOOPBACK, 9103)),
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig { drain_grace: 5 }
    }
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0}")]
    Parse(String),
    #[error("port range {min}-{max} is empty or inverted")]
    EmptyPortRange { min: u16, max: u16 },
    #[error("port range {min}-{max} holds fewer than two ports; media needs RTP/RTCP pairs")]
    PortRangeTooSmall { min: u16, max: u16 },
    #[error("at least one media interface is needed")]
    NoInterface,
    #[error("media interface names must be unique: {0:?} repeats")]
    DuplicateInterface(String),
    #[error("unknown media backend {0:?} (batch or uring)")]
    Backend(String),
    #[error("media coalesce-us {0} is out of range (0..=10000)")]
    Coalesce(u64),
    #[error(transparent)]
    Sip(#[from] crate::sip::config::SipConfigError),
    #[error("li: {0}")]
    Li(String),
    #[error("dtls: {0}")]
    Dtls(String),
    #[error(transparent)]
    Voicemail(#[from] crate::voicemail::config::VoicemailConfigError),
}

impl Config {
    /// Reads a TOML file; keys not given keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Checks the invariants a running daemon relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (min, max) = (self.media.port_min, self.media.port_max);
        if min > max || min == 0 {
            return Err(ConfigError::EmptyPortRange { min, max });
        }
        if max - min < 1 {
            return Err(ConfigError::PortRangeTooSmall { min, max });
        }
        if self.media.interfaces.is_empty() {
            return Err(ConfigError::NoInterface);
        }
        for (i, a) in self.media.interfaces.iter().enumerate() {
            if self.media.interfaces[..i].iter().any(|b| b.name == a.name) {
                return Err(ConfigError::DuplicateInterface(a.name.clone()));
            }
        }
        self.backend()?;
        if self.media.coalesce_us > 10_000 {
            return Err(ConfigError::Coalesce(self.media.coalesce_us));
        }
        self.sip.validate()?;
        if crate::dtls::digest_named(&self.dtls.fingerprint_hash).is_none() {
            return Err(ConfigError::Dtls(format!(
                "unknown fingerprint-hash {:?}",
                self.dtls.fingerprint_hash
            )));
        }
        self.li.validate()?;
        self.voicemail.validate()?;
        if self.dtls.cert.is_some() != self.dtls.key.is_some() {
            return Err(ConfigError::Dtls(
                "dtls.cert and dtls.key go together".into(),
            ));
        }
        Ok(())
    }

    pub fn backend(&self) -> Result<Backend, ConfigError> {
        self.media
            .backend
            .parse()
            .map_err(|_| ConfigError::Backend(self.media.backend.clone()))
    }

    /// The engine configuration this daemon configuration implies.
    pub fn engine(&self) -> Result<EngineConfig, ConfigError> {
        Ok(EngineConfig {
            workers: self.media.workers,
            pin: self.media.pin,
            interfaces: self
                .media
                .interfaces
                .iter()
                .map(|i| Interface {
                    name: i.name.clone(),
                    bind: i.bind,
                    advertise: i.advertise,
                })
                .collect(),
            port_min: self.media.port_min,
            port_max: self.media.port_max,
            backend: self.backend()?,
            idle_timeout: Duration::from_secs(self.media.idle_timeout.max(1)),
            coalesce: Duration::from_micros(self.media.coalesce_us),
            ..EngineConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_valid() {
        let c = Config::default();
        assert!(c.ng.listen.ip().is_loopback());
        assert!(c.media.interfaces[0].bind.is_loopback());
        assert_eq!(c.ng.listen.port(), 2223);
        c.validate().unwrap();
        assert_eq!(c.engine().unwrap().port_min, 30000);
    }

    #[test]
    fn toml_overrides_only_what_it_names() {
        let c = Config::from_toml(
            r#"
            [ng]
            listen = "127.0.0.1:22222"
            [media]
            port-min = 40000
            port-max = 40999
            interfaces = [{ name = "pub", bind = "127.0.0.1", advertise = "192.0.2.10" }]
            "#,
        )
        .unwrap();
        assert_eq!(c.ng.listen.port(), 22222);
        assert_eq!(c.media.port_min, 40000);
        assert_eq!(
            c.media.interfaces[0].advertise,
            Some("192.0.2.10".parse().unwrap())
        );
        assert_eq!(c.metrics, MetricsConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn bad_configurations_are_explained() {
        assert!(matches!(
            Config::from_toml("[media]\nport-min = 'x'"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            Config::from_toml("[nope]\n"),
            Err(ConfigError::Parse(_))
        ));
        let mut c = Config::default();
        c.media.port_min = 40000;
        c.media.port_max = 30000;
        assert_eq!(
            c.validate(),
            Err(ConfigError::EmptyPortRange {
                min: 40000,
                max: 30000
            })
        );
        c.media.port_max = 40000;
        assert_eq!(
            c.validate(),
            Err(ConfigError::PortRangeTooSmall {
                min: 40000,
                max: 40000
            })
        );
        let mut c = Config::default();
        c.media.backend = "dpdk".into();
        assert_eq!(c.validate(), Err(ConfigError::Backend("dpdk".into())));
    }
}
