//! Tests of the bencode decoder and encoder.

use super::*;

fn err(input: &[u8]) -> DecodeError {
    match decode(input) {
        Err(e) => e,
        Ok(v) => panic!("{:?} decoded to {v:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn decodes_each_type() {
    assert_eq!(decode(b"i42e"), Ok(Value::Int(42)));
    assert_eq!(decode(b"i-42e"), Ok(Value::Int(-42)));
    assert_eq!(decode(b"i0e"), Ok(Value::Int(0)));
    assert_eq!(decode(b"0:"), Ok(Value::Bytes(vec![])));
    assert_eq!(decode(b"4:spam"), Ok(Value::string("spam")));
    assert_eq!(
        decode(b"l4:spami7ee"),
        Ok(Value::List(vec![Value::string("spam"), Value::Int(7)]))
    );
    assert_eq!(
        decode(b"d3:cow3:moo4:spaml1:a1:bee"),
        Ok(Value::dict().with("cow", "moo").with(
            "spam",
            Value::List(vec![Value::string("a"), Value::string("b")])
        ))
    );
}

#[test]
fn integer_extremes() {
    assert_eq!(decode(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
    assert_eq!(decode(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
    assert_eq!(
        err(b"i9223372036854775808e"),
        DecodeError::IntegerOverflow { offset: 0 }
    );
    assert_eq!(
        err(b"i-9223372036854775809e"),
        DecodeError::IntegerOverflow { offset: 0 }
    );
    assert_eq!(
        err(b"i99999999999999999999999e"),
        DecodeError::IntegerOverflow { offset: 0 }
    );
}

#[test]
fn unsorted_and_duplicate_keys_are_kept_in_order() {
    let v = decode(b"d1:b1:x1:a1:y1:b1:ze").unwrap();
    let keys: Vec<&[u8]> = v.as_dict().unwrap().iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(keys, vec![&b"b"[..], b"a", b"b"]);
    assert_eq!(v.get(b"b"), Some(&Value::string("z")));
}

#[test]
fn error_kinds_with_offsets() {
    assert_eq!(err(b""), DecodeError::Empty);
    assert_eq!(
        err(b"i03e"),
        DecodeError::LeadingZero {
            what: "integer",
            offset: 0
        }
    );
    assert_eq!(
        err(b"d1:ai-01ee"),
        DecodeError::LeadingZero {
            what: "integer",
            offset: 4
        }
    );
    assert_eq!(
        err(b"03:abc"),
        DecodeError::LeadingZero {
            what: "byte string length",
            offset: 0
        }
    );
    assert_eq!(err(b"li1ei-0ee"), DecodeError::NegativeZero { offset: 4 });
    assert_eq!(err(b"ie"), DecodeError::EmptyInteger { offset: 0 });
    assert_eq!(err(b"i-e"), DecodeError::EmptyInteger { offset: 0 });
    assert_eq!(
        err(b"i+5e"),
        DecodeError::UnexpectedByte {
            byte: b'+',
            offset: 1
        }
    );
    assert_eq!(
        err(b"d7:command4:ping"),
        DecodeError::Unterminated {
            what: "dictionary",
            start: 0,
            offset: 16
        }
    );
    assert_eq!(
        err(b"l1:a"),
        DecodeError::Unterminated {
            what: "list",
            start: 0,
            offset: 4
        }
    );
    assert_eq!(
        err(b"i12"),
        DecodeError::Unterminated {
            what: "integer",
            start: 0,
            offset: 3
        }
    );
    assert_eq!(
        err(b"12"),
        DecodeError::Unterminated {
            what: "byte string length",
            start: 0,
            offset: 2
        }
    );
    assert_eq!(
        err(b"5:abc"),
        DecodeError::StringPastEnd {
            offset: 0,
            len: 5,
            available: 3
        }
    );
    assert_eq!(
        err(b"99999999999999999999999:x"),
        DecodeError::StringPastEnd {
            offset: 0,
            len: u64::MAX,
            available: 1
        }
    );
    assert_eq!(
        err(b"de4:spame"),
        DecodeError::TrailingBytes {
            offset: 2,
            count: 7
        }
    );
    assert_eq!(err(b"di1e1:ae"), DecodeError::NonStringKey { offset: 1 });
    assert_eq!(err(b"dl1:ae1:ae"), DecodeError::NonStringKey { offset: 1 });
    assert_eq!(
        err(b"d1:ae"),
        DecodeError::UnexpectedByte {
            byte: b'e',
            offset: 4
        }
    );
    assert_eq!(
        err(b"x"),
        DecodeError::UnexpectedByte {
            byte: b'x',
            offset: 0
        }
    );
}

#[test]
fn depth_and_size_limits() {
    let limits = Limits {
        max_depth: 3,
        max_len: 64,
    };
    assert!(decode_with(b"llleee", limits).is_ok());
    assert_eq!(
        decode_with(b"lllleeee", limits),
        Err(DecodeError::TooDeep { max: 3, offset: 3 })
    );
    assert_eq!(
        decode_with(&[b'0'; 65], limits),
        Err(DecodeError::TooLong { len: 65, max: 64 })
    );
    // A deep nest at the default limits is refused without exhausting the stack.
    let mut deep = vec![b'l'; 100_000];
    deep.extend(vec![b'e'; 100_000]);
    assert_eq!(decode(&deep).unwrap_err().kind(), "too_deep");
}

#[test]
fn encode_round_trips() {
    let v = Value::dict()
        .with("result", "ok")
        .with("n", -7i64)
        .with("l", Value::List(vec![Value::Int(0), Value::string("")]));
    let bytes = v.encode();
    assert_eq!(bytes, b"d6:result2:ok1:ni-7e1:lli0e0:ee".to_vec());
    assert_eq!(decode(&bytes), Ok(v));
}

#[test]
fn debug_hides_long_strings() {
    let sdp =
        "v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let shown = format!(
        "{:?}",
        Value::dict().with("sdp", sdp).with("call-id", "abc")
    );
    assert!(!shown.contains("inline"), "{shown}");
    assert!(shown.contains("\"call-id\": \"abc\""), "{shown}");
}

#[test]
fn accepted_inputs_have_exactly_one_encoding() {
    for input in [
        &b"d7:command4:pinge"[..],
        b"d1:b1:x1:a1:y1:b1:ze",
        b"li-7ei0e0:le4:spamdee",
    ] {
        assert_eq!(decode(input).unwrap().encode(), input);
    }
}
