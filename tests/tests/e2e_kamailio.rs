//! Calls between two real baresip phones through a real Kamailio whose `rtpengine` module
//! anchors the media in the relay under test over the ng protocol, checked on the wire
//! (tshark capture, SRTP verified with libsrtp) and in what each phone recorded.
//!
//! Every scenario runs against Sipwise rtpengine (the reference; Debian `rtpengine-daemon`)
//! and against srtpgate. Needs root (or CAP_NET_RAW) for the capture and the Debian packages
//! `kamailio baresip-core rtpengine-daemon tshark`.

use srtpgate_tests::e2e::kamailio::MediaFlags;
use srtpgate_tests::e2e::relay::Relay;
use srtpgate_tests::e2e::scenario::CallScenario;

fn run(s: CallScenario) {
    match s.run() {
        Ok(notes) => {
            for n in notes {
                println!("ok: {n}");
            }
        }
        Err(e) => panic!("{e}"),
    }
}

fn srtpgate() -> Relay {
    Relay::srtpgate().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn sdes_call_through_rtpengine() {
    run(CallScenario::sdes_call(Relay::Rtpengine));
}

#[test]
fn srtp_to_rtp_bridging_through_rtpengine() {
    run(CallScenario::srtp_to_rtp(Relay::Rtpengine));
}

#[test]
fn rtp_to_srtp_bridging_through_rtpengine() {
    run(CallScenario::rtp_to_srtp(Relay::Rtpengine));
}

/// The checks catch one-way audio: without `SDES-pad`, rtpengine 10.5 writes the
/// AEAD_AES_256_GCM key it offers the callee as unpadded base64, baresip 1.0.0 decodes it
/// two bytes short, and the callee hears nothing while the caller hears the callee.
#[test]
fn one_way_audio_is_caught_rtpengine_unpadded_gcm_key() {
    let mut s = CallScenario::rtp_to_srtp(Relay::Rtpengine);
    let no_pad = |f: &str| f.replace(" SDES-pad", "");
    s.flags = MediaFlags {
        offer: no_pad(&s.flags.offer),
        answer: no_pad(&s.flags.answer),
    };
    s.keep_failed = false;
    let err = s
        .run()
        .expect_err("a call the callee cannot decrypt must fail the checks");
    let failures = err
        .message()
        .split("checks passed:")
        .next()
        .unwrap_or("")
        .to_string();
    assert!(
        failures.contains("bob heard the 440 Hz tone") || failures.contains("bob's recording"),
        "expected the callee's recording to fail:\n{err}"
    );
    assert!(
        !failures.contains("alice heard the 660 Hz tone"),
        "the caller should still hear the callee:\n{err}"
    );
    println!("caught as expected:\n{failures}");
}

#[test]
fn sdes_call_through_srtpgate() {
    run(CallScenario::sdes_call(srtpgate()));
}

#[test]
fn srtp_to_rtp_bridging_through_srtpgate() {
    run(CallScenario::srtp_to_rtp(srtpgate()));
}

#[test]
fn rtp_to_srtp_bridging_through_srtpgate() {
    run(CallScenario::rtp_to_srtp(srtpgate()));
}
