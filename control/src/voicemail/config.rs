//! `[voicemail]`: where messages are stored, the mailboxes provisioned from the
//! configuration file, the voicemail URI pattern of the SIP edge, and recording limits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use relay::record::{FsyncPolicy, PublicKey};
use serde::Deserialize;

use super::{MailboxId, MailboxStore};

/// Placeholder of [`VoicemailConfig::uri_user`] for the mailbox owner's user part.
pub const USER_PLACEHOLDER: &str = "<user>";

/// `[voicemail]`. Voicemail is off unless `data-dir` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct VoicemailConfig {
    /// Directory of the mailbox store (`mailboxes.json` and one directory per mailbox).
    pub data_dir: Option<PathBuf>,
    /// Request-URI user that deposits to a mailbox: `vm-<user>` (the default) reaches the
    /// mailbox whose id, or whose owner's user part, is `<user>`.
    pub uri_user: String,
    /// Longest message, in seconds; the call is ended when it is reached.
    pub max_message_length: u64,
    /// `never`, `on-close` (default) or `every-N` (fsync after every N packets).
    pub fsync: String,
    /// Free bytes the data directory must keep; a deposit is refused below this.
    pub min_free_bytes: u64,
    /// Operator's X25519 public key (base64) for call recordings (ng `start recording`).
    pub recording_public_key: Option<String>,
    /// Users whose every call (by or to them) is recorded to `recording-public-key`:
    /// user names (`alice`), SIP URIs (`sip:carol@example.org`) or numbers.
    pub record_users: Vec<String>,
    /// Request-URI user of the fixed voicemail URI (e.g. `voicemail`): the mailbox is taken
    /// from the call's diversion information, else the caller's own. Off when unset.
    pub uri: Option<String>,
    /// Routed calls to a user with a mailbox go to voicemail when not answered in
    /// `no-answer-timeout` seconds (default for every mailbox; off unless set).
    pub on_no_answer: bool,
    /// … when the callee answers 486 Busy Here or 600 Busy Everywhere.
    pub on_busy: bool,
    /// … when the callee has no registered contact, or answers 480 or 408.
    pub on_unavailable: bool,
    /// Seconds a routed call rings before `on-no-answer` sends it to voicemail.
    pub no_answer_timeout: u64,
    /// Greeting played to callers of mailboxes without one of their own (8 kHz mono
    /// 16-bit PCM `.wav`, or raw G.711 `.ul` / `.al`); none: no greeting.
    pub greeting: Option<PathBuf>,
    /// A 1 kHz beep of 400 ms after the greeting (default true; no greeting, no beep).
    pub beep: bool,
    /// Mailboxes written into the store at start-up (added, or replaced by id).
    pub mailboxes: Vec<MailboxConfig>,
    /// Address of the voicemail HTTP API (mailboxes and messages); off unless set.
    pub api_listen: Option<SocketAddr>,
    /// Bearer token of the API's admin calls (or `api-admin-token-file`).
    pub api_admin_token: Option<Secret>,
    /// File whose first line is the admin bearer token.
    pub api_admin_token_file: Option<PathBuf>,
    /// API connections served at once; more are answered 503.
    pub api_max_connections: usize,
    /// PEM certificate chain and private key: the API speaks HTTPS when both are set.
    pub api_tls_cert: Option<PathBuf>,
    pub api_tls_key: Option<PathBuf>,
}

/// A secret read from the configuration: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Whether `t` is acceptable as a bearer token: 16 or more characters, no spaces or
/// control characters.
pub fn token_ok(t: &str) -> bool {
    t.len() >= 16 && !t.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// One `[[voicemail.mailboxes]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MailboxConfig {
    pub id: String,
    /// The owner's address of record, e.g. `sip:alice@example.org`.
    pub owner: String,
    /// X25519 public key in base64, as printed by `vm-play keygen`.
    pub public_key: String,
    /// This mailbox's own redirection policy; unset keys take the `[voicemail]` defaults.
    #[serde(default)]
    pub on_no_answer: Option<bool>,
    #[serde(default)]
    pub on_busy: Option<bool>,
    #[serde(default)]
    pub on_unavailable: Option<bool>,
    #[serde(default)]
    pub no_answer_timeout: Option<u64>,
    /// This mailbox's greeting (instead of `[voicemail] greeting`).
    #[serde(default)]
    pub greeting: Option<PathBuf>,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            data_dir: None,
            uri_user: format!("vm-{USER_PLACEHOLDER}"),
            max_message_length: 180,
            fsync: "on-close".into(),
            min_free_bytes: 64 << 20,
            recording_public_key: None,
            record_users: Vec::new(),
            uri: None,
            on_no_answer: false,
            on_busy: false,
            on_unavailable: false,
            no_answer_timeout: 20,
            greeting: None,
            beep: true,
            mailboxes: Vec::new(),
            api_listen: None,
            api_admin_token: None,
            api_admin_token_file: None,
            api_max_connections: 16,
            api_tls_cert: None,
            api_tls_key: None,
        }
    }
}

/// A `[voicemail]` table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("voicemail: {0}")]
pub struct VoicemailConfigError(pub String);

impl VoicemailConfig {
    pub fn enabled(&self) -> bool {
        self.data_dir.is_some()
    }

    pub fn fsync_policy(&self) -> Result<FsyncPolicy, VoicemailConfigError> {
        match self.fsync.as_str() {
            "never" => Ok(FsyncPolicy::Never),
            "on-close" => Ok(FsyncPolicy::OnClose),
            s => s
                .strip_prefix("every-")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n > 0)
                .map(FsyncPolicy::EveryPackets)
                .ok_or_else(|| {
                    VoicemailConfigError(format!(
                        "fsync {s:?}: use never, on-close or every-N (N > 0)"
                    ))
                }),
        }
    }

    pub fn max_length(&self) -> Duration {
        Duration::from_secs(self.max_message_length)
    }

    pub fn validate(&self) -> Result<(), VoicemailConfigError> {
        let bad = |s: String| Err(VoicemailConfigError(s));
        self.fsync_policy()?;
        if self.max_message_length == 0 || self.max_message_length > 3600 {
            return bad("max-message-length must be 1 to 3600 seconds".into());
        }
        let u = &self.uri_user;
        if u.matches(USER_PLACEHOLDER).count() != 1
            || u.chars().any(|c| c.is_whitespace() || c == '@' || c == ':')
        {
            return bad(format!(
                "uri-user {u:?} must contain {USER_PLACEHOLDER} once, e.g. \"vm-{USER_PLACEHOLDER}\""
            ));
        }
        if let Some(f) = &self.uri {
            if f.is_empty()
                || f.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '@' || c == ':')
                || self.user_of(f).is_some()
            {
                return bad(format!(
                    "uri {f:?} must be a Request-URI user (e.g. \"voicemail\") that uri-user does not match"
                ));
            }
        }
        let timeouts = std::iter::once(Some(self.no_answer_timeout))
            .chain(self.mailboxes.iter().map(|m| m.no_answer_timeout));
        if timeouts.flatten().any(|t| t == 0 || t > 600) {
            return bad("no-answer-timeout must be 1 to 600 seconds".into());
        }
        if let Some(k) = &self.recording_public_key {
            if PublicKey::from_base64(k).is_err() {
                return bad("recording-public-key is not a base64 X25519 public key".into());
            }
        }
        if !self.record_users.is_empty() && self.recording_public_key.is_none() {
            return bad("record-users needs recording-public-key".into());
        }
        crate::daemon::RecordUsers::parse(&self.record_users).map_err(VoicemailConfigError)?;
        for (i, m) in self.mailboxes.iter().enumerate() {
            if MailboxId::parse(&m.id).is_err() {
                return bad(format!("mailbox id {:?} is not valid", m.id));
            }
            if self.mailboxes[..i].iter().any(|o| o.id == m.id) {
                return bad(format!("mailbox {:?} is listed twice", m.id));
            }
            if PublicKey::from_base64(&m.public_key).is_err() {
                return bad(format!(
                    "mailbox {:?}: public-key is not a base64 X25519 public key",
                    m.id
                ));
            }
        }
        if !self.enabled() && (!self.mailboxes.is_empty() || self.recording_public_key.is_some()) {
            return bad("mailboxes and recording-public-key need data-dir".into());
        }
        self.validate_api()
    }

    fn validate_api(&self) -> Result<(), VoicemailConfigError> {
        let bad = |s: &str| Err(VoicemailConfigError(s.into()));
        if self.api_listen.is_none() {
            if self.api_admin_token.is_some()
                || self.api_admin_token_file.is_some()
                || self.api_tls_cert.is_some()
                || self.api_tls_key.is_some()
            {
                return bad("api-admin-token(-file) and api-tls-cert/key need api-listen");
            }
            return Ok(());
        }
        if self.api_tls_cert.is_some() != self.api_tls_key.is_some() {
            return bad("api-tls-cert and api-tls-key go together");
        }
        if !self.enabled() {
            return bad("api-listen needs data-dir");
        }
        if self.api_admin_token.is_some() && self.api_admin_token_file.is_some() {
            return bad("give api-admin-token or api-admin-token-file, not both");
        }
        if self
            .api_admin_token
            .as_ref()
            .is_some_and(|t| !token_ok(&t.0))
        {
            return bad("api-admin-token must be at least 16 characters, without spaces");
        }
        if !(1..=1024).contains(&self.api_max_connections) {
            return bad("api-max-connections must be 1 to 1024");
        }
        Ok(())
    }

    /// When routed calls to `mailbox`'s owner go to voicemail: the mailbox's own keys over
    /// the `[voicemail]` defaults.
    pub fn redirect_policy(&self, mailbox: &str) -> crate::sip::proxy::RedirectPolicy {
        let m = self.mailboxes.iter().find(|m| m.id == mailbox);
        let pick = |own: Option<bool>, default: bool| own.unwrap_or(default);
        crate::sip::proxy::RedirectPolicy {
            on_no_answer: pick(m.and_then(|m| m.on_no_answer), self.on_no_answer),
            on_busy: pick(m.and_then(|m| m.on_busy), self.on_busy),
            on_unavailable: pick(m.and_then(|m| m.on_unavailable), self.on_unavailable),
            no_answer_timeout: Duration::from_secs(
                m.and_then(|m| m.no_answer_timeout)
                    .unwrap_or(self.no_answer_timeout),
            ),
        }
    }

    /// Whether `ruri_user` is the fixed voicemail URI's user (case-insensitive).
    pub fn is_fixed_uri(&self, ruri_user: &str) -> bool {
        self.uri
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(ruri_user))
    }

    /// The `<user>` a Request-URI user names, when it matches the pattern.
    pub fn user_of<'a>(&self, ruri_user: &'a str) -> Option<&'a str> {
        let (pre, post) = self.uri_user.split_once(USER_PLACEHOLDER)?;
        let rest = ruri_user.strip_prefix(pre)?.strip_suffix(post)?;
        (!rest.is_empty()).then_some(rest)
    }
}

/// The user part of an owner identity: `sip:alice@example.org` → `alice`; a bare `alice`
/// stays as it is.
pub fn owner_user(owner: &str) -> &str {
    let s = owner.trim().trim_start_matches('<').trim_end_matches('>');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    s.split(['@', ';']).next().unwrap_or(s)
}

/// The mailbox a deposit for `user` goes to: the one with that id, else the one whose
/// owner's user part is `user` (case-insensitive).
pub fn mailbox_for(store: &MailboxStore, user: &str) -> Option<String> {
    if let Some(m) = store.get(user) {
        return Some(m.id.as_str().to_string());
    }
    store
        .list()
        .find(|m| owner_user(&m.owner).eq_ignore_ascii_case(user))
        .map(|m| m.id.as_str().to_string())
}

/// Opens the store at `data-dir`, writes the configured mailboxes into it, and recovers
/// messages a crash left unfinished. `None` when voicemail is off.
pub fn open_configured(c: &VoicemailConfig) -> anyhow::Result<Option<MailboxStore>> {
    let Some(dir) = &c.data_dir else {
        return Ok(None);
    };
    let mut store = open_store(dir)?;
    for m in &c.mailboxes {
        store
            .upsert(&m.id, &m.owner, &m.public_key)
            .map_err(|e| anyhow::anyhow!("voicemail mailbox {:?}: {e}", m.id))?;
    }
    for (path, r) in store.recover() {
        match r {
            Ok(_) => {
                tracing::info!(file = %path.display(), "voicemail: recovered an unfinished message")
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "voicemail: recovery failed")
            }
        }
    }
    tracing::info!(dir = %dir.display(), mailboxes = store.list().count(), "voicemail store open");
    Ok(Some(store))
}

fn open_store(dir: &Path) -> anyhow::Result<MailboxStore> {
    MailboxStore::open(dir)
        .map_err(|e| anyhow::anyhow!("opening the voicemail store {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

    #[test]
    fn pattern_and_owner_matching() {
        let c = VoicemailConfig::default();
        assert_eq!(c.user_of("vm-alice"), Some("alice"));
        assert_eq!(c.user_of("vm-"), None);
        assert_eq!(c.user_of("alice"), None);
        let c = VoicemailConfig {
            uri_user: "<user>-vm".into(),
            ..Default::default()
        };
        assert_eq!(c.user_of("bob-vm"), Some("bob"));
        assert_eq!(owner_user("sip:alice@example.org"), "alice");
        assert_eq!(owner_user("<sips:bob@h;transport=tls>"), "bob");
        assert_eq!(owner_user("carol"), "carol");
    }

    #[test]
    fn validation_explains() {
        let mut c = VoicemailConfig {
            data_dir: Some("/tmp/x".into()),
            ..Default::default()
        };
        c.validate().unwrap();
        assert_eq!(c.fsync_policy().unwrap(), FsyncPolicy::OnClose);
        c.fsync = "every-8".into();
        assert_eq!(c.fsync_policy().unwrap(), FsyncPolicy::EveryPackets(8));
        c.fsync = "sometimes".into();
        assert!(c.validate().is_err());
        c.fsync = "never".into();
        c.uri_user = "voicemail".into();
        assert!(c.validate().is_err());
        c.uri_user = "vm-<user>".into();
        c.mailboxes.push(MailboxConfig {
            id: "alice".into(),
            owner: "sip:alice@example.org".into(),
            public_key: "not a key".into(),
            on_no_answer: None,
            on_busy: None,
            on_unavailable: None,
            no_answer_timeout: None,
            greeting: None,
        });
        assert!(c.validate().is_err());
        c.mailboxes[0].public_key = KEY.into();
        c.validate().unwrap();
        c.mailboxes.push(c.mailboxes[0].clone());
        assert!(c.validate().is_err());
        c.mailboxes.pop();
        c.api_listen = Some("127.0.0.1:0".parse().unwrap());
        c.validate().unwrap();
        c.api_admin_token = Some(Secret("short".into()));
        assert!(c.validate().is_err());
        c.api_admin_token = Some(Secret("a-token-of-16-chars".into()));
        c.validate().unwrap();
        assert!(!format!("{c:?}").contains("a-token-of-16-chars"));
        c.api_admin_token_file = Some("/tmp/token".into());
        assert!(c.validate().is_err());
        c.api_admin_token_file = None;
        c.api_max_connections = 0;
        assert!(c.validate().is_err());
        c.api_max_connections = 4;
        c.api_tls_cert = Some("/tmp/cert.pem".into());
        assert!(c.validate().is_err());
        c.api_tls_key = Some("/tmp/key.pem".into());
        c.validate().unwrap();
        c.api_tls_cert = None;
        c.api_tls_key = None;
        c.data_dir = None;
        assert!(c.validate().is_err());
        c.api_listen = None;
        assert!(c.validate().is_err());
        c.api_admin_token = None;
        // Still refused: a mailbox without data-dir.
        assert!(c.validate().is_err());
        c.mailboxes.clear();
        c.validate().unwrap();
    }

    #[test]
    fn redirection_policy_per_mailbox_over_the_defaults() {
        let text = format!(
            "data-dir = \"/tmp/x\"\nuri = \"voicemail\"\non-busy = true\n\
             no-answer-timeout = 25\n\
             [[mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@h\"\npublic-key = \"{KEY}\"\n\
             on-no-answer = true\non-busy = false\nno-answer-timeout = 7\n"
        );
        let c: VoicemailConfig = toml::from_str(&text).unwrap();
        c.validate().unwrap();
        let bob = c.redirect_policy("bob");
        assert!(bob.on_no_answer && !bob.on_busy && !bob.on_unavailable);
        assert_eq!(bob.no_answer_timeout, Duration::from_secs(7));
        let other = c.redirect_policy("carol");
        assert!(!other.on_no_answer && other.on_busy);
        assert_eq!(other.no_answer_timeout, Duration::from_secs(25));
        assert!(c.is_fixed_uri("VoiceMail") && !c.is_fixed_uri("vm-bob"));
        // Off unless asked for.
        let d = VoicemailConfig::default().redirect_policy("bob");
        assert!(!d.any());
        assert_eq!(d.no_answer_timeout, Duration::from_secs(20));

        let bad = |f: &dyn Fn(&mut VoicemailConfig)| {
            let mut b = c.clone();
            f(&mut b);
            b.validate().is_err()
        };
        assert!(bad(&|b| b.no_answer_timeout = 0));
        assert!(bad(&|b| b.mailboxes[0].no_answer_timeout = Some(601)));
        assert!(
            bad(&|b| b.uri = Some("vm-x".into())),
            "uri-user would match it"
        );
        assert!(bad(&|b| b.uri = Some("voice mail".into())));
        assert!(bad(&|b| b.uri = Some(String::new())));
        assert!(toml::from_str::<VoicemailConfig>("on-no-anwser = true").is_err());
    }

    #[test]
    fn provisioned_into_the_store() {
        let dir = std::env::temp_dir().join(format!("sg-vmcfg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = VoicemailConfig {
            data_dir: Some(dir.clone()),
            mailboxes: vec![MailboxConfig {
                id: "box1".into(),
                owner: "sip:alice@example.org".into(),
                public_key: KEY.into(),
                on_no_answer: None,
                on_busy: None,
                on_unavailable: None,
                no_answer_timeout: None,
                greeting: None,
            }],
            ..Default::default()
        };
        let store = open_configured(&c).unwrap().unwrap();
        assert_eq!(mailbox_for(&store, "alice").as_deref(), Some("box1"));
        assert_eq!(mailbox_for(&store, "box1").as_deref(), Some("box1"));
        assert_eq!(mailbox_for(&store, "bob"), None);
        drop(store);
        // Again: upsert keeps one mailbox.
        let store = open_configured(&c).unwrap().unwrap();
        assert_eq!(store.list().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
