//! Two sessions handshaking through memory, each with its own OpenSSL state.

use super::*;
use relay::srtp::{Policy, SrtpContext};

const T: Duration = Duration::from_secs(10);

struct Pair {
    client: DtlsSession,
    server: DtlsSession,
    client_events: Vec<DtlsEvent>,
    server_events: Vec<DtlsEvent>,
}

fn pair(client_id: &DtlsIdentity, server_id: &DtlsIdentity) -> Pair {
    let now = Instant::now();
    Pair {
        client: DtlsSession::new(
            client_id,
            Role::Client,
            vec![server_id.fingerprint()],
            now,
            T,
        )
        .unwrap(),
        server: DtlsSession::new(
            server_id,
            Role::Server,
            vec![client_id.fingerprint()],
            now,
            T,
        )
        .unwrap(),
        client_events: vec![],
        server_events: vec![],
    }
}

impl Pair {
    /// Runs the handshake to the end, dropping the first `drop` client datagrams.
    fn run(&mut self, mut drop: usize) {
        let now = Instant::now();
        let mut to_server = self.client.start().datagrams;
        for _ in 0..20 {
            let mut to_client = Vec::new();
            for d in to_server.drain(..) {
                if drop > 0 {
                    drop -= 1;
                    continue;
                }
                if let Ok(out) = self.server.handle(&d, now) {
                    to_client.extend(out.datagrams);
                    self.server_events.extend(out.event);
                }
            }
            for d in to_client {
                if let Ok(out) = self.client.handle(&d, now) {
                    to_server.extend(out.datagrams);
                    self.client_events.extend(out.event);
                }
            }
            if to_server.is_empty() {
                break;
            }
        }
    }
}

fn keys(events: &[DtlsEvent]) -> &SrtpKeys {
    match events.first() {
        Some(DtlsEvent::Connected(k)) => k,
        e => panic!("not connected: {e:?}"),
    }
}

#[test]
fn handshake_yields_matching_srtp_keys_for_each_profile() {
    for (name, suite) in [
        ("SRTP_AES128_CM_SHA1_80", Suite::AesCm128HmacSha1_80),
        ("SRTP_AES128_CM_SHA1_32", Suite::AesCm128HmacSha1_32),
        ("SRTP_AEAD_AES_128_GCM", Suite::AeadAes128Gcm),
        ("SRTP_AEAD_AES_256_GCM", Suite::AeadAes256Gcm),
    ] {
        let a = DtlsIdentity::generate_with_profiles("sha-256", name).unwrap();
        let b = DtlsIdentity::generate("sha-256").unwrap();
        let mut p = pair(&a, &b);
        p.run(0);
        let (c, s) = (keys(&p.client_events), keys(&p.server_events));
        assert_eq!((c.suite, s.suite), (suite, suite));
        assert!(p.client.is_connected() && p.server.is_connected());
        // What one side sends with, the other unprotects with.
        let mut tx = SrtpContext::new(Policy::new(suite, c.local.clone())).unwrap();
        let mut rx = SrtpContext::new(Policy::new(suite, s.remote.clone())).unwrap();
        let mut pkt = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42];
        pkt.extend_from_slice(b"payload");
        let plain = pkt.clone();
        pkt.resize(pkt.len() + 32, 0);
        let n = tx.protect(&mut pkt, plain.len()).unwrap();
        let m = rx.unprotect(&mut pkt[..n]).unwrap();
        assert_eq!(&pkt[..m], &plain[..]);
        assert_ne!(c.local.key(), c.remote.key());
        assert!(!format!("{c:?}").contains(&format!("{:?}", c.local.key())));
    }
}

#[test]
fn wrong_fingerprint_fails_the_handshake() {
    let a = DtlsIdentity::generate("sha-256").unwrap();
    let b = DtlsIdentity::generate("sha-256").unwrap();
    let other = DtlsIdentity::generate("sha-256").unwrap();
    let now = Instant::now();
    let mut p = pair(&a, &b);
    // The server expects someone else's certificate.
    p.server = DtlsSession::new(&b, Role::Server, vec![other.fingerprint()], now, T).unwrap();
    p.run(0);
    assert!(
        matches!(
            p.server_events.first(),
            Some(DtlsEvent::Failed(DtlsFailure::FingerprintMismatch))
        ),
        "{:?}",
        p.server_events
    );
    assert!(!p.client.is_connected() || p.client_events.is_empty());
    // The client checks the server too.
    let mut p = pair(&a, &b);
    p.client = DtlsSession::new(&a, Role::Client, vec![other.fingerprint()], now, T).unwrap();
    p.run(0);
    assert!(matches!(
        p.client_events.first(),
        Some(DtlsEvent::Failed(DtlsFailure::FingerprintMismatch))
    ));
}

#[test]
fn lost_flight_is_retransmitted_and_timeout_fails() {
    let a = DtlsIdentity::generate("sha-256").unwrap();
    let b = DtlsIdentity::generate("sha-256").unwrap();
    let mut p = pair(&a, &b);
    let first = p.client.start().datagrams;
    assert!(!first.is_empty());
    assert!(p.client.tick(Instant::now()).datagrams.is_empty());
    std::thread::sleep(Duration::from_millis(1100));
    let again = p.client.tick(Instant::now()).datagrams;
    assert!(!again.is_empty(), "ClientHello retransmitted after 1 s");
    let out = p.client.tick(Instant::now() + T);
    assert!(matches!(
        out.event,
        Some(DtlsEvent::Failed(DtlsFailure::Timeout))
    ));
    assert!(p.client.is_over());
}

#[test]
fn garbage_and_floods_are_dropped() {
    let a = DtlsIdentity::generate("sha-256").unwrap();
    let mut s = DtlsSession::new(&a, Role::Server, vec![], Instant::now(), T).unwrap();
    let now = Instant::now();
    for bad in [
        &[][..],
        &[22, 0xfe, 0xfd, 0, 0][..],
        &[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1][..],
        &[99, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        assert_eq!(s.handle(bad, now).unwrap_err(), DatagramError::Malformed);
    }
    // Well-framed but meaningless handshake records: OpenSSL discards them; past the
    // byte budget the handshake fails.
    let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x00];
    rec.resize(13 + 1024, 0xAB);
    let mut failed = false;
    for _ in 0..100 {
        match s.handle(&rec, now) {
            Ok(Output {
                event: Some(DtlsEvent::Failed(_)),
                ..
            }) => {
                failed = true;
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(failed);
    assert_eq!(s.handle(&rec, now).unwrap_err(), DatagramError::Finished);
}
