//! Reading a message: with the mailbox private key, every envelope is opened, every block
//! after the first envelope has its MAC checked, and every packet is authenticated and
//! decrypted with srtpgate's SRTP code. Without a key, [`scan`] checks the block structure
//! only (listing, recovery).

use std::io::Read;

use crate::srtp::{Error as SrtpError, SrtpContext};

use super::envelope::{self, EnvelopeError, EnvelopeHeader, Origin, RECORD_END, RECORD_ENVELOPE};
use super::integrity::{ChainKey, EndRecord, RunningDigest};
use super::keys::PrivateKey;
use super::pcapng::{self, Block, BlockError, BlockReader};
use super::RecordingId;

/// Why a message could not be read. The first failure ends the reading: a message that
/// fails anywhere is refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not a srtpgate message: {0}")]
    Structure(#[from] BlockError),
    #[error("envelope at offset {offset}: {error}")]
    Envelope { offset: u64, error: EnvelopeError },
    #[error("block at offset {offset} failed its integrity check (the file was modified)")]
    Integrity { offset: u64 },
    #[error("packet at offset {offset}: SRTP {error} (the file was modified)")]
    Srtp { offset: u64, error: SrtpError },
    #[error("block at offset {offset}: {what}")]
    Unexpected { offset: u64, what: &'static str },
    #[error("the message holds no envelope: nothing was recorded")]
    NoEnvelope,
}

/// One decrypted packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The call direction (interface) it belongs to.
    pub leg: u32,
    /// When the relay received it, ns since the Unix epoch.
    pub unix_nanos: u64,
    /// The plain RTP packet.
    pub rtp: Vec<u8>,
}

/// What a message says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub recording_id: Option<RecordingId>,
    pub mailbox_id: Option<String>,
    pub start_unix_nanos: Option<u64>,
    /// Direction names, in interface order.
    pub legs: Vec<String>,
    /// Per direction: whether its keys are the peer's (packets stored as received).
    pub origins: Vec<Option<Origin>>,
    pub packets: u64,
    /// The end block, if the message was closed (its counters are MAC-checked only when
    /// the message was read with the key).
    pub end: Option<EndRecord>,
    /// The offset of a block cut short at the end of the file (a crash mid-write).
    pub truncated_at: Option<u64>,
}

impl Summary {
    /// The message was closed normally: it has its end block and nothing cut.
    pub fn is_complete(&self) -> bool {
        self.end.is_some() && self.truncated_at.is_none()
    }
}

struct State {
    digest: RunningDigest,
    summary: Summary,
    first: Option<EnvelopeHeader>,
    envelopes: u32,
    in_header: bool,
}

/// Walks the blocks, checking structure and sequence; `on_block` sees each block after
/// the header with the digest of everything before it.
fn walk<R: Read>(
    r: R,
    tolerate_cut: bool,
    mut on_block: impl FnMut(&mut State, &Block, &[u8; 32]) -> Result<(), ReadError>,
) -> Result<Summary, ReadError> {
    let mut blocks = BlockReader::new(r);
    let shb = blocks
        .next_block()?
        .ok_or(BlockError::Truncated { offset: 0 })?;
    pcapng::parse_section_header(&shb)?;
    let mut st = State {
        digest: RunningDigest::default(),
        summary: Summary {
            recording_id: None,
            mailbox_id: None,
            start_unix_nanos: None,
            legs: Vec::new(),
            origins: Vec::new(),
            packets: 0,
            end: None,
            truncated_at: None,
        },
        first: None,
        envelopes: 0,
        in_header: true,
    };
    st.digest.update(&shb.bytes);
    loop {
        let b = match blocks.next_block() {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(BlockError::Truncated { offset }) if tolerate_cut => {
                st.summary.truncated_at = Some(offset);
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let unexpected = |what| ReadError::Unexpected {
            offset: b.offset,
            what,
        };
        if st.summary.end.is_some() {
            return Err(unexpected("block after the end block"));
        }
        let prefix = st.digest.current();
        match b.block_type {
            pcapng::IDB if st.in_header => {
                st.summary.legs.push(pcapng::parse_interface(&b)?);
                st.summary.origins.push(None);
            }
            pcapng::IDB => return Err(unexpected("interface block after the header")),
            pcapng::CUSTOM | pcapng::EPB => {
                if st.summary.legs.is_empty() {
                    return Err(unexpected("no interface block"));
                }
                st.in_header = false;
                on_block(&mut st, &b, &prefix)?;
            }
            _ => return Err(unexpected("block type srtpgate does not write")),
        }
        st.digest.update(&b.bytes);
    }
    if st.first.is_none() {
        return Err(ReadError::NoEnvelope);
    }
    Ok(st.summary)
}

/// Checks an envelope's header against the file's first one and records it.
fn note_envelope(st: &mut State, b: &Block, h: &EnvelopeHeader) -> Result<(), ReadError> {
    let err = |error| ReadError::Envelope {
        offset: b.offset,
        error,
    };
    if h.number != st.envelopes {
        return Err(err(EnvelopeError::Malformed("envelopes out of order")));
    }
    if h.interface as usize >= st.summary.legs.len() {
        return Err(err(EnvelopeError::Malformed(
            "envelope for an unknown interface",
        )));
    }
    match &st.first {
        None => {
            st.summary.recording_id = Some(RecordingId(h.recording_id));
            st.summary.mailbox_id = Some(h.mailbox_id.clone());
            st.summary.start_unix_nanos = Some(h.start_unix_nanos);
            st.first = Some(h.clone());
        }
        Some(f) => {
            if (
                f.recording_id,
                f.start_unix_nanos,
                &f.mailbox_id,
                f.recipient,
            ) != (
                h.recording_id,
                h.start_unix_nanos,
                &h.mailbox_id,
                h.recipient,
            ) {
                return Err(err(EnvelopeError::Malformed(
                    "envelopes of different messages",
                )));
            }
        }
    }
    st.envelopes += 1;
    Ok(())
}

/// Reads the block structure without a key: header, envelope headers, packet count, end
/// block. Says nothing about authenticity. A block cut short at the end (a message being
/// written, or a crash) is reported in the summary.
pub fn scan<R: Read>(r: R) -> Result<Summary, ReadError> {
    let mut keyed: Vec<bool> = Vec::new();
    walk(r, true, |st, b, _| {
        keyed.resize(st.summary.legs.len(), false);
        if b.block_type == pcapng::EPB {
            let p = pcapng::parse_packet(b)?;
            if !keyed.get(p.interface as usize).copied().unwrap_or(false) {
                return Err(ReadError::Unexpected {
                    offset: b.offset,
                    what: "packet before its direction's envelope",
                });
            }
            st.summary.packets += 1;
            return Ok(());
        }
        let data = pcapng::parse_custom(b)?;
        let err = |error| ReadError::Envelope {
            offset: b.offset,
            error,
        };
        match envelope::record_type(data).map_err(err)? {
            RECORD_ENVELOPE => {
                let sealed = envelope::parse(b).map_err(err)?;
                note_envelope(st, b, &sealed.header)?;
                keyed[sealed.header.interface as usize] = true;
            }
            RECORD_END => {
                if st.first.is_none() {
                    return Err(err(EnvelopeError::Malformed(
                        "end block before any envelope",
                    )));
                }
                st.summary.end = Some(EndRecord::parse(data).map_err(err)?.0);
            }
            _ => return Err(err(EnvelopeError::Malformed("unknown record type"))),
        }
        Ok(())
    })
}

/// Reads and verifies a whole message with the mailbox private key, handing each
/// decrypted packet to `on_packet` in file order. Fails on the first block that is not
/// exactly what the relay wrote, including a block cut short at the end (run
/// [`recover`](super::recover()) on a crashed recording first). A message without its end
/// block reads fine: [`Summary::is_complete`] tells.
pub fn read<R: Read>(
    r: R,
    key: &PrivateKey,
    mut on_packet: impl FnMut(Packet),
) -> Result<Summary, ReadError> {
    let mut contexts: Vec<Option<SrtpContext>> = Vec::new();
    let mut chain: Option<ChainKey> = None;
    let mut scratch = zeroize::Zeroizing::new(Vec::<u8>::new());
    walk(r, false, |st, b, prefix| {
        contexts.resize_with(st.summary.legs.len(), || None);
        let integrity = ReadError::Integrity { offset: b.offset };
        if b.block_type == pcapng::EPB {
            let p = pcapng::parse_packet(b)?;
            let ctx = contexts
                .get_mut(p.interface as usize)
                .and_then(|c| c.as_mut())
                .ok_or(ReadError::Unexpected {
                    offset: b.offset,
                    what: "packet before its direction's envelope",
                })?;
            let chain = chain.as_ref().ok_or(ReadError::NoEnvelope)?;
            if !chain.verify(prefix, &b.bytes, p.mac_at) {
                return Err(integrity);
            }
            scratch.clear();
            scratch.extend_from_slice(p.data);
            let n = ctx
                .unprotect(&mut scratch[..])
                .map_err(|error| ReadError::Srtp {
                    offset: b.offset,
                    error,
                })?;
            st.summary.packets += 1;
            on_packet(Packet {
                leg: p.interface,
                unix_nanos: p.unix_nanos,
                rtp: scratch[..n].to_vec(),
            });
            return Ok(());
        }
        let data = pcapng::parse_custom(b)?;
        let err = |error| ReadError::Envelope {
            offset: b.offset,
            error,
        };
        match envelope::record_type(data).map_err(err)? {
            RECORD_ENVELOPE => {
                let sealed = envelope::parse(b).map_err(err)?;
                note_envelope(st, b, &sealed.header)?;
                let (km, c) = sealed.open(key, prefix).map_err(err)?;
                let mut ctx = SrtpContext::new(km.policy())
                    .map_err(|_| err(EnvelopeError::BadKeyMaterial("not a valid SRTP policy")))?;
                ctx.set_rx_roc(km.ssrc, km.roc, km.seq);
                let leg = sealed.header.interface as usize;
                contexts[leg] = Some(ctx);
                st.summary.origins[leg] = Some(km.origin);
                chain.get_or_insert(c);
            }
            RECORD_END => {
                let (end, mac_at) = EndRecord::parse(data).map_err(err)?;
                let chain = chain.as_ref().ok_or(ReadError::NoEnvelope)?;
                if !chain.verify(prefix, &b.bytes, mac_at) {
                    return Err(integrity);
                }
                if end.packets != st.summary.packets {
                    return Err(integrity);
                }
                st.summary.end = Some(end);
            }
            _ => return Err(err(EnvelopeError::Malformed("unknown record type"))),
        }
        Ok(())
    })
}
