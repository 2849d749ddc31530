//! A relay that is not there, refuses, answers nonsense or swallows the media: the bench
//! says what went wrong, exits non-zero, and never hangs.

mod common;

use std::net::UdpSocket;
use std::process::Output;
use std::time::Duration;

use common::{bench, Mode, TestRelay};

const LIMIT: Duration = Duration::from_secs(30);

fn short_run(ng: &str) -> Output {
    bench(
        &[
            "run",
            "--ng",
            ng,
            "--calls",
            "2",
            "--duration",
            "500ms",
            "--drain",
            "300ms",
            "--ng-timeout",
            "200ms",
            "--ng-attempts",
            "2",
            "--quiet",
        ],
        LIMIT,
    )
}

fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr:\n{stderr}");
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
}

#[test]
fn unreachable_relay() {
    // A port with nothing bound: loopback answers with ICMP port unreachable.
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let out = short_run(&format!("127.0.0.1:{port}"));
    assert_fails_with(&out, "nothing listens for ng");
}

#[test]
fn silent_relay() {
    // Bound but never answering: every attempt times out.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let out = short_run(&sock.local_addr().expect("addr").to_string());
    assert_fails_with(&out, "no answer from the ng server");
}

#[test]
fn relay_refuses_offers() {
    let relay = TestRelay::start(Mode::RefuseOffers);
    let out = short_run(&relay.ng.to_string());
    assert_fails_with(&out, "the relay refused `offer`: load limit reached");
}

#[test]
fn malformed_sdp_answer() {
    let relay = TestRelay::start(Mode::GarbageSdp);
    let out = short_run(&relay.ng.to_string());
    assert_fails_with(&out, "is malformed");
}

#[test]
fn relay_drops_everything() {
    let relay = TestRelay::start(Mode::BlackHole);
    let out = short_run(&relay.ng.to_string());
    assert_fails_with(&out, "the relay delivered none of");
    // The report is still printed, and the calls were deleted.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("lost"), "report printed:\n{stdout}");
    assert_eq!(relay.get(|c| &c.deletes), 2);
}

#[test]
fn bad_arguments() {
    let out = bench(
        &["run", "--ng", "127.0.0.1:1", "--calls", "0", "--quiet"],
        LIMIT,
    );
    assert_fails_with(&out, "--calls must be at least 1");
    let out = bench(&["run", "--ng", "127.0.0.1:1", "--duration", "soon"], LIMIT);
    assert!(!out.status.success());
}
