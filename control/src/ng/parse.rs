//! From a decoded dictionary to an [`NgRequest`].
//!
//! Keys are applied in wire order, so a repeated scalar key takes its last value and a
//! repeated list key adds to the earlier one, as in rtpengine. Key and flag names are
//! compared after [`normalize`] (case, spaces, hyphens, underscores). Values rtpengine
//! accepts in two shapes are accepted in both: a list key also takes a string of
//! comma-separated items, an integer key also takes a numeric string (Kamailio sends
//! `key=value` flags such as `ptime=20` as strings), `received-from` also takes a bare
//! address. A value of a shape rtpengine never accepts is an error naming the key.
//!
//! Flags that are really options (`replace-origin`, `SDES-no-SUITE`, `rtcp-mux-demux`,
//! `codec-strip-PCMA`, `ICE=force`, `transport-protocol=RTP/SAVP`, a bare `RTP/SAVP`) are
//! folded into the typed fields. Anything unknown, or known but not implemented, lands in
//! `unsupported` with the name it was given.

use std::net::IpAddr;

use zeroize::Zeroizing;

use super::bencode::Value;
use super::options::{
    normalize, strip_prefix_loose, AddressFamily, Dtls, FingerprintHash, Flag, Ice, ReceivedFrom,
    Replace, RtcpMux, SipMessageType, Tos, Transport, TransportProtocol,
};
use super::request::{Command, NgRequest, RequestError, RequiredKey};

/// Longest excerpt of a client's value quoted back in a warning or error.
const QUOTE_MAX: usize = 64;

impl NgRequest {
    /// Parses a bencoded ng payload (the datagram after the cookie and its space).
    pub fn parse(payload: &[u8]) -> Result<NgRequest, RequestError> {
        if payload.is_empty() {
            return Err(RequestError::NoPayload);
        }
        let value = super::bencode::decode(payload)?;
        NgRequest::from_value(&value)
    }

    /// Builds a request from a decoded document (bencode or JSON).
    pub fn from_value(document: &Value) -> Result<NgRequest, RequestError> {
        let Value::Dict(entries) = document else {
            return Err(RequestError::NotADictionary(document.type_name()));
        };
        let command = match document.get(b"command") {
            None => return Err(RequestError::MissingCommand),
            Some(Value::Bytes(name)) => Command::from_name(name).ok_or_else(|| {
                RequestError::UnknownCommand(quote(&String::from_utf8_lossy(name)))
            })?,
            Some(other) => return Err(wrong_type("command", "string", other)),
        };
        let mut p = Parser {
            req: NgRequest {
                command,
                ..NgRequest::default()
            },
            pause: false,
            fragment: false,
        };
        if let Command::Unsupported(_) = p.req.command {
            // Answered with an error anyway; keep only the call-id, for logs.
            if let Some(Value::Bytes(id)) = document.get(b"call-id") {
                p.req.call_id = String::from_utf8(id.clone()).ok();
            }
            return Ok(p.req);
        }
        for (key, value) in entries {
            let Ok(name) = std::str::from_utf8(key) else {
                p.ignore(format!("key \"{}\"", quote(&String::from_utf8_lossy(key))));
                continue;
            };
            if !p.key(name, &normalize(name), value)? {
                p.ignore(format!("key \"{}\"", quote(name)));
            }
        }
        p.finish()
    }
}

struct Parser {
    req: NgRequest,
    pause: bool,
    fragment: bool,
}

impl Parser {
    fn ignore(&mut self, what: String) {
        if !self.req.unsupported.contains(&what) {
            self.req.unsupported.push(what);
        }
    }

    /// Applies one dictionary entry; false when the key is not one srtpgate knows.
    fn key(&mut self, name: &str, norm: &str, v: &Value) -> Result<bool, RequestError> {
        let r = &mut self.req;
        match norm {
            "command" => {}
            "call-id" => r.call_id = Some(text(name, v)?),
            "from-tag" => r.from_tag = Some(text(name, v)?),
            "to-tag" => r.to_tag = Some(text(name, v)?),
            "via-branch" => r.via_branch = Some(text(name, v)?),
            "sdp" => match v {
                Value::Bytes(b) => r.sdp = Some(Zeroizing::new(b.clone())),
                other => return Err(wrong_type(name, "string", other)),
            },
            "metadata" => r.metadata = Some(text(name, v)?),
            "label" | "from-label" => r.label = Some(text(name, v)?),
            "interface" => r.interface = Some(text(name, v)?),
            "from-interface" => r.direction[0] = Some(text(name, v)?),
            "to-interface" => r.direction[1] = Some(text(name, v)?),
            "direction" => self.direction(name, v)?,
            "flags" => {
                for flag in string_list(name, v)? {
                    self.flag(&flag)?;
                }
            }
            "replace" => self.each(name, v, |p, s| p.replace(s))?,
            "rtcp-mux" => self.each(name, v, |p, s| p.rtcp_mux(s))?,
            "sdes" => self.each(name, v, |p, s| p.req.sdes.apply(s))?,
            "from-tags" => r.from_tags.extend(string_list(name, v)?),
            "supports" => self.each(name, v, |p, s| {
                let known = normalize(s) == "load-limit";
                p.req.supports_load_limit |= known;
                known
            })?,
            "osrtp" | "t.38" | "t38" | "endpoint-learning" => {
                for item in string_list(name, v)? {
                    self.ignore(format!("{name} \"{}\"", quote(&item)));
                }
            }
            "codec" => self.codec(name, v)?,
            "transport-protocol" => {
                let s = text(name, v)?;
                match TransportProtocol::parse(&s) {
                    Some(p) => r.transport = Some(Transport::Protocol(p)),
                    None if normalize(&s) == "accept" => r.transport = Some(Transport::Accept),
                    None => self.ignore_value(name, &s),
                }
            }
            "ice" => self.enumerated(name, v, Ice::from_normalized, |r, x| r.ice = Some(x))?,
            "dtls" => self.enumerated(name, v, Dtls::from_normalized, |r, x| r.dtls = Some(x))?,
            "dtls-fingerprint" => {
                self.enumerated(name, v, FingerprintHash::from_normalized, |r, x| {
                    r.dtls_fingerprint = Some(x)
                })?
            }
            "address-family" => {
                self.enumerated(name, v, AddressFamily::from_normalized, |r, x| {
                    r.address_family = Some(x)
                })?
            }
            "sip-message-type" => {
                self.enumerated(name, v, SipMessageType::from_normalized, |r, x| {
                    r.sip_message_type = Some(x)
                })?
            }
            "record-call" => self.enumerated(name, v, yes_no, |r, x| r.record_call = Some(x))?,
            "pause" => {
                let s = text(name, v)?;
                match yes_no(&normalize(&s)) {
                    Some(on) => self.pause |= on,
                    None => self.ignore_value(name, &s),
                }
            }
            "media-address" => {
                let s = text(name, v)?;
                match s.parse::<IpAddr>() {
                    Ok(a) => r.media_address = Some(a),
                    Err(_) => self.ignore_value(name, &s),
                }
            }
            "received-from" => self.received_from(name, v)?,
            "delete-delay" => {
                let n = int(name, v)?;
                match u32::try_from(n) {
                    Ok(n) => r.delete_delay = Some(n),
                    Err(_) => self.ignore_value(name, &n.to_string()),
                }
            }
            "tos" => r.tos = Some(Tos::from_int(int(name, v)?)),
            "sip-code" | "sip-response-code" => {
                let n = int(name, v)?;
                match u16::try_from(n) {
                    Ok(c) if (100..700).contains(&c) => r.sip_code = Some(c),
                    _ => self.ignore_value(name, &n.to_string()),
                }
            }
            "limit" => {
                let n = int(name, v)?;
                r.limit = Some(u32::try_from(n).map_err(|_| RequestError::InvalidValue {
                    key: name.to_owned(),
                    reason: "must be between 0 and 4294967295".into(),
                })?);
            }
            "all" => {
                let s = text(name, v)?;
                if normalize(&s) != "none" {
                    self.ignore_value(name, &s);
                }
            }
            "ptime" | "ptime-reverse" | "repacketize" => {
                int(name, v)?;
                self.ignore(format!("key \"{name}\" (needs transcoding)"));
            }
            "rtpp-flags" => {
                return Err(RequestError::NotSupported(
                    "rtpp-flags (flag parsing by the daemon)",
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies one entry of the `flags` list.
    fn flag(&mut self, s: &str) -> Result<(), RequestError> {
        let norm = normalize(s);
        if let Some(flag) = Flag::from_normalized(&norm) {
            self.req.flags.insert(flag);
            return Ok(());
        }
        match norm.as_str() {
            "record-call" => self.req.record_call = Some(true),
            "pad-crypto" => self.req.sdes.pad = true,
            "pause" => self.pause = true,
            "fragment" => self.fragment = true,
            "webrtc" => {
                let r = &mut self.req;
                r.transport = Some(Transport::Protocol(TransportProtocol::UdpTlsRtpSavpf));
                r.ice = Some(Ice::Force);
                r.rtcp_mux.extend([RtcpMux::Offer, RtcpMux::Require]);
                r.flags.extend([Flag::NoRtcpAttribute, Flag::GenerateMid]);
                r.sdes.off = true;
                self.ignore("flag \"trickle-ICE\" (part of WebRTC)".into());
            }
            _ => return self.prefixed_flag(s),
        }
        Ok(())
    }

    fn prefixed_flag(&mut self, s: &str) -> Result<(), RequestError> {
        let known = if let Some(rest) = strip_prefix_loose(s, "replace-") {
            self.replace(rest)
        } else if let Some(rest) = strip_prefix_loose(s, "rtcp-mux-") {
            self.rtcp_mux(rest)
        } else if let Some(rest) = strip_prefix_loose(s, "SDES-") {
            self.req.sdes.apply(rest)
        } else if let Some(rest) = strip_prefix_loose(s, "codec-strip-") {
            self.req.codec.strip.push(rest.to_owned());
            true
        } else if let Some(rest) = strip_prefix_loose(s, "codec-offer-") {
            self.req.codec.offer.push(rest.to_owned());
            true
        } else if let Some(rest) = strip_prefix_loose(s, "codec-except-") {
            self.req.codec.except.push(rest.to_owned());
            true
        } else if let Some(rest) = strip_prefix_loose(s, "from-tags-") {
            self.req.from_tags.push(rest.to_owned());
            true
        } else if let Some(p) = TransportProtocol::parse(s) {
            self.req.transport = Some(Transport::Protocol(p));
            true
        } else if let Some((k, val)) = s.split_once('=') {
            // `key=value` in the flags list, as Kamailio writes them in its scripts.
            let norm = normalize(k);
            norm != "flags" && self.key(k, &norm, &Value::string(val))?
        } else {
            false
        };
        if !known {
            self.ignore(format!("flag \"{}\"", quote(s)));
        }
        Ok(())
    }

    /// Applies `apply` to each item of a list-or-string key; unknown items are ignored.
    fn each(
        &mut self,
        name: &str,
        v: &Value,
        apply: impl Fn(&mut Parser, &str) -> bool,
    ) -> Result<(), RequestError> {
        for item in string_list(name, v)? {
            if !apply(self, &item) {
                self.ignore(format!("{name} \"{}\"", quote(&item)));
            }
        }
        Ok(())
    }

    fn enumerated<T>(
        &mut self,
        name: &str,
        v: &Value,
        parse: impl Fn(&str) -> Option<T>,
        set: impl FnOnce(&mut NgRequest, T),
    ) -> Result<(), RequestError> {
        let s = text(name, v)?;
        match parse(&normalize(&s)) {
            Some(x) => set(&mut self.req, x),
            None => self.ignore_value(name, &s),
        }
        Ok(())
    }

    fn ignore_value(&mut self, name: &str, value: &str) {
        self.ignore(format!("{name} \"{}\"", quote(value)));
    }

    fn replace(&mut self, s: &str) -> bool {
        Replace::from_normalized(&normalize(s))
            .map(|x| self.req.replace.insert(x))
            .is_some()
    }

    fn rtcp_mux(&mut self, s: &str) -> bool {
        RtcpMux::from_normalized(&normalize(s))
            .map(|x| self.req.rtcp_mux.insert(x))
            .is_some()
    }

    fn direction(&mut self, name: &str, v: &Value) -> Result<(), RequestError> {
        let Value::List(items) = v else {
            return Err(wrong_type(name, "list", v));
        };
        for (i, item) in items.iter().enumerate() {
            let s = text(&format!("{name}[{i}]"), item)?;
            match self.req.direction.get_mut(i) {
                Some(slot) => *slot = Some(s),
                None => self.ignore(format!("{name}[{i}] \"{}\"", quote(&s))),
            }
        }
        Ok(())
    }

    fn received_from(&mut self, name: &str, v: &Value) -> Result<(), RequestError> {
        let (family, address) = match v {
            Value::Bytes(_) => (None, text(name, v)?),
            Value::List(items) if items.len() == 2 => {
                let family = text(&format!("{name}[0]"), &items[0])?;
                let address = text(&format!("{name}[1]"), &items[1])?;
                (Some(family), address)
            }
            Value::List(items) => {
                return Err(RequestError::InvalidValue {
                    key: name.to_owned(),
                    reason: format!("expected [family, address], got {} items", items.len()),
                })
            }
            other => return Err(wrong_type(name, "list", other)),
        };
        let family = match family {
            None => None,
            Some(f) => match AddressFamily::from_normalized(&normalize(&f)) {
                Some(f) => Some(f),
                None => {
                    self.ignore_value(name, &format!("{f} {address}"));
                    return Ok(());
                }
            },
        };
        match address.parse::<IpAddr>() {
            Ok(address) => self.req.received_from = Some(ReceivedFrom { family, address }),
            Err(_) => self.ignore_value(name, &address),
        }
        Ok(())
    }

    fn codec(&mut self, name: &str, v: &Value) -> Result<(), RequestError> {
        let Value::Dict(entries) = v else {
            return Err(wrong_type(name, "dictionary", v));
        };
        for (k, sub) in entries {
            let op = String::from_utf8_lossy(k);
            let key = format!("{name}.{op}");
            let items = string_list(&key, sub)?;
            let list = match normalize(&op).as_str() {
                "strip" => &mut self.req.codec.strip,
                "offer" => &mut self.req.codec.offer,
                "except" => &mut self.req.codec.except,
                _ => {
                    for item in items {
                        self.ignore(format!("codec-{op} \"{}\"", quote(&item)));
                    }
                    continue;
                }
            };
            list.extend(items);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<NgRequest, RequestError> {
        if self.fragment {
            return Err(RequestError::NotSupported("trickle ICE SDP fragments"));
        }
        if self.pause {
            if self.req.command == Command::StopRecording {
                // `stop recording` with `pause` is rtpengine's `pause recording`.
                self.req.command = Command::Unsupported("pause recording".into());
                return Ok(self.req);
            }
            self.ignore("pause".into());
        }
        let r = &self.req;
        let required: &[RequiredKey] = match r.command {
            Command::Offer => &[RequiredKey::Sdp, RequiredKey::CallId, RequiredKey::FromTag],
            Command::Answer => &[
                RequiredKey::Sdp,
                RequiredKey::CallId,
                RequiredKey::FromTag,
                RequiredKey::ToTag,
            ],
            Command::Delete | Command::Query | Command::StartRecording | Command::StopRecording => {
                &[RequiredKey::CallId]
            }
            _ => &[],
        };
        for &key in required {
            let present = match key {
                RequiredKey::Sdp => r.sdp.is_some(),
                RequiredKey::CallId => r.call_id.as_deref().is_some_and(|s| !s.is_empty()),
                RequiredKey::FromTag => r.from_tag.as_deref().is_some_and(|s| !s.is_empty()),
                RequiredKey::ToTag => r.to_tag.as_deref().is_some_and(|s| !s.is_empty()),
            };
            if !present {
                return Err(RequestError::Missing(key));
            }
        }
        Ok(self.req)
    }
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" | "on" | "true" | "1" => Some(true),
        "no" | "off" | "false" | "0" => Some(false),
        _ => None,
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> RequestError {
    RequestError::WrongType {
        key: key.to_owned(),
        expected,
        found: found.type_name(),
    }
}

/// A UTF-8 string value.
fn text(key: &str, v: &Value) -> Result<String, RequestError> {
    match v {
        Value::Bytes(b) => {
            String::from_utf8(b.clone()).map_err(|_| RequestError::NotUtf8(key.to_owned()))
        }
        other => Err(wrong_type(key, "string", other)),
    }
}

/// An integer, or a string holding one.
fn int(key: &str, v: &Value) -> Result<i64, RequestError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bytes(_) => {
            let s = text(key, v)?;
            s.trim().parse().map_err(|_| RequestError::InvalidValue {
                key: key.to_owned(),
                reason: format!("\"{}\" is not an integer", quote(&s)),
            })
        }
        other => Err(wrong_type(key, "integer", other)),
    }
}

/// A list of strings, or one string of comma-separated items.
fn string_list(key: &str, v: &Value) -> Result<Vec<String>, RequestError> {
    match v {
        Value::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| text(&format!("{key}[{i}]"), item))
            .collect(),
        Value::Bytes(_) => Ok(text(key, v)?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        other => Err(wrong_type(key, "list", other)),
    }
}

/// `s`, cut to [`QUOTE_MAX`] characters.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}...", &s[..i]),
    }
}
