pub mod engine;
pub mod li;
pub mod packet;
pub mod record;
pub mod srtp;
