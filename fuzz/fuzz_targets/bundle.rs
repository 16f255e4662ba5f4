//! Any bytes: loading a bundle never panics; accepted bundles run without panicking.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::bundle_bytes(data));
