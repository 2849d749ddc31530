//! Failed authentications per client address: after `LIMIT` failures within `WINDOW`, the
//! address is refused (429) until the window that began with its first failure is over, so
//! SIP passwords and the admin token cannot be guessed at line rate. A success does not
//! clear the count (an attacker holding one account must not reset it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const LIMIT: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; when full, expired entries are dropped, and failures from
/// further addresses are not tracked until room is made.
const MAX_TRACKED: usize = 4096;

#[derive(Default)]
pub struct AuthFailures {
    by_ip: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthFailures {
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .is_some_and(|(n, since)| *n >= LIMIT && now.duration_since(*since) < WINDOW)
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&ip) {
            map.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if map.len() >= MAX_TRACKED {
                return;
            }
        }
        let e = map.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= WINDOW {
            *e = (0, now);
        }
        e.0 = e.0.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let f = AuthFailures::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..LIMIT - 1 {
            f.failed(a, t);
        }
        assert!(!f.blocked(a, t));
        f.failed(a, t);
        assert!(f.blocked(a, t) && !f.blocked(b, t));
        assert!(f.blocked(a, t + WINDOW - Duration::from_secs(1)));
        assert!(!f.blocked(a, t + WINDOW));
        // A new window starts counting from zero.
        f.failed(a, t + WINDOW);
        assert!(!f.blocked(a, t + WINDOW));
    }

    #[test]
    fn tracking_is_bounded() {
        let f = AuthFailures::default();
        let t = Instant::now();
        for i in 0..MAX_TRACKED as u32 + 10 {
            f.failed(IpAddr::from(i.to_be_bytes()), t);
        }
        assert_eq!(f.by_ip.lock().unwrap().len(), MAX_TRACKED);
        // Once the entries expire, new addresses are tracked again.
        let later = t + WINDOW;
        let fresh: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..LIMIT {
            f.failed(fresh, later);
        }
        assert!(f.blocked(fresh, later));
    }
}
