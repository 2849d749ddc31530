//! `vm-play`: opens a sealed srtpgate voicemail with the mailbox private key and turns it
//! into audio (WAV, G.711 decoded) and/or a plain RTP capture.
//!
//! The file is read, verified and decrypted by `relay::record::read` (srtpgate's own SRTP
//! code); this module only turns the plain RTP into something a person can play.

pub mod audio;
pub mod g711;
pub mod wav;

pub use audio::{decode_leg, rtp_pcap, AudioError, Decoded};
