//! A scripted SIP client against the sans-IO proxy, with media anchored in a real relay
//! engine: registration (with and without digest), a call with fresh keys per leg and
//! SRTP that really flows, re-INVITE with new keys, CANCEL, 486 Busy, forking to two
//! contacts (only the answering one gets media), the SRTP→RTP retry on 488, timeouts,
//! retransmissions on both sides, and bad input. Nothing leaks: transactions, call states
//! and relay calls are all gone at the end of each scenario.

mod sip_common;

use std::time::Duration;

use control::call::crypto::fresh_key;
use control::sip::digest::Algorithm;
use relay::srtp::Suite;
use sip_common::net::*;
use sip_common::{msg, parsed, udp};

#[test]
fn call_with_fresh_keys_reinvite_and_bye() {
    let mut net = Net::new(14000, &[]);
    net.register("bob", BOB1);
    let (a_media, b_media) = (media_socket(), media_socket());
    let a_key = fresh_key(Suite::AesCm128HmacSha1_80).unwrap();
    let b_key = fresh_key(Suite::AesCm128HmacSha1_80).unwrap();
    let offer = sdp(a_media.local_addr().unwrap().port(), Some(&a_key));
    let out = net.send(ALICE, &invite("call-1", "z9hG4bKa1", 1, None, &offer));
    assert_eq!(only(&out, ALICE).code(), Some(100));
    let inv = only(&out, BOB1).clone();
    assert_eq!(inv.request_uri(), Some("sip:bob@127.0.0.1:5072"));
    assert!(inv.get("record-route").is_some());
    assert_eq!(inv.max_forwards().unwrap(), Some(69));
    let (relay_b, to_b) = relay_side(&inv);
    let to_b = to_b.expect("SRTP toward bob");
    assert_ne!(
        to_b.key.to_inline(),
        a_key.to_inline(),
        "alice's key never reaches bob"
    );

    // Retransmitted INVITE: answered with the last response, not forwarded again.
    let again = net.send(ALICE, &invite("call-1", "z9hG4bKa1", 1, None, &offer));
    assert_eq!(only(&again, ALICE).code(), Some(100));
    assert!(to(&again, BOB1).is_empty());

    let answer = sdp(b_media.local_addr().unwrap().port(), Some(&b_key));
    let out = net.reply(BOB1, &inv, 180, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(180));
    let out = net.reply(BOB1, &inv, 200, "btag", Some(&answer));
    let ok = only(&out, ALICE).clone();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.top_via().unwrap().branch(), Some("z9hG4bKa1"));
    let (relay_a, to_a) = relay_side(&ok);
    let to_a = to_a.expect("SRTP toward alice");
    assert_ne!(
        to_a.key.to_inline(),
        b_key.to_inline(),
        "bob's key never reaches alice"
    );
    // A retransmitted 200 from bob goes upstream again.
    let out = net.reply(BOB1, &inv, 200, "btag", Some(&answer));
    assert_eq!(only(&out, ALICE).code(), Some(200));

    // ACK end to end, then media both ways with four different keys.
    let out = net.send(ALICE, &in_dialog("ACK", "call-1", "z9hG4bKa2", 1, "btag"));
    assert_eq!(only(&out, BOB1).method(), Some("ACK"));
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut a_tx, mut a_rx) = (ctx(suite, &a_key), ctx(suite, &to_a.key));
    let (mut b_tx, mut b_rx) = (ctx(suite, &b_key), ctx(suite, &to_b.key));
    through(&a_media, &mut a_tx, relay_a, &b_media, &mut b_rx, 1);
    through(&b_media, &mut b_tx, relay_b, &a_media, &mut a_rx, 1);
    let meta = net
        .registry
        .lock()
        .unwrap()
        .call("call-1")
        .unwrap()
        .metadata
        .clone()
        .unwrap();
    assert!(
        meta.contains("+4930123") && meta.contains("sip:bob@127.0.0.1"),
        "{meta}"
    );

    // re-INVITE from alice with a new key: the relay decrypts with it from then on.
    let a_key2 = fresh_key(suite).unwrap();
    let reoffer = sdp(a_media.local_addr().unwrap().port(), Some(&a_key2));
    let out = net.send(
        ALICE,
        &invite("call-1", "z9hG4bKa3", 2, Some("btag"), &reoffer),
    );
    let reinv = find(&out, BOB1, |m| m.method() == Some("INVITE")).clone();
    let (relay_b2, to_b2) = relay_side(&reinv);
    assert_eq!(relay_b2, relay_b);
    assert!(to_b2.is_some());
    let out = net.reply(BOB1, &reinv, 200, "btag", Some(&answer));
    let ok2 = only(&out, ALICE).clone();
    let (_, to_a2) = relay_side(&ok2);
    let mut a_tx2 = ctx(suite, &a_key2);
    let mut a_rx2 = ctx(suite, &to_a2.unwrap().key);
    let mut b_rx2 = ctx(suite, &to_b2.unwrap().key);
    through(&a_media, &mut a_tx2, relay_a, &b_media, &mut b_rx2, 2);
    through(&b_media, &mut b_tx, relay_b, &a_media, &mut a_rx2, 2);
    net.send(ALICE, &in_dialog("ACK", "call-1", "z9hG4bKa4", 2, "btag"));

    // BYE frees the media at once; its 200 goes back to alice.
    let out = net.send(ALICE, &in_dialog("BYE", "call-1", "z9hG4bKa5", 3, "btag"));
    let bye = only(&out, BOB1).clone();
    assert_eq!(net.calls(), 0);
    let out = net.reply(BOB1, &bye, 200, "btag", None);
    assert_eq!(only(&out, ALICE).code(), Some(200));
    net.advance(Duration::from_secs(40));
    assert_eq!(
        net.proxy.sizes(),
        (0, 0, 0),
        "no transaction or call state left"
    );
}

#[test]
fn cancel_busy_and_timeout_free_the_media() {
    let mut net = Net::new(14100, &[]);
    net.register("bob", BOB1);
    let key = fresh_key(Suite::AesCm128HmacSha1_80).unwrap();
    let offer = sdp(40000, Some(&key));

    // CANCEL while ringing.
    let out = net.send(ALICE, &invite("c-cancel", "z9hG4bKc1", 1, None, &offer));
    let inv = only(&out, BOB1).clone();
    net.reply(BOB1, &inv, 180, "b1", None);
    assert_eq!(net.calls(), 1);
    let out = net.send(ALICE, &cancel("c-cancel", "z9hG4bKc1"));
    assert_eq!(only(&out, ALICE).code(), Some(200));
    let c = only(&out, BOB1);
    assert_eq!(c.method(), Some("CANCEL"));
    assert_eq!(
        c.top_via().unwrap().branch(),
        inv.top_via().unwrap().branch()
    );
    let out = net.reply(BOB1, &inv, 487, "b1", None);
    assert_eq!(
        find(&out, BOB1, |m| m.method() == Some("ACK"))
            .cseq()
            .unwrap()
            .method,
        "ACK"
    );
    assert_eq!(only(&out, ALICE).code(), Some(487));
    assert_eq!(net.calls(), 0);
    // alice's ACK for the 487 ends at the proxy.
    let ack = in_dialog("ACK", "c-cancel", "z9hG4bKc1", 1, "b1")
        .replace("Route: <sip:127.0.0.1:5060;lr>\n", "");
    assert!(net.send(ALICE, &ack).is_empty());

    // 486 Busy.
    let out = net.send(ALICE, &invite("c-busy", "z9hG4bKb1", 1, None, &offer));
    let inv = only(&out, BOB1).clone();
    let out = net.reply(BOB1, &inv, 486, "b2", None);
    assert_eq!(only(&out, ALICE).code(), Some(486));
    assert_eq!(net.calls(), 0);
    // The 486 is retransmitted to alice over UDP until she ACKs.
    let out = net.advance(Duration::from_millis(600));
    assert_eq!(only(&out, ALICE).code(), Some(486));

    // No answer at all: retransmissions to bob, then 408.
    let out = net.send(ALICE, &invite("c-silent", "z9hG4bKs1", 1, None, &offer));
    let first = only(&out, BOB1).to_bytes();
    let out = net.advance(Duration::from_millis(600));
    assert_eq!(
        only(&out, BOB1).to_bytes(),
        first,
        "INVITE retransmitted (Timer A)"
    );
    assert_eq!(net.calls(), 1);
    let mut got408 = false;
    for _ in 0..40 {
        let out = net.advance(Duration::from_secs(1));
        got408 |= to(&out, ALICE).iter().any(|m| m.code() == Some(408));
    }
    assert!(got408, "Timer B gives alice a 408");
    assert_eq!(net.calls(), 0);
    net.advance(Duration::from_secs(40));
    assert_eq!(net.proxy.sizes(), (0, 0, 0));
    let c = net.proxy.counters();
    assert!(c.timeouts >= 1);
}

#[test]
fn forking_only_the_answering_contact_gets_media() {
    let mut net = Net::new(14200, &[]);
    net.register("bob", BOB1);
    let out = net.send(BOB2, &register("bob", BOB2, 1, ""));
    assert_eq!(only(&out, BOB2).get_all("contact").unwrap().len(), 2);
    let (a_media, b1_media, b2_media) = (media_socket(), media_socket(), media_socket());
    let suite = Suite::AesCm128HmacSha1_80;
    let a_key = fresh_key(suite).unwrap();
    let offer = sdp(a_media.local_addr().unwrap().port(), Some(&a_key));
    let out = net.send(ALICE, &invite("c-fork", "z9hG4bKf1", 1, None, &offer));
    let inv1 = only(&out, BOB1).clone();
    let inv2 = only(&out, BOB2).clone();
    assert_ne!(
        inv1.top_via().unwrap().branch(),
        inv2.top_via().unwrap().branch()
    );
    net.reply(BOB1, &inv1, 180, "t1", None);
    net.reply(BOB2, &inv2, 180, "t2", None);
    let b2_key = fresh_key(suite).unwrap();
    let answer = sdp(b2_media.local_addr().unwrap().port(), Some(&b2_key));
    let out = net.reply(BOB2, &inv2, 200, "t2", Some(&answer));
    let ok = only(&out, ALICE).clone();
    assert_eq!(ok.to().unwrap().tag(), Some("t2"));
    // The losing branch is cancelled; its 487 is not relayed.
    assert_eq!(only(&out, BOB1).method(), Some("CANCEL"));
    let out = net.reply(BOB1, &inv1, 487, "t1", None);
    assert!(to(&out, ALICE).is_empty());
    assert_eq!(only(&out, BOB1).method(), Some("ACK"));

    let (relay_a, to_a) = relay_side(&ok);
    let (_, to_b) = relay_side(&inv2);
    let mut a_tx = ctx(suite, &a_key);
    let mut b2_rx = ctx(suite, &to_b.unwrap().key);
    through(&a_media, &mut a_tx, relay_a, &b2_media, &mut b2_rx, 1);
    let mut buf = [0u8; 2048];
    assert!(
        b1_media.recv_from(&mut buf).is_err(),
        "the losing contact gets no media"
    );
    let mut b2_tx = ctx(suite, &b2_key);
    let mut a_rx = ctx(suite, &to_a.unwrap().key);
    let (relay_b, _) = relay_side(&inv2);
    through(&b2_media, &mut b2_tx, relay_b, &a_media, &mut a_rx, 1);
}

#[test]
fn srtp_refused_with_488_is_retried_with_plain_rtp() {
    let mut net = Net::new(14300, &[]);
    net.register("bob", BOB1);
    let offer = sdp(40000, None);
    let out = net.send(ALICE, &invite("c-488", "z9hG4bKr1", 1, None, &offer));
    let inv = only(&out, BOB1).clone();
    assert!(
        String::from_utf8_lossy(&inv.body).contains("RTP/SAVP"),
        "SRTP offered to the callee by default"
    );
    let out = net.reply(BOB1, &inv, 488, "x", None);
    assert_eq!(
        find(&out, BOB1, |m| m.method() == Some("ACK")).method(),
        Some("ACK")
    );
    let retry = find(&out, BOB1, |m| m.method() == Some("INVITE"));
    let text = String::from_utf8_lossy(&retry.body).to_string();
    assert!(
        text.contains("RTP/AVP") && !text.contains("a=crypto"),
        "{text}"
    );
    assert_eq!(
        retry.cseq().unwrap().seq,
        2,
        "a new CSeq, or the callee sees a merged request"
    );
    assert!(to(&out, ALICE).is_empty());
    let retry = retry.clone();
    let out = net.reply(BOB1, &retry, 200, "y", Some(&sdp(40010, None)));
    let ok = only(&out, ALICE);
    assert_eq!(ok.cseq().unwrap().seq, 1, "alice sees her own CSeq");
    assert!(String::from_utf8_lossy(&ok.body).contains("RTP/AVP"));
    // A second 488 after the retry is final.
    let out = net.send(ALICE, &invite("c-4882", "z9hG4bKr2", 1, None, &offer));
    let inv = only(&out, BOB1).clone();
    let out = net.reply(BOB1, &inv, 488, "x", None);
    let retry = find(&out, BOB1, |m| m.method() == Some("INVITE")).clone();
    let out = net.reply(BOB1, &retry, 488, "x", None);
    assert_eq!(only(&out, ALICE).code(), Some(488));
    assert_eq!(net.proxy.counters().plain_retries, 2);
}

#[test]
fn digest_registration_md5_and_sha256() {
    let mut net = Net::new(14400, &[("alice", "secret")]);
    // No credentials: challenged with SHA-256 first, then MD5.
    let out = net.send(ALICE, &register("alice", ALICE, 1, ""));
    let ch = only(&out, ALICE);
    assert_eq!(ch.code(), Some(401));
    let challenges: Vec<&str> = ch
        .headers
        .iter()
        .filter(|h| h.name == "WWW-Authenticate")
        .map(|h| h.value.as_str())
        .collect();
    assert!(challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5"));
    let nonce = challenges[0]
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    for (i, alg) in [Algorithm::Md5, Algorithm::Sha256].into_iter().enumerate() {
        let creds = |pw: &str| {
            let ha1 = alg.hex(&format!("alice:srtpgate:{pw}"));
            let ha2 = alg.hex("REGISTER:sip:127.0.0.1");
            let resp = alg.hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
            format!(
                "Authorization: Digest username=\"alice\", realm=\"srtpgate\", nonce=\"{nonce}\", \
                 uri=\"sip:127.0.0.1\", response=\"{resp}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"c0ffee\"\n",
                alg.name()
            )
        };
        let cseq = 10 * (i as u32 + 1);
        let out = net.send(ALICE, &register("alice", ALICE, cseq, &creds("wrong")));
        assert_eq!(
            only(&out, ALICE).code(),
            Some(401),
            "wrong password is challenged again"
        );
        let out = net.send(ALICE, &register("alice", ALICE, cseq + 1, &creds("secret")));
        assert_eq!(only(&out, ALICE).code(), Some(200), "{}", alg.name());
    }
    assert_eq!(net.proxy.registrar().lookup("alice", net.now).len(), 1);
    assert!(net.proxy.counters().auth_failures >= 2);
    // Calls need credentials too (407), unlike with no users configured.
    let out = net.send(
        ALICE,
        &invite("c-auth", "z9hG4bKi1", 1, None, &sdp(40000, None)),
    );
    assert_eq!(only(&out, ALICE).code(), Some(407));
    // A forged in-dialog request from a source that is neither registered nor part of a
    // call this proxy set up is not relayed anywhere.
    let forged =
        in_dialog("BYE", "c-forged", "z9hG4bKfg1", 1, "x").replace(ALICE, "127.0.0.1:5999");
    let out = net.send("127.0.0.1:5999", &forged);
    assert_eq!(only(&out, "127.0.0.1:5999").code(), Some(481));
    assert_eq!(out.len(), 1);
    // Un-register.
    let unreg = register("alice", ALICE, 99, "").replace("Expires: 600", "Expires: 0");
    assert_eq!(only(&net.send(ALICE, &unreg), ALICE).code(), Some(401));
}

#[test]
fn bad_input_gets_precise_errors() {
    let mut net = Net::new(14500, &[]);
    net.register("bob", BOB1);
    // Not from loopback without users: refused.
    let out = parsed(&net.proxy.handle(
        &msg(&register("eve", "192.0.2.9:5060", 1, "")),
        udp("192.0.2.9:5060"),
        net.now,
    ));
    assert_eq!(out[0].1.code(), Some(403));
    // A DTLS-SRTP offer without a usable fingerprint: 488 with a reason.
    let dtls =
        sdp(40000, None).replace("RTP/AVP", "UDP/TLS/RTP/SAVP") + "a=fingerprint:sha-256 AA:BB\r\n";
    let out = net.send(ALICE, &invite("c-dtls", "z9hG4bKd1", 1, None, &dtls));
    let r = only(&out, ALICE);
    assert_eq!(r.code(), Some(488));
    assert!(
        r.get("warning").unwrap().contains("DTLS"),
        "{:?}",
        r.get("warning")
    );
    assert_eq!(net.calls(), 0);
    // A callee answering with SDP the relay cannot take: the caller gets 500, the
    // callee's dialog is closed (ACK, BYE), the media is freed.
    let out = net.send(
        ALICE,
        &invite("c-badans", "z9hG4bKba1", 1, None, &sdp(40000, None)),
    );
    let inv = only(&out, BOB1).clone();
    let out = net.reply(BOB1, &inv, 200, "bt", Some(&dtls));
    assert_eq!(only(&out, ALICE).code(), Some(500));
    let methods: Vec<_> = to(&out, BOB1).iter().filter_map(|m| m.method()).collect();
    assert_eq!(methods, ["ACK", "BYE"]);
    assert_eq!(net.calls(), 0);
    // Unknown user, Max-Forwards 0, a loop.
    let out = net.send(
        ALICE,
        &invite("c-nobody", "z9hG4bKn1", 1, None, &sdp(40000, None))
            .replace("sip:bob@127.0.0.1 SIP", "sip:nobody@127.0.0.1 SIP"),
    );
    assert_eq!(only(&out, ALICE).code(), Some(404));
    let out = net.send(
        ALICE,
        &invite("c-mf", "z9hG4bKm1", 1, None, &sdp(40000, None))
            .replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(only(&out, ALICE).code(), Some(483));
    let out = net.send(
        ALICE,
        &invite("c-loop", "z9hG4bKl1", 1, None, &sdp(40000, None)),
    );
    let fwd = only(&out, BOB1).clone();
    let mut looped = fwd.clone();
    looped.start = control::sip::StartLine::Request {
        method: "INVITE".into(),
        uri: "sip:bob@127.0.0.1".into(),
    };
    looped.push_front("Via", "SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bKloop");
    let out = net.send_bytes(BOB1, &looped.to_bytes());
    assert_eq!(only(&out, BOB1).code(), Some(482));
    // REGISTER flood from one source: rate limited with 503.
    let mut limited = 0;
    for i in 0..100 {
        let out = net.send(
            BOB2,
            &register("bob", BOB2, i + 2, "").replace("z9hG4bKreg", &format!("z9hG4bKflood{i}x")),
        );
        limited += usize::from(only(&out, BOB2).code() == Some(503));
    }
    assert!(limited > 50, "{limited}");
    assert!(net.proxy.counters().rate_limited > 50);
    // Garbage never panics and is counted.
    for junk in [
        &b"\x00\x01\x02"[..],
        b"INVITE sip:x SIP/2.0\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
    ] {
        net.send_bytes(ALICE, junk);
    }
    assert!(net.proxy.counters().malformed >= 3);
}
