//! G.711 (ITU-T) µ-law and A-law expansion to 16-bit linear samples.

/// µ-law byte to linear: invert, then sign, 3-bit segment, 4-bit mantissa with the bias of
/// 0x84 removed.
pub fn ulaw_to_linear(b: u8) -> i16 {
    let v = !b;
    let exp = (v >> 4) & 0x07;
    let mant = (v & 0x0f) as i32;
    let mag = (((mant << 3) + 0x84) << exp) - 0x84;
    if v & 0x80 != 0 {
        -mag as i16
    } else {
        mag as i16
    }
}

/// A-law byte to linear: even bits inverted (XOR 0x55), sign bit set for positive values.
pub fn alaw_to_linear(b: u8) -> i16 {
    let v = b ^ 0x55;
    let exp = (v >> 4) & 0x07;
    let mant = (v & 0x0f) as i32;
    let mag = if exp == 0 {
        (mant << 4) + 8
    } else {
        ((mant << 4) + 0x108) << (exp - 1)
    };
    if v & 0x80 != 0 {
        mag as i16
    } else {
        -mag as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // Silence and the extremes of both laws.
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
    }

    #[test]
    fn expansion_is_monotonic_within_each_sign() {
        // µ-law: 0x80..=0xff runs from the largest positive value down to 0.
        let pos: Vec<i16> = (0x80..=0xffu8).map(ulaw_to_linear).collect();
        assert!(pos.windows(2).all(|w| w[0] > w[1]));
        let alaw_pos: Vec<i16> = (0x80..=0xffu8).map(|b| alaw_to_linear(b ^ 0x55)).collect();
        assert!(alaw_pos.windows(2).all(|w| w[0] < w[1]));
    }
}
