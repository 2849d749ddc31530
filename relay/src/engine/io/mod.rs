//! Packet I/O backends behind one trait. A backend owns the worker's sockets and moves
//! datagrams between them and a [`Batch`] of fixed buffers; the worker transforms packets in
//! place between `recv` and `send`. Nothing above this trait touches a socket, so a backend
//! that reads raw frames from a ring (AF_XDP) can fill the same batch.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::LocalPort;

pub mod batch;
mod sockaddr;
pub mod uring;

/// Size of one packet buffer: room for a jumbo-free datagram plus the SRTP trailer.
pub const BUF_SIZE: usize = 2048;
/// Largest datagram accepted; longer ones are dropped as oversized.
pub const MAX_DATAGRAM: usize = BUF_SIZE - 64;
/// Packets per batch (per `recvmmsg`/`sendmmsg` call at most).
pub const MAX_BATCH: usize = 64;

/// Where a processed packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Out {
    /// The local port it leaves from.
    pub from: LocalPort,
    pub to: SocketAddr,
    pub len: usize,
}

/// One received datagram's metadata.
#[derive(Clone, Copy, Debug)]
pub struct PacketMeta {
    /// The local port it arrived on.
    pub local: LocalPort,
    pub peer: SocketAddr,
    pub len: usize,
    /// The datagram was longer than [`MAX_DATAGRAM`].
    pub oversized: bool,
    /// Set by the worker when the packet is to be sent.
    pub out: Option<Out>,
}

impl Default for PacketMeta {
    fn default() -> Self {
        PacketMeta {
            local: LocalPort::default(),
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            len: 0,
            oversized: false,
            out: None,
        }
    }
}

/// A batch of packet buffers and their metadata, allocated once per worker.
pub struct Batch {
    pub bufs: Box<[[u8; BUF_SIZE]]>,
    pub meta: Box<[PacketMeta]>,
    pub len: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// A batch of [`MAX_BATCH`] buffers.
    pub fn new() -> Self {
        Self::with_capacity(MAX_BATCH)
    }

    /// A batch of `n` buffers (at most [`MAX_BATCH`]).
    pub fn with_capacity(n: usize) -> Self {
        let n = n.clamp(1, MAX_BATCH);
        Batch {
            bufs: vec![[0u8; BUF_SIZE]; n].into_boxed_slice(),
            meta: vec![PacketMeta::default(); n].into_boxed_slice(),
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// What one `send` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendReport {
    pub sent: u64,
    pub failed: u64,
}

/// A worker's packet I/O.
pub trait PacketIo: Send {
    /// A short name for logs and metrics (`batch`, `uring`).
    fn name(&self) -> &'static str;
    /// Starts serving `local` with `socket` (bound, non-blocking). A backend that does not
    /// use the socket for I/O keeps it to reserve the port.
    fn attach(&mut self, local: LocalPort, socket: UdpSocket) -> io::Result<()>;
    /// Stops serving `local` and closes its socket.
    fn detach(&mut self, local: LocalPort);
    /// Clears `batch`, then fills it with received datagrams, waiting at most `timeout`
    /// for the first one (or until the worker's waker fires). Returns how many.
    fn recv(&mut self, batch: &mut Batch, timeout: Duration) -> io::Result<usize>;
    /// Sends every packet in `batch` whose `out` is set (or queues them: a backend may hand
    /// them to the kernel in its next `recv`). Reports what it already knows; the rest is
    /// reported by [`take_report`](Self::take_report).
    fn send(&mut self, batch: &mut Batch) -> SendReport;
    /// Sends that completed since the last call and were not reported by `send`.
    fn take_report(&mut self) -> SendReport {
        SendReport::default()
    }
    /// Hands every queued send to the kernel, waits for them, and reports them (with
    /// anything [`take_report`](Self::take_report) would have returned).
    fn flush(&mut self) -> SendReport {
        self.take_report()
    }
    /// Receive coalescing: while packets keep arriving, let up to `linger` pass before
    /// taking the next batch, so that one wake-up serves several packets instead of one.
    /// When nothing arrived in that time, `recv` waits for the first packet as usual, so
    /// an idle worker sleeps and the first packet after a pause is not delayed. Zero (the
    /// default) takes every packet as soon as it arrives.
    fn set_coalesce(&mut self, linger: Duration);
}
