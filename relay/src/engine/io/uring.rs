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

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::{self, ManuallyDrop};
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, Probe};

use super::sockaddr::{from_storage, to_storage};
use super::{Batch, PacketIo, SendReport, BUF_SIZE, MAX_BATCH, MAX_DATAGRAM};
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

/// Whether io_uring with everything this backend needs works here: ring setup (refused by
/// `kernel.io_uring_disabled` or seccomp), the opcodes, timed waits, buffer-ring
/// registration, and a multishot `recvmsg` that really delivers into a provided buffer
/// (kernel 6.0 or later), tried on a local datagram socket pair.
pub fn probe() -> io::Result<()> {
    on_own_thread(probe_here)
}

/// Runs `f` on a short-lived thread. The kernel remembers every thread that created or
/// used a ring and, when the ring is torn down, interrupts it the way a signal would (a
/// blocking socket call with a timeout fails with EINTR); a thread that has exited is
/// forgotten instead. So rings are never created on the caller's (control-plane) thread.
fn on_own_thread<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::Builder::new()
        .name("srtpgate-uring".into())
        .spawn(f)?
        .join()
        .map_err(|_| io::Error::other("io_uring setup thread panicked"))?
}

fn probe_here() -> io::Result<()> {
    let (mut ring, disabled) = new_ring(8, 16)?;
    let mut ops = Probe::new();
    ring.submitter().register_probe(&mut ops)?;
    for (code, name) in [
        (opcode::RecvMsg::CODE, "recvmsg"),
        (opcode::SendMsg::CODE, "sendmsg"),
        (opcode::PollAdd::CODE, "poll_add"),
        (opcode::AsyncCancel::CODE, "async_cancel"),
    ] {
        if !ops.is_supported(code) {
            return Err(unsupported(name));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err(unsupported("timed waits (EXT_ARG)"));
    }
    let mut bufs = BufRing::new(4)?;
    bufs.register(&ring)?;
    if disabled {
        ring.submitter().register_enable_rings()?;
    }
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the live array; the result is checked.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let msg = recv_template();
    let recv_ud = user_data(OP_RECV, 0, 0);
    let entry = opcode::RecvMsgMulti::new(Fd(rx.as_raw_fd()), &*msg, BGID)
        .build()
        .user_data(recv_ud);
    // SAFETY: the entry points at `msg` and at the registered buffer ring, both of which
    // live until the receive has ended (awaited below) or are leaked.
    unsafe { ring.submission().push(&entry) }.map_err(|_| unsupported("submission queue"))?;
    const HELLO: &[u8] = b"srtpgate io_uring probe";
    // SAFETY: writes HELLO.len() bytes from a live slice to our own socket.
    unsafe { libc::write(tx.as_raw_fd(), HELLO.as_ptr().cast(), HELLO.len()) };
    let ts = Timespec::from(CANCEL_WAIT);
    let mut ended = false;
    let outcome = match ring
        .submitter()
        .submit_with_args(1, &SubmitArgs::new().timespec(&ts))
    {
        Ok(_) => match ring.completion().next() {
            Some(c) if c.user_data() == recv_ud && !cqueue::more(c.flags()) => {
                ended = true;
                Err(unsupported("multishot recvmsg"))
            }
            Some(c) if c.user_data() == recv_ud && c.result() > 0 => {
                match cqueue::buffer_select(c.flags()) {
                    Some(bid) if bid < bufs.count => {
                        let got = RecvMsgOut::parse(bufs.buf(bid, c.result() as usize), &msg)
                            .is_ok_and(|m| m.payload_data() == HELLO);
                        bufs.give(bid);
                        if got {
                            Ok(())
                        } else {
                            Err(unsupported("multishot recvmsg payload"))
                        }
                    }
                    _ => Err(unsupported("provided buffers")),
                }
            }
            Some(_) => Err(unsupported("multishot recvmsg")),
            None => Err(unsupported("completion")),
        },
        Err(e) => Err(e),
    };
    // End the receive before the buffers go away.
    if !ended {
        let cancel = opcode::AsyncCancel::new(recv_ud)
            .build()
            .user_data(user_data(OP_CANCEL, 0, 0));
        // SAFETY: a cancel entry refers to no memory.
        let _ = unsafe { ring.submission().push(&cancel) };
    }
    let deadline = Instant::now() + CANCEL_WAIT;
    while !ended && Instant::now() < deadline {
        let _ = ring
            .submitter()
            .submit_with_args(1, &SubmitArgs::new().timespec(&ts));
        for c in ring.completion() {
            if c.user_data() == recv_ud && !cqueue::more(c.flags()) {
                ended = true;
            }
        }
    }
    if !ended {
        // Never unmap memory the kernel may still write into.
        mem::forget(bufs);
        mem::forget(msg);
    }
    outcome
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("io_uring lacks {what}"))
}

/// A ring for one worker. Preferred: a single issuer with deferred task work (completions
/// are produced only when the worker enters the kernel), created disabled so that the
/// worker thread, not the thread that built it, becomes its issuer. Older kernels get a
/// plain ring. Returns whether the ring still has to be enabled.
fn new_ring(sq: u32, cq: u32) -> io::Result<(IoUring, bool)> {
    let preferred = IoUring::builder()
        .setup_cqsize(cq)
        .setup_submit_all()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_r_disabled()
        .build(sq);
    match preferred {
        Ok(r) => Ok((r, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((
            IoUring::builder()
                .setup_cqsize(cq)
                .setup_submit_all()
                .build(sq)?,
            false,
        )),
        Err(e) => Err(e),
    }
}

/// The `msghdr` every multishot receive is armed with: only the name length matters.
fn recv_template() -> Box<libc::msghdr> {
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut m: Box<libc::msghdr> = Box::new(unsafe { mem::zeroed() });
    m.msg_namelen = NAME_LEN as libc::socklen_t;
    m
}

/// One descriptor of a provided-buffer ring (`struct io_uring_buf`). The `resv` field of
/// descriptor 0 is the ring's tail.
#[repr(C)]
struct BufDesc {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(mem::size_of::<BufDesc>() == 16);
const TAIL_OFFSET: usize = 14;

/// A provided-buffer ring and its buffers, in one anonymous mapping made once: a
/// page-aligned area of `count` descriptors shared with the kernel, then `count` buffers of
/// [`BUF_LEN`] bytes. Buffer `bid` belongs to the kernel from the moment it is given until a
/// completion names it, then to us until we give it back.
struct BufRing {
    map: NonNull<u8>,
    map_len: usize,
    ring_len: usize,
    count: u16,
    tail: u16,
}

impl BufRing {
    fn new(count: u16) -> io::Result<Self> {
        debug_assert!(count.is_power_of_two());
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let ring_len = (usize::from(count) * mem::size_of::<BufDesc>()).next_multiple_of(page);
        let map_len = ring_len + usize::from(count) * BUF_LEN;
        // SAFETY: a fresh private anonymous mapping overlaps nothing; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(BufRing {
            map,
            map_len,
            ring_len,
            count,
            tail: 0,
        })
    }

    /// Registers the ring as group [`BGID`] of `ring` and hands every buffer to the kernel.
    fn register(&mut self, ring: &IoUring) -> io::Result<()> {
        // SAFETY: the descriptor area is page-aligned (start of a mapping), holds `count`
        // descriptors, and stays mapped until `self` is dropped, which owners do only once
        // no request can use the group any more (or never, by leaking it).
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                self.map.as_ptr() as u64,
                self.count,
                BGID,
                0,
            )?
        };
        for bid in 0..self.count {
            self.give(bid);
        }
        Ok(())
    }

    /// Hands buffer `bid` (not currently the kernel's) back to the kernel, visible at once.
    fn give(&mut self, bid: u16) {
        debug_assert!(bid < self.count);
        let idx = usize::from(self.tail & (self.count - 1));
        let addr = self.map.as_ptr() as usize + self.ring_len + usize::from(bid) * BUF_LEN;
        // SAFETY: `idx < count`, so the descriptor lies in the ring area. At most `count`
        // buffers are the kernel's and each is given once per use, so the slot at our tail
        // is not one the kernel may read (it reads only up to the published tail). Field
        // writes leave descriptor 0's `resv`, the tail, alone. The tail is a u16 at offset
        // 14 of the page-aligned area, so suitably aligned for an atomic; the release store
        // publishes the descriptor before the kernel's acquire load of the tail sees it.
        unsafe {
            let d = self.map.as_ptr().cast::<BufDesc>().add(idx);
            ptr::addr_of_mut!((*d).addr).write(addr as u64);
            ptr::addr_of_mut!((*d).len).write(BUF_LEN as u32);
            ptr::addr_of_mut!((*d).bid).write(bid);
            self.tail = self.tail.wrapping_add(1);
            let tail = &*self.map.as_ptr().add(TAIL_OFFSET).cast::<AtomicU16>();
            tail.store(self.tail, Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid`, which a completion has just handed to us.
    fn buf(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count);
        let len = len.min(BUF_LEN);
        // SAFETY: `bid < count` and `len <= BUF_LEN`, so the range lies in the mapping. The
        // kernel finished writing the buffer before posting the completion that named it
        // and does not touch it again until it is given back, which needs `&mut self`.
        unsafe {
            std::slice::from_raw_parts(
                self.map
                    .as_ptr()
                    .add(self.ring_len + usize::from(bid) * BUF_LEN),
                len,
            )
        }
    }
}

// SAFETY: the mapping is owned by this value alone; moving it between threads moves that
// ownership, and the kernel's access does not depend on which thread owns it.
unsafe impl Send for BufRing {}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; owners drop a BufRing only when
        // no request can write into it any more.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

/// Where a socket's multishot receive stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecvState {
    /// In flight.
    Armed,
    /// Ended; to be armed again (not before the instant, after an error).
    Idle(Option<Instant>),
    /// Cancellation asked; waiting for the last completion.
    Cancelling,
    /// Ended for good (slot free or being freed).
    Done,
}

struct Slot {
    local: LocalPort,
    socket: Option<UdpSocket>,
    gen: u32,
    state: RecvState,
}

/// A datagram sitting in a provided buffer, taken off the completion queue while a batch
/// was not being filled.
#[derive(Clone, Copy)]
struct Pending {
    index: u32,
    gen: u32,
    bid: u16,
    len: u32,
}

/// The C structures for one batch of sends, allocated once; entry `i` serves batch slot `i`.
struct SendHeaders {
    hdrs: Box<[libc::msghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
}

impl SendHeaders {
    fn new() -> Self {
        SendHeaders {
            // SAFETY: all-zero is a valid value for these plain C structures.
            hdrs: (0..MAX_BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
            iovs: (0..MAX_BATCH)
                .map(|_| libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: as above.
            addrs: (0..MAX_BATCH).map(|_| unsafe { mem::zeroed() }).collect(),
        }
    }
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

    /// Arms the waker poll and every idle receive that is due.
    fn arm_pending(&mut self) {
        if !self.poll_armed {
            let e = opcode::PollAdd::new(Fd(self.waker.as_raw_fd()), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(user_data(OP_WAKE, 0, 0));
            // SAFETY: a poll refers to no memory; the eventfd outlives the ring (`self.waker`).
            unsafe { self.push(&e) };
            self.poll_armed = true;
        }
        if self.to_arm.is_empty() {
            return;
        }
        let mut now = None;
        let mut list = mem::take(&mut self.to_arm);
        list.retain(|&i| {
            let slot = &mut self.slots[i as usize];
            let (RecvState::Idle(not_before), Some(sock)) = (slot.state, slot.socket.as_ref())
            else {
                return false;
            };
            if let Some(t) = not_before {
                if *now.get_or_insert_with(Instant::now) < t {
                    return true;
                }
            }
            let e = opcode::RecvMsgMulti::new(Fd(sock.as_raw_fd()), &*self.recv_msg, BGID)
                .build()
                .user_data(user_data(OP_RECV, slot.gen, i));
            // SAFETY: the entry points at `self.recv_msg` and the registered buffer ring,
            // both alive until every receive has ended (see `Drop`). The socket stays
            // open until its receive has ended (see `detach`).
            if unsafe { push_raw(&mut self.ring, &e) } {
                slot.state = RecvState::Armed;
                false
            } else {
                true
            }
        });
        self.to_arm = list;
    }

    /// Applies one completion; returns the datagram it carries, if any.
    fn complete(&mut self, c: &cqueue::Entry) -> Option<Pending> {
        let (op, gen, index) = split_user_data(c.user_data());
        let (res, flags) = (c.result(), c.flags());
        match op {
            OP_RECV => {
                let bid = cqueue::buffer_select(flags).filter(|&b| b < self.bufs.count);
                let live = self
                    .slots
                    .get_mut(index as usize)
                    .filter(|s| s.gen == gen && s.state != RecvState::Done);
                let live = match live {
                    Some(s) => {
                        if !cqueue::more(flags) {
                            s.state = if s.state == RecvState::Cancelling {
                                RecvState::Done
                            } else {
                                // ENOBUFS (ring ran dry) or a clean end: again at once.
                                let not_before = (res < 0 && res != -libc::ENOBUFS)
                                    .then(|| Instant::now() + REARM_BACKOFF);
                                self.to_arm.push(index);
                                RecvState::Idle(not_before)
                            };
                        }
                        true
                    }
                    None => false,
                };
                match bid {
                    Some(bid) if live && res > 0 => Some(Pending {
                        index,
                        gen,
                        bid,
                        len: res as u32,
                    }),
                    Some(bid) => {
                        self.bufs.give(bid);
                        None
                    }
                    None => None,
                }
            }
            OP_SEND => {
                if self.sends_in_flight > 0 {
                    self.sends_in_flight -= 1;
                    if res >= 0 {
                        self.report.sent += 1;
                    } else {
                        self.report.failed += 1;
                    }
                }
                None
            }
            OP_WAKE => {
                self.woken = true;
                if !cqueue::more(flags) {
                    self.poll_armed = false;
                }
                None
            }
            _ => None,
        }
    }

    /// Takes one completion off the queue.
    fn next_completion(&mut self) -> Option<cqueue::Entry> {
        self.ring.completion().next()
    }

    /// Takes every queued completion, keeping datagrams for the next `recv`.
    fn drain_aside(&mut self) {
        while let Some(c) = self.next_completion() {
            if let Some(p) = self.complete(&c) {
                debug_assert!(self.backlog.len() < self.backlog.capacity());
                self.backlog.push_back(p);
            }
        }
    }

    /// Moves waiting datagrams into `batch` until it is full or none is left.
    fn fill(&mut self, batch: &mut Batch) {
        while batch.len < batch.capacity() {
            let p = match self.backlog.pop_front() {
                Some(p) => p,
                None => {
                    let Some(c) = self.next_completion() else {
                        break;
                    };
                    match self.complete(&c) {
                        Some(p) => p,
                        None => continue,
                    }
                }
            };
            self.deliver(p, batch);
        }
    }

    /// Copies one datagram into the next batch slot and gives its buffer back.
    fn deliver(&mut self, p: Pending, batch: &mut Batch) {
        let local = match self.slots.get(p.index as usize) {
            Some(s) if s.gen == p.gen && s.socket.is_some() => Some(s.local),
            _ => None,
        };
        if let Some(local) = local {
            let data = self.bufs.buf(p.bid, p.len as usize);
            if let Ok(m) = RecvMsgOut::parse(data, &self.recv_msg) {
                // SAFETY: all-zero is a valid sockaddr_storage.
                let mut st: libc::sockaddr_storage = unsafe { mem::zeroed() };
                let name = m.name_data();
                let n = name.len().min(mem::size_of::<libc::sockaddr_storage>());
                // SAFETY: copies `n` bytes, which fit in both the slice and the storage.
                unsafe { ptr::copy_nonoverlapping(name.as_ptr(), ptr::addr_of_mut!(st).cast(), n) };
                if let Some(peer) = from_storage(&st) {
                    let payload = m.payload_data();
                    let len = payload.len().min(BUF_SIZE);
                    let i = batch.len;
                    batch.bufs[i][..len].copy_from_slice(&payload[..len]);
                    let meta = &mut batch.meta[i];
                    meta.local = local;
                    meta.peer = peer;
                    meta.len = len;
                    meta.oversized = m.is_payload_truncated()
                        || m.incoming_payload_len() as usize > MAX_DATAGRAM;
                    meta.out = None;
                    batch.len += 1;
                }
            }
        }
        self.bufs.give(p.bid);
    }

    fn release_slot(&mut self, index: u32) {
        let s = &mut self.slots[index as usize];
        s.socket = None;
        s.state = RecvState::Done;
        s.gen = s.gen.wrapping_add(1) & GEN_MASK;
        self.free.push(index);
    }

    /// Asks every in-flight receive and the poll to end and waits for that, up to
    /// [`CANCEL_WAIT`]. True when nothing is left in flight.
    fn cancel_all(&mut self) -> bool {
        if self.broken {
            return false;
        }
        for i in 0..self.slots.len() {
            let s = &mut self.slots[i];
            if s.state == RecvState::Armed {
                s.state = RecvState::Cancelling;
                let e = opcode::AsyncCancel::new(user_data(OP_RECV, s.gen, i as u32))
                    .build()
                    .user_data(user_data(OP_CANCEL, 0, 0));
                // SAFETY: a cancel refers to no memory.
                unsafe { self.push(&e) };
            } else if s.state != RecvState::Cancelling {
                s.state = RecvState::Done;
            }
        }
        if self.poll_armed {
            let e = opcode::AsyncCancel::new(user_data(OP_WAKE, 0, 0))
                .build()
                .user_data(user_data(OP_CANCEL, 0, 0));
            // SAFETY: as above.
            unsafe { self.push(&e) };
        }
        let deadline = Instant::now() + CANCEL_WAIT;
        loop {
            while let Some(p) = self.backlog.pop_front() {
                self.bufs.give(p.bid);
            }
            self.drain_aside();
            let busy =
                self.poll_armed || self.slots.iter().any(|s| s.state == RecvState::Cancelling);
            let left = deadline.saturating_duration_since(Instant::now());
            if !busy || left.is_zero() || self.enter(1, Some(left)).is_err() {
                return !busy;
            }
        }
    }
}

/// Queues `entry` on `ring`, submitting first when the queue is full; false when it could
/// not be queued (it is then tried again later).
///
/// # Safety
/// Whatever `entry` points at must stay valid until its last completion.
unsafe fn push_raw(ring: &mut IoUring, entry: &squeue::Entry) -> bool {
    // SAFETY: forwarded from the caller.
    if unsafe { ring.submission().push(entry) }.is_ok() {
        return true;
    }
    let _ = ring.submit();
    // SAFETY: as above.
    unsafe { ring.submission().push(entry) }.is_ok()
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
            self.enter(1, Some(timeout))?;
            self.fill(batch);
        } else if !self.ring.submission().is_empty() {
            self.enter(0, None)?;
        }
        if self.woken {
            self.woken = false;
            self.waker.drain();
        }
        Ok(batch.len)
    }

    fn send(&mut self, batch: &mut Batch) -> SendReport {
        self.report = SendReport::default();
        if self.ready().is_err() {
            self.report.failed = batch.meta[..batch.len]
                .iter()
                .filter(|m| m.out.is_some())
                .count() as u64;
            return self.report;
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
                self.report.failed += 1;
                continue;
            };
            let len = out.len.min(BUF_SIZE);
            let e = self.prepare_send(i, fd, out.to, batch.bufs[i].as_mut_ptr(), len);
            // Counted before it is queued: pushing may submit, and completions may follow.
            self.sends_in_flight += 1;
            // SAFETY: the entry points at `self.send` entry `i` and at `len <= BUF_SIZE`
            // bytes of `batch.bufs[i]`; this function returns only after every send's
            // completion has been reaped (or the ring is broken and never entered again),
            // so both outlive the request.
            unsafe { self.push(&e) };
        }
        while self.sends_in_flight > 0 {
            let want = self.sends_in_flight;
            if self.enter(want, None).is_err() {
                self.report.failed += self.sends_in_flight as u64;
                self.sends_in_flight = 0;
                break;
            }
            self.drain_aside();
        }
        self.report
    }
}

impl UringIo {
    /// Fills send header `i` for `len` bytes at `buf` to `to`; returns the entry.
    fn prepare_send(
        &mut self,
        i: usize,
        fd: RawFd,
        to: std::net::SocketAddr,
        buf: *mut u8,
        len: usize,
    ) -> squeue::Entry {
        let alen = to_storage(&to, &mut self.send.addrs[i]);
        self.send.iovs[i] = libc::iovec {
            iov_base: buf.cast(),
            iov_len: len,
        };
        let h = &mut self.send.hdrs[i];
        h.msg_name = ptr::addr_of_mut!(self.send.addrs[i]).cast();
        h.msg_namelen = alen;
        h.msg_iov = ptr::addr_of_mut!(self.send.iovs[i]);
        h.msg_iovlen = 1;
        h.msg_control = ptr::null_mut();
        h.msg_controllen = 0;
        h.msg_flags = 0;
        opcode::SendMsg::new(Fd(fd), &*h)
            .flags(libc::MSG_DONTWAIT as u32)
            .build()
            .user_data(user_data(OP_SEND, 0, i as u32))
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
        }
        // Sockets close after the ring (field order), which cancels anything left.
    }
}
