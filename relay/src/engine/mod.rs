//! The media path: per-core workers that own their ports and relay packets, driven by the
//! control plane through one bounded lock-free command queue per worker.

use std::fmt;
use std::io as stdio;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use socket2::{Domain, Protocol, Socket, Type};

mod command;
mod config;
mod flow;
pub mod io;
mod ports;
mod stats;
mod table;
mod tap;
mod waker;
mod worker;

pub use command::{Command, EngineEvent, Reply};
pub use config::{Backend, EngineConfig, Interface, DEFAULT_COALESCE};
pub use flow::{FlowCounters, FlowSpec, Peer, StreamIndex, Transform};
pub use ports::PortShape;
pub use stats::{WorkerStats, WorkerStatsSnapshot};
pub use tap::{tap, Tap, TapKind, TapReceiver, TapRecord, TapWhat, TAP_MAX};
pub use waker::Waker;

use command::Request;
use ports::PortPool;

/// A local media port: an interface (index into the configured interfaces) and a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalPort {
    pub iface: u8,
    pub port: u16,
}

impl fmt::Display for LocalPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.iface, self.port)
    }
}

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine configuration: {0}")]
    Config(String),
    #[error("no free media port on interface {iface} for worker {worker}")]
    NoPorts { iface: usize, worker: usize },
    #[error("worker {0} command queue is full")]
    QueueFull(usize),
    #[error("worker {0} did not answer in time")]
    Timeout(usize),
    #[error("worker {0} has stopped")]
    Stopped(usize),
    #[error("{0} is not a port of this engine")]
    UnknownPort(LocalPort),
    #[error("worker refused: {0:?}")]
    Refused(Reply),
    #[error("I/O: {0}")]
    Io(#[from] stdio::Error),
}

/// Ports handed out together, all owned by one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub worker: usize,
    pub ports: Vec<LocalPort>,
}

struct WorkerHandle {
    commands: Arc<ArrayQueue<Request>>,
    events: Arc<ArrayQueue<EngineEvent>>,
    stats: Arc<WorkerStats>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

/// The running engine. Control-plane code calls it from any thread.
pub struct Engine {
    config: EngineConfig,
    workers: Vec<WorkerHandle>,
    pool: Mutex<PortPool>,
    backend: Backend,
    reply_timeout: Duration,
}

impl Engine {
    /// Validates `config`, then spawns the workers (pinned when asked).
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        if config.interfaces.is_empty() || config.interfaces.len() > 256 {
            return Err(EngineError::Config("need 1 to 256 interfaces".into()));
        }
        if config.port_min > config.port_max || config.port_min == 0 {
            return Err(EngineError::Config(
                "port range is empty or starts at 0".into(),
            ));
        }
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let n = match config.workers {
            0 => cores.len().max(1),
            n => n,
        };
        let pool = PortPool::new(config.interfaces.len(), n, config.port_min, config.port_max);
        if pool.pairs_per_worker() == 0 {
            return Err(EngineError::Config(format!(
                "port range too small for {n} workers"
            )));
        }
        let mut backend = config.backend;
        if backend == Backend::Uring {
            if let Err(e) = io::uring::probe() {
                tracing::warn!(error = %e, "io_uring unavailable, falling back to the batch backend");
                backend = Backend::Batch;
            }
        }
        let epoch = Instant::now();
        let mut workers = Vec::with_capacity(n);
        for id in 0..n {
            let waker = Arc::new(Waker::new()?);
            let mut io: Box<dyn io::PacketIo> = match backend {
                Backend::Batch => Box::new(io::batch::BatchIo::new(waker.clone())?),
                Backend::Uring => Box::new(io::uring::UringIo::new(waker.clone())?),
            };
            io.set_coalesce(config.coalesce);
            let commands = Arc::new(ArrayQueue::new(config.command_queue.max(1)));
            let events = Arc::new(ArrayQueue::new(config.event_queue.max(1)));
            let stats = Arc::new(WorkerStats::default());
            let w = worker::Worker {
                id,
                io,
                table: table::PortTable::new(
                    config.interfaces.len(),
                    config.port_min,
                    config.port_max,
                ),
                commands: commands.clone(),
                events: events.clone(),
                stats: stats.clone(),
                idle_timeout_ms: config.idle_timeout.as_millis() as u64,
                epoch,
                raw: None,
            };
            let core = (config.pin && !cores.is_empty()).then(|| cores[id % cores.len()]);
            let thread = std::thread::Builder::new()
                .name(format!("srtpgate-w{id}"))
                .spawn(move || {
                    if let Some(c) = core {
                        if !core_affinity::set_for_current(c) {
                            tracing::warn!(worker = id, core = c.id, "could not pin worker");
                        }
                    }
                    w.run()
                })?;
            workers.push(WorkerHandle {
                commands,
                events,
                stats,
                waker,
                thread: Some(thread),
            });
        }
        tracing::info!(workers = n, backend = ?backend, "engine started");
        Ok(Engine {
            config,
            workers,
            pool: Mutex::new(pool),
            backend,
            reply_timeout: Duration::from_secs(2),
        })
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The backend actually in use (after any fallback).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The address SDP should carry for ports on interface `iface`.
    pub fn advertised(&self, iface: usize) -> Option<IpAddr> {
        self.config.interfaces.get(iface).map(|i| i.advertised())
    }

    /// Interface index by name.
    pub fn interface(&self, name: &str) -> Option<usize> {
        self.config.interfaces.iter().position(|i| i.name == name)
    }

    /// The worker that owns `local`.
    pub fn worker_of(&self, local: LocalPort) -> Option<usize> {
        self.pool.lock().ok()?.worker_of(local.port)
    }

    /// Binds and attaches `count` ports (or RTP/RTCP pairs) on `iface`, all on one worker:
    /// `worker` when given (so a call's legs share a worker), else the least loaded one.
    pub fn allocate(
        &self,
        iface: usize,
        worker: Option<usize>,
        shape: PortShape,
        count: usize,
    ) -> Result<Allocation, EngineError> {
        let ifc = self
            .config
            .interfaces
            .get(iface)
            .ok_or_else(|| EngineError::Config(format!("no interface {iface}")))?;
        let bind_ip = ifc.bind;
        let mut ports = Vec::new();
        let w = {
            let mut pool = self
                .pool
                .lock()
                .map_err(|_| EngineError::Config("port pool poisoned".into()))?;
            let w = match worker {
                Some(w) if w < self.workers.len() => w,
                Some(w) => return Err(EngineError::Config(format!("no worker {w}"))),
                None => pool.least_loaded(iface),
            };
            for _ in 0..count {
                let mut got = false;
                // Ports another process holds are skipped (and left out of the pool).
                while let Some(base) = pool.take(iface, w, shape) {
                    match bind_all(bind_ip, base, shape, self.config.socket_buffer) {
                        Ok(socks) => {
                            for (i, s) in socks.into_iter().enumerate() {
                                ports.push((
                                    LocalPort {
                                        iface: iface as u8,
                                        port: base + i as u16,
                                    },
                                    s,
                                ));
                            }
                            got = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(port = base, error = %e, "media port unavailable, skipping")
                        }
                    }
                }
                if !got {
                    for (l, _) in &ports {
                        pool.give_back(*l);
                    }
                    return Err(EngineError::NoPorts { iface, worker: w });
                }
            }
            w
        };
        let mut attached = Vec::with_capacity(ports.len());
        let mut failure = None;
        for (l, sock) in ports {
            if failure.is_none() {
                match self.request(w, Command::Attach(l, sock)) {
                    Ok(Reply::Done) => attached.push(l),
                    Ok(r) => failure = Some(EngineError::Refused(r)),
                    Err(e) => failure = Some(e),
                }
            }
            if failure.is_some() && !attached.contains(&l) {
                if let Ok(mut p) = self.pool.lock() {
                    p.give_back(l);
                }
            }
        }
        if let Some(e) = failure {
            for l in attached {
                let _ = self.release(l);
            }
            return Err(e);
        }
        Ok(Allocation {
            worker: w,
            ports: attached,
        })
    }

    /// Detaches `local` (closing its socket and dropping its flow) and frees the port.
    pub fn release(&self, local: LocalPort) -> Result<(), EngineError> {
        let w = self
            .worker_of(local)
            .ok_or(EngineError::UnknownPort(local))?;
        let r = self.request(w, Command::Detach(local));
        if let Ok(mut p) = self.pool.lock() {
            p.give_back(local);
        }
        r.map(|_| ())
    }

    /// Sends `command` to the worker owning `local` and waits for the answer.
    pub fn command(&self, local: LocalPort, command: Command) -> Result<Reply, EngineError> {
        let w = self
            .worker_of(local)
            .ok_or(EngineError::UnknownPort(local))?;
        self.request(w, command)
    }

    /// Like [`command`](Self::command), but a reply other than `Done` is an error.
    pub fn apply(&self, local: LocalPort, command: Command) -> Result<(), EngineError> {
        match self.command(local, command)? {
            Reply::Done => Ok(()),
            r => Err(EngineError::Refused(r)),
        }
    }

    pub fn install(&self, local: LocalPort, spec: FlowSpec) -> Result<(), EngineError> {
        self.apply(local, Command::Install(local, Box::new(spec)))
    }

    pub fn set_peer(&self, local: LocalPort, peer: Option<SocketAddr>) -> Result<(), EngineError> {
        self.apply(local, Command::SetPeer(local, peer))
    }

    pub fn remove(&self, local: LocalPort) -> Result<(), EngineError> {
        self.apply(local, Command::Remove(local))
    }

    /// A flow's counters and its port's peer.
    pub fn query(&self, local: LocalPort) -> Result<(FlowCounters, Option<Peer>), EngineError> {
        match self.command(local, Command::Query(local))? {
            Reply::Flow { counters, peer } => Ok((*counters, peer)),
            r => Err(EngineError::Refused(r)),
        }
    }

    fn request(&self, w: usize, command: Command) -> Result<Reply, EngineError> {
        let h = &self.workers[w];
        if h.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(EngineError::Stopped(w));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        h.commands
            .push(Request {
                command,
                reply: Some(tx),
            })
            .map_err(|_| EngineError::QueueFull(w))?;
        h.waker.wake();
        rx.recv_timeout(self.reply_timeout)
            .map_err(|_| EngineError::Timeout(w))
    }

    /// Moves every pending event of every worker into `out`.
    pub fn poll_events(&self, out: &mut Vec<EngineEvent>) {
        for h in &self.workers {
            while let Some(e) = h.events.pop() {
                out.push(e);
            }
        }
    }

    /// Each worker's counters, readable while it runs.
    pub fn stats(&self) -> Vec<WorkerStatsSnapshot> {
        self.workers.iter().map(|h| h.stats.snapshot()).collect()
    }

    /// Stops every worker and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for h in &self.workers {
            // If the queue is full the worker is busy applying commands; it will still see
            // the shutdown once there is room, so retry briefly.
            let mut req = Request {
                command: Command::Shutdown,
                reply: None,
            };
            for _ in 0..100 {
                match h.commands.push(req) {
                    Ok(()) => break,
                    Err(r) => {
                        req = r;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            h.waker.wake();
        }
        for h in &mut self.workers {
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds the socket(s) for one allocation unit starting at `base`.
fn bind_all(
    ip: IpAddr,
    base: u16,
    shape: PortShape,
    buffer: usize,
) -> stdio::Result<Vec<UdpSocket>> {
    let n = match shape {
        PortShape::Single => 1,
        PortShape::Pair => 2,
    };
    (0..n)
        .map(|i| bind_one(SocketAddr::new(ip, base + i), buffer))
        .collect()
}

fn bind_one(addr: SocketAddr, buffer: usize) -> stdio::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    if buffer > 0 {
        // The kernel caps these at net.core.*mem_max; a smaller buffer is not an error.
        let _ = s.set_recv_buffer_size(buffer);
        let _ = s.set_send_buffer_size(buffer);
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}
