//! Replays fuzz inputs as ordinary tests, so regressions are caught without a fuzzer:
//! every file under `fuzz/regressions/<target>/` (each one a crash found and fixed), every
//! fixture, and — when present locally — the fuzzers' corpora under `fuzz/corpus/`.

use std::path::Path;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(target: &str, property: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("fuzz/regressions").join(target), root.join("fuzz/corpus").join(target)];
    if !matches!(target, "bundle" | "outreach_events") {
        for stage in ["parse", "check", "compile", "run"] {
            dirs.push(root.join("tests/fixtures").join(stage));
        }
    }
    let mut count = 0;
    for dir in dirs {
        for file in files(&dir) {
            // A running fuzzer may delete corpus files under our feet.
            let Ok(data) = std::fs::read(&file) else { continue };
            property(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn parse_inputs_replay() {
    assert!(replay("parse", ruledeck::fuzzing::parse_bytes) > 50);
}

#[test]
fn check_inputs_replay() {
    assert!(replay("check", ruledeck::fuzzing::check_text) > 50);
}

#[test]
fn bundle_inputs_replay() {
    // Bundles built from every valid fixture must load and run.
    for file in files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compile")) {
        let src = std::fs::read_to_string(&file).unwrap();
        let program = ruledeck::compile(&[("f.rule", &src)]).unwrap();
        ruledeck::fuzzing::bundle_bytes(&ruledeck::compile::bundle::to_bytes(&program));
    }
    replay("bundle", ruledeck::fuzzing::bundle_bytes);
}

#[test]
fn fmt_inputs_replay() {
    assert!(replay("fmt_idempotent", ruledeck::fuzzing::fmt_idempotent) > 50);
    assert!(replay("fmt_meaning", ruledeck::fuzzing::fmt_meaning) > 50);
}

/// The outreach property over the seed logs and a hundred logs from a fixed xorshift
/// seed: windows, lateness, ids, caps, dedup and the budget against the brute-force reference.
#[cfg(feature = "outreach")]
#[test]
fn outreach_event_logs_agree_with_the_reference() {
    replay("outreach_events", ruledeck::fuzzing::outreach_events);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..100 {
        let len = (next() % 200) as usize;
        // Minutes mostly within two hours, so windows, caps and lateness all bite.
        let log: Vec<u8> =
            (0..len).map(|i| if i % 4 == 1 { (next() % 120) as u8 } else { (next() % 256) as u8 }).collect();
        ruledeck::fuzzing::outreach_events(&log);
    }
}
