//! The io_uring backend. Every attached socket has one multishot `recvmsg` in flight that
//! takes its buffers from a provided-buffer ring, so datagrams arrive as completions without
//! a system call each; a datagram is copied into the worker's [`Batch`] and its buffer goes
//! straight back to the ring. A batch is sent as one `sendmsg` entry per packet, pointing
//! into the batch, with one `io_uring_enter` for the whole batch. The worker's waker eventfd
//! has a multishot poll in flight, so a command interrupts a blocking `recv`.
//!
//! Memory rules: the kernel only ever sees memory owned by [`UringIo`] (the buffer ring,
//! the receive `msghdr` template, the per-slot send headers) or the caller's batch during
//! `send`, which returns only after every send has completed. On drop, every receive and
//! the poll are cancelled and their last completions awaited before that memory is freed;
//! if they cannot be awaited, the buffer memory is leaked rather than freed under the
//! kernel. A closed socket cannot be confused with a later one: completions are matched by
//! slot and generation, never by descriptor.

mod bufring;
mod probe;
mod recv;
mod send;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::{self, ManuallyDrop};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{opcode, squeue, IoUring};

use self::bufring::BufRing;
pub use self::probe::probe;
use self::probe::{new_ring, on_own_thread, unsupported};
use self::recv::{recv_template, Pending, RecvState, Slot};
use self::send::SendHeaders;
use super::{Batch, PacketIo, SendReport, BUF_SIZE};
use crate::engine::waker::Waker;
use crate::engine::LocalPort;

/// Buffer group id of the provided-buffer ring.
const BGID: u16 = 0;
/// Provided buffers per worker (a power of two; bounds the datagrams held in completions
/// and the backlog).
const BUF_COUNT: u16 = 1024;
/// `struct io_uring_recvmsg_out` that starts every multishot `recvmsg` buffer.
const RECVMSG_OUT_LEN: usize = 16;
/// Room for the source address (an IPv4 address fits in an IPv6-sized field).
const NAME_LEN: usize = mem::size_of::<libc::sockaddr_in6>();
/// One provided buffer: header, address, then room for at least a batch buffer's worth of
/// payload, so a datagram is marked oversized exactly as the batch backend marks it.
const BUF_LEN: usize = (RECVMSG_OUT_LEN + NAME_LEN + BUF_SIZE).next_multiple_of(64);
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 4096;
/// How long `detach` and drop wait for a cancelled receive's last completion.
const CANCEL_WAIT: Duration = Duration::from_secs(1);
/// Delay before re-arming a receive that ended with an error other than ENOBUFS.
const REARM_BACKOFF: Duration = Duration::from_millis(50);

// user_data: operation in the top byte, slot generation in the next three, slot index below.
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;
const OP_WAKE: u64 = 3;
const OP_CANCEL: u64 = 4;
const GEN_MASK: u32 = 0x00ff_ffff;

fn user_data(op: u64, gen: u32, index: u32) -> u64 {
    (op << 56) | (u64::from(gen & GEN_MASK) << 32) | u64::from(index)
}

fn split_user_data(ud: u64) -> (u64, u32, u32) {
    (ud >> 56, (ud >> 32) as u32 & GEN_MASK, ud as u32)
}

/// io_uring with multishot receives into a provided-buffer ring.
pub struct UringIo {
    // Declared first: closed before the sockets and C structures below are released. The
    // buffer ring is released by `drop` itself, once nothing is in flight.
    ring: IoUring,
    bufs: ManuallyDrop<BufRing>,
    /// Read by the kernel when a receive is armed (and, on older kernels, later).
    recv_msg: Box<libc::msghdr>,
    send: SendHeaders,
    waker: Arc<Waker>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    ports: HashMap<LocalPort, u32>,
    /// Slots whose receive is to be armed; capacity kept at the number of slots.
    to_arm: Vec<u32>,
    /// Datagrams taken off the completion queue outside `recv`; each holds a provided
    /// buffer, so there are never more than the ring has and the capacity suffices.
    backlog: VecDeque<Pending>,
    /// The ring waits to be enabled by the thread that will use it.
    disabled: bool,
    poll_armed: bool,
    woken: bool,
    sends_in_flight: usize,
    report: SendReport,
    /// The ring failed in a way that cannot be retried: nothing more is submitted.
    broken: bool,
    /// See [`PacketIo::set_coalesce`].
    coalesce: Duration,
    /// The last `recv` returned packets: traffic is flowing.
    flowing: bool,
}

// SAFETY: the raw pointers (buffer ring, C headers) point at memory this value owns; they
// are used only by the thread that currently owns the value, and the ring is enabled (its
// single issuer fixed) by the first thread that uses it, the worker it was moved to.
unsafe impl Send for UringIo {}

impl UringIo {
    pub fn new(waker: Arc<Waker>) -> io::Result<Self> {
        Self::with_buffers(waker, BUF_COUNT)
    }

    /// Like [`new`](Self::new) with `buffers` provided buffers (a power of two up to 32768)
    /// instead of 1024; a small ring lets tests make it run dry.
    pub fn with_buffers(waker: Arc<Waker>, buffers: u16) -> io::Result<Self> {
        if !buffers.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "provided buffers: a power of two up to 32768",
            ));
        }
        let (ring, bufs, disabled) = on_own_thread(move || {
            let (ring, disabled) = new_ring(SQ_ENTRIES, CQ_ENTRIES)?;
            if !ring.params().is_feature_ext_arg() {
                return Err(unsupported("timed waits (EXT_ARG)"));
            }
            let mut bufs = BufRing::new(buffers)?;
            bufs.register(&ring)?;
            Ok((ring, bufs, disabled))
        })?;
        Ok(UringIo {
            ring,
            bufs: ManuallyDrop::new(bufs),
            recv_msg: recv_template(),
            send: SendHeaders::new(),
            waker,
            slots: Vec::new(),
            free: Vec::new(),
            ports: HashMap::new(),
            to_arm: Vec::new(),
            backlog: VecDeque::with_capacity(usize::from(buffers)),
            disabled,
            poll_armed: false,
            woken: false,
            sends_in_flight: 0,
            report: SendReport::default(),
            broken: false,
            coalesce: Duration::ZERO,
            flowing: false,
        })
    }

    fn ready(&mut self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other("io_uring ring failed"));
        }
        if self.disabled {
            self.ring.submitter().register_enable_rings()?;
            self.disabled = false;
        }
        Ok(())
    }

    /// Queues `entry`, handing queued entries to the kernel first if the queue is full.
    ///
    /// # Safety
    /// Whatever `entry` points at must stay valid until its last completion.
    unsafe fn push(&mut self, entry: &squeue::Entry) {
        loop {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            if self.enter(0, None).is_err() {
                return;
            }
        }
    }

    /// Submits what is queued and waits for `want` completions or `timeout`; transient
    /// failures (interrupted, busy, timed out) are not errors. Completions are left queued.
    fn enter(&mut self, want: usize, timeout: Option<Duration>) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other("io_uring ring failed"));
        }
        let r = match timeout {
            Some(t) => {
                let ts = Timespec::from(t);
                self.ring
                    .submitter()
                    .submit_with_args(want, &SubmitArgs::new().timespec(&ts))
            }
            None => self.ring.submit_and_wait(want),
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EAGAIN | libc::EBUSY) => {
                    if e.raw_os_error() == Some(libc::EBUSY) {
                        // Completions must be reaped before the kernel takes more.
                        self.drain_aside();
                    }
                    Ok(())
                }
                _ => {
                    // Entries left in the queue may point at memory we cannot keep alive,
                    // so the ring is never entered again.
                    self.broken = true;
                    tracing::error!(error = %e, "io_uring ring failed");
                    Err(e)
                }
            },
        }
    }
}

impl UringIo {
    /// Waits until no send is in flight (their completions reaped into `self.report`).
    fn settle_sends(&mut self) -> io::Result<()> {
        self.drain_aside();
        while self.sends_in_flight > 0 {
            let want = self.sends_in_flight;
            if let Err(e) = self.enter(want, None) {
                self.report.failed += self.sends_in_flight as u64;
                self.sends_in_flight = 0;
                return Err(e);
            }
            self.drain_aside();
        }
        Ok(())
    }
}

impl PacketIo for UringIo {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn attach(&mut self, local: LocalPort, socket: UdpSocket) -> io::Result<()> {
        self.ready()?;
        socket.set_nonblocking(true)?;
        if self.ports.contains_key(&local) {
            self.detach(local);
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    local,
                    socket: None,
                    gen: 0,
                    state: RecvState::Done,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[index as usize];
        s.local = local;
        s.socket = Some(socket);
        s.state = RecvState::Idle(None);
        // Room for every slot, so pushing a re-arm never allocates on the packet path.
        self.to_arm.reserve(self.slots.len());
        self.to_arm.push(index);
        self.ports.insert(local, index);
        // Armed (and datagrams already queued read) by the next `recv`.
        Ok(())
    }

    fn detach(&mut self, local: LocalPort) {
        let Some(index) = self.ports.remove(&local) else {
            return;
        };
        // Queued sends name sockets by descriptor: none may outlive the socket closed here.
        let _ = self.settle_sends();
        let s = &mut self.slots[index as usize];
        if s.state == RecvState::Armed && !self.broken {
            s.state = RecvState::Cancelling;
            let e = opcode::AsyncCancel::new(user_data(OP_RECV, s.gen, index))
                .build()
                .user_data(user_data(OP_CANCEL, 0, 0));
            // SAFETY: a cancel refers to no memory.
            unsafe { self.push(&e) };
            // The socket is closed only once its receive has ended, so that the port is
            // really free when the engine hands it out again.
            let deadline = Instant::now() + CANCEL_WAIT;
            while self.slots[index as usize].state == RecvState::Cancelling {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || self.enter(1, Some(left)).is_err() {
                    // Closing now is still memory-safe: the kernel holds its own reference
                    // to the socket, and late completions fail the generation check.
                    tracing::warn!(port = %local, "receive not cancelled in time; closing");
                    break;
                }
                self.drain_aside();
            }
        }
        self.release_slot(index);
    }

    fn recv(&mut self, batch: &mut Batch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        self.ready()?;
        self.arm_pending();
        self.fill(batch);
        if batch.len == 0 && !self.woken {
            if !self.coalesce.is_zero() && self.flowing {
                // Traffic is flowing: hand the queued sends over now, let the window pass
                // (a command cuts it short), then take everything that completed in it.
                if !self.ring.submission().is_empty() {
                    self.enter(0, None)?;
                }
                self.waker.linger(self.coalesce);
            }
            self.enter(1, Some(timeout))?;
            self.fill(batch);
        } else if !self.ring.submission().is_empty() {
            self.enter(0, None)?;
        }
        if self.woken {
            self.woken = false;
            self.waker.drain();
        }
        self.flowing = batch.len > 0;
        Ok(batch.len)
    }

    fn send(&mut self, batch: &mut Batch) -> SendReport {
        let mut report = SendReport::default();
        // The previous batch's sends went out in the `io_uring_enter` since (inline, as
        // MSG_DONTWAIT sends complete); their slots are reused below, so make sure.
        if self.settle_sends().is_err() || self.ready().is_err() {
            report.failed = batch.meta[..batch.len]
                .iter()
                .filter(|m| m.out.is_some())
                .count() as u64;
            return report;
        }
        for i in 0..batch.len {
            let Some(out) = batch.meta[i].out else {
                continue;
            };
            let fd = self
                .ports
                .get(&out.from)
                .and_then(|&s| self.slots[s as usize].socket.as_ref())
                .map(|s| s.as_raw_fd());
            let Some(fd) = fd else {
                report.failed += 1;
                continue;
            };
            let len = out.len.min(BUF_SIZE);
            let e = self.prepare_send(i, fd, out.to, &batch.bufs[i][..len]);
            // Counted before it is queued: pushing may submit, and completions may follow.
            self.sends_in_flight += 1;
            // SAFETY: the entry points at `self.send` entry `i` (header, address and the
            // packet's copy), which is not touched again until this send's completion has
            // been reaped (`settle_sends`, and `Drop` waits for it or leaks the memory).
            unsafe { self.push(&e) };
        }
        // Handed to the kernel by the next enter: the wait in `recv`, or right there when
        // more packets are already waiting.
        report
    }

    fn take_report(&mut self) -> SendReport {
        mem::take(&mut self.report)
    }

    fn flush(&mut self) -> SendReport {
        let _ = self.settle_sends();
        mem::take(&mut self.report)
    }

    fn set_coalesce(&mut self, linger: Duration) {
        self.coalesce = linger;
    }
}

impl Drop for UringIo {
    fn drop(&mut self) {
        // A ring never enabled never had anything submitted.
        let settled = self.disabled || self.cancel_all();
        if settled {
            let _ = self.ring.submitter().unregister_buf_ring(BGID);
            // SAFETY: nothing is in flight any more, so no request can write into the
            // buffers; the field is not used after this.
            unsafe { ManuallyDrop::drop(&mut self.bufs) };
        } else {
            tracing::error!("io_uring requests did not end; leaking their buffers");
            mem::forget(mem::replace(&mut self.recv_msg, recv_template()));
            mem::forget(mem::take(&mut self.send));
        }
        // Sockets close after the ring (field order), which cancels anything left.
    }
}
