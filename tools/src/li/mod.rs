//! li-receiver: the agency's side of X3 (ETSI TS 103 221-2). Accepts PDUs over TCP or TLS,
//! validates each one, and keeps per XID and correlation id a pcap and per direction a WAV.

pub mod g711;
pub mod recorder;
pub mod server;
pub mod wav;

pub use recorder::{Recorder, StreamSummary, Summary, Totals};
pub use server::{tls_config, Outcome, ReceiverConfig, SetupError, X3Receiver};
