//! One connection to an agency: plain TCP or mutual-TLS TCP, non-blocking after set-up,
//! with writes that wait for room only up to a deadline.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// How to reach a destination.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    /// Mutual TLS: the client certificate and the trust anchors are in the config.
    Tls {
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tcp => f.write_str("Tcp"),
            Transport::Tls { .. } => f.write_str("Tls"),
        }
    }
}

/// Why TLS settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("no certificate in the {0} PEM")]
    NoCertificate(&'static str),
    #[error("no private key in the key PEM")]
    NoKey,
    #[error("unreadable PEM: {0}")]
    Pem(io::Error),
    #[error("invalid server name")]
    ServerName,
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

fn certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let v = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsSetupError::Pem)?;
    if v.is_empty() {
        return Err(TlsSetupError::NoCertificate(what));
    }
    Ok(v)
}

/// Parses a private key (PKCS#8, PKCS#1 or SEC1) from PEM.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(TlsSetupError::Pem)?
        .ok_or(TlsSetupError::NoKey)
}

/// Parses certificates from PEM.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    certs(pem, "certificate")
}

impl Transport {
    /// Mutual TLS from PEM text: the agency's CA, our certificate chain and key, and the
    /// name the agency's certificate must carry.
    pub fn mutual_tls(
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        server_name: &str,
    ) -> Result<Transport, TlsSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(ca_pem, "CA")? {
            roots.add(c)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs(cert_pem, "client")?, private_key(key_pem)?)?;
        let server_name =
            ServerName::try_from(server_name.to_string()).map_err(|_| TlsSetupError::ServerName)?;
        Ok(Transport::Tls {
            config: Arc::new(config),
            server_name,
        })
    }
}

const SOCK: Token = Token(0);

/// An established connection.
pub(crate) struct Link {
    stream: mio::net::TcpStream,
    tls: Option<Box<rustls::ClientConnection>>,
    poll: Poll,
    events: Events,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Link {
    /// Connects (and completes the TLS handshake) within `timeout`.
    pub(crate) fn connect(
        addr: SocketAddr,
        transport: &Transport,
        timeout: Duration,
    ) -> io::Result<Link> {
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_nodelay(true)?;
        let tls = match transport {
            Transport::Tcp => None,
            Transport::Tls {
                config,
                server_name,
            } => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                let mut c = rustls::ClientConnection::new(config.clone(), server_name.clone())
                    .map_err(other)?;
                let deadline = Instant::now() + timeout;
                while c.is_handshaking() {
                    if Instant::now() > deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    c.complete_io(&mut s)?;
                }
                s.set_read_timeout(None)?;
                s.set_write_timeout(None)?;
                Some(Box::new(c))
            }
        };
        s.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(s);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut stream, SOCK, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Link {
            stream,
            tls,
            poll,
            events: Events::with_capacity(4),
        })
    }

    /// Waits for a readiness event until `deadline`; `TimedOut` after it.
    fn wait(&mut self, deadline: Instant) -> io::Result<()> {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match self.poll.poll(&mut self.events, Some(deadline - now)) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }

    /// Writes all of `data`, waiting for room until `deadline`.
    pub(crate) fn send_all(&mut self, data: &[u8], deadline: Instant) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            tls.writer().write_all(data)?;
            return self.flush_tls(deadline);
        }
        let mut off = 0;
        while off < data.len() {
            match self.stream.write(&data[off..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(deadline)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn flush_tls(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            let Some(tls) = self.tls.as_mut() else {
                return Ok(());
            };
            if !tls.wants_write() {
                return Ok(());
            }
            match tls.write_tls(&mut self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(deadline)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends whatever the agency has sent to `out` without waiting. `Ok(false)` when
    /// the agency closed the connection.
    pub(crate) fn read_available(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        loop {
            let Some(tls) = self.tls.as_mut() else {
                match self.stream.read(&mut buf) {
                    Ok(0) => return Ok(false),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
                if out.len() > 1 << 20 {
                    return Err(other("agency sent more than 1 MiB unread"));
                }
                continue;
            };
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Ok(false),
                Ok(_) => {
                    tls.process_new_packets().map_err(other)?;
                    loop {
                        match tls.reader().read(&mut buf) {
                            Ok(0) => return Ok(false),
                            Ok(n) => out.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                    if out.len() > 1 << 20 {
                        return Err(other("agency sent more than 1 MiB unread"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a TLS close_notify when there is one to send, then drops the connection.
    pub(crate) fn close(mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
        }
        let _ = self.flush_tls(Instant::now() + Duration::from_millis(50));
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
