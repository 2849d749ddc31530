//! Kamailio as registrar and stateful proxy that anchors media in the relay through its
//! `rtpengine` module. The config is `tests/fixtures/kamailio.cfg.tmpl` with its
//! placeholders filled in.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use super::ports;
use super::process::{require, wait_until, Child, Workdir};
use super::{E2eError, Result};

/// The config template, compiled in.
pub const TEMPLATE: &str = include_str!("../../fixtures/kamailio.cfg.tmpl");

/// Flags Kamailio passes to `rtpengine_offer()` and `rtpengine_answer()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFlags {
    pub offer: String,
    pub answer: String,
}

/// Rewrites SDP addresses to the relay's, drops ICE and DTLS, and asks for padded base64
/// SDES keys (baresip misreads unpadded AEAD_AES_256_GCM keys).
pub const BASE_FLAGS: &str =
    "replace-origin replace-session-connection ICE=remove DTLS=off SDES-pad";

impl MediaFlags {
    /// The transport protocol in each SDP is left as the endpoint wrote it.
    pub fn keep_transport() -> Self {
        MediaFlags {
            offer: BASE_FLAGS.into(),
            answer: BASE_FLAGS.into(),
        }
    }

    /// The offer goes to the callee with transport `proto` (`RTP/AVP`, `RTP/SAVP`); the
    /// answer goes back to the caller in the caller's own protocol.
    pub fn offer_transport(proto: &str) -> Self {
        MediaFlags {
            offer: format!("{BASE_FLAGS} {proto}"),
            answer: BASE_FLAGS.into(),
        }
    }
}

/// Fills in the template. Fails on flags that would break the config's string literals and
/// on any placeholder left over.
pub fn render(sip_port: u16, ng: SocketAddr, flags: &MediaFlags) -> Result<String> {
    for f in [&flags.offer, &flags.answer] {
        if f.contains(['"', '\n', '\r', '\\']) {
            return Err(E2eError::new(format!("unusable rtpengine flags {f:?}")));
        }
    }
    let cfg = TEMPLATE
        .replace("@SIP_PORT@", &sip_port.to_string())
        .replace("@NG_SOCKET@", &format!("udp:{}:{}", ng.ip(), ng.port()))
        .replace("@OFFER_FLAGS@", &flags.offer)
        .replace("@ANSWER_FLAGS@", &flags.answer);
    let leftover = cfg
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find(|l| has_placeholder(l));
    if let Some(l) = leftover {
        return Err(E2eError::new(format!("placeholder left in config: {l}")));
    }
    Ok(cfg)
}

/// Whether `line` holds an `@NAME@` placeholder (upper case and underscores).
fn has_placeholder(line: &str) -> bool {
    line.split('@')
        .skip(1)
        .zip(line.split('@').skip(2))
        .any(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
}

/// A running Kamailio that answered an OPTIONS probe.
pub struct Kamailio {
    pub sip: SocketAddr,
    pub process: Child,
}

impl Kamailio {
    /// Writes the config into `wd` and starts Kamailio on `sip_port`, anchoring media at `ng`.
    pub fn start(wd: &Workdir, sip_port: u16, ng: SocketAddr, flags: &MediaFlags) -> Result<Self> {
        let bin = require("kamailio", "kamailio")?;
        let dir = wd.subdir("kamailio")?;
        let cfg_path = dir.join("kamailio.cfg");
        fs::write(&cfg_path, render(sip_port, ng, flags)?)?;
        let run = wd.subdir("kamailio/run")?;
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(&run)
            .arg("-w")
            .arg(&dir);
        let mut process = Child::spawn(wd, "kamailio", cmd)?;
        let sip = SocketAddr::from((Ipv4Addr::LOCALHOST, sip_port));
        wait_until(
            &format!("kamailio to answer OPTIONS on {sip}"),
            Duration::from_secs(10),
            || {
                process.check_running()?;
                Ok(options_ping(sip, Duration::from_millis(200))?.then_some(()))
            },
        )?;
        Ok(Kamailio { sip, process })
    }

    /// A free port for Kamailio's SIP socket.
    pub fn free_port() -> Result<u16> {
        ports::free_port()
    }
}

/// Sends one SIP OPTIONS to `proxy` and reports whether a 200 came back within `timeout`.
pub fn options_ping(proxy: SocketAddr, timeout: Duration) -> Result<bool> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sock.set_read_timeout(Some(timeout))?;
    let local = sock.local_addr()?;
    let branch = format!("z9hG4bK-e2e-{}-{}", std::process::id(), local.port());
    let msg = format!(
        "OPTIONS sip:{proxy} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=e2e\r\n\
         To: <sip:{proxy}>\r\n\
         Call-ID: {branch}@{local}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), proxy)?;
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Ok(buf[..n].starts_with(b"SIP/2.0 200")),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_without_placeholders() {
        let ng: SocketAddr = "127.0.0.1:2223".parse().unwrap();
        let cfg = render(5099, ng, &MediaFlags::offer_transport("RTP/AVP")).unwrap();
        assert!(cfg.contains("listen=udp:127.0.0.1:5099"));
        assert!(cfg.contains("\"udp:127.0.0.1:2223\""));
        assert!(cfg.contains(&format!("rtpengine_offer(\"{BASE_FLAGS} RTP/AVP\")")));
        assert!(cfg.contains(&format!("rtpengine_answer(\"{BASE_FLAGS}\")")));
        assert!(has_placeholder("x @SIP_PORT@ y"));
        assert!(!has_placeholder("sip:bob@127.0.0.1"));
        assert!(!cfg
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(has_placeholder));
    }

    #[test]
    fn quotes_in_flags_are_refused() {
        let ng: SocketAddr = "127.0.0.1:2223".parse().unwrap();
        let bad = MediaFlags {
            offer: "x\"); exit; #".into(),
            answer: String::new(),
        };
        assert!(render(5099, ng, &bad).is_err());
    }
}
