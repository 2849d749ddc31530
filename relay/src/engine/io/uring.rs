//! The io_uring backend (placeholder until implemented: `probe` refuses, so the engine
//! falls back to the batch backend with a log line).

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use super::{Batch, PacketIo, SendReport};
use crate::engine::waker::Waker;
use crate::engine::LocalPort;

/// Whether io_uring with what this backend needs is available here.
pub fn probe() -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "io_uring backend not built yet",
    ))
}

pub struct UringIo;

impl UringIo {
    pub fn new(_waker: Arc<Waker>) -> io::Result<Self> {
        probe().map(|_| UringIo)
    }
}

impl PacketIo for UringIo {
    fn name(&self) -> &'static str {
        "uring"
    }
    fn attach(&mut self, _local: LocalPort, _socket: UdpSocket) -> io::Result<()> {
        probe()
    }
    fn detach(&mut self, _local: LocalPort) {}
    fn recv(&mut self, batch: &mut Batch, _timeout: Duration) -> io::Result<usize> {
        batch.clear();
        probe().map(|_| 0)
    }
    fn send(&mut self, _batch: &mut Batch) -> SendReport {
        SendReport::default()
    }
}
