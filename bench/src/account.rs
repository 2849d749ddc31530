//! Per-stream accounting of received packets: which counters arrived (a bitmap, so that a
//! duplicate is told from a late packet), how many arrived after a later one (reordered),
//! and the RFC 3550 interarrival jitter computed on send and receive times.

/// What one received packet was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// First copy, in order.
    InOrder,
    /// First copy, after a packet with a higher counter.
    Reordered,
    /// A counter already received.
    Duplicate,
    /// A counter the stream cannot have sent (beyond its bound).
    OutOfRange,
}

/// The receive side of one stream.
#[derive(Clone, Debug)]
pub struct StreamAccount {
    bits: Vec<u64>,
    /// Counters at or above this are impossible (a corrupt or foreign packet).
    bound: u64,
    /// Counters below this were sent before the current phase (see [`StreamAccount::reset`]).
    base: u64,
    highest: Option<u64>,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Counters from an earlier phase that arrived in this one.
    pub stale: u64,
    last_transit: Option<i64>,
    /// RFC 3550 §6.4.1 jitter estimate, nanoseconds.
    pub jitter_ns: f64,
}

impl StreamAccount {
    pub fn new(bound: u64) -> Self {
        StreamAccount {
            bits: Vec::new(),
            bound,
            base: 0,
            highest: None,
            unique: 0,
            duplicates: 0,
            reordered: 0,
            stale: 0,
            last_transit: None,
            jitter_ns: 0.0,
        }
    }

    /// Starts a new phase whose first packet has counter `base`; counters may reach `bound`.
    pub fn reset(&mut self, base: u64, bound: u64) {
        *self = StreamAccount::new(bound);
        self.base = base;
    }

    /// Records packet `counter`, sent at `sent_ns` and received at `recv_ns`.
    pub fn record(&mut self, counter: u64, sent_ns: u64, recv_ns: u64) -> Arrival {
        if counter >= self.bound {
            return Arrival::OutOfRange;
        }
        if counter < self.base {
            self.stale += 1;
            return Arrival::Duplicate;
        }
        let rel = counter - self.base;
        let word = (rel / 64) as usize;
        let bit = 1u64 << (rel % 64);
        if word >= self.bits.len() {
            let want = (word + 1).next_power_of_two().max(16);
            self.bits.resize(want, 0);
        }
        if self.bits[word] & bit != 0 {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.bits[word] |= bit;
        self.unique += 1;
        let transit = recv_ns as i64 - sent_ns as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_transit = Some(transit);
        match self.highest {
            Some(h) if counter < h => {
                self.reordered += 1;
                Arrival::Reordered
            }
            _ => {
                self.highest = Some(counter);
                Arrival::InOrder
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_reordering_and_gaps() {
        let mut a = StreamAccount::new(1000);
        for c in [0u64, 1, 3, 2, 2, 5, 4, 4, 9] {
            a.record(c, 0, 10);
        }
        assert_eq!(a.unique, 7);
        assert_eq!(a.duplicates, 2);
        assert_eq!(a.reordered, 2);
        assert_eq!(a.record(1000, 0, 0), Arrival::OutOfRange);
    }

    #[test]
    fn phases_start_afresh() {
        let mut a = StreamAccount::new(100);
        a.record(5, 0, 0);
        a.reset(100, 200);
        assert_eq!(a.record(5, 0, 0), Arrival::Duplicate);
        assert_eq!(a.stale, 1);
        assert_eq!(a.record(100, 0, 0), Arrival::InOrder);
        assert_eq!(a.unique, 1);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut a = StreamAccount::new(100);
        a.record(0, 0, 1000);
        a.record(1, 20_000, 21_160);
        assert!((a.jitter_ns - 10.0).abs() < 1e-9);
    }
}
