//! Stream connections (TCP, and TLS on top of it): accepted or opened, one reader thread
//! each that frames messages with [`Framer`], and writes from the proxy thread.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sip::framing::{Frame, Framer};
use crate::sip::{ConnId, Flow, Transmit, Transport};

use super::Inbound;

/// Most stream connections at once.
const MAX_CONNECTIONS: usize = 4096;
/// A connection silent this long is closed (phones keep theirs alive with re-REGISTERs
/// and CRLF pings).
const IDLE_LIMIT: Duration = Duration::from_secs(900);

struct Conn {
    remote: SocketAddr,
    transport: Transport,
    stream: TcpStream,
    tls: Option<Mutex<rustls::ServerConnection>>,
    write: Mutex<()>,
}

impl Conn {
    fn write(&self, bytes: &[u8]) -> std::io::Result<()> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        match &self.tls {
            None => (&self.stream).write_all(bytes),
            Some(t) => {
                let mut c = t.lock().unwrap_or_else(|p| p.into_inner());
                c.writer().write_all(bytes)?;
                while c.wants_write() {
                    c.write_tls(&mut &self.stream)?;
                }
                Ok(())
            }
        }
    }
}

/// Every live stream connection.
pub(crate) struct Connections {
    tx: Mutex<Sender<Inbound>>,
    stop: Arc<AtomicBool>,
    next: AtomicU64,
    map: Mutex<HashMap<ConnId, Arc<Conn>>>,
}

impl Connections {
    pub fn new(tx: Sender<Inbound>, stop: Arc<AtomicBool>) -> Self {
        Connections {
            tx: Mutex::new(tx),
            stop,
            next: AtomicU64::new(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, Arc<Conn>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spawn_acceptor(
        self: Arc<Self>,
        listener: TcpListener,
        transport: Transport,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<JoinHandle<()>> {
        listener.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name(format!("srtpgate-sip-{}", transport.param()))
            .spawn(move || {
                while !self.stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, remote)) => {
                            if self.map().len() >= MAX_CONNECTIONS {
                                tracing::warn!(peer = %remote, "SIP connection refused: too many connections");
                                continue;
                            }
                            let session = match &tls {
                                Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                                    Ok(s) => Some(s),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "TLS session setup failed");
                                        continue;
                                    }
                                },
                                None => None,
                            };
                            if let Err(e) = self.clone().adopt(stream, remote, transport, session, None) {
                                tracing::warn!(peer = %remote, error = %e, "SIP connection setup failed");
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "SIP accept failed");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
    }

    /// Registers a connection and starts its reader thread; `first` is written at once.
    fn adopt(
        self: Arc<Self>,
        stream: TcpStream,
        remote: SocketAddr,
        transport: Transport,
        tls: Option<rustls::ServerConnection>,
        first: Option<Vec<u8>>,
    ) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            remote,
            transport,
            stream,
            tls: tls.map(Mutex::new),
            write: Mutex::new(()),
        });
        self.map().insert(id, conn.clone());
        if let Some(b) = first {
            conn.write(&b)?;
        }
        std::thread::Builder::new()
            .name("srtpgate-sip-conn".into())
            .spawn(move || {
                if let Err(e) = self.read_loop(id, &conn) {
                    tracing::debug!(peer = %conn.remote, error = %e, "SIP connection closed");
                }
                self.map().remove(&id);
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            })?;
        Ok(())
    }

    fn read_loop(&self, id: ConnId, conn: &Conn) -> std::io::Result<()> {
        let mut framer = Framer::default();
        let mut buf = vec![0u8; 16 * 1024];
        let mut idle = Duration::ZERO;
        let flow = Flow {
            transport: conn.transport,
            remote: conn.remote,
            conn: Some(id),
        };
        while !self.stop.load(Ordering::Relaxed) {
            let n = match (&conn.stream).read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    idle += Duration::from_millis(500);
                    if idle > IDLE_LIMIT {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            idle = Duration::ZERO;
            match &conn.tls {
                None => framer.push(&buf[..n]),
                Some(t) => {
                    let _guard = conn.write.lock().unwrap_or_else(|p| p.into_inner());
                    let mut c = t.lock().unwrap_or_else(|p| p.into_inner());
                    c.read_tls(&mut &buf[..n])?;
                    let state = c
                        .process_new_packets()
                        .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
                    while c.wants_write() {
                        c.write_tls(&mut &conn.stream)?;
                    }
                    let k = state.plaintext_bytes_to_read();
                    if k > 0 {
                        let mut plain = vec![0u8; k];
                        c.reader().read_exact(&mut plain)?;
                        framer.push(&plain);
                    }
                }
            }
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(bytes))) => {
                        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        if tx
                            .send(Inbound {
                                bytes,
                                flow: flow.clone(),
                            })
                            .is_err()
                        {
                            return Ok(());
                        }
                    }
                    Ok(Some(Frame::Ping)) => conn.write(b"\r\n")?,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(std::io::Error::new(ErrorKind::InvalidData, e.to_string()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends over the flow's connection, another connection to the same peer, or a new TCP
    /// connection.
    pub fn send(self: &Arc<Self>, t: Transmit) {
        let conn = {
            let map = self.map();
            t.flow
                .conn
                .and_then(|id| map.get(&id).cloned())
                .or_else(|| {
                    map.values()
                        .find(|c| c.remote == t.flow.remote && c.transport == t.flow.transport)
                        .cloned()
                })
        };
        if let Some(c) = conn {
            if let Err(e) = c.write(&t.bytes) {
                tracing::debug!(peer = %c.remote, error = %e, "SIP stream write failed");
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
            }
            return;
        }
        if t.flow.transport == Transport::Tls {
            tracing::warn!(peer = %t.flow.remote, "no TLS connection to this peer; outgoing TLS connections are not supported");
            return;
        }
        let this = self.clone();
        let spawned = std::thread::Builder::new()
            .name("srtpgate-sip-connect".into())
            .spawn(move || {
                match TcpStream::connect_timeout(&t.flow.remote, Duration::from_secs(3)) {
                    Ok(s) => {
                        if let Err(e) = this.adopt(s, t.flow.remote, Transport::Tcp, None, Some(t.bytes)) {
                            tracing::debug!(peer = %t.flow.remote, error = %e, "SIP TCP send failed");
                        }
                    }
                    Err(e) => tracing::info!(peer = %t.flow.remote, error = %e, "SIP TCP connect failed"),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start a SIP connect thread");
        }
    }
}
