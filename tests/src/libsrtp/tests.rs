//! Checks of the binding's struct layouts and of fields reaching the library.

use super::ffi::*;
use super::*;
use std::mem::{align_of, offset_of, size_of};

/// Sizes and offsets for x86_64 Linux, printed once by a C program compiled with gcc
/// against `/usr/include/srtp2/srtp.h` (libsrtp 2.5.0), using `sizeof` and `offsetof`:
/// (name, C value).
const C_LAYOUT: &[(&str, usize)] = &[
    ("sizeof(srtp_crypto_policy_t)", 24),
    ("sizeof(srtp_ssrc_t)", 8),
    ("sizeof(srtp_master_key_t)", 24),
    ("sizeof(srtp_policy_t)", 128),
    ("alignof(srtp_policy_t)", 8),
    ("srtp_crypto_policy_t.cipher_type", 0),
    ("srtp_crypto_policy_t.cipher_key_len", 4),
    ("srtp_crypto_policy_t.auth_type", 8),
    ("srtp_crypto_policy_t.auth_key_len", 12),
    ("srtp_crypto_policy_t.auth_tag_len", 16),
    ("srtp_crypto_policy_t.sec_serv", 20),
    ("srtp_master_key_t.key", 0),
    ("srtp_master_key_t.mki_id", 8),
    ("srtp_master_key_t.mki_size", 16),
    ("srtp_policy_t.ssrc", 0),
    ("srtp_policy_t.rtp", 8),
    ("srtp_policy_t.rtcp", 32),
    ("srtp_policy_t.key", 56),
    ("srtp_policy_t.keys", 64),
    ("srtp_policy_t.num_master_keys", 72),
    ("srtp_policy_t.deprecated_ekt", 80),
    ("srtp_policy_t.window_size", 88),
    ("srtp_policy_t.allow_repeat_tx", 96),
    ("srtp_policy_t.enc_xtn_hdr", 104),
    ("srtp_policy_t.enc_xtn_hdr_count", 112),
    ("srtp_policy_t.next", 120),
];

#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn struct_layouts_match_the_c_header() {
    let rust: &[(&str, usize)] = &[
        ("sizeof(srtp_crypto_policy_t)", size_of::<CryptoPolicy>()),
        ("sizeof(srtp_ssrc_t)", size_of::<Ssrc>()),
        ("sizeof(srtp_master_key_t)", size_of::<MasterKey>()),
        ("sizeof(srtp_policy_t)", size_of::<Policy>()),
        ("alignof(srtp_policy_t)", align_of::<Policy>()),
        (
            "srtp_crypto_policy_t.cipher_type",
            offset_of!(CryptoPolicy, cipher_type),
        ),
        (
            "srtp_crypto_policy_t.cipher_key_len",
            offset_of!(CryptoPolicy, cipher_key_len),
        ),
        (
            "srtp_crypto_policy_t.auth_type",
            offset_of!(CryptoPolicy, auth_type),
        ),
        (
            "srtp_crypto_policy_t.auth_key_len",
            offset_of!(CryptoPolicy, auth_key_len),
        ),
        (
            "srtp_crypto_policy_t.auth_tag_len",
            offset_of!(CryptoPolicy, auth_tag_len),
        ),
        (
            "srtp_crypto_policy_t.sec_serv",
            offset_of!(CryptoPolicy, sec_serv),
        ),
        ("srtp_master_key_t.key", offset_of!(MasterKey, key)),
        ("srtp_master_key_t.mki_id", offset_of!(MasterKey, mki_id)),
        (
            "srtp_master_key_t.mki_size",
            offset_of!(MasterKey, mki_size),
        ),
        ("srtp_policy_t.ssrc", offset_of!(Policy, ssrc)),
        ("srtp_policy_t.rtp", offset_of!(Policy, rtp)),
        ("srtp_policy_t.rtcp", offset_of!(Policy, rtcp)),
        ("srtp_policy_t.key", offset_of!(Policy, key)),
        ("srtp_policy_t.keys", offset_of!(Policy, keys)),
        (
            "srtp_policy_t.num_master_keys",
            offset_of!(Policy, num_master_keys),
        ),
        (
            "srtp_policy_t.deprecated_ekt",
            offset_of!(Policy, deprecated_ekt),
        ),
        ("srtp_policy_t.window_size", offset_of!(Policy, window_size)),
        (
            "srtp_policy_t.allow_repeat_tx",
            offset_of!(Policy, allow_repeat_tx),
        ),
        ("srtp_policy_t.enc_xtn_hdr", offset_of!(Policy, enc_xtn_hdr)),
        (
            "srtp_policy_t.enc_xtn_hdr_count",
            offset_of!(Policy, enc_xtn_hdr_count),
        ),
        ("srtp_policy_t.next", offset_of!(Policy, next)),
    ];
    assert_eq!(rust, C_LAYOUT);
}

/// The library's own setters fill every field of `srtp_crypto_policy_t`; reading them
/// back through our struct checks field order and width against the linked library.
#[test]
fn crypto_policy_fields_read_back_from_the_library() {
    let want = |cipher_type, cipher_key_len, auth_type, auth_key_len, auth_tag_len| CryptoPolicy {
        cipher_type,
        cipher_key_len,
        auth_type,
        auth_key_len,
        auth_tag_len,
        sec_serv: SEC_SERV_CONF_AND_AUTH,
    };
    let cases = [
        (
            Suite::AesCm128HmacSha1_80,
            want(SRTP_AES_ICM_128, 30, SRTP_HMAC_SHA1, 20, 10),
            want(SRTP_AES_ICM_128, 30, SRTP_HMAC_SHA1, 20, 10),
        ),
        (
            Suite::AesCm128HmacSha1_32,
            want(SRTP_AES_ICM_128, 30, SRTP_HMAC_SHA1, 20, 4),
            want(SRTP_AES_ICM_128, 30, SRTP_HMAC_SHA1, 20, 10),
        ),
        (
            Suite::Aes192CmHmacSha1_32,
            want(SRTP_AES_ICM_192, 38, SRTP_HMAC_SHA1, 20, 4),
            want(SRTP_AES_ICM_192, 38, SRTP_HMAC_SHA1, 20, 10),
        ),
        (
            Suite::Aes256CmHmacSha1_80,
            want(SRTP_AES_ICM_256, 46, SRTP_HMAC_SHA1, 20, 10),
            want(SRTP_AES_ICM_256, 46, SRTP_HMAC_SHA1, 20, 10),
        ),
        (
            Suite::AeadAes128Gcm,
            want(SRTP_AES_GCM_128, 28, SRTP_NULL_AUTH, 0, 16),
            want(SRTP_AES_GCM_128, 28, SRTP_NULL_AUTH, 0, 16),
        ),
        (
            Suite::AeadAes256Gcm,
            want(SRTP_AES_GCM_256, 44, SRTP_NULL_AUTH, 0, 16),
            want(SRTP_AES_GCM_256, 44, SRTP_NULL_AUTH, 0, 16),
        ),
        (
            Suite::NullHmacSha1_32,
            CryptoPolicy {
                sec_serv: SEC_SERV_AUTH,
                ..want(SRTP_NULL_CIPHER, 30, SRTP_HMAC_SHA1, 20, 4)
            },
            CryptoPolicy {
                sec_serv: SEC_SERV_AUTH,
                ..want(SRTP_NULL_CIPHER, 30, SRTP_HMAC_SHA1, 20, 10)
            },
        ),
    ];
    for (suite, rtp, rtcp) in cases {
        assert_eq!(crypto_policies(suite), Some((rtp, rtcp)), "{suite}");
    }
    assert_eq!(crypto_policies(Suite::F8_128HmacSha1_80), None);
    let _ = (SEC_SERV_NONE, SRTP_AES_ICM_192);
}

#[test]
fn sessions_are_created_for_every_supported_suite() {
    assert!(version().starts_with("libsrtp2 2."), "{}", version());
    for suite in Suite::ALL.into_iter().filter(|s| LibSrtp::supports(*s)) {
        let ks = vec![7u8; suite.key_salt_len()];
        for dir in [Direction::Inbound, Direction::Outbound] {
            let s = LibSrtp::new(suite, &ks, dir).unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert_eq!(s.srtp_overhead(), suite.rtp_tag_len(), "{suite}");
            assert_eq!(s.srtcp_overhead(), 4 + suite.rtcp_tag_len(), "{suite}");
        }
    }
    assert!(LibSrtp::new(Suite::F8_128HmacSha1_80, &[0; 30], Direction::Inbound).is_err());
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00, 0, 0, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0x5a; 20]);
    p
}

/// `window_size` sits after the key, MKI and EKT fields: if any of them were misplaced,
/// libsrtp would read a different window size (or crash).
#[test]
fn window_size_reaches_the_library() {
    let suite = Suite::AesCm128HmacSha1_80;
    let ks = [3u8; 30];
    let mut tx = LibSrtp::new(suite, &ks, Direction::Outbound).unwrap();
    let pkts: Vec<Vec<u8>> = (0..1100)
        .map(|i| tx.protect_vec(&rtp(i)).unwrap())
        .collect();
    for (window, late_ok) in [(64, false), (1024, true)] {
        let opts = Options {
            window_size: window,
            ..Options::default()
        };
        let mut rx = LibSrtp::with_keys(suite, &[Key::new(&ks)], Direction::Inbound, opts).unwrap();
        rx.unprotect_vec(&pkts[1000]).unwrap();
        let late = rx.unprotect_vec(&pkts[1000 - 100]);
        assert_eq!(late.is_ok(), late_ok, "window {window}: {late:?}");
        if !late_ok {
            assert_eq!(late.unwrap_err(), LibSrtpError::REPLAY_OLD);
        }
    }
}

/// `allow_repeat_tx` is the field after `window_size`.
#[test]
fn allow_repeat_tx_reaches_the_library() {
    let ks = [4u8; 30];
    for allow in [false, true] {
        let opts = Options {
            allow_repeat_tx: allow,
            ..Options::default()
        };
        let mut tx = LibSrtp::with_keys(
            Suite::AesCm128HmacSha1_80,
            &[Key::new(&ks)],
            Direction::Outbound,
            opts,
        )
        .unwrap();
        tx.protect_vec(&rtp(5)).unwrap();
        let again = tx.protect_vec(&rtp(5));
        assert_eq!(again.is_ok(), allow, "{again:?}");
    }
}

/// `keys` and `num_master_keys`: two keys with MKIs, the second chosen by index.
#[test]
fn master_keys_with_mkis_reach_the_library() {
    let suite = Suite::AesCm128HmacSha1_80;
    let keys = [
        Key::with_mki(&[1; 30], &[0xaa, 0xbb]),
        Key::with_mki(&[2; 30], &[0xcc, 0xdd]),
    ];
    let mut tx = LibSrtp::with_keys(suite, &keys, Direction::Outbound, Options::default()).unwrap();
    let mut rx = LibSrtp::with_keys(suite, &keys, Direction::Inbound, Options::default()).unwrap();
    assert_eq!(tx.srtp_overhead(), 2 + 10);
    let a = tx.protect_vec(&rtp(1)).unwrap();
    assert_eq!(&a[a.len() - 12..a.len() - 10], &[0xaa, 0xbb]);
    tx.set_mki_index(1).unwrap();
    let b = tx.protect_vec(&rtp(2)).unwrap();
    assert_eq!(&b[b.len() - 12..b.len() - 10], &[0xcc, 0xdd]);
    assert!(tx.set_mki_index(2).is_err());
    assert_eq!(rx.unprotect_vec(&a).unwrap(), rtp(1));
    assert_eq!(rx.unprotect_vec(&b).unwrap(), rtp(2));
    let mut c = tx.protect_vec(&rtp(3)).unwrap();
    let at = c.len() - 11;
    c[at] ^= 0xff;
    assert_eq!(rx.unprotect_vec(&c).unwrap_err(), LibSrtpError::BAD_MKI);
}
