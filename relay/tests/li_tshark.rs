//! The live X3 stream, captured on loopback while srtpgate delivers a tapped call, decoded
//! by Wireshark's own ETSI TS 103 221-2 dissector (tshark 4.0 names it `5gli`): every PDU
//! well-formed, the fields as sent, and the payload handed to the RTP dissector.
//!
//! Without tshark the test is skipped with a message, unless CI is set.

mod li_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use li_common::*;
use relay::li::x3::Direction;
use relay::li::{DeliveryConfig, DestinationSpec, Interception, X3Delivery};

fn have_tshark() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "tshark is required in CI (apt-get install tshark)"
        );
        eprintln!("skipped: tshark not installed (apt-get install tshark)");
    }
    ok
}

#[test]
fn tshark_decodes_the_live_x3_stream() {
    if !have_tshark() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("li-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("x3.pcapng");
    let agency = Agency::start("127.0.0.1:0");
    let port = agency.addr.port();

    // Capture the agency's port on loopback.
    let mut dumper = Command::new("tshark")
        .args(["-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
        .arg(&cap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tshark");
    let mut err = BufReader::new(dumper.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "tshark did not start"
        );
        if line.contains("Capturing on") {
            break;
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    // "Capturing on" comes before the filter is in place: probe the port until the
    // capture file grows.
    let start_len = std::fs::metadata(&cap).map(|m| m.len()).unwrap_or(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let _ = std::net::TcpStream::connect(agency.addr);
        std::thread::sleep(Duration::from_millis(100));
        if std::fs::metadata(&cap).map(|m| m.len()).unwrap_or(0) > start_len {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "capture never started"
        );
    }

    let call = Call::new(8);
    let d = X3Delivery::start(DeliveryConfig {
        keepalive_interval: Duration::from_millis(150),
        ..Default::default()
    })
    .unwrap();
    d.add_destination(did(), DestinationSpec::tcp(agency.addr))
        .unwrap();
    let cid = d
        .attach(
            1,
            vec![Interception {
                xid: xid(),
                destinations: vec![did()],
            }],
            call.taps(1024),
        )
        .unwrap();
    const N: u16 = 25;
    for s in 0..N {
        call.a_to_b(&rtp(100 + s, 0xa, &[0xd5; 160]));
        call.b_to_a(&rtp(200 + s, 0xb, &[0x55; 160]));
        std::thread::sleep(Duration::from_millis(2));
    }
    let sent = agency.wait_x3(2 * N as usize);
    // Idle long enough for a keepalive and its acknowledgement.
    eventually("keepalive acknowledged", || {
        d.destination_stats(&did()).unwrap().keepalive_acks >= 1
    });
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", &dumper.id().to_string()])
        .status()
        .unwrap();
    dumper.wait().unwrap();
    call.untap();
    d.detach(1).unwrap();
    d.shutdown();
    call.engine.shutdown();

    let decode = |extra: &[&str]| -> String {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(&cap)
            .args(["-d", &format!("tcp.port=={port},5gli")])
            .args(extra)
            .output()
            .expect("run tshark");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let verbose = decode(&["-V", "-Y", "5gli"]);
    std::fs::write(dir.join("x3-decoded.txt"), &verbose).unwrap();
    assert!(!verbose.contains("Malformed"), "{verbose}");
    assert!(!verbose.contains("Expert Info"), "{verbose}");
    let fields = decode(&[
        "-Y",
        "5gli",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-e",
        "li5g.ver",
        "-e",
        "li5g.type",
        "-e",
        "li5g.pf",
        "-e",
        "li5g.pd",
        "-e",
        "li5g.xid",
        "-e",
        "li5g.cid",
        "-e",
        "li5g.sq",
        "-e",
        "li5g.ts",
        "-e",
        "rtp.seq",
    ]);
    std::fs::write(dir.join("x3-fields.txt"), &fields).unwrap();
    eprintln!("{}", fields.lines().take(4).collect::<Vec<_>>().join("\n"));
    // One line per TCP segment; a segment may carry several PDUs (joined with |). tshark
    // 4.0 lists the sequence-number and timestamp attributes twice per PDU (the attribute
    // item and its value), so those columns hold two entries per X3 PDU.
    let mut pdus = Vec::new();
    for l in fields.lines() {
        let cols: Vec<Vec<&str>> = l.split('\t').map(|c| c.split('|').collect()).collect();
        let mut x3_index = 0;
        for i in 0..cols[0].len() {
            let col =
                |k: usize, j: usize| cols.get(k).and_then(|c| c.get(j)).copied().unwrap_or("");
            let mut p: Vec<String> = (0..6).map(|k| col(k, i).to_string()).collect();
            if p[1] == "2" {
                p.push(col(6, 2 * x3_index).to_string());
                p.push(col(7, 2 * x3_index).to_string());
                p.push(col(8, x3_index).to_string());
                x3_index += 1;
            }
            pdus.push(p);
        }
    }
    let x3: Vec<_> = pdus.iter().filter(|p| p[1] == "2").collect();
    assert_eq!(x3.len(), sent.len(), "{fields}");
    let cid_hex = format!("{cid:016x}");
    let mut rtp_seqs = Vec::new();
    for (i, (p, g)) in x3.iter().zip(&sent).enumerate() {
        assert_eq!(p[0], "5");
        assert_eq!(p[2], "8", "payload format RTP");
        let dir = match g.header.direction {
            Direction::ToTarget => "2",
            _ => "3",
        };
        assert_eq!(p[3], dir);
        assert_eq!(p[4], xid().to_string());
        assert_eq!(p[5].replace(':', ""), cid_hex);
        assert_eq!(p[6], i.to_string(), "X3 sequence number");
        let (secs, nanos) = g.ts.unwrap();
        let day = secs % 86_400;
        let clock = format!(
            "{:02}:{:02}:{:02}.{nanos:09} UTC",
            day / 3600,
            day / 60 % 60,
            day % 60
        );
        assert!(p[7].ends_with(&clock), "timestamp {} vs {clock}", p[7]);
        rtp_seqs.push(p[8].parse::<u16>().expect("RTP dissected"));
    }
    rtp_seqs.sort();
    let mut want: Vec<u16> = (0..N).flat_map(|s| [100 + s, 200 + s]).collect();
    want.sort();
    assert_eq!(rtp_seqs, want);
    let keepalives = pdus.iter().filter(|p| p[1] == "3").count();
    let acks = pdus.iter().filter(|p| p[1] == "4").count();
    assert!(keepalives >= 1 && acks >= 1, "{fields}");
    if std::env::var_os("LI_KEEP").is_some() {
        eprintln!("capture and decodes kept in {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
