//! End-to-end harness: real Kamailio, real baresip phones and a real ng relay (srtpgate or
//! Sipwise rtpengine) on 127.0.0.1, with tshark watching the loopback.
//!
//! The pieces, each usable alone:
//! - [`ports`]: free UDP/TCP ports and port blocks on 127.0.0.1;
//! - [`process`]: a child process in its own process group, logs in files, killed on drop;
//!   bounded readiness waits;
//! - [`ng`], [`relay`]: the relay under test and its ng `ping`; srtpgate from a config
//!   file;
//! - [`kamailio`]: the proxy, from `tests/fixtures/kamailio.cfg.tmpl`;
//! - [`baresip`]: SIP phones driven over `ctrl_tcp` (netstring JSON);
//! - [`capture`], [`sip`]: a tshark capture of the relay's ports and the SIP port, read back
//!   as UDP datagrams; SIP messages and their SDP;
//! - [`media`], [`wav`]: tones in recordings and in RTP/SRTP payloads (decrypted with libsrtp
//!   using the keys the SDP announced);
//! - [`scenario`]: one complete call with every check;
//! - [`sip_edge`]: calls through srtpgate's own SIP edge;
//! - [`voicemail`]: `vm-play` and the sealed files of mailboxes and recordings;
//! - [`li`]: the X1 admin listener and `li-receiver` as the agency.

pub mod baresip;
pub mod capture;
pub mod checks;
pub mod error;
pub mod kamailio;
pub mod li;
pub mod media;
pub mod ng;
pub mod ports;
pub mod process;
pub mod relay;
pub mod scenario;
pub mod sip;
pub mod sip_edge;
pub mod tools;
pub mod voicemail;
pub mod wav;

pub use error::{Context, E2eError, Result};
