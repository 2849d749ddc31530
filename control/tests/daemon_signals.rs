//! The `srtpgate` binary: starts on defaults plus flags, serves metrics, and on SIGTERM
//! refuses new calls while existing media keeps flowing for the drain grace, then exits 0.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use control::ng::bencode::{decode, Value};

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ng(sock: &UdpSocket, port: u16, cookie: &str, d: Value) -> Option<Value> {
    let mut msg = format!("{cookie} ").into_bytes();
    msg.extend_from_slice(&d.encode());
    sock.send_to(&msg, ("127.0.0.1", port)).ok()?;
    let mut buf = vec![0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let sp = buf[..n].iter().position(|b| *b == b' ')?;
    decode(&buf[sp + 1..n]).ok()
}

fn result(v: &Option<Value>) -> String {
    v.as_ref()
        .and_then(|v| v.get(b"result"))
        .and_then(|r| r.as_bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn offer(call: &str) -> Value {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    Value::dict()
        .with("command", "offer")
        .with("call-id", call)
        .with("from-tag", "a")
        .with("sdp", sdp)
}

#[test]
fn sigterm_drains_then_exits_cleanly() {
    let (ng_port, metrics_port, sip_port) = (free_udp(), free_udp(), free_udp());
    let mut child = Command::new(env!("CARGO_BIN_EXE_srtpgate"))
        .args(["--ng-listen", &format!("127.0.0.1:{ng_port}")])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
        .args(["--sip-listen", &format!("127.0.0.1:{sip_port}")])
        .args([
            "--port-min",
            "58000",
            "--port-max",
            "58099",
            "--workers",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while result(&ng(
        &sock,
        ng_port,
        "p",
        Value::dict().with("command", "ping"),
    )) != "pong"
    {
        assert!(Instant::now() < deadline, "srtpgate did not answer ping");
    }
    assert_eq!(result(&ng(&sock, ng_port, "o1", offer("call-1"))), "ok");

    let mut m = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    m.read_to_string(&mut page).unwrap();
    assert!(page.contains("srtpgate_calls 1\n"), "{page}");
    assert!(page.contains("srtpgate_sip_received_total 0\n"), "{page}");

    // SIGTERM: the existing call stays, a new call is refused, ping still answers.
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    let refused = ng(&sock, ng_port, "o2", offer("call-2"));
    assert_eq!(result(&refused), "error", "{refused:?}");
    let q = ng(
        &sock,
        ng_port,
        "q1",
        Value::dict()
            .with("command", "query")
            .with("call-id", "call-1"),
    );
    assert_eq!(result(&q), "ok", "the existing call is kept while draining");
    // Deleting the last call ends the drain early.
    assert_eq!(
        result(&ng(
            &sock,
            ng_port,
            "d1",
            Value::dict()
                .with("command", "delete")
                .with("call-id", "call-1")
        )),
        "ok"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "srtpgate did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("draining") && log.contains("srtpgate stopped"),
        "{log}"
    );
}
