//! Voicemail administration: mailboxes (owner identity and X25519 public key, persisted
//! on disk with atomic writes) and their messages, which are the sealed files written by
//! `relay::record` and handed out as they are. Types and storage only: the admin API and
//! the SIP edge call into [`MailboxStore`].
//!
//! On disk, under the store's root (e.g. `<data dir>/voicemail`):
//! - `mailboxes.json`: `{"version":1,"mailboxes":[{"id":…,"owner":…,"public_key":…}]}`;
//! - `<mailbox id>/<recording id>.pcapng`: the messages (`.pcapng.part` while recording).
//!
//! The relay never holds a mailbox private key: nothing here can open a message.

pub mod config;
mod mailbox;
mod messages;

pub use mailbox::{Mailbox, MailboxId, MailboxStore, VoicemailError};
pub use messages::{list_messages, MessageEntry};
