#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| srtpgate_relay_fuzz::unprotect_rtcp(data));
