//! The call model shared by the ng protocol and the SIP edge: sessions, offer/answer, keys.

mod answer;
pub mod crypto;
mod install;
pub mod model;
pub mod registry;
pub mod sdp;
mod secure;

pub use crypto::CryptoLine;
pub use model::{Call, LocalMedia, Monologue, RemoteMedia};
pub use registry::{AnswerOptions, CallError, CallRegistry, DtlsPreference, OfferOptions};
