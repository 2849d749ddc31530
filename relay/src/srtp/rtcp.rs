//! SRTCP packet protection (RFC 3711 §3.4, §4; RFC 7714 §9, §17).

use super::context::SrtpContext;
use super::crypto::{ct_eq, ctr_xor, f8_xor};
use super::kdf::{SessionCipher, SessionKeys};
use super::rtp::cm_iv;
use super::Error;

/// Highest SRTCP index: 2^31 - 1.
const MAX_INDEX: u32 = 0x7fff_ffff;
const E_FLAG: u32 = 0x8000_0000;

fn check_rtcp_header(pkt: &[u8]) -> Result<u32, Error> {
    if pkt.len() < 8 {
        return Err(Error::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    Ok(u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]))
}

/// AEAD nonce for SRTCP: (00 00 || SSRC || 00 00 || 0 || SRTCP index) XOR salt.
fn gcm_nonce(salt: &[u8; 14], ssrc: u32, index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[2..6].copy_from_slice(&ssrc.to_be_bytes());
    n[8..12].copy_from_slice(&(index & MAX_INDEX).to_be_bytes());
    n.iter_mut().zip(salt).for_each(|(n, s)| *n ^= s);
    n
}

/// f8 IV for SRTCP: 0..0 (32 bits) || E || SRTCP index || first 8 header bytes.
fn f8_iv(header: &[u8], e_index: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&e_index.to_be_bytes());
    iv[8..16].copy_from_slice(&header[..8]);
    iv
}

fn xor_payload(keys: &SessionKeys, header: &[u8], ssrc: u32, e_index: u32, payload: &mut [u8]) {
    match &keys.cipher {
        SessionCipher::Cm(k) => ctr_xor(
            k,
            &cm_iv(&keys.salt, ssrc, (e_index & MAX_INDEX) as u64),
            payload,
        ),
        SessionCipher::F8 { key, iv_key } => {
            let ivp = SessionKeys::f8_iv_prime(iv_key, f8_iv(header, e_index));
            f8_xor(key, &ivp, payload)
        }
        SessionCipher::Null | SessionCipher::Gcm(_) => {}
    }
}

impl SrtpContext {
    fn rtcp_encrypts(&self) -> bool {
        self.suite.encrypts() && !self.unencrypted_srtcp
    }

    /// Protects the RTCP (compound) packet in `buf[..len]` in place; returns the SRTCP
    /// length. `buf` must have room for [`srtcp_overhead`](Self::srtcp_overhead) more bytes.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        if len > buf.len() {
            return Err(Error::BufferTooSmall);
        }
        let ssrc = check_rtcp_header(&buf[..len])?;
        let out_len = len + self.srtcp_overhead();
        if buf.len() < out_len {
            return Err(Error::BufferTooSmall);
        }
        let slot_i = self.active;
        self.slots[slot_i].check_lifetime()?;
        let encrypt = self.rtcp_encrypts();
        let si = self.tx.find_or_insert(ssrc);
        let stream = &mut self.tx.list[si];
        let index = stream.rtcp_next;
        if index > MAX_INDEX {
            return Err(Error::KeyExpired);
        }
        let e_index = index | if encrypt { E_FLAG } else { 0 };
        let slot = &self.slots[slot_i];
        let keys = Self::session_keys(
            self.suite,
            self.kdr,
            slot,
            slot_i,
            true,
            index as u64,
            &mut stream.rtcp_keys,
        )?;
        let mki = slot.master.mki();
        let tag_len = self.suite.rtcp_tag_len();
        if let SessionCipher::Gcm(g) = &keys.cipher {
            let nonce = gcm_nonce(&keys.salt, ssrc, index);
            let tag = if encrypt {
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&e_index.to_be_bytes());
                g.seal(nonce, &aad, &mut buf[8..len])
            } else {
                self.scratch.clear();
                self.scratch.extend_from_slice(&buf[..len]);
                self.scratch.extend_from_slice(&e_index.to_be_bytes());
                g.seal(nonce, &self.scratch, &mut [])
            };
            buf[len..len + 16].copy_from_slice(&tag);
            buf[len + 16..len + 20].copy_from_slice(&e_index.to_be_bytes());
            if let Some(m) = mki {
                buf[len + 20..out_len].copy_from_slice(m.as_bytes());
            }
        } else {
            if encrypt {
                let (head, body) = buf.split_at_mut(8);
                xor_payload(keys, head, ssrc, e_index, &mut body[..len - 8]);
            }
            buf[len..len + 4].copy_from_slice(&e_index.to_be_bytes());
            if let Some(m) = mki {
                buf[len + 4..len + 4 + self.mki_len].copy_from_slice(m.as_bytes());
            }
            if let Some(auth) = &keys.auth {
                let tag = auth.mac(&[&buf[..len + 4]]);
                buf[out_len - tag_len..out_len].copy_from_slice(&tag[..tag_len]);
            }
        }
        stream.rtcp_next = index + 1;
        self.slots[slot_i].used += 1;
        Ok(out_len)
    }

    /// Authenticates and, when its E flag is set, decrypts the SRTCP packet `buf` in place;
    /// returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = buf.len();
        let ssrc = check_rtcp_header(buf)?;
        let tag_len = self.suite.rtcp_tag_len();
        let trailer = 4 + self.mki_len + tag_len;
        if len < 8 + trailer {
            return Err(Error::TooShort);
        }
        let is_gcm = matches!(self.suite.cipher(), super::CipherKind::AesGcm);
        // HMAC suites: packet | E+index | MKI | tag. AEAD: packet | tag | E+index | MKI.
        let (body_end, ei_at, mki_at) = if is_gcm {
            let ei = len - self.mki_len - 4;
            (ei - tag_len, ei, ei + 4)
        } else {
            let ei = len - tag_len - self.mki_len - 4;
            (ei, ei, ei + 4)
        };
        let e_index =
            u32::from_be_bytes([buf[ei_at], buf[ei_at + 1], buf[ei_at + 2], buf[ei_at + 3]]);
        let index = e_index & MAX_INDEX;
        let encrypted = e_index & E_FLAG != 0;
        let slot_i = self.slot_for(buf, mki_at)?;
        self.slots[slot_i].check_lifetime()?;
        let known = self.rx.find(ssrc);
        let mut fresh_cache = None;
        let cache = match known {
            Some(si) => {
                let s = &mut self.rx.list[si];
                s.rtcp.check(index as u64)?;
                &mut s.rtcp_keys
            }
            None => &mut fresh_cache,
        };
        let slot = &self.slots[slot_i];
        let keys = Self::session_keys(
            self.suite,
            self.kdr,
            slot,
            slot_i,
            true,
            index as u64,
            cache,
        )?;
        if let SessionCipher::Gcm(g) = &keys.cipher {
            let nonce = gcm_nonce(&keys.salt, ssrc, index);
            let (data, rest) = buf.split_at_mut(body_end);
            let tag = &rest[..tag_len];
            if encrypted {
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&data[..8]);
                aad[8..].copy_from_slice(&e_index.to_be_bytes());
                g.open(nonce, &aad, &mut data[8..], tag)?;
            } else {
                self.scratch.clear();
                self.scratch.extend_from_slice(data);
                self.scratch.extend_from_slice(&e_index.to_be_bytes());
                g.open(nonce, &self.scratch, &mut [], tag)?;
            }
        } else {
            if let Some(auth) = &keys.auth {
                let want = auth.mac(&[&buf[..ei_at + 4]]);
                if !ct_eq(&want[..tag_len], &buf[len - tag_len..]) {
                    return Err(Error::AuthFailed);
                }
            }
            if encrypted {
                let (head, body) = buf.split_at_mut(8);
                xor_payload(keys, head, ssrc, e_index, &mut body[..body_end - 8]);
            }
        }
        let si = match known {
            Some(si) => si,
            None => {
                let si = self.rx.insert(ssrc);
                self.rx.list[si].rtcp_keys = fresh_cache;
                si
            }
        };
        self.rx.list[si].rtcp.accept(index as u64);
        self.slots[slot_i].used += 1;
        Ok(body_end)
    }
}
