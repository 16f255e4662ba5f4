//! The instruction set: one enum, 8 bytes per instruction.
//!
//! Owns: the meaning of each instruction. Stack values are runtime `Val`s; conditions are
//! `Bool(true)`, `Bool(false)` or `Missing` (unknown), so Kleene logic needs no separate
//! value kind (a tag not loaded yet reads as `Pending`, which every operator treats as
//! unknown too and which tells the VM to suspend). Every instruction is total: operands of an unexpected kind produce
//! `Missing`, never a panic, which is what lets the verifier stay small.
//!
//! Jumps are forward only and stay within their block; that (and rule calls forming no
//! cycle, which the verifier also checks) is why every evaluation terminates in at most
//! as many steps as the program has instructions.

use serde::{Deserialize, Serialize};

use crate::ops::CmpOp;

/// Index of a tag's value slot in a request (the tag's index in the program).
pub type Slot = u16;

// The hot loop reads one instruction per step: keep each at 8 bytes.
const _: () = assert!(std::mem::size_of::<Instr>() == 8);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instr {
    /// Push the value of tag `slot` (`Missing` when the provider had none). A tag not yet
    /// loaded pushes the `Pending` marker and is recorded as needed.
    LoadTag(Slot),
    /// Push a small int.
    PushInt(i32),
    /// Push constant `idx` of the pool.
    PushConst(u32),
    /// Push `Bool(b)`.
    PushBool(bool),
    /// Pop rhs and lhs, push the comparison (`Missing` if either is missing or they differ in kind).
    Cmp(CmpOp),
    /// Compare tag `slot` with constant `konst` without touching the stack twice.
    CmpTagConst { op: CmpOp, slot: Slot, konst: u32 },
    /// Compare tag `slot` with the int `value` held in the instruction (no pool read).
    CmpTagInt { op: CmpOp, slot: Slot, value: i32 },
    /// Compare tag `slot` with enum member `member` (members compare by declaration order).
    CmpTagEnum { op: CmpOp, slot: Slot, member: u32 },
    /// Compare tag `slot` with text constant `konst`.
    CmpTagText { op: CmpOp, slot: Slot, konst: u32 },
    /// Compare tag `slot` with float constant `konst`.
    CmpTagFloat { op: CmpOp, slot: Slot, konst: u32 },
    /// Pop high, low, value; push `low <= value <= high`.
    Between,
    /// Pop a value; push whether it is in set `set` (negated for `not in`).
    InSet { set: u32, negated: bool },
    /// Pop needle and text; push whether the text contains the needle.
    TextContains,
    /// Pop prefix and text; push whether the text starts with it.
    StartsWith,
    /// Pop suffix and text; push whether the text ends with it.
    EndsWith,
    /// Pop a text; push whether regex `idx` matches it.
    Matches(u32),
    /// Pop item and list; push whether the list contains the item.
    ListContains,
    /// Pop a list; push whether it holds any element of set `set`.
    ContainsAny(u32),
    /// Pop a list; push whether it holds every element of set `set`.
    ContainsAll(u32),
    /// Pop a list; push whether it is empty.
    IsEmpty,
    /// Pop a list; push its length.
    Len,
    /// Pop a value; push whether it is missing (`negated`: present). Never unknown, except
    /// for a tag still pending, whose presence is not known yet.
    IsMissing { negated: bool },
    /// Pop a time; push `now - t <= seconds`, seconds being constant `konst`.
    Within(u32),
    /// Pop a time; push `now - t > seconds`, seconds being constant `konst`.
    OlderThan(u32),
    /// Pop b, a; push a + b (checked; overflow is `Missing`).
    Add,
    /// Pop b, a; push a - b.
    Sub,
    /// Pop b, a; push a * b.
    Mul,
    /// Pop b, a; push a / b (ints truncate toward zero; by zero is `Missing`).
    Div,
    /// Pop b, a; push a % b (by zero is `Missing`).
    Rem,
    /// Pop a; push -a.
    Neg,
    /// Pop an int; push it as a float (for float decision fields).
    ToFloat,
    /// Pop a condition; push its Kleene negation.
    Not,
    /// If the top is `false`, jump to `target` leaving it: the `and` chain is false.
    AndJump(u32),
    /// Pop b, a; push Kleene `a and b`.
    And,
    /// `And`, then `AndJump(target)`: the middle clauses of an `and` chain in one dispatch.
    AndCheck(u32),
    /// If the top is `true`, jump to `target` leaving it: the `or` chain is true.
    OrJump(u32),
    /// Pop b, a; push Kleene `a or b`.
    Or,
    /// `Or`, then `OrJump(target)`.
    OrCheck(u32),
    /// Push the result of rule `idx`. Its body runs at most once per block evaluation; a
    /// definite result (one that read no pending tag) is kept for the rest of the request,
    /// a provisional one only until the block ends or the run suspends, so the rule runs
    /// again once its tags are supplied.
    CallRule(u32),
    /// End of a condition or rule block: the top is its result.
    Return,
    /// End of a decision block: the top `n` values are the decision's fields, in order.
    Decide(u16),
}

impl Instr {
    /// Whether the instruction ends a block.
    pub fn is_terminator(self) -> bool {
        matches!(self, Instr::Return | Instr::Decide(_))
    }

    /// Stack effect: (values popped, values pushed).
    pub fn stack_effect(self) -> (u32, u32) {
        use Instr::*;
        match self {
            LoadTag(_)
            | PushInt(_)
            | PushConst(_)
            | PushBool(_)
            | CmpTagConst { .. }
            | CmpTagInt { .. }
            | CmpTagEnum { .. }
            | CmpTagText { .. }
            | CmpTagFloat { .. }
            | CallRule(_) => (0, 1),
            Cmp(_) | TextContains | StartsWith | EndsWith | ListContains | Add | Sub | Mul | Div | Rem | And | Or
            | AndCheck(_) | OrCheck(_) => (2, 1),
            Between => (3, 1),
            InSet { .. }
            | Matches(_)
            | ContainsAny(_)
            | ContainsAll(_)
            | IsEmpty
            | Len
            | IsMissing { .. }
            | Within(_)
            | OlderThan(_)
            | Neg
            | ToFloat
            | Not => (1, 1),
            AndJump(_) | OrJump(_) => (1, 1),
            Return => (1, 0),
            Decide(n) => (u32::from(n), 0),
        }
    }

    /// The jump target, for jumps.
    pub fn target(self) -> Option<u32> {
        match self {
            Instr::AndJump(t) | Instr::OrJump(t) | Instr::AndCheck(t) | Instr::OrCheck(t) => Some(t),
            _ => None,
        }
    }
}
