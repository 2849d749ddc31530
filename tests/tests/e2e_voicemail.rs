//! Sealed voicemail through srtpgate's SIP edge: a mailbox key pair is made with
//! `vm-play keygen`, srtpgate is started with a `[voicemail]` table naming the mailbox, a
//! real baresip phone (SDES-SRTP, registered) calls the voicemail URI `vm-bob` and sends a
//! tone for about 3 s, then hangs up. The stored message must exist, must not carry the
//! tone in its bytes, must play back with `vm-play --wav` as the tone of about the right
//! duration, and must be refused with a wrong key. A call to an unknown mailbox gets 404.
//! Needs the Debian package `baresip-core`.

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use srtpgate_tests::e2e::baresip::{Baresip, MediaEnc, UserAgent};
use srtpgate_tests::e2e::process::{run_in_workdir, Workdir};
use srtpgate_tests::e2e::relay::{start_srtpgate_with_config, EdgePorts, Metrics};
use srtpgate_tests::e2e::scenario::CALLER_TONE_HZ;
use srtpgate_tests::e2e::voicemail::{expect_talk, no_tone_in_clear, stored_files, VmPlay};
use srtpgate_tests::e2e::{E2eError, Result};

/// RTP payloads of a classic pcap of plain RTP over IPv4/UDP (link type raw IP or Ethernet).
fn pcap_rtp_payloads(b: &[u8]) -> Result<Vec<Vec<u8>>> {
    let le32 = |at: usize| -> Option<u32> {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    // Microsecond or nanosecond timestamps.
    if !matches!(le32(0), Some(0xa1b2_c3d4 | 0xa1b2_3c4d)) {
        return Err(E2eError::new("vm-play --pcap: not a little-endian pcap"));
    }
    let link_skip = match le32(20) {
        Some(1) => 14,
        _ => 0,
    };
    let mut out = Vec::new();
    let mut at = 24;
    while let Some(incl) = le32(at + 8) {
        let start = at + 16;
        let Some(rec) = b.get(start..start + incl as usize) else {
            break;
        };
        if let Some(ip) = rec.get(link_skip..) {
            let ihl = usize::from(ip.first().copied().unwrap_or(0x45) & 0x0f) * 4;
            if let Some(rtp) = ip.get(ihl + 8..) {
                let cc = usize::from(rtp.first().copied().unwrap_or(0) & 0x0f);
                if let Some(p) = rtp.get(12 + 4 * cc..) {
                    out.push(p.to_vec());
                }
            }
        }
        at = start + incl as usize;
    }
    Ok(out)
}

fn run(wd: &Workdir, max_len: u64, media: MediaEnc) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let vm = VmPlay::locate()?;
    let (key, public) = vm.key_pair(wd.path(), "bob.key")?;
    let (wrong, _) = vm.key_pair(wd.path(), "other.key")?;
    let data = wd.path().join("voicemail");

    let ports = EdgePorts::allocate()?;
    let mut cfg = ports.config();
    let _ = write!(
        cfg,
        "[voicemail]\ndata-dir = {:?}\nuri-user = \"vm-<user>\"\nmax-message-length = {max_len}\n\
         [[voicemail.mailboxes]]\nid = \"bob\"\nowner = \"sip:bob@127.0.0.1\"\npublic-key = \"{public}\"\n",
        data.display().to_string(),
    );
    let mut relay =
        start_srtpgate_with_config(wd, &ports, &cfg, Metrics::Off, "info,control=debug")?;

    let ua = UserAgent::new("alice", CALLER_TONE_HZ, media, false);
    let mut a = Baresip::start_registered(wd, &ua, ports.registrar())?;

    // An unknown mailbox: refused, nothing stored.
    a.dial(&ports.uri("vm-nobody"))?;
    let closed = a.wait_event(
        "CALL_CLOSED",
        &["CALL_ESTABLISHED"],
        Duration::from_secs(10),
    )?;
    notes.push(format!("unknown mailbox: {closed:?}"));
    if !format!("{closed:?}").contains("404") {
        return Err(E2eError::new(format!(
            "expected 404 for an unknown mailbox: {closed:?}"
        )));
    }

    a.dial_established(&ports.uri("vm-bob"))?;
    // Talk for 3 s and hang up; with a shorter maximum length srtpgate hangs up itself.
    let talk = 3.0_f64.min(max_len as f64);
    if max_len > 3 {
        a.talk_and_hang_up(Duration::from_secs(3))?;
    } else {
        let closed = a.wait_event("CALL_CLOSED", &[], Duration::from_secs(max_len + 4))?;
        notes.push(format!(
            "srtpgate ended the call at the maximum length: {}",
            closed.param
        ));
    }
    std::thread::sleep(Duration::from_millis(500));
    a.stop();
    relay.process.stop(Duration::from_secs(2));

    let (files, others) = stored_files(&data.join("bob"));
    if files.len() != 1 {
        return Err(E2eError::new(format!(
            "expected one message in {}, found {files:?}",
            data.join("bob").display()
        )));
    }
    let msg = &files[0];
    if others
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".part"))
    {
        return Err(E2eError::new(
            "a .part file was left: the message was not closed",
        ));
    }
    let bytes = fs::read(msg)?;
    notes.push(format!("stored {} ({} bytes)", msg.display(), bytes.len()));
    // The file read as G.711 µ-law must not carry the tone: the payloads are ciphertext.
    no_tone_in_clear(&bytes, CALLER_TONE_HZ)?;

    let w = vm.wav(&key, msg, &wd.path().join("message.wav"))?;
    // The tone's own G.711 bytes (the plain RTP payloads vm-play recovers) must not
    // appear in the stored file.
    let pcap = wd.path().join("message.pcap");
    vm.pcap(&key, msg, &pcap)?;
    let payloads = pcap_rtp_payloads(&fs::read(&pcap)?)?;
    let mut probes = 0;
    for p in payloads.iter().filter(|p| p.len() >= 160) {
        for chunk in p.chunks_exact(16) {
            probes += 1;
            if bytes.windows(16).any(|w| w == chunk) {
                return Err(E2eError::new(
                    "the stored file contains G.711 payload bytes of the tone in clear",
                ));
            }
        }
    }
    if probes < 50 {
        return Err(E2eError::new(format!(
            "too few plain payloads to probe ({} packets)",
            payloads.len()
        )));
    }
    notes.push(format!(
        "{} plain payloads, none of {probes} 16-byte G.711 chunks found in the stored file",
        payloads.len()
    ));
    notes.push(expect_talk(&w, CALLER_TONE_HZ, talk)?);
    let refused = vm.refuses(&wrong, msg, &wd.path().join("wrong.wav"))?;
    notes.push(format!("wrong key refused: {refused}"));
    Ok(notes)
}

#[test]
fn deposit_through_the_sip_edge_is_sealed() {
    check("voicemail", 30, MediaEnc::SrtpMandatory);
}

/// A plain RTP caller: srtpgate protects the media on receipt under a fresh key and seals
/// that key, so the file is ciphertext all the same.
#[test]
fn plain_rtp_deposit_is_sealed_too() {
    check("voicemail-plain", 30, MediaEnc::Plain);
}

/// A 2 s maximum length: the message is closed at 2 s and srtpgate sends the BYE.
#[test]
fn maximum_length_ends_the_deposit() {
    check("voicemail-max", 2, MediaEnc::SrtpMandatory);
}

fn check(name: &str, max_len: u64, media: MediaEnc) {
    run_in_workdir(name, |wd| run(wd, max_len, media));
}
