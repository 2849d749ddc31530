//! ICE-lite for WebRTC legs: STUN messages and the per-leg lite agent. Sans-IO.

pub mod agent;
pub mod stun;

pub use agent::{Check, CheckError, CheckOutcome, Credentials, IceLite, CONSENT_TIMEOUT};
pub use stun::{Message, MessageWriter, StunError};
