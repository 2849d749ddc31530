//! Lawful interception end to end: srtpgate with its SIP edge and the X1 admin listener
//! (from a config file), `li-receiver` as the agency (a separate process), a task for
//! alice activated over X1. alice calls bob through the SIP edge with SDES-SRTP (two real
//! baresip phones); after the hang-up li-receiver's WAVs hold the tone alice sent and the
//! tone bob sent, and it got as many packets as the relay sent for the call. Then bob calls
//! carol (no target): no PDU. Wrong admin credentials get 401.
//! Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::media::ToneReport;
use srtpgate_tests::e2e::process::{wait_until, Child, Workdir};
use srtpgate_tests::e2e::relay::{Relay, MEDIA_PORTS};
use srtpgate_tests::e2e::scenario::{CALLEE_TONE_HZ, CALLER_TONE_HZ};
use srtpgate_tests::e2e::sip_edge::ng_calls;
use srtpgate_tests::e2e::tools::tool;
use srtpgate_tests::e2e::wav::Wav;
use srtpgate_tests::e2e::{ng, ports, Context, E2eError, Result};

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

/// One HTTP request to the X1 listener; returns (status, body).
fn x1(addr: SocketAddr, token: &str, body: &serde_json::Value) -> Result<(u16, String)> {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "POST /x1 HTTP/1.1\r\nHost: x1\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context(format!("X1 reply: {out:?}"))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sum of `srtpgate_packets_sent_total` over the workers.
fn packets_sent(metrics: SocketAddr) -> Result<u64> {
    let mut s = TcpStream::connect(metrics)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
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

fn phone(user: &str, tone_hz: u32, auto_answer: bool) -> UserAgent {
    UserAgent {
        user: user.into(),
        tone_hz,
        media: MediaEnc::SrtpMandatory,
        auto_answer,
    }
}

fn register(p: &mut Baresip, sip: u16) -> Result<()> {
    let user = p.ua.user.clone();
    let pw = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map_or("", |(_, pw)| pw);
    let mut params =
        format!("<sip:{user}@127.0.0.1:{sip}>;auth_pass={pw};regint=600;audio_codecs=pcmu");
    if p.ua.auto_answer {
        params.push_str(";answermode=auto");
    }
    params.push_str(p.ua.media.account_param());
    let r = p
        .ctrl
        .command("uanew", Some(&params), Duration::from_secs(5))?;
    if !r.ok {
        return Err(E2eError::new(format!("uanew {user}: {}", r.data.trim())));
    }
    p.wait_event("REGISTER_OK", &["REGISTER_FAIL"], Duration::from_secs(5))
        .map(|_| ())
}

/// `caller` calls `callee`, both talk for `TALK`, `caller` hangs up.
fn call(caller: &mut Baresip, callee: &mut Baresip, sip: u16) -> Result<()> {
    caller.dial(&format!("sip:{}@127.0.0.1:{sip}", callee.ua.user))?;
    let setup = Duration::from_secs(10);
    callee.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
    caller.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
    caller.expect_no_event("CALL_CLOSED", TALK)?;
    caller.hangup()?;
    caller.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    callee.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    Ok(())
}

struct Agency {
    process: Child,
    out: PathBuf,
    addr: SocketAddr,
}

impl Agency {
    fn start(wd: &Workdir) -> Result<Agency> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
        let out = wd.subdir("li-out")?;
        let mut cmd = Command::new(tool("li-receiver")?);
        cmd.arg("--out")
            .arg(&out)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--strict");
        let mut process = Child::spawn(wd, "li-receiver", cmd)?;
        wait_until("li-receiver to listen", Duration::from_secs(10), || {
            process.check_running()?;
            Ok(TcpStream::connect(addr).is_ok().then_some(()))
        })?;
        Ok(Agency { process, out, addr })
    }

    /// Stops li-receiver (SIGTERM) and reads its summary.
    fn finish(mut self) -> Result<serde_json::Value> {
        self.process.stop(Duration::from_secs(5));
        let text = fs::read_to_string(self.out.join("summary.json"))
            .context("li-receiver wrote no summary.json")?;
        serde_json::from_str(&text).map_err(|e| E2eError::new(format!("summary.json: {e}")))
    }
}

fn run(wd: &Workdir) -> Result<Vec<String>> {
    let Relay::Srtpgate { binary } = Relay::srtpgate()? else {
        return Err(E2eError::new("not srtpgate"));
    };
    let agency = Agency::start(wd)?;
    let ng = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
    let port_min = ports::free_block(MEDIA_PORTS)?;
    let sip = ports::free_block(2)?;
    let mut cfg = String::new();
    let _ = write!(
        cfg,
        "[ng]\nlisten = \"{ng}\"\n\
         [metrics]\nlisten = \"{metrics}\"\n\
         [media]\nport-min = {port_min}\nport-max = {}\nworkers = 1\npin = false\n\
         interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
         [li]\nadmin-listen = \"{admin}\"\nadmin-token = \"{TOKEN}\"\nstore = {:?}\n\
         [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n\
         digest-algorithms = [\"MD5\"]\n",
        port_min + MEDIA_PORTS - 1,
        wd.path().join("li.json").display().to_string(),
    );
    for (u, p) in USERS {
        let _ = write!(
            cfg,
            "[[sip.users]]\nusername = \"{u}\"\npassword = \"{p}\"\n"
        );
    }
    let cfg_path = wd.path().join("srtpgate.toml");
    fs::write(&cfg_path, cfg)?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config")
        .arg(&cfg_path)
        .env("SRTPGATE_LOG", "info")
        .env("NO_COLOR", "1");
    let mut relay = Child::spawn(wd, "srtpgate", cmd)?;
    wait_until(
        "srtpgate to answer ng ping",
        Duration::from_secs(10),
        || {
            relay.check_running()?;
            Ok(ng::ping(ng, Duration::from_millis(100))?.then_some(()))
        },
    )?;
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
    let ops = [
        serde_json::json!({"operation": "CreateDestination", "destinationDetails": {
            "dId": DID, "friendlyName": "e2e agency", "deliveryType": "X3Only",
            "deliveryAddress": {"ipAddressPort": {"address": agency.addr.ip().to_string(),
                                "port": {"TCPPort": agency.addr.port()}}}}}),
        serde_json::json!({"operation": "ActivateTask", "taskDetails": {
            "xId": XID, "targetIdentifiers": [{"sipUri": "sip:alice@127.0.0.1"}],
            "deliveryType": "X3Only", "listOfDIDs": [DID]}}),
    ];
    for op in &ops {
        let (status, body) = x1(admin, TOKEN, op)?;
        if status != 200 {
            return Err(E2eError::new(format!(
                "X1 {}: HTTP {status} {body}",
                op["operation"]
            )));
        }
    }
    notes.push("destination created and task for sip:alice@127.0.0.1 activated over X1".into());

    let mut a = Baresip::start(wd, &phone("alice", CALLER_TONE_HZ, false))?;
    let mut b = Baresip::start(wd, &phone("bob", CALLEE_TONE_HZ, true))?;
    let mut c = Baresip::start(wd, &phone("carol", CAROL_TONE_HZ, true))?;
    for p in [&mut a, &mut b, &mut c] {
        register(p, sip)?;
    }
    let sent_before = packets_sent(metrics)?;
    call(&mut a, &mut b, sip)?;
    wait_until(
        "the target call to end in the relay",
        Duration::from_secs(5),
        || Ok((ng_calls(ng)? == 0).then_some(())),
    )?;
    let relayed = packets_sent(metrics)? - sent_before;
    // Delivery runs behind the worker (tap polling, destination thread).
    std::thread::sleep(Duration::from_millis(500));
    let sent_mid = packets_sent(metrics)?;
    call(&mut b, &mut c, sip)?;
    wait_until(
        "the second call to end in the relay",
        Duration::from_secs(5),
        || Ok((ng_calls(ng)? == 0).then_some(())),
    )?;
    let relayed_other = packets_sent(metrics)? - sent_mid;
    std::thread::sleep(Duration::from_millis(500));
    a.stop();
    b.stop();
    c.stop();
    relay.stop(Duration::from_secs(2));
    let summary = agency.finish()?;

    let mut failed = Vec::new();
    let streams = summary["streams"].as_array().cloned().unwrap_or_default();
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
        let wav = s["wav"].as_str().map(PathBuf::from);
        let path = match wav {
            Some(p) if p.is_absolute() => p,
            Some(p) => agency_file(&summary, &p, wd),
            None => {
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

/// A file li-receiver named relative to its output directory.
fn agency_file(_summary: &serde_json::Value, name: &Path, wd: &Workdir) -> PathBuf {
    let p = wd.path().join("li-out").join(name);
    if p.is_file() {
        p
    } else {
        name.to_path_buf()
    }
}

#[test]
fn target_call_through_sip_edge_delivered_in_full() {
    let wd = Workdir::new("li-sip-edge").expect("work directory");
    match run(&wd) {
        Ok(notes) => {
            for n in notes {
                println!("ok: {n}");
            }
        }
        Err(e) => {
            wd.keep();
            panic!(
                "{e}\n\nwork directory: {}\n{}",
                wd.path().display(),
                wd.log_tails(40)
            );
        }
    }
}
