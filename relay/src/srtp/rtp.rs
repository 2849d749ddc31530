//! SRTP packet protection (RFC 3711 §3.1, §4; RFC 7714 §8–9).

use super::context::SrtpContext;
use super::crypto::{ct_eq, ctr_xor, f8_xor};
use super::kdf::{SessionCipher, SessionKeys};
use super::Error;

/// Length of the RTP header (fixed part, CSRCs and extension) of `pkt`.
pub fn rtp_header_len(pkt: &[u8]) -> Result<usize, Error> {
    if pkt.len() < 12 {
        return Err(Error::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(Error::BadVersion);
    }
    let mut h = 12 + 4 * (pkt[0] & 0x0f) as usize;
    if pkt[0] & 0x10 != 0 {
        if pkt.len() < h + 4 {
            return Err(Error::TooShort);
        }
        h += 4 + 4 * u16::from_be_bytes([pkt[h + 2], pkt[h + 3]]) as usize;
    }
    if h > pkt.len() {
        return Err(Error::TooShort);
    }
    Ok(h)
}

/// RFC 3711 Appendix A: the packet index for `seq` given the highest index seen.
/// Fails when the rollover counter would pass 2^32 (the 2^48 packet limit).
pub fn estimate_index(highest: Option<u64>, seq: u16) -> Result<u64, Error> {
    let Some(top) = highest else {
        return Ok(seq as u64);
    };
    let roc = top >> 16;
    let s_l = top & 0xffff;
    let seq64 = seq as u64;
    let v = if s_l < 32768 {
        if seq64 > s_l + 32768 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if seq64 + 32768 < s_l {
        roc + 1
    } else {
        roc
    };
    if v > u32::MAX as u64 {
        return Err(Error::KeyExpired);
    }
    Ok((v << 16) | seq64)
}

fn ssrc_of(pkt: &[u8]) -> u32 {
    u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]])
}

/// AES-CM IV: (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16).
pub(crate) fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= s;
    }
    iv
}

/// AEAD nonce for SRTP: (00 00 || SSRC || ROC || SEQ) XOR salt.
fn gcm_nonce(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[2..6].copy_from_slice(&ssrc.to_be_bytes());
    n[6..12].copy_from_slice(&index.to_be_bytes()[2..]);
    n.iter_mut().zip(salt).for_each(|(n, s)| *n ^= s);
    n
}

/// f8 IV for SRTP: 0x00 || M || PT || SEQ || TS || SSRC || ROC.
fn f8_iv(header: &[u8], index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[1..12].copy_from_slice(&header[1..12]);
    iv[12..16].copy_from_slice(&((index >> 16) as u32).to_be_bytes());
    iv
}

/// Applies (or removes) the keystream of a non-AEAD cipher to `payload`.
fn xor_payload(keys: &SessionKeys, header: &[u8], ssrc: u32, index: u64, payload: &mut [u8]) {
    match &keys.cipher {
        SessionCipher::Cm(k) => ctr_xor(k, &cm_iv(&keys.salt, ssrc, index), payload),
        SessionCipher::F8 { key, iv_key } => {
            let ivp = SessionKeys::f8_iv_prime(iv_key, f8_iv(header, index));
            f8_xor(key, &ivp, payload)
        }
        SessionCipher::Null | SessionCipher::Gcm(_) => {}
    }
}

impl SrtpContext {
    /// Protects the RTP packet in `buf[..len]` in place and returns the SRTP length.
    /// `buf` must have room for [`srtp_overhead`](Self::srtp_overhead) more bytes.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        if len > buf.len() {
            return Err(Error::BufferTooSmall);
        }
        let h = rtp_header_len(&buf[..len])?;
        let tag_len = self.rtp_tag_len();
        let out_len = len + self.mki_len + tag_len;
        if buf.len() < out_len {
            return Err(Error::BufferTooSmall);
        }
        let slot_i = self.active;
        self.slots[slot_i].check_lifetime()?;
        let ssrc = ssrc_of(buf);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let si = self.tx.find_or_insert(ssrc);
        let stream = &mut self.tx.list[si];
        let index = estimate_index(stream.rtp.top(), seq)?;
        // A sender never reuses an index: that would reuse keystream.
        stream.rtp.check(index)?;
        let slot = &self.slots[slot_i];
        let keys = Self::session_keys(
            self.suite,
            self.kdr,
            slot,
            slot_i,
            false,
            index,
            &mut stream.rtp_keys,
        )?;
        let roc = ((index >> 16) as u32).to_be_bytes();
        if let SessionCipher::Gcm(g) = &keys.cipher {
            let nonce = gcm_nonce(&keys.salt, ssrc, index);
            let tag = if self.unencrypted_srtp {
                g.seal(nonce, &buf[..len], &mut [])
            } else {
                let (head, body) = buf.split_at_mut(h);
                g.seal(nonce, head, &mut body[..len - h])
            };
            buf[len..len + 16].copy_from_slice(&tag);
            if let Some(m) = slot.master.mki() {
                buf[len + 16..out_len].copy_from_slice(m.as_bytes());
            }
        } else {
            if !self.unencrypted_srtp {
                let (head, body) = buf.split_at_mut(h);
                xor_payload(keys, head, ssrc, index, &mut body[..len - h]);
            }
            if let Some(m) = slot.master.mki() {
                buf[len..len + self.mki_len].copy_from_slice(m.as_bytes());
            }
            if tag_len > 0 {
                if let Some(auth) = &keys.auth {
                    let tag = auth.mac(&[&buf[..len], &roc]);
                    buf[len + self.mki_len..out_len].copy_from_slice(&tag[..tag_len]);
                }
            }
        }
        stream.rtp.accept(index);
        self.slots[slot_i].used += 1;
        Ok(out_len)
    }

    /// Authenticates and decrypts the SRTP packet `buf` in place; returns the RTP length.
    /// Nothing about the stream changes unless the packet is authentic and new.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = buf.len();
        if len < 12 {
            return Err(Error::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(Error::BadVersion);
        }
        let tag_len = self.rtp_tag_len();
        let trailer = self.mki_len + tag_len;
        if len < 12 + trailer {
            return Err(Error::TooShort);
        }
        let body_end = len - trailer;
        let h = rtp_header_len(&buf[..body_end])?;
        let is_gcm = matches!(self.suite.cipher(), super::CipherKind::AesGcm);
        // HMAC suites: packet | MKI | tag. AEAD: packet+tag | MKI.
        let mki_at = if is_gcm { len - self.mki_len } else { body_end };
        let slot_i = self.slot_for(buf, mki_at)?;
        self.slots[slot_i].check_lifetime()?;
        let ssrc = ssrc_of(buf);
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let known = self.rx.find(ssrc);
        let mut fresh_cache = None;
        let (index, cache) = match known {
            Some(si) => {
                let s = &mut self.rx.list[si];
                let index = estimate_index(s.rtp.top(), seq)?;
                s.rtp.check(index)?;
                (index, &mut s.rtp_keys)
            }
            None => (seq as u64, &mut fresh_cache),
        };
        let slot = &self.slots[slot_i];
        let keys = Self::session_keys(self.suite, self.kdr, slot, slot_i, false, index, cache)?;
        let roc = ((index >> 16) as u32).to_be_bytes();
        if let SessionCipher::Gcm(g) = &keys.cipher {
            let nonce = gcm_nonce(&keys.salt, ssrc, index);
            let (data, tag) = buf[..len - self.mki_len].split_at_mut(body_end);
            if self.unencrypted_srtp {
                g.open(nonce, data, &mut [], tag)?;
            } else {
                let (head, body) = data.split_at_mut(h);
                g.open(nonce, head, body, tag)?;
            }
        } else {
            if tag_len > 0 {
                if let Some(auth) = &keys.auth {
                    let want = auth.mac(&[&buf[..body_end], &roc]);
                    if !ct_eq(&want[..tag_len], &buf[len - tag_len..]) {
                        return Err(Error::AuthFailed);
                    }
                }
            }
            if !self.unencrypted_srtp {
                let (head, body) = buf.split_at_mut(h);
                xor_payload(keys, head, ssrc, index, &mut body[..body_end - h]);
            }
        }
        let si = match known {
            Some(si) => si,
            None => {
                let si = self.rx.insert(ssrc);
                self.rx.list[si].rtp_keys = fresh_cache;
                si
            }
        };
        self.rx.list[si].rtp.accept(index);
        self.slots[slot_i].used += 1;
        Ok(body_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_estimation_follows_appendix_a() {
        assert_eq!(estimate_index(None, 65000).unwrap(), 65000);
        // Wrap forward.
        assert_eq!(estimate_index(Some(65500), 10).unwrap(), 65536 + 10);
        // Late packet from before the wrap.
        assert_eq!(estimate_index(Some(65536 + 10), 65500).unwrap(), 65500);
        // Ordinary progress.
        assert_eq!(estimate_index(Some(100), 101).unwrap(), 101);
        // The 2^48 limit.
        assert_eq!(
            estimate_index(Some((u32::MAX as u64) << 16 | 65535), 1),
            Err(Error::KeyExpired)
        );
    }

    #[test]
    fn header_lengths() {
        let mut p = vec![0x80u8; 12];
        assert_eq!(rtp_header_len(&p).unwrap(), 12);
        p[0] = 0x82; // two CSRCs missing
        assert_eq!(rtp_header_len(&p), Err(Error::TooShort));
        p[0] = 0x90;
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        assert_eq!(rtp_header_len(&p).unwrap(), 20);
        p[0] = 0x40;
        assert_eq!(rtp_header_len(&p), Err(Error::BadVersion));
    }
}
