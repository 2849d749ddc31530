//! Every way a body is refused, with the line it is refused on.

use crate::sdp::*;

const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";

/// The error for the standard head (4 lines) followed by `tail`, parsed strictly.
fn strict_error(tail: &str) -> SdpError {
    SessionDescription::parse_strict(&format!("{HEAD}{tail}")).unwrap_err()
}

fn lenient_error(text: &str) -> SdpError {
    SessionDescription::parse(text).unwrap_err()
}

#[test]
fn structure_errors() {
    assert_eq!(lenient_error(""), SdpError::Empty);
    assert_eq!(lenient_error("\r\n\n"), SdpError::Empty);
    assert_eq!(
        lenient_error("o=- 1 1 IN IP4 192.0.2.1\r\n"),
        SdpError::MissingVersion { line: 1 }
    );
    assert_eq!(lenient_error("v=1\r\n"), SdpError::BadVersion { line: 1 });
    assert_eq!(
        lenient_error("v=0\r\nhello\r\n"),
        SdpError::MissingEquals { line: 2 }
    );
    assert_eq!(
        lenient_error("v=0\r\nab=c\r\n"),
        SdpError::BadLineType { line: 2 }
    );
    assert_eq!(
        lenient_error("v=0\r\n1=c\r\n"),
        SdpError::BadLineType { line: 2 }
    );
    assert_eq!(
        lenient_error("v=0\r\ns=a\rb\r\n"),
        SdpError::ControlCharacter { line: 2 }
    );
    assert_eq!(
        lenient_error("v=0\r\ns=a\0\r\n"),
        SdpError::ControlCharacter { line: 2 }
    );
    assert_eq!(
        lenient_error("v=0\r\ns=-\r\nt=0 0\r\n"),
        SdpError::Missing { kind: 'o' }
    );
    assert_eq!(
        lenient_error("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"),
        SdpError::Missing { kind: 's' }
    );
    assert_eq!(
        lenient_error(&format!("{HEAD}s=again\r\n")),
        SdpError::Duplicate { line: 5, kind: 's' }
    );
    assert_eq!(
        lenient_error(&format!("{HEAD}v=0\r\n")),
        SdpError::Duplicate { line: 5, kind: 'v' }
    );
    assert_eq!(
        lenient_error(&format!(
            "{HEAD}m=audio 1 RTP/AVP 0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
        )),
        SdpError::Misplaced { line: 6, kind: 'o' }
    );
    // Blank lines count.
    assert_eq!(
        lenient_error("v=0\r\n\r\no=x\r\n"),
        SdpError::BadOrigin {
            line: 3,
            what: "expected six fields"
        }
    );
}

#[test]
fn typed_line_errors() {
    let e = lenient_error("v=0\r\no=- 1 x IN IP4 192.0.2.1\r\n");
    assert!(matches!(e, SdpError::BadOrigin { line: 2, .. }), "{e}");
    let e = lenient_error(&format!("{HEAD}c=IN IP4\r\n"));
    assert!(matches!(e, SdpError::BadConnection { line: 5, .. }), "{e}");
    let e = lenient_error(&format!("{HEAD}c=IN IP4 224.2.1.1/300\r\n"));
    assert!(matches!(e, SdpError::BadConnection { line: 5, .. }), "{e}");
    let e = lenient_error(&format!("{HEAD}c=IN IP6 ff00::1/2/3\r\n"));
    assert!(matches!(e, SdpError::BadConnection { line: 5, .. }), "{e}");
    let e = lenient_error(&format!("{HEAD}m=audio 1\r\n"));
    assert!(matches!(e, SdpError::BadMedia { line: 5, .. }), "{e}");
    let e = lenient_error(&format!("{HEAD}m=audio +1 RTP/AVP 0\r\n"));
    assert!(matches!(e, SdpError::BadMedia { line: 5, .. }), "{e}");
    assert_eq!(
        lenient_error(&format!("{HEAD}m=audio 65536 RTP/AVP 0\r\n")),
        SdpError::PortOutOfRange { line: 5 }
    );
    assert_eq!(
        lenient_error(&format!("{HEAD}m=audio 1/70000 RTP/AVP 0\r\n")),
        SdpError::PortOutOfRange { line: 5 }
    );
    assert_eq!(e.line(), Some(5));
}

#[test]
fn crypto_errors_in_strict_mode_only() {
    let key = "inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv";
    let cases = [
        (
            format!("a=crypto:1234567890 AES_CM_128_HMAC_SHA1_80 {key}"),
            CryptoError::BadTag,
        ),
        (
            format!("a=crypto:x AES_CM_128_HMAC_SHA1_80 {key}"),
            CryptoError::BadTag,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80".to_string(),
            CryptoError::MissingKey,
        ),
        ("a=crypto:1".to_string(), CryptoError::BadSuite),
        ("a=crypto".to_string(), CryptoError::MissingValue),
        (
            "a=crypto:1 AES-CM inline:AAAA".to_string(),
            CryptoError::BadSuite,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 uri:x".to_string(),
            CryptoError::NotInline,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:".to_string(),
            CryptoError::BadBase64,
        ),
        (
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@@@".to_string(),
            CryptoError::BadBase64,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}|2^x"),
            CryptoError::BadLifetime,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}|0"),
            CryptoError::BadLifetime,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}|1:0"),
            CryptoError::BadMki,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}|1|2|3"),
            CryptoError::BadMki,
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key} KDR=25"),
            CryptoError::BadSessionParam("KDR"),
        ),
        (
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key} WSH=32"),
            CryptoError::BadSessionParam("WSH"),
        ),
    ];
    for (line, want) in cases {
        let tail = format!("m=audio 1 RTP/SAVP 0\r\na=sendrecv\r\n{line}\r\n");
        assert_eq!(
            strict_error(&tail),
            SdpError::BadCrypto {
                line: 7,
                error: want.clone()
            },
            "{line}"
        );
        // The lenient parser keeps the line and reports it when read.
        let sdp = SessionDescription::parse(&format!("{HEAD}{tail}")).unwrap();
        assert_eq!(sdp.media[0].cryptos().next().unwrap().unwrap_err(), want);
        assert!(sdp.to_string().ends_with(&format!("{line}\r\n")));
    }
}

#[test]
fn error_messages_never_show_keys() {
    let key = "inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJ";
    for tail in [
        key.to_string(),
        format!("{key}v|1:200"),
        format!("{key}v|2^999"),
    ] {
        let line = format!("m=audio 1 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {tail}\r\n");
        let e = strict_error(&line);
        assert!(!e.to_string().contains("cJOJ7"), "{e}");
        assert!(!format!("{e:?}").contains("cJOJ7"), "{e:?}");
    }
    // A wrong key length is found when the key is taken for a suite.
    let c =
        Crypto::parse("1 AES_256_CM_HMAC_SHA1_80 inline:cJOJ7kxQjhFBp2fP6AYjs3vKw7CeBdWZCj0isbJv")
            .unwrap();
    let e = c.master_keys().unwrap_err();
    assert!(
        matches!(
            e,
            CryptoError::WrongKeyLength {
                got: 30,
                want: 46,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.to_string().contains("cJOJ7"));
    let c = Crypto::parse("1 AEAD_AES_256_GCM_8 inline:AAAA").unwrap();
    assert!(matches!(c.suite(), Err(CryptoError::UnknownSuite(_))));
}

#[test]
fn other_attribute_errors_in_strict_mode() {
    let cases = [
        ("a=rtcp:x", "rtcp", AttrError::Bad("port")),
        ("a=rtcp:70000", "rtcp", AttrError::PortOutOfRange),
        ("a=rtcp:5000 IN IP4", "rtcp", AttrError::Bad("address")),
        ("a=rtcp", "rtcp", AttrError::MissingValue),
        ("a=setup:sometimes", "setup", AttrError::Bad("setup role")),
        (
            "a=fingerprint:sha-256 0G:11",
            "fingerprint",
            AttrError::Bad("fingerprint"),
        ),
        (
            "a=fingerprint:sha-256",
            "fingerprint",
            AttrError::Missing("fingerprint"),
        ),
        (
            "a=candidate:1 1 UDP 1 192.0.2.1 9",
            "candidate",
            AttrError::Missing("candidate fields"),
        ),
        (
            "a=candidate:1 1 UDP 1 192.0.2.1 9 typ host raddr",
            "candidate",
            AttrError::Bad("extension without a value"),
        ),
        (
            "a=candidate:1 0 UDP 1 192.0.2.1 9 typ host",
            "candidate",
            AttrError::Bad("component"),
        ),
        (
            "a=rtpmap:200 x/8000",
            "rtpmap",
            AttrError::Bad("payload type"),
        ),
        (
            "a=rtpmap:0 PCMU",
            "rtpmap",
            AttrError::Missing("clock rate"),
        ),
        ("a=ssrc:x cname:y", "ssrc", AttrError::Bad("SSRC")),
        ("a=ptime:20.5", "ptime", AttrError::Bad("ptime")),
    ];
    for (line, name, error) in cases {
        let tail = format!("m=audio 1 RTP/AVP 0\r\n{line}\r\n");
        assert_eq!(
            strict_error(&tail),
            SdpError::BadAttribute {
                line: 6,
                name,
                error
            },
            "{line}"
        );
        assert!(SessionDescription::parse(&format!("{HEAD}{tail}")).is_ok());
    }
}

#[test]
fn size_and_encoding_limits() {
    let big = format!("{HEAD}{}", "a=x\r\n".repeat(MAX_SDP_SIZE / 5));
    assert!(matches!(
        SessionDescription::parse(&big),
        Err(SdpError::TooLarge {
            limit: MAX_SDP_SIZE,
            ..
        })
    ));
    assert!(matches!(
        SessionDescription::parse_bytes(big.as_bytes()),
        Err(SdpError::TooLarge { .. })
    ));
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"a=caf\xe9\r\n");
    assert_eq!(
        SessionDescription::parse_bytes(&bytes).unwrap_err(),
        SdpError::NotUtf8 { line: 5 }
    );
    assert!(SessionDescription::parse_bytes_strict(HEAD.as_bytes()).is_ok());
}
