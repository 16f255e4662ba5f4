//! The `rule` code blocks of `README.md` and `docs/language.md` are checked like code.
//!
//! A block's info string says what it must do:
//!
//! - ` ```rule ` — a complete deck: it compiles (`ruledeck::compile`) without warnings, and
//!   its `test` blocks, if any, pass.
//! - ` ```rule,warning=W0506 ` — a deck that compiles, and every warning it reports has that
//!   code (at least one does).
//! - ` ```rule,error=E0201 ` — a deck that must fail, and every error it reports has that code
//!   (at least one does).
//! - ` ```rule,fragment ` — an outline of one part of a deck (an `instance`, a `strategy`),
//!   with `…` for elided text: every token in it is valid (the pre-parse scan passes),
//!   nothing more. Kept rare: an example that can be made complete should be.
//!
//! Any other marker after `rule,` is an error, so a typo cannot switch a block's check off.
//! Blocks of other languages (` ```sh `, ` ```json `, untagged) are not looked at.
//!
//! Numbers reported in two documents are kept equal: the release measurements of
//! `docs/releases.md` are copied in `docs/performance.md`.

use std::path::Path;

use ruledeck::diagnostics::Severity;

/// The documents whose `rule` blocks are checked.
const DOCS: &[&str] = &["README.md", "docs/language.md"];

#[derive(Debug, PartialEq)]
enum Expect {
    Compiles,
    Warns(String),
    Fails(String),
    Fragment,
}

#[derive(Debug)]
struct Block {
    /// `FILE:LINE` of the opening fence.
    place: String,
    expect: Expect,
    text: String,
}

/// The fenced `rule` blocks of `doc`, or an error naming a block whose info string is not
/// one of the forms above or a fence that is never closed.
fn rule_blocks(doc: &str) -> Result<Vec<Block>, String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).map_err(|e| format!("{doc}: {e}"))?;
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else { continue };
        let indent = line.len() - trimmed.len();
        let place = format!("{doc}:{}", n + 1);
        let mut body = String::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            body.push_str(line.get(indent..).filter(|_| line[..indent].trim().is_empty()).unwrap_or(line));
            body.push('\n');
        }
        if !closed {
            return Err(format!("{place}: the code block is never closed"));
        }
        let mut parts = info.trim().split(',');
        if parts.next() != Some("rule") {
            continue;
        }
        let expect = match parts.next().map(str::trim) {
            None => Expect::Compiles,
            Some("fragment") => Expect::Fragment,
            Some(marker) => match (marker.strip_prefix("error="), marker.strip_prefix("warning=")) {
                (Some(code), _) if code.starts_with('E') && code.len() == 5 => Expect::Fails(code.to_string()),
                (_, Some(code)) if code.starts_with('W') && code.len() == 5 => Expect::Warns(code.to_string()),
                _ => {
                    return Err(format!(
                        "{place}: unknown marker `{marker}` (use `fragment`, `error=EXXXX` or `warning=WXXXX`)"
                    ))
                }
            },
        };
        if let Some(extra) = parts.next() {
            return Err(format!("{place}: one marker per block; `{extra}` is one too many"));
        }
        blocks.push(Block { place, expect, text: body });
    }
    Ok(blocks)
}

/// What is wrong with one block, if anything.
fn check_block(block: &Block) -> Result<(), String> {
    let name = "example.rule";
    match &block.expect {
        Expect::Compiles | Expect::Warns(_) => {
            let files = [(name, block.text.as_str())];
            let checked = ruledeck::check(&files).map_err(|e| format!("does not compile:\n{e}"))?;
            let warnings: Vec<&str> = checked.warnings.iter().map(|d| d.code.as_str()).collect();
            let wrong = match &block.expect {
                Expect::Warns(code) => warnings.is_empty() || warnings.iter().any(|c| c != code),
                _ => !warnings.is_empty(),
            };
            if wrong {
                let rendered = ruledeck::diagnostics::render_text(&checked.sources, &checked.warnings);
                return Err(format!("its warnings are not what its marker says: {warnings:?}\n{rendered}"));
            }
            let program = ruledeck::compile(&files).map_err(|e| format!("does not compile:\n{e}"))?;
            // A test whose outcome reads the wall clock fails whatever the clock says, so the
            // system clock (`None`) cannot make this pass on one day and fail on another.
            let options = ruledeck::testing::TestOptions { filter: None, tags: None, wall_clock: None };
            let report = ruledeck::testing::run(&checked, &program, &options);
            if report.failed() > 0 {
                let text = ruledeck::testing::render_text(&report, &checked.sources, false);
                return Err(format!("its tests fail:\n{text}"));
            }
            Ok(())
        }
        Expect::Fails(code) => match ruledeck::compile(&[(name, block.text.as_str())]) {
            Ok(_) => Err(format!("compiles, but is marked to fail with {code}")),
            Err(e) => {
                let errors: Vec<&str> =
                    e.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.code.as_str()).collect();
                if errors.is_empty() || errors.iter().any(|c| c != code) {
                    return Err(format!("should report only {code}, reports {errors:?}:\n{e}"));
                }
                Ok(())
            }
        },
        Expect::Fragment => {
            // `…` (3 bytes) marks elided text; blank it out byte for byte so spans still fit.
            let text = block.text.replace('…', "   ");
            let diags = ruledeck::syntax::lexer::prescan(0, &text);
            if diags.is_empty() {
                return Ok(());
            }
            let mut sources = ruledeck::source::Sources::new();
            sources.add(name, text);
            Err(format!("does not lex:\n{}", ruledeck::diagnostics::render_text(&sources, &diags)))
        }
    }
}

#[test]
fn rule_blocks_in_the_docs_do_what_their_marker_says() {
    let mut problems = Vec::new();
    let mut counts = [0usize; 4];
    for doc in DOCS {
        let blocks = match rule_blocks(doc) {
            Ok(blocks) => blocks,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for block in &blocks {
            counts[match block.expect {
                Expect::Compiles => 0,
                Expect::Fails(_) => 1,
                Expect::Fragment => 2,
                Expect::Warns(_) => 3,
            }] += 1;
            if let Err(e) = check_block(block) {
                problems.push(format!("{}: {e}\n--- block ---\n{}", block.place, block.text));
            }
        }
    }
    assert!(problems.is_empty(), "{} doc blocks are wrong:\n\n{}", problems.len(), problems.join("\n\n"));
    // The docs have examples of each kind; a parser that found none would pass vacuously.
    assert!(counts[0] >= 5 && counts[1] >= 20, "too few rule blocks found: {counts:?}");
}

/// The extractor reads the three forms, strips a list item's indent, and refuses a typo.
#[test]
fn markers_are_parsed_as_documented() {
    let doc = "tests/fixtures/docs/markers.md";
    let blocks = rule_blocks(doc).unwrap();
    let kinds: Vec<&Expect> = blocks.iter().map(|b| &b.expect).collect();
    assert_eq!(
        kinds,
        [&Expect::Compiles, &Expect::Fails("E0201".into()), &Expect::Fragment, &Expect::Warns("W0506".into())]
    );
    assert_eq!(blocks[2].text, "rule user r = user.x > 1\n", "indented blocks lose their indent");
    let bad = rule_blocks("tests/fixtures/docs/bad_marker.md").unwrap_err();
    assert!(bad.contains("bad_marker.md:3: unknown marker `eror=E0201`"), "{bad}");
}

/// The `|` rows of the section that starts at `heading` (up to the next `## ` heading).
fn table_rows(doc: &str, heading: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
    let start = text.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("{doc} has no `{heading}`"));
    let section = &text[start + heading.len() + 2..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    section.lines().filter(|l| l.starts_with('|')).map(str::to_string).collect()
}

/// The performance document carries the release measurements (with their commands) that
/// the release document reports, so re-measuring one and not the other fails here.
#[test]
fn performance_carries_the_release_measurements() {
    let measured = table_rows("docs/releases.md", "## Measured");
    assert!(measured.iter().any(|r| r.contains("ruledeck release deck_1mb.rule")), "{measured:?}");
    assert_eq!(table_rows("docs/performance.md", "## Releases"), measured);
}
