//! Recovery of messages left behind by a crash: a `.pcapng.part` file is cut back to its
//! last whole block and renamed to its final name. The relay holds no key by then, so it
//! checks structure only; the mailbox owner's reader checks everything else and reports
//! the message as incomplete (no end block).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::envelope::{self, RECORD_ENVELOPE};
use super::pcapng::{self, BlockReader};
use super::writer::{RecordError, MESSAGE_SUFFIX, PART_SUFFIX};

/// What recovery did with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Kept under its final name, with this many packet blocks; `cut` bytes of a partial
    /// (or damaged) tail were removed.
    Message {
        path: PathBuf,
        packets: u64,
        cut: u64,
    },
    /// No envelope had been written (no packet had arrived): the file was deleted.
    Empty,
}

/// Recovers one `.pcapng.part` file. Run it only on files no recorder is writing, e.g.
/// at start-up before recording begins.
pub fn recover(part: &Path) -> Result<Recovered, RecordError> {
    let name = part
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(PART_SUFFIX))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a .pcapng.part file"))?;
    let dest = part.with_file_name(format!("{name}{MESSAGE_SUFFIX}"));
    let file = OpenOptions::new().read(true).write(true).open(part)?;
    let size = file.metadata()?.len();
    let mut blocks = BlockReader::new(BufReader::new(&file));
    let (mut good, mut packets, mut keyed) = (0u64, 0u64, false);
    let mut first = true;
    // Any error (a cut block, a damaged one) ends the whole blocks kept.
    while let Ok(Some(b)) = blocks.next_block() {
        if first {
            if pcapng::parse_section_header(&b).is_err() {
                break;
            }
            first = false;
        } else if b.block_type == pcapng::EPB {
            if !keyed || pcapng::parse_packet(&b).is_err() {
                break;
            }
            packets += 1;
        } else if b.block_type == pcapng::CUSTOM {
            let Ok(data) = pcapng::parse_custom(&b) else {
                break;
            };
            match envelope::record_type(data) {
                Ok(RECORD_ENVELOPE) if envelope::parse(&b).is_ok() => keyed = true,
                Ok(envelope::RECORD_END) => {}
                _ => break,
            }
        } else if b.block_type != pcapng::IDB {
            break;
        }
        good = blocks.offset();
    }
    drop(blocks);
    if !keyed {
        drop(file);
        fs::remove_file(part)?;
        return Ok(Recovered::Empty);
    }
    file.set_len(good)?;
    file.sync_all()?;
    drop(file);
    fs::rename(part, &dest)?;
    if let Some(dir) = dest.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(Recovered::Message {
        path: dest,
        packets,
        cut: size - good,
    })
}

/// Recovers every `.pcapng.part` file in `dir`.
pub fn recover_dir(dir: &Path) -> io::Result<Vec<(PathBuf, Result<Recovered, RecordError>)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_part = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(PART_SUFFIX));
        if is_part {
            let r = recover(&path);
            out.push((path, r));
        }
    }
    Ok(out)
}
