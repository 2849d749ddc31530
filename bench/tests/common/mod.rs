//! A trivial ng relay for the bench's tests: it answers ping/offer/answer/delete, rewrites
//! only the media address and port of the SDP (keys pass through), forwards packets between
//! the legs and injects loss, duplication and reordering at fixed packet positions, counting
//! exactly what it did. Other behaviours (error answers, malformed SDP, black hole) are
//! chosen by [`Mode`].

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use control::ng::bencode::{decode, Value};
use control::sdp::SessionDescription;

/// What the relay does.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Forward, with impairments.
    Forward(Impair),
    /// Answer every offer with `result: error`.
    RefuseOffers,
    /// Answer offers with a body that is not SDP.
    GarbageSdp,
    /// Set calls up but forward nothing.
    BlackHole,
}

/// Packet positions (per relay socket, counting from 0) that are impaired; 0 disables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Impair {
    /// Drop packet n when n % drop_every == drop_every - 1.
    pub drop_every: u64,
    /// Send packet n twice when n % dup_every == dup_every - 1.
    pub dup_every: u64,
    /// Hold packet n back until after the next one when n % reorder_every == reorder_every - 1.
    pub reorder_every: u64,
}

/// What the relay did to the packets.
#[derive(Default, Debug)]
pub struct Counters {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    /// Held packets sent after a later one.
    pub reordered: AtomicU64,
    /// Held packets sent on a timeout (no later packet came).
    pub released_late: AtomicU64,
    pub offers: AtomicU64,
    pub deletes: AtomicU64,
}

struct Leg {
    socket: Arc<UdpSocket>,
    peer: Arc<Mutex<Option<SocketAddr>>>,
}

pub struct TestRelay {
    pub ng: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn rewrite(sdp: &[u8], port: u16) -> Option<String> {
    let mut d = SessionDescription::parse_bytes(sdp).ok()?;
    let ip = "127.0.0.1".parse().ok()?;
    d.set_connection_address(ip);
    d.media.first_mut()?.set_port(port);
    Some(d.to_string())
}

fn peer_of(sdp: &[u8]) -> Option<SocketAddr> {
    let d = SessionDescription::parse_bytes(sdp).ok()?;
    let m = d.media.first()?;
    Some(SocketAddr::new(d.connection_for(m)?.ip()?, m.port))
}

fn forward(from: Leg, to: Leg, mode: Mode, c: Arc<Counters>, stop: Arc<AtomicBool>) {
    let imp = match mode {
        Mode::Forward(i) => Some(i),
        _ => None,
    };
    let hit = |n: u64, every: u64| every > 0 && n % every == every - 1;
    let mut buf = [0u8; 2048];
    let mut held: Option<Vec<u8>> = None;
    let mut n = 0u64;
    from.socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    while !stop.load(Ordering::Relaxed) {
        let received = from.socket.recv_from(&mut buf);
        let dest = *to.peer.lock().expect("lock");
        let len = match received {
            Ok((len, _)) => len,
            Err(_) => {
                if let (Some(h), Some(d)) = (held.take(), dest) {
                    let _ = to.socket.send_to(&h, d);
                    c.released_late.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
        };
        c.received.fetch_add(1, Ordering::Relaxed);
        let (Some(imp), Some(dest)) = (imp, dest) else {
            n += 1;
            continue;
        };
        let pkt = &buf[..len];
        let k = n;
        n += 1;
        if hit(k, imp.drop_every) {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if held.is_none() && hit(k, imp.reorder_every) {
            held = Some(pkt.to_vec());
            continue;
        }
        let _ = to.socket.send_to(pkt, dest);
        if hit(k, imp.dup_every) {
            let _ = to.socket.send_to(pkt, dest);
            c.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = held.take() {
            let _ = to.socket.send_to(&h, dest);
            c.reordered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl TestRelay {
    pub fn start(mode: Mode) -> TestRelay {
        let ng = UdpSocket::bind("127.0.0.1:0").expect("ng socket");
        ng.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = ng.local_addr().expect("addr");
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        let main = std::thread::spawn(move || serve(ng, mode, c, s));
        TestRelay {
            ng: addr,
            counters,
            stop,
            threads: vec![main],
        }
    }

    pub fn get(&self, f: impl Fn(&Counters) -> &AtomicU64) -> u64 {
        f(&self.counters).load(Ordering::Relaxed)
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct CallLegs {
    a: (Arc<UdpSocket>, Arc<Mutex<Option<SocketAddr>>>),
    b: (Arc<UdpSocket>, Arc<Mutex<Option<SocketAddr>>>),
}

fn serve(ng: UdpSocket, mode: Mode, c: Arc<Counters>, stop: Arc<AtomicBool>) {
    let mut calls: HashMap<Vec<u8>, CallLegs> = HashMap::new();
    let mut workers = Vec::new();
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = ng.recv_from(&mut buf) else {
            continue;
        };
        let msg = &buf[..len];
        let Some(sp) = msg.iter().position(|&b| b == b' ') else {
            continue;
        };
        let (cookie, body) = (&msg[..sp], &msg[sp + 1..]);
        let Ok(req) = decode(body) else { continue };
        let cmd = req
            .get(b"command")
            .and_then(Value::as_bytes)
            .unwrap_or_default();
        let call_id = req
            .get(b"call-id")
            .and_then(Value::as_bytes)
            .unwrap_or_default()
            .to_vec();
        let sdp = req
            .get(b"sdp")
            .and_then(Value::as_bytes)
            .unwrap_or_default();
        let ok = || Value::dict().with("result", "ok");
        let reply = match cmd {
            b"ping" => Value::dict().with("result", "pong"),
            b"offer" => {
                c.offers.fetch_add(1, Ordering::Relaxed);
                match mode {
                    Mode::RefuseOffers => Value::dict()
                        .with("result", "error")
                        .with("error-reason", "load limit reached"),
                    Mode::GarbageSdp => ok().with("sdp", "this is not SDP"),
                    _ => {
                        let legs = CallLegs {
                            a: (
                                Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind")),
                                Arc::new(Mutex::new(peer_of(sdp))),
                            ),
                            b: (
                                Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind")),
                                Arc::new(Mutex::new(None)),
                            ),
                        };
                        for (from_leg, to_leg) in [(&legs.a, &legs.b), (&legs.b, &legs.a)] {
                            let from = Leg {
                                socket: from_leg.0.clone(),
                                peer: from_leg.1.clone(),
                            };
                            let to = Leg {
                                socket: to_leg.0.clone(),
                                peer: to_leg.1.clone(),
                            };
                            let (c, s) = (c.clone(), stop.clone());
                            workers.push(std::thread::spawn(move || forward(from, to, mode, c, s)));
                        }
                        let port = legs.b.0.local_addr().expect("addr").port();
                        calls.insert(call_id, legs);
                        match rewrite(sdp, port) {
                            Some(s) => ok().with("sdp", s.as_str()),
                            None => Value::dict()
                                .with("result", "error")
                                .with("error-reason", "bad SDP"),
                        }
                    }
                }
            }
            b"answer" => match calls.get(&call_id) {
                Some(legs) => {
                    *legs.b.1.lock().expect("lock") = peer_of(sdp);
                    let port = legs.a.0.local_addr().expect("addr").port();
                    match rewrite(sdp, port) {
                        Some(s) => ok().with("sdp", s.as_str()),
                        None => Value::dict()
                            .with("result", "error")
                            .with("error-reason", "bad SDP"),
                    }
                }
                None => Value::dict()
                    .with("result", "error")
                    .with("error-reason", "Unknown call-id"),
            },
            b"delete" => {
                c.deletes.fetch_add(1, Ordering::Relaxed);
                ok()
            }
            _ => Value::dict()
                .with("result", "error")
                .with("error-reason", "Unrecognized command"),
        };
        let mut out = cookie.to_vec();
        out.push(b' ');
        reply.encode_into(&mut out);
        let _ = ng.send_to(&out, from);
    }
    for w in workers {
        let _ = w.join();
    }
}

/// Runs the bench binary with `args`, killing it (and failing) after `limit`.
pub fn bench(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_srtpgate-bench"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start srtpgate-bench");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "srtpgate-bench did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh path for a JSON report.
pub fn temp_json(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "srtpgate-bench-test-{}-{name}.json",
        std::process::id()
    ))
}
