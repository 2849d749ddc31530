//! A client of the ng control protocol: `<cookie> <bencoded dictionary>` over UDP, with a
//! bounded wait per attempt and a bounded number of attempts (the same cookie on every
//! attempt, as Kamailio does, so a relay answers a retransmission from its cache).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use control::ng::bencode::{decode, Value};

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum NgError {
    #[error("cannot open a UDP socket toward the ng server {addr}: {source}")]
    Socket { addr: SocketAddr, source: io::Error },
    #[error("nothing listens for ng at {addr} (connection refused)")]
    Refused { addr: SocketAddr },
    #[error("no answer from the ng server at {addr} to `{command}` after {attempts} attempts of {timeout:?}")]
    Timeout {
        addr: SocketAddr,
        command: String,
        attempts: u32,
        timeout: Duration,
    },
    #[error("the ng server at {addr} answered `{command}` with something that is not an ng reply: {detail}")]
    Malformed {
        addr: SocketAddr,
        command: String,
        detail: String,
    },
    #[error("the relay refused `{command}`: {reason}")]
    Refusal { command: String, reason: String },
    #[error("ng socket error talking to {addr}: {source}")]
    Io { addr: SocketAddr, source: io::Error },
}

/// An ng client bound to one server address.
pub struct NgClient {
    socket: UdpSocket,
    addr: SocketAddr,
    timeout: Duration,
    attempts: u32,
    seq: u64,
    prefix: String,
    buf: Vec<u8>,
}

impl NgClient {
    /// A client for the server at `addr`; each request waits `timeout` per attempt and
    /// tries `attempts` times (at least once).
    pub fn new(addr: SocketAddr, timeout: Duration, attempts: u32) -> Result<Self, NgError> {
        let ip: std::net::IpAddr = match (addr.is_ipv4(), addr.ip().is_loopback()) {
            (true, true) => std::net::Ipv4Addr::LOCALHOST.into(),
            (true, false) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            (false, true) => std::net::Ipv6Addr::LOCALHOST.into(),
            (false, false) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        let bind = SocketAddr::new(ip, 0);
        let socket = UdpSocket::bind(bind)
            .and_then(|s| s.connect(addr).map(|_| s))
            .map_err(|source| NgError::Socket { addr, source })?;
        Ok(NgClient {
            socket,
            addr,
            timeout: timeout.max(Duration::from_millis(1)),
            attempts: attempts.max(1),
            seq: 0,
            prefix: format!("sgb{}_", std::process::id()),
            buf: vec![0u8; 65536],
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` (a dictionary with a `command`) and returns the reply dictionary
    /// when its `result` is `ok` or `pong`; a `result` of `error` (or anything else) is
    /// an [`NgError::Refusal`] with the relay's `error-reason`.
    pub fn request(&mut self, request: &Value) -> Result<Value, NgError> {
        let command = request
            .get(b"command")
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let reply = self.exchange(&command, request)?;
        let result = reply
            .get(b"result")
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned());
        match result.as_deref() {
            Some("ok") | Some("pong") => Ok(reply),
            Some(other) => {
                let reason = reply
                    .get(b"error-reason")
                    .or_else(|| reply.get(b"warning"))
                    .and_then(Value::as_bytes)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_else(|| format!("result `{other}` without a reason"));
                Err(NgError::Refusal { command, reason })
            }
            None => Err(NgError::Malformed {
                addr: self.addr,
                command,
                detail: "the reply has no `result`".into(),
            }),
        }
    }

    /// `ping`, expecting `pong`.
    pub fn ping(&mut self) -> Result<(), NgError> {
        self.request(&Value::dict().with("command", "ping"))
            .map(|_| ())
    }

    fn exchange(&mut self, command: &str, request: &Value) -> Result<Value, NgError> {
        self.seq += 1;
        let cookie = format!("{}{}", self.prefix, self.seq);
        let mut datagram = Vec::with_capacity(256);
        datagram.extend_from_slice(cookie.as_bytes());
        datagram.push(b' ');
        request.encode_into(&mut datagram);
        let addr = self.addr;
        let io = |source| NgError::Io { addr, source };
        for _ in 0..self.attempts {
            match self.socket.send(&datagram) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(NgError::Refused { addr })
                }
                Err(e) => return Err(io(e)),
            }
            let deadline = Instant::now() + self.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.socket.set_read_timeout(Some(left)).map_err(io)?;
                let n = match self.socket.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        return Err(NgError::Refused { addr })
                    }
                    Err(e) => return Err(io(e)),
                };
                let data = &self.buf[..n];
                let Some(space) = data.iter().position(|&b| b == b' ') else {
                    return Err(self.malformed(command, "no space after the cookie"));
                };
                if &data[..space] != cookie.as_bytes() {
                    continue; // a late answer to an earlier request
                }
                return match decode(&data[space + 1..]) {
                    Ok(v @ Value::Dict(_)) => Ok(v),
                    Ok(other) => Err(self.malformed(
                        command,
                        &format!("a bencoded {} instead of a dictionary", other.type_name()),
                    )),
                    Err(e) => Err(self.malformed(command, &format!("bad bencode: {e}"))),
                };
            }
        }
        Err(NgError::Timeout {
            addr,
            command: command.to_string(),
            attempts: self.attempts,
            timeout: self.timeout,
        })
    }

    fn malformed(&self, command: &str, detail: &str) -> NgError {
        NgError::Malformed {
            addr: self.addr,
            command: command.to_string(),
            detail: detail.to_string(),
        }
    }
}
