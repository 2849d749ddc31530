//! Sliding replay window over 48-bit SRTP or 31-bit SRTCP indices (RFC 3711 §3.3.2).

use super::Error;

/// Smallest and largest window sizes accepted (libsrtp accepts the same range).
pub const MIN_WINDOW: u64 = 64;
pub const MAX_WINDOW: u64 = 32768;
/// The default window: 128 packets.
pub const DEFAULT_WINDOW: u64 = 128;

/// Which of the last `size` indices below the highest one have been seen. The bitmap is
/// circular: bit `i % bits` stands for index `i`, so sliding forward only clears bits.
#[derive(Clone)]
pub struct ReplayWindow {
    bits: Box<[u64]>,
    size: u64,
    top: Option<u64>,
}

impl ReplayWindow {
    /// A window of `size` packets (`MIN_WINDOW..=MAX_WINDOW`).
    pub fn new(size: u64) -> Result<Self, Error> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&size) {
            return Err(Error::InvalidPolicy(
                "replay window must be 64..=32768 packets",
            ));
        }
        let words = size.div_ceil(64) as usize;
        Ok(ReplayWindow {
            bits: vec![0; words].into_boxed_slice(),
            size,
            top: None,
        })
    }

    /// The highest index accepted so far.
    pub fn top(&self) -> Option<u64> {
        self.top
    }

    fn nbits(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn bit(&self, index: u64) -> bool {
        let b = index % self.nbits();
        self.bits[(b / 64) as usize] & (1 << (b % 64)) != 0
    }

    fn set(&mut self, index: u64, on: bool) {
        let b = index % self.nbits();
        let w = &mut self.bits[(b / 64) as usize];
        if on {
            *w |= 1 << (b % 64);
        } else {
            *w &= !(1 << (b % 64));
        }
    }

    /// Whether `index` may be accepted; does not change the window.
    pub fn check(&self, index: u64) -> Result<(), Error> {
        let Some(top) = self.top else { return Ok(()) };
        if index > top {
            return Ok(());
        }
        if top - index >= self.size {
            return Err(Error::ReplayOld);
        }
        if self.bit(index) {
            return Err(Error::Replay);
        }
        Ok(())
    }

    /// Records `index` as seen (after [`check`](Self::check) and authentication passed).
    pub fn accept(&mut self, index: u64) {
        match self.top {
            Some(top) if index <= top => {}
            Some(top) => {
                if index - top >= self.nbits() {
                    self.bits.iter_mut().for_each(|w| *w = 0);
                } else {
                    for i in top + 1..index {
                        self.set(i, false);
                    }
                }
                self.top = Some(index);
            }
            None => {
                self.bits.iter_mut().for_each(|w| *w = 0);
                self.top = Some(index);
            }
        }
        self.set(index, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_new_rejects_seen_and_old() {
        let mut w = ReplayWindow::new(128).unwrap();
        w.check(1000).unwrap();
        w.accept(1000);
        assert_eq!(w.check(1000), Err(Error::Replay));
        w.check(999).unwrap();
        w.accept(999);
        assert_eq!(w.check(999), Err(Error::Replay));
        w.check(1000 - 127).unwrap();
        assert_eq!(w.check(1000 - 128), Err(Error::ReplayOld));
        w.accept(1200);
        assert_eq!(w.check(1000), Err(Error::ReplayOld));
        w.check(1199).unwrap();
        assert_eq!(w.check(1200), Err(Error::Replay));
    }

    #[test]
    fn sliding_clears_stale_bits() {
        let mut w = ReplayWindow::new(64).unwrap();
        for i in 0..64 {
            w.accept(i);
        }
        w.accept(64 + 10);
        // 64..74 were never seen even though their circular bits were set for 0..10.
        for i in 64..74 {
            w.check(i).unwrap();
        }
        w.accept(100_000);
        w.check(100_000 - 5).unwrap();
    }

    #[test]
    fn size_limits() {
        assert!(ReplayWindow::new(63).is_err());
        assert!(ReplayWindow::new(32769).is_err());
        assert!(ReplayWindow::new(100).is_ok());
    }
}
