//! X3 delivery through the real engine: every relayed packet of a tapped call reaches the
//! agency as a well-formed PDU; an agency that is down, slow, silent or rude never changes
//! the media, costs only counted drops, and delivery resumes when it is back.

mod li_common;

use std::time::Duration;

use li_common::*;
use relay::li::x3::{Direction, PduType};
use relay::li::{DeliveryConfig, DestinationSpec, Interception, X3Delivery};

fn config() -> DeliveryConfig {
    DeliveryConfig {
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..Default::default()
    }
}

fn interception() -> Vec<Interception> {
    vec![Interception {
        xid: xid(),
        destinations: vec![did()],
    }]
}

#[test]
fn every_relayed_packet_is_delivered_with_its_fields() {
    let call = Call::new(0);
    let agency = Agency::start("127.0.0.1:0");
    let d = X3Delivery::start(config()).unwrap();
    d.add_destination(did(), DestinationSpec::tcp(agency.addr))
        .unwrap();
    let cid = d.attach(7, interception(), call.taps(1024)).unwrap();
    assert_ne!(cid, 0);
    for seq in 0..40u16 {
        call.a_to_b(&rtp(seq, 0xa, &[seq as u8; 160]));
        call.b_to_a(&rtp(1000 + seq, 0xb, &[0x55; 160]));
    }
    let got = agency.wait_x3(80);
    call.untap();
    d.detach(7).unwrap();
    assert_eq!(got.len(), 80);
    // Sequence numbers count PDUs on the connection; each direction keeps its order.
    let seqs: Vec<_> = got.iter().map(|g| g.seq).collect();
    assert_eq!(seqs, (0..80).map(Some).collect::<Vec<_>>());
    for g in &got {
        assert_eq!(g.header.xid, xid());
        assert_eq!(g.header.correlation_id, cid);
        assert_eq!(g.header.payload_format, 8);
        assert!(g.ts.is_some());
    }
    let of = |dir| -> Vec<Vec<u8>> {
        got.iter()
            .filter(|g| g.header.direction == dir)
            .map(|g| g.payload.clone())
            .collect()
    };
    let from: Vec<_> = (0..40u16).map(|s| rtp(s, 0xa, &[s as u8; 160])).collect();
    let to: Vec<_> = (0..40u16)
        .map(|s| rtp(1000 + s, 0xb, &[0x55; 160]))
        .collect();
    assert_eq!(of(Direction::FromTarget), from);
    assert_eq!(of(Direction::ToTarget), to);
    let (c_in, _) = call.engine.query(call.pa).unwrap();
    let (b_in, _) = call.engine.query(call.pb).unwrap();
    let task = d.task_counts(&xid()).unwrap();
    assert_eq!(task.delivered, c_in.packets_out + b_in.packets_out);
    assert_eq!(task.dropped(), 0);
    let dest = d.destination_stats(&did()).unwrap();
    assert!(dest.connected);
    assert_eq!(dest.pdus.delivered, 80);
    assert!(agency.errors.lock().unwrap().is_empty());
    d.shutdown();
    call.engine.shutdown();
}

#[test]
fn agency_down_mid_call_costs_counted_drops_and_delivery_resumes() {
    let call = Call::new(1);
    let mut agency = Agency::start("127.0.0.1:0");
    let addr = agency.addr;
    let d = X3Delivery::start(DeliveryConfig {
        buffer_pdus: 16,
        ..config()
    })
    .unwrap();
    d.add_destination(did(), DestinationSpec::tcp(addr))
        .unwrap();
    d.attach(1, interception(), call.taps(256)).unwrap();
    let mut seq = 0u16;
    let mut send = |n: u16, gap: u64| {
        for _ in 0..n {
            call.a_to_b(&rtp(seq, 0xa, &[1; 160]));
            seq += 1;
            std::thread::sleep(Duration::from_millis(gap));
        }
    };
    send(20, 2);
    eventually("first packets accounted for", || {
        let c = d.task_counts(&xid()).unwrap();
        c.delivered + c.dropped() == 20
    });
    let before = d.task_counts(&xid()).unwrap().delivered as usize;
    agency.wait_x3(before);

    // The agency goes away. Media keeps flowing, unchanged (a_to_b checks every packet).
    agency.stop();
    eventually("disconnect noticed", || {
        !d.destination_stats(&did()).unwrap().connected
    });
    send(100, 0);
    eventually("tap drained, the buffer full", || {
        let c = d.task_counts(&xid()).unwrap();
        let queued = d.destination_stats(&did()).unwrap().queued as u64;
        c.delivered + c.dropped() + queued == 120 && queued == 16
    });
    let c = d.task_counts(&xid()).unwrap();
    assert_eq!(c.dropped_tap, 0, "the tap kept up");
    assert!(c.dropped_buffer >= 100 - 16, "{c:?}");
    let (flow, _) = call.engine.query(call.pa).unwrap();
    assert_eq!(flow.packets_out, 120, "media relayed in full");
    assert_eq!(flow.tap_drops, 0);

    // Reconnection attempts fail while the agency is away.
    eventually("reconnect attempts", || {
        d.destination_stats(&did()).unwrap().connect_failures >= 1
    });
    // Back again on the same port: the buffered PDUs and new ones arrive.
    let agency = Agency::start(&addr.to_string());
    eventually("reconnected", || {
        d.destination_stats(&did()).unwrap().connected
    });
    send(10, 2);
    eventually("everything accounted for", || {
        let c = d.task_counts(&xid()).unwrap();
        c.delivered + c.dropped() == 130
    });
    eventually("the last packet arrived", || {
        agency
            .x3()
            .last()
            .is_some_and(|g| g.payload[2..4] == 129u16.to_be_bytes())
    });
    let got = agency.x3();
    let stats = d.destination_stats(&did()).unwrap();
    assert!(stats.connects >= 2 && stats.disconnects >= 1, "{stats:?}");
    assert!(stats.connect_failures >= 1, "{stats:?}");
    // Sequence numbers restart on the new connection.
    assert_eq!(got[0].seq, Some(0));
    assert!(got.len() >= 10);
    assert!(before > 0);
    call.untap();
    d.detach(1).unwrap();
    d.shutdown();
    call.engine.shutdown();
}

#[test]
fn a_full_tap_drops_at_the_worker_and_is_counted_per_task() {
    let call = Call::new(2);
    let d = X3Delivery::start(DeliveryConfig {
        // The draining thread is slow on purpose: the worker's 4-record tap overflows.
        poll_interval: Duration::from_millis(300),
        ..config()
    })
    .unwrap();
    d.add_destination(did(), DestinationSpec::tcp("127.0.0.1:9".parse().unwrap()))
        .unwrap();
    d.attach(3, interception(), call.taps(4)).unwrap();
    std::thread::sleep(Duration::from_millis(350));
    for s in 0..50 {
        call.a_to_b(&rtp(s, 1, &[0; 20]));
    }
    eventually("tap drops counted", || {
        d.task_counts(&xid()).unwrap().dropped_tap > 0
    });
    let (flow, _) = call.engine.query(call.pa).unwrap();
    assert_eq!(flow.packets_out, 50);
    assert!(flow.tap_drops > 0);
    eventually("all accounted for", || {
        let c = d.task_counts(&xid()).unwrap();
        let queued = d.destination_stats(&did()).unwrap().queued as u64;
        c.dropped_tap == flow.tap_drops && c.delivered + c.dropped() + queued == 50
    });
    call.untap();
    d.shutdown();
    call.engine.shutdown();
}

#[test]
fn keepalives_are_sent_acknowledged_and_a_silent_agency_is_left() {
    let answering = Agency::start("127.0.0.1:0");
    let silent = Agency::start_with("127.0.0.1:0", false);
    let d = X3Delivery::start(DeliveryConfig {
        keepalive_interval: Duration::from_millis(50),
        keepalive_timeout: Duration::from_millis(200),
        ..config()
    })
    .unwrap();
    let other = "d2d2d2d2-0000-4000-8000-000000000002".parse().unwrap();
    d.add_destination(did(), DestinationSpec::tcp(answering.addr))
        .unwrap();
    d.add_destination(other, DestinationSpec::tcp(silent.addr))
        .unwrap();
    eventually("keepalives acknowledged", || {
        d.destination_stats(&did()).unwrap().keepalive_acks >= 3
    });
    eventually("silent agency dropped", || {
        d.destination_stats(&other).unwrap().disconnects >= 1
    });
    let s = d.destination_stats(&did()).unwrap();
    assert!(s.connected);
    assert_eq!(s.disconnects, 0);
    let ka: Vec<_> = answering
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|g| (g.header.pdu_type, g.header.direction, g.header.xid.is_nil()))
        .collect();
    assert!(ka.len() >= 3);
    assert!(ka
        .iter()
        .all(|k| *k == (PduType::Keepalive, Direction::Keepalive, true)));
    d.remove_destination(other).unwrap();
    assert!(d.destination_stats(&other).is_none());
    assert!(d.remove_destination(other).is_err());
    d.shutdown();
}

#[test]
fn an_agency_sending_garbage_is_counted_and_reconnected() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let d = X3Delivery::start(config()).unwrap();
    d.add_destination(did(), DestinationSpec::tcp(addr))
        .unwrap();
    let (mut c, _) = listener.accept().unwrap();
    c.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
    eventually("garbage counted", || {
        let s = d.destination_stats(&did()).unwrap();
        s.garbage == 1 && s.disconnects == 1
    });
    // It reconnects.
    let (_c2, _) = listener.accept().unwrap();
    eventually("reconnected", || {
        d.destination_stats(&did()).unwrap().connects == 2
    });
    d.shutdown();
}

#[test]
fn mid_call_changes_of_tasks_take_effect_at_once() {
    let call = Call::new(3);
    let agency = Agency::start("127.0.0.1:0");
    let d = X3Delivery::start(config()).unwrap();
    d.add_destination(did(), DestinationSpec::tcp(agency.addr))
        .unwrap();
    // Attached without a task: taps drained, nothing delivered.
    d.attach(5, vec![], call.taps(64)).unwrap();
    for s in 0..5 {
        call.a_to_b(&rtp(s, 1, &[0; 20]));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(agency.x3().is_empty());
    // Activated mid-call.
    d.set_interceptions(5, interception()).unwrap();
    for s in 5..10 {
        call.a_to_b(&rtp(s, 1, &[0; 20]));
    }
    let got = agency.wait_x3(5);
    assert_eq!(&got[0].payload[2..4], &5u16.to_be_bytes());
    // Deactivated.
    d.set_interceptions(5, vec![]).unwrap();
    for s in 10..15 {
        call.a_to_b(&rtp(s, 1, &[0; 20]));
    }
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(agency.x3().len(), 5);
    assert!(matches!(
        d.set_interceptions(99, vec![]),
        Err(relay::li::DeliveryError::UnknownCall)
    ));
    assert!(matches!(
        d.attach(5, vec![], vec![]),
        Err(relay::li::DeliveryError::DuplicateCall)
    ));
    call.untap();
    d.detach(5).unwrap();
    assert!(d.call_counts(5).is_none());
    d.shutdown();
    call.engine.shutdown();
}
