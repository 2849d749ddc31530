//! `srtpgate-bench`: the load tester (grows with the ng protocol issue).
fn main() {
    eprintln!("srtpgate-bench {}: the load generator arrives with the ng control plane; see bench/benches for micro-benchmarks", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
