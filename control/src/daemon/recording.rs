//! Call recording: the call's legs, each direction as received, written in the sealed
//! voicemail format (docs/voicemail.md) to the operator's recording public key
//! (`[voicemail] recording-public-key`), under `<data-dir>/recordings`. The relay never
//! holds the matching private key.
//!
//! A recording is asked for by ng `start recording` or `record-call`, or by the per-user
//! policy (`[voicemail] record-users`, [`RecordUsers`]); it starts as soon as the call has
//! an answered stream and ends with `stop recording`, `record-call=no`, the call's deletion,
//! or its removal by the relay (idle media, timers), found on the daemon's timer round.
//!
//! Locking: callers hold the call registry, then take [`CallRecordings`] (never the other
//! way round).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use relay::engine::{tap, Command, LocalPort, TapWhat};
use relay::record::{FsyncPolicy, Leg, LegSource, PublicKey, Recorder, RecorderConfig};
use relay::srtp::MasterKey;

use crate::call::{CallRegistry, CryptoLine};
use crate::metrics::RecordingCounts;
use crate::ng::{NgRequest, NgResponse};
use crate::voicemail::config::VoicemailConfig;

use super::record_policy::RecordUsers;

/// The "mailbox" id written into recordings' envelopes, and their directory name.
pub const RECORDINGS: &str = "recordings";
const TAP_CAPACITY: usize = 1024;
/// Tap ids of call recordings: apart from lawful interception's and voicemail's.
static NEXT_TAP: AtomicU64 = AtomicU64::new(3 << 62);

struct Session {
    recorder: Recorder,
    taps: Vec<(LocalPort, u64)>,
    /// Per recorded direction, in the recorder's leg order: its relay port and the
    /// ingress keys it is recorded with (none: plain RTP).
    legs: Vec<(LocalPort, Option<CryptoLine>)>,
}

fn same_key(a: &MasterKey, b: &MasterKey) -> bool {
    a.key() == b.key() && a.salt() == b.salt() && a.mki() == b.mki()
}

fn same_line(a: &CryptoLine, b: &CryptoLine) -> bool {
    a.suite == b.suite
        && a.params == b.params
        && same_key(&a.key, &b.key)
        && a.extra_keys.len() == b.extra_keys.len()
        && a.extra_keys
            .iter()
            .zip(&b.extra_keys)
            .all(|(x, y)| same_key(x, y))
}

/// Running call recordings, by call id, and calls waiting for an answer to be recorded.
pub struct CallRecordings {
    cfg: RecorderConfig,
    sessions: HashMap<String, Session>,
    /// Calls to record as soon as a stream is answered.
    pending: HashSet<String>,
    /// Calls whose recording was stopped by request (`stop recording`, `record-call=no`):
    /// the per-user policy does not start them again at a re-INVITE.
    declined: HashSet<String>,
    users: RecordUsers,
    counts: Arc<RecordingCounts>,
}

/// What [`CallRecordings::start`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Recording (now, or already).
    Recording,
    /// The call has no answered stream yet: it is recorded from its answer on.
    AtAnswer,
}

/// The daemon's recordings, shared by the ng handler, the SIP edge's hook and the timer
/// round.
pub type SharedRecordings = Arc<Mutex<CallRecordings>>;

/// Locks the recordings (after the registry).
pub fn lock(r: &SharedRecordings) -> MutexGuard<'_, CallRecordings> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

impl CallRecordings {
    /// `None` unless `[voicemail]` has a data directory and a recording public key.
    pub fn configured(c: &VoicemailConfig) -> Option<CallRecordings> {
        let dir = c.data_dir.as_ref()?.join(RECORDINGS);
        let recipient = PublicKey::from_base64(c.recording_public_key.as_deref()?).ok()?;
        // Validated with the configuration.
        let users = RecordUsers::parse(&c.record_users).unwrap_or_default();
        Some(CallRecordings {
            pending: HashSet::new(),
            declined: HashSet::new(),
            users,
            counts: Arc::default(),
            cfg: RecorderConfig {
                dir,
                mailbox_id: RECORDINGS.into(),
                recipient,
                fsync: c.fsync_policy().unwrap_or(FsyncPolicy::OnClose),
                min_free_bytes: c.min_free_bytes,
                max_duration: None,
                poll_interval: Duration::from_millis(10),
            },
            sessions: HashMap::new(),
        })
    }

    /// The counters the metrics page shows.
    pub fn counts(&self) -> Arc<RecordingCounts> {
        self.counts.clone()
    }

    fn publish(&self) {
        let c = &self.counts;
        c.active
            .store(self.sessions.len() as u64, Ordering::Relaxed);
        c.waiting
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    /// Records every answered stream of `call_id` from now on; a call with no answered
    /// stream yet is recorded from its answer on.
    pub fn start(&mut self, reg: &CallRegistry, call_id: &str) -> Result<Started, String> {
        let r = self.try_start(reg, call_id);
        if r.is_ok() {
            self.declined.remove(call_id);
        }
        self.publish();
        r
    }

    fn try_start(&mut self, reg: &CallRegistry, call_id: &str) -> Result<Started, String> {
        if self.sessions.contains_key(call_id) {
            self.follow_rekeys(reg, call_id);
            return Ok(Started::Recording);
        }
        let call = reg.call(call_id).ok_or("Unknown call-ID")?;
        let answered: Vec<_> = call
            .monologues
            .iter()
            .enumerate()
            .flat_map(|(mi, m)| m.legs.iter().map(move |l| (mi, l)))
            .filter(|(_, l)| l.negotiated.is_some() && l.remote.port != 0)
            .collect();
        if answered.is_empty() {
            self.pending.insert(call_id.to_string());
            return Ok(Started::AtAnswer);
        }
        let mut legs = Vec::new();
        let mut taps = Vec::new();
        let mut recorded = Vec::new();
        for (mi, l) in answered {
            let rx = l.negotiated.as_ref().and_then(|n| n.rx.as_ref());
            recorded.push((l.ports.rtp, rx.cloned()));
            let source = match rx {
                Some(line) => {
                    let policy = line.policy();
                    // Where the ingress stream stands, read before the tap is attached:
                    // the recorder estimates each later packet's index from it.
                    match reg.engine().query(l.ports.rtp) {
                        Ok((c, _)) => match c.ingress_index {
                            Some(after) => LegSource::SrtpJoined { policy, after },
                            None => LegSource::Srtp {
                                policy,
                                initial_roc: 0,
                            },
                        },
                        Err(e) => {
                            detach(reg, &taps);
                            self.counts.failed.fetch_add(1, Ordering::Relaxed);
                            return Err(format!("querying the stream failed: {e}"));
                        }
                    }
                }
                None => LegSource::Plain,
            };
            let id = NEXT_TAP.fetch_add(1, Ordering::Relaxed);
            let (t, rx) = tap(id, TapWhat::AsReceived, 0, TAP_CAPACITY);
            if let Err(e) = reg
                .engine()
                .apply(l.ports.rtp, Command::AttachTap(l.ports.rtp, t))
            {
                detach(reg, &taps);
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                return Err(format!("attaching a tap failed: {e}"));
            }
            taps.push((l.ports.rtp, id));
            legs.push(Leg {
                name: format!("side{mi}-stream{}", l.index),
                source,
                tap: rx,
            });
        }
        match Recorder::start(self.cfg.clone(), legs) {
            Ok(recorder) => {
                self.counts.started.fetch_add(1, Ordering::Relaxed);
                self.pending.remove(call_id);
                self.sessions.insert(
                    call_id.to_string(),
                    Session {
                        recorder,
                        taps,
                        legs: recorded,
                    },
                );
                Ok(Started::Recording)
            }
            Err(e) => {
                detach(reg, &taps);
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                Err(format!("recording cannot start: {e}"))
            }
        }
    }

    /// After a call's media was installed (an answer) or its identities set: starts the
    /// recordings asked for before the answer and those the per-user policy wants.
    pub fn after_answer(&mut self, reg: &CallRegistry, call_id: &str) {
        if self.sessions.contains_key(call_id) {
            self.follow_rekeys(reg, call_id);
            return;
        }
        let wanted = self.pending.contains(call_id)
            || (!self.declined.contains(call_id)
                && reg.call(call_id).is_some_and(|c| self.users.covers(c)));
        if wanted {
            if let Err(e) = self.start(reg, call_id) {
                tracing::warn!(call = %call_id, error = %e, "call recording could not start");
            }
        }
    }

    /// A re-offer/answer that gave a recorded direction new ingress keys: the recorder
    /// takes them (it keeps accepting the old ones until a packet authenticates under the
    /// new ones, as the engine's flow switches at once).
    fn follow_rekeys(&mut self, reg: &CallRegistry, call_id: &str) {
        let (Some(s), Some(call)) = (self.sessions.get_mut(call_id), reg.call(call_id)) else {
            return;
        };
        for (i, (port, rx)) in s.legs.iter_mut().enumerate() {
            let Some(l) = call
                .monologues
                .iter()
                .flat_map(|m| &m.legs)
                .find(|l| l.ports.rtp == *port)
            else {
                continue;
            };
            let now = l.negotiated.as_ref().and_then(|n| n.rx.as_ref());
            match (rx.as_ref(), now) {
                (Some(old), Some(new)) if !same_line(old, new) => {
                    s.recorder.rekey(i, new.policy());
                    *rx = Some(new.clone());
                    tracing::info!(call = %call_id, leg = i, "call recording follows new keys");
                }
                (Some(_), None) | (None, Some(_)) => {
                    tracing::warn!(call = %call_id, leg = i,
                        "a recorded direction changed between SRTP and plain RTP; not followed");
                }
                _ => {}
            }
        }
    }

    /// Closes the recordings of calls that are gone (deleted by the SIP edge, dropped for
    /// idle media, removed by a timer), and those that stopped storing by themselves.
    pub fn tick(&mut self, reg: &CallRegistry) {
        self.pending.retain(|id| reg.call(id).is_some());
        self.declined.retain(|id| reg.call(id).is_some());
        let gone: Vec<String> = self
            .sessions
            .iter()
            .filter(|(id, s)| reg.call(id).is_none() || s.recorder.stopped().is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            // A recorder that stopped by itself (disk full, write error) is closed and its
            // taps detached; the call goes on unrecorded.
            if let Some(why) = self.sessions.get(&id).and_then(|s| s.recorder.stopped()) {
                tracing::warn!(call = %id, reason = ?why, "call recording stopped storing; closed");
            }
            self.stop(reg, &id);
        }
        self.publish();
    }

    /// Stops the call's recording (closed, renamed complete); `false` when none ran.
    pub fn stop(&mut self, reg: &CallRegistry, call_id: &str) -> bool {
        let was_pending = self.pending.remove(call_id);
        let Some(s) = self.sessions.remove(call_id) else {
            self.publish();
            return was_pending;
        };
        detach(reg, &s.taps);
        let c = &self.counts;
        match s.recorder.stop() {
            Ok(Some(info)) => {
                c.stored.fetch_add(1, Ordering::Relaxed);
                tracing::info!(call = %call_id, packets = info.packets, "call recording stored")
            }
            Ok(None) => {
                c.empty.fetch_add(1, Ordering::Relaxed);
                tracing::info!(call = %call_id, "call recording ended with nothing recorded")
            }
            Err(e) => {
                c.close_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(call = %call_id, error = %e, "call recording could not be closed")
            }
        }
        self.publish();
        true
    }

    /// Stops the call's recording on request: the per-user policy leaves the call alone
    /// from then on (until a recording is asked for again).
    pub fn decline(&mut self, reg: &CallRegistry, call_id: &str) -> bool {
        if reg.call(call_id).is_some() {
            self.declined.insert(call_id.to_string());
        }
        self.stop(reg, call_id)
    }
}

fn detach(reg: &CallRegistry, taps: &[(LocalPort, u64)]) {
    for (port, id) in taps {
        let _ = reg.engine().apply(*port, Command::DetachTap(*port, *id));
    }
}

const NOT_CONFIGURED: &str =
    "Recording is not configured: set [voicemail] data-dir and recording-public-key";

impl super::handler::CallControl {
    pub(super) fn start_recording(&mut self, req: &NgRequest) -> NgResponse {
        let Some(call_id) = req.call_id.as_deref() else {
            return NgResponse::error("missing call-id");
        };
        let Some(rec) = self.recordings.as_ref() else {
            return NgResponse::error(NOT_CONFIGURED);
        };
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let r = lock(rec).start(&reg, call_id);
        match r {
            Ok(_) => NgResponse::ok(),
            Err(e) => NgResponse::error(e),
        }
    }

    pub(super) fn stop_recording(&mut self, req: &NgRequest) -> NgResponse {
        let Some(call_id) = req.call_id.as_deref() else {
            return NgResponse::error("missing call-id");
        };
        let Some(rec) = self.recordings.as_ref() else {
            return NgResponse::error(NOT_CONFIGURED);
        };
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let stopped = lock(rec).decline(&reg, call_id);
        if stopped {
            NgResponse::ok()
        } else {
            NgResponse::ok().warn("the call was not being recorded")
        }
    }

    /// ng `record-call` in an offer or answer, and the recordings asked for before the
    /// answer: run with the registry locked, after the call's media was set up. A warning
    /// when recording was asked for but is not configured.
    pub(super) fn record_call(
        &self,
        reg: &CallRegistry,
        call_id: &str,
        record_call: Option<bool>,
    ) -> Option<String> {
        let Some(rec) = self.recordings.as_ref() else {
            return (record_call == Some(true)).then(|| format!("record-call: {NOT_CONFIGURED}"));
        };
        let mut rec = lock(rec);
        match record_call {
            Some(true) => {
                if let Err(e) = rec.start(reg, call_id) {
                    return Some(format!("record-call: {e}"));
                }
            }
            Some(false) => {
                rec.decline(reg, call_id);
            }
            None => rec.after_answer(reg, call_id),
        }
        None
    }

    /// Closes the recording of a call being deleted.
    pub(super) fn recording_ends(&self, reg: &CallRegistry, call_id: &str) {
        if let Some(rec) = self.recordings.as_ref() {
            lock(rec).stop(reg, call_id);
        }
    }
}
