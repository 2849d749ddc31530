//! Retransmission detection for ng requests.
//!
//! Kamailio resends a request that got no reply in time with the same cookie (by default
//! up to 5 times, 1 s apart), so a request may arrive again while or after it is being
//! processed. Processing it twice could allocate a second set of ports or answer with
//! different keys; instead the first reply is remembered and sent again.
//!
//! rtpengine keys its cache on the cookie alone and keeps replies 30 to 60 seconds. Here
//! the key is the cookie together with the sender's address, so two proxies that happen
//! to pick the same cookie (Kamailio's is `<server_id>_<pid>_<seq>`, which repeats across
//! containers) never get each other's replies. A request from the same sender with a
//! known cookie but a different payload is answered from the cache as rtpengine does,
//! and reported separately as a cookie reuse. While the first copy is still being
//! processed, later copies are dropped: the first reply will answer them.
//!
//! Memory is bounded by entry count and by bytes; the oldest entries go first.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// Bookkeeping bytes counted per entry on top of its cookie and reply.
const ENTRY_OVERHEAD: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    peer: SocketAddr,
    cookie: Vec<u8>,
}

struct Entry {
    seq: u64,
    inserted: Instant,
    payload_hash: u64,
    /// Replies hold SDP bodies with srtpgate's SRTP keys: wiped when evicted.
    reply: Zeroizing<Vec<u8>>,
}

/// What [`RequestCache::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup<'a> {
    /// The same request again: send these reply bytes (cookie included) again.
    Retransmission(&'a [u8]),
    /// A known cookie from the same sender with another payload: rtpengine answers it
    /// from the cache by cookie; so does srtpgate.
    CookieReuse(&'a [u8]),
    /// The first copy is still being processed: drop this one.
    InFlight,
    /// Not seen: now marked in flight. Call [`RequestCache::complete`] with the reply,
    /// or [`RequestCache::abandon`].
    New,
}

/// Replies to recent requests, keyed by sender and cookie.
pub struct RequestCache {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    entries: HashMap<Key, Entry>,
    order: VecDeque<(Key, u64)>,
    in_flight: HashMap<Key, Instant>,
    bytes: usize,
    seq: u64,
}

impl RequestCache {
    /// Replies are kept for `ttl`, at most `max_entries` of them and `max_bytes` in all.
    pub fn new(ttl: Duration, max_entries: usize, max_bytes: usize) -> RequestCache {
        RequestCache {
            ttl,
            max_entries: max_entries.max(1),
            max_bytes,
            entries: HashMap::new(),
            order: VecDeque::new(),
            in_flight: HashMap::new(),
            bytes: 0,
            seq: 0,
        }
    }

    /// Looks a request up; a request not seen before is marked in flight.
    pub fn lookup(
        &mut self,
        peer: SocketAddr,
        cookie: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> CacheLookup<'_> {
        self.expire(now);
        let key = Key {
            peer,
            cookie: cookie.to_vec(),
        };
        if self.entries.contains_key(&key) {
            let hash = payload_hash(payload);
            return match self.entries.get(&key) {
                Some(e) if e.payload_hash == hash => CacheLookup::Retransmission(&e.reply),
                Some(e) => CacheLookup::CookieReuse(&e.reply),
                None => CacheLookup::New,
            };
        }
        if self.in_flight.contains_key(&key) {
            return CacheLookup::InFlight;
        }
        if self.in_flight.len() < self.max_entries {
            self.in_flight.insert(key, now);
        }
        CacheLookup::New
    }

    /// Stores the reply (cookie included) to a request that [`lookup`](Self::lookup)
    /// reported as new, and clears its in-flight mark.
    pub fn complete(
        &mut self,
        peer: SocketAddr,
        cookie: &[u8],
        payload: &[u8],
        reply: Vec<u8>,
        now: Instant,
    ) {
        self.complete_hashed(peer, cookie, payload_hash(payload), reply, now);
    }

    pub(crate) fn complete_hashed(
        &mut self,
        peer: SocketAddr,
        cookie: &[u8],
        payload_hash: u64,
        reply: Vec<u8>,
        now: Instant,
    ) {
        let key = Key {
            peer,
            cookie: cookie.to_vec(),
        };
        self.in_flight.remove(&key);
        let size = entry_size(&key, reply.len());
        if size > self.max_bytes {
            return;
        }
        self.remove(&key);
        while self.entries.len() >= self.max_entries || self.bytes + size > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        self.seq += 1;
        self.bytes += size;
        self.order.push_back((key.clone(), self.seq));
        self.entries.insert(
            key,
            Entry {
                seq: self.seq,
                inserted: now,
                payload_hash,
                reply: Zeroizing::new(reply),
            },
        );
    }

    /// Clears the in-flight mark of a request that will get no cached reply.
    pub fn abandon(&mut self, peer: SocketAddr, cookie: &[u8]) {
        self.in_flight.remove(&Key {
            peer,
            cookie: cookie.to_vec(),
        });
    }

    /// Cached replies.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes accounted to cached replies.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Requests marked in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((key, seq)) = self.order.front() {
            let stale = match self.entries.get(key) {
                Some(e) if e.seq == *seq => now.saturating_duration_since(e.inserted) >= self.ttl,
                _ => true, // replaced or removed: the queue slot is dead
            };
            if !stale {
                break;
            }
            self.evict_oldest();
        }
        let ttl = self.ttl;
        self.in_flight
            .retain(|_, since| now.saturating_duration_since(*since) < ttl);
    }

    /// Drops the oldest queue slot (and its entry, if still current).
    fn evict_oldest(&mut self) -> bool {
        let Some((key, seq)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&key).is_some_and(|e| e.seq == seq) {
            self.remove(&key);
        }
        true
    }

    fn remove(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= entry_size(key, e.reply.len());
        }
    }
}

fn entry_size(key: &Key, reply_len: usize) -> usize {
    ENTRY_OVERHEAD + key.cookie.len() + reply_len
}

/// Tells a retransmission from a cookie reuse. Not a security boundary: both get the
/// cached reply; only the counters differ.
pub(crate) fn payload_hash(payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn retransmission_in_flight_and_reuse() {
        let t0 = Instant::now();
        let mut c = RequestCache::new(Duration::from_secs(30), 16, 1 << 20);
        assert_eq!(c.lookup(peer(1), b"a", b"p", t0), CacheLookup::New);
        assert_eq!(c.lookup(peer(1), b"a", b"p", t0), CacheLookup::InFlight);
        // Another sender with the same cookie is another request.
        assert_eq!(c.lookup(peer(2), b"a", b"p", t0), CacheLookup::New);
        c.complete(peer(1), b"a", b"p", b"a reply".to_vec(), t0);
        assert_eq!(
            c.lookup(peer(1), b"a", b"p", t0 + Duration::from_secs(1)),
            CacheLookup::Retransmission(b"a reply")
        );
        assert_eq!(
            c.lookup(peer(1), b"a", b"other", t0),
            CacheLookup::CookieReuse(b"a reply")
        );
        c.abandon(peer(2), b"a");
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn entries_expire() {
        let t0 = Instant::now();
        let mut c = RequestCache::new(Duration::from_secs(30), 16, 1 << 20);
        c.lookup(peer(1), b"a", b"p", t0);
        c.complete(peer(1), b"a", b"p", b"r".to_vec(), t0);
        let later = t0 + Duration::from_secs(29);
        assert!(matches!(
            c.lookup(peer(1), b"a", b"p", later),
            CacheLookup::Retransmission(_)
        ));
        let expired = t0 + Duration::from_secs(30);
        assert_eq!(c.lookup(peer(1), b"a", b"p", expired), CacheLookup::New);
        assert_eq!(c.len(), 0);
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn in_flight_marks_expire() {
        let t0 = Instant::now();
        let mut c = RequestCache::new(Duration::from_secs(30), 16, 1 << 20);
        assert_eq!(c.lookup(peer(1), b"a", b"p", t0), CacheLookup::New);
        let later = t0 + Duration::from_secs(31);
        assert_eq!(c.lookup(peer(1), b"a", b"p", later), CacheLookup::New);
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let t0 = Instant::now();
        let mut c = RequestCache::new(Duration::from_secs(30), 3, 1 << 20);
        for i in 0..10u8 {
            c.lookup(peer(1), &[i], b"p", t0);
            c.complete(peer(1), &[i], b"p", vec![i; 10], t0);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.lookup(peer(1), &[0], b"p", t0), CacheLookup::New);
        assert!(matches!(
            c.lookup(peer(1), &[9], b"p", t0),
            CacheLookup::Retransmission(_)
        ));

        let mut c = RequestCache::new(Duration::from_secs(30), 1000, 3 * (ENTRY_OVERHEAD + 101));
        for i in 0..10u8 {
            c.complete(peer(1), &[i], b"p", vec![i; 100], t0);
            assert!(c.bytes() <= 3 * (ENTRY_OVERHEAD + 101));
        }
        assert_eq!(c.len(), 3);
        // A reply larger than the whole budget is not kept.
        c.complete(peer(1), b"big", b"p", vec![0; 10_000], t0);
        assert_eq!(c.len(), 3);
    }
}
