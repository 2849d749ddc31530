//! Typed SRTP errors. None of them carries key material.

/// Why a packet could not be protected or unprotected, or a policy not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("packet too short")]
    TooShort,
    #[error("not an RTP/RTCP version 2 packet")]
    BadVersion,
    #[error("authentication failed")]
    AuthFailed,
    #[error("replayed packet")]
    Replay,
    #[error("packet older than the replay window")]
    ReplayOld,
    #[error("unknown MKI")]
    UnknownMki,
    #[error("master key expired (lifetime or 2^48/2^31 packet limit reached)")]
    KeyExpired,
    #[error("buffer has no room for the SRTP trailer")]
    BufferTooSmall,
    #[error("invalid SRTP policy: {0}")]
    InvalidPolicy(&'static str),
}
