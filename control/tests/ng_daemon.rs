//! The daemon driven over its ng socket with a bencode client, as Kamailio drives it, with
//! SRTP media through the relay between two endpoints.

use std::time::Duration;

use control::daemon::Daemon;
use control::ng::bencode::{decode, Value};
use relay::srtp::{MasterKey, Suite};

fn start(port_min: u16, max_calls: usize) -> Daemon {
    let mut c = daemon_config(port_min, 100);
    c.ng.max_calls = max_calls;
    Daemon::start(&c).unwrap()
}

mod ngkit;
use ngkit::*;

mod kit;
use kit::daemon_config;

#[test]
fn sdes_call_over_ng_with_media_query_and_delete() {
    let d = start(57000, 100);
    let mut c = Client::new(&d);
    assert_eq!(
        s(&c.cmd(Value::dict().with("command", "ping")), "result"),
        "pong"
    );

    let (a, b) = (endpoint(), endpoint());
    let suite = Suite::AesCm128HmacSha1_80;
    let a_key = MasterKey::new(suite, &[1; 16], &[2; 14]).unwrap();
    let b_key = MasterKey::new(suite, &[3; 16], &[4; 14]).unwrap();
    let offer_req = offer(
        "call-1",
        "tag-a",
        &sdp(
            a.local_addr().unwrap().port(),
            Some(("1 AES_CM_128_HMAC_SHA1_80", &a_key)),
        ),
        &[],
    );
    let (cookie, r) = c.send(offer_req.clone());
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let to_b = s(&r, "sdp");
    assert!(
        !to_b.contains(&a_key.to_inline()),
        "A's key leaked toward B"
    );
    let (relay_for_b, relay_key_b) = relay_side(&to_b);
    let (_, relay_key_b) = relay_key_b.expect("SRTP toward B");

    // A retransmission (same cookie, same datagram) gets the same bytes and no second call.
    let mut dgram = format!("{cookie} ").into_bytes();
    dgram.extend_from_slice(&offer_req.encode());
    let again = c.raw(&dgram);
    let again = decode(&again[again.iter().position(|x| *x == b' ').unwrap() + 1..]).unwrap();
    assert_eq!(s(&again, "sdp"), to_b);
    assert_eq!(
        d.metrics()
            .calls_created
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    let r = c.cmd(answer(
        "call-1",
        "tag-a",
        "tag-b",
        &sdp(
            b.local_addr().unwrap().port(),
            Some(("1 AES_CM_128_HMAC_SHA1_80", &b_key)),
        ),
    ));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let to_a = s(&r, "sdp");
    assert!(
        !to_a.contains(&b_key.to_inline()),
        "B's key leaked toward A"
    );
    let (relay_for_a, relay_key_a) = relay_side(&to_a);
    let (_, relay_key_a) = relay_key_a.expect("SRTP toward A");
    assert_ne!(relay_key_a.key(), relay_key_b.key());

    // Media both ways.
    let mut buf = [0u8; 2048];
    let (mut a_tx, mut b_rx) = (ctx(&a_key), ctx(&relay_key_b));
    let (mut b_tx, mut a_rx) = (ctx(&b_key), ctx(&relay_key_a));
    for seq in 0..10u16 {
        let p = protect(&mut a_tx, seq);
        a.send_to(&p, relay_for_a).unwrap();
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(b_rx.unprotect(&mut buf[..n]).unwrap(), 172);
        let p = protect(&mut b_tx, seq);
        b.send_to(&p, relay_for_b).unwrap();
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(a_rx.unprotect(&mut buf[..n]).unwrap(), 172);
    }

    let q = c.cmd(
        Value::dict()
            .with("command", "query")
            .with("call-id", "call-1"),
    );
    assert_eq!(s(&q, "result"), "ok", "{q:?}");
    let rtp = q.get(b"totals").and_then(|t| t.get(b"RTP")).unwrap();
    assert_eq!(
        rtp.get(b"packets").and_then(|p| p.as_int()),
        Some(20),
        "{q:?}"
    );
    let l = c.cmd(Value::dict().with("command", "list"));
    assert_eq!(
        l.get(b"calls").and_then(|c| c.as_list()).map(|v| v.len()),
        Some(1)
    );
    let st = c.cmd(Value::dict().with("command", "statistics"));
    assert_eq!(s(&st, "result"), "ok", "{st:?}");

    let r = c.cmd(
        Value::dict()
            .with("command", "delete")
            .with("call-id", "call-1"),
    );
    assert_eq!(s(&r, "result"), "ok");
    let q = c.cmd(
        Value::dict()
            .with("command", "query")
            .with("call-id", "call-1"),
    );
    assert_eq!(s(&q, "result"), "error");
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn rtp_offer_bridged_to_srtp_with_transport_protocol() {
    let d = start(57100, 100);
    let mut c = Client::new(&d);
    let r =
        c.cmd(offer("call-2", "a", &sdp(5000, None), &[]).with("transport-protocol", "RTP/SAVP"));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let to_b = s(&r, "sdp");
    assert!(
        to_b.contains("RTP/SAVP") && to_b.contains("a=crypto:1 AEAD_AES_256_GCM inline:"),
        "{to_b}"
    );
    let b_key = MasterKey::new(Suite::AesCm128HmacSha1_80, &[5; 16], &[6; 14]).unwrap();
    let r = c.cmd(answer(
        "call-2",
        "a",
        "b",
        &sdp(5002, Some(("7 AES_CM_128_HMAC_SHA1_80", &b_key))),
    ));
    assert_eq!(s(&r, "result"), "ok", "{r:?}");
    let to_a = s(&r, "sdp");
    assert!(
        to_a.contains("RTP/AVP") && !to_a.contains("a=crypto"),
        "{to_a}"
    );
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn bad_requests_get_precise_errors_and_leave_nothing_behind() {
    let d = start(57200, 1);
    let mut c = Client::new(&d);
    let err = |v: &Value| (s(v, "result"), s(v, "error-reason"));
    let r = c.raw(b"x1 d7:command5:offer");
    assert!(
        String::from_utf8_lossy(&r).starts_with("x1 d"),
        "answered under the cookie"
    );
    let r = c.cmd(Value::dict().with("command", "dance"));
    assert_eq!(err(&r).0, "error");
    assert!(err(&r).1.contains("dance"), "{r:?}");
    let r = c.cmd(
        Value::dict()
            .with("command", "offer")
            .with("sdp", sdp(1, None))
            .with("from-tag", "a"),
    );
    assert!(err(&r).1.contains("call-id"), "{r:?}");
    let no_media = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let r = c.cmd(offer("c", "a", no_media, &[]));
    assert!(err(&r).1.contains("no media"), "{r:?}");
    let bad_key = sdp(5000, None).replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n";
    let r = c.cmd(offer("c", "a", &bad_key, &[]));
    assert_eq!(err(&r).0, "error");
    assert!(err(&r).1.contains("crypto"), "{r:?}");
    let r = c.cmd(answer("nope", "a", "b", &sdp(5000, None)));
    assert_eq!(err(&r).0, "error");
    // Nothing was created by all that.
    let l = c.cmd(Value::dict().with("command", "list"));
    assert_eq!(
        l.get(b"calls").and_then(|c| c.as_list()).map(|v| v.len()),
        Some(0),
        "{l:?}"
    );
    // The load limit: one call allowed.
    assert_eq!(
        s(&c.cmd(offer("c1", "a", &sdp(5000, None), &[])), "result"),
        "ok"
    );
    let r = c.cmd(offer("c2", "a", &sdp(5002, None), &[]));
    assert_eq!(
        err(&r),
        ("error".into(), "Parallel session limit reached".into())
    );
    let r = c.cmd(
        offer("c2", "a", &sdp(5002, None), &[])
            .with("supports", Value::List(vec![Value::string("load limit")])),
    );
    assert_eq!(s(&r, "result"), "load limit", "{r:?}");
    d.drain_and_stop(Duration::ZERO);
}
