//! The ng protocol front against datagrams shaped as Kamailio's `rtpengine` module sends
//! them (key spellings and order, flags folded into keys, `supports`, `received-from`,
//! cookies `<server_id>_<pid>_<seq>`), plus malformed input, retransmissions and counters.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use control::ng::bencode::{self, Value};
use control::ng::{
    AddressFamily, CallStats, Command, Dtls, FingerprintHash, Flag, Ice, NgHandler, NgRequest,
    NgResponse, NgServer, PacketCounters, Received, ReceivedFrom, Replace, RtcpMux, Statistics,
    TagStats, Tos, Transport, TransportProtocol,
};

const SDP: &str = "v=0\r\no=- 1545997027 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\n\
t=0 0\r\nm=audio 40000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

fn kamailio() -> SocketAddr {
    "127.0.0.1:47000".parse().unwrap()
}

/// Records requests and answers with a scripted response.
#[derive(Default)]
struct Recorder {
    seen: Vec<NgRequest>,
    answer: Option<NgResponse>,
}

impl NgHandler for Recorder {
    fn handle(&mut self, req: &NgRequest) -> NgResponse {
        self.seen.push(req.clone());
        self.answer
            .clone()
            .unwrap_or_else(|| NgResponse::with_sdp("v=0\r\n"))
    }
}

/// A bencoded dictionary with entries in the given order.
fn dict(entries: &[(&str, Value)]) -> Vec<u8> {
    let mut d = Value::dict();
    for (k, v) in entries {
        d.insert(k, v.clone());
    }
    d.encode()
}

fn s(text: &str) -> Value {
    Value::string(text)
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

fn datagram(cookie: &str, payload: &[u8]) -> Vec<u8> {
    let mut d = cookie.as_bytes().to_vec();
    d.push(b' ');
    d.extend_from_slice(payload);
    d
}

/// Sends one datagram; returns the reply's cookie and decoded dictionary.
fn exchange(server: &mut NgServer, h: &mut Recorder, bytes: &[u8]) -> (String, Value) {
    let reply = server
        .handle_datagram(kamailio(), bytes, Instant::now(), h)
        .expect("a reply");
    let space = reply.iter().position(|&b| b == b' ').expect("cookie");
    let cookie = String::from_utf8(reply[..space].to_vec()).unwrap();
    (
        cookie,
        bencode::decode(&reply[space + 1..]).expect("bencoded reply"),
    )
}

fn text(v: &Value, key: &str) -> String {
    String::from_utf8(
        v.get(key.as_bytes())
            .and_then(Value::as_bytes)
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

/// A fresh cookie in Kamailio's format, so that no request is taken for a retransmission.
fn cookie() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(1);
    format!("1_3125_{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

fn error_reason(server: &mut NgServer, h: &mut Recorder, payload: &[u8]) -> String {
    let (_, reply) = exchange(server, h, &datagram(&cookie(), payload));
    assert_eq!(text(&reply, "result"), "error", "{reply:?}");
    assert_eq!(
        reply.as_dict().unwrap().len(),
        2,
        "only result and error-reason"
    );
    text(&reply, "error-reason")
}

/// What the module builds for `rtpengine_offer("replace-origin
/// replace-session-connection ICE=remove RTP/SAVP SDES-no-AES_CM_128_HMAC_SHA1_32
/// trust-address label=caller rtcp-mux-demux DTLS=passive")` on an INVITE.
fn kamailio_offer() -> Vec<u8> {
    dict(&[
        ("supports", list(&["load limit"])),
        ("sdp", s(SDP)),
        ("ICE", s("remove")),
        ("label", s("caller")),
        ("DTLS", s("passive")),
        ("flags", list(&["trust-address"])),
        ("replace", list(&["origin", "session-connection"])),
        ("transport-protocol", s("RTP/SAVP")),
        ("rtcp-mux", list(&["demux"])),
        ("SDES", list(&["no-AES_CM_128_HMAC_SHA1_32"])),
        ("received-from", list(&["IP4", "192.168.1.10"])),
        ("call-id", s("a84b4c76e66710@pc33.atlanta.example.com")),
        ("via-branch", s("z9hG4bK776asdhds")),
        ("from-tag", s("1928301774")),
        ("command", s("offer")),
        ("sip-message-type", s("sip_request")),
    ])
}

#[test]
fn ping_exactly_as_on_the_wire() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let reply = server.handle_datagram(
        kamailio(),
        b"5323_1 d7:command4:pinge",
        Instant::now(),
        &mut h,
    );
    assert_eq!(reply.as_deref(), Some(&b"5323_1 d6:result4:ponge"[..]));
    assert!(h.seen.is_empty(), "ping needs no call layer");
}

#[test]
fn kamailio_offer_is_fully_typed() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let (cookie, reply) = exchange(
        &mut server,
        &mut h,
        &datagram("1_3125_17", &kamailio_offer()),
    );
    assert_eq!(cookie, "1_3125_17");
    assert_eq!(text(&reply, "result"), "ok");
    assert_eq!(text(&reply, "sdp"), "v=0\r\n");
    assert_eq!(reply.get(b"warning"), None, "{reply:?}");

    let r = &h.seen[0];
    assert_eq!(r.command, Command::Offer);
    assert_eq!(
        r.call_id.as_deref(),
        Some("a84b4c76e66710@pc33.atlanta.example.com")
    );
    assert_eq!(r.from_tag.as_deref(), Some("1928301774"));
    assert_eq!(r.to_tag, None);
    assert_eq!(r.via_branch.as_deref(), Some("z9hG4bK776asdhds"));
    assert_eq!(r.sdp_str(), Some(SDP));
    assert!(r.supports_load_limit);
    assert_eq!(r.ice, Some(Ice::Remove));
    assert_eq!(r.dtls, Some(Dtls::Passive));
    assert_eq!(r.label.as_deref(), Some("caller"));
    assert!(r.has(Flag::TrustAddress));
    assert_eq!(
        r.replace.iter().copied().collect::<Vec<_>>(),
        vec![Replace::Origin, Replace::SessionConnection]
    );
    assert_eq!(
        r.transport,
        Some(Transport::Protocol(TransportProtocol::RtpSavp))
    );
    assert!(r.rtcp_mux.contains(&RtcpMux::Demux));
    assert_eq!(r.sdes.no, vec!["AES_CM_128_HMAC_SHA1_32"]);
    assert_eq!(
        r.received_from,
        Some(ReceivedFrom {
            family: Some(AddressFamily::Ip4),
            address: "192.168.1.10".parse::<IpAddr>().unwrap(),
        })
    );
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
}

#[test]
fn kamailio_answer_delete_and_query() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    // rtpengine_answer() on a 200 OK: to-tag present.
    let answer = dict(&[
        ("supports", list(&["load limit"])),
        ("sdp", s(SDP)),
        ("flags", list(&["trust-address"])),
        ("replace", list(&["origin"])),
        ("received-from", list(&["IP6", "2001:db8::1"])),
        ("call-id", s("c1")),
        ("via-branch", s("z9hG4bK1")),
        ("from-tag", s("ft")),
        ("to-tag", s("tt")),
        ("command", s("answer")),
    ]);
    let (_, reply) = exchange(&mut server, &mut h, &datagram("1_3125_18", &answer));
    assert_eq!(text(&reply, "result"), "ok");
    assert_eq!(h.seen[0].command, Command::Answer);
    assert_eq!(h.seen[0].to_tag.as_deref(), Some("tt"));

    // rtpengine_delete("delete-delay=0"): the module sends `delete delay` as an integer.
    let delete = dict(&[
        ("supports", list(&["load limit"])),
        ("delete delay", Value::Int(0)),
        ("flags", list(&["fatal", "to-tag"])),
        ("call-id", s("c1")),
        ("from-tag", s("ft")),
        ("to-tag", s("tt")),
        ("command", s("delete")),
    ]);
    h.answer = Some(NgResponse::ok());
    let (_, reply) = exchange(&mut server, &mut h, &datagram("1_3125_19", &delete));
    assert_eq!(reply, Value::dict().with("result", "ok"));
    let d = &h.seen[1];
    assert_eq!(d.command, Command::Delete);
    assert_eq!(d.delete_delay, Some(0));
    assert!(d.has(Flag::Fatal) && d.has(Flag::ToTag));

    // rtpengine_query(): the reply carries the call statistics.
    let query = dict(&[
        ("supports", list(&["load limit"])),
        ("call-id", s("c1")),
        ("from-tag", s("ft")),
        ("command", s("query")),
    ]);
    h.answer = Some(NgResponse::query(CallStats {
        created: 1_700_000_000,
        last_signal: 1_700_000_005,
        tags: vec![TagStats {
            tag: "ft".into(),
            created: 1_700_000_000,
            in_dialogue_with: Some("tt".into()),
            ..TagStats::default()
        }],
        totals_rtp: PacketCounters {
            packets: 50,
            bytes: 8600,
            errors: 0,
        },
        ..CallStats::default()
    }));
    let (_, reply) = exchange(&mut server, &mut h, &datagram("1_3125_20", &query));
    assert_eq!(text(&reply, "result"), "ok");
    assert_eq!(reply.get(b"created"), Some(&Value::Int(1_700_000_000)));
    assert_eq!(reply.get(b"last signal"), Some(&Value::Int(1_700_000_005)));
    let tag = reply.get(b"tags").and_then(|t| t.get(b"ft")).unwrap();
    assert_eq!(text(tag, "in dialogue with"), "tt");
    let rtp = reply.get(b"totals").and_then(|t| t.get(b"RTP")).unwrap();
    assert_eq!(rtp.get(b"packets"), Some(&Value::Int(50)));
    assert_eq!(
        server.counters().requests.get("query"),
        Some(&1),
        "{:?}",
        server.counters()
    );
}

#[test]
fn list_statistics_and_recording() {
    let mut server = NgServer::default();
    let mut h = Recorder {
        answer: Some(NgResponse::list(vec!["c1".into(), "c2".into()])),
        ..Recorder::default()
    };
    let (_, reply) = exchange(
        &mut server,
        &mut h,
        &datagram("a", &dict(&[("command", s("list")), ("limit", s("10"))])),
    );
    assert_eq!(
        reply.get(b"calls"),
        Some(&Value::List(vec![s("c1"), s("c2")]))
    );
    assert_eq!(h.seen[0].limit, Some(10));

    h.answer = Some(NgResponse::statistics(Statistics::default()));
    let (_, reply) = exchange(
        &mut server,
        &mut h,
        &datagram("b", &dict(&[("command", s("statistics"))])),
    );
    let control = reply
        .get(b"statistics")
        .and_then(|st| st.get(b"controlstatistics"))
        .expect("filled by the server");
    let proxy = &control.get(b"proxies").unwrap().as_list().unwrap()[0];
    assert_eq!(text(proxy, "proxy"), "127.0.0.1");
    assert_eq!(proxy.get(b"listcount"), Some(&Value::Int(1)));

    h.answer = Some(NgResponse::ok());
    for (cookie, command) in [("c", "start recording"), ("d", "stop recording")] {
        let (_, reply) = exchange(
            &mut server,
            &mut h,
            &datagram(
                cookie,
                &dict(&[("command", s(command)), ("call-id", s("c1"))]),
            ),
        );
        assert_eq!(text(&reply, "result"), "ok");
    }
    assert_eq!(h.seen[2].command, Command::StartRecording);
    assert_eq!(h.seen[3].command, Command::StopRecording);

    // `stop recording` with `pause` is rtpengine's `pause recording`: not implemented.
    let seen = h.seen.len();
    let reason = error_reason(
        &mut server,
        &mut h,
        &dict(&[
            ("command", s("stop recording")),
            ("call-id", s("c1")),
            ("flags", list(&["pause"])),
        ]),
    );
    assert!(reason.contains("pause recording"), "{reason}");
    assert_eq!(h.seen.len(), seen);
}

#[test]
fn unsupported_and_unknown_commands() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    for command in [
        "block DTMF",
        "start forwarding",
        "block media",
        "play media",
        "subscribe request",
        "unsubscribe",
    ] {
        let reason = error_reason(
            &mut server,
            &mut h,
            &dict(&[
                ("command", s(command)),
                ("call-id", s("c")),
                ("from-tag", s("f")),
            ]),
        );
        assert!(
            reason.contains(command) && reason.contains("Unsupported"),
            "{reason}"
        );
    }
    assert!(h.seen.is_empty());
    let reason = error_reason(&mut server, &mut h, &dict(&[("command", s("teleport"))]));
    assert_eq!(reason, "Unrecognized command \"teleport\"");
    let reason = error_reason(&mut server, &mut h, &dict(&[("call-id", s("c"))]));
    assert_eq!(reason, "Dictionary contains no key \"command\"");
    assert_eq!(
        server.counters().errors.get("unsupported_command"),
        Some(&6)
    );
    assert_eq!(server.counters().errors.get("unknown_command"), Some(&1));
}

#[test]
fn missing_keys() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let cases: &[(&[(&str, Value)], &str)] = &[
        (
            &[
                ("command", s("offer")),
                ("call-id", s("c")),
                ("from-tag", s("f")),
            ],
            "No SDP body in message",
        ),
        (
            &[
                ("command", s("offer")),
                ("sdp", s(SDP)),
                ("from-tag", s("f")),
            ],
            "No call-id in message",
        ),
        (
            &[
                ("command", s("offer")),
                ("sdp", s(SDP)),
                ("call-id", s("c")),
            ],
            "No from-tag in message",
        ),
        (
            &[
                ("command", s("offer")),
                ("sdp", s(SDP)),
                ("call-id", s("")),
                ("from-tag", s("f")),
            ],
            "No call-id in message",
        ),
        (
            &[
                ("command", s("answer")),
                ("sdp", s(SDP)),
                ("call-id", s("c")),
                ("from-tag", s("f")),
            ],
            "No to-tag in message",
        ),
        (
            &[("command", s("delete")), ("from-tag", s("f"))],
            "No call-id in message",
        ),
        (&[("command", s("query"))], "No call-id in message"),
        (
            &[("command", s("start recording"))],
            "No call-id in message",
        ),
    ];
    for (entries, expected) in cases {
        assert_eq!(error_reason(&mut server, &mut h, &dict(entries)), *expected);
    }
    assert!(h.seen.is_empty());
    // delete needs only the call-id, as in rtpengine.
    h.answer = Some(NgResponse::ok());
    let (_, reply) = exchange(
        &mut server,
        &mut h,
        &datagram("x", &dict(&[("command", s("delete")), ("call-id", s("c"))])),
    );
    assert_eq!(text(&reply, "result"), "ok");
}

#[test]
fn wrong_types_name_the_key() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let base = |extra: (&'static str, Value)| {
        dict(&[
            ("command", s("offer")),
            ("sdp", s(SDP)),
            ("call-id", s("c")),
            ("from-tag", s("f")),
            extra,
        ])
    };
    let cases = [
        (
            base(("call-id", list(&["c"]))),
            "Wrong type for \"call-id\": expected string, found list",
        ),
        (
            base(("sdp", Value::Int(1))),
            "Wrong type for \"sdp\": expected string, found integer",
        ),
        (
            base(("flags", Value::dict())),
            "Wrong type for \"flags\": expected list, found dictionary",
        ),
        (
            base((
                "flags",
                Value::List(vec![s("trust-address"), Value::Int(1)]),
            )),
            "Wrong type for \"flags[1]\": expected string, found integer",
        ),
        (
            base(("ICE", list(&["force"]))),
            "Wrong type for \"ICE\": expected string, found list",
        ),
        (
            base(("direction", s("pub"))),
            "Wrong type for \"direction\": expected list, found string",
        ),
        (
            base(("codec", list(&["strip"]))),
            "Wrong type for \"codec\": expected dictionary, found list",
        ),
        (
            base(("TOS", s("high"))),
            "Invalid value for \"TOS\": \"high\" is not an integer",
        ),
        (
            base(("received-from", list(&["IP4"]))),
            "Invalid value for \"received-from\": expected [family, address], got 1 items",
        ),
        (
            base(("from-tag", Value::Bytes(vec![0xff, 0xfe]))),
            "\"from-tag\" is not valid UTF-8",
        ),
        (
            dict(&[("command", Value::Int(3))]),
            "Wrong type for \"command\": expected string, found integer",
        ),
    ];
    for (payload, expected) in cases {
        assert_eq!(error_reason(&mut server, &mut h, &payload), expected);
    }
    assert!(h.seen.is_empty());
}

#[test]
fn lenient_shapes_rtpengine_accepts() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let payload = dict(&[
        ("command", s("offer")),
        ("SDP", s(SDP)),
        ("call id", s("c")),
        ("from-tag", s("f")),
        // lists given as comma-separated strings
        ("flags", s("trust-address, strict-source")),
        ("rtcp-mux", s("offer,require")),
        ("replace", s("origin")),
        // integers given as strings (Kamailio sends `key=value` flags as strings)
        ("TOS", s("184")),
        // spaces instead of hyphens, other cases
        ("address family", s("IP6")),
        ("media address", s("2001:db8::7")),
        ("transport protocol", s("UDP/TLS/RTP/SAVPF")),
        ("DTLS fingerprint", s("SHA-1")),
        ("record call", s("yes")),
        ("received from", s("10.0.0.1")),
        ("ice", s("force")),
    ]);
    let (_, reply) = exchange(&mut server, &mut h, &datagram("x", &payload));
    assert_eq!(reply.get(b"warning"), None, "{reply:?}");
    let r = &h.seen[0];
    assert_eq!(r.call_id.as_deref(), Some("c"));
    assert!(r.has(Flag::TrustAddress) && r.has(Flag::StrictSource));
    assert_eq!(r.rtcp_mux.len(), 2);
    assert_eq!(r.tos, Some(Tos::Set(184)));
    assert_eq!(r.address_family, Some(AddressFamily::Ip6));
    assert_eq!(r.media_address, Some("2001:db8::7".parse().unwrap()));
    assert_eq!(
        r.transport,
        Some(Transport::Protocol(TransportProtocol::UdpTlsRtpSavpf))
    );
    assert_eq!(r.dtls_fingerprint, Some(FingerprintHash::Sha1));
    assert_eq!(r.record_call, Some(true));
    assert_eq!(r.received_from.map(|f| f.family), Some(None));
    assert_eq!(r.ice, Some(Ice::Force));
}

#[test]
fn flags_that_are_options() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let payload = dict(&[
        ("command", s("offer")),
        ("sdp", s(SDP)),
        ("call-id", s("c")),
        ("from-tag", s("f")),
        (
            "flags",
            list(&[
                "replace-origin",
                "replace-SDP-version",
                "SDES-no-AES_CM_128_HMAC_SHA1_32",
                "SDES-only-AEAD_AES_256_GCM",
                "SDES-pad",
                "rtcp-mux-accept",
                "codec-strip-PCMA",
                "codec-offer-PCMU",
                "ICE=optional",
                "transport-protocol=RTP/SAVP",
                "label=callee",
                "SIP source address",
                "record-call",
            ]),
        ),
    ]);
    let (_, reply) = exchange(&mut server, &mut h, &datagram("x", &payload));
    assert_eq!(reply.get(b"warning"), None, "{reply:?}");
    let r = &h.seen[0];
    assert!(r.replace.contains(&Replace::Origin) && r.replace.contains(&Replace::SdpVersion));
    assert_eq!(r.sdes.no, vec!["AES_CM_128_HMAC_SHA1_32"]);
    assert_eq!(r.sdes.only, vec!["AEAD_AES_256_GCM"]);
    assert!(r.sdes.pad);
    assert!(r.rtcp_mux.contains(&RtcpMux::Accept));
    assert_eq!(r.codec.strip, vec!["PCMA"]);
    assert_eq!(r.codec.offer, vec!["PCMU"]);
    assert_eq!(r.ice, Some(Ice::Optional));
    assert_eq!(
        r.transport,
        Some(Transport::Protocol(TransportProtocol::RtpSavp))
    );
    assert_eq!(r.label.as_deref(), Some("callee"));
    assert!(r.has(Flag::SipSourceAddress));
    assert_eq!(r.record_call, Some(true));

    // WebRTC is shorthand for several options; trickle ICE is not implemented.
    let payload = dict(&[
        ("command", s("offer")),
        ("sdp", s(SDP)),
        ("call-id", s("c")),
        ("from-tag", s("f")),
        ("flags", list(&["WebRTC"])),
    ]);
    let (_, reply) = exchange(&mut server, &mut h, &datagram("y", &payload));
    let r = &h.seen[1];
    assert_eq!(
        r.transport,
        Some(Transport::Protocol(TransportProtocol::UdpTlsRtpSavpf))
    );
    assert_eq!(r.ice, Some(Ice::Force));
    assert!(r.sdes.off && r.has(Flag::NoRtcpAttribute) && r.has(Flag::GenerateMid));
    assert!(text(&reply, "warning").contains("trickle-ICE"));
}

#[test]
fn unknown_and_unimplemented_inputs_become_warnings() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let payload = dict(&[
        ("command", s("offer")),
        ("sdp", s(SDP)),
        ("call-id", s("c")),
        ("from-tag", s("f")),
        (
            "flags",
            list(&[
                "trust-address",
                "frobnicate",
                "always-transcode",
                "codec-transcode-opus",
            ]),
        ),
        ("ICE", s("force-relay")),
        ("ptime", s("20")),
        (
            "codec",
            Value::dict()
                .with("strip", list(&["G729"]))
                .with("mask", list(&["opus"])),
        ),
        ("SDES", list(&["order:AES_CM_128_HMAC_SHA1_80"])),
        ("xyzzy", s("1")),
        ("media-address", s("not-an-address")),
    ]);
    let (_, reply) = exchange(&mut server, &mut h, &datagram("x", &payload));
    assert_eq!(text(&reply, "result"), "ok");
    let warning = text(&reply, "warning");
    for part in [
        "flag \"frobnicate\"",
        "flag \"always-transcode\"",
        "flag \"codec-transcode-opus\"",
        "ICE \"force-relay\"",
        "key \"ptime\" (needs transcoding)",
        "codec-mask \"opus\"",
        "SDES \"order:AES_CM_128_HMAC_SHA1_80\"",
        "key \"xyzzy\"",
        "media-address \"not-an-address\"",
    ] {
        assert!(warning.contains(part), "{part} missing from {warning}");
    }
    let r = &h.seen[0];
    assert!(r.has(Flag::TrustAddress));
    assert_eq!(r.ice, None, "never half-applied");
    assert_eq!(r.codec.strip, vec!["G729"]);
    assert_eq!(r.media_address, None);
    assert_eq!(server.counters().ignored_options, 1);
}

#[test]
fn features_that_cannot_be_ignored_are_refused() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let reason = error_reason(
        &mut server,
        &mut h,
        &dict(&[
            ("command", s("offer")),
            ("sdp", s("a=candidate:1 1 UDP 1 1.2.3.4 5 typ host")),
            ("call-id", s("c")),
            ("from-tag", s("f")),
            ("flags", list(&["fragment"])),
        ]),
    );
    assert!(reason.contains("trickle ICE"), "{reason}");
    let reason = error_reason(
        &mut server,
        &mut h,
        &dict(&[
            ("command", s("offer")),
            ("sdp", s(SDP)),
            ("call-id", s("c")),
            ("from-tag", s("f")),
            ("rtpp-flags", s("replace-origin ICE=force")),
        ]),
    );
    assert!(reason.contains("rtpp-flags"), "{reason}");
    assert!(h.seen.is_empty());
}

#[test]
fn malformed_bencode_gets_a_precise_error_under_the_cookie() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"d7:command4:ping",
            "unterminated",
            "unexpected end of input at byte 16 inside the dictionary starting at byte 0",
        ),
        (
            b"d7:command4:pingee",
            "trailing_bytes",
            "1 trailing bytes after the value, from byte 17",
        ),
        (
            b"d7:commandi03ee",
            "leading_zero",
            "leading zero in the integer at byte 10",
        ),
        (
            b"d7:commandi-0ee",
            "negative_zero",
            "negative zero integer at byte 10",
        ),
        (
            b"d07:command4:pinge",
            "leading_zero",
            "leading zero in the byte string length at byte 1",
        ),
        (
            b"di1e4:pinge",
            "non_string_key",
            "dictionary key at byte 1 is not a byte string",
        ),
        (
            b"d7:command9:pinge",
            "string_past_end",
            "byte string at byte 10 declares 9 bytes but only 5 remain",
        ),
        (
            b"d1:x1:y1:zl",
            "unterminated",
            "inside the list starting at byte 10",
        ),
        (
            b"d1:xie",
            "empty_integer",
            "integer without digits at byte 4",
        ),
    ];
    for (payload, kind, detail) in cases {
        let reason = error_reason(&mut server, &mut h, payload);
        assert!(
            reason.starts_with("Could not decode bencode dictionary: ") && reason.contains(detail),
            "{reason}"
        );
        assert!(server.counters().errors.contains_key(kind), "{kind}");
    }
    // Deep nesting is refused, not recursed into.
    let mut deep = b"d1:x".to_vec();
    deep.extend(vec![b'l'; 5000]);
    deep.extend(vec![b'e'; 5001]);
    let reason = error_reason(&mut server, &mut h, &deep);
    assert!(reason.contains("nesting deeper than 32 levels"), "{reason}");
    // Not a dictionary, not bencode, no payload.
    assert_eq!(
        error_reason(&mut server, &mut h, b"l4:pinge"),
        "Invalid NG data format: payload starts with 0x6c, neither a bencode nor a JSON dictionary"
    );
    assert_eq!(
        error_reason(&mut server, &mut h, b""),
        "Invalid data (no payload)"
    );
    assert!(h.seen.is_empty());
}

#[test]
fn datagrams_without_a_cookie_are_dropped() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let now = Instant::now();
    for d in [&b""[..], b"d7:command4:pinge", b" d7:command4:pinge"] {
        assert_eq!(server.handle_datagram(kamailio(), d, now, &mut h), None);
    }
    let c = server.counters();
    assert_eq!(c.datagrams, 3);
    for kind in ["empty_datagram", "no_separator", "empty_cookie"] {
        assert_eq!(c.errors.get(kind), Some(&1), "{kind}");
    }
}

#[test]
fn retransmissions_are_answered_from_the_cache() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let t0 = Instant::now();
    let offer = datagram("1_3125_17", &kamailio_offer());
    let first = server
        .handle_datagram(kamailio(), &offer, t0, &mut h)
        .unwrap();
    // Kamailio resends up to 5 times, 1 s apart: one action, identical replies.
    for i in 1..=5 {
        h.answer = Some(NgResponse::error("must not be asked again"));
        let again = server
            .handle_datagram(kamailio(), &offer, t0 + Duration::from_secs(i), &mut h)
            .unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(h.seen.len(), 1);
    assert_eq!(server.counters().retransmissions, 5);

    // Same cookie, other payload, same sender: answered from the cache as rtpengine does.
    let other = datagram("1_3125_17", &dict(&[("command", s("ping"))]));
    assert_eq!(
        server.handle_datagram(kamailio(), &other, t0, &mut h),
        Some(first.clone())
    );
    assert_eq!(server.counters().cookie_reuses, 1);

    // Same cookie from another proxy: a request of its own.
    h.answer = None;
    let elsewhere: SocketAddr = "127.0.0.2:47000".parse().unwrap();
    server
        .handle_datagram(elsewhere, &offer, t0, &mut h)
        .unwrap();
    assert_eq!(h.seen.len(), 2);

    // After the cache lifetime the cookie is forgotten.
    server
        .handle_datagram(kamailio(), &offer, t0 + Duration::from_secs(31), &mut h)
        .unwrap();
    assert_eq!(h.seen.len(), 3);

    // Error replies are cached too.
    let bad = datagram("9_9_9", b"d7:command4:pingee");
    let e1 = server
        .handle_datagram(kamailio(), &bad, t0, &mut h)
        .unwrap();
    let e2 = server
        .handle_datagram(kamailio(), &bad, t0, &mut h)
        .unwrap();
    assert_eq!(e1, e2);
}

#[test]
fn a_copy_arriving_while_the_first_is_processed_is_dropped() {
    let mut server = NgServer::default();
    let t0 = Instant::now();
    let offer = datagram("1_3125_17", &kamailio_offer());
    let Received::Request(pending) = server.receive(kamailio(), &offer, t0) else {
        panic!("expected a request for the call layer");
    };
    assert!(matches!(
        server.receive(kamailio(), &offer, t0 + Duration::from_secs(1)),
        Received::Drop
    ));
    assert_eq!(server.counters().in_flight_drops, 1);
    let reply = server.respond(*pending, NgResponse::with_sdp("v=0\r\n"), t0);
    match server.receive(kamailio(), &offer, t0 + Duration::from_secs(2)) {
        Received::Reply(again) => assert_eq!(again, reply),
        other => panic!("expected the cached reply, got {other:?}"),
    }
}

#[test]
fn load_limit_reply() {
    let mut server = NgServer::default();
    let mut h = Recorder {
        answer: Some(NgResponse::load_limit(Some("Load limit exceeded".into()))),
        ..Recorder::default()
    };
    let (_, reply) = exchange(&mut server, &mut h, &datagram("x", &kamailio_offer()));
    assert_eq!(
        reply,
        Value::dict()
            .with("result", "load limit")
            .with("message", "Load limit exceeded")
    );
    assert_eq!(server.counters().load_limits, 1);
}

#[test]
fn json_requests_get_json_replies() {
    let mut server = NgServer::default();
    let mut h = Recorder::default();
    let reply = server
        .handle_datagram(
            kamailio(),
            br#"j1 {"command":"offer","sdp":"v=0\r\n","call-id":"c","from-tag":"f","flags":["trust-address"]}"#,
            Instant::now(),
            &mut h,
        )
        .unwrap();
    assert_eq!(reply, br#"j1 {"result":"ok","sdp":"v=0\r\n"}"#.to_vec());
    assert!(h.seen[0].has(Flag::TrustAddress));
    let reply = server
        .handle_datagram(kamailio(), b"j2 {\"command\":", Instant::now(), &mut h)
        .unwrap();
    assert!(reply.starts_with(b"j2 {\"error-reason\":\"Failed to parse JSON document"));
}

#[test]
fn parse_is_usable_without_the_server() {
    let r = NgRequest::parse(&kamailio_offer()).unwrap();
    assert_eq!(r.command, Command::Offer);
    assert!(format!("{r:?}").contains("sdp_len"));
    assert!(!format!("{r:?}").contains("inline:"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::vec(
                    (proptest::collection::vec(any::<u8>(), 0..8), inner),
                    0..6
                )
                .prop_map(Value::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(v in value()) {
            prop_assert_eq!(bencode::decode(&v.encode()), Ok(v));
        }

        #[test]
        fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut server = NgServer::default();
            let mut h = Recorder::default();
            let _ = server.handle_datagram(kamailio(), &bytes, Instant::now(), &mut h);
            let _ = NgRequest::parse(&bytes);
            // The decoder is strict and order-preserving: one encoding per value.
            if let Ok(v) = bencode::decode(&bytes) {
                prop_assert_eq!(v.encode(), bytes);
            }
        }

        #[test]
        fn mutated_offers_never_panic(pos in 0usize..2000, byte in any::<u8>()) {
            let mut offer = kamailio_offer();
            let i = pos % offer.len();
            offer[i] = byte;
            let mut server = NgServer::default();
            let mut h = Recorder::default();
            let reply = server.handle_datagram(kamailio(), &datagram("1_2_3", &offer), Instant::now(), &mut h);
            prop_assert!(reply.is_some_and(|r| r.starts_with(b"1_2_3 d6:result")));
        }
    }
}
