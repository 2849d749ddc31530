//! The side-by-side table of two relays measured with the same loads: ratios of relay A
//! (srtpgate) to relay B (rtpengine) from the `--json` reports of `run`.
//!
//! For each relay the directory holds `NAME-equal.json` (SRTP at a load both carry),
//! `NAME-max.json` (SRTP at `--rate max`) and, optionally, `NAME-rtp.json` (plain RTP at the
//! equal load: the relay's UDP forwarding floor).

use std::fmt::Write as _;
use std::path::Path;

use crate::report::{PhaseReport, RunReport};

/// Why the table could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
}

/// Reads one `run --json` report.
pub fn read_report(path: &Path) -> Result<RunReport, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|e| CompareError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| CompareError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

struct Row {
    what: String,
    a: Option<f64>,
    b: Option<f64>,
    decimals: usize,
}

/// Every report `NAME-KIND.json` or `NAME-KIND-<round>.json` in `dir`, in name order.
pub fn read_rounds(dir: &Path, name: &str, kind: &str) -> Result<Vec<RunReport>, CompareError> {
    let exact = format!("{name}-{kind}.json");
    let prefix = format!("{name}-{kind}-");
    let entries = std::fs::read_dir(dir).map_err(|e| CompareError::Read {
        path: dir.display().to_string(),
        detail: e.to_string(),
    })?;
    let mut paths: Vec<std::path::PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n == exact
                    || (n.starts_with(&prefix)
                        && n.ends_with(".json")
                        && n[prefix.len()..n.len() - 5]
                            .bytes()
                            .all(|b| b.is_ascii_digit()))
            })
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(CompareError::Read {
            path: dir.join(exact).display().to_string(),
            detail: "no such report".into(),
        });
    }
    paths.iter().map(|p| read_report(p)).collect()
}

/// The median of the values `f` gives (`None` when no report has one).
fn median(reports: &[RunReport], f: impl Fn(&PhaseReport) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = reports.iter().filter_map(|r| f(&r.result)).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn cpu(p: &PhaseReport) -> Option<f64> {
    p.relay_cpu.as_ref().map(|r| r.us_per_packet)
}

fn per_core(p: &PhaseReport) -> Option<f64> {
    p.relay_cpu.as_ref().map(|r| r.packets_per_core_s)
}

/// The comparison table as Markdown, from the reports in `dir` (medians over rounds).
pub fn table(dir: &Path, a: &str, b: &str) -> Result<String, CompareError> {
    let (ae, be) = (read_rounds(dir, a, "equal")?, read_rounds(dir, b, "equal")?);
    let (am, bm) = (read_rounds(dir, a, "max")?, read_rounds(dir, b, "max")?);
    let (ar, br) = (
        read_rounds(dir, a, "rtp").ok(),
        read_rounds(dir, b, "rtp").ok(),
    );
    let load = median(&ae, |p| Some(p.offered_pps)).unwrap_or(0.0);
    type Metric = fn(&PhaseReport) -> Option<f64>;
    let row = |what: String, ra: &[RunReport], rb: &[RunReport], f: Metric, decimals| Row {
        what,
        a: median(ra, f),
        b: median(rb, f),
        decimals,
    };
    let mut rows = vec![
        row(
            format!("relay CPU µs per SRTP packet at {load:.0} pkt/s"),
            &ae,
            &be,
            cpu,
            2,
        ),
        row(
            format!("packets/s per relay core at {load:.0} pkt/s (1 / CPU per packet)"),
            &ae,
            &be,
            per_core,
            0,
        ),
        row(
            "packets/s per relay core at --rate max".into(),
            &am,
            &bm,
            per_core,
            0,
        ),
        row(
            "delivered packets/s at --rate max".into(),
            &am,
            &bm,
            |p| Some(p.delivered_pps),
            0,
        ),
        row(
            "loss at --rate max (%)".into(),
            &am,
            &bm,
            |p| Some(p.loss_ratio * 100.0),
            2,
        ),
        row(
            format!("p50 latency µs at {load:.0} pkt/s"),
            &ae,
            &be,
            |p| Some(p.latency_us.p50),
            1,
        ),
        row(
            format!("p99 latency µs at {load:.0} pkt/s"),
            &ae,
            &be,
            |p| Some(p.latency_us.p99),
            1,
        ),
        row(
            format!("loss at {load:.0} pkt/s (%)"),
            &ae,
            &be,
            |p| Some(p.loss_ratio * 100.0),
            4,
        ),
    ];
    if let (Some(ar), Some(br)) = (&ar, &br) {
        rows.push(row(
            format!("relay CPU µs per plain RTP packet at {load:.0} pkt/s (floor)"),
            ar,
            br,
            cpu,
            2,
        ));
    }
    let mut s = String::new();
    let _ = writeln!(s, "| metric | {a} | {b} | {a}/{b} |");
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for r in &rows {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.*}", r.decimals));
        let ratio = match (r.a, r.b) {
            (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
            _ => "n/a".into(),
        };
        let _ = writeln!(s, "| {} | {} | {} | {} |", r.what, f(r.a), f(r.b), ratio);
    }
    let rounds = ae.len().min(be.len());
    let _ = writeln!(s, "\n(medians of {rounds} round(s) per relay)");
    for (name, reports) in [(a, &ae), (b, &be), (a, &am), (b, &bm)] {
        for r in reports.iter() {
            let p = &r.result;
            let starved = p.relay_cpu.as_ref().map_or(0.0, |c| {
                c.threads.iter().map(|t| t.starved).fold(0.0, f64::max)
            });
            if starved > 0.1 {
                let _ = writeln!(
                    s,
                    "note: {name}: a relay thread waited for a CPU {:.0}% of the time at {:.0} pkt/s offered (other work on its core)",
                    starved * 100.0,
                    p.offered_pps
                );
            }
            if p.generator.saturated {
                let _ = writeln!(
                    s,
                    "note: {name}: the generator was saturated at {:.0} pkt/s offered",
                    p.offered_pps
                );
            }
        }
    }
    Ok(s)
}
