//! Byte vectors written out by hand from the TS 103 221-2 layout, then both directions:
//! the encoder must produce them, the decoder must read them back, and damaged variants
//! must be refused with the matching error.

use super::*;

const XID: &str = "2b36a78b-b628-416d-bd22-65e63a4b4c2f";

fn rtp_payload() -> Vec<u8> {
    // V=2, PT 0, seq 1, ts 160, SSRC deadbeef, 4 bytes of µ-law silence.
    vec![
        0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff,
        0xff,
    ]
}

#[rustfmt::skip]
fn x3_vector() -> Vec<u8> {
    vec![
        0x00, 0x05,             // version 5
        0x00, 0x02,             // PDU type 2: X3
        0x00, 0x00, 0x00, 0x58, // header length 88 = 40 + 48 bytes of attributes
        0x00, 0x00, 0x00, 0x10, // payload length 16
        0x00, 0x08,             // payload format 8: RTP packet
        0x00, 0x03,             // direction 3: sent from the target
        0x2b, 0x36, 0xa7, 0x8b, 0xb6, 0x28, 0x41, 0x6d, // XID
        0xbd, 0x22, 0x65, 0xe6, 0x3a, 0x4b, 0x4c, 0x2f,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // correlation ID
        0x00, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07, // sequence number 7
        0x00, 0x09, 0x00, 0x08, 0x5f, 0x5e, 0x10, 0x00, // timestamp 1600000000 s
        0x00, 0x00, 0x01, 0xf4,                         //   + 500 ns
        0x00, 0x0a, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, // source IPv4 192.0.2.1
        0x00, 0x0b, 0x00, 0x04, 0xc6, 0x33, 0x64, 0x07, // destination IPv4 198.51.100.7
        0x00, 0x0e, 0x00, 0x02, 0x13, 0x8c,             // source port 5004
        0x00, 0x0f, 0x00, 0x02, 0x9c, 0x40,             // destination port 40000
        0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xa0, // payload: the RTP packet
        0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff,
    ]
}

fn x3_header() -> Header {
    Header {
        pdu_type: PduType::X3,
        payload_format: format::RTP,
        direction: Direction::FromTarget,
        xid: XID.parse().unwrap(),
        correlation_id: 0x0102_0304_0506_0708,
    }
}

fn x3_attributes() -> Vec<Attribute<'static>> {
    vec![
        Attribute::SequenceNumber(7),
        Attribute::Timestamp {
            secs: 1_600_000_000,
            nanos: 500,
        },
        Attribute::SourceIpv4(Ipv4Addr::new(192, 0, 2, 1)),
        Attribute::DestinationIpv4(Ipv4Addr::new(198, 51, 100, 7)),
        Attribute::SourcePort(5004),
        Attribute::DestinationPort(40000),
    ]
}

#[test]
fn x3_pdu_encodes_to_the_hand_computed_bytes() {
    let mut out = vec![0xaa]; // encode appends
    let n = encode(&x3_header(), &x3_attributes(), &rtp_payload(), &mut out).unwrap();
    assert_eq!(n, 104);
    assert_eq!(out[0], 0xaa);
    assert_eq!(&out[1..], &x3_vector()[..]);
}

#[test]
fn x3_vector_decodes_to_its_fields() {
    let mut bytes = x3_vector();
    bytes.extend_from_slice(&[0x00, 0x05]); // the start of a next PDU is left alone
    assert_eq!(frame_len(&bytes).unwrap(), Some(104));
    let (pdu, n) = decode(&bytes).unwrap();
    assert_eq!(n, 104);
    assert_eq!(pdu.header, x3_header());
    assert_eq!(pdu.attributes, x3_attributes());
    assert_eq!(pdu.payload, &rtp_payload()[..]);
    assert_eq!(pdu.sequence_number(), Some(7));
    assert_eq!(pdu.timestamp(), Some((1_600_000_000, 500)));
}

#[rustfmt::skip]
#[test]
fn keepalive_and_ack_vectors() {
    let want = |t: u8| vec![
        0x00, 0x05, 0x00, t,
        0x00, 0x00, 0x00, 0x28, // header length 40: no attributes
        0x00, 0x00, 0x00, 0x00, // no payload
        0x00, 0x00, 0x00, 0x00, // format 0, direction 0: reserved for keepalives
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // nil XID
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // keepalive number 42
    ];
    for (ack, t) in [(false, 3u8), (true, 4)] {
        let mut out = Vec::new();
        encode(&Header::keepalive(ack, 42), &[], &[], &mut out).unwrap();
        assert_eq!(out, want(t));
        let (pdu, n) = decode(&out).unwrap();
        assert_eq!(n, 40);
        assert_eq!(pdu.header, Header::keepalive(ack, 42));
    }
}

#[rustfmt::skip]
#[test]
fn ipv6_protocol_and_unknown_attributes() {
    let attrs = [
        Attribute::SourceIpv6("2001:db8::1".parse().unwrap()),
        Attribute::IpProtocol(17),
        Attribute::Other { kind: 17, value: b"sip:a@b" },
    ];
    let mut out = Vec::new();
    encode(&x3_header(), &attrs, &[], &mut out).unwrap();
    assert_eq!(&out[4..8], &[0, 0, 0, 40 + 20 + 5 + 11]);
    assert_eq!(&out[40..], &[
        0x00, 0x0c, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
        0x00, 0x10, 0x00, 0x01, 0x11,
        0x00, 0x11, 0x00, 0x07, b's', b'i', b'p', b':', b'a', b'@', b'b',
    ][..]);
    assert_eq!(decode(&out).unwrap().0.attributes, attrs);
}

fn damaged(f: impl Fn(&mut Vec<u8>)) -> Result<usize, DecodeError> {
    let mut b = x3_vector();
    f(&mut b);
    decode(&b).map(|(_, n)| n)
}

#[test]
fn damaged_pdus_are_refused_precisely() {
    use DecodeError as E;
    assert_eq!(damaged(|b| b[1] = 1), Err(E::Version(1)));
    assert_eq!(damaged(|b| b[3] = 9), Err(E::PduType(9)));
    assert_eq!(damaged(|b| b[7] = 39), Err(E::HeaderTooShort(39)));
    assert_eq!(damaged(|b| b[4] = 0x7f), Err(E::HeaderTooLong(0x7f00_0058)));
    assert_eq!(
        damaged(|b| b[8] = 0x10),
        Err(E::PayloadTooLong(0x1000_0010))
    );
    assert_eq!(damaged(|b| b[13] = 99), Err(E::PayloadFormat(99)));
    assert_eq!(damaged(|b| b[15] = 6), Err(E::Direction(6)));
    assert!(matches!(
        damaged(|b| b[13] = 0),
        Err(E::WrongFormatForType { .. })
    ));
    assert!(matches!(
        damaged(|b| b[15] = 0),
        Err(E::WrongFormatForType { .. })
    ));
    // Sequence number attribute claims 5 bytes.
    assert_eq!(
        damaged(|b| b[43] = 5),
        Err(E::AttributeLength {
            kind: 8,
            len: 5,
            want: 4
        })
    );
    // The last attribute claims more bytes than the header has.
    assert_eq!(
        damaged(|b| b[85] = 9),
        Err(E::AttributeOverrun {
            kind: 15,
            offset: 82
        })
    );
    // Header length cuts the last attribute's TLV header.
    assert_eq!(
        damaged(|b| {
            b[7] = 84;
            b[11] = 20
        }),
        Err(E::AttributeHeaderOverrun(82))
    );
    // Two sequence numbers.
    assert_eq!(
        damaged(|b| b[48..50].copy_from_slice(&[0, 8])),
        Err(E::AttributeLength {
            kind: 8,
            len: 8,
            want: 4
        })
    );
    assert_eq!(
        damaged(|b| b[60..62].copy_from_slice(&[0, 8])),
        Err(E::DuplicateAttribute(8))
    );
    assert_eq!(
        damaged(|b| b[56..60].copy_from_slice(&[0x3b, 0x9a, 0xca, 0x00])),
        Err(E::TimestampNanos(1_000_000_000))
    );
    // Keepalive with a payload.
    assert_eq!(
        damaged(|b| {
            b[3] = 3;
            b[13] = 0;
            b[15] = 0
        }),
        Err(E::KeepalivePayload(16))
    );
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let b = x3_vector();
    for n in 0..b.len() {
        match decode(&b[..n]) {
            Err(DecodeError::Truncated { need, have }) => {
                assert_eq!(have, n);
                assert!(need > n);
            }
            other => panic!("{n} bytes: {other:?}"),
        }
    }
    assert_eq!(frame_len(&b[..11]), Ok(None));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small deterministic fuzz: random bytes behind a plausible prefix.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut b = x3_vector();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % b.len();
            b[i] = (x >> 32) as u8;
        }
        b.truncate(((x >> 40) as usize) % (b.len() + 1));
        let _ = decode(&b);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn attribute() -> impl Strategy<Value = Attribute<'static>> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| Attribute::SourceIpv4(Ipv4Addr::from(b))),
            any::<[u8; 4]>().prop_map(|b| Attribute::DestinationIpv4(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| Attribute::SourceIpv6(Ipv6Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| Attribute::DestinationIpv6(Ipv6Addr::from(b))),
            any::<u16>().prop_map(Attribute::SourcePort),
            any::<u16>().prop_map(Attribute::DestinationPort),
            any::<u8>().prop_map(Attribute::IpProtocol),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            xid in any::<[u8; 16]>(),
            cid in any::<u64>(),
            to_target in any::<bool>(),
            seq in any::<u32>(),
            secs in any::<u32>(),
            nanos in 0u32..1_000_000_000,
            extra in proptest::collection::vec(attribute(), 0..3),
            payload in proptest::collection::vec(any::<u8>(), 0..1500),
        ) {
            let header = Header {
                pdu_type: PduType::X3,
                payload_format: format::RTP,
                direction: if to_target { Direction::ToTarget } else { Direction::FromTarget },
                xid: crate::li::Uuid(xid),
                correlation_id: cid,
            };
            // Each known attribute at most once.
            let mut attrs = vec![
                Attribute::SequenceNumber(seq),
                Attribute::Timestamp { secs, nanos },
            ];
            for a in extra {
                if !attrs.iter().any(|b| std::mem::discriminant(b) == std::mem::discriminant(&a)) {
                    attrs.push(a);
                }
            }
            let mut out = Vec::new();
            let n = encode(&header, &attrs, &payload, &mut out).unwrap();
            prop_assert_eq!(n, out.len());
            let (pdu, m) = decode(&out).unwrap();
            prop_assert_eq!(m, n);
            prop_assert_eq!(pdu.header, header);
            prop_assert_eq!(pdu.attributes, attrs);
            prop_assert_eq!(pdu.payload, &payload[..]);
        }

        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = frame_len(&bytes);
            let _ = decode(&bytes);
        }
    }
}
