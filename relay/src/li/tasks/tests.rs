use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn did(n: u8) -> DId {
    let mut b = [0u8; 16];
    b[15] = n;
    b[0] = 0xd1;
    crate::li::Uuid(b)
}

fn xid(n: u8) -> Xid {
    let mut b = [0u8; 16];
    b[15] = n;
    b[0] = 0x71;
    crate::li::Uuid(b)
}

fn dest(n: u8) -> DestinationDetails {
    DestinationDetails {
        d_id: did(n),
        friendly_name: None,
        delivery_type: DeliveryType::X3Only,
        delivery_address: DeliveryAddress::IpAddressPort(IpAddressPort {
            address: "127.0.0.1".parse().unwrap(),
            port: Port::Tcp(40000 + n as u16),
        }),
        security: SecurityMode::Tcp,
    }
}

fn task(n: u8, targets: Vec<TargetIdentifier>) -> TaskDetails {
    TaskDetails {
        x_id: xid(n),
        target_identifiers: targets,
        delivery_type: DeliveryType::X3Only,
        list_of_dids: vec![did(1)],
        start_time: None,
        end_time: None,
    }
}

fn tasks() -> LiTasks {
    let mut t = LiTasks::in_memory();
    t.create_destination(dest(1)).unwrap();
    t
}

#[test]
fn a_call_matches_by_any_identity_and_side() {
    let mut t = tasks();
    t.activate_task(task(
        1,
        vec![TargetIdentifier::SipUri("sip:alice@Example.com".into())],
    ))
    .unwrap();
    t.activate_task(task(
        2,
        vec![TargetIdentifier::E164Number("+49 30 1234".into())],
    ))
    .unwrap();
    t.activate_task(task(
        3,
        vec![TargetIdentifier::Impi("carol@ims.example".into())],
    ))
    .unwrap();

    let call = CallIdentities::default()
        .with(
            IdentityRole::From,
            "\"Alice\" <sip:alice@example.com>;tag=9",
        )
        .with(IdentityRole::To, "<sip:+49-30-1234@ims.example;user=phone>");
    let m = t.matching(&call);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].xid, xid(1));
    assert_eq!(m[0].target_side, TargetSide::Caller);
    assert_eq!(m[0].destinations, vec![did(1)]);
    assert_eq!(m[1].xid, xid(2));
    assert_eq!(m[1].target_side, TargetSide::Callee);

    let call = CallIdentities::default()
        .with(IdentityRole::AuthenticatedUser, "carol@IMS.example")
        .with(IdentityRole::RequestUri, "tel:+4930-1234");
    let sides: Vec<_> = t
        .matching(&call)
        .iter()
        .map(|m| (m.xid, m.target_side))
        .collect();
    assert_eq!(
        sides,
        vec![(xid(2), TargetSide::Callee), (xid(3), TargetSide::Caller)]
    );

    // Non-targets: nothing.
    let call = CallIdentities::default()
        .with(IdentityRole::From, "sip:Alice@example.com")
        .with(IdentityRole::To, "sip:bob@example.com")
        .with(IdentityRole::Other, "garbage <<>>");
    assert!(t.matching(&call).is_empty());
}

#[test]
fn start_and_end_times_bound_matching() {
    let mut t = tasks();
    let mut k = task(1, vec![TargetIdentifier::TelUri("tel:+4930555".into())]);
    k.start_time = Some("2030-01-01T00:00:00Z".into());
    k.end_time = Some("2030-01-02T00:00:00Z".into());
    t.activate_task(k).unwrap();
    let call = CallIdentities::default().with(IdentityRole::From, "tel:+49-30-555");
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    assert!(t.matching_at(&call, at(1_893_455_999)).is_empty());
    assert_eq!(t.matching_at(&call, at(1_893_456_000)).len(), 1);
    assert_eq!(t.matching_at(&call, at(1_893_542_399)).len(), 1);
    assert!(t.matching_at(&call, at(1_893_542_400)).is_empty());
}

#[test]
fn bad_requests_are_refused_precisely() {
    let mut t = tasks();
    let ok = task(1, vec![TargetIdentifier::SipUri("sip:a@b".into())]);
    t.activate_task(ok.clone()).unwrap();
    assert!(matches!(
        t.activate_task(ok.clone()),
        Err(TaskError::DuplicateXid)
    ));
    let mut k = ok.clone();
    k.x_id = xid(0);
    k.x_id.0[0] = 0;
    assert!(matches!(t.activate_task(k), Err(TaskError::NilXid)));
    let k = task(2, vec![]);
    assert!(matches!(t.activate_task(k), Err(TaskError::NoTargets)));
    let mut k = task(2, vec![TargetIdentifier::SipUri("sip:a@b".into())]);
    k.list_of_dids = vec![did(1), did(9)];
    assert!(matches!(
        t.activate_task(k),
        Err(TaskError::TaskUnknownDid(1))
    ));
    let k = task(
        2,
        vec![
            TargetIdentifier::SipUri("sip:a@b".into()),
            TargetIdentifier::E164Number("+49abc".into()),
        ],
    );
    let e = t.activate_task(k).unwrap_err();
    assert!(matches!(
        e,
        TaskError::InvalidTarget {
            index: 1,
            kind: "e164Number"
        }
    ));
    assert!(
        !e.to_string().contains("49abc"),
        "errors never carry targets"
    );
    let mut k = task(2, vec![TargetIdentifier::SipUri("sip:a@b".into())]);
    k.end_time = Some("2020-01-01T00:00:00Z".into());
    k.start_time = Some("2020-01-01T00:00:00Z".into());
    assert!(matches!(t.activate_task(k), Err(TaskError::EndBeforeStart)));
    let mut k = task(2, vec![TargetIdentifier::SipUri("sip:a@b".into())]);
    k.start_time = Some("yesterday".into());
    assert!(matches!(
        t.activate_task(k),
        Err(TaskError::InvalidTime("startTime"))
    ));
    assert!(matches!(
        t.modify_task(task(7, ok.target_identifiers.clone())),
        Err(TaskError::UnknownXid)
    ));
    assert!(matches!(
        t.deactivate_task(&xid(7)),
        Err(TaskError::UnknownXid)
    ));
    assert!(matches!(
        t.create_destination(dest(1)),
        Err(TaskError::DuplicateDid)
    ));
    assert!(matches!(
        t.remove_destination(&did(1)),
        Err(TaskError::DestinationInUse)
    ));
    assert!(matches!(
        t.remove_destination(&did(5)),
        Err(TaskError::UnknownDid)
    ));
    assert!(matches!(
        t.modify_destination(dest(5)),
        Err(TaskError::UnknownDid)
    ));
}

#[test]
fn modify_and_deactivate_change_matching_at_once() {
    let mut t = tasks();
    t.activate_task(task(1, vec![TargetIdentifier::SipUri("sip:a@b".into())]))
        .unwrap();
    let a = CallIdentities::default().with(IdentityRole::From, "sip:a@b");
    let c = CallIdentities::default().with(IdentityRole::From, "sip:c@b");
    assert_eq!(t.matching(&a).len(), 1);
    t.modify_task(task(1, vec![TargetIdentifier::Impu("sip:c@B".into())]))
        .unwrap();
    assert!(t.matching(&a).is_empty());
    assert_eq!(t.matching(&c).len(), 1);
    t.deactivate_task(&xid(1)).unwrap();
    assert!(t.matching(&c).is_empty());
    t.remove_destination(&did(1)).unwrap();
    assert_eq!(t.destinations().count(), 0);
}

#[test]
fn the_store_survives_a_restart_and_is_written_atomically() {
    let dir = std::env::temp_dir().join(format!("li-tasks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tasks.json");
    {
        let mut t = LiTasks::open(&path).unwrap();
        t.create_destination(dest(1)).unwrap();
        t.create_destination(dest(2)).unwrap();
        let mut k = task(1, vec![TargetIdentifier::SipUri("sip:a@b".into())]);
        k.end_time = Some("2099-01-01T00:00:00Z".into());
        t.activate_task(k).unwrap();
        t.activate_task(task(2, vec![TargetIdentifier::E164Number("+1555".into())]))
            .unwrap();
        t.deactivate_task(&xid(2)).unwrap();
        t.remove_destination(&did(2)).unwrap();
    }
    assert!(!dir.join("tasks.json.tmp").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let t = LiTasks::open(&path).unwrap();
    assert_eq!(t.tasks().count(), 1);
    assert_eq!(t.destinations().count(), 1);
    assert_eq!(
        t.task(&xid(1)).unwrap().end_time.as_deref(),
        Some("2099-01-01T00:00:00Z")
    );
    let a = CallIdentities::default().with(IdentityRole::To, "<sip:a@b:5060>");
    assert_eq!(t.matching(&a)[0].target_side, TargetSide::Callee);

    // A damaged store is refused, not half-loaded.
    std::fs::write(
        &path,
        b"{\"version\": 1, \"destinations\": [], \"tasks\": [{\"xId\": 1}]}",
    )
    .unwrap();
    assert!(matches!(LiTasks::open(&path), Err(TaskError::Corrupt(_))));
    std::fs::write(&path, b"\xff\xfe").unwrap();
    assert!(LiTasks::open(&path).is_err());
    // A store that cannot be written leaves the model unchanged.
    let mut t = LiTasks::open(dir.join("missing-dir").join("tasks.json")).unwrap();
    assert!(matches!(
        t.create_destination(dest(1)),
        Err(TaskError::Io(_))
    ));
    assert_eq!(t.destinations().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
