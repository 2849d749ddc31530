//! Taps and flow (re-)installs: a tap attached to a port before its flow is installed sees
//! the flow's first packet; a re-install (re-keying) keeps the port's taps; removing the
//! flow drops them; a tap detached before the install never sees anything.

mod li_common;

use std::time::{Duration, Instant};

use li_common::*;
use relay::engine::{tap, Command, FlowSpec, TapReceiver, TapWhat};

/// Waits up to a second for one record; its bytes.
fn next(rx: &TapReceiver) -> Option<Vec<u8>> {
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        if let Some(r) = rx.try_recv() {
            let b = r.bytes().to_vec();
            rx.recycle(r);
            return Some(b);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

#[test]
fn taps_attached_before_install_and_kept_across_reinstall() {
    let engine = engine(9);
    let (pa, pb) = port_pair(&engine);
    let (a, b) = (udp(), udp());
    // Taps before any flow: one kept, one detached again before the install.
    let (t1, r1) = tap(1, TapWhat::Plaintext, 0, 16);
    let (t2, r2) = tap(2, TapWhat::Plaintext, 0, 16);
    engine.apply(pa, Command::AttachTap(pa, t1)).unwrap();
    engine.apply(pa, Command::AttachTap(pa, t2)).unwrap();
    engine.apply(pa, Command::DetachTap(pa, 2)).unwrap();
    engine.install(pa, FlowSpec::plain(pb)).unwrap();
    engine.install(pb, FlowSpec::plain(pa)).unwrap();
    engine.set_peer(pb, Some(b.local_addr().unwrap())).unwrap();
    let send = |seq: u16| {
        let p = rtp(seq, 7, &[0x55; 160]);
        a.send_to(&p, at(pa)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &p[..], "relayed unchanged");
        p
    };
    let first = send(1);
    assert_eq!(
        next(&r1).as_deref(),
        Some(&first[..]),
        "first packet tapped"
    );
    assert_eq!(next(&r2), None, "detached before install: nothing");
    // Re-install (as a re-INVITE re-keying does): the tap stays.
    engine.install(pa, FlowSpec::plain(pb)).unwrap();
    let second = send(2);
    assert_eq!(
        next(&r1).as_deref(),
        Some(&second[..]),
        "tap kept across re-install"
    );
    // Removing the flow drops its taps; a new flow starts untapped.
    engine.apply(pa, Command::Remove(pa)).unwrap();
    engine.install(pa, FlowSpec::plain(pb)).unwrap();
    send(3);
    assert_eq!(next(&r1), None, "no tap after the flow was removed");
}
