//! Decrypting SRTP/SRTCP captured in a pcap file into plain RTP/RTCP, and the reverse.
//!
//! Each UDP direction (source and destination address and port) gets its own
//! [`SrtpContext`], so replay and rollover state of one direction never touches another's.
//! Packets are told apart as RFC 7983 says (first byte 128..=191 is RTP or RTCP, anything
//! else — STUN, DTLS, ZRTP, TURN channels — is copied unchanged) and RTCP from RTP as
//! RFC 5761 says (second byte 192..=223). The rewritten frames get right IP and UDP lengths
//! and checksums.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::str::FromStr;

use relay::srtp::{InlineError, MasterKey, Policy, SrtpContext, Suite, UnknownSuite};

use crate::link;
use crate::pcap::{PcapError, PcapHeader, PcapReader, PcapWriter, Record, DEFAULT_SNAPLEN};
use crate::udp::{NotUdp, UdpView};

/// Which way packets are transformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// SRTP/SRTCP in, RTP/RTCP out.
    Decrypt,
    /// RTP/RTCP in, SRTP/SRTCP out.
    Encrypt,
}

/// What becomes of a packet that fails to decrypt or encrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Copied to the output unchanged.
    Keep,
    /// Left out of the output.
    Drop,
}

/// A suite and its master keys (several only with MKIs).
#[derive(Clone, Debug)]
pub struct KeySet {
    pub suite: Suite,
    pub keys: Vec<MasterKey>,
}

impl KeySet {
    /// Parses SDES `inline:` key parameters for `suite`. Errors never contain key bytes.
    pub fn parse<S: AsRef<str>>(suite: Suite, params: &[S]) -> Result<Self, ConfigError> {
        if params.is_empty() {
            return Err(ConfigError::NoKeys);
        }
        let keys = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                MasterKey::from_inline(suite, p.as_ref().trim()).map_err(|reason| {
                    ConfigError::Key {
                        index: i + 1,
                        reason,
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(KeySet { suite, keys })
    }
}

/// SDES session parameters (RFC 4568 §6.3) applied to every context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionParams {
    /// Key derivation rate in packets: 0 or a power of two up to 2^24.
    pub kdr: u64,
    pub unencrypted_srtp: bool,
    pub unencrypted_srtcp: bool,
    pub unauthenticated_srtp: bool,
}

/// Keys for one direction of one flow: `SRC_IP:PORT>DST_IP:PORT=SUITE:inline:...`, with
/// further `,inline:...` keys when MKIs are used. IPv6 addresses go in brackets.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub keys: KeySet,
}

impl FromStr for StreamSpec {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        // Base64 keys may end in '=', so split at the first one; the addresses have none.
        let (flow, keying) = s.split_once('=').ok_or(ConfigError::BadStream)?;
        let (src, dst) = flow.split_once('>').ok_or(ConfigError::BadStream)?;
        let addr = |a: &str| {
            a.trim()
                .parse::<SocketAddr>()
                .map_err(|_| ConfigError::BadAddress(a.trim().chars().take(64).collect()))
        };
        let (src, dst) = (addr(src)?, addr(dst)?);
        let (suite, keys) = keying.split_once(':').ok_or(ConfigError::BadStream)?;
        let suite: Suite = suite.trim().parse()?;
        let params: Vec<&str> = keys.split(',').collect();
        let keys = KeySet::parse(suite, &params)?;
        Ok(StreamSpec { src, dst, keys })
    }
}

/// Everything a run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    /// Keys for the packets on `ports` (on every UDP packet when `ports` is empty) that
    /// no stream names.
    pub default_keys: Option<KeySet>,
    pub ports: Vec<u16>,
    pub streams: Vec<StreamSpec>,
    pub params: SessionParams,
    pub on_failure: OnFailure,
}

/// Why a configuration was refused. No variant carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no keys: give --suite and --key, or --stream")]
    NoKeys,
    #[error("--port needs --suite and --key to use on that port")]
    PortWithoutKey,
    #[error("stream must look like SRC_IP:PORT>DST_IP:PORT=SUITE:inline:KEY")]
    BadStream,
    #[error("bad socket address {0:?} (IPv6 goes in brackets: [2001:db8::1]:5004)")]
    BadAddress(String),
    #[error(transparent)]
    Suite(#[from] UnknownSuite),
    #[error("key {index}: {reason}")]
    Key { index: usize, reason: InlineError },
    #[error("SRTP policy {what}: {reason}")]
    Policy {
        what: String,
        reason: relay::srtp::Error,
    },
}

/// What a run did, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub packets_read: u64,
    pub packets_written: u64,
    /// RTP packets decrypted or encrypted.
    pub rtp: u64,
    /// RTCP packets decrypted or encrypted.
    pub rtcp: u64,
    /// Failed packets by kind, such as "SRTP: authentication failed".
    pub failures: BTreeMap<String, u64>,
    /// UDP payloads that are not RTP or RTCP by RFC 7983 (STUN, DTLS, ...), copied.
    pub not_rtp: u64,
    /// Frames without a whole UDP datagram over IP (ARP, TCP, fragments, ...), copied.
    pub not_udp: u64,
    /// UDP datagrams the capture cut short, copied.
    pub truncated: u64,
    /// UDP datagrams on no selected port or stream, copied.
    pub unselected: u64,
    /// Directions (5-tuples) that got an SRTP context.
    pub directions: u64,
    pub mode: Option<Mode>,
    pub on_failure: Option<OnFailure>,
}

impl Summary {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, rtp, rtcp) = match self.mode {
            Some(Mode::Encrypt) => ("encrypt", "RTP encrypted", "RTCP encrypted"),
            _ => ("decrypt", "SRTP decrypted", "SRTCP decrypted"),
        };
        let fate = match self.on_failure {
            Some(OnFailure::Keep) => "kept unchanged",
            _ => "dropped",
        };
        writeln!(
            f,
            "srtp-pcap {verb}: {} packets read, {} written",
            self.packets_read, self.packets_written
        )?;
        let line = |f: &mut fmt::Formatter<'_>, what: &str, n: u64| {
            writeln!(f, "  {:<40}{n:>10}", format!("{what}:"))
        };
        line(f, rtp, self.rtp)?;
        line(f, rtcp, self.rtcp)?;
        line(f, &format!("failed ({fate})"), self.failed())?;
        for (kind, n) in &self.failures {
            line(f, &format!("  {kind}"), *n)?;
        }
        line(f, "skipped, not RTP/RTCP (RFC 7983)", self.not_rtp)?;
        line(f, "skipped, not UDP over IP", self.not_udp)?;
        line(f, "skipped, cut short by the capture", self.truncated)?;
        line(f, "skipped, no key for the port/stream", self.unselected)?;
        line(f, "directions (5-tuples) with SRTP", self.directions)
    }
}

/// Which key set a packet uses.
#[derive(Clone, Copy)]
enum KeyChoice {
    Default,
    Stream(usize),
}

/// Transforms captured frames one at a time.
pub struct Rewriter {
    config: Config,
    contexts: HashMap<(SocketAddr, SocketAddr), SrtpContext>,
    summary: Summary,
}

fn context(keys: &KeySet, params: &SessionParams) -> Result<SrtpContext, relay::srtp::Error> {
    let first = keys
        .keys
        .first()
        .ok_or(relay::srtp::Error::InvalidPolicy("no master key"))?;
    let mut p = Policy::new(keys.suite, first.clone());
    p.keys = keys.keys.clone();
    p.kdr = params.kdr;
    p.unencrypted_srtp = params.unencrypted_srtp;
    p.unencrypted_srtcp = params.unencrypted_srtcp;
    p.unauthenticated_srtp = params.unauthenticated_srtp;
    SrtpContext::new(p)
}

impl Rewriter {
    /// Checks the configuration: every key set must make a valid SRTP policy.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        if config.default_keys.is_none() {
            if !config.ports.is_empty() {
                return Err(ConfigError::PortWithoutKey);
            }
            if config.streams.is_empty() {
                return Err(ConfigError::NoKeys);
            }
        }
        let check = |what: String, keys: &KeySet| {
            context(keys, &config.params)
                .map(drop)
                .map_err(|reason| ConfigError::Policy { what, reason })
        };
        if let Some(k) = &config.default_keys {
            check("for --key".into(), k)?;
        }
        for s in &config.streams {
            check(format!("for stream {}>{}", s.src, s.dst), &s.keys)?;
        }
        let summary = Summary {
            mode: Some(config.mode),
            on_failure: Some(config.on_failure),
            ..Summary::default()
        };
        Ok(Rewriter {
            config,
            contexts: HashMap::new(),
            summary,
        })
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    fn choose(&self, view: &UdpView) -> Option<KeyChoice> {
        if let Some(i) = self
            .config
            .streams
            .iter()
            .position(|s| s.src == view.src && s.dst == view.dst)
        {
            return Some(KeyChoice::Stream(i));
        }
        self.config.default_keys.as_ref()?;
        let ports = &self.config.ports;
        (ports.is_empty() || ports.contains(&view.src.port()) || ports.contains(&view.dst.port()))
            .then_some(KeyChoice::Default)
    }

    /// Transforms one frame of `linktype`; `None` when it is to be left out of the output.
    pub fn process(&mut self, linktype: u16, rec: Record) -> Option<Record> {
        self.summary.packets_read += 1;
        let out = self.transform(linktype, rec);
        if out.is_some() {
            self.summary.packets_written += 1;
        }
        out
    }

    fn transform(&mut self, linktype: u16, rec: Record) -> Option<Record> {
        let Some(ip_off) = link::ip_offset(linktype, &rec.data) else {
            self.summary.not_udp += 1;
            return Some(rec);
        };
        let view = match UdpView::locate(&rec.data, ip_off) {
            Ok(v) => v,
            Err(NotUdp::Truncated) => {
                self.summary.truncated += 1;
                return Some(rec);
            }
            Err(_) => {
                self.summary.not_udp += 1;
                return Some(rec);
            }
        };
        let Some(choice) = self.choose(&view) else {
            self.summary.unselected += 1;
            return Some(rec);
        };
        let payload = view.payload(&rec.data);
        if !matches!(payload.first(), Some(128..=191)) {
            self.summary.not_rtp += 1;
            return Some(rec);
        }
        let is_rtcp = matches!(payload.get(1), Some(192..=223));
        let ctx = match self.contexts.entry((view.src, view.dst)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let keys = match choice {
                    KeyChoice::Default => self.config.default_keys.as_ref(),
                    KeyChoice::Stream(i) => self.config.streams.get(i).map(|s| &s.keys),
                };
                // Every key set was checked to make a valid context in `new`.
                let ctx = keys.and_then(|k| context(k, &self.config.params).ok());
                let Some(ctx) = ctx else {
                    self.summary.unselected += 1;
                    return Some(rec);
                };
                self.summary.directions += 1;
                e.insert(ctx)
            }
        };
        let mut buf = payload.to_vec();
        let result = match (self.config.mode, is_rtcp) {
            (Mode::Decrypt, false) => ctx.unprotect(&mut buf),
            (Mode::Decrypt, true) => ctx.unprotect_rtcp(&mut buf),
            (Mode::Encrypt, rtcp) => {
                let len = buf.len();
                let extra = if rtcp {
                    ctx.srtcp_overhead()
                } else {
                    ctx.srtp_overhead()
                };
                buf.resize(len + extra, 0);
                if rtcp {
                    ctx.protect_rtcp(&mut buf, len)
                } else {
                    ctx.protect(&mut buf, len)
                }
            }
        };
        let kind = match (self.config.mode, is_rtcp) {
            (Mode::Decrypt, false) => "SRTP",
            (Mode::Decrypt, true) => "SRTCP",
            (Mode::Encrypt, false) => "RTP",
            (Mode::Encrypt, true) => "RTCP",
        };
        let failure = match result {
            Ok(n) => {
                buf.truncate(n);
                match view.replace_payload(&rec.data, &buf) {
                    Some(data) => {
                        if is_rtcp {
                            self.summary.rtcp += 1;
                        } else {
                            self.summary.rtp += 1;
                        }
                        let grown = data.len() as i64 - rec.data.len() as i64;
                        let orig_len = (rec.orig_len as i64 + grown).clamp(0, u32::MAX as i64);
                        return Some(Record {
                            data,
                            orig_len: orig_len as u32,
                            ..rec
                        });
                    }
                    None => format!("{kind}: datagram too large for IP"),
                }
            }
            Err(e) => format!("{kind}: {e}"),
        };
        *self.summary.failures.entry(failure).or_default() += 1;
        match self.config.on_failure {
            OnFailure::Keep => Some(rec),
            OnFailure::Drop => None,
        }
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("input: {0}")]
    Open(PcapError),
    #[error(
        "input link type {0} is not supported (Ethernet, Linux SLL/SLL2, raw IP and loopback are)"
    )]
    LinkType(u16),
    /// The input broke off or is damaged after some packets; those were written.
    #[error("input: {error}")]
    Read {
        error: PcapError,
        summary: Box<Summary>,
    },
    #[error("output: {0}")]
    Write(std::io::Error),
}

/// Reads a whole capture from `input`, transforms it and writes it to `output`.
pub fn run<R: Read, W: Write>(input: R, output: W, config: Config) -> Result<Summary, RunError> {
    let mut rewriter = Rewriter::new(config)?;
    let mut reader = PcapReader::new(input).map_err(RunError::Open)?;
    let linktype = reader.header().linktype();
    if !link::is_supported(linktype) {
        return Err(RunError::LinkType(linktype));
    }
    let header = PcapHeader {
        big_endian: false,
        snaplen: reader.header().snaplen.max(DEFAULT_SNAPLEN),
        ..*reader.header()
    };
    let mut writer = PcapWriter::new(output, &header).map_err(RunError::Write)?;
    let read_error = loop {
        match reader.next_record() {
            Ok(Some(rec)) => {
                if let Some(out) = rewriter.process(linktype, rec) {
                    writer.write_record(&out).map_err(RunError::Write)?;
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    writer.finish().map_err(RunError::Write)?;
    match read_error {
        None => Ok(rewriter.summary.clone()),
        Some(error) => Err(RunError::Read {
            error,
            summary: Box::new(rewriter.summary.clone()),
        }),
    }
}
