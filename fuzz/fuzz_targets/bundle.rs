//! Any bytes: loading a bundle never panics; accepted bundles run without panicking; the
//! same bytes read as a release store's manifest or journal never panic either.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::bundle_bytes(data));
