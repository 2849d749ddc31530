//! A small binding to the system libsrtp2 (2.5), used as the reference peer for srtpgate's
//! SRTP core in tests and benchmarks.
//!
//! The declarations follow `/usr/include/srtp2/srtp.h` and `crypto_types.h` of libsrtp 2.5
//! (Debian `libsrtp2-dev`). The struct layouts are checked in `libsrtp/tests.rs`: sizes and
//! field offsets against numbers printed once by a C program (see `C_LAYOUT`), and the
//! crypto-policy fields by reading back what libsrtp's own setters write.
//!
//! [`LibSrtp`] is the safe wrapper: one libsrtp session with a wildcard SSRC
//! (`ssrc_any_inbound` or `ssrc_any_outbound`), created from a [`Suite`], one or more
//! key||salt strings with optional MKIs, and [`Options`] mirroring srtpgate's SDES session
//! parameters. f8 is not in libsrtp 2: [`LibSrtp::supports`] says so.

use std::ffi::{c_int, c_uint, c_ulong, c_void, CStr};
use std::fmt;
use std::ptr;
use std::sync::OnceLock;

use relay::srtp::Suite;

/// Raw declarations from `srtp.h`.
pub mod ffi;

/// A libsrtp status code other than `srtp_err_status_ok`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LibSrtpError(pub i32);

impl LibSrtpError {
    pub const FAIL: Self = Self(1);
    pub const BAD_PARAM: Self = Self(2);
    pub const AUTH_FAIL: Self = Self(7);
    pub const REPLAY_FAIL: Self = Self(9);
    pub const REPLAY_OLD: Self = Self(10);
    pub const BAD_MKI: Self = Self(25);

    /// The `srtp_err_status_t` name without its prefix.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 28] = [
            "ok",
            "fail",
            "bad_param",
            "alloc_fail",
            "dealloc_fail",
            "init_fail",
            "terminus",
            "auth_fail",
            "cipher_fail",
            "replay_fail",
            "replay_old",
            "algo_fail",
            "no_such_op",
            "no_ctx",
            "cant_check",
            "key_expired",
            "socket_err",
            "signal_err",
            "nonce_bad",
            "read_fail",
            "write_fail",
            "parse_err",
            "encode_err",
            "semaphore_err",
            "pfkey_err",
            "bad_mki",
            "pkt_idx_old",
            "pkt_idx_adv",
        ];
        usize::try_from(self.0)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("unknown")
    }
}

impl fmt::Debug for LibSrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "srtp_err_status_{} ({})", self.name(), self.0)
    }
}

impl fmt::Display for LibSrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for LibSrtpError {}

fn check(status: ffi::ErrStatus) -> Result<(), LibSrtpError> {
    if status == 0 {
        Ok(())
    } else {
        Err(LibSrtpError(status))
    }
}

/// Runs `srtp_init` once per process.
fn init() -> Result<(), LibSrtpError> {
    static STATUS: OnceLock<ffi::ErrStatus> = OnceLock::new();
    // SAFETY: srtp_init takes no arguments; OnceLock runs it exactly once.
    check(*STATUS.get_or_init(|| unsafe { ffi::srtp_init() }))
}

/// The library's version string, e.g. "libsrtp2 2.5.0".
pub fn version() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::srtp_get_version_string()) }
        .to_string_lossy()
        .into_owned()
}

/// Which way packets go through a [`LibSrtp`] session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `ssrc_any_inbound`: unprotect.
    Inbound,
    /// `ssrc_any_outbound`: protect.
    Outbound,
}

/// Session parameters beyond the suite and keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// SRTP replay window (libsrtp accepts 64..=32768; SRTCP's is fixed at 128).
    pub window_size: u64,
    pub allow_repeat_tx: bool,
    pub unencrypted_srtp: bool,
    pub unencrypted_srtcp: bool,
    pub unauthenticated_srtp: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            window_size: 128,
            allow_repeat_tx: false,
            unencrypted_srtp: false,
            unencrypted_srtcp: false,
            unauthenticated_srtp: false,
        }
    }
}

/// One master key: key||salt, and the MKI bytes that name it (empty for none).
#[derive(Clone)]
pub struct Key {
    pub key_salt: Vec<u8>,
    pub mki: Vec<u8>,
}

impl Key {
    pub fn new(key_salt: &[u8]) -> Self {
        Key {
            key_salt: key_salt.to_vec(),
            mki: Vec::new(),
        }
    }

    pub fn with_mki(key_salt: &[u8], mki: &[u8]) -> Self {
        Key {
            key_salt: key_salt.to_vec(),
            mki: mki.to_vec(),
        }
    }
}

/// The libsrtp (SRTP, SRTCP) crypto policies for `suite`, or `None` when libsrtp 2 has no
/// such suite (f8).
pub fn crypto_policies(suite: Suite) -> Option<(ffi::CryptoPolicy, ffi::CryptoPolicy)> {
    use ffi::*;
    type Setter = unsafe extern "C" fn(*mut CryptoPolicy);
    let (rtp, rtcp): (Setter, Setter) = match suite {
        Suite::AesCm128HmacSha1_80 => (
            srtp_crypto_policy_set_rtp_default,
            srtp_crypto_policy_set_rtcp_default,
        ),
        Suite::AesCm128HmacSha1_32 => (
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
            srtp_crypto_policy_set_rtcp_default,
        ),
        Suite::Aes192CmHmacSha1_80 => (
            srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
            srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
        ),
        Suite::Aes192CmHmacSha1_32 => (
            srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32,
            srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
        ),
        Suite::Aes256CmHmacSha1_80 => (
            srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
            srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
        ),
        Suite::Aes256CmHmacSha1_32 => (
            srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32,
            srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
        ),
        Suite::AeadAes128Gcm => (
            srtp_crypto_policy_set_aes_gcm_128_16_auth,
            srtp_crypto_policy_set_aes_gcm_128_16_auth,
        ),
        Suite::AeadAes256Gcm => (
            srtp_crypto_policy_set_aes_gcm_256_16_auth,
            srtp_crypto_policy_set_aes_gcm_256_16_auth,
        ),
        Suite::NullHmacSha1_80 | Suite::NullHmacSha1_32 => (
            srtp_crypto_policy_set_null_cipher_hmac_sha1_80,
            srtp_crypto_policy_set_null_cipher_hmac_sha1_80,
        ),
        Suite::F8_128HmacSha1_80 => return None,
    };
    let mut p = (CryptoPolicy::default(), CryptoPolicy::default());
    // SAFETY: each setter writes the six fields of the struct it is given.
    unsafe {
        rtp(&mut p.0);
        rtcp(&mut p.1);
    }
    if suite == Suite::NullHmacSha1_32 {
        // libsrtp has no setter for this one: the _80 policy with a 32-bit SRTP tag.
        p.0.auth_tag_len = 4;
    }
    Some(p)
}

/// A libsrtp session for any SSRC in one direction.
pub struct LibSrtp {
    ctx: *mut ffi::Ctx,
    use_mki: bool,
    num_keys: u32,
    mki_index: u32,
    rtp_trailer: usize,
    rtcp_trailer: usize,
}

impl LibSrtp {
    /// Whether libsrtp 2 implements `suite`.
    pub fn supports(suite: Suite) -> bool {
        suite != Suite::F8_128HmacSha1_80
    }

    /// A session with one master key (key||salt) and default options.
    pub fn new(suite: Suite, key_salt: &[u8], dir: Direction) -> Result<Self, LibSrtpError> {
        Self::with_keys(suite, &[Key::new(key_salt)], dir, Options::default())
    }

    /// A session with one or more master keys. With MKIs, every key needs one, all of one
    /// length, and `protect` uses the first key until [`set_mki_index`](Self::set_mki_index).
    pub fn with_keys(
        suite: Suite,
        keys: &[Key],
        dir: Direction,
        opts: Options,
    ) -> Result<Self, LibSrtpError> {
        init()?;
        let (mut rtp, mut rtcp) = crypto_policies(suite).ok_or(LibSrtpError::BAD_PARAM)?;
        if keys.is_empty()
            || keys
                .iter()
                .any(|k| k.key_salt.len() != suite.key_salt_len())
        {
            return Err(LibSrtpError::BAD_PARAM);
        }
        if opts.unencrypted_srtp {
            rtp.sec_serv &= !ffi::SEC_SERV_CONF;
        }
        if opts.unencrypted_srtcp {
            rtcp.sec_serv &= !ffi::SEC_SERV_CONF;
        }
        if opts.unauthenticated_srtp {
            rtp.sec_serv &= !ffi::SEC_SERV_AUTH;
            rtp.auth_type = ffi::SRTP_NULL_AUTH;
            rtp.auth_key_len = 0;
            rtp.auth_tag_len = 0;
        }
        let use_mki = !keys[0].mki.is_empty();
        // libsrtp copies the keys and MKIs while creating the session; these buffers only
        // need to live until srtp_create returns.
        let mut key_bufs: Vec<Vec<u8>> = keys.iter().map(|k| k.key_salt.clone()).collect();
        let mut mki_bufs: Vec<Vec<u8>> = keys.iter().map(|k| k.mki.clone()).collect();
        let mut master: Vec<ffi::MasterKey> = key_bufs
            .iter_mut()
            .zip(mki_bufs.iter_mut())
            .map(|(k, m)| ffi::MasterKey {
                key: k.as_mut_ptr(),
                mki_id: if m.is_empty() {
                    ptr::null_mut()
                } else {
                    m.as_mut_ptr()
                },
                mki_size: m.len() as c_uint,
            })
            .collect();
        let mut master_ptrs: Vec<*mut ffi::MasterKey> =
            master.iter_mut().map(|m| m as *mut _).collect();
        let policy = ffi::Policy {
            ssrc: ffi::Ssrc {
                kind: match dir {
                    Direction::Inbound => ffi::SSRC_ANY_INBOUND,
                    Direction::Outbound => ffi::SSRC_ANY_OUTBOUND,
                },
                value: 0,
            },
            rtp,
            rtcp,
            key: if use_mki {
                ptr::null_mut()
            } else {
                key_bufs[0].as_mut_ptr()
            },
            keys: if use_mki {
                master_ptrs.as_mut_ptr()
            } else {
                ptr::null_mut()
            },
            num_master_keys: if use_mki { keys.len() as c_ulong } else { 0 },
            deprecated_ekt: ptr::null_mut(),
            window_size: opts.window_size as c_ulong,
            allow_repeat_tx: opts.allow_repeat_tx as c_int,
            enc_xtn_hdr: ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: ptr::null_mut(),
        };
        let mut ctx = ptr::null_mut();
        // SAFETY: `policy` and everything it points to outlive the call; libsrtp copies
        // what it keeps.
        let status = unsafe { ffi::srtp_create(&mut ctx, &policy) };
        key_bufs.iter_mut().for_each(|k| k.fill(0));
        check(status)?;
        let mut s = LibSrtp {
            ctx,
            use_mki,
            num_keys: keys.len() as u32,
            mki_index: 0,
            rtp_trailer: 0,
            rtcp_trailer: 0,
        };
        s.update_trailers()?;
        Ok(s)
    }

    fn update_trailers(&mut self) -> Result<(), LibSrtpError> {
        let (mut rtp, mut rtcp) = (0u32, 0u32);
        // SAFETY: `self.ctx` is a live session; the out-pointers are valid.
        unsafe {
            check(ffi::srtp_get_protect_trailer_length(
                self.ctx,
                self.use_mki as u32,
                self.mki_index,
                &mut rtp,
            ))?;
            check(ffi::srtp_get_protect_rtcp_trailer_length(
                self.ctx,
                self.use_mki as u32,
                self.mki_index,
                &mut rtcp,
            ))?;
        }
        self.rtp_trailer = rtp as usize;
        self.rtcp_trailer = rtcp as usize;
        Ok(())
    }

    /// Chooses which master key (by position in the list given at creation) protects.
    pub fn set_mki_index(&mut self, index: u32) -> Result<(), LibSrtpError> {
        if index >= self.num_keys {
            return Err(LibSrtpError::BAD_MKI);
        }
        let old = self.mki_index;
        self.mki_index = index;
        self.update_trailers().inspect_err(|_| self.mki_index = old)
    }

    /// Bytes `protect` appends.
    pub fn srtp_overhead(&self) -> usize {
        self.rtp_trailer
    }

    /// Bytes `protect_rtcp` appends.
    pub fn srtcp_overhead(&self) -> usize {
        self.rtcp_trailer
    }

    /// Runs one libsrtp packet function over `buf[..len]`, which may grow to `buf.len()`.
    fn run(
        &mut self,
        buf: &mut [u8],
        len: usize,
        grows_by: usize,
        op: Op,
    ) -> Result<usize, LibSrtpError> {
        if len > buf.len() || len + grows_by > buf.len() || buf.len() > c_int::MAX as usize {
            return Err(LibSrtpError::BAD_PARAM);
        }
        let mut n = len as c_int;
        let p = buf.as_mut_ptr().cast::<c_void>();
        let (mki, idx) = (self.use_mki as c_uint, self.mki_index);
        // SAFETY: `self.ctx` is live; `buf` holds `len` bytes of packet and room for
        // `grows_by` more, which is all libsrtp writes (protect) or reads (unprotect).
        let status = unsafe {
            match op {
                Op::Protect => ffi::srtp_protect_mki(self.ctx, p, &mut n, mki, idx),
                Op::Unprotect => ffi::srtp_unprotect_mki(self.ctx, p, &mut n, mki),
                Op::ProtectRtcp => ffi::srtp_protect_rtcp_mki(self.ctx, p, &mut n, mki, idx),
                Op::UnprotectRtcp => ffi::srtp_unprotect_rtcp_mki(self.ctx, p, &mut n, mki),
            }
        };
        check(status)?;
        Ok(n as usize)
    }

    /// Protects the RTP packet `buf[..len]` in place; returns the SRTP length. `buf` needs
    /// room for [`srtp_overhead`](Self::srtp_overhead) more bytes.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibSrtpError> {
        self.run(buf, len, self.rtp_trailer, Op::Protect)
    }

    /// Authenticates and decrypts the SRTP packet `buf` in place; returns the RTP length.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, LibSrtpError> {
        self.run(buf, buf.len(), 0, Op::Unprotect)
    }

    /// Protects the RTCP packet `buf[..len]` in place; returns the SRTCP length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibSrtpError> {
        self.run(buf, len, self.rtcp_trailer, Op::ProtectRtcp)
    }

    /// Authenticates and (if its E flag says so) decrypts the SRTCP packet `buf` in place.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, LibSrtpError> {
        self.run(buf, buf.len(), 0, Op::UnprotectRtcp)
    }

    /// The RTP packet `rtp`, protected, in a new vector.
    pub fn protect_vec(&mut self, rtp: &[u8]) -> Result<Vec<u8>, LibSrtpError> {
        let mut v = rtp.to_vec();
        v.resize(rtp.len() + self.rtp_trailer, 0);
        let n = self.protect(&mut v, rtp.len())?;
        v.truncate(n);
        Ok(v)
    }

    /// The SRTP packet `srtp`, unprotected, in a new vector.
    pub fn unprotect_vec(&mut self, srtp: &[u8]) -> Result<Vec<u8>, LibSrtpError> {
        let mut v = srtp.to_vec();
        let n = self.unprotect(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    /// The RTCP packet `rtcp`, protected, in a new vector.
    pub fn protect_rtcp_vec(&mut self, rtcp: &[u8]) -> Result<Vec<u8>, LibSrtpError> {
        let mut v = rtcp.to_vec();
        v.resize(rtcp.len() + self.rtcp_trailer, 0);
        let n = self.protect_rtcp(&mut v, rtcp.len())?;
        v.truncate(n);
        Ok(v)
    }

    /// The SRTCP packet `srtcp`, unprotected, in a new vector.
    pub fn unprotect_rtcp_vec(&mut self, srtcp: &[u8]) -> Result<Vec<u8>, LibSrtpError> {
        let mut v = srtcp.to_vec();
        let n = self.unprotect_rtcp(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    /// The rollover counter libsrtp holds for `ssrc`.
    pub fn roc(&self, ssrc: u32) -> Result<u32, LibSrtpError> {
        let mut roc = 0;
        // SAFETY: `self.ctx` is live; `roc` is a valid out-pointer.
        check(unsafe { ffi::srtp_get_stream_roc(self.ctx, ssrc, &mut roc) })?;
        Ok(roc)
    }
}

#[derive(Clone, Copy)]
enum Op {
    Protect,
    Unprotect,
    ProtectRtcp,
    UnprotectRtcp,
}

impl Drop for LibSrtp {
    fn drop(&mut self) {
        // SAFETY: `self.ctx` came from srtp_create and is freed only here.
        unsafe {
            ffi::srtp_dealloc(self.ctx);
        }
    }
}

#[cfg(test)]
mod tests;
