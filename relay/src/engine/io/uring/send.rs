//! The C structures sends point at, and filling them for one packet.

use std::mem;
use std::os::fd::RawFd;
use std::ptr;

use io_uring::opcode;
use io_uring::squeue;
use io_uring::types::Fd;

use super::{user_data, UringIo, OP_SEND};
use crate::engine::io::sockaddr::to_storage;
use crate::engine::io::MAX_BATCH;

/// The C structures for one batch of sends, allocated once; entry `i` serves batch slot `i`.
pub(super) struct SendHeaders {
    hdrs: Box<[libc::msghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
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
        }
    }
}

impl UringIo {
    /// Fills send header `i` for `len` bytes at `buf` to `to`; returns the entry.
    pub(super) fn prepare_send(
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
