//! Batched UDP I/O over libc: `sendmmsg` with a destination per message, `recvmmsg` with the
//! kernel's receive timestamp (SO_TIMESTAMPNS) per message, and a small epoll wrapper.
//! The only `unsafe` of the bench lives here.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use crate::packet::{realtime_ns, BUF_LEN};

/// Messages per `sendmmsg` / `recvmmsg` call.
pub const BATCH: usize = 32;

/// Large buffers (forced past rmem_max when permitted) and receive timestamps.
pub fn tune_socket(s: &UdpSocket) {
    let fd = s.as_raw_fd();
    let size: libc::c_int = 8 << 20;
    let one: libc::c_int = 1;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: fd is a live socket; the option values are c_ints of the stated length.
    unsafe {
        for (force, plain) in [
            (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
            (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
        ] {
            let v = &size as *const libc::c_int as *const libc::c_void;
            if libc::setsockopt(fd, libc::SOL_SOCKET, force, v, len) != 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, plain, v, len);
            }
        }
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &one as *const libc::c_int as *const libc::c_void,
            len,
        );
    }
}

/// A socket address in the C layout `sendmmsg` wants.
#[derive(Clone, Copy)]
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    pub fn new(addr: SocketAddr) -> Self {
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }
}

/// Outgoing packets of one batch: buffers, lengths and destinations.
pub struct SendBatch {
    pub bufs: Vec<[u8; BUF_LEN]>,
    pub lens: [usize; BATCH],
    pub dests: [Option<RawAddr>; BATCH],
    pub count: usize,
    /// Which messages of the last `send` the kernel refused.
    pub failed: [bool; BATCH],
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            bufs: vec![[0u8; BUF_LEN]; BATCH],
            lens: [0; BATCH],
            dests: [None; BATCH],
            count: 0,
            failed: [false; BATCH],
        }
    }
}

impl SendBatch {
    /// Sends `count` packets on `fd`, retrying partial sends. A message the kernel refuses
    /// with an error other than EINTR/EAGAIN/ENOBUFS is skipped and marked in `failed`;
    /// returns how many were accepted.
    pub fn send(&mut self, fd: RawFd) -> usize {
        self.failed = [false; BATCH];
        let mut done = 0;
        let mut accepted = 0;
        let mut spins = 0;
        while done < self.count {
            let n = self.count - done;
            let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; BATCH];
            // SAFETY: mmsghdr is plain data; zero is a valid empty header.
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for i in 0..n {
                let j = done + i;
                iovs[i].iov_base = self.bufs[j].as_mut_ptr() as *mut libc::c_void;
                iovs[i].iov_len = self.lens[j];
                hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
                hdrs[i].msg_hdr.msg_iovlen = 1;
                if let Some(d) = &mut self.dests[j] {
                    hdrs[i].msg_hdr.msg_name = &mut d.storage as *mut _ as *mut libc::c_void;
                    hdrs[i].msg_hdr.msg_namelen = d.len;
                }
            }
            // SAFETY: hdrs[..n] point at live buffers, iovecs and addresses for the call.
            let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
            if r > 0 {
                done += r as usize;
                accepted += r as usize;
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) if spins < 1000 => {
                    spins += 1;
                    std::thread::yield_now();
                }
                _ => {
                    self.failed[done] = true;
                    done += 1;
                }
            }
        }
        accepted
    }
}

/// Received datagrams of one `recvmmsg` call.
pub struct RecvBatch {
    pub bufs: Vec<[u8; BUF_LEN]>,
    pub lens: [usize; BATCH],
    /// Kernel receive time (CLOCK_REALTIME ns), or the time the batch was read.
    pub stamps: [u64; BATCH],
    ctrl: Vec<[u64; 8]>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![[0u8; BUF_LEN]; BATCH],
            lens: [0; BATCH],
            stamps: [0; BATCH],
            ctrl: vec![[0u64; 8]; BATCH],
        }
    }
}

impl RecvBatch {
    /// Reads up to [`BATCH`] datagrams from `fd` without blocking; 0 when none is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovs: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is plain data; zero is a valid empty header.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            iovs[i].iov_base = self.bufs[i].as_mut_ptr() as *mut libc::c_void;
            iovs[i].iov_len = BUF_LEN;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_control = self.ctrl[i].as_mut_ptr() as *mut libc::c_void;
            hdrs[i].msg_hdr.msg_controllen = std::mem::size_of::<[u64; 8]>();
        }
        loop {
            // SAFETY: every header points at a live buffer and control area of the stated size.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                let n = r as usize;
                let now = realtime_ns();
                for (i, h) in hdrs.iter().enumerate().take(n) {
                    self.lens[i] = h.msg_len as usize;
                    self.stamps[i] = timestamp_of(&h.msg_hdr).unwrap_or(now);
                }
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Ok(0),
                _ => return Err(e),
            }
        }
    }
}

fn timestamp_of(h: &libc::msghdr) -> Option<u64> {
    // SAFETY: the control buffer was filled by the kernel; CMSG_* walk it within its length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// An epoll instance watching sockets for input.
pub struct Poller {
    fd: RawFd,
}

impl Poller {
    pub fn new(fds: &[RawFd]) -> io::Result<Self> {
        // SAFETY: epoll_create1 has no memory preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let p = Poller { fd };
        for (i, &s) in fds.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both descriptors are live; ev is a valid event.
            if unsafe { libc::epoll_ctl(p.fd, libc::EPOLL_CTL_ADD, s, &mut ev) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(p)
    }

    /// Waits up to `timeout_ms` and writes the indexes (into the `fds` given to `new`) of
    /// ready sockets to `ready`; returns how many.
    pub fn wait(&self, ready: &mut [usize], timeout_ms: i32) -> usize {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let max = evs.len().min(ready.len()) as libc::c_int;
        // SAFETY: evs has room for `max` events.
        let n = unsafe { libc::epoll_wait(self.fd, evs.as_mut_ptr(), max, timeout_ms) };
        if n <= 0 {
            return 0;
        }
        for i in 0..n as usize {
            ready[i] = evs[i].u64 as usize;
        }
        n as usize
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // SAFETY: fd is owned by this poller.
        unsafe { libc::close(self.fd) };
    }
}
