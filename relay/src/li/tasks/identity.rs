//! Normalisation of identities, so that a target and a call's identities compare equal
//! when they name the same subscriber:
//!
//! - SIP/SIPS URIs (also inside `Name <uri>;tag=…`): scheme sips≡sip, user part
//!   percent-decoded and compared exactly (RFC 3261 §19.1.4), host lower-cased, port,
//!   parameters and headers ignored. A user part that is a global number (`+…`, with or
//!   without `user=phone`) also yields that number.
//! - TEL URIs (RFC 3966): visual separators `-.()` and spaces removed; a global number
//!   becomes `+digits`; a local number keeps its `phone-context` (lower-cased).
//! - E.164 numbers: digits only, 1 to 15, written `+digits` (a leading `+` or `00` is
//!   accepted; separators are ignored).
//! - IMPI (NAI `user@realm`): user exact, realm lower-cased.

/// A normalised identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    Sip {
        user: String,
        host: String,
    },
    /// `+digits` for a global number, `digits;context` for a local one.
    Number(String),
    Impi {
        user: String,
        realm: String,
    },
}

fn strip_scheme<'a>(s: &'a str, scheme: &str) -> Option<&'a str> {
    let n = scheme.len();
    (s.len() > n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(scheme)).then(|| &s[n..])
}

/// The URI inside `"Name" <uri>;params`, or the string itself.
fn uri_part(s: &str) -> &str {
    let s = s.trim();
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_visual(c: char) -> bool {
    matches!(c, '-' | '.' | '(' | ')' | ' ')
}

/// `+digits` from a global number with visual separators, if it is one.
fn global_number(s: &str) -> Option<String> {
    let rest = s.strip_prefix('+')?;
    let digits: String = rest.chars().filter(|c| !is_visual(*c)).collect();
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|c| c.is_ascii_digit()))
        .then(|| format!("+{digits}"))
}

/// A SIP or SIPS URI.
pub(crate) fn sip_uri(raw: &str) -> Option<Vec<Key>> {
    let s = uri_part(raw);
    let rest = strip_scheme(s, "sips:").or_else(|| strip_scheme(s, "sip:"))?;
    let rest = rest.split('?').next().unwrap_or("");
    let mut parts = rest.split(';');
    let userhost = parts.next().unwrap_or("");
    let user_phone = parts.any(|p| p.trim().eq_ignore_ascii_case("user=phone"));
    let (user, hostport) = match userhost.rfind('@') {
        Some(i) => (&userhost[..i], &userhost[i + 1..]),
        None => ("", userhost),
    };
    let user = user.split(':').next().unwrap_or("");
    let user = percent_decode(user)?;
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        format!("[{}]", v6.split(']').next().unwrap_or(""))
    } else {
        hostport.split(':').next().unwrap_or("").to_string()
    };
    if host.is_empty() || host == "[]" || host.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    let mut keys = vec![Key::Sip {
        user: user.clone(),
        host: host.to_ascii_lowercase(),
    }];
    if let Some(n) = global_number(&user) {
        keys.push(Key::Number(n));
    } else if user_phone {
        let digits: String = user.chars().filter(|c| !is_visual(*c)).collect();
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            keys.push(Key::Number(format!(
                "{digits};{}",
                host.to_ascii_lowercase()
            )));
        }
    }
    Some(keys)
}

/// A TEL URI.
pub(crate) fn tel_uri(raw: &str) -> Option<Vec<Key>> {
    let s = uri_part(raw);
    let rest = strip_scheme(s, "tel:")?;
    let mut parts = rest.split(';');
    let number = parts.next().unwrap_or("");
    if let Some(n) = global_number(number) {
        return Some(vec![Key::Number(n)]);
    }
    let digits: String = number.chars().filter(|c| !is_visual(*c)).collect();
    if digits.is_empty()
        || !digits
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b'*' || c == b'#')
    {
        return None;
    }
    let context = parts.find_map(|p| {
        let p = p.trim();
        strip_scheme(p, "phone-context=").map(str::to_ascii_lowercase)
    })?;
    Some(vec![Key::Number(format!(
        "{};{context}",
        digits.to_ascii_lowercase()
    ))])
}

/// An E.164 number.
pub(crate) fn e164(raw: &str) -> Option<Vec<Key>> {
    let s = raw.trim();
    let s = s
        .strip_prefix('+')
        .or_else(|| s.strip_prefix("00"))
        .unwrap_or(s);
    let digits: String = s.chars().filter(|c| !is_visual(*c)).collect();
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|c| c.is_ascii_digit()))
        .then(|| vec![Key::Number(format!("+{digits}"))])
}

/// An IMPI (`user@realm`).
pub(crate) fn impi(raw: &str) -> Option<Vec<Key>> {
    let s = raw.trim();
    let i = s.rfind('@')?;
    let (user, realm) = (&s[..i], &s[i + 1..]);
    if user.is_empty() || realm.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '<') {
        return None;
    }
    Some(vec![Key::Impi {
        user: user.to_string(),
        realm: realm.to_ascii_lowercase(),
    }])
}

/// An IMPU: a SIP or TEL URI.
pub(crate) fn impu(raw: &str) -> Option<Vec<Key>> {
    sip_uri(raw).or_else(|| tel_uri(raw))
}

/// Every key a call identity (from a header, the Request-URI, the authenticated user or
/// the ng protocol) can stand for. Unparseable input yields nothing.
pub(crate) fn call_identity(raw: &str) -> Vec<Key> {
    if raw.len() > 2048 {
        return Vec::new();
    }
    let u = uri_part(raw);
    if let Some(k) = sip_uri(u).or_else(|| tel_uri(u)) {
        return k;
    }
    if u.contains('@') {
        return impi(u).unwrap_or_default();
    }
    let t = u.trim();
    if t.starts_with('+') {
        return e164(t).unwrap_or_default();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(user: &str, host: &str) -> Key {
        Key::Sip {
            user: user.into(),
            host: host.into(),
        }
    }
    fn num(n: &str) -> Key {
        Key::Number(n.into())
    }

    #[test]
    fn sip_uris_normalise() {
        for raw in [
            "sip:alice@example.com",
            "SIPS:alice@EXAMPLE.com:5061",
            "\"Alice\" <sip:alice@example.com;transport=tcp>;tag=1234",
            "<sip:al%69ce@example.com?subject=x>",
            "sip:alice:secret@example.com",
        ] {
            assert_eq!(
                sip_uri(raw),
                Some(vec![sip("alice", "example.com")]),
                "{raw}"
            );
        }
        // The user part is case-sensitive.
        assert_ne!(
            sip_uri("sip:Alice@example.com"),
            sip_uri("sip:alice@example.com")
        );
        assert_eq!(
            sip_uri("sip:[2001:DB8::1]:5060"),
            Some(vec![sip("", "[2001:db8::1]")])
        );
        assert_eq!(
            sip_uri("sip:+49-30-1234@ims.example;user=phone"),
            Some(vec![sip("+49-30-1234", "ims.example"), num("+49301234")])
        );
        assert_eq!(
            sip_uri("sip:1234@pbx.example;user=phone"),
            Some(vec![sip("1234", "pbx.example"), num("1234;pbx.example")])
        );
        for bad in [
            "sip:",
            "sip:@",
            "alice@example.com",
            "sip:a%zz@x",
            "tel:+1",
            "sip:a@ b",
        ] {
            assert_eq!(sip_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn tel_uris_and_numbers_normalise() {
        assert_eq!(
            tel_uri("tel:+1-201-555-0123"),
            Some(vec![num("+12015550123")])
        );
        assert_eq!(
            tel_uri("<tel:+1(201)555.0123;ext=1>"),
            Some(vec![num("+12015550123")])
        );
        assert_eq!(
            tel_uri("tel:7042;phone-context=Example.COM"),
            Some(vec![num("7042;example.com")])
        );
        assert_eq!(tel_uri("tel:7042"), None, "local number without context");
        assert_eq!(tel_uri("tel:+"), None);
        assert_eq!(e164("+49 30 1234"), Some(vec![num("+49301234")]));
        assert_eq!(e164("004930-1234"), Some(vec![num("+49301234")]));
        assert_eq!(e164("49301234"), Some(vec![num("+49301234")]));
        assert_eq!(e164("+1234567890123456"), None, "16 digits");
        assert_eq!(e164("+49x"), None);
        assert_eq!(e164(""), None);
    }

    #[test]
    fn impi_and_call_identities() {
        assert_eq!(
            impi("alice@IMS.Example"),
            Some(vec![Key::Impi {
                user: "alice".into(),
                realm: "ims.example".into()
            }])
        );
        assert_eq!(impi("alice"), None);
        assert_eq!(impi("@x"), None);
        assert_eq!(
            call_identity("alice@ims.example"),
            impi("alice@ims.example").unwrap()
        );
        assert_eq!(call_identity("+49 30 1234"), vec![num("+49301234")]);
        assert_eq!(call_identity("Bob <tel:+49301234>"), vec![num("+49301234")]);
        assert_eq!(call_identity("garbage"), Vec::<Key>::new());
        assert_eq!(call_identity(&"x".repeat(5000)), Vec::<Key>::new());
        // Multi-byte input never panics.
        for s in ["sé:", "sïp:a@b", "<>", "><", "tel:é;phone-context=é", "€@€"] {
            let _ = call_identity(s);
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_identity_is_handled_without_panic(s in ".{0,80}") {
            let _ = call_identity(&s);
            let _ = sip_uri(&s);
            let _ = tel_uri(&s);
            let _ = e164(&s);
            let _ = impi(&s);
        }

        #[test]
        fn uri_shaped_identities_without_panic(
            scheme in "(sip|sips|tel|SIP):",
            rest in "[a-zA-Z0-9@:;=+%<>\\[\\]. -]{0,40}",
        ) {
            let _ = call_identity(&format!("{scheme}{rest}"));
            let _ = call_identity(&format!("\"x\" <{scheme}{rest}>;tag=1"));
        }
    }
}
