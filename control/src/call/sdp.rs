//! Between SDP and the call model: what an endpoint's SDP says ([`extract`]) and how the SDP
//! srtpgate forwards is rewritten so that media flows through the relay ([`rewrite`]).

use std::net::{IpAddr, SocketAddr};

use relay::srtp::Suite;

use super::crypto::CryptoLine;
use super::model::{LocalMedia, RemoteDtls, RemoteIce, RemoteMedia};
use crate::sdp::{
    Attribute, Crypto, CryptoError, MediaDescription, Proto, Rtcp, SessionDescription,
};

/// Why an SDP body cannot be relayed. Messages never carry key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("media stream {index}: a=crypto tag {tag}: {error}")]
    Crypto {
        index: usize,
        tag: String,
        error: CryptoError,
    },
    #[error("media stream {0}: bad a=rtcp attribute")]
    BadRtcp(usize),
    #[error("media stream {0}: DTLS-SRTP without a usable a=fingerprint or a=setup")]
    Dtls(usize),
    #[error("media stream {0}: transport {1} is not RTP")]
    NotRtp(usize, String),
}

/// Reads each media section of `sdp` into a [`RemoteMedia`]. `source` replaces the SDP's
/// addresses when the proxy asks for the SIP source address to be used.
pub fn extract(
    sdp: &SessionDescription,
    source: Option<IpAddr>,
) -> Result<Vec<RemoteMedia>, MediaError> {
    sdp.media
        .iter()
        .enumerate()
        .map(|(i, m)| extract_one(sdp, i, m, source))
        .collect()
}

fn extract_one(
    sdp: &SessionDescription,
    index: usize,
    m: &MediaDescription,
    source: Option<IpAddr>,
) -> Result<RemoteMedia, MediaError> {
    let fingerprints = sdp.fingerprints_for(m);
    let has_fingerprint = fingerprints.as_ref().map(|f| !f.is_empty()).unwrap_or(true);
    let dtls = if (m.proto.is_dtls() || has_fingerprint) && m.port != 0 {
        let (Ok(fingerprints), Ok(setup)) = (fingerprints, sdp.setup_for(m)) else {
            return Err(MediaError::Dtls(index));
        };
        // Only fingerprints of a known hash with a digest of its length can be checked.
        let fingerprints: Vec<_> = fingerprints
            .into_iter()
            .filter(|f| {
                crate::dtls::digest_named(&f.hash).is_some_and(|d| d.size() == f.digest.len())
            })
            .collect();
        match (fingerprints.is_empty(), m.proto.is_dtls()) {
            (true, true) => return Err(MediaError::Dtls(index)),
            (true, false) => None,
            (false, _) => Some(RemoteDtls {
                fingerprints,
                setup,
            }),
        }
    } else {
        None
    };
    let ice = match (sdp.ice_ufrag_for(m), sdp.ice_pwd_for(m)) {
        (Some(ufrag), Some(_)) => Some(RemoteIce {
            ufrag: ufrag.to_string(),
            lite: sdp.ice_lite(),
        }),
        _ => None,
    };
    if !m.proto.is_rtp() && m.port != 0 {
        return Err(MediaError::NotRtp(index, m.proto.as_str().to_string()));
    }
    let addr = source.or_else(|| sdp.connection_for(m).and_then(|c| c.ip()));
    let rtcp = match m.rtcp() {
        Ok(Some(Rtcp { port, address })) => {
            let ip = address.and_then(|c| c.ip()).or(addr);
            ip.map(|ip| SocketAddr::new(source.unwrap_or(ip), port))
        }
        Ok(None) => None,
        Err(_) => return Err(MediaError::BadRtcp(index)),
    };
    let mut crypto = Vec::new();
    let mut unsupported = Vec::new();
    if m.proto.is_srtp() {
        for c in m.cryptos() {
            let c = c.map_err(|error| MediaError::Crypto {
                index,
                tag: "?".into(),
                error,
            })?;
            let suite = match c.suite() {
                Ok(s) => s,
                Err(_) => {
                    unsupported.push(c.suite.clone());
                    continue;
                }
            };
            let keys = c.master_keys().map_err(|error| MediaError::Crypto {
                index,
                tag: c.tag.to_string(),
                error,
            })?;
            let mut keys = keys.into_iter();
            let Some(key) = keys.next() else { continue };
            let params = c
                .session_params
                .iter()
                .filter(|p| {
                    matches!(
                        p.as_str(),
                        "UNENCRYPTED_SRTP" | "UNENCRYPTED_SRTCP" | "UNAUTHENTICATED_SRTP"
                    )
                })
                .cloned()
                .collect();
            crypto.push(CryptoLine {
                tag: c.tag,
                suite,
                key,
                extra_keys: keys.collect(),
                params,
            });
        }
    }
    Ok(RemoteMedia {
        kind: m.media.clone(),
        addr,
        port: m.port,
        rtcp,
        rtcp_mux: m.rtcp_mux(),
        srtp: m.proto.is_srtp(),
        crypto,
        unsupported_suites: unsupported,
        dtls,
        ice,
        feedback: m.proto.has_feedback(),
    })
}

/// How the forwarded SDP is rewritten beyond addresses, ports and keys.
#[derive(Clone, Debug, Default)]
pub struct RewriteOptions {
    /// Replace the address in `o=` too.
    pub replace_origin: bool,
    /// Write this address instead of the interface's advertised one.
    pub media_address: Option<IpAddr>,
    /// Leave `a=rtcp` out.
    pub no_rtcp_attribute: bool,
    /// Add `a=mid` to media sections without one (always done toward ICE endpoints).
    pub generate_mid: bool,
}

/// Points every media section of `sdp` at the relay as described by `locals` (one per
/// section, in order), with srtpgate's own keys; strips ICE and DTLS attributes.
pub fn rewrite(sdp: &mut SessionDescription, locals: &[LocalMedia], opts: &RewriteOptions) {
    let first = locals.first().map(|l| opts.media_address.unwrap_or(l.addr));
    if let Some(ip) = first {
        if sdp.connection.is_some() {
            sdp.set_connection_address(ip);
        }
        if opts.replace_origin {
            sdp.origin.set_ip(ip);
        }
    }
    sdp.remove_ice();
    sdp.remove_dtls();
    if locals.iter().any(|l| l.ice.is_some() && !l.rejected) {
        sdp.add_attribute(Attribute::flag("ice-lite"));
    }
    // Keys must never pass from one leg to the other, wherever the peer put them.
    sdp.remove_attributes("crypto");
    sdp.remove_lines('k');
    for (index, (m, l)) in sdp.media.iter_mut().zip(locals).enumerate() {
        let ip = opts.media_address.unwrap_or(l.addr);
        if l.rejected {
            m.set_port(0);
            continue;
        }
        m.set_port(l.port);
        if m.connection.is_some() || first != Some(ip) {
            m.set_connection_address(ip);
        }
        let feedback = l.feedback.unwrap_or_else(|| m.proto.has_feedback());
        m.set_proto(Proto::rtp(l.srtp, l.dtls.is_some(), feedback));
        let cryptos: Vec<Crypto> = l
            .crypto
            .iter()
            .map(|c| {
                let mut keys = vec![c.key.clone()];
                keys.extend(c.extra_keys.iter().cloned());
                c.params
                    .iter()
                    .fold(Crypto::new(c.tag, c.suite, &keys), |cr, p| {
                        cr.with_session_param(p.clone())
                    })
            })
            .collect();
        m.set_crypto(&cryptos);
        m.remove_lines('k');
        m.remove_ice();
        m.remove_dtls();
        if (opts.generate_mid || l.ice.is_some()) && m.mid().is_none() {
            m.add_attribute(Attribute::new("mid", index.to_string()));
        }
        if let Some(d) = &l.dtls {
            m.add_attribute(d.fingerprint.to_attribute());
            m.set_setup(d.setup);
        }
        if let Some(ice) = &l.ice {
            m.add_attribute(Attribute::new("ice-ufrag", ice.credentials.ufrag.clone()));
            m.add_attribute(Attribute::new("ice-pwd", ice.credentials.pwd.clone()));
            for c in &ice.candidates {
                m.add_attribute(c.to_attribute());
            }
            m.add_attribute(Attribute::flag("end-of-candidates"));
        }
        m.set_rtcp_mux(l.rtcp_mux);
        if opts.no_rtcp_attribute {
            m.set_rtcp(None);
        } else {
            let port = if l.rtcp_mux { l.port } else { l.rtcp_port };
            m.set_rtcp(Some(Rtcp::new(port, Some(ip))));
        }
    }
}

/// Suites named in SDES `no-…`/`only-…` options; unknown names are returned separately.
pub fn suites_named(names: &[String]) -> (Vec<Suite>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for n in names {
        match n.parse::<Suite>() {
            Ok(s) => ok.push(s),
            Err(_) => bad.push(n.clone()),
        }
    }
    (ok, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::crypto::fresh_key;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
        m=audio 4000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtcp:4001\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n\
        a=crypto:2 AEAD_AES_256_GCM_8 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
        a=ice-ufrag:abcd\r\na=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\r\na=sendrecv\r\n";

    #[test]
    fn extracts_addresses_and_keys() {
        let sdp = SessionDescription::parse(OFFER).unwrap();
        let m = extract(&sdp, None).unwrap();
        assert_eq!(m.len(), 1);
        let r = &m[0];
        assert_eq!(r.rtp_addr(), Some("192.0.2.1:4000".parse().unwrap()));
        assert_eq!(r.rtcp_addr(), Some("192.0.2.1:4001".parse().unwrap()));
        assert!(r.srtp && !r.rtcp_mux);
        assert_eq!(r.crypto.len(), 1);
        assert_eq!(r.crypto[0].suite, Suite::AesCm128HmacSha1_80);
        assert_eq!(r.crypto[0].key.mki().map(|m| m.len()), Some(4));
        assert_eq!(r.unsupported_suites, vec!["AEAD_AES_256_GCM_8".to_string()]);
        let m = extract(&sdp, Some("198.51.100.7".parse().unwrap())).unwrap();
        assert_eq!(m[0].rtp_addr(), Some("198.51.100.7:4000".parse().unwrap()));
    }

    #[test]
    fn bad_crypto_and_dtls_are_refused_precisely() {
        let bad = OFFER.replace(
            "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
            "inline:PS1uQCVeeCFCan",
        );
        let sdp = SessionDescription::parse(&bad).unwrap();
        let e = extract(&sdp, None).unwrap_err();
        assert!(matches!(e, MediaError::Crypto { index: 0, .. }), "{e}");
        assert!(!e.to_string().contains("PS1u"));
        // DTLS without a fingerprint cannot be verified.
        let dtls = OFFER.replace("RTP/SAVP", "UDP/TLS/RTP/SAVP");
        assert_eq!(
            extract(&SessionDescription::parse(&dtls).unwrap(), None).unwrap_err(),
            MediaError::Dtls(0)
        );
        let fp = "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:\
            00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\n\
            a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n";
        let dtls = format!("{dtls}{fp}");
        let m = extract(&SessionDescription::parse(&dtls).unwrap(), None).unwrap();
        let d = m[0].dtls.as_ref().unwrap();
        assert_eq!(d.setup, Some(crate::sdp::Setup::ActPass));
        assert_eq!(d.fingerprints[0].digest.len(), 32);
        assert_eq!(m[0].ice.as_ref().unwrap().ufrag, "abcd");
    }

    #[test]
    fn rewrite_points_at_the_relay_with_our_keys() {
        let mut sdp = SessionDescription::parse(OFFER).unwrap();
        let key = fresh_key(Suite::AeadAes128Gcm).unwrap();
        let local = LocalMedia {
            addr: "203.0.113.5".parse().unwrap(),
            port: 30000,
            rtcp_port: 30001,
            rtcp_mux: false,
            srtp: true,
            crypto: vec![CryptoLine {
                tag: 3,
                suite: Suite::AeadAes128Gcm,
                key: key.clone(),
                extra_keys: vec![],
                params: vec![],
            }],
            rejected: false,
            dtls: None,
            ice: None,
            feedback: None,
        };
        rewrite(
            &mut sdp,
            std::slice::from_ref(&local),
            &RewriteOptions {
                replace_origin: true,
                ..Default::default()
            },
        );
        let text = sdp.to_string();
        assert!(text.contains("c=IN IP4 203.0.113.5\r\n"), "{text}");
        assert!(text.contains("o=- 1 1 IN IP4 203.0.113.5\r\n"));
        assert!(text.contains("m=audio 30000 RTP/SAVP 0 101\r\n"));
        assert!(text.contains("a=rtcp:30001 IN IP4 203.0.113.5\r\n"));
        assert!(text.contains(&format!(
            "a=crypto:3 AEAD_AES_128_GCM {}\r\n",
            key.to_inline()
        )));
        assert!(
            !text.contains("PS1u") && !text.contains("ice-ufrag") && !text.contains("candidate")
        );
        // Plain RTP toward this side.
        let mut sdp = SessionDescription::parse(OFFER).unwrap();
        rewrite(
            &mut sdp,
            &[LocalMedia {
                srtp: false,
                crypto: vec![],
                rtcp_mux: true,
                ..local
            }],
            &RewriteOptions::default(),
        );
        let text = sdp.to_string();
        assert!(
            text.contains("m=audio 30000 RTP/AVP 0 101\r\n") && !text.contains("a=crypto"),
            "{text}"
        );
        assert!(text.contains("a=rtcp-mux\r\n") && text.contains("a=rtcp:30000"));
    }
}
