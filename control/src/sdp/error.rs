//! Why an SDP body or one of its attributes was refused.
//!
//! No error carries attribute values: an `a=crypto` line holds key material, so errors say
//! which line and what was wrong, never what the line said.

use relay::srtp::Suite;

/// Why [`SessionDescription::parse`](super::SessionDescription::parse) refused a body.
/// Line numbers count from 1 and include blank lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: SDP is not valid UTF-8")]
    NotUtf8 { line: usize },
    #[error("SDP body is empty")]
    Empty,
    #[error("line {line}: SDP must start with v=")]
    MissingVersion { line: usize },
    #[error("line {line}: only SDP version 0 is known")]
    BadVersion { line: usize },
    #[error("line {line}: no '=' after the line type")]
    MissingEquals { line: usize },
    #[error("line {line}: the line type must be a single letter")]
    BadLineType { line: usize },
    #[error("line {line}: NUL or CR inside a line")]
    ControlCharacter { line: usize },
    #[error("line {line}: a second {kind}= line")]
    Duplicate { line: usize, kind: char },
    #[error("line {line}: {kind}= is not allowed in a media section")]
    Misplaced { line: usize, kind: char },
    #[error("the session section has no {kind}= line")]
    Missing { kind: char },
    #[error("line {line}: bad o= line: {what}")]
    BadOrigin { line: usize, what: &'static str },
    #[error("line {line}: bad c= line: {what}")]
    BadConnection { line: usize, what: &'static str },
    #[error("line {line}: bad m= line: {what}")]
    BadMedia { line: usize, what: &'static str },
    #[error("line {line}: port out of range")]
    PortOutOfRange { line: usize },
    #[error("line {line}: bad a=crypto: {error}")]
    BadCrypto { line: usize, error: CryptoError },
    #[error("line {line}: bad a={name}: {error}")]
    BadAttribute {
        line: usize,
        name: &'static str,
        error: AttrError,
    },
}

impl SdpError {
    /// The line the error refers to, when it refers to one.
    pub fn line(&self) -> Option<usize> {
        match self {
            SdpError::TooLarge { .. } | SdpError::Empty | SdpError::Missing { .. } => None,
            SdpError::NotUtf8 { line }
            | SdpError::MissingVersion { line }
            | SdpError::BadVersion { line }
            | SdpError::MissingEquals { line }
            | SdpError::BadLineType { line }
            | SdpError::ControlCharacter { line }
            | SdpError::Duplicate { line, .. }
            | SdpError::Misplaced { line, .. }
            | SdpError::BadOrigin { line, .. }
            | SdpError::BadConnection { line, .. }
            | SdpError::BadMedia { line, .. }
            | SdpError::PortOutOfRange { line }
            | SdpError::BadCrypto { line, .. }
            | SdpError::BadAttribute { line, .. } => Some(*line),
        }
    }
}

/// Why an `a=crypto` value (RFC 4568 §9.1) was refused. Never contains key bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no value")]
    MissingValue,
    #[error("tag must be 1 to 9 digits")]
    BadTag,
    #[error("missing or malformed crypto-suite")]
    BadSuite,
    #[error("no key parameter")]
    MissingKey,
    #[error("key parameter is not \"inline:\"")]
    NotInline,
    #[error("key is not valid base64")]
    BadBase64,
    #[error("bad key lifetime")]
    BadLifetime,
    #[error("bad MKI")]
    BadMki,
    #[error("bad {0} session parameter")]
    BadSessionParam(&'static str),
    #[error("unknown crypto-suite {0:?}")]
    UnknownSuite(String),
    #[error("key-salt is {got} bytes, {suite} needs {want}")]
    WrongKeyLength {
        suite: Suite,
        got: usize,
        want: usize,
    },
}

impl From<relay::srtp::InlineError> for CryptoError {
    fn from(e: relay::srtp::InlineError) -> Self {
        use relay::srtp::InlineError as E;
        match e {
            E::NotInline => CryptoError::NotInline,
            E::BadBase64 => CryptoError::BadBase64,
            E::WrongLength { suite, got, want } => CryptoError::WrongKeyLength { suite, got, want },
            E::BadLifetime(_) => CryptoError::BadLifetime,
            E::BadMki(_) => CryptoError::BadMki,
        }
    }
}

/// Why the value of another typed attribute (`a=rtcp`, `a=candidate`, ...) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("no value")]
    MissingValue,
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("bad {0}")]
    Bad(&'static str),
    #[error("port out of range")]
    PortOutOfRange,
}
