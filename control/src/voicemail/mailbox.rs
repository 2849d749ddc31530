//! Mailboxes and their persistence.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use relay::record::{FsyncPolicy, KeyError, PublicKey, RecorderConfig};
use serde::{Deserialize, Serialize};

const FILE: &str = "mailboxes.json";
const MAX_OWNER: usize = 256;

/// Why a mailbox operation was refused. Messages are fit to send back to an admin client.
#[derive(Debug, thiserror::Error)]
pub enum VoicemailError {
    #[error("mailbox id must be 1 to 64 characters of A-Z a-z 0-9 . _ - and not start with a dot")]
    BadId,
    #[error("owner must be 1 to 256 printable characters")]
    BadOwner,
    #[error("bad public key: {0}")]
    BadKey(#[from] KeyError),
    #[error("mailbox {0} already exists")]
    Exists(String),
    #[error("no mailbox {0}")]
    NoMailbox(String),
    #[error("no message {0} in this mailbox")]
    NoMessage(String),
    #[error("{FILE} is damaged: {0}")]
    Damaged(String),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// A mailbox id: safe as a directory name and in a URL path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxId(String);

impl MailboxId {
    pub fn parse(s: &str) -> Result<Self, VoicemailError> {
        let ok = (1..=64).contains(&s.len())
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(MailboxId(s.to_string()))
        } else {
            Err(VoicemailError::BadId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MailboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mailbox: who owns it and the public key its messages are sealed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    /// The owner's identity, e.g. the SIP address of record `sip:alice@example.org`.
    pub owner: String,
    pub public_key: PublicKey,
}

fn check_owner(owner: &str) -> Result<(), VoicemailError> {
    if owner.is_empty() || owner.len() > MAX_OWNER || owner.chars().any(char::is_control) {
        return Err(VoicemailError::BadOwner);
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    mailboxes: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    owner: String,
    public_key: String,
}

/// The mailboxes, persisted in `<root>/mailboxes.json`, and their message directories.
/// Not shared between threads by itself: the control plane wraps it in a lock.
pub struct MailboxStore {
    root: PathBuf,
    mailboxes: BTreeMap<MailboxId, Mailbox>,
}

impl MailboxStore {
    /// Opens (creating if needed) the store at `root`. A damaged mailbox file is an error,
    /// never silently replaced.
    pub fn open(root: &Path) -> Result<Self, VoicemailError> {
        fs::create_dir_all(root)?;
        let mut store = MailboxStore {
            root: root.to_path_buf(),
            mailboxes: BTreeMap::new(),
        };
        let text = match fs::read_to_string(root.join(FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(e.into()),
        };
        let disk: OnDisk =
            serde_json::from_str(&text).map_err(|e| VoicemailError::Damaged(e.to_string()))?;
        if disk.version != 1 {
            return Err(VoicemailError::Damaged(format!(
                "unknown version {}",
                disk.version
            )));
        }
        for e in disk.mailboxes {
            let damaged =
                |what: &str| VoicemailError::Damaged(format!("mailbox {:?}: {what}", e.id));
            let id = MailboxId::parse(&e.id).map_err(|_| damaged("bad id"))?;
            check_owner(&e.owner).map_err(|_| damaged("bad owner"))?;
            let public_key =
                PublicKey::from_base64(&e.public_key).map_err(|_| damaged("bad key"))?;
            if store.mailboxes.contains_key(&id) {
                return Err(damaged("listed twice"));
            }
            store.mailboxes.insert(
                id.clone(),
                Mailbox {
                    id,
                    owner: e.owner,
                    public_key,
                },
            );
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Adds a mailbox; refuses an id in use. The key is given in base64 (32 bytes, X25519).
    pub fn add(
        &mut self,
        id: &str,
        owner: &str,
        public_key: &str,
    ) -> Result<Mailbox, VoicemailError> {
        let id = MailboxId::parse(id)?;
        if self.mailboxes.contains_key(&id) {
            return Err(VoicemailError::Exists(id.0));
        }
        self.put(id, owner, public_key)
    }

    /// Adds or replaces a mailbox (for mailboxes provisioned in the configuration). A new
    /// key applies to messages recorded from then on; stored ones stay sealed to the old.
    pub fn upsert(
        &mut self,
        id: &str,
        owner: &str,
        public_key: &str,
    ) -> Result<Mailbox, VoicemailError> {
        self.put(MailboxId::parse(id)?, owner, public_key)
    }

    /// Replaces the public key of mailbox `id` (key rotation); the owner stays.
    pub fn set_public_key(
        &mut self,
        id: &str,
        public_key: &str,
    ) -> Result<Mailbox, VoicemailError> {
        let mb = self.mailbox(id)?;
        let (id, owner) = (mb.id.clone(), mb.owner.clone());
        self.put(id, &owner, public_key)
    }

    fn put(
        &mut self,
        id: MailboxId,
        owner: &str,
        public_key: &str,
    ) -> Result<Mailbox, VoicemailError> {
        check_owner(owner)?;
        let public_key = PublicKey::from_base64(public_key)?;
        let mb = Mailbox {
            id: id.clone(),
            owner: owner.to_string(),
            public_key,
        };
        let old = self.mailboxes.insert(id.clone(), mb.clone());
        if let Err(e) = self.persist() {
            match old {
                Some(o) => self.mailboxes.insert(id, o),
                None => self.mailboxes.remove(&id),
            };
            return Err(e);
        }
        Ok(mb)
    }

    /// Removes a mailbox; with `delete_messages` its message directory goes too (otherwise
    /// the sealed files stay on disk for the operator to archive).
    pub fn remove(&mut self, id: &str, delete_messages: bool) -> Result<Mailbox, VoicemailError> {
        let id = MailboxId::parse(id)?;
        let mb = self
            .mailboxes
            .remove(&id)
            .ok_or_else(|| VoicemailError::NoMailbox(id.0.clone()))?;
        if let Err(e) = self.persist() {
            self.mailboxes.insert(id, mb);
            return Err(e);
        }
        if delete_messages {
            match fs::remove_dir_all(self.root.join(id.as_str())) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(mb)
    }

    pub fn get(&self, id: &str) -> Option<&Mailbox> {
        MailboxId::parse(id)
            .ok()
            .and_then(|id| self.mailboxes.get(&id))
    }

    /// The mailboxes, ordered by id.
    pub fn list(&self) -> impl Iterator<Item = &Mailbox> {
        self.mailboxes.values()
    }

    /// The mailbox of an owner (e.g. the callee's address of record on a SIP edge).
    pub fn by_owner(&self, owner: &str) -> Option<&Mailbox> {
        self.mailboxes.values().find(|m| m.owner == owner)
    }

    pub(crate) fn mailbox(&self, id: &str) -> Result<&Mailbox, VoicemailError> {
        let mid = MailboxId::parse(id)?;
        self.mailboxes
            .get(&mid)
            .ok_or(VoicemailError::NoMailbox(mid.0))
    }

    /// Where the messages of mailbox `id` are written.
    pub fn message_dir(&self, id: &str) -> Result<PathBuf, VoicemailError> {
        Ok(self.root.join(self.mailbox(id)?.id.as_str()))
    }

    /// What a [`relay::record::Recorder`] needs to record a message for mailbox `id`.
    pub fn recorder_config(
        &self,
        id: &str,
        fsync: FsyncPolicy,
        min_free_bytes: u64,
        max_duration: Option<Duration>,
    ) -> Result<RecorderConfig, VoicemailError> {
        let mb = self.mailbox(id)?;
        Ok(RecorderConfig {
            dir: self.root.join(mb.id.as_str()),
            mailbox_id: mb.id.0.clone(),
            recipient: mb.public_key,
            fsync,
            min_free_bytes,
            max_duration,
            poll_interval: Duration::from_millis(10),
        })
    }

    /// Writes the mailbox file: temporary file, fsync, rename over the old one, fsync of
    /// the directory. A crash leaves either the old file or the new one.
    fn persist(&self) -> Result<(), VoicemailError> {
        let disk = OnDisk {
            version: 1,
            mailboxes: self
                .mailboxes
                .values()
                .map(|m| Entry {
                    id: m.id.0.clone(),
                    owner: m.owner.clone(),
                    public_key: m.public_key.to_base64(),
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&disk)
            .map_err(|e| VoicemailError::Damaged(e.to_string()))?;
        let tmp = self.root.join(format!("{FILE}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.root.join(FILE))?;
        File::open(&self.root)?.sync_all()?;
        Ok(())
    }
}
