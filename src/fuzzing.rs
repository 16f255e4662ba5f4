//! The properties the fuzz targets check, shared with the tests that replay their corpora.
//!
//! Owns: what "never crashes" means for each entry point. Each function panics exactly when
//! the property is violated, which is what libFuzzer reports as a crash — and what an
//! ordinary `#[test]` replaying the seed and regression files reports as a failure. Keeping
//! the properties here means the fuzzer and the test suite can never check different things.
#![doc(hidden)]

use crate::compile::bundle;
use crate::compile::program::{Program, Ty};
use crate::diagnostics::{render_json, render_text, Code};
use crate::source::Sources;
use crate::vm::{Input, Step};

/// Any bytes: decoding and parsing never panic, and rendering whatever diagnostics come out
/// never panics either.
pub fn parse_bytes(data: &[u8]) {
    let mut sources = Sources::new();
    let (_, problem) = crate::add_file_bytes(&mut sources, "fuzz.rule", data.to_vec());
    let diagnostics = match problem {
        Some(d) => vec![d],
        None => {
            let bump = bumpalo::Bump::new();
            match crate::syntax::parse(&bump, 0, &sources.get(0).text) {
                Ok(_) => Vec::new(),
                Err(d) => d,
            }
        }
    };
    let _ = render_text(&sources, &diagnostics);
}

/// Any UTF-8 text: checking never panics and never reports an internal error; a deck that
/// checks clean compiles into a program the verifier accepts.
pub fn check_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::compile(&[("fuzz.rule", text)]) {
        Ok(program) => {
            let _ = crate::compile::disasm::disassemble(&program);
            run_everything(&program);
        }
        Err(errors) => {
            assert!(
                !errors.diagnostics.iter().any(|d| d.code == Code::Internal),
                "internal error on a deck:\n{errors}"
            );
            let _ = render_text(&errors.sources, &errors.diagnostics);
            let _ = render_json(&errors.sources, &errors.diagnostics);
        }
    }
}

/// Any bytes: loading a bundle never panics, and a bundle the verifier accepts runs every
/// instance without panicking. The input is tried as it is and again behind a repaired
/// header (magic, version, length, checksum): random bytes almost never carry a valid
/// checksum, and without the repair the decoder and the verifier would hardly be reached.
/// The same bytes are read as a release manifest and as a release journal too.
pub fn bundle_bytes(data: &[u8]) {
    // The other files a release store reads back: manifests and the journal. Refused or
    // accepted, never a panic.
    let _ = crate::release::store::parse_manifest(data, 1);
    let _ = crate::release::store::parse_journal(data);
    let payload = if data.len() >= 24 && &data[..8] == bundle::MAGIC { &data[24..] } else { data };
    let mut repaired = Vec::with_capacity(24 + payload.len());
    repaired.extend_from_slice(bundle::MAGIC);
    repaired.extend_from_slice(&bundle::FORMAT_VERSION.to_le_bytes());
    repaired.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    repaired.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    repaired.extend_from_slice(payload);
    for bytes in [data, &repaired[..]] {
        if let Ok(program) = bundle::from_bytes(bytes) {
            let _ = crate::compile::disasm::disassemble(&program);
            run_everything(&program);
        }
    }
}

/// Runs every instance of a program once, supplying a plausible value for every tag.
pub fn run_everything(program: &Program) {
    for scene in &program.scenes {
        for instance in &scene.instances {
            let Ok(mut req) = program.request(&scene.name, &instance.name) else { continue };
            req.explain(true).now(1_795_000_000);
            for &e in &scene.keys {
                let key = program.entities[e as usize].key.clone();
                let _ = req.key(&key, "u-1");
            }
            for &t in &scene.passes {
                let tag = &program.tags[t as usize];
                let _ = req.pass(&tag.name, sample(program, tag.ty));
            }
            for _ in 0..program.tags.len() + 1 {
                match program.run(&mut req) {
                    Ok(Step::NeedTags) => {
                        let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
                        for t in needed {
                            let ty = program.tags[t as usize].ty;
                            req.supply(t, Some(sample(program, ty)));
                        }
                    }
                    Ok(Step::Done) => {
                        let outcome = req.outcome();
                        let _ = crate::engine::outcome_json(&outcome, true);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

fn sample(program: &Program, ty: Ty) -> Input<'_> {
    match ty {
        Ty::Int => Input::Int(7),
        Ty::Float => Input::Float(0.5),
        Ty::Text => Input::Text("x"),
        Ty::Bool => Input::Bool(true),
        Ty::Time => Input::Time(1_790_000_000),
        Ty::Enum(e) => Input::Text(program.enums.get(e as usize).and_then(|m| m.first()).map_or("", String::as_str)),
        Ty::List(_) => Input::List(&[]),
    }
}

/// Any UTF-8 text: formatting never panics; a file that does not parse comes back as an
/// error and never as text; formatted text formats to itself.
pub fn fmt_idempotent(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::fmt::format_source("fuzz.rule", text) {
        Ok(once) => {
            let twice = crate::fmt::format_source("fuzz.rule", &once)
                .unwrap_or_else(|e| panic!("formatted text does not format:\n{e}\n--- formatted:\n{once}"));
            assert_eq!(once, twice, "formatting is not idempotent; input:\n{text}");
        }
        Err(errors) => {
            assert!(
                !errors.diagnostics.iter().any(|d| d.code == Code::Internal),
                "internal formatter error:\n{errors}\n--- input:\n{text}"
            );
            let bump = bumpalo::Bump::new();
            assert!(
                crate::syntax::parse(&bump, 0, text.strip_prefix('\u{FEFF}').unwrap_or(text)).is_err(),
                "a file that parses was refused:\n{errors}"
            );
        }
    }
}

/// Any UTF-8 text that formats: the formatted text keeps the same comments, reports the same
/// diagnostics, compiles to the same program (ignoring source positions) and passes and
/// fails the same tests.
pub fn fmt_meaning(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(formatted) = crate::fmt::format_source("fuzz.rule", text) else { return };
    assert_eq!(comments(text), comments(&formatted), "comments differ; formatted:\n{formatted}");
    assert_eq!(meaning(text), meaning(&formatted), "meaning differs; input:\n{text}\n--- formatted:\n{formatted}");
}

/// The comments of a file, sorted (a multiset).
fn comments(src: &str) -> Vec<String> {
    use crate::syntax::lexer::{tokens, Token};
    let mut out: Vec<String> = tokens(src)
        .filter_map(|(t, r)| match t {
            Ok(Token::LineComment) => Some(src[r].trim_end().to_string()),
            Ok(Token::BlockComment) => Some(src[r].to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// What a deck means, with every source position left out: the diagnostic codes if it does
/// not check, else its warnings' codes, the compiled program (serialized without spans and
/// sources, and disassembled without source lines) and each test's outcome.
fn meaning(src: &str) -> String {
    let checked = match crate::check(&[("fuzz.rule", src)]) {
        Ok(c) => c,
        Err(errors) => {
            let mut codes: Vec<&str> = errors.diagnostics.iter().map(|d| d.code.as_str()).collect();
            codes.sort();
            return format!("errors {codes:?}");
        }
    };
    let mut program = match crate::compile::compile(&checked) {
        Ok(p) => p,
        Err(e) => return format!("internal {e}"),
    };
    let report = crate::testing::run(
        &checked,
        &program,
        &crate::testing::TestOptions { wall_clock: Some(1_795_000_000), ..Default::default() },
    );
    let mut warnings: Vec<&str> = checked.warnings.iter().map(|d| d.code.as_str()).collect();
    warnings.sort();
    let mut out = format!("warnings {warnings:?}\n");
    for line in crate::compile::disasm::disassemble(&program).lines() {
        out.push_str(line.split(" ; ").next().unwrap_or("").trim_end());
        out.push('\n');
    }
    for t in &report.tests {
        out.push_str(&format!("test {:?} {:?}\n", t.name, t.status));
        for f in &t.failures {
            out.push_str(&format!("  {} {} {} {:?}\n", f.expectation, f.expected, f.actual, f.why));
        }
    }
    program.spans.clear();
    program.sources.clear();
    out.push_str(&format!("{:?}", bundle::to_bytes(&program)));
    out
}
