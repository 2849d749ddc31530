//! What li-receiver keeps of the X3 PDUs it accepted: per XID and correlation id one pcap
//! (each RTP/RTCP packet as a UDP/IP datagram) and per direction a WAV file of the G.711
//! audio, plus counts for the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use relay::li::x3::{format, Attribute, Direction, Pdu, PduType};
use relay::li::Xid;
use serde::Serialize;

use super::g711;
use super::wav::WavWriter;
use crate::pcap::{PcapHeader, PcapWriter, Record, LINKTYPE_RAW};
use crate::udp::build_ip_udp;

/// Counts over everything received.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub connections: u64,
    pub pdus: u64,
    pub x3: u64,
    pub x2: u64,
    pub keepalives: u64,
    pub keepalive_acks: u64,
    pub malformed: u64,
    /// X3 PDUs whose payload format is not RTP (counted, not recorded).
    pub other_formats: u64,
    /// Missing X3 sequence numbers on a connection.
    pub pdu_sequence_gaps: u64,
    pub tls_failures: u64,
}

/// One direction of one intercepted call.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamSummary {
    pub xid: String,
    pub correlation_id: String,
    pub direction: String,
    pub packets: u64,
    pub rtcp: u64,
    pub bytes: u64,
    /// Packets missing according to the RTP sequence numbers.
    pub gaps: u64,
    /// Packets that came after a later one (reordered or duplicated).
    pub late: u64,
    pub duration_seconds: f64,
    pub payload_types: Vec<u8>,
    pub pcap: String,
    pub wav: Option<String>,
    pub wav_samples: u64,
}

/// Everything li-receiver reports at exit.
#[derive(Clone, Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub totals: Totals,
    pub streams: Vec<StreamSummary>,
}

struct Stream {
    wav: Option<(WavWriter, String)>,
    wav_samples: u64,
    packets: u64,
    rtcp: u64,
    bytes: u64,
    gaps: u64,
    late: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    payload_types: BTreeSet<u8>,
    next_seq: Option<u16>,
}

struct Session {
    pcap: PcapWriter<BufWriter<File>>,
    pcap_name: String,
    streams: BTreeMap<Direction, Stream>,
}

/// The receiver's output directory and its open files.
pub struct Recorder {
    dir: PathBuf,
    sessions: BTreeMap<(Xid, u64), Session>,
    pub totals: Totals,
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToTarget => "to-target",
        Direction::FromTarget => "from-target",
        Direction::Combined => "combined",
        Direction::NotApplicable => "not-applicable",
        _ => "unknown",
    }
}

/// The RTP payload and payload type of a packet, or `None` for RTCP or garbage.
fn rtp_payload(p: &[u8]) -> Option<(u8, u16, &[u8])> {
    if p.len() < 12 || p[0] >> 6 != 2 || (64..=95).contains(&(p[1] & 0x7f)) {
        return None;
    }
    let mut off = 12 + 4 * (p[0] & 0x0f) as usize;
    if p[0] & 0x10 != 0 {
        let ext = p.get(off + 2..off + 4)?;
        off += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.checked_sub(*p.last()? as usize)?;
    }
    let payload = p.get(off..end)?;
    Some((p[1] & 0x7f, u16::from_be_bytes([p[2], p[3]]), payload))
}

fn is_rtcp(p: &[u8]) -> bool {
    p.len() >= 8 && p[0] >> 6 == 2 && (64..=95).contains(&(p[1] & 0x7f))
}

/// Source and destination from the PDU's attributes, or addresses from the documentation
/// ranges that show the direction (target 192.0.2.1, other party 192.0.2.2).
fn endpoints(pdu: &Pdu<'_>, rtcp: bool) -> (SocketAddr, SocketAddr) {
    let (mut sip, mut dip, mut sp, mut dp) = (None, None, None, None);
    for a in &pdu.attributes {
        match a {
            Attribute::SourceIpv4(x) => sip = Some(IpAddr::V4(*x)),
            Attribute::DestinationIpv4(x) => dip = Some(IpAddr::V4(*x)),
            Attribute::SourceIpv6(x) => sip = Some(IpAddr::V6(*x)),
            Attribute::DestinationIpv6(x) => dip = Some(IpAddr::V6(*x)),
            Attribute::SourcePort(x) => sp = Some(*x),
            Attribute::DestinationPort(x) => dp = Some(*x),
            _ => {}
        }
    }
    if let (Some(s), Some(d), Some(sp), Some(dp)) = (sip, dip, sp, dp) {
        if s.is_ipv4() == d.is_ipv4() {
            return (SocketAddr::new(s, sp), SocketAddr::new(d, dp));
        }
    }
    let target = Ipv4Addr::new(192, 0, 2, 1);
    let other = Ipv4Addr::new(192, 0, 2, 2);
    let (tp, op) = if rtcp { (40001, 50001) } else { (40000, 50000) };
    let t = SocketAddr::from((target, tp));
    let o = SocketAddr::from((other, op));
    match pdu.header.direction {
        Direction::ToTarget => (o, t),
        _ => (t, o),
    }
}

impl Recorder {
    pub fn new(dir: &Path) -> io::Result<Recorder> {
        std::fs::create_dir_all(dir)?;
        Ok(Recorder {
            dir: dir.to_path_buf(),
            sessions: BTreeMap::new(),
            totals: Totals::default(),
        })
    }

    /// Records one validated X3 PDU that arrived at `arrival_ns` (ns since the epoch).
    pub fn record(&mut self, pdu: &Pdu<'_>, arrival_ns: u64) -> io::Result<()> {
        if pdu.header.pdu_type != PduType::X3 {
            return Ok(());
        }
        self.totals.x3 += 1;
        if pdu.header.payload_format != format::RTP {
            self.totals.other_formats += 1;
            return Ok(());
        }
        let key = (pdu.header.xid, pdu.header.correlation_id);
        let base = format!("{}_{:016x}", key.0, key.1);
        if !self.sessions.contains_key(&key) {
            let name = format!("{base}.pcap");
            let f = BufWriter::new(File::create(self.dir.join(&name))?);
            let pcap = PcapWriter::new(f, &PcapHeader::new(LINKTYPE_RAW, true))?;
            self.sessions.insert(
                key,
                Session {
                    pcap,
                    pcap_name: name,
                    streams: BTreeMap::new(),
                },
            );
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            return Ok(());
        };
        let ts_ns = pdu
            .timestamp()
            .map(|(sec, ns)| sec as u64 * 1_000_000_000 + ns as u64)
            .unwrap_or(arrival_ns);
        let rtcp = is_rtcp(pdu.payload);
        let (src, dst) = endpoints(pdu, rtcp);
        if let Some(frame) = build_ip_udp(src, dst, pdu.payload) {
            s.pcap.write_record(&Record {
                ts_sec: (ts_ns / 1_000_000_000) as u32,
                ts_frac: (ts_ns % 1_000_000_000) as u32,
                orig_len: frame.len() as u32,
                data: frame,
            })?;
        }
        let dir = pdu.header.direction;
        let st = s.streams.entry(dir).or_insert_with(|| Stream {
            wav: None,
            wav_samples: 0,
            packets: 0,
            rtcp: 0,
            bytes: 0,
            gaps: 0,
            late: 0,
            first_ns: None,
            last_ns: 0,
            payload_types: BTreeSet::new(),
            next_seq: None,
        });
        st.first_ns.get_or_insert(ts_ns);
        st.last_ns = st.last_ns.max(ts_ns);
        st.bytes += pdu.payload.len() as u64;
        if rtcp {
            st.rtcp += 1;
            return Ok(());
        }
        let Some((pt, seq, payload)) = rtp_payload(pdu.payload) else {
            return Ok(());
        };
        st.packets += 1;
        st.payload_types.insert(pt);
        let mut silence = 0usize;
        match st.next_seq {
            None => {}
            Some(want) => {
                let d = seq.wrapping_sub(want);
                if d >= 0x8000 {
                    st.late += 1;
                    return Ok(());
                }
                if d > 0 && d < 1000 {
                    st.gaps += d as u64;
                    silence = d as usize * payload.len();
                }
            }
        }
        st.next_seq = Some(seq.wrapping_add(1));
        let decode: fn(u8) -> i16 = match pt {
            0 => g711::ulaw_to_linear,
            8 => g711::alaw_to_linear,
            _ => return Ok(()),
        };
        if st.wav.is_none() {
            let name = format!("{base}_{}.wav", dir_name(dir));
            st.wav = Some((WavWriter::create(&self.dir.join(&name), 8000)?, name));
        }
        if let Some((w, _)) = st.wav.as_mut() {
            w.write((0..silence).map(|_| 0i16))?;
            w.write(payload.iter().map(|b| decode(*b)))?;
            st.wav_samples = w.samples();
        }
        Ok(())
    }

    /// Closes every file and returns the summary.
    pub fn finish(self) -> io::Result<Summary> {
        let mut streams = Vec::new();
        for ((xid, cid), s) in self.sessions {
            s.pcap
                .finish()?
                .into_inner()
                .map_err(|e| e.into_error())?
                .sync_all()?;
            for (dir, st) in s.streams {
                let wav = match st.wav {
                    Some((w, name)) => {
                        w.finish()?;
                        Some(name)
                    }
                    None => None,
                };
                streams.push(StreamSummary {
                    xid: xid.to_string(),
                    correlation_id: format!("{cid:016x}"),
                    direction: dir_name(dir).to_string(),
                    packets: st.packets,
                    rtcp: st.rtcp,
                    bytes: st.bytes,
                    gaps: st.gaps,
                    late: st.late,
                    duration_seconds: st.first_ns.map_or(0.0, |f| (st.last_ns - f) as f64 / 1e9),
                    payload_types: st.payload_types.into_iter().collect(),
                    pcap: s.pcap_name.clone(),
                    wav,
                    wav_samples: st.wav_samples,
                });
            }
        }
        Ok(Summary {
            totals: self.totals,
            streams,
        })
    }
}

impl Summary {
    /// The human-readable report printed at exit.
    pub fn text(&self) -> String {
        let t = &self.totals;
        let mut s = format!(
            "li-receiver: {} connections, {} PDUs ({} X3, {} X2, {} keepalives, {} acks), \
             {} malformed, {} other formats, {} X3 sequence gaps, {} TLS failures\n",
            t.connections,
            t.pdus,
            t.x3,
            t.x2,
            t.keepalives,
            t.keepalive_acks,
            t.malformed,
            t.other_formats,
            t.pdu_sequence_gaps,
            t.tls_failures
        );
        for st in &self.streams {
            s.push_str(&format!(
                "  XID {} correlation {} {}: {} RTP + {} RTCP packets, {} gaps, {} late, \
                 {:.3} s, PT {:?}, pcap {}, wav {}\n",
                st.xid,
                st.correlation_id,
                st.direction,
                st.packets,
                st.rtcp,
                st.gaps,
                st.late,
                st.duration_seconds,
                st.payload_types,
                st.pcap,
                st.wav.as_deref().unwrap_or("-")
            ));
        }
        s
    }
}
