//! AES-192 against libsrtp: libsrtp before cisco/libsrtp#765 (2.7.x, backported to 2.x in
//! #770; Debian's 2.5.0 predates both) derives AES-192 session keys with the AES-256 PRF,
//! keyed by the 24-byte master key followed by the first 8 bytes of the master salt, with
//! the last 6 salt bytes and 8 zero bytes as the PRF's salt (cisco/libsrtp#763). srtpgate
//! follows RFC 6188 §7.4 (checked against its vectors in relay/tests/rfc_vectors.rs), so the
//! two cannot talk AES-192 until the system libsrtp is fixed.
//!
//! This test models the faulty derivation independently and checks that the linked libsrtp
//! produces exactly the model's packets, so the mismatch is pinned on the known libsrtp
//! bug rather than on srtpgate. Once libsrtp is fixed, the full interop suite covers
//! AES-192 (`libsrtp_interop.rs` probes for the fix) and this test checks the fixed
//! library agrees with srtpgate instead.

use relay::srtp::kdf::{derive, Label};
use relay::srtp::{rtp_header_len, MasterKey, Policy, SrtpContext, Suite};
use ring::hmac;
use srtpgate_tests::libsrtp::{Direction, LibSrtp};
use srtpgate_tests::packets::{rtcp_sr_sdes, rtp, RtpShape};

/// Session keys as libsrtp 2.5 derives them for an AES-192 suite.
struct Faulty {
    key: [u8; 24],
    salt: [u8; 14],
    auth: hmac::Key,
}

impl Faulty {
    fn derive(key_salt: &[u8], rtcp: bool) -> Self {
        let mut padded = [0u8; 46];
        padded[..38].copy_from_slice(key_salt);
        let prf = MasterKey::new(Suite::Aes256CmHmacSha1_80, &padded[..32], &padded[32..])
            .expect("AES-256 master key");
        let (le, la, ls) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt)
        };
        let mut f = Faulty {
            key: [0; 24],
            salt: [0; 14],
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[]),
        };
        derive(&prf, le, 0, &mut f.key).expect("derive");
        derive(&prf, ls, 0, &mut f.salt).expect("derive");
        let mut ka = [0u8; 20];
        derive(&prf, la, 0, &mut ka).expect("derive");
        f.auth = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &ka);
        f
    }

    /// XORs AES-192 counter-mode keystream for (SSRC, index) into `data`. The keystream is
    /// produced by the RFC 3711 PRF itself: with label 0 and r = 0 it is exactly AES-CM
    /// with IV = salt * 2^16, so the "master salt" here is the session salt with SSRC and
    /// index already XORed in.
    fn xor(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = self.salt;
        iv[4..8]
            .iter_mut()
            .zip(ssrc.to_be_bytes())
            .for_each(|(a, b)| *a ^= b);
        iv[8..14]
            .iter_mut()
            .zip(&index.to_be_bytes()[2..])
            .for_each(|(a, b)| *a ^= b);
        let ctr = MasterKey::new(Suite::Aes192CmHmacSha1_80, &self.key, &iv).expect("key");
        let mut ks = vec![0u8; data.len()];
        derive(&ctr, Label::RtpEncryption, 0, &mut ks).expect("keystream");
        data.iter_mut().zip(ks).for_each(|(d, k)| *d ^= k);
    }

    fn tag(&self, parts: &[&[u8]], len: usize) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.auth);
        parts.iter().for_each(|p| ctx.update(p));
        ctx.sign().as_ref()[..len].to_vec()
    }
}

/// SRTP for a first packet (ROC 0) under libsrtp 2.5's AES-192 keys.
fn model_srtp(suite: Suite, key_salt: &[u8], plain: &[u8]) -> Vec<u8> {
    let k = Faulty::derive(key_salt, false);
    let mut p = plain.to_vec();
    let h = rtp_header_len(&p).expect("header");
    let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    let seq = u16::from_be_bytes([p[2], p[3]]);
    k.xor(ssrc, seq as u64, &mut p[h..]);
    let tag = k.tag(&[&p, &[0, 0, 0, 0]], suite.rtp_tag_len());
    p.extend_from_slice(&tag);
    p
}

/// SRTCP with index 1 (libsrtp's first) under libsrtp 2.5's AES-192 keys.
fn model_srtcp(key_salt: &[u8], plain: &[u8]) -> Vec<u8> {
    let k = Faulty::derive(key_salt, true);
    let mut p = plain.to_vec();
    let ssrc = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    k.xor(ssrc, 1, &mut p[8..]);
    p.extend_from_slice(&0x8000_0001u32.to_be_bytes());
    let tag = k.tag(&[&p], 10);
    p.extend_from_slice(&tag);
    p
}

fn srtpgate_srtp(suite: Suite, key_salt: &[u8], plain: &[u8]) -> Vec<u8> {
    let key = MasterKey::from_key_salt(suite, key_salt).expect("key");
    let mut ctx = SrtpContext::new(Policy::new(suite, key)).expect("context");
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.srtp_overhead(), 0);
    let n = ctx.protect(&mut buf, plain.len()).expect("protect");
    buf.truncate(n);
    buf
}

#[test]
fn libsrtp_aes192_is_the_aes256_prf_mistake_or_agrees_with_srtpgate() {
    for suite in [Suite::Aes192CmHmacSha1_80, Suite::Aes192CmHmacSha1_32] {
        let key_salt: Vec<u8> = (0..38u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        let mut tx = LibSrtp::new(suite, &key_salt, Direction::Outbound).expect("libsrtp");
        let plain = rtp(RtpShape::varied(1), 4242, 160, 0x1357_9bdf, 7);
        let theirs = tx.protect_vec(&plain).expect("libsrtp protect");
        let ours = srtpgate_srtp(suite, &key_salt, &plain);
        if theirs == ours {
            eprintln!("{suite}: the linked libsrtp follows RFC 6188 (cisco/libsrtp#763 fixed)");
            continue;
        }
        assert_eq!(
            theirs,
            model_srtp(suite, &key_salt, &plain),
            "{suite}: libsrtp disagrees with srtpgate and with the model of its known bug"
        );
        let rtcp = rtcp_sr_sdes(0x1357_9bdf, 2, 9, 3);
        let theirs = tx.protect_rtcp_vec(&rtcp).expect("libsrtp protect_rtcp");
        assert_eq!(theirs, model_srtcp(&key_salt, &rtcp), "{suite} SRTCP");
        eprintln!(
            "{suite}: {} derives keys with the AES-256 PRF (cisco/libsrtp#763); srtpgate \
             follows RFC 6188",
            srtpgate_tests::libsrtp::version()
        );
    }
}

/// The model's cipher and tag code, fed the RFC 6188 session keys instead of libsrtp's,
/// must give srtpgate's packet: the model is right apart from the derivation it models.
#[test]
fn the_keystream_trick_matches_srtpgate() {
    let suite = Suite::Aes192CmHmacSha1_80;
    let key_salt: Vec<u8> = (0..38u8).collect();
    let plain = rtp(RtpShape::plain(100), 7, 0, 0xdead_beef, 1);
    let ours = srtpgate_srtp(suite, &key_salt, &plain);
    // RFC 6188 keys, then the same counter-mode and tag code as the model.
    let master = MasterKey::from_key_salt(suite, &key_salt).expect("key");
    let mut k = Faulty::derive(&[0; 38], false);
    derive(&master, Label::RtpEncryption, 0, &mut k.key).expect("derive");
    derive(&master, Label::RtpSalt, 0, &mut k.salt).expect("derive");
    let mut ka = [0u8; 20];
    derive(&master, Label::RtpAuth, 0, &mut ka).expect("derive");
    k.auth = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &ka);
    let mut p = plain.clone();
    k.xor(0xdead_beef, 7, &mut p[12..]);
    let tag = k.tag(&[&p, &[0, 0, 0, 0]], 10);
    p.extend_from_slice(&tag);
    assert_eq!(p, ours);
}
