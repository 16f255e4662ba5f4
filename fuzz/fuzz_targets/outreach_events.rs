//! Any bytes, read as a behavior-event log: the outreach runtime never panics and agrees
//! with a brute-force reference on windows, lateness, ids, caps, dedup and the budget.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ruledeck::fuzzing::outreach_events(data));
