//! The bench's accounting against a relay that injects known impairments: the reported
//! loss, duplicates and reordering must equal what the relay did, packet for packet.

mod common;

use std::time::Duration;

use bench::report::RunReport;
use common::{bench, temp_json, Impair, Mode, TestRelay};

fn run_against(relay: &TestRelay, extra: &[&str], name: &str) -> RunReport {
    let json = temp_json(name);
    let ng = relay.ng.to_string();
    let mut args = vec![
        "run",
        "--ng",
        &ng,
        "--calls",
        "3",
        "--pps-per-stream",
        "200",
        "--duration",
        "1500ms",
        "--drain",
        "500ms",
        "--quiet",
        "--json",
        json.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = bench(&args, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let text = std::fs::read_to_string(&json).expect("json report");
    let _ = std::fs::remove_file(&json);
    serde_json::from_str(&text).expect("report parses")
}

fn check_exact(relay: &TestRelay, r: &RunReport) {
    let p = &r.result;
    let received = relay.get(|c| &c.received);
    let dropped = relay.get(|c| &c.dropped);
    let duplicated = relay.get(|c| &c.duplicated);
    let reordered = relay.get(|c| &c.reordered);
    assert!(p.sent > 500, "too few packets sent: {}", p.sent);
    assert_eq!(p.sent, received, "every sent packet reached the relay");
    assert_eq!(p.lost, dropped, "loss");
    assert_eq!(p.delivered, p.sent - dropped, "delivered");
    assert_eq!(p.duplicates, duplicated, "duplicates");
    assert_eq!(p.reordered, reordered, "reordered");
    assert!(reordered > 0 && duplicated > 0 && dropped > 0);
    assert_eq!(p.anomalies.corrupt, 0);
    assert_eq!(p.anomalies.misrouted, 0);
    assert_eq!(p.anomalies.unknown, 0);
    assert_eq!(p.latency_us.samples, p.delivered);
    assert_eq!(
        relay.get(|c| &c.deletes),
        r.setup.calls as u64,
        "every call deleted"
    );
    assert!(
        (p.loss_ratio - dropped as f64 / p.sent as f64).abs() < 1e-12,
        "loss ratio"
    );
}

const IMPAIR: Impair = Impair {
    drop_every: 37,
    dup_every: 23,
    reorder_every: 29,
};

#[test]
fn srtp_accounting_matches_injected_impairments() {
    let relay = TestRelay::start(Mode::Forward(IMPAIR));
    let r = run_against(&relay, &[], "srtp");
    check_exact(&relay, &r);
    // The test relay passes keys through, and the bench says so.
    assert_eq!(r.setup.passthrough_streams, 6);
    assert!(r
        .result
        .warnings
        .iter()
        .any(|w| w.contains("passed 6 of 6")));
}

#[test]
fn rtp_accounting_with_shared_sockets_matches_injected_impairments() {
    let relay = TestRelay::start(Mode::Forward(IMPAIR));
    let r = run_against(
        &relay,
        &[
            "--media",
            "rtp",
            "--legs-per-socket",
            "2",
            "--senders",
            "1",
            "--receivers",
            "2",
        ],
        "rtp",
    );
    check_exact(&relay, &r);
    assert_eq!(r.setup.passthrough_streams, 0);
}

#[test]
fn gcm_suite_and_clean_path() {
    let relay = TestRelay::start(Mode::Forward(Impair::default()));
    let r = run_against(&relay, &["--suite", "AEAD_AES_256_GCM"], "gcm");
    let p = &r.result;
    assert_eq!(p.lost, 0);
    assert_eq!(p.duplicates + p.reordered + p.anomalies.corrupt, 0);
    assert_eq!(p.delivered, relay.get(|c| &c.received));
    // The test relay runs inside this test process, which the bench finds by the ng port.
    let cpu = p
        .relay_cpu
        .as_ref()
        .expect("relay CPU found by the ng port");
    assert_eq!(cpu.pid, std::process::id());
}
