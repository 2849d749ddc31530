//! `[voicemail] record-users`: the per-user recording policy. An entry is a user name
//! (`alice`: any identity of the call whose user part is `alice`, at any host), a SIP URI
//! (`sip:carol@example.org`: that user at that host; host compared without case, port and
//! parameters ignored) or a number (`+4930123`, `tel:+4930123`). A call is recorded when any
//! of its identities names a listed user, on either side: From, P-Asserted-Identity and the
//! authenticated user (by the user), To and Request-URI (to the user), as the SIP edge keeps
//! them; for ng calls, the identities in `metadata` and the `label`s.

use crate::call::Call;
use crate::li_admin::identities;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    user: String,
    host: Option<String>,
}

/// The users whose calls are recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordUsers(Vec<Entry>);

/// The URI inside `"Name" <uri>;params`, or the string itself.
fn uri_part(s: &str) -> &str {
    let s = s.trim();
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    let n = p.len();
    (s.len() >= n && s.is_char_boundary(n) && s[..n].eq_ignore_ascii_case(p)).then(|| &s[n..])
}

/// The user part and host of an identity (`sip:`/`sips:`/`tel:` URI, `user@host`, or a
/// bare user); `None` when it names no user.
fn user_host(identity: &str) -> Option<Entry> {
    let s = uri_part(identity);
    let rest = strip_prefix_ci(s, "sips:")
        .or_else(|| strip_prefix_ci(s, "sip:"))
        .or_else(|| strip_prefix_ci(s, "tel:"))
        .unwrap_or(s);
    let rest = rest.split(['?', ';']).next().unwrap_or("");
    let (user, host) = match rest.rsplit_once('@') {
        Some((u, h)) => {
            // Without the port (and the brackets of an IPv6 address).
            let h = match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => h.split(':').next().unwrap_or(""),
            };
            (u, Some(h.to_ascii_lowercase()))
        }
        None => (rest, None),
    };
    let user = user.trim();
    (!user.is_empty() && !user.contains(char::is_whitespace)).then(|| Entry {
        user: user.to_string(),
        host: host.filter(|h| !h.is_empty()),
    })
}

impl RecordUsers {
    /// The configured list; an entry that names no user is refused.
    pub fn parse(list: &[String]) -> Result<RecordUsers, String> {
        list.iter()
            .map(|e| user_host(e).ok_or_else(|| format!("record-users entry {e:?} names no user")))
            .collect::<Result<Vec<_>, _>>()
            .map(RecordUsers)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `identity` names a listed user.
    pub fn matches(&self, identity: &str) -> bool {
        let Some(id) = user_host(identity) else {
            return false;
        };
        self.0.iter().any(|e| {
            e.user == id.user
                && e.host
                    .as_deref()
                    .is_none_or(|h| id.host.as_deref() == Some(h))
        })
    }

    /// Whether the call is by or to a listed user.
    pub fn covers(&self, call: &Call) -> bool {
        !self.is_empty() && identities(call).0.iter().any(|(_, s)| self.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(l: &[&str]) -> RecordUsers {
        RecordUsers::parse(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn users_hosts_and_numbers() {
        let u = users(&["alice", "sip:carol@Example.org", "tel:+4930123"]);
        assert!(u.matches("\"Alice\" <sip:alice@127.0.0.1:5071>;tag=x"));
        assert!(u.matches("sips:alice@other.example"));
        assert!(u.matches("alice"));
        assert!(!u.matches("sip:alicia@127.0.0.1"));
        assert!(
            !u.matches("sip:Alice@127.0.0.1"),
            "user parts compare exactly"
        );
        assert!(u.matches("<sip:carol@EXAMPLE.ORG;transport=tcp>"));
        assert!(!u.matches("sip:carol@example.net"));
        assert!(u.matches("<sip:+4930123@example.net;user=phone>"));
        assert!(u.matches("tel:+4930123"));
        assert!(!u.matches(""));
        assert!(!u.matches("<>"));
    }

    #[test]
    fn entries_without_a_user_are_refused() {
        for bad in ["", "sip:@example.org", "  ", "<sip:>"] {
            assert!(RecordUsers::parse(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(RecordUsers::default().is_empty());
    }
}
