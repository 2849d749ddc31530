//! Delivery counters, kept per task (XID), per call and per destination. Each PDU copy sent
//! to a destination counts once: a task with two destinations counts every packet twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live counters, shared between the delivery threads and readers.
#[derive(Default, Debug)]
pub struct Counters {
    /// PDUs written to the agency's connection.
    delivered: AtomicU64,
    /// Packets the media worker could not hand over because the tap queue was full.
    dropped_tap: AtomicU64,
    /// PDUs dropped because the destination's buffer was full (agency slow or down).
    dropped_buffer: AtomicU64,
    /// PDUs lost with a connection that failed while they were being written.
    dropped_link: AtomicU64,
    /// PDUs for a destination that is not configured.
    dropped_no_destination: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub delivered: u64,
    pub dropped_tap: u64,
    pub dropped_buffer: u64,
    pub dropped_link: u64,
    pub dropped_no_destination: u64,
}

impl DeliveryCounts {
    /// Everything that did not reach the agency.
    pub fn dropped(&self) -> u64 {
        self.dropped_tap + self.dropped_buffer + self.dropped_link + self.dropped_no_destination
    }
}

impl Counters {
    pub(crate) fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn dropped_tap(&self, n: u64) {
        self.dropped_tap.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn dropped_buffer(&self, n: u64) {
        self.dropped_buffer.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn dropped_link(&self, n: u64) {
        self.dropped_link.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn dropped_no_destination(&self, n: u64) {
        self.dropped_no_destination.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> DeliveryCounts {
        DeliveryCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped_tap: self.dropped_tap.load(Ordering::Relaxed),
            dropped_buffer: self.dropped_buffer.load(Ordering::Relaxed),
            dropped_link: self.dropped_link.load(Ordering::Relaxed),
            dropped_no_destination: self.dropped_no_destination.load(Ordering::Relaxed),
        }
    }
}

/// The state of one destination's connection.
#[derive(Default, Debug)]
pub struct LinkCounters {
    pub(crate) connected: AtomicBool,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) keepalives_sent: AtomicU64,
    pub(crate) keepalive_acks: AtomicU64,
    pub(crate) keepalives_answered: AtomicU64,
    /// Bytes from the agency that were not a valid keepalive or acknowledgement.
    pub(crate) garbage: AtomicU64,
}

/// A snapshot of a destination: its connection and its PDU counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestinationStats {
    pub connected: bool,
    pub connects: u64,
    pub connect_failures: u64,
    pub disconnects: u64,
    pub bytes: u64,
    pub keepalives_sent: u64,
    pub keepalive_acks: u64,
    pub keepalives_answered: u64,
    pub garbage: u64,
    /// PDUs waiting in the destination's buffer.
    pub queued: usize,
    pub pdus: DeliveryCounts,
}

impl LinkCounters {
    pub(crate) fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, pdus: DeliveryCounts, queued: usize) -> DestinationStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DestinationStats {
            connected: self.connected.load(Ordering::Relaxed),
            connects: l(&self.connects),
            connect_failures: l(&self.connect_failures),
            disconnects: l(&self.disconnects),
            bytes: l(&self.bytes),
            keepalives_sent: l(&self.keepalives_sent),
            keepalive_acks: l(&self.keepalive_acks),
            keepalives_answered: l(&self.keepalives_answered),
            garbage: l(&self.garbage),
            queued,
            pdus,
        }
    }
}
