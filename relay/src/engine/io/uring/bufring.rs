//! The provided-buffer ring multishot receives take their buffers from.

use std::io;
use std::mem;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;

use super::{BGID, BUF_LEN};

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
pub(super) struct BufRing {
    map: NonNull<u8>,
    map_len: usize,
    ring_len: usize,
    pub(super) count: u16,
    tail: u16,
}

impl BufRing {
    pub(super) fn new(count: u16) -> io::Result<Self> {
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
    pub(super) fn register(&mut self, ring: &IoUring) -> io::Result<()> {
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
    pub(super) fn give(&mut self, bid: u16) {
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
    pub(super) fn buf(&self, bid: u16, len: usize) -> &[u8] {
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
