pub mod engine;
pub mod packet;
pub mod srtp;
