//! Lawful interception end to end: srtpgate with its SIP edge and the X1 admin listener
//! (from a config file), `li-receiver` as the agency (a separate process), a task for
//! alice activated over X1. alice calls bob through the SIP edge with SDES-SRTP (two real
//! baresip phones); after the hang-up li-receiver's WAVs hold the tone alice sent and the
//! tone bob sent, and it got as many packets as the relay sent for the call. Then bob calls
//! carol (no target): no PDU. Wrong admin credentials get 401.
//! Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{talk_call, Baresip, UserAgent};
use srtpgate_tests::e2e::li::{activate_task, x1, Agency};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::process::{run_in_workdir, Workdir};
use srtpgate_tests::e2e::relay::{metrics_page, start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::{CALLEE_TONE_HZ, CALLER_TONE_HZ};
use srtpgate_tests::e2e::sip_edge::wait_no_calls;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{ports, Context, E2eError, Result};

const TOKEN: &str = "e2e-li-admin-token-0123456789";
const USERS: [(&str, &str); 3] = [
    ("alice", "alice-secret-1"),
    ("bob", "bob-secret-2"),
    ("carol", "carol-secret-3"),
];
const XID: &str = "2b36a78b-b628-416d-bd22-65e63a4b4c2f";
const DID: &str = "8f2f4c4e-1b43-4f7e-9d0a-0a1b2c3d4e5f";
const CAROL_TONE_HZ: u32 = 1200;
const TALK: Duration = Duration::from_secs(3);

/// Sum of `srtpgate_packets_sent_total` over the workers.
fn packets_sent(metrics: SocketAddr) -> Result<u64> {
    let out = metrics_page(metrics)?;
    let mut sum = 0;
    for l in out
        .lines()
        .filter(|l| l.starts_with("srtpgate_packets_sent_total"))
    {
        sum += l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .context(format!("metrics line {l:?}"))?;
    }
    Ok(sum)
}

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let agency = Agency::start(wd)?;
    let ports = EdgePorts::allocate()?;
    let ng = ports.ng;
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "digest-algorithms = [\"MD5\"]\n\
         [metrics]\nlisten = \"{metrics}\"\n\
         [li]\nadmin-listen = \"{admin}\"\nadmin-token = \"{TOKEN}\"\nstore = {:?}\n",
        wd.path().join("li.json").display().to_string(),
    );
    for (u, p) in USERS {
        let _ = write!(
            cfg,
            "[[sip.users]]\nusername = \"{u}\"\npassword = \"{p}\"\n"
        );
    }
    let mut relay = start_srtpgate_with_config(wd, &ports, &cfg, Metrics::FromConfig, "info")?;
    let mut notes = Vec::new();

    // X1: wrong and missing credentials are refused before anything else.
    let ping = serde_json::json!({"operation": "Ping"});
    let (status, _) = x1(admin, "wrong-token-0123456789abcdef", &ping)?;
    if status != 401 {
        return Err(E2eError::new(format!(
            "wrong admin token: HTTP {status}, want 401"
        )));
    }
    let (status, _) = x1(admin, "", &ping)?;
    if status != 401 {
        return Err(E2eError::new(format!(
            "missing admin token: HTTP {status}, want 401"
        )));
    }
    notes.push("wrong and missing admin tokens refused with 401".to_string());
    activate_task(admin, TOKEN, agency.addr, DID, XID, "sip:alice@127.0.0.1")?;
    notes.push("destination created and task for sip:alice@127.0.0.1 activated over X1".into());

    let mut a = Baresip::start(wd, &UserAgent::sdes("alice", CALLER_TONE_HZ, false))?;
    let mut b = Baresip::start(wd, &UserAgent::sdes("bob", CALLEE_TONE_HZ, true))?;
    let mut c = Baresip::start(wd, &UserAgent::sdes("carol", CAROL_TONE_HZ, true))?;
    for p in [&mut a, &mut b, &mut c] {
        let aor = ports.uri(&p.ua.user);
        p.register_user(&aor, &USERS, Duration::from_secs(5))?;
    }
    let sent_before = packets_sent(metrics)?;
    talk_call(&mut a, &mut b, &ports.uri("bob"), TALK)?;
    wait_no_calls(ng, "the target call to end in the relay")?;
    let relayed = packets_sent(metrics)? - sent_before;
    // Delivery runs behind the worker (tap polling, destination thread).
    std::thread::sleep(Duration::from_millis(500));
    let sent_mid = packets_sent(metrics)?;
    talk_call(&mut b, &mut c, &ports.uri("carol"), TALK)?;
    wait_no_calls(ng, "the second call to end in the relay")?;
    let relayed_other = packets_sent(metrics)? - sent_mid;
    std::thread::sleep(Duration::from_millis(500));
    a.stop();
    b.stop();
    c.stop();
    relay.process.stop(Duration::from_secs(2));
    let got = agency.finish()?;
    let summary = &got.summary;

    let mut failed = Vec::new();
    let streams = got.streams();
    let totals = &summary["totals"];
    let delivered: u64 = streams
        .iter()
        .map(|s| s["packets"].as_u64().unwrap_or(0) + s["rtcp"].as_u64().unwrap_or(0))
        .sum();
    let cids: std::collections::BTreeSet<String> = streams
        .iter()
        .filter_map(|s| s["correlationId"].as_str().map(str::to_string))
        .collect();
    let mut check = |ok: bool, what: String| {
        if ok {
            notes.push(what)
        } else {
            failed.push(what)
        }
    };
    check(
        totals["malformed"].as_u64() == Some(0) && totals["pduSequenceGaps"].as_u64() == Some(0),
        format!("every PDU well-formed, no X3 sequence gaps ({totals})"),
    );
    check(
        cids.len() == 1 && streams.iter().all(|s| s["xid"].as_str() == Some(XID)),
        format!("one intercepted call, under the task's XID (correlation ids {cids:?})"),
    );
    check(
        relayed > 0 && delivered == relayed,
        format!("delivered packets (RTP + RTCP) {delivered} = relayed {relayed}"),
    );
    check(
        relayed_other > 0,
        format!("the non-target call was relayed ({relayed_other} packets) and added no PDU"),
    );
    for (dir, hz, who) in [
        ("from-target", CALLER_TONE_HZ, "alice"),
        ("to-target", CALLEE_TONE_HZ, "bob"),
    ] {
        let Some(s) = streams
            .iter()
            .find(|s| s["direction"].as_str() == Some(dir))
        else {
            check(false, format!("no {dir} stream"));
            continue;
        };
        let path = match got.wav(s) {
            Ok(p) => p,
            Err(_) => {
                check(false, format!("{dir}: no WAV"));
                continue;
            }
        };
        match Wav::read(&path) {
            Ok(w) => {
                let t = ToneReport::analyse(&w.samples, w.rate, f64::from(hz));
                check(
                    t.tone_secs() >= TALK.as_secs_f64() - 1.0 && t.coverage() >= 0.8,
                    format!(
                        "{dir} WAV holds the {hz} Hz tone {who} sent for {:.1} s ({:.0}%)",
                        t.tone_secs(),
                        100.0 * t.coverage()
                    ),
                );
            }
            Err(e) => check(false, format!("{dir} WAV {}: {e}", path.display())),
        }
    }
    if failed.is_empty() {
        Ok(notes)
    } else {
        Err(E2eError::new(format!(
            "{} check(s) failed:\n  {}\n\nchecks passed:\n  {}\n\nsummary: {summary}",
            failed.len(),
            failed.join("\n  "),
            notes.join("\n  ")
        )))
    }
}

#[test]
fn target_call_through_sip_edge_delivered_in_full() {
    run_in_workdir("li-sip-edge", run);
}
