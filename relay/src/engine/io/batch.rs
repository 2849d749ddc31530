//! The default backend: epoll (through mio, edge-triggered) for readiness and
//! `recvmmsg`/`sendmmsg` for up to [`MAX_BATCH`] datagrams per system call.

use std::collections::HashMap;
use std::io;
use std::mem;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::sockaddr::{from_storage, to_storage};
use super::{Batch, Out, PacketIo, SendReport, BUF_SIZE, MAX_BATCH, MAX_DATAGRAM};
use crate::engine::waker::Waker;
use crate::engine::LocalPort;

const WAKER: Token = Token(usize::MAX);

fn token(l: LocalPort) -> Token {
    Token(((l.iface as usize) << 16) | l.port as usize)
}

fn local_of(t: Token) -> LocalPort {
    LocalPort {
        iface: (t.0 >> 16) as u8,
        port: t.0 as u16,
    }
}

/// The C structures one `recvmmsg`/`sendmmsg` call needs, allocated once.
struct MsgVec {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
}

// SAFETY: the raw pointers inside are only dereferenced by the kernel during a system call
// made by the thread that owns the backend; between calls they are dead values.
unsafe impl Send for MsgVec {}

impl MsgVec {
    fn new() -> Self {
        MsgVec {
            // SAFETY: all-zero is a valid value for these plain C structures.
            hdrs: (0..MAX_BATCH)
                .map(|_| unsafe { mem::zeroed::<libc::mmsghdr>() })
                .collect(),
            iovs: (0..MAX_BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: as above.
            addrs: (0..MAX_BATCH)
                .map(|_| unsafe { mem::zeroed::<libc::sockaddr_storage>() })
                .collect(),
        }
    }

    /// Points entry `i` at `buf[..len]` and address slot `i`.
    fn set(&mut self, i: usize, buf: *mut u8, len: usize, addr_len: libc::socklen_t) {
        self.iovs[i] = libc::iovec {
            iov_base: buf as *mut libc::c_void,
            iov_len: len,
        };
        let h = &mut self.hdrs[i].msg_hdr;
        h.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
        h.msg_namelen = addr_len;
        h.msg_iov = &mut self.iovs[i];
        h.msg_iovlen = 1;
        h.msg_control = std::ptr::null_mut();
        h.msg_controllen = 0;
        h.msg_flags = 0;
        self.hdrs[i].msg_len = 0;
    }
}

/// epoll + `recvmmsg`/`sendmmsg`.
pub struct BatchIo {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    sockets: HashMap<LocalPort, UdpSocket>,
    /// Ports that may still hold datagrams (edge-triggered readiness not yet drained).
    ready: Vec<LocalPort>,
    next_ready: usize,
    msgs: MsgVec,
    /// See [`PacketIo::set_coalesce`].
    coalesce: Duration,
    /// The last `recv` returned packets: traffic is flowing.
    flowing: bool,
}

impl BatchIo {
    pub fn new(waker: Arc<Waker>) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut SourceFd(&waker.as_raw_fd()), WAKER, Interest::READABLE)?;
        Ok(BatchIo {
            poll,
            events: Events::with_capacity(256),
            waker,
            sockets: HashMap::new(),
            ready: Vec::with_capacity(1024),
            next_ready: 0,
            msgs: MsgVec::new(),
            coalesce: Duration::ZERO,
            flowing: false,
        })
    }

    fn mark_ready(&mut self, l: LocalPort) {
        if !self.ready.contains(&l) {
            self.ready.push(l);
        }
    }

    /// Waits up to `timeout` for readiness; true when the waker fired.
    fn poll_events(&mut self, timeout: Duration) -> io::Result<bool> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        }
        let mut woke = false;
        let mut fresh = [LocalPort::default(); 256];
        let mut n = 0;
        for ev in self.events.iter() {
            if ev.token() == WAKER {
                woke = true;
            } else if n < fresh.len() {
                fresh[n] = local_of(ev.token());
                n += 1;
            }
        }
        if woke {
            self.waker.drain();
        }
        for l in &fresh[..n] {
            if self.sockets.contains_key(l) {
                self.mark_ready(*l);
            }
        }
        Ok(woke)
    }

    /// One `recvmmsg` on `fd` into batch slots `batch.len..`; returns how many arrived and
    /// whether the socket may hold more.
    fn recv_from(&mut self, fd: RawFd, local: LocalPort, batch: &mut Batch) -> (usize, bool) {
        let start = batch.len;
        let want = batch.capacity() - start;
        for i in 0..want {
            let buf = batch.bufs[start + i].as_mut_ptr();
            self.msgs.set(
                i,
                buf,
                BUF_SIZE,
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
            );
        }
        // SAFETY: `want` headers are initialised and point at live buffers of BUF_SIZE
        // bytes and at address slots owned by `self.msgs`, all outliving the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.hdrs.as_mut_ptr(),
                want as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                // An ICMP error queued on the socket was reported; datagrams may follow.
                Some(libc::ECONNREFUSED) | Some(libc::EINTR) => (0, true),
                // EAGAIN: drained. Anything else: nothing more to read now.
                _ => (0, false),
            };
        }
        let n = n as usize;
        let mut kept = 0;
        for i in 0..n {
            let h = &self.msgs.hdrs[i];
            let Some(peer) = from_storage(&self.msgs.addrs[i]) else {
                continue;
            };
            let len = h.msg_len as usize;
            let m = &mut batch.meta[start + kept];
            m.local = local;
            m.peer = peer;
            m.len = len.min(BUF_SIZE);
            m.oversized = len > MAX_DATAGRAM || h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            m.out = None;
            if kept != i {
                batch
                    .bufs
                    .copy_within(start + i..start + i + 1, start + kept);
            }
            kept += 1;
        }
        batch.len = start + kept;
        (n, n == want)
    }

    /// Sends `batch` entries `idx` (all leaving from `from`) with as few calls as possible.
    fn send_group(
        &mut self,
        from: LocalPort,
        batch: &mut Batch,
        idx: &[usize],
        report: &mut SendReport,
    ) {
        let Some(fd) = self.sockets.get(&from).map(|s| s.as_raw_fd()) else {
            report.failed += idx.len() as u64;
            return;
        };
        for (i, &b) in idx.iter().enumerate() {
            let Some(Out { to, len, .. }) = batch.meta[b].out else {
                continue;
            };
            let alen = to_storage(&to, &mut self.msgs.addrs[i]);
            let buf = batch.bufs[b].as_mut_ptr();
            self.msgs.set(i, buf, len, alen);
        }
        let mut done = 0;
        while done < idx.len() {
            // SAFETY: entries done..idx.len() were initialised above and point at live
            // buffers and addresses that outlive the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.msgs.hdrs[done..].as_mut_ptr(),
                    (idx.len() - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 {
                done += n as usize;
                report.sent += n as u64;
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if e.kind() == io::ErrorKind::WouldBlock {
                // The socket buffer is full: drop the rest rather than wait.
                report.failed += (idx.len() - done) as u64;
                return;
            }
            // This datagram was refused (unreachable, too big …): skip it, keep going.
            report.failed += 1;
            done += 1;
        }
    }
}

impl PacketIo for BatchIo {
    fn name(&self) -> &'static str {
        "batch"
    }

    fn attach(&mut self, local: LocalPort, socket: UdpSocket) -> io::Result<()> {
        socket.set_nonblocking(true)?;
        self.poll.registry().register(
            &mut SourceFd(&socket.as_raw_fd()),
            token(local),
            Interest::READABLE,
        )?;
        if let Some(old) = self.sockets.insert(local, socket) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&old.as_raw_fd()));
        }
        // Datagrams may have arrived before registration.
        self.mark_ready(local);
        Ok(())
    }

    fn detach(&mut self, local: LocalPort) {
        if let Some(s) = self.sockets.remove(&local) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&s.as_raw_fd()));
        }
        self.ready.retain(|l| *l != local);
    }

    fn recv(&mut self, batch: &mut Batch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        if !self.ready.is_empty() {
            self.poll_events(Duration::ZERO)?;
        } else if self.flowing && !self.coalesce.is_zero() {
            // Traffic is flowing: let the window pass (a command cuts it short), then take
            // everything that arrived in it; nothing did: wait as usual.
            self.waker.linger(self.coalesce);
            let woke = self.poll_events(Duration::ZERO)?;
            if self.ready.is_empty() && !woke {
                self.poll_events(timeout)?;
            }
        } else {
            self.poll_events(timeout)?;
        }
        while batch.len < batch.capacity() && !self.ready.is_empty() {
            if self.next_ready >= self.ready.len() {
                self.next_ready = 0;
            }
            let local = self.ready[self.next_ready];
            let Some(fd) = self.sockets.get(&local).map(|s| s.as_raw_fd()) else {
                self.ready.swap_remove(self.next_ready);
                continue;
            };
            let (_, more) = self.recv_from(fd, local, batch);
            if more {
                self.next_ready += 1;
            } else {
                self.ready.swap_remove(self.next_ready);
            }
        }
        self.flowing = batch.len > 0;
        Ok(batch.len)
    }

    fn set_coalesce(&mut self, linger: Duration) {
        self.coalesce = linger;
    }

    fn send(&mut self, batch: &mut Batch) -> SendReport {
        let mut report = SendReport::default();
        let mut group = [0usize; MAX_BATCH];
        let mut i = 0;
        while i < batch.len {
            let Some(first) = batch.meta[i].out else {
                i += 1;
                continue;
            };
            // Consecutive packets leaving from the same port go out in one call.
            let mut n = 0;
            while i < batch.len {
                match batch.meta[i].out {
                    Some(o) if o.from == first.from => {
                        group[n] = i;
                        n += 1;
                        i += 1;
                    }
                    None => i += 1,
                    Some(_) => break,
                }
            }
            self.send_group(first.from, batch, &group[..n], &mut report);
        }
        report
    }
}
