//! Fixture-driven snapshot tests: one folder per stage, one `insta::glob!` test each.
//!
//! - `fixtures/parse/*.rule`: the AST (`{:#?}`), or the rendered diagnostics.
//! - `fixtures/check/*.rule`: the typed deck as `ruledeck::check::print_deck` shows it (one line
//!   per item, with its source location), or the rendered diagnostics.
//! - `fixtures/compile/*.rule`: the disassembled bytecode, each instruction with its source line.
//! - `fixtures/run/*.rule`: the test runner's report.
//!
//! A fixture named `err_*` must fail and one named otherwise must pass; `err_E0202_*` must
//! report `E0202`. Every diagnostic code has at least one `err_` fixture (checked below).

use std::path::Path;

use ruledeck::diagnostics::{render_text, Code, Diagnostic};
use ruledeck::source::Sources;

/// Loads a fixture under its bare file name, so snapshots do not depend on the checkout path.
fn load(path: &Path) -> (Sources, Option<Diagnostic>) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(path).unwrap();
    let mut sources = Sources::new();
    let (_, problem) = ruledeck::add_file_bytes(&mut sources, &name, bytes);
    (sources, problem)
}

/// Asserts the fixture's name agrees with its outcome and returns the text to snapshot.
fn outcome(path: &Path, sources: &Sources, result: Result<String, Vec<Diagnostic>>) -> String {
    let name = path.file_stem().unwrap().to_string_lossy();
    match result {
        Ok(text) => {
            assert!(!name.starts_with("err_"), "{name} should fail but passed");
            text
        }
        Err(diags) => {
            let rendered = render_text(sources, &diags);
            assert!(name.starts_with("err_"), "{name} should pass but failed:\n{rendered}");
            if let Some(code) =
                name.strip_prefix("err_").and_then(|rest| rest.split('_').next()).filter(|c| c.starts_with('E'))
            {
                assert!(rendered.contains(&format!("error[{code}]")), "{name} should report {code}:\n{rendered}");
            }
            rendered
        }
    }
}

#[test]
fn parse() {
    insta::glob!("fixtures/parse/*.rule", |path| {
        let (sources, problem) = load(path);
        let result = match problem {
            Some(d) => Err(vec![d]),
            None => {
                let bump = bumpalo::Bump::new();
                ruledeck::syntax::parse(&bump, 0, &sources.get(0).text).map(|file| format!("{file:#?}"))
            }
        };
        insta::assert_snapshot!(outcome(path, &sources, result));
    });
}

#[test]
fn check() {
    insta::glob!("fixtures/check/*.rule", |path| {
        let (sources, problem) = load(path);
        assert!(problem.is_none(), "check fixtures are valid UTF-8");
        let warn = path.file_name().unwrap().to_string_lossy().starts_with("warn_");
        let (sources, result) = match ruledeck::check_sources(sources) {
            // A `warn_` fixture compiles with warnings, and its snapshot holds them.
            Ok(checked) if warn || !checked.warnings.is_empty() => {
                assert!(warn && !checked.warnings.is_empty(), "only warn_ fixtures warn");
                let text = render_text(&checked.sources, &checked.warnings);
                if let Some(code) = path.file_stem().unwrap().to_string_lossy().split('_').nth(1) {
                    assert!(text.contains(&format!("warning[{code}]")), "should warn {code}:\n{text}");
                }
                (checked.sources, Ok(text))
            }
            Ok(checked) => {
                let text = ruledeck::check::print_deck(&checked.deck, &checked.sources);
                (checked.sources, Ok(text))
            }
            Err(errors) => (errors.sources, Err(errors.diagnostics)),
        };
        insta::assert_snapshot!(outcome(path, &sources, result));
    });
}

#[test]
fn compile() {
    insta::glob!("fixtures/compile/*.rule", |path| {
        let (sources, problem) = load(path);
        assert!(problem.is_none(), "compile fixtures are valid UTF-8");
        let checked = ruledeck::check_sources(sources).unwrap_or_else(|e| panic!("compile fixtures check clean:\n{e}"));
        let program = ruledeck::compile_checked(checked).unwrap_or_else(|e| panic!("{e}"));
        insta::assert_snapshot!(ruledeck::compile::disasm::disassemble(&program));
    });
}

/// `fixtures/run/*.rule`: the test runner's report (with coverage); `NAME.tags.json` beside a
/// fixture is its `--tags` data file.
#[test]
fn run() {
    insta::glob!("fixtures/run/*.rule", |path| {
        let (sources, _) = load(path);
        let checked = ruledeck::check_sources(sources).unwrap_or_else(|e| panic!("run fixtures check clean:\n{e}"));
        let program = ruledeck::compile::compile(&checked).unwrap();
        let tags = std::fs::read_to_string(path.with_extension("tags.json"))
            .ok()
            .map(|t| ruledeck::engine::TagsFile::from_json(serde_json::from_str(&t).unwrap()).unwrap());
        // Tests that forget `now` read the clock: the report must not depend on it.
        let report_at = |wall_clock| {
            let options = ruledeck::testing::TestOptions {
                filter: None,
                tags: tags.as_ref().map(|t| t as &dyn ruledeck::engine::Provider),
                wall_clock: Some(wall_clock),
            };
            ruledeck::testing::run(&checked, &program, &options)
        };
        let report = report_at(1_764_000_000); // 2025-11-24
        let later = report_at(4_102_444_800); // 2100-01-01
        assert_eq!(
            ruledeck::testing::render_text(&report, &checked.sources, true),
            ruledeck::testing::render_text(&later, &checked.sources, true),
            "the report depends on the wall clock"
        );
        insta::assert_snapshot!(ruledeck::testing::render_text(&report, &checked.sources, true));
    });
}

/// Codes without a fixture file: exercised by generated inputs in `tests/hostile.rs` (the
/// inputs are megabytes), or, for `Internal`, not reachable from any deck by design.
const GENERATED: &[Code] = &[Code::SourceTooLarge, Code::TooMany, Code::Internal];

#[test]
fn every_code_has_an_err_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names = Vec::new();
    for stage in ["parse", "check"] {
        for entry in std::fs::read_dir(dir.join(stage)).unwrap() {
            names.push(entry.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| !GENERATED.contains(code))
        .map(|code| code.as_str())
        .filter(|code| {
            !names.iter().any(|n| n.starts_with(&format!("err_{code}_")) || n.starts_with(&format!("warn_{code}_")))
        })
        .collect();
    assert!(missing.is_empty(), "codes without an err_ fixture: {missing:?}");
}

#[test]
fn every_code_is_documented_in_the_language_reference() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md")).unwrap();
    let missing: Vec<String> = Code::ALL
        .iter()
        .map(|code| format!("### {} — {code:?}", code.as_str()))
        .filter(|heading| !docs.contains(heading.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/language.md lacks headings: {missing:?}");
}
