//! The SRTP cryptographic context: policy, master keys and per-SSRC stream state.
//! Packet transforms live in `rtp.rs` and `rtcp.rs`.

use super::kdf::SessionKeys;
use super::replay::{ReplayWindow, DEFAULT_WINDOW};
use super::{Error, MasterKey, Mki, Suite};

/// Largest SRTP trailer: 4-byte MKI + 16-byte tag.
pub const MAX_SRTP_TRAILER: usize = 4 + 16;
/// Largest SRTCP trailer: E flag and index + 4-byte MKI + 16-byte tag.
pub const MAX_SRTCP_TRAILER: usize = 4 + 4 + 16;
/// Default number of SSRCs tracked per direction before the least recently used is evicted.
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// What an SRTP context does: the suite, one or more master keys, and the SDES session
/// parameters (RFC 4568 §6.3).
#[derive(Clone, Debug)]
pub struct Policy {
    pub suite: Suite,
    /// Master keys. With more than one, each must carry an MKI of the same length.
    pub keys: Vec<MasterKey>,
    /// Key derivation rate: 0 (derive once) or a power of two up to 2^24 (RFC 4568 KDR).
    pub kdr: u64,
    /// Replay window size in packets, for SRTP and SRTCP (64..=32768).
    pub replay_window: u64,
    pub unencrypted_srtp: bool,
    pub unencrypted_srtcp: bool,
    pub unauthenticated_srtp: bool,
    /// SSRCs tracked per direction before the least recently used one is evicted.
    pub max_streams: usize,
}

impl Policy {
    /// A policy with one master key and default parameters.
    pub fn new(suite: Suite, key: MasterKey) -> Self {
        Policy {
            suite,
            keys: vec![key],
            kdr: 0,
            replay_window: DEFAULT_WINDOW,
            unencrypted_srtp: false,
            unencrypted_srtcp: false,
            unauthenticated_srtp: false,
            max_streams: DEFAULT_MAX_STREAMS,
        }
    }

    fn validate(&self) -> Result<usize, Error> {
        let first = self
            .keys
            .first()
            .ok_or(Error::InvalidPolicy("no master key"))?;
        let mki_len = first.mki().map_or(0, |m| m.len());
        for k in &self.keys {
            if k.key().len() != self.suite.key_len() || k.salt().len() != self.suite.salt_len() {
                return Err(Error::InvalidPolicy(
                    "master key length does not match the suite",
                ));
            }
            if k.mki().map_or(0, |m| m.len()) != mki_len {
                return Err(Error::InvalidPolicy(
                    "all master keys need MKIs of one length",
                ));
            }
        }
        if self.keys.len() > 1 && mki_len == 0 {
            return Err(Error::InvalidPolicy("several master keys need MKIs"));
        }
        if self.kdr != 0 && (!self.kdr.is_power_of_two() || self.kdr > 1 << 24) {
            return Err(Error::InvalidPolicy(
                "key derivation rate must be 0 or 2^0..2^24",
            ));
        }
        if self.unauthenticated_srtp && self.suite.cipher() == super::CipherKind::AesGcm {
            return Err(Error::InvalidPolicy(
                "UNAUTHENTICATED_SRTP cannot be used with AEAD",
            ));
        }
        if self.max_streams == 0 {
            return Err(Error::InvalidPolicy("max_streams must be at least 1"));
        }
        ReplayWindow::new(self.replay_window)?;
        Ok(mki_len)
    }
}

/// One master key and what has been derived from it.
pub(crate) struct KeySlot {
    pub(crate) master: MasterKey,
    /// Session keys for r = 0; with a zero key derivation rate the only ones ever used.
    pub(crate) rtp: SessionKeys,
    pub(crate) rtcp: SessionKeys,
    /// Packets protected or unprotected with this key (SRTP and SRTCP).
    pub(crate) used: u64,
}

impl KeySlot {
    pub(crate) fn check_lifetime(&self) -> Result<(), Error> {
        match self.master.lifetime() {
            Some(l) if self.used >= l => Err(Error::KeyExpired),
            _ => Ok(()),
        }
    }
}

/// Session keys cached for a non-zero key derivation rate: (key slot, r, keys).
pub(crate) type KeyCache = Option<(usize, u64, SessionKeys)>;

/// State of one SSRC in one direction.
pub(crate) struct Stream {
    pub(crate) ssrc: u32,
    pub(crate) last_used: u64,
    /// SRTP indices seen (receiver) or used (sender, to refuse keystream reuse).
    pub(crate) rtp: ReplayWindow,
    /// SRTCP indices seen (receiver only).
    pub(crate) rtcp: ReplayWindow,
    /// Next SRTCP index to send (sender only).
    pub(crate) rtcp_next: u32,
    pub(crate) rtp_keys: KeyCache,
    pub(crate) rtcp_keys: KeyCache,
}

/// The per-SSRC streams of one direction, bounded, least recently used evicted first.
pub(crate) struct Streams {
    pub(crate) list: Vec<Stream>,
    max: usize,
    window: u64,
    tick: u64,
}

impl Streams {
    fn new(max: usize, window: u64) -> Self {
        Streams {
            list: Vec::new(),
            max,
            window,
            tick: 0,
        }
    }

    pub(crate) fn find(&mut self, ssrc: u32) -> Option<usize> {
        self.tick += 1;
        let pos = self.list.iter().position(|s| s.ssrc == ssrc)?;
        self.list[pos].last_used = self.tick;
        Some(pos)
    }

    /// Adds a stream for `ssrc`, evicting the least recently used one when full.
    pub(crate) fn insert(&mut self, ssrc: u32) -> usize {
        self.tick += 1;
        let stream = Stream {
            ssrc,
            last_used: self.tick,
            // The window size was validated with the policy.
            rtp: ReplayWindow::new(self.window).unwrap_or_else(|_| unreachable!()),
            rtcp: ReplayWindow::new(self.window).unwrap_or_else(|_| unreachable!()),
            rtcp_next: 0,
            rtp_keys: None,
            rtcp_keys: None,
        };
        if self.list.len() < self.max {
            self.list.push(stream);
            return self.list.len() - 1;
        }
        let lru = self
            .list
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.last_used)
            .map_or(0, |(i, _)| i);
        self.list[lru] = stream;
        lru
    }

    /// A new stream for `ssrc`, replacing any state it had.
    pub(crate) fn insert_fresh(&mut self, ssrc: u32) -> usize {
        if let Some(pos) = self.list.iter().position(|s| s.ssrc == ssrc) {
            self.list.swap_remove(pos);
        }
        self.insert(ssrc)
    }

    pub(crate) fn find_or_insert(&mut self, ssrc: u32) -> usize {
        match self.find(ssrc) {
            Some(i) => i,
            None => self.insert(ssrc),
        }
    }
}

/// An SRTP/SRTCP cryptographic context for any number of SSRCs: protects outgoing and
/// unprotects incoming packets in place, without allocating once a stream is known.
pub struct SrtpContext {
    pub(crate) suite: Suite,
    pub(crate) kdr: u64,
    pub(crate) unencrypted_srtp: bool,
    pub(crate) unencrypted_srtcp: bool,
    pub(crate) unauthenticated_srtp: bool,
    pub(crate) mki_len: usize,
    pub(crate) slots: Vec<KeySlot>,
    pub(crate) active: usize,
    pub(crate) tx: Streams,
    pub(crate) rx: Streams,
    /// Scratch space for SRTCP AEAD with UNENCRYPTED_SRTCP, where the whole packet is AAD.
    pub(crate) scratch: Vec<u8>,
}

impl SrtpContext {
    pub fn new(policy: Policy) -> Result<Self, Error> {
        let mki_len = policy.validate()?;
        let mut slots = Vec::with_capacity(policy.keys.len());
        for master in policy.keys {
            slots.push(KeySlot {
                rtp: SessionKeys::derive(policy.suite, &master, false, 0)?,
                rtcp: SessionKeys::derive(policy.suite, &master, true, 0)?,
                master,
                used: 0,
            });
        }
        Ok(SrtpContext {
            suite: policy.suite,
            kdr: policy.kdr,
            unencrypted_srtp: policy.unencrypted_srtp,
            unencrypted_srtcp: policy.unencrypted_srtcp,
            unauthenticated_srtp: policy.unauthenticated_srtp,
            mki_len,
            slots,
            active: 0,
            tx: Streams::new(policy.max_streams, policy.replay_window),
            rx: Streams::new(policy.max_streams, policy.replay_window),
            scratch: Vec::new(),
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Chooses the master key that `protect` uses, by MKI.
    pub fn set_active_mki(&mut self, mki: Mki) -> Result<(), Error> {
        self.active = self
            .slots
            .iter()
            .position(|s| s.master.mki() == Some(mki))
            .ok_or(Error::UnknownMki)?;
        Ok(())
    }

    /// Tells the receiving side that the next SRTP packet of `ssrc` with sequence number
    /// `seq` has rollover counter `roc` (RFC 3711 §3.3.1: a receiver that joins a session
    /// late learns the ROC out of band). Forgets anything seen of `ssrc` before; later
    /// packets are indexed from there as usual.
    pub fn set_rx_roc(&mut self, ssrc: u32, roc: u32, seq: u16) {
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let si = self.rx.insert_fresh(ssrc);
        if index > 0 {
            self.rx.list[si].rtp.accept(index - 1);
        }
    }

    /// Bytes `protect` appends to an RTP packet.
    /// The highest SRTP packet index received and accepted for `ssrc`, if any; its
    /// rollover counter is `index >> 16` (RFC 3711 §3.3.1). Reading it neither allocates
    /// nor counts as use of the stream.
    pub fn rx_highest_index(&self, ssrc: u32) -> Option<u64> {
        self.rx.list.iter().find(|s| s.ssrc == ssrc)?.rtp.top()
    }

    pub fn srtp_overhead(&self) -> usize {
        self.mki_len + self.rtp_tag_len()
    }

    /// Bytes `protect_rtcp` appends to an RTCP packet.
    pub fn srtcp_overhead(&self) -> usize {
        4 + self.mki_len + self.suite.rtcp_tag_len()
    }

    pub(crate) fn rtp_tag_len(&self) -> usize {
        if self.unauthenticated_srtp {
            0
        } else {
            self.suite.rtp_tag_len()
        }
    }

    /// The key slot named by the MKI at `mki_at` in `pkt`, or the active one without MKIs.
    pub(crate) fn slot_for(&self, pkt: &[u8], mki_at: usize) -> Result<usize, Error> {
        if self.mki_len == 0 {
            return Ok(self.active);
        }
        let mki = &pkt[mki_at..mki_at + self.mki_len];
        self.slots
            .iter()
            .position(|s| s.master.mki().is_some_and(|m| m.as_bytes() == mki))
            .ok_or(Error::UnknownMki)
    }

    /// Session keys for `slot` at epoch `index / kdr`, cached in `cache` when kdr != 0.
    pub(crate) fn session_keys<'a>(
        suite: Suite,
        kdr: u64,
        slot: &'a KeySlot,
        slot_index: usize,
        rtcp: bool,
        index: u64,
        cache: &'a mut KeyCache,
    ) -> Result<&'a SessionKeys, Error> {
        if kdr == 0 {
            return Ok(if rtcp { &slot.rtcp } else { &slot.rtp });
        }
        let r = index / kdr;
        let fresh = !matches!(cache, Some((s, cr, _)) if *s == slot_index && *cr == r);
        if fresh {
            *cache = Some((
                slot_index,
                r,
                SessionKeys::derive(suite, &slot.master, rtcp, r)?,
            ));
        }
        match cache {
            Some((_, _, k)) => Ok(k),
            None => unreachable!("cache filled above"),
        }
    }
}
