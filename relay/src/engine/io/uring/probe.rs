//! Whether io_uring works here, and ring setup.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use io_uring::types::{Fd, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, IoUring, Probe};

use super::bufring::BufRing;
use super::recv::recv_template;
use super::{user_data, BGID, CANCEL_WAIT, OP_CANCEL, OP_RECV};

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
pub(super) fn on_own_thread<T: Send + 'static>(
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

pub(super) fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("io_uring lacks {what}"))
}

/// A ring for one worker. Preferred: a single issuer with deferred task work (completions
/// are produced only when the worker enters the kernel), created disabled so that the
/// worker thread, not the thread that built it, becomes its issuer. Older kernels get a
/// plain ring. Returns whether the ring still has to be enabled.
pub(super) fn new_ring(sq: u32, cq: u32) -> io::Result<(IoUring, bool)> {
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
