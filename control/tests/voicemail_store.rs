//! Mailbox storage: add, list, persist and reload, refusals (bad ids, owners, keys,
//! duplicates, damaged file), removal, and the messages of a mailbox listed from their
//! structure, downloaded byte for byte, deleted, and recovered after a crash.

use std::io::Read;
use std::path::PathBuf;

use control::voicemail::{MailboxStore, VoicemailError};
use relay::record::PrivateKey;

mod kit;
use kit::record;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srtpgate-vmstore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn key() -> String {
    PrivateKey::generate().unwrap().public_key().to_base64()
}

#[test]
fn mailboxes_persist_and_bad_ones_are_refused() {
    let root = tempdir("boxes");
    let mut s = MailboxStore::open(&root).unwrap();
    let k1 = key();
    s.add("alice", "sip:alice@example.org", &k1).unwrap();
    s.add("bob.2", "sip:bob@example.org", &key()).unwrap();
    assert!(matches!(
        s.add("alice", "x", &key()),
        Err(VoicemailError::Exists(_))
    ));
    for bad in [
        "",
        "../etc",
        ".hidden",
        "a/b",
        "with space",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(s.add(bad, "o", &key()), Err(VoicemailError::BadId)),
            "{bad:?}"
        );
    }
    assert!(matches!(
        s.add("carol", "line\nbreak", &key()),
        Err(VoicemailError::BadOwner)
    ));
    for bad_key in [
        "",
        "AAAA",
        "not base64!",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let e = s
            .add("carol", "sip:carol@example.org", bad_key)
            .unwrap_err();
        assert!(matches!(e, VoicemailError::BadKey(_)), "{bad_key:?}: {e}");
    }

    let again = MailboxStore::open(&root).unwrap();
    let ids: Vec<&str> = again.list().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, vec!["alice", "bob.2"]);
    assert_eq!(again.get("alice").unwrap().public_key.to_base64(), k1);
    assert_eq!(
        again.by_owner("sip:bob@example.org").unwrap().id.as_str(),
        "bob.2"
    );
    assert!(!root.join("mailboxes.json.tmp").exists());

    s.remove("bob.2", true).unwrap();
    assert!(matches!(
        s.remove("bob.2", true),
        Err(VoicemailError::NoMailbox(_))
    ));
    let k3 = key();
    s.upsert("alice", "sip:alice@example.org", &k3).unwrap();
    let again = MailboxStore::open(&root).unwrap();
    assert_eq!(again.list().count(), 1);
    assert_eq!(again.get("alice").unwrap().public_key.to_base64(), k3);

    std::fs::write(
        root.join("mailboxes.json"),
        "{\"version\":1,\"mailboxes\":[{",
    )
    .unwrap();
    assert!(matches!(
        MailboxStore::open(&root),
        Err(VoicemailError::Damaged(_))
    ));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn messages_are_listed_downloaded_deleted_and_recovered() {
    let root = tempdir("messages");
    let mut s = MailboxStore::open(&root).unwrap();
    s.add("alice", "sip:alice@example.org", &key()).unwrap();
    assert!(s.messages("alice").unwrap().is_empty());
    assert!(matches!(
        s.messages("nobody"),
        Err(VoicemailError::NoMailbox(_))
    ));
    let bytes = record(&s, "alice", 12);
    let list = s.messages("alice").unwrap();
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(
        (m.packets, m.damaged, m.size),
        (12, false, bytes.len() as u64)
    );
    assert!(m.end.is_some());
    let rid = m.recording_id.to_string();

    let (mut f, size) = s.open_message("alice", &rid).unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert_eq!((got, size), (bytes.clone(), bytes.len() as u64));
    for bad in ["../mailboxes", "00", &"g".repeat(32)] {
        assert!(matches!(
            s.open_message("alice", bad),
            Err(VoicemailError::NoMessage(_))
        ));
    }

    // A crashed recording: a .part file cut inside a block is recovered at start-up.
    let dir = s.message_dir("alice").unwrap();
    let part = dir.join("0123456789abcdef0123456789abcdef.pcapng.part");
    std::fs::write(&part, &bytes[..bytes.len() - 30]).unwrap();
    let rec = s.recover();
    assert_eq!(rec.len(), 1);
    assert!(rec[0].1.is_ok(), "{:?}", rec[0].1);
    let list = s.messages("alice").unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|m| m.end.is_none() && m.packets == 12));

    s.delete_message("alice", &rid).unwrap();
    assert_eq!(s.messages("alice").unwrap().len(), 1);
    s.remove("alice", true).unwrap();
    assert!(!dir.exists());
    let _ = std::fs::remove_dir_all(&root);
}
