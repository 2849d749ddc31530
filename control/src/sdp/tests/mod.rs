//! Unit tests of the SDP module: RFC examples, edits, errors.

mod edits;
mod errors;
mod rfc;

use super::SessionDescription;

/// Joins lines with CRLF, ending with one.
fn crlf(lines: &[&str]) -> String {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s
}

/// Parses `lines` strictly, checks that writing gives them back byte for byte and that
/// reading the output again gives an equal description.
fn round_trip(lines: &[&str]) -> SessionDescription {
    let text = crlf(lines);
    let sdp = SessionDescription::parse_strict(&text).unwrap();
    assert_eq!(sdp.to_string(), text);
    assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
    // LF-only input gives the same description.
    let lf = lines.join("\n");
    assert_eq!(SessionDescription::parse(&lf).unwrap(), sdp);
    sdp
}
