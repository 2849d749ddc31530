//! The receive side: arming multishot receives, applying completions, filling a batch,
//! and cancelling everything in flight.

use std::mem;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::ptr;
use std::time::Instant;

use io_uring::types::{Fd, RecvMsgOut};
use io_uring::{cqueue, opcode, squeue, IoUring};

use super::{
    split_user_data, user_data, UringIo, BGID, CANCEL_WAIT, GEN_MASK, NAME_LEN, OP_CANCEL, OP_RECV,
    OP_SEND, OP_WAKE, REARM_BACKOFF,
};
use crate::engine::io::sockaddr::from_storage;
use crate::engine::io::{Batch, BUF_SIZE, MAX_DATAGRAM};
use crate::engine::LocalPort;

/// The `msghdr` every multishot receive is armed with: only the name length matters.
pub(super) fn recv_template() -> Box<libc::msghdr> {
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths).
    let mut m: Box<libc::msghdr> = Box::new(unsafe { mem::zeroed() });
    m.msg_namelen = NAME_LEN as libc::socklen_t;
    m
}

/// Where a socket's multishot receive stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RecvState {
    /// In flight.
    Armed,
    /// Ended; to be armed again (not before the instant, after an error).
    Idle(Option<Instant>),
    /// Cancellation asked; waiting for the last completion.
    Cancelling,
    /// Ended for good (slot free or being freed).
    Done,
}

pub(super) struct Slot {
    pub(super) local: LocalPort,
    pub(super) socket: Option<UdpSocket>,
    pub(super) gen: u32,
    pub(super) state: RecvState,
}

/// A datagram sitting in a provided buffer, taken off the completion queue while a batch
/// was not being filled.
#[derive(Clone, Copy)]
pub(super) struct Pending {
    index: u32,
    gen: u32,
    bid: u16,
    len: u32,
}

impl UringIo {
    /// Arms the waker poll and every idle receive that is due.
    pub(super) fn arm_pending(&mut self) {
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
    pub(super) fn drain_aside(&mut self) {
        while let Some(c) = self.next_completion() {
            if let Some(p) = self.complete(&c) {
                debug_assert!(self.backlog.len() < self.backlog.capacity());
                self.backlog.push_back(p);
            }
        }
    }

    /// Moves waiting datagrams into `batch` until it is full or none is left.
    pub(super) fn fill(&mut self, batch: &mut Batch) {
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

    pub(super) fn release_slot(&mut self, index: u32) {
        let s = &mut self.slots[index as usize];
        s.socket = None;
        s.state = RecvState::Done;
        s.gen = s.gen.wrapping_add(1) & GEN_MASK;
        self.free.push(index);
    }

    /// Asks every in-flight receive and the poll to end and waits for that, up to
    /// [`CANCEL_WAIT`]. True when nothing is left in flight.
    pub(super) fn cancel_all(&mut self) -> bool {
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
            let busy = self.poll_armed
                || self.sends_in_flight > 0
                || self.slots.iter().any(|s| s.state == RecvState::Cancelling);
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
