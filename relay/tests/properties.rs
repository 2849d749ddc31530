//! Property tests of the SRTP/SRTCP contexts, for every suite and with the SDES session
//! parameters (MKI, UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP):
//! round trips, tamper detection, replay protection, reordering, sequence number
//! wrap-around, key lifetime and MKI lookup.
//!
//! Each property runs every suite inside one case, so every suite is covered whatever
//! cases proptest draws. Case counts are kept small so that the whole file runs in a few
//! seconds in debug builds.

use proptest::prelude::*;
use relay::srtp::{Error, MasterKey, Mki, Policy, SrtpContext, Suite, MIN_WINDOW};

/// Session parameters and keying material shared by a sender and a receiver.
#[derive(Debug, Clone)]
struct Options {
    /// MKI length (1..=4) and value.
    mki: Option<(usize, u32)>,
    unencrypted_srtp: bool,
    unencrypted_srtcp: bool,
    unauthenticated_srtp: bool,
    /// 46 bytes, enough for the longest key || salt.
    key_salt: Vec<u8>,
}

fn options() -> impl Strategy<Value = Options> {
    (
        prop::option::of((1usize..=4, any::<u32>())),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 46),
    )
        .prop_map(|(mki, ue_srtp, ue_srtcp, ua_srtp, key_salt)| Options {
            mki: mki.map(|(len, v)| (len, if len == 4 { v } else { v % (1 << (8 * len)) })),
            unencrypted_srtp: ue_srtp,
            unencrypted_srtcp: ue_srtcp,
            unauthenticated_srtp: ua_srtp,
            key_salt,
        })
}

fn is_aead(suite: Suite) -> bool {
    matches!(suite, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
}

impl Options {
    /// UNAUTHENTICATED_SRTP is not allowed with AEAD suites: it is dropped for them.
    fn unauthenticated(&self, suite: Suite) -> bool {
        self.unauthenticated_srtp && !is_aead(suite)
    }

    fn srtp_authenticated(&self, suite: Suite) -> bool {
        !self.unauthenticated(suite)
    }

    fn master_key(&self, suite: Suite, mki: Option<(usize, u32)>) -> MasterKey {
        let (k, rest) = self.key_salt.split_at(suite.key_len());
        let mut key = MasterKey::new(suite, k, &rest[..suite.salt_len()]).unwrap();
        if let Some((len, value)) = mki {
            key = key.with_mki(Mki::new(value, len).unwrap());
        }
        key
    }

    fn policy(&self, suite: Suite) -> Policy {
        let mut p = Policy::new(suite, self.master_key(suite, self.mki));
        p.unencrypted_srtp = self.unencrypted_srtp;
        p.unencrypted_srtcp = self.unencrypted_srtcp;
        p.unauthenticated_srtp = self.unauthenticated(suite);
        p
    }

    fn context(&self, suite: Suite) -> SrtpContext {
        SrtpContext::new(self.policy(suite)).unwrap()
    }

    fn context_with_window(&self, suite: Suite, window: u64) -> SrtpContext {
        let mut p = self.policy(suite);
        p.replay_window = window;
        SrtpContext::new(p).unwrap()
    }
}

/// An RTP packet: header with `csrcs` CSRCs and an optional extension of `ext_words`
/// 32-bit words, then `payload`.
#[derive(Debug, Clone)]
struct Rtp {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    csrcs: Vec<u32>,
    ext: Option<(u16, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Rtp {
    fn with_seq(&self, seq: u16) -> Vec<u8> {
        let mut r = self.clone();
        r.seq = seq;
        r.bytes()
    }

    fn bytes(&self) -> Vec<u8> {
        let mut p = vec![
            0x80 | (u8::from(self.ext.is_some()) << 4) | self.csrcs.len() as u8,
            (u8::from(self.marker) << 7) | self.pt,
        ];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs {
            p.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, data)) = &self.ext {
            p.extend_from_slice(&profile.to_be_bytes());
            p.extend_from_slice(&((data.len() / 4) as u16).to_be_bytes());
            p.extend_from_slice(data);
        }
        p.extend_from_slice(&self.payload);
        p
    }
}

fn rtp() -> impl Strategy<Value = Rtp> {
    (
        (
            any::<bool>(),
            0u8..128,
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
        ),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((
            any::<u16>(),
            (0usize..=6).prop_flat_map(|w| prop::collection::vec(any::<u8>(), w * 4)),
        )),
        prop::collection::vec(any::<u8>(), 0..=1400),
    )
        .prop_map(|((marker, pt, seq, ts, ssrc), csrcs, ext, payload)| Rtp {
            marker,
            pt,
            seq,
            ts,
            ssrc,
            csrcs,
            ext,
            payload,
        })
}

/// An RTCP (compound) packet: the first 8 bytes are a header with the sender's SSRC.
fn rtcp() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..32,
        200u8..=204,
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..=1400),
    )
        .prop_map(|(rc, pt, ssrc, body)| {
            let words = ((8 + body.len()) / 4).saturating_sub(1) as u16;
            let mut p = vec![0x80 | rc, pt];
            p.extend_from_slice(&words.to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&body);
            p
        })
}

fn protect(ctx: &mut SrtpContext, plain: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.srtp_overhead(), 0);
    let n = ctx.protect(&mut buf, plain.len())?;
    buf.truncate(n);
    Ok(buf)
}

fn protect_rtcp(ctx: &mut SrtpContext, plain: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + ctx.srtcp_overhead(), 0);
    let n = ctx.protect_rtcp(&mut buf, plain.len())?;
    buf.truncate(n);
    Ok(buf)
}

fn unprotect(ctx: &mut SrtpContext, srtp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtp.to_vec();
    let n = ctx.unprotect(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn unprotect_rtcp(ctx: &mut SrtpContext, srtcp: &[u8]) -> Result<Vec<u8>, Error> {
    let mut buf = srtcp.to_vec();
    let n = ctx.unprotect_rtcp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Each case already covers all eleven suites; shrinking stays cheap.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// protect then unprotect gives back the packet, for RTP and RTCP, and the overheads
    /// are the ones the context announces.
    #[test]
    fn protect_then_unprotect_is_identity(opts in options(), rtp in rtp(), rtcp in rtcp()) {
        let plain = rtp.bytes();
        for suite in Suite::ALL {
            let mut tx = opts.context(suite);
            let mut rx = opts.context(suite);
            let srtp = protect(&mut tx, &plain).unwrap();
            prop_assert_eq!(srtp.len(), plain.len() + tx.srtp_overhead(), "{}", suite);
            let encrypts = suite.cipher() != relay::srtp::CipherKind::Null && !opts.unencrypted_srtp;
            if encrypts && rtp.payload.len() >= 16 {
                prop_assert_ne!(&srtp[..plain.len()], &plain[..], "{} left the payload clear", suite);
            }
            if !encrypts {
                prop_assert_eq!(&srtp[..plain.len()], &plain[..], "{} changed a clear payload", suite);
            }
            prop_assert_eq!(unprotect(&mut rx, &srtp).unwrap(), plain.clone(), "{}", suite);

            let srtcp = protect_rtcp(&mut tx, &rtcp).unwrap();
            prop_assert_eq!(srtcp.len(), rtcp.len() + tx.srtcp_overhead(), "{}", suite);
            prop_assert_eq!(unprotect_rtcp(&mut rx, &srtcp).unwrap(), rtcp.clone(), "{}", suite);
        }
    }

    /// Flipping any one bit of a protected packet makes unprotect fail (for SRTP only
    /// where it is authenticated; SRTCP always is), and the failed packet leaves the
    /// receiver as it was: the genuine packet is still accepted afterwards.
    #[test]
    fn any_single_bit_flip_is_rejected(
        opts in options(), rtp in rtp(), rtcp in rtcp(), bit in any::<u32>(), bit2 in any::<u32>(),
    ) {
        let plain = rtp.bytes();
        for suite in Suite::ALL {
            let mut tx = opts.context(suite);
            let mut rx = opts.context(suite);
            let srtp = protect(&mut tx, &plain).unwrap();
            if opts.srtp_authenticated(suite) {
                let at = bit as usize % (srtp.len() * 8);
                let mut forged = srtp.clone();
                forged[at / 8] ^= 1 << (at % 8);
                let r = unprotect(&mut rx, &forged);
                prop_assert!(r.is_err(), "{} accepted SRTP with bit {} flipped: {:?}", suite, at, r);
            }
            prop_assert_eq!(unprotect(&mut rx, &srtp).unwrap(), plain.clone(), "{}", suite);

            let srtcp = protect_rtcp(&mut tx, &rtcp).unwrap();
            let at = bit2 as usize % (srtcp.len() * 8);
            let mut forged = srtcp.clone();
            forged[at / 8] ^= 1 << (at % 8);
            let r = unprotect_rtcp(&mut rx, &forged);
            prop_assert!(r.is_err(), "{} accepted SRTCP with bit {} flipped: {:?}", suite, at, r);
            prop_assert_eq!(unprotect_rtcp(&mut rx, &srtcp).unwrap(), rtcp.clone(), "{}", suite);
        }
    }

    /// Every bit position of one short packet, exhaustively, with the 32-bit-tag suites
    /// included (a forgery would need a 2^-32 chance per position).
    #[test]
    fn every_bit_flip_of_a_short_packet_is_rejected(opts in options(), rtp in rtp()) {
        let mut rtp = rtp;
        rtp.payload.truncate(24);
        rtp.csrcs.truncate(1);
        let plain = rtp.bytes();
        for suite in Suite::ALL {
            if !opts.srtp_authenticated(suite) {
                continue;
            }
            let mut tx = opts.context(suite);
            let srtp = protect(&mut tx, &plain).unwrap();
            let mut rx = opts.context(suite);
            for at in 0..srtp.len() * 8 {
                let mut forged = srtp.clone();
                forged[at / 8] ^= 1 << (at % 8);
                prop_assert!(unprotect(&mut rx, &forged).is_err(), "{} bit {}", suite, at);
            }
            prop_assert_eq!(unprotect(&mut rx, &srtp).unwrap(), plain.clone(), "{}", suite);
        }
    }

    /// The same packet twice: the second time it is a replay, for SRTP and SRTCP.
    #[test]
    fn a_replayed_packet_is_rejected(opts in options(), rtp in rtp(), rtcp in rtcp()) {
        let plain = rtp.bytes();
        for suite in Suite::ALL {
            let mut tx = opts.context(suite);
            let mut rx = opts.context(suite);
            let srtp = protect(&mut tx, &plain).unwrap();
            unprotect(&mut rx, &srtp).unwrap();
            prop_assert_eq!(unprotect(&mut rx, &srtp), Err(Error::Replay), "{}", suite);
            let srtcp = protect_rtcp(&mut tx, &rtcp).unwrap();
            unprotect_rtcp(&mut rx, &srtcp).unwrap();
            prop_assert_eq!(unprotect_rtcp(&mut rx, &srtcp), Err(Error::Replay), "{}", suite);
            // A sender never reuses an index either.
            prop_assert_eq!(protect(&mut tx, &plain), Err(Error::Replay), "{}", suite);
        }
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// With a window of w packets, the packet w behind the newest one is too old
    /// (ReplayOld) and the one w - 1 behind is still accepted, for SRTP and SRTCP.
    #[test]
    fn a_packet_older_than_the_window_is_rejected(
        opts in options(), rtp in rtp(), rtcp in rtcp(), window in MIN_WINDOW..=256u64,
    ) {
        let mut rtp = rtp;
        rtp.payload.truncate(64);
        let mut rtcp = rtcp;
        rtcp.truncate(64);
        let w = window as u16;
        for suite in Suite::ALL {
            let mut tx = opts.context_with_window(suite, window);
            let mut rx = opts.context_with_window(suite, window);
            let old = protect(&mut tx, &rtp.with_seq(rtp.seq)).unwrap();
            let edge = protect(&mut tx, &rtp.with_seq(rtp.seq.wrapping_add(1))).unwrap();
            let new = protect(&mut tx, &rtp.with_seq(rtp.seq.wrapping_add(w))).unwrap();
            unprotect(&mut rx, &old).unwrap();
            unprotect(&mut rx, &new).unwrap();
            prop_assert_eq!(unprotect(&mut rx, &old), Err(Error::ReplayOld), "{}", suite);
            prop_assert_eq!(unprotect(&mut rx, &edge).unwrap(), rtp.with_seq(rtp.seq.wrapping_add(1)));

            let srtcp: Vec<Vec<u8>> =
                (0..=window).map(|_| protect_rtcp(&mut tx, &rtcp).unwrap()).collect();
            unprotect_rtcp(&mut rx, &srtcp[window as usize]).unwrap();
            prop_assert_eq!(unprotect_rtcp(&mut rx, &srtcp[0]), Err(Error::ReplayOld), "{}", suite);
            prop_assert_eq!(unprotect_rtcp(&mut rx, &srtcp[1]).unwrap(), rtcp.clone(), "{}", suite);
        }
    }

    /// Up to a window's worth of packets in any order after the first: all accepted, and
    /// each one only once. The run may cross a sequence number wrap.
    #[test]
    fn reordering_inside_the_window_is_accepted(
        opts in options(),
        rtp in rtp(),
        order in (1usize..128).prop_flat_map(|n| Just((1..=n).collect::<Vec<_>>()).prop_shuffle()),
    ) {
        let mut rtp = rtp;
        rtp.payload.truncate(48);
        for suite in Suite::ALL {
            let mut tx = opts.context(suite);
            let mut rx = opts.context(suite);
            let seq = |i: usize| rtp.seq.wrapping_add(i as u16);
            let srtp: Vec<Vec<u8>> =
                (0..=order.len()).map(|i| protect(&mut tx, &rtp.with_seq(seq(i))).unwrap()).collect();
            unprotect(&mut rx, &srtp[0]).unwrap();
            for &i in &order {
                prop_assert_eq!(unprotect(&mut rx, &srtp[i]).unwrap(), rtp.with_seq(seq(i)), "{} #{}", suite, i);
            }
            for &i in &order {
                prop_assert_eq!(unprotect(&mut rx, &srtp[i]), Err(Error::Replay), "{} #{}", suite, i);
            }
        }
    }

    /// Sequence numbers 65534, 65535, 0, 1 (delivered as 65534, 0, 65535, 1): the rollover
    /// counter goes from 0 to 1 on both sides. Packets after the wrap are protected with
    /// ROC 1: they differ from the same packets protected with ROC 0, and a receiver that
    /// has not seen the wrap (so assumes ROC 0) cannot authenticate them.
    #[test]
    fn sequence_wrap_increments_the_rollover_counter(opts in options(), rtp in rtp()) {
        let mut rtp = rtp;
        rtp.payload.truncate(100);
        for suite in Suite::ALL {
            let mut tx = opts.context(suite);
            let mut rx = opts.context(suite);
            let seqs = [65534u16, 65535, 0, 1];
            let srtp: Vec<Vec<u8>> =
                seqs.iter().map(|&s| protect(&mut tx, &rtp.with_seq(s)).unwrap()).collect();
            for i in [0, 2, 1, 3] {
                prop_assert_eq!(unprotect(&mut rx, &srtp[i]).unwrap(), rtp.with_seq(seqs[i]), "{} seq {}", suite, seqs[i]);
            }
            let mut fresh = opts.context(suite);
            let roc0 = protect(&mut fresh, &rtp.with_seq(0)).unwrap();
            let transforms = opts.srtp_authenticated(suite)
                || (suite.cipher() != relay::srtp::CipherKind::Null && !opts.unencrypted_srtp && !rtp.payload.is_empty());
            if transforms {
                prop_assert_ne!(&roc0, &srtp[2], "{}: ROC 1 packet equals the ROC 0 one", suite);
            }
            if opts.srtp_authenticated(suite) {
                let mut late = opts.context(suite);
                prop_assert_eq!(unprotect(&mut late, &srtp[2]), Err(Error::AuthFailed), "{}", suite);
            }
        }
    }

    /// A master key with a lifetime of n packets protects (and unprotects) n packets,
    /// SRTP and SRTCP together, then reports KeyExpired.
    #[test]
    fn an_expired_key_is_refused(
        opts in options(), rtp in rtp(), rtcp in rtcp(), n in 1u64..12, kinds in any::<u16>(),
    ) {
        let mut rtp = rtp;
        rtp.payload.truncate(32);
        let mut rtcp = rtcp;
        rtcp.truncate(32);
        for suite in Suite::ALL {
            let with_lifetime = || {
                let mut p = opts.policy(suite);
                p.keys[0] = p.keys[0].clone().with_lifetime(n);
                SrtpContext::new(p).unwrap()
            };
            let (mut tx, mut rx) = (with_lifetime(), with_lifetime());
            for i in 0..n {
                if kinds >> (i % 16) & 1 == 0 {
                    let srtp = protect(&mut tx, &rtp.with_seq(rtp.seq.wrapping_add(i as u16))).unwrap();
                    unprotect(&mut rx, &srtp).unwrap();
                } else {
                    let srtcp = protect_rtcp(&mut tx, &rtcp).unwrap();
                    unprotect_rtcp(&mut rx, &srtcp).unwrap();
                }
            }
            let next = rtp.with_seq(rtp.seq.wrapping_add(n as u16));
            prop_assert_eq!(protect(&mut tx, &next), Err(Error::KeyExpired), "{}", suite);
            prop_assert_eq!(protect_rtcp(&mut tx, &rtcp), Err(Error::KeyExpired), "{}", suite);
            // A receiver whose key expired refuses what a fresh sender protects.
            let srtp = protect(&mut opts.context(suite), &next).unwrap();
            prop_assert_eq!(unprotect(&mut rx, &srtp), Err(Error::KeyExpired), "{}", suite);
        }
    }

    /// Packets under an MKI the receiver does not know are UnknownMki; with both master
    /// keys the receiver accepts either, whichever the sender makes active.
    #[test]
    fn an_unknown_mki_is_refused(
        opts in options(), rtp in rtp(), rtcp in rtcp(), len in 1usize..=4, a in any::<u32>(), b in any::<u32>(),
    ) {
        let mask = |v: u32| if len == 4 { v } else { v % (1 << (8 * len)) };
        let (a, b) = (mask(a), if mask(a) == mask(b) { mask(b ^ 1) } else { mask(b) });
        let (mki_a, mki_b) = (Mki::new(a, len).unwrap(), Mki::new(b, len).unwrap());
        let plain = rtp.bytes();
        for suite in Suite::ALL {
            let policy = |keys: &[Mki]| {
                let mut p = opts.policy(suite);
                p.keys = keys.iter().map(|m| opts.master_key(suite, Some((m.len(), m.value())))).collect();
                SrtpContext::new(p).unwrap()
            };
            let mut tx = policy(&[mki_a, mki_b]);
            let mut rx_b = policy(&[mki_b]);
            let mut rx_both = policy(&[mki_b, mki_a]);

            let srtp = protect(&mut tx, &plain).unwrap();
            let srtcp = protect_rtcp(&mut tx, &rtcp).unwrap();
            prop_assert_eq!(unprotect(&mut rx_b, &srtp), Err(Error::UnknownMki), "{}", suite);
            prop_assert_eq!(unprotect_rtcp(&mut rx_b, &srtcp), Err(Error::UnknownMki), "{}", suite);
            prop_assert_eq!(unprotect(&mut rx_both, &srtp).unwrap(), plain.clone(), "{}", suite);
            prop_assert_eq!(unprotect_rtcp(&mut rx_both, &srtcp).unwrap(), rtcp.clone(), "{}", suite);

            tx.set_active_mki(mki_b).unwrap();
            let next = rtp.with_seq(rtp.seq.wrapping_add(1));
            let srtp = protect(&mut tx, &next).unwrap();
            prop_assert_eq!(unprotect(&mut rx_b, &srtp).unwrap(), next.clone(), "{}", suite);
            prop_assert_eq!(unprotect(&mut rx_both, &srtp).unwrap(), next, "{}", suite);
            let unknown = Mki::new(mask(a ^ b ^ 0x5a), len).unwrap();
            if unknown != mki_a && unknown != mki_b {
                prop_assert_eq!(tx.set_active_mki(unknown), Err(Error::UnknownMki));
            }
        }
    }
}
