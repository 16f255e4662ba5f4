//! Any UTF-8: parse + check never panic and never report an internal error; clean decks
//! compile, verify and run.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::check_text(data));
