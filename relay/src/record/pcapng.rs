//! The pcapng blocks of a voicemail message (little-endian, one section), and a strict
//! reader of blocks. Only what srtpgate writes is accepted back: this is a reader for
//! srtpgate's own files, where anything unexpected is a sign of damage or tampering.

use std::io::{self, Read};

/// Section Header Block.
pub const SHB: u32 = 0x0A0D_0D0A;
/// Interface Description Block.
pub const IDB: u32 = 0x0000_0001;
/// Enhanced Packet Block.
pub const EPB: u32 = 0x0000_0006;
/// Custom Block that tools may copy into other files.
pub const CUSTOM: u32 = 0x0000_0BAD;
/// The byte-order magic, as written (little-endian).
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// LINKTYPE_USER0: each packet is one bare UDP payload, here an SRTP datagram.
pub const LINKTYPE_USER0: u16 = 147;
/// Private Enterprise Number in the custom block and custom options: 32473, the number
/// RFC 5612 sets aside for documentation, until the project registers its own. The format
/// id that follows it ("SGVM") is what identifies srtpgate's data.
pub const PEN: u32 = 32473;
/// Custom option, binary, may be copied (pcapng §3.5.1).
pub const OPT_CUSTOM_BINARY: u16 = 2989;
/// Largest block accepted when reading (packets are at most 1500 bytes).
pub const MAX_BLOCK: usize = 64 * 1024;

const OPT_ENDOFOPT: u16 = 0;
const OPT_SHB_USERAPPL: u16 = 4;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;

/// Zero bytes that pad `n` to a multiple of four.
pub fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

/// A block under construction: fields are appended, lengths filled in by `finish`.
pub struct BlockBuf {
    buf: Vec<u8>,
}

impl BlockBuf {
    pub fn new(block_type: u32) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&block_type.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        BlockBuf { buf }
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Zero bytes up to the next multiple of four.
    pub fn pad(&mut self) -> &mut Self {
        let n = pad4(self.buf.len());
        self.buf.extend_from_slice(&[0; 3][..n]);
        self
    }

    /// One option: code, length, value, padding.
    pub fn option(&mut self, code: u16, value: &[u8]) -> &mut Self {
        self.u16(code).u16(value.len() as u16).bytes(value).pad()
    }

    pub fn end_of_options(&mut self) -> &mut Self {
        self.u16(OPT_ENDOFOPT).u16(0)
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes the total length at both ends and returns the block.
    pub fn finish(mut self) -> Vec<u8> {
        self.pad();
        let total = (self.buf.len() + 4) as u32;
        self.buf[4..8].copy_from_slice(&total.to_le_bytes());
        self.buf.extend_from_slice(&total.to_le_bytes());
        self.buf
    }
}

/// The Section Header Block: version 1.0, section length unknown (-1), `shb_userappl`.
pub fn section_header(userappl: &str) -> Vec<u8> {
    let mut b = BlockBuf::new(SHB);
    b.u32(BYTE_ORDER_MAGIC).u16(1).u16(0).u64(u64::MAX);
    b.option(OPT_SHB_USERAPPL, userappl.as_bytes())
        .end_of_options();
    b.finish()
}

/// An Interface Description Block for one call direction: LINKTYPE_USER0, no snapshot
/// limit, nanosecond timestamps (`if_tsresol` = 9), the direction's name as `if_name`.
pub fn interface(name: &str) -> Vec<u8> {
    let mut b = BlockBuf::new(IDB);
    b.u16(LINKTYPE_USER0).u16(0).u32(0);
    b.option(OPT_IF_NAME, name.as_bytes())
        .option(OPT_IF_TSRESOL, &[9])
        .end_of_options();
    b.finish()
}

/// Length of the MAC carried in every packet block and the end block.
pub const MAC_LEN: usize = 16;

/// An Enhanced Packet Block holding `data` unchanged, with one custom option (PEN, then a
/// MAC of `MAC_LEN` zero bytes to be filled in). Returns the block and the MAC's offset.
pub fn packet(interface: u32, unix_nanos: u64, data: &[u8]) -> (Vec<u8>, usize) {
    let mut b = BlockBuf::new(EPB);
    b.u32(interface)
        .u32((unix_nanos >> 32) as u32)
        .u32(unix_nanos as u32)
        .u32(data.len() as u32)
        .u32(data.len() as u32)
        .bytes(data)
        .pad();
    b.u16(OPT_CUSTOM_BINARY).u16((4 + MAC_LEN) as u16).u32(PEN);
    let mac_at = b.len();
    b.bytes(&[0; MAC_LEN]).end_of_options();
    (b.finish(), mac_at)
}

/// A custom block: PEN, then `data` (padded).
pub fn custom(data: &[u8]) -> Vec<u8> {
    let mut b = BlockBuf::new(CUSTOM);
    b.u32(PEN).bytes(data);
    b.finish()
}

/// Why the block structure of a file is not what srtpgate writes.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("block at offset {offset}: {what}")]
    Malformed { offset: u64, what: &'static str },
    /// The file ends inside a block (a crash, a full disk, or a cut copy).
    #[error("file ends inside the block at offset {offset}")]
    Truncated { offset: u64 },
}

/// One whole block, with its offset in the file.
pub struct Block {
    pub offset: u64,
    pub block_type: u32,
    /// The whole block, from its type field to its trailing length.
    pub bytes: Vec<u8>,
}

impl Block {
    /// The block body, between the leading and trailing length fields.
    pub fn body(&self) -> &[u8] {
        &self.bytes[8..self.bytes.len() - 4]
    }

    fn malformed(&self, what: &'static str) -> BlockError {
        BlockError::Malformed {
            offset: self.offset,
            what,
        }
    }
}

/// Reads blocks one at a time, checking every length before use.
pub struct BlockReader<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> BlockReader<R> {
    pub fn new(inner: R) -> Self {
        BlockReader { inner, offset: 0 }
    }

    /// Bytes consumed so far: the end of the last whole block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next block; `None` at a clean end of file.
    pub fn next_block(&mut self) -> Result<Option<Block>, BlockError> {
        let offset = self.offset;
        let mut head = [0u8; 8];
        let got = read_full(&mut self.inner, &mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < 8 {
            return Err(BlockError::Truncated { offset });
        }
        let block_type = le32(&head, 0);
        let total = le32(&head, 4) as usize;
        if total < 12 || total & 3 != 0 || total > MAX_BLOCK {
            return Err(BlockError::Malformed {
                offset,
                what: "bad block length",
            });
        }
        let mut bytes = vec![0u8; total];
        bytes[..8].copy_from_slice(&head);
        let got = read_full(&mut self.inner, &mut bytes[8..])?;
        if got < total - 8 {
            return Err(BlockError::Truncated { offset });
        }
        if le32(&bytes, total - 4) as usize != total {
            return Err(BlockError::Malformed {
                offset,
                what: "trailing block length differs from the leading one",
            });
        }
        self.offset += total as u64;
        Ok(Some(Block {
            offset,
            block_type,
            bytes,
        }))
    }
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub fn le64(b: &[u8], at: usize) -> u64 {
    (le32(b, at) as u64) | ((le32(b, at + 4) as u64) << 32)
}

/// A parsed Section Header Block.
pub fn parse_section_header(b: &Block) -> Result<(), BlockError> {
    if b.block_type != SHB {
        return Err(b.malformed("the file does not start with a section header"));
    }
    let body = b.body();
    if body.len() < 16 || le32(body, 0) != BYTE_ORDER_MAGIC {
        return Err(b.malformed("bad byte-order magic"));
    }
    if le16(body, 4) != 1 || le16(body, 6) != 0 {
        return Err(b.malformed("pcapng version is not 1.0"));
    }
    parse_options(&body[16..]).map_err(|w| b.malformed(w))?;
    Ok(())
}

/// A parsed Interface Description Block: its name.
pub fn parse_interface(b: &Block) -> Result<String, BlockError> {
    let body = b.body();
    if body.len() < 8 {
        return Err(b.malformed("interface block too short"));
    }
    if le16(body, 0) != LINKTYPE_USER0 || le16(body, 2) != 0 {
        return Err(b.malformed("interface link type is not LINKTYPE_USER0"));
    }
    let opts = parse_options(&body[8..]).map_err(|w| b.malformed(w))?;
    let mut name = String::new();
    let mut nanos = false;
    for (code, value) in opts {
        match code {
            OPT_IF_NAME => name = String::from_utf8_lossy(value).into_owned(),
            OPT_IF_TSRESOL => nanos = value == [9],
            _ => return Err(b.malformed("unexpected interface option")),
        }
    }
    if !nanos {
        return Err(b.malformed("interface timestamps are not in nanoseconds"));
    }
    Ok(name)
}

/// A parsed Enhanced Packet Block.
pub struct PacketView<'a> {
    pub interface: u32,
    pub unix_nanos: u64,
    pub data: &'a [u8],
    /// Offset of the MAC within the block's bytes.
    pub mac_at: usize,
}

/// Parses an EPB exactly as [`packet`] writes it: no truncation, zero padding, the one
/// custom option holding the MAC and nothing else.
pub fn parse_packet(b: &Block) -> Result<PacketView<'_>, BlockError> {
    let bytes = &b.bytes;
    if bytes.len() < 28 {
        return Err(b.malformed("packet block too short"));
    }
    let caplen = le32(bytes, 20) as usize;
    let origlen = le32(bytes, 24) as usize;
    if caplen != origlen {
        return Err(b.malformed("packet was stored cut short"));
    }
    let data_end = 28usize.saturating_add(caplen);
    let opts_at = data_end.saturating_add(pad4(caplen));
    // Option: 2 + 2 + PEN 4 + MAC, end of options 4, trailing length 4.
    let want = opts_at.saturating_add(8 + MAC_LEN + 8);
    if want != bytes.len() {
        return Err(b.malformed("packet block length does not match its packet"));
    }
    if bytes[data_end..opts_at].iter().any(|&x| x != 0) {
        return Err(b.malformed("non-zero padding"));
    }
    if le16(bytes, opts_at) != OPT_CUSTOM_BINARY
        || le16(bytes, opts_at + 2) as usize != 4 + MAC_LEN
        || le32(bytes, opts_at + 4) != PEN
        || le32(bytes, opts_at + 8 + MAC_LEN) != 0
    {
        return Err(b.malformed("packet block options are not srtpgate's"));
    }
    Ok(PacketView {
        interface: le32(bytes, 8),
        unix_nanos: ((le32(bytes, 12) as u64) << 32) | le32(bytes, 16) as u64,
        data: &bytes[28..data_end],
        mac_at: opts_at + 8,
    })
}

/// The data of a custom block with srtpgate's PEN (padding included).
pub fn parse_custom(b: &Block) -> Result<&[u8], BlockError> {
    let body = b.body();
    if b.block_type != CUSTOM || body.len() < 4 || le32(body, 0) != PEN {
        return Err(b.malformed("custom block of another enterprise"));
    }
    Ok(&body[4..])
}

/// Options as (code, value), up to and including `opt_endofopt`, which must end them;
/// padding must be zero.
fn parse_options(mut b: &[u8]) -> Result<Vec<(u16, &[u8])>, &'static str> {
    let mut out = Vec::new();
    loop {
        if b.len() < 4 {
            return Err("options do not end with opt_endofopt");
        }
        let (code, len) = (le16(b, 0), le16(b, 2) as usize);
        if code == OPT_ENDOFOPT {
            if len != 0 || b.len() != 4 {
                return Err("bytes after opt_endofopt");
            }
            return Ok(out);
        }
        let padded = len + pad4(len);
        if b.len() < 4 + padded {
            return Err("option runs past its block");
        }
        if b[4 + len..4 + padded].iter().any(|&x| x != 0) {
            return Err("non-zero option padding");
        }
        out.push((code, &b[4..4 + len]));
        b = &b[4 + padded..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_one(bytes: &[u8]) -> Block {
        BlockReader::new(bytes).next_block().unwrap().unwrap()
    }

    #[test]
    fn blocks_round_trip() {
        let shb = section_header("srtpgate");
        assert_eq!(shb.len() % 4, 0);
        parse_section_header(&read_one(&shb)).unwrap();
        let idb = interface("caller");
        assert_eq!(parse_interface(&read_one(&idb)).unwrap(), "caller");
        let (epb, mac_at) = packet(3, 0x1_0000_0002, &[0x80, 1, 2, 3, 4]);
        let b = read_one(&epb);
        let v = parse_packet(&b).unwrap();
        assert_eq!(
            (v.interface, v.unix_nanos, v.data),
            (3, 0x1_0000_0002, &[0x80u8, 1, 2, 3, 4][..])
        );
        assert_eq!(v.mac_at, mac_at);
    }

    #[test]
    fn damaged_blocks_are_refused_not_panicked_on() {
        let (epb, _) = packet(0, 1, &[0x80; 21]);
        for cut in 0..epb.len() {
            let r = BlockReader::new(&epb[..cut]).next_block();
            match r {
                Ok(None) => assert_eq!(cut, 0),
                Err(BlockError::Truncated { offset: 0 }) => {}
                Err(e) => panic!("{cut}: {e}"),
                Ok(Some(_)) => panic!("{cut}: a cut block was accepted"),
            }
        }
        for i in 0..epb.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = epb.clone();
                m[i] ^= bit;
                if let Ok(Some(b)) = BlockReader::new(&m[..]).next_block() {
                    let _ = parse_packet(&b);
                }
            }
        }
    }
}
