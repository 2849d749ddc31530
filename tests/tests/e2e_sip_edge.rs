//! Calls between two real baresip phones through srtpgate's built-in SIP edge: the phones
//! register to srtpgate with digest authentication and call each other over UDP, TCP and
//! TLS signalling; the media is anchored in srtpgate with different SDES keys per leg.
//! Needs root (or CAP_NET_RAW) for the capture and the Debian packages
//! `baresip-core tshark`.

use srtpgate_tests::e2e::baresip::MediaEnc;
use srtpgate_tests::e2e::sip_edge::{EdgeCall, SipTransport};

fn run(c: EdgeCall) {
    match c.run() {
        Ok(notes) => {
            for n in notes {
                println!("ok: {n}");
            }
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn srtp_call_over_udp() {
    run(EdgeCall::new(
        SipTransport::Udp,
        MediaEnc::SrtpMandatory,
        MediaEnc::SrtpMandatory,
    ));
}

#[test]
fn srtp_call_over_tcp() {
    run(EdgeCall::new(
        SipTransport::Tcp,
        MediaEnc::SrtpMandatory,
        MediaEnc::SrtpMandatory,
    ));
}

#[test]
fn srtp_call_over_tls() {
    run(EdgeCall::new(
        SipTransport::Tls,
        MediaEnc::SrtpMandatory,
        MediaEnc::SrtpMandatory,
    ));
}

/// A plain-RTP phone reaches an SRTP-mandatory one: the default policy offers SRTP toward
/// the callee and answers the caller in plain RTP.
#[test]
fn plain_caller_reaches_srtp_callee() {
    let mut c = EdgeCall::new(SipTransport::Udp, MediaEnc::Plain, MediaEnc::SrtpMandatory);
    c.name = "edge-rtp-to-srtp".into();
    run(c);
}

/// An SRTP-mandatory caller reaches a plain-RTP phone: the callee refuses the SRTP offer
/// (488) and the branch is retried once with RTP/AVP.
#[test]
fn srtp_caller_reaches_plain_callee() {
    let mut c = EdgeCall::new(SipTransport::Udp, MediaEnc::SrtpMandatory, MediaEnc::Plain);
    c.name = "edge-srtp-to-rtp".into();
    run(c);
}
