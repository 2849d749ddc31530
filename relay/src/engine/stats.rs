//! Per-worker counters: written by the worker only (relaxed atomics, once per batch), read
//! by anyone at any time without stopping it.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! worker_stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters of one worker.
        #[derive(Debug, Default)]
        pub struct WorkerStats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A copy of [`WorkerStats`] at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct WorkerStatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl WorkerStats {
            pub fn snapshot(&self) -> WorkerStatsSnapshot {
                WorkerStatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl WorkerStatsSnapshot {
            /// Adds this snapshot into the live counters (the worker's per-batch flush).
            pub(crate) fn flush_into(&mut self, live: &WorkerStats) {
                $(if self.$name != 0 {
                    live.$name.fetch_add(self.$name, Ordering::Relaxed);
                    self.$name = 0;
                })*
            }
        }
    };
}

worker_stats! {
    /// Datagrams received.
    packets_received,
    /// Datagrams handed to the kernel for sending.
    packets_sent,
    /// Sends the kernel refused or that found a full socket buffer.
    send_failures,
    /// Receive batches processed.
    batches,
    /// RTP/RTCP on an attached port with no flow installed.
    unknown_port,
    /// Datagrams that are neither RTP/RTCP nor slow-path (RFC 7983), or too short.
    malformed,
    /// Datagrams longer than the largest accepted.
    oversized,
    /// STUN/DTLS handed to the control plane.
    slow_path,
    /// STUN/DTLS dropped because the event queue was full.
    slow_path_dropped,
    /// Nanoseconds spent processing batches (not waiting): the worker's load.
    busy_ns,
    /// Commands applied.
    commands,
    /// SRTP/SRTCP packets that failed authentication.
    auth_failures,
    /// SRTP/SRTCP packets rejected as replays (or older than the window).
    replays,
    /// Other SRTP errors on ingress (unknown MKI, expired key, malformed) and protect failures.
    srtp_errors,
    /// Packets dropped by strict-source.
    wrong_source,
    /// Packets dropped because the egress peer is not known yet.
    no_destination,
}
