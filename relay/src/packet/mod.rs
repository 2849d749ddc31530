//! Zero-copy views of the packets a media port receives, and RFC 7983 demultiplexing.

mod demux;
mod rtp;

pub use demux::{classify, PacketKind};
pub use rtp::{RtcpView, RtpView};
