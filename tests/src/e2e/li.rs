//! Lawful interception from the outside: the X1 admin listener of srtpgate (tasks and
//! destinations over HTTP with a bearer token) and `li-receiver` as the agency, which takes
//! X3 over TCP and writes per-stream WAVs and a `summary.json`.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::ports;
use super::process::{wait_until, Child, Workdir};
use super::tools::tool;
use super::{Context, E2eError, Result};

/// POSTs one X1 request to the admin listener at `addr` with `Authorization: Bearer
/// TOKEN`; returns the HTTP status and the body of the answer.
pub fn x1(addr: SocketAddr, token: &str, body: &Value) -> Result<(u16, String)> {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).context(format!("connecting to X1 on {addr}"))?;
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

/// Over X1 at `admin`: creates the X3-only destination `did` (the agency at `agency`)
/// and activates the task `xid` for `target` (a SIP URI) delivering to it. Each request
/// must get HTTP 200.
pub fn activate_task(
    admin: SocketAddr,
    token: &str,
    agency: SocketAddr,
    did: &str,
    xid: &str,
    target: &str,
) -> Result<()> {
    let ops = [
        json!({"operation": "CreateDestination", "destinationDetails": {
            "dId": did, "friendlyName": "e2e agency", "deliveryType": "X3Only",
            "deliveryAddress": {"ipAddressPort": {"address": agency.ip().to_string(),
                                "port": {"TCPPort": agency.port()}}}}}),
        json!({"operation": "ActivateTask", "taskDetails": {
            "xId": xid, "targetIdentifiers": [{"sipUri": target}],
            "deliveryType": "X3Only", "listOfDIDs": [did]}}),
    ];
    for op in &ops {
        let (status, body) = x1(admin, token, op)?;
        if status != 200 {
            return Err(E2eError::new(format!(
                "X1 {}: HTTP {status} {body}",
                op["operation"]
            )));
        }
    }
    Ok(())
}

/// The agency: `li-receiver --strict` on a free port of 127.0.0.1, writing to
/// `<wd>/li-out`.
pub struct Agency {
    pub process: Child,
    pub out: PathBuf,
    pub addr: SocketAddr,
}

impl Agency {
    /// Starts li-receiver and waits until it accepts TCP connections.
    pub fn start(wd: &Workdir) -> Result<Agency> {
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

    /// Stops li-receiver (SIGTERM) and reads what it wrote.
    pub fn finish(mut self) -> Result<Delivery> {
        self.process.stop(Duration::from_secs(5));
        let text = fs::read_to_string(self.out.join("summary.json"))
            .context("li-receiver wrote no summary.json")?;
        let summary =
            serde_json::from_str(&text).map_err(|e| E2eError::new(format!("summary.json: {e}")))?;
        Ok(Delivery {
            summary,
            out: self.out,
        })
    }
}

/// What the agency received: li-receiver's `summary.json` and its output directory.
pub struct Delivery {
    pub summary: Value,
    pub out: PathBuf,
}

impl Delivery {
    /// The summary's `streams`.
    pub fn streams(&self) -> Vec<Value> {
        self.summary["streams"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The first stream in `direction` (`from-target` or `to-target`) under task `xid`.
    pub fn stream(&self, direction: &str, xid: &str) -> Result<Value> {
        self.streams()
            .into_iter()
            .find(|s| s["direction"].as_str() == Some(direction) && s["xid"].as_str() == Some(xid))
            .context(format!("no {direction} stream delivered: {}", self.summary))
    }

    /// The WAV file of a stream (named relative to the output directory or absolute).
    pub fn wav(&self, stream: &Value) -> Result<PathBuf> {
        let w = PathBuf::from(
            stream["wav"]
                .as_str()
                .context(format!("no WAV for stream {stream}"))?,
        );
        Ok(if w.is_absolute() { w } else { self.out.join(w) })
    }
}
