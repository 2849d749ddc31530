//! Parser torture tests after RFC 4475 (invalid messages, transaction-layer cases) and
//! RFC 5118 (IPv6): each message is answered with the error the RFC asks for, or parsed
//! where the RFC calls it valid. Written in the form the RFCs describe, not copied.

mod sip_common;

use control::sip::uri::Uri;
use control::sip::{Message, ParseError};
use sip_common::{answered, fake_proxy, parses, rejected, udp};

fn invite(start: &str, headers: &str) -> String {
    format!(
        "{start}\nVia: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKbad\nTo: sip:j.user@example.com\n\
         From: sip:caller@example.net;tag=134161461246\nMax-Forwards: 7\nCall-ID: bad.1@192.0.2.15\n\
         CSeq: 8 INVITE\n{headers}Content-Length: 0\n\n"
    )
}

#[test]
fn invalid_messages_get_400() {
    // 3.1.2.1 badinv01: extraneous separators in Via.
    let bad = invite(
        "INVITE sip:user@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.15;;,;,,\n",
    );
    assert_eq!(answered(&bad), 400);
    // 3.1.2.2 clerr: Content-Length larger than the body.
    let clerr = invite("INVITE sip:user@example.com SIP/2.0", "")
        .replace("Content-Length: 0", "Content-Length: 9999")
        + "v=0\n";
    assert!(matches!(rejected(&clerr), ParseError::BodyTruncated { .. }));
    assert_eq!(answered(&clerr), 400);
    // 3.1.2.3 scalar02: Max-Forwards and CSeq beyond their ranges.
    let mf = invite("INVITE sip:user@example.com SIP/2.0", "")
        .replace("Max-Forwards: 7", "Max-Forwards: 300");
    assert_eq!(answered(&mf), 400);
    let cseq = invite("INVITE sip:user@example.com SIP/2.0", "")
        .replace("CSeq: 8 INVITE", "CSeq: 36893488147419103232 INVITE");
    assert_eq!(answered(&cseq), 400);
    // 3.1.2.5 quotbal: unterminated quoted string.
    let q = invite("INVITE sip:user@example.com SIP/2.0", "").replace(
        "To: sip:j.user@example.com",
        "To: \"Mr. J. User <sip:j.user@example.com>",
    );
    assert_eq!(answered(&q), 400);
    // 3.1.2.6 ltgtruri: <> around the Request-URI.
    assert_eq!(
        answered(&invite("INVITE <sip:user@example.com> SIP/2.0", "")),
        400
    );
    // 3.1.2.7 lwsruri, 3.1.2.8 lwsstart, 3.1.2.9 trws: whitespace in the request line.
    assert_eq!(
        answered(&invite("INVITE sip:user@example.com; lr SIP/2.0", "")),
        400
    );
    assert_eq!(
        answered(&invite("INVITE  sip:user@example.com  SIP/2.0", "")),
        400
    );
    assert_eq!(
        answered(&invite("INVITE sip:user@example.com SIP/2.0  ", "")),
        400
    );
    // 3.1.2.10 escruri: headers in the Request-URI.
    assert_eq!(
        answered(&invite(
            "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0",
            ""
        )),
        400
    );
    // 3.1.2.13 badaspec: whitespace inside the angle brackets.
    let a = invite("INVITE sip:user@example.com SIP/2.0", "").replace(
        "To: sip:j.user@example.com",
        "To: \"Watson, Thomas\" < sip:t.watson@example.org >",
    );
    assert_eq!(answered(&a), 400);
    // 3.1.2.14 baddn: unquoted display name with a comma.
    let d = invite("INVITE sip:user@example.com SIP/2.0", "").replace(
        "To: sip:j.user@example.com",
        "To: Watson, Thomas <sip:t.watson@example.org>",
    );
    assert_eq!(answered(&d), 400);
    // 3.1.2.16 mismatch01: CSeq method differs from the request method.
    let mm = invite("OPTIONS sip:user@example.com SIP/2.0", "");
    assert_eq!(rejected(&mm), ParseError::CSeqMismatch);
    assert_eq!(answered(&mm), 400);
    // 3.3.1 insuf: mandatory headers missing.
    let insuf = "INVITE sip:user@example.com SIP/2.0\nCSeq: 193942 INVITE\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\nContent-Length: 0\n\n";
    assert!(matches!(rejected(insuf), ParseError::MissingHeader(_)));
    // 3.3.8 multi01: single-valued headers repeated; 3.3.9 mcl01: two Content-Lengths.
    let multi = invite(
        "INVITE sip:user@example.com SIP/2.0",
        "To: sip:other@example.com\n",
    );
    assert_eq!(answered(&multi), 400);
    let mcl = invite(
        "OPTIONS sip:user@example.com SIP/2.0",
        "Content-Length: 3\n",
    )
    .replace("CSeq: 8 INVITE", "CSeq: 8 OPTIONS");
    assert_eq!(answered(&mcl), 400);
}

#[test]
fn version_and_scheme_errors() {
    // 3.1.2.15 badvers: SIP/7.0 gets 505.
    let v = invite("OPTIONS sip:t.watson@example.org SIP/7.0", "")
        .replace("CSeq: 8 INVITE", "CSeq: 8 OPTIONS");
    assert_eq!(rejected(&v), ParseError::BadVersion);
    assert_eq!(answered(&v), 505);
    // 3.3.2 unkscm: an unknown Request-URI scheme gets 416.
    let u = invite(
        "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0",
        "",
    )
    .replace("CSeq: 8 INVITE", "CSeq: 8 OPTIONS");
    assert_eq!(answered(&u), 416);
    // 3.3.4 unksm2: REGISTER for a To that is not a SIP URI.
    let r = "REGISTER sip:127.0.0.1 SIP/2.0\nTo: isbn:2983792873\nFrom: <http://www.example.com>;tag=3234233\n\
             Call-ID: unksm2.daksdj@hyphenated-host.example.com\nCSeq: 234902 REGISTER\nMax-Forwards: 70\n\
             Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\nContact: <name@127.0.0.1>\nl: 0\n\n";
    assert_eq!(answered(r), 416);
    // 3.1.2.12 regbadct: a Contact addr-spec with URI headers outside angle brackets.
    let c = "REGISTER sip:127.0.0.1 SIP/2.0\nTo: sip:user@example.com\nFrom: sip:user@example.com;tag=998332\n\
             Max-Forwards: 70\nCall-ID: regbadct.k345asrl3fdbv@10.0.0.1\nCSeq: 1 REGISTER\n\
             Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\n\
             Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\nl: 0\n\n";
    assert_eq!(answered(c), 400);
}

#[test]
fn proxy_require_and_max_forwards() {
    // 3.3.5 bext01 for a proxy: Proxy-Require with an unknown option gets 420.
    let b = invite(
        "OPTIONS sip:user@example.com SIP/2.0",
        "Proxy-Require: nothingSpecial\n",
    )
    .replace("CSeq: 8 INVITE", "CSeq: 8 OPTIONS");
    assert_eq!(answered(&b), 420);
    let mf0 = invite("INVITE sip:user@example.com SIP/2.0", "")
        .replace("Max-Forwards: 7", "Max-Forwards: 0");
    assert_eq!(answered(&mf0), 483);
}

#[test]
fn rfc2543_request_without_magic_cookie() {
    // 3.4 inv2543: no branch, no Max-Forwards: still handled (404, no such user here).
    let m = "INVITE sip:UserB@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.15\nFrom: <sip:UserA@example.com>;tag=1\n\
             To: <sip:UserB@example.com>\nCall-ID: 1@192.0.2.15\nCSeq: 1 INVITE\nContent-Length: 0\n\n";
    assert_eq!(answered(m), 404);
}

// RFC 5118: IPv6 in URIs and Via.
fn register_to(uri: &str, via: &str) -> String {
    format!(
        "REGISTER {uri} SIP/2.0\nTo: sip:user@example.com\nFrom: sip:user@example.com;tag=81x2\n\
         Via: SIP/2.0/UDP {via}\nCall-ID: SSG9559905523997077@hlau_4100\nMax-Forwards: 70\n\
         Contact: \"Caller\" <sip:caller@[2001:db8::1]>\nCSeq: 98176 REGISTER\nContent-Length: 0\n\n"
    )
}

#[test]
fn rfc5118_ipv6() {
    // 4.1 good, 4.3 port-ambiguous, 4.4 port-unambiguous, 4.7 IPv4-mapped.
    for uri in [
        "sip:[2001:db8::10]",
        "sip:[2001:db8::10:5070]",
        "sip:[2001:db8::10]:5070",
        "sip:[::ffff:192.0.2.10]",
        "sip:[2001:db8::192.0.2.1]",
    ] {
        parses(&register_to(uri, "[2001:db8::9:1];branch=z9hG4bKas3-111"));
    }
    let u = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
    assert_eq!(u.sip().unwrap().port, Some(5070));
    assert_eq!(
        Uri::parse("sip:[2001:db8::10:5070]")
            .unwrap()
            .sip()
            .unwrap()
            .port,
        None
    );
    // 4.2 bad: an IPv6 address without brackets; 4.8: three colons.
    assert_eq!(
        answered(&register_to(
            "sip:2001:db8::10",
            "[2001:db8::9:1];branch=z9hG4bKas3-111"
        )),
        400
    );
    assert_eq!(
        answered(&register_to(
            "sip:[2001:db8:::192.0.2.1]",
            "[2001:db8::9:1];branch=z9hG4bKas3-111"
        )),
        400
    );
    // 4.5 / 4.6: received= with and without brackets.
    for via in [
        "[2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
        "[2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3-111",
    ] {
        let m = parses(&register_to("sip:[2001:db8::10]", via));
        assert!(m.top_via().unwrap().params.get("received").is_some());
    }
}

#[test]
fn oversized_and_garbage_never_panic() {
    let big = invite(
        "INVITE sip:a@b SIP/2.0",
        &format!("X: {}\n", "a".repeat(70_000)),
    );
    assert!(matches!(rejected(&big), ParseError::TooLarge(_)));
    assert_eq!(answered(&big), 513);
    for junk in [
        &b""[..],
        b"\r\n\r\n",
        b"SIP/2.0",
        b"\xff\xfe\x00",
        b"INVITE\r\n\r\n",
    ] {
        let _ = Message::parse(junk);
        let (mut p, _) = fake_proxy();
        let _ = p.handle(junk, udp("127.0.0.1:5099"), std::time::Instant::now());
    }
}
