//! A tree-walking reference evaluator over the checker's typed deck: the test oracle for the
//! bytecode VM.
//!
//! It is written from the normative semantics only (docs/language.md §4–§5),
//! never from the VM's code, so that the VM and this evaluator are two independent readings of
//! the same text. It favours obviousness over speed: every operator is one small `match` arm.
//!
//! Uses nothing but `ruledeck`'s public API and `std`, so any crate can include it with
//! `#[path = ".../tests/common/reference.rs"] mod reference;`. For A/B hashing it calls
//! `ruledeck::vm::ab` (the normative formula, pinned to published vectors by its own tests).
//!
//! Decisions taken where the docs leave room (each is a reading of the docs, not of the VM):
//! - Three-valued logic is `Option<bool>`: `None` is unknown. Every predicate whose operand
//!   value is unknown is unknown, except `is missing` / `is present`, which are never unknown.
//!   `between` is one predicate: any unknown operand makes it unknown.
//! - `is missing` on a computed value (e.g. `(user.a + 1) is missing`) holds when the value is
//!   unknown for any reason (a missing tag, overflow, division by zero).
//! - Arithmetic is evaluated one binary operator at a time, left to right: an operator whose
//!   two operands are ints is checked i64 arithmetic, even when a later operand of the same
//!   chain is a float; an operator with a float operand converts the int operand (`as f64`) and
//!   computes in f64, and a non-finite result is unknown. Int `%` is the remainder of the
//!   truncating division (sign of the dividend); float `%` is IEEE `fmod` (Rust's `%`).
//! - Ints and floats compare exactly (no rounding of the int to f64).
//! - `contains_any []` is false and `contains_all []` is true.
//! - `matches` uses unanchored search semantics (`Regex::is_match`). Integration tests cannot
//!   depend on `regex`, so only a fixed set of patterns is implemented by hand (see
//!   [`regex_is_match`]); any other pattern panics.
//! - A provider value's coercion ([`coerce`]): the exact type; an int for a `float` tag (an int
//!   is accepted where a float is expected); an RFC 3339 text (`YYYY-MM-DDTHH:MM:SSZ` form) or
//!   an int (seconds since the epoch) for a `time` tag; a member's name as text for an `enum`
//!   tag; a list whose every element coerces for a `list<T>` tag. Anything else is the wrong
//!   type and counts as missing. Non-finite floats count as missing too: the language has no
//!   non-finite values.
//! - A decision value of type `int` stored in a `float` field becomes a float (the field's
//!   type); likewise for the elements of a `list<int>` stored in a `list<float>` field.
#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use ruledeck::check::typed::{
    Cond, CondKind, Const, Decision, Deck, Field, Instance, Outcome, TagId, TextOp, Type, Unit, Value, ValueKind,
};
use ruledeck::ops::{ArithOp, CmpOp};
use ruledeck::vm::ab;

/// A typed value as the reference sees it. Enum values carry their member's name (enum types
/// are structural, so equal names of the same type are equal members).
#[derive(Clone, Debug, PartialEq)]
pub enum RefValue {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// Seconds since the Unix epoch.
    Time(i64),
    Enum(String),
    List(Vec<RefValue>),
}

/// A value as a provider hands it over, before coercion to the tag's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Provided {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Time(i64),
    List(Vec<Provided>),
}

/// What an instance decided.
#[derive(Clone, Debug, PartialEq)]
pub struct RefOutcome {
    /// The deciding strategy's name, `default` for the default, `None` for no decision.
    pub strategy: Option<String>,
    pub experiment: Option<String>,
    pub group: Option<String>,
    /// The experiment's own bucket (with its salt), when an experiment decided.
    pub bucket: Option<u32>,
    /// In the instance's field order; empty when no decision was made.
    pub fields: Vec<RefValue>,
}

impl RefOutcome {
    fn none() -> RefOutcome {
        RefOutcome { strategy: None, experiment: None, group: None, bucket: None, fields: Vec::new() }
    }
}

type Truth = Option<bool>;

// ------------------------------------------------------------------------------------------
// Entry points
// ------------------------------------------------------------------------------------------

/// Evaluates `scene.instance`.
///
/// `keys` maps request key names (`uid`) to their values. `tags` maps tag ids (indexes into
/// `deck.tags`) to values; a tag absent from the map or mapped to `None` is missing (unknown).
/// Pass-through tags are given the same way. A value that does not have the tag's type is
/// treated as missing.
pub fn evaluate(
    deck: &Deck,
    scene: &str,
    instance: &str,
    keys: &HashMap<String, String>,
    tags: &HashMap<TagId, Option<RefValue>>,
    now: i64,
) -> RefOutcome {
    let scene = deck.scenes.iter().find(|s| s.name == scene).unwrap_or_else(|| panic!("no scene `{scene}`"));
    let inst =
        scene.instances.iter().find(|i| i.name == instance).unwrap_or_else(|| panic!("no instance `{instance}`"));
    let mut ev = Eval { deck, keys, tags, now, rule_memo: HashMap::new() };
    ev.instance(inst)
}

/// Coerces a provider value to a tag type; `None` when it has the wrong type (then the tag
/// is missing).
pub fn coerce(deck: &Deck, ty: &Type, p: &Provided) -> Option<RefValue> {
    match (ty, p) {
        (Type::Int, Provided::Int(i)) => Some(RefValue::Int(*i)),
        (Type::Float, Provided::Float(f)) if f.is_finite() => Some(RefValue::Float(*f)),
        (Type::Float, Provided::Int(i)) => Some(RefValue::Float(*i as f64)),
        (Type::Text, Provided::Text(s)) => Some(RefValue::Text(s.clone())),
        (Type::Bool, Provided::Bool(b)) => Some(RefValue::Bool(*b)),
        (Type::Time, Provided::Time(t) | Provided::Int(t)) => Some(RefValue::Time(*t)),
        (Type::Time, Provided::Text(s)) => parse_rfc3339_utc(s).map(RefValue::Time),
        (Type::Enum(id), Provided::Text(s)) => {
            deck.enums[*id as usize].members.iter().any(|m| m == s).then(|| RefValue::Enum(s.clone()))
        }
        (Type::List(elem), Provided::List(items)) => {
            items.iter().map(|i| coerce(deck, elem, i)).collect::<Option<Vec<_>>>().map(RefValue::List)
        }
        _ => None,
    }
}

/// Whether `v` is a well-formed value of type `ty`.
pub fn conforms(deck: &Deck, ty: &Type, v: &RefValue) -> bool {
    match (ty, v) {
        (Type::Int, RefValue::Int(_)) => true,
        (Type::Float, RefValue::Float(f)) => f.is_finite(),
        (Type::Text, RefValue::Text(_)) => true,
        (Type::Bool, RefValue::Bool(_)) => true,
        (Type::Time, RefValue::Time(_)) => true,
        (Type::Enum(id), RefValue::Enum(m)) => deck.enums[*id as usize].members.iter().any(|x| x == m),
        (Type::List(elem), RefValue::List(items)) => items.iter().all(|i| conforms(deck, elem, i)),
        _ => false,
    }
}

/// Every tag an instance can read: in `when`s (directly and through rules, transitively), in
/// decision values, and as experiment units. Sorted.
pub fn instance_reads(deck: &Deck, scene: &str, instance: &str) -> BTreeSet<TagId> {
    let scene = deck.scenes.iter().find(|s| s.name == scene).expect("scene");
    let inst = scene.instances.iter().find(|i| i.name == instance).expect("instance");
    let mut out = BTreeSet::new();
    let mut seen_rules = BTreeSet::new();
    let decision = |d: &Decision, out: &mut BTreeSet<TagId>| {
        for v in &d.values {
            value_reads(v, out);
        }
    };
    for s in &inst.strategies {
        if let Some(w) = &s.when {
            cond_reads(deck, w, &mut out, &mut seen_rules);
        }
        match &s.outcome {
            Outcome::Decision(d) => decision(d, &mut out),
            Outcome::Experiment(x) => {
                if let Unit::Tag(t) = x.unit {
                    out.insert(t);
                }
                if let Some(claim) = x.layer {
                    if let Unit::Tag(t) = deck.layers[claim.layer as usize].unit {
                        out.insert(t);
                    }
                }
                for g in &x.groups {
                    decision(&g.decision, &mut out);
                }
            }
        }
    }
    if let Some(d) = &inst.default {
        decision(d, &mut out);
    }
    out
}

fn cond_reads(deck: &Deck, c: &Cond, out: &mut BTreeSet<TagId>, seen_rules: &mut BTreeSet<u32>) {
    match &c.kind {
        CondKind::Const(_) => {}
        CondKind::Rule(r) => {
            if seen_rules.insert(*r) {
                cond_reads(deck, &deck.rules[*r as usize].cond, out, seen_rules);
            }
        }
        CondKind::Bool(v) | CondKind::IsEmpty(v) => value_reads(v, out),
        CondKind::Not(inner) => cond_reads(deck, inner, out, seen_rules),
        CondKind::And(cs) | CondKind::Or(cs) => cs.iter().for_each(|c| cond_reads(deck, c, out, seen_rules)),
        CondKind::Compare { lhs, rhs, .. } => {
            value_reads(lhs, out);
            value_reads(rhs, out);
        }
        CondKind::Between { value, low, high } => {
            value_reads(value, out);
            value_reads(low, out);
            value_reads(high, out);
        }
        CondKind::InSet { value, .. }
        | CondKind::Matches { value, .. }
        | CondKind::IsMissing { value, .. }
        | CondKind::Within { value, .. }
        | CondKind::OlderThan { value, .. } => value_reads(value, out),
        CondKind::Text { value, arg, .. } => {
            value_reads(value, out);
            value_reads(arg, out);
        }
        CondKind::ListContains { list, item, .. } => {
            value_reads(list, out);
            value_reads(item, out);
        }
        CondKind::ListContainsAny { list, .. } | CondKind::ListContainsAll { list, .. } => value_reads(list, out),
        CondKind::Before { value, at } | CondKind::After { value, at } => {
            value_reads(value, out);
            value_reads(at, out);
        }
    }
}

fn value_reads(v: &Value, out: &mut BTreeSet<TagId>) {
    match &v.kind {
        ValueKind::Const(_) => {}
        ValueKind::Tag(t) => {
            out.insert(*t);
        }
        ValueKind::Len(inner) | ValueKind::Neg(inner) => value_reads(inner, out),
        ValueKind::Arith { first, rest } => {
            value_reads(first, out);
            rest.iter().for_each(|(_, v)| value_reads(v, out));
        }
    }
}

// ------------------------------------------------------------------------------------------
// The evaluator
// ------------------------------------------------------------------------------------------

struct Eval<'a> {
    deck: &'a Deck,
    keys: &'a HashMap<String, String>,
    tags: &'a HashMap<TagId, Option<RefValue>>,
    now: i64,
    rule_memo: HashMap<u32, Truth>,
}

impl Eval<'_> {
    fn instance(&mut self, inst: &Instance) -> RefOutcome {
        for s in &inst.strategies {
            // 1. `when` holds (true; unknown does not hold), or there is none.
            if let Some(w) = &s.when {
                if self.cond(w) != Some(true) {
                    continue;
                }
            }
            match &s.outcome {
                Outcome::Decision(d) => {
                    // 3. The decision carries no unknown value.
                    if let Some(fields) = self.decision(d, &inst.fields) {
                        return RefOutcome {
                            strategy: Some(s.name.clone()),
                            experiment: None,
                            group: None,
                            bucket: None,
                            fields,
                        };
                    }
                }
                Outcome::Experiment(x) => {
                    // 2. The unit is present ...
                    let unit = match x.unit {
                        Unit::Key(e) => {
                            let key = &self.deck.entities[e as usize].key;
                            self.keys.get(key).unwrap_or_else(|| panic!("request lacks key `{key}`")).clone()
                        }
                        Unit::Tag(t) => match self.tag(t) {
                            Some(RefValue::Text(s)) => s,
                            Some(RefValue::Int(i)) => i.to_string(),
                            None => continue,
                            Some(other) => panic!("unit tag of unexpected type: {other:?}"),
                        },
                    };
                    // ... the layer bucket lies in the claimed range ...
                    if let Some(claim) = x.layer {
                        let layer = &self.deck.layers[claim.layer as usize];
                        assert_eq!(layer.unit, x.unit, "an experiment's unit is its layer's (E0504)");
                        let layer_bucket = ab::bucket(&layer.name, &unit);
                        if !ab::in_range(layer_bucket, claim.start, claim.end) {
                            continue;
                        }
                    }
                    // ... and the bucket falls into one of the groups.
                    let bucket = ab::bucket(&x.salt, &unit);
                    let shares: Vec<u32> = x.groups.iter().map(|g| g.buckets).collect();
                    let Some(g) = ab::group_for(bucket, &shares) else { continue };
                    let group = &x.groups[g];
                    if let Some(fields) = self.decision(&group.decision, &inst.fields) {
                        return RefOutcome {
                            strategy: Some(s.name.clone()),
                            experiment: Some(x.name.clone()),
                            group: Some(group.name.clone()),
                            bucket: Some(bucket),
                            fields,
                        };
                    }
                }
            }
        }
        if let Some(d) = &inst.default {
            if let Some(fields) = self.decision(d, &inst.fields) {
                return RefOutcome {
                    strategy: Some("default".into()),
                    experiment: None,
                    group: None,
                    bucket: None,
                    fields,
                };
            }
        }
        RefOutcome::none()
    }

    /// The decision's field values, or `None` when any of them is unknown.
    fn decision(&mut self, d: &Decision, fields: &[Field]) -> Option<Vec<RefValue>> {
        assert_eq!(d.values.len(), fields.len());
        d.values.iter().zip(fields).map(|(v, f)| Some(to_field_type(self.value(v)?, &f.ty))).collect()
    }

    fn tag(&self, t: TagId) -> Option<RefValue> {
        let v = self.tags.get(&t).cloned().flatten()?;
        conforms(self.deck, &self.deck.tags[t as usize].ty, &v).then_some(v)
    }

    // ---- conditions --------------------------------------------------------------------

    fn cond(&mut self, c: &Cond) -> Truth {
        match &c.kind {
            CondKind::Const(b) => Some(*b),
            CondKind::Rule(r) => {
                if let Some(t) = self.rule_memo.get(r) {
                    return *t;
                }
                let deck = self.deck;
                let t = self.cond(&deck.rules[*r as usize].cond);
                self.rule_memo.insert(*r, t);
                t
            }
            CondKind::Bool(v) => match self.value(v)? {
                RefValue::Bool(b) => Some(b),
                other => panic!("bare condition of non-bool value {other:?}"),
            },
            CondKind::Not(inner) => self.cond(inner).map(|b| !b),
            CondKind::And(cs) => {
                // Kleene: false if any is false; else unknown if any is unknown; else true.
                let ts: Vec<Truth> = cs.iter().map(|c| self.cond(c)).collect();
                if ts.contains(&Some(false)) {
                    Some(false)
                } else if ts.contains(&None) {
                    None
                } else {
                    Some(true)
                }
            }
            CondKind::Or(cs) => {
                let ts: Vec<Truth> = cs.iter().map(|c| self.cond(c)).collect();
                if ts.contains(&Some(true)) {
                    Some(true)
                } else if ts.contains(&None) {
                    None
                } else {
                    Some(false)
                }
            }
            CondKind::Compare { op, lhs, rhs } => {
                let (a, b) = (self.value(lhs), self.value(rhs));
                let (a, b) = (a?, b?);
                Some(match op {
                    CmpOp::Eq => equal(&a, &b),
                    CmpOp::Ne => !equal(&a, &b),
                    CmpOp::Lt => order(&a, &b) == Ordering::Less,
                    CmpOp::Le => order(&a, &b) != Ordering::Greater,
                    CmpOp::Gt => order(&a, &b) == Ordering::Greater,
                    CmpOp::Ge => order(&a, &b) != Ordering::Less,
                })
            }
            CondKind::Between { value, low, high } => {
                let (v, lo, hi) = (self.value(value), self.value(low), self.value(high));
                let (v, lo, hi) = (v?, lo?, hi?);
                Some(order(&v, &lo) != Ordering::Less && order(&v, &hi) != Ordering::Greater)
            }
            CondKind::InSet { value, set, negated } => {
                let v = self.value(value)?;
                let found = set.iter().any(|c| equal(&v, &const_value(self.deck, c, &value.ty)));
                Some(found != *negated)
            }
            CondKind::Text { op, value, arg, negated } => {
                let (v, a) = (self.value(value), self.value(arg));
                let (RefValue::Text(v), RefValue::Text(a)) = (v?, a?) else { panic!("text op on non-text") };
                let holds = match op {
                    TextOp::Contains => v.contains(a.as_str()),
                    TextOp::StartsWith => v.starts_with(a.as_str()),
                    TextOp::EndsWith => v.ends_with(a.as_str()),
                };
                Some(holds != *negated)
            }
            CondKind::Matches { value, pattern } => match self.value(value)? {
                RefValue::Text(s) => Some(regex_is_match(pattern, &s)),
                other => panic!("matches on {other:?}"),
            },
            CondKind::ListContains { list, item, negated } => {
                let (l, i) = (self.value(list), self.value(item));
                let (RefValue::List(l), i) = (l?, i?) else { panic!("contains on non-list") };
                Some(l.iter().any(|x| equal(x, &i)) != *negated)
            }
            CondKind::ListContainsAny { list, items } => {
                let RefValue::List(l) = self.value(list)? else { panic!("contains_any on non-list") };
                let elem = list_elem(&list.ty);
                Some(items.iter().any(|c| {
                    let c = const_value(self.deck, c, elem);
                    l.iter().any(|x| equal(x, &c))
                }))
            }
            CondKind::ListContainsAll { list, items } => {
                let RefValue::List(l) = self.value(list)? else { panic!("contains_all on non-list") };
                let elem = list_elem(&list.ty);
                Some(items.iter().all(|c| {
                    let c = const_value(self.deck, c, elem);
                    l.iter().any(|x| equal(x, &c))
                }))
            }
            CondKind::IsEmpty(v) => match self.value(v)? {
                RefValue::List(l) => Some(l.is_empty()),
                other => panic!("is empty on {other:?}"),
            },
            CondKind::IsMissing { value, negated } => Some(self.value(value).is_none() != *negated),
            CondKind::Before { value, at } => {
                let (t, at) = (self.value(value), self.value(at));
                Some(time(&t?) < time(&at?))
            }
            CondKind::After { value, at } => {
                let (t, at) = (self.value(value), self.value(at));
                Some(time(&t?) > time(&at?))
            }
            CondKind::Within { value, seconds } => {
                let t = time(&self.value(value)?);
                let age = self.now.checked_sub(t)?;
                Some(age <= *seconds)
            }
            CondKind::OlderThan { value, seconds } => {
                let t = time(&self.value(value)?);
                let age = self.now.checked_sub(t)?;
                Some(age > *seconds)
            }
        }
    }

    // ---- values ------------------------------------------------------------------------

    /// A value, or `None` when it is unknown.
    fn value(&mut self, v: &Value) -> Option<RefValue> {
        match &v.kind {
            ValueKind::Const(c) => Some(const_value(self.deck, c, &v.ty)),
            ValueKind::Tag(t) => self.tag(*t),
            ValueKind::Len(inner) => match self.value(inner)? {
                RefValue::List(l) => Some(RefValue::Int(i64::try_from(l.len()).expect("list length fits i64"))),
                other => panic!("len of {other:?}"),
            },
            ValueKind::Neg(inner) => match self.value(inner)? {
                RefValue::Int(i) => i.checked_neg().map(RefValue::Int),
                RefValue::Float(f) => finite(-f),
                other => panic!("unary minus on {other:?}"),
            },
            ValueKind::Arith { first, rest } => {
                // Every operand is evaluated (they are pure); any unknown operand is unknown.
                let mut acc = self.value(first);
                for (op, operand) in rest {
                    let b = self.value(operand);
                    acc = match (acc, b) {
                        (Some(a), Some(b)) => arith(*op, a, b),
                        _ => None,
                    };
                }
                acc
            }
        }
    }
}

fn list_elem(ty: &Type) -> &Type {
    match ty {
        Type::List(e) => e,
        other => panic!("not a list type: {other:?}"),
    }
}

fn time(v: &RefValue) -> i64 {
    match v {
        RefValue::Time(t) => *t,
        other => panic!("not a time: {other:?}"),
    }
}

fn finite(f: f64) -> Option<RefValue> {
    f.is_finite().then_some(RefValue::Float(f))
}

/// One binary arithmetic operator.
fn arith(op: ArithOp, a: RefValue, b: RefValue) -> Option<RefValue> {
    match (a, b) {
        (RefValue::Int(a), RefValue::Int(b)) => {
            let r = match op {
                ArithOp::Add => a.checked_add(b),
                ArithOp::Sub => a.checked_sub(b),
                ArithOp::Mul => a.checked_mul(b),
                // Rust's i64 division truncates toward zero; `None` on /0 and MIN / -1.
                ArithOp::Div => a.checked_div(b),
                ArithOp::Rem => a.checked_rem(b),
            };
            r.map(RefValue::Int)
        }
        (a, b) => {
            let (a, b) = (as_f64(&a), as_f64(&b));
            let r = match op {
                ArithOp::Add => a + b,
                ArithOp::Sub => a - b,
                ArithOp::Mul => a * b,
                ArithOp::Div => a / b,
                ArithOp::Rem => a % b,
            };
            finite(r)
        }
    }
}

fn as_f64(v: &RefValue) -> f64 {
    match v {
        RefValue::Int(i) => *i as f64,
        RefValue::Float(f) => *f,
        other => panic!("arithmetic on {other:?}"),
    }
}

/// Converts a value to a decision field's type (int → float where a float is expected).
fn to_field_type(v: RefValue, ty: &Type) -> RefValue {
    match (v, ty) {
        (RefValue::Int(i), Type::Float) => RefValue::Float(i as f64),
        (RefValue::List(items), Type::List(elem)) => {
            RefValue::List(items.into_iter().map(|i| to_field_type(i, elem)).collect())
        }
        (v, _) => v,
    }
}

/// A typed constant as a value. `ty` is the type the checker gave it.
fn const_value(deck: &Deck, c: &Const, ty: &Type) -> RefValue {
    match c {
        Const::Int(i) => RefValue::Int(*i),
        Const::Float(f) => RefValue::Float(*f),
        Const::Text(s) => RefValue::Text(s.clone()),
        Const::Bool(b) => RefValue::Bool(*b),
        Const::Time(t) => RefValue::Time(*t),
        Const::Duration(d) => panic!("a duration ({d}s) is not a value"),
        Const::Enum(i) => match ty {
            Type::Enum(id) => RefValue::Enum(deck.enums[*id as usize].members[*i as usize].clone()),
            other => panic!("enum constant typed {other:?}"),
        },
        Const::List(items) => {
            let elem = list_elem(ty);
            RefValue::List(items.iter().map(|i| const_value(deck, i, elem)).collect())
        }
    }
}

/// Equality of two values of comparable types (numbers compare exactly across int and float).
fn equal(a: &RefValue, b: &RefValue) -> bool {
    match (a, b) {
        (RefValue::Int(_) | RefValue::Float(_), RefValue::Int(_) | RefValue::Float(_)) => {
            order(a, b) == Ordering::Equal
        }
        (RefValue::Text(x), RefValue::Text(y)) => x == y,
        (RefValue::Bool(x), RefValue::Bool(y)) => x == y,
        (RefValue::Time(x), RefValue::Time(y)) => x == y,
        (RefValue::Enum(x), RefValue::Enum(y)) => x == y,
        (RefValue::List(x), RefValue::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b)),
        (a, b) => panic!("comparing incomparable values {a:?} and {b:?}"),
    }
}

/// Order of two numbers (exact across int and float) or two times.
fn order(a: &RefValue, b: &RefValue) -> Ordering {
    match (a, b) {
        (RefValue::Int(x), RefValue::Int(y)) => x.cmp(y),
        (RefValue::Float(x), RefValue::Float(y)) => x.partial_cmp(y).expect("floats are finite"),
        (RefValue::Int(x), RefValue::Float(y)) => cmp_int_float(*x, *y),
        (RefValue::Float(x), RefValue::Int(y)) => cmp_int_float(*y, *x).reverse(),
        (RefValue::Time(x), RefValue::Time(y)) => x.cmp(y),
        (a, b) => panic!("ordering unordered values {a:?} and {b:?}"),
    }
}

/// Exact comparison of an i64 with a finite f64.
pub fn cmp_int_float(i: i64, f: f64) -> Ordering {
    assert!(f.is_finite());
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    // -2^63 <= f < 2^63: its integer part is exactly representable as an i64.
    let whole = f.trunc();
    let w = whole as i64;
    match i.cmp(&w) {
        Ordering::Equal => {
            let frac = f - whole;
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

/// The `matches` patterns the property tests use, implemented by hand (integration tests
/// cannot import `regex`). Semantics are those of `Regex::is_match`: a match anywhere.
pub const KNOWN_PATTERNS: &[&str] = &["^ph", "one$", "^$", "h", "^[a-z]+$", "^[0-9]+$", "(?i)^phone$", "a.b", "x|y"];

pub fn regex_is_match(pattern: &str, s: &str) -> bool {
    match pattern {
        "^ph" => s.starts_with("ph"),
        "one$" => s.ends_with("one"),
        "^$" => s.is_empty(),
        "h" => s.contains('h'),
        "^[a-z]+$" => !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase()),
        "^[0-9]+$" => !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
        // Only ASCII letters have case variants among the texts the tests generate.
        "(?i)^phone$" => s.eq_ignore_ascii_case("phone") && s.is_ascii(),
        // `.` matches any character except `\n`.
        "a.b" => {
            let cs: Vec<char> = s.chars().collect();
            cs.windows(3).any(|w| w[0] == 'a' && w[1] != '\n' && w[2] == 'b')
        }
        "x|y" => s.contains('x') || s.contains('y'),
        other => panic!("the reference does not implement the regex {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Time
// ------------------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (years 0000–9999).
pub fn format_rfc3339_utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    assert!((0..=9999).contains(&y), "year {y} out of range");
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Parses exactly the form `YYYY-MM-DDTHH:MM:SSZ`, with a valid date and time.
pub fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if d > month_days[(mo - 1) as usize] {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se)
}
