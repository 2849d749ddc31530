//! The receiving end of X3: accepts TCP (or TLS, optionally requiring client
//! certificates), validates every PDU, answers keepalives, and hands X3 PDUs to the
//! [`Recorder`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relay::li::x3::{self, Header, PduType};

use super::recorder::{Recorder, Summary};

/// How the receiver runs.
pub struct ReceiverConfig {
    pub listen: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Stop at the first malformed PDU and report failure.
    pub strict: bool,
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    #[error("TLS: {0}")]
    Tls(String),
}

/// A TLS server configuration from PEM files; with `client_ca`, clients must present a
/// certificate signed by it (mutual TLS).
pub fn tls_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, SetupError> {
    use relay::li::delivery::link::{certificates, private_key};
    let tls = |e: &dyn std::fmt::Display| SetupError::Tls(e.to_string());
    let chain = certificates(&std::fs::read(cert)?).map_err(|e| tls(&e))?;
    let key = private_key(&std::fs::read(key)?).map_err(|e| tls(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(&std::fs::read(ca)?).map_err(|e| tls(&e))? {
                roots.add(c).map_err(|e| tls(&e))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| tls(&e))?;
            builder.with_client_cert_verifier(v)
        }
    };
    Ok(Arc::new(
        builder.with_single_cert(chain, key).map_err(|e| tls(&e))?,
    ))
}

struct Shared {
    recorder: Mutex<Recorder>,
    stop: AtomicBool,
    failed: AtomicBool,
    strict: bool,
}

impl Shared {
    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bound receiver.
pub struct X3Receiver {
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
}

/// How a run ended.
pub struct Outcome {
    pub summary: Summary,
    /// A malformed PDU arrived in strict mode.
    pub failed: bool,
}

impl X3Receiver {
    pub fn bind(config: ReceiverConfig, out_dir: &Path) -> Result<X3Receiver, SetupError> {
        let listener = TcpListener::bind(config.listen)?;
        listener.set_nonblocking(true)?;
        Ok(X3Receiver {
            listener,
            tls: config.tls,
            shared: Arc::new(Shared {
                recorder: Mutex::new(Recorder::new(out_dir)?),
                stop: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                strict: config.strict,
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is set, `until` passes, or (strict) a malformed PDU arrives.
    pub fn run(self, stop: &AtomicBool, until: Option<Instant>) -> io::Result<Outcome> {
        let mut threads = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed)
                || self.shared.stop.load(Ordering::Relaxed)
                || until.is_some_and(|u| Instant::now() >= u)
            {
                break;
            }
            match self.listener.accept() {
                Ok((s, _)) => {
                    self.shared.recorder().totals.connections += 1;
                    let shared = self.shared.clone();
                    let tls = self.tls.clone();
                    threads.push(std::thread::spawn(move || serve(s, tls, &shared)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let failed = self.shared.failed.load(Ordering::Relaxed);
        let shared = Arc::try_unwrap(self.shared)
            .map_err(|_| io::Error::other("connection threads still running"))?;
        let recorder = shared
            .recorder
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        Ok(Outcome {
            summary: recorder.finish()?,
            failed,
        })
    }
}

trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn serve(s: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, shared: &Shared) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = s.set_nodelay(true);
    let mut conn: Box<dyn Conn> = match tls {
        None => Box::new(s),
        Some(cfg) => match rustls::ServerConnection::new(cfg) {
            Ok(c) => Box::new(rustls::StreamOwned::new(c, s)),
            Err(_) => return,
        },
    };
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_seq: Option<u32> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        match conn.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    shared.recorder().totals.tls_failures += 1;
                }
                break;
            }
        }
        let mut used = 0;
        let mut bad = None;
        loop {
            let rest = &buf[used..];
            match x3::frame_len(rest) {
                Ok(Some(n)) if rest.len() >= n => {}
                Ok(_) => break,
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
            let (pdu, n) = match x3::decode(rest) {
                Ok(v) => v,
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            };
            used += n;
            let mut rec = shared.recorder();
            rec.totals.pdus += 1;
            match pdu.header.pdu_type {
                PduType::Keepalive => {
                    rec.totals.keepalives += 1;
                    drop(rec);
                    let mut ack = Vec::with_capacity(40);
                    let h = Header::keepalive(true, pdu.header.correlation_id);
                    if x3::encode(&h, &[], &[], &mut ack).is_err() || conn.write_all(&ack).is_err()
                    {
                        return;
                    }
                    let _ = conn.flush();
                }
                PduType::KeepaliveAck => rec.totals.keepalive_acks += 1,
                PduType::X2 => rec.totals.x2 += 1,
                PduType::X3 => {
                    if let Some(seq) = pdu.sequence_number() {
                        if let Some(prev) = last_seq {
                            let d = seq.wrapping_sub(prev.wrapping_add(1));
                            if d < 0x8000_0000 {
                                rec.totals.pdu_sequence_gaps += d as u64;
                            }
                        }
                        last_seq = Some(seq);
                    }
                    if let Err(e) = rec.record(&pdu, now_ns()) {
                        eprintln!("li-receiver: cannot write output: {e}");
                        shared.failed.store(true, Ordering::Relaxed);
                        shared.stop.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
        buf.drain(..used);
        if let Some(e) = bad {
            shared.recorder().totals.malformed += 1;
            eprintln!("li-receiver: malformed PDU, closing the connection: {e}");
            if shared.strict {
                shared.failed.store(true, Ordering::Relaxed);
                shared.stop.store(true, Ordering::Relaxed);
            }
            return;
        }
    }
}
