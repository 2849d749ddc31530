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
    /// Whether higher is better (for the verdict column).
    higher_better: bool,
    decimals: usize,
}

fn cpu(p: &PhaseReport) -> Option<f64> {
    p.relay_cpu.as_ref().map(|r| r.us_per_packet)
}

fn per_core(p: &PhaseReport) -> Option<f64> {
    p.relay_cpu.as_ref().map(|r| r.packets_per_core_s)
}

/// The comparison table as Markdown, from the reports in `dir`.
pub fn table(dir: &Path, a: &str, b: &str) -> Result<String, CompareError> {
    let load = |name: &str, kind: &str| read_report(&dir.join(format!("{name}-{kind}.json")));
    let (ae, be) = (load(a, "equal")?, load(b, "equal")?);
    let (am, bm) = (load(a, "max")?, load(b, "max")?);
    let (ar, br) = (load(a, "rtp").ok(), load(b, "rtp").ok());
    let (ae, be, am, bm) = (&ae.result, &be.result, &am.result, &bm.result);
    let mut rows = vec![
        Row {
            what: format!(
                "relay CPU µs per SRTP packet at {:.0} pkt/s",
                ae.offered_pps
            ),
            a: cpu(ae),
            b: cpu(be),
            higher_better: false,
            decimals: 2,
        },
        Row {
            what: format!(
                "packets/s per relay core at {:.0} pkt/s (1 / CPU per packet)",
                ae.offered_pps
            ),
            a: per_core(ae),
            b: per_core(be),
            higher_better: true,
            decimals: 0,
        },
        Row {
            what: "packets/s per relay core at --rate max".into(),
            a: per_core(am),
            b: per_core(bm),
            higher_better: true,
            decimals: 0,
        },
        Row {
            what: "delivered packets/s at --rate max".into(),
            a: Some(am.delivered_pps),
            b: Some(bm.delivered_pps),
            higher_better: true,
            decimals: 0,
        },
        Row {
            what: format!("p50 latency µs at {:.0} pkt/s", ae.offered_pps),
            a: Some(ae.latency_us.p50),
            b: Some(be.latency_us.p50),
            higher_better: false,
            decimals: 1,
        },
        Row {
            what: format!("p99 latency µs at {:.0} pkt/s", ae.offered_pps),
            a: Some(ae.latency_us.p99),
            b: Some(be.latency_us.p99),
            higher_better: false,
            decimals: 1,
        },
        Row {
            what: format!("loss at {:.0} pkt/s (%)", ae.offered_pps),
            a: Some(ae.loss_ratio * 100.0),
            b: Some(be.loss_ratio * 100.0),
            higher_better: false,
            decimals: 4,
        },
    ];
    if let (Some(ar), Some(br)) = (&ar, &br) {
        rows.push(Row {
            what: format!(
                "relay CPU µs per plain RTP packet at {:.0} pkt/s (floor)",
                ar.result.offered_pps
            ),
            a: cpu(&ar.result),
            b: cpu(&br.result),
            higher_better: false,
            decimals: 2,
        });
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
        let _ = r.higher_better;
        let _ = writeln!(s, "| {} | {} | {} | {} |", r.what, f(r.a), f(r.b), ratio);
    }
    let mut notes = Vec::new();
    for (name, p) in [(a, ae), (b, be), (a, am), (b, bm)] {
        if p.generator.saturated {
            notes.push(format!(
                "{name}: the generator was saturated at {:.0} pkt/s offered",
                p.offered_pps
            ));
        }
    }
    for n in notes {
        let _ = writeln!(s, "\nnote: {n}");
    }
    Ok(s)
}
