//! Typed deck → bytecode and tables.
//!
//! Owns: instruction selection (including the compare-with-constant superinstruction),
//! clause ordering, the constant/set/regex pools, and the span side table. Must not: check
//! anything the checker checks (the deck is known valid) or know how the VM runs.
//!
//! Clause order: the clauses of an `and`/`or` chain are emitted cheapest first (pass-through
//! tags, then constants and cached tags, then the rest). Kleene `and`/`or` are commutative
//! and associative, so the result is the same; what changes is which tags the VM must load
//! before the chain is decided.

use std::collections::HashMap;

use super::instr::Instr;
use super::program::*;
use crate::check::typed::{self, CondKind, Deck, ValueKind};
use crate::check::types::{Const as TConst, Type};
use crate::ops::ArithOp;
use crate::ops::CmpOp;
use crate::source::{Sources, Span};

pub fn generate(deck: &Deck, sources: &Sources) -> Program {
    let mut g = Gen {
        deck,
        code: Vec::new(),
        spans: Vec::new(),
        consts: Vec::new(),
        const_index: HashMap::new(),
        sets: Vec::new(),
        regex_sources: Vec::new(),
    };
    let tags = deck
        .tags
        .iter()
        .map(|t| TagInfo {
            name: t.name.clone(),
            entity: match t.owner {
                typed::TagOwner::Entity(e) => Some(e),
                typed::TagOwner::Passthrough => None,
            },
            ty: ty(&t.ty),
            provider: t.provider.clone(),
            cache_seconds: t.cache_seconds,
            sensitive: t.sensitive,
            cost: tag_cost(t),
        })
        .collect::<Vec<_>>();
    let rules = deck.rules.iter().map(|r| RuleInfo { name: r.name.clone(), block: g.cond_block(&r.cond) }).collect();
    let layers = deck.layers.iter().map(|l| LayerInfo { name: l.name.clone(), unit: unit(l.unit) }).collect();
    let scenes = deck.scenes.iter().map(|s| g.scene(s)).collect();
    Program {
        entities: deck.entities.iter().map(|e| EntityInfo { name: e.name.clone(), key: e.key.clone() }).collect(),
        enums: deck.enums.iter().map(|e| e.members.clone()).collect(),
        tags,
        consts: g.consts,
        sets: g.sets,
        regex_sources: g.regex_sources,
        code: g.code,
        spans: g.spans,
        rules,
        layers,
        scenes,
        sources: sources.iter().map(|(_, f)| SourceText { name: f.name.clone(), text: f.text.clone() }).collect(),
        max_stack: 0,
        max_calls: 0,
        outreach: outreach(deck),
        regexes: Vec::new(),
        plans: Default::default(),
    }
}

/// The deck's outreach declarations as the runtime takes them.
fn outreach(deck: &Deck) -> OutreachInfo {
    let o = &deck.outreach;
    if o.events.is_empty() {
        return OutreachInfo::default();
    }
    let events = o
        .events
        .iter()
        .map(|e| EventInfo {
            name: e.name.clone(),
            entity: e.entity,
            late_seconds: e.late_seconds,
            fields: e
                .fields
                .iter()
                .map(|f| EventFieldInfo { name: f.name.clone(), ty: ty(&f.ty), tag: f.tag })
                .collect(),
        })
        .collect();
    let windows = o
        .windows
        .iter()
        .map(|w| {
            let mut filter = Vec::new();
            if let Some(f) = &w.filter {
                filter_steps(f, &mut filter);
            }
            WindowInfo {
                tag: w.tag,
                event: w.event,
                agg: w.agg,
                field: w.field,
                filter,
                within_seconds: w.within_seconds,
            }
        })
        .collect();
    let channels = o
        .channels
        .iter()
        .map(|c| ChannelInfo { name: c.name.clone(), caps: c.caps.clone(), quiet: c.quiet, zone: c.zone })
        .collect();
    let actions = o
        .actions
        .iter()
        .map(|a| ActionInfo { name: a.name.clone(), caps: a.caps.clone(), budget: a.budget.clone() })
        .collect();
    // Dedup windows are constants of the reach decisions (the checker requires it).
    let mut max_dedup_seconds = 0;
    for inst in deck.scenes.iter().flat_map(|s| &s.instances).filter(|i| i.reach) {
        let decisions = inst
            .strategies
            .iter()
            .flat_map(|st| match &st.outcome {
                typed::Outcome::Decision(d) => vec![d],
                typed::Outcome::Experiment(x) => x.groups.iter().map(|g| &g.decision).collect(),
            })
            .chain(inst.default.as_ref());
        for d in decisions {
            if let Some(TConst::Int(secs)) = d.values.get(2).and_then(|v| v.as_const()) {
                max_dedup_seconds = max_dedup_seconds.max(*secs);
            }
        }
    }
    OutreachInfo {
        events,
        windows,
        channels,
        actions,
        scene_events: deck.scenes.iter().map(|s| s.on).collect(),
        max_dedup_seconds,
        scene_fanouts: if deck.scenes.iter().any(|s| s.fanout.is_some()) {
            deck.scenes
                .iter()
                .map(|s| {
                    s.fanout.as_ref().map(|f| FanoutInfo {
                        entity: f.entity,
                        index_event: f.index,
                        pairs: f.pairs.clone(),
                        within_seconds: f.within_seconds,
                    })
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// A window's `where` in postfix order.
fn filter_steps(f: &typed::Filter, out: &mut Vec<FilterStep>) {
    match f {
        typed::Filter::And(fs) | typed::Filter::Or(fs) => {
            for x in fs {
                filter_steps(x, out);
            }
            let n = fs.len() as u32;
            out.push(if matches!(f, typed::Filter::And(_)) { FilterStep::And(n) } else { FilterStep::Or(n) });
        }
        typed::Filter::Not(x) => {
            filter_steps(x, out);
            out.push(FilterStep::Not);
        }
        typed::Filter::Compare { field, op, value } => {
            out.push(FilterStep::Compare { field: *field, op: *op, value: constant(value) })
        }
        typed::Filter::InSet { field, set, negated } => {
            out.push(FilterStep::InSet { field: *field, set: set.iter().map(constant).collect(), negated: *negated })
        }
    }
}

pub fn ty(t: &Type) -> Ty {
    match t {
        Type::Int => Ty::Int,
        Type::Float => Ty::Float,
        Type::Text => Ty::Text,
        Type::Bool => Ty::Bool,
        Type::Time | Type::Duration => Ty::Time,
        Type::Enum(e) => Ty::Enum(*e),
        Type::List(t) => Ty::List(match ty(t) {
            Ty::Int => Elem::Int,
            Ty::Float => Elem::Float,
            Ty::Text => Elem::Text,
            Ty::Bool => Elem::Bool,
            Ty::Enum(e) => Elem::Enum(e),
            // The checker allows only scalar list elements.
            Ty::Time | Ty::List(_) => Elem::Time,
        }),
    }
}

/// What loading a tag costs, for clause ordering: pass-through 0 (already in the request),
/// cached 1 (often in the host's cache), uncached 2 (a provider call).
fn tag_cost(tag: &typed::Tag) -> u8 {
    match (tag.owner, tag.cache_seconds) {
        (typed::TagOwner::Passthrough, _) => 0,
        (_, Some(_)) => 1,
        _ => 2,
    }
}

fn unit(u: typed::Unit) -> Unit {
    match u {
        typed::Unit::Key(e) => Unit::Key(e),
        typed::Unit::Tag(t) => Unit::Tag(t),
    }
}

/// Hashable identity of a constant, for deduplicating the pool (floats by bit pattern).
#[derive(PartialEq, Eq, Hash)]
enum ConstKey {
    Int(i64),
    Float(u64),
    Text(String),
    Time(i64),
    Enum(u32),
    Seconds(i64),
}

struct Gen<'d> {
    deck: &'d Deck,
    code: Vec<Instr>,
    spans: Vec<Span>,
    consts: Vec<Const>,
    const_index: HashMap<ConstKey, u32>,
    sets: Vec<ConstSet>,
    regex_sources: Vec<String>,
}

impl Gen<'_> {
    fn emit(&mut self, instr: Instr, span: Span) -> usize {
        self.code.push(instr);
        self.spans.push(span);
        self.code.len() - 1
    }

    fn here(&self) -> u32 {
        self.code.len() as u32
    }

    /// The superinstruction comparing tag `slot` with constant `k`: the constant's kind picks
    /// it, so the VM compares without looking at the constant's kind at run time.
    fn compare_tag(&mut self, op: CmpOp, slot: u16, k: &TConst) -> Instr {
        match k {
            TConst::Int(i) => match i32::try_from(*i) {
                Ok(value) => Instr::CmpTagInt { op, slot, value },
                Err(_) => Instr::CmpTagConst { op, slot, konst: self.konst(constant(k)) },
            },
            TConst::Enum(member) => Instr::CmpTagEnum { op, slot, member: *member },
            TConst::Text(_) => Instr::CmpTagText { op, slot, konst: self.konst(constant(k)) },
            TConst::Float(_) => Instr::CmpTagFloat { op, slot, konst: self.konst(constant(k)) },
            _ => Instr::CmpTagConst { op, slot, konst: self.konst(constant(k)) },
        }
    }

    fn konst(&mut self, c: Const) -> u32 {
        let key = match &c {
            Const::Int(i) => Some(ConstKey::Int(*i)),
            Const::Float(f) => Some(ConstKey::Float(f.to_bits())),
            Const::Text(s) => Some(ConstKey::Text(s.clone())),
            Const::Time(t) => Some(ConstKey::Time(*t)),
            Const::Enum(e) => Some(ConstKey::Enum(*e)),
            Const::Seconds(s) => Some(ConstKey::Seconds(*s)),
            Const::Bool(_) | Const::List(_) => None,
        };
        if let Some(&idx) = key.as_ref().and_then(|k| self.const_index.get(k)) {
            return idx;
        }
        let idx = self.consts.len() as u32;
        self.consts.push(c);
        if let Some(k) = key {
            self.const_index.insert(k, idx);
        }
        idx
    }

    fn set(&mut self, items: &[TConst], elem: &Type) -> u32 {
        let mut set = ConstSet {
            enum_type: match elem {
                Type::Enum(e) => Some(*e),
                _ => None,
            },
            ..ConstSet::default()
        };
        for item in items {
            match item {
                TConst::Int(i) | TConst::Time(i) => set.ints.push(*i),
                TConst::Bool(b) => set.ints.push(i64::from(*b)),
                // -0.0 == 0.0, but not under the total order the set is searched with.
                TConst::Float(f) if !f.is_nan() => set.floats.push(if *f == 0.0 { 0.0 } else { *f }),
                TConst::Text(s) => set.texts.push(s.clone()),
                TConst::Enum(e) => set.enums.push(*e),
                TConst::Float(_) | TConst::Duration(_) | TConst::List(_) => {}
            }
        }
        set.ints.sort_unstable();
        set.ints.dedup();
        set.floats.sort_by(f64::total_cmp);
        set.floats.dedup();
        set.texts.sort_unstable();
        set.texts.dedup();
        set.enums.sort_unstable();
        set.enums.dedup();
        set.len = (set.ints.len() + set.floats.len() + set.texts.len() + set.enums.len()) as u32;
        self.sets.push(set);
        (self.sets.len() - 1) as u32
    }

    fn cond_block(&mut self, c: &typed::Cond) -> Block {
        let start = self.here();
        self.cond(c);
        self.emit(Instr::Return, c.span);
        Block { start, end: self.here() }
    }

    /// Estimated cost of evaluating a condition: the dearest tag it may have to load
    /// (0 pass-through, 1 cached, 2 uncached), then how many tags it reads.
    fn cost(&self, c: &typed::Cond) -> (u8, usize) {
        let mut tags = Vec::new();
        let mut rules = Vec::new();
        visit_cond_tags(c, &mut |t| tags.push(t), &mut |r| rules.push(r));
        for r in rules {
            tags.extend(self.deck.rules[r as usize].reads.iter().map(|read| read.tag));
        }
        let dearest = tags.iter().map(|&t| tag_cost(&self.deck.tags[t as usize])).max().unwrap_or(0);
        (dearest, tags.len())
    }

    fn cond(&mut self, c: &typed::Cond) {
        let span = c.span;
        match &c.kind {
            CondKind::Const(b) => {
                self.emit(Instr::PushBool(*b), span);
            }
            CondKind::Rule(r) => {
                self.emit(Instr::CallRule(*r), span);
            }
            CondKind::Bool(v) => self.value(v),
            CondKind::Not(inner) => {
                self.cond(inner);
                self.emit(Instr::Not, span);
            }
            CondKind::And(clauses) | CondKind::Or(clauses) => {
                let is_and = matches!(c.kind, CondKind::And(_));
                let mut order: Vec<&typed::Cond> = clauses.iter().collect();
                order.sort_by_key(|c| self.cost(c));
                let mut jumps = Vec::with_capacity(order.len());
                // First clause: jump out if it decides the chain; middle clauses: combine and
                // jump out (one fused instruction); last clause: combine.
                let jump = |first: bool, target: u32| match (is_and, first) {
                    (true, true) => Instr::AndJump(target),
                    (true, false) => Instr::AndCheck(target),
                    (false, true) => Instr::OrJump(target),
                    (false, false) => Instr::OrCheck(target),
                };
                for (i, clause) in order.iter().enumerate() {
                    self.cond(clause);
                    if i + 1 < order.len() {
                        jumps.push((self.emit(jump(i == 0, 0), span), i == 0));
                    } else {
                        self.emit(if is_and { Instr::And } else { Instr::Or }, span);
                    }
                }
                let end = self.here();
                for (j, first) in jumps {
                    self.code[j] = jump(first, end);
                }
            }
            CondKind::Compare { op, lhs, rhs } => {
                let op = *op;
                match (&lhs.kind, &rhs.kind) {
                    (ValueKind::Tag(t), ValueKind::Const(k)) if is_scalar(k) => {
                        let instr = self.compare_tag(op, *t as u16, k);
                        self.emit(instr, span);
                    }
                    (ValueKind::Const(k), ValueKind::Tag(t)) if is_scalar(k) => {
                        let instr = self.compare_tag(op.flipped(), *t as u16, k);
                        self.emit(instr, span);
                    }
                    _ => {
                        self.value(lhs);
                        self.value(rhs);
                        self.emit(Instr::Cmp(op), span);
                    }
                }
            }
            CondKind::Between { value, low, high } => {
                self.value(value);
                self.value(low);
                self.value(high);
                self.emit(Instr::Between, span);
            }
            CondKind::InSet { value, set, negated } => {
                self.value(value);
                let set = self.set(set, &value.ty);
                self.emit(Instr::InSet { set, negated: *negated }, span);
            }
            CondKind::Text { op, value, arg, negated } => {
                self.value(value);
                self.value(arg);
                let instr = match op {
                    typed::TextOp::Contains => Instr::TextContains,
                    typed::TextOp::StartsWith => Instr::StartsWith,
                    typed::TextOp::EndsWith => Instr::EndsWith,
                };
                self.emit(instr, span);
                if *negated {
                    self.emit(Instr::Not, span);
                }
            }
            CondKind::Matches { value, pattern } => {
                self.value(value);
                let idx = match self.regex_sources.iter().position(|p| p == pattern) {
                    Some(i) => i,
                    None => {
                        self.regex_sources.push(pattern.clone());
                        self.regex_sources.len() - 1
                    }
                };
                self.emit(Instr::Matches(idx as u32), span);
            }
            CondKind::ListContains { list, item, negated } => {
                self.value(list);
                self.value(item);
                self.emit(Instr::ListContains, span);
                if *negated {
                    self.emit(Instr::Not, span);
                }
            }
            CondKind::ListContainsAny { list, items } | CondKind::ListContainsAll { list, items } => {
                self.value(list);
                let elem = match &list.ty {
                    Type::List(e) => (**e).clone(),
                    other => other.clone(),
                };
                let set = self.set(items, &elem);
                let any = matches!(c.kind, CondKind::ListContainsAny { .. });
                self.emit(if any { Instr::ContainsAny(set) } else { Instr::ContainsAll(set) }, span);
            }
            CondKind::IsEmpty(v) => {
                self.value(v);
                self.emit(Instr::IsEmpty, span);
            }
            CondKind::IsMissing { value, negated } => {
                self.value(value);
                self.emit(Instr::IsMissing { negated: *negated }, span);
            }
            CondKind::Before { value, at } | CondKind::After { value, at } => {
                self.value(value);
                self.value(at);
                let op = if matches!(c.kind, CondKind::Before { .. }) { CmpOp::Lt } else { CmpOp::Gt };
                self.emit(Instr::Cmp(op), span);
            }
            CondKind::Within { value, seconds } | CondKind::OlderThan { value, seconds } => {
                self.value(value);
                let k = self.konst(Const::Seconds(*seconds));
                let within = matches!(c.kind, CondKind::Within { .. });
                self.emit(if within { Instr::Within(k) } else { Instr::OlderThan(k) }, span);
            }
        }
    }

    fn value(&mut self, v: &typed::Value) {
        let span = v.span;
        match &v.kind {
            ValueKind::Const(TConst::Int(i)) if i32::try_from(*i).is_ok() => {
                self.emit(Instr::PushInt(*i as i32), span);
            }
            ValueKind::Const(TConst::Bool(b)) => {
                self.emit(Instr::PushBool(*b), span);
            }
            ValueKind::Const(k) => {
                let idx = self.konst(constant(k));
                self.emit(Instr::PushConst(idx), span);
            }
            ValueKind::Tag(t) => {
                self.emit(Instr::LoadTag(*t as u16), span);
            }
            ValueKind::Len(inner) => {
                self.value(inner);
                self.emit(Instr::Len, span);
            }
            ValueKind::Neg(inner) => {
                self.value(inner);
                self.emit(Instr::Neg, span);
            }
            ValueKind::Arith { first, rest } => {
                self.value(first);
                for (op, operand) in rest {
                    self.value(operand);
                    let instr = match op {
                        ArithOp::Add => Instr::Add,
                        ArithOp::Sub => Instr::Sub,
                        ArithOp::Mul => Instr::Mul,
                        ArithOp::Div => Instr::Div,
                        ArithOp::Rem => Instr::Rem,
                    };
                    self.emit(instr, span);
                }
            }
        }
    }

    fn decision_block(&mut self, d: &typed::Decision, fields: &[typed::Field]) -> Block {
        let start = self.here();
        for (value, field) in d.values.iter().zip(fields) {
            self.value(value);
            if field.ty == Type::Float && value.ty == Type::Int {
                self.emit(Instr::ToFloat, value.span);
            }
        }
        self.emit(Instr::Decide(d.values.len() as u16), d.span);
        Block { start, end: self.here() }
    }

    fn scene(&mut self, s: &typed::Scene) -> SceneInfo {
        let instances = s
            .instances
            .iter()
            .map(|inst| {
                let strategies = inst
                    .strategies
                    .iter()
                    .map(|st| StrategyInfo {
                        name: st.name.clone(),
                        when: st.when.as_ref().map(|w| self.cond_block(w)),
                        outcome: match &st.outcome {
                            typed::Outcome::Decision(d) => OutcomeInfo::Decision(self.decision_block(d, &inst.fields)),
                            typed::Outcome::Experiment(x) => OutcomeInfo::Experiment(ExperimentInfo {
                                name: x.name.clone(),
                                salt: x.salt.clone(),
                                unit: unit(x.unit),
                                layer: x.layer.map(|c| LayerClaim { layer: c.layer, start: c.start, end: c.end }),
                                groups: x
                                    .groups
                                    .iter()
                                    .map(|g| GroupInfo {
                                        name: g.name.clone(),
                                        buckets: g.buckets,
                                        decision: self.decision_block(&g.decision, &inst.fields),
                                    })
                                    .collect(),
                            }),
                        },
                    })
                    .collect();
                let default = inst.default.as_ref().map(|d| self.decision_block(d, &inst.fields));
                InstanceInfo {
                    name: inst.name.clone(),
                    fields: inst.fields.iter().map(|f| FieldInfo { name: f.name.clone(), ty: ty(&f.ty) }).collect(),
                    strategies,
                    default,
                }
            })
            .collect();
        SceneInfo { name: s.name.clone(), keys: s.keys.clone(), passes: s.passes.clone(), instances }
    }
}

fn is_scalar(c: &TConst) -> bool {
    !matches!(c, TConst::List(_))
}

fn constant(c: &TConst) -> Const {
    match c {
        TConst::Int(i) => Const::Int(*i),
        TConst::Float(f) => Const::Float(*f),
        TConst::Text(s) => Const::Text(s.clone()),
        TConst::Bool(b) => Const::Bool(*b),
        TConst::Time(t) => Const::Time(*t),
        TConst::Duration(s) => Const::Seconds(*s),
        TConst::Enum(e) => Const::Enum(*e),
        TConst::List(items) => Const::List(
            items
                .iter()
                .filter_map(|i| {
                    Some(match i {
                        TConst::Int(x) => Scalar::Int(*x),
                        TConst::Float(x) => Scalar::Float(*x),
                        TConst::Text(x) => Scalar::Text(x.clone()),
                        TConst::Bool(x) => Scalar::Bool(*x),
                        TConst::Time(x) => Scalar::Time(*x),
                        TConst::Enum(x) => Scalar::Enum(*x),
                        // The checker allows only scalar list elements.
                        TConst::Duration(_) | TConst::List(_) => return None,
                    })
                })
                .collect(),
        ),
    }
}

/// Calls `tag` for every tag a condition reads directly and `rule` for every rule it uses.
fn visit_cond_tags(c: &typed::Cond, tag: &mut dyn FnMut(u32), rule: &mut dyn FnMut(u32)) {
    fn value(v: &typed::Value, tag: &mut dyn FnMut(u32)) {
        match &v.kind {
            ValueKind::Const(_) => {}
            ValueKind::Tag(t) => tag(*t),
            ValueKind::Len(inner) | ValueKind::Neg(inner) => value(inner, tag),
            ValueKind::Arith { first, rest } => {
                value(first, tag);
                for (_, v) in rest {
                    value(v, tag);
                }
            }
        }
    }
    match &c.kind {
        CondKind::Const(_) => {}
        CondKind::Rule(r) => rule(*r),
        CondKind::Not(inner) => visit_cond_tags(inner, tag, rule),
        CondKind::And(cs) | CondKind::Or(cs) => {
            for c in cs {
                visit_cond_tags(c, tag, rule);
            }
        }
        CondKind::Bool(v) | CondKind::IsEmpty(v) => value(v, tag),
        CondKind::Compare { lhs, rhs, .. } => {
            value(lhs, tag);
            value(rhs, tag);
        }
        CondKind::Between { value: v, low, high } => {
            value(v, tag);
            value(low, tag);
            value(high, tag);
        }
        CondKind::Text { value: v, arg, .. } => {
            value(v, tag);
            value(arg, tag);
        }
        CondKind::ListContains { list, item, .. } => {
            value(list, tag);
            value(item, tag);
        }
        CondKind::Before { value: v, at } | CondKind::After { value: v, at } => {
            value(v, tag);
            value(at, tag);
        }
        CondKind::InSet { value: v, .. }
        | CondKind::Matches { value: v, .. }
        | CondKind::ListContainsAny { list: v, .. }
        | CondKind::ListContainsAll { list: v, .. }
        | CondKind::IsMissing { value: v, .. }
        | CondKind::Within { value: v, .. }
        | CondKind::OlderThan { value: v, .. } => value(v, tag),
    }
}
