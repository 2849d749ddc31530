//! The SDP in a message body: `application/sdp`, or one part of a `multipart/mixed` (or
//! `multipart/alternative`, `multipart/related`) body (RFC 5621). Other parts are kept.

use super::header::{unquote, Params};
use super::message::Message;

/// The SDP of a message, if its body holds one.
pub fn sdp(msg: &Message) -> Option<Vec<u8>> {
    if msg.body.is_empty() {
        return None;
    }
    let ct = msg
        .content_type()
        .unwrap_or_else(|| "application/sdp".into());
    if ct == "application/sdp" {
        return Some(msg.body.clone());
    }
    if ct.starts_with("multipart/") {
        let boundary = boundary(msg)?;
        let parts = split_parts(&msg.body, &boundary)?;
        return parts
            .into_iter()
            .find(|p| p.is_sdp())
            .map(|p| p.body.to_vec());
    }
    None
}

/// Replaces the SDP of a message (the whole body, or its SDP part).
pub fn replace_sdp(msg: &mut Message, new: Vec<u8>) {
    let ct = msg.content_type().unwrap_or_default();
    if ct.starts_with("multipart/") {
        if let Some(b) = boundary(msg) {
            if let Some(parts) = split_parts(&msg.body, &b) {
                let mut out = Vec::new();
                for p in &parts {
                    out.extend_from_slice(format!("--{b}\r\n").as_bytes());
                    out.extend_from_slice(p.head.as_bytes());
                    out.extend_from_slice(b"\r\n\r\n");
                    if p.is_sdp() {
                        out.extend_from_slice(&new);
                    } else {
                        out.extend_from_slice(p.body);
                    }
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("--{b}--\r\n").as_bytes());
                msg.body = out;
                return;
            }
        }
    }
    msg.set_body(Some("application/sdp"), new);
}

fn boundary(msg: &Message) -> Option<String> {
    let ct = msg.get("content-type")?;
    let params = Params::parse(ct.split_once(';')?.1).ok()?;
    let b = unquote(params.get("boundary")?);
    (!b.is_empty()).then_some(b)
}

struct Part<'a> {
    head: String,
    body: &'a [u8],
}

impl Part<'_> {
    fn is_sdp(&self) -> bool {
        self.head.lines().any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("content-type")
                    && v.trim().to_ascii_lowercase().starts_with("application/sdp")
            })
        })
    }
}

fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if &body[i..i + d.len()] == d && (i == 0 || body[i - 1] == b'\n') {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    let mut parts = Vec::new();
    for w in starts.windows(2) {
        let mut seg = &body[w[0] + d.len()..w[1]];
        seg = seg
            .strip_prefix(b"\r\n")
            .or_else(|| seg.strip_prefix(b"\n"))
            .unwrap_or(seg);
        seg = seg
            .strip_suffix(b"\r\n")
            .or_else(|| seg.strip_suffix(b"\n"))
            .unwrap_or(seg);
        let (head, body) = match seg.windows(4).position(|x| x == b"\r\n\r\n") {
            Some(p) => (&seg[..p], &seg[p + 4..]),
            None if seg.starts_with(b"\r\n") => (&seg[..0], &seg[2..]),
            None => return None,
        };
        parts.push(Part {
            head: std::str::from_utf8(head).ok()?.to_string(),
            body,
        });
    }
    (!parts.is_empty()).then_some(parts)
}
