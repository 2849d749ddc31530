//! One DTLS-SRTP association (RFC 5764) as a sans-IO state machine: datagrams and time in,
//! datagrams to send and what happened out. OpenSSL does the protocol through an in-memory
//! datagram pipe; this file decides what is fed to it, checks the peer's certificate
//! against the SDP fingerprint, bounds the handshake, and turns the RFC 5764 exporter
//! output into SRTP master keys.
//!
//! Retransmission: OpenSSL keeps the DTLS timer (1 s doubling up to 60 s) on the wall
//! clock and resends a flight when the handshake is driven after it expired, so
//! [`DtlsSession::tick`] must be called every few tens of milliseconds while handshaking.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, Ssl, SslStream, SslVerifyMode};
use relay::srtp::{MasterKey, Suite};
use zeroize::Zeroizing;

use super::cert::{matches_fingerprint, DtlsIdentity};
use crate::sdp::Fingerprint;

/// Most bytes a peer may send during one handshake (flights with certificate chains are a
/// few KiB); more fails the handshake.
pub const MAX_HANDSHAKE_BYTES: usize = 64 * 1024;
/// Handshake records accepted after the handshake (retransmitted final flights); beyond
/// this they are dropped: renegotiation is refused.
const MAX_POST_HANDSHAKE_RECORDS: u32 = 16;
/// DTLS path MTU for the flights srtpgate sends.
const MTU: u32 = 1200;

/// Which side of the handshake srtpgate takes (`a=setup:active` is the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Why an association failed. No variant carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtlsFailure {
    #[error("the peer's certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    #[error("handshake did not complete in time")]
    Timeout,
    #[error("handshake larger than {MAX_HANDSHAKE_BYTES} bytes")]
    TooLarge,
    #[error("no SRTP protection profile was negotiated")]
    NoSrtpProfile,
    #[error("handshake failed: {0}")]
    Handshake(String),
}

/// Why one datagram was not fed to the association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    #[error("malformed DTLS record")]
    Malformed,
    #[error("handshake record after the handshake (renegotiation is refused)")]
    Renegotiation,
    #[error("the association is over")]
    Finished,
}

/// The SRTP keys of a completed association: what srtpgate sends with and what the peer
/// sends with. Zeroized on drop; never printed.
#[derive(Clone)]
pub struct SrtpKeys {
    pub suite: Suite,
    pub local: MasterKey,
    pub remote: MasterKey,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrtpKeys({})", self.suite)
    }
}

/// Something that happened to the association.
#[derive(Debug, Clone)]
pub enum DtlsEvent {
    Connected(SrtpKeys),
    Failed(DtlsFailure),
    /// The peer closed the association (close_notify).
    Closed,
}

/// What a call into the session produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Datagrams to send to the peer, in order.
    pub datagrams: Vec<Vec<u8>>,
    pub event: Option<DtlsEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connected,
    Over,
}

/// Datagrams between OpenSSL and the caller: one `read` takes one datagram, one `write`
/// makes one.
#[derive(Default)]
struct Pipe {
    inbox: VecDeque<Vec<u8>>,
    outbox: Vec<Vec<u8>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inbox.pop_front() {
            Some(d) => {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outbox.push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One DTLS-SRTP association.
pub struct DtlsSession {
    stream: SslStream<Pipe>,
    role: Role,
    state: State,
    deadline: Instant,
    mismatch: Arc<AtomicBool>,
    bytes_in: usize,
    records_after: u32,
}

impl std::fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsSession")
            .field("role", &self.role)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DtlsSession {
    /// A session that accepts only a peer certificate matching one of `expected`, and
    /// fails unless the handshake completes within `timeout`.
    pub fn new(
        identity: &DtlsIdentity,
        role: Role,
        expected: Vec<Fingerprint>,
        now: Instant,
        timeout: Duration,
    ) -> Result<Self, ErrorStack> {
        let mut ssl = Ssl::new(identity.context())?;
        ssl.set_mtu(MTU)?;
        let mismatch = Arc::new(AtomicBool::new(false));
        let flag = mismatch.clone();
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_, ctx| {
                // Self-signed certificates are the norm: only the fingerprint counts.
                if ctx.error_depth() != 0 {
                    return true;
                }
                let ok = ctx
                    .current_cert()
                    .is_some_and(|c| matches_fingerprint(c, &expected));
                if !ok {
                    flag.store(true, Ordering::Relaxed);
                }
                ok
            },
        );
        match role {
            Role::Client => ssl.set_connect_state(),
            Role::Server => ssl.set_accept_state(),
        }
        Ok(DtlsSession {
            stream: SslStream::new(ssl, Pipe::default())?,
            role,
            state: State::Handshaking,
            deadline: now + timeout,
            mismatch,
            bytes_in: 0,
            records_after: 0,
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub fn is_over(&self) -> bool {
        self.state == State::Over
    }

    /// Starts the handshake: a client's first flight (nothing for a server).
    pub fn start(&mut self) -> Output {
        if self.role == Role::Client && self.state == State::Handshaking {
            self.drive()
        } else {
            Output::default()
        }
    }

    /// Feeds one datagram received from the peer.
    pub fn handle(&mut self, data: &[u8], now: Instant) -> Result<Output, DatagramError> {
        let handshake_records = check_records(data).ok_or(DatagramError::Malformed)?;
        match self.state {
            State::Over => return Err(DatagramError::Finished),
            State::Handshaking => {
                if now >= self.deadline {
                    return Ok(self.fail(DtlsFailure::Timeout));
                }
                self.bytes_in += data.len();
                if self.bytes_in > MAX_HANDSHAKE_BYTES {
                    return Ok(self.fail(DtlsFailure::TooLarge));
                }
            }
            State::Connected => {
                self.records_after += handshake_records;
                if handshake_records > 0 && self.records_after > MAX_POST_HANDSHAKE_RECORDS {
                    return Err(DatagramError::Renegotiation);
                }
            }
        }
        self.stream.get_mut().inbox.push_back(data.to_vec());
        Ok(self.drive())
    }

    /// Runs timers: retransmits a flight when OpenSSL's timer expired, and fails the
    /// handshake at its deadline.
    pub fn tick(&mut self, now: Instant) -> Output {
        match self.state {
            State::Handshaking if now >= self.deadline => self.fail(DtlsFailure::Timeout),
            State::Handshaking => self.drive(),
            _ => Output::default(),
        }
    }

    fn fail(&mut self, why: DtlsFailure) -> Output {
        self.state = State::Over;
        self.stream.get_mut().inbox.clear();
        Output {
            datagrams: std::mem::take(&mut self.stream.get_mut().outbox),
            event: Some(DtlsEvent::Failed(why)),
        }
    }

    fn drive(&mut self) -> Output {
        let mut event = None;
        if self.state == State::Handshaking {
            match self.stream.do_handshake() {
                Ok(()) => {
                    event = Some(match self.keys() {
                        Ok(k) => {
                            self.state = State::Connected;
                            DtlsEvent::Connected(k)
                        }
                        Err(f) => {
                            self.state = State::Over;
                            DtlsEvent::Failed(f)
                        }
                    });
                }
                Err(e) if wants_more(e.code()) => {}
                Err(e) => {
                    self.state = State::Over;
                    let why = if self.mismatch.load(Ordering::Relaxed) {
                        DtlsFailure::FingerprintMismatch
                    } else {
                        DtlsFailure::Handshake(reason(&e))
                    };
                    event = Some(DtlsEvent::Failed(why));
                }
            }
        }
        if self.state == State::Connected {
            // Retransmitted final flights, alerts, and application data (discarded).
            let mut buf = [0u8; 2048];
            while !self.stream.get_ref().inbox.is_empty() {
                match self.stream.ssl_read(&mut buf) {
                    Ok(_) => {}
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        self.state = State::Over;
                        event = Some(DtlsEvent::Closed);
                        break;
                    }
                    Err(e) if wants_more(e.code()) => {}
                    Err(_) => {
                        // A bad record after the handshake: drop it, keep the keys.
                        self.stream.get_mut().inbox.pop_front();
                    }
                }
            }
        }
        self.stream.get_mut().inbox.clear();
        Output {
            datagrams: std::mem::take(&mut self.stream.get_mut().outbox),
            event,
        }
    }

    /// The negotiated profile and the RFC 5764 §4.2 keys: client key, server key, client
    /// salt, server salt from the "EXTRACTOR-dtls_srtp" exporter.
    fn keys(&self) -> Result<SrtpKeys, DtlsFailure> {
        let ssl = self.stream.ssl();
        let suite = ssl
            .selected_srtp_profile()
            .and_then(|p| suite_of_profile(p.id().as_raw()))
            .ok_or(DtlsFailure::NoSrtpProfile)?;
        let (k, s) = (suite.key_len(), suite.salt_len());
        let mut m = Zeroizing::new(vec![0u8; 2 * (k + s)]);
        ssl.export_keying_material(&mut m, "EXTRACTOR-dtls_srtp", None)
            .map_err(|e| DtlsFailure::Handshake(format!("exporter: {e}")))?;
        let key = |key_at: usize, salt_at: usize| {
            MasterKey::new(suite, &m[key_at..key_at + k], &m[salt_at..salt_at + s])
                .map_err(|_| DtlsFailure::NoSrtpProfile)
        };
        let client = key(0, 2 * k)?;
        let server = key(k, 2 * k + s)?;
        let (local, remote) = match self.role {
            Role::Client => (client, server),
            Role::Server => (server, client),
        };
        Ok(SrtpKeys {
            suite,
            local,
            remote,
        })
    }
}

fn wants_more(code: ErrorCode) -> bool {
    code == ErrorCode::WANT_READ || code == ErrorCode::WANT_WRITE
}

fn reason(e: &openssl::ssl::Error) -> String {
    match e.ssl_error() {
        Some(stack) => stack
            .errors()
            .first()
            .and_then(|x| x.reason().map(str::to_string))
            .unwrap_or_else(|| "protocol error".into()),
        None => format!("error code {}", e.code().as_raw()),
    }
}

/// The SRTP suite of a use_srtp protection profile id (RFC 5764 §4.1.2, RFC 7714 §14.2).
pub fn suite_of_profile(id: std::os::raw::c_ulong) -> Option<Suite> {
    Some(match id {
        0x0001 => Suite::AesCm128HmacSha1_80,
        0x0002 => Suite::AesCm128HmacSha1_32,
        0x0007 => Suite::AeadAes128Gcm,
        0x0008 => Suite::AeadAes256Gcm,
        _ => return None,
    })
}

/// Checks that a datagram is a sequence of whole DTLS records of known content types;
/// returns how many are handshake records.
fn check_records(mut data: &[u8]) -> Option<u32> {
    if data.is_empty() {
        return None;
    }
    let mut handshakes = 0;
    while !data.is_empty() {
        let header = data.get(..13)?;
        let kind = header[0];
        if !(20..=23).contains(&kind) || header[1] != 0xFE {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        data = data.get(13 + len..)?;
        if kind == 22 {
            handshakes += 1;
        }
    }
    Some(handshakes)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
