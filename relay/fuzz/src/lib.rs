//! Fuzz drivers for the SRTP/SRTCP receive path. Untrusted datagrams reach
//! `SrtpContext::unprotect` and `unprotect_rtcp` straight from the network, so neither may
//! panic whatever the bytes; these drivers feed them arbitrary input.
//!
//! Input layout: byte 0 picks the suite (low four bits, modulo the number of suites) and
//! turns damage on (bit 7, see below), byte 1 the options, then packets follow, each
//! prefixed by a big-endian u16 length (a length past the end takes the rest). Several
//! packets per input exercise the per-stream state: replay window, rollover counter
//! estimation, session keys cached per key-derivation epoch.
//!
//! Options (byte 1):
//! - bit 0: two master keys with MKIs 1 and 2 (key 1 active); bits 1-2: MKI length - 1;
//! - bit 3: UNENCRYPTED_SRTP; bit 4: UNENCRYPTED_SRTCP;
//! - bit 5: UNAUTHENTICATED_SRTP (ignored for AEAD suites, which refuse it), so that
//!   arbitrary bytes also reach decryption;
//! - bit 6: a non-zero key derivation rate (a power of two picked by the input length);
//! - bit 7: round trip: each packet is first protected by a sender with the same keys
//!   (when it is a valid RTP/RTCP packet), then unprotected. With damage on, the
//!   protected byte at offset (last plaintext byte) is XOR-ed with the one before it.
//!   Until the first damaged packet (after which sender and receiver state may rightly
//!   differ), every packet must come back unchanged: a mismatch panics, so the fuzzer
//!   also reports wrong results, not only crashes.

use relay::srtp::{Error, MasterKey, Mki, Policy, SrtpContext, Suite};

struct Setup {
    rx: SrtpContext,
    tx: Option<SrtpContext>,
    damage: bool,
}

fn setup(data: &[u8]) -> Option<(Setup, &[u8])> {
    let (&suite_byte, rest) = data.split_first()?;
    let (&opts, rest) = rest.split_first()?;
    let suite = Suite::ALL[(suite_byte & 0x0f) as usize % Suite::ALL.len()];
    let key: Vec<u8> = (0..suite.key_len() as u8)
        .map(|i| i.wrapping_mul(37) ^ 0x5a)
        .collect();
    let salt: Vec<u8> = (0..suite.salt_len() as u8)
        .map(|i| i.wrapping_mul(11) ^ 0xa5)
        .collect();
    let mut keys = Vec::new();
    if opts & 1 != 0 {
        let len = 1 + ((opts >> 1) & 3) as usize;
        // Two keys with different bytes, so that a wrong key choice fails authentication.
        for value in [1u8, 2] {
            let mki = Mki::new(value as u32, len).ok()?;
            let key: Vec<u8> = key.iter().map(|k| k ^ value).collect();
            keys.push(MasterKey::new(suite, &key, &salt).ok()?.with_mki(mki));
        }
    } else {
        keys.push(MasterKey::new(suite, &key, &salt).ok()?);
    }
    let mut policy = Policy::new(suite, keys[0].clone());
    policy.keys = keys;
    policy.unencrypted_srtp = opts & 0x08 != 0;
    policy.unencrypted_srtcp = opts & 0x10 != 0;
    policy.unauthenticated_srtp =
        opts & 0x20 != 0 && suite.cipher() != relay::srtp::CipherKind::AesGcm;
    if opts & 0x40 != 0 {
        policy.kdr = 1 << (rest.len() % 25);
    }
    let rx = SrtpContext::new(policy.clone()).ok()?;
    let tx = if opts & 0x80 != 0 {
        Some(SrtpContext::new(policy).ok()?)
    } else {
        None
    };
    Some((
        Setup {
            rx,
            tx,
            damage: suite_byte & 0x80 != 0,
        },
        rest,
    ))
}

/// Splits `data` into length-prefixed packets.
fn packets(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([data[0], data[1]]) as usize;
        let body = &data[2..];
        let (pkt, rest) = body.split_at(len.min(body.len()));
        data = rest;
        Some(pkt)
    })
}

/// XORs `pkt[plain[last] % len]` with `plain[last - 1]`; false when that changes nothing.
fn damage(pkt: &mut [u8], plain: &[u8]) -> bool {
    let [.., mask, at] = plain else {
        return false;
    };
    if pkt.is_empty() || *mask == 0 {
        return false;
    }
    let i = *at as usize % pkt.len();
    pkt[i] ^= mask;
    true
}

type Transform = fn(&mut SrtpContext, &mut [u8], usize) -> Result<usize, Error>;
type Inverse = fn(&mut SrtpContext, &mut [u8]) -> Result<usize, Error>;

fn run(data: &[u8], protect: Transform, overhead: fn(&SrtpContext) -> usize, unprotect: Inverse) {
    let Some((mut s, rest)) = setup(data) else {
        return;
    };
    let mut diverged = false;
    for pkt in packets(rest) {
        let mut buf = pkt.to_vec();
        let Some(tx) = &mut s.tx else {
            if let Ok(n) = unprotect(&mut s.rx, &mut buf) {
                assert!(n <= pkt.len());
            }
            continue;
        };
        buf.resize(pkt.len() + overhead(tx), 0);
        let Ok(n) = protect(tx, &mut buf, pkt.len()) else {
            continue;
        };
        buf.truncate(n);
        diverged |= s.damage && damage(&mut buf, pkt);
        match unprotect(&mut s.rx, &mut buf) {
            Ok(len) if !diverged => assert_eq!(&buf[..len], pkt, "round trip changed the packet"),
            Ok(len) => assert!(len <= n),
            Err(e) => assert!(diverged, "round trip refused a genuine packet: {e}"),
        }
    }
}

/// Feeds each packet of `data` to `SrtpContext::unprotect`.
pub fn unprotect(data: &[u8]) {
    run(
        data,
        SrtpContext::protect,
        SrtpContext::srtp_overhead,
        SrtpContext::unprotect,
    );
}

/// Feeds each packet of `data` to `SrtpContext::unprotect_rtcp`.
pub fn unprotect_rtcp(data: &[u8]) {
    run(
        data,
        SrtpContext::protect_rtcp,
        SrtpContext::srtcp_overhead,
        SrtpContext::unprotect_rtcp,
    );
}
