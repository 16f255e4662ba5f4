//! Any UTF-8: formatting never panics, refuses exactly the files that do not parse, and
//! formatted text formats to itself.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::fmt_idempotent(data));
