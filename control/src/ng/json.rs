//! The JSON form of ng documents. rtpengine accepts a JSON object wherever a bencoded
//! dictionary may be sent (the payload then starts with `{`) and answers in JSON. JSON
//! documents map onto [`Value`]: strings to byte strings, integers and booleans to
//! integers, arrays to lists, objects to dictionaries.

use super::bencode::Value;

/// Parses a JSON document into a [`Value`], refusing nesting deeper than `max_depth`.
pub fn decode(payload: &[u8], max_depth: usize) -> Result<Value, String> {
    let doc: serde_json::Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    convert(&doc, 0, max_depth)
}

fn convert(v: &serde_json::Value, depth: usize, max_depth: usize) -> Result<Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => return Err("null is not a valid ng value".into()),
        J::Bool(b) => Value::Int(i64::from(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => return Err(format!("number {n} is not a 64-bit integer")),
        },
        J::String(s) => Value::string(s),
        J::Array(items) => {
            if depth >= max_depth {
                return Err(format!("nesting deeper than {max_depth} levels"));
            }
            Value::List(
                items
                    .iter()
                    .map(|i| convert(i, depth + 1, max_depth))
                    .collect::<Result<_, _>>()?,
            )
        }
        J::Object(map) => {
            if depth >= max_depth {
                return Err(format!("nesting deeper than {max_depth} levels"));
            }
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                entries.push((k.as_bytes().to_vec(), convert(v, depth + 1, max_depth)?));
            }
            Value::Dict(entries)
        }
    })
}

/// The JSON text of a value. Byte strings that are not UTF-8 are converted lossily
/// (replies carry text: SDP, tags, reasons).
pub fn encode(v: &Value) -> Vec<u8> {
    to_json(v).to_string().into_bytes()
}

fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Int(i) => J::from(*i),
        Value::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Dict(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = decode(br#"{"command":"ping","n":3,"b":true,"l":["a"]}"#, 8).unwrap();
        assert_eq!(v.get(b"command"), Some(&Value::string("ping")));
        assert_eq!(v.get(b"n"), Some(&Value::Int(3)));
        assert_eq!(v.get(b"b"), Some(&Value::Int(1)));
        let back = decode(&encode(&v), 8).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn refusals() {
        assert!(decode(b"{\"a\":null}", 8).is_err());
        assert!(decode(b"{\"a\":1.5}", 8).is_err());
        assert!(decode(b"[[[[1]]]]", 3).is_err());
        assert!(decode(b"{\"a\":", 8).is_err());
    }
}
