//! Classic libpcap capture files: reading in either byte order with microsecond or
//! nanosecond timestamps, and writing (little-endian, with the precision of the input).
//!
//! A capture file is untrusted input: every length in it is checked before it is used,
//! and a damaged file yields a [`PcapError`], never a panic or a huge allocation.

use std::io::{self, Read, Write};

/// BSD loopback: a 4-byte address family in the capturing host's byte order.
pub const LINKTYPE_NULL: u16 = 0;
/// Ethernet II, possibly with 802.1Q / 802.1ad VLAN tags.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// Raw IP as some systems number it (DLT_RAW).
pub const LINKTYPE_RAW_12: u16 = 12;
/// Raw IP as OpenBSD numbers it (DLT_RAW).
pub const LINKTYPE_RAW_14: u16 = 14;
/// Raw IPv4 or IPv6, no link header.
pub const LINKTYPE_RAW: u16 = 101;
/// OpenBSD loopback: a 4-byte address family in network byte order.
pub const LINKTYPE_LOOP: u16 = 108;
/// Linux "cooked" capture, version 1 (16-byte header).
pub const LINKTYPE_LINUX_SLL: u16 = 113;
/// Raw IPv4 only.
pub const LINKTYPE_IPV4: u16 = 228;
/// Raw IPv6 only.
pub const LINKTYPE_IPV6: u16 = 229;
/// Linux "cooked" capture, version 2 (20-byte header).
pub const LINKTYPE_LINUX_SLL2: u16 = 276;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const MAGIC_PCAPNG: u32 = 0x0a0d_0d0a;
/// Snapshot length assumed when a file declares 0, as libpcap does.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// No record is ever read larger than this, whatever the file's snapshot length says.
pub const MAX_RECORD: u32 = 16 << 20;

/// Why a capture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("I/O error: {0}")]
    Io(io::Error),
    #[error("file is shorter than the 24-byte pcap file header")]
    TruncatedFileHeader,
    #[error("not a pcap file (magic number {0:#010x})")]
    BadMagic(u32),
    #[error("pcapng files are not supported; convert with `editcap -F pcap IN OUT`")]
    Pcapng,
    #[error("unsupported pcap format version {major}.{minor}")]
    BadVersion { major: u16, minor: u16 },
    #[error("packet record {index}: header cut short ({got} of 16 bytes)")]
    TruncatedRecordHeader { index: u64, got: usize },
    #[error("packet record {index}: data cut short ({got} of {want} bytes)")]
    TruncatedRecord { index: u64, want: u32, got: usize },
    #[error("packet record {index}: {caplen} captured bytes exceed the snapshot length {snaplen}")]
    CaplenOverSnaplen {
        index: u64,
        caplen: u32,
        snaplen: u32,
    },
}

impl From<io::Error> for PcapError {
    fn from(e: io::Error) -> Self {
        PcapError::Io(e)
    }
}

/// The file header of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapHeader {
    /// Timestamps carry nanoseconds (magic `a1b23c4d`) rather than microseconds.
    pub nanos: bool,
    /// The file was written in big-endian byte order.
    pub big_endian: bool,
    pub version_major: u16,
    pub version_minor: u16,
    pub thiszone: i32,
    pub sigfigs: u32,
    pub snaplen: u32,
    /// The whole link-type field; the link type proper is its low 16 bits.
    pub linktype_field: u32,
}

impl PcapHeader {
    /// A header for a new file.
    pub fn new(linktype: u16, nanos: bool) -> Self {
        PcapHeader {
            nanos,
            big_endian: false,
            version_major: 2,
            version_minor: 4,
            thiszone: 0,
            sigfigs: 0,
            snaplen: DEFAULT_SNAPLEN,
            linktype_field: linktype as u32,
        }
    }

    /// The link type (LINKTYPE_* value), without the FCS bits of the field's high half.
    pub fn linktype(&self) -> u16 {
        (self.linktype_field & 0xffff) as u16
    }

    /// The largest record this file may hold.
    pub fn max_caplen(&self) -> u32 {
        let snap = if self.snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            self.snaplen
        };
        snap.min(MAX_RECORD)
    }
}

/// One packet record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub ts_sec: u32,
    /// Microseconds or nanoseconds, as the file header says.
    pub ts_frac: u32,
    /// Length of the packet on the wire; `data` may be shorter when the capture cut it.
    pub orig_len: u32,
    pub data: Vec<u8>,
}

impl Record {
    /// Whether the capture holds the whole packet.
    pub fn is_complete(&self) -> bool {
        self.data.len() as u64 >= self.orig_len as u64
    }
}

/// Reads as many bytes as are there, up to `buf.len()`; returns how many.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A reader of classic pcap files.
pub struct PcapReader<R> {
    inner: R,
    header: PcapHeader,
    records: u64,
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut inner: R) -> Result<Self, PcapError> {
        let mut h = [0u8; 24];
        if read_up_to(&mut inner, &mut h)? < 24 {
            return Err(PcapError::TruncatedFileHeader);
        }
        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let (nanos, big_endian) = match (le, be) {
            (MAGIC_MICROS, _) => (false, false),
            (MAGIC_NANOS, _) => (true, false),
            (_, MAGIC_MICROS) => (false, true),
            (_, MAGIC_NANOS) => (true, true),
            (MAGIC_PCAPNG, _) => return Err(PcapError::Pcapng),
            _ => return Err(PcapError::BadMagic(be)),
        };
        let u16_at = |i: usize| {
            let b = [h[i], h[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let header = PcapHeader {
            nanos,
            big_endian,
            version_major: u16_at(4),
            version_minor: u16_at(6),
            thiszone: u32_at(8) as i32,
            sigfigs: u32_at(12),
            snaplen: u32_at(16),
            linktype_field: u32_at(20),
        };
        if header.version_major != 2 {
            return Err(PcapError::BadVersion {
                major: header.version_major,
                minor: header.version_minor,
            });
        }
        Ok(PcapReader {
            inner,
            header,
            records: 0,
        })
    }

    pub fn header(&self) -> &PcapHeader {
        &self.header
    }

    fn u32_at(&self, b: &[u8; 16], i: usize) -> u32 {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if self.header.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    }

    /// The next record, or `None` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<Record>, PcapError> {
        let index = self.records + 1;
        let mut h = [0u8; 16];
        match read_up_to(&mut self.inner, &mut h)? {
            0 => return Ok(None),
            16 => {}
            got => return Err(PcapError::TruncatedRecordHeader { index, got }),
        }
        let caplen = self.u32_at(&h, 8);
        if caplen > self.header.max_caplen() {
            return Err(PcapError::CaplenOverSnaplen {
                index,
                caplen,
                snaplen: self.header.snaplen,
            });
        }
        let mut data = vec![0u8; caplen as usize];
        let got = read_up_to(&mut self.inner, &mut data)?;
        if got < data.len() {
            return Err(PcapError::TruncatedRecord {
                index,
                want: caplen,
                got,
            });
        }
        self.records = index;
        Ok(Some(Record {
            ts_sec: self.u32_at(&h, 0),
            ts_frac: self.u32_at(&h, 4),
            orig_len: self.u32_at(&h, 12),
            data,
        }))
    }

    /// Records read so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }
}

/// A writer of classic little-endian pcap files.
pub struct PcapWriter<W: Write> {
    inner: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. Byte order is always little-endian; the precision, link
    /// type and snapshot length are taken from `header`.
    pub fn new(mut inner: W, header: &PcapHeader) -> io::Result<Self> {
        let magic = if header.nanos {
            MAGIC_NANOS
        } else {
            MAGIC_MICROS
        };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&header.thiszone.to_le_bytes());
        h.extend_from_slice(&header.sigfigs.to_le_bytes());
        h.extend_from_slice(&header.snaplen.to_le_bytes());
        h.extend_from_slice(&header.linktype_field.to_le_bytes());
        inner.write_all(&h)?;
        Ok(PcapWriter { inner })
    }

    pub fn write_record(&mut self, rec: &Record) -> io::Result<()> {
        let caplen = u32::try_from(rec.data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&rec.ts_sec.to_le_bytes());
        h[4..8].copy_from_slice(&rec.ts_frac.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&rec.orig_len.max(caplen).to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(&rec.data)
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(magic: [u8; 4], big: bool, snaplen: u32, link: u32) -> Vec<u8> {
        let mut v = magic.to_vec();
        let w16 = |x: u16| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let w32 = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        v.extend_from_slice(&w16(2));
        v.extend_from_slice(&w16(4));
        v.extend_from_slice(&w32(0));
        v.extend_from_slice(&w32(0));
        v.extend_from_slice(&w32(snaplen));
        v.extend_from_slice(&w32(link));
        v
    }

    #[test]
    fn reads_big_endian_nanosecond_files() {
        let mut f = header_bytes([0xa1, 0xb2, 0x3c, 0x4d], true, 100, 1);
        for x in [7u32, 999_999_999, 3, 60] {
            f.extend_from_slice(&x.to_be_bytes());
        }
        f.extend_from_slice(&[1, 2, 3]);
        let mut r = PcapReader::new(&f[..]).unwrap();
        assert!(r.header().nanos && r.header().big_endian);
        assert_eq!(r.header().linktype(), LINKTYPE_ETHERNET);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(
            (rec.ts_sec, rec.ts_frac, rec.orig_len),
            (7, 999_999_999, 60)
        );
        assert_eq!(rec.data, [1, 2, 3]);
        assert!(!rec.is_complete());
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn written_files_read_back() {
        let mut h = PcapHeader::new(LINKTYPE_RAW, true);
        h.snaplen = 1000;
        let mut w = PcapWriter::new(Vec::new(), &h).unwrap();
        let rec = Record {
            ts_sec: 1,
            ts_frac: 2,
            orig_len: 4,
            data: vec![9; 4],
        };
        w.write_record(&rec).unwrap();
        let bytes = w.finish().unwrap();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header(), &h);
        assert_eq!(r.next_record().unwrap().unwrap(), rec);
    }

    #[test]
    fn pcapng_is_named() {
        let f = header_bytes([0x0a, 0x0d, 0x0d, 0x0a], false, 0, 1);
        assert!(matches!(PcapReader::new(&f[..]), Err(PcapError::Pcapng)));
    }
}
