//! pest parse tree → arena AST.
//!
//! Owns: running the pest grammar, turning pest's errors into diagnostics (several per
//! file, by re-parsing item by item after the first error), and decoding literals into
//! AST values. Must not: resolve names or check types.

use bumpalo::Bump;
use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::*;
use super::lexer::{self, Token};
use crate::diagnostics::{Code, Diagnostic};
use crate::ops::{ArithOp, CmpOp};
use crate::source::{FileId, Span};

use crate::limits::{BUCKETS, MAX_LIST_LEN};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/ruledeck.pest"]
struct Grammar;

type P<'i> = Pair<'i, Rule>;

/// Parses one file that has passed the pre-scan.
pub fn parse_file<'a>(bump: &'a Bump, file: FileId, src: &str) -> Result<File<'a>, Vec<Diagnostic>> {
    match Grammar::parse(Rule::file, src) {
        Ok(mut pairs) => {
            let mut builder = Builder { bump, file, base: 0, diags: Vec::new() };
            let root = pairs.next().expect("the file rule always yields one pair");
            let items: Vec<Item<'a>> =
                root.into_inner().filter(|p| p.as_rule() != Rule::EOI).map(|p| builder.item(p)).collect();
            if builder.diags.is_empty() {
                Ok(File { items: bump.alloc_slice_fill_iter(items) })
            } else {
                Err(builder.diags)
            }
        }
        Err(first) => Err(recover(file, src, &first)),
    }
}

/// After the first syntax error, re-parse each later top-level item on its own so that one
/// broken item does not hide errors in independent items further down.
fn recover(file: FileId, src: &str, first: &pest::error::Error<Rule>) -> Vec<Diagnostic> {
    let first_error = syntax_error(file, src, 0, Rule::file, first);
    let first_pos = first_error.span.map_or(0, |s| s.start as usize);
    let mut diags = vec![first_error];
    let starts = item_starts(src);
    for (i, &start) in starts.iter().enumerate() {
        // An item starting exactly at the first error is where the previous item ran into
        // it; parse it on its own too.
        if start < first_pos {
            continue;
        }
        let end = starts.get(i + 1).copied().unwrap_or(src.len());
        if let Err(e) = Grammar::parse(Rule::single_item, &src[start..end]) {
            let d = syntax_error(file, src, start, Rule::single_item, &e);
            if !diags.contains(&d) {
                diags.push(d);
            }
        }
    }
    diags
}

/// Offsets of lines that begin, at bracket depth 0, with a keyword that starts an item.
/// A heuristic only used for recovery: the first error always comes from the full parse.
fn item_starts(src: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    for (token, range) in lexer::tokens(src) {
        let Ok(token) = token else { continue };
        match token {
            Token::Whitespace => {
                if src[range].contains('\n') {
                    line_start = true;
                }
                continue;
            }
            Token::LineComment | Token::BlockComment => continue,
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Ident if depth == 0 && line_start => {
                if matches!(
                    &src[range.clone()],
                    "entity" | "tag" | "rule" | "layer" | "scene" | "test" | "event" | "channel" | "action"
                ) {
                    starts.push(range.start);
                }
            }
            _ => {}
        }
        line_start = false;
    }
    starts
}

fn error_pos(e: &pest::error::Error<Rule>) -> usize {
    match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
}

/// How a grammar rule is named in "expected …" messages; `None` hides helper rules.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::entity_decl | Rule::kw_entity => "`entity`",
        Rule::tag_decl | Rule::kw_tag => "`tag`",
        Rule::rule_decl | Rule::kw_rule => "`rule`",
        Rule::layer_decl | Rule::kw_layer => "`layer`",
        Rule::scene_decl | Rule::kw_scene => "`scene`",
        Rule::test_decl | Rule::kw_test => "`test`",
        Rule::event_decl | Rule::kw_event => "`event`",
        Rule::window_tag_decl => "`tag`",
        Rule::window_agg => "an aggregate like `count(browse)`",
        Rule::window_where | Rule::kw_where => "`where`",
        Rule::kw_within => "`within`",
        Rule::event_late | Rule::kw_late => "`late`",
        Rule::channel_decl | Rule::kw_channel => "`channel`",
        Rule::reach_cap | Rule::kw_cap => "`cap`",
        Rule::kw_per => "`per`",
        Rule::channel_quiet | Rule::kw_quiet => "`quiet`",
        Rule::kw_hold | Rule::kw_drop => "`hold` or `drop`",
        Rule::channel_zone | Rule::kw_zone => "`zone`",
        Rule::clock => "a time of day like `22:00`",
        Rule::action_decl | Rule::kw_action => "`action`",
        Rule::action_budget | Rule::kw_budget => "`budget`",
        Rule::kw_of => "`of`",
        Rule::scene_on | Rule::kw_on => "`on`",
        Rule::scene_fanout => "`for each`",
        Rule::kw_each => "`each`",
        Rule::kw_with => "`with`",
        Rule::fanout_match => "a match like `sku == event.skuid`",
        Rule::reach_type | Rule::reach_decision | Rule::kw_reach => "`reach`",
        Rule::reach_dedup | Rule::kw_dedup => "`dedup`",
        Rule::control_decision => "`none`",
        Rule::ident | Rule::type_name => "a name",
        Rule::tag_path => "a tag like `user.name`",
        Rule::unit => "a key or tag",
        Rule::type_expr | Rule::type_enum | Rule::type_list => "a type",
        Rule::tag_from | Rule::kw_from => "`from`",
        Rule::tag_cache | Rule::kw_cache => "`cache`",
        Rule::tag_passthrough | Rule::kw_passthrough => "`passthrough`",
        Rule::tag_sensitive | Rule::kw_sensitive => "`sensitive`",
        Rule::tag_status => "a status (`draft`, `online`, `disabled`)",
        Rule::scene_keys | Rule::kw_keys => "`keys`",
        Rule::scene_passes | Rule::kw_passes => "`passes`",
        Rule::instance_decl | Rule::kw_instance => "`instance`",
        Rule::strategy_decl | Rule::kw_strategy => "`strategy`",
        Rule::strategy_when | Rule::kw_when => "`when`",
        Rule::default_decl | Rule::kw_default => "`default`",
        Rule::experiment_decl | Rule::kw_experiment => "`experiment`",
        Rule::layer_claim => "`in LAYER A%..B%`",
        Rule::salt | Rule::kw_salt => "`salt`",
        Rule::group_decl => "a group like `control 50% => {…}`",
        Rule::decision | Rule::decision_type => "`{`",
        Rule::field_init | Rule::field_decl => "a field",
        Rule::given | Rule::kw_given => "`given`",
        Rule::given_entry => "a given value",
        Rule::expect_decision | Rule::expect_strategy | Rule::kw_expect => "`expect`",
        Rule::kw_none => "`none`",
        Rule::expect_tag => "`expect tag`",
        Rule::kw_for => "`for`",
        Rule::kw_group => "`group`",
        Rule::kw_key => "`key`",
        Rule::kw_by => "`by`",
        Rule::kw_in | Rule::in_tail => "`in`",
        Rule::expr | Rule::and_expr | Rule::not_expr | Rule::predicate => "an expression",
        Rule::value | Rule::product | Rule::unary => "a value",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::cmp_tail
        | Rule::cmp_op
        | Rule::between_tail
        | Rule::not_in_tail
        | Rule::contains_tail
        | Rule::not_contains_tail
        | Rule::contains_any_tail
        | Rule::contains_all_tail
        | Rule::starts_with_tail
        | Rule::ends_with_tail
        | Rule::matches_tail
        | Rule::is_tail
        | Rule::before_tail
        | Rule::after_tail
        | Rule::within_tail
        | Rule::older_than_tail => "an operator",
        Rule::add_op | Rule::mul_op => "an arithmetic operator",
        Rule::kw_missing | Rule::kw_present | Rule::kw_empty => "`missing`, `present` or `empty`",
        Rule::kw_than => "`than`",
        Rule::list => "a list like `[a, b]`",
        Rule::percent => "a percentage like `50%`",
        Rule::string => "a text literal",
        Rule::duration => "a duration like `3m`",
        Rule::int | Rule::float | Rule::time | Rule::boolean | Rule::paren | Rule::len_call => "a value",
        _ => return None,
    })
}

/// Turns a pest failure of `rule` on `src[base..]` into a diagnostic. pest only reports
/// *rules* it expected, so a missing `}` would read "expected an arithmetic operator"; the
/// failing text is parsed again with pest's error detail on (error path only), which also
/// records the literal tokens it tried.
fn syntax_error(file: FileId, src: &str, base: usize, rule: Rule, e: &pest::error::Error<Rule>) -> Diagnostic {
    let mut pos = base + error_pos(e);
    let mut expected: Vec<String> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|&r| describe(r)).map(str::to_string).collect()
        }
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let detailed = parse_in_detail(rule, &src[base..]);
    // Attempts inside a lookahead (`!reserved`) can push the detailed position into the
    // middle of a word; only trust it when it starts a token at or after pest's own.
    let attempts = detailed
        .err()
        .and_then(|e| e.parse_attempts())
        .filter(|a| base + a.max_position >= pos && at_token_start(src, base + a.max_position));
    if let Some(attempts) = attempts {
        pos = base + attempts.max_position;
        expected = attempts
            .call_stacks()
            .iter()
            .filter_map(|stack| stack.deepest.get_rule().filter(|&&r| !is_item(r)).and_then(|&r| describe(r)))
            .map(str::to_string)
            .collect();
        for token in attempts.expected_tokens() {
            // Punctuation only: keywords arrive as `kw_*` rules, and letters, digits or `_`
            // are pieces of names and numbers that would only clutter the message.
            let token = token.to_string();
            let noise = matches!(token.as_str(), "//" | "/*" | "\"" | "@" | "-")
                || token.chars().any(|c| c.is_alphanumeric() || c == '_' || c.is_whitespace() || c == '\u{240D}');
            if !noise {
                expected.push(format!("`{token}`"));
            }
        }
    }
    expected.sort_unstable();
    expected.dedup();
    let found = token_at(src, pos);
    let end = pos + found.map_or(0, str::len);
    let found_text = match found {
        Some(t) => format!("`{t}`"),
        None => "end of file".to_string(),
    };
    let message = match expected.as_slice() {
        [] => format!("unexpected {found_text}"),
        [one] => format!("expected {one}, found {found_text}"),
        [init @ .., last] => format!("expected {} or {last}, found {found_text}", init.join(", ")),
    };
    let d = Diagnostic::error(Code::Syntax, Span::new(file, pos, end), message).with_label("unexpected here");
    let wanted = |what: &str| expected.iter().any(|e| e == what);
    match found {
        Some("=") if wanted("`==`") => {
            d.with_help("compare with `==`; a single `=` only names a rule (`rule user r = …`)")
        }
        // `12.5%x`: the number and `%` lex as a percentage, which values never take.
        Some("%") if src[..pos].ends_with(|c: char| c.is_ascii_digit()) => d.with_help(
            "a number touching `%` is a percentage, which only experiment groups and layer claims take; \
             for the remainder, put a space before `%` (`12.5 % x`)",
        ),
        Some(word) if wanted("a name") && crate::syntax::RESERVED_WORDS.contains(&word) => d.with_help(format!(
            "`{word}` is a reserved word and cannot be a name; choose another, e.g. `{word}_1` or `my_{word}`"
        )),
        _ => d,
    }
}

/// Serializes every parse that needs pest's detailed attempts: the switch is process-wide,
/// so two compilations reporting errors at once (the service, the language server) would
/// otherwise turn it off under each other and report different messages for the same input.
/// Parses that succeed never take the lock; one that overlaps a detailed parse is only
/// slower, never different.
fn parse_in_detail(rule: Rule, src: &str) -> Result<pest::iterators::Pairs<'_, Rule>, pest::error::Error<Rule>> {
    static DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = DETAIL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    pest::set_error_detail(true);
    let result = Grammar::parse(rule, src);
    pest::set_error_detail(false);
    result
}

/// Rules for whole items: in detailed attempts they stand for "somewhere in this item",
/// which says nothing about what was expected at the error.
fn is_item(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::entity_decl
            | Rule::tag_decl
            | Rule::rule_decl
            | Rule::layer_decl
            | Rule::scene_decl
            | Rule::test_decl
            | Rule::event_decl
            | Rule::window_tag_decl
            | Rule::channel_decl
            | Rule::action_decl
    )
}

fn at_token_start(src: &str, pos: usize) -> bool {
    let Some(rest) = src.get(pos..) else { return false };
    let Some(c) = rest.chars().next() else { return true };
    let word = |c: char| c.is_alphanumeric() || c == '_';
    !c.is_whitespace() && src[..pos].chars().next_back().is_none_or(|p| !(word(p) && word(c)))
}

/// The token starting at `pos`, for "found `…`" in syntax errors.
fn token_at(src: &str, pos: usize) -> Option<&str> {
    let rest = src.get(pos..)?;
    let (_, range) = lexer::tokens(rest).next()?;
    Some(&rest[range]).filter(|t| !t.is_empty())
}

/// Whether `text` is only whitespace and comments.
fn is_trivia(mut text: &str) -> bool {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("//") {
            text = rest.find('\n').map_or("", |i| &rest[i..]);
        } else if let Some(rest) = text.strip_prefix("/*") {
            match rest.find("*/") {
                Some(i) => text = &rest[i + 2..],
                None => return false,
            }
        } else {
            return text.is_empty();
        }
    }
}

/// Decodes the value of a percent literal (`12.5%`) into hundredths of a percent: A/B
/// buckets, so 100% is all [`BUCKETS`] of them.
pub fn parse_percent(text: &str) -> Option<u32> {
    let body = text.strip_suffix('%')?.replace('_', "");
    let (whole, frac) = body.split_once('.').unwrap_or((&body, ""));
    if frac.len() > 2 {
        return None;
    }
    let whole: u32 = whole.parse().ok().filter(|&w| w <= 100)?;
    let frac: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    Some(whole * 100 + frac).filter(|&h| h <= BUCKETS)
}

struct Builder<'a> {
    bump: &'a Bump,
    file: FileId,
    base: usize,
    diags: Vec<Diagnostic>,
}

impl<'a> Builder<'a> {
    /// The node's span without trailing trivia. pest inserts implicit whitespace between
    /// sequence elements, so a rule whose last element is an optional part that did not
    /// match (`ident ~ (kw_group ~ ident)?`) ends after the whitespace it skipped.
    fn span(&self, p: &P) -> Span {
        let s = p.as_span();
        let mut end = s.end();
        if let Some(last) = p.clone().into_inner().next_back() {
            let last_end = last.as_span().end();
            if is_trivia(&s.get_input()[last_end..end]) {
                end = last_end;
            }
        }
        Span::new(self.file, self.base + s.start(), self.base + end)
    }

    fn alloc<T>(&self, value: T) -> &'a T {
        self.bump.alloc(value)
    }

    fn slice<T>(&self, items: Vec<T>) -> &'a [T] {
        self.bump.alloc_slice_fill_iter(items)
    }

    fn str(&self, s: &str) -> &'a str {
        self.bump.alloc_str(s)
    }

    fn ident(&self, p: P) -> Ident<'a> {
        debug_assert_eq!(p.as_rule(), Rule::ident);
        Ident { name: self.str(p.as_str()), span: self.span(&p) }
    }

    fn path(&self, p: P) -> Path<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let first = self.ident(inner.next().expect("tag_path has two idents"));
        let second = self.ident(inner.next().expect("tag_path has two idents"));
        Path { first, second, span }
    }

    fn string(&mut self, p: P) -> StrLit<'a> {
        let span = self.span(&p);
        let body = p.into_inner().next().map_or("", |b| b.as_str());
        // The pre-scan already rejected bad escapes; decoding cannot fail here.
        let value = lexer::unescape(body).unwrap_or_default();
        StrLit { value: self.str(&value), span }
    }

    fn item(&mut self, p: P) -> Item<'a> {
        match p.as_rule() {
            Rule::entity_decl => {
                let span = self.span(&p);
                let mut idents = p.into_inner().filter(|p| p.as_rule() == Rule::ident);
                let name = self.ident(idents.next().expect("entity name"));
                let key = self.ident(idents.next().expect("entity key"));
                Item::Entity(self.alloc(EntityDecl { name, key, span }))
            }
            Rule::tag_decl => Item::Tag(self.tag_decl(p)),
            Rule::rule_decl => {
                let span = self.span(&p);
                let mut inner = p.into_inner().skip(1);
                let kind = self.ident(inner.next().expect("rule kind"));
                let name = self.ident(inner.next().expect("rule name"));
                let expr = self.expr(inner.next().expect("rule expr"));
                Item::Rule(self.alloc(RuleDecl { kind, name, expr, span }))
            }
            Rule::layer_decl => {
                let span = self.span(&p);
                let mut inner = p.into_inner().filter(|p| matches!(p.as_rule(), Rule::ident | Rule::unit));
                let name = self.ident(inner.next().expect("layer name"));
                let unit = self.unit(inner.next().expect("layer unit"));
                Item::Layer(self.alloc(LayerDecl { name, unit, span }))
            }
            Rule::scene_decl => Item::Scene(self.scene(p)),
            Rule::test_decl => Item::Test(self.test(p)),
            Rule::event_decl => Item::Event(self.event_decl(p)),
            Rule::window_tag_decl => Item::WindowTag(self.window_tag_decl(p)),
            Rule::channel_decl => Item::Channel(self.channel_decl(p)),
            Rule::action_decl => Item::Action(self.action_decl(p)),
            other => unreachable!("grammar item alternatives are exhaustive, got {other:?}"),
        }
    }

    fn field_decl(&mut self, f: P) -> FieldDecl<'a> {
        let mut parts = f.into_inner();
        let name = self.ident(parts.next().expect("field name"));
        let ty = self.type_expr(parts.next().expect("field type"));
        FieldDecl { name, ty }
    }

    fn duration(&self, p: &P) -> (i64, Span) {
        (lexer::duration_seconds(p.as_str()).unwrap_or(0), self.span(p))
    }

    fn event_decl(&mut self, p: P) -> &'a EventDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.ident(inner.next().expect("event name"));
        let key = self.ident(inner.nth(1).expect("event key"));
        let (mut late, mut fields) = (None, Vec::new());
        for part in inner {
            match part.as_rule() {
                Rule::event_late => late = Some(self.duration(&part.into_inner().nth(1).expect("lateness"))),
                Rule::field_decl => fields.push(self.field_decl(part)),
                other => unreachable!("event part {other:?}"),
            }
        }
        self.alloc(EventDecl { name, key, late, fields: self.slice(fields), span })
    }

    fn window_tag_decl(&mut self, p: P) -> &'a WindowTagDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let path = self.path(inner.next().expect("tag path"));
        let ty = self.type_expr(inner.next().expect("tag type"));
        let mut agg_parts = inner.next().expect("aggregate").into_inner();
        let agg = self.ident(agg_parts.next().expect("aggregate name"));
        let src = agg_parts.next().expect("aggregate source");
        let source = match src.as_rule() {
            Rule::tag_path => Unit::Tag(self.path(src)),
            _ => Unit::Key(self.ident(src)),
        };
        let filter = agg_parts.next().map(|w| self.expr(w.into_inner().nth(1).expect("filter")));
        let within = self.duration(&inner.nth(1).expect("window length"));
        let status = inner.next().map(|st| {
            let span = self.span(&st);
            let status = match st.into_inner().next().map(|k| k.as_rule()) {
                Some(Rule::kw_draft) => Status::Draft,
                Some(Rule::kw_disabled) => Status::Disabled,
                _ => Status::Online,
            };
            (status, span)
        });
        self.alloc(WindowTagDecl { path, ty, agg, source, filter, within, status, span })
    }

    fn cap(&mut self, p: P) -> Cap {
        let span = self.span(&p);
        let mut parts = p.into_inner().skip(1);
        let count = self.int_literal(parts.next().expect("cap count"));
        let per = self.duration(&parts.nth(1).expect("cap window")).0;
        Cap { count, per, span }
    }

    /// An `int` literal outside expressions (caps, budgets); the pre-scan bounded its range.
    fn int_literal(&mut self, p: P) -> i64 {
        p.as_str().replace('_', "").parse().unwrap_or(i64::MAX)
    }

    fn channel_decl(&mut self, p: P) -> &'a ChannelDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.ident(inner.next().expect("channel name"));
        let (mut caps, mut quiet, mut zones) = (Vec::new(), Vec::new(), Vec::new());
        for opt in inner {
            match opt.as_rule() {
                Rule::reach_cap => caps.push(self.cap(opt)),
                Rule::channel_quiet => {
                    let span = self.span(&opt);
                    let mut parts = opt.into_inner().skip(1);
                    let clock = |c: P| {
                        let (h, m) = c.as_str().split_once(':')?;
                        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
                        (h < 24 && m < 60).then_some(h * 60 + m)
                    };
                    let from = clock(parts.next().expect("quiet start"));
                    let to = clock(parts.next().expect("quiet end"));
                    let drop = parts.next().is_some_and(|k| k.as_rule() == Rule::kw_drop);
                    quiet.push(Quiet { from, to, drop, span });
                }
                Rule::channel_zone => zones.push(self.path(opt.into_inner().nth(1).expect("zone tag"))),
                other => unreachable!("channel option {other:?}"),
            }
        }
        self.alloc(ChannelDecl {
            name,
            caps: self.slice(caps),
            quiet: self.slice(quiet),
            zones: self.slice(zones),
            span,
        })
    }

    fn action_decl(&mut self, p: P) -> &'a ActionDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.string(inner.next().expect("action name"));
        let (mut caps, mut budgets) = (Vec::new(), Vec::new());
        for opt in inner {
            match opt.as_rule() {
                Rule::reach_cap => caps.push(self.cap(opt)),
                Rule::action_budget => {
                    let span = self.span(&opt);
                    let mut parts = opt.into_inner().skip(1);
                    let amount = self.int_literal(parts.next().expect("budget amount"));
                    let of = parts.nth(1).map(|f| self.ident(f));
                    budgets.push(Budget { amount, of, span });
                }
                other => unreachable!("action option {other:?}"),
            }
        }
        self.alloc(ActionDecl { name, caps: self.slice(caps), budgets: self.slice(budgets), span })
    }

    /// A strategy's, default's or group's decision: a record, a reach action or `none`.
    fn any_decision(&mut self, p: P) -> &'a Decision<'a> {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::decision => self.decision(p),
            Rule::control_decision => self.alloc(Decision { kind: DecisionKind::Control, fields: &[], span }),
            Rule::reach_decision => {
                let mut parts = p.into_inner().skip(1);
                let channel = self.ident(parts.next().expect("reach channel"));
                let action = self.string(parts.next().expect("reach action"));
                let (mut fields, mut dedup): (&'a [FieldInit<'a>], _) = (&[], None);
                for part in parts {
                    match part.as_rule() {
                        Rule::decision => fields = self.decision(part).fields,
                        Rule::reach_dedup => dedup = Some(self.duration(&part.into_inner().nth(1).expect("dedup"))),
                        other => unreachable!("reach part {other:?}"),
                    }
                }
                self.alloc(Decision { kind: DecisionKind::Reach { channel, action, dedup }, fields, span })
            }
            other => unreachable!("decision {other:?}"),
        }
    }

    fn tag_decl(&mut self, p: P) -> &'a TagDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let path = self.path(inner.next().expect("tag path"));
        let ty = self.type_expr(inner.next().expect("tag type"));
        let mut options = Vec::new();
        for opt in inner {
            let span = self.span(&opt);
            options.push(match opt.as_rule() {
                Rule::tag_from => TagOption::From(self.string(opt.into_inner().nth(1).expect("provider name"))),
                Rule::tag_cache => {
                    let d = opt.into_inner().nth(1).expect("cache duration");
                    TagOption::Cache(lexer::duration_seconds(d.as_str()).unwrap_or(0), span)
                }
                Rule::tag_passthrough => TagOption::Passthrough(span),
                Rule::tag_sensitive => TagOption::Sensitive(span),
                Rule::tag_status => {
                    let status = match opt.into_inner().next().map(|k| k.as_rule()) {
                        Some(Rule::kw_draft) => Status::Draft,
                        Some(Rule::kw_disabled) => Status::Disabled,
                        _ => Status::Online,
                    };
                    TagOption::Status(status, span)
                }
                other => unreachable!("tag option {other:?}"),
            });
        }
        self.alloc(TagDecl { path, ty, options: self.slice(options), span })
    }

    fn type_expr(&mut self, p: P) -> &'a TypeExpr<'a> {
        let span = self.span(&p);
        let inner = p.into_inner().next().expect("type_expr has one child");
        let kind = match inner.as_rule() {
            Rule::type_name => TypeExprKind::Named(self.ident(inner.into_inner().next().expect("type name"))),
            Rule::type_enum => {
                let members: Vec<_> =
                    inner.into_inner().filter(|p| p.as_rule() == Rule::ident).map(|p| self.ident(p)).collect();
                TypeExprKind::Enum(self.slice(members))
            }
            Rule::type_list => {
                let elem = inner.into_inner().find(|p| p.as_rule() == Rule::type_expr).expect("list element type");
                TypeExprKind::List(self.type_expr(elem))
            }
            other => unreachable!("type {other:?}"),
        };
        self.alloc(TypeExpr { kind, span })
    }

    fn unit(&self, p: P) -> Unit<'a> {
        let inner = p.into_inner().next().expect("unit has one child");
        match inner.as_rule() {
            Rule::tag_path => Unit::Tag(self.path(inner)),
            _ => Unit::Key(self.ident(inner)),
        }
    }

    fn scene(&mut self, p: P) -> &'a SceneDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.ident(inner.next().expect("scene name"));
        let (mut keys, mut passes, mut instances, mut on) = (Vec::new(), Vec::new(), Vec::new(), None);
        let mut fanout = None;
        for member in inner {
            match member.as_rule() {
                Rule::scene_on => on = Some(self.ident(member.into_inner().nth(1).expect("scene event"))),
                Rule::scene_fanout => fanout = Some(self.fanout(member)),
                Rule::scene_keys => {
                    keys.extend(member.into_inner().filter(|p| p.as_rule() == Rule::ident).map(|p| self.ident(p)))
                }
                Rule::scene_passes => {
                    passes.extend(member.into_inner().filter(|p| p.as_rule() == Rule::tag_path).map(|p| self.path(p)))
                }
                Rule::instance_decl => instances.push(self.instance(member)),
                other => unreachable!("scene member {other:?}"),
            }
        }
        self.alloc(SceneDecl {
            name,
            on,
            fanout,
            keys: self.slice(keys),
            passes: self.slice(passes),
            instances: self.slice(instances),
            span,
        })
    }

    fn fanout(&mut self, p: P) -> &'a Fanout<'a> {
        let span = self.span(&p);
        let mut idents = Vec::new();
        let mut pairs = Vec::new();
        let mut within = (0, span);
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::ident => idents.push(self.ident(part)),
                Rule::fanout_match => {
                    let mut m = part.into_inner();
                    let field = self.ident(m.next().expect("index field"));
                    let value = self.path(m.next().expect("trigger value"));
                    pairs.push((field, value));
                }
                Rule::duration => within = self.duration(&part),
                _ => {}
            }
        }
        let [entity, index] = idents[..] else { unreachable!("a fan-out names an entity and an event") };
        self.alloc(Fanout { entity, index, pairs: self.slice(pairs), within, span })
    }

    fn instance(&mut self, p: P) -> InstanceDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.ident(inner.next().expect("instance name"));
        let mut ty = inner.next().expect("decision type");
        let mut reach = None;
        if ty.as_rule() == Rule::reach_type {
            let mut parts = ty.into_inner();
            let kw = parts.next().expect("`reach`");
            reach = Some(self.span(&kw));
            match parts.next() {
                Some(payload) => ty = payload,
                None => {
                    // `-> reach` with no payload: an empty decision type.
                    let strategies_and_default = inner.collect::<Vec<_>>();
                    return self.instance_body(name, reach, Vec::new(), strategies_and_default, span);
                }
            }
        }
        let fields = ty.into_inner().map(|f| self.field_decl(f)).collect();
        let rest = inner.collect::<Vec<_>>();
        self.instance_body(name, reach, fields, rest, span)
    }

    fn instance_body(
        &mut self,
        name: Ident<'a>,
        reach: Option<Span>,
        fields: Vec<FieldDecl<'a>>,
        inner: Vec<P>,
        span: Span,
    ) -> InstanceDecl<'a> {
        let (mut strategies, mut default) = (Vec::new(), None);
        for member in inner {
            match member.as_rule() {
                Rule::strategy_decl => strategies.push(self.strategy(member)),
                Rule::default_decl => {
                    let span = self.span(&member);
                    let d = member.into_inner().nth(1).expect("default decision");
                    default = Some(DefaultDecl { decision: self.any_decision(d), span });
                }
                other => unreachable!("instance member {other:?}"),
            }
        }
        InstanceDecl { name, reach, fields: self.slice(fields), strategies: self.slice(strategies), default, span }
    }

    fn strategy(&mut self, p: P) -> StrategyDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.ident(inner.next().expect("strategy name"));
        let mut when = None;
        let mut body = None;
        for part in inner {
            match part.as_rule() {
                Rule::strategy_when => when = Some(self.expr(part.into_inner().nth(1).expect("when expr"))),
                Rule::decision | Rule::reach_decision | Rule::control_decision => {
                    body = Some(StrategyBody::Decision(self.any_decision(part)))
                }
                Rule::experiment_decl => body = Some(StrategyBody::Experiment(self.experiment(part))),
                other => unreachable!("strategy part {other:?}"),
            }
        }
        StrategyDecl { name, when, body: body.expect("strategy has a body"), span }
    }

    fn percent(&mut self, p: P) -> Percent {
        let span = self.span(&p);
        let hundredths = parse_percent(p.as_str()).unwrap_or_else(|| {
            self.diags.push(
                Diagnostic::error(Code::InvalidPercent, span, format!("invalid percentage `{}`", p.as_str()))
                    .with_note("percentages range from 0% to 100% with at most two decimals, like `12.25%`"),
            );
            0
        });
        Percent { hundredths, span }
    }

    fn experiment(&mut self, p: P) -> &'a ExperimentDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.ident(inner.next().expect("experiment name"));
        let unit = self.unit(inner.find(|p| p.as_rule() == Rule::unit).expect("experiment unit"));
        let (mut layer, mut salt, mut groups) = (None, None, Vec::new());
        for part in inner {
            match part.as_rule() {
                Rule::layer_claim => {
                    let span = self.span(&part);
                    let mut parts = part.into_inner().skip(1);
                    let layer_name = self.ident(parts.next().expect("layer name"));
                    let from = self.percent(parts.next().expect("range start"));
                    let to = self.percent(parts.next().expect("range end"));
                    layer = Some(LayerClaim { layer: layer_name, from, to, span });
                }
                Rule::salt => salt = Some(self.string(part.into_inner().nth(1).expect("salt text"))),
                Rule::group_decl => {
                    let span = self.span(&part);
                    let mut parts = part.into_inner();
                    let name = self.ident(parts.next().expect("group name"));
                    let percent = self.percent(parts.next().expect("group percent"));
                    let decision = self.any_decision(parts.next().expect("group decision"));
                    groups.push(GroupDecl { name, percent, decision, span });
                }
                other => unreachable!("experiment part {other:?}"),
            }
        }
        self.alloc(ExperimentDecl { name, unit, layer, salt, groups: self.slice(groups), span })
    }

    fn decision(&mut self, p: P) -> &'a Decision<'a> {
        let span = self.span(&p);
        let fields: Vec<_> = p
            .into_inner()
            .map(|f| {
                let mut parts = f.into_inner();
                let name = self.ident(parts.next().expect("field name"));
                let value = self.value(parts.next().expect("field value"));
                FieldInit { name, value }
            })
            .collect();
        self.alloc(Decision { kind: DecisionKind::Record, fields: self.slice(fields), span })
    }

    fn test(&mut self, p: P) -> &'a TestDecl<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1);
        let name = self.string(inner.next().expect("test name"));
        let (mut given, mut expects) = (Vec::new(), Vec::new());
        for part in inner {
            match part.as_rule() {
                Rule::given => {
                    for entry in part.into_inner().filter(|p| p.as_rule() == Rule::given_entry) {
                        let mut parts = entry.into_inner();
                        let target = parts.next().expect("given name");
                        let name = match target.as_rule() {
                            Rule::tag_path => GivenName::Tag(self.path(target)),
                            _ => GivenName::Key(self.ident(target)),
                        };
                        let value = self.value(parts.next().expect("given value"));
                        given.push(GivenEntry { name, value });
                    }
                }
                Rule::expect_decision => {
                    let span = self.span(&part);
                    let mut parts = part.into_inner().skip(1);
                    let target = self.path(parts.next().expect("expect target"));
                    let outcome = parts.next().expect("expect outcome");
                    let decision = match outcome.as_rule() {
                        Rule::decision | Rule::reach_decision => Some(self.any_decision(outcome)),
                        _ => None,
                    };
                    expects.push(Expect::Decision { target, decision, span });
                }
                Rule::expect_tag => {
                    let span = self.span(&part);
                    let mut parts = part
                        .into_inner()
                        .filter(|p| matches!(p.as_rule(), Rule::tag_path | Rule::value | Rule::kw_missing));
                    let tag = self.path(parts.next().expect("expected tag"));
                    let key = self.value(parts.next().expect("key value"));
                    let value = parts.next().filter(|p| p.as_rule() == Rule::value).map(|v| self.value(v));
                    expects.push(Expect::Tag { tag, key, value, span });
                }
                Rule::expect_strategy => {
                    let span = self.span(&part);
                    let mut idents = part.into_inner().filter(|p| p.as_rule() == Rule::ident);
                    let strategy = self.ident(idents.next().expect("strategy name"));
                    let group = idents.next().map(|g| self.ident(g));
                    expects.push(Expect::Strategy { strategy, group, span });
                }
                other => unreachable!("test part {other:?}"),
            }
        }
        self.alloc(TestDecl { name, given: self.slice(given), expects: self.slice(expects), span })
    }

    // -----------------------------------------------------------------------------------
    // Expressions
    // -----------------------------------------------------------------------------------

    fn expr_node(&self, kind: ExprKind<'a>, span: Span) -> &'a Expr<'a> {
        self.alloc(Expr { kind, span })
    }

    /// `expr` and `and_expr`: flat chains, one node whatever their length.
    fn expr(&mut self, p: P) -> &'a Expr<'a> {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut clauses: Vec<Expr<'a>> = Vec::new();
        for child in p.into_inner() {
            let e = match child.as_rule() {
                Rule::kw_or | Rule::kw_and => continue,
                Rule::and_expr => self.expr(child),
                Rule::not_expr => self.not_expr(child),
                other => unreachable!("boolean chain child {other:?}"),
            };
            clauses.push(*e);
        }
        if clauses.len() == 1 {
            return self.alloc(clauses.pop().expect("one clause"));
        }
        let clauses = self.slice(clauses);
        let kind = if rule == Rule::expr { ExprKind::Or(clauses) } else { ExprKind::And(clauses) };
        self.expr_node(kind, span)
    }

    fn not_expr(&mut self, p: P) -> &'a Expr<'a> {
        let mut nots = Vec::new();
        let mut predicate = None;
        for child in p.into_inner() {
            match child.as_rule() {
                Rule::kw_not => nots.push(self.span(&child)),
                _ => predicate = Some(self.predicate(child)),
            }
        }
        let mut e = predicate.expect("not_expr ends in a predicate");
        for not_span in nots.into_iter().rev() {
            e = self.expr_node(ExprKind::Not(e), not_span.to(e.span));
        }
        e
    }

    fn predicate(&mut self, p: P) -> &'a Expr<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let subject = self.value(inner.next().expect("predicate subject"));
        let Some(tail) = inner.next() else { return subject };
        let tail_rule = tail.as_rule();
        let mut args: Vec<Expr<'a>> = Vec::new();
        let mut op_span: Option<Span> = None;
        let mut word = None; // `==`… for comparisons; `missing`/`present`/`empty` after `is`
        for part in tail.into_inner() {
            let part_span = self.span(&part);
            match part.as_rule() {
                Rule::value => args.push(*self.value(part)),
                Rule::list => args.push(*self.list(part)),
                Rule::string => {
                    let s = self.string(part);
                    args.push(Expr { kind: ExprKind::Text(s.value), span: s.span });
                }
                // The `and` of `between A and B` separates arguments; it is not the operator.
                Rule::kw_and => {}
                rule => {
                    if matches!(rule, Rule::cmp_op | Rule::kw_missing | Rule::kw_present | Rule::kw_empty) {
                        word = Some(part.as_str());
                    }
                    op_span = Some(op_span.map_or(part_span, |s| s.to(part_span)));
                }
            }
        }
        let op = match (tail_rule, word) {
            (Rule::cmp_tail, Some("==")) => PredOp::Cmp(CmpOp::Eq),
            (Rule::cmp_tail, Some("!=")) => PredOp::Cmp(CmpOp::Ne),
            (Rule::cmp_tail, Some("<")) => PredOp::Cmp(CmpOp::Lt),
            (Rule::cmp_tail, Some("<=")) => PredOp::Cmp(CmpOp::Le),
            (Rule::cmp_tail, Some(">")) => PredOp::Cmp(CmpOp::Gt),
            (Rule::cmp_tail, _) => PredOp::Cmp(CmpOp::Ge),
            (Rule::between_tail, _) => PredOp::Between,
            (Rule::in_tail, _) => PredOp::In,
            (Rule::not_in_tail, _) => PredOp::NotIn,
            (Rule::contains_tail, _) => PredOp::Contains,
            (Rule::not_contains_tail, _) => PredOp::NotContains,
            (Rule::contains_any_tail, _) => PredOp::ContainsAny,
            (Rule::contains_all_tail, _) => PredOp::ContainsAll,
            (Rule::starts_with_tail, _) => PredOp::StartsWith,
            (Rule::ends_with_tail, _) => PredOp::EndsWith,
            (Rule::matches_tail, _) => PredOp::Matches,
            (Rule::is_tail, Some("missing")) => PredOp::IsMissing,
            (Rule::is_tail, Some("present")) => PredOp::IsPresent,
            (Rule::is_tail, _) => PredOp::IsEmpty,
            (Rule::before_tail, _) => PredOp::Before,
            (Rule::after_tail, _) => PredOp::After,
            (Rule::within_tail, _) => PredOp::Within,
            (Rule::older_than_tail, _) => PredOp::OlderThan,
            (other, _) => unreachable!("predicate tail {other:?}"),
        };
        let op_span = op_span.unwrap_or(span);
        let args = self.slice(args);
        self.expr_node(ExprKind::Predicate { op, op_span, subject, args }, span)
    }

    /// `value` and `product`: flat arithmetic chains.
    fn value(&mut self, p: P) -> &'a Expr<'a> {
        let span = self.span(&p);
        let mut inner = p.into_inner();
        let first = self.operand(inner.next().expect("arithmetic chain has a first operand"));
        let mut rest = Vec::new();
        while let Some(op) = inner.next() {
            let op = match op.as_str() {
                "+" => ArithOp::Add,
                "-" => ArithOp::Sub,
                "*" => ArithOp::Mul,
                "/" => ArithOp::Div,
                _ => ArithOp::Rem,
            };
            let operand = self.operand(inner.next().expect("operator is followed by an operand"));
            rest.push((op, *operand));
        }
        if rest.is_empty() {
            return first;
        }
        self.expr_node(ExprKind::Arith { first, rest: self.slice(rest) }, span)
    }

    fn operand(&mut self, p: P) -> &'a Expr<'a> {
        match p.as_rule() {
            Rule::product => self.value(p),
            Rule::unary => self.unary(p),
            other => unreachable!("arithmetic operand {other:?}"),
        }
    }

    fn unary(&mut self, p: P) -> &'a Expr<'a> {
        let mut negs = Vec::new();
        let mut atom = None;
        for child in p.into_inner() {
            match child.as_rule() {
                Rule::neg => negs.push(self.span(&child)),
                _ => atom = Some(self.atom(child)),
            }
        }
        let mut e = atom.expect("unary ends in an atom");
        for neg in negs.into_iter().rev() {
            e = self.expr_node(ExprKind::Neg(e), neg.to(e.span));
        }
        e
    }

    fn list(&mut self, p: P) -> &'a Expr<'a> {
        let span = self.span(&p);
        let items: Vec<Expr<'a>> = p.into_inner().map(|v| *self.value(v)).collect();
        if items.len() > MAX_LIST_LEN {
            self.diags.push(
                Diagnostic::error(Code::TooLong, span, format!("list literal has {} elements", items.len()))
                    .with_note(format!("a list literal holds at most {MAX_LIST_LEN} elements"))
                    .with_help("large sets of values belong in a tag provider or a list tag"),
            );
        }
        self.expr_node(ExprKind::List(self.slice(items)), span)
    }

    fn atom(&mut self, p: P) -> &'a Expr<'a> {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::paren => return self.expr(p.into_inner().next().expect("parenthesized expr")),
            Rule::list => return self.list(p),
            Rule::len_call => ExprKind::Len(self.value(p.into_inner().nth(1).expect("len argument"))),
            Rule::int => match p.as_str().replace('_', "").parse::<i64>() {
                Ok(v) => ExprKind::Int(v),
                Err(_) => {
                    // Unreachable after the pre-scan, but never trust that with a panic.
                    self.diags.push(Diagnostic::error(Code::NumberOutOfRange, span, "integer literal out of range"));
                    ExprKind::Int(0)
                }
            },
            Rule::float => ExprKind::Float(p.as_str().replace('_', "").parse().unwrap_or(f64::NAN)),
            Rule::duration => ExprKind::Duration(lexer::duration_seconds(p.as_str()).unwrap_or(0)),
            Rule::time => match lexer::parse_time(p.as_str(), span) {
                Ok(t) => ExprKind::Time(t),
                Err(d) => {
                    self.diags.push(d);
                    ExprKind::Time(0)
                }
            },
            Rule::string => ExprKind::Text(self.string(p).value),
            Rule::boolean => ExprKind::Bool(p.into_inner().next().is_some_and(|k| k.as_rule() == Rule::kw_true)),
            Rule::tag_path => ExprKind::Tag(self.path(p)),
            Rule::ident => ExprKind::Name(self.str(p.as_str())),
            other => unreachable!("atom {other:?}"),
        };
        self.expr_node(kind, span)
    }
}
