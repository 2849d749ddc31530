//! ng `start recording` / `stop recording`: the call's legs, each direction as received,
//! written in the sealed voicemail format (docs/voicemail.md) to the operator's recording
//! public key (`[voicemail] recording-public-key`), under `<data-dir>/recordings`. The
//! relay never holds the matching private key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use relay::engine::{tap, Command, LocalPort, TapWhat};
use relay::record::{FsyncPolicy, Leg, LegSource, PublicKey, Recorder, RecorderConfig};
use relay::srtp::Policy;

use crate::call::{CallRegistry, CryptoLine};
use crate::ng::{NgRequest, NgResponse};
use crate::voicemail::config::VoicemailConfig;

/// The "mailbox" id written into recordings' envelopes, and their directory name.
pub const RECORDINGS: &str = "recordings";
const TAP_CAPACITY: usize = 1024;
/// Tap ids of call recordings: apart from lawful interception's and voicemail's.
static NEXT_TAP: AtomicU64 = AtomicU64::new(3 << 62);

struct Session {
    recorder: Recorder,
    taps: Vec<(LocalPort, u64)>,
}

/// Running call recordings, by call id.
pub struct CallRecordings {
    cfg: RecorderConfig,
    sessions: HashMap<String, Session>,
}

fn policy_of(line: &CryptoLine) -> Policy {
    let mut p = Policy::new(line.suite, line.key.clone());
    p.keys.extend(line.extra_keys.iter().cloned());
    for param in &line.params {
        match param.as_str() {
            "UNENCRYPTED_SRTP" => p.unencrypted_srtp = true,
            "UNENCRYPTED_SRTCP" => p.unencrypted_srtcp = true,
            "UNAUTHENTICATED_SRTP" => p.unauthenticated_srtp = true,
            _ => {}
        }
    }
    p
}

impl CallRecordings {
    /// `None` unless `[voicemail]` has a data directory and a recording public key.
    pub fn configured(c: &VoicemailConfig) -> Option<CallRecordings> {
        let dir = c.data_dir.as_ref()?.join(RECORDINGS);
        let recipient = PublicKey::from_base64(c.recording_public_key.as_deref()?).ok()?;
        Some(CallRecordings {
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

    /// Starts recording every answered stream of `call_id` (one interface per direction).
    pub fn start(&mut self, reg: &CallRegistry, call_id: &str) -> Result<(), String> {
        if self.sessions.contains_key(call_id) {
            return Ok(());
        }
        let call = reg.call(call_id).ok_or("Unknown call-ID")?;
        let mut legs = Vec::new();
        let mut taps = Vec::new();
        for (mi, m) in call.monologues.iter().enumerate() {
            for l in m
                .legs
                .iter()
                .filter(|l| l.negotiated.is_some() && l.remote.port != 0)
            {
                let source = match l.negotiated.as_ref().and_then(|n| n.rx.as_ref()) {
                    // A recording started mid-call assumes ROC 0 (the engine does not
                    // report it): right for the first 65536 packets of a stream.
                    Some(line) => LegSource::Srtp {
                        policy: policy_of(line),
                        initial_roc: 0,
                    },
                    None => LegSource::Plain,
                };
                let id = NEXT_TAP.fetch_add(1, Ordering::Relaxed);
                let (t, rx) = tap(id, TapWhat::AsReceived, 0, TAP_CAPACITY);
                if let Err(e) = reg
                    .engine()
                    .apply(l.ports.rtp, Command::AttachTap(l.ports.rtp, t))
                {
                    detach(reg, &taps);
                    return Err(format!("attaching a tap failed: {e}"));
                }
                taps.push((l.ports.rtp, id));
                legs.push(Leg {
                    name: format!("side{mi}-stream{}", l.index),
                    source,
                    tap: rx,
                });
            }
        }
        if legs.is_empty() {
            return Err("the call has no answered stream to record".into());
        }
        match Recorder::start(self.cfg.clone(), legs) {
            Ok(recorder) => {
                self.sessions
                    .insert(call_id.to_string(), Session { recorder, taps });
                Ok(())
            }
            Err(e) => {
                detach(reg, &taps);
                Err(format!("recording cannot start: {e}"))
            }
        }
    }

    /// Stops the call's recording (closed, renamed complete); `false` when none ran.
    pub fn stop(&mut self, reg: &CallRegistry, call_id: &str) -> bool {
        let Some(s) = self.sessions.remove(call_id) else {
            return false;
        };
        detach(reg, &s.taps);
        match s.recorder.stop() {
            Ok(Some(info)) => {
                tracing::info!(call = %call_id, packets = info.packets, "call recording stored")
            }
            Ok(None) => {
                tracing::info!(call = %call_id, "call recording ended with nothing recorded")
            }
            Err(e) => {
                tracing::warn!(call = %call_id, error = %e, "call recording could not be closed")
            }
        }
        true
    }
}

fn detach(reg: &CallRegistry, taps: &[(LocalPort, u64)]) {
    for (port, id) in taps {
        let _ = reg.engine().apply(*port, Command::DetachTap(*port, *id));
    }
}

impl super::handler::CallControl {
    pub(super) fn start_recording(&mut self, req: &NgRequest) -> NgResponse {
        let Some(call_id) = req.call_id.as_deref() else {
            return NgResponse::error("missing call-id");
        };
        let Some(rec) = self.recordings.as_mut() else {
            return NgResponse::error(
                "Recording is not configured: set [voicemail] data-dir and recording-public-key",
            );
        };
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        match rec.start(&reg, call_id) {
            Ok(()) => NgResponse::ok(),
            Err(e) => NgResponse::error(e),
        }
    }

    pub(super) fn stop_recording(&mut self, req: &NgRequest) -> NgResponse {
        let Some(call_id) = req.call_id.as_deref() else {
            return NgResponse::error("missing call-id");
        };
        let Some(rec) = self.recordings.as_mut() else {
            return NgResponse::error(
                "Recording is not configured: set [voicemail] data-dir and recording-public-key",
            );
        };
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if rec.stop(&reg, call_id) {
            NgResponse::ok()
        } else {
            NgResponse::ok().warn("the call was not being recorded")
        }
    }

    /// Closes the recording of a call being deleted.
    pub(super) fn recording_ends(&mut self, call_id: &str) {
        if let Some(rec) = self.recordings.as_mut() {
            let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            rec.stop(&reg, call_id);
        }
    }
}
