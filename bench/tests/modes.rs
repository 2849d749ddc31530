//! Step mode, the PNG plots and the comparison table, against the test relay.

mod common;

use std::time::Duration;

use bench::report::StepReport;
use common::{bench, temp_json, Impair, Mode, TestRelay};

fn is_png(path: &std::path::Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

#[test]
fn step_mode_finds_a_knee_and_plots() {
    let relay = TestRelay::start(Mode::Forward(Impair::default()));
    let json = temp_json("step");
    let png = json.with_extension("png");
    let ng = relay.ng.to_string();
    let out = bench(
        &[
            "step",
            "--ng",
            &ng,
            "--calls",
            "2",
            "--start-rate",
            "400",
            "--factor",
            "2",
            "--max-steps",
            "2",
            "--step-duration",
            "500ms",
            "--drain",
            "300ms",
            "--max-p99",
            "5s",
            "--quiet",
            "--json",
            json.to_str().expect("utf-8"),
            "--plot",
            png.to_str().expect("utf-8"),
        ],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("knee:"), "{stdout}");
    let r: StepReport =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    assert_eq!(r.steps.len(), 2);
    let knee = r.knee.expect("a knee");
    assert_eq!(knee.offered_pps, r.steps[1].offered_pps);
    // Each step starts its accounting afresh.
    let sent: u64 = r.steps.iter().map(|s| s.sent).sum();
    assert_eq!(sent, relay.get(|c| &c.received));
    assert!(r.steps.iter().all(|s| s.lost == 0 && s.stale == 0));
    assert!(is_png(&png));
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_file(&png);
}

#[test]
fn run_plot_and_compare_table() {
    let relay = TestRelay::start(Mode::Forward(Impair::default()));
    let dir = std::env::temp_dir().join(format!("srtpgate-bench-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json = dir.join("srtpgate-equal.json");
    let png = dir.join("run.png");
    let ng = relay.ng.to_string();
    let out = bench(
        &[
            "run",
            "--ng",
            &ng,
            "--calls",
            "2",
            "--duration",
            "500ms",
            "--drain",
            "300ms",
            "--quiet",
            "--json",
            json.to_str().expect("utf-8"),
            "--plot",
            png.to_str().expect("utf-8"),
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_png(&png));
    for name in [
        "srtpgate-max",
        "srtpgate-rtp",
        "rtpengine-equal",
        "rtpengine-max",
        "rtpengine-rtp",
    ] {
        std::fs::copy(&json, dir.join(format!("{name}.json"))).expect("copy");
    }
    let out = bench(
        &["compare", dir.to_str().expect("utf-8")],
        Duration::from_secs(30),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.starts_with("| metric | srtpgate | rtpengine | srtpgate/rtpengine |"),
        "{table}"
    );
    assert!(table.contains("p99 latency"), "{table}");
    assert!(table.contains("| 1.00 |"), "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}
