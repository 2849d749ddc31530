//! Voicemail deposit on the sans-IO proxy with a scripted deposit back end: calls to
//! `vm-<user>` are answered by the proxy itself (200 with the deposit's SDP, Contact, to-tag),
//! retransmissions get the same answer, ACK is absorbed, BYE stops the deposit, an unknown
//! mailbox gets 404, an INVITE without SDP 488, other users are routed as usual, and a
//! deposit that stops by itself (maximum length) is ended with srtpgate's own BYE.

mod sip_common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use control::sip::deposit::RedirectPolicy;
use sip_common::deposit::{DepositLog, FakeDeposit};
use sip_common::{fake_proxy, feed, msg, parsed, status_of, udp};

/// The fake deposit back end: bob's mailbox only, never a redirect; every call comes
/// from alice.
fn bob_deposit(log: &Arc<Mutex<DepositLog>>) -> Box<FakeDeposit> {
    Box::new(FakeDeposit {
        log: log.clone(),
        policies: [("bob".to_string(), RedirectPolicy::default())].into(),
        fixed: None,
        fail: false,
        identity: Some("sip:alice@127.0.0.1"),
    })
}

const CALLER: &str = "127.0.0.1:5071";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n";

fn invite(user: &str, call: &str, branch: &str, body: &str) -> Vec<u8> {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    msg(&format!(
        "INVITE sip:{user}@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch={branch};rport\n\
         From: <sip:alice@127.0.0.1>;tag=atag\nTo: <sip:{user}@127.0.0.1>\nCall-ID: {call}\n\
         CSeq: 1 INVITE\nMax-Forwards: 70\nContact: <sip:alice@{CALLER}>\n{ct}Content-Length: {{LEN}}\n\n{body}"
    ))
}

fn in_dialog(method: &str, call: &str, branch: &str, cseq: u32, to_tag: &str) -> Vec<u8> {
    msg(&format!(
        "{method} sip:vm-bob@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP {CALLER};branch={branch};rport\n\
         From: <sip:alice@127.0.0.1>;tag=atag\nTo: <sip:vm-bob@127.0.0.1>;tag={to_tag}\n\
         Call-ID: {call}\nCSeq: {cseq} {method}\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ))
}

#[test]
fn deposit_dialog_is_answered_by_the_proxy() {
    let (mut p, anchor) = fake_proxy();
    let log = Arc::new(Mutex::new(DepositLog::default()));
    p.set_deposit(bob_deposit(&log));
    let from = udp(CALLER);

    let out = feed(&mut p, &invite("vm-bob", "c1", "z9hG4bK1", SDP), &from);
    assert_eq!(status_of(&out), Some(200), "{out:?}");
    let ok = &out.iter().find(|(_, m)| m.code() == Some(200)).unwrap().1;
    let to_tag = ok.to().unwrap().tag().unwrap().to_string();
    assert!(ok.get("contact").unwrap().contains("vm-bob@127.0.0.1:5060"));
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 30000"));
    let started: Vec<_> = log
        .lock()
        .unwrap()
        .started
        .iter()
        .map(|(call, mailbox, _)| (call.clone(), mailbox.clone()))
        .collect();
    assert_eq!(started, vec![("c1".to_string(), "bob".to_string())]);
    assert!(anchor.lock().unwrap().offers.is_empty(), "not routed");

    // A retransmission gets the same 200; nothing starts twice.
    let again = feed(&mut p, &invite("vm-bob", "c1", "z9hG4bK1", SDP), &from);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.to_bytes(), ok.to_bytes());
    assert_eq!(log.lock().unwrap().started.len(), 1);

    let ack = feed(
        &mut p,
        &in_dialog("ACK", "c1", "z9hG4bK2", 1, &to_tag),
        &from,
    );
    assert!(ack.is_empty(), "{ack:?}");
    let info = feed(
        &mut p,
        &in_dialog("INFO", "c1", "z9hG4bK3", 2, &to_tag),
        &from,
    );
    assert_eq!(status_of(&info), Some(200));
    let bye = feed(
        &mut p,
        &in_dialog("BYE", "c1", "z9hG4bK4", 3, &to_tag),
        &from,
    );
    assert_eq!(status_of(&bye), Some(200));
    assert_eq!(log.lock().unwrap().stopped, vec!["c1".to_string()]);
}

#[test]
fn unknown_mailbox_missing_sdp_and_other_users() {
    let (mut p, anchor) = fake_proxy();
    let log = Arc::new(Mutex::new(DepositLog::default()));
    p.set_deposit(bob_deposit(&log));
    let from = udp(CALLER);
    let out = feed(&mut p, &invite("vm-nobody", "c2", "z9hG4bK5", SDP), &from);
    assert_eq!(status_of(&out), Some(404), "{out:?}");
    let out = feed(&mut p, &invite("vm-bob", "c3", "z9hG4bK6", ""), &from);
    assert_eq!(status_of(&out), Some(488), "{out:?}");
    // Not a voicemail URI: routed as usual (carol is not registered).
    let out = feed(&mut p, &invite("carol", "c4", "z9hG4bK7", SDP), &from);
    assert_ne!(status_of(&out), Some(200));
    assert!(log.lock().unwrap().started.is_empty());
    let _ = anchor;
}

#[test]
fn maximum_length_ends_the_call_with_a_bye() {
    let (mut p, _) = fake_proxy();
    let log = Arc::new(Mutex::new(DepositLog::default()));
    p.set_deposit(bob_deposit(&log));
    let from = udp(CALLER);
    let out = feed(&mut p, &invite("vm-bob", "c5", "z9hG4bK8", SDP), &from);
    assert_eq!(status_of(&out), Some(200));
    let to_tag = out[0].1.to().unwrap().tag().unwrap().to_string();
    log.lock().unwrap().finished.push("c5".into());
    let sent = parsed(&p.tick(Instant::now()));
    let (flow, bye) = sent
        .iter()
        .find(|(_, m)| m.method() == Some("BYE"))
        .expect("a BYE toward the caller");
    assert_eq!(flow.remote, CALLER.parse().unwrap());
    assert_eq!(
        bye.request_uri(),
        Some(format!("sip:alice@{CALLER}").as_str())
    );
    assert_eq!(bye.from().unwrap().tag(), Some(to_tag.as_str()));
    assert_eq!(bye.to().unwrap().tag(), Some("atag"));
    assert_eq!(bye.call_id(), "c5");
    assert_eq!(log.lock().unwrap().stopped, vec!["c5".to_string()]);
    // Its 200 is absorbed.
    let resp = msg(&format!(
        "SIP/2.0 200 OK\nVia: {}\nFrom: {}\nTo: {}\nCall-ID: c5\nCSeq: 1 BYE\nContent-Length: 0\n\n",
        bye.get("via").unwrap(),
        bye.get("from").unwrap(),
        bye.get("to").unwrap()
    ));
    assert!(feed(&mut p, &resp, &from).is_empty());
}
