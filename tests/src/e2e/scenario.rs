//! One call through Kamailio and the relay under test: the caller registers and calls the
//! callee, the callee answers, both send a tone for a while, the caller hangs up. Then the
//! capture and the recordings are checked (see [`checks`](super::checks)).

use std::time::{Duration, Instant};

use super::baresip::{Baresip, MediaEnc, UserAgent};
use super::capture::{Capture, Datagram};
use super::checks::{self, CallFacts};
use super::kamailio::{Kamailio, MediaFlags};
use super::ports;
use super::process::Workdir;
use super::relay::Relay;
use super::{E2eError, Result};

/// Tone the caller sends.
pub const CALLER_TONE_HZ: u32 = 440;
/// Tone the callee sends.
pub const CALLEE_TONE_HZ: u32 = 660;

/// Bounds of each step; the whole call stays well under a minute.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A call to run.
#[derive(Clone, Debug)]
pub struct CallScenario {
    pub name: String,
    pub relay: Relay,
    pub flags: MediaFlags,
    pub caller: UserAgent,
    pub callee: UserAgent,
    /// How long the call lasts once both sides see it established.
    pub talk: Duration,
    /// Keep the work directory (configs, logs, capture, recordings) of a failed run.
    pub keep_failed: bool,
}

fn phone(user: &str, tone_hz: u32, media: MediaEnc, auto_answer: bool) -> UserAgent {
    UserAgent {
        user: user.into(),
        tone_hz,
        media,
        auto_answer,
    }
}

impl CallScenario {
    fn new(kind: &str, relay: Relay, flags: MediaFlags, a: MediaEnc, b: MediaEnc) -> Self {
        CallScenario {
            name: format!("{kind}-{}", relay.name()),
            relay,
            flags,
            caller: phone("alice", CALLER_TONE_HZ, a, false),
            callee: phone("bob", CALLEE_TONE_HZ, b, true),
            talk: Duration::from_secs(3),
            keep_failed: true,
        }
    }

    /// Both phones insist on SDES-SRTP; the SDP transport is left alone.
    pub fn sdes_call(relay: Relay) -> Self {
        Self::new(
            "sdes",
            relay,
            MediaFlags::keep_transport(),
            MediaEnc::SrtpMandatory,
            MediaEnc::SrtpMandatory,
        )
    }

    /// An SRTP caller and a plain-RTP callee: the offer goes out as RTP/AVP.
    pub fn srtp_to_rtp(relay: Relay) -> Self {
        Self::new(
            "srtp-to-rtp",
            relay,
            MediaFlags::offer_transport("RTP/AVP"),
            MediaEnc::SrtpMandatory,
            MediaEnc::Plain,
        )
    }

    /// A plain-RTP caller and an SRTP callee: the offer goes out as RTP/SAVP.
    pub fn rtp_to_srtp(relay: Relay) -> Self {
        Self::new(
            "rtp-to-srtp",
            relay,
            MediaFlags::offer_transport("RTP/SAVP"),
            MediaEnc::Plain,
            MediaEnc::SrtpMandatory,
        )
    }

    /// Runs the call and every check. On failure the error holds every failed check, the
    /// SIP messages seen, and the tail of every process log; the work directory is kept.
    pub fn run(&self) -> Result<Vec<String>> {
        let wd = Workdir::new(&self.name)?;
        let result = self.run_in(&wd);
        if let Err(e) = &result {
            if self.keep_failed {
                wd.keep();
            }
            return Err(E2eError::new(format!(
                "{}: {e}\n\nwork directory: {}\n{}",
                self.name,
                wd.path().display(),
                wd.log_tails(40)
            )));
        }
        result
    }

    fn run_in(&self, wd: &Workdir) -> Result<Vec<String>> {
        let t0 = Instant::now();
        let mut relay = self.relay.start(wd)?;
        let sip_port = ports::free_port()?;
        let filter = format!(
            "udp and (portrange {}-{} or port {sip_port})",
            relay.port_min, relay.port_max
        );
        let capture = Capture::start(wd, &filter)?;
        let mut kamailio = Kamailio::start(wd, sip_port, relay.ng, &self.flags)?;
        let mut a = Baresip::start(wd, &self.caller)?;
        let mut b = Baresip::start(wd, &self.callee)?;
        a.register(kamailio.sip, REGISTER_TIMEOUT)?;
        b.register(kamailio.sip, REGISTER_TIMEOUT)?;
        let ready = t0.elapsed();

        a.dial(&b.aor(kamailio.sip))?;
        let established_b = b.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], SETUP_TIMEOUT)?;
        let established_a = a.wait_event("CALL_ESTABLISHED", &["CALL_CLOSED"], SETUP_TIMEOUT)?;
        a.expect_no_event("CALL_CLOSED", self.talk)?;
        a.hangup()?;
        let closed_a = a.wait_event("CALL_CLOSED", &[], CLOSE_TIMEOUT)?;
        let closed_b = b.wait_event("CALL_CLOSED", &[], CLOSE_TIMEOUT)?;

        // Quit the phones while the registrar still answers their un-REGISTER; their
        // recordings are complete once they exit.
        a.stop();
        b.stop();
        let datagrams: Vec<Datagram> = capture.stop()?;
        kamailio.process.stop(Duration::from_secs(2));
        relay.process.stop(Duration::from_secs(2));

        let facts = CallFacts {
            relay: &relay,
            kamailio_port: sip_port,
            caller: &a,
            callee: &b,
            caller_call: closed_a.at - established_a.at,
            callee_call: closed_b.at - established_b.at,
            talk: self.talk,
            datagrams: &datagrams,
        };
        let mut notes = checks::check_call(&facts)?;
        notes.insert(
            0,
            format!(
                "{}: processes ready in {:.1} s, whole run {:.1} s",
                self.name,
                ready.as_secs_f64(),
                t0.elapsed().as_secs_f64()
            ),
        );
        Ok(notes)
    }
}
