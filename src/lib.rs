//! ruledeck: a compiler (and, later, a bytecode VM) for the rule and strategy language of an
//! e-commerce decision engine.
//!
//! The pipeline flows one way: text → AST ([`syntax`]) → typed deck ([`check`]) → bytecode
//! → VM. No stage reaches back into an earlier one.
//!
//! ```
//! let src = r#"
//! entity user key uid
//! tag user.risk_score: int from "risk"
//! rule user low_risk = user.risk_score < 30
//! "#;
//! let checked = ruledeck::check(&[("deck.rule", src)]).expect("a valid deck");
//! assert_eq!(checked.deck.rules[0].name, "low_risk");
//!
//! let err = ruledeck::check(&[("bad.rule", "rule user r = user.nope > 1")]).unwrap_err();
//! assert!(err.to_string().contains("--> bad.rule:1:1"));
//! ```
#![forbid(unsafe_code)]
// Diagnostics are large but only travel on the error path; boxing them buys nothing.
#![allow(clippy::result_large_err)]

// pest is built without its `std` feature (which probes the native stack on every grammar
// rule, 12% of compile time; our pre-scan already bounds nesting), and its derive then
// names the `alloc` crate.
extern crate alloc;

pub mod check;
pub mod compile;
pub mod diagnostics;
pub mod engine;
pub mod fmt;
pub mod fuzzing;
pub mod source;
pub mod syntax;
pub mod testing;
pub mod vm;


use check::typed::Deck;
use diagnostics::{Code, Diagnostic};
use source::{FileId, Sources, Span};

/// A deck that passed every check, with the sources its spans point into.
#[derive(Debug)]
pub struct Checked {
    pub sources: Sources,
    pub deck: Deck,
}

/// Every diagnostic of a failed compilation, with the sources needed to render them.
/// `Display` renders them rustc-style.
#[derive(Debug)]
pub struct Errors {
    pub sources: Sources,
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(diagnostics::render_text(&self.sources, &self.diagnostics).trim_end())
    }
}

impl std::error::Error for Errors {}

/// Parses and checks `(file name, source text)` pairs as one program.
pub fn check(files: &[(&str, &str)]) -> Result<Checked, Errors> {
    let mut sources = Sources::new();
    for (name, text) in files {
        sources.add(*name, *text);
    }
    check_sources(sources)
}

/// Parses and checks files already gathered in `sources` (see [`add_file_bytes`]).
pub fn check_sources(sources: Sources) -> Result<Checked, Errors> {
    match check::check(&sources) {
        Ok(deck) => Ok(Checked { sources, deck }),
        Err(diagnostics) => Err(Errors { sources, diagnostics }),
    }
}

/// Parses, checks and compiles `(file name, source text)` pairs into a verified program.
pub fn compile(files: &[(&str, &str)]) -> Result<compile::program::Program, Errors> {
    let checked = check(files)?;
    compile_checked(checked)
}

/// Compiles an already checked deck.
pub fn compile_checked(checked: Checked) -> Result<compile::program::Program, Errors> {
    compile::compile(&checked).map_err(|e| {
        // Unreachable unless the compiler has a bug; reported, never panicked on.
        let d = Diagnostic::error(Code::Internal, Span::default(), format!("internal compiler error: {e}"))
            .with_note("the compiled program failed verification; please report this with the deck that caused it");
        Errors { sources: checked.sources, diagnostics: vec![d] }
    })
}

/// Adds a file read as bytes. Invalid UTF-8 is not an I/O failure but a diagnostic that
/// points at the first bad byte (the file is kept, lossily decoded, so it can be shown).
pub fn add_file_bytes(sources: &mut Sources, name: &str, bytes: Vec<u8>) -> (FileId, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(text) => (sources.add(name, text), None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let id = sources.add(name, text);
            // The lossy text replaces the bad byte(s) with U+FFFD (3 bytes) at the same offset.
            let d = Diagnostic::error(
                Code::InvalidUtf8,
                Span::new(id, at, at + '\u{FFFD}'.len_utf8()),
                "file is not valid UTF-8",
            )
            .with_label(format!("invalid byte at offset {at}"))
            .with_help("save the file as UTF-8");
            (id, Some(d))
        }
    }
}
