//! srtpgate control plane: configuration and, as the project grows, SDP, SIP, the ng
//! protocol and the call model. Protocol logic here is sans-IO; the daemon owns the I/O.

pub mod call;
pub mod config;
pub mod daemon;
pub mod dtls;
pub mod http;
pub mod ice;
pub mod li_admin;
pub mod metrics;
pub mod ng;
pub mod sdp;
pub mod sip;
pub mod sip_edge;
pub mod vm_api;
pub mod voicemail;
