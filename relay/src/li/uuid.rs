//! 128-bit identifiers in their RFC 9562 text form, as X1 and X2/X3 use them: the XID of a
//! task and the dId of a delivery destination.

use std::fmt;
use std::str::FromStr;

/// A UUID: 16 bytes, written as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower-case hex on
/// output, either case accepted on input).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

/// An X2/X3 task identifier (TS 103 221-1 `XID`).
pub type Xid = Uuid;
/// A delivery destination identifier (TS 103 221-1 `dId`).
pub type DId = Uuid;

/// Why a string is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID in 8-4-4-4-12 hex form")]
pub struct BadUuid;

impl Uuid {
    pub const NIL: Uuid = Uuid([0; 16]);

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A random version-4 UUID.
    pub fn new_v4() -> Uuid {
        let mut b = [0u8; 16];
        fill_random(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }
}

/// Fills `buf` from the system's secure random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    use ring::rand::SecureRandom;
    // The system source failing leaves no safe fallback for identifiers; it does not fail
    // on Linux once the kernel pool is initialised.
    if ring::rand::SystemRandom::new().fill(buf).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(1);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
}

impl FromStr for Uuid {
    type Err = BadUuid;

    fn from_str(s: &str) -> Result<Uuid, BadUuid> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(BadUuid);
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b[i] != b'-' {
                    return Err(BadUuid);
                }
                i += 1;
                continue;
            }
            let hi = hex_val(b[i]).ok_or(BadUuid)?;
            let lo = hex_val(b[i + 1]).ok_or(BadUuid)?;
            out[n] = hi << 4 | lo;
            n += 1;
            i += 2;
        }
        Ok(Uuid(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Debug never shows the value: XIDs and dIds must not reach ordinary logs, and a `{:?}`
/// of a struct holding one is the usual way they would. Use Display where the value is
/// meant to be shown (files, X1 replies, the audit log).
impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_nil() {
            "Uuid(nil)"
        } else {
            "Uuid(…)"
        })
    }
}

impl serde::Serialize for Uuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Uuid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case() {
        let u: Uuid = "2B36A78B-B628-416D-BD22-65E63A4B4C2F".parse().unwrap();
        assert_eq!(u.0[0], 0x2b);
        assert_eq!(u.0[15], 0x2f);
        assert_eq!(u.to_string(), "2b36a78b-b628-416d-bd22-65e63a4b4c2f");
        assert_eq!(u.to_string().parse::<Uuid>().unwrap(), u);
    }

    #[test]
    fn malformed_text_is_refused() {
        for s in [
            "",
            "2b36a78b-b628-416d-bd22-65e63a4b4c2",
            "2b36a78bb628-416d-bd22-65e63a4b4c2f0",
            "2b36a78b-b628-416d-bd22-65e63a4b4cgf",
            "2b36a78b-b628-416d-bd22-65e63a4b4c2fé",
            "2b36a78b+b628-416d-bd22-65e63a4b4c2f",
        ] {
            assert_eq!(s.parse::<Uuid>(), Err(BadUuid), "{s}");
        }
    }

    #[test]
    fn debug_hides_the_value() {
        let u: Uuid = "2b36a78b-b628-416d-bd22-65e63a4b4c2f".parse().unwrap();
        assert_eq!(format!("{u:?}"), "Uuid(…)");
        assert_eq!(format!("{:?}", Uuid::NIL), "Uuid(nil)");
    }

    #[test]
    fn v4_has_version_and_variant_bits() {
        let u = Uuid::new_v4();
        assert_eq!(u.0[6] >> 4, 4);
        assert_eq!(u.0[8] >> 6, 2);
        assert_ne!(u, Uuid::new_v4());
    }
}
