//! Whose mailbox a call to the fixed voicemail URI is for: the user the call was diverted
//! from, read from the Request-URI's `target` parameter (RFC 4458), else the last
//! retargeting with a cause in History-Info (RFC 7044), else the most recent Diversion
//! entry (RFC 5806). Pure functions over a parsed request; anything unreadable is skipped.

use super::super::header::{split_list, NameAddr};
use super::super::message::Message;
use super::super::uri::{unescape, Uri};

/// The user part of a URI written in a header parameter (`target=sip:bob%40example.org`).
fn user_of_escaped(value: &str) -> Option<String> {
    let text = unescape(value.trim_matches('"'));
    Uri::parse(&text).ok()?.user().filter(|u| !u.is_empty())
}

/// RFC 4458: `sip:voicemail@vm.example.org;target=sip:bob%40example.org;cause=486`.
fn target_param(uri: &Uri) -> Option<String> {
    user_of_escaped(uri.sip()?.params.get("target")?)
}

/// One History-Info entry: its index and the URI it was targeted to.
struct HiEntry {
    index: Option<String>,
    /// `mp`: the index of the entry this one was retargeted from (RFC 7044 10.2).
    mp: Option<String>,
    uri: Uri,
}

fn history_info(req: &Message) -> Vec<HiEntry> {
    let mut out = Vec::new();
    for h in req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("history-info"))
    {
        let Ok(items) = split_list(&h.value) else {
            continue;
        };
        for item in items {
            let Ok(na) = NameAddr::parse(item) else {
                continue;
            };
            out.push(HiEntry {
                index: na.params.get("index").map(str::to_string),
                mp: na.params.get("mp").map(str::to_string),
                uri: na.uri,
            });
        }
    }
    out
}

/// RFC 7044: the last entry whose targeted-to URI carries a `cause` was retargeted to
/// because of a diversion; the user diverted from is its `target`, else the entry its
/// `mp` names, else its parent index (`1.1.1` → `1.1`), else the entry before it.
fn from_history_info(req: &Message) -> Option<String> {
    let entries = history_info(req);
    let last = entries
        .iter()
        .rposition(|e| e.uri.sip().is_some_and(|u| u.params.has("cause")))?;
    let e = &entries[last];
    if let Some(u) = target_param(&e.uri) {
        return Some(u);
    }
    let parent = e.mp.clone().or_else(|| {
        e.index
            .as_deref()
            .and_then(|i| i.rsplit_once('.').map(|(p, _)| p.to_string()))
    });
    let from = parent
        .and_then(|p| {
            entries[..last]
                .iter()
                .rev()
                .find(|o| o.index.as_deref() == Some(p.as_str()))
        })
        .or_else(|| last.checked_sub(1).map(|i| &entries[i]))?;
    from.uri.user().filter(|u| !u.is_empty())
}

/// RFC 5806: each diverting proxy adds its entry at the top, so the first is the latest.
fn from_diversion(req: &Message) -> Option<String> {
    req.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("diversion"))
        .filter_map(|h| split_list(&h.value).ok())
        .flatten()
        .find_map(|item| NameAddr::parse(item).ok()?.uri.user())
        .filter(|u| !u.is_empty())
}

/// The user a call to the fixed voicemail URI was diverted from, if the request says.
pub(super) fn diverting_user(req: &Message, ruri: &Uri) -> Option<String> {
    target_param(ruri)
        .or_else(|| from_history_info(req))
        .or_else(|| from_diversion(req))
}

/// The caller's own user: the authenticated user, else P-Asserted-Identity, else From.
pub(super) fn caller_user(req: &Message, auth_user: Option<&str>) -> Option<String> {
    if let Some(u) = auth_user {
        return Some(u.to_string());
    }
    let pai = req
        .get_all("p-asserted-identity")
        .ok()
        .into_iter()
        .flatten()
        .find_map(|v| NameAddr::parse(v).ok()?.uri.user());
    pai.or_else(|| req.from().ok()?.uri.user())
        .filter(|u| !u.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str, ruri: &str) -> (Message, Uri) {
        let text = format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK1\r\n\
             From: <sip:alice@example.org>;tag=a\r\nTo: <{ruri}>\r\nCall-ID: c\r\n\
             CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        let m = Message::parse(text.as_bytes()).unwrap();
        (m, Uri::parse(ruri).unwrap())
    }

    #[test]
    fn rfc4458_target_parameter() {
        let (m, u) = req(
            "",
            "sip:voicemail@vm.example.org;target=sip:bob%40example.org;cause=486",
        );
        assert_eq!(diverting_user(&m, &u).as_deref(), Some("bob"));
    }

    #[test]
    fn history_info_with_cause() {
        // RFC 7044 style: alice calls bob, bob's proxy retargets to voicemail on busy.
        let (m, u) = req(
            "History-Info: <sip:bob@example.org>;index=1,\r\n \
             <sip:bob@192.0.2.4>;index=1.1;rc=1\r\n\
             History-Info: <sip:voicemail@example.org;cause=486>;index=1.2;mp=1\r\n",
            "sip:voicemail@example.org",
        );
        assert_eq!(diverting_user(&m, &u).as_deref(), Some("bob"));
        // Two diversions (bob to carol, carol to voicemail): the last diverting user.
        let (m, u) = req(
            "History-Info: <sip:bob@example.org>;index=1, \
             <sip:carol@example.org;cause=302>;index=1.1;mp=1, \
             <sip:voicemail@example.org;cause=408>;index=1.1.1\r\n",
            "sip:voicemail@example.org",
        );
        assert_eq!(diverting_user(&m, &u).as_deref(), Some("carol"));
        // Without a cause it is no diversion.
        let (m, u) = req(
            "History-Info: <sip:bob@example.org>;index=1, <sip:voicemail@example.org>;index=1.1\r\n",
            "sip:voicemail@example.org",
        );
        assert_eq!(diverting_user(&m, &u), None);
    }

    #[test]
    fn diversion_header_latest_first() {
        let (m, u) = req(
            "Diversion: <sip:carol@example.org>;reason=no-answer;counter=1, \
             <sip:bob@example.org>;reason=user-busy\r\n",
            "sip:voicemail@example.org",
        );
        assert_eq!(diverting_user(&m, &u).as_deref(), Some("carol"));
    }

    #[test]
    fn garbage_is_skipped_and_caller_is_last() {
        let (m, u) = req(
            "History-Info: <<<,>>;;\r\nDiversion: not a uri\r\n",
            "sip:voicemail@example.org",
        );
        assert_eq!(diverting_user(&m, &u), None);
        assert_eq!(caller_user(&m, None).as_deref(), Some("alice"));
        assert_eq!(caller_user(&m, Some("dave")).as_deref(), Some("dave"));
        let (m, _) = req(
            "P-Asserted-Identity: <sip:erin@example.org>\r\n",
            "sip:voicemail@example.org",
        );
        assert_eq!(caller_user(&m, None).as_deref(), Some("erin"));
    }
}
