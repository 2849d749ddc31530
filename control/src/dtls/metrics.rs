//! Counters of the DTLS-SRTP and ICE-lite slow path, rendered with the other metrics.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to punted STUN and DTLS datagrams and to handshakes.
#[derive(Debug, Default)]
pub struct SecurityMetrics {
    pub dtls_handshakes: AtomicU64,
    pub dtls_fingerprint_mismatch: AtomicU64,
    pub dtls_timeouts: AtomicU64,
    pub dtls_failures: AtomicU64,
    pub dtls_unexpected_source: AtomicU64,
    pub dtls_dropped: AtomicU64,
    pub stun_requests: AtomicU64,
    pub stun_unauthorized: AtomicU64,
    pub stun_malformed: AtomicU64,
    pub ice_consent_lost: AtomicU64,
    pub rate_limited: AtomicU64,
    pub unmatched: AtomicU64,
}

impl SecurityMetrics {
    /// (metric name, help, value) of every counter.
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 12] {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            (
                "dtls_handshakes_total",
                "DTLS-SRTP handshakes completed.",
                g(&self.dtls_handshakes),
            ),
            (
                "dtls_fingerprint_mismatch_total",
                "DTLS handshakes failed: peer certificate does not match the SDP fingerprint.",
                g(&self.dtls_fingerprint_mismatch),
            ),
            (
                "dtls_handshake_timeouts_total",
                "DTLS handshakes that did not complete in time.",
                g(&self.dtls_timeouts),
            ),
            (
                "dtls_handshake_failures_total",
                "DTLS handshakes failed for other reasons.",
                g(&self.dtls_failures),
            ),
            (
                "dtls_unexpected_source_total",
                "DTLS datagrams from an address other than the leg's peer.",
                g(&self.dtls_unexpected_source),
            ),
            (
                "dtls_dropped_total",
                "DTLS datagrams dropped (malformed, renegotiation, after failure, RTCP component).",
                g(&self.dtls_dropped),
            ),
            (
                "stun_requests_total",
                "Valid ICE connectivity checks answered.",
                g(&self.stun_requests),
            ),
            (
                "stun_unauthorized_total",
                "STUN requests with a bad MESSAGE-INTEGRITY or USERNAME, rejected.",
                g(&self.stun_unauthorized),
            ),
            (
                "stun_malformed_total",
                "STUN datagrams that could not be parsed.",
                g(&self.stun_malformed),
            ),
            (
                "ice_consent_lost_total",
                "ICE legs whose consent expired (no valid check for 30 s).",
                g(&self.ice_consent_lost),
            ),
            (
                "slow_path_rate_limited_total",
                "STUN/DTLS datagrams over a leg's rate limit, dropped.",
                g(&self.rate_limited),
            ),
            (
                "slow_path_unmatched_total",
                "STUN/DTLS datagrams on ports without an ICE or DTLS leg, dropped.",
                g(&self.unmatched),
            ),
        ]
    }

    /// The Prometheus text of these counters.
    pub fn render(&self, out: &mut String) {
        for (name, help, v) in self.counters() {
            let _ = writeln!(
                out,
                "# HELP srtpgate_{name} {help}\n# TYPE srtpgate_{name} counter\nsrtpgate_{name} {v}"
            );
        }
    }
}
