//! From the token stream of a file that parses to its layout document.
//!
//! Owns: the style rules (see `docs/formatting.md`) and where each comment goes. Works on
//! the lossless token stream of `syntax::lexer`, walking it with a small recursive descent
//! that follows `grammar/ruledeck.pest`. Must not: decide whether a file is valid (the real
//! parser has accepted it before this runs) or produce tokens other than the file's own,
//! except that a trailing comma before a closing bracket is dropped.
//!
//! Comments: a comment on its own line stays on its own line before the token that follows
//! it, hoisted in front of the largest construct that starts at that token; a comment at the
//! end of a line stays at the end of that line, after the largest construct that ends
//! before it; a block comment after a token stays right after it.

use super::doc::Doc;
use crate::syntax::lexer::{self, Token};

/// What stands between two tokens, apart from whitespace.
#[derive(Debug)]
struct Comment<'s> {
    text: &'s str,
    kind: Kind,
    /// An empty line separates it from what comes before.
    blank_before: bool,
    /// A line break follows it (or the end of the file).
    newline_after: bool,
}

impl Comment<'_> {
    /// A `//` comment after a block comment on that block comment's own line: it is
    /// printed (and aligned) like any comment at the end of a line.
    fn ends_own_line(&self) -> bool {
        self.kind == Kind::OwnSameLine && self.text.starts_with("//")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// After a token on the same line.
    Trailing,
    /// A `//` comment right below a trailing one, starting in the same column.
    Continuation,
    /// On its own line.
    Own,
    /// On the line of the own-line comment before it.
    OwnSameLine,
}

#[derive(Debug)]
struct Tok<'s> {
    kind: Token,
    text: &'s str,
    start: usize,
    end: usize,
    /// Own-line comments between the previous token and this one.
    lead: Vec<Comment<'s>>,
    /// Comments after this token, on its line (and their continuations).
    trail: Vec<Comment<'s>>,
    /// An empty line right before this token (after its leading comments).
    blank_before: bool,
    /// A line break anywhere between the previous token and this one.
    newline_before: bool,
}

/// Splits `src` (which must have passed the pre-scan) into tokens with their comments.
/// The last token is an empty end-of-file marker that carries the file's final comments.
fn tokens(src: &str) -> Vec<Tok<'_>> {
    let mut toks: Vec<Tok<'_>> = Vec::new();
    let mut lead: Vec<Comment<'_>> = Vec::new();
    // Newlines since the last token or comment, and since the last token.
    let mut newlines = 0usize;
    let mut any_newline = false;
    let mut last_was_own = false;
    // Column of the last trailing `//` comment (or continuation) and its line.
    let mut trailing_col: Option<(usize, usize)> = None;
    let mut line = 0usize;
    let mut line_start = 0usize;
    for (token, range) in lexer::tokens(src) {
        let kind = token.unwrap_or(Token::Whitespace);
        let text = &src[range.clone()];
        match kind {
            Token::Whitespace => {
                let n = text.matches('\n').count();
                if n > 0 {
                    newlines += n;
                    any_newline = true;
                    line += n;
                    line_start = range.start + text.rfind('\n').unwrap() + 1;
                    mark_newline_after(&mut toks, &mut lead);
                }
            }
            Token::LineComment | Token::BlockComment => {
                let text = if kind == Token::LineComment { text.trim_end() } else { text };
                let col = src[line_start..range.start].chars().count();
                let blank_before = newlines >= 2;
                let comment_kind = if newlines == 0 && !toks.is_empty() && !last_was_own {
                    Kind::Trailing
                } else if newlines == 0 && last_was_own {
                    Kind::OwnSameLine
                } else if kind == Token::LineComment
                    && newlines == 1
                    && lead.is_empty()
                    && trailing_col.is_some_and(|(c, l)| c == col && l + 1 == line && col > 0)
                {
                    Kind::Continuation
                } else {
                    Kind::Own
                };
                let comment = Comment { text, kind: comment_kind, blank_before, newline_after: false };
                match comment_kind {
                    Kind::Trailing | Kind::Continuation => {
                        toks.last_mut().expect("trailing comments follow a token").trail.push(comment);
                        last_was_own = false;
                    }
                    Kind::Own | Kind::OwnSameLine => {
                        lead.push(comment);
                        last_was_own = true;
                    }
                }
                trailing_col = match comment_kind {
                    Kind::Trailing | Kind::Continuation if kind == Token::LineComment => Some((col, line)),
                    _ => None,
                };
                // A block comment may span lines.
                let n = text.matches('\n').count();
                if n > 0 {
                    line += n;
                    line_start = range.start + text.rfind('\n').unwrap() + 1;
                }
                newlines = 0;
            }
            _ => {
                toks.push(Tok {
                    kind,
                    text,
                    start: range.start,
                    end: range.end,
                    lead: std::mem::take(&mut lead),
                    trail: Vec::new(),
                    blank_before: newlines >= 2,
                    newline_before: any_newline,
                });
                newlines = 0;
                any_newline = false;
                last_was_own = false;
                trailing_col = None;
            }
        }
    }
    mark_newline_after(&mut toks, &mut lead);
    toks.push(Tok {
        kind: Token::Whitespace,
        text: "",
        start: src.len(),
        end: src.len(),
        lead,
        trail: Vec::new(),
        blank_before: newlines >= 2,
        newline_before: true,
    });
    toks
}

/// A line break (or the end of the file) follows the most recent comment.
fn mark_newline_after<'s>(toks: &mut [Tok<'s>], lead: &mut [Comment<'s>]) {
    if let Some(c) = lead.last_mut() {
        c.newline_after = true;
    } else if let Some(c) = toks.last_mut().and_then(|t| t.trail.last_mut()) {
        c.newline_after = true;
    }
}

#[derive(Clone, Copy)]
enum Frame {
    Concat,
    Group,
    Fill,
    Nest(usize),
    Align,
}

/// The layout could not follow the token stream: a formatter bug, never the user's.
#[derive(Debug)]
pub struct Unexpected {
    pub offset: usize,
    pub found: String,
}

type R = Result<(), Unexpected>;

struct Layout<'s> {
    toks: Vec<Tok<'s>>,
    pos: usize,
    frames: Vec<(Frame, Vec<Doc>)>,
    /// Trailing comments of the last token, placed before whatever is emitted next.
    pending: Vec<Doc>,
    /// Name width the current run of `entity` declarations is padded to.
    entity_pad: usize,
    /// Name width the groups of the current experiment are padded to.
    group_pad: usize,
}

/// The layout document of a file that parses.
pub fn layout(src: &str) -> Result<Doc, Unexpected> {
    let mut l = Layout {
        toks: tokens(src),
        pos: 0,
        frames: vec![(Frame::Concat, Vec::new())],
        pending: Vec::new(),
        entity_pad: 0,
        group_pad: 0,
    };
    l.block_items(false, Layout::item)?;
    l.flush();
    let (_, docs) = l.frames.pop().expect("the root frame");
    Ok(Doc::Concat(docs))
}

impl<'s> Layout<'s> {
    // ---- the cursor ----------------------------------------------------------------

    fn peek(&self) -> &'s str {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &'s str {
        self.toks.get(self.pos + n).map_or("", |t| t.text)
    }

    fn at_end(&self) -> bool {
        self.pos + 1 >= self.toks.len()
    }

    fn unexpected(&self) -> Unexpected {
        let t = &self.toks[self.pos.min(self.toks.len() - 1)];
        Unexpected { offset: t.start, found: t.text.to_string() }
    }

    fn expect(&mut self, text: &str) -> R {
        if self.peek() == text && !self.at_end() {
            self.tok();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// Whether the token `n` ahead is a word (whether it may be a name, the grammar has
    /// decided already).
    fn is_ident_at(&self, n: usize) -> bool {
        self.toks.get(self.pos + n).is_some_and(|t| t.kind == Token::Ident)
    }

    fn adjacent(&self, n: usize) -> bool {
        match (self.toks.get(self.pos + n), self.toks.get(self.pos + n + 1)) {
            (Some(a), Some(b)) => a.end == b.start,
            _ => false,
        }
    }

    // ---- building the document -------------------------------------------------------

    fn push(&mut self, doc: Doc) {
        self.frames.last_mut().expect("a frame is open").1.push(doc);
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.frames.last_mut().expect("a frame is open").1.extend(pending);
        }
    }

    fn emit(&mut self, doc: Doc) {
        self.flush();
        self.push(doc);
    }

    fn text(&mut self, s: &str) {
        self.emit(Doc::text(s));
    }

    fn open(&mut self, frame: Frame) {
        self.flush();
        self.frames.push((frame, Vec::new()));
    }

    /// Opens a construct that starts at the current token: its own-line comments go first.
    fn open_hoisted(&mut self, frame: Frame) {
        self.flush();
        self.leading();
        self.frames.push((frame, Vec::new()));
    }

    fn close(&mut self) {
        let (frame, docs) = self.frames.pop().expect("a frame is open");
        let doc = match frame {
            Frame::Concat => Doc::Concat(docs),
            Frame::Group => Doc::group(docs),
            Frame::Fill => Doc::fill(docs),
            Frame::Nest(n) => Doc::Nest(n, docs),
            Frame::Align => Doc::Align(docs),
        };
        self.push(doc);
    }

    /// A fill separator: the trailing comments before it still belong to the content.
    fn separator(&mut self, hard: bool) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            match self.frames.last_mut().and_then(|f| f.1.last_mut()) {
                Some(Doc::Concat(last)) => last.extend(pending),
                _ => self.pending = pending,
            }
            self.flush();
        }
        self.push(if hard { Doc::Hard } else { Doc::Line });
    }

    /// The own-line comments before the current token.
    fn leading(&mut self) {
        if self.toks[self.pos].lead.is_empty() {
            return;
        }
        let lead = std::mem::take(&mut self.toks[self.pos].lead);
        for c in lead {
            if c.ends_own_line() {
                self.emit(Doc::Comment(c.text.to_string()));
            } else {
                if c.kind == Kind::OwnSameLine {
                    self.text(" ");
                } else {
                    self.emit(Doc::LineStart);
                }
                self.emit(Doc::text(c.text));
            }
            if c.newline_after {
                self.emit(Doc::Hard);
            } else if !matches!(self.peek(), ")" | "]" | ">" | ",") {
                // `/* c */)` as after a token: the next run reads it the same way.
                self.text(" ");
            }
        }
    }

    /// Consumes the current token and prints it.
    fn tok(&mut self) -> &'s str {
        self.leading();
        let text = self.toks[self.pos].text;
        self.emit(Doc::text(text));
        self.consume_trail();
        text
    }

    /// Consumes the current token without printing it (a dropped trailing comma).
    fn skip(&mut self) {
        self.leading();
        self.consume_trail();
    }

    fn consume_trail(&mut self) {
        let trail = std::mem::take(&mut self.toks[self.pos].trail);
        for c in trail {
            let doc = match c.kind {
                Kind::Continuation => Doc::Continuation(c.text.to_string()),
                _ if c.text.starts_with("//") => Doc::Comment(c.text.to_string()),
                // A block comment never ends a line by itself: the layout decides, so that the
                // next run sees the same comment in the same place.
                _ => Doc::text(format!(" {}", c.text)),
            };
            self.pending.push(doc);
        }
        self.pos += 1;
    }

    // ---- blocks ----------------------------------------------------------------------

    /// Items of the file (`braced == false`) or of a `{ … }` body, one per line, an empty
    /// line kept (but only one) where the source has one or more.
    fn block_items(&mut self, braced: bool, item: fn(&mut Self) -> R) -> R {
        let mut first = true;
        let mut same_line = false;
        let mut prev_entity = false;
        loop {
            let lead = std::mem::take(&mut self.toks[self.pos].lead);
            let had_lead = !lead.is_empty();
            for c in lead {
                if c.ends_own_line() {
                    self.emit(Doc::Comment(c.text.to_string()));
                } else {
                    if same_line || c.kind == Kind::OwnSameLine {
                        self.text(" ");
                    } else if !first {
                        self.emit(if c.blank_before { Doc::Blank } else { Doc::Hard });
                    }
                    self.emit(Doc::text(c.text));
                }
                same_line = !c.newline_after;
                first = false;
            }
            // The line break before `}` (or the end of the file) is the caller's.
            if self.at_end() || (braced && self.peek() == "}") {
                return Ok(());
            }
            if same_line {
                self.text(" ");
            } else if !first {
                let blank = self.toks[self.pos].blank_before;
                self.emit(if blank { Doc::Blank } else { Doc::Hard });
            }
            let is_entity = self.peek() == "entity";
            if is_entity && (!prev_entity || had_lead || self.toks[self.pos].blank_before) {
                self.entity_pad = self.entity_run_width();
            }
            prev_entity = is_entity;
            item(self)?;
            first = false;
            same_line = false;
        }
    }

    /// The widest entity name in the run of `entity` lines starting here.
    fn entity_run_width(&self) -> usize {
        let mut width = 0;
        let mut i = self.pos;
        while i + 3 < self.toks.len() && self.toks[i].text == "entity" {
            if i != self.pos && (!self.toks[i].lead.is_empty() || self.toks[i].blank_before) {
                break;
            }
            width = width.max(self.toks[i + 1].text.chars().count());
            i += 4;
        }
        width
    }

    /// `{ items }`, or `{}` when empty.
    fn braced(&mut self, body: impl FnOnce(&mut Self) -> R) -> R {
        self.expect("{")?;
        let empty = self.peek() == "}" && self.toks[self.pos].lead.is_empty() && self.pending.is_empty();
        if !empty {
            self.open(Frame::Nest(2));
            self.emit(Doc::Hard);
            body(self)?;
            self.close();
            self.emit(Doc::Hard);
        }
        self.expect("}")
    }

    fn item(&mut self) -> R {
        match self.peek() {
            "entity" => {
                self.tok();
                self.text(" ");
                let name = self.tok();
                let pad = self.entity_pad.saturating_sub(name.chars().count());
                self.text(&" ".repeat(pad + 1));
                self.expect("key")?;
                self.text(" ");
                self.name()
            }
            "tag" => self.tag_decl(),
            "rule" => {
                self.tok();
                self.text(" ");
                self.name()?;
                self.text(" ");
                self.name()?;
                self.text(" ");
                self.expect("=")?;
                self.text(" ");
                self.condition()
            }
            "layer" => {
                self.tok();
                self.text(" ");
                self.name()?;
                self.text(" ");
                self.expect("by")?;
                self.text(" ");
                self.unit()
            }
            "scene" => {
                self.tok();
                self.text(" ");
                self.name()?;
                if self.peek() == "on" {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.name()?;
                    if self.peek() == "for" {
                        self.fanout()?;
                    }
                }
                self.text(" ");
                self.braced(|l| l.block_items(true, Self::item))
            }
            "event" => self.event_decl(),
            "channel" | "action" => self.reach_decl(),
            "keys" => {
                self.tok();
                self.text(" ");
                self.commas(None, Self::name)
            }
            "passes" => {
                self.tok();
                self.text(" ");
                self.commas(None, Self::path)
            }
            "instance" => {
                self.tok();
                self.text(" ");
                self.name()?;
                self.text(" ");
                self.expect("->")?;
                self.text(" ");
                if self.peek() == "reach" {
                    self.tok();
                    // `reach { sku: text } { … }` or `reach { … }`: a payload type opens
                    // with a field or is empty (then the body's `{` follows).
                    let payload = self.peek() == "{"
                        && (self.peek_at(2) == ":" || (self.peek_at(1) == "}" && self.peek_at(2) == "{"));
                    if payload {
                        self.text(" ");
                        self.record(Self::field_decl)?;
                    }
                } else {
                    self.record(Self::field_decl)?;
                }
                self.text(" ");
                self.braced(|l| l.block_items(true, Self::item))
            }
            "strategy" => self.strategy(),
            "default" => {
                self.tok();
                self.text(" ");
                self.expect("=>")?;
                self.text(" ");
                self.any_decision()
            }
            "experiment" => self.experiment(),
            "test" => {
                self.tok();
                self.text(" ");
                self.tok();
                self.text(" ");
                self.braced(|l| l.block_items(true, Self::item))
            }
            "given" => {
                self.tok();
                self.text(" ");
                self.record(Self::given_entry)
            }
            "expect" => self.expect_item(),
            _ => Err(self.unexpected()),
        }
    }

    fn tag_decl(&mut self) -> R {
        self.tok();
        self.text(" ");
        self.path()?;
        self.expect(":")?;
        self.text(" ");
        self.type_expr()?;
        if self.peek() == "=" {
            // A window tag: `= AGG(SOURCE [where FILTER]) within D`.
            self.text(" ");
            self.tok();
            self.text(" ");
            self.name()?;
            self.expect("(")?;
            self.unit()?;
            if self.peek() == "where" {
                self.text(" ");
                self.tok();
                self.text(" ");
                self.condition()?;
            }
            self.expect(")")?;
            self.text(" ");
            self.expect("within")?;
            self.text(" ");
            self.tok();
        }
        loop {
            match self.peek() {
                "from" | "cache" => {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.tok();
                }
                "passthrough" | "sensitive" | "draft" | "online" | "disabled" => {
                    self.text(" ");
                    self.tok();
                }
                _ => return Ok(()),
            }
        }
    }

    /// ` for each ENTITY with INDEX(FIELD == event.X and …) within D`, on the scene's line.
    fn fanout(&mut self) -> R {
        for word in ["for", "each"] {
            self.text(" ");
            self.expect(word)?;
        }
        self.text(" ");
        self.name()?;
        self.text(" ");
        self.expect("with")?;
        self.text(" ");
        self.name()?;
        self.expect("(")?;
        loop {
            self.name()?;
            self.text(" ");
            self.expect("==")?;
            self.text(" ");
            self.path()?;
            if self.peek() != "and" {
                break;
            }
            self.text(" ");
            self.tok();
            self.text(" ");
        }
        self.expect(")")?;
        self.text(" ");
        self.expect("within")?;
        self.text(" ");
        self.tok();
        Ok(())
    }

    fn type_expr(&mut self) -> R {
        match (self.peek(), self.peek_at(1)) {
            ("enum", "(") => {
                self.tok();
                self.bracketed(false, Self::name)
            }
            ("list", "<") => {
                self.tok();
                self.tok();
                self.type_expr()?;
                self.expect(">")
            }
            _ => self.name(),
        }
    }

    fn strategy(&mut self) -> R {
        self.open(Frame::Group);
        self.tok();
        self.text(" ");
        self.name()?;
        if self.peek() == "when" {
            self.text(" ");
            self.tok();
            self.text(" ");
            self.condition()?;
        }
        if self.peek() == "=>" {
            self.open(Frame::Nest(4));
            self.emit(Doc::Line);
            self.tok();
            self.text(" ");
            self.any_decision()?;
            self.close();
        } else {
            self.text(" ");
            self.braced(|l| l.block_items(true, Self::item))?;
        }
        self.close();
        Ok(())
    }

    fn experiment(&mut self) -> R {
        self.tok();
        self.text(" ");
        self.name()?;
        self.text(" ");
        self.expect("by")?;
        self.text(" ");
        self.unit()?;
        if self.peek() == "in" {
            self.text(" ");
            self.tok();
            self.text(" ");
            self.name()?;
            self.text(" ");
            self.tok();
            self.expect("..")?;
            self.tok();
        }
        if self.peek() == "salt" {
            self.text(" ");
            self.tok();
            self.text(" ");
            self.tok();
        }
        self.text(" ");
        self.group_pad = self.group_name_width();
        self.braced(|l| l.block_items(true, Self::group))
    }

    /// The widest group name of the experiment whose `{` is the current token.
    fn group_name_width(&self) -> usize {
        let mut width = 0;
        let mut i = self.pos + 1;
        let mut depth = 0usize;
        while i < self.toks.len() {
            match self.toks[i].text {
                "{" => depth += 1,
                "}" if depth == 0 => break,
                "}" => depth -= 1,
                // A group's name is the identifier before its percentage (decisions such as
                // `reach push "x"` hold identifiers at this depth too).
                name if depth == 0
                    && self.toks[i].kind == Token::Ident
                    && self.toks.get(i + 1).is_some_and(|t| t.kind == Token::Percent) =>
                {
                    width = width.max(name.chars().count())
                }
                _ => {}
            }
            i += 1;
        }
        width
    }

    /// `name  50% => { … }`, the names of one experiment padded to the same width.
    fn group(&mut self) -> R {
        let name = self.tok();
        self.text(&" ".repeat(self.group_pad.saturating_sub(name.chars().count()) + 1));
        self.tok();
        self.text(" ");
        self.expect("=>")?;
        self.text(" ");
        self.any_decision()
    }

    /// A record, `none`, or `reach CHANNEL "action" [{ payload }] [dedup D]`.
    fn any_decision(&mut self) -> R {
        match self.peek() {
            "none" => {
                self.tok();
                Ok(())
            }
            "reach" => {
                self.tok();
                self.text(" ");
                self.name()?;
                self.text(" ");
                self.tok();
                if self.peek() == "{" {
                    self.text(" ");
                    self.record(Self::field_init)?;
                }
                if self.peek() == "dedup" {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.tok();
                }
                Ok(())
            }
            _ => self.record(Self::field_init),
        }
    }

    /// An int literal outside expressions; `-5` is two tokens printed touching.
    fn int_literal(&mut self) {
        if self.peek() == "-" {
            self.tok();
        }
        self.tok();
    }

    /// `event NAME by KEY [late D] { fields }`.
    fn event_decl(&mut self) -> R {
        self.tok();
        self.text(" ");
        self.name()?;
        self.text(" ");
        self.expect("by")?;
        self.text(" ");
        self.name()?;
        if self.peek() == "late" {
            self.text(" ");
            self.tok();
            self.text(" ");
            self.tok();
        }
        self.text(" ");
        self.record(Self::field_decl)
    }

    /// `channel NAME options…` and `action "NAME" options…`, options on one line.
    fn reach_decl(&mut self) -> R {
        self.tok();
        self.text(" ");
        self.tok();
        loop {
            match self.peek() {
                "cap" => {
                    // `cap N per D`
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.int_literal();
                    for _ in 0..2 {
                        self.text(" ");
                        self.tok();
                    }
                }
                "quiet" => {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    // `22:00..08:00`: seven tokens printed touching.
                    for _ in 0..7 {
                        self.tok();
                    }
                    if matches!(self.peek(), "hold" | "drop") {
                        self.text(" ");
                        self.tok();
                    }
                }
                "zone" => {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.path()?;
                }
                "budget" => {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.int_literal();
                    if self.peek() == "of" {
                        self.text(" ");
                        self.tok();
                        self.text(" ");
                        self.name()?;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect_item(&mut self) -> R {
        self.tok();
        self.text(" ");
        match self.peek() {
            "tag" if self.is_ident_at(1) && self.peek_at(2) == "." => {
                self.tok();
                self.text(" ");
                self.path()?;
                self.text(" ");
                self.expect("for")?;
                self.text(" ");
                self.value()?;
                self.text(" ");
                self.expect("=>")?;
                self.text(" ");
                if self.peek() == "missing" {
                    self.tok();
                    Ok(())
                } else {
                    self.value()
                }
            }
            "strategy" if self.peek_at(1) != "." => {
                self.tok();
                self.text(" ");
                self.name()?;
                if self.peek() == "group" {
                    self.text(" ");
                    self.tok();
                    self.text(" ");
                    self.name()?;
                }
                Ok(())
            }
            _ => {
                self.open(Frame::Group);
                self.path()?;
                self.open(Frame::Nest(4));
                self.emit(Doc::Line);
                self.expect("=>")?;
                self.text(" ");
                self.any_decision()?;
                self.close();
                self.close();
                Ok(())
            }
        }
    }

    // ---- lists and records -----------------------------------------------------------

    /// `{ a, b }` with spaces inside, or `{}`.
    fn record(&mut self, elem: fn(&mut Self) -> R) -> R {
        self.bracketed(true, elem)
    }

    /// An opener, elements separated by commas, and its closer. The elements fill lines,
    /// continuation lines aligned with the first element; the closer ends the last line.
    fn bracketed(&mut self, spaced: bool, elem: fn(&mut Self) -> R) -> R {
        self.open_hoisted(Frame::Group);
        let opener = self.tok();
        let closer = match opener {
            "(" => ")",
            "[" => "]",
            _ => "}",
        };
        if self.peek() == closer {
            self.tok();
        } else {
            if spaced {
                self.text(" ");
            }
            self.commas(Some((closer, spaced)), elem)?;
        }
        self.close();
        Ok(())
    }

    /// `a, b, c` as a fill aligned where it starts. With a closer, a trailing comma is
    /// dropped and the closer is printed at the end of the last element.
    fn commas(&mut self, closer: Option<(&str, bool)>, elem: fn(&mut Self) -> R) -> R {
        self.open(Frame::Align);
        self.open(Frame::Fill);
        loop {
            self.open(Frame::Concat);
            elem(self)?;
            let more = self.peek() == ",";
            if more {
                if closer.is_some_and(|(c, _)| self.peek_at(1) == c) {
                    self.skip();
                } else {
                    self.tok();
                    self.close();
                    let hard = self.toks[self.pos].newline_before;
                    self.separator(hard);
                    continue;
                }
            }
            if let Some((c, spaced)) = closer {
                if spaced {
                    self.text(" ");
                }
                self.expect(c)?;
            }
            self.close();
            break;
        }
        self.close();
        self.close();
        Ok(())
    }

    fn field_decl(&mut self) -> R {
        self.name()?;
        self.expect(":")?;
        self.text(" ");
        self.type_expr()
    }

    fn field_init(&mut self) -> R {
        self.name()?;
        self.expect(":")?;
        self.text(" ");
        self.value()
    }

    fn given_entry(&mut self) -> R {
        if self.peek_at(1) == "." {
            self.path()?;
        } else {
            self.name()?;
        }
        self.expect(":")?;
        self.text(" ");
        self.value()
    }

    // ---- names -----------------------------------------------------------------------

    fn name(&mut self) -> R {
        if self.is_ident_at(0) {
            self.tok();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// `entity.name`, printed without spaces (the grammar allows none).
    fn path(&mut self) -> R {
        self.name()?;
        self.expect(".")?;
        self.name()
    }

    fn unit(&mut self) -> R {
        if self.peek_at(1) == "." && self.adjacent(0) {
            self.path()
        } else {
            self.name()
        }
    }

    // ---- expressions -------------------------------------------------------------------

    /// A condition after `=` or `when`: a line break forced by a comment right before it
    /// indents the condition by four.
    fn condition(&mut self) -> R {
        self.open(Frame::Nest(4));
        self.expr()?;
        self.close();
        Ok(())
    }

    fn expr(&mut self) -> R {
        self.chain(&["or"], Self::and_expr)
    }

    fn and_expr(&mut self) -> R {
        self.chain(&["and"], Self::not_expr)
    }

    /// `first op next op next …`. With operators, a fill aligned with the first operand and
    /// each operator starting its line when a line must break; a line break the source has
    /// around an operator is kept.
    fn chain(&mut self, ops: &[&str], elem: fn(&mut Self) -> R) -> R {
        self.open_hoisted(Frame::Concat);
        elem(self)?;
        if !ops.contains(&self.peek()) || self.at_end() {
            self.close();
            return Ok(());
        }
        let (_, first) = self.frames.pop().expect("the chain's first operand");
        self.frames.push((Frame::Align, Vec::new()));
        self.frames.push((Frame::Fill, vec![Doc::Concat(first)]));
        while ops.contains(&self.peek()) && !self.at_end() {
            let hard = self.toks[self.pos].newline_before || self.toks[self.pos + 1].newline_before;
            self.separator(hard);
            self.open(Frame::Concat);
            self.tok();
            self.text(" ");
            elem(self)?;
            self.close();
        }
        self.close();
        self.close();
        Ok(())
    }

    fn not_expr(&mut self) -> R {
        while self.peek() == "not" {
            self.tok();
            self.text(" ");
        }
        self.predicate()
    }

    fn predicate(&mut self) -> R {
        self.value()?;
        let op = self.peek();
        match op {
            "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "starts_with" | "ends_with" | "matches" | "before"
            | "after" | "within" | "in" | "contains_any" | "contains_all" => {
                self.text(" ");
                self.tok();
                self.text(" ");
                self.value()
            }
            "between" => {
                self.text(" ");
                self.tok();
                self.text(" ");
                self.value()?;
                self.text(" ");
                self.expect("and")?;
                self.text(" ");
                self.value()
            }
            "not" if matches!(self.peek_at(1), "in" | "contains") => {
                self.text(" ");
                self.tok();
                self.text(" ");
                self.tok();
                self.text(" ");
                self.value()
            }
            "is" | "older" => {
                self.text(" ");
                self.tok();
                self.text(" ");
                if op == "older" {
                    self.expect("than")?;
                    self.text(" ");
                    self.value()
                } else {
                    self.name()
                }
            }
            _ => Ok(()),
        }
    }

    /// Arithmetic: `+ -` over `* / %`.
    fn value(&mut self) -> R {
        self.chain(&["+", "-"], Self::product)
    }

    fn product(&mut self) -> R {
        self.chain(&["*", "/", "%"], Self::unary)
    }

    fn unary(&mut self) -> R {
        while self.peek() == "-" && !self.is_negative_literal() {
            self.tok();
            // `- 5` negates 5, while `-5` is one literal: keep the space that says which
            // (and keep `- -x` readable rather than `--x`).
            if self.peek().starts_with(|c: char| c.is_ascii_digit()) || self.peek() == "-" {
                self.text(" ");
            }
        }
        self.atom()
    }

    /// `-5` or `-0.5`: a minus sign directly before a number is part of the literal. Any
    /// token that starts with a digit counts: in `-12.5%` the grammar reads the float
    /// `-12.5` and the operator `%`, although the lexer sees a percent token, so the two
    /// must stay touching exactly as written.
    fn is_negative_literal(&self) -> bool {
        self.peek() == "-" && self.adjacent(0) && self.peek_at(1).starts_with(|c: char| c.is_ascii_digit())
    }

    fn atom(&mut self) -> R {
        if self.is_negative_literal() {
            self.tok();
            self.tok();
            return Ok(());
        }
        match self.toks[self.pos].kind {
            Token::LParen => {
                self.tok();
                self.open(Frame::Align);
                self.expr()?;
                self.close();
                self.expect(")")
            }
            Token::LBracket => self.bracketed(false, Self::value),
            Token::Ident if self.peek() == "len" && self.peek_at(1) == "(" => {
                self.tok();
                self.tok();
                self.value()?;
                self.expect(")")
            }
            Token::Ident if self.peek_at(1) == "." && self.adjacent(0) => self.path(),
            Token::Ident | Token::Int | Token::Float | Token::Duration | Token::Time | Token::Text | Token::Percent => {
                self.tok();
                Ok(())
            }
            _ => Err(self.unexpected()),
        }
    }
}
