//! The C structures sends point at, the copies of the packets they send, and filling them
//! for one packet. A batch's sends are queued by `send` and handed to the kernel by the
//! next `io_uring_enter` (usually the one `recv` waits in), so they point at memory owned
//! here rather than at the worker's batch, which the next receive overwrites.

use std::mem;
use std::os::fd::RawFd;
use std::ptr;

use io_uring::opcode;
use io_uring::squeue;
use io_uring::types::Fd;

use super::{user_data, UringIo, OP_SEND};
use crate::engine::io::sockaddr::to_storage;
use crate::engine::io::{BUF_SIZE, MAX_BATCH};

/// The C structures and packet copies for one batch of sends, allocated once; entry `i`
/// serves batch slot `i`.
#[derive(Default)]
pub(super) struct SendHeaders {
    hdrs: Box<[libc::msghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
    bufs: Box<[[u8; BUF_SIZE]]>,
}

impl SendHeaders {
    pub(super) fn new() -> Self {
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
            bufs: vec![[0u8; BUF_SIZE]; MAX_BATCH].into_boxed_slice(),
        }
    }
}

impl UringIo {
    /// Copies `data` (at most [`BUF_SIZE`] bytes) into send slot `i` and fills its header
    /// for `to`; returns the entry. Slot `i` must not have a send in flight.
    pub(super) fn prepare_send(
        &mut self,
        i: usize,
        fd: RawFd,
        to: std::net::SocketAddr,
        data: &[u8],
    ) -> squeue::Entry {
        let len = data.len().min(BUF_SIZE);
        self.send.bufs[i][..len].copy_from_slice(&data[..len]);
        let alen = to_storage(&to, &mut self.send.addrs[i]);
        self.send.iovs[i] = libc::iovec {
            iov_base: self.send.bufs[i].as_mut_ptr().cast(),
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
