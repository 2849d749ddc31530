//! The X1 admin listener over real HTTP on loopback: authentication, every operation,
//! precise refusals, and the store across a daemon restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use control::config::Config;
use control::daemon::Daemon;
use serde_json::{json, Value};

mod kit;
use kit::daemon_config;

const TOKEN: &str = "x1-test-token-0123456789";
const DID: &str = "8f2f4c4e-1b43-4f7e-9d0a-0a1b2c3d4e5f";
const XID: &str = "2b36a78b-b628-416d-bd22-65e63a4b4c2f";

fn config(port_min: u16, store: &std::path::Path) -> Config {
    let mut c = daemon_config(port_min, 20);
    c.li.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    c.li.admin_token = Some(TOKEN.into());
    c.li.store = Some(store.to_path_buf());
    c
}

/// Sends one raw request; returns (status, parsed JSON body).
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let status: u16 = text[9..12].parse().unwrap();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn post(addr: SocketAddr, token: Option<&str>, body: &str) -> (u16, Value) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "POST /x1 HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(addr, req.as_bytes())
}

fn x1(addr: SocketAddr, v: Value) -> (u16, Value) {
    post(addr, Some(TOKEN), &v.to_string())
}

fn destination(port: u16) -> Value {
    json!({"dId": DID, "deliveryType": "X3Only",
           "deliveryAddress": {"ipAddressPort": {"address": "127.0.0.1", "port": {"TCPPort": port}}}})
}

fn task() -> Value {
    json!({"xId": XID, "targetIdentifiers": [{"sipUri": "sip:alice@example.com"}],
           "deliveryType": "X3Only", "listOfDIDs": [DID]})
}

#[test]
fn wrong_or_missing_token_is_refused_and_counted() {
    let dir = tempdir("auth");
    let d = Daemon::start(&config(46000, &dir.join("tasks.json"))).unwrap();
    let a = d.li_admin().expect("admin listener").addr();
    let ping = r#"{"operation":"Ping"}"#;
    assert_eq!(post(a, None, ping).0, 401);
    assert_eq!(post(a, Some("x1-test-token-012345678"), ping).0, 401);
    assert_eq!(post(a, Some(&format!("{TOKEN}0")), ping).0, 401);
    // Basic instead of Bearer.
    let req = format!(
        "POST /x1 HTTP/1.1\r\nAuthorization: Basic {TOKEN}\r\nContent-Length: {}\r\n\r\n{ping}",
        ping.len()
    );
    assert_eq!(raw(a, req.as_bytes()).0, 401);
    // Unauthenticated requests learn nothing about paths either.
    assert_eq!(raw(a, b"GET / HTTP/1.1\r\n\r\n").0, 401);
    assert_eq!(
        d.li_admin()
            .unwrap()
            .counters()
            .unauthorized
            .load(Ordering::Relaxed),
        5
    );
    let (st, v) = post(a, Some(TOKEN), ping);
    assert_eq!(st, 200);
    assert_eq!(v["operation"], "PingResponse");
    assert_eq!(v["ok"], "AcknowledgedAndCompleted");
    // The bearer scheme is case-insensitive.
    let req = format!(
        "POST /x1 HTTP/1.1\r\nauthorization: bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{ping}",
        ping.len()
    );
    assert_eq!(raw(a, req.as_bytes()).0, 200);
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn malformed_requests_get_precise_errors() {
    let dir = tempdir("malformed");
    let d = Daemon::start(&config(46020, &dir.join("tasks.json"))).unwrap();
    let a = d.li_admin().unwrap().addr();
    let desc = |v: &Value| {
        v["errorInformation"]["errorDescription"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (st, v) = post(a, Some(TOKEN), "{nope");
    assert_eq!(st, 400);
    assert!(desc(&v).starts_with("body is not JSON"), "{v}");
    let (st, v) = post(a, Some(TOKEN), r#"{"xId": "x"}"#);
    assert_eq!(st, 400);
    assert_eq!(desc(&v), "missing \"operation\"");
    let (st, v) = x1(a, json!({"operation": "Frobnicate"}));
    assert_eq!(st, 400);
    assert!(
        desc(&v).starts_with("unknown operation \"Frobnicate\""),
        "{v}"
    );
    let (st, v) = x1(a, json!({"operation": "Ping", "extra": 1}));
    assert_eq!(st, 400);
    assert!(desc(&v).contains("unknown field `extra`"), "{v}");
    let (st, v) = x1(a, json!({"operation": "ActivateTask"}));
    assert_eq!(st, 400);
    assert!(desc(&v).contains("missing field `taskDetails`"), "{v}");
    let (st, v) = x1(
        a,
        json!({"operation": "DeactivateTask", "xId": "not-a-uuid"}),
    );
    assert_eq!(st, 400);
    assert!(desc(&v).starts_with("DeactivateTask:"), "{v}");
    let mut t = task();
    t["targetIdentifiers"] = json!([{"faxNumber": "1"}]);
    let (st, v) = x1(a, json!({"operation": "ActivateTask", "taskDetails": t}));
    assert_eq!(st, 400);
    assert!(desc(&v).contains("faxNumber"), "{v}");
    // HTTP level.
    let req = format!("GET /x1 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    assert_eq!(raw(a, req.as_bytes()).0, 405);
    let req = format!(
        "POST /x2 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    assert_eq!(raw(a, req.as_bytes()).0, 404);
    let req = format!("POST /x1 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let (st, v) = raw(a, req.as_bytes());
    assert_eq!((st, desc(&v)), (400, "missing Content-Length".into()));
    let req = format!(
        "POST /x1 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 99999999\r\n\r\n"
    );
    assert_eq!(raw(a, req.as_bytes()).0, 413);
    assert!(
        d.li_admin()
            .unwrap()
            .counters()
            .malformed
            .load(Ordering::Relaxed)
            >= 11
    );
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn every_operation_and_the_store_across_a_restart() {
    let dir = tempdir("ops");
    let store = dir.join("tasks.json");
    let d = Daemon::start(&config(46040, &store)).unwrap();
    let a = d.li_admin().unwrap().addr();
    let code = |v: &Value| {
        v["errorInformation"]["errorCode"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // A task needs its destination first.
    let (st, v) = x1(
        a,
        json!({"operation": "ActivateTask", "taskDetails": task()}),
    );
    assert_eq!((st, code(&v)), (422, "InvalidRequest".into()), "{v}");
    let (st, v) = x1(
        a,
        json!({"operation": "CreateDestination", "destinationDetails": destination(40000)}),
    );
    assert_eq!(
        (st, v["operation"].as_str()),
        (200, Some("CreateDestinationResponse")),
        "{v}"
    );
    let (st, v) = x1(
        a,
        json!({"operation": "CreateDestination", "destinationDetails": destination(40000)}),
    );
    assert_eq!((st, code(&v)), (409, "DIDAlreadyExists".into()));
    assert_eq!(
        x1(
            a,
            json!({"operation": "ModifyDestination", "destinationDetails": destination(40001)})
        )
        .0,
        200
    );
    let (st, v) = x1(a, json!({"operation": "GetDestinationDetails", "dId": DID}));
    assert_eq!(st, 200);
    assert_eq!(
        v["destinationResponseDetails"]["destinationDetails"]["deliveryAddress"]["ipAddressPort"]
            ["port"]["TCPPort"],
        40001
    );

    let (st, v) = x1(
        a,
        json!({"operation": "ActivateTask", "taskDetails": task()}),
    );
    assert_eq!(
        (st, v["operation"].as_str()),
        (200, Some("ActivateTaskResponse")),
        "{v}"
    );
    let (st, v) = x1(
        a,
        json!({"operation": "ActivateTask", "taskDetails": task()}),
    );
    assert_eq!((st, code(&v)), (409, "XIDAlreadyExists".into()));
    let mut t = task();
    t["targetIdentifiers"] =
        json!([{"sipUri": "sip:alice@example.com"}, {"e164Number": "+4930123456"}]);
    assert_eq!(
        x1(a, json!({"operation": "ModifyTask", "taskDetails": t})).0,
        200
    );
    let (st, v) = x1(a, json!({"operation": "GetTaskDetails", "xId": XID}));
    assert_eq!(st, 200);
    assert_eq!(
        v["taskResponseDetails"]["taskDetails"]["targetIdentifiers"][1]["e164Number"],
        "+4930123456"
    );
    let (st, v) = x1(a, json!({"operation": "ListAllDetails"}));
    assert_eq!(st, 200);
    assert_eq!(v["listOfXIDs"], json!([XID]));
    assert_eq!(v["listOfDIDs"], json!([DID]));
    let (st, v) = x1(a, json!({"operation": "RemoveDestination", "dId": DID}));
    assert_eq!((st, code(&v)), (409, "DIDInUse".into()));
    assert_eq!(
        d.li_admin()
            .unwrap()
            .counters()
            .refused
            .load(Ordering::Relaxed),
        4
    );
    d.drain_and_stop(Duration::ZERO);

    // The store survives a restart.
    let d = Daemon::start(&config(46040, &store)).unwrap();
    let a = d.li_admin().unwrap().addr();
    let (_, v) = x1(a, json!({"operation": "ListAllDetails"}));
    assert_eq!(v["listOfXIDs"], json!([XID]));
    assert_eq!(
        x1(a, json!({"operation": "DeactivateTask", "xId": XID})).0,
        200
    );
    let (st, v) = x1(a, json!({"operation": "GetTaskDetails", "xId": XID}));
    assert_eq!((st, code(&v)), (404, "XIDNotFound".into()));
    assert_eq!(
        x1(a, json!({"operation": "RemoveDestination", "dId": DID})).0,
        200
    );
    let (_, v) = x1(a, json!({"operation": "ListAllDetails"}));
    assert_eq!(
        (v["listOfXIDs"].clone(), v["listOfDIDs"].clone()),
        (json!([]), json!([]))
    );
    d.drain_and_stop(Duration::ZERO);
}

#[test]
fn li_is_off_unless_configured_and_config_is_checked() {
    let mut c = Config::default();
    assert!(c.li.validate().is_ok());
    c.li.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    assert!(c.li.validate().is_err(), "no token");
    c.li.admin_token = Some("short".into());
    c.li.store = Some("/tmp/x".into());
    assert!(c.li.validate().is_err(), "short token");
    c.li.admin_token = Some(TOKEN.into());
    assert!(c.li.validate().is_ok());
    let parsed = Config::from_toml(&format!(
        "[li]\nadmin-listen = \"127.0.0.1:0\"\nadmin-token = \"{TOKEN}\"\nstore = \"/var/lib/srtpgate/li.json\"\n"
    ))
    .unwrap();
    assert_eq!(parsed.li.admin_token.as_deref(), Some(TOKEN));
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-li-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
