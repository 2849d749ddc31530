//! A flow: what a worker does with packets arriving on one local port. The destination of
//! a packet is the peer of the port it leaves from ([`PortState::peer`](super::table)), so
//! latching on one port redirects everything sent toward that peer.

use std::net::SocketAddr;

use crate::srtp::{Error as SrtpError, SrtpContext};

use super::tap::Tap;
use super::LocalPort;

/// How a direction's packets are transformed on the way in or out.
pub enum Transform {
    /// Plain RTP/RTCP.
    Plain,
    /// SRTP/SRTCP with this context (unprotect on ingress, protect on egress).
    Srtp(Box<SrtpContext>),
}

impl Transform {
    pub fn is_srtp(&self) -> bool {
        matches!(self, Transform::Srtp(_))
    }
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::Plain => f.write_str("Plain"),
            Transform::Srtp(c) => write!(f, "Srtp({})", c.suite()),
        }
    }
}

/// What the control plane installs on a local port.
#[derive(Debug)]
pub struct FlowSpec {
    /// Applied to packets arriving on the port (unprotect).
    pub ingress: Transform,
    /// Applied before sending (protect with the other leg's keys).
    pub egress: Transform,
    /// Port RTP leaves from.
    pub rtp_out: LocalPort,
    /// Port RTCP leaves from (the same as `rtp_out` toward an rtcp-mux peer).
    pub rtcp_out: LocalPort,
    /// Learn the peer of this port from the first authenticated packet.
    pub latch: bool,
    /// Drop packets whose source is not the port's peer (once known).
    pub strict_source: bool,
    /// RTP clock rate, for jitter (8000 when unknown).
    pub clock_rate: u32,
}

impl FlowSpec {
    /// A flow that relays unchanged to `out` (both RTP and RTCP), latching, not strict.
    pub fn plain(out: LocalPort) -> Self {
        FlowSpec {
            ingress: Transform::Plain,
            egress: Transform::Plain,
            rtp_out: out,
            rtcp_out: out,
            latch: true,
            strict_source: false,
            clock_rate: 8000,
        }
    }
}

/// Per-flow counters, kept in worker memory and copied out on query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub rtcp_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub auth_failures: u64,
    pub replays: u64,
    /// Other SRTP errors (unknown MKI, key expired, malformed).
    pub srtp_errors: u64,
    /// Egress protect failures.
    pub protect_errors: u64,
    /// Dropped because the egress port's peer is not known yet.
    pub no_destination: u64,
    /// Dropped by strict-source.
    pub wrong_source: u64,
    /// Times the port's peer was (re)learned.
    pub latches: u64,
    pub tap_drops: u64,
    /// RTP packets expected minus received, per RFC 3550 A.3 (may be negative on duplicates).
    pub rtp_lost: i64,
    /// Interarrival jitter (RFC 3550 A.8) in RTP timestamp units.
    pub jitter: u32,
    /// Milliseconds since the last packet arrived (or since the flow was installed).
    pub idle_ms: u64,
    /// Where the ingress RTP stream stands (none before the first accepted packet).
    pub ingress_index: Option<StreamIndex>,
}

/// The position of a flow's current ingress RTP stream: its SSRC and the highest packet
/// index accepted. For SRTP it is the receive context's index (RFC 3711 §3.3.1), so
/// `roc()` is the rollover counter a late joiner needs; for plain RTP, the extended
/// highest sequence number (RFC 3550 A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamIndex {
    pub ssrc: u32,
    pub index: u64,
}

impl StreamIndex {
    pub fn roc(&self) -> u32 {
        (self.index >> 16) as u32
    }

    pub fn seq(&self) -> u16 {
        self.index as u16
    }
}

/// RFC 3550 A.1/A.3/A.8 reception statistics for the flow's current SSRC.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RtpStats {
    ssrc: Option<u32>,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    transit: Option<i64>,
    jitter_q4: i64,
}

impl RtpStats {
    pub(crate) fn update(&mut self, ssrc: u32, seq: u16, ts: u32, arrival_units: u64) {
        if self.ssrc != Some(ssrc) {
            *self = RtpStats {
                ssrc: Some(ssrc),
                base_seq: seq as u32,
                max_seq: seq,
                ..Default::default()
            };
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta != 0 && delta < 0x8000 {
                if seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                self.max_seq = seq;
            }
        }
        self.received += 1;
        let transit = arrival_units as i64 - ts as i64;
        if let Some(prev) = self.transit {
            // Timestamps wrap at 2^32: take the difference modulo 2^32 as a signed value.
            let d = ((transit - prev) as i32).unsigned_abs() as i64;
            self.jitter_q4 += d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    pub(crate) fn lost(&self) -> i64 {
        if self.ssrc.is_none() {
            return 0;
        }
        let extended_max = self.cycles as i64 + self.max_seq as i64;
        let expected = extended_max - self.base_seq as i64 + 1;
        expected - self.received as i64
    }

    pub(crate) fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4) as u32
    }

    /// The current SSRC and its extended highest sequence number.
    pub(crate) fn current(&self) -> Option<(u32, u64)> {
        let ssrc = self.ssrc?;
        Some((ssrc, self.cycles as u64 + self.max_seq as u64))
    }
}

/// A flow as the worker holds it.
pub(crate) struct Flow {
    pub(crate) spec: FlowSpec,
    pub(crate) counters: FlowCounters,
    pub(crate) stats: RtpStats,
    pub(crate) taps: Vec<Tap>,
    /// Last time (worker clock, ms) a packet arrived; and whether idleness was reported.
    pub(crate) last_seen_ms: u64,
    pub(crate) idle_reported: bool,
}

impl Flow {
    pub(crate) fn new(spec: FlowSpec, now_ms: u64) -> Self {
        Flow {
            spec,
            counters: FlowCounters::default(),
            stats: RtpStats::default(),
            taps: Vec::new(),
            last_seen_ms: now_ms,
            idle_reported: false,
        }
    }

    pub(crate) fn snapshot(&self, now_ms: u64) -> FlowCounters {
        let mut c = self.counters;
        c.idle_ms = now_ms.saturating_sub(self.last_seen_ms);
        c.rtp_lost = self.stats.lost();
        c.jitter = self.stats.jitter();
        c.tap_drops = self.taps.iter().map(|t| t.dropped()).sum();
        c.ingress_index = self.ingress_index();
        c
    }

    /// Read on the worker when it answers a query (never on the packet path).
    fn ingress_index(&self) -> Option<StreamIndex> {
        let (ssrc, extended) = self.stats.current()?;
        let index = match &self.spec.ingress {
            Transform::Srtp(ctx) => ctx.rx_highest_index(ssrc)?,
            Transform::Plain => extended,
        };
        Some(StreamIndex { ssrc, index })
    }

    pub(crate) fn count_ingress_error(&mut self, e: SrtpError) {
        match e {
            SrtpError::AuthFailed => self.counters.auth_failures += 1,
            SrtpError::Replay | SrtpError::ReplayOld => self.counters.replays += 1,
            _ => self.counters.srtp_errors += 1,
        }
    }
}

/// The peer a port sends to, and how it was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Learned from traffic (true) or set by the control plane (false).
    pub latched: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_gaps_and_wraps() {
        let mut s = RtpStats::default();
        for (i, seq) in (65530u16..=65535).chain(0..10).enumerate() {
            if seq == 3 || seq == 65533 {
                continue; // lost
            }
            s.update(1, seq, i as u32 * 160, i as u64 * 160);
        }
        assert_eq!(s.lost(), 2);
        assert_eq!(s.jitter(), 0);
        // A new SSRC starts over.
        s.update(2, 100, 0, 0);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn ingress_index_follows_the_receive_context_across_a_rollover() {
        use crate::srtp::{MasterKey, Policy, Suite};
        let suite = Suite::AesCm128HmacSha1_80;
        let key = MasterKey::new(suite, &[1; 16], &[2; 14]).unwrap();
        let mut tx = SrtpContext::new(Policy::new(suite, key.clone())).unwrap();
        let rx = SrtpContext::new(Policy::new(suite, key)).unwrap();
        let mut flow = Flow::new(
            FlowSpec {
                ingress: Transform::Srtp(Box::new(rx)),
                ..FlowSpec::plain(LocalPort { iface: 0, port: 1 })
            },
            0,
        );
        assert_eq!(flow.snapshot(0).ingress_index, None);
        for (i, seq) in (65533u16..=65535).chain(0..3).enumerate() {
            let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0; 20]);
            let n = p.len();
            p.resize(n + 10, 0);
            let n = tx.protect(&mut p, n).unwrap();
            let Transform::Srtp(ctx) = &mut flow.spec.ingress else {
                unreachable!()
            };
            ctx.unprotect(&mut p[..n]).unwrap();
            flow.stats.update(7, seq, i as u32 * 160, i as u64 * 160);
        }
        let at = flow.snapshot(0).ingress_index.unwrap();
        assert_eq!((at.ssrc, at.roc(), at.seq()), (7, 1, 2));
        // Plain RTP: the extended highest sequence number.
        let mut plain = Flow::new(FlowSpec::plain(LocalPort { iface: 0, port: 1 }), 0);
        for (i, seq) in [65535u16, 0, 1].into_iter().enumerate() {
            plain.stats.update(9, seq, i as u32, i as u64);
        }
        let at = plain.snapshot(0).ingress_index.unwrap();
        assert_eq!((at.ssrc, at.index), (9, 0x1_0001));
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut s = RtpStats::default();
        // Packets 20 ms apart in timestamp, arriving alternately 0 and 80 units late.
        for i in 0..200u64 {
            let late = if i % 2 == 0 { 0 } else { 80 };
            s.update(7, i as u16, (i * 160) as u32, i * 160 + late);
        }
        // |D| = 80 every packet, so J converges to 80.
        assert!((75..=80).contains(&s.jitter()), "{}", s.jitter());
    }
}
