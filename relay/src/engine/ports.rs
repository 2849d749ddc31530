//! Sharing the media port range out to workers and handing ports out.
//!
//! The range is cut into RTP/RTCP pairs (even, odd); pair `k` belongs to worker
//! `k % workers`, so both halves of a pair always live on the same worker.

use std::collections::VecDeque;

use super::LocalPort;

/// What one allocation unit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortShape {
    /// One port (rtcp-mux).
    Single,
    /// An even RTP port and the odd RTCP port above it.
    Pair,
}

#[derive(Default)]
struct WorkerPorts {
    /// Even base ports whose pair may be free (checked when taken).
    pairs: VecDeque<u16>,
    /// Ports that may be free while their partner is in use (checked when taken).
    singles: VecDeque<u16>,
    in_use: usize,
}

pub(crate) struct PortPool {
    workers: usize,
    port_min: u16,
    port_max: u16,
    /// Free lists per interface, per worker.
    free: Vec<Vec<WorkerPorts>>,
    /// Per interface, whether each port of the range is handed out.
    used: Vec<Vec<bool>>,
}

impl PortPool {
    pub(crate) fn new(ifaces: usize, workers: usize, port_min: u16, port_max: u16) -> Self {
        // Pairs start on an even port.
        let first = port_min + (port_min % 2);
        let mut free: Vec<Vec<WorkerPorts>> = (0..ifaces)
            .map(|_| (0..workers).map(|_| WorkerPorts::default()).collect())
            .collect();
        for per_iface in free.iter_mut() {
            let mut base = first as u32;
            while base < port_max as u32 {
                let w = ((base - first as u32) / 2) as usize % workers;
                per_iface[w].pairs.push_back(base as u16);
                base += 2;
            }
        }
        let range = (port_max - port_min) as usize + 1;
        PortPool {
            workers,
            port_min,
            port_max,
            free,
            used: vec![vec![false; range]; ifaces],
        }
    }

    pub(crate) fn pairs_per_worker(&self) -> usize {
        self.free
            .first()
            .map_or(0, |w| w.iter().map(|p| p.pairs.len()).min().unwrap_or(0))
    }

    /// The worker owning `port`, if it is in the pooled range.
    pub(crate) fn worker_of(&self, port: u16) -> Option<usize> {
        let first = self.port_min + (self.port_min % 2);
        (port >= first && port <= self.port_max)
            .then(|| ((port - first) / 2) as usize % self.workers)
    }

    fn is_free(&self, iface: usize, port: u16) -> bool {
        port >= self.port_min
            && port <= self.port_max
            && !self.used[iface][(port - self.port_min) as usize]
    }

    fn mark(&mut self, iface: usize, port: u16, used: bool) {
        self.used[iface][(port - self.port_min) as usize] = used;
    }

    /// The worker with the most free pairs on `iface`.
    pub(crate) fn least_loaded(&self, iface: usize) -> usize {
        (0..self.workers)
            .min_by_key(|w| self.free[iface][*w].in_use)
            .unwrap_or(0)
    }

    /// Takes a unit of `shape` from worker `w`; returns its first port.
    pub(crate) fn take(&mut self, iface: usize, w: usize, shape: PortShape) -> Option<u16> {
        if shape == PortShape::Single {
            while let Some(p) = self.free[iface][w].singles.pop_front() {
                if self.is_free(iface, p) {
                    self.mark(iface, p, true);
                    self.free[iface][w].in_use += 1;
                    return Some(p);
                }
            }
        }
        while let Some(base) = self.free[iface][w].pairs.pop_front() {
            if self.is_free(iface, base) && self.is_free(iface, base + 1) {
                self.mark(iface, base, true);
                if shape == PortShape::Pair {
                    self.mark(iface, base + 1, true);
                    self.free[iface][w].in_use += 2;
                } else {
                    self.free[iface][w].singles.push_back(base + 1);
                    self.free[iface][w].in_use += 1;
                }
                return Some(base);
            }
        }
        None
    }

    /// Returns a port; a pair whose halves are both free again becomes a pair again.
    /// Ports are queued at the back so a just-freed port is reused last.
    pub(crate) fn give_back(&mut self, l: LocalPort) {
        let (iface, port) = (l.iface as usize, l.port);
        let Some(w) = self.worker_of(port) else {
            return;
        };
        if iface >= self.used.len() || self.is_free(iface, port) {
            return;
        }
        self.mark(iface, port, false);
        let wp = &mut self.free[iface][w];
        wp.in_use = wp.in_use.saturating_sub(1);
        let base = port & !1;
        let partner = port ^ 1;
        if self.is_free(iface, partner) && partner <= self.port_max && base >= self.port_min {
            self.free[iface][w].pairs.push_back(base);
        } else {
            self.free[iface][w].singles.push_back(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(port: u16) -> LocalPort {
        LocalPort { iface: 0, port }
    }

    #[test]
    fn pairs_are_even_odd_and_owned_by_one_worker() {
        let mut p = PortPool::new(1, 2, 30000, 30011);
        assert_eq!(p.pairs_per_worker(), 3);
        let a = p.take(0, 0, PortShape::Pair).unwrap();
        assert_eq!(a % 2, 0);
        assert_eq!(p.worker_of(a), Some(0));
        assert_eq!(p.worker_of(a + 1), Some(0));
        let b = p.take(0, 1, PortShape::Pair).unwrap();
        assert_eq!(p.worker_of(b), Some(1));
        assert_ne!(a, b);
    }

    #[test]
    fn singles_split_pairs_and_pairs_reform() {
        let mut p = PortPool::new(1, 1, 30000, 30003);
        let s1 = p.take(0, 0, PortShape::Single).unwrap();
        let s2 = p.take(0, 0, PortShape::Single).unwrap();
        assert_eq!(s2, s1 + 1, "the odd half serves the next single");
        let pair = p.take(0, 0, PortShape::Pair).unwrap();
        assert_eq!(p.take(0, 0, PortShape::Pair), None);
        assert_eq!(p.take(0, 0, PortShape::Single), None);
        p.give_back(lp(s1));
        assert_eq!(
            p.take(0, 0, PortShape::Pair),
            None,
            "half a pair is not a pair"
        );
        p.give_back(lp(s2));
        assert_eq!(p.take(0, 0, PortShape::Pair), Some(s1));
        p.give_back(lp(pair));
        p.give_back(lp(pair + 1));
        p.give_back(lp(pair + 1)); // double free is ignored
        assert_eq!(p.take(0, 0, PortShape::Pair), Some(pair));
        assert_eq!(p.take(0, 0, PortShape::Single), None);
    }

    #[test]
    fn odd_start_and_out_of_range() {
        let p = PortPool::new(1, 1, 30001, 30006);
        assert_eq!(p.worker_of(30001), None);
        assert_eq!(p.worker_of(30002), Some(0));
        assert_eq!(p.pairs_per_worker(), 2);
    }
}
