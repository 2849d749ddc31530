//! `vm-play` end to end: a mailbox key from `vm-play keygen`, a deposit recorded from the
//! engine (an SRTP flow with an as-received tap, a 1 kHz G.711 tone sent over UDP), then
//! `vm-play` with the right key (WAV with the tone and the right duration, checked by sox
//! where installed; a plain RTP pcap), with a wrong key and on modified files.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use relay::engine::{
    tap, Command as EngineCommand, Engine, EngineConfig, FlowSpec, PortShape, TapWhat, Transform,
};
use relay::record::{FsyncPolicy, Leg, LegSource, PublicKey, Recorder, RecorderConfig};
use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};

fn vm_play(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vm-play"))
        .args(args)
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-vm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn keygen(path: &Path) -> PublicKey {
    let out = vm_play(&["keygen".as_ref(), "--out".as_ref(), path.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PublicKey::from_base64(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads() {
    let dir = tempdir("keygen");
    let path = dir.join("mailbox.key");
    let pk = keygen(&path);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key =
        relay::record::PrivateKey::from_key_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(key.public_key(), pk);
    // An existing key is never overwritten.
    let again = vm_play(&["keygen".as_ref(), "--out".as_ref(), path.as_os_str()]);
    assert!(!again.status.success());
    assert_eq!(
        relay::record::PrivateKey::from_key_file(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .public_key(),
        pk
    );
    if std::env::var_os("VM_PLAY_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn policy() -> Policy {
    let s = Suite::AesCm128HmacSha1_80;
    Policy::new(s, MasterKey::new(s, &[0x5a; 16], &[0xa5; 14]).unwrap())
}

/// G.711 µ-law of a 16-bit sample (ITU-T G.711 segment encoding).
fn ulaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = (s.min(32635) + 0x84) as u32;
    let exp = (31 - s.leading_zeros()).saturating_sub(7).min(7);
    !(sign as u8 | ((exp as u8) << 4) | ((s >> (exp + 3)) & 0x0f) as u8)
}

/// One second of a 1 kHz tone in µ-law: from sox when installed (an encoder no one here
/// wrote), else from the encoder above.
fn tone() -> Vec<u8> {
    let sox = Command::new("sox")
        .args([
            "-n", "-r", "8000", "-c", "1", "-e", "u-law", "-t", "raw", "-", "synth", "1", "sine",
            "1000", "vol", "0.4",
        ])
        .output();
    match sox {
        Ok(o) if o.status.success() && o.stdout.len() == 8000 => o.stdout,
        _ => (0..8000)
            .map(|i| {
                ulaw(
                    (f64::sin(2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0) * 13000.0)
                        as i16,
                )
            })
            .collect(),
    }
}

/// Records the tone through the engine; returns the message path.
fn record_tone(dir: &Path, recipient: PublicKey, tone: &[u8]) -> PathBuf {
    let e = Engine::start(EngineConfig {
        workers: 1,
        pin: false,
        port_min: 52400,
        port_max: 52499,
        ..Default::default()
    })
    .unwrap();
    let pa = e.allocate(0, None, PortShape::Single, 1).unwrap().ports[0];
    let pb = e.allocate(0, Some(0), PortShape::Single, 1).unwrap().ports[0];
    let mut spec = FlowSpec::plain(pb);
    spec.ingress = Transform::Srtp(Box::new(SrtpContext::new(policy()).unwrap()));
    e.install(pa, spec).unwrap();
    let (t, rx) = tap(1, TapWhat::AsReceived, 0, 128);
    e.apply(pa, EngineCommand::AttachTap(pa, t)).unwrap();
    let rec = Recorder::start(
        RecorderConfig {
            dir: dir.to_path_buf(),
            mailbox_id: "sip:alice@example.org".into(),
            recipient,
            fsync: FsyncPolicy::OnClose,
            min_free_bytes: 0,
            max_duration: None,
            poll_interval: Duration::from_millis(5),
        },
        vec![Leg {
            name: "caller".into(),
            source: LegSource::Srtp {
                policy: policy(),
                initial_roc: 0,
            },
            tap: rx,
        }],
    )
    .unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], pa.port));
    let mut tx = SrtpContext::new(policy()).unwrap();
    for (i, frame) in tone.chunks(160).enumerate() {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x22];
        p[2..4].copy_from_slice(&(1000 + i as u16).to_be_bytes());
        p[4..8].copy_from_slice(&(i as u32 * 160).to_be_bytes());
        p.extend_from_slice(frame);
        let n = p.len();
        p.resize(n + 10, 0);
        tx.protect(&mut p, n).unwrap();
        phone.send_to(&p, to).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.stats().stored < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let info = rec.stop().unwrap().unwrap();
    e.shutdown();
    assert_eq!(info.packets, 50);
    info.path
}

fn wav_samples(path: &Path) -> Vec<i16> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"RIFF");
    assert_eq!(&b[8..16], b"WAVEfmt ");
    assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 8000);
    b[44..]
        .chunks(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn a_recorded_deposit_plays_with_the_right_key_only() {
    let dir = tempdir("play");
    let key_path = dir.join("mailbox.key");
    let pk = keygen(&key_path);
    let tone = tone();
    let message = record_tone(&dir.join("messages"), pk, &tone);

    // The tone's G.711 bytes are nowhere in the stored file.
    let stored = std::fs::read(&message).unwrap();
    let windows: std::collections::HashSet<&[u8]> = tone.windows(8).collect();
    assert!(
        !stored.windows(8).any(|w| windows.contains(w)),
        "plaintext G.711 on disk"
    );

    let wav = dir.join("out.wav");
    let pcap = dir.join("out.pcap");
    let out = vm_play(&[
        "--key".as_ref(),
        key_path.as_os_str(),
        message.as_os_str(),
        "--wav".as_ref(),
        wav.as_os_str(),
        "--pcap".as_ref(),
        pcap.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("50 packets"), "{err}");

    // One second exactly, and a 1 kHz tone: about 2000 zero crossings.
    let samples = wav_samples(&wav);
    assert_eq!(samples.len(), 8000);
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    assert!(
        (1900..=2100).contains(&crossings),
        "{crossings} zero crossings"
    );
    let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak > 8000, "peak {peak}");
    if let Ok(o) = Command::new("sox").arg(&wav).args(["-n", "stat"]).output() {
        let stat = String::from_utf8_lossy(&o.stderr);
        let field = |name: &str| -> f64 {
            let line = stat.lines().find(|l| l.starts_with(name)).unwrap();
            line.split(':').nth(1).unwrap().trim().parse().unwrap()
        };
        assert!((field("Length (seconds)") - 1.0).abs() < 1e-6, "{stat}");
        assert!((field("Rough   frequency") - 1000.0).abs() < 30.0, "{stat}");
    }

    // The pcap holds the plain RTP: the tone again.
    let mut r = srtpgate_tools::pcap::PcapReader::new(std::fs::File::open(&pcap).unwrap()).unwrap();
    let mut payload = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        payload.extend_from_slice(&rec.data[20 + 8 + 12..]);
    }
    assert_eq!(payload, tone);

    // A wrong key: refused, clearly, and nothing written.
    let wrong = dir.join("wrong.key");
    keygen(&wrong);
    let wav2 = dir.join("wrong.wav");
    let out = vm_play(&[
        "--key".as_ref(),
        wrong.as_os_str(),
        message.as_os_str(),
        "--wav".as_ref(),
        wav2.as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("another mailbox key"), "{err}");
    assert!(!wav2.exists());

    // Modified files: a byte of the section header, of the envelope, of a packet.
    for at in [20, 200, stored.len() / 2] {
        let mut m = stored.clone();
        m[at] ^= 0x04;
        let bad = dir.join(format!("bad{at}.pcapng"));
        std::fs::write(&bad, &m).unwrap();
        let out = vm_play(&[
            "--key".as_ref(),
            key_path.as_os_str(),
            bad.as_os_str(),
            "--wav".as_ref(),
            wav2.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "byte {at}: {err}");
        assert!(err.contains("refused"), "{err}");
        assert!(!wav2.exists());
    }
    if std::env::var_os("VM_PLAY_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
