//! `ruledeck fmt`: the one canonical layout of a `.rule` file.
//!
//! Owns: turning the lossless token stream into a layout document ([`layout`]) and
//! printing it ([`doc`]), and the check that the printed text holds the same tokens and
//! comments in the same order. Must not: change what a file means, move a comment to
//! another place, or touch a file that does not parse (that file is returned untouched with
//! its diagnostics). The style rules are documented in `docs/formatting.md`.

mod doc;
mod layout;

use crate::diagnostics::{Code, Diagnostic};
use crate::source::{Sources, Span};
use crate::syntax::lexer::{self, Token};
use crate::Errors;

/// The line width the layout aims for. Lines only exceed it where nothing can break.
pub const WIDTH: usize = 100;

/// Formats one source file canonically. Err carries the parse diagnostics; the text is left untouched.
pub fn format_source(name: &str, text: &str) -> Result<String, Errors> {
    let mut sources = Sources::new();
    let file = sources.add(name, text);
    // What the parser reads: a byte order mark is not part of the text (and is not kept).
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let bump = bumpalo::Bump::new();
    if let Err(diagnostics) = crate::syntax::parse(&bump, file, text) {
        return Err(Errors { sources, diagnostics });
    }
    drop(bump);
    let internal = |sources, offset: usize, what: String| {
        let d = Diagnostic::error(
            Code::Internal,
            Span::new(file, offset, offset),
            format!("internal formatter error: {what}"),
        )
        .with_note("the file was left untouched; please report this with the file that caused it");
        Err(Errors { sources, diagnostics: vec![d] })
    };
    let doc = match layout::layout(text) {
        Ok(doc) => doc,
        Err(e) => return internal(sources, e.offset, format!("unexpected `{}`", e.found)),
    };
    let formatted = doc::print(&doc, WIDTH);
    // A bug in the layout must never reach a user's file: the output has to hold exactly
    // the same tokens and comments, in the same order.
    if let Some(offset) = first_difference(text, &formatted) {
        return internal(sources, offset, "the formatted text would differ in its tokens or comments".into());
    }
    Ok(formatted)
}

/// What the formatter must keep: every token and comment, in order. A trailing comma before
/// a closing bracket may go; a minus sign keeps whether it touches the number after it
/// (`-5` is one literal, `- 5` negates 5).
fn significant(src: &str) -> Vec<(usize, String)> {
    let toks: Vec<_> = lexer::tokens(src).filter(|(t, _)| t.map_or(true, |t| t != Token::Whitespace)).collect();
    let mut out = Vec::with_capacity(toks.len());
    for (i, (token, range)) in toks.iter().enumerate() {
        let text = &src[range.clone()];
        let next_significant = toks[i + 1..].iter().find(|(t, _)| !t.is_ok_and(Token::is_trivia));
        match token {
            Ok(Token::Comma)
                if next_significant
                    .is_some_and(|(t, _)| matches!(t, Ok(Token::RParen | Token::RBracket | Token::RBrace))) => {}
            Ok(Token::Minus)
                if prefix_position(src, &toks[..i])
                    && toks.get(i + 1).is_some_and(|(_, r)| {
                        r.start == range.end && src[r.clone()].starts_with(|c: char| c.is_ascii_digit())
                    }) =>
            {
                out.push((range.start, "-#".to_string()));
            }
            Ok(Token::LineComment) => out.push((range.start, text.trim_end().to_string())),
            _ => out.push((range.start, text.to_string())),
        }
    }
    out
}

/// Whether a minus after `before` is a prefix (where `-5` is one literal and `- 5` a
/// negation) rather than the binary operator: after a value (`group -1` is `group - 1` to the
/// grammar) its spacing means nothing.
fn prefix_position(src: &str, before: &[(Result<Token, lexer::LexError>, std::ops::Range<usize>)]) -> bool {
    let Some((Ok(token), range)) = before.iter().rev().find(|(t, _)| !t.is_ok_and(Token::is_trivia)) else {
        return true;
    };
    let ends_a_value = match token {
        Token::Ident => !crate::syntax::RESERVED_WORDS.contains(&&src[range.clone()]),
        Token::Int
        | Token::Float
        | Token::Percent
        | Token::Duration
        | Token::Time
        | Token::Text
        | Token::RParen
        | Token::RBracket
        | Token::RBrace => true,
        _ => false,
    };
    !ends_a_value
}

/// The source offset of the first token or comment the formatted text does not keep.
fn first_difference(src: &str, formatted: &str) -> Option<usize> {
    let (a, b) = (significant(src), significant(formatted));
    let at = a.iter().zip(&b).position(|(x, y)| x.1 != y.1);
    match at {
        Some(i) => Some(a[i].0),
        None if a.len() != b.len() => Some(a.get(b.len()).map_or(src.len(), |t| t.0)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_does_not_parse_is_refused() {
        let err = format_source("bad.rule", "rule user r = ").unwrap_err();
        assert_eq!(err.diagnostics[0].code, Code::Syntax);
    }

    #[test]
    fn the_check_notices_a_lost_token() {
        assert_eq!(first_difference("rule a = b", "rule a ="), Some(9));
        assert_eq!(first_difference("x > - 5", "x > -5"), Some(4));
        // After a value the minus is the binary operator, whatever its spacing.
        assert_eq!(first_difference("x -5", "x - 5"), None);
        assert_eq!(first_difference("[a, b,]", "[a, b]"), None);
        assert_eq!(first_difference("a // c  \n", "a // c\n"), None);
    }
}
