//! The language's operators, shared by every stage: the parser reads them, the checker
//! types them, the compiler emits them and the VM runs them, all as these same values.
//!
//! Owns: what each operator is and how it is written, and the small plain values outreach
//! declarations carry unchanged from the checker to the runtime (aggregates, caps, quiet
//! hours, budgets, the reach fields). Must not: know about types or values (each stage
//! gives operators their meaning in its own terms).

use serde::{Deserialize, Serialize};

/// A comparison: `== != < <= > >=`. One byte, so instructions that carry one stay small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

const _: () = assert!(std::mem::size_of::<CmpOp>() == 1);

impl CmpOp {
    /// Whether the comparison holds for operands ordered `ord`.
    #[inline]
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        // Bit i of the mask: whether the comparison holds for ordering i - 1 (Less = -1).
        // A table lookup and a shift, where a `match` on both was a jump table.
        const MASKS: [u8; 6] = [0b010, 0b101, 0b001, 0b011, 0b100, 0b110];
        (MASKS[self as usize] >> (ord as i8 + 1)) & 1 == 1
    }

    /// The operator with its operands swapped: `3 < x` is `x > 3`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Arithmetic in decision values: `+ - * / %`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

// ---------------------------------------------------------------------------------------
// Outreach: the aggregates of window tags and what channels and actions declare
// ---------------------------------------------------------------------------------------

/// A reach instance's decision carries these fields first, then the payload's: the
/// channel's name (empty for the control group `none`), the action's name (empty for
/// `none`), and the dedup window in seconds (0: none). Their names hold a dot, which no
/// written field name can, so they never collide with the payload.
pub const REACH_FIELDS: [&str; 3] = ["reach.channel", "reach.action", "reach.dedup"];

/// A window tag's aggregate over the events in its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregate {
    Count,
    Sum,
    Min,
    Max,
    Last,
    Distinct,
}

impl Aggregate {
    pub const ALL: [(&'static str, Aggregate); 6] = [
        ("count", Aggregate::Count),
        ("sum", Aggregate::Sum),
        ("min", Aggregate::Min),
        ("max", Aggregate::Max),
        ("last", Aggregate::Last),
        ("distinct", Aggregate::Distinct),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, a)| *a == self).map_or("count", |(n, _)| n)
    }
}

/// The trigger's side of a fan-out match `FIELD == event.X`: a field of the triggering
/// event (its index among the event's fields) or the triggering event's key (its unit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FanoutValue {
    Field(u32),
    Key,
}

/// `cap N per D`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub count: u32,
    pub per_seconds: i64,
}

/// `quiet HH:MM..HH:MM [hold | drop]`, minutes after local midnight; `from > to` wraps
/// around midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub from_minute: u32,
    pub to_minute: u32,
    pub drop: bool,
}

/// `budget N` (count of sent reaches) or `budget N of FIELD` (sum of an int payload field).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub amount: i64,
    pub field: Option<String>,
}
