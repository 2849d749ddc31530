//! Interception tasks and delivery destinations (the X1 role of ETSI TS 103 221-1), matching
//! of a call's identities against the tasks in force, and their store on disk.
//!
//! The store is one JSON file (`{"version": 1, "destinations": […], "tasks": […]}`),
//! replaced atomically on every change: written to `<file>.tmp` (mode 0600), synced,
//! renamed over the file, and the directory synced. A crash leaves either the old or the
//! new file, never a mix.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

mod identity;
mod model;

pub use model::{
    parse_rfc3339, DeliveryAddress, DeliveryType, DestinationDetails, IpAddressPort, Port,
    SecurityMode, TargetIdentifier, TaskDetails,
};

use crate::li::uuid::{DId, Xid};
use identity::Key;

/// Where an identity of a call was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityRole {
    From,
    To,
    PAssertedIdentity,
    RequestUri,
    /// The user the SIP edge authenticated (an IMPI or user@realm).
    AuthenticatedUser,
    /// An identity from elsewhere (e.g. handed over by the proxy through ng).
    Other,
}

/// The identities of one call.
#[derive(Clone, Default)]
pub struct CallIdentities(pub Vec<(IdentityRole, String)>);

impl CallIdentities {
    pub fn with(mut self, role: IdentityRole, identity: impl Into<String>) -> Self {
        self.0.push((role, identity.into()));
        self
    }
}

/// Which side of the call the target is on (it decides the X3 direction of each flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSide {
    /// The calling party (From, P-Asserted-Identity, authenticated user).
    Caller,
    /// The called party (To, Request-URI).
    Callee,
    Both,
    Unknown,
}

/// A task in force that covers a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskMatch {
    pub xid: Xid,
    pub delivery_type: DeliveryType,
    pub destinations: Vec<DId>,
    pub target_side: TargetSide,
}

/// Why an X1 operation was refused. Messages never contain a target, an XID or a dId.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("a task with this XID already exists")]
    DuplicateXid,
    #[error("no task with this XID")]
    UnknownXid,
    #[error("the XID must not be the nil UUID")]
    NilXid,
    #[error("a destination with this dId already exists")]
    DuplicateDid,
    #[error("no destination with this dId")]
    UnknownDid,
    #[error("the task refers to a dId that does not exist (position {0} in listOfDIDs)")]
    TaskUnknownDid(usize),
    #[error("the destination is used by a task")]
    DestinationInUse,
    #[error("the task has no target identifier")]
    NoTargets,
    #[error("the task has no destination")]
    NoDestinations,
    #[error("target identifier {index} is not a valid {kind}")]
    InvalidTarget { index: usize, kind: &'static str },
    #[error("{0} is not an RFC 3339 time")]
    InvalidTime(&'static str),
    #[error("endTime is not after startTime")]
    EndBeforeStart,
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("store file is not valid: {0}")]
    Corrupt(String),
}

#[derive(Serialize, Deserialize, Default)]
struct StoreFile {
    version: u32,
    destinations: Vec<DestinationDetails>,
    tasks: Vec<TaskDetails>,
}

struct TaskEntry {
    details: TaskDetails,
    keys: HashSet<Key>,
    start: Option<SystemTime>,
    end: Option<SystemTime>,
}

/// The tasks and destinations of this node.
#[derive(Default)]
pub struct LiTasks {
    path: Option<PathBuf>,
    destinations: BTreeMap<DId, DestinationDetails>,
    tasks: BTreeMap<Xid, TaskEntry>,
}

fn entry(t: TaskDetails) -> Result<TaskEntry, TaskError> {
    if t.x_id.is_nil() {
        return Err(TaskError::NilXid);
    }
    if t.target_identifiers.is_empty() {
        return Err(TaskError::NoTargets);
    }
    if t.list_of_dids.is_empty() {
        return Err(TaskError::NoDestinations);
    }
    let mut keys = HashSet::new();
    for (index, id) in t.target_identifiers.iter().enumerate() {
        let k = match id {
            TargetIdentifier::SipUri(s) => identity::sip_uri(s),
            TargetIdentifier::TelUri(s) => identity::tel_uri(s),
            TargetIdentifier::E164Number(s) => identity::e164(s),
            TargetIdentifier::Impu(s) => identity::impu(s),
            TargetIdentifier::Impi(s) => identity::impi(s),
        };
        let k = k.ok_or(TaskError::InvalidTarget {
            index,
            kind: id.kind(),
        })?;
        // A SIP URI target names that URI; the number it may carry is also the target.
        keys.extend(k);
    }
    let time = |v: &Option<String>, what| match v {
        None => Ok(None),
        Some(s) => parse_rfc3339(s)
            .map(Some)
            .ok_or(TaskError::InvalidTime(what)),
    };
    let start = time(&t.start_time, "startTime")?;
    let end = time(&t.end_time, "endTime")?;
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(TaskError::EndBeforeStart);
        }
    }
    Ok(TaskEntry {
        details: t,
        keys,
        start,
        end,
    })
}

impl LiTasks {
    /// Tasks kept in memory only (tests, or LI configured without a store).
    pub fn in_memory() -> LiTasks {
        LiTasks::default()
    }

    /// Opens the store at `path`, loading it when it exists.
    pub fn open(path: impl AsRef<Path>) -> Result<LiTasks, TaskError> {
        let path = path.as_ref().to_path_buf();
        let mut t = LiTasks {
            path: Some(path.clone()),
            ..Default::default()
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(t),
            Err(e) => return Err(e.into()),
        };
        let file: StoreFile =
            serde_json::from_str(&text).map_err(|e| TaskError::Corrupt(e.to_string()))?;
        if file.version != 1 {
            return Err(TaskError::Corrupt(format!("version {}", file.version)));
        }
        for d in file.destinations {
            t.destinations.insert(d.d_id, d);
        }
        for task in file.tasks {
            let e = entry(task).map_err(|e| TaskError::Corrupt(e.to_string()))?;
            t.tasks.insert(e.details.x_id, e);
        }
        Ok(t)
    }

    fn save(&self) -> Result<(), TaskError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = StoreFile {
            version: 1,
            destinations: self.destinations.values().cloned().collect(),
            tasks: self.tasks.values().map(|e| e.details.clone()).collect(),
        };
        let text =
            serde_json::to_vec_pretty(&file).map_err(|e| TaskError::Corrupt(e.to_string()))?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Applies a change and persists it; the change is undone if it cannot be saved.
    fn commit<T>(
        &mut self,
        change: impl FnOnce(&mut Self) -> Result<T, TaskError>,
        undo: impl FnOnce(&mut Self),
    ) -> Result<T, TaskError> {
        let v = change(self)?;
        if let Err(e) = self.save() {
            undo(self);
            return Err(e);
        }
        Ok(v)
    }

    // --- destinations -------------------------------------------------------------

    /// X1 CreateDestination.
    pub fn create_destination(&mut self, d: DestinationDetails) -> Result<(), TaskError> {
        if self.destinations.contains_key(&d.d_id) {
            return Err(TaskError::DuplicateDid);
        }
        let id = d.d_id;
        self.commit(
            |s| {
                s.destinations.insert(id, d);
                Ok(())
            },
            |s| {
                s.destinations.remove(&id);
            },
        )
    }

    /// X1 ModifyDestination.
    pub fn modify_destination(&mut self, d: DestinationDetails) -> Result<(), TaskError> {
        let id = d.d_id;
        let old = self
            .destinations
            .get(&id)
            .cloned()
            .ok_or(TaskError::UnknownDid)?;
        self.commit(
            |s| {
                s.destinations.insert(id, d);
                Ok(())
            },
            |s| {
                s.destinations.insert(id, old);
            },
        )
    }

    /// X1 RemoveDestination; refused while a task delivers to it.
    pub fn remove_destination(&mut self, id: &DId) -> Result<(), TaskError> {
        let old = self
            .destinations
            .get(id)
            .cloned()
            .ok_or(TaskError::UnknownDid)?;
        if self
            .tasks
            .values()
            .any(|t| t.details.list_of_dids.contains(id))
        {
            return Err(TaskError::DestinationInUse);
        }
        let id = *id;
        self.commit(
            |s| {
                s.destinations.remove(&id);
                Ok(())
            },
            |s| {
                s.destinations.insert(id, old);
            },
        )
    }

    /// X1 GetDestinationDetails.
    pub fn destination(&self, id: &DId) -> Option<&DestinationDetails> {
        self.destinations.get(id)
    }

    pub fn destinations(&self) -> impl Iterator<Item = &DestinationDetails> {
        self.destinations.values()
    }

    // --- tasks --------------------------------------------------------------------

    fn check_dids(&self, t: &TaskDetails) -> Result<(), TaskError> {
        for (i, d) in t.list_of_dids.iter().enumerate() {
            if !self.destinations.contains_key(d) {
                return Err(TaskError::TaskUnknownDid(i));
            }
        }
        Ok(())
    }

    /// X1 ActivateTask.
    pub fn activate_task(&mut self, t: TaskDetails) -> Result<(), TaskError> {
        if self.tasks.contains_key(&t.x_id) {
            return Err(TaskError::DuplicateXid);
        }
        self.check_dids(&t)?;
        let e = entry(t)?;
        let xid = e.details.x_id;
        self.commit(
            |s| {
                s.tasks.insert(xid, e);
                Ok(())
            },
            |s| {
                s.tasks.remove(&xid);
            },
        )
    }

    /// X1 ModifyTask: replaces the task's details.
    pub fn modify_task(&mut self, t: TaskDetails) -> Result<(), TaskError> {
        if !self.tasks.contains_key(&t.x_id) {
            return Err(TaskError::UnknownXid);
        }
        self.check_dids(&t)?;
        let e = entry(t)?;
        let xid = e.details.x_id;
        let old = self.tasks.insert(xid, e).ok_or(TaskError::UnknownXid)?;
        if let Err(err) = self.save() {
            self.tasks.insert(xid, old);
            return Err(err);
        }
        Ok(())
    }

    /// X1 DeactivateTask: the task is removed.
    pub fn deactivate_task(&mut self, xid: &Xid) -> Result<(), TaskError> {
        let old = self.tasks.remove(xid).ok_or(TaskError::UnknownXid)?;
        if let Err(e) = self.save() {
            self.tasks.insert(*xid, old);
            return Err(e);
        }
        Ok(())
    }

    /// X1 GetTaskDetails.
    pub fn task(&self, xid: &Xid) -> Option<&TaskDetails> {
        self.tasks.get(xid).map(|e| &e.details)
    }

    /// X1 ListAllDetails (tasks).
    pub fn tasks(&self) -> impl Iterator<Item = &TaskDetails> {
        self.tasks.values().map(|e| &e.details)
    }

    // --- matching -----------------------------------------------------------------

    /// The tasks in force now whose targets match any of the call's identities.
    pub fn matching(&self, identities: &CallIdentities) -> Vec<TaskMatch> {
        self.matching_at(identities, SystemTime::now())
    }

    /// As [`LiTasks::matching`], at the given time.
    pub fn matching_at(&self, identities: &CallIdentities, now: SystemTime) -> Vec<TaskMatch> {
        let keyed: Vec<(IdentityRole, Vec<Key>)> = identities
            .0
            .iter()
            .map(|(r, s)| (*r, identity::call_identity(s)))
            .collect();
        let mut out = Vec::new();
        for e in self.tasks.values() {
            if e.start.is_some_and(|s| now < s) || e.end.is_some_and(|end| now >= end) {
                continue;
            }
            let (mut caller, mut callee, mut other) = (false, false, false);
            for (role, keys) in &keyed {
                if keys.iter().any(|k| e.keys.contains(k)) {
                    match role {
                        IdentityRole::From
                        | IdentityRole::PAssertedIdentity
                        | IdentityRole::AuthenticatedUser => caller = true,
                        IdentityRole::To | IdentityRole::RequestUri => callee = true,
                        IdentityRole::Other => other = true,
                    }
                }
            }
            let target_side = match (caller, callee, other) {
                (true, true, _) => TargetSide::Both,
                (true, false, _) => TargetSide::Caller,
                (false, true, _) => TargetSide::Callee,
                (false, false, true) => TargetSide::Unknown,
                (false, false, false) => continue,
            };
            out.push(TaskMatch {
                xid: e.details.x_id,
                delivery_type: e.details.delivery_type,
                destinations: e.details.list_of_dids.clone(),
                target_side,
            });
        }
        out
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
