//! The recorder: drains as-received engine taps off the fast path and writes one sealed
//! message file. For a direction whose SRTP encrypts and authenticates, each packet is
//! checked with a copy of the ingress keys and stored exactly as received (tag kept);
//! packets that fail are refused and counted. A plain (or unencrypted) direction is
//! protected on receipt under a fresh random key, which is what gets sealed.
//!
//! The engine never waits for the recorder: a tap is a bounded queue that drops and counts
//! when the recorder (or its disk) falls behind.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use zeroize::Zeroize;

use crate::engine::{StreamIndex, TapKind, TapReceiver, TAP_MAX};
use crate::srtp::{
    estimate_index, Error as SrtpError, MasterKey, Policy, SrtpContext, Suite, MAX_SRTP_TRAILER,
};

use super::envelope::{KeyMaterial, Origin};
use super::integrity::StopReason;
use super::keys::{random_bytes, KeyError, PublicKey};
use super::writer::{FsyncPolicy, MessageConfig, MessageInfo, MessageWriter, RecordError};
use super::RecordingId;

/// The suite of the fresh keys that protect a plain direction.
pub const REPROTECT_SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// What a direction's tap carries.
pub enum LegSource {
    /// SRTP with these ingress keys (a copy of the flow's ingress policy). `initial_roc`
    /// is the rollover counter of the first packet the tap will see (0 when the tap is
    /// attached with the flow, as for a voicemail deposit).
    Srtp { policy: Policy, initial_roc: u32 },
    /// SRTP joined mid-stream: `after` is where the engine's ingress stream stood when the
    /// tap was attached ([`FlowCounters::ingress_index`](crate::engine::FlowCounters)).
    /// Each packet's index is estimated from it the usual way (RFC 3711 §3.3.1), so a
    /// packet that crossed a rollover while the tap was being attached is still right.
    SrtpJoined { policy: Policy, after: StreamIndex },
    /// Plain RTP.
    Plain,
}

/// One call direction to record.
pub struct Leg {
    /// Its name in the file (`if_name`), e.g. "caller".
    pub name: String,
    pub source: LegSource,
    /// The receiving end of a [`TapWhat::AsReceived`](crate::engine::TapWhat) tap.
    pub tap: TapReceiver,
}

/// Where and how to record.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    pub dir: std::path::PathBuf,
    pub mailbox_id: String,
    pub recipient: PublicKey,
    pub fsync: FsyncPolicy,
    pub min_free_bytes: u64,
    /// Stop storing after this long (the control plane then ends the call).
    pub max_duration: Option<Duration>,
    /// How long the recorder sleeps when its taps are empty.
    pub poll_interval: Duration,
}

/// Counters of a recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub stored: u64,
    pub refused_auth: u64,
    pub refused_replay: u64,
    pub refused_malformed: u64,
    pub rtcp_skipped: u64,
    /// Packets that arrived after the message stopped (maximum length, full disk).
    pub discarded: u64,
    /// Packets the engine dropped because the tap was full (the recorder was slow).
    pub tap_dropped: u64,
}

impl RecorderStats {
    fn refused(&self) -> u64 {
        self.refused_auth + self.refused_replay + self.refused_malformed + self.rtcp_skipped
    }
}

enum Mode {
    /// Stored as received, checked with `ctx`. `unsealed` holds the keys until the
    /// envelope is written; `next` is a re-key not yet seen in traffic.
    AsReceived {
        ctx: SrtpContext,
        unsealed: Option<Policy>,
        next: Option<(Policy, SrtpContext)>,
        /// The ROC to give the first SSRC seen, then that SSRC and ROC.
        initial_roc: Option<u32>,
        roc_of: Option<(u32, u32)>,
        /// For a stream joined mid-way: where the engine's stream stood.
        joined: Option<StreamIndex>,
    },
    /// Decoded with `ingress` (if SRTP), protected with `tx` under a fresh key.
    Reprotect {
        ingress: Option<SrtpContext>,
        tx: SrtpContext,
        unsealed: Option<MasterKey>,
    },
}

fn as_received(policy: &Policy) -> bool {
    policy.suite.encrypts() && !policy.unencrypted_srtp && !policy.unauthenticated_srtp
}

fn fresh_reprotect(ingress: Option<SrtpContext>) -> Result<Mode, RecordError> {
    let s = REPROTECT_SUITE;
    let mut ks = zeroize::Zeroizing::new([0u8; 46]);
    random_bytes(&mut ks[..s.key_salt_len()])?;
    let key = MasterKey::from_key_salt(s, &ks[..s.key_salt_len()]).map_err(|_| KeyError::Random)?;
    let tx = SrtpContext::new(Policy::new(s, key.clone())).map_err(|_| KeyError::Random)?;
    Ok(Mode::Reprotect {
        ingress,
        tx,
        unsealed: Some(key),
    })
}

fn mode_for(source: LegSource) -> Result<Mode, RecordError> {
    match source {
        LegSource::Plain => fresh_reprotect(None),
        LegSource::Srtp {
            policy,
            initial_roc,
        } => srtp_mode(policy, (initial_roc != 0).then_some(initial_roc), None),
        LegSource::SrtpJoined { policy, after } => srtp_mode(policy, None, Some(after)),
    }
}

fn srtp_mode(
    policy: Policy,
    initial_roc: Option<u32>,
    joined: Option<StreamIndex>,
) -> Result<Mode, RecordError> {
    let mut ctx = SrtpContext::new(policy.clone()).map_err(|_| RecordError::BadLegs)?;
    if let Some(j) = joined {
        // The engine accepted `j.index`: the next packet is estimated from there.
        let next = j.index + 1;
        ctx.set_rx_roc(j.ssrc, (next >> 16) as u32, next as u16);
    }
    if as_received(&policy) {
        Ok(Mode::AsReceived {
            ctx,
            unsealed: Some(policy),
            next: None,
            initial_roc,
            roc_of: None,
            joined,
        })
    } else {
        fresh_reprotect(Some(ctx))
    }
}

fn header(pkt: &[u8]) -> Option<(u32, u16)> {
    (pkt.len() >= 12 && pkt[0] >> 6 == 2).then(|| {
        (
            u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
            u16::from_be_bytes([pkt[2], pkt[3]]),
        )
    })
}

/// The synchronous core of a recording: one message file and the state of each direction.
pub struct MessageSession {
    writer: MessageWriter,
    legs: Vec<Mode>,
    stats: RecorderStats,
    scratch: Vec<u8>,
}

impl MessageSession {
    /// Creates the message file (refusing cleanly when the disk is short of space).
    pub fn new(
        cfg: &RecorderConfig,
        legs: Vec<(String, LegSource)>,
        start_unix_nanos: u64,
    ) -> Result<Self, RecordError> {
        let names = legs.iter().map(|(n, _)| n.clone()).collect();
        let modes = legs
            .into_iter()
            .map(|(_, s)| mode_for(s))
            .collect::<Result<Vec<_>, _>>()?;
        let writer = MessageWriter::create(
            &MessageConfig {
                dir: cfg.dir.clone(),
                mailbox_id: cfg.mailbox_id.clone(),
                recipient: cfg.recipient,
                legs: names,
                fsync: cfg.fsync,
                min_free_bytes: cfg.min_free_bytes,
            },
            start_unix_nanos,
        )?;
        Ok(MessageSession {
            writer,
            legs: modes,
            stats: RecorderStats::default(),
            scratch: vec![0; TAP_MAX + MAX_SRTP_TRAILER],
        })
    }

    pub fn recording_id(&self) -> RecordingId {
        self.writer.recording_id()
    }

    pub fn writer(&self) -> &MessageWriter {
        &self.writer
    }

    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    pub fn stop(&mut self, reason: StopReason) {
        self.writer.stop(reason);
    }

    /// New ingress keys for `leg` (the flow was re-keyed). Packets still under the old keys
    /// keep being accepted until one authenticates under the new ones.
    pub fn rekey(&mut self, leg: usize, policy: Policy) -> Result<(), RecordError> {
        let mode = self
            .legs
            .get_mut(leg)
            .ok_or(RecordError::NoSuchLeg(leg as u32))?;
        match mode {
            Mode::AsReceived { next, .. } if as_received(&policy) => {
                let ctx = SrtpContext::new(policy.clone()).map_err(|_| RecordError::BadLegs)?;
                *next = Some((policy, ctx));
            }
            Mode::Reprotect {
                ingress: Some(ing), ..
            } => {
                *ing = SrtpContext::new(policy).map_err(|_| RecordError::BadLegs)?;
            }
            _ => return Err(RecordError::BadLegs),
        }
        Ok(())
    }

    /// Handles one tapped packet of `leg`.
    pub fn on_packet(
        &mut self,
        leg: usize,
        kind: TapKind,
        unix_nanos: u64,
        data: &[u8],
        truncated: bool,
    ) {
        if leg >= self.legs.len() || truncated || data.len() > TAP_MAX {
            self.stats.refused_malformed += 1;
            return;
        }
        if kind == TapKind::Rtcp {
            self.stats.rtcp_skipped += 1;
            return;
        }
        if self.writer.stopped().is_some() {
            self.stats.discarded += 1;
            return;
        }
        let Some((ssrc, seq)) = header(data) else {
            self.stats.refused_malformed += 1;
            return;
        };
        let stored = match &mut self.legs[leg] {
            Mode::AsReceived {
                ctx,
                unsealed,
                next,
                initial_roc,
                roc_of,
                joined,
            } => {
                if let Some(roc) = initial_roc.take() {
                    ctx.set_rx_roc(ssrc, roc, seq);
                    *roc_of = Some((ssrc, roc));
                }
                let buf = &mut self.scratch[..data.len()];
                buf.copy_from_slice(data);
                let mut r = ctx.unprotect(buf).map(|_| ());
                if r.is_err() {
                    if let Some((_, nctx)) = next {
                        buf.copy_from_slice(data);
                        if nctx.unprotect(buf).is_ok() {
                            if let Some((p, c)) = next.take() {
                                *ctx = c;
                                *unsealed = Some(p);
                            }
                            r = Ok(());
                        }
                    }
                }
                buf.zeroize();
                match r {
                    Err(e) => Err(e),
                    Ok(()) => {
                        if let Some(policy) = unsealed.take() {
                            // Only the first envelope's first SSRC has a ROC other than 0: a
                            // re-keyed context starts afresh, as the engine's does.
                            let first = !self.writer.is_keyed(leg as u32);
                            let roc = match (*roc_of, *joined) {
                                (Some((s, r)), _) if s == ssrc && first => r,
                                // The index this packet was just accepted at.
                                (_, Some(j)) if j.ssrc == ssrc && first => {
                                    estimate_index(Some(j.index), seq)
                                        .map_or(0, |i| (i >> 16) as u32)
                                }
                                _ => 0,
                            };
                            let km = KeyMaterial {
                                suite: policy.suite,
                                keys: policy.keys.clone(),
                                kdr: policy.kdr,
                                ssrc,
                                roc,
                                seq,
                                origin: Origin::AsReceived,
                            };
                            let w = self.writer.write_envelope(leg as u32, &km);
                            drop(km);
                            drop(policy);
                            if w.is_err() {
                                self.stats.discarded += 1;
                                return;
                            }
                        }
                        Ok(self
                            .writer
                            .write_packet(leg as u32, unix_nanos, data)
                            .is_ok())
                    }
                }
            }
            Mode::Reprotect {
                ingress,
                tx,
                unsealed,
            } => {
                let buf = &mut self.scratch;
                buf[..data.len()].copy_from_slice(data);
                let plain_len = match ingress {
                    Some(ing) => ing.unprotect(&mut buf[..data.len()]),
                    None => Ok(data.len()),
                };
                let r = plain_len.and_then(|n| tx.protect(buf, n));
                let out = match r {
                    Err(e) => Err(e),
                    Ok(n) => {
                        let mut ok = true;
                        if let Some(key) = unsealed.take() {
                            let km = KeyMaterial {
                                suite: REPROTECT_SUITE,
                                keys: vec![key],
                                kdr: 0,
                                ssrc,
                                roc: 0,
                                seq,
                                origin: Origin::Reprotected,
                            };
                            ok = self.writer.write_envelope(leg as u32, &km).is_ok();
                        }
                        Ok(ok
                            && self
                                .writer
                                .write_packet(leg as u32, unix_nanos, &buf[..n])
                                .is_ok())
                    }
                };
                buf.as_mut_slice().zeroize();
                out
            }
        };
        match stored {
            Ok(true) => self.stats.stored += 1,
            Ok(false) => self.stats.discarded += 1,
            Err(SrtpError::AuthFailed) => self.stats.refused_auth += 1,
            Err(SrtpError::Replay | SrtpError::ReplayOld) => self.stats.refused_replay += 1,
            Err(_) => self.stats.refused_malformed += 1,
        }
    }

    /// Closes the message: end block, sync, rename. `None` when nothing was recorded.
    pub fn finish(mut self, tap_dropped: u64) -> Result<Option<MessageInfo>, RecordError> {
        self.stats.tap_dropped = tap_dropped;
        let s = self.stats;
        // Keys go first: nothing of them outlives the message.
        self.legs.clear();
        self.writer
            .finish(s.tap_dropped + s.discarded, s.refused(), unix_nanos_now())
    }
}

pub(crate) fn unix_nanos_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

enum Control {
    Rekey(usize, Box<Policy>),
    Stop,
}

#[derive(Default)]
struct Shared {
    stats: [AtomicU64; 7],
    /// 0 while recording; 1 + StopReason once stopped.
    stopped: AtomicU8,
}

impl Shared {
    fn publish(&self, s: &RecorderStats, stopped: Option<StopReason>) {
        let v = [
            s.stored,
            s.refused_auth,
            s.refused_replay,
            s.refused_malformed,
            s.rtcp_skipped,
            s.discarded,
            s.tap_dropped,
        ];
        for (a, v) in self.stats.iter().zip(v) {
            a.store(v, Ordering::Relaxed);
        }
        self.stopped
            .store(stopped.map_or(0, |r| r as u8 + 1), Ordering::Relaxed);
    }
}

/// A recording in progress, on its own thread.
pub struct Recorder {
    control: Sender<Control>,
    shared: Arc<Shared>,
    taps: Vec<TapReceiver>,
    recording_id: RecordingId,
    handle: Option<JoinHandle<Result<Option<MessageInfo>, RecordError>>>,
}

impl Recorder {
    /// Creates the message file and starts draining the taps. Refusals (disk short of
    /// space, bad configuration) are returned here, before anything is recorded.
    pub fn start(cfg: RecorderConfig, legs: Vec<Leg>) -> Result<Recorder, RecordError> {
        let taps: Vec<TapReceiver> = legs.iter().map(|l| l.tap.clone()).collect();
        let spec = legs.into_iter().map(|l| (l.name, l.source)).collect();
        let session = MessageSession::new(&cfg, spec, unix_nanos_now())?;
        let recording_id = session.recording_id();
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::default());
        let (sh, tp) = (shared.clone(), taps.clone());
        let handle = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || run(session, tp, rx, sh, cfg))
            .map_err(RecordError::Io)?;
        Ok(Recorder {
            control: tx,
            shared,
            taps,
            recording_id,
            handle: Some(handle),
        })
    }

    pub fn recording_id(&self) -> RecordingId {
        self.recording_id
    }

    /// New ingress keys for direction `leg`, after the flow was re-keyed.
    pub fn rekey(&self, leg: usize, policy: Policy) {
        let _ = self.control.send(Control::Rekey(leg, Box::new(policy)));
    }

    pub fn stats(&self) -> RecorderStats {
        let a = &self.shared.stats;
        let g = |i: usize| a[i].load(Ordering::Relaxed);
        RecorderStats {
            stored: g(0),
            refused_auth: g(1),
            refused_replay: g(2),
            refused_malformed: g(3),
            rtcp_skipped: g(4),
            discarded: g(5),
            tap_dropped: self.taps.iter().map(|t| t.dropped()).sum(),
        }
    }

    /// Why the recording stopped storing, if it did (maximum length, full disk): the
    /// control plane should then end the call.
    pub fn stopped(&self) -> Option<StopReason> {
        match self.shared.stopped.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(StopReason::Normal),
            2 => Some(StopReason::MaxLength),
            3 => Some(StopReason::DiskFull),
            _ => Some(StopReason::WriteError),
        }
    }

    /// Stores what is still queued, closes the message and returns it (`None` when no
    /// packet was recorded, in which case the file is gone).
    pub fn stop(mut self) -> Result<Option<MessageInfo>, RecordError> {
        self.join()
    }

    fn join(&mut self) -> Result<Option<MessageInfo>, RecordError> {
        let _ = self.control.send(Control::Stop);
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| RecordError::Thread)?,
            None => Ok(None),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// Handles up to `limit` tapped packets. With `control`, it stops early as soon as a
/// control message is waiting, so that a re-key sent before a packet was tapped is applied
/// before that packet is looked at.
fn drain(
    session: &mut MessageSession,
    taps: &[TapReceiver],
    limit: usize,
    control: Option<&Receiver<Control>>,
) -> usize {
    let mut n = 0;
    for (i, tap) in taps.iter().enumerate() {
        while n < limit {
            if control.is_some_and(|c| !c.is_empty()) {
                return n;
            }
            let Some(mut rec) = tap.try_recv() else { break };
            session.on_packet(i, rec.kind, rec.unix_nanos, rec.bytes(), rec.truncated);
            // The record may have held plain RTP: clear it before it goes back.
            let len = rec.len as usize;
            rec.data[..len].zeroize();
            tap.recycle(rec);
            n += 1;
        }
    }
    n
}

fn run(
    mut session: MessageSession,
    taps: Vec<TapReceiver>,
    control: Receiver<Control>,
    shared: Arc<Shared>,
    cfg: RecorderConfig,
) -> Result<Option<MessageInfo>, RecordError> {
    let deadline = cfg.max_duration.map(|d| Instant::now() + d);
    let dropped = |taps: &[TapReceiver]| taps.iter().map(|t| t.dropped()).sum::<u64>();
    let mut stop = false;
    while !stop {
        let n = drain(&mut session, &taps, 1024, Some(&control));
        if deadline.is_some_and(|d| Instant::now() >= d) {
            session.stop(StopReason::MaxLength);
        }
        let mut s = session.stats();
        s.tap_dropped = dropped(&taps);
        shared.publish(&s, session.writer().stopped());
        let msg = if n == 0 {
            match control.recv_timeout(cfg.poll_interval) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Control::Stop),
            }
        } else {
            control.try_recv().ok()
        };
        // Every message queued now is applied before the taps are drained again (which
        // also stops at the next message): a re-key takes effect before any packet tapped
        // after it was sent.
        let mut msg = msg;
        while let Some(m) = msg {
            match m {
                Control::Stop => stop = true,
                Control::Rekey(leg, p) => {
                    let _ = session.rekey(leg, *p);
                }
            }
            msg = control.try_recv().ok();
        }
    }
    while drain(&mut session, &taps, usize::MAX, None) > 0 {}
    let reason = session.writer().stopped();
    let r = session.finish(dropped(&taps));
    shared.publish(
        &RecorderStats::default(),
        reason.or(Some(StopReason::Normal)),
    );
    r
}
