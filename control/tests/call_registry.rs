//! Offer/answer through the call registry against a running engine, with real UDP endpoints.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use control::call::crypto::{fresh_key, CryptoLine};
use control::call::{
    AnswerOptions, CallError, CallRegistry, LocalMedia, OfferOptions, RemoteMedia,
};
use control::metrics::ControlMetrics;
use relay::engine::{Engine, EngineConfig};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn registry(base: u16) -> CallRegistry {
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: base,
        port_max: base + 99,
        ..Default::default()
    })
    .unwrap();
    CallRegistry::new(Arc::new(e), Arc::new(ControlMetrics::default()), 100)
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn remote(sock: &UdpSocket, crypto: Vec<CryptoLine>) -> RemoteMedia {
    RemoteMedia {
        kind: "audio".into(),
        addr: Some(LO),
        port: sock.local_addr().unwrap().port(),
        rtcp_mux: true,
        srtp: !crypto.is_empty(),
        crypto,
        ..Default::default()
    }
}

fn line(tag: u32, suite: Suite) -> CryptoLine {
    CryptoLine {
        tag,
        suite,
        key: fresh_key(suite).unwrap(),
        extra_keys: vec![],
        params: vec![],
    }
}

fn ctx(l: &CryptoLine) -> SrtpContext {
    SrtpContext::new(Policy::new(l.suite, l.key.clone())).unwrap()
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

/// Sends `plain` from `from` (protecting with `tx` if any) to the relay port in `to_relay`,
/// receives at `at` and unprotects with `rx` if any.
fn relay_one(
    from: &UdpSocket,
    tx: Option<&mut SrtpContext>,
    to_relay: &LocalMedia,
    at: &UdpSocket,
    rx: Option<&mut SrtpContext>,
    seq: u16,
) {
    let plain = rtp(seq);
    let mut p = plain.clone();
    p.resize(plain.len() + 32, 0);
    let n = match tx {
        Some(c) => c.protect(&mut p, plain.len()).unwrap(),
        None => plain.len(),
    };
    from.send_to(&p[..n], SocketAddr::new(to_relay.addr, to_relay.port))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = at.recv_from(&mut buf).expect("relayed");
    let m = match rx {
        Some(c) => c
            .unprotect(&mut buf[..n])
            .expect("decrypts with the key the relay signalled"),
        None => n,
    };
    assert_eq!(&buf[..m], &plain[..]);
}

#[test]
fn sdes_both_sides_with_fresh_keys_per_leg() {
    let mut reg = registry(56000);
    let (a, b) = (endpoint(), endpoint());
    let a_lines = vec![
        line(1, Suite::AesCm128HmacSha1_80),
        line(2, Suite::AesCm128HmacSha1_32),
    ];
    let to_b = reg
        .offer(
            "c1",
            "ta",
            None,
            &[remote(&a, a_lines.clone())],
            &OfferOptions::default(),
        )
        .unwrap();
    assert_eq!(to_b.len(), 1);
    assert!(to_b[0].srtp);
    assert_eq!(
        to_b[0].crypto.iter().map(|c| c.suite).collect::<Vec<_>>(),
        vec![Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
    );
    for (ours, theirs) in to_b[0].crypto.iter().zip(&a_lines) {
        assert_ne!(
            ours.key.key(),
            theirs.key.key(),
            "A's key must never reach B"
        );
    }
    // B accepts tag 2 (the _32 suite) with its own key.
    let b_line = line(2, Suite::AesCm128HmacSha1_32);
    let to_a = reg
        .answer(
            "c1",
            "ta",
            "tb",
            &[remote(&b, vec![b_line.clone()])],
            &AnswerOptions::default(),
        )
        .unwrap();
    assert_eq!(to_a[0].crypto.len(), 1);
    let a_answer = &to_a[0].crypto[0];
    assert_eq!(
        (a_answer.tag, a_answer.suite),
        (2, Suite::AesCm128HmacSha1_32),
        "A gets the suite B chose"
    );
    assert_ne!(
        a_answer.key.key(),
        b_line.key.key(),
        "B's key must never reach A"
    );

    let relay_to_b = to_b[0].crypto.iter().find(|c| c.tag == 2).unwrap();
    let (mut a_tx, mut b_rx) = (ctx(&a_lines[1]), ctx(relay_to_b));
    for seq in 0..5 {
        relay_one(&a, Some(&mut a_tx), &to_a[0], &b, Some(&mut b_rx), seq);
    }
    let (mut b_tx, mut a_rx) = (ctx(&b_line), ctx(a_answer));
    for seq in 0..5 {
        relay_one(&b, Some(&mut b_tx), &to_b[0], &a, Some(&mut a_rx), seq);
    }
    reg.delete("c1", Duration::ZERO).unwrap();
    assert!(reg.is_empty());
    assert!(matches!(
        reg.delete("c1", Duration::ZERO),
        Err(CallError::UnknownCall)
    ));
}

#[test]
fn rtp_caller_reaches_srtp_callee() {
    let mut reg = registry(56100);
    let (a, b) = (endpoint(), endpoint());
    let opts = OfferOptions {
        srtp_toward_answerer: Some(true),
        ..Default::default()
    };
    let to_b = reg
        .offer("c2", "ta", None, &[remote(&a, vec![])], &opts)
        .unwrap();
    assert!(to_b[0].srtp);
    assert_eq!(
        to_b[0].crypto[0].suite,
        Suite::AeadAes256Gcm,
        "strongest first when the caller gave no suites"
    );
    let b_line = line(to_b[0].crypto[6].tag, Suite::AesCm128HmacSha1_80);
    assert_eq!(to_b[0].crypto[6].suite, Suite::AesCm128HmacSha1_80);
    let to_a = reg
        .answer(
            "c2",
            "ta",
            "tb",
            &[remote(&b, vec![b_line.clone()])],
            &AnswerOptions::default(),
        )
        .unwrap();
    assert!(!to_a[0].srtp && to_a[0].crypto.is_empty());
    let mut b_rx = ctx(&to_b[0].crypto[6]);
    relay_one(&a, None, &to_a[0], &b, Some(&mut b_rx), 1);
    let mut b_tx = ctx(&b_line);
    relay_one(&b, Some(&mut b_tx), &to_b[0], &a, None, 1);
}

#[test]
fn reoffer_with_same_keys_keeps_media_and_new_address_moves_it() {
    let mut reg = registry(56200);
    let (a, b, a2) = (endpoint(), endpoint(), endpoint());
    let a_line = line(1, Suite::AeadAes128Gcm);
    let to_b = reg
        .offer(
            "c3",
            "ta",
            None,
            &[remote(&a, vec![a_line.clone()])],
            &OfferOptions::default(),
        )
        .unwrap();
    let b_line = line(1, Suite::AeadAes128Gcm);
    let to_a = reg
        .answer(
            "c3",
            "ta",
            "tb",
            &[remote(&b, vec![b_line.clone()])],
            &AnswerOptions::default(),
        )
        .unwrap();
    let (mut b_tx, mut a_rx) = (ctx(&b_line), ctx(&to_a[0].crypto[0]));
    relay_one(&b, Some(&mut b_tx), &to_b[0], &a, Some(&mut a_rx), 1);
    // Re-INVITE from A with the same key but a new address; B re-answers the same.
    let to_b2 = reg
        .offer(
            "c3",
            "ta",
            Some("tb"),
            &[remote(&a2, vec![a_line.clone()])],
            &OfferOptions::default(),
        )
        .unwrap();
    assert_eq!(to_b2[0].port, to_b[0].port, "ports stay");
    assert_eq!(
        to_b2[0].crypto[0].key.key(),
        to_b[0].crypto[0].key.key(),
        "keys toward B stay"
    );
    let to_a2 = reg
        .answer(
            "c3",
            "ta",
            "tb",
            &[remote(&b, vec![b_line.clone()])],
            &AnswerOptions::default(),
        )
        .unwrap();
    assert_eq!(
        to_a2[0].crypto[0].key.key(),
        to_a[0].crypto[0].key.key(),
        "keys toward A stay"
    );
    // Media continues with the same contexts, now to A's new address.
    let mut a2_rx = ctx(&to_a[0].crypto[0]);
    relay_one(&b, Some(&mut b_tx), &to_b[0], &a2, Some(&mut a2_rx), 2);
}

#[test]
fn bad_answers_and_limits() {
    let mut reg = registry(56300);
    let a = endpoint();
    assert!(matches!(
        reg.offer("c4", "ta", None, &[], &OfferOptions::default()),
        Err(CallError::NoMedia)
    ));
    assert!(reg.is_empty(), "nothing left behind");
    reg.offer(
        "c4",
        "ta",
        None,
        &[remote(&a, vec![line(1, Suite::AesCm128HmacSha1_80)])],
        &OfferOptions::default(),
    )
    .unwrap();
    let wrong = vec![remote(&a, vec![line(5, Suite::AesCm128HmacSha1_80)])];
    assert!(matches!(
        reg.answer("c4", "ta", "tb", &wrong, &AnswerOptions::default()),
        Err(CallError::UnknownCryptoTag { tag: 5 })
    ));
    assert!(matches!(
        reg.answer("nope", "ta", "tb", &wrong, &AnswerOptions::default()),
        Err(CallError::UnknownCall)
    ));
    assert!(matches!(
        reg.answer("c4", "tx", "tb", &wrong, &AnswerOptions::default()),
        Err(CallError::UnknownTag)
    ));
    let _ = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0; 16], &[0; 14]);
}

#[test]
fn forked_offer_only_the_last_answered_branch_gets_media() {
    let mut reg = registry(56400);
    let (a, b1, b2) = (endpoint(), endpoint(), endpoint());
    let a_line = line(1, Suite::AesCm128HmacSha1_80);
    let to_b = reg
        .offer(
            "c5",
            "ta",
            None,
            &[remote(&a, vec![a_line.clone()])],
            &OfferOptions::default(),
        )
        .unwrap();
    // Branch 1 answers first (183 early media), then branch 2 (200 OK) wins the call.
    let b1_line = line(1, Suite::AesCm128HmacSha1_80);
    reg.answer(
        "c5",
        "ta",
        "tb1",
        &[remote(&b1, vec![b1_line])],
        &AnswerOptions::default(),
    )
    .unwrap();
    let b2_line = line(1, Suite::AesCm128HmacSha1_80);
    let to_a = reg
        .answer(
            "c5",
            "ta",
            "tb2",
            &[remote(&b2, vec![b2_line.clone()])],
            &AnswerOptions::default(),
        )
        .unwrap();
    let relay_to_b = &to_b[0].crypto[0];
    let mut a_tx = ctx(&a_line);
    let mut b2_rx = ctx(relay_to_b);
    relay_one(&a, Some(&mut a_tx), &to_a[0], &b2, Some(&mut b2_rx), 1);
    b1.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        b1.recv_from(&mut buf).is_err(),
        "the losing branch received media"
    );
    let call = reg.call("c5").unwrap();
    assert!(call.monologue("tb2").is_some() && call.monologue("tb1").is_none());
}
