//! Message framing on stream transports (TCP, TLS): headers end at a blank line, the body
//! is Content-Length bytes (mandatory on streams, RFC 3261 18.3). CRLF keep-alives
//! (RFC 5626 3.5.1) between messages are answered with a single CRLF.

use super::header::canonical;
use super::message::{head_end, MAX_MESSAGE};
use super::ParseError;

/// What [`Framer::next`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (bytes to hand to [`super::Message::parse`]).
    Message(Vec<u8>),
    /// A double-CRLF keep-alive ping: answer with CRLF.
    Ping,
}

/// Accumulates bytes from one stream connection and cuts complete messages off it.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed. An error means the
    /// stream cannot be resynchronised and the connection should be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.buf.starts_with(b"\r\n\r\n") {
            self.buf.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        if !self.buf.is_empty() && b"\r\n\r\n".starts_with(&self.buf) {
            // Perhaps the start of a ping.
            return Ok(None);
        }
        // Stray line ends between messages are dropped (a lone CRLF is a pong).
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        let Some((head_len, body_at)) = head_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(ParseError::TooLarge(self.buf.len()));
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buf[..head_len]).map_err(|_| ParseError::NotUtf8)?;
        let mut length = None;
        for line in head.split('\n').skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if canonical(name.trim()) == "content-length" {
                    let v = value.trim();
                    let n: usize = v
                        .parse()
                        .map_err(|_| ParseError::BadValue("content-length"))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(ParseError::Repeated("content-length".into()));
                    }
                    length = Some(n);
                }
            }
        }
        let length = length.ok_or(ParseError::MissingHeader("content-length"))?;
        let total = body_at
            .checked_add(length)
            .filter(|&t| t <= MAX_MESSAGE)
            .ok_or(ParseError::TooLarge(body_at.saturating_add(length)))?;
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(msg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";

    #[test]
    fn frames_split_and_joined() {
        let mut f = Framer::default();
        f.push(&MSG[..10]);
        assert_eq!(f.next_frame().unwrap(), None);
        f.push(&MSG[10..]);
        f.push(b"\r\n\r\n");
        f.push(MSG);
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Message(MSG.to_vec())));
        assert_eq!(f.next_frame().unwrap(), None);
    }

    #[test]
    fn missing_or_huge_length_is_fatal() {
        let mut f = Framer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert!(f.next_frame().is_err());
        let mut f = Framer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n");
        assert!(f.next_frame().is_err());
        let mut f = Framer::default();
        f.push(&vec![b'a'; MAX_MESSAGE + 10]);
        assert!(f.next_frame().is_err());
    }
}
