//! The engine's cost per relayed packet, against a plain UDP forwarder built on the same
//! engine and backend without crypto (the floor).
//!
//! One worker, pinned, relays `--calls` one-way streams from a generator thread to a sink
//! thread over loopback. The generator paces packets at `--rate` packets/s (below
//! saturation) and encrypts them itself; the worker's CPU time comes from
//! /proc/self/task/TID/stat. Reported per mode: relayed packets/s, worker CPU µs per packet
//! and the packets/s one core sustains at that cost (1 / CPU per packet).
//!
//! `engine-bench [--rate 40000] [--seconds 5] [--calls 8] [--backend batch|uring]`

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use relay::engine::{Backend, Engine, EngineConfig, FlowSpec, LocalPort, PortShape, Transform};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

#[derive(Parser, Debug)]
struct Args {
    /// Offered packets per second (all calls together).
    #[arg(long, default_value_t = 40_000)]
    rate: u64,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 8)]
    calls: usize,
    #[arg(long, default_value = "batch")]
    backend: Backend,
    /// Payload bytes per RTP packet (160 = 20 ms of G.711).
    #[arg(long, default_value_t = 160)]
    payload: usize,
    /// Runs per mode, alternating plain and SRTP; the median CPU per packet is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

fn ctx(seed: u8) -> SrtpContext {
    let m = MasterKey::new(SUITE, &[seed; 16], &[seed ^ 0x3c; 14]).expect("key sizes");
    SrtpContext::new(Policy::new(SUITE, m)).expect("policy")
}

/// utime + stime of one thread of this process, in nanoseconds.
fn thread_cpu_ns(tid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000_000 / hz
}

fn worker_tid() -> Option<u32> {
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == "srtpgate-w0" {
            return e.file_name().to_str()?.parse().ok();
        }
    }
    None
}

struct Outcome {
    relayed: u64,
    received: u64,
    cpu_ns: u64,
    secs: f64,
    generator_late: bool,
}

fn run(args: &Args, srtp: bool, port_base: u16) -> Outcome {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = Engine::start(EngineConfig {
        workers: 1,
        pin: cores > 1,
        port_min: port_base,
        port_max: port_base + 999,
        backend: args.backend,
        ..Default::default()
    })
    .expect("engine");
    // With two or more cores the worker gets core 0 (its pin); generator and sink share the rest.
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    sink.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let mut targets: Vec<SocketAddr> = Vec::new();
    for i in 0..args.calls {
        let a: LocalPort = engine
            .allocate(0, Some(0), PortShape::Single, 1)
            .expect("port")
            .ports[0];
        let b: LocalPort = engine
            .allocate(0, Some(0), PortShape::Single, 1)
            .expect("port")
            .ports[0];
        let mut spec = FlowSpec::plain(b);
        if srtp {
            spec.ingress = Transform::Srtp(Box::new(ctx(i as u8)));
            spec.egress = Transform::Srtp(Box::new(ctx(i as u8 ^ 0x80)));
        }
        engine.install(a, spec).expect("install");
        engine
            .set_peer(b, Some(sink.local_addr().expect("addr")))
            .expect("peer");
        targets.push(SocketAddr::from(([127, 0, 0, 1], a.port)));
    }
    let tid = worker_tid().expect("worker thread");
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let sink_thread = {
        let (stop, received) = (stop.clone(), received.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if sink.recv_from(&mut buf).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let gen = UdpSocket::bind("127.0.0.1:0").expect("generator");
    let mut senders: Vec<SrtpContext> = (0..args.calls).map(|i| ctx(i as u8)).collect();
    let mut pkt = vec![0u8; 12 + args.payload + 32];
    pkt[0] = 0x80;
    let total = args.rate * args.seconds;
    let start = Instant::now();
    let cpu0 = thread_cpu_ns(tid);
    let before = engine.stats()[0].packets_sent;
    let mut late = false;
    // Packets go out in 1 ms ticks, as many calls' packets would.
    let mut n = 0u64;
    while n < total {
        let due = ((start.elapsed().as_nanos() as u64) * args.rate / 1_000_000_000).min(total);
        if due.saturating_sub(n) > args.rate / 5 {
            late = true;
        }
        while n < due {
            let call = (n % args.calls as u64) as usize;
            let seq = (n / args.calls as u64) as u16;
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&((n / args.calls as u64) as u32 * 160).to_be_bytes());
            pkt[8..12].copy_from_slice(&(call as u32 + 1).to_be_bytes());
            pkt[12..12 + args.payload].fill(seq as u8);
            let len = if srtp {
                senders[call]
                    .protect(&mut pkt, 12 + args.payload)
                    .expect("protect")
            } else {
                12 + args.payload
            };
            let _ = gen.send_to(&pkt[..len], targets[call]);
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(300));
    let secs = start.elapsed().as_secs_f64();
    let cpu_ns = thread_cpu_ns(tid) - cpu0;
    let relayed = engine.stats()[0].packets_sent - before;
    stop.store(true, Ordering::Relaxed);
    let _ = sink_thread.join();
    let _ = gen.as_raw_fd();
    engine.shutdown();
    Outcome {
        relayed,
        received: received.load(Ordering::Relaxed),
        cpu_ns,
        secs,
        generator_late: late,
    }
}

fn main() {
    let args = Args::parse();
    println!(
        "engine-bench: 1 worker, backend {:?}, {} calls, {} packets/s offered for {} s, {}-byte RTP payload",
        args.backend, args.calls, args.rate, args.seconds, args.payload
    );
    println!(
        "{:<28} {:>10} {:>12} {:>14} {:>16}",
        "mode", "relayed/s", "not relayed", "worker µs/pkt", "pkts/s per core"
    );
    let modes = [
        ("plain UDP forwarder (floor)", false, 46000u16),
        ("SRTP->SRTP AES_CM_128_80", true, 47000),
    ];
    let mut samples: [Vec<(f64, f64, u64)>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..args.repeat.max(1) {
        for (m, (_, srtp, base)) in modes.iter().enumerate() {
            let o = run(&args, *srtp, *base);
            if o.received < o.relayed {
                eprintln!(
                    "note: the sink thread read {} of {} relayed packets",
                    o.received, o.relayed
                );
            }
            if o.generator_late {
                eprintln!("note: the generator fell behind the offered rate");
            }
            let us = o.cpu_ns as f64 / 1000.0 / o.relayed.max(1) as f64;
            samples[m].push((
                us,
                o.relayed as f64 / o.secs,
                (args.rate * args.seconds).saturating_sub(o.relayed),
            ));
        }
    }
    let mut per_packet = Vec::new();
    for (m, (name, _, _)) in modes.iter().enumerate() {
        let s = &mut samples[m];
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (us, rate, lost) = s[s.len() / 2];
        let all: Vec<String> = s.iter().map(|x| format!("{:.2}", x.0)).collect();
        per_packet.push(us);
        println!(
            "{:<28} {:>10.0} {:>12} {:>14.2} {:>16.0}   (runs: {})",
            name,
            rate,
            lost,
            us,
            1e6 / us,
            all.join(" ")
        );
    }
    if let [plain, srtp] = per_packet[..] {
        println!(
            "SRTP relay reaches {:.0}% of the floor's packets/s per core",
            100.0 * plain / srtp
        );
    }
}
