//! The typed ng request: command, call identity, SDP and the options srtpgate implements.
//!
//! Parsing lives in [`super::parse`]; this module holds the types, the command names and
//! the errors, whose texts follow rtpengine's where rtpengine has one (Kamailio logs the
//! `error-reason` of a reply), with the detail of what was wrong appended.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use zeroize::Zeroizing;

use super::bencode::DecodeError;
use super::options::{
    AddressFamily, CodecOptions, Dtls, FingerprintHash, Flag, Ice, ReceivedFrom, Replace, RtcpMux,
    SdesOptions, SipMessageType, Tos, Transport,
};

/// An ng command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Command {
    #[default]
    Ping,
    Offer,
    Answer,
    Delete,
    Query,
    List,
    Statistics,
    StartRecording,
    StopRecording,
    /// A command rtpengine defines that srtpgate does not implement (its wire name). The
    /// server answers it with an error without calling the handler.
    Unsupported(String),
}

/// Commands rtpengine defines that srtpgate recognises but does not implement.
pub const UNSUPPORTED_COMMANDS: &[&str] = &[
    "pause recording",
    "start forwarding",
    "stop forwarding",
    "block DTMF",
    "unblock DTMF",
    "block media",
    "unblock media",
    "silence media",
    "unsilence media",
    "block silence media",
    "unblock silence media",
    "play media",
    "stop media",
    "play DTMF",
    "publish",
    "subscribe request",
    "subscribe answer",
    "unsubscribe",
    "connect",
    "cli",
    "CLI",
];

impl Command {
    /// The command for its wire name. Names are matched exactly, as rtpengine does.
    pub fn from_name(name: &[u8]) -> Option<Command> {
        let name = std::str::from_utf8(name).ok()?;
        Some(match name {
            "ping" => Command::Ping,
            "offer" => Command::Offer,
            "answer" => Command::Answer,
            "delete" => Command::Delete,
            "query" => Command::Query,
            "list" => Command::List,
            "statistics" => Command::Statistics,
            "start recording" => Command::StartRecording,
            "stop recording" => Command::StopRecording,
            other if UNSUPPORTED_COMMANDS.contains(&other) => {
                Command::Unsupported(other.to_owned())
            }
            _ => return None,
        })
    }

    /// The wire name.
    pub fn name(&self) -> &str {
        match self {
            Command::Ping => "ping",
            Command::Offer => "offer",
            Command::Answer => "answer",
            Command::Delete => "delete",
            Command::Query => "query",
            Command::List => "list",
            Command::Statistics => "statistics",
            Command::StartRecording => "start recording",
            Command::StopRecording => "stop recording",
            Command::Unsupported(name) => name,
        }
    }
}

/// The SDP body of a request. It carries SDES master keys (`a=crypto ... inline:`), so it
/// is wiped from memory when dropped and never printed by `Debug`.
pub type SdpBody = Zeroizing<Vec<u8>>;

/// A parsed ng request. Fields are `None`/empty when the request did not set them.
///
/// Every field and variant is part of the contract with the call layer: it must honour
/// each one it is given, or say that it did not in the reply's warning
/// ([`super::NgResponse::warn`]). Inputs srtpgate does not implement never reach these
/// fields; they are listed in `unsupported` and reported by the server.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NgRequest {
    pub command: Command,
    pub call_id: Option<String>,
    /// The `From` tag. For `answer`, as sent: rtpengine swaps it with the `To` tag
    /// internally; so must the call layer.
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub via_branch: Option<String>,
    pub sdp: Option<SdpBody>,
    pub flags: BTreeSet<Flag>,
    pub replace: BTreeSet<Replace>,
    pub rtcp_mux: BTreeSet<RtcpMux>,
    pub transport: Option<Transport>,
    pub ice: Option<Ice>,
    pub dtls: Option<Dtls>,
    pub dtls_fingerprint: Option<FingerprintHash>,
    pub sdes: SdesOptions,
    pub codec: CodecOptions,
    /// Logical interfaces: `[from, to]` (`direction`, `from-interface`, `to-interface`).
    pub direction: [Option<String>; 2],
    /// A single logical interface.
    pub interface: Option<String>,
    pub received_from: Option<ReceivedFrom>,
    /// Overrides both the SDP addresses and `received-from`.
    pub media_address: Option<IpAddr>,
    /// Address family wanted in the rewritten SDP.
    pub address_family: Option<AddressFamily>,
    /// `record-call` (key `yes`/`no`/`on`/`off`, or the flag): record this call.
    pub record_call: Option<bool>,
    pub metadata: Option<String>,
    pub label: Option<String>,
    /// `delete`: seconds to keep the call after the delete (0: at once).
    pub delete_delay: Option<u32>,
    pub tos: Option<Tos>,
    pub from_tags: Vec<String>,
    pub sip_message_type: Option<SipMessageType>,
    pub sip_code: Option<u16>,
    /// The client understands a `load limit` result instead of an error.
    pub supports_load_limit: bool,
    /// `list`: the most call-ids to return (rtpengine's default is 32).
    pub limit: Option<u32>,
    /// What the request asked for that srtpgate ignored: unknown keys and flags, and
    /// values srtpgate does not implement. The server reports them in `warning`.
    pub unsupported: Vec<String>,
}

impl NgRequest {
    /// Whether `flag` was given.
    pub fn has(&self, flag: Flag) -> bool {
        self.flags.contains(&flag)
    }

    /// The SDP as text, if it is valid UTF-8.
    pub fn sdp_str(&self) -> Option<&str> {
        self.sdp.as_ref().and_then(|s| std::str::from_utf8(s).ok())
    }
}

impl fmt::Debug for NgRequest {
    /// Everything but the SDP body, which holds SRTP keys: only its length is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NgRequest")
            .field("command", &self.command)
            .field("call_id", &self.call_id)
            .field("from_tag", &self.from_tag)
            .field("to_tag", &self.to_tag)
            .field("via_branch", &self.via_branch)
            .field("sdp_len", &self.sdp.as_ref().map(|s| s.len()))
            .field("flags", &self.flags)
            .field("replace", &self.replace)
            .field("rtcp_mux", &self.rtcp_mux)
            .field("transport", &self.transport)
            .field("ice", &self.ice)
            .field("dtls", &self.dtls)
            .field("dtls_fingerprint", &self.dtls_fingerprint)
            .field("sdes", &self.sdes)
            .field("codec", &self.codec)
            .field("direction", &self.direction)
            .field("interface", &self.interface)
            .field("received_from", &self.received_from)
            .field("media_address", &self.media_address)
            .field("address_family", &self.address_family)
            .field("record_call", &self.record_call)
            .field("metadata", &self.metadata)
            .field("label", &self.label)
            .field("delete_delay", &self.delete_delay)
            .field("tos", &self.tos)
            .field("from_tags", &self.from_tags)
            .field("sip_message_type", &self.sip_message_type)
            .field("sip_code", &self.sip_code)
            .field("supports_load_limit", &self.supports_load_limit)
            .field("limit", &self.limit)
            .field("unsupported", &self.unsupported)
            .finish()
    }
}

/// A key a command requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredKey {
    Sdp,
    CallId,
    FromTag,
    ToTag,
}

/// Why a payload is not a request srtpgate can act on. `Display` is the `error-reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("Invalid data (no payload)")]
    NoPayload,
    #[error("Could not decode bencode dictionary: {0}")]
    Decode(#[from] DecodeError),
    #[error("Invalid NG data format: payload starts with 0x{0:02x}, neither a bencode nor a JSON dictionary")]
    UnknownFormat(u8),
    #[error("Failed to parse JSON document: {0}")]
    Json(String),
    #[error("Could not decode bencode dictionary: the document is a {0}, not a dictionary")]
    NotADictionary(&'static str),
    #[error("Dictionary contains no key \"command\"")]
    MissingCommand,
    #[error("Unrecognized command \"{0}\"")]
    UnknownCommand(String),
    #[error("{}", missing_text(*.0))]
    Missing(RequiredKey),
    #[error("Wrong type for \"{key}\": expected {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("Invalid value for \"{key}\": {reason}")]
    InvalidValue { key: String, reason: String },
    #[error("\"{0}\" is not valid UTF-8")]
    NotUtf8(String),
    #[error("{0} is not supported by srtpgate")]
    NotSupported(&'static str),
}

fn missing_text(key: RequiredKey) -> &'static str {
    match key {
        RequiredKey::Sdp => "No SDP body in message",
        RequiredKey::CallId => "No call-id in message",
        RequiredKey::FromTag => "No from-tag in message",
        RequiredKey::ToTag => "No to-tag in message",
    }
}

impl RequestError {
    /// A short stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestError::NoPayload => "no_payload",
            RequestError::Decode(e) => e.kind(),
            RequestError::UnknownFormat(_) => "unknown_format",
            RequestError::Json(_) => "json",
            RequestError::NotADictionary(_) => "not_a_dictionary",
            RequestError::MissingCommand => "missing_command",
            RequestError::UnknownCommand(_) => "unknown_command",
            RequestError::Missing(RequiredKey::Sdp) => "missing_sdp",
            RequestError::Missing(RequiredKey::CallId) => "missing_call_id",
            RequestError::Missing(RequiredKey::FromTag) => "missing_from_tag",
            RequestError::Missing(RequiredKey::ToTag) => "missing_to_tag",
            RequestError::WrongType { .. } => "wrong_type",
            RequestError::InvalidValue { .. } => "invalid_value",
            RequestError::NotUtf8(_) => "not_utf8",
            RequestError::NotSupported(_) => "not_supported",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_round_trip() {
        for name in [
            "ping",
            "offer",
            "answer",
            "delete",
            "query",
            "list",
            "statistics",
            "start recording",
            "stop recording",
        ] {
            let c = Command::from_name(name.as_bytes()).unwrap();
            assert!(!matches!(c, Command::Unsupported(_)));
            assert_eq!(c.name(), name);
        }
        for &name in UNSUPPORTED_COMMANDS {
            assert_eq!(
                Command::from_name(name.as_bytes()),
                Some(Command::Unsupported(name.to_owned()))
            );
        }
        assert_eq!(Command::from_name(b"Offer"), None);
        assert_eq!(Command::from_name(b"start_recording"), None);
        assert_eq!(Command::from_name(b"\xff"), None);
    }

    #[test]
    fn error_reasons_match_rtpengine() {
        assert_eq!(
            RequestError::Missing(RequiredKey::CallId).to_string(),
            "No call-id in message"
        );
        assert_eq!(
            RequestError::MissingCommand.to_string(),
            "Dictionary contains no key \"command\""
        );
        assert!(RequestError::UnknownCommand("x".into())
            .to_string()
            .starts_with("Unrecognized command"));
    }

    #[test]
    fn debug_hides_the_sdp() {
        let r = NgRequest {
            sdp: Some(Zeroizing::new(
                b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:secret".to_vec(),
            )),
            ..NgRequest::default()
        };
        let shown = format!("{r:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("sdp_len: Some(48)"), "{shown}");
    }
}
