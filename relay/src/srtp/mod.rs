//! SRTP and SRTCP (RFC 3711), with the AES-192/256 counter-mode suites of RFC 6188 and the
//! AES-GCM suites of RFC 7714.
//!
//! Everything here is a pure function over `&mut [u8]`: no I/O, and no allocation per
//! packet once an SSRC is known. Keys are zeroized on drop and never printed.
//!
//! ```
//! use relay::srtp::{MasterKey, Policy, SrtpContext, Suite};
//! let suite = Suite::AesCm128HmacSha1_80;
//! let key = MasterKey::new(suite, &[1; 16], &[2; 14]).unwrap();
//! let mut tx = SrtpContext::new(Policy::new(suite, key.clone())).unwrap();
//! let mut rx = SrtpContext::new(Policy::new(suite, key)).unwrap();
//! let mut buf = [0u8; 200];
//! buf[0] = 0x80;
//! let srtp_len = tx.protect(&mut buf, 172).unwrap();
//! assert_eq!(srtp_len, 182);
//! assert_eq!(rx.unprotect(&mut buf[..srtp_len]).unwrap(), 172);
//! ```

mod context;
mod crypto;
mod error;
pub mod kdf;
mod key;
#[doc(hidden)]
pub mod primitives;
mod replay;
mod rtcp;
mod rtp;
mod suite;
#[doc(hidden)]
pub mod test_hooks;

pub use context::{Policy, SrtpContext, DEFAULT_MAX_STREAMS, MAX_SRTCP_TRAILER, MAX_SRTP_TRAILER};
pub use error::Error;
pub use key::{InlineError, MasterKey, Mki};
pub use replay::{ReplayWindow, DEFAULT_WINDOW, MAX_WINDOW, MIN_WINDOW};
pub use rtp::{estimate_index, rtp_header_len};
pub use suite::{CipherKind, Suite, UnknownSuite};
