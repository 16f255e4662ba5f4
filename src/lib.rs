//! ruledeck: a compiler and bytecode VM for the rule and strategy language of an
//! e-commerce decision engine.
//!
//! The pipeline flows one way: text → AST (`syntax`) → typed deck (`check`) → verified
//! bytecode (`compile`) → the VM (`vm`) → the host API ([`Engine`]). Each stage uses only
//! the stages before it, with one deliberate exception: `compile` uses `vm`. The verifier's
//! last step (`compile::verify`) calls `vm::plan::build` to precompute the VM's plans (how
//! each `when`, rule body and decision is best run), and the [`Program`] holds them
//! (`vm::plan::Plans`, never serialized). Building them there means every program that can
//! run, compiled or loaded from a bundle, has them, derived from bytecode already verified;
//! they change nothing the bytecode means. Hosts use what this page lists; the stage
//! modules are internals, public only so that the project's own tests, benchmarks and
//! fuzzers can reach them (they are hidden from these docs and may change without notice).
//!
//! # Deciding
//!
//! [`compile`] checks and compiles a deck into an immutable, `Send + Sync` [`Program`].
//! A [`Request`] names a scene and instance; the host gives keys, pass-through values and
//! `now`, then [`Request::run`]s it. The VM never blocks on I/O: when it reaches tags it
//! does not have it returns [`Step::NeedTags`], and [`Request::needed`] lists every tag the
//! current condition needs, so the host fetches them in one batch, supplies them and runs
//! again. A tag with no value is unknown, and unknown never grants.
//!
//! ```
//! use ruledeck::{Input, Step};
//!
//! let src = r#"
//! entity user key uid
//! tag user.risk_score: int from "risk"
//! tag ctx.channel: enum(app, h5) passthrough
//! rule user low_risk = user.risk_score < 30
//! scene payment {
//!   keys uid
//!   passes ctx.channel
//!   instance installments -> { count: int } {
//!     strategy boost when low_risk and ctx.channel == app => { count: 6 }
//!     default => { count: 1 }
//!   }
//! }
//! "#;
//! let program = ruledeck::compile(&[("payment.rule", src)]).expect("the deck compiles");
//! let mut req = program.request("payment", "installments").unwrap();
//! req.key("uid", "u-1001").unwrap().pass("ctx.channel", Input::Text("app")).unwrap();
//! req.now(1_795_248_000);
//!
//! // The first run suspends: `user.risk_score` has to be loaded.
//! assert_eq!(req.run(), Ok(Step::NeedTags));
//! let needed: Vec<_> = req.needed().map(|n| (n.tag, n.name, n.provider, n.key_value)).collect();
//! assert_eq!(needed, [(0, "user.risk_score", "risk", "u-1001")]);
//! req.supply(needed[0].0, Some(Input::Int(12)));
//!
//! // Resumed with the value, it decides.
//! assert_eq!(req.run(), Ok(Step::Done));
//! let outcome = req.outcome();
//! assert_eq!(outcome.strategy(), Some("boost"));
//! assert_eq!(outcome.fields().collect::<Vec<_>>(), [("count", ruledeck::FieldValue::Int(6))]);
//!
//! // Mistakes in a deck are diagnostics, rendered rustc-style.
//! let err = ruledeck::compile(&[("bad.rule", "rule user r = user.nope > 1")]).unwrap_err();
//! assert!(err.to_string().contains("--> bad.rule:1:1"));
//! ```
//!
//! Hosts with blocking providers hand the loop to an [`Engine`], which batches tags per
//! [`Provider`] and caches values for each tag's declared `cache` time.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Diagnostics are large but only travel on the error path; boxing them buys nothing.
#![allow(clippy::result_large_err)]

// pest is built without its `std` feature (which probes the native stack on every grammar
// rule, 12% of compile time; our pre-scan already bounds nesting), and its derive then
// names the `alloc` crate.
extern crate alloc;

// Stage modules: internals (see the crate docs).
#[doc(hidden)]
pub mod check;
#[doc(hidden)]
pub mod compile;
pub mod diagnostics;
pub mod engine;
pub mod files;
pub mod fmt;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod load;
#[cfg(feature = "lsp")]
pub mod lsp;
#[doc(hidden)]
pub mod ops;
#[cfg(feature = "outreach")]
pub mod outreach;
pub mod release;
#[cfg(feature = "serve")]
pub mod serve;
pub mod signature;
pub mod source;
#[doc(hidden)]
pub mod syntax;
#[doc(hidden)]
pub mod testing;
pub mod time;
#[doc(hidden)]
pub mod vm;

pub use compile::bundle::BundleError;
pub use compile::program::Program;
pub use diagnostics::{Code, Diagnostic, Severity};
pub use engine::{Engine, EngineError, Loaded, Observer, Provider, TagQuery, TagsFile};
pub use signature::{FieldSignature, ScalarType, Signature, TagSignature, ValueType};
pub use source::{Sources, Span};
pub use vm::{Decider, FieldValue, Input, Need, Outcome, Request, RequestError, Step, TraceEvent};

use check::typed::Deck;
use source::FileId;

/// A deck that passed every check, with the sources its spans point into.
#[derive(Debug)]
pub struct Checked {
    /// The files, for rendering the warnings.
    pub sources: Sources,
    /// The typed deck (an internal representation).
    pub deck: Deck,
    /// Problems that do not stop the deck from compiling (`check` prints them, exit 0).
    pub warnings: Vec<Diagnostic>,
}

/// Every diagnostic of a failed compilation, with the sources needed to render them.
/// `Display` renders them rustc-style.
#[derive(Debug)]
pub struct Errors {
    /// The files the diagnostics point into.
    pub sources: Sources,
    /// Every error (and warning) found, in source order.
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
        Ok((deck, warnings)) => Ok(Checked { sources, deck, warnings }),
        Err(diagnostics) => Err(Errors { sources, diagnostics }),
    }
}

/// Like [`check_sources`], with tag status judged against a release's items (see
/// [`check::status`]); also returns the fingerprints of the deck's items, which a release
/// of it records so that later checks can be judged against it.
pub fn check_sources_against(
    sources: Sources,
    baseline: Option<&check::status::Baseline>,
) -> Result<(Checked, Vec<String>), Errors> {
    match check::check_against(&sources, baseline) {
        Ok((deck, warnings, items)) => Ok((Checked { sources, deck, warnings }, items)),
        Err(diagnostics) => Err(Errors { sources, diagnostics }),
    }
}

/// Parses, checks and compiles `(file name, source text)` pairs into a verified program.
pub fn compile(files: &[(&str, &str)]) -> Result<Program, Errors> {
    let checked = check(files)?;
    compile_checked(checked)
}

/// Compiles an already checked deck.
pub fn compile_checked(checked: Checked) -> Result<Program, Errors> {
    compile::compile(&checked).map_err(|e| {
        // Unreachable unless the compiler has a bug; reported, never panicked on.
        let d = Diagnostic::unplaced(Code::Internal, format!("internal compiler error: {e}"))
            .with_note("the compiled program failed verification; please report this with the deck that caused it");
        Errors { sources: checked.sources, diagnostics: vec![d] }
    })
}

/// Adds a file read as bytes. Invalid UTF-8 is not an I/O failure but a diagnostic that
/// points at the first bad byte (the file is kept, lossily decoded, so it can be shown).
pub fn add_file_bytes(sources: &mut Sources, name: &str, mut bytes: Vec<u8>) -> (FileId, Option<Diagnostic>) {
    // Drop a byte order mark here, before offsets into the bytes are taken: `Sources::add`
    // would drop it from the decoded text and shift every offset by three.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
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
