//! The resources of the voicemail API, who may do what with them, and the answers, apart
//! from any socket: a request line and an authenticated caller in, a [`Reply`] out.
//!
//! ```text
//! GET    /v1/mailboxes                          admin: all; owner: their own
//! GET    /v1/mailboxes/{id}                     admin, owner
//! PUT    /v1/mailboxes/{id}                     admin: create (201) or replace (200)
//! DELETE /v1/mailboxes/{id}[?delete-messages=true]   admin
//! PUT    /v1/mailboxes/{id}/public-key          admin, owner (key rotation)
//! GET    /v1/mailboxes/{id}/messages            admin, owner
//! GET    /v1/mailboxes/{id}/messages/{msg}      admin, owner: the sealed file as stored
//! DELETE /v1/mailboxes/{id}/messages/{msg}      admin, owner
//! ```

use std::fs::File;
use std::sync::Mutex;

use relay::record::RecordingId;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::voicemail::config::owner_user;
use crate::voicemail::{
    list_messages, Mailbox, MailboxId, MailboxStore, MessageEntry, VoicemailError,
};

/// Who made the request, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Admin,
    /// A SIP user; owns the mailboxes whose owner's user part is this name.
    Owner(String),
}

/// A request the router understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    List,
    Get(MailboxId),
    Put(MailboxId),
    Delete { id: MailboxId, messages: bool },
    PutKey(MailboxId),
    Messages(MailboxId),
    Download(MailboxId, RecordingId),
    DeleteMessage(MailboxId, RecordingId),
}

impl Route {
    /// Whether the route takes a JSON body.
    pub fn has_body(&self) -> bool {
        matches!(self, Route::Put(_) | Route::PutKey(_))
    }

    /// A word for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Route::List => "list_mailboxes",
            Route::Get(_) => "get_mailbox",
            Route::Put(_) => "put_mailbox",
            Route::Delete { .. } => "delete_mailbox",
            Route::PutKey(_) => "put_public_key",
            Route::Messages(_) => "list_messages",
            Route::Download(..) => "download_message",
            Route::DeleteMessage(..) => "delete_message",
        }
    }
}

/// What to send back.
pub enum Reply {
    Json {
        status: u16,
        /// Further header lines, each ending in CRLF.
        extra: &'static str,
        body: Value,
    },
    /// A message file, to be streamed as it is.
    File { file: File, size: u64, name: String },
}

impl Reply {
    pub fn status(&self) -> u16 {
        match self {
            Reply::Json { status, .. } => *status,
            Reply::File { .. } => 200,
        }
    }
}

pub fn error(status: u16, message: impl Into<String>) -> Reply {
    error_with(status, "", message)
}

fn error_with(status: u16, extra: &'static str, message: impl Into<String>) -> Reply {
    Reply::Json {
        status,
        extra,
        body: json!({ "error": message.into() }),
    }
}

fn ok(status: u16, body: Value) -> Reply {
    Reply::Json {
        status,
        extra: "",
        body,
    }
}

/// Maps a method and target to a route: 404 for unknown paths, 405 (with `Allow`) for a
/// method the resource does not have, 400 for a bad id or query.
pub fn route(method: &str, path: &str, query: Option<&str>) -> Result<Route, Reply> {
    let Some(rest) = path.strip_prefix("/v1/mailboxes") else {
        return Err(error(
            404,
            "no such resource; the API lives under /v1/mailboxes",
        ));
    };
    let segs: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else if let Some(r) = rest.strip_prefix('/') {
        r.split('/').collect()
    } else {
        return Err(error(404, "no such resource"));
    };
    let allow: &'static str = match segs.as_slice() {
        [] => "Allow: GET\r\n",
        [_] => "Allow: GET, PUT, DELETE\r\n",
        [_, "public-key"] => "Allow: PUT\r\n",
        [_, "messages"] => "Allow: GET\r\n",
        [_, "messages", _] => "Allow: GET, DELETE\r\n",
        _ => return Err(error(404, "no such resource")),
    };
    let id = |s: &str| {
        MailboxId::parse(s)
            .map_err(|_| error(400, format!("bad mailbox id: {}", VoicemailError::BadId)))
    };
    let msg = |s: &str| {
        RecordingId::parse(s).ok_or_else(|| error(400, "bad message id: 32 hex digits expected"))
    };
    let mut delete_messages = None;
    if let Some(q) = query {
        let flag = match (method, segs.as_slice(), q) {
            ("DELETE", [_], "delete-messages=true") => true,
            ("DELETE", [_], "delete-messages=false") => false,
            ("DELETE", [_], _) => {
                return Err(error(400, "the only query is delete-messages=true|false"))
            }
            _ => return Err(error(400, "this resource takes no query")),
        };
        delete_messages = Some(flag);
    }
    let r = match (method, segs.as_slice()) {
        ("GET", []) => Route::List,
        ("GET", [m]) => Route::Get(id(m)?),
        ("PUT", [m]) => Route::Put(id(m)?),
        ("DELETE", [m]) => Route::Delete {
            id: id(m)?,
            messages: delete_messages.unwrap_or(false),
        },
        ("PUT", [m, "public-key"]) => Route::PutKey(id(m)?),
        ("GET", [m, "messages"]) => Route::Messages(id(m)?),
        ("GET", [m, "messages", r]) => Route::Download(id(m)?, msg(r)?),
        ("DELETE", [m, "messages", r]) => Route::DeleteMessage(id(m)?, msg(r)?),
        _ => {
            return Err(error_with(
                405,
                allow,
                format!("{method} is not allowed here"),
            ))
        }
    };
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutMailbox {
    owner: String,
    public_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutKey {
    public_key: String,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Reply> {
    serde_json::from_slice(body)
        .map_err(|e| error(400, format!("body is not the expected JSON: {e}")))
}

fn store_error(e: VoicemailError) -> Reply {
    match e {
        VoicemailError::BadId | VoicemailError::BadOwner | VoicemailError::BadKey(_) => {
            error(400, e.to_string())
        }
        VoicemailError::Exists(_) => error(409, e.to_string()),
        VoicemailError::NoMailbox(_) | VoicemailError::NoMessage(_) => error(404, e.to_string()),
        VoicemailError::Damaged(_) | VoicemailError::Io(_) => {
            tracing::warn!(target: "srtpgate::vm_audit", error = %e, "voicemail API: storage error");
            error(500, "storage error; see the relay's log")
        }
    }
}

fn mailbox_json(m: &Mailbox) -> Value {
    json!({"id": m.id.as_str(), "owner": m.owner, "public_key": m.public_key.to_base64()})
}

fn message_json(m: &MessageEntry) -> Value {
    let end = m.end.as_ref();
    json!({
        "id": m.recording_id.to_string(),
        "start": m.start_unix_nanos.map(rfc3339),
        "end": end.map(|e| rfc3339(e.end_unix_nanos)),
        "start_unix_nanos": m.start_unix_nanos,
        "end_unix_nanos": end.map(|e| e.end_unix_nanos),
        "size": m.size,
        "packets": m.packets,
        "complete": end.is_some() && !m.damaged,
        "damaged": m.damaged,
        "stop_reason": end.map(|e| format!("{:?}", e.reason)),
        "dropped": end.map(|e| e.dropped),
        "refused": end.map(|e| e.refused),
    })
}

/// UTC date and time of a Unix time in nanoseconds, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let millis = (unix_nanos / 1_000_000) % 1000;
    let (days, tod) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    )
}

/// Whether `caller` may see mailbox `m`.
fn may_see(caller: &Caller, m: &Mailbox) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::Owner(user) => owner_user(&m.owner) == user,
    }
}

/// Carries out `route` for `caller`. An owner gets 404 for a mailbox that is not theirs,
/// exactly as for one that does not exist, and 403 for what only the admin may do.
pub fn handle(route: &Route, caller: &Caller, body: &[u8], store: &Mutex<MailboxStore>) -> Reply {
    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
    let id = match route {
        Route::List => return list(&store, caller),
        Route::Get(id) | Route::Put(id) | Route::PutKey(id) | Route::Messages(id) => id,
        Route::Delete { id, .. } | Route::Download(id, _) | Route::DeleteMessage(id, _) => id,
    };
    let admin_only = matches!(route, Route::Put(_) | Route::Delete { .. });
    if admin_only && *caller != Caller::Admin {
        return error(
            403,
            "only the admin may create, replace or delete mailboxes",
        );
    }
    let existing = store.get(id.as_str()).cloned();
    if *caller != Caller::Admin && !existing.as_ref().is_some_and(|m| may_see(caller, m)) {
        return error(404, format!("no mailbox {id}"));
    }
    let result = match route {
        Route::List => Ok(list(&store, caller)),
        Route::Get(_) => store.mailbox(id.as_str()).map(|m| ok(200, mailbox_json(m))),
        Route::Put(_) => {
            let b: PutMailbox = match parse_body(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let status = if existing.is_some() { 200 } else { 201 };
            store
                .upsert(id.as_str(), &b.owner, &b.public_key)
                .map(|m| ok(status, mailbox_json(&m)))
        }
        Route::Delete { messages, .. } => store.remove(id.as_str(), *messages).map(|m| {
            ok(
                200,
                json!({"deleted": m.id.as_str(), "messages_deleted": messages}),
            )
        }),
        Route::PutKey(_) => {
            let b: PutKey = match parse_body(body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            store
                .set_public_key(id.as_str(), &b.public_key)
                .map(|m| ok(200, mailbox_json(&m)))
        }
        Route::Messages(_) => match store.message_dir(id.as_str()) {
            Ok(dir) => {
                // Reading every file takes a while: deposits must not wait for it.
                drop(store);
                return list_messages(&dir)
                    .map(|list| {
                        let list: Vec<Value> = list.iter().map(message_json).collect();
                        ok(200, json!({"mailbox": id.as_str(), "messages": list}))
                    })
                    .unwrap_or_else(store_error);
            }
            Err(e) => Err(e),
        },
        Route::Download(_, rid) => {
            store
                .open_message(id.as_str(), &rid.to_string())
                .map(|(file, size)| Reply::File {
                    file,
                    size,
                    name: format!("{rid}.pcapng"),
                })
        }
        Route::DeleteMessage(_, rid) => store
            .delete_message(id.as_str(), &rid.to_string())
            .map(|()| ok(200, json!({"deleted": rid.to_string()}))),
    };
    result.unwrap_or_else(store_error)
}

fn list(store: &MailboxStore, caller: &Caller) -> Reply {
    let list: Vec<Value> = store
        .list()
        .filter(|m| may_see(caller, m))
        .map(mailbox_json)
        .collect();
    ok(200, json!({ "mailboxes": list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_refusals() {
        let ok = |m, p, q| route(m, p, q).map_err(|r| r.status());
        assert_eq!(ok("GET", "/v1/mailboxes", None), Ok(Route::List));
        let bob = MailboxId::parse("bob").unwrap();
        assert_eq!(
            ok("PUT", "/v1/mailboxes/bob", None),
            Ok(Route::Put(bob.clone()))
        );
        assert_eq!(
            ok("DELETE", "/v1/mailboxes/bob", Some("delete-messages=true")),
            Ok(Route::Delete {
                id: bob.clone(),
                messages: true
            })
        );
        assert_eq!(
            ok("PUT", "/v1/mailboxes/bob/public-key", None),
            Ok(Route::PutKey(bob))
        );
        for (m, p, q, status) in [
            ("GET", "/", None, 404),
            ("GET", "/v1/mailboxesx", None, 404),
            ("GET", "/v1/mailboxes/", None, 400),
            ("GET", "/v1/mailboxes/a/b", None, 404),
            ("GET", "/v1/mailboxes/a/messages/x/y", None, 404),
            ("POST", "/v1/mailboxes", None, 405),
            ("PATCH", "/v1/mailboxes/a", None, 405),
            ("GET", "/v1/mailboxes/..", None, 400),
            ("GET", "/v1/mailboxes/%2e%2e", None, 400),
            ("GET", "/v1/mailboxes/a/messages/..", None, 400),
            (
                "GET",
                "/v1/mailboxes/a/messages/..%2Fmailboxes.json",
                None,
                400,
            ),
            ("GET", "/v1/mailboxes", Some("x=1"), 400),
            (
                "DELETE",
                "/v1/mailboxes/a",
                Some("delete-messages=yes"),
                400,
            ),
        ] {
            assert_eq!(ok(m, p, q).unwrap_err(), status, "{m} {p} {q:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123_000_000), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            rfc3339(1_790_000_000_000_000_000),
            "2026-09-21T14:13:20.000Z"
        );
    }
}
