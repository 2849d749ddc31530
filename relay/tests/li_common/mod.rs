//! Shared pieces of the LI delivery tests: an engine with a plain RTP flow pair and taps on
//! both flows, and a test agency that decodes every PDU it receives.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use relay::engine::{tap, Command, Engine, EngineConfig, FlowSpec, LocalPort, PortShape, TapWhat};
use relay::li::x3::{self, Header, PduType};
use relay::li::{CallTap, Xid, LABEL_FROM_TARGET, LABEL_TO_TARGET};

static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

pub fn engine(slot: u16) -> Engine {
    let base = 47000 + (slot * 16 + NEXT_RANGE.fetch_add(1, Ordering::Relaxed)) * 50;
    Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 49,
        ..Default::default()
    })
    .unwrap()
}

/// Two single ports on worker 0, no flows yet.
pub fn port_pair(engine: &Engine) -> (LocalPort, LocalPort) {
    let pa = engine
        .allocate(0, None, PortShape::Single, 1)
        .unwrap()
        .ports[0];
    let pb = engine
        .allocate(0, Some(0), PortShape::Single, 1)
        .unwrap()
        .ports[0];
    (pa, pb)
}

pub fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

pub fn at(l: LocalPort) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], l.port))
}

/// An RTP packet with PT 0 and `payload`.
pub fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A plain call through the engine: the target `a` and the other party `b`, each with a
/// relay port, both flows tapped (plaintext) with the X3 direction as label.
pub struct Call {
    pub engine: Engine,
    pub a: UdpSocket,
    pub b: UdpSocket,
    pub pa: LocalPort,
    pub pb: LocalPort,
}

impl Call {
    pub fn new(slot: u16) -> Call {
        let engine = engine(slot);
        let (pa, pb) = port_pair(&engine);
        engine.install(pa, FlowSpec::plain(pb)).unwrap();
        engine.install(pb, FlowSpec::plain(pa)).unwrap();
        let (a, b) = (udp(), udp());
        engine.set_peer(pa, Some(a.local_addr().unwrap())).unwrap();
        engine.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
        Call {
            engine,
            a,
            b,
            pa,
            pb,
        }
    }

    /// Taps both flows; returns the receivers for X3Delivery (from-target on A's flow).
    pub fn taps(&self, capacity: usize) -> Vec<CallTap> {
        let (ta, ra) = tap(1, TapWhat::Plaintext, LABEL_FROM_TARGET, capacity);
        let (tb, rb) = tap(2, TapWhat::Plaintext, LABEL_TO_TARGET, capacity);
        self.engine
            .apply(self.pa, Command::AttachTap(self.pa, ta))
            .unwrap();
        self.engine
            .apply(self.pb, Command::AttachTap(self.pb, tb))
            .unwrap();
        let mut from = CallTap::from_label(1, ra, LABEL_FROM_TARGET);
        from.endpoints = Some((self.a.local_addr().unwrap(), at(self.pa)));
        let mut to = CallTap::from_label(2, rb, LABEL_TO_TARGET);
        to.endpoints = Some((at(self.pa), self.a.local_addr().unwrap()));
        vec![from, to]
    }

    pub fn untap(&self) {
        self.engine
            .apply(self.pa, Command::DetachTap(self.pa, 1))
            .unwrap();
        self.engine
            .apply(self.pb, Command::DetachTap(self.pb, 2))
            .unwrap();
    }

    /// A sends `p` through the relay; B must receive it unchanged.
    pub fn a_to_b(&self, p: &[u8]) {
        self.a.send_to(p, at(self.pa)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = self.b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], p, "media changed by interception");
    }

    pub fn b_to_a(&self, p: &[u8]) {
        self.b.send_to(p, at(self.pb)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = self.a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], p, "media changed by interception");
    }
}

/// A decoded PDU, owned.
#[derive(Clone, Debug)]
pub struct Got {
    pub header: Header,
    pub seq: Option<u32>,
    pub ts: Option<(u32, u32)>,
    pub payload: Vec<u8>,
}

/// A TCP agency that decodes everything, answers keepalives, and can be taken down.
pub struct Agency {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Agency {
    pub fn start(addr: &str) -> Agency {
        Self::start_with(addr, true)
    }

    /// `answer`: whether keepalives are acknowledged.
    pub fn start_with(addr: &str, answer: bool) -> Agency {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, e, s) = (got.clone(), errors.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut conns: Vec<(TcpStream, Vec<u8>)> = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Ok((c, _)) = listener.accept() {
                    c.set_nonblocking(true).unwrap();
                    conns.push((c, Vec::new()));
                }
                for (c, buf) in conns.iter_mut() {
                    let mut chunk = [0u8; 65536];
                    while let Ok(n) = c.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    serve_buffer(c, buf, &g, &e, answer);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Agency {
            addr,
            got,
            errors,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener and every connection.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    pub fn x3(&self) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.header.pdu_type == PduType::X3)
            .cloned()
            .collect()
    }

    /// Waits until `n` X3 PDUs arrived (or panics after 10 s).
    pub fn wait_x3(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.x3();
            if v.len() >= n {
                return v;
            }
            assert!(Instant::now() < deadline, "only {} of {n} X3 PDUs", v.len());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Agency {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_buffer(
    c: &mut TcpStream,
    buf: &mut Vec<u8>,
    got: &Mutex<Vec<Got>>,
    errors: &Mutex<Vec<String>>,
    answer: bool,
) {
    let mut used = 0;
    while let Ok(Some(n)) = x3::frame_len(&buf[used..]) {
        if buf.len() - used < n {
            break;
        }
        match x3::decode(&buf[used..]) {
            Ok((p, n)) => {
                used += n;
                if p.header.pdu_type == PduType::Keepalive && answer {
                    let mut ack = Vec::new();
                    x3::encode(
                        &Header::keepalive(true, p.header.correlation_id),
                        &[],
                        &[],
                        &mut ack,
                    )
                    .unwrap();
                    c.set_nonblocking(false).unwrap();
                    c.write_all(&ack).unwrap();
                    c.set_nonblocking(true).unwrap();
                }
                got.lock().unwrap().push(Got {
                    header: p.header,
                    seq: p.sequence_number(),
                    ts: p.timestamp(),
                    payload: p.payload.to_vec(),
                });
            }
            Err(e) => {
                errors.lock().unwrap().push(e.to_string());
                used = buf.len();
            }
        }
    }
    if let Err(e) = x3::frame_len(&buf[used..]) {
        errors.lock().unwrap().push(e.to_string());
        used = buf.len();
    }
    buf.drain(..used);
}

pub fn xid() -> Xid {
    "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f".parse().unwrap()
}

pub fn did() -> Xid {
    "d1d1d1d1-0000-4000-8000-000000000001".parse().unwrap()
}

/// Waits until `f` holds (or panics after 10 s).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
