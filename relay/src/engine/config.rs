//! Engine configuration.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Which packet I/O backend workers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    /// epoll + `recvmmsg`/`sendmmsg` (the default).
    #[default]
    Batch,
    /// io_uring; falls back to `Batch` with a log line where the kernel refuses it.
    Uring,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "batch" => Ok(Backend::Batch),
            "uring" | "io_uring" => Ok(Backend::Uring),
            _ => Err(format!("unknown I/O backend {s:?} (batch or uring)")),
        }
    }
}

/// One address media ports are bound on, and what SDP advertises for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Name the control plane refers to (rtpengine's `direction` / interface names).
    pub name: String,
    pub bind: IpAddr,
    /// Address written into SDP (NAT); `bind` when `None`.
    pub advertise: Option<IpAddr>,
}

impl Interface {
    pub fn advertised(&self) -> IpAddr {
        self.advertise.unwrap_or(self.bind)
    }
}

/// Default receive coalescing window: small against a 20 ms packet interval and any
/// jitter buffer, large enough that a worker carrying a few thousand packets per second
/// wakes once for several of them.
pub const DEFAULT_COALESCE: Duration = Duration::from_micros(500);

/// Everything `Engine::start` needs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Worker threads; 0 means one per available core.
    pub workers: usize,
    /// Pin worker `i` to core `i` (modulo the cores available).
    pub pin: bool,
    pub interfaces: Vec<Interface>,
    /// Media port range, inclusive; shared out to workers in RTP/RTCP pairs.
    pub port_min: u16,
    pub port_max: u16,
    pub backend: Backend,
    /// A flow without packets for this long is reported idle to the control plane.
    pub idle_timeout: Duration,
    /// Capacity of each worker's command queue.
    pub command_queue: usize,
    /// Capacity of each worker's event queue (idle flows, slow-path packets).
    pub event_queue: usize,
    /// Socket buffer sizes requested for media sockets (0 keeps the kernel default).
    pub socket_buffer: usize,
    /// Receive coalescing window ([`PacketIo::set_coalesce`](super::io::PacketIo)): the
    /// most a packet waits for others to share its wake-up while traffic flows.
    pub coalesce: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 0,
            pin: true,
            interfaces: vec![Interface {
                name: "default".into(),
                bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                advertise: None,
            }],
            port_min: 30000,
            port_max: 39999,
            backend: Backend::Batch,
            idle_timeout: Duration::from_secs(60),
            command_queue: 1024,
            event_queue: 4096,
            socket_buffer: 1 << 20,
            coalesce: DEFAULT_COALESCE,
        }
    }
}
