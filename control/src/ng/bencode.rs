//! Bencode: the value model of the ng protocol, a bounded decoder with precise errors and
//! an encoder.
//!
//! The decoder is strict where the bencode definition is (no leading zeros, no negative
//! zero, no trailing bytes, byte-string keys only, every container terminated) and lenient
//! only where rtpengine's protocol documentation says so: dictionary keys need not be in
//! lexicographical order. Duplicate keys are kept in order (rtpengine applies them one
//! after the other, so the request parser lets a later scalar override an earlier one).
//!
//! Nesting depth and input size are bounded, so a hostile datagram costs at most a few
//! allocations per input byte and never overflows the stack.

use std::fmt;

/// A bencoded value. Dictionaries keep their entries in wire order, duplicates included.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

/// Bounds applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries (the top-level dictionary is depth 1).
    pub max_depth: usize,
    /// Largest accepted input, in bytes.
    pub max_len: usize,
}

impl Default for Limits {
    /// 32 levels (ng requests use 3) and 1 MiB (a UDP datagram holds at most 64 KiB).
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_len: 1 << 20,
        }
    }
}

/// Why a byte string is not one bencoded value. Offsets count from the start of the
/// decoded input (the ng payload, after the cookie and its space).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty input")]
    Empty,
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLong { len: usize, max: usize },
    #[error("unexpected end of input at byte {offset} inside the {what} starting at byte {start}")]
    Unterminated {
        what: &'static str,
        start: usize,
        offset: usize,
    },
    #[error("unexpected byte 0x{byte:02x} at byte {offset}")]
    UnexpectedByte { byte: u8, offset: usize },
    #[error("leading zero in the {what} at byte {offset}")]
    LeadingZero { what: &'static str, offset: usize },
    #[error("negative zero integer at byte {offset}")]
    NegativeZero { offset: usize },
    #[error("integer without digits at byte {offset}")]
    EmptyInteger { offset: usize },
    #[error("integer out of the 64-bit range at byte {offset}")]
    IntegerOverflow { offset: usize },
    #[error("byte string at byte {offset} declares {len} bytes but only {available} remain")]
    StringPastEnd {
        offset: usize,
        len: u64,
        available: usize,
    },
    #[error("dictionary key at byte {offset} is not a byte string")]
    NonStringKey { offset: usize },
    #[error("nesting deeper than {max} levels at byte {offset}")]
    TooDeep { max: usize, offset: usize },
    #[error("{count} trailing bytes after the value, from byte {offset}")]
    TrailingBytes { offset: usize, count: usize },
}

impl DecodeError {
    /// A short stable name for counters and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::Unterminated { .. } => "unterminated",
            DecodeError::UnexpectedByte { .. } => "unexpected_byte",
            DecodeError::LeadingZero { .. } => "leading_zero",
            DecodeError::NegativeZero { .. } => "negative_zero",
            DecodeError::EmptyInteger { .. } => "empty_integer",
            DecodeError::IntegerOverflow { .. } => "integer_overflow",
            DecodeError::StringPastEnd { .. } => "string_past_end",
            DecodeError::NonStringKey { .. } => "non_string_key",
            DecodeError::TooDeep { .. } => "too_deep",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
        }
    }
}

/// Decodes exactly one value filling all of `input`, with the default [`Limits`].
pub fn decode(input: &[u8]) -> Result<Value, DecodeError> {
    decode_with(input, Limits::default())
}

/// Decodes exactly one value filling all of `input`.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value, DecodeError> {
    if input.is_empty() {
        return Err(DecodeError::Empty);
    }
    if input.len() > limits.max_len {
        return Err(DecodeError::TooLong {
            len: input.len(),
            max: limits.max_len,
        });
    }
    let mut d = Decoder {
        input,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let value = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::TrailingBytes {
            offset: d.pos,
            count: input.len() - d.pos,
        });
    }
    Ok(value)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let offset = self.pos;
        match self.peek() {
            None => Err(DecodeError::Unterminated {
                what: "input",
                start: 0,
                offset,
            }),
            Some(b'i') => self.integer().map(Value::Int),
            Some(b'0'..=b'9') => self.bytes().map(Value::Bytes),
            Some(b'l') => {
                self.enter(depth)?;
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err(self.unterminated("list", offset)),
                        Some(b'e') => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        Some(_) => items.push(self.value(depth + 1)?),
                    }
                }
            }
            Some(b'd') => {
                self.enter(depth)?;
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err(self.unterminated("dictionary", offset)),
                        Some(b'e') => {
                            self.pos += 1;
                            return Ok(Value::Dict(entries));
                        }
                        Some(b'0'..=b'9') => {
                            let key = self.bytes()?;
                            match self.peek() {
                                None => return Err(self.unterminated("dictionary", offset)),
                                Some(b'e') => {
                                    return Err(DecodeError::UnexpectedByte {
                                        byte: b'e',
                                        offset: self.pos,
                                    })
                                }
                                Some(_) => {}
                            }
                            let value = self.value(depth + 1)?;
                            entries.push((key, value));
                        }
                        Some(b'i' | b'l' | b'd') => {
                            return Err(DecodeError::NonStringKey { offset: self.pos })
                        }
                        Some(byte) => {
                            return Err(DecodeError::UnexpectedByte {
                                byte,
                                offset: self.pos,
                            })
                        }
                    }
                }
            }
            Some(byte) => Err(DecodeError::UnexpectedByte { byte, offset }),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), DecodeError> {
        if depth >= self.max_depth {
            return Err(DecodeError::TooDeep {
                max: self.max_depth,
                offset: self.pos,
            });
        }
        Ok(())
    }

    fn unterminated(&self, what: &'static str, start: usize) -> DecodeError {
        DecodeError::Unterminated {
            what,
            start,
            offset: self.pos,
        }
    }

    /// `i<digits>e`, at most one leading minus, no leading zeros, no `-0`.
    fn integer(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut magnitude: u64 = 0;
        loop {
            match self.peek() {
                None => return Err(self.unterminated("integer", start)),
                Some(b'e') => break,
                Some(c @ b'0'..=b'9') => {
                    magnitude = magnitude
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u64::from(c - b'0')))
                        .ok_or(DecodeError::IntegerOverflow { offset: start })?;
                    self.pos += 1;
                }
                Some(byte) => {
                    return Err(DecodeError::UnexpectedByte {
                        byte,
                        offset: self.pos,
                    })
                }
            }
        }
        let ndigits = self.pos - digits_start;
        if ndigits == 0 {
            return Err(DecodeError::EmptyInteger { offset: start });
        }
        if self.input[digits_start] == b'0' {
            if ndigits > 1 {
                return Err(DecodeError::LeadingZero {
                    what: "integer",
                    offset: start,
                });
            }
            if negative {
                return Err(DecodeError::NegativeZero { offset: start });
            }
        }
        self.pos += 1; // 'e'
        let value = if negative {
            // -(2^63) is representable although 2^63 is not.
            if magnitude == 1 << 63 {
                i64::MIN
            } else {
                i64::try_from(magnitude)
                    .map(|m| -m)
                    .map_err(|_| DecodeError::IntegerOverflow { offset: start })?
            }
        } else {
            i64::try_from(magnitude).map_err(|_| DecodeError::IntegerOverflow { offset: start })?
        };
        Ok(value)
    }

    /// `<length>:<bytes>`, no leading zeros in the length.
    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let start = self.pos;
        let mut len: u64 = 0;
        loop {
            match self.peek() {
                None => return Err(self.unterminated("byte string length", start)),
                Some(b':') => break,
                Some(c @ b'0'..=b'9') => {
                    // The length cannot exceed the input, so saturating is enough to
                    // report it as running past the end.
                    len = len.saturating_mul(10).saturating_add(u64::from(c - b'0'));
                    self.pos += 1;
                }
                Some(byte) => {
                    return Err(DecodeError::UnexpectedByte {
                        byte,
                        offset: self.pos,
                    })
                }
            }
        }
        if self.pos - start > 1 && self.input[start] == b'0' {
            return Err(DecodeError::LeadingZero {
                what: "byte string length",
                offset: start,
            });
        }
        self.pos += 1; // ':'
        let available = self.input.len() - self.pos;
        match usize::try_from(len) {
            Ok(n) if n <= available => {
                let out = self.input[self.pos..self.pos + n].to_vec();
                self.pos += n;
                Ok(out)
            }
            _ => Err(DecodeError::StringPastEnd {
                offset: start,
                len,
                available,
            }),
        }
    }
}

impl Value {
    /// Appends the bencoding of this value to `out`. Dictionary entries keep their order.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The bencoding of this value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// A byte string from text.
    pub fn string(s: impl AsRef<str>) -> Value {
        Value::Bytes(s.as_ref().as_bytes().to_vec())
    }

    /// An empty dictionary.
    pub fn dict() -> Value {
        Value::Dict(Vec::new())
    }

    /// Appends an entry if this is a dictionary (does nothing otherwise); returns `self`
    /// for chaining.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Value {
        self.insert(key, value);
        self
    }

    /// Appends an entry if this is a dictionary; does nothing otherwise.
    pub fn insert(&mut self, key: &str, value: impl Into<Value>) {
        if let Value::Dict(entries) = self {
            entries.push((key.as_bytes().to_vec(), value.into()));
        }
    }

    /// The last value stored under `key`, if this is a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(Vec<u8>, Value)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// "integer", "string", "list" or "dictionary", for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<u64> for Value {
    /// Saturates at `i64::MAX` (bencode integers here are signed 64-bit).
    fn from(i: u64) -> Value {
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<u16> for Value {
    fn from(i: u16) -> Value {
        Value::Int(i64::from(i))
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::string(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Bytes(s.into_bytes())
    }
}
impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}
impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Value {
        Value::List(l)
    }
}

/// Byte strings longer than this are shown by length only: ng payloads carry SDP bodies
/// whose `a=crypto` lines hold SRTP master keys, which must never reach a log line.
const DEBUG_SHOWN_BYTES: usize = 48;

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => fmt_bytes(b, f),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Dict(entries) => {
                let mut m = f.debug_map();
                for (k, v) in entries {
                    m.entry(&DebugBytes(k), v);
                }
                m.finish()
            }
        }
    }
}

struct DebugBytes<'a>(&'a [u8]);

impl fmt::Debug for DebugBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_bytes(self.0, f)
    }
}

fn fmt_bytes(b: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if b.len() > DEBUG_SHOWN_BYTES {
        return write!(f, "<{} bytes>", b.len());
    }
    write!(f, "\"{}\"", b.escape_ascii())
}

#[cfg(test)]
#[path = "bencode_tests.rs"]
mod tests;
