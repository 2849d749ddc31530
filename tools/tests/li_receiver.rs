//! li-receiver as the agency runs it: PDUs written by hand over TCP; the pcap it writes is
//! read by tshark as RTP over UDP/IP with the addresses of the PDUs; the WAV holds the
//! decoded tone; gaps are counted; keepalives answered; malformed input refused (and with
//! --strict, the exit status says so).

mod li_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use li_support::*;
use relay::li::x3::{self, format, Attribute, Direction, Header, PduType};
use relay::li::Xid;

fn xid() -> Xid {
    "0b1c2d3e-4f50-4617-8899-aabbccddeeff".parse().unwrap()
}

fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn pdu(dir: Direction, seq: u32, attrs: &[Attribute<'_>], payload: &[u8]) -> Vec<u8> {
    let mut a = vec![
        Attribute::SequenceNumber(seq),
        Attribute::Timestamp {
            secs: 1_700_000_000 + seq / 50,
            nanos: (seq % 50) * 20_000_000,
        },
    ];
    a.extend_from_slice(attrs);
    let mut out = Vec::new();
    x3::encode(
        &Header {
            pdu_type: PduType::X3,
            payload_format: format::RTP,
            direction: dir,
            xid: xid(),
            correlation_id: 0x42,
        },
        &a,
        payload,
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn pcap_wav_and_summary_from_hand_made_pdus() {
    let out = temp_dir("li-receiver-basic");
    let mut r = start_receiver(&out, &[]);
    let mut s = TcpStream::connect(r.addr).unwrap();
    let from_attrs = [
        Attribute::SourceIpv4("198.51.100.10".parse().unwrap()),
        Attribute::DestinationIpv4("203.0.113.5".parse().unwrap()),
        Attribute::SourcePort(4000),
        Attribute::DestinationPort(30000),
    ];
    let mut n = 0;
    let mut stream = Vec::new();
    // From the target: 100 packets of a 1 kHz µ-law tone, packet 50 missing (a gap).
    for k in 0..100u16 {
        if k == 50 {
            continue;
        }
        let payload = ulaw(&tone(1000.0, k as usize * 160, 160));
        stream.extend(pdu(
            Direction::FromTarget,
            n,
            &from_attrs,
            &rtp(0, 500 + k, &payload),
        ));
        n += 1;
    }
    // To the target: 60 packets of a 400 Hz A-law tone, no address attributes.
    for k in 0..60u16 {
        let payload = alaw(&tone(400.0, k as usize * 160, 160));
        stream.extend(pdu(
            Direction::ToTarget,
            n,
            &[],
            &rtp(8, 9000 + k, &payload),
        ));
        n += 1;
    }
    // An RTCP receiver report.
    let rr = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
    stream.extend(pdu(Direction::FromTarget, n, &from_attrs, &rr));
    // Written in odd-sized pieces: PDUs cross TCP segment boundaries.
    for chunk in stream.chunks(777) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    // A keepalive is acknowledged with its number.
    let mut ka = Vec::new();
    x3::encode(&Header::keepalive(false, 77), &[], &[], &mut ka).unwrap();
    s.write_all(&ka).unwrap();
    let mut ack = [0u8; 40];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_exact(&mut ack).unwrap();
    let (p, _) = x3::decode(&ack).unwrap();
    assert_eq!(p.header, Header::keepalive(true, 77));
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    assert!(r.stop().success());

    let sum = r.summary();
    let t = &sum["totals"];
    assert_eq!(t["x3"], 160);
    assert_eq!(t["keepalives"], 1);
    assert_eq!(t["malformed"], 0);
    assert_eq!(t["pduSequenceGaps"], 0);
    let streams = sum["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2);
    let from = streams
        .iter()
        .find(|s| s["direction"] == "from-target")
        .unwrap();
    let to = streams
        .iter()
        .find(|s| s["direction"] == "to-target")
        .unwrap();
    assert_eq!(from["packets"], 99);
    assert_eq!(from["rtcp"], 1);
    assert_eq!(from["gaps"], 1);
    assert_eq!(from["payloadTypes"], serde_json::json!([0]));
    assert_eq!(to["packets"], 60);
    assert_eq!(to["gaps"], 0);
    assert_eq!(to["payloadTypes"], serde_json::json!([8]));
    assert!(
        (from["durationSeconds"].as_f64().unwrap() - 3.18).abs() < 0.01,
        "the RTCP PDU is the last"
    );
    let pcap = out.join(from["pcap"].as_str().unwrap());
    assert_eq!(
        pcap.file_name().unwrap(),
        "0b1c2d3e-4f50-4617-8899-aabbccddeeff_0000000000000042.pcap"
    );

    // The WAVs hold the tones; the missing packet became 20 ms of silence.
    let from_wav = wav_samples(&out.join(from["wav"].as_str().unwrap()));
    assert_eq!(from_wav.len(), 100 * 160);
    assert!(from_wav[50 * 160..51 * 160].iter().all(|s| *s == 0));
    assert!(tone_share(&from_wav[..50 * 160], 1000.0) > 0.9);
    let to_wav = wav_samples(&out.join(to["wav"].as_str().unwrap()));
    assert_eq!(to_wav.len(), 60 * 160);
    assert!(tone_share(&to_wav, 400.0) > 0.9);
    assert!(tone_share(&to_wav, 1000.0) < 0.01);
    if let Some(f) = sox_frequency(&out.join(to["wav"].as_str().unwrap())) {
        assert!((f - 400.0).abs() < 20.0, "sox says {f} Hz");
    }

    // tshark reads the pcap as RTP over UDP with the PDU's addresses (or the placeholders).
    if have("tshark", "--version") {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(["-d", "udp.port==30000,rtp", "-d", "udp.port==50000,rtp"])
            .args([
                "-T",
                "fields",
                "-e",
                "ip.src",
                "-e",
                "udp.srcport",
                "-e",
                "rtp.p_type",
            ])
            .args(["-e", "rtp.seq", "-e", "rtcp.pt", "-e", "_ws.malformed"])
            .output()
            .unwrap();
        assert!(o.status.success());
        let text = String::from_utf8(o.stdout).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(lines.len(), 160, "{text}");
        assert!(lines.iter().all(|l| l[5].is_empty()), "malformed: {text}");
        assert_eq!(lines[0][..4], ["198.51.100.10", "4000", "0", "500"]);
        assert_eq!(lines[98][..4], ["198.51.100.10", "4000", "0", "599"]);
        assert_eq!(lines[99][..4], ["192.0.2.2", "50000", "8", "9000"]);
        assert_eq!(lines[159][..2], ["198.51.100.10", "4000"]);
        let rtp_count = lines.iter().filter(|l| !l[3].is_empty()).count();
        assert_eq!(rtp_count, 159);
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn malformed_input_is_refused_and_strict_mode_fails() {
    // Lenient: the bad connection is closed, counted, and the receiver carries on.
    let out = temp_dir("li-receiver-lenient");
    let r = start_receiver(&out, &["--duration", "1.5"]);
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.write_all(&pdu(
        Direction::FromTarget,
        0,
        &[],
        &rtp(0, 1, &[0xff; 160]),
    ))
    .unwrap();
    let mut bad = pdu(Direction::FromTarget, 1, &[], &rtp(0, 2, &[0xff; 160]));
    bad[1] = 9; // version 9
    s.write_all(&bad).unwrap();
    let mut s2 = TcpStream::connect(r.addr).unwrap();
    s2.write_all(&pdu(Direction::ToTarget, 0, &[], &rtp(0, 7, &[0xff; 160])))
        .unwrap();
    let mut r = r;
    assert!(r.wait().success());
    let t = r.summary()["totals"].clone();
    assert_eq!(t["malformed"], 1);
    assert_eq!(t["x3"], 2);
    assert_eq!(t["connections"], 2);

    // Strict: the first malformed PDU ends the run with status 2.
    let out2 = temp_dir("li-receiver-strict");
    let mut r = start_receiver(&out2, &["--strict"]);
    let mut s = TcpStream::connect(r.addr).unwrap();
    let mut bad = pdu(Direction::FromTarget, 0, &[], &rtp(0, 2, &[0xff; 160]));
    bad[43] = 5; // the sequence-number attribute claims 5 bytes
    s.write_all(&bad).unwrap();
    let status = r.wait();
    assert_eq!(status.code(), Some(2));
    assert_eq!(r.summary()["totals"]["malformed"], 1);
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&out2).unwrap();
}
