//! Calls through srtpgate's own SIP edge (registrar + proxy, no Kamailio): two real baresip
//! phones register to srtpgate with digest authentication over UDP, TCP or TLS, call each
//! other, talk, hang up. Over UDP every check of [`checks::check_call`] runs on the
//! captured SIP and media; over TCP and TLS the SIP is not in the capture, so the checks
//! are on the media alone (SRTP-sized packets, no audible tone on the wire, payloads
//! re-encrypted between the legs) and on what each phone recorded.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use super::baresip::{Baresip, MediaEnc, UserAgent};
use super::capture::{Capture, Datagram};
use super::checks::{self, CallFacts};
use super::media::{is_rtcp, parse_rtp, ToneReport};
use super::process::{wait_until, Workdir};
use super::relay::{start_srtpgate_with_config, EdgePorts, Metrics, RunningRelay};
use super::scenario::{CALLEE_TONE_HZ, CALLER_TONE_HZ};
use super::wav::Wav;
use super::{Context, E2eError, Result};

/// SIP transport the phones use toward srtpgate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    fn name(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        }
    }
}

/// One call through the SIP edge.
#[derive(Clone, Debug)]
pub struct EdgeCall {
    pub name: String,
    pub transport: SipTransport,
    pub caller: UserAgent,
    pub callee: UserAgent,
    pub talk: Duration,
    /// Digest algorithms srtpgate offers, in order.
    pub algorithms: Vec<String>,
    /// Keep the work directory of a failed run.
    pub keep_failed: bool,
}

const PASSWORDS: [(&str, &str); 2] = [("alice", "alice-secret-1"), ("bob", "bob-secret-2")];

impl EdgeCall {
    pub fn new(transport: SipTransport, caller: MediaEnc, callee: MediaEnc) -> Self {
        EdgeCall {
            name: format!("edge-{}", transport.name()),
            transport,
            caller: UserAgent::new("alice", CALLER_TONE_HZ, caller, false),
            callee: UserAgent::new("bob", CALLEE_TONE_HZ, callee, true),
            talk: Duration::from_secs(3),
            // baresip 1.0.0 (libre 1.1) answers MD5 challenges only.
            algorithms: vec!["MD5".into()],
            keep_failed: true,
        }
    }

    pub fn run(&self) -> Result<Vec<String>> {
        let wd = Workdir::new(&self.name)?;
        let result = self.run_in(&wd);
        if let Err(e) = &result {
            if self.keep_failed {
                wd.keep();
            }
            return Err(E2eError::new(format!(
                "{}: {e}\n\nwork directory: {}\n{}",
                self.name,
                wd.path().display(),
                wd.log_tails(40)
            )));
        }
        result
    }

    fn config(&self, ports: &EdgePorts, tls: Option<(&Path, &Path)>) -> String {
        let mut c = ports.config();
        let algs: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
        let _ = writeln!(c, "digest-algorithms = [{}]", algs.join(", "));
        if let Some((cert, key)) = tls {
            let _ = write!(
                c,
                "listen-tls = [\"127.0.0.1:{}\"]\ntls-cert = {:?}\ntls-key = {:?}\n",
                ports.sip + 1,
                cert.display().to_string(),
                key.display().to_string()
            );
        }
        for (u, p) in PASSWORDS {
            let _ = write!(c, "[[sip.users]]\nusername = \"{u}\"\npassword = \"{p}\"\n");
        }
        c
    }

    fn run_in(&self, wd: &Workdir) -> Result<Vec<String>> {
        let ports = EdgePorts::allocate()?;
        let (ng, port_min, sip) = (ports.ng, ports.port_min, ports.sip);
        let tls_files = if self.transport == SipTransport::Tls {
            Some(self_signed(wd.path())?)
        } else {
            None
        };
        let tls = tls_files.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        let mut running = start_srtpgate_with_config(
            wd,
            &ports,
            &self.config(&ports, tls),
            Metrics::Off,
            "info,control=debug",
        )?;
        let filter = format!(
            "udp and (portrange {port_min}-{} or port {sip})",
            running.port_max
        );
        let capture = Capture::start(wd, &filter)?;
        let extra = match &tls_files {
            Some((cert, _)) => format!("sip_cafile\t{}\n", cert.display()),
            None => String::new(),
        };
        let mut a = Baresip::start_with_config(wd, &self.caller, &extra)?;
        let mut b = Baresip::start_with_config(wd, &self.callee, &extra)?;
        let port = if self.transport == SipTransport::Tls {
            sip + 1
        } else {
            sip
        };
        let uri = |user: &str| match self.transport {
            SipTransport::Udp => format!("sip:{user}@127.0.0.1:{port}"),
            t => format!("sip:{user}@127.0.0.1:{port};transport={}", t.name()),
        };
        for p in [&mut a, &mut b] {
            let aor = uri(&p.ua.user);
            p.register_user(&aor, &PASSWORDS, Duration::from_secs(5))?;
        }
        a.dial(&uri("bob"))?;
        let setup = Duration::from_secs(10);
        // A plain-RTP callee first refuses the SRTP offer (baresip reports that call as
        // closed), then takes the RTP/AVP retry.
        let retried =
            self.caller.media == MediaEnc::SrtpMandatory && self.callee.media == MediaEnc::Plain;
        let fatal: &[&str] = if retried { &[] } else { &["CALL_CLOSED"] };
        let established_b = b.wait_event("CALL_ESTABLISHED", fatal, setup)?;
        let established_a = a.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
        let calls_during = ng_calls(ng)?;
        let mut notes_pre = Vec::new();
        a.expect_no_event("CALL_CLOSED", self.talk)?;
        a.hangup()?;
        let closed_a = a.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
        let closed_b = b.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
        std::thread::sleep(Duration::from_millis(300));
        let calls_after = ng_calls(ng)?;
        a.stop();
        b.stop();
        let mut datagrams = capture.stop()?;
        if retried {
            // The refused SRTP offer is not part of the call the checks look at.
            let refused = datagrams
                .iter()
                .filter(|d| d.dst.port() == b.sip_port && d.payload.starts_with(b"INVITE "))
                .filter(|d| d.payload.windows(8).any(|w| w == b"RTP/SAVP"))
                .count();
            notes_pre.push(format!(
                "{refused} SRTP INVITE(s) refused by the plain callee before the RTP/AVP retry"
            ));
            datagrams.retain(|d| {
                !(d.dst.port() == b.sip_port
                    && d.payload.starts_with(b"INVITE ")
                    && d.payload.windows(8).any(|w| w == b"RTP/SAVP"))
            });
        }
        running.process.stop(Duration::from_secs(2));

        let mut notes = std::mem::take(&mut notes_pre);
        notes.push(format!(
            "{}: calls in the relay during the call: {calls_during}, after BYE: {calls_after}",
            self.name
        ));
        let mut failed = Vec::new();
        if calls_during != 1 {
            failed.push(format!(
                "expected 1 call in the relay while talking, saw {calls_during}"
            ));
        }
        if calls_after != 0 {
            failed.push(format!(
                "BYE should free the call's media, {calls_after} call(s) left"
            ));
        }
        let caller_call = closed_a.at - established_a.at;
        let callee_call = closed_b.at - established_b.at;
        match self.transport {
            SipTransport::Udp => {
                let facts = CallFacts {
                    relay: &running,
                    kamailio_port: sip,
                    caller: &a,
                    callee: &b,
                    caller_call,
                    callee_call,
                    talk: self.talk,
                    datagrams: &datagrams,
                };
                match checks::check_call(&facts) {
                    Ok(n) => notes.extend(n),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            _ => {
                let udp_sip = datagrams
                    .iter()
                    .filter(|d| d.src.port() == sip || d.dst.port() == sip)
                    .count();
                if udp_sip == 0 {
                    notes.push(format!(
                        "no SIP over UDP: signalling used {}",
                        self.transport.name()
                    ));
                } else {
                    failed.push(format!(
                        "{udp_sip} SIP datagrams over UDP in a {} call",
                        self.transport.name()
                    ));
                }
                let (ok, bad) =
                    stream_checks(&running, &a, &b, &datagrams, caller_call, callee_call);
                notes.extend(ok);
                failed.extend(bad);
            }
        }
        if failed.is_empty() {
            Ok(notes)
        } else {
            Err(E2eError::new(format!(
                "{} check(s) failed:\n  {}\n\nchecks passed:\n  {}",
                failed.len(),
                failed.join("\n  "),
                notes.join("\n  ")
            )))
        }
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM.
fn self_signed(dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .map_err(|e| E2eError::new(format!("rcgen: {e}")))?;
    let (cert, key) = (dir.join("sip-cert.pem"), dir.join("sip-key.pem"));
    fs::write(&cert, ck.cert.pem())?;
    fs::write(&key, ck.key_pair.serialize_pem())?;
    Ok((cert, key))
}

/// How many calls the relay holds, by ng `list`.
pub fn ng_calls(ng: SocketAddr) -> Result<usize> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    sock.send_to(b"edge1 d7:command4:liste", ng)?;
    let mut buf = [0u8; 8192];
    let (n, _) = sock.recv_from(&mut buf).context("no answer to ng list")?;
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    let at = text.find("5:callsl").context(format!("ng list: {text}"))?;
    // Each call id is one bencoded string inside the list.
    let mut rest = &text[at + 8..];
    let mut count = 0;
    while let Some((len, tail)) = rest.split_once(':') {
        let Ok(len) = len.parse::<usize>() else { break };
        count += 1;
        rest = tail.get(len..).unwrap_or("");
    }
    Ok(count)
}

/// Waits up to 5 s until the relay at `ng` holds no call (`what` names the wait).
pub fn wait_no_calls(ng: SocketAddr, what: &str) -> Result<()> {
    wait_until(what, Duration::from_secs(5), || {
        Ok((ng_calls(ng)? == 0).then_some(()))
    })
}

fn is_relay(r: &RunningRelay, a: SocketAddrV4) -> bool {
    r.contains_port(a.port())
}

/// Media-only checks for calls whose SIP is not in the capture.
fn stream_checks(
    relay: &RunningRelay,
    a: &Baresip,
    b: &Baresip,
    datagrams: &[Datagram],
    caller_call: Duration,
    callee_call: Duration,
) -> (Vec<String>, Vec<String>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let mut check = |pass: bool, what: String| if pass { ok.push(what) } else { bad.push(what) };
    // RTP flows between a phone and the relay, keyed (src, dst).
    let mut flows: HashMap<(SocketAddrV4, SocketAddrV4), Vec<&Datagram>> = HashMap::new();
    for d in datagrams {
        if is_relay(relay, d.src) != is_relay(relay, d.dst) && !is_rtcp(&d.payload) {
            flows.entry((d.src, d.dst)).or_default().push(d);
        }
    }
    let busy: Vec<_> = flows.iter().filter(|(_, v)| v.len() >= 50).collect();
    check(
        busy.len() == 4,
        format!("four media legs with traffic (saw {})", busy.len()),
    );
    for ((src, dst), v) in &busy {
        let lens = v
            .iter()
            .filter(|d| d.payload.len() == 12 + 160 + 10)
            .count();
        check(
            lens * 10 >= v.len() * 9,
            format!(
                "{src} -> {dst}: SRTP (172-byte RTP + 10-byte tag) in {lens} of {}",
                v.len()
            ),
        );
        let audio: Vec<i16> = v
            .iter()
            .filter_map(|d| parse_rtp(&d.payload, 0))
            .flat_map(|p| p.payload.into_iter().map(super::media::ulaw_decode))
            .collect();
        let t = ToneReport::analyse(&audio, 8000, f64::from(CALLER_TONE_HZ));
        let u = ToneReport::analyse(&audio, 8000, f64::from(CALLEE_TONE_HZ));
        check(
            (t.tone_windows + u.tone_windows) * 20 <= t.windows.max(1),
            format!("{src} -> {dst}: no tone audible on the wire (encrypted)"),
        );
    }
    // Into the relay on one leg, out on the other: same SSRC and sequence, other bytes.
    let keyed = |v: &Vec<&Datagram>| -> HashMap<(u32, u16), Vec<u8>> {
        v.iter()
            .filter_map(|d| parse_rtp(&d.payload, 0))
            .map(|p| ((p.ssrc, p.seq), p.payload))
            .collect()
    };
    let mut pairs = 0;
    for ((s1, d1), v1) in &busy {
        for ((s2, d2), v2) in &busy {
            if is_relay(relay, *s1) || !is_relay(relay, *s2) || s1 == d2 {
                continue;
            }
            let (k1, k2) = (keyed(v1), keyed(v2));
            let matched: Vec<_> = k1.keys().filter(|k| k2.contains_key(k)).collect();
            if matched.len() < 20 {
                continue;
            }
            pairs += 1;
            let same = matched.iter().filter(|k| k1.get(k) == k2.get(k)).count();
            check(
                same * 20 <= matched.len(),
                format!("{s1} -> {d1} relayed to {s2} -> {d2}: re-encrypted with another key ({same} of {} payloads identical)", matched.len()),
            );
        }
    }
    check(
        pairs == 2,
        format!("both directions relayed with SSRC and sequence kept (saw {pairs})"),
    );
    for (p, hz, call) in [
        (b, CALLER_TONE_HZ, callee_call),
        (a, CALLEE_TONE_HZ, caller_call),
    ] {
        let who = &p.ua.user;
        match p.recording().and_then(|f| Wav::read(&f)) {
            Ok(w) => {
                let t = ToneReport::analyse(&w.samples, w.rate, f64::from(hz));
                let call = call.as_secs_f64();
                check(
                    (w.duration_secs() - call).abs() <= 0.75,
                    format!(
                        "{who} recorded {:.2} s for a {call:.2} s call",
                        w.duration_secs()
                    ),
                );
                check(
                    t.tone_secs() >= call - 1.0 && t.coverage() >= 0.8,
                    format!(
                        "{who} heard the {hz} Hz tone for {:.1} s ({:.0}%)",
                        t.tone_secs(),
                        100.0 * t.coverage()
                    ),
                );
            }
            Err(e) => check(false, format!("{who}'s recording: {e}")),
        }
    }
    let _ = Instant::now();
    (ok, bad)
}
