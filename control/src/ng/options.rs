//! Typed values of ng request keys and flags, with the spellings rtpengine accepts.
//!
//! Every variant here is something srtpgate implements (or, for the few documented
//! no-ops, something whose effect srtpgate always has). Values rtpengine knows that
//! srtpgate does not implement are not representable: the parser reports them in the
//! reply's `warning` instead of half-applying them.

use std::net::IpAddr;

/// Lower-cases ASCII and treats `' '`, `'_'` and `'-'` alike, so that `"SIP source
/// address"`, `"sip-source-address"` and `"SIP_source_address"` compare equal. rtpengine
/// accepts a documented spelling, its all-lower-case form and, for most names, spaces or
/// hyphens; this is a superset of those.
pub(crate) fn normalize(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' ' | '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// `name` with `prefix` removed, comparing as [`normalize`] does; the rest keeps its case
/// and separators (crypto suite names contain underscores).
pub(crate) fn strip_prefix_loose<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    if name.len() < prefix.len() || !name.is_char_boundary(prefix.len()) {
        return None;
    }
    let (head, rest) = name.split_at(prefix.len());
    (normalize(head) == normalize(prefix)).then_some(rest)
}

/// Flags from the `flags` list that srtpgate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// Use the addresses in the SDP body (the default).
    TrustAddress,
    /// Ignore SDP addresses; use the `received-from` address of the SIP message.
    SipSourceAddress,
    /// Symmetric RTP: learn the peer's address from its packets (the default).
    Symmetric,
    /// Asymmetric RTP: never learn endpoint addresses from packets.
    Asymmetric,
    /// After learning, drop packets whose source differs from the learned endpoint.
    StrictSource,
    /// Re-learn the endpoint whenever packets arrive from a new source.
    MediaHandover,
    /// Keep local ports when the remote port changes within a dialogue.
    PortLatching,
    /// Allocate new local ports when the remote port changes.
    NoPortLatching,
    /// `delete`: answer an error (not a warning) when the call is unknown.
    Fatal,
    /// `delete`: honour the `to-tag` and tear down only that branch.
    ToTag,
    /// Accepted with no effect: srtpgate keeps no Redis state.
    NoRedisUpdate,
    /// Mark the SDP and leave it untouched when it was already rewritten by srtpgate.
    LoopProtect,
    /// Leave out the `a=rtcp` attribute.
    NoRtcpAttribute,
    /// Write `a=rtcp` with the address, not only the port.
    FullRtcpAttribute,
    /// Keep the direction attributes (`sendrecv`, ...) of the received SDP.
    OriginalSendrecv,
    /// Remove the ICE offered in this `offer`.
    RejectIce,
    /// Add `a=mid` to media sections that lack one.
    GenerateMid,
    /// Forget learned properties (ICE, SRTP support) of the endpoints of this offer.
    Reset,
}

impl Flag {
    /// The flag for a normalized name (see [`normalize`]).
    pub(crate) fn from_normalized(name: &str) -> Option<Flag> {
        Some(match name {
            "trust-address" => Flag::TrustAddress,
            "sip-source-address" => Flag::SipSourceAddress,
            "symmetric" => Flag::Symmetric,
            "asymmetric" => Flag::Asymmetric,
            "strict-source" => Flag::StrictSource,
            "media-handover" => Flag::MediaHandover,
            "port-latching" => Flag::PortLatching,
            "no-port-latching" => Flag::NoPortLatching,
            "fatal" => Flag::Fatal,
            "to-tag" => Flag::ToTag,
            "no-redis-update" => Flag::NoRedisUpdate,
            "loop-protect" => Flag::LoopProtect,
            "no-rtcp-attribute" => Flag::NoRtcpAttribute,
            "full-rtcp-attribute" => Flag::FullRtcpAttribute,
            "original-sendrecv" => Flag::OriginalSendrecv,
            "reject-ice" | "ice-reject" => Flag::RejectIce,
            "generate-mid" => Flag::GenerateMid,
            "reset" => Flag::Reset,
            _ => return None,
        })
    }

    /// The spelling rtpengine documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::TrustAddress => "trust-address",
            Flag::SipSourceAddress => "SIP-source-address",
            Flag::Symmetric => "symmetric",
            Flag::Asymmetric => "asymmetric",
            Flag::StrictSource => "strict-source",
            Flag::MediaHandover => "media-handover",
            Flag::PortLatching => "port-latching",
            Flag::NoPortLatching => "no-port-latching",
            Flag::Fatal => "fatal",
            Flag::ToTag => "to-tag",
            Flag::NoRedisUpdate => "no-redis-update",
            Flag::LoopProtect => "loop-protect",
            Flag::NoRtcpAttribute => "no-rtcp-attribute",
            Flag::FullRtcpAttribute => "full-rtcp-attribute",
            Flag::OriginalSendrecv => "original-sendrecv",
            Flag::RejectIce => "reject-ICE",
            Flag::GenerateMid => "generate-mid",
            Flag::Reset => "reset",
        }
    }
}

/// Parts of the SDP to rewrite (`replace` list, or `replace-` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Replace {
    /// The address in the `o=` line.
    Origin,
    /// The whole `o=` line, kept stable per endpoint.
    OriginFull,
    /// Legacy: session-level `c=`; srtpgate always rewrites it (rtpengine ignores it too).
    SessionConnection,
    /// Manage the `o=` version: increase it when the SDP changes.
    SdpVersion,
    /// Increase the `o=` version even when the SDP did not change.
    ForceIncrementSdpVersion,
    /// Keep the `s=` line stable per endpoint.
    SessionName,
    /// Keep the `o=` username stable per endpoint.
    Username,
    /// Replace a zero (hold) connection address with a real one.
    ZeroAddress,
}

impl Replace {
    pub(crate) fn from_normalized(name: &str) -> Option<Replace> {
        Some(match name {
            "origin" => Replace::Origin,
            "origin-full" => Replace::OriginFull,
            "session-connection" => Replace::SessionConnection,
            "sdp-version" => Replace::SdpVersion,
            "force-increment-sdp-ver" => Replace::ForceIncrementSdpVersion,
            "session-name" => Replace::SessionName,
            "username" => Replace::Username,
            "zero-address" => Replace::ZeroAddress,
            _ => return None,
        })
    }
}

/// `rtcp-mux` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RtcpMux {
    /// Offer rtcp-mux even when the offerer did not.
    Offer,
    /// Like `Offer`, and advertise no separate RTCP port (WebRTC).
    Require,
    /// Do not offer onwards the rtcp-mux that was offered, but accept it back.
    Demux,
    /// Accept rtcp-mux, and offer it onwards if it was offered.
    Accept,
    /// Reject offered rtcp-mux.
    Reject,
}

impl RtcpMux {
    pub(crate) fn from_normalized(name: &str) -> Option<RtcpMux> {
        Some(match name {
            "offer" => RtcpMux::Offer,
            "require" => RtcpMux::Require,
            "demux" => RtcpMux::Demux,
            "accept" => RtcpMux::Accept,
            "reject" => RtcpMux::Reject,
            _ => return None,
        })
    }
}

/// `ICE` (`force-relay` is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ice {
    /// Strip ICE attributes.
    Remove,
    /// Strip ICE attributes and offer srtpgate as the only candidate.
    Force,
    /// `Force` when the received SDP had ICE, otherwise none (also the default).
    Default,
    /// Add srtpgate as a low-priority candidate, or offer ICE when there was none.
    Optional,
}

impl Ice {
    pub(crate) fn from_normalized(value: &str) -> Option<Ice> {
        Some(match value {
            "remove" => Ice::Remove,
            "force" => Ice::Force,
            "default" => Ice::Default,
            "optional" => Ice::Optional,
            _ => return None,
        })
    }
}

/// `DTLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtls {
    /// Neither offer nor accept DTLS-SRTP.
    Off,
    /// Prefer the passive (server) role.
    Passive,
    /// Prefer the active (client) role (the default).
    Active,
}

impl Dtls {
    pub(crate) fn from_normalized(value: &str) -> Option<Dtls> {
        Some(match value {
            "off" | "no" | "disable" | "disabled" => Dtls::Off,
            "passive" => Dtls::Passive,
            "active" => Dtls::Active,
            _ => return None,
        })
    }
}

/// `DTLS-fingerprint`: the hash of the certificate fingerprint srtpgate advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FingerprintHash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl FingerprintHash {
    pub(crate) fn from_normalized(value: &str) -> Option<FingerprintHash> {
        Some(match value {
            "sha-1" | "sha1" => FingerprintHash::Sha1,
            "sha-224" | "sha224" => FingerprintHash::Sha224,
            "sha-256" | "sha256" => FingerprintHash::Sha256,
            "sha-384" | "sha384" => FingerprintHash::Sha384,
            "sha-512" | "sha512" => FingerprintHash::Sha512,
            _ => return None,
        })
    }
}

/// SDP transport protocols srtpgate relays between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportProtocol {
    RtpAvp,
    RtpSavp,
    RtpAvpf,
    RtpSavpf,
    UdpTlsRtpSavp,
    UdpTlsRtpSavpf,
}

impl TransportProtocol {
    /// Parses the SDP spelling, ignoring ASCII case.
    pub fn parse(value: &str) -> Option<TransportProtocol> {
        Some(match value.to_ascii_uppercase().as_str() {
            "RTP/AVP" => TransportProtocol::RtpAvp,
            "RTP/SAVP" => TransportProtocol::RtpSavp,
            "RTP/AVPF" => TransportProtocol::RtpAvpf,
            "RTP/SAVPF" => TransportProtocol::RtpSavpf,
            "UDP/TLS/RTP/SAVP" => TransportProtocol::UdpTlsRtpSavp,
            "UDP/TLS/RTP/SAVPF" => TransportProtocol::UdpTlsRtpSavpf,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TransportProtocol::RtpAvp => "RTP/AVP",
            TransportProtocol::RtpSavp => "RTP/SAVP",
            TransportProtocol::RtpAvpf => "RTP/AVPF",
            TransportProtocol::RtpSavpf => "RTP/SAVPF",
            TransportProtocol::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            TransportProtocol::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
        }
    }

    /// Whether media is SRTP (SDES or DTLS-SRTP keyed).
    pub fn is_secure(self) -> bool {
        !matches!(self, TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf)
    }
}

/// `transport-protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Rewrite the SDP (and the media) to this protocol.
    Protocol(TransportProtocol),
    /// `answer` only: go along with an answer that changed the offered protocol.
    Accept,
}

/// `address-family`, and the family in `received-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    Ip4,
    Ip6,
}

impl AddressFamily {
    pub(crate) fn from_normalized(value: &str) -> Option<AddressFamily> {
        Some(match value {
            "ip4" | "ipv4" => AddressFamily::Ip4,
            "ip6" | "ipv6" => AddressFamily::Ip6,
            _ => return None,
        })
    }
}

/// `received-from`: where the SIP message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceivedFrom {
    /// The family as given (absent when `received-from` was a bare address string).
    pub family: Option<AddressFamily>,
    pub address: IpAddr,
}

/// `sip-message-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipMessageType {
    Request,
    Reply,
}

impl SipMessageType {
    pub(crate) fn from_normalized(value: &str) -> Option<SipMessageType> {
        Some(match value {
            "request" | "sip-request" => SipMessageType::Request,
            "reply" | "response" | "sip-reply" | "sip-response" => SipMessageType::Reply,
            _ => return None,
        })
    }
}

/// `TOS`: the IP TOS byte of outgoing media for the whole call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tos {
    /// Use this value.
    Set(u8),
    /// A negative value: leave the call's current TOS unchanged.
    Keep,
    /// 256 or more: revert to the configured default.
    Default,
}

impl Tos {
    pub(crate) fn from_int(v: i64) -> Tos {
        match u8::try_from(v) {
            Ok(b) => Tos::Set(b),
            Err(_) if v < 0 => Tos::Keep,
            Err(_) => Tos::Default,
        }
    }
}

/// SDES behaviour: the `SDES` list and `SDES-` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdesOptions {
    /// Do not offer SDES (`off`, `no`, `disable`, `disabled`).
    pub off: bool,
    pub unencrypted_srtp: bool,
    pub unencrypted_srtcp: bool,
    pub unauthenticated_srtp: bool,
    /// Negations of the three session parameters above.
    pub encrypted_srtp: bool,
    pub encrypted_srtcp: bool,
    pub authenticated_srtp: bool,
    /// `no-SUITE`: suites not to offer.
    pub no: Vec<String>,
    /// `only-SUITE`: offer only these suites.
    pub only: Vec<String>,
    /// Offer no suites beyond those received.
    pub nonew: bool,
    /// Keep base64 padding in `inline:` keys (srtpgate always writes it; accepted).
    pub pad: bool,
    /// Add the key lifetime parameter `2^31`.
    pub lifetime: bool,
    /// Keep the negotiated suite on re-INVITE answers.
    pub static_: bool,
    /// Prefer SDES over DTLS-SRTP when both are offered.
    pub prefer: bool,
}

impl SdesOptions {
    /// Applies one option (without its `SDES-` prefix); false when it is not one srtpgate
    /// knows.
    pub(crate) fn apply(&mut self, option: &str) -> bool {
        if let Some(suite) = strip_prefix_loose(option, "no-") {
            self.no.push(suite.to_owned());
            return true;
        }
        if let Some(suite) = strip_prefix_loose(option, "only-") {
            self.only.push(suite.to_owned());
            return true;
        }
        let flag = match normalize(option).as_str() {
            "off" | "no" | "disable" | "disabled" => &mut self.off,
            "unencrypted-srtp" => &mut self.unencrypted_srtp,
            "unencrypted-srtcp" => &mut self.unencrypted_srtcp,
            "unauthenticated-srtp" => &mut self.unauthenticated_srtp,
            "encrypted-srtp" => &mut self.encrypted_srtp,
            "encrypted-srtcp" => &mut self.encrypted_srtcp,
            "authenticated-srtp" => &mut self.authenticated_srtp,
            "nonew" => &mut self.nonew,
            "pad" => &mut self.pad,
            "lifetime" => &mut self.lifetime,
            "static" => &mut self.static_,
            "prefer" | "priority" => &mut self.prefer,
            _ => return false,
        };
        *flag = true;
        true
    }
}

/// Codec manipulations that need no transcoding (`codec` dictionary, `codec-` flags).
/// `transcode`, `mask`, `accept`, `consume` and `set` need a transcoder, which srtpgate
/// does not have; they are reported as unsupported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodecOptions {
    /// Codecs (names, or `name/rate[/channels]`, or `all`) to remove from the SDP.
    pub strip: Vec<String>,
    /// Codecs to keep, in this order, first being preferred.
    pub offer: Vec<String>,
    /// Codecs to keep when stripping `all`.
    pub except: Vec<String>,
}

impl CodecOptions {
    pub fn is_empty(&self) -> bool {
        self.strip.is_empty() && self.offer.is_empty() && self.except.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_prefixes() {
        assert_eq!(normalize("SIP source_address"), "sip-source-address");
        assert_eq!(
            strip_prefix_loose("SDES-no-AES_CM_128_HMAC_SHA1_32", "sdes-"),
            Some("no-AES_CM_128_HMAC_SHA1_32")
        );
        assert_eq!(
            strip_prefix_loose("rtcp mux-offer", "rtcp-mux-"),
            Some("offer")
        );
        assert_eq!(strip_prefix_loose("SDE", "sdes-"), None);
        assert_eq!(strip_prefix_loose("é-no", "sdes-"), None);
    }

    #[test]
    fn sdes_options() {
        let mut s = SdesOptions::default();
        for o in [
            "no-AES_CM_128_HMAC_SHA1_32",
            "only-AEAD_AES_256_GCM",
            "UNENCRYPTED_SRTCP",
            "pad",
            "off",
        ] {
            assert!(s.apply(o), "{o}");
        }
        assert!(!s.apply("order:AES_CM_128_HMAC_SHA1_80"));
        assert_eq!(s.no, vec!["AES_CM_128_HMAC_SHA1_32"]);
        assert_eq!(s.only, vec!["AEAD_AES_256_GCM"]);
        assert!(s.unencrypted_srtcp && s.pad && s.off && !s.unencrypted_srtp);
    }

    #[test]
    fn tos_ranges() {
        assert_eq!(Tos::from_int(184), Tos::Set(184));
        assert_eq!(Tos::from_int(-1), Tos::Keep);
        assert_eq!(Tos::from_int(256), Tos::Default);
    }

    #[test]
    fn transport_protocols() {
        assert_eq!(
            TransportProtocol::parse("udp/tls/rtp/savpf"),
            Some(TransportProtocol::UdpTlsRtpSavpf)
        );
        assert!(TransportProtocol::RtpSavp.is_secure());
        assert!(!TransportProtocol::RtpAvpf.is_secure());
        assert_eq!(TransportProtocol::parse("UDPTL"), None);
    }
}
