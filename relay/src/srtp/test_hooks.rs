//! TEST-ONLY entry points, hidden from the documentation and not part of the API: nothing
//! outside `relay/tests/` may call them, and they may change at any time.
//!
//! The published vectors of RFC 3711 B.1/B.2, RFC 6188 §7.1/§7.3 and RFC 7714 §16/§17
//! start from *session* keys, which no master key can be made to derive, and RFC 3711 B.1
//! needs a rollover counter of 0xd462564a. These two hooks let the vector tests reach that
//! state and then drive the ordinary `protect`/`unprotect` code paths.

use super::kdf::SessionKeys;
use super::{Error, SrtpContext};

/// Raw session keys for one of SRTP or SRTCP.
pub struct RawSessionKeys<'a> {
    /// Session encryption key (`suite.key_len()` bytes).
    pub key: &'a [u8],
    /// Session salt (`suite.salt_len()` bytes).
    pub salt: &'a [u8],
    /// Session HMAC key (20 bytes; empty for AEAD suites).
    pub auth: &'a [u8],
}

/// Replaces the session keys derived for the first master key of `ctx` (which must have
/// been built with a key derivation rate of 0) with the given ones.
pub fn set_session_keys(
    ctx: &mut SrtpContext,
    rtp: RawSessionKeys<'_>,
    rtcp: RawSessionKeys<'_>,
) -> Result<(), Error> {
    if ctx.kdr != 0 {
        return Err(Error::InvalidPolicy(
            "session keys can only be set with kdr 0",
        ));
    }
    let suite = ctx.suite;
    let slot = &mut ctx.slots[0];
    slot.rtp = SessionKeys::from_parts(suite, rtp.key, rtp.salt, rtp.auth)?;
    slot.rtcp = SessionKeys::from_parts(suite, rtcp.key, rtcp.salt, rtcp.auth)?;
    Ok(())
}

/// Makes `index - 1` the highest SRTP index seen for `ssrc` in both directions, so that
/// the next packet with sequence number `index as u16` gets packet index `index`.
pub fn start_rtp_stream_at(ctx: &mut SrtpContext, ssrc: u32, index: u64) {
    if index == 0 {
        return;
    }
    for streams in [&mut ctx.tx, &mut ctx.rx] {
        let si = streams.find_or_insert(ssrc);
        streams.list[si].rtp.accept(index - 1);
    }
}
