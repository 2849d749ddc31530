pub mod srtp;
