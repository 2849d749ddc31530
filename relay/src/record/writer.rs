//! Writing one message file: temporary name, header, envelopes before packets, one
//! `pwrite` per block (so a killed process leaves only whole blocks plus at most one cut
//! one), the configured fsync policy, and rename when complete. A failed write is undone
//! by truncating back to the last whole block; nothing stored before is touched.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::envelope::{self, EnvelopeError, EnvelopeHeader, KeyMaterial};
use super::integrity::{ChainKey, EndRecord, RunningDigest, StopReason};
use super::keys::{KeyError, PublicKey};
use super::pcapng;
use super::RecordingId;

/// Suffix of a message being written.
pub const PART_SUFFIX: &str = ".pcapng.part";
/// Suffix of a closed (or recovered) message.
pub const MESSAGE_SUFFIX: &str = ".pcapng";
/// `shb_userappl` of every message.
pub const USERAPPL: &str = "srtpgate voicemail";

/// When the file is flushed to stable storage. Whatever the policy, every block is handed
/// to the kernel with one write as soon as it is made, so a killed process loses nothing
/// written; fsync is about power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never (the kernel writes back in its own time).
    Never,
    /// When the message is closed, before the rename (and the directory after it).
    OnClose,
    /// After every N packet blocks, and on close.
    EveryPackets(u32),
}

/// Why a message could not be started or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not enough disk space to record ({available} bytes free, {required} required)")]
    DiskFull { available: u64, required: u64 },
    #[error("disk full while writing; the message was closed at its last whole block")]
    DiskFullWhileWriting,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("no call direction {0} in this message")]
    NoSuchLeg(u32),
    #[error("call direction {0} has no envelope yet")]
    NoEnvelope(u32),
    #[error("the message is stopped ({0:?})")]
    Stopped(StopReason),
    #[error("a message needs 1 to 16 call directions with names of at most 64 bytes")]
    BadLegs,
    #[error("the recorder thread failed")]
    Thread,
}

/// What to write and where.
#[derive(Clone, Debug)]
pub struct MessageConfig {
    /// The mailbox's message directory (created if missing).
    pub dir: PathBuf,
    pub mailbox_id: String,
    pub recipient: PublicKey,
    /// One name per call direction, in interface order (e.g. "caller").
    pub legs: Vec<String>,
    pub fsync: FsyncPolicy,
    /// Refuse to start when the file system has less free space than this.
    pub min_free_bytes: u64,
}

/// A closed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    pub recording_id: RecordingId,
    pub path: PathBuf,
    pub packets: u64,
    pub bytes: u64,
    /// The end block was written (false when the disk filled up even for it).
    pub complete: bool,
    pub reason: StopReason,
}

/// A message file being written.
pub struct MessageWriter {
    file: File,
    dir: PathBuf,
    tmp: PathBuf,
    dest: PathBuf,
    /// End of the last whole block written.
    offset: u64,
    digest: RunningDigest,
    chain: Option<ChainKey>,
    envelopes: u32,
    keyed: Vec<bool>,
    recording_id: RecordingId,
    start_unix_nanos: u64,
    mailbox_id: String,
    recipient: PublicKey,
    fsync: FsyncPolicy,
    unsynced: u32,
    packets: u64,
    stopped: Option<StopReason>,
}

impl MessageWriter {
    /// Creates `<dir>/<id>.pcapng.part` and writes the section header and one interface
    /// block per direction. Refuses cleanly (nothing left behind) when space is short.
    pub fn create(cfg: &MessageConfig, start_unix_nanos: u64) -> Result<Self, RecordError> {
        if cfg.legs.is_empty() || cfg.legs.len() > 16 || cfg.legs.iter().any(|l| l.len() > 64) {
            return Err(RecordError::BadLegs);
        }
        if cfg.mailbox_id.is_empty() || cfg.mailbox_id.len() > 255 {
            return Err(EnvelopeError::MailboxId.into());
        }
        fs::create_dir_all(&cfg.dir)?;
        let available = free_bytes(&cfg.dir)?;
        if available < cfg.min_free_bytes {
            return Err(RecordError::DiskFull {
                available,
                required: cfg.min_free_bytes,
            });
        }
        let recording_id = RecordingId::random()?;
        let tmp = cfg.dir.join(format!("{recording_id}{PART_SUFFIX}"));
        let dest = cfg.dir.join(format!("{recording_id}{MESSAGE_SUFFIX}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut w = MessageWriter {
            file,
            dir: cfg.dir.clone(),
            tmp,
            dest,
            offset: 0,
            digest: RunningDigest::default(),
            chain: None,
            envelopes: 0,
            keyed: vec![false; cfg.legs.len()],
            recording_id,
            start_unix_nanos,
            mailbox_id: cfg.mailbox_id.clone(),
            recipient: cfg.recipient,
            fsync: cfg.fsync,
            unsynced: 0,
            packets: 0,
            stopped: None,
        };
        let mut head = pcapng::section_header(USERAPPL);
        for name in &cfg.legs {
            head.extend_from_slice(&pcapng::interface(name));
        }
        if let Err(e) = w.put(&head) {
            let _ = fs::remove_file(&w.tmp);
            return Err(e);
        }
        Ok(w)
    }

    pub fn recording_id(&self) -> RecordingId {
        self.recording_id
    }

    /// The file being written (its temporary name).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn bytes(&self) -> u64 {
        self.offset
    }

    /// Why writing stopped, if it did.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Stops storing packets (e.g. the maximum length was reached).
    pub fn stop(&mut self, reason: StopReason) {
        self.stopped.get_or_insert(reason);
    }

    /// Whether `leg` has an envelope, i.e. packets may follow.
    pub fn is_keyed(&self, leg: u32) -> bool {
        self.keyed.get(leg as usize).copied().unwrap_or(false)
    }

    /// Seals `km` and writes it as the envelope of `leg`; packets of `leg` written after it
    /// are decrypted with it. The key material is left for the caller to drop.
    pub fn write_envelope(&mut self, leg: u32, km: &KeyMaterial) -> Result<(), RecordError> {
        if leg as usize >= self.keyed.len() {
            return Err(RecordError::NoSuchLeg(leg));
        }
        if let Some(r) = self.stopped {
            return Err(RecordError::Stopped(r));
        }
        let header = EnvelopeHeader {
            interface: leg,
            number: self.envelopes,
            recording_id: self.recording_id.0,
            start_unix_nanos: self.start_unix_nanos,
            mailbox_id: self.mailbox_id.clone(),
            recipient: self.recipient,
            prefix_digest: self.digest.current(),
        };
        let (block, chain) = envelope::seal(&header, km)?;
        self.put(&block)?;
        if self.chain.is_none() {
            self.chain = Some(chain);
        }
        self.envelopes += 1;
        self.keyed[leg as usize] = true;
        Ok(())
    }

    /// Writes one packet of `leg`, exactly as given, in an Enhanced Packet Block.
    pub fn write_packet(
        &mut self,
        leg: u32,
        unix_nanos: u64,
        data: &[u8],
    ) -> Result<(), RecordError> {
        if !self.is_keyed(leg) {
            return Err(RecordError::NoEnvelope(leg));
        }
        if let Some(r) = self.stopped {
            return Err(RecordError::Stopped(r));
        }
        let Some(chain) = &self.chain else {
            return Err(RecordError::NoEnvelope(leg));
        };
        let (mut block, mac_at) = pcapng::packet(leg, unix_nanos, data);
        chain.sign(&self.digest.current(), &mut block, mac_at);
        self.put(&block)?;
        self.packets += 1;
        if let FsyncPolicy::EveryPackets(n) = self.fsync {
            self.unsynced += 1;
            if self.unsynced >= n.max(1) {
                self.unsynced = 0;
                if let Err(e) = self.file.sync_data() {
                    return Err(self.failed(e));
                }
            }
        }
        Ok(())
    }

    /// Writes the end block (when a key exists to MAC it), syncs as configured and renames
    /// the file to its final name. A message without any envelope (no packet ever arrived)
    /// is deleted, and `None` returned.
    pub fn finish(
        mut self,
        dropped: u64,
        refused: u64,
        end_unix_nanos: u64,
    ) -> Result<Option<MessageInfo>, RecordError> {
        if self.chain.is_none() {
            fs::remove_file(&self.tmp)?;
            return Ok(None);
        }
        let reason = self.stopped.unwrap_or(StopReason::Normal);
        let end = EndRecord {
            end_unix_nanos,
            packets: self.packets,
            dropped,
            refused,
            reason,
        };
        let (mut block, mac_at) = end.block();
        let complete = match &self.chain {
            Some(chain) => {
                chain.sign(&self.digest.current(), &mut block, mac_at);
                // The end block is written even after a stop: a full disk may still take it.
                self.stopped = None;
                self.put(&block).is_ok()
            }
            None => false,
        };
        self.chain = None;
        if self.fsync != FsyncPolicy::Never {
            self.file.sync_all()?;
        }
        fs::rename(&self.tmp, &self.dest)?;
        if self.fsync != FsyncPolicy::Never {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(Some(MessageInfo {
            recording_id: self.recording_id,
            path: self.dest.clone(),
            packets: self.packets,
            bytes: self.offset,
            complete,
            reason,
        }))
    }

    /// Deletes the file being written.
    pub fn abandon(self) -> Result<(), RecordError> {
        fs::remove_file(&self.tmp)?;
        Ok(())
    }

    /// Writes one whole block at the end of the file, or undoes a partial write.
    fn put(&mut self, block: &[u8]) -> Result<(), RecordError> {
        if let Some(r) = self.stopped {
            return Err(RecordError::Stopped(r));
        }
        if let Err(e) = self.file.write_all_at(block, self.offset) {
            return Err(self.failed(e));
        }
        self.offset += block.len() as u64;
        self.digest.update(block);
        Ok(())
    }

    /// Truncates back to the last whole block and stops the message.
    fn failed(&mut self, e: io::Error) -> RecordError {
        let _ = self.file.set_len(self.offset);
        if is_disk_full(&e) {
            self.stopped = Some(StopReason::DiskFull);
            RecordError::DiskFullWhileWriting
        } else {
            self.stopped = Some(StopReason::WriteError);
            RecordError::Io(e)
        }
    }
}

/// ENOSPC, EDQUOT and EFBIG (a file size limit) all mean "no room".
pub fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    ) || e.kind() == io::ErrorKind::StorageFull
}

/// Bytes available to an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `st` points to
    // writable memory of the right type, which statvfs fills on success (checked below).
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised the whole structure.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (u32 on some 32-bit ones).
    #[allow(clippy::unnecessary_cast)]
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}
