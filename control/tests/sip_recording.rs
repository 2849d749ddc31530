//! The per-user recording policy over the daemon's SIP edge: scripted phones register and
//! call through a real srtpgate (SIP over UDP, SDES-SRTP media through the engine). Calls
//! by or to a user listed in `[voicemail] record-users` are recorded sealed to the
//! operator's key with no ng command, closed when the call ends, and the parties see the
//! same SIP and SDP as in a call that is not recorded.

mod kit;
mod sip_common;
use kit::daemon_config;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use control::daemon::Daemon;
use control::sip::{body, Message};
use relay::record::PrivateKey;
use relay::srtp::{MasterKey, Suite};
use sip_common::msg;
use sip_common::net::{ctx, relay_side, sdp, through_packet};

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

struct Phone {
    user: &'static str,
    sip: UdpSocket,
    media: UdpSocket,
}

impl Phone {
    fn new(user: &'static str) -> Phone {
        let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let media = UdpSocket::bind("127.0.0.1:0").unwrap();
        media
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        Phone { user, sip, media }
    }

    fn addr(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    fn send(&self, edge: SocketAddr, text: &str) {
        self.sip.send_to(&msg(text), edge).unwrap();
    }

    fn send_msg(&self, edge: SocketAddr, m: &Message) {
        self.sip.send_to(&m.to_bytes(), edge).unwrap();
    }

    /// The next message `what` accepts (others, such as 100 Trying, are skipped).
    fn expect(&self, what: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            if let Ok((n, _)) = self.sip.recv_from(&mut buf) {
                let m = Message::parse(&buf[..n]).unwrap();
                if what(&m) {
                    return m;
                }
            }
        }
        panic!("{}: the expected SIP message did not come", self.user);
    }

    fn register(&self, edge: SocketAddr) {
        let (u, at) = (self.user, self.addr());
        self.send(
            edge,
            &format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {at};branch=z9hG4bKreg{u};rport\n\
                 From: <sip:{u}@127.0.0.1>;tag=r{u}\nTo: <sip:{u}@127.0.0.1>\nCall-ID: reg-{u}\n\
                 CSeq: 1 REGISTER\nMax-Forwards: 70\nContact: <sip:{u}@{at}>\nExpires: 600\n\
                 Content-Length: 0\n\n"
            ),
        );
        let r = self.expect(|m| m.code().is_some_and(|c| c >= 200));
        assert_eq!(r.code(), Some(200), "REGISTER {u}");
    }
}

/// What one party saw of a call: SDP lines with ports, keys and session versions taken
/// out, and the header names, in order.
fn shape(m: &Message) -> (Vec<String>, Vec<String>) {
    let sdp = String::from_utf8(body::sdp(m).unwrap()).unwrap();
    let lines = sdp
        .lines()
        .map(|l| {
            if l.starts_with("o=") {
                "o=".to_string()
            } else if let Some(rest) = l.strip_prefix("m=audio ") {
                format!("m=audio {}", rest.split_once(' ').unwrap().1)
            } else if l.starts_with("a=crypto:") {
                l.rsplit_once(' ').unwrap().0.to_string()
            } else if l.starts_with("a=rtcp:") {
                "a=rtcp:".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let text = String::from_utf8(m.to_bytes()).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    let names = head
        .lines()
        .skip(1)
        .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
        .collect();
    (lines, names)
}

struct Seen {
    invite_at_callee: (Vec<String>, Vec<String>),
    ok_at_caller: (Vec<String>, Vec<String>),
}

/// `caller` calls `callee` through the edge, both send `n` SRTP packets through the relay,
/// then the caller hangs up.
fn call(edge: SocketAddr, caller: &Phone, callee: &Phone, id: &str, n: u16) -> Seen {
    let (cu, eu, at) = (caller.user, callee.user, caller.addr());
    let a_key = MasterKey::new(SUITE, &[3; 16], &[4; 14]).unwrap();
    let b_key = MasterKey::new(SUITE, &[5; 16], &[6; 14]).unwrap();
    let offer = sdp(caller.media.local_addr().unwrap().port(), Some(&a_key));
    caller.send(
        edge,
        &format!(
            "INVITE sip:{eu}@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {at};branch=z9hG4bK{id}i;rport\n\
             From: <sip:{cu}@127.0.0.1>;tag=t{id}\nTo: <sip:{eu}@127.0.0.1>\nCall-ID: {id}\n\
             CSeq: 1 INVITE\nMax-Forwards: 70\nContact: <sip:{cu}@{at}>\n\
             Content-Type: application/sdp\nContent-Length: {{LEN}}\n\n{offer}"
        ),
    );
    let invite = callee.expect(|m| m.method() == Some("INVITE"));
    let (relay_for_b, k) = relay_side(&invite);
    let b_rx_key = k.expect("SDES toward the callee").key;
    let mut ok = invite.response(200, "OK", Some(&format!("c{id}")));
    for rr in invite.get_all("Record-Route").unwrap() {
        ok.set("Record-Route", rr.to_string());
    }
    ok.set("Contact", format!("<sip:{eu}@{}>", callee.addr()));
    ok.set_body(
        Some("application/sdp"),
        sdp(callee.media.local_addr().unwrap().port(), Some(&b_key)).into_bytes(),
    );
    callee.send_msg(edge, &ok);
    let ok_at_caller = caller.expect(|m| m.code() == Some(200));
    let (relay_for_a, k) = relay_side(&ok_at_caller);
    let a_rx_key = k.expect("SDES toward the caller").key;
    let to = ok_at_caller.get("To").unwrap().to_string();
    let route = ok_at_caller
        .get_all("Record-Route")
        .unwrap()
        .iter()
        .rev()
        .map(|r| format!("Route: {r}\n"))
        .collect::<String>();
    let contact = format!("sip:{eu}@{}", callee.addr());
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} {contact} SIP/2.0\nVia: SIP/2.0/UDP {at};branch=z9hG4bK{id}{method};rport\n\
             {route}From: <sip:{cu}@127.0.0.1>;tag=t{id}\nTo: {to}\nCall-ID: {id}\n\
             CSeq: {cseq} {method}\nMax-Forwards: 70\nContent-Length: 0\n\n"
        )
    };
    caller.send(edge, &in_dialog("ACK", 1));
    callee.expect(|m| m.method() == Some("ACK"));

    let (mut a_tx, mut b_rx) = (ctx(SUITE, &a_key), ctx(SUITE, &b_rx_key));
    let (mut b_tx, mut a_rx) = (ctx(SUITE, &b_key), ctx(SUITE, &a_rx_key));
    for seq in 0..n {
        through_packet(
            &caller.media,
            &mut a_tx,
            relay_for_a,
            &callee.media,
            &mut b_rx,
            &zero_rtp(seq),
        );
        through_packet(
            &callee.media,
            &mut b_tx,
            relay_for_b,
            &caller.media,
            &mut a_rx,
            &zero_rtp(seq + 500),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    caller.send(edge, &in_dialog("BYE", 2));
    let bye = callee.expect(|m| m.method() == Some("BYE"));
    callee.send_msg(edge, &bye.response(200, "OK", None));
    caller.expect(|m| m.code() == Some(200));
    Seen {
        invite_at_callee: shape(&invite),
        ok_at_caller: shape(&ok_at_caller),
    }
}

/// An RTP packet with sequence number `seq` and 160 zero bytes of payload (so that the
/// plaintext is easy to look for on disk).
fn zero_rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; 172];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[8..12].copy_from_slice(&[0, 0, 0, 7]);
    p
}

/// Complete recordings (renamed `.pcapng`), waiting up to 3 s for `n` of them.
fn complete_recordings(dir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("recordings"))
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|e| e == "pcapng"));
        v.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The sequence numbers stored per direction, read with `key`; the file must be closed.
fn read_back(path: &Path, key: &PrivateKey) -> Vec<Vec<u16>> {
    let bytes = std::fs::read(path).unwrap();
    let mut seqs = vec![Vec::new(); 2];
    let summary = relay::record::read(&bytes[..], key, |p| {
        assert!(p.rtp[12..].iter().all(|&x| x == 0), "plaintext as sent");
        seqs[p.leg as usize].push(u16::from_be_bytes([p.rtp[2], p.rtp[3]]));
    })
    .unwrap();
    assert!(summary.end.is_some(), "closed with its end block");
    assert_eq!(summary.mailbox_id.as_deref(), Some("recordings"));
    // The payloads on disk are ciphertext: no run of the plaintext's zero bytes.
    assert!(!bytes.windows(64).any(|w| w.iter().all(|&x| x == 0)));
    assert!(relay::record::read(&bytes[..], &PrivateKey::generate().unwrap(), |_| {}).is_err());
    seqs.sort();
    seqs
}

#[test]
fn calls_by_or_to_a_listed_user_are_recorded_unseen() {
    let dir = std::env::temp_dir().join(format!("sg-siprec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key = PrivateKey::generate().unwrap();
    let mut c = daemon_config(59400, 100);
    c.sip.listen_udp = vec!["127.0.0.1:0".parse().unwrap()];
    c.sip.listen_tcp = Vec::new();
    c.voicemail.data_dir = Some(dir.clone());
    c.voicemail.recording_public_key = Some(key.public_key().to_base64());
    c.voicemail.record_users = vec!["alice".into()];
    c.validate().unwrap();
    let d = Daemon::start(&c).unwrap();
    let edge = d.sip().unwrap().udp[0];

    let (alice, bob, dave) = (Phone::new("alice"), Phone::new("bob"), Phone::new("dave"));
    alice.register(edge);
    bob.register(edge);

    // alice → bob: recorded (by a listed user).
    let recorded = call(edge, &alice, &bob, "pol-1", 10);
    let files = complete_recordings(&dir, 1);
    assert_eq!(files.len(), 1, "{files:?}");
    let expected: Vec<Vec<u16>> = vec![(0..10).collect(), (500..510).collect()];
    assert_eq!(read_back(&files[0], &key), expected);

    // dave → bob: nobody listed, nothing recorded.
    let plain = call(edge, &dave, &bob, "pol-2", 5);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(complete_recordings(&dir, 1).len(), 1);

    // dave → alice: recorded (to a listed user).
    call(edge, &dave, &alice, "pol-3", 7);
    let files = complete_recordings(&dir, 2);
    assert_eq!(files.len(), 2, "{files:?}");
    let expected: Vec<Vec<u16>> = vec![(0..7).collect(), (500..507).collect()];
    assert_eq!(read_back(&files[1], &key), expected);

    // The parties of the recorded call saw what those of the other call saw.
    assert_eq!(recorded.invite_at_callee, plain.invite_at_callee);
    assert_eq!(recorded.ok_at_caller, plain.ok_at_caller);
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("recordings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "pcapng"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    d.drain_and_stop(Duration::ZERO);
    let _ = std::fs::remove_dir_all(&dir);
}
