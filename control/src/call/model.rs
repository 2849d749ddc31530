//! The session model: calls, monologues (one per SIP tag), and per-stream legs. A leg holds
//! what srtpgate knows about one endpoint for one `m=` line: the relay ports facing it, the
//! endpoint's addresses, and the keys each way.

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use relay::engine::LocalPort;
use relay::srtp::Suite;

use super::crypto::CryptoLine;
use crate::dtls::Role;
use crate::ice::Credentials;
use crate::sdp::{Candidate, Fingerprint, Setup};

/// What an endpoint's SDP says about DTLS-SRTP for one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteDtls {
    /// Its certificate fingerprints (media level, else session level).
    pub fingerprints: Vec<Fingerprint>,
    /// Its `a=setup` role, when given.
    pub setup: Option<Setup>,
}

/// What an endpoint's SDP says about ICE for one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteIce {
    pub ufrag: String,
    /// The endpoint is ICE-lite itself.
    pub lite: bool,
}

/// srtpgate's DTLS parameters written toward one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalDtls {
    pub fingerprint: Fingerprint,
    pub setup: Setup,
}

/// srtpgate's ICE-lite parameters written toward one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIce {
    pub credentials: Credentials,
    pub candidates: Vec<Candidate>,
}

/// DTLS-SRTP on one leg: keys come from a handshake with the endpoint.
#[derive(Clone, Debug, Default)]
pub struct LegDtls {
    /// The role srtpgate takes; `None` until the answer decides it (after `actpass`).
    pub role: Option<Role>,
    /// What srtpgate wrote (`actpass`, `active`, `passive`).
    pub setup: Option<Setup>,
    pub remote_fingerprints: Vec<Fingerprint>,
    /// The handshake completed (keys are in `want`).
    pub connected: bool,
    /// Why the handshake failed, when it did.
    pub failure: Option<String>,
}

/// What one endpoint's SDP says about one media stream (already parsed and validated).
#[derive(Clone, Debug, Default)]
pub struct RemoteMedia {
    /// `audio`, `video`, …
    pub kind: String,
    /// Connection address (`None` or unspecified for hold / not yet known).
    pub addr: Option<IpAddr>,
    /// RTP port; 0 rejects or disables the stream.
    pub port: u16,
    /// Where the endpoint wants RTCP (`a=rtcp`), when it says so.
    pub rtcp: Option<SocketAddr>,
    pub rtcp_mux: bool,
    /// The endpoint speaks SRTP (RTP/SAVP or RTP/SAVPF).
    pub srtp: bool,
    /// Its `a=crypto` lines with suites srtpgate supports: keys the endpoint sends with.
    pub crypto: Vec<CryptoLine>,
    /// `a=crypto` suites present but not supported (reported, ignored).
    pub unsupported_suites: Vec<String>,
    /// DTLS-SRTP (`UDP/TLS/...` or `a=fingerprint`).
    pub dtls: Option<RemoteDtls>,
    /// ICE credentials, when the endpoint does ICE.
    pub ice: Option<RemoteIce>,
    /// The profile has RTCP feedback (AVPF, SAVPF).
    pub feedback: bool,
}

impl RemoteMedia {
    /// The endpoint's RTP address, if it gave a usable one.
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        let ip = self.addr.filter(|ip| !ip.is_unspecified())?;
        (self.port != 0).then(|| SocketAddr::new(ip, self.port))
    }

    /// The endpoint's RTCP address: `a=rtcp`, else RTP port + 1, or the RTP address with mux.
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        let rtp = self.rtp_addr()?;
        if self.rtcp_mux {
            return Some(rtp);
        }
        Some(
            self.rtcp
                .unwrap_or_else(|| SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))),
        )
    }

    pub fn suites(&self) -> Vec<Suite> {
        self.crypto.iter().map(|c| c.suite).collect()
    }
}

/// What srtpgate writes into the SDP it sends toward one endpoint for one stream.
#[derive(Clone, Debug)]
pub struct LocalMedia {
    pub addr: IpAddr,
    pub port: u16,
    pub rtcp_port: u16,
    pub rtcp_mux: bool,
    pub srtp: bool,
    /// `a=crypto` lines to write (srtpgate's own keys).
    pub crypto: Vec<CryptoLine>,
    /// The stream is rejected (port 0 mirrored).
    pub rejected: bool,
    /// DTLS-SRTP toward this endpoint (no `a=crypto` then).
    pub dtls: Option<LocalDtls>,
    /// ICE-lite toward this endpoint.
    pub ice: Option<LocalIce>,
    /// Write an RTCP feedback profile (`Some(true)`: SAVPF/AVPF) or not; `None` keeps
    /// that of the SDP being rewritten.
    pub feedback: Option<bool>,
}

/// The relay's two ports facing one endpoint (the same port twice when RTCP is muxed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegPorts {
    pub rtp: LocalPort,
    pub rtcp: LocalPort,
}

/// The keys in use on one leg: what the endpoint sends with, and what the relay sends with.
#[derive(Clone, Debug)]
pub struct Negotiated {
    pub rx: Option<CryptoLine>,
    pub tx: Option<CryptoLine>,
}

/// One endpoint's side of one media stream.
#[derive(Clone, Debug)]
pub struct Leg {
    pub index: usize,
    pub ports: LegPorts,
    pub remote: RemoteMedia,
    /// Lines srtpgate wrote toward this endpoint (offered, or the one answered).
    pub local_crypto: Vec<CryptoLine>,
    /// The endpoint speaks SRTP on this leg (as negotiated).
    pub srtp: bool,
    /// Keys installed in the engine for this leg, once negotiated.
    pub negotiated: Option<Negotiated>,
    /// Whether RTCP toward this endpoint is muxed on the RTP port.
    pub mux: bool,
    /// Learn this endpoint's address from its packets (symmetric RTP).
    pub latch: bool,
    /// Drop packets from other sources once the address is learned.
    pub strict: bool,
    /// DTLS-SRTP keys this leg.
    pub dtls: Option<LegDtls>,
    /// srtpgate is ICE-lite toward this endpoint, with these local credentials.
    pub ice: Option<Credentials>,
    /// The monologue holding the other side of this stream, once answered.
    pub partner: Option<usize>,
    /// Keys to install once both sides of the stream have theirs (DTLS legs get them
    /// from the handshake).
    pub want: Option<Negotiated>,
    /// The address ICE selected, which overrides the SDP address.
    pub ice_selected: Option<SocketAddr>,
}

/// Everything about one SIP tag (one side of a dialog).
#[derive(Clone, Debug)]
pub struct Monologue {
    /// The tag; empty for an answerer not known yet.
    pub tag: String,
    pub label: Option<String>,
    pub legs: Vec<Leg>,
    pub created: SystemTime,
}

impl Monologue {
    pub fn new(tag: &str) -> Self {
        Monologue {
            tag: tag.to_string(),
            label: None,
            legs: Vec::new(),
            created: SystemTime::now(),
        }
    }

    pub fn leg(&self, index: usize) -> Option<&Leg> {
        self.legs.iter().find(|l| l.index == index)
    }

    pub fn leg_mut(&mut self, index: usize) -> Option<&mut Leg> {
        self.legs.iter_mut().find(|l| l.index == index)
    }
}

/// A call: its monologues and the worker all its ports live on.
#[derive(Clone, Debug)]
pub struct Call {
    pub id: String,
    pub created: SystemTime,
    pub last_signal: SystemTime,
    pub worker: Option<usize>,
    pub monologues: Vec<Monologue>,
    /// Opaque `metadata` from the proxy (e.g. identities), newest wins.
    pub metadata: Option<String>,
    pub record: bool,
    /// When a delayed delete takes effect.
    pub delete_at: Option<Instant>,
}

impl Call {
    pub fn new(id: &str) -> Self {
        let now = SystemTime::now();
        Call {
            id: id.to_string(),
            created: now,
            last_signal: now,
            worker: None,
            monologues: Vec::new(),
            metadata: None,
            record: false,
            delete_at: None,
        }
    }

    pub fn monologue(&self, tag: &str) -> Option<&Monologue> {
        self.monologues.iter().find(|m| m.tag == tag)
    }

    pub fn monologue_index(&self, tag: &str) -> Option<usize> {
        self.monologues.iter().position(|m| m.tag == tag)
    }

    /// Every local port the call holds.
    pub fn ports(&self) -> Vec<LocalPort> {
        let mut v = Vec::new();
        for m in &self.monologues {
            for l in &m.legs {
                v.push(l.ports.rtp);
                if l.ports.rtcp != l.ports.rtp {
                    v.push(l.ports.rtcp);
                }
            }
        }
        v
    }
}
