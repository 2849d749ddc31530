//! baresip 1.0.0 as a SIP phone: a generated config directory per user agent, an `ausine`
//! tone as microphone, `sndfile` recording what it receives, and the `ctrl_tcp` module to
//! drive it (netstring-framed JSON).
//!
//! `ctrl_tcp` commands are `{"command":"dial","params":"sip:...","token":"t1"}`; baresip
//! answers `{"response":true,"ok":true,"data":"...","token":"t1"}` and sends events such as
//! `{"event":true,"class":"call","type":"CALL_ESTABLISHED","param":"...","accountaor":"...",
//! "id":"..."}`. It serves one connection at a time, so the connection that proved readiness
//! is the one that receives events.
//!
//! Quirks of 1.0.0 found here: `sip_listen P` also opens TLS on P+1; commands like `uanew`,
//! `dial` and `hangup` exist only with `menu.so` loaded; `net_interface` wants an address
//! (`127.0.0.1`), not `lo`; with no audio player module the receive path still decodes and
//! records; SIGTERM makes it unregister first, which can take long when the registrar is
//! gone.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::ports;
use super::process::{require, wait_until, Child, Workdir};
use super::{Context, E2eError, Result};

/// How a phone protects its media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEnc {
    /// Plain RTP (RTP/AVP, no a=crypto).
    Plain,
    /// `mediaenc=srtp-mand`: offers RTP/SAVP with one AES_CM_128_HMAC_SHA1_80 key; as
    /// callee answers only RTP/SAVP offers (488 to RTP/AVP).
    SrtpMandatory,
    /// `mediaenc=dtls_srtp` (module `dtls_srtp`): DTLS-SRTP, keys from a handshake with
    /// `a=fingerprint` and `a=setup` in the SDP.
    DtlsSrtp,
}

impl MediaEnc {
    /// The account parameter selecting this media encryption, if any.
    pub fn account_param(self) -> &'static str {
        match self {
            MediaEnc::Plain => "",
            MediaEnc::SrtpMandatory => ";mediaenc=srtp-mand",
            MediaEnc::DtlsSrtp => ";mediaenc=dtls_srtp",
        }
    }

    /// Config lines the phone needs for this media encryption.
    pub fn config_lines(self) -> &'static str {
        match self {
            MediaEnc::DtlsSrtp => "module\tdtls_srtp.so\n",
            _ => "",
        }
    }
}

/// One phone's settings.
#[derive(Clone, Debug)]
pub struct UserAgent {
    pub user: String,
    /// Frequency of the `ausine` tone it sends.
    pub tone_hz: u32,
    pub media: MediaEnc,
    /// Answer incoming calls at once (`answermode=auto`).
    pub auto_answer: bool,
}

impl UserAgent {
    /// A phone named `user` sending a `tone_hz` tone.
    pub fn new(user: &str, tone_hz: u32, media: MediaEnc, auto_answer: bool) -> UserAgent {
        UserAgent {
            user: user.into(),
            tone_hz,
            media,
            auto_answer,
        }
    }

    /// A phone named `user` with SDES-SRTP only (`mediaenc=srtp-mand`).
    pub fn sdes(user: &str, tone_hz: u32, auto_answer: bool) -> UserAgent {
        UserAgent::new(user, tone_hz, MediaEnc::SrtpMandatory, auto_answer)
    }
}

/// One `ctrl_tcp` event.
#[derive(Clone, Debug)]
pub struct Event {
    pub class: String,
    /// `REGISTER_OK`, `CALL_ESTABLISHED`, `CALL_CLOSED`, ...
    pub kind: String,
    pub param: String,
    pub account: String,
    pub call_id: String,
    /// When the harness read it.
    pub at: Instant,
}

/// A `ctrl_tcp` command response.
#[derive(Clone, Debug)]
pub struct Response {
    pub ok: bool,
    pub data: String,
}

/// Encodes `payload` as a netstring: `<len>:<payload>,`.
pub fn netstring(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

/// Takes one complete netstring off the front of `buf`: `Ok(None)` when more bytes are
/// needed, an error when the framing is broken.
pub fn take_netstring(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>> {
    let Some(colon) = buf.iter().position(|&b| b == b':') else {
        if buf.len() > 10 || buf.iter().any(|b| !b.is_ascii_digit()) {
            return Err(E2eError::new("ctrl_tcp: bad netstring length"));
        }
        return Ok(None);
    };
    let digits = &buf[..colon];
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(E2eError::new("ctrl_tcp: bad netstring length"));
    }
    let len: usize = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .context("ctrl_tcp: bad netstring length")?;
    let end = colon + 1 + len;
    if buf.len() < end + 1 {
        return Ok(None);
    }
    if buf[end] != b',' {
        return Err(E2eError::new("ctrl_tcp: netstring without trailing comma"));
    }
    let payload = buf[colon + 1..end].to_vec();
    buf.drain(..=end);
    Ok(Some(payload))
}

enum Message {
    Event(Event),
    Response {
        token: Option<String>,
        response: Response,
    },
}

fn parse_message(payload: &[u8]) -> Result<Message> {
    let v: Value = serde_json::from_slice(payload).context("ctrl_tcp: bad JSON")?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if v.get("response").and_then(Value::as_bool) == Some(true) {
        return Ok(Message::Response {
            token: v.get("token").and_then(Value::as_str).map(str::to_string),
            response: Response {
                ok: v.get("ok").and_then(Value::as_bool).unwrap_or(false),
                data: s("data"),
            },
        });
    }
    if v.get("event").is_some() {
        return Ok(Message::Event(Event {
            class: s("class"),
            kind: s("type"),
            param: s("param"),
            account: s("accountaor"),
            call_id: s("id"),
            at: Instant::now(),
        }));
    }
    Err(E2eError::new(format!(
        "ctrl_tcp: neither event nor response: {}",
        String::from_utf8_lossy(payload)
    )))
}

/// A `ctrl_tcp` connection.
pub struct Ctrl {
    stream: TcpStream,
    buf: Vec<u8>,
    queued: VecDeque<Event>,
    seq: u32,
    /// Every event read so far, in order.
    pub history: Vec<Event>,
}

impl Ctrl {
    fn connect(addr: SocketAddr) -> Result<Ctrl> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        stream.set_nodelay(true)?;
        Ok(Ctrl {
            stream,
            buf: Vec::new(),
            queued: VecDeque::new(),
            seq: 0,
            history: Vec::new(),
        })
    }

    /// Reads one message, waiting at most until `deadline`.
    fn read_message(&mut self, deadline: Instant) -> Result<Option<Message>> {
        loop {
            if let Some(p) = take_netstring(&mut self.buf)? {
                let m = parse_message(&p)?;
                if let Message::Event(e) = &m {
                    self.history.push(e.clone());
                }
                return Ok(Some(m));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(E2eError::new("ctrl_tcp: baresip closed the connection")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(E2eError::new(format!("ctrl_tcp: {e}"))),
            }
        }
    }

    /// Runs one command and returns its response; events read meanwhile are queued.
    pub fn command(
        &mut self,
        command: &str,
        params: Option<&str>,
        timeout: Duration,
    ) -> Result<Response> {
        self.seq += 1;
        let token = format!("e2e{}", self.seq);
        let mut msg = json!({ "command": command, "token": token });
        if let Some(p) = params {
            msg["params"] = Value::from(p);
        }
        self.stream
            .write_all(&netstring(msg.to_string().as_bytes()))
            .context(format!("ctrl_tcp: sending {command}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_message(deadline)? {
                None => {
                    return Err(E2eError::new(format!(
                        "ctrl_tcp: no response to {command} within {timeout:?}"
                    )))
                }
                Some(Message::Response { token: t, response }) if t.as_deref() == Some(&token) => {
                    return Ok(response)
                }
                Some(Message::Response { .. }) => {}
                Some(Message::Event(e)) => self.queued.push_back(e),
            }
        }
    }

    /// The next event, waiting up to `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        if let Some(e) = self.queued.pop_front() {
            return Ok(Some(e));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_message(deadline)? {
                None => return Ok(None),
                Some(Message::Event(e)) => return Ok(Some(e)),
                Some(Message::Response { .. }) => {}
            }
        }
    }
}

/// Where Debian (and a source install) put baresip's modules.
fn module_path() -> Result<PathBuf> {
    let mut candidates = vec![
        PathBuf::from("/usr/lib/baresip/modules"),
        PathBuf::from("/usr/local/lib/baresip/modules"),
    ];
    if let Ok(rd) = fs::read_dir("/usr/lib") {
        for e in rd.flatten() {
            candidates.push(e.path().join("baresip/modules"));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.join("ctrl_tcp.so").is_file())
        .context("baresip modules (ctrl_tcp.so) not found: apt-get install baresip-core")
}

/// The `config` file for one phone.
pub fn config_text(
    sip_port: u16,
    ctrl_port: u16,
    rtp_min: u16,
    rtp_max: u16,
    tone_hz: u32,
    modules: &Path,
    record_dir: &Path,
) -> String {
    let mut c = String::new();
    let _ = write!(
        c,
        "# generated by srtpgate's end-to-end harness\n\
         poll_method\tepoll\n\
         sip_listen\t127.0.0.1:{sip_port}\n\
         net_interface\t127.0.0.1\n\
         call_local_timeout\t20\n\
         call_max_calls\t2\n\
         # ausine only produces 48 kHz stereo; baresip resamples it for PCMU\n\
         audio_source\tausine,{tone_hz}\n\
         ausrc_srate\t48000\n\
         ausrc_channels\t2\n\
         ausrc_format\ts16\n\
         auplay_format\ts16\n\
         auenc_format\ts16\n\
         audec_format\ts16\n\
         audio_level\tno\n\
         rtp_ports\t{rtp_min}-{rtp_max}\n\
         rtcp_mux\tno\n\
         jitter_buffer_delay\t1-10\n\
         module_path\t{modules}\n\
         module\tg711.so\n\
         module\tsndfile.so\n\
         module\tausine.so\n\
         module\tsrtp.so\n\
         module_tmp\tuuid.so\n\
         module_app\tmenu.so\n\
         module_app\tctrl_tcp.so\n\
         ctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n\
         statmode_default\toff\n\
         snd_path\t{record}\n",
        modules = modules.display(),
        record = record_dir.display(),
    );
    c
}

/// A running baresip with its `ctrl_tcp` connection.
pub struct Baresip {
    pub ua: UserAgent,
    pub sip_port: u16,
    pub dir: PathBuf,
    pub ctrl: Ctrl,
    pub process: Child,
}

impl Baresip {
    /// Generates the config directory `<wd>/<user>` and starts baresip; ready when
    /// `ctrl_tcp` accepts and answers a command.
    pub fn start(wd: &Workdir, ua: &UserAgent) -> Result<Self> {
        Self::start_with_config(wd, ua, "")
    }

    /// Like [`start`](Self::start), with `extra` lines appended to the generated config
    /// (e.g. `sip_cafile` for SIP over TLS).
    pub fn start_with_config(wd: &Workdir, ua: &UserAgent, extra: &str) -> Result<Self> {
        let bin = require("baresip", "baresip-core")?;
        let modules = module_path()?;
        let dir = wd.subdir(&ua.user)?;
        // baresip opens TLS on the SIP port + 1.
        let sip_port = ports::free_block(2)?;
        let ctrl_port = ports::free_port()?;
        let rtp_min = ports::free_block(20)?;
        fs::write(
            dir.join("config"),
            config_text(
                sip_port,
                ctrl_port,
                rtp_min,
                rtp_min + 19,
                ua.tone_hz,
                &modules,
                &dir,
            ) + ua.media.config_lines()
                + extra,
        )?;
        fs::write(dir.join("accounts"), "")?;
        fs::write(dir.join("contacts"), "")?;
        let mut cmd = Command::new(bin);
        cmd.arg("-f").arg(&dir);
        let mut process = Child::spawn(wd, &format!("baresip-{}", ua.user), cmd)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ctrl_port));
        let mut ctrl = wait_until(
            &format!("baresip {} ctrl_tcp on {addr}", ua.user),
            Duration::from_secs(10),
            || {
                process.check_running()?;
                Ok(Ctrl::connect(addr).ok())
            },
        )?;
        ctrl.command("about", None, Duration::from_secs(5))?;
        Ok(Baresip {
            ua: ua.clone(),
            sip_port,
            dir,
            ctrl,
            process,
        })
    }

    /// [`start`](Self::start)s the phone and [`register`](Self::register)s it at
    /// `registrar` without credentials, waiting up to 5 s for `REGISTER_OK`.
    pub fn start_registered(wd: &Workdir, ua: &UserAgent, registrar: SocketAddr) -> Result<Self> {
        let mut p = Self::start(wd, ua)?;
        p.register(registrar, Duration::from_secs(5))?;
        Ok(p)
    }

    /// The SIP address of this phone at `registrar`.
    pub fn aor(&self, registrar: SocketAddr) -> String {
        format!("sip:{}@{registrar}", self.ua.user)
    }

    /// Creates the account `<sip:USER@registrar>` with `uanew` and waits for `REGISTER_OK`
    /// (no credentials: srtpgate's loopback default and Kamailio's test config).
    pub fn register(&mut self, registrar: SocketAddr, timeout: Duration) -> Result<()> {
        let aor = self.aor(registrar);
        self.register_account(&aor, None, timeout)
    }

    /// Creates the account `aor` (a SIP URI, parameters such as `;transport=tcp` allowed)
    /// with `uanew`, answering digest challenges with `password` when given, and waits for
    /// `REGISTER_OK`; `REGISTER_FAIL` first is an error. The account offers PCMU only,
    /// answers automatically when the user agent says so, and uses its media encryption.
    pub fn register_account(
        &mut self,
        aor: &str,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<()> {
        let mut params = format!("<{aor}>");
        if let Some(pw) = password {
            let _ = write!(params, ";auth_pass={pw}");
        }
        params.push_str(";regint=600;audio_codecs=pcmu");
        if self.ua.auto_answer {
            params.push_str(";answermode=auto");
        }
        params.push_str(self.ua.media.account_param());
        let r = self
            .ctrl
            .command("uanew", Some(&params), Duration::from_secs(5))?;
        if !r.ok {
            return Err(E2eError::new(format!("uanew {params}: {}", r.data.trim())));
        }
        self.wait_event("REGISTER_OK", &["REGISTER_FAIL"], timeout)
            .map(|_| ())
    }

    /// [`register_account`](Self::register_account) with this phone's password from
    /// `users` (user name, password); no password when the user is not listed.
    pub fn register_user(
        &mut self,
        aor: &str,
        users: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<()> {
        let pw = users
            .iter()
            .find(|(u, _)| *u == self.ua.user)
            .map(|(_, pw)| *pw);
        self.register_account(aor, pw, timeout)
    }

    /// Dials `uri` and waits up to 10 s for `CALL_ESTABLISHED`; `CALL_CLOSED` first is an
    /// error.
    pub fn dial_established(&mut self, uri: &str) -> Result<Event> {
        self.dial(uri)?;
        self.wait_event(
            "CALL_ESTABLISHED",
            &["CALL_CLOSED"],
            Duration::from_secs(10),
        )
    }

    /// Keeps an established call for `talk` (the call must not close meanwhile), hangs up
    /// and waits up to 5 s for `CALL_CLOSED`.
    pub fn talk_and_hang_up(&mut self, talk: Duration) -> Result<Event> {
        self.expect_no_event("CALL_CLOSED", talk)?;
        self.hangup()?;
        self.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))
    }

    /// Places a call.
    pub fn dial(&mut self, uri: &str) -> Result<()> {
        let r = self
            .ctrl
            .command("dial", Some(uri), Duration::from_secs(5))?;
        if !r.ok {
            return Err(E2eError::new(format!("dial {uri}: {}", r.data.trim())));
        }
        Ok(())
    }

    /// Answers the incoming call.
    pub fn accept(&mut self) -> Result<()> {
        let r = self.ctrl.command("accept", None, Duration::from_secs(5))?;
        if !r.ok {
            return Err(E2eError::new(format!("accept: {}", r.data.trim())));
        }
        Ok(())
    }

    /// Hangs up the current call.
    pub fn hangup(&mut self) -> Result<()> {
        let r = self.ctrl.command("hangup", None, Duration::from_secs(5))?;
        if !r.ok {
            return Err(E2eError::new(format!("hangup: {}", r.data.trim())));
        }
        Ok(())
    }

    /// Waits for event `kind`; fails at once on any event in `fatal`.
    pub fn wait_event(&mut self, kind: &str, fatal: &[&str], timeout: Duration) -> Result<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ctrl.next_event(left)? {
                Some(e) if e.kind == kind => return Ok(e),
                Some(e) if fatal.contains(&e.kind.as_str()) => {
                    return Err(E2eError::new(format!(
                        "{}: {} ({}) while waiting for {kind}",
                        self.ua.user, e.kind, e.param
                    )))
                }
                Some(_) => {}
                None => {
                    return Err(E2eError::new(format!(
                        "{}: no {kind} within {timeout:?}; events so far: {}",
                        self.ua.user,
                        self.event_summary()
                    )))
                }
            }
        }
    }

    /// Waits `d`, failing if event `kind` (e.g. `CALL_CLOSED`) arrives meanwhile.
    pub fn expect_no_event(&mut self, kind: &str, d: Duration) -> Result<()> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.ctrl.next_event(left)? {
                Some(e) if e.kind == kind => {
                    return Err(E2eError::new(format!(
                        "{}: unexpected {kind} ({})",
                        self.ua.user, e.param
                    )))
                }
                _ => {}
            }
        }
    }

    /// `TYPE(param)` for every event so far.
    pub fn event_summary(&self) -> String {
        self.ctrl
            .history
            .iter()
            .map(|e| format!("{}({})", e.kind, e.param))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The WAV file `sndfile` wrote with the audio this phone received (`dump-*-dec.wav`).
    pub fn recording(&self) -> Result<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("dump-") && n.ends_with("-dec.wav"))
            })
            .collect();
        found.sort();
        found.pop().context(format!(
            "{}: no received-audio recording (dump-*-dec.wav) in {}",
            self.ua.user,
            self.dir.display()
        ))
    }

    /// Quits baresip (it unregisters first, so stop it while the registrar still runs).
    pub fn stop(&mut self) {
        let _ = self.ctrl.command("quit", None, Duration::from_millis(500));
        self.process.stop(Duration::from_secs(3));
    }
}

/// `caller` dials `uri` (the callee's address), both phones see the call established
/// within 10 s, they talk for `talk` (no `CALL_CLOSED` meanwhile), `caller` hangs up and
/// both see `CALL_CLOSED` within 5 s.
pub fn talk_call(
    caller: &mut Baresip,
    callee: &mut Baresip,
    uri: &str,
    talk: Duration,
) -> Result<()> {
    caller.dial(uri)?;
    let setup = Duration::from_secs(10);
    callee.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
    caller.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], setup)?;
    caller.talk_and_hang_up(talk)?;
    callee.wait_event("CALL_CLOSED", &[], Duration::from_secs(5))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_round_trip_and_split() {
        let mut buf = netstring(b"{\"a\":1}");
        buf.extend_from_slice(b"3:abc,5:he");
        assert_eq!(take_netstring(&mut buf).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(take_netstring(&mut buf).unwrap().unwrap(), b"abc");
        assert_eq!(take_netstring(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"llo,");
        assert_eq!(take_netstring(&mut buf).unwrap().unwrap(), b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn broken_netstrings_are_errors() {
        assert!(take_netstring(&mut b"x:abc,".to_vec()).is_err());
        assert!(take_netstring(&mut b"3:abcd".to_vec()).is_err());
        assert!(take_netstring(&mut b"99999999999".to_vec()).is_err());
    }

    #[test]
    fn events_and_responses_parse() {
        let e = br#"{"event":true,"class":"call","type":"CALL_CLOSED","param":"bye","accountaor":"sip:a@h","id":"x1"}"#;
        match parse_message(e).unwrap() {
            Message::Event(e) => {
                assert_eq!((e.kind.as_str(), e.call_id.as_str()), ("CALL_CLOSED", "x1"))
            }
            _ => panic!("not an event"),
        }
        let r = br#"{"response":true,"ok":false,"data":"no","token":"t9"}"#;
        match parse_message(r).unwrap() {
            Message::Response { token, response } => {
                assert_eq!(token.as_deref(), Some("t9"));
                assert!(!response.ok);
            }
            _ => panic!("not a response"),
        }
    }
}
