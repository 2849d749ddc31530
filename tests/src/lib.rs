//! Helpers for end-to-end tests: free ports, process supervision, peers.

pub mod libsrtp;
pub mod packets;
