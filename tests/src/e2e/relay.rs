//! The relay under test, driven over ng by Kamailio: srtpgate or Sipwise rtpengine, so one
//! scenario runs against both.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use super::ng;
use super::ports;
use super::process::{require, wait_until, Child, Workdir};
use super::{Context, E2eError, Result};

/// Media ports given to one relay instance.
pub const MEDIA_PORTS: u16 = 40;

/// Which relay answers Kamailio's ng requests.
#[derive(Clone, Debug)]
pub enum Relay {
    /// Sipwise rtpengine (Debian `rtpengine-daemon`) in userspace mode.
    Rtpengine,
    /// srtpgate's daemon binary.
    Srtpgate { binary: PathBuf },
}

/// What a relay does with SDES keys when both call legs are SRTP with the same suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdesKeys {
    /// The offerer's `a=crypto` line goes to the answerer unchanged (same key), and the
    /// answerer's key goes back to the offerer unchanged when it picked that suite:
    /// rtpengine's "SRTP<>SRTP passthrough", its default.
    Forwarded,
    /// Each leg gets keys the relay generated; no endpoint's key reaches the other side.
    Fresh,
}

impl Relay {
    /// srtpgate, from `SRTPGATE_BIN`, else the newest `target/{debug,release}/srtpgate`,
    /// else built with `cargo build -p srtpgate-control --bin srtpgate`.
    pub fn srtpgate() -> Result<Relay> {
        Ok(Relay::Srtpgate {
            binary: locate_srtpgate()?,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Relay::Rtpengine => "rtpengine",
            Relay::Srtpgate { .. } => "srtpgate",
        }
    }

    pub fn sdes_keys(&self) -> SdesKeys {
        match self {
            Relay::Rtpengine => SdesKeys::Forwarded,
            Relay::Srtpgate { .. } => SdesKeys::Fresh,
        }
    }

    /// Starts the relay on 127.0.0.1 with a free ng port and a free block of media ports,
    /// and waits until it answers an ng `ping`.
    pub fn start(&self, wd: &Workdir) -> Result<RunningRelay> {
        let ng = SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?));
        let port_min = ports::free_block(MEDIA_PORTS)?;
        let port_max = port_min + MEDIA_PORTS - 1;
        let cmd = match self {
            Relay::Rtpengine => {
                let bin = require("rtpengine", "rtpengine-daemon")?;
                let mut c = Command::new(bin);
                c.args([
                    "--config-file=none",
                    "--table=-1",
                    "--no-redis-required",
                    "--foreground",
                    "--log-stderr",
                    "--log-level=6",
                    "--interface=127.0.0.1",
                    "--num-threads=2",
                ])
                .arg(format!("--listen-ng={ng}"))
                .arg(format!("--port-min={port_min}"))
                .arg(format!("--port-max={port_max}"));
                c
            }
            Relay::Srtpgate { binary } => {
                let mut c = Command::new(binary);
                c.arg("--ng-listen")
                    .arg(ng.to_string())
                    .args(["--interface", "127.0.0.1"])
                    .arg("--port-min")
                    .arg(port_min.to_string())
                    .arg("--port-max")
                    .arg(port_max.to_string())
                    .args(["--metrics-listen", "off"])
                    .env("SRTPGATE_LOG", "info")
                    .env("NO_COLOR", "1");
                c
            }
        };
        let mut process = Child::spawn(wd, self.name(), cmd)?;
        wait_ng_ready(&mut process, ng)?;
        Ok(RunningRelay {
            relay: self.clone(),
            ng,
            port_min,
            port_max,
            process,
        })
    }
}

/// Waits up to 10 s until the relay `process` answers an ng `ping` on `ng`; the process
/// exiting first is an error.
fn wait_ng_ready(process: &mut Child, ng: SocketAddr) -> Result<()> {
    wait_until(
        &format!("{} to answer ng ping on {ng}", process.name()),
        Duration::from_secs(10),
        || {
            process.check_running()?;
            Ok(ng::ping(ng, Duration::from_millis(100))?.then_some(()))
        },
    )
}

/// A relay that answered `ping`.
pub struct RunningRelay {
    pub relay: Relay,
    pub ng: SocketAddr,
    pub port_min: u16,
    pub port_max: u16,
    pub process: Child,
}

impl RunningRelay {
    pub fn contains_port(&self, port: u16) -> bool {
        (self.port_min..=self.port_max).contains(&port)
    }
}

/// The ports of an srtpgate started from a config file with its SIP edge: all free on
/// 127.0.0.1 when allocated.
#[derive(Clone, Copy, Debug)]
pub struct EdgePorts {
    /// The ng listener.
    pub ng: SocketAddr,
    /// First of [`MEDIA_PORTS`] media ports.
    pub port_min: u16,
    /// The SIP port (UDP and TCP); the next port is free as well (for TLS).
    pub sip: u16,
}

impl EdgePorts {
    pub fn allocate() -> Result<EdgePorts> {
        Ok(EdgePorts {
            ng: SocketAddr::from((Ipv4Addr::LOCALHOST, ports::free_port()?)),
            port_min: ports::free_block(MEDIA_PORTS)?,
            sip: ports::free_block(2)?,
        })
    }

    pub fn port_max(&self) -> u16 {
        self.port_min + MEDIA_PORTS - 1
    }

    /// `sip:USER@127.0.0.1:SIP`, a user's address at the SIP edge.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.sip)
    }

    /// The SIP edge as a registrar address.
    pub fn registrar(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.sip))
    }

    /// The `[ng]`, `[media]` (one worker, unpinned, one interface on 127.0.0.1) and `[sip]`
    /// (UDP and TCP listeners) tables of the config file. The text ends inside `[sip]`, so
    /// more `[sip]` keys may follow before the next table.
    pub fn config(&self) -> String {
        format!(
            "[ng]\nlisten = \"{}\"\n\
             [media]\nport-min = {}\nport-max = {}\nworkers = 1\npin = false\n\
             interfaces = [{{ name = \"default\", bind = \"127.0.0.1\" }}]\n\
             [sip]\nlisten-udp = [\"127.0.0.1:{sip}\"]\nlisten-tcp = [\"127.0.0.1:{sip}\"]\n",
            self.ng,
            self.port_min,
            self.port_max(),
            sip = self.sip,
        )
    }
}

/// Where srtpgate's metrics go when it runs from a config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metrics {
    /// `--metrics-listen off`.
    Off,
    /// As the config file says (its `[metrics]` table).
    FromConfig,
}

/// Starts srtpgate (the binary [`Relay::srtpgate`] finds) with `config` written to
/// `<wd>/srtpgate.toml`, `SRTPGATE_LOG=log`, and waits until it answers an ng `ping` on
/// `ports.ng`.
pub fn start_srtpgate_with_config(
    wd: &Workdir,
    ports: &EdgePorts,
    config: &str,
    metrics: Metrics,
    log: &str,
) -> Result<RunningRelay> {
    let relay = Relay::srtpgate()?;
    let Relay::Srtpgate { binary } = &relay else {
        return Err(E2eError::new("not srtpgate"));
    };
    let path = wd.path().join("srtpgate.toml");
    std::fs::write(&path, config).context(format!("writing {}", path.display()))?;
    let mut cmd = Command::new(binary);
    cmd.arg("--config").arg(&path);
    if metrics == Metrics::Off {
        cmd.args(["--metrics-listen", "off"]);
    }
    cmd.env("SRTPGATE_LOG", log).env("NO_COLOR", "1");
    let mut process = Child::spawn(wd, "srtpgate", cmd)?;
    let ng = ports.ng;
    wait_ng_ready(&mut process, ng)?;
    Ok(RunningRelay {
        relay,
        ng,
        port_min: ports.port_min,
        port_max: ports.port_max(),
        process,
    })
}

/// The metrics page (`GET /metrics`) of the listener at `addr`, HTTP head included.
pub fn metrics_page(addr: SocketAddr) -> Result<String> {
    let mut s = TcpStream::connect(addr).context(format!("connecting to metrics on {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    Ok(out)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_relative() {
                workspace_root().join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn newest_srtpgate() -> Option<PathBuf> {
    let t = target_dir();
    ["debug", "release"]
        .iter()
        .map(|p| t.join(p).join("srtpgate"))
        .filter(|p| p.is_file())
        .max_by_key(|p| {
            p.metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        })
}

fn locate_srtpgate() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SRTPGATE_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(E2eError::new(format!(
            "SRTPGATE_BIN={} is not a file",
            p.display()
        )));
    }
    if let Some(p) = newest_srtpgate() {
        return Ok(p);
    }
    // Not built yet. A `cargo test` that is running us may hold the build directory lock,
    // so bound the wait instead of hanging the test.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["build", "-p", "srtpgate-control", "--bin", "srtpgate"])
        .current_dir(workspace_root())
        .spawn()
        .context("running cargo build for srtpgate")?;
    let end = Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                return Err(E2eError::new(format!(
                    "cargo build -p srtpgate-control --bin srtpgate failed ({status})"
                )));
            }
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(E2eError::new(
                "building srtpgate took too long (is the build directory locked by the running \
                 cargo?): run `cargo build -p srtpgate-control --bin srtpgate` first",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    newest_srtpgate().context("cargo build succeeded but target/debug/srtpgate is missing")
}
