//! The checks after a call: what Kamailio forwarded (SDP anchored at the relay, transport
//! and keys per leg), what crossed each media leg (SRTP that libsrtp authenticates with the
//! announced key and that carries the right tone, or plain RTP where a leg is plain), and
//! what each phone recorded (the other side's tone, about as long as the call).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::baresip::{Baresip, MediaEnc};
use super::capture::Datagram;
use super::media::{analyse_leg, Leg, LegKey, LegReport, ToneReport};
use super::relay::{RunningRelay, SdesKeys};
use super::sip::{self, Crypto, MediaDescription, SipMessage};
use super::wav::Wav;
use super::{E2eError, Result};

/// Everything a finished call left behind.
pub struct CallFacts<'a> {
    pub relay: &'a RunningRelay,
    pub kamailio_port: u16,
    pub caller: &'a Baresip,
    pub callee: &'a Baresip,
    /// From CALL_ESTABLISHED to CALL_CLOSED, as each phone reported.
    pub caller_call: Duration,
    pub callee_call: Duration,
    pub talk: Duration,
    pub datagrams: &'a [Datagram],
}

#[derive(Default)]
struct Checker {
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Checker {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.passed.push(what.into());
        } else {
            self.failed.push(what.into());
        }
    }
}

/// The four SDPs of the call: what each phone sent and what Kamailio forwarded.
struct Sdps {
    /// INVITE caller → Kamailio, and Kamailio → callee.
    offer_from_caller: MediaDescription,
    offer_to_callee: MediaDescription,
    /// 200 OK callee → Kamailio, and Kamailio → caller.
    answer_from_callee: MediaDescription,
    answer_to_caller: MediaDescription,
}

fn find_sdp(
    msgs: &[SipMessage],
    from: u16,
    to: u16,
    is_wanted: impl Fn(&SipMessage) -> bool,
    what: &str,
) -> Result<MediaDescription> {
    msgs.iter()
        .filter(|m| m.src.port() == from && m.dst.port() == to && is_wanted(m))
        .find_map(SipMessage::audio)
        .ok_or_else(|| E2eError::new(format!("no {what} with an audio SDP in the capture")))
}

impl Sdps {
    fn find(msgs: &[SipMessage], f: &CallFacts) -> Result<Sdps> {
        let (a, b, k) = (f.caller.sip_port, f.callee.sip_port, f.kamailio_port);
        let invite = |m: &SipMessage| m.method() == Some("INVITE");
        let ok = |m: &SipMessage| m.status() == Some(200) && m.cseq_method() == Some("INVITE");
        Ok(Sdps {
            offer_from_caller: find_sdp(msgs, a, k, invite, "INVITE from the caller")?,
            offer_to_callee: find_sdp(msgs, k, b, invite, "INVITE to the callee")?,
            answer_from_callee: find_sdp(msgs, b, k, ok, "200 OK from the callee")?,
            answer_to_caller: find_sdp(msgs, k, a, ok, "200 OK to the caller")?,
        })
    }
}

fn proto_of(m: MediaEnc) -> &'static str {
    match m {
        MediaEnc::Plain => "RTP/AVP",
        MediaEnc::SrtpMandatory => "RTP/SAVP",
        // baresip 1.0.0's dtls_srtp offers the feedback profile.
        MediaEnc::DtlsSrtp => "UDP/TLS/RTP/SAVPF",
    }
}

fn media_addr(md: &MediaDescription) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, md.port)
}

/// The key each side sends with: (caller → relay, relay → caller, callee → relay,
/// relay → callee); `None` on plain legs.
type LegKeys = [Option<Crypto>; 4];

fn check_sdp(c: &mut Checker, f: &CallFacts, s: &Sdps) -> LegKeys {
    let relay = f.relay;
    let (a_enc, b_enc) = (f.caller.ua.media, f.callee.ua.media);
    for (md, who) in [
        (&s.offer_to_callee, "offer to the callee"),
        (&s.answer_to_caller, "answer to the caller"),
    ] {
        c.check(
            relay.contains_port(md.port) && md.connection.as_deref() == Some("127.0.0.1"),
            format!(
                "{who} points at the relay: 127.0.0.1:{} in {}-{} (c={:?})",
                md.port, relay.port_min, relay.port_max, md.connection
            ),
        );
    }
    for (md, who) in [
        (&s.offer_from_caller, "caller"),
        (&s.answer_from_callee, "callee"),
    ] {
        c.check(
            !relay.contains_port(md.port),
            format!("{who} media port {} is its own, not the relay's", md.port),
        );
    }
    for (md, want, who) in [
        (&s.offer_from_caller, proto_of(a_enc), "caller's offer"),
        (&s.answer_to_caller, proto_of(a_enc), "answer to the caller"),
        (&s.offer_to_callee, proto_of(b_enc), "offer to the callee"),
        (&s.answer_from_callee, proto_of(b_enc), "callee's answer"),
    ] {
        c.check(
            md.proto == want,
            format!("{who} uses {want} (saw {})", md.proto),
        );
        let srtp = want == "RTP/SAVP";
        let dtls = want.starts_with("UDP/TLS/");
        c.check(
            dtls == (!md.fingerprints.is_empty() && md.setup.is_some()),
            format!(
                "{who} has {} (saw {} fingerprint(s), setup {:?})",
                if dtls {
                    "a=fingerprint and a=setup"
                } else {
                    "no DTLS-SRTP attributes"
                },
                md.fingerprints.len(),
                md.setup
            ),
        );
        c.check(
            srtp != md.cryptos.is_empty(),
            format!(
                "{who} has {} a=crypto (saw {})",
                if srtp { "some" } else { "no" },
                md.cryptos.len()
            ),
        );
    }

    for (offer, answer, who) in [
        (&s.offer_from_caller, &s.answer_to_caller, "caller"),
        (&s.offer_to_callee, &s.answer_from_callee, "callee"),
    ] {
        if answer.fingerprints.is_empty() {
            continue;
        }
        // The relay terminates DTLS: its certificate is its own, and the roles are
        // complementary (RFC 5763: an actpass offer is answered active or passive).
        c.check(
            offer
                .fingerprints
                .iter()
                .all(|f| !answer.fingerprints.contains(f)),
            format!("{who} leg: the relay's fingerprint is not the phone's"),
        );
        let roles = (offer.setup.as_deref(), answer.setup.as_deref());
        c.check(
            matches!(
                roles,
                (Some("actpass"), Some("active" | "passive"))
                    | (Some("active"), Some("passive"))
                    | (Some("passive"), Some("active"))
            ),
            format!("{who} leg: DTLS roles {roles:?} are complementary"),
        );
    }

    // Answers carry exactly the chosen suite; the offerer's line with that tag is the
    // offerer's key.
    let chosen = |offer: &MediaDescription, answer: &MediaDescription| {
        let ans = answer.cryptos.first()?;
        Some((offer.crypto(ans.tag)?.clone(), ans.clone()))
    };
    let mut keys: LegKeys = [None, None, None, None];
    if a_enc == MediaEnc::SrtpMandatory {
        let pair = chosen(&s.offer_from_caller, &s.answer_to_caller);
        c.check(
            pair.is_some(),
            "answer to the caller picks one of the caller's a=crypto tags",
        );
        if let Some((from_caller, to_caller)) = pair {
            c.check(
                from_caller.suite == to_caller.suite,
                format!(
                    "caller leg suites agree ({} / {})",
                    from_caller.suite, to_caller.suite
                ),
            );
            c.check(
                from_caller.key_b64() != to_caller.key_b64(),
                "relay's key toward the caller is not the caller's own key",
            );
            keys[0] = Some(from_caller);
            keys[1] = Some(to_caller);
        }
    }
    if b_enc == MediaEnc::SrtpMandatory {
        let pair = chosen(&s.offer_to_callee, &s.answer_from_callee);
        c.check(
            pair.is_some(),
            "callee's answer picks one of the offered a=crypto tags",
        );
        if let Some((to_callee, from_callee)) = pair {
            c.check(
                to_callee.suite == from_callee.suite,
                format!(
                    "callee leg suites agree ({} / {})",
                    to_callee.suite, from_callee.suite
                ),
            );
            c.check(
                to_callee.key_b64() != from_callee.key_b64(),
                "callee's key is not the relay's key toward it",
            );
            keys[2] = Some(from_callee);
            keys[3] = Some(to_callee);
        }
    }
    if let [Some(a_tx), Some(r_to_a), Some(b_tx), Some(r_to_b)] = &keys {
        let caller_keys: Vec<&str> = s
            .offer_from_caller
            .cryptos
            .iter()
            .map(Crypto::key_b64)
            .collect();
        let forwarded_offer = s
            .offer_to_callee
            .cryptos
            .iter()
            .any(|x| caller_keys.contains(&x.key_b64()));
        let forwarded_answer = b_tx.key_b64() == r_to_a.key_b64();
        match relay.relay.sdes_keys() {
            SdesKeys::Fresh => {
                c.check(
                    !forwarded_offer,
                    "no key the caller offered appears in the offer to the callee",
                );
                c.check(
                    !forwarded_answer,
                    "the callee's key does not appear in the answer to the caller",
                );
                let all = [a_tx, r_to_a, b_tx, r_to_b].map(Crypto::key_b64);
                let distinct = (0..4).all(|i| (i + 1..4).all(|j| all[i] != all[j]));
                c.check(distinct, "the four negotiated keys are pairwise different");
            }
            SdesKeys::Forwarded => {
                // rtpengine's SRTP<>SRTP passthrough: the offerer's line is copied (same
                // tag, same key) ahead of the relay's own suites.
                c.check(
                    forwarded_offer,
                    "relay forwards the caller's a=crypto to the callee (rtpengine passthrough)",
                );
                let same_suite = a_tx.suite == b_tx.suite;
                c.check(
                    forwarded_answer == same_suite,
                    "relay forwards the callee's key to the caller iff the suites match \
                     (rtpengine passthrough)",
                );
            }
        }
    }
    keys
}

/// Packets per second of 20 ms PCMU.
const PACKET_RATE: f64 = 50.0;

/// How long after CALL_ESTABLISHED media may start on a call with a DTLS-SRTP leg: one
/// handshake with OpenSSL's first retransmission (1 s) and some slack.
const DTLS_SETUP_BOUND_SECS: f64 = 1.6;

/// SRTP authentication tag lengths of the DTLS-SRTP profiles srtpgate negotiates.
const DTLS_TAG_LENGTHS: [usize; 3] = [10, 4, 16];

/// A leg keyed by DTLS: the test cannot read its keys, so it checks that the packets are
/// SRTP-sized and that the tone is not audible on the wire. That the audio inside is right
/// shows on the SDES leg it is relayed to (decrypted with the announced key) and in the
/// recordings.
fn check_dtls_leg(c: &mut Checker, r: &LegReport, tone_hz: u32, talk: Duration) {
    let name = &r.name;
    let min_packets = (talk.as_secs_f64() * PACKET_RATE * 0.6) as usize;
    c.check(
        r.rtp_datagrams >= min_packets,
        format!(
            "{name}: {} RTP datagrams (at least {min_packets})",
            r.rtp_datagrams
        ),
    );
    let srtp_sized = r
        .packets
        .iter()
        .filter(|p| p.payload.len() > 160 && DTLS_TAG_LENGTHS.contains(&(p.payload.len() - 160)))
        .count();
    c.check(
        srtp_sized * 10 >= r.packets.len() * 9 && !r.packets.is_empty(),
        format!(
            "{name}: DTLS-SRTP, 160-byte PCMU payload plus an SRTP tag in {srtp_sized} of {}",
            r.packets.len()
        ),
    );
    let wire = ToneReport::analyse(&r.pcmu_audio(), 8000, f64::from(tone_hz));
    c.check(
        wire.tone_windows * 20 <= wire.windows.max(1),
        format!(
            "{name}: payload on the wire is encrypted (tone audible in {} of {} windows \
             when read as PCMU)",
            wire.tone_windows, wire.windows
        ),
    );
}

fn check_leg(c: &mut Checker, r: &LegReport, tone_hz: u32, talk: Duration) {
    let name = &r.name;
    let min_packets = (talk.as_secs_f64() * PACKET_RATE * 0.6) as usize;
    c.check(
        r.rtp_datagrams >= min_packets,
        format!(
            "{name}: {} RTP datagrams (at least {min_packets})",
            r.rtp_datagrams
        ),
    );
    let pts: Vec<u8> = r
        .packets
        .iter()
        .map(|p| p.pt)
        .filter(|&pt| pt != 0)
        .collect();
    c.check(
        pts.len() <= r.packets.len() / 50,
        format!("{name}: PCMU payload (other payload types: {pts:?})"),
    );
    let audio = ToneReport::analyse(&r.pcmu_audio(), 8000, f64::from(tone_hz));
    c.check(
        audio.coverage() >= 0.8,
        format!(
            "{name}: {tone_hz} Hz tone in {:.0}% of {:.1} s of {} audio",
            100.0 * audio.coverage(),
            audio.duration_secs,
            if r.srtp { "decrypted" } else { "plain" }
        ),
    );
    if r.srtp {
        c.check(
            r.authenticated > 0 && r.auth_failed * 50 <= r.rtp_datagrams,
            format!(
                "{name}: libsrtp authenticates {} of {} packets with the announced key",
                r.authenticated, r.rtp_datagrams
            ),
        );
        let wire = ToneReport::analyse(&r.wire_as_pcmu(), 8000, f64::from(tone_hz));
        c.check(
            wire.tone_windows * 20 <= wire.windows.max(1),
            format!(
                "{name}: payload on the wire is encrypted (tone audible in {} of {} windows \
                 when read as PCMU)",
                wire.tone_windows, wire.windows
            ),
        );
    } else {
        c.check(
            r.packets.iter().all(|p| p.payload.len() == 160),
            format!("{name}: plain RTP, 160-byte PCMU payloads"),
        );
    }
}

/// Compares one direction's two legs packet by packet, matched by (SSRC, sequence number).
fn check_relayed(c: &mut Checker, into: &LegReport, out: &LegReport, fresh_keys: bool, dtls: bool) {
    let plain_in: HashMap<(u32, u16), &[u8]> = into
        .packets
        .iter()
        .map(|p| ((p.ssrc, p.seq), p.payload.as_slice()))
        .collect();
    let mut matched = 0usize;
    let mut same_plain = 0usize;
    let mut same_wire = 0usize;
    for p in &out.packets {
        let k = (p.ssrc, p.seq);
        if let Some(pin) = plain_in.get(&k) {
            matched += 1;
            same_plain += usize::from(*pin == p.payload.as_slice());
            same_wire += usize::from(into.wire_payloads.get(&k) == out.wire_payloads.get(&k));
        }
    }
    let what = format!("{} -> {}", into.name, out.name);
    if dtls {
        // One side's keys are unknown (DTLS): compare the wire only.
        c.check(
            matched >= 20 && same_wire * 100 <= matched * 5,
            format!(
                "{what}: SSRC and sequence kept in {matched} packets, re-encrypted \
                 ({same_wire} wire payloads identical)"
            ),
        );
        return;
    }
    if matched < 20 {
        c.passed.push(format!(
            "{what}: only {matched} packets keep SSRC and sequence number; not compared"
        ));
        return;
    }
    c.check(
        same_plain * 100 >= matched * 95,
        format!("{what}: relayed audio unchanged in {same_plain} of {matched} matched packets"),
    );
    if into.srtp && out.srtp && fresh_keys {
        c.check(
            same_wire * 100 <= matched * 5,
            format!("{what}: re-encrypted, {same_wire} of {matched} wire payloads identical"),
        );
    } else if into.srtp != out.srtp {
        c.check(
            same_wire * 100 <= matched * 5,
            format!(
                "{what}: SRTP on one side only, {same_wire} of {matched} wire payloads identical"
            ),
        );
    } else {
        c.passed.push(format!(
            "{what}: {same_wire} of {matched} wire payloads identical on both legs"
        ));
    }
}

fn check_recording(c: &mut Checker, phone: &Baresip, tone_hz: u32, call: Duration) {
    let who = &phone.ua.user;
    let wav = match phone.recording().and_then(|p| Wav::read(&p)) {
        Ok(w) => w,
        Err(e) => {
            c.check(false, format!("{who}'s recording: {e}"));
            return;
        }
    };
    let t = ToneReport::analyse(&wav.samples, wav.rate, f64::from(tone_hz));
    let call = call.as_secs_f64();
    c.check(
        (wav.duration_secs() - call).abs() <= 0.75,
        format!(
            "{who} recorded {:.2} s for a {call:.2} s call",
            wav.duration_secs()
        ),
    );
    c.check(
        t.tone_secs() >= call - 1.0 && t.coverage() >= 0.8,
        format!(
            "{who} heard the {tone_hz} Hz tone for {:.1} s ({:.0}% of the recording, mean \
             share {:.2})",
            t.tone_secs(),
            100.0 * t.coverage(),
            t.mean_fraction
        ),
    );
}

/// Runs every check; `Ok` holds what passed, `Err` every failure and the SIP messages seen.
pub fn check_call(f: &CallFacts) -> Result<Vec<String>> {
    let msgs = sip::messages(f.datagrams);
    let sip_seen = || {
        msgs.iter()
            .map(SipMessage::summary)
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    let sdps = Sdps::find(&msgs, f)
        .map_err(|e| E2eError::new(format!("{e}\nSIP seen:\n  {}", sip_seen())))?;
    let mut c = Checker::default();
    let keys = check_sdp(&mut c, f, &sdps);

    let a = media_addr(&sdps.offer_from_caller);
    let b = media_addr(&sdps.answer_from_callee);
    let ra = media_addr(&sdps.answer_to_caller);
    let rb = media_addr(&sdps.offer_to_callee);
    let key = |i: usize| keys[i].as_ref().map(LegKey::from_crypto).transpose();
    let legs = [
        ("caller->relay", a, ra, key(0)?),
        ("relay->callee", rb, b, key(3)?),
        ("callee->relay", b, rb, key(2)?),
        ("relay->caller", ra, a, key(1)?),
    ];
    let mut reports = Vec::new();
    for (name, src, dst, key) in legs {
        let leg = Leg {
            name: name.into(),
            src,
            dst,
            key,
        };
        reports.push(analyse_leg(f.datagrams, &leg)?);
    }
    let (a_tone, b_tone) = (f.caller.ua.tone_hz, f.callee.ua.tone_hz);
    let a_dtls = f.caller.ua.media == MediaEnc::DtlsSrtp;
    let b_dtls = f.callee.ua.media == MediaEnc::DtlsSrtp;
    let dtls = [a_dtls, b_dtls, b_dtls, a_dtls];
    for ((r, tone), dtls) in reports
        .iter()
        .zip([a_tone, a_tone, b_tone, b_tone])
        .zip(dtls)
    {
        if dtls {
            check_dtls_leg(&mut c, r, tone, f.talk);
        } else {
            check_leg(&mut c, r, tone, f.talk);
        }
    }
    let fresh = f.relay.relay.sdes_keys() == SdesKeys::Fresh;
    let any_dtls = a_dtls || b_dtls;
    check_relayed(&mut c, &reports[0], &reports[1], fresh, any_dtls);
    check_relayed(&mut c, &reports[2], &reports[3], fresh, any_dtls);
    if any_dtls {
        // Media waits for the DTLS handshake: srtpgate's first ClientHello reaches baresip
        // before baresip has read the 200 OK and started its DTLS server, so it takes
        // OpenSSL's first retransmission (1 s). The recordings are compared with the time
        // media flowed, and that delay is bounded on its own.
        for (r, call, who) in [
            (&reports[1], f.callee_call, "callee"),
            (&reports[3], f.caller_call, "caller"),
        ] {
            let flowed = r.rtp_span.map(|(a, b)| b - a).unwrap_or(0.0);
            let delay = call.as_secs_f64() - flowed;
            c.check(
                delay <= DTLS_SETUP_BOUND_SECS,
                format!(
                    "media toward the {who} began {delay:.2} s after the call was established \
                     (DTLS handshake; at most {DTLS_SETUP_BOUND_SECS} s)"
                ),
            );
        }
        let flowed = |r: &LegReport| {
            Duration::from_secs_f64(r.rtp_span.map(|(a, b)| (b - a).max(0.0)).unwrap_or(0.0))
        };
        check_recording(&mut c, f.callee, a_tone, flowed(&reports[1]));
        check_recording(&mut c, f.caller, b_tone, flowed(&reports[3]));
    } else {
        check_recording(&mut c, f.callee, a_tone, f.callee_call);
        check_recording(&mut c, f.caller, b_tone, f.caller_call);
    }

    if c.failed.is_empty() {
        return Ok(c.passed);
    }
    Err(E2eError::new(format!(
        "{} check(s) failed:\n  {}\n\nchecks passed:\n  {}\n\nSIP seen:\n  {}",
        c.failed.len(),
        c.failed.join("\n  "),
        c.passed.join("\n  "),
        sip_seen()
    )))
}
