//! Thousands of flows installed, re-keyed and removed on two workers while traffic flows:
//! no packet may reach the wrong destination, arrive twice, or carry the wrong key.
//!
//! Each call's SSRC encodes (call, key generation), so a sink knows which key a packet must
//! carry and which sink it belongs to; sinks verify with libsrtp2, not with srtpgate.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay::engine::{Command, Engine, EngineConfig, FlowSpec, LocalPort, PortShape, Transform};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};
use srtpgate_tests::libsrtp::{Direction, LibSrtp};

const SUITE: Suite = Suite::AesCm128HmacSha1_80;
const SINKS: usize = 8;
const MAX_ACTIVE: usize = 400;
const TOTAL_CALLS: u32 = 2000;
/// Packets sent per install, re-key or removal, at least, on average.
const PACKETS_PER_OP: u64 = 4;

/// Key for (call, generation, direction): 0 = endpoint→relay, 1 = relay→sink.
fn key(call: u32, generation: u32, dir: u8) -> Vec<u8> {
    let mut k = vec![0u8; SUITE.key_salt_len()];
    k[..4].copy_from_slice(&call.to_be_bytes());
    k[4..8].copy_from_slice(&generation.to_be_bytes());
    k[8] = dir;
    for (i, b) in k.iter_mut().enumerate().skip(9) {
        *b = (i as u8).wrapping_mul(31) ^ dir;
    }
    k
}

fn ctx(call: u32, generation: u32, dir: u8) -> SrtpContext {
    let m = MasterKey::from_key_salt(SUITE, &key(call, generation, dir)).unwrap();
    SrtpContext::new(Policy::new(SUITE, m)).unwrap()
}

fn ssrc(call: u32, generation: u32) -> u32 {
    (call << 8) | (generation & 0xff)
}

#[derive(Clone, Copy)]
struct Call {
    id: u32,
    generation: u32,
    a: LocalPort,
    b: LocalPort,
}

#[derive(Default, Debug)]
struct Verdict {
    verified: u64,
    misrouted: u64,
    wrong_key: u64,
    duplicates: u64,
}

#[test]
fn flows_churn_under_traffic_without_misrouting() {
    let e = Arc::new(
        Engine::start(EngineConfig {
            workers: 2,
            pin: false,
            port_min: 50000,
            port_max: 52999,
            ..Default::default()
        })
        .unwrap(),
    );
    let sinks: Vec<UdpSocket> = (0..SINKS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            s
        })
        .collect();
    let sink_addrs: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().unwrap()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let verdict = Arc::new(Mutex::new(Verdict::default()));
    let sink_threads: Vec<_> = sinks
        .into_iter()
        .enumerate()
        .map(|(k, sock)| {
            let (stop, verdict) = (stop.clone(), verdict.clone());
            std::thread::spawn(move || {
                let mut sessions: HashMap<u32, LibSrtp> = HashMap::new();
                let mut seen: HashSet<(u32, u16)> = HashSet::new();
                let mut v = Verdict::default();
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, _)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let s = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                    let seq = u16::from_be_bytes([buf[2], buf[3]]);
                    let (call, generation) = (s >> 8, s & 0xff);
                    if call as usize % SINKS != k {
                        v.misrouted += 1;
                        continue;
                    }
                    let lib = sessions.entry(s).or_insert_with(|| {
                        LibSrtp::new(SUITE, &key(call, generation, 1), Direction::Inbound).unwrap()
                    });
                    match lib.unprotect_vec(&buf[..n]) {
                        Ok(p) if p[12..].iter().all(|b| *b == call as u8) => {}
                        _ => {
                            v.wrong_key += 1;
                            continue;
                        }
                    }
                    if !seen.insert((s, seq)) {
                        v.duplicates += 1;
                        continue;
                    }
                    v.verified += 1;
                }
                let mut all = verdict.lock().unwrap();
                all.verified += v.verified;
                all.misrouted += v.misrouted;
                all.wrong_key += v.wrong_key;
                all.duplicates += v.duplicates;
            })
        })
        .collect();

    let active: Arc<Mutex<Vec<Call>>> = Arc::new(Mutex::new(Vec::new()));
    let sent_so_far = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, active, sent_so_far) = (stop.clone(), active.clone(), sent_so_far.clone());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut ctxs: HashMap<u32, (SrtpContext, u16)> = HashMap::new();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let calls: Vec<Call> = active.lock().unwrap().clone();
                // About 20k packets/s in all, whatever the number of calls.
                let pause = Duration::from_micros(50 * calls.len().max(1) as u64);
                for c in calls {
                    let s = ssrc(c.id, c.generation);
                    let (tx, seq) = ctxs
                        .entry(s)
                        .or_insert_with(|| (ctx(c.id, c.generation, 0), 0));
                    let mut p = [0u8; 12 + 40 + 16];
                    p[0] = 0x80;
                    p[2..4].copy_from_slice(&seq.to_be_bytes());
                    p[8..12].copy_from_slice(&s.to_be_bytes());
                    p[12..52].fill(c.id as u8);
                    *seq = seq.wrapping_add(1);
                    let n = tx.protect(&mut p, 52).unwrap();
                    let _ = sock.send_to(&p[..n], SocketAddr::from(([127, 0, 0, 1], c.a.port)));
                    sent += 1;
                }
                sent_so_far.store(sent, Ordering::Relaxed);
                std::thread::sleep(pause);
            }
            sent
        })
    };

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut created, mut rekeyed, mut removed) = (0u32, 0u32, 0u32);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (created < TOTAL_CALLS || !active.lock().unwrap().is_empty()) && Instant::now() < deadline
    {
        // The churn goes no faster than the traffic (a few packets per operation on
        // average), so that a fast machine still churns under traffic.
        let ops = u64::from(created + rekeyed + removed);
        while sent_so_far.load(Ordering::Relaxed) < ops * PACKETS_PER_OP
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(100));
        }
        let n_active = active.lock().unwrap().len();
        let roll = next() % 10;
        if created < TOTAL_CALLS
            && (n_active < MAX_ACTIVE / 2 || (roll < 5 && n_active < MAX_ACTIVE))
        {
            let id = created;
            let a = e.allocate(0, None, PortShape::Single, 1).unwrap();
            let b = e.allocate(0, Some(a.worker), PortShape::Single, 1).unwrap();
            let (pa, pb) = (a.ports[0], b.ports[0]);
            let mut spec = FlowSpec::plain(pb);
            spec.ingress = Transform::Srtp(Box::new(ctx(id, 0, 0)));
            spec.egress = Transform::Srtp(Box::new(ctx(id, 0, 1)));
            e.install(pa, spec).unwrap();
            e.set_peer(pb, Some(sink_addrs[id as usize % SINKS]))
                .unwrap();
            active.lock().unwrap().push(Call {
                id,
                generation: 0,
                a: pa,
                b: pb,
            });
            created += 1;
        } else if roll < 7 && n_active > 0 {
            let i = next() as usize % n_active;
            let c = active.lock().unwrap()[i];
            let g = c.generation + 1;
            e.apply(
                c.a,
                Command::UpdateKeys {
                    local: c.a,
                    ingress: Some(Transform::Srtp(Box::new(ctx(c.id, g, 0)))),
                    egress: Some(Transform::Srtp(Box::new(ctx(c.id, g, 1)))),
                },
            )
            .unwrap();
            active.lock().unwrap()[i].generation = g;
            rekeyed += 1;
        } else if n_active > 0 && (created >= TOTAL_CALLS || n_active >= MAX_ACTIVE / 2) {
            let i = next() as usize % n_active;
            let c = active.lock().unwrap().swap_remove(i);
            e.remove(c.a).unwrap();
            e.release(c.a).unwrap();
            e.release(c.b).unwrap();
            removed += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    for t in sink_threads {
        t.join().unwrap();
    }
    let v = verdict.lock().unwrap();
    println!("created {created}, re-keyed {rekeyed}, removed {removed}, sent {sent}, {v:?}");
    assert_eq!(created, TOTAL_CALLS, "the churn did not finish in time");
    assert_eq!((v.misrouted, v.wrong_key, v.duplicates), (0, 0, 0), "{v:?}");
    assert!(
        v.verified > 10_000,
        "too little traffic to mean anything: {v:?}"
    );
    assert!(
        rekeyed > 500 && removed == TOTAL_CALLS,
        "created {created} re-keyed {rekeyed} removed {removed}"
    );
}
