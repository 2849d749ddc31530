//! Shared pieces of the li-receiver tests: running the binary, tones, WAV reading, certs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use srtpgate_tools::li::g711;

pub struct Receiver {
    pub child: Child,
    pub addr: SocketAddr,
    pub out: PathBuf,
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts li-receiver with `extra` arguments, writing into `out`.
pub fn start_receiver(out: &Path, extra: &[&str]) -> Receiver {
    let mut child = Command::new(env!("CARGO_BIN_EXE_li-receiver"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start li-receiver");
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let addr = first
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    std::thread::spawn(move || {
        let mut rest = String::new();
        while lines.read_line(&mut rest).unwrap_or(0) > 0 {}
        print!("{rest}");
    });
    Receiver {
        child,
        addr,
        out: out.to_path_buf(),
    }
}

/// A test that fails does not leave li-receiver running.
impl Drop for Receiver {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Receiver {
    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.wait()
    }

    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "li-receiver did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn summary(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.out.join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// `n` samples of a sine tone at `freq` Hz, 8 kHz, amplitude 8000, from sample `start`.
pub fn tone(freq: f64, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin()) as i16)
        .collect()
}

pub fn ulaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|s| g711::linear_to_ulaw(*s)).collect()
}

/// A-law from the A-law table itself: the code whose decoded value is nearest.
pub fn alaw(samples: &[i16]) -> Vec<u8> {
    let table: Vec<(i16, u8)> = (0..=255u8).map(|b| (g711::alaw_to_linear(b), b)).collect();
    samples
        .iter()
        .map(|s| {
            table
                .iter()
                .min_by_key(|(v, _)| (*v as i32 - *s as i32).abs())
                .unwrap()
                .1
        })
        .collect()
}

/// The 16-bit samples of a PCM WAV file written by li-receiver (8 kHz mono).
pub fn wav_samples(path: &Path) -> Vec<i16> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 8000);
    let data = u32::from_le_bytes(b[40..44].try_into().unwrap()) as usize;
    assert_eq!(data, b.len() - 44);
    b[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Share of the signal's energy at `freq` (Goertzel), 0..1.
pub fn tone_share(samples: &[i16], freq: f64) -> f64 {
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for x in samples {
        let s0 = *x as f64 + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let energy: f64 = samples.iter().map(|x| (*x as f64).powi(2)).sum();
    // A pure tone puts energy * n / 2 into its bin.
    power / (energy * n / 2.0)
}

/// sox's rough frequency of a WAV file, if sox is installed.
pub fn sox_frequency(path: &Path) -> Option<f64> {
    let o = Command::new("sox")
        .arg(path)
        .args(["-n", "stat"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&o.stderr).to_string();
    text.lines()
        .find(|l| l.starts_with("Rough   frequency"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
}

pub fn have(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is required in CI (see tools/test.sh)"
        );
        eprintln!("skipped part: {tool} not installed");
    }
    ok
}

/// PEM files for mutual TLS: a CA, the agency's certificate (for `agency.test`) and the
/// delivering node's client certificate, all signed by the CA.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

pub fn pki(ca_name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("agency.test");
    let (client_cert, client_key) = leaf("srtpgate.test");
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}
