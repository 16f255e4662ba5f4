//! The symbol index of one file: every definition and every reference, with spans.
//!
//! Owns: turning one file's syntax tree (the public [`crate::syntax`] front end) into owned
//! records the server can keep after the tree's arena is gone: [`Def`]s with hover text,
//! [`Occ`]urrences keyed by [`SymbolId`], and the outline for document symbols.
//! Must not: resolve across files or judge validity — that is the checker's job; a reference
//! to a name that nothing defines simply finds no definition.

use crate::check::types::Type;
use crate::ops::CmpOp;
use crate::source::Span;
use crate::syntax::ast::{self, Expect, ExprKind, GivenName, Item, PredOp, StrategyBody, TagOption, TypeExprKind};

/// What a name refers to. Names are scoped the way the language scopes them: tags, rules,
/// layers, scenes, entities, keys and experiments are deck-wide; instances belong to a scene,
/// strategies to an instance, groups to a strategy's experiment, enum members to a tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolId {
    Entity(String),
    Key(String),
    /// The full dotted name, `user.risk_score`.
    Tag(String),
    Rule(String),
    Layer(String),
    Scene(String),
    Instance(String, String),
    Strategy(String, String, String),
    Experiment(String),
    /// Scene, instance, strategy, group.
    Group(String, String, String, String),
    /// Tag, member.
    Member(String, String),
    /// An outreach event kind.
    Event(String),
}

impl SymbolId {
    /// The part a user writes (and renames): the last name.
    pub fn name(&self) -> &str {
        match self {
            SymbolId::Entity(n)
            | SymbolId::Key(n)
            | SymbolId::Rule(n)
            | SymbolId::Layer(n)
            | SymbolId::Scene(n)
            | SymbolId::Event(n)
            | SymbolId::Experiment(n) => n,
            SymbolId::Tag(n) => n.split_once('.').map_or(n.as_str(), |(_, b)| b),
            SymbolId::Instance(_, n) | SymbolId::Strategy(_, _, n) | SymbolId::Member(_, n) => n,
            SymbolId::Group(_, _, _, n) => n,
        }
    }
}

/// A definition: where it is, and what hover shows for it.
#[derive(Clone, Debug)]
pub struct Def {
    pub id: SymbolId,
    /// The name as written (what go-to-definition selects).
    pub name_span: Span,
    /// Markdown for hover.
    pub hover: String,
    /// For tags: the declared type (enum ids are meaningless here; members are in `members`).
    pub ty: Option<Type>,
    /// For enum tags: the members in declaration order.
    pub members: Vec<String>,
}

/// One occurrence of a name: a definition or a reference.
#[derive(Clone, Debug)]
pub struct Occ {
    pub id: SymbolId,
    /// The whole name as written (`user.risk_score` for a tag).
    pub span: Span,
    /// The part a rename replaces (`risk_score` for a tag).
    pub name_span: Span,
    pub is_def: bool,
}

/// A node of the document outline.
#[derive(Clone, Debug)]
pub struct Outline {
    pub name: String,
    pub kind: OutlineKind,
    pub span: Span,
    pub name_span: Span,
    pub children: Vec<Outline>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutlineKind {
    Entity,
    Tag,
    Rule,
    Layer,
    Scene,
    Instance,
    Strategy,
    Experiment,
    Group,
    Test,
}

/// Everything the server knows about one parsed file.
#[derive(Debug, Default)]
pub struct FileIndex {
    pub defs: Vec<Def>,
    /// Sorted by span start.
    pub occs: Vec<Occ>,
    pub outline: Vec<Outline>,
}

impl FileIndex {
    /// The innermost occurrence whose span contains `offset` (end inclusive, so a cursor right
    /// after a name still finds it).
    pub fn occ_at(&self, offset: u32) -> Option<&Occ> {
        let end = self.occs.partition_point(|o| o.span.start <= offset);
        self.occs[..end].iter().rev().filter(|o| o.span.end >= offset).min_by_key(|o| o.span.end - o.span.start)
    }
}

/// Builds the index of one file from its syntax tree; `text` is the file's source (for hover
/// text quoted from the declaration).
pub fn build(file: &ast::File<'_>, text: &str) -> FileIndex {
    let mut b = Builder { text, index: FileIndex::default() };
    for item in file.items {
        b.item(item);
    }
    b.index.occs.sort_by_key(|o| (o.span.start, o.span.end));
    b.index
}

struct Builder<'t> {
    text: &'t str,
    index: FileIndex,
}

/// Hover shows at most this many lines of a rule's definition.
const HOVER_LINES: usize = 30;

impl Builder<'_> {
    fn slice(&self, span: Span) -> &str {
        self.text.get(span.start as usize..span.end as usize).unwrap_or("")
    }

    /// A declaration quoted as a code block, cut after [`HOVER_LINES`] lines.
    fn quote(&self, span: Span) -> String {
        let src = self.slice(span);
        let mut lines: Vec<&str> = src.lines().take(HOVER_LINES + 1).collect();
        if lines.len() > HOVER_LINES {
            lines.truncate(HOVER_LINES);
            lines.push("…");
        }
        format!("```ruledeck\n{}\n```", lines.join("\n"))
    }

    fn occ(&mut self, id: SymbolId, span: Span, name_span: Span, is_def: bool) {
        self.index.occs.push(Occ { id, span, name_span, is_def });
    }

    fn reference(&mut self, id: SymbolId, ident: ast::Ident<'_>) {
        self.occ(id, ident.span, ident.span, false);
    }

    fn def(&mut self, id: SymbolId, name: ast::Ident<'_>, hover: String) {
        self.occ(id.clone(), name.span, name.span, true);
        self.index.defs.push(Def { id, name_span: name.span, hover, ty: None, members: Vec::new() });
    }

    fn tag_ref(&mut self, path: &ast::Path<'_>) {
        if path.first.name != "ctx" {
            self.reference(SymbolId::Entity(path.first.name.to_string()), path.first);
        }
        self.occ(SymbolId::Tag(path.to_dotted()), path.span, path.second.span, false);
    }

    fn unit(&mut self, unit: &ast::Unit<'_>) {
        match unit {
            ast::Unit::Key(k) => self.reference(SymbolId::Key(k.name.to_string()), *k),
            ast::Unit::Tag(p) => self.tag_ref(p),
        }
    }

    fn item(&mut self, item: &Item<'_>) {
        match item {
            Item::Entity(e) => {
                let hover =
                    format!("{}\n\nentity `{}`, looked up by key `{}`", self.quote(e.span), e.name.name, e.key.name);
                self.def(SymbolId::Entity(e.name.name.to_string()), e.name, hover.clone());
                self.def(SymbolId::Key(e.key.name.to_string()), e.key, hover);
                self.outline(e.name.name, OutlineKind::Entity, e.span, e.name.span, Vec::new());
            }
            Item::Tag(t) => self.tag(t),
            Item::Rule(r) => {
                if !matches!(r.kind.name, "custom" | "mixed") {
                    self.reference(SymbolId::Entity(r.kind.name.to_string()), r.kind);
                }
                let hover = format!("{}\n\n{} rule", self.quote(r.span), r.kind.name);
                self.def(SymbolId::Rule(r.name.name.to_string()), r.name, hover);
                self.cond(r.expr);
                self.outline(r.name.name, OutlineKind::Rule, r.span, r.name.span, Vec::new());
            }
            Item::Layer(l) => {
                let hover = self.quote(l.span);
                self.def(SymbolId::Layer(l.name.name.to_string()), l.name, hover);
                self.unit(&l.unit);
                self.outline(l.name.name, OutlineKind::Layer, l.span, l.name.span, Vec::new());
            }
            Item::Scene(s) => self.scene(s),
            Item::Test(t) => self.test(t),
            Item::WindowTag(w) => {
                // A window tag is a tag like any other to rules: definition, hover, outline.
                let name = w.path.to_dotted();
                self.reference(SymbolId::Entity(w.path.first.name.to_string()), w.path.first);
                let hover = format!("{}\n\nwindow tag over the unit's own events", self.quote(w.span));
                let (ty, _) = shape(w.ty);
                self.occ(SymbolId::Tag(name.clone()), w.path.span, w.path.second.span, true);
                self.index.defs.push(Def {
                    id: SymbolId::Tag(name.clone()),
                    name_span: w.path.span,
                    hover,
                    ty,
                    members: Vec::new(),
                });
                self.outline(&name, OutlineKind::Tag, w.span, w.path.span, Vec::new());
            }
            Item::Event(e) => {
                let hover = format!("{}\n\nevent kind", self.quote(e.span));
                self.def(SymbolId::Event(e.name.name.to_string()), e.name, hover);
                self.reference(SymbolId::Key(e.key.name.to_string()), e.key);
            }
            // Channels and actions have no symbols of their own in the index yet.
            Item::Channel(_) | Item::Action(_) => {}
        }
    }

    fn outline(&mut self, name: &str, kind: OutlineKind, span: Span, name_span: Span, children: Vec<Outline>) {
        self.index.outline.push(Outline { name: name.to_string(), kind, span, name_span, children });
    }

    fn tag(&mut self, t: &ast::TagDecl<'_>) {
        let name = t.path.to_dotted();
        if t.path.first.name != "ctx" {
            self.reference(SymbolId::Entity(t.path.first.name.to_string()), t.path.first);
        }
        let mut provider = None;
        let mut cache = None;
        let mut status = "online";
        let mut passthrough = false;
        let mut sensitive = false;
        for option in t.options {
            match option {
                TagOption::From(s) => provider = Some(s.value),
                TagOption::Cache(_, span) => cache = Some(self.slice(*span).trim_start_matches("cache").trim()),
                TagOption::Passthrough(_) => passthrough = true,
                TagOption::Sensitive(_) => sensitive = true,
                TagOption::Status(s, _) => {
                    status = match s {
                        ast::Status::Draft => "draft",
                        ast::Status::Online => "online",
                        ast::Status::Disabled => "disabled",
                    }
                }
            }
        }
        let ty_text = self.slice(t.ty.span).to_string();
        let source = if passthrough {
            "pass-through (the caller sends it with each request)".to_string()
        } else {
            provider.map_or("none".to_string(), |p| format!("`{p}`"))
        };
        let mut hover = format!(
            "{}\n\n| | |\n|---|---|\n| type | `{ty_text}` |\n| provider | {source} |\n| cache | {} |\n| status | {status} |",
            self.quote(t.span),
            cache.map_or("none (loaded fresh each request)".to_string(), |c| format!("`{c}`")),
        );
        if sensitive {
            hover.push_str("\n| sensitive | yes: traces and decision logs show `\"<sensitive>\"` |");
        }
        let (ty, members) = shape(t.ty);
        self.occ(SymbolId::Tag(name.clone()), t.path.span, t.path.second.span, true);
        self.index.defs.push(Def {
            id: SymbolId::Tag(name.clone()),
            name_span: t.path.span,
            hover,
            ty,
            members: members.iter().map(|m| m.name.to_string()).collect(),
        });
        for m in members {
            let hover = format!("member `{}` of `{ty_text}`, the type of tag `{name}`", m.name);
            self.def(SymbolId::Member(name.clone(), m.name.to_string()), *m, hover);
        }
        self.outline(&name, OutlineKind::Tag, t.span, t.path.span, Vec::new());
    }

    fn scene(&mut self, s: &ast::SceneDecl<'_>) {
        let scene = s.name.name.to_string();
        let header = self.slice(s.span).lines().next().unwrap_or("").trim_end_matches('{').trim_end().to_string();
        self.def(SymbolId::Scene(scene.clone()), s.name, format!("```ruledeck\n{header}\n```"));
        if let Some(on) = s.on {
            self.reference(SymbolId::Event(on.name.to_string()), on);
        }
        if let Some(f) = s.fanout {
            self.reference(SymbolId::Entity(f.entity.name.to_string()), f.entity);
            self.reference(SymbolId::Event(f.index.name.to_string()), f.index);
        }
        for k in s.keys {
            self.reference(SymbolId::Key(k.name.to_string()), *k);
        }
        for p in s.passes {
            self.tag_ref(p);
        }
        let mut instances = Vec::new();
        for inst in s.instances {
            let instance = inst.name.name.to_string();
            let sig = self.slice(inst.span).split('{').take(2).collect::<Vec<_>>().join("{");
            let hover = format!("```ruledeck\n{}}}\n```\n\ninstance of scene `{scene}`", sig.trim_end());
            self.def(SymbolId::Instance(scene.clone(), instance.clone()), inst.name, hover);
            let mut strategies = Vec::new();
            for st in inst.strategies {
                let id = SymbolId::Strategy(scene.clone(), instance.clone(), st.name.name.to_string());
                let hover = format!("{}\n\nstrategy of `{scene}.{instance}`", self.quote(st.span));
                self.def(id, st.name, hover);
                if let Some(when) = st.when {
                    self.cond(when);
                }
                let mut children = Vec::new();
                match &st.body {
                    StrategyBody::Decision(d) => self.decision(d),
                    StrategyBody::Experiment(x) => {
                        let hover = format!("{}\n\nexperiment in `{scene}.{instance}`", self.quote(x.span));
                        self.def(SymbolId::Experiment(x.name.name.to_string()), x.name, hover);
                        self.unit(&x.unit);
                        if let Some(claim) = &x.layer {
                            self.reference(SymbolId::Layer(claim.layer.name.to_string()), claim.layer);
                        }
                        let mut groups = Vec::new();
                        for g in x.groups {
                            let id = SymbolId::Group(
                                scene.clone(),
                                instance.clone(),
                                st.name.name.to_string(),
                                g.name.name.to_string(),
                            );
                            let hover = format!("{}\n\ngroup of experiment `{}`", self.quote(g.span), x.name.name);
                            self.def(id, g.name, hover);
                            self.decision(g.decision);
                            groups.push(leaf(g.name.name, OutlineKind::Group, g.span, g.name.span));
                        }
                        children.push(Outline {
                            name: x.name.name.to_string(),
                            kind: OutlineKind::Experiment,
                            span: x.span,
                            name_span: x.name.span,
                            children: groups,
                        });
                    }
                }
                strategies.push(Outline {
                    name: st.name.name.to_string(),
                    kind: OutlineKind::Strategy,
                    span: st.span,
                    name_span: st.name.span,
                    children,
                });
            }
            if let Some(d) = &inst.default {
                self.decision(d.decision);
            }
            instances.push(Outline {
                name: instance,
                kind: OutlineKind::Instance,
                span: inst.span,
                name_span: inst.name.span,
                children: strategies,
            });
        }
        self.outline(&scene, OutlineKind::Scene, s.span, s.name.span, instances);
    }

    fn test(&mut self, t: &ast::TestDecl<'_>) {
        for entry in t.given {
            match &entry.name {
                GivenName::Key(k) if k.name == "now" => {}
                GivenName::Key(k) => {
                    self.reference(SymbolId::Key(k.name.to_string()), *k);
                    self.value(entry.value);
                }
                GivenName::Tag(p) => {
                    self.tag_ref(p);
                    self.members(&p.to_dotted(), entry.value);
                }
            }
        }
        let mut target: Option<(String, String)> = None;
        for expect in t.expects {
            match expect {
                Expect::Decision { target: path, decision, .. } => {
                    let (scene, instance) = (path.first.name.to_string(), path.second.name.to_string());
                    self.reference(SymbolId::Scene(scene.clone()), path.first);
                    self.reference(SymbolId::Instance(scene.clone(), instance.clone()), path.second);
                    if let Some(d) = decision {
                        self.decision(d);
                    }
                    target = Some((scene, instance));
                }
                Expect::Strategy { strategy, group, .. } => {
                    let Some((scene, instance)) = target.clone() else { continue };
                    if strategy.name != "default" {
                        let id = SymbolId::Strategy(scene.clone(), instance.clone(), strategy.name.to_string());
                        self.reference(id, *strategy);
                    }
                    if let Some(g) = group {
                        let id = SymbolId::Group(scene, instance, strategy.name.to_string(), g.name.to_string());
                        self.reference(id, *g);
                    }
                }
                Expect::Tag { tag, key, value, .. } => {
                    self.tag_ref(tag);
                    self.value(key);
                    if let Some(v) = value {
                        self.members(&tag.to_dotted(), v);
                    }
                }
            }
        }
        let name = t.name.value;
        let span = t.name.span;
        self.index.outline.push(leaf(&format!("test \"{name}\""), OutlineKind::Test, t.span, span));
    }

    fn decision(&mut self, d: &ast::Decision<'_>) {
        for f in d.fields {
            self.value(f.value);
        }
    }

    /// An expression in condition position: a bare name there is a rule.
    fn cond(&mut self, e: &ast::Expr<'_>) {
        match e.kind {
            ExprKind::Or(items) | ExprKind::And(items) => items.iter().for_each(|i| self.cond(i)),
            ExprKind::Not(inner) => self.cond(inner),
            ExprKind::Name(n) => self.occ(SymbolId::Rule(n.to_string()), e.span, e.span, false),
            _ => self.value(e),
        }
    }

    /// An expression in value position: tags are references; bare names compared with an
    /// enum tag are its members.
    fn value(&mut self, e: &ast::Expr<'_>) {
        match e.kind {
            ExprKind::Or(items) | ExprKind::And(items) | ExprKind::List(items) => {
                items.iter().for_each(|i| self.cond_or_value(i))
            }
            ExprKind::Not(inner) => self.cond(inner),
            ExprKind::Predicate { op, subject, args, .. } => {
                let enum_ops = matches!(op, PredOp::Cmp(CmpOp::Eq | CmpOp::Ne) | PredOp::In | PredOp::NotIn);
                let tag_of = |x: &ast::Expr<'_>| match x.kind {
                    ExprKind::Tag(p) => Some(p.to_dotted()),
                    _ => None,
                };
                // `member == user.tier` is allowed too: the tag may be on either side.
                let tag = tag_of(subject).or_else(|| args.iter().find_map(tag_of)).filter(|_| enum_ops);
                for x in std::iter::once(subject).chain(args.iter()) {
                    match &tag {
                        Some(t) => self.members(t, x),
                        None => self.value(x),
                    }
                }
            }
            ExprKind::Arith { first, rest } => {
                self.value(first);
                rest.iter().for_each(|(_, v)| self.value(v));
            }
            ExprKind::Neg(inner) | ExprKind::Len(inner) => self.value(inner),
            ExprKind::Tag(p) => self.tag_ref(&p),
            ExprKind::Name(_)
            | ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Text(_)
            | ExprKind::Bool(_)
            | ExprKind::Duration(_)
            | ExprKind::Time(_) => {}
        }
    }

    fn cond_or_value(&mut self, e: &ast::Expr<'_>) {
        if matches!(e.kind, ExprKind::Name(_)) {
            self.cond(e)
        } else {
            self.value(e)
        }
    }

    /// A value that may be written as members of `tag`'s enum (bare names, or a list of them).
    fn members(&mut self, tag: &str, e: &ast::Expr<'_>) {
        match e.kind {
            ExprKind::Name(n) => self.occ(SymbolId::Member(tag.to_string(), n.to_string()), e.span, e.span, false),
            ExprKind::List(items) => items.iter().for_each(|i| self.members(tag, i)),
            _ => self.value(e),
        }
    }
}

fn leaf(name: &str, kind: OutlineKind, span: Span, name_span: Span) -> Outline {
    Outline { name: name.to_string(), kind, span, name_span, children: Vec::new() }
}

/// The shape of a declared type, as far as operator completion needs it, and an enum's
/// member names. A type name the checker would reject gives `None`.
fn shape<'a>(t: &'a ast::TypeExpr<'a>) -> (Option<Type>, &'a [ast::Ident<'a>]) {
    match &t.kind {
        TypeExprKind::Named(n) => {
            let ty = match n.name {
                "int" => Type::Int,
                "float" => Type::Float,
                "text" => Type::Text,
                "bool" => Type::Bool,
                "time" => Type::Time,
                _ => return (None, &[]),
            };
            (Some(ty), &[])
        }
        // The id is a placeholder: only the shape matters for the operator table.
        TypeExprKind::Enum(members) => (Some(Type::Enum(0)), members),
        TypeExprKind::List(inner) => (shape(inner).0.map(|t| Type::List(Box::new(t))), &[]),
    }
}
