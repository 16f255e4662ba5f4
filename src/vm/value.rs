//! Runtime values: what the stack holds, what hosts supply, and why a value is missing.
//!
//! Owns: value representation and the value-level semantics shared by every instruction
//! (comparison across int/float, Kleene logic, checked arithmetic, set membership).
//! Must not: know about requests, programs or instructions beyond the pools it reads.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

use crate::compile::program::{ConstSet, Item};

/// A value on the VM stack. `Copy`, 16 bytes: texts and lists are references.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    /// Unknown: no value, a failed provider, or an unknown result. Conditions use it as the
    /// third truth value.
    Missing,
    /// A tag not loaded yet. Behaves as unknown everywhere; the VM suspends if a result
    /// depends on it.
    Pending,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Seconds since the Unix epoch.
    Time(i64),
    Enum(u32),
    Text(Ref),
    List(Ref),
}

/// Where a text or list lives: the constant pool, or a request's tag slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ref {
    Const(u32),
    Slot(u16),
}

/// What `LoadTag` pushes for a loaded tag value in `slot`.
#[inline]
pub(crate) fn slot_val(v: &TagValue, slot: u16) -> Val {
    match v {
        TagValue::Int(i) => Val::Int(*i),
        TagValue::Float(f) => Val::Float(*f),
        TagValue::Text(_) => Val::Text(Ref::Slot(slot)),
        TagValue::Bool(b) => Val::Bool(*b),
        TagValue::Time(t) => Val::Time(*t),
        TagValue::Enum(e) => Val::Enum(*e),
        TagValue::List(_) => Val::List(Ref::Slot(slot)),
    }
}

/// A loaded tag value, owned by the request.
#[derive(Clone, Debug, PartialEq)]
pub enum TagValue {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Time(i64),
    Enum(u32),
    List(Vec<Scalar>),
}

/// An element of a list tag.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Time(i64),
    Enum(u32),
}

/// A borrowed scalar, from a list tag or a constant list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarRef<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
    Time(i64),
    Enum(u32),
}

impl Scalar {
    pub fn as_ref(&self) -> ScalarRef<'_> {
        match self {
            Scalar::Int(i) => ScalarRef::Int(*i),
            Scalar::Float(f) => ScalarRef::Float(*f),
            Scalar::Text(s) => ScalarRef::Text(s),
            Scalar::Bool(b) => ScalarRef::Bool(*b),
            Scalar::Time(t) => ScalarRef::Time(*t),
            Scalar::Enum(e) => ScalarRef::Enum(*e),
        }
    }
}

impl<'a> ScalarRef<'a> {
    pub fn from_item(c: &'a Item) -> ScalarRef<'a> {
        match c {
            Item::Int(i) => ScalarRef::Int(*i),
            Item::Float(f) => ScalarRef::Float(*f),
            Item::Text(s) => ScalarRef::Text(s),
            Item::Bool(b) => ScalarRef::Bool(*b),
            Item::Time(t) => ScalarRef::Time(*t),
            Item::Enum(e) => ScalarRef::Enum(*e),
        }
    }

    /// Equality with numbers compared across int and float.
    pub fn equals(self, other: ScalarRef<'_>) -> bool {
        match (self, other) {
            (ScalarRef::Int(a), ScalarRef::Int(b)) | (ScalarRef::Time(a), ScalarRef::Time(b)) => a == b,
            (ScalarRef::Float(a), ScalarRef::Float(b)) => a == b,
            (ScalarRef::Int(i), ScalarRef::Float(f)) | (ScalarRef::Float(f), ScalarRef::Int(i)) => {
                cmp_int_float(i, f) == Some(Ordering::Equal)
            }
            (ScalarRef::Text(a), ScalarRef::Text(b)) => a == b,
            (ScalarRef::Bool(a), ScalarRef::Bool(b)) => a == b,
            (ScalarRef::Enum(a), ScalarRef::Enum(b)) => a == b,
            _ => false,
        }
    }

    pub fn in_set(self, set: &ConstSet) -> bool {
        match self {
            ScalarRef::Int(i) => {
                set.ints.binary_search(&i).is_ok()
                    || set.floats.iter().any(|&f| cmp_int_float(i, f) == Some(Ordering::Equal))
            }
            ScalarRef::Float(f) => {
                // Sets hold +0.0 for both zeros (see codegen), as `==` does not tell them apart.
                let f = if f == 0.0 { 0.0 } else { f };
                set.floats.binary_search_by(|x| x.total_cmp(&f)).is_ok()
                    || set.ints.iter().any(|&i| cmp_int_float(i, f) == Some(Ordering::Equal))
            }
            ScalarRef::Time(t) => set.ints.binary_search(&t).is_ok(),
            ScalarRef::Bool(b) => set.ints.binary_search(&i64::from(b)).is_ok(),
            ScalarRef::Text(s) => set.texts.binary_search_by(|x| x.as_str().cmp(s)).is_ok(),
            ScalarRef::Enum(e) => set.enums.binary_search(&e).is_ok(),
        }
    }
}

/// Exact comparison of an int with a float (no rounding of large ints through f64).
pub fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    // 2^63 as f64 is exact; every float at or beyond it exceeds every i64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let whole = f.trunc();
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - whole)),
        other => Some(other),
    }
}

/// Kleene truth of a condition value: `Some(bool)` or unknown.
#[inline]
pub fn truth(v: Val) -> Option<bool> {
    match v {
        Val::Bool(b) => Some(b),
        _ => None,
    }
}

#[inline]
pub fn from_truth(t: Option<bool>) -> Val {
    t.map_or(Val::Missing, Val::Bool)
}

#[inline]
pub fn kleene_and(a: Val, b: Val) -> Val {
    match (truth(a), truth(b)) {
        (Some(false), _) | (_, Some(false)) => Val::Bool(false),
        (Some(true), Some(true)) => Val::Bool(true),
        _ => Val::Missing,
    }
}

#[inline]
pub fn kleene_or(a: Val, b: Val) -> Val {
    match (truth(a), truth(b)) {
        (Some(true), _) | (_, Some(true)) => Val::Bool(true),
        (Some(false), Some(false)) => Val::Bool(false),
        _ => Val::Missing,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Checked arithmetic: int overflow, division by zero and non-finite floats are unknown.
/// A pending operand makes a pending result, so `is missing` on it stays undecided.
pub fn arith(op: ArithOp, a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Pending, _) | (_, Val::Pending) => Val::Pending,
        (Val::Int(x), Val::Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                // Rust's integer division truncates toward zero, as the language promises.
                ArithOp::Div => x.checked_div(y),
                ArithOp::Rem => x.checked_rem(y),
            };
            r.map_or(Val::Missing, Val::Int)
        }
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            let (x, y) = (as_f64(a), as_f64(b));
            let r = match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div => x / y,
                ArithOp::Rem => x % y,
            };
            if r.is_finite() {
                Val::Float(r)
            } else {
                Val::Missing
            }
        }
        _ => Val::Missing,
    }
}

fn as_f64(v: Val) -> f64 {
    match v {
        Val::Int(i) => i as f64,
        Val::Float(f) => f,
        _ => f64::NAN,
    }
}

/// Why a tag has no value, for traces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum MissingReason {
    /// The provider has no value for this key.
    NoValue,
    /// The provider failed or timed out.
    ProviderFailed { error: String },
    /// The provider's value has the wrong type; it counts as missing.
    WrongType { expected: String, found: String },
    /// A test did not give it (tests never fetch tags).
    NotGiven,
}

impl fmt::Display for MissingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissingReason::NoValue => f.write_str("no value"),
            MissingReason::ProviderFailed { error } => write!(f, "provider failed: {error}"),
            MissingReason::WrongType { expected, found } => write!(f, "wrong type: expected {expected}, found {found}"),
            MissingReason::NotGiven => f.write_str("not given"),
        }
    }
}

/// A three-valued result, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kleene {
    True,
    False,
    Unknown,
}

impl From<Val> for Kleene {
    fn from(v: Val) -> Kleene {
        match truth(v) {
            Some(true) => Kleene::True,
            Some(false) => Kleene::False,
            None => Kleene::Unknown,
        }
    }
}

impl fmt::Display for Kleene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kleene::True => "true",
            Kleene::False => "false",
            Kleene::Unknown => "unknown",
        })
    }
}
