//! The built-in SIP access edge, sans-IO: message parsing and writing, digest
//! authentication, the registrar, transactions, and the stateful proxy that anchors every
//! call's media in the relay through [`crate::call`]. Transports live in
//! [`crate::sip_edge`]; everything here is fed bytes and time and returns what to send.

pub mod body;
pub mod config;
pub mod deposit;
mod deposit_media;
pub mod digest;
pub mod framing;
pub mod greeting;
pub mod header;
pub mod media;
pub mod message;
pub mod proxy;
pub mod registrar;
pub mod transaction;
pub mod uri;

pub use message::{Header, Message, StartLine};

/// Why a message could not be parsed. Requests that fail are answered with
/// [`ParseError::status`] when enough of them was readable to build a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    #[error("no blank line ends the headers")]
    NoHeaderEnd,
    #[error("headers are not UTF-8")]
    NotUtf8,
    #[error("malformed start line")]
    BadStartLine,
    #[error("unsupported SIP version")]
    BadVersion,
    #[error("malformed status code")]
    BadStatus,
    #[error("malformed header {0:?}")]
    BadHeader(String),
    #[error("too many headers")]
    TooManyHeaders,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("{0} header appears more than once")]
    Repeated(String),
    #[error("malformed {0} value")]
    BadValue(&'static str),
    #[error("Content-Length {declared} but only {got} body bytes")]
    BodyTruncated { declared: usize, got: usize },
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("malformed CSeq")]
    BadCSeq,
    #[error("malformed Via")]
    BadVia,
    #[error("malformed URI {0:?}")]
    BadUri(String),
    #[error("malformed name-addr")]
    BadNameAddr,
    #[error("display name must be a quoted string or tokens")]
    BadDisplayName,
    #[error("malformed parameter {0:?}")]
    BadParam(String),
    #[error("unbalanced {0}")]
    Unbalanced(&'static str),
}

impl ParseError {
    /// The response code and reason phrase a request failing this way gets.
    pub fn status(&self) -> (u16, String) {
        match self {
            ParseError::BadVersion => (505, "Version Not Supported".into()),
            ParseError::TooLarge(_) => (513, "Message Too Large".into()),
            e => (400, format!("Bad Request ({e})")),
        }
    }
}

/// A SIP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// As written in Via (`SIP/2.0/UDP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// As written in a URI's `transport=` parameter.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<Transport> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            _ => None,
        }
    }

    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// A connection of a stream transport, numbered by the transport layer.
pub type ConnId = u64;

/// Where a message came from or goes to: transport, remote address, and the connection
/// to reuse for stream transports (`None`: any, or open a new one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub remote: std::net::SocketAddr,
    pub conn: Option<ConnId>,
}

/// Bytes for the transport layer to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub flow: Flow,
    pub bytes: Vec<u8>,
}
