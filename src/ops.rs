//! The language's operators, shared by every stage: the parser reads them, the checker
//! types them, the compiler emits them and the VM runs them, all as these same values.
//!
//! Owns: what each operator is and how it is written. Must not: know about types or values
//! (each stage gives operators their meaning in its own terms).

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
