//! Packet capture on the loopback with tshark, read back as UDP datagrams by a small pcap
//! reader (classic pcap; Ethernet, Linux cooked v1/v2, BSD loopback and raw IP link types;
//! IPv4 only, which is all 127.0.0.1 traffic needs).

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::process::{require, Child, Workdir};
use super::{Context, E2eError, Result};

/// One captured UDP datagram.
#[derive(Clone, Debug)]
pub struct Datagram {
    /// Seconds since the epoch.
    pub time: f64,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// A running tshark writing a pcap file.
pub struct Capture {
    pub file: PathBuf,
    pub process: Child,
}

impl Capture {
    /// Starts capturing on `lo` with the BPF `filter`; returns once tshark says it captures.
    pub fn start(wd: &Workdir, filter: &str) -> Result<Capture> {
        let bin = require("tshark", "tshark")?;
        let file = wd.path().join("capture.pcap");
        let mut cmd = Command::new(bin);
        cmd.args(["-i", "lo", "-n", "-q", "-F", "pcap", "-f", filter, "-w"])
            .arg(&file);
        let mut process = Child::spawn(wd, "tshark", cmd)?;
        process
            .wait_for_log("Capturing on", Duration::from_secs(10))
            .context("tshark capture on lo (needs root or CAP_NET_RAW)")?;
        Ok(Capture { file, process })
    }

    /// Stops tshark (SIGINT, so the file is complete) and reads the datagrams.
    pub fn stop(mut self) -> Result<Vec<Datagram>> {
        self.process.stop_with(libc::SIGINT, Duration::from_secs(5));
        let bytes = fs::read(&self.file).context(format!("reading {}", self.file.display()))?;
        read_pcap(&bytes)
    }
}

fn u16_at(b: &[u8], at: usize, big: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if big {
        u16::from_be_bytes(s)
    } else {
        u16::from_le_bytes(s)
    })
}

fn u32_at(b: &[u8], at: usize, big: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

/// The UDP datagrams over IPv4 in a classic pcap file; other packets are skipped.
pub fn read_pcap(b: &[u8]) -> Result<Vec<Datagram>> {
    let magic = b.get(..4).context("pcap: file shorter than its header")?;
    let (big, nanos) = match magic {
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        _ => return Err(E2eError::new("pcap: not a classic pcap file (pcapng?)")),
    };
    let linktype = u32_at(b, 20, big).context("pcap: short header")?;
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let sec = u32_at(b, at, big).unwrap_or(0);
        let frac = u32_at(b, at + 4, big).unwrap_or(0);
        let incl = u32_at(b, at + 8, big).unwrap_or(0) as usize;
        let frame = b
            .get(at + 16..at + 16 + incl)
            .context("pcap: truncated record")?;
        at += 16 + incl;
        let time = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        if let Some(ip) = ipv4_of(frame, linktype) {
            if let Some(d) = udp_of(ip, time) {
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// The IPv4 packet inside a frame of `linktype`.
fn ipv4_of(frame: &[u8], linktype: u32) -> Option<&[u8]> {
    const IPV4: u16 = 0x0800;
    match linktype {
        // Ethernet (Linux's lo), with an optional VLAN tag.
        1 => {
            let mut et = u16_at(frame, 12, true)?;
            let mut off = 14;
            if et == 0x8100 {
                et = u16_at(frame, 16, true)?;
                off = 18;
            }
            (et == IPV4).then(|| frame.get(off..)).flatten()
        }
        // Linux cooked capture v1 and v2 ("any").
        113 => (u16_at(frame, 14, true)? == IPV4)
            .then(|| frame.get(16..))
            .flatten(),
        276 => (u16_at(frame, 0, true)? == IPV4)
            .then(|| frame.get(20..))
            .flatten(),
        // BSD loopback: a 4-byte address family, 2 for IPv4 in either byte order.
        0 => {
            let fam = u32_at(frame, 0, false)?;
            (fam == 2 || fam == 0x0200_0000)
                .then(|| frame.get(4..))
                .flatten()
        }
        // Raw IP.
        12 | 101 | 228 => Some(frame),
        _ => None,
    }
}

fn udp_of(ip: &[u8], time: f64) -> Option<Datagram> {
    if ip.first()? >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16_at(ip, 2, true)?);
    let flags_frag = u16_at(ip, 6, true)?;
    if *ip.get(9)? != 17 || flags_frag & 0x3fff != 0 || ihl < 20 {
        return None; // not UDP, or a fragment
    }
    let ip = ip.get(..total.min(ip.len()))?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = ip.get(ihl..)?;
    let sport = u16_at(udp, 0, true)?;
    let dport = u16_at(udp, 2, true)?;
    let ulen = usize::from(u16_at(udp, 4, true)?);
    let payload = udp.get(8..ulen.min(udp.len()))?.to_vec();
    Some(Datagram {
        time,
        src: SocketAddrV4::new(src, sport),
        dst: SocketAddrV4::new(dst, dport),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        let ulen = 8 + payload.len();
        ip.extend_from_slice(&[0x4e, 0x20, 0x4e, 0x21, (ulen >> 8) as u8, ulen as u8, 0, 0]);
        ip.extend_from_slice(payload);
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn reads_udp_from_ethernet_pcap() {
        let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535u32.to_le_bytes());
        file.extend_from_slice(&1u32.to_le_bytes());
        for (i, p) in [&b"hello"[..], &b"world!"[..]].iter().enumerate() {
            let f = frame(p);
            file.extend_from_slice(&(100 + i as u32).to_le_bytes());
            file.extend_from_slice(&500_000u32.to_le_bytes());
            file.extend_from_slice(&(f.len() as u32).to_le_bytes());
            file.extend_from_slice(&(f.len() as u32).to_le_bytes());
            file.extend_from_slice(&f);
        }
        let d = read_pcap(&file).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].src, "127.0.0.1:20000".parse().unwrap());
        assert_eq!(d[0].dst, "127.0.0.1:20001".parse().unwrap());
        assert_eq!(d[1].payload, b"world!");
        assert!((d[1].time - 101.5).abs() < 1e-9);
    }

    #[test]
    fn pcapng_is_refused() {
        assert!(read_pcap(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0]).is_err());
    }
}
