//! Text → AST: the pre-scan, the pest parser and the arena syntax tree.
//!
//! Owns everything up to and including the untyped AST. Must not resolve names or types.

pub mod ast;
pub mod lexer;
pub mod parser;

use bumpalo::Bump;

/// The reserved words: none may be a name. `grammar/ruledeck.pest`'s `reserved` rule is the
/// source of truth; `tests/syntax.rs` checks this list against it word by word (each is
/// refused as a name, and each with a letter added is accepted) and against the docs.
pub const RESERVED_WORDS: [&str; 25] = [
    "and",
    "or",
    "not",
    "in",
    "is",
    "between",
    "before",
    "after",
    "within",
    "older",
    "matches",
    "contains",
    "contains_any",
    "contains_all",
    "starts_with",
    "ends_with",
    "true",
    "false",
    "len",
    "entity",
    "tag",
    "rule",
    "layer",
    "scene",
    "test",
];

use crate::diagnostics::Diagnostic;
use crate::source::FileId;

/// Pre-scans and parses one file into an AST in `bump`. The pre-scan runs first and, if it
/// finds anything, pest never sees the file: its recursion is only safe within the limits.
pub fn parse<'a>(bump: &'a Bump, file: FileId, src: &str) -> Result<ast::File<'a>, Vec<Diagnostic>> {
    let diags = lexer::prescan(file, src);
    if !diags.is_empty() {
        return Err(diags);
    }
    parser::parse_file(bump, file, src)
}
