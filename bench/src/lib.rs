//! `srtpgate-bench`: a load tester for any relay that speaks the rtpengine ng protocol.
//!
//! It sets calls up over ng ([`calls`], [`ng_client`]), streams SRTP or RTP through them from
//! sender threads ([`sender`]) to receiver threads ([`receiver`]) that decrypt and check
//! every packet ([`account`], [`packet`]), reads the relay's and its own CPU time from /proc
//! ([`procstat`]) and reports ([`report`], [`plot`]).

pub mod account;
pub mod calls;
pub mod compare;
pub mod io;
pub mod load;
pub mod ng_client;
pub mod packet;
pub mod plot;
pub mod procstat;
pub mod receiver;
pub mod report;
pub mod sender;
