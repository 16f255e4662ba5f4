//! Runtime values: what the stack holds, what hosts supply, and why a value is missing.
//!
//! Owns: value representation and the value-level semantics shared by every instruction
//! (comparison across int/float, Kleene logic, checked arithmetic, set membership).
//! Must not: know about requests, programs or instructions beyond the pools it reads.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

use crate::compile::program::ConstSet;
use crate::compile::program::Scalar;
use crate::ops::ArithOp;

/// A value on the VM stack: a kind byte and one 64-bit payload word, `Copy`, 16 bytes.
///
/// Why not a Rust enum: an enum whose variants hold an `i64`, an `f64`, a `bool` and a
/// nested [`Ref`] is laid out as an opaque aggregate, so every push and pop went through
/// memory as a byte store plus a 16-byte load, which the CPU cannot forward (the profile's
/// hottest instructions). Two scalars are kept in registers and moved as two words.
/// Match on [`Val::view`], which is free once inlined.
// Two words: a kind byte and a payload, moved in registers.
const _: () = assert!(std::mem::size_of::<Val>() == 16);

#[derive(Clone, Copy)]
pub struct Val {
    kind: Kind,
    bits: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Missing,
    Pending,
    Bool,
    Int,
    Float,
    Time,
    Enum,
    Text,
    List,
}

/// A [`Val`] taken apart, for matching.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum View {
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

/// Set in a packed [`Ref`] for a slot (constant indexes are `u32`, below it).
const SLOT_REF: u64 = 1 << 32;

impl Ref {
    #[inline]
    fn pack(self) -> u64 {
        match self {
            Ref::Const(k) => u64::from(k),
            Ref::Slot(s) => SLOT_REF | u64::from(s),
        }
    }

    #[inline]
    fn unpack(bits: u64) -> Ref {
        if bits & SLOT_REF != 0 {
            Ref::Slot(bits as u16)
        } else {
            Ref::Const(bits as u32)
        }
    }
}

impl Val {
    pub const MISSING: Val = Val { kind: Kind::Missing, bits: 0 };
    pub const PENDING: Val = Val { kind: Kind::Pending, bits: 0 };
    pub const TRUE: Val = Val { kind: Kind::Bool, bits: 1 };
    pub const FALSE: Val = Val { kind: Kind::Bool, bits: 0 };

    #[inline]
    pub fn bool(b: bool) -> Val {
        Val { kind: Kind::Bool, bits: u64::from(b) }
    }

    #[inline]
    pub fn int(i: i64) -> Val {
        Val { kind: Kind::Int, bits: i as u64 }
    }

    #[inline]
    pub fn float(f: f64) -> Val {
        Val { kind: Kind::Float, bits: f.to_bits() }
    }

    #[inline]
    pub fn time(t: i64) -> Val {
        Val { kind: Kind::Time, bits: t as u64 }
    }

    #[inline]
    pub fn member(e: u32) -> Val {
        Val { kind: Kind::Enum, bits: u64::from(e) }
    }

    #[inline]
    pub fn text(r: Ref) -> Val {
        Val { kind: Kind::Text, bits: r.pack() }
    }

    #[inline]
    pub fn list(r: Ref) -> Val {
        Val { kind: Kind::List, bits: r.pack() }
    }

    #[inline(always)]
    pub fn view(self) -> View {
        match self.kind {
            Kind::Missing => View::Missing,
            Kind::Pending => View::Pending,
            Kind::Bool => View::Bool(self.bits != 0),
            Kind::Int => View::Int(self.bits as i64),
            Kind::Float => View::Float(f64::from_bits(self.bits)),
            Kind::Time => View::Time(self.bits as i64),
            Kind::Enum => View::Enum(self.bits as u32),
            Kind::Text => View::Text(Ref::unpack(self.bits)),
            Kind::List => View::List(Ref::unpack(self.bits)),
        }
    }

    /// Whether this is a tag not loaded yet.
    #[inline]
    pub fn is_pending(self) -> bool {
        self.kind == Kind::Pending
    }

    /// Whether this is `Missing` or `Pending` (no value to use).
    #[inline]
    pub fn is_unknown(self) -> bool {
        matches!(self.kind, Kind::Missing | Kind::Pending)
    }

    /// Whether this is the condition `true` (`false`), without unpacking.
    #[inline]
    pub fn is_true(self) -> bool {
        self.kind == Kind::Bool && self.bits != 0
    }

    #[inline]
    pub fn is_false(self) -> bool {
        self.kind == Kind::Bool && self.bits == 0
    }
}

impl From<View> for Val {
    #[inline]
    fn from(v: View) -> Val {
        match v {
            View::Missing => Val::MISSING,
            View::Pending => Val::PENDING,
            View::Bool(b) => Val::bool(b),
            View::Int(i) => Val::int(i),
            View::Float(f) => Val::float(f),
            View::Time(t) => Val::time(t),
            View::Enum(e) => Val::member(e),
            View::Text(r) => Val::text(r),
            View::List(r) => Val::list(r),
        }
    }
}

/// Equality as the values mean it (floats compare as numbers, so `-0.0 == 0.0`).
impl PartialEq for Val {
    fn eq(&self, other: &Val) -> bool {
        self.view() == other.view()
    }
}

impl fmt::Debug for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

/// What `LoadTag` pushes for a loaded tag value in `slot`.
#[inline]
pub(crate) fn slot_val(v: &TagValue, slot: u16) -> Val {
    match v {
        TagValue::Int(i) => Val::int(*i),
        TagValue::Float(f) => Val::float(*f),
        TagValue::Text(_) => Val::text(Ref::Slot(slot)),
        TagValue::Bool(b) => Val::bool(*b),
        TagValue::Time(t) => Val::time(*t),
        TagValue::Enum(e) => Val::member(*e),
        TagValue::List(_) => Val::list(Ref::Slot(slot)),
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
    (v.kind == Kind::Bool).then_some(v.bits != 0)
}

#[inline]
pub fn from_truth(t: Option<bool>) -> Val {
    t.map_or(Val::MISSING, Val::bool)
}

#[inline]
pub fn kleene_and(a: Val, b: Val) -> Val {
    if a.is_false() || b.is_false() {
        Val::FALSE
    } else if a.is_true() && b.is_true() {
        Val::TRUE
    } else {
        Val::MISSING
    }
}

#[inline]
pub fn kleene_or(a: Val, b: Val) -> Val {
    if a.is_true() || b.is_true() {
        Val::TRUE
    } else if a.is_false() && b.is_false() {
        Val::FALSE
    } else {
        Val::MISSING
    }
}

/// Checked arithmetic: int overflow, division by zero and non-finite floats are unknown.
/// A pending operand makes a pending result, so `is missing` on it stays undecided.
pub fn arith(op: ArithOp, a: Val, b: Val) -> Val {
    match (a.view(), b.view()) {
        (View::Pending, _) | (_, View::Pending) => Val::PENDING,
        (View::Int(x), View::Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                // Rust's integer division truncates toward zero, as the language promises.
                ArithOp::Div => x.checked_div(y),
                ArithOp::Rem => x.checked_rem(y),
            };
            r.map_or(Val::MISSING, Val::int)
        }
        (View::Int(_) | View::Float(_), View::Int(_) | View::Float(_)) => {
            let (x, y) = (as_f64(a), as_f64(b));
            let r = match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div => x / y,
                ArithOp::Rem => x % y,
            };
            if r.is_finite() {
                Val::float(r)
            } else {
                Val::MISSING
            }
        }
        _ => Val::MISSING,
    }
}

fn as_f64(v: Val) -> f64 {
    match v.view() {
        View::Int(i) => i as f64,
        View::Float(f) => f,
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
