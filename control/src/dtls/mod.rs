//! DTLS-SRTP termination (RFC 5763, RFC 5764): srtpgate's certificate and one sans-IO
//! state machine per association. OpenSSL (the system library, through the `openssl`
//! crate) does the protocol; nothing here touches a socket.

pub mod cert;
pub mod metrics;
pub mod session;

pub use cert::{digest_named, CertError, DtlsIdentity, SRTP_PROFILES};
pub use metrics::SecurityMetrics;
pub use session::{DatagramError, DtlsEvent, DtlsFailure, DtlsSession, Output, Role, SrtpKeys};
