//! ng replies, shaped as rtpengine's: a dictionary whose `result` is `pong`, `ok`,
//! `error` (with `error-reason` and nothing else) or `load limit` (with an optional
//! `message`); `ok` replies may carry `sdp`, `warning` and command-specific keys.

use std::fmt;

use zeroize::Zeroizing;

use super::bencode::Value;
use super::request::SdpBody;
use super::stats::{CallStats, Statistics};

/// A reply to one request.
#[derive(Clone, PartialEq, Eq)]
pub enum NgResponse {
    /// `{"result": "pong"}`.
    Pong,
    /// `{"result": "ok", ...}`.
    Ok(OkResponse),
    /// `{"result": "error", "error-reason": ...}`.
    Error(String),
    /// `{"result": "load limit", "message": ...}`: the client (which said it `supports`
    /// `load limit`) tries another relay. Without that support, send
    /// `Error("Parallel session limit reached")`, which Kamailio also fails over on.
    LoadLimit(Option<String>),
}

/// The parts of an `ok` reply. Empty parts are left out of the dictionary.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OkResponse {
    /// The rewritten SDP (`offer`, `answer`). Holds srtpgate's SRTP keys: wiped on drop,
    /// never printed by `Debug`.
    pub sdp: Option<SdpBody>,
    /// Non-fatal problems, sent as one `warning` string joined with `"; "`.
    pub warnings: Vec<String>,
    /// `query` (and optionally `delete`) statistics of the call.
    pub call: Option<Box<CallStats>>,
    /// `list`: the call-ids.
    pub calls: Option<Vec<String>>,
    /// `statistics`.
    pub statistics: Option<Box<Statistics>>,
    /// Further keys, appended in order.
    pub extra: Vec<(String, Value)>,
}

impl NgResponse {
    pub fn pong() -> NgResponse {
        NgResponse::Pong
    }

    pub fn ok() -> NgResponse {
        NgResponse::Ok(OkResponse::default())
    }

    /// `ok` with a rewritten SDP body.
    pub fn with_sdp(sdp: impl Into<Vec<u8>>) -> NgResponse {
        NgResponse::Ok(OkResponse {
            sdp: Some(Zeroizing::new(sdp.into())),
            ..OkResponse::default()
        })
    }

    pub fn error(reason: impl Into<String>) -> NgResponse {
        NgResponse::Error(reason.into())
    }

    pub fn load_limit(message: Option<String>) -> NgResponse {
        NgResponse::LoadLimit(message)
    }

    /// The `query` reply.
    pub fn query(call: CallStats) -> NgResponse {
        NgResponse::Ok(OkResponse {
            call: Some(Box::new(call)),
            ..OkResponse::default()
        })
    }

    /// The `list` reply.
    pub fn list(call_ids: Vec<String>) -> NgResponse {
        NgResponse::Ok(OkResponse {
            calls: Some(call_ids),
            ..OkResponse::default()
        })
    }

    /// The `statistics` reply.
    pub fn statistics(stats: Statistics) -> NgResponse {
        NgResponse::Ok(OkResponse {
            statistics: Some(Box::new(stats)),
            ..OkResponse::default()
        })
    }

    /// Adds a warning to an `ok` reply; other replies carry no warning and are returned
    /// unchanged.
    pub fn warn(mut self, warning: impl Into<String>) -> NgResponse {
        if let NgResponse::Ok(ok) = &mut self {
            ok.warnings.push(warning.into());
        }
        self
    }

    /// Adds a key to an `ok` reply (e.g. `to-tag`); other replies are returned unchanged.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> NgResponse {
        if let NgResponse::Ok(ok) = &mut self {
            ok.extra.push((key.to_owned(), value.into()));
        }
        self
    }

    /// The `result` string.
    pub fn result(&self) -> &'static str {
        match self {
            NgResponse::Pong => "pong",
            NgResponse::Ok(_) => "ok",
            NgResponse::Error(_) => "error",
            NgResponse::LoadLimit(_) => "load limit",
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, NgResponse::Error(_))
    }

    /// The reply dictionary.
    pub fn to_value(&self) -> Value {
        let mut d = Value::dict().with("result", self.result());
        match self {
            NgResponse::Pong => {}
            NgResponse::Error(reason) => d.insert("error-reason", reason.as_str()),
            NgResponse::LoadLimit(message) => {
                if let Some(m) = message {
                    d.insert("message", m.as_str());
                }
            }
            NgResponse::Ok(ok) => {
                if let Some(sdp) = &ok.sdp {
                    d.insert("sdp", sdp.as_slice());
                }
                if !ok.warnings.is_empty() {
                    d.insert("warning", ok.warnings.join("; "));
                }
                if let Some(call) = &ok.call {
                    call.append_to(&mut d);
                }
                if let Some(calls) = &ok.calls {
                    d.insert(
                        "calls",
                        Value::List(calls.iter().map(Value::string).collect()),
                    );
                }
                if let Some(stats) = &ok.statistics {
                    if let Value::Dict(entries) = stats.to_value() {
                        for (k, v) in entries {
                            d.insert(&String::from_utf8_lossy(&k), v);
                        }
                    }
                }
                for (k, v) in &ok.extra {
                    d.insert(k, v.clone());
                }
            }
        }
        d
    }

    /// The bencoded reply dictionary (without the cookie).
    pub fn encode(&self) -> Vec<u8> {
        self.to_value().encode()
    }
}

impl fmt::Debug for NgResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NgResponse::Pong => f.write_str("Pong"),
            NgResponse::Ok(ok) => f.debug_tuple("Ok").field(ok).finish(),
            NgResponse::Error(r) => f.debug_tuple("Error").field(r).finish(),
            NgResponse::LoadLimit(m) => f.debug_tuple("LoadLimit").field(m).finish(),
        }
    }
}

impl fmt::Debug for OkResponse {
    /// The SDP body holds keys: only its length is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OkResponse")
            .field("sdp_len", &self.sdp.as_ref().map(|s| s.len()))
            .field("warnings", &self.warnings)
            .field("call", &self.call)
            .field("calls", &self.calls)
            .field("statistics", &self.statistics)
            .field("extra", &self.extra)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shapes() {
        assert_eq!(NgResponse::pong().encode(), b"d6:result4:ponge".to_vec());
        assert_eq!(
            NgResponse::error("Unknown call-id").encode(),
            b"d6:result5:error12:error-reason15:Unknown call-ide".to_vec()
        );
        assert_eq!(
            NgResponse::with_sdp("v=0\r\n")
                .warn("a")
                .warn("b")
                .with("to-tag", "x")
                .encode(),
            b"d6:result2:ok3:sdp5:v=0\r\n7:warning4:a; b6:to-tag1:xe".to_vec()
        );
        assert_eq!(
            NgResponse::load_limit(Some("Load limit exceeded".into())).encode(),
            b"d6:result10:load limit7:message19:Load limit exceedede".to_vec()
        );
        assert_eq!(
            NgResponse::list(vec!["a".into(), "bc".into()]).encode(),
            b"d6:result2:ok5:callsl1:a2:bcee".to_vec()
        );
    }

    #[test]
    fn errors_carry_no_warning() {
        let e = NgResponse::error("x").warn("w").with("k", 1i64);
        assert_eq!(e, NgResponse::error("x"));
    }

    #[test]
    fn debug_hides_the_sdp() {
        let r = NgResponse::with_sdp("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:secret");
        assert!(!format!("{r:?}").contains("secret"));
    }
}
