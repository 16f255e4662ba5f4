//! Any bytes: decoding and parsing never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::parse_bytes(data));
