//! Helpers for end-to-end tests: free ports, process supervision, peers.

pub mod e2e;
pub mod libsrtp;
pub mod packets;
