//! The interpreter loop: runs one block of bytecode over a request.
//!
//! Owns: instruction semantics. Runs only verified programs, yet stays total: a value of an
//! unexpected kind yields `Missing`, and out-of-range reads end the block with `Missing`
//! rather than panicking. Must not: choose strategies or groups (that is `vm/mod.rs`).

use super::request::{Request, TagSlot};
use super::value::*;
use crate::compile::instr::{CmpOp, Instr};
use crate::compile::program::{Block, Const, Program};

/// What evaluating a block found out.
pub(crate) struct BlockResult {
    /// The condition's value (`Val::Missing` for decision blocks).
    pub value: Val,
    /// Whether some tag it read was not loaded yet.
    pub saw_pending: bool,
}

impl Request<'_> {
    /// Runs `block`. Condition blocks leave their result in `value`; decision blocks leave
    /// their field values in `self.outcome.values`.
    pub(crate) fn exec(&mut self, block: Block) -> BlockResult {
        let program = self.program;
        let code = &program.code;
        let pending_before = self.pending_reads;
        self.blocks_run += 1;
        self.stack.clear();
        self.frames.clear();
        let mut pc = block.start as usize;
        loop {
            let Some(&instr) = code.get(pc) else { return self.finish(Val::Missing, pending_before) };
            pc += 1;
            match instr {
                Instr::LoadTag(slot) => {
                    let v = self.load(slot);
                    self.stack.push(v);
                }
                Instr::PushInt(i) => self.stack.push(Val::Int(i64::from(i))),
                Instr::PushConst(k) => self.stack.push(const_val(program, k)),
                Instr::PushBool(b) => self.stack.push(Val::Bool(b)),
                Instr::Cmp(op) => {
                    let b = self.pop();
                    let a = self.pop();
                    let r = compare(program, &self.slots, op, a, b);
                    self.stack.push(r);
                }
                Instr::CmpTagConst { op, slot, konst } => {
                    let a = self.load(slot);
                    let r = compare(program, &self.slots, op, a, const_val(program, konst));
                    self.stack.push(r);
                }
                Instr::Between => {
                    let high = self.pop();
                    let low = self.pop();
                    let v = self.pop();
                    // One comparison: unknown if any of its three operands is unknown.
                    let ge = compare(program, &self.slots, CmpOp::Ge, v, low);
                    let le = compare(program, &self.slots, CmpOp::Le, v, high);
                    let r = if truth(ge).is_some() && truth(le).is_some() { kleene_and(ge, le) } else { Val::Missing };
                    self.stack.push(r);
                }
                Instr::InSet { set, negated } => {
                    let v = self.pop();
                    let r = match (scalar_of(program, &self.slots, v), program.sets.get(set as usize)) {
                        (Some(s), Some(set)) => Val::Bool(s.in_set(set) != negated),
                        _ => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::TextContains | Instr::StartsWith | Instr::EndsWith => {
                    let b = self.pop();
                    let a = self.pop();
                    let r = match (text(program, &self.slots, a), text(program, &self.slots, b)) {
                        (Some(a), Some(b)) => Val::Bool(match instr {
                            Instr::TextContains => a.contains(b),
                            Instr::StartsWith => a.starts_with(b),
                            _ => a.ends_with(b),
                        }),
                        _ => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::Matches(idx) => {
                    let v = self.pop();
                    let r = match (text(program, &self.slots, v), program.regexes.get(idx as usize)) {
                        (Some(t), Some(re)) => Val::Bool(re.is_match(t)),
                        _ => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::ListContains => {
                    let item = self.pop();
                    let list = self.pop();
                    let r = match scalar_of(program, &self.slots, item) {
                        Some(item) => list_any(program, &self.slots, list, |e| e.equals(item)),
                        None => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::ContainsAny(set) => {
                    let list = self.pop();
                    let r = match program.sets.get(set as usize) {
                        Some(set) => list_any(program, &self.slots, list, |e| e.in_set(set)),
                        None => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::ContainsAll(set) => {
                    let list = self.pop();
                    let r = match program.sets.get(set as usize) {
                        Some(set) => contains_all(program, &self.slots, list, set),
                        None => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::IsEmpty => {
                    let list = self.pop();
                    let r = list_len(program, &self.slots, list).map_or(Val::Missing, |n| Val::Bool(n == 0));
                    self.stack.push(r);
                }
                Instr::Len => {
                    let list = self.pop();
                    let r = match list {
                        Val::Pending => Val::Pending,
                        _ => list_len(program, &self.slots, list).map_or(Val::Missing, |n| Val::Int(n as i64)),
                    };
                    self.stack.push(r);
                }
                Instr::IsMissing { negated } => {
                    let r = match self.pop() {
                        // Not loaded yet: whether it is missing is not known.
                        Val::Pending => Val::Missing,
                        Val::Missing => Val::Bool(!negated),
                        _ => Val::Bool(negated),
                    };
                    self.stack.push(r);
                }
                Instr::Within(k) | Instr::OlderThan(k) => {
                    let v = self.pop();
                    let seconds = match program.consts.get(k as usize) {
                        Some(Const::Seconds(s)) => Some(*s),
                        _ => None,
                    };
                    let r = match (v, seconds) {
                        (Val::Time(t), Some(s)) => match self.current_time().checked_sub(t) {
                            Some(age) => Val::Bool(if matches!(instr, Instr::Within(_)) { age <= s } else { age > s }),
                            None => Val::Missing,
                        },
                        _ => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::Add | Instr::Sub | Instr::Mul | Instr::Div | Instr::Rem => {
                    let b = self.pop();
                    let a = self.pop();
                    let op = match instr {
                        Instr::Add => ArithOp::Add,
                        Instr::Sub => ArithOp::Sub,
                        Instr::Mul => ArithOp::Mul,
                        Instr::Div => ArithOp::Div,
                        _ => ArithOp::Rem,
                    };
                    self.stack.push(arith(op, a, b));
                }
                Instr::Neg => {
                    let r = match self.pop() {
                        Val::Int(i) => i.checked_neg().map_or(Val::Missing, Val::Int),
                        Val::Float(f) => Val::Float(-f),
                        Val::Pending => Val::Pending,
                        _ => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::ToFloat => {
                    let r = match self.pop() {
                        Val::Int(i) => Val::Float(i as f64),
                        v @ (Val::Float(_) | Val::Pending) => v,
                        _ => Val::Missing,
                    };
                    self.stack.push(r);
                }
                Instr::Not => {
                    let r = from_truth(truth(self.pop()).map(|b| !b));
                    self.stack.push(r);
                }
                Instr::AndJump(target) => {
                    if self.stack.last() == Some(&Val::Bool(false)) {
                        pc = target as usize;
                    }
                }
                Instr::OrJump(target) => {
                    if self.stack.last() == Some(&Val::Bool(true)) {
                        pc = target as usize;
                    }
                }
                Instr::And => {
                    let b = self.pop();
                    let a = self.pop();
                    self.stack.push(kleene_and(a, b));
                }
                Instr::Or => {
                    let b = self.pop();
                    let a = self.pop();
                    self.stack.push(kleene_or(a, b));
                }
                Instr::CallRule(rule) => match self.rule_cache.get(rule as usize).copied() {
                    Some(0) => match program.rules.get(rule as usize) {
                        Some(info) => {
                            self.blocks_run += 1;
                            self.frames.push((pc as u32, rule, self.pending_reads));
                            pc = info.block.start as usize;
                        }
                        None => self.stack.push(Val::Missing),
                    },
                    Some(cached) => self.stack.push(match cached {
                        1 => Val::Bool(false),
                        2 => Val::Bool(true),
                        _ => Val::Missing,
                    }),
                    None => self.stack.push(Val::Missing),
                },
                Instr::Return => match self.frames.pop() {
                    Some((ret, rule, pending_at_call)) => {
                        let result = self.stack.last().copied().unwrap_or(Val::Missing);
                        // A result that read no tag still pending is final; one that did may
                        // change once the tag arrives (even a tag another clause asked for).
                        if self.pending_reads == pending_at_call {
                            self.rule_cache[rule as usize] = match truth(result) {
                                Some(false) => 1,
                                Some(true) => 2,
                                None => 3,
                            };
                            if let Some(trace) = &mut self.trace {
                                trace.push(super::TraceEvent::Rule { rule, result: Kleene::from(result) });
                            }
                        }
                        pc = ret as usize;
                    }
                    None => {
                        let result = self.pop();
                        return self.finish(result, pending_before);
                    }
                },
                Instr::Decide(n) => {
                    let n = usize::from(n).min(self.stack.len());
                    let from = self.stack.len() - n;
                    self.outcome.values.clear();
                    self.outcome.values.extend_from_slice(&self.stack[from..]);
                    return self.finish(Val::Missing, pending_before);
                }
            }
        }
    }

    fn finish(&mut self, value: Val, pending_before: u32) -> BlockResult {
        self.stack.clear();
        self.frames.clear();
        BlockResult { value, saw_pending: self.pending_reads > pending_before }
    }

    #[inline]
    fn pop(&mut self) -> Val {
        self.stack.pop().unwrap_or(Val::Missing)
    }

    /// The value of tag `slot`; records it as needed when it is not loaded yet.
    #[inline]
    fn load(&mut self, slot: u16) -> Val {
        let Some(&v) = self.vals.get(usize::from(slot)) else { return Val::Missing };
        if matches!(v, Val::Pending) {
            self.note_pending(slot);
        } else if self.trace.is_some() {
            self.trace_tag(slot);
        }
        v
    }

    #[cold]
    fn note_pending(&mut self, slot: u16) {
        self.pending_reads += 1;
        let s = &mut self.slots[usize::from(slot)];
        if !s.needed {
            s.needed = true;
            self.pending.push(slot);
        }
    }

    #[cold]
    fn trace_tag(&mut self, slot: u16) {
        if let (Some(trace), Some(s)) = (&mut self.trace, self.slots.get_mut(usize::from(slot))) {
            trace_read(trace, s, slot);
        }
    }
}

fn trace_read(trace: &mut Vec<super::TraceEvent>, s: &mut TagSlot, slot: u16) {
    if !s.traced {
        s.traced = true;
        trace.push(super::TraceEvent::Tag { tag: u32::from(slot) });
    }
}

#[inline]
pub(crate) fn const_val(p: &Program, k: u32) -> Val {
    match p.consts.get(k as usize) {
        Some(Const::Int(i)) => Val::Int(*i),
        Some(Const::Float(f)) => Val::Float(*f),
        Some(Const::Text(_)) => Val::Text(Ref::Const(k)),
        Some(Const::Bool(b)) => Val::Bool(*b),
        Some(Const::Time(t)) => Val::Time(*t),
        Some(Const::Enum(e)) => Val::Enum(*e),
        Some(Const::List(_)) => Val::List(Ref::Const(k)),
        Some(Const::Seconds(_)) | None => Val::Missing,
    }
}

pub(crate) fn text<'a>(p: &'a Program, slots: &'a [TagSlot], v: Val) -> Option<&'a str> {
    match v {
        Val::Text(Ref::Const(k)) => match p.consts.get(k as usize)? {
            Const::Text(s) => Some(s),
            _ => None,
        },
        Val::Text(Ref::Slot(s)) => match &slots.get(usize::from(s))?.value {
            TagValue::Text(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn scalar_of<'a>(p: &'a Program, slots: &'a [TagSlot], v: Val) -> Option<ScalarRef<'a>> {
    Some(match v {
        Val::Int(i) => ScalarRef::Int(i),
        Val::Float(f) => ScalarRef::Float(f),
        Val::Bool(b) => ScalarRef::Bool(b),
        Val::Time(t) => ScalarRef::Time(t),
        Val::Enum(e) => ScalarRef::Enum(e),
        Val::Text(_) => ScalarRef::Text(text(p, slots, v)?),
        Val::Missing | Val::Pending | Val::List(_) => return None,
    })
}

/// Calls `f` on each element of a list value; `None` when `v` is not a list.
fn for_each_elem<'a>(
    p: &'a Program,
    slots: &'a [TagSlot],
    v: Val,
    mut f: impl FnMut(ScalarRef<'a>) -> bool,
) -> Option<bool> {
    match v {
        Val::List(Ref::Slot(s)) => match &slots.get(usize::from(s))?.value {
            TagValue::List(items) => Some(items.iter().any(|i| f(i.as_ref()))),
            _ => None,
        },
        Val::List(Ref::Const(k)) => match p.consts.get(k as usize)? {
            Const::List(items) => Some(items.iter().map(ScalarRef::from_item).any(f)),
            _ => None,
        },
        _ => None,
    }
}

fn list_any<'a>(p: &'a Program, slots: &'a [TagSlot], v: Val, f: impl FnMut(ScalarRef<'a>) -> bool) -> Val {
    for_each_elem(p, slots, v, f).map_or(Val::Missing, Val::Bool)
}

fn list_len(p: &Program, slots: &[TagSlot], v: Val) -> Option<usize> {
    match v {
        Val::List(Ref::Slot(s)) => match &slots.get(usize::from(s))?.value {
            TagValue::List(items) => Some(items.len()),
            _ => None,
        },
        Val::List(Ref::Const(k)) => match p.consts.get(k as usize)? {
            Const::List(items) => Some(items.len()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the list holds every element of `set`.
fn contains_all(p: &Program, slots: &[TagSlot], v: Val, set: &crate::compile::program::ConstSet) -> Val {
    let has = |target: ScalarRef<'_>| for_each_elem(p, slots, v, |e| e.equals(target));
    if list_len(p, slots, v).is_none() {
        return Val::Missing;
    }
    let all = set.ints.iter().all(|&i| {
        has(ScalarRef::Int(i)) == Some(true)
            || has(ScalarRef::Time(i)) == Some(true)
            || has(ScalarRef::Bool(i != 0)) == Some(true)
    }) && set.floats.iter().all(|&f| has(ScalarRef::Float(f)) == Some(true))
        && set.texts.iter().all(|t| has(ScalarRef::Text(t)) == Some(true))
        && set.enums.iter().all(|&e| has(ScalarRef::Enum(e)) == Some(true));
    Val::Bool(all)
}

/// Compares two values; unknown when either is missing or their kinds do not compare.
pub(crate) fn compare(p: &Program, slots: &[TagSlot], op: CmpOp, a: Val, b: Val) -> Val {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Val::Int(x), Val::Int(y)) | (Val::Time(x), Val::Time(y)) => Some(x.cmp(&y)),
        (Val::Float(x), Val::Float(y)) => x.partial_cmp(&y),
        (Val::Int(i), Val::Float(f)) => cmp_int_float(i, f),
        (Val::Float(f), Val::Int(i)) => cmp_int_float(i, f).map(Ordering::reverse),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(&y)),
        (Val::Enum(x), Val::Enum(y)) => Some(x.cmp(&y)),
        (Val::Text(_), Val::Text(_)) => match (text(p, slots, a), text(p, slots, b)) {
            (Some(x), Some(y)) => Some(x.cmp(y)),
            _ => None,
        },
        _ => None,
    };
    match ord {
        None => Val::Missing,
        Some(o) => Val::Bool(match op {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        }),
    }
}
