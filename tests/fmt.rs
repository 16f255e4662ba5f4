//! `ruledeck fmt`: snapshots of formatted fixtures, and the formatter's guarantees checked
//! on every `.rule` file of the repository.
//!
//! - `fixtures/fmt/*.rule`: the formatted text, or the diagnostics of a file that does not
//!   parse (named `err_*`).
//! - Every `.rule` file under `tests/fixtures`, `examples` and `benches/inputs`: formatting
//!   twice gives the same text; the formatted text parses, reports the same diagnostics,
//!   compiles to the same program, keeps the same comments and passes the same tests (the
//!   properties the `fmt_*` fuzz targets check); a file that does not parse is refused.

use std::path::{Path, PathBuf};

use ruledeck::diagnostics::render_text;

#[test]
fn fmt() {
    insta::glob!("fixtures/fmt/*.rule", |path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let out = match ruledeck::fmt::format_source(&name, &text) {
            Ok(formatted) => {
                assert!(!name.starts_with("err_"), "{name} should not format");
                let again = ruledeck::fmt::format_source(&name, &formatted).unwrap();
                assert_eq!(formatted, again, "{name}: formatting twice differs");
                formatted
            }
            Err(errors) => {
                assert!(name.starts_with("err_"), "{name} should format:\n{errors}");
                render_text(&errors.sources, &errors.diagnostics)
            }
        };
        insta::assert_snapshot!(out);
    });
}

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rule_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rule") {
            out.push(p);
        }
    }
}

fn every_rule_file() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests/fixtures", "examples", "benches/inputs"] {
        rule_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 90, "found only {} .rule files", files.len());
    files
}

#[test]
fn every_rule_file_formats_stably_and_keeps_its_meaning() {
    let mut formatted = 0;
    for path in every_rule_file() {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        // Files that do not parse must come back as errors (checked inside), never as text.
        ruledeck::fuzzing::fmt_idempotent(&bytes);
        ruledeck::fuzzing::fmt_meaning(&bytes);
        if ruledeck::fmt::format_source("f.rule", text).is_ok() {
            formatted += 1;
        }
    }
    assert!(formatted > 60, "only {formatted} files formatted");
}

#[test]
fn files_that_do_not_parse_are_refused_with_their_diagnostics() {
    for path in every_rule_file() {
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let mut sources = ruledeck::Sources::new();
        let id = sources.add("f.rule", text.as_str());
        let bump = bumpalo::Bump::new();
        if let Err(expected) = ruledeck::syntax::parse(&bump, id, &sources.get(id).text) {
            let errors = ruledeck::fmt::format_source("f.rule", &text).unwrap_err();
            assert_eq!(errors.diagnostics, expected, "{}", path.display());
        }
    }
}

#[test]
fn the_example_deck_is_formatted() {
    let mut files = Vec::new();
    rule_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"), &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let formatted = ruledeck::fmt::format_source("f.rule", &text).unwrap();
        assert!(formatted == text, "{} is not formatted; run `ruledeck fmt examples/`", path.display());
    }
}

#[test]
fn the_benchmark_decks_are_stable() {
    // The 1 MB deck is in `every_rule_file` too; this names it so a failure says which.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/inputs/deck_1mb.rule");
    let text = std::fs::read_to_string(path).unwrap();
    let once = ruledeck::fmt::format_source("deck_1mb.rule", &text).unwrap();
    assert_eq!(ruledeck::fmt::format_source("deck_1mb.rule", &once).unwrap(), once);
}
