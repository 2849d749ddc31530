//! Calls sent to voicemail by the proxy, with a relay engine behind it and a scripted
//! deposit back end: the no-answer timer (CANCEL to the ringing callee, the deposit's 200 to
//! the caller, the callee's media anchor freed), busy, unavailable, a policy that is off
//! (486 relayed as is), a callee 200 racing the CANCEL (ACK + BYE, never relayed), the
//! caller's CANCEL after the deposit answered, answered or cancelled calls and forks, the
//! 200's retransmission until the ACK, the fixed voicemail URI with its mailbox from
//! Diversion / History-Info / the caller, and the counters per reason. One test uses the
//! real deposit back end (mailbox store, recorder) after early media: the caller's SRTP,
//! sent to the port of the deposit's answer, ends up in a sealed message.

mod sip_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use control::call::crypto::fresh_key;
use control::sip::deposit::RedirectPolicy;
use control::sip::proxy::DepositReason;
use control::sip::Message;
use relay::srtp::Suite;
use sip_common::deposit::{DepositLog, FakeDeposit};
use sip_common::net::*;

fn policy(no_answer: bool, busy: bool, unavailable: bool) -> RedirectPolicy {
    RedirectPolicy {
        on_no_answer: no_answer,
        on_busy: busy,
        on_unavailable: unavailable,
        no_answer_timeout: Duration::from_secs(5),
    }
}

/// A network with bob registered at BOB1 and a deposit back end knowing `mailboxes`.
fn net_with(
    base: u16,
    mailboxes: &[(&str, RedirectPolicy)],
    fail: bool,
) -> (Net, Arc<Mutex<DepositLog>>) {
    let mut net = Net::new(base, &[]);
    net.register("bob", BOB1);
    let log = Arc::new(Mutex::new(DepositLog::default()));
    net.proxy.set_deposit(Box::new(FakeDeposit {
        log: log.clone(),
        policies: mailboxes.iter().map(|(u, p)| (u.to_string(), *p)).collect(),
        fixed: Some("voicemail".into()),
        fail,
        identity: None,
    }));
    (net, log)
}

fn offer() -> String {
    let key = fresh_key(Suite::AesCm128HmacSha1_80).unwrap();
    sdp(4000, Some(&key))
}

/// Alice calls bob; bob rings. Returns the INVITE bob got.
fn ringing(net: &mut Net, call: &str, branch: &str, offer: &str) -> Message {
    let out = net.send(ALICE, &invite(call, branch, 1, None, offer));
    assert_eq!(only(&out, ALICE).code(), Some(100));
    let inv = only(&out, BOB1).clone();
    let out = net.reply(BOB1, &inv, 180, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(180));
    inv
}

fn deposits(net: &Net, r: DepositReason) -> u64 {
    net.proxy.counters().deposits.get(r)
}

#[test]
fn no_answer_cancels_the_callee_and_answers_with_the_deposit() {
    let (mut net, log) = net_with(14100, &[("bob", policy(true, false, false))], false);
    let offer = offer();
    let inv = ringing(&mut net, "na-1", "z9hG4bKna1", &offer);
    assert_eq!(net.calls(), 1, "the offer toward bob is anchored");

    let out = net.advance(Duration::from_secs(4));
    assert!(out.is_empty(), "not yet: {out:?}");
    let out = net.advance(Duration::from_millis(1100));
    let c = only(&out, BOB1);
    assert_eq!(c.method(), Some("CANCEL"));
    assert_eq!(c.get("via"), inv.get("via"), "CANCEL of bob's branch");
    let ok = only(&out, ALICE).clone();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.top_via().unwrap().branch(), Some("z9hG4bKna1"));
    let vm_tag = ok.to().unwrap().tag().unwrap().to_string();
    assert_ne!(vm_tag, "btag", "the deposit's dialog, not bob's");
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 30000"));
    assert!(ok.get("contact").unwrap().contains("@127.0.0.1:5060"));
    {
        let l = log.lock().unwrap();
        assert_eq!(l.started.len(), 1);
        assert_eq!(
            (l.started[0].0.as_str(), l.started[0].1.as_str()),
            ("na-1", "bob")
        );
        assert_eq!(l.started[0].2, offer, "the deposit gets alice's own offer");
    }
    assert_eq!(net.calls(), 0, "bob's media anchor is freed");
    assert_eq!(deposits(&net, DepositReason::NoAnswer), 1);

    // Bob answers the CANCEL and the INVITE (487): ACKed, nothing reaches alice.
    let out = net.reply(BOB1, &inv, 487, "btag", None);
    assert_eq!(only(&out, BOB1).method(), Some("ACK"));
    assert!(to(&out, ALICE).is_empty(), "{out:?}");

    // A retransmitted INVITE gets the deposit's 200 again.
    let out = net.send(ALICE, &invite("na-1", "z9hG4bKna1", 1, None, &offer));
    assert_eq!(only(&out, ALICE).to_bytes(), ok.to_bytes());
    // Alice's CANCEL crossing the 200: 200 for the CANCEL, nothing else.
    let out = net.send(ALICE, &cancel("na-1", "z9hG4bKna1"));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    assert!(to(&out, BOB1).is_empty());

    // The deposit dialog: ACK absorbed, BYE stops the deposit.
    let out = net.send(ALICE, &in_dialog("ACK", "na-1", "z9hG4bKna2", 1, &vm_tag));
    assert!(out.is_empty(), "{out:?}");
    let out = net.send(ALICE, &in_dialog("BYE", "na-1", "z9hG4bKna3", 2, &vm_tag));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    assert_eq!(log.lock().unwrap().stopped, vec!["na-1".to_string()]);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.proxy.sizes(), (0, 0, 0), "nothing left");
}

#[test]
fn busy_goes_to_voicemail_and_policy_off_relays_busy() {
    let (mut net, log) = net_with(14200, &[("bob", policy(false, true, false))], false);
    let inv = ringing(&mut net, "busy-1", "z9hG4bKb1", &offer());
    let out = net.reply(BOB1, &inv, 486, "btag", None);
    assert_eq!(only(&out, BOB1).method(), Some("ACK"));
    let ok = only(&out, ALICE);
    assert_eq!(ok.code(), Some(200));
    assert_eq!(log.lock().unwrap().started[0].1, "bob");
    assert_eq!(deposits(&net, DepositReason::Busy), 1);
    assert_eq!(net.calls(), 0);
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    net.send(ALICE, &in_dialog("ACK", "busy-1", "z9hG4bKb1a", 1, &tag));
    // 600 Busy Everywhere too, straight after the INVITE.
    let out = net.send(ALICE, &invite("busy-2", "z9hG4bKb2", 1, None, &offer()));
    let inv = only(&out, BOB1).clone();
    let out = net.reply(BOB1, &inv, 600, "btag", None);
    let ok = only(&out, ALICE);
    assert_eq!(ok.code(), Some(200));
    assert_eq!(deposits(&net, DepositReason::Busy), 2);
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    net.send(ALICE, &in_dialog("ACK", "busy-2", "z9hG4bKb2a", 1, &tag));
    // No-answer is off for bob: the call keeps ringing.
    let inv = ringing(&mut net, "busy-3", "z9hG4bKb3", &offer());
    assert!(net.advance(Duration::from_secs(30)).is_empty());
    // 480 is not busy: relayed as is.
    let out = net.reply(BOB1, &inv, 480, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(480));
    assert_eq!(log.lock().unwrap().started.len(), 2);

    // Everything off: 486 reaches alice, nothing is deposited.
    let (mut net, log) = net_with(14300, &[("bob", policy(false, false, false))], false);
    let inv = ringing(&mut net, "off-1", "z9hG4bKo1", &offer());
    let out = net.reply(BOB1, &inv, 486, "btag", None);
    let busy = only(&out, ALICE);
    assert_eq!(busy.code(), Some(486));
    assert_eq!(busy.to().unwrap().tag(), Some("btag"));
    assert!(log.lock().unwrap().started.is_empty());
    assert_eq!(net.calls(), 0);
    // And a user without a mailbox: relayed too.
    let (mut net, log) = net_with(14400, &[("carol", policy(true, true, true))], false);
    let inv = ringing(&mut net, "off-2", "z9hG4bKo2", &offer());
    let out = net.reply(BOB1, &inv, 486, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(486));
    assert!(log.lock().unwrap().started.is_empty());
}

#[test]
fn callee_answer_racing_the_cancel_is_acked_and_ended() {
    let (mut net, _log) = net_with(14500, &[("bob", policy(true, false, false))], false);
    let inv = ringing(&mut net, "race-1", "z9hG4bKr1", &offer());
    let out = net.advance(Duration::from_secs(6));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    // Bob picked up before the CANCEL reached him.
    let b_key = fresh_key(Suite::AesCm128HmacSha1_80).unwrap();
    let answer = sdp(4100, Some(&b_key));
    let out = net.reply(BOB1, &inv, 200, "btag", Some(&answer));
    assert!(to(&out, ALICE).is_empty(), "never relayed: {out:?}");
    let sent = to(&out, BOB1);
    assert_eq!(sent.len(), 2, "{out:?}");
    assert_eq!(sent[0].method(), Some("ACK"));
    assert_eq!(sent[1].method(), Some("BYE"));
    for m in &sent {
        assert_eq!(m.to().unwrap().tag(), Some("btag"));
        assert_eq!(m.call_id(), "race-1");
        assert_eq!(m.request_uri(), Some(format!("sip:bob@{BOB1}").as_str()));
    }
    assert_eq!(sent[1].cseq().unwrap().seq, inv.cseq().unwrap().seq + 1);
    assert_eq!(net.proxy.counters().late_answers, 1);
    assert_eq!(net.calls(), 0, "bob's answer is not anchored");
    // Bob retransmits the 200 (the ACK was lost): ACK again, no second BYE.
    let out = net.reply(BOB1, &inv, 200, "btag", Some(&answer));
    let again = only(&out, BOB1);
    assert_eq!(again.method(), Some("ACK"));
    assert!(to(&out, ALICE).is_empty());
}

#[test]
fn unavailable_and_a_refused_deposit() {
    // Bob is not registered at all (another user is): deposit at once.
    let mut net = Net::new(14600, &[]);
    let log = Arc::new(Mutex::new(DepositLog::default()));
    net.proxy.set_deposit(Box::new(FakeDeposit {
        log: log.clone(),
        policies: [("bob".to_string(), policy(false, false, true))].into(),
        fixed: None,
        fail: false,
        identity: None,
    }));
    let out = net.send(ALICE, &invite("un-1", "z9hG4bKu1", 1, None, &offer()));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    assert_eq!(deposits(&net, DepositReason::Unavailable), 1);
    assert_eq!(net.calls(), 0);
    // Registered, answering 408: voicemail too.
    net.register("bob", BOB1);
    let out = net.send(ALICE, &invite("un-2", "z9hG4bKu2", 1, None, &offer()));
    let inv = only(&out, BOB1).clone();
    let out = net.reply(BOB1, &inv, 408, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(200));
    assert_eq!(deposits(&net, DepositReason::Unavailable), 2);

    // A deposit that cannot start: busy stays busy; no answer becomes 480.
    let (mut net, _) = net_with(14700, &[("bob", policy(true, true, false))], true);
    let inv = ringing(&mut net, "fail-1", "z9hG4bKf1", &offer());
    let out = net.reply(BOB1, &inv, 486, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(486));
    let out = net.send(ALICE, &in_dialog("ACK", "fail-1", "z9hG4bKf1", 1, "btag"));
    assert!(out.is_empty(), "{out:?}");
    let inv = ringing(&mut net, "fail-2", "z9hG4bKf2", &offer());
    let out = net.advance(Duration::from_secs(6));
    assert_eq!(only(&out, BOB1).method(), Some("CANCEL"));
    let resp = only(&out, ALICE);
    assert_eq!(resp.code(), Some(480));
    assert_eq!(net.calls(), 0);
    let out = net.reply(BOB1, &inv, 487, "btag", None);
    assert!(to(&out, ALICE).is_empty());
    assert_eq!(deposits(&net, DepositReason::NoAnswer), 0);
}

fn to_voicemail(call: &str, branch: &str, extra: &str, from_user: &str) -> String {
    let body = offer();
    format!(
        "INVITE sip:voicemail@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\n\
         From: <sip:{from_user}@127.0.0.1>;tag=atag\nTo: <sip:voicemail@127.0.0.1>\nCall-ID: {call}\n\
         CSeq: 1 INVITE\nMax-Forwards: 70\nContact: <sip:{from_user}@{ALICE}>\n{extra}\
         Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
        body.len()
    )
}

#[test]
fn fixed_uri_takes_the_mailbox_from_diversion_or_the_caller() {
    let off = policy(false, false, false);
    let (mut net, log) = net_with(14800, &[("bob", off), ("alice", off)], false);
    let cases = [
        ("fx-1", "Diversion: <sip:bob@127.0.0.1>;reason=no-answer\n", "alice", Some("bob")),
        (
            "fx-2",
            "History-Info: <sip:bob@127.0.0.1>;index=1, <sip:voicemail@127.0.0.1;cause=486>;index=1.1\n",
            "alice",
            Some("bob"),
        ),
        ("fx-3", "", "alice", Some("alice")),
        // A diversion from a user without a mailbox is not the caller's message.
        ("fx-4", "Diversion: <sip:carol@127.0.0.1>\n", "alice", None),
        ("fx-5", "", "mallory", None),
    ];
    for (i, (call, extra, from, want)) in cases.iter().enumerate() {
        let branch = format!("z9hG4bKfx{i}");
        let out = net.send(ALICE, &to_voicemail(call, &branch, extra, from));
        let code = only(&out, ALICE).code();
        match want {
            Some(mailbox) => {
                assert_eq!(code, Some(200), "{call}");
                let l = log.lock().unwrap();
                assert_eq!(l.started.last().unwrap().1, *mailbox, "{call}");
            }
            None => assert_eq!(code, Some(404), "{call}"),
        }
    }
    assert_eq!(deposits(&net, DepositReason::FixedUri), 3);
    assert_eq!(deposits(&net, DepositReason::Direct), 0);
    // The ACK of a 404 ends at the proxy.
    let ack = format!(
        "ACK sip:voicemail@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKfx4;rport\n\
         From: <sip:alice@127.0.0.1>;tag=atag\nTo: <sip:voicemail@127.0.0.1>;tag=x\nCall-ID: fx-4\n\
         CSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n"
    );
    assert!(net.send(ALICE, &ack).is_empty());
    // The metrics page names every reason.
    let mut page = String::new();
    control::metrics::render_sip(&mut page, net.proxy.counters());
    assert!(
        page.contains("srtpgate_sip_voicemail_deposits_total{reason=\"fixed-uri\"} 3"),
        "{page}"
    );
    assert!(page.contains("srtpgate_sip_voicemail_deposits_total{reason=\"no-answer\"} 0"));
}

#[test]
fn no_answer_with_the_real_deposit_re_anchors_and_records() {
    use control::sip::deposit::RegistryDeposit;
    use control::voicemail::config::VoicemailConfig;
    use control::voicemail::MailboxStore;
    use relay::record::PrivateKey;

    let dir = std::env::temp_dir().join(format!("sg-vmroute-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let owner_key = PrivateKey::generate().unwrap();
    let mut store = MailboxStore::open(&dir).unwrap();
    store
        .add(
            "bob",
            "sip:bob@127.0.0.1",
            &owner_key.public_key().to_base64(),
        )
        .unwrap();
    let store = Arc::new(Mutex::new(store));
    let config = VoicemailConfig {
        data_dir: Some(dir.clone()),
        on_no_answer: true,
        no_answer_timeout: 5,
        min_free_bytes: 0,
        fsync: "never".into(),
        ..Default::default()
    };
    let mut net = Net::new(14900, &[]);
    net.register("bob", BOB1);
    net.proxy.set_deposit(Box::new(RegistryDeposit::new(
        net.registry.clone(),
        store.clone(),
        config,
    )));

    let a_media = media_socket();
    let suite = Suite::AesCm128HmacSha1_80;
    let a_key = fresh_key(suite).unwrap();
    let offer = sdp(a_media.local_addr().unwrap().port(), Some(&a_key));
    let out = net.send(ALICE, &invite("real-1", "z9hG4bKre1", 1, None, &offer));
    let inv = only(&out, BOB1).clone();
    assert!(relay_side(&inv).1.is_some(), "SRTP toward bob");
    // Bob's phone rings with early media: alice gets the relay's side of it.
    let b_key = fresh_key(suite).unwrap();
    let out = net.reply(BOB1, &inv, 183, "btag", Some(&sdp(4100, Some(&b_key))));
    let early = only(&out, ALICE).clone();
    assert_eq!(early.code(), Some(183));
    let (early_addr, early_key) = relay_side(&early);
    let out = net.advance(Duration::from_secs(6));
    assert_eq!(only(&out, BOB1).method(), Some("CANCEL"));
    let ok = only(&out, ALICE).clone();
    assert_eq!(ok.code(), Some(200));
    let (relay_a, to_a) = relay_side(&ok);
    let to_a = to_a.expect("SRTP toward alice");
    assert_ne!(to_a.key.to_inline(), a_key.to_inline());
    assert_ne!(relay_a, early_addr, "the deposit is anchored anew");
    assert_ne!(to_a.key.to_inline(), early_key.unwrap().key.to_inline());
    assert_eq!(net.calls(), 1, "only the deposit's call is anchored");
    let vm_tag = ok.to().unwrap().tag().unwrap().to_string();
    {
        let reg = net.registry.lock().unwrap();
        let call = reg.call("real-1").unwrap();
        let ports: Vec<u16> = call.ports().iter().map(|p| p.port).collect();
        assert!(ports.contains(&relay_a.port()), "{ports:?}");
        assert!(call.monologue(&vm_tag).is_some(), "answered by the deposit");
        assert!(call
            .metadata
            .as_deref()
            .unwrap()
            .contains("sip:bob@127.0.0.1"));
    }
    net.send(ALICE, &in_dialog("ACK", "real-1", "z9hG4bKre2", 1, &vm_tag));

    // Alice's SRTP to the port of the deposit's answer is recorded.
    let mut tx = ctx(suite, &a_key);
    for seq in 1..=5u16 {
        let plain = rtp(seq);
        let mut p = plain.clone();
        p.resize(plain.len() + 32, 0);
        let n = tx.protect(&mut p, plain.len()).unwrap();
        a_media.send_to(&p[..n], relay_a).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = net.send(ALICE, &in_dialog("BYE", "real-1", "z9hG4bKre3", 2, &vm_tag));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    assert_eq!(net.calls(), 0);
    let store = store.lock().unwrap();
    let msgs = store.messages("bob").unwrap();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let (file, _) = store
        .open_message("bob", &msgs[0].recording_id.to_string())
        .unwrap();
    let mut got = Vec::new();
    relay::record::read(std::io::BufReader::new(file), &owner_key, |p| {
        got.push(p.rtp)
    })
    .unwrap();
    assert_eq!(got, (1..=5).map(rtp).collect::<Vec<_>>());
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn answered_or_cancelled_in_time_is_not_diverted_and_forks_are_all_cancelled() {
    let (mut net, log) = net_with(15000, &[("bob", policy(true, true, true))], false);
    // Bob answers within the timeout: his 200 goes to alice, the timer does nothing.
    let inv = ringing(&mut net, "in-time", "z9hG4bKt1", &offer());
    net.advance(Duration::from_secs(3));
    let b_key = fresh_key(Suite::AesCm128HmacSha1_80).unwrap();
    let out = net.reply(BOB1, &inv, 200, "btag", Some(&sdp(4100, Some(&b_key))));
    let ok = only(&out, ALICE);
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.to().unwrap().tag(), Some("btag"));
    let out = net.advance(Duration::from_secs(10));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(net.calls(), 1, "bob's call keeps its media");
    net.send(ALICE, &in_dialog("ACK", "in-time", "z9hG4bKt2", 1, "btag"));

    // Alice cancels while bob rings: 487, and no deposit when the timer would have fired.
    let inv = ringing(&mut net, "cancelled", "z9hG4bKt3", &offer());
    let out = net.send(ALICE, &cancel("cancelled", "z9hG4bKt3"));
    assert_eq!(only(&out, BOB1).method(), Some("CANCEL"));
    let out = net.reply(BOB1, &inv, 487, "btag", None);
    let terminated = find(&out, ALICE, |m| m.code().is_some());
    assert_eq!(terminated.code(), Some(487));
    let tag = terminated.to().unwrap().tag().unwrap().to_string();
    assert!(net
        .send(ALICE, &in_dialog("ACK", "cancelled", "z9hG4bKt3", 1, &tag))
        .is_empty());
    assert!(net
        .advance(Duration::from_secs(10))
        .iter()
        .all(|(_, m)| m.code() != Some(200)));

    // Bob on two phones: both ring, both get CANCEL when voicemail takes the call.
    net.register("bob", BOB2);
    let out = net.send(ALICE, &invite("fork", "z9hG4bKt4", 1, None, &offer()));
    let (i1, i2) = (only(&out, BOB1).clone(), only(&out, BOB2).clone());
    net.reply(BOB1, &i1, 180, "b1", None);
    net.reply(BOB2, &i2, 180, "b2", None);
    let out = net.advance(Duration::from_secs(6));
    assert_eq!(only(&out, BOB1).method(), Some("CANCEL"));
    assert_eq!(only(&out, BOB2).method(), Some("CANCEL"));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    let started: Vec<String> = log
        .lock()
        .unwrap()
        .started
        .iter()
        .map(|s| s.0.clone())
        .collect();
    assert_eq!(started, vec!["fork".to_string()]);
}

#[test]
fn deposit_answer_is_retransmitted_until_acked_and_ended_without_ack() {
    let (mut net, log) = net_with(15100, &[("bob", policy(false, true, false))], false);
    let inv = ringing(&mut net, "rt-1", "z9hG4bKrt1", &offer());
    let out = net.reply(BOB1, &inv, 486, "btag", None);
    let ok = only(&out, ALICE).clone();
    assert_eq!(ok.code(), Some(200));
    // T1, then doubling: 0.5 s, 1 s, 2 s …
    let mut resent = Vec::new();
    for _ in 0..8 {
        let out = net.advance(Duration::from_millis(250));
        resent.extend(to(&out, ALICE).into_iter().map(|m| m.to_bytes()));
    }
    assert_eq!(
        resent,
        vec![ok.to_bytes(), ok.to_bytes()],
        "at 0.5 s and 1.5 s"
    );
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    net.send(ALICE, &in_dialog("ACK", "rt-1", "z9hG4bKrt2", 1, &tag));
    let out = net.advance(Duration::from_secs(5));
    assert!(to(&out, ALICE).is_empty(), "acknowledged: {out:?}");
    assert!(log.lock().unwrap().stopped.is_empty());

    // Never acknowledged: after 64*T1 srtpgate ends the deposit with a BYE.
    let inv = ringing(&mut net, "rt-2", "z9hG4bKrt3", &offer());
    let out = net.reply(BOB1, &inv, 486, "btag", None);
    let ok = only(&out, ALICE).clone();
    let mut sent = Vec::new();
    for _ in 0..70 {
        sent.extend(net.advance(Duration::from_millis(500)));
    }
    let oks = sent.iter().filter(|(_, m)| m.code() == Some(200)).count();
    assert!((8..=12).contains(&oks), "{oks} retransmissions in 35 s");
    let bye = find(&sent, ALICE, |m| m.method() == Some("BYE"));
    assert_eq!(bye.from().unwrap().tag(), ok.to().unwrap().tag());
    assert_eq!(log.lock().unwrap().stopped, vec!["rt-2".to_string()]);
}
