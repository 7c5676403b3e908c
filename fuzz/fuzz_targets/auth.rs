#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| campeer_fuzz::auth(data));
