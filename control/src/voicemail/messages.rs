//! The messages of a mailbox: the sealed files, listed from their structure (the relay
//! cannot open them), handed out as they are, deleted, and recovered after a crash.

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use relay::record::writer::{MESSAGE_SUFFIX, PART_SUFFIX};
use relay::record::{recover_dir, scan, EndRecord, RecordError, RecordingId, Recovered};

use super::mailbox::{MailboxStore, VoicemailError};

/// A stored message, as the relay sees it without a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEntry {
    pub recording_id: RecordingId,
    pub size: u64,
    pub start_unix_nanos: Option<u64>,
    pub packets: u64,
    /// The end block is present (its counters, unverified without the key).
    pub end: Option<EndRecord>,
    /// The file could not be read as a message (damaged); it is still listed.
    pub damaged: bool,
}

/// The messages in a mailbox directory (from [`MailboxStore::message_dir`]), oldest first.
/// Reads every file: callers sharing the store behind a lock can take the directory under
/// the lock and list it after releasing it.
pub fn list_messages(dir: &Path) -> Result<Vec<MessageEntry>, VoicemailError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(MESSAGE_SUFFIX))
            .and_then(RecordingId::parse)
        else {
            continue;
        };
        let size = entry.metadata()?.len();
        let scanned = File::open(entry.path())
            .ok()
            .and_then(|f| scan(BufReader::new(f)).ok());
        out.push(match scanned {
            Some(s) => MessageEntry {
                recording_id: rid,
                size,
                start_unix_nanos: s.start_unix_nanos,
                packets: s.packets,
                end: s.end,
                damaged: false,
            },
            None => MessageEntry {
                recording_id: rid,
                size,
                start_unix_nanos: None,
                packets: 0,
                end: None,
                damaged: true,
            },
        });
    }
    out.sort_by_key(|m| (m.start_unix_nanos, m.recording_id));
    Ok(out)
}

impl MailboxStore {
    /// The messages of mailbox `id`, oldest first. Files being recorded are not listed.
    pub fn messages(&self, id: &str) -> Result<Vec<MessageEntry>, VoicemailError> {
        list_messages(&self.message_dir(id)?)
    }

    fn message_path(&self, id: &str, recording_id: &str) -> Result<PathBuf, VoicemailError> {
        let rid = RecordingId::parse(recording_id)
            .ok_or_else(|| VoicemailError::NoMessage(recording_id.chars().take(40).collect()))?;
        let path = self.message_dir(id)?.join(format!("{rid}{MESSAGE_SUFFIX}"));
        if !path.is_file() {
            return Err(VoicemailError::NoMessage(rid.to_string()));
        }
        Ok(path)
    }

    /// Opens a message for download (the sealed file as stored) and gives its size.
    pub fn open_message(
        &self,
        id: &str,
        recording_id: &str,
    ) -> Result<(File, u64), VoicemailError> {
        let f = File::open(self.message_path(id, recording_id)?)?;
        let size = f.metadata()?.len();
        Ok((f, size))
    }

    pub fn delete_message(&self, id: &str, recording_id: &str) -> Result<(), VoicemailError> {
        fs::remove_file(self.message_path(id, recording_id)?)?;
        Ok(())
    }

    /// Recovers the `.pcapng.part` files of every mailbox, left by a crash. Call at start-up,
    /// before any recording begins.
    pub fn recover(&self) -> Vec<(PathBuf, Result<Recovered, RecordError>)> {
        let mut out = Vec::new();
        for mb in self.list() {
            let dir = self.root().join(mb.id.as_str());
            let has_parts = fs::read_dir(&dir).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(PART_SUFFIX)))
            });
            if has_parts {
                if let Ok(r) = recover_dir(&dir) {
                    out.extend(r);
                }
            }
        }
        out
    }
}
