//! Shared code of the operator and agency tools.

pub mod li;
pub mod link;
pub mod pcap;
pub mod srtp_pcap;
pub mod udp;
pub mod vm;
