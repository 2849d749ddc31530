//! Raw declarations from libsrtp 2.5's `srtp.h` and `crypto_types.h`. Only what the
//! wrapper uses.

use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::marker::{PhantomData, PhantomPinned};

pub type CipherTypeId = u32;
pub type AuthTypeId = u32;
/// `srtp_err_status_t`; a C enum, so an `int`.
pub type ErrStatus = c_int;

// crypto_types.h
pub const SRTP_NULL_CIPHER: CipherTypeId = 0;
pub const SRTP_AES_ICM_128: CipherTypeId = 1;
pub const SRTP_AES_ICM_192: CipherTypeId = 4;
pub const SRTP_AES_ICM_256: CipherTypeId = 5;
pub const SRTP_AES_GCM_128: CipherTypeId = 6;
pub const SRTP_AES_GCM_256: CipherTypeId = 7;
pub const SRTP_NULL_AUTH: AuthTypeId = 0;
pub const SRTP_HMAC_SHA1: AuthTypeId = 3;

// srtp_sec_serv_t
pub const SEC_SERV_NONE: c_int = 0;
pub const SEC_SERV_CONF: c_int = 1;
pub const SEC_SERV_AUTH: c_int = 2;
pub const SEC_SERV_CONF_AND_AUTH: c_int = 3;

// srtp_ssrc_type_t
pub const SSRC_ANY_INBOUND: c_int = 2;
pub const SSRC_ANY_OUTBOUND: c_int = 3;

/// `srtp_crypto_policy_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CryptoPolicy {
    pub cipher_type: CipherTypeId,
    pub cipher_key_len: c_int,
    pub auth_type: AuthTypeId,
    pub auth_key_len: c_int,
    pub auth_tag_len: c_int,
    /// `srtp_sec_serv_t`.
    pub sec_serv: c_int,
}

/// `srtp_ssrc_t`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Ssrc {
    /// `srtp_ssrc_type_t`.
    pub kind: c_int,
    pub value: c_uint,
}

/// `srtp_master_key_t`.
#[repr(C)]
#[derive(Debug)]
pub struct MasterKey {
    pub key: *mut u8,
    pub mki_id: *mut u8,
    pub mki_size: c_uint,
}

/// `srtp_policy_t` as of libsrtp 2.5.
#[repr(C)]
#[derive(Debug)]
pub struct Policy {
    pub ssrc: Ssrc,
    pub rtp: CryptoPolicy,
    pub rtcp: CryptoPolicy,
    /// The single master key||salt; must be null when `keys` is used.
    pub key: *mut u8,
    pub keys: *mut *mut MasterKey,
    pub num_master_keys: c_ulong,
    pub deprecated_ekt: *mut c_void,
    pub window_size: c_ulong,
    pub allow_repeat_tx: c_int,
    pub enc_xtn_hdr: *mut c_int,
    pub enc_xtn_hdr_count: c_int,
    pub next: *mut Policy,
}

/// `srtp_ctx_t`, opaque.
#[repr(C)]
pub struct Ctx {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

#[link(name = "srtp2")]
extern "C" {
    pub fn srtp_init() -> ErrStatus;
    pub fn srtp_get_version_string() -> *const std::ffi::c_char;
    pub fn srtp_create(session: *mut *mut Ctx, policy: *const Policy) -> ErrStatus;
    pub fn srtp_dealloc(session: *mut Ctx) -> ErrStatus;

    pub fn srtp_protect(ctx: *mut Ctx, rtp_hdr: *mut c_void, len_ptr: *mut c_int) -> ErrStatus;
    pub fn srtp_protect_mki(
        ctx: *mut Ctx,
        rtp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
        use_mki: c_uint,
        mki_index: c_uint,
    ) -> ErrStatus;
    pub fn srtp_unprotect(ctx: *mut Ctx, srtp_hdr: *mut c_void, len_ptr: *mut c_int) -> ErrStatus;
    pub fn srtp_unprotect_mki(
        ctx: *mut Ctx,
        srtp_hdr: *mut c_void,
        len_ptr: *mut c_int,
        use_mki: c_uint,
    ) -> ErrStatus;
    pub fn srtp_protect_rtcp(
        ctx: *mut Ctx,
        rtcp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
    ) -> ErrStatus;
    pub fn srtp_protect_rtcp_mki(
        ctx: *mut Ctx,
        rtcp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
        use_mki: c_uint,
        mki_index: c_uint,
    ) -> ErrStatus;
    pub fn srtp_unprotect_rtcp(
        ctx: *mut Ctx,
        srtcp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
    ) -> ErrStatus;
    pub fn srtp_unprotect_rtcp_mki(
        ctx: *mut Ctx,
        srtcp_hdr: *mut c_void,
        pkt_octet_len: *mut c_int,
        use_mki: c_uint,
    ) -> ErrStatus;

    pub fn srtp_get_protect_trailer_length(
        session: *mut Ctx,
        use_mki: u32,
        mki_index: u32,
        length: *mut u32,
    ) -> ErrStatus;
    pub fn srtp_get_protect_rtcp_trailer_length(
        session: *mut Ctx,
        use_mki: u32,
        mki_index: u32,
        length: *mut u32,
    ) -> ErrStatus;
    pub fn srtp_get_stream_roc(session: *mut Ctx, ssrc: u32, roc: *mut u32) -> ErrStatus;

    pub fn srtp_crypto_policy_set_rtp_default(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_rtcp_default(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_null_cipher_hmac_sha1_80(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_gcm_128_16_auth(p: *mut CryptoPolicy);
    pub fn srtp_crypto_policy_set_aes_gcm_256_16_auth(p: *mut CryptoPolicy);
}
