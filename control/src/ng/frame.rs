//! ng datagram framing: `<cookie> <payload>`, the reply being `<same cookie> <payload>`.
//!
//! The cookie runs up to the first space; everything after that one space is the payload
//! (a bencoded or JSON dictionary). As in rtpengine, a datagram without a space, or one
//! starting with a space, has no usable cookie and cannot be answered; a datagram with a
//! cookie but an empty or broken payload is answered with an error under that cookie.

/// A datagram split into cookie and payload, borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub cookie: &'a [u8],
    pub payload: &'a [u8],
}

/// Why a datagram has no cookie to answer under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty datagram")]
    Empty,
    #[error("no space separating a cookie from the payload")]
    NoSeparator,
    #[error("datagram starts with a space: no cookie")]
    EmptyCookie,
}

impl FrameError {
    /// A short stable name for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::Empty => "empty_datagram",
            FrameError::NoSeparator => "no_separator",
            FrameError::EmptyCookie => "empty_cookie",
        }
    }
}

/// Splits a datagram at its first space.
pub fn split(datagram: &[u8]) -> Result<Frame<'_>, FrameError> {
    if datagram.is_empty() {
        return Err(FrameError::Empty);
    }
    match datagram.iter().position(|&b| b == b' ') {
        None => Err(FrameError::NoSeparator),
        Some(0) => Err(FrameError::EmptyCookie),
        Some(i) => Ok(Frame {
            cookie: &datagram[..i],
            payload: &datagram[i + 1..],
        }),
    }
}

/// `<cookie> <payload>`.
pub fn join(cookie: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cookie.len() + 1 + payload.len());
    out.extend_from_slice(cookie);
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_space() {
        let f = split(b"5323_1 d7:command4:pinge").unwrap();
        assert_eq!(f.cookie, b"5323_1");
        assert_eq!(f.payload, b"d7:command4:pinge");
        // Spaces inside the payload (SDP, flags) stay in the payload.
        let f = split(b"1_2_3 d3:sdp3:a be").unwrap();
        assert_eq!(f.payload, b"d3:sdp3:a be");
        // A cookie with an empty payload is still a frame: it gets an error reply.
        assert_eq!(split(b"c ").unwrap().payload, b"");
    }

    #[test]
    fn refuses_datagrams_without_a_cookie() {
        assert_eq!(split(b""), Err(FrameError::Empty));
        assert_eq!(split(b"d7:command4:pinge"), Err(FrameError::NoSeparator));
        assert_eq!(split(b" d7:command4:pinge"), Err(FrameError::EmptyCookie));
    }

    #[test]
    fn join_is_the_inverse_of_split() {
        let d = join(b"42_7_9", b"d6:result4:ponge");
        assert_eq!(d, b"42_7_9 d6:result4:ponge".to_vec());
        let f = split(&d).unwrap();
        assert_eq!(
            (f.cookie, f.payload),
            (&b"42_7_9"[..], &b"d6:result4:ponge"[..])
        );
    }
}
