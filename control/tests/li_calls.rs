//! Lawful interception of live calls in the daemon: a task activated over X1 for an ng
//! identity; an SDES call over ng with media both ways; X3 PDUs arrive at an in-test
//! agency for both directions, as many as were relayed; a call of a non-target produces
//! nothing; deactivating mid-call stops delivery at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::daemon::Daemon;

mod ngkit;
use control::ng::bencode::Value;
use control::sdp::SessionDescription;
use control::vm_api::rfc3339;
use ngkit::Client;
use relay::li::x3::{self, Direction, PduType};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};
use serde_json::json;

mod kit;
use kit::daemon_config;

const TOKEN: &str = "x1-calls-token-0123456789";
const DID: &str = "0b8e1f6a-7c2d-4e3f-9a1b-2c3d4e5f6a7b";
const XID: &str = "5d1c9e2a-3b4f-4a6d-8e7f-9a0b1c2d3e4f";

#[derive(Clone, Debug)]
struct Got {
    direction: Direction,
    cid: u64,
    payload: Vec<u8>,
}

/// A minimal agency: accepts X3 over TCP and keeps every X3 PDU.
fn agency() -> (SocketAddr, Arc<Mutex<Vec<Got>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let g = g.clone();
            std::thread::spawn(move || read_pdus(s, &g));
        }
    });
    (addr, got)
}

fn read_pdus(mut s: TcpStream, got: &Mutex<Vec<Got>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        while let Ok(Some(n)) = x3::frame_len(&buf) {
            if buf.len() < n {
                break;
            }
            let (pdu, used) = x3::decode(&buf[..n]).expect("a valid PDU");
            assert_eq!(used, n);
            match pdu.header.pdu_type {
                PduType::X3 => {
                    assert_eq!(pdu.header.xid.to_string(), XID);
                    assert_ne!(pdu.header.correlation_id, 0);
                    got.lock().unwrap().push(Got {
                        direction: pdu.header.direction,
                        cid: pdu.header.correlation_id,
                        payload: pdu.payload.to_vec(),
                    });
                }
                PduType::Keepalive => {
                    let ack = x3::Header::keepalive(true, pdu.header.correlation_id);
                    let mut out = Vec::new();
                    x3::encode(&ack, &[], &[], &mut out).unwrap();
                    let _ = s.write_all(&out);
                }
                _ => {}
            }
            buf.drain(..n);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn x1(addr: SocketAddr, v: serde_json::Value) -> serde_json::Value {
    let body = v.to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /x1 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    serde_json::from_str(&out[out.find("\r\n\r\n").unwrap() + 4..]).unwrap()
}

fn start(dir: &std::path::Path, port_min: u16) -> Daemon {
    let mut c = daemon_config(port_min, 40);
    c.li.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    c.li.admin_token = Some(TOKEN.into());
    c.li.store = Some(dir.join("li.json"));
    Daemon::start(&c).unwrap()
}

fn relay_side(text: &str) -> (SocketAddr, MasterKey) {
    let sdp = SessionDescription::parse(text).unwrap();
    let m = &sdp.media[0];
    let ip = sdp.connection_for(m).unwrap().ip().unwrap();
    let c = m.cryptos().next().unwrap().unwrap();
    (
        SocketAddr::new(ip, m.port),
        c.master_keys().unwrap().remove(0),
    )
}

fn ctx(k: &MasterKey) -> SrtpContext {
    SrtpContext::new(Policy::new(Suite::AesCm128HmacSha1_80, k.clone())).unwrap()
}

fn protect(c: &mut SrtpContext, seq: u16, marker: u8) -> Vec<u8> {
    let mut p = vec![marker; 172 + 10];
    p[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    let n = c.protect(&mut p, 172).unwrap();
    p.truncate(n);
    p
}

/// A set-up SDES call between two endpoints, ready for media.
struct CallMedia {
    a: UdpSocket,
    b: UdpSocket,
    relay_for_a: SocketAddr,
    relay_for_b: SocketAddr,
    a_tx: SrtpContext,
    b_tx: SrtpContext,
    seq: u16,
}

impl CallMedia {
    fn new(ng: &mut Client, call: &str, metadata: &str) -> CallMedia {
        let ep = || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        };
        let (a, b) = (ep(), ep());
        let a_key = MasterKey::new(Suite::AesCm128HmacSha1_80, &[1; 16], &[2; 14]).unwrap();
        let b_key = MasterKey::new(Suite::AesCm128HmacSha1_80, &[3; 16], &[4; 14]).unwrap();
        let r = ng.cmd(
            Value::dict()
                .with("command", "offer")
                .with("call-id", call)
                .with("from-tag", "tag-a")
                .with("metadata", metadata)
                .with(
                    "sdp",
                    ngkit::sdp(
                        a.local_addr().unwrap().port(),
                        Some(("1 AES_CM_128_HMAC_SHA1_80", &a_key)),
                    )
                    .as_str(),
                ),
        );
        assert_eq!(ngkit::s(&r, "result"), "ok", "{r:?}");
        let offer_sdp = ngkit::s(&r, "sdp");
        let r = ng.cmd(
            Value::dict()
                .with("command", "answer")
                .with("call-id", call)
                .with("from-tag", "tag-a")
                .with("to-tag", "tag-b")
                .with(
                    "sdp",
                    ngkit::sdp(
                        b.local_addr().unwrap().port(),
                        Some(("1 AES_CM_128_HMAC_SHA1_80", &b_key)),
                    )
                    .as_str(),
                ),
        );
        assert_eq!(ngkit::s(&r, "result"), "ok", "{r:?}");
        let answer_sdp = ngkit::s(&r, "sdp");
        // Nothing about LI in what the proxy sees.
        for s in [&offer_sdp, &answer_sdp] {
            assert!(
                !s.contains(XID) && !s.contains(DID) && !s.contains("alice"),
                "{s}"
            );
        }
        let (relay_for_b, _) = relay_side(&offer_sdp);
        let (relay_for_a, _) = relay_side(&answer_sdp);
        CallMedia {
            a,
            b,
            relay_for_a,
            relay_for_b,
            a_tx: ctx(&a_key),
            b_tx: ctx(&b_key),
            seq: 0,
        }
    }

    /// `n` packets each way, each received by the other side. Returns packets relayed.
    fn exchange(&mut self, n: u16) -> usize {
        let mut buf = [0u8; 2048];
        for _ in 0..n {
            let p = protect(&mut self.a_tx, self.seq, 0xaa);
            self.a.send_to(&p, self.relay_for_a).unwrap();
            self.b.recv_from(&mut buf).unwrap();
            let p = protect(&mut self.b_tx, self.seq, 0xbb);
            self.b.send_to(&p, self.relay_for_b).unwrap();
            self.a.recv_from(&mut buf).unwrap();
            self.seq += 1;
        }
        2 * n as usize
    }
}

fn wait_for(got: &Mutex<Vec<Got>>, n: usize) -> Vec<Got> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = got.lock().unwrap().clone();
        if g.len() >= n || Instant::now() > deadline {
            return g;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-li-calls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn target_call_delivered_both_ways_non_target_nothing_deactivation_stops() {
    let dir = tempdir("main");
    let (agency_addr, got) = agency();
    let d = start(&dir, 46100);
    let admin = d.li_admin().unwrap().addr();
    let mut ng = Client::new(&d);
    x1(
        admin,
        json!({"operation": "CreateDestination", "destinationDetails": {
        "dId": DID, "deliveryType": "X3Only",
        "deliveryAddress": {"ipAddressPort": {"address": "127.0.0.1", "port": {"TCPPort": agency_addr.port()}}}}}),
    );
    x1(
        admin,
        json!({"operation": "ActivateTask", "taskDetails": {
        "xId": XID, "targetIdentifiers": [{"sipUri": "sip:alice@example.com"}],
        "deliveryType": "X3Only", "listOfDIDs": [DID]}}),
    );

    // A non-target call: relayed, nothing delivered, no tap.
    let mut other = CallMedia::new(
        &mut ng,
        "call-other",
        "sip:bob@example.com, sip:carol@example.com",
    );
    other.exchange(10);
    assert_eq!(d.li_calls().unwrap().intercepted_calls(), 0);

    // The target's call (identity from the SIP edge's JSON shape in ng metadata).
    let meta = json!({"caller": {"from": "\"Alice\" <sip:alice@example.com>;tag=1"},
                      "callee": {"to": "<sip:dave@example.com>"}})
    .to_string();
    let mut target = CallMedia::new(&mut ng, "call-target", &meta);
    assert_eq!(d.li_calls().unwrap().intercepted_calls(), 1);
    let relayed = target.exchange(20);
    let g = wait_for(&got, relayed);
    std::thread::sleep(Duration::from_millis(200));
    let g2 = got.lock().unwrap().clone();
    assert_eq!(g2.len(), g.len(), "no more than relayed");
    assert_eq!(g.len(), relayed, "delivered = relayed");
    let from: Vec<&Got> = g
        .iter()
        .filter(|p| p.direction == Direction::FromTarget)
        .collect();
    let to: Vec<&Got> = g
        .iter()
        .filter(|p| p.direction == Direction::ToTarget)
        .collect();
    assert_eq!((from.len(), to.len()), (20, 20));
    // Cleartext: what the caller (target) sent is marked 0xaa, what it got 0xbb.
    assert!(from
        .iter()
        .all(|p| p.payload.len() == 172 && p.payload[12..].iter().all(|b| *b == 0xaa)));
    assert!(to
        .iter()
        .all(|p| p.payload.len() == 172 && p.payload[12..].iter().all(|b| *b == 0xbb)));
    assert!(g.iter().all(|p| p.cid == g[0].cid));
    // The non-target call kept flowing without delivering anything.
    other.exchange(5);

    // Deactivation mid-call stops delivery at once.
    x1(admin, json!({"operation": "DeactivateTask", "xId": XID}));
    assert_eq!(d.li_calls().unwrap().intercepted_calls(), 0);
    let before = got.lock().unwrap().len();
    target.exchange(10);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(got.lock().unwrap().len(), before);

    // Activation mid-call starts it at once.
    x1(
        admin,
        json!({"operation": "ActivateTask", "taskDetails": {
        "xId": XID, "targetIdentifiers": [{"sipUri": "sip:alice@example.com"}],
        "deliveryType": "X3Only", "listOfDIDs": [DID]}}),
    );
    assert_eq!(d.li_calls().unwrap().intercepted_calls(), 1);
    let relayed = target.exchange(10);
    let g = wait_for(&got, before + relayed);
    assert_eq!(g.len(), before + relayed);

    // Delete ends the interception.
    let r = ng.cmd(
        Value::dict()
            .with("command", "delete")
            .with("call-id", "call-target"),
    );
    assert_eq!(ngkit::s(&r, "result"), "ok");
    assert_eq!(d.li_calls().unwrap().intercepted_calls(), 0);
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn delivery_stops_when_the_task_ends() {
    assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000Z");
    let dir = tempdir("end");
    let (agency_addr, got) = agency();
    let d = start(&dir, 46300);
    let admin = d.li_admin().unwrap().addr();
    let mut ng = Client::new(&d);
    x1(
        admin,
        json!({"operation": "CreateDestination", "destinationDetails": {
        "dId": DID, "deliveryType": "X3Only",
        "deliveryAddress": {"ipAddressPort": {"address": "127.0.0.1", "port": {"TCPPort": agency_addr.port()}}}}}),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let end = now + 3;
    x1(
        admin,
        json!({"operation": "ActivateTask", "taskDetails": {
        "xId": XID, "targetIdentifiers": [{"sipUri": "sip:alice@example.com"}],
        "deliveryType": "X3Only", "listOfDIDs": [DID], "endTime": rfc3339(end * 1_000_000_000)}}),
    );
    let mut call = CallMedia::new(&mut ng, "call-ending", "sip:alice@example.com");
    assert_eq!(d.li_calls().unwrap().intercepted_calls(), 1);
    let relayed = call.exchange(5);
    assert_eq!(wait_for(&got, relayed).len(), relayed);
    // Past the end time (plus the 1 s re-check and the events round), nothing more.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        < end + 2
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        d.li_calls().unwrap().intercepted_calls(),
        0,
        "the tap outlived the task"
    );
    let before = got.lock().unwrap().len();
    call.exchange(10);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        got.lock().unwrap().len(),
        before,
        "delivered after the task ended"
    );
    d.drain_and_stop(Duration::ZERO);
}
