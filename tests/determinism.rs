//! Output that must be the same on every run: no dependence on HashMap order (each map
//! gets its own random hash keys, even within one process), the wall clock or the process.
//!
//! Each test produces the same output many times in one process and requires one answer;
//! with random hash keys per map, an order-dependent output shows up within a few tries.

use std::collections::BTreeSet;
use std::path::Path;

/// How often each output is produced.
const TRIES: usize = 32;

/// Every check fixture, checked `TRIES` times: the deck print and its warnings, or the
/// rendered errors, are the same every time.
#[test]
fn check_output_does_not_depend_on_hash_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    assert!(paths.len() > 40, "check fixtures not found in {}", dir.display());
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let outputs: BTreeSet<String> = (0..TRIES)
            .map(|_| match ruledeck::check(&[(name.as_str(), text.as_str())]) {
                Ok(checked) => {
                    let warnings = ruledeck::diagnostics::render_text(&checked.sources, &checked.warnings);
                    ruledeck::check::print_deck(&checked.deck, &checked.sources) + &warnings
                }
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(outputs.len(), 1, "{name} checks differently from run to run:\n{outputs:#?}");
    }
}

/// Several names equally near an unknown one: the "did you mean" must not pick one at random
/// (the checker hands `did_you_mean` the keys of its name maps, in hash order).
#[test]
fn did_you_mean_among_equally_close_names_is_stable() {
    let deck = "entity user key uid\n\
                tag user.x1: int from \"p\"\n\
                tag user.x2: int from \"p\"\n\
                tag user.x3: int from \"p\"\n\
                tag user.x4: int from \"p\"\n\
                rule user x1 = user.x1 > 0\n\
                rule user x2 = user.x2 > 0\n\
                rule user r = user.x0 > 1 and x0\n";
    let helps: BTreeSet<Vec<Option<String>>> = (0..TRIES)
        .map(|_| {
            let e = ruledeck::check(&[("a.rule", deck)]).unwrap_err();
            e.diagnostics.iter().map(|d| d.help.clone()).collect()
        })
        .collect();
    assert_eq!(helps.len(), 1, "the suggestions change from run to run: {helps:#?}");
}
