//! The rtpengine "ng" control protocol, sans-IO.
//!
//! Kamailio's and OpenSIPS's `rtpengine` modules drive a media relay with datagrams of
//! the form `<cookie> <bencoded dictionary>`; the relay answers `<same cookie>
//! <bencoded dictionary>`. This module turns datagrams into typed [`NgRequest`]s,
//! [`NgResponse`]s into datagrams, and answers retransmissions from a cache, without
//! touching a socket: the daemon feeds [`NgServer::handle_datagram`] with what it
//! receives and sends what it returns, and the call layer implements [`NgHandler`].
//!
//! - [`bencode`]: the value model, a bounded decoder with precise errors, the encoder;
//! - [`frame`]: cookie and payload;
//! - [`NgRequest`] (`request`, `parse`, `options`): the typed request;
//! - [`NgResponse`] (`response`, `stats`): rtpengine-shaped replies;
//! - [`RequestCache`] (`cache`): retransmission detection;
//! - [`NgServer`] (`server`): the front that ties them together, with counters.
//!
//! docs/ng-protocol.md lists the commands, keys and flags srtpgate accepts.

pub mod bencode;
mod cache;
pub mod frame;
mod json;
mod options;
mod parse;
mod request;
mod response;
mod server;
mod stats;

pub use bencode::{DecodeError, Limits, Value};
pub use cache::{CacheLookup, RequestCache};
pub use frame::{Frame, FrameError};
pub use options::{
    AddressFamily, CodecOptions, Dtls, FingerprintHash, Flag, Ice, ReceivedFrom, Replace, RtcpMux,
    SdesOptions, SipMessageType, Tos, Transport, TransportProtocol,
};
pub use request::{Command, NgRequest, RequestError, RequiredKey, SdpBody, UNSUPPORTED_COMMANDS};
pub use response::{NgResponse, OkResponse};
pub use server::{NgCounters, NgHandler, NgServer, NgServerConfig, Pending, Received};
pub use stats::{
    CallStats, ControlStatistics, CurrentStatistics, MediaStats, PacketCounters, ProxyStatistics,
    Statistics, StreamStats, TagStats, TotalStatistics,
};
