//! RFC 5769 test vectors (written by others, checked here byte for byte) and hostile input.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.split_whitespace().collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
        .collect()
}

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

/// RFC 5769 §2.1.
fn sample_request() -> Vec<u8> {
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf")
}

/// RFC 5769 §2.2.
fn sample_response_v4() -> Vec<u8> {
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96")
}

/// RFC 5769 §2.3.
fn sample_response_v6() -> Vec<u8> {
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c")
}

#[test]
fn rfc5769_request() {
    let bytes = sample_request();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.kind, BINDING_REQUEST);
    assert_eq!(m.username(), Some("evtj:h6vY"));
    assert_eq!(m.priority(), Some(0x6e0001ff));
    assert!(m.has(attr::ICE_CONTROLLED) && m.has_fingerprint());
    assert!(m.integrity_ok(PASSWORD));
    assert!(!m.integrity_ok(b"VOkJxbRl1RmTxUk/WvJxBu"));
}

#[test]
fn rfc5769_responses() {
    let v4 = sample_response_v4();
    let m = Message::parse(&v4).unwrap();
    assert_eq!(m.kind, BINDING_SUCCESS);
    assert!(m.integrity_ok(PASSWORD));
    assert_eq!(m.mapped_address(), Some("192.0.2.1:32853".parse().unwrap()));
    let v6 = sample_response_v6();
    let m = Message::parse(&v6).unwrap();
    assert!(m.integrity_ok(PASSWORD));
    assert_eq!(
        m.mapped_address(),
        Some(
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap()
        )
    );
}

#[test]
fn writer_matches_the_vectors_attribute_for_attribute() {
    let t: [u8; 12] = sample_request()[8..20].try_into().unwrap();
    for (addr, vector) in [
        ("192.0.2.1:32853", sample_response_v4()),
        (
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            sample_response_v6(),
        ),
    ] {
        let out = MessageWriter::new(BINDING_SUCCESS, &t)
            .xor_mapped_address(addr.parse().unwrap())
            .integrity(PASSWORD)
            .fingerprint();
        let m = Message::parse(&out).unwrap();
        assert!(m.integrity_ok(PASSWORD) && m.has_fingerprint());
        let want = Message::parse(&vector).unwrap();
        assert_eq!(
            m.attribute(attr::XOR_MAPPED_ADDRESS),
            want.attribute(attr::XOR_MAPPED_ADDRESS)
        );
    }
}

#[test]
fn tampering_is_caught() {
    let mut bytes = sample_request();
    bytes[30] ^= 1; // inside SOFTWARE: FINGERPRINT no longer matches
    assert_eq!(Message::parse(&bytes).unwrap_err(), StunError::Fingerprint);
    // Without FINGERPRINT, the change is caught by MESSAGE-INTEGRITY.
    let bytes = sample_request();
    let cut = bytes.len() - 8;
    let mut short = bytes[..cut].to_vec();
    short[2..4].copy_from_slice(&((cut - 20) as u16).to_be_bytes());
    assert!(Message::parse(&short).unwrap().integrity_ok(PASSWORD));
    short[30] ^= 1;
    assert!(!Message::parse(&short).unwrap().integrity_ok(PASSWORD));
}

#[test]
fn framing_errors_are_typed() {
    let req = sample_request();
    assert_eq!(Message::parse(&req[..10]).unwrap_err(), StunError::Short);
    let mut b = req.clone();
    b[0] = 0xC0;
    assert_eq!(Message::parse(&b).unwrap_err(), StunError::NotStun);
    let mut b = req.clone();
    b[4] = 0;
    assert_eq!(Message::parse(&b).unwrap_err(), StunError::NoMagicCookie);
    assert!(matches!(
        Message::parse(&req[..req.len() - 4]).unwrap_err(),
        StunError::Length(_)
    ));
    // An attribute claiming more bytes than there are.
    let mut b = req[..24].to_vec();
    b[2..4].copy_from_slice(&4u16.to_be_bytes());
    b[22] = 0x00;
    b[23] = 0x40;
    assert_eq!(Message::parse(&b).unwrap_err(), StunError::Truncated);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x1234_5678u32;
    let base = sample_request();
    for n in 0..20_000 {
        let mut b = base.clone();
        for _ in 0..(n % 5 + 1) {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let i = (seed >> 8) as usize % b.len();
            b[i] = (seed >> 24) as u8;
        }
        b.truncate((seed as usize >> 3) % (b.len() + 1));
        if let Ok(m) = Message::parse(&b) {
            let _ = (m.integrity_ok(PASSWORD), m.mapped_address(), m.error_code());
        }
    }
}
