//! The lossless token stream (logos) and the pre-scan that runs before pest.
//!
//! Owns: the token set, and every limit that must hold *before* the recursive-descent
//! parser runs — source size, nesting depth, token length — plus the checks on literal
//! values (integer range, escapes, durations, times) that need only one token to decide.
//! Must not: know the grammar's structure. The pre-scan counts brackets and prefix
//! operators; it never decides what a construct means.
//!
//! Concatenating the slices of all tokens reproduces the source exactly (whitespace and
//! comments are tokens too), which the formatter and highlighting rely on.

use logos::Logos;

use crate::diagnostics::{Code, Diagnostic};
use crate::source::{FileId, Span};

use crate::limits::{MAX_NESTING, MAX_SOURCE_BYTES, MAX_TOKEN_BYTES};

/// Why the lexer could not produce a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LexError {
    #[default]
    UnexpectedChar,
    UnterminatedString,
    UnterminatedComment,
}

/// One token. Keywords are `Ident`s: which words are keywords is the grammar's decision.
#[derive(Logos, Clone, Copy, Debug, PartialEq, Eq)]
#[logos(error = LexError)]
pub enum Token {
    #[regex(r"[ \t\r\n]+")]
    Whitespace,
    #[regex(r"//[^\n]*", allow_greedy = true)]
    LineComment,
    #[token("/*", block_comment)]
    BlockComment,
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*")]
    Ident,
    #[regex(r"[0-9][0-9_]*")]
    Int,
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*")]
    Float,
    #[regex(r"[0-9][0-9_]*(\.[0-9][0-9_]*)?%")]
    Percent,
    #[regex(r"[0-9][0-9_]*[smhd]")]
    Duration,
    #[regex(r"@[0-9A-Za-z:.+\-]+")]
    Time,
    #[token("\"", text_literal)]
    Text,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("..")]
    DotDot,
    #[token("=>")]
    FatArrow,
    #[token("->")]
    Arrow,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<=")]
    LtEq,
    #[token(">=")]
    GtEq,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("=")]
    Eq,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    PercentSign,
}

impl Token {
    /// Whitespace and comments: present in the stream, meaningless to the grammar.
    pub fn is_trivia(self) -> bool {
        matches!(self, Token::Whitespace | Token::LineComment | Token::BlockComment)
    }
}

fn block_comment(lex: &mut logos::Lexer<Token>) -> Result<(), LexError> {
    match lex.remainder().find("*/") {
        Some(i) => {
            lex.bump(i + 2);
            Ok(())
        }
        None => {
            lex.bump(lex.remainder().len());
            Err(LexError::UnterminatedComment)
        }
    }
}

/// Text literals end at the first unescaped quote; a newline or the end of input first
/// means the literal is unterminated (raw newlines are not allowed inside text).
fn text_literal(lex: &mut logos::Lexer<Token>) -> Result<(), LexError> {
    let rest = lex.remainder().as_bytes();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'"' => {
                lex.bump(i + 1);
                return Ok(());
            }
            b'\n' => break,
            // An escape swallows the next byte, unless that is a newline (then unterminated).
            b'\\' if rest.get(i + 1).is_some_and(|&b| b != b'\n') => i += 2,
            _ => i += 1,
        }
    }
    // Stop at a char boundary before the newline/end so the span stays valid UTF-8.
    let mut end = i.min(rest.len());
    while !lex.remainder().is_char_boundary(end) {
        end -= 1;
    }
    lex.bump(end);
    Err(LexError::UnterminatedString)
}

/// Every token of `src` with its byte range, errors included. Lossless.
pub fn tokens(src: &str) -> impl Iterator<Item = (Result<Token, LexError>, std::ops::Range<usize>)> + '_ {
    Token::lexer(src).spanned()
}

/// Checks everything that must hold before pest runs. An empty result means the file is
/// safe to hand to the parser: pest's recursion is bounded by [`MAX_NESTING`].
pub fn prescan(file: FileId, src: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if src.len() > MAX_SOURCE_BYTES {
        diags.push(
            Diagnostic::error(
                Code::SourceTooLarge,
                Span::new(file, 0, 0),
                format!("this file is {} bytes; the limit is {} bytes", src.len(), MAX_SOURCE_BYTES),
            )
            .with_help("split the deck into several files; names are shared across all files of one compilation"),
        );
        return diags;
    }
    let span = |r: &std::ops::Range<usize>| Span::new(file, r.start, r.end);
    let mut depth = 0usize;
    let mut prefix_run = 0usize;
    let mut previous: Option<(Token, usize)> = None; // last non-trivia token and its end
                                                     // Characters already reported as part of the previous error (the second `&` of `&&`).
    let mut reported_to = 0;
    for (token, range) in tokens(src) {
        let token = match token {
            Ok(t) => t,
            Err(_) if range.start < reported_to => continue,
            Err(LexError::UnexpectedChar) if matches!(src.get(range.start..range.start + 2), Some("&&" | "||")) => {
                let (op, word) = if src.as_bytes()[range.start] == b'&' { ("&&", "and") } else { ("||", "or") };
                reported_to = range.start + 2;
                diags.push(
                    Diagnostic::error(
                        Code::UnexpectedChar,
                        Span::new(file, range.start, range.start + 2),
                        format!("`{op}` is not an operator in ruledeck"),
                    )
                    .with_label("not an operator")
                    .with_help(format!("write `{word}`")),
                );
                continue;
            }
            Err(e) => {
                diags.push(lex_error(e, span(&range), &src[range.clone()]));
                // The rest of the file is garbage after an unterminated comment; stop there.
                if e == LexError::UnterminatedComment {
                    break;
                }
                continue;
            }
        };
        if token.is_trivia() {
            continue;
        }
        let text = &src[range.clone()];
        if range.len() > MAX_TOKEN_BYTES {
            diags.push(
                Diagnostic::error(
                    Code::TokenTooLong,
                    Span::new(file, range.start, range.start + 1),
                    format!("this token is {} bytes long; the limit is {MAX_TOKEN_BYTES} bytes", range.len()),
                )
                .with_help("keep names and text literals short; long lists belong in a tag provider"),
            );
        }
        let is_prefix = matches!(token, Token::Minus) || (token == Token::Ident && text == "not");
        prefix_run = if is_prefix { prefix_run + 1 } else { 0 };
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Int => {
                let negated = matches!(previous, Some((Token::Minus, end)) if end == range.start);
                check_int(text, negated, span(&range), &mut diags);
            }
            Token::Float if !text.replace('_', "").parse::<f64>().is_ok_and(f64::is_finite) => {
                diags.push(
                    Diagnostic::error(Code::NumberOutOfRange, span(&range), "float literal out of range")
                        .with_label("too large for a 64-bit float")
                        .with_note(format!("floats range up to about {:e}", f64::MAX)),
                );
            }
            Token::Duration => check_duration(text, span(&range), &mut diags),
            Token::Time => {
                if let Err(d) = parse_time(text, span(&range)) {
                    diags.push(d);
                }
            }
            Token::Text => check_escapes(text, range.start, file, &mut diags),
            _ => {}
        }
        if depth + prefix_run > MAX_NESTING {
            diags.push(
                Diagnostic::error(
                    Code::NestingTooDeep,
                    span(&range),
                    format!("expression nests deeper than {MAX_NESTING} levels"),
                )
                .with_label("nesting limit exceeded here")
                .with_note("brackets, `not` and unary `-` each add a level")
                .with_help("split the condition into named rules and combine them"),
            );
            // Counting further would only repeat the same error for every deeper token.
            return diags;
        }
        previous = Some((token, range.end));
    }
    diags
}

fn lex_error(e: LexError, span: Span, text: &str) -> Diagnostic {
    match e {
        LexError::UnexpectedChar => {
            let c = text.chars().next().unwrap_or('\0');
            Diagnostic::error(Code::UnexpectedChar, span, format!("unexpected character {c:?}"))
                .with_label("no token starts with this character")
                .with_note("tokens are names, numbers, `\"text\"`, `@time`, durations, percentages and operators")
        }
        LexError::UnterminatedString => {
            Diagnostic::error(Code::UnterminatedString, span, "text literal is not terminated")
                .with_label("this literal has no closing `\"` on its line")
                .with_help("close it with `\"`; write a line break inside text as `\\n`")
        }
        LexError::UnterminatedComment => Diagnostic::error(
            Code::UnterminatedComment,
            Span { end: span.start + 2, ..span },
            "block comment is not terminated",
        )
        .with_label("this `/*` has no matching `*/`")
        .with_help("close the comment with `*/`"),
    }
}

fn digits_value(text: &str) -> Option<u64> {
    let mut value: u64 = 0;
    for b in text.bytes().filter(|&b| b != b'_') {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

fn check_int(text: &str, negated: bool, span: Span, diags: &mut Vec<Diagnostic>) {
    let limit = if negated { i64::MAX as u64 + 1 } else { i64::MAX as u64 };
    if digits_value(text).is_none_or(|v| v > limit) {
        diags.push(
            Diagnostic::error(Code::NumberOutOfRange, span, "integer literal out of range")
                .with_label("does not fit in 64-bit signed integer")
                .with_note(format!("integers range from {} to {}", i64::MIN, i64::MAX)),
        );
    }
}

/// Seconds in one unit of a duration suffix.
pub fn duration_unit_seconds(unit: u8) -> i64 {
    match unit {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        _ => 86_400,
    }
}

/// The value of a duration literal in seconds, if it fits.
pub fn duration_seconds(text: &str) -> Option<i64> {
    let (digits, unit) = text.split_at(text.len() - 1);
    let n = i64::try_from(digits_value(digits)?).ok()?;
    n.checked_mul(duration_unit_seconds(unit.as_bytes()[0]))
}

fn check_duration(text: &str, span: Span, diags: &mut Vec<Diagnostic>) {
    if duration_seconds(text).is_none() {
        diags.push(
            Diagnostic::error(Code::InvalidDuration, span, "duration literal out of range")
                .with_label("too long to represent in seconds")
                .with_note("durations are whole numbers of s, m, h or d that fit in 64-bit seconds"),
        );
    }
}

/// Parses `@2026-11-21T08:00:00Z` into seconds since the Unix epoch (UTC).
pub fn parse_time(text: &str, span: Span) -> Result<i64, Diagnostic> {
    use crate::time::{parse_literal, TimeError};
    let body = text.strip_prefix('@').unwrap_or(text);
    parse_literal(body).map_err(|e| match e {
        TimeError::LeapSecond => {
            Diagnostic::error(Code::InvalidTime, span, "leap seconds (`:60`) are not supported in time literals")
                .with_help("use `:59` of the same minute, or `:00` of the next")
        }
        TimeError::Fraction => Diagnostic::error(Code::InvalidTime, span, "time literals have whole-second precision")
            .with_help("drop the fractional seconds"),
        TimeError::Invalid(e) => {
            let e = e.strip_prefix("not an RFC 3339 instant: ").unwrap_or(&e).to_string();
            Diagnostic::error(Code::InvalidTime, span, format!("invalid time literal: {e}"))
                .with_label("not an RFC 3339 instant")
                .with_help("write times like `@2026-11-21T08:00:00Z`")
        }
    })
}

/// Decodes the body of a text literal (between the quotes). `Err` carries the byte range,
/// relative to the body, of the first invalid escape.
pub fn unescape(body: &str) -> Result<String, (std::ops::Range<usize>, String)> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '"')) => out.push('"'),
            Some((_, '\\')) => out.push('\\'),
            Some((_, 'n')) => out.push('\n'),
            Some((_, 't')) => out.push('\t'),
            Some((_, 'u')) => {
                let rest = &body[i + 2..];
                let close = rest.find('}');
                let hex = match (rest.strip_prefix('{'), close) {
                    (Some(_), Some(close)) => &rest[1..close],
                    _ => return Err((i..i + 2, "write unicode escapes as `\\u{1F600}`".into())),
                };
                let end = i + 2 + close.unwrap_or(0) + 1;
                let digits_only = !hex.is_empty() && hex.len() <= 6 && hex.bytes().all(|b| b.is_ascii_hexdigit());
                match u32::from_str_radix(hex, 16).ok().filter(|_| digits_only).and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None if !digits_only => {
                        return Err((i..end, "write 1 to 6 hex digits between the braces, like `\\u{e9}`".into()))
                    }
                    None => return Err((i..end, format!("`{hex}` is not a unicode scalar value"))),
                }
                for _ in 0..hex.len() + 2 {
                    chars.next();
                }
            }
            Some((j, other)) => {
                return Err((i..j + other.len_utf8(), "allowed escapes are \\\" \\\\ \\n \\t \\u{…}".into()));
            }
            None => return Err((i..i + 1, "a text literal cannot end with a lone `\\`".into())),
        }
    }
    Ok(out)
}

fn check_escapes(text: &str, start: usize, file: FileId, diags: &mut Vec<Diagnostic>) {
    let body = &text[1..text.len() - 1];
    if let Err((range, help)) = unescape(body) {
        let at = start + 1;
        diags.push(
            Diagnostic::error(
                Code::InvalidEscape,
                Span::new(file, at + range.start, at + range.end),
                "invalid escape in text literal",
            )
            .with_help(help),
        );
    }
}
