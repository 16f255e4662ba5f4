//! Types, constants and the operator table: which operators each field type allows.
//!
//! This table is the single source of truth for operator checks and for the
//! "allowed operators" list in diagnostics; `docs/language.md` mirrors it.

use std::fmt;

use crate::ops::CmpOp;
use crate::syntax::ast::PredOp;

/// Index of an enum definition in [`super::typed::Deck::enums`].
pub type EnumId = u32;

/// A field type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Int,
    Float,
    Text,
    Bool,
    Time,
    /// Only duration literals have this type; no tag or field does.
    Duration,
    Enum(EnumId),
    List(Box<Type>),
}

impl Type {
    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Float)
    }

    /// Whether a value of this type may be stored where `target` is expected
    /// (the same type, or an int where a float is expected).
    pub fn assignable_to(&self, target: &Type) -> bool {
        match (self, target) {
            (Type::Int, Type::Float) => true,
            (Type::List(a), Type::List(b)) => a.assignable_to(b),
            (a, b) => a == b,
        }
    }

    /// Whether `==`/`!=` can compare the two (numbers compare across int and float).
    pub fn comparable_with(&self, other: &Type) -> bool {
        (self.is_numeric() && other.is_numeric()) || self == other
    }

    /// The operators (after a value) that this type allows, in the order docs list them.
    pub fn allowed_ops(&self) -> &'static [PredOp] {
        use PredOp::*;
        // The comparisons, spelled short for the lists below.
        const EQ: PredOp = Cmp(CmpOp::Eq);
        const NE: PredOp = Cmp(CmpOp::Ne);
        const LT: PredOp = Cmp(CmpOp::Lt);
        const LE: PredOp = Cmp(CmpOp::Le);
        const GT: PredOp = Cmp(CmpOp::Gt);
        const GE: PredOp = Cmp(CmpOp::Ge);
        match self {
            Type::Int | Type::Float => &[EQ, NE, LT, LE, GT, GE, Between, In, NotIn, IsMissing, IsPresent],
            Type::Text => {
                &[EQ, NE, In, NotIn, Contains, NotContains, StartsWith, EndsWith, Matches, IsMissing, IsPresent]
            }
            Type::Enum(_) => &[EQ, NE, In, NotIn, IsMissing, IsPresent],
            Type::Bool => &[EQ, NE, IsMissing, IsPresent],
            Type::List(_) => &[Contains, NotContains, ContainsAny, ContainsAll, IsEmpty, IsMissing, IsPresent],
            Type::Time => &[Before, After, Within, OlderThan, IsMissing, IsPresent],
            Type::Duration => &[],
        }
    }

    pub fn allows(&self, op: PredOp) -> bool {
        self.allowed_ops().contains(&op)
    }

    /// "`int` allows: == != < …", for diagnostics.
    pub fn allowed_ops_text(&self) -> String {
        let mut ops: Vec<&str> = self.allowed_ops().iter().map(|op| op.as_str()).collect();
        match self {
            Type::Int | Type::Float => ops.push("arithmetic + - * / %"),
            Type::Bool => ops.insert(0, "bare use and `not`"),
            Type::List(_) => ops.push("len(…)"),
            _ => {}
        }
        if ops.is_empty() {
            return "no operators: durations are only arguments of `within` and `older than`".into();
        }
        ops.join(", ")
    }
}

/// Renders types without enum member lists; [`TypeDisplay`] adds them.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int => f.write_str("int"),
            Type::Float => f.write_str("float"),
            Type::Text => f.write_str("text"),
            Type::Bool => f.write_str("bool"),
            Type::Time => f.write_str("time"),
            Type::Duration => f.write_str("duration"),
            Type::Enum(_) => f.write_str("enum"),
            Type::List(t) => write!(f, "list<{t}>"),
        }
    }
}

/// A type shown with its enum members: `enum(app, h5, mini)`.
pub struct TypeDisplay<'a> {
    pub ty: &'a Type,
    pub enums: &'a [EnumDef],
}

impl fmt::Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            Type::Enum(id) => {
                let members = &self.enums[*id as usize].members;
                let shown: Vec<&str> = members.iter().take(6).map(String::as_str).collect();
                let more = if members.len() > 6 { ", …" } else { "" };
                write!(f, "enum({}{more})", shown.join(", "))
            }
            Type::List(t) => write!(f, "list<{}>", TypeDisplay { ty: t, enums: self.enums }),
            other => write!(f, "{other}"),
        }
    }
}

/// An enum type's members, in declaration order; values are member indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumDef {
    pub members: Vec<String>,
}

/// A constant value, fully typed by the [`super::typed::Value`] holding it.
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// Seconds since the Unix epoch, UTC.
    Time(i64),
    /// Seconds.
    Duration(i64),
    /// Index into the enum's members.
    Enum(u32),
    List(Vec<Const>),
}
