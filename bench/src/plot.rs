//! PNG plots with plotters' bitmap backend. Text is drawn from an 8×8 bitmap font
//! (font8x8), so no system font is needed: plotters is built without its font features and
//! every label here is drawn pixel by pixel.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::PhaseReport;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

const W: u32 = 1000;
const H: u32 = 600;
const LEFT: i32 = 90;
const RIGHT: i32 = 90;
const TOP: i32 = 60;
const BOTTOM: i32 = 70;

/// Why a plot was not written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot {path}: {detail}")]
pub struct PlotError {
    pub path: String,
    pub detail: String,
}

fn err(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Draws `s` with its top-left corner at (x, y), each font pixel `scale` pixels wide.
pub fn text(area: &Area, x: i32, y: i32, s: &str, scale: i32, color: &RGBColor) {
    let mut cx = x;
    for ch in s.chars() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or(font8x8::legacy::BASIC_LEGACY[b'?' as usize]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let _ = area.draw_pixel(
                                (cx + col * scale + dx, y + row as i32 * scale + dy),
                                color,
                            );
                        }
                    }
                }
            }
        }
        cx += 8 * scale;
    }
}

fn text_width(s: &str, scale: i32) -> i32 {
    s.chars().count() as i32 * 8 * scale
}

/// A short number: 12, 3.5, 12k, 1.5M.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        let s = format!("{:.2}", v / 1e6);
        format!("{}M", s.trim_end_matches('0').trim_end_matches('.'))
    } else if a >= 1e3 {
        let s = format!("{:.1}", v / 1e3);
        format!("{}k", s.trim_end_matches(".0"))
    } else if a >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// About `n` round tick values covering [lo, hi].
pub fn linear_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(t);
        t += step;
    }
    out
}

/// Powers of ten (and 2× and 5× them) covering [lo, hi].
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut p = 10f64.powf(lo.max(1e-9).log10().floor());
    while p <= hi * 1.0001 {
        for m in [1.0, 2.0, 5.0] {
            let v = p * m;
            if v >= lo * 0.9999 && v <= hi * 1.0001 {
                out.push(v);
            }
        }
        p *= 10.0;
    }
    out
}

const SERIES: [(&str, RGBColor); 4] = [
    ("p50", RGBColor(31, 119, 180)),
    ("p90", RGBColor(44, 160, 44)),
    ("p99", RGBColor(255, 127, 14)),
    ("p99.9", RGBColor(148, 103, 189)),
];
const LOSS: RGBColor = RGBColor(214, 39, 40);

fn frame(root: &Area, title: &str, x_label: &str, y_label: &str, y2_label: Option<&str>) {
    let _ = root.fill(&WHITE);
    text(root, LEFT, 16, title, 2, &BLACK);
    text(root, 10, TOP - 18, y_label, 1, &BLACK);
    if let Some(l) = y2_label {
        text(
            root,
            W as i32 - RIGHT - text_width(l, 1) + 80,
            TOP - 18,
            l,
            1,
            &LOSS,
        );
    }
    let xl = text_width(x_label, 1);
    text(
        root,
        LEFT + (W as i32 - LEFT - RIGHT - xl) / 2,
        H as i32 - 22,
        x_label,
        1,
        &BLACK,
    );
}

fn legend(root: &Area, entries: &[(String, RGBColor)]) {
    let mut x = LEFT + 10;
    let y = TOP + 8;
    for (name, color) in entries {
        let _ = root.draw(&Rectangle::new([(x, y), (x + 18, y + 6)], color.filled()));
        text(root, x + 24, y - 1, name, 1, &BLACK);
        x += 40 + text_width(name, 1);
    }
}

/// Latency percentiles (log scale, left) and loss (right) against offered load, one point
/// per step.
pub fn plot_steps(path: &Path, title: &str, steps: &[PhaseReport]) -> Result<(), PlotError> {
    let pts: Vec<&PhaseReport> = steps.iter().filter(|s| s.latency_us.samples > 0).collect();
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    frame(
        &root,
        title,
        "offered load (packets/s)",
        "latency (us, log)",
        Some("loss (%)"),
    );
    let x_hi = steps.iter().map(|s| s.offered_pps).fold(1.0, f64::max) * 1.05;
    let y_lo = pts
        .iter()
        .map(|s| s.latency_us.p50)
        .fold(f64::MAX, f64::min)
        .max(1.0)
        * 0.8;
    let y_hi = pts.iter().map(|s| s.latency_us.p999).fold(10.0, f64::max) * 1.25;
    let y_lo = if y_lo >= y_hi { 1.0 } else { y_lo };
    let loss_hi = steps
        .iter()
        .map(|s| s.loss_ratio * 100.0)
        .fold(0.1, f64::max)
        * 1.2;
    let inner = root.margin(TOP as u32, BOTTOM as u32, LEFT as u32, RIGHT as u32);
    let mut chart = ChartBuilder::on(&inner)
        .build_cartesian_2d(0f64..x_hi, (y_lo..y_hi).log_scale())
        .map_err(|e| err(path, e))?
        .set_secondary_coord(0f64..x_hi, 0f64..loss_hi);
    let grid = RGBColor(225, 225, 225);
    for t in linear_ticks(0.0, x_hi, 8) {
        let _ = chart.draw_series(LineSeries::new([(t, y_lo), (t, y_hi)], grid));
        let (px, py) = chart.backend_coord(&(t, y_lo));
        let l = short(t);
        text(&root, px - text_width(&l, 1) / 2, py + 8, &l, 1, &BLACK);
    }
    for t in log_ticks(y_lo, y_hi) {
        let _ = chart.draw_series(LineSeries::new([(0.0, t), (x_hi, t)], grid));
        let (px, py) = chart.backend_coord(&(0.0, t));
        let l = short(t);
        text(&root, px - text_width(&l, 1) - 6, py - 4, &l, 1, &BLACK);
    }
    for t in linear_ticks(0.0, loss_hi, 5) {
        let (px, py) = chart.backend_coord(&(x_hi, y_lo));
        let frac = t / loss_hi;
        let y = py - ((py - TOP) as f64 * frac) as i32;
        let l = format!("{}%", short(t));
        text(&root, px + 6, y - 4, &l, 1, &LOSS);
    }
    let _ = root.draw(&Rectangle::new(
        [(LEFT, TOP), (W as i32 - RIGHT, H as i32 - BOTTOM)],
        BLACK.stroke_width(1),
    ));
    for (i, (_, color)) in SERIES.iter().enumerate() {
        let value = |s: &PhaseReport| match i {
            0 => s.latency_us.p50,
            1 => s.latency_us.p90,
            2 => s.latency_us.p99,
            _ => s.latency_us.p999,
        };
        let line: Vec<(f64, f64)> = pts
            .iter()
            .map(|s| (s.offered_pps, value(s).max(y_lo)))
            .collect();
        let _ = chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(2)));
        let _ = chart.draw_series(line.iter().map(|p| Circle::new(*p, 3, color.filled())));
    }
    let loss: Vec<(f64, f64)> = steps
        .iter()
        .map(|s| (s.offered_pps, s.loss_ratio * 100.0))
        .collect();
    let _ = chart.draw_secondary_series(LineSeries::new(loss.clone(), LOSS.stroke_width(2)));
    let _ = chart.draw_secondary_series(
        loss.iter()
            .map(|p| TriangleMarker::new(*p, 5, LOSS.filled())),
    );
    let mut entries: Vec<(String, RGBColor)> =
        SERIES.iter().map(|(n, c)| (n.to_string(), *c)).collect();
    entries.push(("loss".into(), LOSS));
    legend(&root, &entries);
    root.present().map_err(|e| err(path, e))
}

/// The latency distribution of one run: latency (log scale) against percentile, with the
/// percentile axis stretched toward the tail (x = -log10(1 - q)).
pub fn plot_run(
    path: &Path,
    title: &str,
    hist: &Histogram<u64>,
    loss_ratio: f64,
) -> Result<(), PlotError> {
    let root = BitMapBackend::new(path, (W, H)).into_drawing_area();
    frame(&root, title, "percentile", "latency (us, log)", None);
    let mut pts: Vec<(f64, f64)> = Vec::new();
    if !hist.is_empty() {
        for v in hist.iter_quantiles(2) {
            let q = v.quantile_iterated_to();
            let x = -(1.0 - q).max(1e-5).log10();
            pts.push((x, v.value_iterated_to() as f64 / 1e3));
        }
    }
    let x_hi = 5.0;
    let y_lo = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min).max(1.0) * 0.8;
    let y_hi = pts.iter().map(|p| p.1).fold(10.0, f64::max) * 1.25;
    let y_lo = if y_lo >= y_hi { 1.0 } else { y_lo };
    let inner = root.margin(TOP as u32, BOTTOM as u32, LEFT as u32, RIGHT as u32);
    let mut chart = ChartBuilder::on(&inner)
        .build_cartesian_2d(0f64..x_hi, (y_lo..y_hi).log_scale())
        .map_err(|e| err(path, e))?;
    let grid = RGBColor(225, 225, 225);
    for (x, l) in [
        (0.0, "0"),
        (0.301, "50"),
        (1.0, "90"),
        (2.0, "99"),
        (3.0, "99.9"),
        (4.0, "99.99"),
        (5.0, "99.999"),
    ] {
        let _ = chart.draw_series(LineSeries::new([(x, y_lo), (x, y_hi)], grid));
        let (px, py) = chart.backend_coord(&(x, y_lo));
        text(&root, px - text_width(l, 1) / 2, py + 8, l, 1, &BLACK);
    }
    for t in log_ticks(y_lo, y_hi) {
        let _ = chart.draw_series(LineSeries::new([(0.0, t), (x_hi, t)], grid));
        let (px, py) = chart.backend_coord(&(0.0, t));
        let l = short(t);
        text(&root, px - text_width(&l, 1) - 6, py - 4, &l, 1, &BLACK);
    }
    let _ = root.draw(&Rectangle::new(
        [(LEFT, TOP), (W as i32 - RIGHT, H as i32 - BOTTOM)],
        BLACK.stroke_width(1),
    ));
    let color = SERIES[2].1;
    let _ = chart.draw_series(LineSeries::new(pts, color.stroke_width(2)));
    legend(
        &root,
        &[(format!("latency, loss {:.4}%", loss_ratio * 100.0), color)],
    );
    root.present().map_err(|e| err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_numbers() {
        assert_eq!(
            linear_ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(log_ticks(3.0, 60.0), vec![5.0, 10.0, 20.0, 50.0]);
        assert_eq!(short(12_500.0), "12.5k");
        assert_eq!(short(2_000_000.0), "2M");
        assert_eq!(short(0.25), "0.25");
    }
}
