//! Any UTF-8 that formats: the formatted deck keeps its comments, diagnostics, compiled
//! program and test outcomes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::fmt_meaning(data));
