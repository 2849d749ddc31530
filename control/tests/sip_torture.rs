//! Parser torture tests after RFC 4475 section 3.1.1 (valid messages): each is parsed as
//! the RFC says, and written back without loss. The messages are written here in the form
//! the RFC describes (their names follow the RFC's test names); they test the same
//! properties, not byte-for-byte copies. Invalid messages and RFC 5118 are in
//! `sip_torture_invalid.rs`.

mod sip_common;

use control::sip::body;
use control::sip::header::NameAddr;
use control::sip::uri::Uri;
use control::sip::Message;
use sip_common::parses;

// RFC 4475 3.1.1.1 wsinv: a short tortuous INVITE.
const WSINV: &str = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : {LEN}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

#[test]
fn wsinv_short_tortuous_invite() {
    let m = parses(WSINV);
    assert_eq!(m.method(), Some("INVITE"));
    assert_eq!(m.cseq().unwrap().seq, 9);
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.from().unwrap().tag(), Some("98asjd8"));
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].transport, "UDP");
    assert_eq!(vias[1].host, "spindle.example.com");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(
        m.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    let contact = NameAddr::parse(m.get("contact").unwrap()).unwrap();
    assert_eq!(contact.params.get("q"), Some("0.33"));
    assert!(contact.params.has("secondparam"));
    assert!(String::from_utf8_lossy(&m.body).ends_with("a=rtpmap:31 LPC\r\n"));
    // Written back and read again, nothing is lost.
    let again = Message::parse(&m.to_bytes()).unwrap();
    assert_eq!(again.headers.len(), m.headers.len());
    assert_eq!(again.body, m.body);
}

// RFC 4475 3.1.1.2 intmeth: unusual method token, R-URI user part and escapes.
const INTMETH: &str = "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~
To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u{440}\u{430}\u{431}\u{43e}\u{442}\u{430}\u{44e}\u{449}\u{438}\u{439}\";tag=_token~1'+`*%!-.
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~
Max-Forwards: 255
extensionHeader-!.%*+_`'~: \u{feff}\u{5927}\u{505c}\u{96fb}
Content-Length: 0

";

#[test]
fn intmeth_unusual_tokens_and_uri() {
    let m = parses(INTMETH);
    assert_eq!(
        m.method(),
        Some("!interesting-Method0123456789_*+`.%indeed'~")
    );
    let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
    let u = uri.sip().unwrap();
    assert_eq!(u.host, "example.com");
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(m.from().unwrap().tag(), Some("_token~1'+`*%!-."));
    assert_eq!(m.max_forwards().unwrap(), Some(255));
}

// RFC 4475 3.1.1.3 esc01: escaped characters in URIs and parameters.
const ESC01: &str = "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {LEN}

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49217 RTP/AVP 0
";

#[test]
fn esc01_escapes() {
    let m = parses(ESC01);
    assert_eq!(
        Uri::parse(m.request_uri().unwrap())
            .unwrap()
            .user()
            .as_deref(),
        Some("sips:user@example.com")
    );
    assert_eq!(m.to().unwrap().uri.user().as_deref(), Some("user"));
    assert_eq!(m.call_id(), "esc01.239409asdfakjkn23onasd0-3234");
    assert!(body::sdp(&m).is_some());
}

// RFC 4475 3.1.1.4 escnull: escaped NULs in user parts.
const ESCNULL: &str = "REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0

";

// RFC 4475 3.1.1.5 esc02: an escaped method name is another method.
const ESC02: &str = "RE%47IST%45R sip:registrar.example.com SIP/2.0
To: \"%Z%45\" <sip:resource@example.com>
From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;rport;branch=z9hG4bK209asdjf
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0

";

#[test]
fn escnull_and_esc02() {
    let m = parses(ESCNULL);
    assert_eq!(m.get_all("contact").unwrap().len(), 2);
    assert_eq!(m.to().unwrap().uri.user().as_deref(), Some("null-\0-null"));
    let m = parses(ESC02);
    assert_eq!(m.method(), Some("RE%47IST%45R"));
    // `C%6Fntact` is an unknown header, not a Contact.
    assert_eq!(m.get_all("contact").unwrap().len(), 2);
}

// RFC 4475 3.1.1.6 lwsdisp: no LWS between display name and '<'.
const LWSDISP: &str = "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0

";

// RFC 4475 3.1.1.8 dblreq: two requests in one datagram; the second is ignored.
const DBLREQ: &str = "REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0


INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: 151

v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.15
s=-
c=IN IP4 192.0.2.15
t=0 0
m=audio 49217 RTP/AVP 0 12
m =video 3227 RTP/AVP 31
a=rtpmap:31 LPC
";

// RFC 4475 3.1.1.9 semiuri: ';' in the user part.
const SEMIURI: &str = "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0

";

// RFC 4475 3.1.1.10 transports: Via with several transports.
const TRANSPORTS: &str = "OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0

";

#[test]
fn lwsdisp_dblreq_semiuri_transports() {
    assert_eq!(
        parses(LWSDISP).from().unwrap().display.as_deref(),
        Some("caller")
    );
    let m = parses(DBLREQ);
    assert_eq!(m.method(), Some("REGISTER"));
    assert!(m.body.is_empty());
    let m = parses(SEMIURI);
    let u = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        u.sip().unwrap().user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert_eq!(m.get_all("accept").unwrap().len(), 6);
    let v = parses(TRANSPORTS).vias().unwrap();
    let t: Vec<&str> = v.iter().map(|v| v.transport.as_str()).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

// RFC 4475 3.1.1.11 mpart01: a multipart body holding SDP.
const MPART01: &str = "MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary=7a9cbec02ceef655
Date: Sat, 15 Oct 2005 04:44:56 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: {LEN}

--7a9cbec02ceef655
Content-Type: text/plain
Content-Transfer-Encoding: binary

Hello
--7a9cbec02ceef655
Content-Type: application/sdp

v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49217 RTP/AVP 0
--7a9cbec02ceef655--
";

#[test]
fn mpart01_multipart_body() {
    let mut m = parses(MPART01);
    let sdp = body::sdp(&m).expect("the SDP part");
    assert!(sdp.starts_with(b"v=0\r\n"));
    assert!(sdp.ends_with(b"RTP/AVP 0"));
    // Replacing the SDP keeps the other part and the framing.
    body::replace_sdp(&mut m, b"v=0\r\ns=changed\r\n".to_vec());
    let again = Message::parse(&m.to_bytes()).unwrap();
    let text = String::from_utf8_lossy(&again.body).to_string();
    assert!(
        text.contains("Hello") && text.contains("s=changed"),
        "{text}"
    );
    assert_eq!(body::sdp(&again).unwrap(), b"v=0\r\ns=changed\r\n");
}

// RFC 4475 3.1.1.12 unreason and 3.1.1.13 noreason: reason phrases.
const UNREASON: &str = "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e} \u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{43d}\u{43e}\u{441}\u{442}\u{43e} \u{434}\u{435}\u{432}\u{44f}\u{442}\u{44c} - \u{43f}\u{440}\u{43e}\u{441}\u{442}\u{43e}\u{435}
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: 0

";
const NOREASON: &str = "SIP/2.0 100 \nVia: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\nCall-ID: noreason.asndj203insdf99223ndf\nCSeq: 35 INVITE\nFrom: <sip:user@example.com>;tag=39ansfi3\nTo: <sip:user@example.edu>;tag=902jndnke3\nContent-Length: 0\n\n";

#[test]
fn reason_phrases() {
    assert_eq!(parses(UNREASON).code(), Some(200));
    assert_eq!(parses(NOREASON).code(), Some(100));
}
