//! Taps: bounded single-producer queues through which a worker hands copies of a flow's
//! packets to a consumer off the fast path (lawful interception, recording). When a tap is
//! full the worker drops for that tap and counts; it never waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// Largest packet a tap record holds; longer packets are cut and flagged.
pub const TAP_MAX: usize = 1500;

/// What a tap receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapWhat {
    /// RTP/RTCP after SRTP authentication and decryption (never a packet that failed).
    Plaintext,
    /// The datagram exactly as it arrived.
    AsReceived,
}

/// Whether a record holds RTP or RTCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapKind {
    Rtp,
    Rtcp,
}

/// One copied packet.
#[derive(Clone)]
pub struct TapRecord {
    /// The label given when the tap was attached (e.g. the direction of the call leg).
    pub label: u32,
    pub kind: TapKind,
    /// Wall-clock time the batch holding the packet was received, ns since the Unix epoch.
    pub unix_nanos: u64,
    /// The packet was longer than [`TAP_MAX`] and was cut.
    pub truncated: bool,
    pub len: u16,
    pub data: [u8; TAP_MAX],
}

impl TapRecord {
    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// The consumer's side of a tap.
#[derive(Clone)]
pub struct TapReceiver {
    queue: Arc<ArrayQueue<Box<TapRecord>>>,
    spare: Arc<ArrayQueue<Box<TapRecord>>>,
    dropped: Arc<AtomicU64>,
}

impl TapReceiver {
    pub fn try_recv(&self) -> Option<Box<TapRecord>> {
        self.queue.pop()
    }

    /// Hands a consumed record back to the worker for reuse.
    pub fn recycle(&self, rec: Box<TapRecord>) {
        // A full spare queue means the record is surplus; dropping it is fine.
        let _ = self.spare.push(rec);
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The worker's side of a tap, attached to a flow.
pub struct Tap {
    pub id: u64,
    pub what: TapWhat,
    pub label: u32,
    queue: Arc<ArrayQueue<Box<TapRecord>>>,
    /// Empty records handed back for reuse, so the worker does not allocate.
    spare: Arc<ArrayQueue<Box<TapRecord>>>,
    dropped: Arc<AtomicU64>,
}

/// A tap with room for `capacity` records, and the receiver that drains it. Records are
/// allocated up front; [`TapReceiver::recycle`] returns them for reuse.
pub fn tap(id: u64, what: TapWhat, label: u32, capacity: usize) -> (Tap, TapReceiver) {
    let capacity = capacity.max(1);
    let queue = Arc::new(ArrayQueue::new(capacity));
    let spare = Arc::new(ArrayQueue::new(capacity));
    for _ in 0..capacity {
        let _ = spare.push(Box::new(TapRecord {
            label,
            kind: TapKind::Rtp,
            unix_nanos: 0,
            truncated: false,
            len: 0,
            data: [0; TAP_MAX],
        }));
    }
    let dropped = Arc::new(AtomicU64::new(0));
    (
        Tap {
            id,
            what,
            label,
            queue: queue.clone(),
            spare: spare.clone(),
            dropped: dropped.clone(),
        },
        TapReceiver {
            queue,
            spare,
            dropped,
        },
    )
}

impl Tap {
    /// Copies `pkt` into the tap, or counts a drop when no record is free.
    #[inline]
    pub(crate) fn offer(&self, kind: TapKind, unix_nanos: u64, pkt: &[u8]) -> bool {
        let Some(mut rec) = self.spare.pop() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let n = pkt.len().min(TAP_MAX);
        rec.label = self.label;
        rec.kind = kind;
        rec.unix_nanos = unix_nanos;
        rec.truncated = pkt.len() > TAP_MAX;
        rec.len = n as u16;
        rec.data[..n].copy_from_slice(&pkt[..n]);
        match self.queue.push(rec) {
            Ok(()) => true,
            Err(rec) => {
                let _ = self.spare.push(rec);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
