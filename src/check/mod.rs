//! AST → typed deck: name resolution, types, and every check the language reference lists.
//!
//! Owns: turning the arena AST of all files into a [`typed::Deck`], or into diagnostics.
//! Checks run per declaration so that independent errors are all reported; a declaration
//! that failed is left out quietly downstream so one mistake does not cascade.
//! Must not: parse text (it gets ASTs) or know about bytecode.
//!
//! Order: entities → tags → rule names → rule bodies → rule cycles and transitive reads →
//! layers → scenes → layer overlaps → tests. Each step only needs the ones before it.

pub(crate) mod expr;
mod outreach;
mod print;
mod scenes;
pub mod status;
mod test_blocks;
pub mod typed;
pub mod types;

pub use print::print_deck;

use std::collections::HashMap;

use bumpalo::Bump;

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::{Sources, Span};
use crate::syntax::{self, ast};
use status::Baseline;
use typed::*;

use crate::limits::MAX_TAGS;

/// A "too many" diagnostic for one of the count limits above.
fn too_many(span: Span, what: &str, limit: usize, help: &str) -> Diagnostic {
    Diagnostic::error(Code::TooMany, span, format!("more than {limit} {what}"))
        .with_note(format!("the limit is {limit} {what}"))
        .with_help(help.to_string())
}

/// Parses and checks every file in `sources` as one program: the deck and its warnings, or
/// every diagnostic (errors and warnings, in source order).
pub fn check(sources: &Sources) -> Result<(Deck, Vec<Diagnostic>), Vec<Diagnostic>> {
    check_against(sources, None).map(|(deck, warnings, _)| (deck, warnings))
}

/// The deck, its warnings, and the fingerprints of its items (see [`status`]).
pub type CheckedAgainst = (Deck, Vec<Diagnostic>, Vec<String>);

/// Like [`check`], with tag status judged against a release: a `draft` or `disabled` tag
/// may be used by an item unchanged since `baseline` (see [`status`]). Also returns the
/// fingerprints of every item of the deck, which a release of it records as its baseline.
pub fn check_against(sources: &Sources, baseline: Option<&Baseline>) -> Result<CheckedAgainst, Vec<Diagnostic>> {
    let bump = Bump::new();
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for (id, file) in sources.iter() {
        match syntax::parse(&bump, id, &file.text) {
            Ok(ast) => files.push(ast),
            Err(mut d) => diags.append(&mut d),
        }
    }
    // Name resolution over a partial program would report names defined in the broken
    // file as unknown: fix syntax first, then see the semantic errors.
    if !diags.is_empty() {
        return Err(diags);
    }
    let checker = Checker { sources: Some(sources), baseline, ..Checker::default() };
    checker.run(&files)
}

/// Checks files that are already parsed (with [`syntax::parse`], each with its own file id),
/// for tools that read the syntax tree too and should not parse twice (the language server).
/// The caller reports parse failures first, as [`check`] does. Tag status is judged with no
/// release (as [`check`] does); the deck and its warnings, or every diagnostic.
pub fn check_parsed<'a>(files: &[ast::File<'a>]) -> Result<(Deck, Vec<Diagnostic>), Vec<Diagnostic>> {
    Checker::default().run(files).map(|(deck, warnings, _)| (deck, warnings))
}

/// Which request data a use needs: collected while checking an expression, validated by
/// the caller against its context (a rule's kind, a scene's keys and passes).
#[derive(Default)]
pub(crate) struct Uses {
    pub tags: Vec<TagRead>,
    pub rules: Vec<(RuleId, Span)>,
}

#[derive(Default)]
pub(crate) struct Checker<'a> {
    diags: Vec<Diagnostic>,
    entities: Vec<Entity>,
    entity_by_name: HashMap<&'a str, EntityId>,
    entity_by_key: HashMap<&'a str, EntityId>,
    enums: Vec<EnumDef>,
    tags: Vec<Tag>,
    tag_by_name: HashMap<String, TagId>,
    rule_decls: Vec<&'a ast::RuleDecl<'a>>,
    rule_kinds: Vec<Option<RuleKind>>,
    rule_by_name: HashMap<&'a str, RuleId>,
    /// `None` where the rule's body failed to check.
    rules: Vec<Option<Rule>>,
    /// Rules each rule uses directly, with the span of the use.
    rule_refs: Vec<Vec<(RuleId, Span)>>,
    layers: Vec<Layer>,
    layer_by_name: HashMap<&'a str, LayerId>,
    /// Every experiment name seen so far (names are salts, so they must be unique).
    experiment_names: HashMap<String, Span>,
    /// Layer claims to check for overlap once all scenes are read: claim, span, experiment.
    claims: Vec<(LayerClaim, Span, String)>,
    /// Tags whose declaration failed: uses stay quiet rather than echo "unknown tag".
    failed_tags: std::collections::HashSet<String>,
    /// The source text, for item fingerprints.
    sources: Option<&'a Sources>,
    /// The release tag status is judged against (`None`: every non-online use is E0303).
    baseline: Option<&'a Baseline>,
    /// The item being checked (rule, `when`, decision, unit), for tag status.
    item: Option<status::Item>,
    /// Fingerprints of every item checked.
    items: Vec<String>,
    /// `scene.instance` or `scene.instance.strategy` being checked, for fingerprints.
    place: String,
    /// Events, window tags, channels and actions checked so far.
    outreach: Outreach,
    event_by_name: HashMap<&'a str, EventId>,
    channel_by_name: HashMap<&'a str, u32>,
    /// The event of the scene being checked, when it is `on` one (`event.FIELD` reads it).
    scene_event: Option<EventId>,
}

impl<'a> Checker<'a> {
    fn run(mut self, files: &[ast::File<'a>]) -> Result<CheckedAgainst, Vec<Diagnostic>> {
        let items = || files.iter().flat_map(|f| f.items.iter());
        for item in items() {
            if let ast::Item::Entity(e) = item {
                self.entity(e);
            }
        }
        for item in items() {
            if let ast::Item::Tag(t) = item {
                self.tag(t);
            }
        }
        let all: Vec<&ast::Item> = items().collect();
        self.outreach_items(&all);
        for item in items() {
            if let ast::Item::Rule(r) = item {
                self.declare_rule(r);
            }
        }
        for id in 0..self.rule_decls.len() {
            let rule = self.rule_body(id as RuleId);
            self.rules.push(rule);
        }
        self.resolve_rule_reads();
        for item in items() {
            if let ast::Item::Layer(l) = item {
                self.layer(l);
            }
        }
        let mut scenes = Vec::new();
        let mut scene_names: HashMap<&str, Span> = HashMap::new();
        for item in items() {
            if let ast::Item::Scene(s) = item {
                if let Some(prev) = scene_names.insert(s.name.name, s.name.span) {
                    self.duplicate("scene", s.name.name, s.name.span, prev);
                    continue;
                }
                scenes.push(self.scene(s));
            }
        }
        self.check_layer_overlaps();
        let mut tests = Vec::new();
        let mut test_names: HashMap<&str, Span> = HashMap::new();
        for item in items() {
            if let ast::Item::Test(t) = item {
                if let Some(prev) = test_names.insert(t.name.value, t.name.span) {
                    self.duplicate("test", t.name.value, t.name.span, prev);
                    continue;
                }
                if let Some(test) = self.test(t, &scenes) {
                    tests.push(test);
                }
            }
        }
        self.diags.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
        if self.diags.iter().any(Diagnostic::is_error) {
            return Err(self.diags);
        }
        let deck = Deck {
            entities: self.entities,
            enums: self.enums,
            tags: self.tags,
            rules: self.rules.into_iter().map(|r| r.expect("no errors, so every rule checked")).collect(),
            layers: self.layers,
            scenes,
            tests,
            outreach: self.outreach,
        };
        Ok((deck, self.diags, self.items))
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn duplicate(&mut self, what: &str, name: &str, span: Span, previous: Span) {
        self.error(
            Diagnostic::error(Code::Duplicate, span, format!("{what} `{name}` is defined more than once"))
                .with_label("defined again here")
                .with_secondary(previous, "first defined here")
                .with_help(format!("rename one of them; {what} names must be unique")),
        );
    }

    /// The same entry listed twice where one is enough (a key, a given value, a field value).
    fn repeated(&mut self, what: &str, name: &str, span: Span, previous: Span) {
        self.error(
            Diagnostic::error(Code::Duplicate, span, format!("{what} `{name}` is given more than once"))
                .with_label("given again here")
                .with_secondary(previous, "first given here")
                .with_help("remove one of them"),
        );
    }

    // -----------------------------------------------------------------------------------
    // Entities and tags
    // -----------------------------------------------------------------------------------

    fn entity(&mut self, e: &'a ast::EntityDecl<'a>) {
        if e.name.name == "event" {
            self.error(
                Diagnostic::error(
                    Code::Duplicate,
                    e.name.span,
                    "`event` is built in and cannot be declared as an entity",
                )
                .with_note("`event.FIELD` reads a field of the event that triggered a scene"),
            );
            return;
        }
        if e.name.name == "ctx" {
            self.error(
                Diagnostic::error(
                    Code::Duplicate,
                    e.name.span,
                    "`ctx` is built in and cannot be declared as an entity",
                )
                .with_note("`ctx.*` tags are the pass-through tags callers supply with each request"),
            );
            return;
        }
        if let Some(&prev) = self.entity_by_name.get(e.name.name) {
            let prev = self.entities[prev as usize].span;
            return self.duplicate("entity", e.name.name, e.name.span, prev);
        }
        if e.key.name == "now" {
            self.error(
                Diagnostic::error(Code::Duplicate, e.key.span, "`now` cannot be a key name")
                    .with_note("`now` is the request's evaluation time"),
            );
            return;
        }
        if let Some(&prev) = self.entity_by_key.get(e.key.name) {
            let prev = self.entities[prev as usize].span;
            return self.duplicate("key", e.key.name, e.key.span, prev);
        }
        let id = self.entities.len() as EntityId;
        self.entity_by_name.insert(e.name.name, id);
        self.entity_by_key.insert(e.key.name, id);
        self.entities.push(Entity { name: e.name.name.into(), key: e.key.name.into(), span: e.span });
    }

    fn tag(&mut self, t: &'a ast::TagDecl<'a>) {
        let name = t.path.to_dotted();
        if self.tags.len() == MAX_TAGS {
            self.error(
                Diagnostic::error(Code::TooMany, t.path.span, format!("a deck may declare at most {MAX_TAGS} tags"))
                    .with_note("each tag has a slot in every request; slots are numbered with 16 bits")
                    .with_help("split the deck, or retire unused tags"),
            );
        }
        if self.tags.len() >= MAX_TAGS {
            return;
        }
        if let Some(&prev) = self.tag_by_name.get(&name) {
            let prev = self.tags[prev as usize].span;
            return self.duplicate("tag", &name, t.path.span, prev);
        }
        let owner = if t.path.first.name == "ctx" {
            Some(TagOwner::Passthrough)
        } else if let Some(&e) = self.entity_by_name.get(t.path.first.name) {
            Some(TagOwner::Entity(e))
        } else {
            let suggestion =
                did_you_mean(t.path.first.name, self.entity_by_name.keys().copied().chain(["ctx"])).map(str::to_owned);
            self.error(
                Diagnostic::error(
                    Code::UnknownEntity,
                    t.path.first.span,
                    format!("unknown entity `{}`", t.path.first.name),
                )
                .with_note("declare it first, like `entity user key uid`, or use `ctx` for pass-through tags")
                .with_suggestion(suggestion.as_deref()),
            );
            None
        };
        let ty = self.type_expr(t.ty, false);
        let (mut provider, mut cache, mut passthrough, mut status) = (None, None, None, None);
        let mut sensitive = None;
        for option in t.options {
            let (span, repeated) = match *option {
                ast::TagOption::From(s) => (s.span, provider.replace((s.value.to_string(), s.span)).is_some()),
                ast::TagOption::Cache(secs, span) => (span, cache.replace((secs, span)).is_some()),
                ast::TagOption::Passthrough(span) => (span, passthrough.replace(span).is_some()),
                ast::TagOption::Sensitive(span) => (span, sensitive.replace(span).is_some()),
                ast::TagOption::Status(s, span) => (span, status.replace(s).is_some()),
            };
            if repeated {
                self.error(
                    Diagnostic::error(Code::InvalidTagDecl, span, format!("tag `{name}` sets this option twice"))
                        .with_help("keep one"),
                );
            }
        }
        let invalid = |span: Span, message: String, help: &str| {
            Diagnostic::error(Code::InvalidTagDecl, span, message).with_help(help.to_string())
        };
        match owner {
            Some(TagOwner::Passthrough) => {
                if passthrough.is_none() {
                    self.error(invalid(
                        t.path.span,
                        format!("`{name}` is a `ctx` tag but is not marked `passthrough`"),
                        "`ctx.*` tags are supplied by the caller: add `passthrough`",
                    ));
                }
                if let Some((_, span)) = provider.as_ref() {
                    self.error(invalid(
                        *span,
                        format!("pass-through tag `{name}` cannot have a provider"),
                        "remove `from …`: the caller supplies this tag",
                    ));
                }
                if let Some((_, span)) = cache {
                    self.error(invalid(
                        span,
                        format!("pass-through tag `{name}` cannot be cached"),
                        "remove `cache …`: the value comes with each request",
                    ));
                }
            }
            Some(TagOwner::Entity(_)) => {
                if let Some(span) = passthrough {
                    self.error(invalid(
                        span,
                        format!("`{name}` cannot be pass-through: only `ctx.*` tags are"),
                        "rename it to `ctx.…`, or remove `passthrough` and name a provider with `from`",
                    ));
                } else if provider.is_none() {
                    self.error(invalid(
                        t.path.span,
                        format!("tag `{name}` has no provider"),
                        "say which host provider loads it: `from \"PROVIDER\"`",
                    ));
                }
            }
            None => {}
        }
        let (Some(owner), Some(ty)) = (owner, ty) else {
            self.failed_tags.insert(name);
            return;
        };
        let id = self.tags.len() as TagId;
        self.tag_by_name.insert(name.clone(), id);
        self.tags.push(Tag {
            name,
            owner,
            ty,
            provider: provider.map(|(p, _)| p),
            cache_seconds: cache.map(|(c, _)| c),
            sensitive: sensitive.is_some(),
            status: status.unwrap_or(ast::Status::Online),
            span: t.path.span,
        });
    }

    /// Resolves a written type. `in_list`: list elements must be scalars.
    fn type_expr(&mut self, t: &ast::TypeExpr<'a>, in_list: bool) -> Option<Type> {
        match t.kind {
            ast::TypeExprKind::Named(name) => match name.name {
                "int" => Some(Type::Int),
                "float" => Some(Type::Float),
                "text" => Some(Type::Text),
                "bool" => Some(Type::Bool),
                "time" => Some(Type::Time),
                other => {
                    let types = ["int", "float", "text", "bool", "time", "enum", "list"];
                    self.error(
                        Diagnostic::error(Code::UnknownType, name.span, format!("unknown type `{other}`"))
                            .with_note("types are int, float, text, bool, time, enum(a, b, …) and list<T>")
                            .with_suggestion(did_you_mean(other, types)),
                    );
                    None
                }
            },
            ast::TypeExprKind::Enum(members) => {
                let mut seen: HashMap<&str, Span> = HashMap::new();
                for m in members {
                    if let Some(prev) = seen.insert(m.name, m.span) {
                        self.duplicate("enum member", m.name, m.span, prev);
                    }
                }
                // Enum types are structural: the same members in the same order are one type,
                // so two tags declared `enum(app, h5)` compare with each other.
                let def = EnumDef { members: members.iter().map(|m| m.name.to_string()).collect() };
                let id = match self.enums.iter().position(|e| *e == def) {
                    Some(existing) => existing as EnumId,
                    None => {
                        self.enums.push(def);
                        (self.enums.len() - 1) as EnumId
                    }
                };
                Some(Type::Enum(id))
            }
            ast::TypeExprKind::List(elem) => {
                if in_list {
                    self.error(
                        Diagnostic::error(Code::UnknownType, t.span, "lists cannot hold lists")
                            .with_note("list elements are int, float, text, bool, time or enum values"),
                    );
                    return None;
                }
                Some(Type::List(Box::new(self.type_expr(elem, true)?)))
            }
        }
    }

    fn lookup_tag(&mut self, path: &ast::Path) -> Option<TagId> {
        if path.first.name == "event" {
            return self.event_tag(path);
        }
        let name = path.to_dotted();
        if let Some(&id) = self.tag_by_name.get(&name) {
            return Some(id);
        }
        if self.failed_tags.contains(&name) {
            return None;
        }
        let example = if path.first.name == "ctx" {
            format!("tag {name}: TYPE passthrough")
        } else {
            format!("tag {name}: TYPE from \"PROVIDER\"")
        };
        let suggestion = did_you_mean(&name, self.tag_by_name.keys().map(String::as_str)).map(str::to_owned);
        self.error(
            Diagnostic::error(Code::UnknownTag, path.span, format!("unknown tag `{name}`"))
                .with_label("not declared")
                .with_suggestion(suggestion.as_deref())
                .with_note(format!(
                    "declare it like `{example}`, where TYPE is int, float, text, bool, time, enum(…) or list<T>"
                )),
        );
        None
    }

    fn type_text(&self, ty: &Type) -> String {
        types::TypeDisplay { ty, enums: &self.enums }.to_string()
    }

    // -----------------------------------------------------------------------------------
    // Rules
    // -----------------------------------------------------------------------------------

    fn declare_rule(&mut self, r: &'a ast::RuleDecl<'a>) {
        if let Some(&prev) = self.rule_by_name.get(r.name.name) {
            let prev = self.rule_decls[prev as usize].name.span;
            return self.duplicate("rule", r.name.name, r.name.span, prev);
        }
        let kind = match r.kind.name {
            "custom" => Some(RuleKind::Custom),
            "mixed" => Some(RuleKind::Mixed),
            k => match self.entity_by_name.get(k) {
                Some(&e) => Some(RuleKind::Entity(e)),
                None => {
                    let suggestion = if k == "ctx" {
                        Some("custom".to_string())
                    } else {
                        did_you_mean(k, self.entity_by_name.keys().copied().chain(["custom", "mixed"]))
                            .map(str::to_owned)
                    };
                    self.error(
                        Diagnostic::error(Code::UnknownRuleKind, r.kind.span, format!("unknown rule kind `{k}`"))
                            .with_note(
                                "a rule's kind is an entity (like `user`), `custom` (pass-through tags) or `mixed`",
                            )
                            .with_suggestion(suggestion.as_deref()),
                    );
                    None
                }
            },
        };
        self.rule_by_name.insert(r.name.name, self.rule_decls.len() as RuleId);
        self.rule_decls.push(r);
        self.rule_kinds.push(kind);
    }

    fn kind_text(&self, kind: RuleKind) -> String {
        match kind {
            RuleKind::Entity(e) => format!("kind `{}`", self.entities[e as usize].name),
            RuleKind::Custom => "kind `custom`".into(),
            RuleKind::Mixed => "kind `mixed`".into(),
        }
    }

    fn rule_body(&mut self, id: RuleId) -> Option<Rule> {
        let decl = self.rule_decls[id as usize];
        let mut uses = Uses::default();
        self.enter_item("rule", decl.name.name.to_string(), decl.span);
        let cond = self.cond(decl.expr, &mut uses);
        self.leave_item();
        self.rule_refs.push(uses.rules.clone());
        let kind = self.rule_kinds[id as usize]?;
        let mut ok = cond.is_some();
        for read in &uses.tags {
            let tag = &self.tags[read.tag as usize];
            let allowed = match (kind, tag.owner) {
                (RuleKind::Mixed, _) | (RuleKind::Custom, TagOwner::Passthrough) => true,
                (RuleKind::Entity(e), TagOwner::Entity(owner)) => e == owner,
                _ => false,
            };
            if !allowed {
                let d = Diagnostic::error(
                    Code::WrongEntity,
                    read.span,
                    format!("rule `{}` has {} but reads `{}`", decl.name.name, self.kind_text(kind), tag.name),
                )
                .with_secondary(decl.kind.span, "the rule's kind")
                .with_help(match kind {
                    RuleKind::Custom => "custom rules read only pass-through `ctx.*` tags; make it a `mixed` rule".to_string(),
                    _ => format!("a rule reads only tags of its kind; make it a `mixed` rule or move `{}` into a rule of its own", tag.name),
                });
                self.error(d);
                ok = false;
            }
        }
        for &(used, span) in &uses.rules {
            let Some(used_kind) = self.rule_kinds[used as usize] else { continue };
            if kind != RuleKind::Mixed && used_kind != kind {
                let used_name = self.rule_decls[used as usize].name.name;
                let d = Diagnostic::error(
                    Code::WrongEntity,
                    span,
                    format!(
                        "rule `{}` has {} but uses rule `{used_name}` of {}",
                        decl.name.name,
                        self.kind_text(kind),
                        self.kind_text(used_kind)
                    ),
                )
                .with_help("only `mixed` rules combine rules of different kinds");
                self.error(d);
                ok = false;
            }
        }
        let mut reads = uses.tags;
        reads.sort_by_key(|r| r.tag);
        reads.dedup_by_key(|r| r.tag);
        // Tags read through other rules are added by `resolve_rule_reads`.
        ok.then(|| Rule {
            name: decl.name.name.into(),
            kind,
            cond: cond.expect("ok implies a condition"),
            reads,
            span: decl.span,
        })
    }

    /// Rejects cycles among rules, then adds to each rule's `reads` the tags read by the
    /// rules it uses. Iterative, so a chain of thousands of rules cannot overflow the stack.
    fn resolve_rule_reads(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let n = self.rule_decls.len();
        let mut mark = vec![Mark::New; n];
        let mut order = Vec::with_capacity(n); // post-order: used rules before users
        for root in 0..n {
            if mark[root] != Mark::New {
                continue;
            }
            // (rule, index of the next reference to visit)
            let mut stack = vec![(root, 0usize)];
            mark[root] = Mark::Open;
            while let Some(&mut (rule, ref mut next)) = stack.last_mut() {
                let Some(&(used, span)) = self.rule_refs[rule].get(*next) else {
                    mark[rule] = Mark::Done;
                    order.push(rule);
                    stack.pop();
                    continue;
                };
                *next += 1;
                let used = used as usize;
                match mark[used] {
                    Mark::New => {
                        mark[used] = Mark::Open;
                        stack.push((used, 0));
                    }
                    Mark::Open => {
                        let start = stack.iter().position(|&(r, _)| r == used).unwrap_or(0);
                        let names: Vec<&str> =
                            stack[start..].iter().map(|&(r, _)| self.rule_decls[r].name.name).collect();
                        let d = Diagnostic::error(
                            Code::RuleCycle,
                            span,
                            format!(
                                "rule `{}` uses itself through {}",
                                self.rule_decls[used].name.name,
                                names.join(" → ")
                            ),
                        )
                        .with_note("rules cannot refer to each other in a cycle: evaluation must terminate")
                        .with_help("break the cycle by writing one of the conditions out in full");
                        self.error(d);
                        for &(r, _) in &stack[start..] {
                            self.rules[r] = None;
                        }
                    }
                    Mark::Done => {}
                }
            }
        }
        for rule in order {
            let mut extra = Vec::new();
            for &(used, _) in &self.rule_refs[rule] {
                if let Some(used_rule) = &self.rules[used as usize] {
                    extra.extend_from_slice(&used_rule.reads);
                }
            }
            if let Some(r) = &mut self.rules[rule] {
                r.reads.extend(extra);
                // Stable sort keeps a direct read's span ahead of inherited ones.
                r.reads.sort_by_key(|read| read.tag);
                r.reads.dedup_by_key(|read| read.tag);
            }
        }
    }
}
