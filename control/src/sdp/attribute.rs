//! `a=` lines: the generic attribute, lookups by name, and the accessors shared by the
//! session and media levels.

use std::fmt;

/// An `a=name` or `a=name:value` line. Both parts are kept exactly as written.
///
/// Names are compared without regard to ASCII case everywhere in this module, so that a
/// peer cannot slip an `a=CRYPTO` line past code that strips `crypto`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    /// `a=name:value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A property attribute without a value, `a=name`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// Splits the text after `a=` at its first ':'.
    pub fn parse(text: &str) -> Self {
        match text.split_once(':') {
            Some((name, value)) => Attribute::new(name, value),
            None => Attribute::flag(text),
        }
    }

    /// Whether this attribute is called `name` (ASCII case-insensitive).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value, or "" for a property attribute.
    pub fn value_str(&self) -> &str {
        self.value.as_deref().unwrap_or("")
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) if self.is("crypto") => {
                write!(f, "Attribute({}:{:?})", self.name, redact_inline_keys(v))
            }
            Some(v) => write!(f, "Attribute({}:{:?})", self.name, v),
            None => write!(f, "Attribute({})", self.name),
        }
    }
}

/// `v` with the key-salt of every `inline:` key parameter replaced, for logs.
pub(crate) fn redact_inline_keys(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(at) = rest.find("inline:") {
        let (before, after) = rest.split_at(at + "inline:".len());
        out.push_str(before);
        out.push_str("<redacted>");
        let end = after
            .find(|c: char| c == '|' || c == ';' || c.is_ascii_whitespace())
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The first attribute called `name`.
pub(crate) fn find<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.is(name))
}

/// Removes every attribute whose name is in `names`, then inserts `new` where the first of
/// them was (at the end when there was none). Returns how many were removed.
pub(crate) fn replace_all(
    attrs: &mut Vec<Attribute>,
    names: &[&str],
    new: impl IntoIterator<Item = Attribute>,
) -> usize {
    let matches = |a: &Attribute| names.iter().any(|n| a.is(n));
    let at = attrs.iter().position(matches).unwrap_or(attrs.len());
    let before = attrs.len();
    attrs.retain(|a| !matches(a));
    let removed = before - attrs.len();
    let tail = attrs.split_off(at);
    attrs.extend(new);
    attrs.extend(tail);
    removed
}

/// Attribute names of ICE (RFC 8839, RFC 8840): what a relay strips to hide a peer's ICE.
pub const ICE_ATTRIBUTES: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "ice-lite",
    "ice-options",
    "ice-mismatch",
    "ice-pacing",
    "candidate",
    "remote-candidates",
    "end-of-candidates",
];

/// Attribute names of DTLS-SRTP (RFC 8122, RFC 4145, RFC 8842).
pub const DTLS_ATTRIBUTES: &[&str] = &["fingerprint", "setup", "tls-id", "connection"];

/// The methods that session and media level share: both hold `attributes: Vec<Attribute>`.
macro_rules! shared_attribute_methods {
    () => {
        /// The first attribute called `name` (ASCII case-insensitive).
        pub fn attribute(&self, name: &str) -> Option<&$crate::sdp::Attribute> {
            $crate::sdp::attribute::find(&self.attributes, name)
        }

        /// The value of the first attribute called `name` ("" for a property attribute).
        pub fn attribute_value(&self, name: &str) -> Option<&str> {
            self.attribute(name).map($crate::sdp::Attribute::value_str)
        }

        /// Every attribute called `name`, in order.
        pub fn attributes_named<'a>(
            &'a self,
            name: &'a str,
        ) -> impl Iterator<Item = &'a $crate::sdp::Attribute> + 'a {
            self.attributes.iter().filter(move |a| a.is(name))
        }

        pub fn has_attribute(&self, name: &str) -> bool {
            self.attribute(name).is_some()
        }

        /// Appends an attribute after the existing ones.
        pub fn add_attribute(&mut self, attribute: $crate::sdp::Attribute) {
            self.attributes.push(attribute);
        }

        /// Replaces every attribute of the same name with `attribute`, in the place of the
        /// first one (appended when there was none).
        pub fn set_attribute(&mut self, attribute: $crate::sdp::Attribute) {
            let name = attribute.name.clone();
            $crate::sdp::attribute::replace_all(&mut self.attributes, &[&name], [attribute]);
        }

        /// Removes every attribute called `name`; returns how many there were.
        pub fn remove_attributes(&mut self, name: &str) -> usize {
            $crate::sdp::attribute::replace_all(&mut self.attributes, &[name], [])
        }

        /// Removes every attribute whose name is in `names`; returns how many there were.
        pub fn remove_attributes_in(&mut self, names: &[&str]) -> usize {
            $crate::sdp::attribute::replace_all(&mut self.attributes, names, [])
        }

        /// Removes the ICE attributes ([`ICE_ATTRIBUTES`](crate::sdp::ICE_ATTRIBUTES)).
        pub fn remove_ice(&mut self) -> usize {
            self.remove_attributes_in($crate::sdp::ICE_ATTRIBUTES)
        }

        /// Removes the DTLS attributes ([`DTLS_ATTRIBUTES`](crate::sdp::DTLS_ATTRIBUTES)).
        pub fn remove_dtls(&mut self) -> usize {
            self.remove_attributes_in($crate::sdp::DTLS_ATTRIBUTES)
        }

        /// The direction given at this level, if any (the first of several).
        pub fn direction(&self) -> Option<$crate::sdp::Direction> {
            self.attributes
                .iter()
                .find_map(|a| $crate::sdp::Direction::parse(&a.name))
        }

        /// Replaces the direction attributes at this level with `direction`.
        pub fn set_direction(&mut self, direction: $crate::sdp::Direction) {
            $crate::sdp::attribute::replace_all(
                &mut self.attributes,
                $crate::sdp::Direction::NAMES,
                [$crate::sdp::Attribute::flag(direction.as_str())],
            );
        }

        /// The `a=fingerprint` attributes at this level (RFC 8122).
        pub fn fingerprints(
            &self,
        ) -> Result<Vec<$crate::sdp::Fingerprint>, $crate::sdp::AttrError> {
            self.attributes_named("fingerprint")
                .map(|a| $crate::sdp::Fingerprint::parse(a.value_str()))
                .collect()
        }

        /// The `a=setup` role at this level (RFC 4145).
        pub fn setup(&self) -> Result<Option<$crate::sdp::Setup>, $crate::sdp::AttrError> {
            self.attribute("setup")
                .map(|a| $crate::sdp::Setup::parse(a.value_str()))
                .transpose()
        }

        /// Replaces the `a=setup` attributes with `setup`.
        pub fn set_setup(&mut self, setup: $crate::sdp::Setup) {
            self.set_attribute($crate::sdp::Attribute::new("setup", setup.as_str()));
        }

        /// `a=ice-ufrag` at this level.
        pub fn ice_ufrag(&self) -> Option<&str> {
            self.attribute_value("ice-ufrag")
        }

        /// `a=ice-pwd` at this level.
        pub fn ice_pwd(&self) -> Option<&str> {
            self.attribute_value("ice-pwd")
        }

        /// The tokens of every `a=ice-options` at this level.
        pub fn ice_options(&self) -> Vec<&str> {
            self.attributes_named("ice-options")
                .flat_map(|a| a.value_str().split_ascii_whitespace())
                .collect()
        }

        /// The kept lines of type `kind` at this level (e.g. `'b'`).
        pub fn lines_of(&self, kind: char) -> impl Iterator<Item = &$crate::sdp::Line> + '_ {
            self.lines.iter().filter(move |l| l.kind == kind)
        }

        /// Removes the kept lines of type `kind`; returns how many there were. A relay
        /// removes `'k'` lines: the obsolete `k=` carries keys in the clear.
        pub fn remove_lines(&mut self, kind: char) -> usize {
            let before = self.lines.len();
            self.lines.retain(|l| l.kind != kind);
            before - self.lines.len()
        }

        /// The `b=<bwtype>:<bandwidth>` value for `bwtype` (e.g. "AS"), in its unit.
        pub fn bandwidth(&self, bwtype: &str) -> Option<u64> {
            self.lines_of('b').find_map(|l| {
                let (t, v) = l.value.split_once(':')?;
                t.eq_ignore_ascii_case(bwtype)
                    .then(|| $crate::sdp::fields::digits(v.trim()))
                    .flatten()
            })
        }
    };
}

pub(crate) use shared_attribute_methods;
