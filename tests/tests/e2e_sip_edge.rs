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

/// baresip 1.0.0 (libre 1.1) gives up on a REGISTER challenged with any algorithm but MD5
/// ("Function not implemented"), even when an MD5 challenge comes too: deployments with
/// such phones set `digest-algorithms = ["MD5"]`. This test notices when that changes.
#[test]
fn baresip_1_0_gives_up_on_sha256_challenges() {
    let mut c = EdgeCall::new(
        SipTransport::Udp,
        MediaEnc::SrtpMandatory,
        MediaEnc::SrtpMandatory,
    );
    c.name = "edge-sha256".into();
    c.algorithms = vec!["SHA-256".into(), "MD5".into()];
    c.keep_failed = false;
    let err = c
        .run()
        .expect_err("baresip 1.0.0 cannot answer SHA-256 challenges");
    assert!(err.to_string().contains("REGISTER_FAIL"), "{err}");
}

/// A DTLS-SRTP phone (baresip `dtls_srtp`) calls an SDES-SRTP phone: srtpgate terminates
/// DTLS toward the caller and offers SDES toward the callee.
#[test]
fn dtls_caller_to_sdes_callee() {
    let mut c = EdgeCall::new(
        SipTransport::Udp,
        MediaEnc::DtlsSrtp,
        MediaEnc::SrtpMandatory,
    );
    c.name = "edge-dtls-to-sdes".into();
    run(c);
}
