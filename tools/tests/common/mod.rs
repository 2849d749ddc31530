//! Builders of synthetic captures shared by the srtp-pcap tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use relay::srtp::{MasterKey, Suite};
use srtpgate_tools::link::LinkLayer;
use srtpgate_tools::pcap::{PcapHeader, PcapReader, PcapWriter, Record};
use srtpgate_tools::srtp_pcap::{Config, KeySet, Mode, OnFailure, SessionParams};
use srtpgate_tools::udp::{build_ip_udp, UdpView};

pub const SSRC: u32 = 0x5ec0_a11d;
pub const FIRST_SEQ: u16 = 65510;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// An RTP packet: PT 0, sequence number `seq`, 160 bytes of payload derived from `k`.
pub fn rtp(ssrc: u32, seq: u16, k: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(1000 + 160 * k).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..160u32).map(|i| ((k * 31 + i * 7 + 1) & 0xff) as u8));
    p
}

/// An RTCP receiver report with no report blocks, followed by an SDES CNAME.
pub fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 4, b't', b'e', b's', b't', 0, 0]);
    p
}

/// A STUN binding request.
pub fn stun() -> Vec<u8> {
    let mut p = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    p.extend(0..12u8);
    p
}

/// A frame of `link` carrying `payload` in UDP from `src` to `dst`.
pub fn frame(link: LinkLayer, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut f = link.header(src.is_ipv6());
    f.extend(build_ip_udp(src, dst, payload).expect("test datagram"));
    f
}

/// An RTP stream of `count` packets with sequence numbers crossing 65535 -> 0, an RTCP
/// packet after every tenth, from `src` to `dst` (RTCP on the same ports: rtcp-mux).
pub fn call_frames(link: LinkLayer, src: SocketAddr, dst: SocketAddr, count: u32) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for k in 0..count {
        let seq = FIRST_SEQ.wrapping_add(k as u16);
        frames.push(frame(link, src, dst, &rtp(SSRC, seq, k)));
        if k % 10 == 9 {
            frames.push(frame(link, src, dst, &rtcp(SSRC)));
        }
    }
    frames
}

pub fn records_of(frames: &[Vec<u8>]) -> Vec<Record> {
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| Record {
            ts_sec: 1_700_000_000 + i as u32 / 50,
            ts_frac: (i as u32 % 50) * 20_000,
            orig_len: f.len() as u32,
            data: f.clone(),
        })
        .collect()
}

pub fn pcap_bytes(header: &PcapHeader, records: &[Record]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), header).expect("write to memory");
    for r in records {
        w.write_record(r).expect("write to memory");
    }
    w.finish().expect("write to memory")
}

pub fn read_all(bytes: &[u8]) -> (PcapHeader, Vec<Record>) {
    let mut r = PcapReader::new(bytes).expect("pcap header");
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().expect("pcap record") {
        out.push(rec);
    }
    (*r.header(), out)
}

/// A key of `suite` made from `seed`, as an SDES inline parameter with optional MKI.
pub fn inline_key(suite: Suite, seed: u8, mki: Option<u32>) -> String {
    let bytes: Vec<u8> = (0..suite.key_salt_len() as u8)
        .map(|i| i.wrapping_mul(13).wrapping_add(seed))
        .collect();
    let mut k = MasterKey::from_key_salt(suite, &bytes).expect("key length");
    if let Some(m) = mki {
        k = k.with_mki(relay::srtp::Mki::new(m, 4).expect("mki"));
    }
    k.to_inline()
}

pub fn config(mode: Mode, suite: Suite, keys: &[String]) -> Config {
    Config {
        mode,
        default_keys: Some(KeySet::parse(suite, keys).expect("test keys")),
        ports: Vec::new(),
        streams: Vec::new(),
        params: SessionParams::default(),
        on_failure: OnFailure::Drop,
    }
}

/// The UDP view of a frame of `linktype`, when it has one.
pub fn udp_view(linktype: u16, frame: &[u8]) -> Option<UdpView> {
    let ip = srtpgate_tools::link::ip_offset(linktype, frame)?;
    UdpView::locate(frame, ip).ok()
}
