//! G.711 (ITU-T) µ-law and A-law companding, written from the segment tables of the
//! recommendation: 8 segments of 16 steps, sign in the top bit.

/// µ-law byte to 16-bit linear PCM (±32124).
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// A-law byte to 16-bit linear PCM (±32256).
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = (a & 0x0f) as i32;
    let mut magnitude = (mantissa << 4) + 8;
    if exponent != 0 {
        magnitude = (magnitude + 0x100) << (exponent - 1);
    }
    // In A-law a set sign bit means positive.
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// 16-bit linear PCM to µ-law (used by tests and tone generators).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut x = sample as i32;
    let sign = if x < 0 {
        x = -x;
        0x80
    } else {
        0
    };
    x = x.min(32635) + 0x84;
    let mut exponent = 7u8;
    let mut mask = 0x4000;
    while exponent > 0 && x & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((x >> (exponent + 3)) & 0x0f) as u8;
    !(sign | exponent << 4 | mantissa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xef), 132);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
    }

    #[test]
    fn ulaw_round_trip_is_stable() {
        for b in 0..=255u8 {
            let l = ulaw_to_linear(b);
            let back = linear_to_ulaw(l);
            // 0x7f and 0xff both mean zero.
            assert_eq!(ulaw_to_linear(back), l, "{b:#x}");
        }
        // Encoding is monotonic in magnitude.
        let mut last = ulaw_to_linear(linear_to_ulaw(0));
        for s in (0..32767).step_by(97) {
            let v = ulaw_to_linear(linear_to_ulaw(s));
            assert!(v >= last);
            assert!((v as i32 - s as i32).abs() <= 1024);
            last = v;
        }
    }
}
