//! The one diagnostic type of ruledeck, its stable codes, and its rendering.
//!
//! Every stage reports problems as [`Diagnostic`] values; none of them formats text.
//! Rendering (rustc-style text through `annotate-snippets`, or JSON for tools) happens
//! here and only here, from [`Sources`], so spans stay plain byte ranges until the end.

use std::fmt;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use crate::source::{FileId, Sources, Span};

macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $name:ident = $code:literal,)*) => {
        /// Stable diagnostic codes. The code is the contract: messages may improve, codes do not
        /// change meaning. `docs/language.md` shows an example program for each.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code { $($(#[doc = $doc])+ $name,)* }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The stable string form, e.g. `E0202`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $code,)* }
            }

            /// One line saying what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$name => concat!($($doc),+).trim(),)* }
            }
        }
    };
}

codes! {
    /// The file is not valid UTF-8.
    InvalidUtf8 = "E0001",
    /// The file is larger than the source-size limit.
    SourceTooLarge = "E0002",
    /// Brackets, `not` or unary `-` nest deeper than the nesting limit.
    NestingTooDeep = "E0003",
    /// One token (a name or a text literal) is longer than the token-length limit.
    TokenTooLong = "E0004",
    /// A character that cannot start any token.
    UnexpectedChar = "E0005",
    /// A text literal without its closing quote on the same line.
    UnterminatedString = "E0006",
    /// A block comment without its closing `*/`.
    UnterminatedComment = "E0007",
    /// An unknown escape sequence in a text literal.
    InvalidEscape = "E0008",
    /// A number literal out of range: integers beyond 64-bit signed, floats beyond f64.
    NumberOutOfRange = "E0009",
    /// A time literal that is not an RFC 3339 instant.
    InvalidTime = "E0010",
    /// A percentage above 100% or with more than two decimals.
    InvalidPercent = "E0011",
    /// A duration too large to represent.
    InvalidDuration = "E0012",
    /// A list literal with more elements than the list-length limit.
    TooLong = "E0013",
    /// The text does not follow the grammar.
    Syntax = "E0014",
    /// A deck exceeds a count limit (tags, fields, strategies or groups).
    TooMany = "E0015",
    /// Two definitions share a name where names must be unique.
    Duplicate = "E0100",
    /// A name that should be an entity (of a tag, or of a fan-out's `for each`) is not declared.
    UnknownEntity = "E0101",
    /// A tag that is not declared.
    UnknownTag = "E0102",
    /// A rule that is not declared.
    UnknownRule = "E0103",
    /// A scene that is not declared.
    UnknownScene = "E0104",
    /// An instance that its scene does not declare.
    UnknownInstance = "E0105",
    /// A group that the experiment does not declare.
    UnknownGroup = "E0106",
    /// A strategy that the instance does not declare.
    UnknownStrategy = "E0107",
    /// A layer that is not declared.
    UnknownLayer = "E0108",
    /// A request key that no entity declares.
    UnknownKey = "E0109",
    /// A type name that does not exist.
    UnknownType = "E0110",
    /// A rule kind that is neither an entity, `custom` nor `mixed`.
    UnknownRuleKind = "E0111",
    /// An operator that the operand's type does not allow.
    OperatorNotAllowed = "E0200",
    /// An enum literal that is not a member of the enum.
    NotAMember = "E0201",
    /// A value of the wrong type.
    TypeMismatch = "E0202",
    /// A value used where a condition is needed.
    NotACondition = "E0203",
    /// A `matches` pattern that is not a valid regex.
    InvalidRegex = "E0204",
    /// A `matches` pattern whose compiled form exceeds the regex size limit.
    RegexTooLarge = "E0205",
    /// A rule or condition used where a value is needed.
    NotAValue = "E0206",
    /// A rule reads a tag of an entity other than its kind.
    WrongEntity = "E0300",
    /// A tag is used in a scene that does not take its entity's key.
    KeyNotTaken = "E0301",
    /// A pass-through tag is used in a scene that does not pass it.
    NotPassed = "E0302",
    /// A `draft` or `disabled` tag is used by a new or changed rule.
    InactiveTag = "E0303",
    /// A tag declaration whose options contradict each other.
    InvalidTagDecl = "E0304",
    /// Rules that refer to each other in a cycle.
    RuleCycle = "E0305",
    /// A scene `passes` a tag that is not a pass-through tag.
    NotPassthrough = "E0306",
    /// A decision lacks a field of the instance's decision type.
    MissingField = "E0400",
    /// A decision has a field the instance's decision type does not declare.
    ExtraField = "E0401",
    /// An experiment's group percentages add up to more than 100%.
    PercentOver100 = "E0500",
    /// Two groups of one experiment share a name.
    DuplicateGroup = "E0501",
    /// An experiment or layer unit that is not a key or a text/int tag.
    BadUnit = "E0502",
    /// Two experiments claim overlapping ranges of one layer.
    LayerOverlap = "E0503",
    /// An experiment's unit differs from its layer's unit.
    LayerUnitMismatch = "E0504",
    /// A layer range that is empty or reversed.
    BadLayerRange = "E0505",
    /// A warning: an experiment group of 0%, which no unit can ever be in.
    EmptyGroup = "W0506",
    /// A strategy or default that can never decide because an earlier strategy always does.
    Unreachable = "E0600",
    /// `expect strategy` with no decision expectation before it.
    ExpectWithoutDecision = "E0700",
    /// `expect tag` names a pass-through tag, which no provider loads.
    NotATagTest = "E0701",
    /// A scene's `on`, a window aggregate or a fan-out's index names an event kind that is not declared.
    UnknownEvent = "E0800",
    /// An event has no field of that name (`event.FIELD`, an aggregate's field, a `where`, either side of a fan-out's match).
    UnknownEventField = "E0801",
    /// A window tag's aggregate is unknown, misapplied, of the wrong type or entity, or its window is out of range.
    InvalidWindow = "E0802",
    /// A window's `where` uses a form other than field comparisons joined by `and`/`or`/`not`.
    NotAFilter = "E0803",
    /// `event.FIELD` read outside a scene `on` an event.
    EventOutsideScene = "E0804",
    /// An `event`, `channel` or `action` declaration has an invalid option (cap, quiet hours, zone, budget, lateness).
    InvalidReachDecl = "E0805",
    /// A reach decision or `none` outside a `reach` instance, a record in one, or a `reach` instance outside a scene `on` an event.
    ReachMismatch = "E0806",
    /// A reach decision names a channel that is not declared.
    UnknownChannel = "E0807",
    /// A scene `on` an event takes keys other than the event's, or pass-through tags.
    OnSceneRequest = "E0808",
    /// A fan-out's entity is the triggering event's own, or its index event is keyed by another entity.
    FanoutEntity = "E0809",
    /// A fan-out's match compares values of different types (or floats), names a value other than `event.FIELD`, or repeats an index field.
    FanoutMatch = "E0810",
    /// A fan-out's `within` is outside 1s to 400d.
    FanoutWindow = "E0811",
    /// The compiler failed to verify its own output: a bug in ruledeck, never in the deck.
    Internal = "E0900",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether a diagnostic stops compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The deck does not compile.
    Error,
    /// Reported; the deck still compiles and runs.
    Warning,
}

/// A secondary location with its own message.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// The place.
    pub span: Span,
    /// What that place has to do with the problem.
    pub message: String,
}

/// One problem found in the source: what, where, and what to do about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The stable code, e.g. `E0202`.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where it is wrong: `None` only for problems no source place explains (a file too
    /// large to read, an internal error); those render with the file named in the message.
    pub span: Option<Span>,
    /// Text under the primary caret, when the message alone would not point well enough.
    pub label: Option<String>,
    /// Other places that explain the problem (the earlier definition, the rule that reads a tag).
    pub labels: Vec<Label>,
    /// Facts that explain the error.
    pub notes: Vec<String>,
    /// What to do about it ("did you mean …", the allowed operators).
    pub help: Option<String>,
    /// The replacement text for the primary span that `help` proposes ("did you mean `x`?"
    /// gives `x`), so tools can offer it as a one-click fix. Set by [`Diagnostic::with_suggestion`].
    pub suggestion: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { span: Some(span), ..Diagnostic::unplaced(code, message) }
    }

    /// A warning: reported, but the deck still compiles and runs.
    pub fn warning(code: Code, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, span, message) }
    }

    /// An error that no source place explains (see [`Diagnostic::span`]).
    pub fn unplaced(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span: None,
            label: None,
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    /// Sets the text under the primary caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }

    /// Adds another place that explains the problem.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    /// Adds a fact that explains the problem.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Sets what to do about it.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `x`?" when `suggestion` found a near name, and records `x` as the
    /// replacement for the primary span (which every caller points at the misspelled name).
    pub fn with_suggestion(self, suggestion: Option<&str>) -> Diagnostic {
        match suggestion {
            Some(s) => {
                let mut d = self.with_help(format!("did you mean `{s}`?"));
                d.suggestion = Some(s.to_string());
                d
            }
            None => self,
        }
    }

    /// Whether this stops compilation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The nearest candidate to `name` by edit distance, if it is near enough to be a likely typo.
pub fn did_you_mean<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        if candidate == name {
            continue;
        }
        let score = strsim::jaro_winkler(name, candidate);
        let distance = strsim::damerau_levenshtein(name, candidate);
        let close = distance <= 2.max(name.len() / 3) || score >= 0.88;
        // Ties go to the name that sorts first, so the suggestion never depends on the
        // order candidates come in (often a hash map's).
        if close && best.is_none_or(|(b, n)| score > b || (score == b && candidate < n)) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

// ---------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------

/// Renders diagnostics rustc-style, each with `--> FILE:LINE:COL` and the source lines it
/// points at. Plain text (no colors) so output is stable in files and snapshots.
pub fn render_text(sources: &Sources, diagnostics: &[Diagnostic]) -> String {
    let renderer = Renderer::plain();
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&render_one(&renderer, sources, diagnostic));
        out.push_str("\n\n");
    }
    out
}

/// The lines of one file that a diagnostic touches, as a window into the file so that a
/// diagnostic in a 1 MB file renders without re-scanning the whole file.
struct Window<'s> {
    file: FileId,
    text: &'s str,
    first_line: usize,
    base: usize,
}

fn window<'s>(sources: &'s Sources, file: FileId, spans: &[Span]) -> Window<'s> {
    let source = sources.get(file);
    let text = source.text.as_str();
    let clamp = |offset: u32| (offset as usize).min(text.len());
    let start = spans.iter().map(|s| clamp(s.start)).min().unwrap_or(0);
    let end = spans.iter().map(|s| clamp(s.end)).max().unwrap_or(0);
    let line_begin = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let (first_line, _) = source.line_col(line_begin as u32);
    Window { file, text: &text[line_begin..line_end], first_line, base: line_begin }
}

fn render_one(renderer: &Renderer, sources: &Sources, d: &Diagnostic) -> String {
    let level = match d.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    // One snippet per file that the diagnostic touches, the primary span's file first.
    let mut files: Vec<FileId> = d.span.iter().map(|s| s.file).collect();
    for l in &d.labels {
        if !files.contains(&l.span.file) {
            files.push(l.span.file);
        }
    }
    let windows: Vec<Window> = files
        .iter()
        .map(|&f| {
            let mut spans: Vec<Span> = d.labels.iter().map(|l| l.span).filter(|s| s.file == f).collect();
            spans.extend(d.span.filter(|s| s.file == f));
            window(sources, f, &spans)
        })
        .collect();
    let local = |w: &Window, s: Span| {
        let start = (s.start as usize).saturating_sub(w.base).min(w.text.len());
        let end = (s.end as usize).saturating_sub(w.base).clamp(start, w.text.len());
        start..end
    };
    let mut group = Group::with_title(level.primary_title(d.message.as_str()).id(d.code.as_str()));
    for w in &windows {
        let mut snippet =
            Snippet::source(w.text).line_start(w.first_line).path(sources.get(w.file).name.as_str()).fold(true);
        if let Some(span) = d.span.filter(|s| s.file == w.file) {
            let primary = AnnotationKind::Primary.span(local(w, span));
            snippet = snippet.annotation(match &d.label {
                Some(label) => primary.label(label.as_str()),
                None => primary,
            });
        }
        for l in d.labels.iter().filter(|l| l.span.file == w.file) {
            snippet = snippet.annotation(AnnotationKind::Context.span(local(w, l.span)).label(l.message.as_str()));
        }
        group = group.element(snippet);
    }
    for note in &d.notes {
        group = group.element(Level::NOTE.message(note.as_str()));
    }
    if let Some(help) = &d.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    let report: [Group; 1] = [group];
    renderer.render(&report).to_string()
}

/// A diagnostic as `--format json` prints it.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    /// The stable code.
    pub code: Code,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong.
    pub message: &'a str,
    /// The primary place; all four are `null` for a diagnostic no source place explains.
    pub file: Option<&'a str>,
    /// 1-based line of the primary place.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the primary place.
    pub column: Option<usize>,
    /// Line where the primary place ends.
    pub end_line: Option<usize>,
    /// Column where the primary place ends.
    pub end_column: Option<usize>,
    /// Other places that explain the problem.
    pub labels: Vec<JsonLabel<'a>>,
    /// Facts that explain the problem.
    pub notes: &'a [String],
    /// What to do about it.
    pub help: Option<&'a str>,
}

/// A secondary place as `--format json` prints it.
#[derive(Serialize)]
pub struct JsonLabel<'a> {
    /// What this place has to do with the problem.
    pub message: &'a str,
    /// The file's name.
    pub file: &'a str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// One diagnostic in its JSON form, its spans resolved to lines and columns.
pub fn to_json<'a>(sources: &'a Sources, d: &'a Diagnostic) -> JsonDiagnostic<'a> {
    let place = d.span.map(|span| {
        let file = sources.get(span.file);
        (file.name.as_str(), file.line_col(span.start), file.line_col(span.end))
    });
    JsonDiagnostic {
        code: d.code,
        severity: d.severity,
        message: &d.message,
        file: place.map(|p| p.0),
        line: place.map(|p| p.1 .0),
        column: place.map(|p| p.1 .1),
        end_line: place.map(|p| p.2 .0),
        end_column: place.map(|p| p.2 .1),
        labels: d
            .labels
            .iter()
            .map(|l| {
                let f = sources.get(l.span.file);
                let (line, column) = f.line_col(l.span.start);
                JsonLabel { message: &l.message, file: &f.name, line, column }
            })
            .collect(),
        notes: &d.notes,
        help: d.help.as_deref(),
    }
}

/// All diagnostics as one JSON document: `{"diagnostics": [...], "errors": N, "warnings": N}`.
pub fn render_json(sources: &Sources, diagnostics: &[Diagnostic]) -> String {
    #[derive(Serialize)]
    struct Report<'a> {
        diagnostics: Vec<JsonDiagnostic<'a>>,
        errors: usize,
        warnings: usize,
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let report = Report {
        diagnostics: diagnostics.iter().map(|d| to_json(sources, d)).collect(),
        errors,
        warnings: diagnostics.len() - errors,
    };
    serde_json::to_string_pretty(&report).expect("diagnostics serialize to JSON")
}
