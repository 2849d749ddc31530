//! The crypto primitives SRTP needs, each from the backend that measured fastest here
//! (see `bench/benches/srtp.rs`, group `backends`, and docs/srtp.md):
//! - AES block cipher: RustCrypto `aes` (AES-NI), key expanded once per session key;
//!   counter and f8 modes are built on its parallel block encryption.
//! - HMAC-SHA1: inner and outer SHA-1 states precomputed once per key, then RustCrypto
//!   `sha1`'s SHA-NI compression function per packet; the states are ours, so they zeroize.
//! - AES-GCM: `ring` (AES-NI + CLMUL/AVX), about twice as fast as RustCrypto `aes-gcm`.

use std::mem::ManuallyDrop;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use ring::aead;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::Error;

/// One AES block.
pub(crate) type Block = GenericArray<u8, aes::cipher::consts::U16>;

/// AES with an expanded key. The `aes` crate zeroizes the round keys on drop.
pub(crate) enum AesKey {
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

impl AesKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self, Error> {
        let bad = |_| Error::InvalidPolicy("AES key must be 16, 24 or 32 bytes");
        Ok(match key.len() {
            16 => AesKey::Aes128(Aes128::new_from_slice(key).map_err(bad)?),
            24 => AesKey::Aes192(Aes192::new_from_slice(key).map_err(bad)?),
            32 => AesKey::Aes256(Aes256::new_from_slice(key).map_err(bad)?),
            _ => return Err(Error::InvalidPolicy("AES key must be 16, 24 or 32 bytes")),
        })
    }

    #[inline]
    pub(crate) fn encrypt_blocks(&self, blocks: &mut [Block]) {
        match self {
            AesKey::Aes128(c) => c.encrypt_blocks(blocks),
            AesKey::Aes192(c) => c.encrypt_blocks(blocks),
            AesKey::Aes256(c) => c.encrypt_blocks(blocks),
        }
    }
}

/// Blocks encrypted per call: enough for AES-NI's 8-way pipeline.
const BATCH: usize = 8;

#[inline]
fn xor_into(data: &mut [u8], keystream: &[Block]) {
    for (chunk, ks) in data.chunks_mut(16).zip(keystream) {
        if chunk.len() == 16 {
            let d = u128::from_ne_bytes(chunk.try_into().unwrap_or([0; 16]));
            let k = u128::from_ne_bytes((*ks).into());
            chunk.copy_from_slice(&(d ^ k).to_ne_bytes());
        } else {
            chunk.iter_mut().zip(ks.iter()).for_each(|(d, k)| *d ^= k);
        }
    }
}

/// XORs `data` with the AES counter-mode keystream starting at `iv` (RFC 3711 §4.1.1:
/// the block counter occupies the low 16 bits, which are zero in `iv`).
pub(crate) fn ctr_xor(key: &AesKey, iv: &[u8; 16], data: &mut [u8]) {
    let mut counter: u16 = 0;
    for chunk in data.chunks_mut(16 * BATCH) {
        let n = chunk.len().div_ceil(16);
        let mut ks = [Block::default(); BATCH];
        for b in ks[..n].iter_mut() {
            b.copy_from_slice(iv);
            let c = u16::from_be_bytes([iv[14], iv[15]]) ^ counter;
            b[14..16].copy_from_slice(&c.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        key.encrypt_blocks(&mut ks[..n]);
        xor_into(chunk, &ks[..n]);
    }
}

/// XORs `data` with the AES f8-mode keystream (RFC 3711 §4.1.2). `iv_prime` is
/// IV' = E(k_e XOR m, IV), computed by the caller with the masked key.
pub(crate) fn f8_xor(key: &AesKey, iv_prime: &[u8; 16], data: &mut [u8]) {
    let ivp = u128::from_be_bytes(*iv_prime);
    let mut prev: u128 = 0;
    for (j, chunk) in data.chunks_mut(16).enumerate() {
        let mut b = Block::from((ivp ^ (j as u128) ^ prev).to_be_bytes());
        key.encrypt_blocks(std::slice::from_mut(&mut b));
        prev = u128::from_be_bytes(b.into());
        xor_into(chunk, std::slice::from_ref(&b));
    }
}

/// Encrypts one block in place.
pub(crate) fn encrypt_block(key: &AesKey, block: &mut [u8; 16]) {
    let mut b = Block::from(*block);
    key.encrypt_blocks(std::slice::from_mut(&mut b));
    *block = b.into();
}

/// HMAC-SHA1 (RFC 2104) with the padded-key states computed once.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

const SHA1_IV: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];

type Sha1Block = GenericArray<u8, sha1::digest::consts::U64>;

/// SHA-1 over `parts` continuing from `state` after `prefix_len` bytes already hashed;
/// returns the digest.
fn sha1_finish(mut state: [u32; 5], prefix_len: u64, parts: &[&[u8]]) -> [u8; 20] {
    let mut buf = Sha1Block::default();
    let mut fill = 0usize;
    let mut total = prefix_len;
    for part in parts {
        let mut p: &[u8] = part;
        total += p.len() as u64;
        if fill > 0 {
            let take = (64 - fill).min(p.len());
            buf[fill..fill + take].copy_from_slice(&p[..take]);
            fill += take;
            p = &p[take..];
            if fill == 64 {
                sha1::compress(&mut state, std::slice::from_ref(&buf));
                fill = 0;
            }
        }
        let whole = p.len() / 64 * 64;
        for block in p[..whole].chunks_exact(64) {
            sha1::compress(
                &mut state,
                std::slice::from_ref(Sha1Block::from_slice(block)),
            );
        }
        let tail = &p[whole..];
        buf[..tail.len()].copy_from_slice(tail);
        fill += tail.len();
    }
    buf[fill] = 0x80;
    buf[fill + 1..].iter_mut().for_each(|b| *b = 0);
    if fill + 1 > 56 {
        sha1::compress(&mut state, std::slice::from_ref(&buf));
        buf.iter_mut().for_each(|b| *b = 0);
    }
    buf[56..].copy_from_slice(&(total * 8).to_be_bytes());
    sha1::compress(&mut state, std::slice::from_ref(&buf));
    let mut out = [0u8; 20];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    buf.iter_mut().for_each(|b| *b = 0);
    out
}

impl HmacSha1 {
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..20].copy_from_slice(&sha1_finish(SHA1_IV, 0, &[key]));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut pad = Sha1Block::default();
        let mut inner = SHA1_IV;
        pad.iter_mut().zip(k).for_each(|(p, k)| *p = k ^ 0x36);
        sha1::compress(&mut inner, std::slice::from_ref(&pad));
        let mut outer = SHA1_IV;
        pad.iter_mut().zip(k).for_each(|(p, k)| *p = k ^ 0x5c);
        sha1::compress(&mut outer, std::slice::from_ref(&pad));
        pad.iter_mut().for_each(|b| *b = 0);
        k.zeroize();
        HmacSha1 { inner, outer }
    }

    /// HMAC over the concatenation of `parts`.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 20] {
        let inner = sha1_finish(self.inner, 64, parts);
        sha1_finish(self.outer, 64, &[&inner])
    }
}

/// Compares two byte strings in time that does not depend on where they differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// AES-GCM with a 16-byte tag and 12-byte nonce (RFC 7714).
pub(crate) struct Gcm {
    key: ManuallyDrop<aead::LessSafeKey>,
}

impl Gcm {
    pub(crate) fn new(key: &[u8]) -> Result<Self, Error> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            32 => &aead::AES_256_GCM,
            _ => return Err(Error::InvalidPolicy("AES-GCM key must be 16 or 32 bytes")),
        };
        let unbound = aead::UnboundKey::new(alg, key)
            .map_err(|_| Error::InvalidPolicy("AES-GCM key rejected"))?;
        Ok(Gcm {
            key: ManuallyDrop::new(aead::LessSafeKey::new(unbound)),
        })
    }

    /// Encrypts `data` in place and returns the tag.
    pub(crate) fn seal(&self, nonce: [u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let nonce = aead::Nonce::assume_unique_for_key(nonce);
        match self
            .key
            .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), data)
        {
            Ok(tag) => {
                let mut t = [0u8; 16];
                t.copy_from_slice(tag.as_ref());
                t
            }
            // ring refuses only inputs longer than GCM's 2^36-byte limit, which no
            // datagram reaches; an all-zero tag then fails verification at the peer.
            Err(_) => [0; 16],
        }
    }

    /// Verifies `tag` and decrypts `data` in place.
    pub(crate) fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8],
    ) -> Result<(), Error> {
        let nonce = aead::Nonce::assume_unique_for_key(nonce);
        let tag = aead::Tag::try_from(tag).map_err(|_| Error::AuthFailed)?;
        self.key
            .open_in_place_separate_tag(nonce, aead::Aad::from(aad), tag, data, 0..)
            .map(|_| ())
            .map_err(|_| Error::AuthFailed)
    }
}

impl Drop for Gcm {
    fn drop(&mut self) {
        // SAFETY: `LessSafeKey` is plain data (expanded round keys, GHASH table and a
        // `&'static` algorithm reference) with no `Drop` impl and no heap ownership. It is
        // wrapped in `ManuallyDrop`, so after it is overwritten with zeros it is never
        // used or dropped again.
        unsafe { zeroize::zeroize_flat_type(&mut *self.key as *mut aead::LessSafeKey) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    #[test]
    fn hmac_matches_rfc2202_and_the_hmac_crate() {
        // RFC 2202 test case 2.
        let h = HmacSha1::new(b"Jefe");
        assert_eq!(
            hex::encode(h.mac(&[b"what do ya want ", b"for nothing?"])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // Every split of every length around the block boundaries, against RustCrypto hmac.
        let key = [0x0bu8; 20];
        let ours = HmacSha1::new(&key);
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 172, 299] {
            let mut r = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&key).unwrap();
            r.update(&data[..len]);
            let want = r.finalize().into_bytes();
            for split in [0, len / 3, len] {
                let (a, b) = data[..len].split_at(split);
                assert_eq!(
                    ours.mac(&[a, b]).as_slice(),
                    want.as_slice(),
                    "len {len} split {split}"
                );
            }
        }
        // Keys longer than a block are hashed first.
        let long = [0xaau8; 80];
        let mut r = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&long).unwrap();
        r.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            HmacSha1::new(&long)
                .mac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"])
                .as_slice(),
            r.finalize().into_bytes().as_slice()
        );
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn gcm_round_trip_and_tamper() {
        let g = Gcm::new(&[7u8; 16]).unwrap();
        let mut d = *b"hello world, this is gcm";
        let tag = g.seal([1; 12], b"aad", &mut d);
        assert_ne!(&d, b"hello world, this is gcm");
        let mut e = d;
        g.open([1; 12], b"aad", &mut e, &tag).unwrap();
        assert_eq!(&e, b"hello world, this is gcm");
        let mut e = d;
        assert_eq!(
            g.open([1; 12], b"aae", &mut e, &tag),
            Err(Error::AuthFailed)
        );
    }
}
