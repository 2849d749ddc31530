//! The small HTTP/1.1 server side shared by the admin listeners (LI X1, voicemail API):
//! reading a request head and a `Content-Length` body under size limits and a deadline,
//! writing JSON or streamed responses, and constant-time checks of bearer tokens and
//! passwords. One request per connection (`Connection: close`); no chunked bodies. The
//! listening socket and its accepting thread ([`Listener`]) are shared too.
//!
//! Nothing here logs: the listeners decide what may be said about a request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A bound TCP socket whose connections a thread of its own accepts and hands, one by
/// one, to a handler, until the listener is stopped or dropped. The socket is polled every
/// 20 ms (a failed accept waits as long), so stopping takes at most about that.
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds `listen` and starts the accepting thread named `name`; `on_accept` gets each
    /// accepted connection (still non-blocking: see [`prepare`]).
    pub fn start(
        listen: SocketAddr,
        name: &str,
        mut on_accept: impl FnMut(TcpStream) + Send + 'static,
    ) -> std::io::Result<Listener> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => on_accept(stream),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })?;
        Ok(Listener {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and waits for the accepting thread (not for connections it handed
    /// to threads of their own).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Why a request could not be read, with the status to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// 400, 413 or 431.
    pub status: u16,
    pub message: &'static str,
}

impl HttpError {
    const fn bad(message: &'static str) -> HttpError {
        HttpError {
            status: 400,
            message,
        }
    }
}

/// A request head as read from the wire, and the body bytes that came with it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query), not decoded.
    pub target: String,
    pub authorization: Option<Vec<u8>>,
    pub content_length: Option<usize>,
    body_start: Vec<u8>,
}

impl Request {
    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The query of the target (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// Reads a request head of at most `max_head` bytes; gives up at `deadline` (a client
/// dripping bytes must not hold the connection forever).
pub fn read_head(
    s: &mut impl Read,
    max_head: usize,
    deadline: Instant,
) -> Result<Request, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > max_head {
            return Err(HttpError {
                status: 431,
                message: "request head too large",
            });
        }
        if Instant::now() >= deadline {
            return Err(HttpError::bad("request head not received in time"));
        }
        let n = s
            .read(&mut chunk)
            .map_err(|_| HttpError::bad("reading the request failed"))?;
        if n == 0 {
            return Err(HttpError::bad(
                "connection closed before the end of the request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if end > max_head {
        return Err(HttpError {
            status: 431,
            message: "request head too large",
        });
    }
    parse_head(&buf[..end], buf[end + 4..].to_vec())
}

fn parse_head(head: &[u8], body_start: Vec<u8>) -> Result<Request, HttpError> {
    let head =
        std::str::from_utf8(head).map_err(|_| HttpError::bad("request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = (first.next(), first.next(), first.next());
    let (Some(method), Some(target), Some(version), None) = (method, target, version, first.next())
    else {
        return Err(HttpError::bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::bad("only HTTP/1.x is spoken"));
    }
    if method.is_empty() || target.is_empty() {
        return Err(HttpError::bad("malformed request line"));
    }
    let mut req = Request {
        method: method.into(),
        target: target.into(),
        authorization: None,
        content_length: None,
        body_start,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::bad("malformed header line"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            req.authorization = Some(value.as_bytes().to_vec());
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| HttpError::bad("Content-Length is not a number"))?;
            if req.content_length.replace(n).is_some() {
                return Err(HttpError::bad("Content-Length given twice"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::bad(
                "Transfer-Encoding is not supported; send Content-Length",
            ));
        }
    }
    Ok(req)
}

/// Reads the body announced by `Content-Length` (at most `max_body` bytes). A request
/// without `Content-Length` has an empty body unless `required`.
pub fn read_body(
    s: &mut impl Read,
    req: &mut Request,
    max_body: usize,
    required: bool,
) -> Result<Vec<u8>, HttpError> {
    let Some(len) = req.content_length else {
        if required {
            return Err(HttpError::bad("missing Content-Length"));
        }
        if !req.body_start.is_empty() {
            return Err(HttpError::bad("body without Content-Length"));
        }
        return Ok(Vec::new());
    };
    if len > max_body {
        return Err(HttpError {
            status: 413,
            message: "body too large",
        });
    }
    let mut body = std::mem::take(&mut req.body_start);
    if body.len() > len {
        return Err(HttpError::bad("more bytes than Content-Length"));
    }
    let have = body.len();
    body.resize(len, 0);
    s.read_exact(&mut body[have..])
        .map_err(|_| HttpError::bad("body shorter than Content-Length"))?;
    Ok(body)
}

/// The reason phrase of the statuses the listeners answer.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Writes a status line and headers; `extra` holds further header lines, each ending in
/// CRLF.
pub fn write_head(
    s: &mut impl Write,
    status: u16,
    content_type: &str,
    content_length: u64,
    extra: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n{extra}Connection: close\r\n\r\n",
        reason(status)
    );
    s.write_all(head.as_bytes())
}

/// Writes a whole JSON response.
pub fn respond_json(
    s: &mut impl Write,
    status: u16,
    extra: &str,
    body: &serde_json::Value,
) -> std::io::Result<()> {
    let text = body.to_string();
    write_head(s, status, "application/json", text.len() as u64, extra)?;
    s.write_all(text.as_bytes())?;
    s.flush()
}

/// Sets the per-operation timeouts of an accepted connection.
pub fn prepare(s: &TcpStream, io_timeout: Duration) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(io_timeout))?;
    s.set_write_timeout(Some(io_timeout))
}

/// Closes a connection after a response without losing it: a peer whose request was not
/// read to the end would otherwise get a reset, which can discard the response before the
/// peer reads it. Stops writing, then reads and drops up to `max` bytes for at most `wait`.
pub fn close_gracefully(s: &mut TcpStream, max: usize, wait: Duration) {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50).min(wait)));
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    let mut seen = 0;
    while seen < max && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(auth: Option<&[u8]>) -> Option<&[u8]> {
    let a = auth?;
    if a.len() > 7 && a[..7].eq_ignore_ascii_case(b"bearer ") {
        Some(&a[7..])
    } else {
        None
    }
}

/// User and password of `Authorization: Basic <base64(user:password)>`; `None` when the
/// scheme is another or the value is not valid.
pub fn basic(auth: Option<&[u8]>) -> Option<(String, zeroize::Zeroizing<String>)> {
    use base64::Engine as _;
    let a = auth?;
    if a.len() <= 6 || !a[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let raw = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(a[6..].trim_ascii())
            .ok()?,
    );
    let text = std::str::from_utf8(&raw).ok()?;
    let (user, password) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((
        user.to_string(),
        zeroize::Zeroizing::new(password.to_string()),
    ))
}

/// Whether the request carries an `Authorization` header of the Basic scheme.
pub fn is_basic(auth: Option<&[u8]>) -> bool {
    auth.is_some_and(|a| a.len() >= 6 && a[..6].eq_ignore_ascii_case(b"basic "))
}

/// SHA-256 of a secret (token or password): comparing digests makes the comparison
/// independent of the secret's length as well as of where the first difference is.
pub struct SecretDigest([u8; 32]);

impl SecretDigest {
    pub fn of(b: &[u8]) -> SecretDigest {
        let d = ring::digest::digest(&ring::digest::SHA256, b);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        SecretDigest(out)
    }

    /// Constant-time equality with the digest of `presented`.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let other = SecretDigest::of(presented);
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_and_refused_precisely() {
        let r = parse_head(
            b"GET /v1/x?a=b HTTP/1.1\r\nAuthorization: Bearer t\r\ncontent-length: 3",
            b"abc".to_vec(),
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path(), r.query()),
            ("GET", "/v1/x", Some("a=b"))
        );
        assert_eq!(r.content_length, Some(3));
        assert_eq!(bearer(r.authorization.as_deref()), Some(&b"t"[..]));
        for bad in [
            &b"GET /\r\n"[..],
            b"GET / HTTP/2\r\n",
            b"GET  / HTTP/1.1",
            b"GET / HTTP/1.1 x",
            b"GET / HTTP/1.1\r\nno colon",
            b"GET / HTTP/1.1\r\nContent-Length: x",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked",
            b"GET / HTTP/1.1\r\n\xff: x",
        ] {
            assert_eq!(
                parse_head(bad, Vec::new()).unwrap_err().status,
                400,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn basic_credentials() {
        // "alice:pa:ss" — the password may hold colons.
        let (u, p) = basic(Some(b"Basic YWxpY2U6cGE6c3M=")).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("alice", "pa:ss"));
        assert!(basic(Some(b"Basic !!!")).is_none());
        assert!(basic(Some(b"Basic OnBhc3M=")).is_none()); // ":pass", no user
        assert!(basic(Some(b"Bearer YWxpY2U6cGE6c3M=")).is_none());
        assert!(is_basic(Some(b"basic x")) && !is_basic(Some(b"Bearer x")));
        let d = SecretDigest::of(b"secret");
        assert!(d.matches(b"secret") && !d.matches(b"secret ") && !d.matches(b""));
    }
}
