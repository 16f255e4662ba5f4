//! A small Wadler/Prettier-style layout document and its printer.
//!
//! Owns: the document algebra (text, soft and hard line breaks, groups that print flat when
//! they fit, fills that put as many parts on a line as fit, indentation and alignment to a
//! column) and the one printing algorithm, plus the column alignment of trailing `//`
//! comments. Must not: know anything about the ruledeck language; `layout.rs` decides what
//! the document says.
//!
//! A trailing line comment ends its line: nothing may follow it there. Every group around
//! one therefore breaks (decided when the group is built, see [`Doc::group`]), and should
//! text still come next the printer starts a new line first.

/// One layout document.
#[derive(Debug, Clone)]
pub enum Doc {
    /// Literal text without line breaks (block comments may contain them).
    Text(String),
    /// A space when its group is flat, a line break when it is broken.
    Line,
    /// Always a line break; a group containing it is broken.
    Hard,
    /// Always an empty line, then a line break.
    Blank,
    /// A line break unless the printer already stands at the start of a line.
    LineStart,
    /// A trailing `// …` comment: printed at the end of the current line, aligned with the
    /// trailing comments of its neighbours.
    Comment(String),
    /// A `// …` comment continuing the trailing comment of the line above, in its column.
    Continuation(String),
    /// A sequence.
    Concat(Vec<Doc>),
    /// Printed flat when it fits in the rest of the line (and holds no hard break).
    Group { hard: bool, docs: Vec<Doc> },
    /// `[content, separator, content, separator, …]`: each separator breaks only when the
    /// content after it does not fit on the line.
    Fill { hard: bool, parts: Vec<Doc> },
    /// Line breaks inside are indented by this many more columns.
    Nest(usize, Vec<Doc>),
    /// Line breaks inside go back to the column where this starts.
    Align(Vec<Doc>),
}

impl Doc {
    pub fn text(s: impl Into<String>) -> Doc {
        Doc::Text(s.into())
    }

    /// A group; it is broken for good when it holds a hard break or a trailing comment.
    pub fn group(docs: Vec<Doc>) -> Doc {
        let hard = docs.iter().any(Doc::is_hard);
        Doc::Group { hard, docs }
    }

    pub fn fill(parts: Vec<Doc>) -> Doc {
        let hard = parts.iter().any(Doc::is_hard);
        Doc::Fill { hard, parts }
    }

    /// Whether printing this flat is impossible.
    fn is_hard(&self) -> bool {
        match self {
            Doc::Hard | Doc::Blank | Doc::LineStart | Doc::Comment(_) | Doc::Continuation(_) => true,
            Doc::Text(s) => s.contains('\n'),
            Doc::Line => false,
            Doc::Group { hard, .. } | Doc::Fill { hard, .. } => *hard,
            Doc::Concat(d) | Doc::Nest(_, d) | Doc::Align(d) => d.iter().any(Doc::is_hard),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// What is left to print: a document, or the rest of a fill starting at a content.
#[derive(Clone, Copy)]
enum Item<'d> {
    Doc(&'d Doc),
    /// Fill parts starting at a content.
    Fill(&'d [Doc]),
    /// Fill parts starting at a separator.
    FillSep(&'d [Doc]),
}

#[derive(Clone, Copy)]
struct Cmd<'d> {
    indent: usize,
    mode: Mode,
    item: Item<'d>,
}

/// One printed line: its code, and its trailing `//` comment, if any.
struct OutLine {
    code: String,
    comment: Option<String>,
    continuation: bool,
}

struct Printer {
    width: usize,
    lines: Vec<OutLine>,
    line: String,
    /// Column of the end of `line`, in characters.
    col: usize,
    /// A trailing comment ended the line: the next text starts a new one.
    pending_newline: bool,
    comment: Option<String>,
    continuation: bool,
}

/// Prints `doc` in lines of at most `width` columns where the layout allows.
pub fn print(doc: &Doc, width: usize) -> String {
    let mut p = Printer {
        width,
        lines: Vec::new(),
        line: String::new(),
        col: 0,
        pending_newline: false,
        comment: None,
        continuation: false,
    };
    let mut cmds = vec![Cmd { indent: 0, mode: Mode::Break, item: Item::Doc(doc) }];
    while let Some(cmd) = cmds.pop() {
        p.step(cmd, &mut cmds);
    }
    p.end_line(0);
    align_comments(&mut p.lines);
    let mut out = String::new();
    for l in &p.lines {
        out.push_str(&l.code);
        out.push('\n');
    }
    // Exactly one newline at the end; none at all for an empty file.
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

impl Printer {
    fn step<'d>(&mut self, cmd: Cmd<'d>, cmds: &mut Vec<Cmd<'d>>) {
        let Cmd { indent, mode, item } = cmd;
        let doc = match item {
            Item::Doc(d) => d,
            Item::Fill(parts) => return self.fill(indent, mode, parts, cmds),
            Item::FillSep(parts) => return self.fill_sep(indent, mode, parts, cmds),
        };
        match doc {
            Doc::Text(s) => self.text(s, indent),
            Doc::Line if mode == Mode::Flat && !self.pending_newline => self.text(" ", indent),
            Doc::Line | Doc::Hard => self.end_line(indent),
            Doc::Blank => {
                self.end_line(0);
                self.end_line(indent);
            }
            Doc::LineStart => {
                if self.line.trim().is_empty() && self.comment.is_none() {
                    self.pending_newline = false;
                } else {
                    self.end_line(indent);
                }
            }
            Doc::Comment(c) => {
                if self.comment.is_some() {
                    self.end_line(indent);
                }
                if self.line.trim().is_empty() {
                    // On a line of its own (the token it followed printed nothing, or another
                    // comment took the end of the line), it is an own-line comment.
                    self.text(c, indent);
                } else {
                    self.comment = Some(c.clone());
                }
                self.pending_newline = true;
            }
            Doc::Continuation(c) => {
                self.end_line(indent);
                self.line.clear();
                self.col = 0;
                self.comment = Some(c.clone());
                self.continuation = true;
                self.pending_newline = true;
            }
            Doc::Concat(docs) => push_all(cmds, indent, mode, docs),
            Doc::Nest(n, docs) => push_all(cmds, indent + n, mode, docs),
            Doc::Align(docs) => {
                if self.pending_newline {
                    self.end_line(indent);
                }
                push_all(cmds, self.col, mode, docs);
            }
            Doc::Group { hard, docs } => {
                let mode = if mode == Mode::Flat
                    || (!hard && self.fits(&[Cmd { indent, mode: Mode::Flat, item: Item::Doc(doc) }], cmds))
                {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                push_all(cmds, indent, mode, docs);
            }
            Doc::Fill { parts, .. } => self.fill(indent, mode, parts, cmds),
        }
    }

    /// A fill from a content on: the content prints flat if it fits, then the separator
    /// after it is decided where the content ends ([`Item::FillSep`]).
    fn fill<'d>(&mut self, indent: usize, mode: Mode, parts: &'d [Doc], cmds: &mut Vec<Cmd<'d>>) {
        let Some(content) = parts.first() else { return };
        let content_mode =
            if mode == Mode::Flat || self.fits(&[Cmd { indent, mode: Mode::Flat, item: Item::Doc(content) }], &[]) {
                Mode::Flat
            } else {
                Mode::Break
            };
        cmds.push(Cmd { indent, mode, item: Item::FillSep(&parts[1..]) });
        cmds.push(Cmd { indent, mode: content_mode, item: Item::Doc(content) });
    }

    /// A fill from a separator on: flat when the content after it fits behind it.
    fn fill_sep<'d>(&mut self, indent: usize, mode: Mode, parts: &'d [Doc], cmds: &mut Vec<Cmd<'d>>) {
        let [sep, next, ..] = parts else { return };
        let flat = |d| Cmd { indent, mode: Mode::Flat, item: Item::Doc(d) };
        let sep_mode =
            if mode == Mode::Flat || self.fits(&[flat(next), flat(sep)], &[]) { Mode::Flat } else { Mode::Break };
        cmds.push(Cmd { indent, mode, item: Item::Fill(&parts[1..]) });
        cmds.push(Cmd { indent, mode: sep_mode, item: Item::Doc(sep) });
    }

    fn text(&mut self, s: &str, indent: usize) {
        if self.pending_newline {
            if s.trim().is_empty() {
                return;
            }
            self.end_line(indent);
        }
        // One space separates, and none starts a line: a second (a comment's and a
        // bracket's) or one at the start of a line would not survive the next run.
        if s == " " && (self.line.ends_with(' ') || self.line.is_empty()) {
            return;
        }
        let s = if self.line.is_empty() {
            self.line.push_str(&" ".repeat(self.col));
            s.trim_start_matches(' ')
        } else {
            s
        };
        match s.rfind('\n') {
            Some(i) => {
                self.line.push_str(s);
                self.col = s[i + 1..].chars().count();
            }
            None => {
                self.line.push_str(s);
                self.col += s.chars().count();
            }
        }
    }

    /// Ends the current line; the next starts at column `indent`.
    fn end_line(&mut self, indent: usize) {
        // Only the last physical line is trimmed: the others end inside a block comment.
        let code = self.line.trim_end();
        let breaks = code.matches('\n').count();
        for (i, part) in code.split('\n').enumerate() {
            let last = i == breaks;
            self.lines.push(OutLine {
                code: if last { part.trim_end() } else { part }.to_string(),
                comment: if last { self.comment.take() } else { None },
                continuation: last && self.continuation,
            });
        }
        self.continuation = false;
        self.line.clear();
        self.col = indent;
        self.pending_newline = false;
    }

    /// Whether `next` (a stack: last printed first) fits in the rest of the line, followed
    /// by what `rest` prints up to its next line break.
    fn fits(&self, next: &[Cmd<'_>], rest: &[Cmd<'_>]) -> bool {
        let mut width = self.width as isize - self.col as isize;
        let mut stack = next.to_vec();
        let mut rest_idx = rest.len();
        let mut pending = self.pending_newline;
        loop {
            if width < 0 {
                return false;
            }
            let cmd = match stack.pop() {
                Some(c) => c,
                None if rest_idx == 0 => return true,
                None => {
                    rest_idx -= 1;
                    rest[rest_idx]
                }
            };
            let doc = match cmd.item {
                Item::Doc(d) => d,
                Item::Fill(parts) | Item::FillSep(parts) => {
                    for p in parts.iter().rev() {
                        stack.push(Cmd { item: Item::Doc(p), ..cmd });
                    }
                    continue;
                }
            };
            match doc {
                Doc::Text(s) => {
                    if s.contains('\n') {
                        return cmd.mode == Mode::Break;
                    }
                    if pending && !s.trim().is_empty() {
                        return false;
                    }
                    width -= s.chars().count() as isize;
                }
                Doc::Line if cmd.mode == Mode::Flat => {
                    if pending {
                        return false;
                    }
                    width -= 1;
                }
                Doc::Line | Doc::Hard | Doc::Blank | Doc::LineStart | Doc::Continuation(_) => return true,
                Doc::Comment(_) => pending = true,
                Doc::Concat(d) | Doc::Nest(_, d) | Doc::Align(d) => {
                    for p in d.iter().rev() {
                        stack.push(Cmd { item: Item::Doc(p), ..cmd });
                    }
                }
                Doc::Group { hard, docs } => {
                    let mode = if *hard { Mode::Break } else { cmd.mode };
                    for p in docs.iter().rev() {
                        stack.push(Cmd { mode, item: Item::Doc(p), ..cmd });
                    }
                }
                Doc::Fill { parts, .. } => {
                    for p in parts.iter().rev() {
                        stack.push(Cmd { item: Item::Doc(p), ..cmd });
                    }
                }
            }
        }
    }
}

fn push_all<'d>(cmds: &mut Vec<Cmd<'d>>, indent: usize, mode: Mode, docs: &'d [Doc]) {
    for d in docs.iter().rev() {
        cmds.push(Cmd { indent, mode, item: Item::Doc(d) });
    }
}

/// Trailing comments of neighbouring lines (no empty line between, same indentation)
/// start in one column: two spaces after the longest code among the lines that carry one.
/// A continuation comment takes the column of the comment above it.
fn align_comments(lines: &mut [OutLine]) {
    let indent = |l: &OutLine| l.code.len() - l.code.trim_start().len();
    let mut start = 0;
    while start < lines.len() {
        let mut end = start + 1;
        if !lines[start].code.is_empty() {
            while end < lines.len()
                && (lines[end].continuation
                    || (!lines[end].code.is_empty() && indent(&lines[end]) == indent(&lines[start])))
            {
                end += 1;
            }
        }
        let column = lines[start..end]
            .iter()
            .filter(|l| l.comment.is_some() && !l.continuation)
            .map(|l| l.code.chars().count() + 2)
            .max();
        for l in &mut lines[start..end] {
            if let Some(c) = l.comment.take() {
                let column = if l.continuation || l.code.is_empty() {
                    column.unwrap_or(l.code.chars().count())
                } else {
                    column.unwrap_or(0)
                };
                let pad = column.saturating_sub(l.code.chars().count()).max(usize::from(!l.code.is_empty()));
                l.code.push_str(&" ".repeat(pad));
                l.code.push_str(&c);
            }
        }
        start = end;
    }
}
