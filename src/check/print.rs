//! A compact, line-per-item print of a typed deck, each item with where its source is.
//!
//! Owns: the text form of a [`Deck`] for reviewing what the checker resolved — operator
//! precedence made explicit with parentheses, rule kinds and transitive reads, durations in
//! seconds, enum members and times spelled out, experiments as bucket ranges. Snapshot tests
//! (`tests/snapshots.rs::check`) pin it. Must not: be parsed back (it is not source syntax in
//! every detail) or change what the checker decided; it only reads the deck.

use std::fmt::Write as _;

use super::typed::*;
use super::types::TypeDisplay;
use crate::limits::BUCKETS;
use crate::source::{Sources, Span};
use crate::syntax::ast::Status;
use crate::time::format as format_time;

/// Prints `deck` one item per line, nested items indented, each ending with
/// `@ FILE:LINE:COL` of its declaration in `sources`.
///
/// ```text
/// rule low_risk (user) = (user.risk_score < 30) and (user.lifecycle in [new, active]) @ a.rule:3:1
///   reads user.lifecycle, user.risk_score
/// tag user.risk_score: int from "risk" cache 180s online @ a.rule:2:1
/// ```
pub fn print_deck(deck: &Deck, sources: &Sources) -> String {
    let p = Printer { deck, sources };
    let mut out = String::new();
    for e in &deck.entities {
        p.line(&mut out, 0, format!("entity {} key {}", e.name, e.key), e.span);
    }
    for t in &deck.tags {
        p.line(&mut out, 0, p.tag(t), t.span);
    }
    for r in &deck.rules {
        let kind = match r.kind {
            RuleKind::Entity(e) => deck.entities[e as usize].name.as_str(),
            RuleKind::Custom => "custom",
            RuleKind::Mixed => "mixed",
        };
        p.line(&mut out, 0, format!("rule {} ({kind}) = {}", r.name, p.cond(&r.cond, true)), r.span);
        if !r.reads.is_empty() {
            let reads: Vec<&str> = r.reads.iter().map(|read| p.tag_name(read.tag)).collect();
            let _ = writeln!(out, "  reads {}", reads.join(", "));
        }
    }
    for l in &deck.layers {
        p.line(&mut out, 0, format!("layer {} by {}", l.name, p.unit(l.unit)), l.span);
    }
    p.outreach(&mut out);
    for s in &deck.scenes {
        p.scene(&mut out, s);
    }
    for t in &deck.tests {
        p.test(&mut out, t);
    }
    out
}

struct Printer<'a> {
    deck: &'a Deck,
    sources: &'a Sources,
}

impl Printer<'_> {
    fn line(&self, out: &mut String, depth: usize, text: String, span: Span) {
        let file = self.sources.get(span.file);
        let (line, col) = file.line_col(span.start);
        let _ = writeln!(out, "{:indent$}{text} @ {}:{line}:{col}", "", file.name, indent = depth * 2);
    }

    fn tag_name(&self, id: TagId) -> &str {
        &self.deck.tags[id as usize].name
    }

    fn ty(&self, ty: &Type) -> String {
        TypeDisplay { ty, enums: &self.deck.enums }.to_string()
    }

    fn tag(&self, t: &Tag) -> String {
        let mut s = format!("tag {}: {}", t.name, self.ty(&t.ty));
        match (&t.owner, &t.provider) {
            (TagOwner::Passthrough, _) => s.push_str(" passthrough"),
            (TagOwner::Entity(_), Some(provider)) => {
                let _ = write!(s, " from {provider:?}");
            }
            (TagOwner::Entity(_), None) => {}
        }
        if let Some(secs) = t.cache_seconds {
            let _ = write!(s, " cache {secs}s");
        }
        if t.sensitive {
            s.push_str(" sensitive");
        }
        s.push_str(match t.status {
            Status::Draft => " draft",
            Status::Online => " online",
            Status::Disabled => " disabled",
        });
        s
    }

    fn unit(&self, unit: Unit) -> &str {
        match unit {
            Unit::Key(e) => &self.deck.entities[e as usize].key,
            Unit::Tag(t) => self.tag_name(t),
        }
    }

    /// A condition; `top` leaves a lone predicate unparenthesized. Operands of `and`, `or`
    /// and `not` are parenthesized unless they are a constant, a rule or a bare bool.
    fn cond(&self, c: &Cond, top: bool) -> String {
        let text = match &c.kind {
            CondKind::Const(b) => return b.to_string(),
            CondKind::Rule(r) => return self.deck.rules[*r as usize].name.clone(),
            CondKind::Bool(v) => return self.value(v),
            CondKind::Not(inner) => format!("not {}", self.cond(inner, false)),
            CondKind::And(cs) => cs.iter().map(|c| self.cond(c, false)).collect::<Vec<_>>().join(" and "),
            CondKind::Or(cs) => cs.iter().map(|c| self.cond(c, false)).collect::<Vec<_>>().join(" or "),
            CondKind::Compare { op, lhs, rhs } => {
                format!("{} {} {}", self.value(lhs), op.as_str(), self.value(rhs))
            }
            CondKind::Between { value, low, high } => {
                format!("{} between {} and {}", self.value(value), self.value(low), self.value(high))
            }
            CondKind::InSet { value, set, negated } => {
                let not = if *negated { "not " } else { "" };
                format!("{} {not}in {}", self.value(value), self.consts(set, &value.ty))
            }
            CondKind::Text { op, value, arg, negated } => {
                let op = match (op, negated) {
                    (TextOp::Contains, false) => "contains",
                    (TextOp::Contains, true) => "not contains",
                    (TextOp::StartsWith, false) => "starts_with",
                    (TextOp::StartsWith, true) => "not starts_with",
                    (TextOp::EndsWith, false) => "ends_with",
                    (TextOp::EndsWith, true) => "not ends_with",
                };
                format!("{} {op} {}", self.value(value), self.value(arg))
            }
            CondKind::Matches { value, pattern } => format!("{} matches {pattern:?}", self.value(value)),
            CondKind::ListContains { list, item, negated } => {
                let not = if *negated { "not " } else { "" };
                format!("{} {not}contains {}", self.value(list), self.value(item))
            }
            CondKind::ListContainsAny { list, items } => {
                format!("{} contains_any {}", self.value(list), self.consts(items, &list.ty))
            }
            CondKind::ListContainsAll { list, items } => {
                format!("{} contains_all {}", self.value(list), self.consts(items, &list.ty))
            }
            CondKind::IsEmpty(v) => format!("{} is empty", self.value(v)),
            CondKind::IsMissing { value, negated } => {
                format!("{} is {}", self.value(value), if *negated { "present" } else { "missing" })
            }
            CondKind::Before { value, at } => format!("{} before {}", self.value(value), self.value(at)),
            CondKind::After { value, at } => format!("{} after {}", self.value(value), self.value(at)),
            CondKind::Within { value, seconds } => format!("{} within {seconds}s", self.value(value)),
            CondKind::OlderThan { value, seconds } => format!("{} older than {seconds}s", self.value(value)),
        };
        if top {
            text
        } else {
            format!("({text})")
        }
    }

    /// A value; nested arithmetic is parenthesized, so precedence is visible.
    fn value(&self, v: &Value) -> String {
        match &v.kind {
            ValueKind::Const(c) => self.constant(c, &v.ty),
            ValueKind::Tag(t) => self.tag_name(*t).to_string(),
            ValueKind::Len(inner) => format!("len({})", self.value(inner)),
            ValueKind::Neg(inner) => format!("-{}", self.operand(inner)),
            ValueKind::Arith { first, rest } => {
                let mut s = self.operand(first);
                for (op, v) in rest {
                    let _ = write!(s, " {} {}", op.as_str(), self.operand(v));
                }
                s
            }
        }
    }

    fn operand(&self, v: &Value) -> String {
        match v.kind {
            ValueKind::Arith { .. } | ValueKind::Neg(_) => format!("({})", self.value(v)),
            _ => self.value(v),
        }
    }

    /// A constant of type `ty` (enum members by name; times in RFC 3339; durations in seconds;
    /// floats always with a dot, so `1.0` is not read as the int `1`).
    fn constant(&self, c: &Const, ty: &Type) -> String {
        match c {
            Const::Int(i) => i.to_string(),
            Const::Float(f) => format!("{f:?}"),
            Const::Text(s) => format!("{s:?}"),
            Const::Bool(b) => b.to_string(),
            Const::Time(t) => format!("@{}", format_time(*t)),
            Const::Duration(s) => format!("{s}s"),
            Const::Enum(m) => match ty {
                Type::Enum(e) => self.deck.enums[*e as usize].members[*m as usize].clone(),
                _ => format!("<member {m} of {ty}>"),
            },
            Const::List(items) => self.consts(items, ty),
        }
    }

    /// A list of constants whose elements have type `elem` (or, for a list type, its element).
    fn consts(&self, items: &[Const], ty: &Type) -> String {
        let elem = match ty {
            Type::List(elem) => elem,
            other => other,
        };
        let items: Vec<String> = items.iter().map(|c| self.constant(c, elem)).collect();
        format!("[{}]", items.join(", "))
    }

    fn decision(&self, values: impl Iterator<Item = String>, fields: &[Field]) -> String {
        let parts: Vec<String> = fields.iter().zip(values).map(|(f, v)| format!("{}: {v}", f.name)).collect();
        format!("{{ {} }}", parts.join(", "))
    }

    fn typed_decision(&self, d: &Decision, fields: &[Field]) -> String {
        self.decision(d.values.iter().map(|v| self.value(v)), fields)
    }

    fn outreach(&self, out: &mut String) {
        let o = &self.deck.outreach;
        let caps =
            |caps: &[Cap]| caps.iter().map(|c| format!(" cap {} per {}s", c.count, c.per_seconds)).collect::<String>();
        for e in &o.events {
            let fields: Vec<String> = e
                .fields
                .iter()
                .map(|f| format!("{}: {} as {}", f.name, self.ty(&f.ty), self.tag_name(f.tag)))
                .collect();
            let entity = &self.deck.entities[e.entity as usize].name;
            self.line(
                out,
                0,
                format!("event {} of {entity} late {}s {{ {} }}", e.name, e.late_seconds, fields.join(", ")),
                e.span,
            );
        }
        for w in &o.windows {
            let ev = &o.events[w.event as usize];
            let field = w.field.map_or(String::new(), |f| format!(".{}", ev.fields[f as usize].name));
            let filter = w.filter.as_ref().map_or(String::new(), |f| format!(" where {}", self.filter(f, ev)));
            let tag = &self.deck.tags[w.tag as usize];
            let text = format!(
                "window {} = {}({}{field}{filter}) within {}s",
                tag.name,
                w.agg.as_str(),
                ev.name,
                w.within_seconds
            );
            self.line(out, 0, text, tag.span);
        }
        for c in &o.channels {
            let mut text = format!("channel {}{}", c.name, caps(&c.caps));
            if let Some(q) = c.quiet {
                let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
                text += &format!(
                    " quiet {}..{} {}",
                    hm(q.from_minute),
                    hm(q.to_minute),
                    if q.drop { "drop" } else { "hold" }
                );
            }
            if let Some(z) = c.zone {
                text += &format!(" zone {}", self.tag_name(z));
            }
            self.line(out, 0, text, c.span);
        }
        for a in &o.actions {
            let mut text = format!("action {:?}{}", a.name, caps(&a.caps));
            if let Some(b) = &a.budget {
                text += &format!(" budget {}", b.amount);
                if let Some(f) = &b.field {
                    text += &format!(" of {f}");
                }
            }
            self.line(out, 0, text, a.span);
        }
    }

    fn filter(&self, f: &Filter, ev: &Event) -> String {
        let name = |i: &u32| ev.fields[*i as usize].name.as_str();
        let ty = |i: &u32| &ev.fields[*i as usize].ty;
        match f {
            Filter::And(fs) => fs.iter().map(|f| format!("({})", self.filter(f, ev))).collect::<Vec<_>>().join(" and "),
            Filter::Or(fs) => fs.iter().map(|f| format!("({})", self.filter(f, ev))).collect::<Vec<_>>().join(" or "),
            Filter::Not(f) => format!("not ({})", self.filter(f, ev)),
            Filter::Compare { field, op, value } => {
                format!("{} {} {}", name(field), op.as_str(), self.constant(value, ty(field)))
            }
            Filter::InSet { field, set, negated } => {
                format!("{} {}in {}", name(field), if *negated { "not " } else { "" }, self.consts(set, ty(field)))
            }
        }
    }

    fn scene(&self, out: &mut String, s: &Scene) {
        let mut head = format!("scene {}", s.name);
        if let Some(e) = s.on {
            let _ = write!(head, " on {}", self.deck.outreach.events[e as usize].name);
            if let Some(f) = &s.fanout {
                let o = &self.deck.outreach;
                let (ix, trigger) = (&o.events[f.index as usize], &o.events[e as usize]);
                let pairs: Vec<String> = f
                    .pairs
                    .iter()
                    .map(|(fi, v)| {
                        let value = match v {
                            FanoutValue::Field(i) => trigger.fields[*i as usize].name.as_str(),
                            FanoutValue::Key => self.deck.entities[trigger.entity as usize].key.as_str(),
                        };
                        format!("{} == event.{value}", ix.fields[*fi as usize].name)
                    })
                    .collect();
                let _ = write!(
                    head,
                    " for each {} with {}({}) within {}s",
                    self.deck.entities[f.entity as usize].name,
                    ix.name,
                    pairs.join(" and "),
                    f.within_seconds
                );
            }
        }
        if !s.keys.is_empty() {
            let keys: Vec<&str> = s.keys.iter().map(|&e| self.deck.entities[e as usize].key.as_str()).collect();
            let _ = write!(head, " keys {}", keys.join(", "));
        }
        if !s.passes.is_empty() {
            let passes: Vec<&str> = s.passes.iter().map(|&t| self.tag_name(t)).collect();
            let _ = write!(head, " passes {}", passes.join(", "));
        }
        self.line(out, 0, head, s.span);
        for i in &s.instances {
            let fields: Vec<String> = i.fields.iter().map(|f| format!("{}: {}", f.name, self.ty(&f.ty))).collect();
            self.line(out, 1, format!("instance {} -> {{ {} }}", i.name, fields.join(", ")), i.span);
            for st in &i.strategies {
                let mut head = format!("strategy {}", st.name);
                if let Some(when) = &st.when {
                    let _ = write!(head, " when {}", self.cond(when, true));
                }
                match &st.outcome {
                    Outcome::Decision(d) => {
                        let _ = write!(head, " => {}", self.typed_decision(d, &i.fields));
                        self.line(out, 2, head, st.span);
                    }
                    Outcome::Experiment(x) => {
                        self.line(out, 2, head, st.span);
                        self.experiment(out, x, &i.fields);
                    }
                }
            }
            if let Some(d) = &i.default {
                self.line(out, 2, format!("default => {}", self.typed_decision(d, &i.fields)), d.span);
            }
        }
    }

    fn experiment(&self, out: &mut String, x: &Experiment, fields: &[Field]) {
        let mut head = format!("experiment {} by {} salt {:?}", x.name, self.unit(x.unit), x.salt);
        if let Some(claim) = x.layer {
            let layer = &self.deck.layers[claim.layer as usize].name;
            let _ = write!(head, " in {layer} buckets {}..{}", claim.start, claim.end);
        }
        self.line(out, 3, head, x.span);
        let mut start = 0;
        for g in &x.groups {
            let end = start + g.buckets;
            let text = format!("{} buckets {start}..{end} => {}", g.name, self.typed_decision(&g.decision, fields));
            self.line(out, 4, text, g.span);
            start = end;
        }
        if start < BUCKETS {
            let _ = writeln!(out, "{:8}buckets {start}..{} are out of the experiment", "", BUCKETS);
        }
    }

    fn test(&self, out: &mut String, t: &Test) {
        self.line(out, 0, format!("test {:?}", t.name), t.span);
        let mut given: Vec<String> =
            t.keys.iter().map(|(e, value)| format!("{}: {value:?}", self.deck.entities[*e as usize].key)).collect();
        given.extend(t.tags.iter().map(|(id, c)| {
            let tag = &self.deck.tags[*id as usize];
            format!("{}: {}", tag.name, self.constant(c, &tag.ty))
        }));
        if let Some(now) = t.now {
            given.push(format!("now: @{}", format_time(now)));
        }
        let _ = writeln!(out, "  given {{ {} }}", given.join(", "));
        // A strategy expectation is about the instance of the decision expectation before it.
        let mut current: Option<&Instance> = None;
        for e in &t.expects {
            match e {
                Expectation::Decision { scene, instance, decision, span } => {
                    let scene = &self.deck.scenes[*scene as usize];
                    let inst = &scene.instances[*instance as usize];
                    current = Some(inst);
                    let shown = match decision {
                        None => "none".to_string(),
                        Some(values) => self.decision(
                            values.iter().zip(&inst.fields).map(|(c, f)| self.constant(c, &f.ty)),
                            &inst.fields,
                        ),
                    };
                    self.line(out, 1, format!("expect {}.{} => {shown}", scene.name, inst.name), *span);
                }
                Expectation::Strategy { strategy, group, span } => {
                    let (name, experiment) = match (strategy, current) {
                        (StrategyRef::Default, _) => ("default".to_string(), None),
                        (StrategyRef::Named(i), Some(inst)) => {
                            let st = &inst.strategies[*i as usize];
                            let x = match &st.outcome {
                                Outcome::Experiment(x) => Some(x),
                                Outcome::Decision(_) => None,
                            };
                            (st.name.clone(), x)
                        }
                        (StrategyRef::Named(i), None) => (format!("#{i}"), None),
                    };
                    let mut text = format!("expect strategy {name}");
                    if let Some(g) = group {
                        let gname = experiment
                            .and_then(|x| x.groups.get(*g as usize))
                            .map_or_else(|| format!("#{g}"), |g| g.name.clone());
                        let _ = write!(text, " group {gname}");
                    }
                    self.line(out, 1, text, *span);
                }
                Expectation::Tag { tag, key, value, span } => {
                    let t = &self.deck.tags[*tag as usize];
                    let shown = value.as_ref().map_or_else(|| "missing".to_string(), |c| self.constant(c, &t.ty));
                    self.line(out, 1, format!("expect tag {} for {key:?} => {shown}", t.name), *span);
                }
            }
        }
    }
}
