//! X3 delivery: drains the plaintext taps of intercepted calls on a thread of its own,
//! turns each packet into an X3 PDU per task and destination, and hands it to the
//! destination's connection thread through a bounded queue.
//!
//! Nothing here can hold up a media worker: the worker only ever pushes into a tap's
//! bounded queue and drops (and counts) when it is full.
//!
//! Order of operations for the call layer:
//! 1. create taps with [`crate::engine::tap`] (`TapWhat::Plaintext`, label = the X3 direction
//!    value of the packets the flow receives: [`LABEL_TO_TARGET`] or [`LABEL_FROM_TARGET`]);
//! 2. [`X3Delivery::attach`] with the receivers, then `Command::AttachTap` to the engine;
//! 3. at the end, `Command::DetachTap` to the engine first, then [`X3Delivery::detach`],
//!    which delivers what is still in the taps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::engine::{TapKind, TapReceiver};
use crate::li::uuid::{DId, Xid};
use crate::li::x3::{format, Direction, Header, PduType};

mod counters;
mod destination;
pub mod link;

pub use counters::{Counters, DeliveryCounts, DestinationStats};
pub use destination::DestinationSpec;
pub use link::{TlsSetupError, Transport};

use counters::LinkCounters;
use destination::{DestinationWorker, Outgoing};

/// Tap label for a flow whose packets are sent to the target (the target receives them).
pub const LABEL_TO_TARGET: u32 = Direction::ToTarget as u32;
/// Tap label for a flow whose packets come from the target.
pub const LABEL_FROM_TARGET: u32 = Direction::FromTarget as u32;

/// Settings of the delivery side.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// PDUs buffered per destination while its agency is slow or unreachable; beyond it
    /// PDUs are dropped and counted.
    pub buffer_pdus: usize,
    /// A keepalive is sent after this long without sending anything.
    pub keepalive_interval: Duration,
    /// A keepalive not acknowledged within this time closes the connection.
    pub keepalive_timeout: Duration,
    pub connect_timeout: Duration,
    /// A write that cannot make progress for this long closes the connection.
    pub write_stall_timeout: Duration,
    /// Reconnect back-off: doubles from `backoff_min` up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long the draining thread sleeps when every tap was empty.
    pub poll_interval: Duration,
    /// Deliver RTCP too (as payload format 8, like RTP).
    pub deliver_rtcp: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            buffer_pdus: 8192,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            write_stall_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            poll_interval: Duration::from_millis(2),
            deliver_rtcp: true,
        }
    }
}

/// A call, as the call layer numbers it.
pub type CallId = u64;

/// One tapped flow of a call.
pub struct CallTap {
    /// The engine tap's id (the same as given to [`crate::engine::tap`]).
    pub id: u64,
    pub receiver: TapReceiver,
    pub direction: Direction,
    /// Source and destination of the packets, for the address and port attributes.
    pub endpoints: Option<(SocketAddr, SocketAddr)>,
}

impl CallTap {
    /// A tap whose direction is read from its label (see [`LABEL_TO_TARGET`]).
    pub fn from_label(id: u64, receiver: TapReceiver, label: u32) -> CallTap {
        let direction = u16::try_from(label)
            .ok()
            .and_then(Direction::from_u16)
            .filter(|d| *d != Direction::Keepalive)
            .unwrap_or(Direction::Unknown);
        CallTap {
            id,
            receiver,
            direction,
            endpoints: None,
        }
    }
}

/// A task that covers the call, and where its PDUs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interception {
    pub xid: Xid,
    pub destinations: Vec<DId>,
}

/// Why a delivery request failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("destination already exists")]
    DuplicateDestination,
    #[error("no such destination")]
    UnknownDestination,
    #[error("call already attached")]
    DuplicateCall,
    #[error("no such call")]
    UnknownCall,
    #[error("the delivery thread has stopped")]
    Stopped,
    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),
}

enum Ctl {
    AddDestination(DId, DestinationSpec, Sender<Result<(), DeliveryError>>),
    RemoveDestination(DId, Sender<Result<(), DeliveryError>>),
    Attach(
        CallId,
        u64,
        Vec<Interception>,
        Vec<CallTap>,
        Sender<Result<(), DeliveryError>>,
    ),
    SetInterceptions(CallId, Vec<Interception>, Sender<Result<(), DeliveryError>>),
    AddTaps(CallId, Vec<CallTap>, Sender<Result<(), DeliveryError>>),
    Detach(CallId, Sender<Result<(), DeliveryError>>),
    Shutdown,
}

/// What a reader of a destination's state needs: its PDU counts, its link, its queue.
type DestinationEntry = (Arc<Counters>, Arc<LinkCounters>, Receiver<Outgoing>);

#[derive(Default)]
struct Registry {
    tasks: HashMap<Xid, Arc<Counters>>,
    calls: HashMap<CallId, (u64, Arc<Counters>)>,
    destinations: HashMap<DId, DestinationEntry>,
}

/// The delivery side of lawful interception.
pub struct X3Delivery {
    ctl: Sender<Ctl>,
    registry: Arc<Mutex<Registry>>,
    next_cid: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl X3Delivery {
    /// Starts the draining thread.
    pub fn start(config: DeliveryConfig) -> Result<X3Delivery, DeliveryError> {
        let (ctl, rx) = unbounded();
        let registry = Arc::new(Mutex::new(Registry::default()));
        let drain = Drain {
            config,
            ctl: rx,
            registry: registry.clone(),
            calls: HashMap::new(),
            destinations: HashMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("li-x3-drain".into())
            .spawn(move || drain.run())
            .map_err(DeliveryError::Thread)?;
        let mut seed = [0u8; 8];
        crate::li::uuid::fill_random(&mut seed);
        // Correlation ids start at a random point (never 0) and count up.
        let first = u64::from_be_bytes(seed) >> 1 | 1;
        Ok(X3Delivery {
            ctl,
            registry,
            next_cid: AtomicU64::new(first),
            thread: Some(thread),
        })
    }

    fn request(
        &self,
        make: impl FnOnce(Sender<Result<(), DeliveryError>>) -> Ctl,
    ) -> Result<(), DeliveryError> {
        let (tx, rx) = bounded(1);
        self.ctl
            .send(make(tx))
            .map_err(|_| DeliveryError::Stopped)?;
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|_| DeliveryError::Stopped)?
    }

    /// Adds a destination and starts connecting to it.
    pub fn add_destination(&self, id: DId, spec: DestinationSpec) -> Result<(), DeliveryError> {
        self.request(|r| Ctl::AddDestination(id, spec, r))
    }

    /// Stops and removes a destination; what is still queued for it is dropped.
    pub fn remove_destination(&self, id: DId) -> Result<(), DeliveryError> {
        self.request(|r| Ctl::RemoveDestination(id, r))
    }

    /// Starts delivering a call's tapped packets for the given tasks. Returns the call's
    /// correlation id (non-zero, the same for all its PDUs).
    pub fn attach(
        &self,
        call: CallId,
        interceptions: Vec<Interception>,
        taps: Vec<CallTap>,
    ) -> Result<u64, DeliveryError> {
        let cid = loop {
            let c = self.next_cid.fetch_add(1, Ordering::Relaxed);
            if c != 0 {
                break c;
            }
        };
        self.request(|r| Ctl::Attach(call, cid, interceptions, taps, r))?;
        Ok(cid)
    }

    /// Replaces the tasks covering a call (a task activated, modified or deactivated
    /// mid-call). An empty list stops delivery while keeping the call's taps drained.
    pub fn set_interceptions(
        &self,
        call: CallId,
        interceptions: Vec<Interception>,
    ) -> Result<(), DeliveryError> {
        self.request(|r| Ctl::SetInterceptions(call, interceptions, r))
    }

    /// Adds taps to an attached call (a flow added or re-created mid-call).
    pub fn add_taps(&self, call: CallId, taps: Vec<CallTap>) -> Result<(), DeliveryError> {
        self.request(|r| Ctl::AddTaps(call, taps, r))
    }

    /// Delivers what is left in the call's taps and forgets the call. Detach the taps from
    /// the engine first.
    pub fn detach(&self, call: CallId) -> Result<(), DeliveryError> {
        self.request(|r| Ctl::Detach(call, r))
    }

    /// Counts for one task since delivery started.
    pub fn task_counts(&self, xid: &Xid) -> Option<DeliveryCounts> {
        let r = self.registry.lock().ok()?;
        r.tasks.get(xid).map(|c| c.snapshot())
    }

    /// Counts summed over every task (a PDU delivered for two tasks counts twice).
    pub fn totals(&self) -> DeliveryCounts {
        let Ok(r) = self.registry.lock() else {
            return DeliveryCounts::default();
        };
        r.tasks
            .values()
            .map(|c| c.snapshot())
            .fold(DeliveryCounts::default(), |a, c| DeliveryCounts {
                delivered: a.delivered + c.delivered,
                dropped_tap: a.dropped_tap + c.dropped_tap,
                dropped_buffer: a.dropped_buffer + c.dropped_buffer,
                dropped_link: a.dropped_link + c.dropped_link,
                dropped_no_destination: a.dropped_no_destination + c.dropped_no_destination,
            })
    }

    /// The correlation id and counts of an attached call.
    pub fn call_counts(&self, call: CallId) -> Option<(u64, DeliveryCounts)> {
        let r = self.registry.lock().ok()?;
        r.calls.get(&call).map(|(cid, c)| (*cid, c.snapshot()))
    }

    /// The state of one destination.
    pub fn destination_stats(&self, id: &DId) -> Option<DestinationStats> {
        let r = self.registry.lock().ok()?;
        r.destinations
            .get(id)
            .map(|(p, l, q)| l.snapshot(p.snapshot(), q.len()))
    }

    /// Stops every thread. Queued PDUs get a short chance to go out.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.ctl.send(Ctl::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for X3Delivery {
    fn drop(&mut self) {
        self.stop();
    }
}

struct TapState {
    tap: CallTap,
    seen_dropped: u64,
}

struct CallState {
    cid: u64,
    counters: Arc<Counters>,
    interceptions: Vec<(Interception, Arc<Counters>)>,
    taps: Vec<TapState>,
}

struct DestinationHandle {
    queue: Sender<Outgoing>,
    stop: Arc<AtomicBool>,
    pdus: Arc<Counters>,
    thread: JoinHandle<()>,
}

struct Drain {
    config: DeliveryConfig,
    ctl: Receiver<Ctl>,
    registry: Arc<Mutex<Registry>>,
    calls: HashMap<CallId, CallState>,
    destinations: HashMap<DId, DestinationHandle>,
}

/// Records taken from one tap per round, so one busy call cannot starve the others.
const ROUND: usize = 256;

impl Drain {
    fn run(mut self) {
        loop {
            while let Ok(c) = self.ctl.try_recv() {
                if !self.handle(c) {
                    return self.finish();
                }
            }
            let mut moved = 0;
            let ids: Vec<CallId> = self.calls.keys().copied().collect();
            for id in ids {
                moved += self.drain_call(id, ROUND);
            }
            if moved == 0 {
                match self.ctl.recv_timeout(self.config.poll_interval) {
                    Ok(c) => {
                        if !self.handle(c) {
                            return self.finish();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return self.finish(),
                }
            }
        }
    }

    fn finish(mut self) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            while self.drain_call(id, usize::MAX) > 0 {}
        }
        for (_, d) in self.destinations.drain() {
            d.stop.store(true, Ordering::Relaxed);
            drop(d.queue);
            let _ = d.thread.join();
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one command; `false` on shutdown.
    fn handle(&mut self, c: Ctl) -> bool {
        match c {
            Ctl::Shutdown => return false,
            Ctl::AddDestination(id, spec, r) => {
                let _ = r.send(self.add_destination(id, spec));
            }
            Ctl::RemoveDestination(id, r) => {
                let res = match self.destinations.remove(&id) {
                    None => Err(DeliveryError::UnknownDestination),
                    Some(d) => {
                        d.stop.store(true, Ordering::Relaxed);
                        drop(d.queue);
                        let _ = d.thread.join();
                        self.registry().destinations.remove(&id);
                        Ok(())
                    }
                };
                let _ = r.send(res);
            }
            Ctl::Attach(call, cid, interceptions, taps, r) => {
                let res = if self.calls.contains_key(&call) {
                    Err(DeliveryError::DuplicateCall)
                } else {
                    let counters = Arc::new(Counters::default());
                    self.registry().calls.insert(call, (cid, counters.clone()));
                    let interceptions = self.with_counters(interceptions);
                    let taps = taps.into_iter().map(Self::tap_state).collect();
                    self.calls.insert(
                        call,
                        CallState {
                            cid,
                            counters,
                            interceptions,
                            taps,
                        },
                    );
                    Ok(())
                };
                let _ = r.send(res);
            }
            Ctl::SetInterceptions(call, interceptions, r) => {
                let list = self.with_counters(interceptions);
                let res = match self.calls.get_mut(&call) {
                    None => Err(DeliveryError::UnknownCall),
                    Some(c) => {
                        c.interceptions = list;
                        Ok(())
                    }
                };
                let _ = r.send(res);
            }
            Ctl::AddTaps(call, taps, r) => {
                let res = match self.calls.get_mut(&call) {
                    None => Err(DeliveryError::UnknownCall),
                    Some(c) => {
                        c.taps.extend(taps.into_iter().map(Self::tap_state));
                        Ok(())
                    }
                };
                let _ = r.send(res);
            }
            Ctl::Detach(call, r) => {
                let res = if self.calls.contains_key(&call) {
                    while self.drain_call(call, usize::MAX) > 0 {}
                    self.calls.remove(&call);
                    self.registry().calls.remove(&call);
                    Ok(())
                } else {
                    Err(DeliveryError::UnknownCall)
                };
                let _ = r.send(res);
            }
        }
        true
    }

    fn tap_state(tap: CallTap) -> TapState {
        TapState {
            seen_dropped: tap.receiver.dropped(),
            tap,
        }
    }

    fn with_counters(&mut self, list: Vec<Interception>) -> Vec<(Interception, Arc<Counters>)> {
        let mut reg = self.registry();
        list.into_iter()
            .map(|i| {
                let c = reg.tasks.entry(i.xid).or_default().clone();
                (i, c)
            })
            .collect()
    }

    fn add_destination(&mut self, id: DId, spec: DestinationSpec) -> Result<(), DeliveryError> {
        if self.destinations.contains_key(&id) {
            return Err(DeliveryError::DuplicateDestination);
        }
        let (tx, rx) = bounded(self.config.buffer_pdus.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let pdus = Arc::new(Counters::default());
        let link = Arc::new(LinkCounters::default());
        let worker = DestinationWorker {
            spec,
            config: self.config.clone(),
            queue: rx.clone(),
            stop: stop.clone(),
            pdus: pdus.clone(),
            link: link.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("li-x3-dest".into())
            .spawn(move || worker.run())
            .map_err(DeliveryError::Thread)?;
        self.registry()
            .destinations
            .insert(id, (pdus.clone(), link, rx));
        self.destinations.insert(
            id,
            DestinationHandle {
                queue: tx,
                stop,
                pdus,
                thread,
            },
        );
        Ok(())
    }

    /// Moves up to `max` records per tap of one call into the destination queues.
    fn drain_call(&mut self, id: CallId, max: usize) -> usize {
        let Some(call) = self.calls.get_mut(&id) else {
            return 0;
        };
        let mut moved = 0;
        for t in call.taps.iter_mut() {
            let dropped = t.tap.receiver.dropped();
            if dropped > t.seen_dropped {
                let n = dropped - t.seen_dropped;
                t.seen_dropped = dropped;
                call.counters.dropped_tap(n);
                for (_, c) in &call.interceptions {
                    c.dropped_tap(n);
                }
            }
            let mut taken = 0;
            while taken < max {
                let Some(rec) = t.tap.receiver.try_recv() else {
                    break;
                };
                taken += 1;
                if rec.kind == TapKind::Rtcp && !self.config.deliver_rtcp {
                    t.tap.receiver.recycle(rec);
                    continue;
                }
                let payload: Arc<[u8]> = Arc::from(rec.bytes());
                let unix_nanos = rec.unix_nanos;
                t.tap.receiver.recycle(rec);
                for (i, task) in &call.interceptions {
                    for did in &i.destinations {
                        let Some(d) = self.destinations.get(did) else {
                            task.dropped_no_destination(1);
                            call.counters.dropped_no_destination(1);
                            continue;
                        };
                        let o = Outgoing {
                            header: Header {
                                pdu_type: PduType::X3,
                                payload_format: format::RTP,
                                direction: t.tap.direction,
                                xid: i.xid,
                                correlation_id: call.cid,
                            },
                            unix_nanos,
                            endpoints: t.tap.endpoints,
                            payload: payload.clone(),
                            task: task.clone(),
                            call: call.counters.clone(),
                        };
                        match d.queue.try_send(o) {
                            Ok(()) => {}
                            Err(TrySendError::Full(o)) | Err(TrySendError::Disconnected(o)) => {
                                o.task.dropped_buffer(1);
                                o.call.dropped_buffer(1);
                                d.pdus.dropped_buffer(1);
                            }
                        }
                    }
                }
            }
            moved += taken;
        }
        moved
    }
}
