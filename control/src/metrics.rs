//! Prometheus metrics: control-plane counters, the engine's per-worker counters, and a tiny
//! HTTP/1.1 endpoint that serves them at `GET /metrics`.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use relay::engine::WorkerStatsSnapshot;

/// Control-plane counters, shared by the ng server and the call layer.
#[derive(Debug, Default)]
pub struct ControlMetrics {
    pub calls_active: AtomicU64,
    pub calls_created: AtomicU64,
    pub calls_deleted: AtomicU64,
    pub calls_timed_out: AtomicU64,
    pub ng_requests: AtomicU64,
    pub ng_errors: AtomicU64,
    pub ng_retransmissions: AtomicU64,
    pub ng_malformed: AtomicU64,
    pub load_limit: AtomicU64,
    /// DTLS-SRTP and ICE-lite counters.
    pub security: crate::dtls::SecurityMetrics,
}

fn counter(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP srtpgate_{name} {help}\n# TYPE srtpgate_{name} {kind}\nsrtpgate_{name} {value}"
    );
}

/// A counter family with one label: its HELP and TYPE lines, then one sample per (label
/// value, value).
fn labelled<L: std::fmt::Display, V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    rows: impl IntoIterator<Item = (L, V)>,
) {
    let _ = writeln!(
        out,
        "# HELP srtpgate_{name} {help}\n# TYPE srtpgate_{name} counter"
    );
    for (l, v) in rows {
        let _ = writeln!(out, "srtpgate_{name}{{{label}=\"{l}\"}} {v}");
    }
}

/// A per-worker counter: metric name, help text, and how to read it from a snapshot.
type WorkerCounter = (&'static str, &'static str, fn(&WorkerStatsSnapshot) -> u64);

/// The Prometheus text exposition of everything.
pub fn render(control: &ControlMetrics, workers: &[WorkerStatsSnapshot]) -> String {
    let mut out = String::with_capacity(4096);
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut out,
        "calls",
        "Calls currently set up.",
        "gauge",
        get(&control.calls_active),
    );
    counter(
        &mut out,
        "calls_created_total",
        "Calls created by offers.",
        "counter",
        get(&control.calls_created),
    );
    counter(
        &mut out,
        "calls_deleted_total",
        "Calls deleted.",
        "counter",
        get(&control.calls_deleted),
    );
    counter(
        &mut out,
        "calls_timed_out_total",
        "Calls deleted for lack of media.",
        "counter",
        get(&control.calls_timed_out),
    );
    counter(
        &mut out,
        "ng_requests_total",
        "ng requests handled (retransmissions excluded).",
        "counter",
        get(&control.ng_requests),
    );
    counter(
        &mut out,
        "ng_errors_total",
        "ng requests answered with an error.",
        "counter",
        get(&control.ng_errors),
    );
    counter(
        &mut out,
        "ng_retransmissions_total",
        "ng retransmissions answered from cache.",
        "counter",
        get(&control.ng_retransmissions),
    );
    counter(
        &mut out,
        "ng_malformed_total",
        "ng datagrams that could not be parsed.",
        "counter",
        get(&control.ng_malformed),
    );
    counter(
        &mut out,
        "load_limit_total",
        "Offers refused for capacity.",
        "counter",
        get(&control.load_limit),
    );
    control.security.render(&mut out);
    let per_worker: [WorkerCounter; 15] = [
        (
            "packets_received_total",
            "Datagrams received by media workers.",
            |s| s.packets_received,
        ),
        (
            "packets_sent_total",
            "Datagrams sent by media workers.",
            |s| s.packets_sent,
        ),
        (
            "send_failures_total",
            "Datagrams the kernel refused or found no buffer for.",
            |s| s.send_failures,
        ),
        (
            "unknown_port_total",
            "RTP/RTCP on a port without a flow.",
            |s| s.unknown_port,
        ),
        (
            "malformed_total",
            "Datagrams that are not RTP, RTCP, STUN or DTLS.",
            |s| s.malformed,
        ),
        ("oversized_total", "Datagrams too long to relay.", |s| {
            s.oversized
        }),
        (
            "slow_path_total",
            "STUN/DTLS datagrams handed to the control plane.",
            |s| s.slow_path,
        ),
        (
            "slow_path_dropped_total",
            "STUN/DTLS datagrams dropped on a full queue.",
            |s| s.slow_path_dropped,
        ),
        (
            "srtp_auth_failures_total",
            "SRTP/SRTCP packets that failed authentication.",
            |s| s.auth_failures,
        ),
        (
            "srtp_replays_total",
            "SRTP/SRTCP packets rejected as replays.",
            |s| s.replays,
        ),
        (
            "srtp_errors_total",
            "Other SRTP errors (unknown MKI, expired key, protect failures).",
            |s| s.srtp_errors,
        ),
        (
            "wrong_source_total",
            "Packets dropped by strict-source.",
            |s| s.wrong_source,
        ),
        (
            "no_destination_total",
            "Packets dropped before the peer address was known.",
            |s| s.no_destination,
        ),
        ("worker_batches_total", "Receive batches processed.", |s| {
            s.batches
        }),
        (
            "worker_commands_total",
            "Control commands applied by workers.",
            |s| s.commands,
        ),
    ];
    for (name, help, f) in per_worker {
        labelled(
            &mut out,
            name,
            help,
            "worker",
            workers.iter().map(f).enumerate(),
        );
    }
    labelled(
        &mut out,
        "worker_busy_seconds_total",
        "Time media workers spent processing packets.",
        "worker",
        workers
            .iter()
            .map(|s| format!("{:.6}", s.busy_ns as f64 / 1e9))
            .enumerate(),
    );
    out
}

/// Appends the SIP edge's counters.
pub fn render_sip(out: &mut String, c: &crate::sip::proxy::Counters) {
    let rows: [(&str, &str, u64); 10] = [
        ("sip_received_total", "SIP messages received.", c.received),
        (
            "sip_malformed_total",
            "SIP messages that could not be parsed.",
            c.malformed,
        ),
        (
            "sip_retransmissions_total",
            "SIP retransmissions absorbed.",
            c.retransmissions,
        ),
        (
            "sip_registrations_total",
            "Successful REGISTER requests.",
            c.registrations,
        ),
        (
            "sip_auth_failures_total",
            "Requests with wrong or missing digest credentials.",
            c.auth_failures,
        ),
        (
            "sip_rate_limited_total",
            "Requests refused by the per-source rate limit.",
            c.rate_limited,
        ),
        (
            "sip_calls_anchored_total",
            "Calls whose media was anchored in the relay.",
            c.calls_anchored,
        ),
        (
            "sip_media_failures_total",
            "Calls refused because their SDP could not be relayed.",
            c.media_failures,
        ),
        (
            "sip_plain_retries_total",
            "Branches retried with plain RTP after 488/415.",
            c.plain_retries,
        ),
        (
            "sip_timeouts_total",
            "Branches that timed out (408).",
            c.timeouts,
        ),
    ];
    for (name, help, v) in rows {
        counter(out, name, help, "counter", v);
    }
    let mut codes: Vec<_> = c.errors.iter().collect();
    codes.sort();
    labelled(
        out,
        "sip_error_responses_total",
        "Error responses the proxy sent itself.",
        "code",
        codes,
    );
    labelled(
        out,
        "sip_voicemail_deposits_total",
        "Calls answered by voicemail, by reason.",
        "reason",
        crate::sip::proxy::DepositReason::ALL
            .into_iter()
            .map(|r| (r.as_str(), c.deposits.get(r))),
    );
    counter(
        out,
        "sip_voicemail_late_answers_total",
        "Callee 2xx after the call went to voicemail (acknowledged, then BYE).",
        "counter",
        c.late_answers,
    );
}

/// Call recording counters (`control/src/daemon/recording.rs`): written under the
/// recordings' lock, read by the metrics page without it.
#[derive(Debug, Default)]
pub struct RecordingCounts {
    /// Recordings running now.
    pub active: AtomicU64,
    /// Calls waiting for their answer to be recorded.
    pub waiting: AtomicU64,
    pub started: AtomicU64,
    /// Recordings that could not start (engine, tap or file refused).
    pub failed: AtomicU64,
    /// Closed with at least one packet stored (renamed complete).
    pub stored: AtomicU64,
    /// Closed with nothing recorded (no file kept).
    pub empty: AtomicU64,
    /// Could not be closed cleanly (write error; the file stays recoverable).
    pub close_failed: AtomicU64,
}

/// Appends the call recording counters.
pub fn render_recordings(out: &mut String, c: &RecordingCounts) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        out,
        "recordings",
        "Call recordings running.",
        "gauge",
        get(&c.active),
    );
    counter(
        out,
        "recordings_waiting",
        "Calls to be recorded from their answer on.",
        "gauge",
        get(&c.waiting),
    );
    counter(
        out,
        "recordings_started_total",
        "Call recordings started.",
        "counter",
        get(&c.started),
    );
    counter(
        out,
        "recordings_failed_total",
        "Call recordings that could not start.",
        "counter",
        get(&c.failed),
    );
    labelled(
        out,
        "recordings_closed_total",
        "Call recordings closed, by outcome.",
        "outcome",
        [
            ("stored", get(&c.stored)),
            ("empty", get(&c.empty)),
            ("error", get(&c.close_failed)),
        ],
    );
}

/// Appends lawful-interception totals. No label names a task, target or destination.
pub fn render_li(out: &mut String, intercepted_calls: usize, c: &relay::li::DeliveryCounts) {
    counter(
        out,
        "li_intercepted_calls",
        "Calls with an active interception.",
        "gauge",
        intercepted_calls as u64,
    );
    counter(
        out,
        "li_pdus_delivered_total",
        "X3 PDUs delivered, summed over tasks.",
        "counter",
        c.delivered,
    );
    labelled(
        out,
        "li_pdus_dropped_total",
        "X3 PDUs not delivered, summed over tasks, by where.",
        "reason",
        [
            ("tap_full", c.dropped_tap),
            ("buffer_full", c.dropped_buffer),
            ("link_down", c.dropped_link),
            ("no_destination", c.dropped_no_destination),
        ],
    );
}

/// The voicemail API's counters (no labels naming mailboxes or users).
pub fn render_vm_api(out: &mut String, c: &crate::vm_api::ApiCounters) {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(
        out,
        "vm_api_requests_total",
        "Connections to the voicemail API (one request each).",
        "counter",
        get(&c.requests),
    );
    labelled(
        out,
        "vm_api_responses_total",
        "Voicemail API answers, by outcome.",
        "outcome",
        [
            ("ok", &c.ok),
            ("unauthorized", &c.unauthorized),
            ("forbidden", &c.forbidden),
            ("malformed", &c.malformed),
            ("too_large", &c.too_large),
            ("not_found", &c.not_found),
            ("bad_method", &c.bad_method),
            ("conflict", &c.conflict),
            ("busy", &c.busy),
            ("throttled", &c.throttled),
            ("failed", &c.failed),
        ]
        .map(|(outcome, n)| (outcome, get(n))),
    );
    counter(
        out,
        "vm_api_downloads_total",
        "Sealed messages sent by the voicemail API.",
        "counter",
        get(&c.downloads),
    );
    counter(
        out,
        "vm_api_download_bytes_total",
        "Bytes of sealed messages sent by the voicemail API.",
        "counter",
        get(&c.download_bytes),
    );
}

/// Serves `GET /metrics` on `listen` from a thread; `body` renders the page per request.
pub fn serve(
    listen: SocketAddr,
    body: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("srtpgate-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, body.as_ref());
            }
        })?;
    Ok(local)
}

fn answer(mut s: TcpStream, body: &(dyn Fn() -> String + Send + Sync)) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = [0u8; 2048];
    let mut n = 0;
    // Read until the end of the request head or the buffer is full.
    while n < req.len() {
        let m = s.read(&mut req[n..])?;
        if m == 0 {
            break;
        }
        n += m;
        if req[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&req[..n]);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, text) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", body()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    write!(s, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_families_are_exposed_one_sample_a_label() {
        let mut page = String::new();
        labelled(
            &mut page,
            "x_total",
            "Xs, by why.",
            "why",
            [("a", 1u64), ("b", 20)],
        );
        assert_eq!(
            page,
            "# HELP srtpgate_x_total Xs, by why.\n# TYPE srtpgate_x_total counter\n\
             srtpgate_x_total{why=\"a\"} 1\nsrtpgate_x_total{why=\"b\"} 20\n"
        );
        let mut page = String::new();
        let empty: [(u16, u64); 0] = [];
        labelled(&mut page, "y_total", "Ys.", "code", empty);
        assert_eq!(
            page,
            "# HELP srtpgate_y_total Ys.\n# TYPE srtpgate_y_total counter\n"
        );
    }

    #[test]
    fn li_totals_carry_no_task_labels() {
        let mut page = String::new();
        let c = relay::li::DeliveryCounts {
            delivered: 7,
            dropped_link: 2,
            ..Default::default()
        };
        render_li(&mut page, 1, &c);
        assert!(page.contains("srtpgate_li_intercepted_calls 1\n"));
        assert!(page.contains("srtpgate_li_pdus_delivered_total 7\n"));
        assert!(page.contains("srtpgate_li_pdus_dropped_total{reason=\"link_down\"} 2\n"));
        assert!(!page.contains("xid") && !page.contains("task="), "{page}");
    }

    #[test]
    fn renders_and_serves() {
        let c = ControlMetrics::default();
        c.calls_active.store(3, Ordering::Relaxed);
        let w = WorkerStatsSnapshot {
            packets_received: 10,
            auth_failures: 2,
            ..Default::default()
        };
        let text = render(&c, &[w, WorkerStatsSnapshot::default()]);
        assert!(text.contains("srtpgate_calls 3\n"));
        assert!(text.contains("srtpgate_packets_received_total{worker=\"0\"} 10\n"));
        assert!(text.contains("srtpgate_srtp_auth_failures_total{worker=\"0\"} 2\n"));
        assert!(text.contains("srtpgate_packets_received_total{worker=\"1\"} 0\n"));

        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(move || "x 1\n".to_string()),
        )
        .unwrap();
        let get = |req: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            r
        };
        let r = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 200 OK") && r.ends_with("x 1\n"),
            "{r}"
        );
        assert!(get("GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        assert!(get("\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}
