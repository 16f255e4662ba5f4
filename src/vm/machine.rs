//! The interpreter loop: runs one block of bytecode over a request.
//!
//! Owns: instruction semantics. Runs only verified programs, yet stays total: a value of an
//! unexpected kind yields `Missing`, and out-of-range reads end the block with `Missing`
//! rather than panicking. Must not: choose strategies or groups (that is `vm/mod.rs`).

use std::cmp::Ordering;

use super::plan::{Atom, Cond, When};
use super::request::{Request, TagSlot, PROVISIONAL, RULE_STATE_BITS};
use super::value::*;
use crate::compile::instr::Instr;
use crate::compile::program::{Block, Const, Program, Scalar};
use crate::ops::{ArithOp, CmpOp};

/// What evaluating a block found out.
pub(crate) struct BlockResult {
    /// The condition's value (`Val::MISSING` for decision blocks).
    pub value: Val,
    /// Whether some tag it read was not loaded yet.
    pub saw_pending: bool,
}

/// A rule call in progress: where to return, which rule, and the pending-read count when
/// it started (a result that saw no new pending read is final and cached).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    ret: u32,
    rule: u32,
    pending_at_call: u32,
}

impl Request<'_> {
    /// Runs `block` in the interpreter. Condition blocks leave their result in `value`;
    /// decision blocks leave their field values in `self.outcome.values`. (Blocks that are
    /// one tag comparison, set test or pair of them are planned as a [`Cond`] and never
    /// come here.)
    #[inline(never)]
    pub(crate) fn exec(&mut self, block: Block) -> BlockResult {
        let pending_before = self.pending_reads;
        self.blocks_run += 1;
        let value = self.interpret(block.start as usize);
        // Empty already unless the block was cut short.
        self.frames.clear();
        BlockResult { value, saw_pending: self.pending_reads > pending_before }
    }

    /// Evaluates a planned condition: a lone tag comparison, set test or pair of them
    /// without the interpreter (the same evaluation as inside the loop, counted as a block
    /// entered), or a block.
    #[inline(always)]
    fn cond(&mut self, cond: Cond) -> BlockResult {
        let pending_before = self.pending_reads;
        let value = match cond {
            Cond::Block(block) => return self.exec(block),
            Cond::Compare(instr) => {
                self.blocks_run += 1;
                self.compare_tag(instr).unwrap_or(Val::MISSING)
            }
            Cond::TagInSet { slot, set, negated } => {
                self.blocks_run += 1;
                let v = self.load(slot);
                in_set(self.program, &self.slots, v, set, negated)
            }
            Cond::Pair { first, second, or } => {
                self.blocks_run += 1;
                let a = self.atom(first);
                match or {
                    false if a.is_false() => a,
                    true if a.is_true() => a,
                    false => kleene_and(a, self.atom(second)),
                    true => kleene_or(a, self.atom(second)),
                }
            }
        };
        BlockResult { value, saw_pending: self.pending_reads > pending_before }
    }

    /// One side of a [`Cond::Pair`]: what the interpreter pushes for its instruction.
    #[inline(always)]
    fn atom(&mut self, atom: Atom) -> Val {
        match atom {
            Atom::Compare(instr) => self.compare_tag(instr).unwrap_or(Val::MISSING),
            Atom::Rule(rule) => match self.cached_rule(rule) {
                Some(v) => v,
                None => self.leaf_rule(rule),
            },
        }
    }

    /// Runs a rule not in the cache whose body is planned as one comparison or set test,
    /// and caches its result: what `CallRule` does for it, without a call frame.
    #[inline(never)]
    fn leaf_rule(&mut self, rule: u32) -> Val {
        let r = match self.program.plans.rules.get(rule as usize) {
            Some(&leaf @ (Cond::Compare(_) | Cond::TagInSet { .. })) => self.cond(leaf),
            // Only leaves are planned as atoms or come here from `CallRule`.
            _ => return Val::MISSING,
        };
        self.cache_rule(rule, r.value, r.saw_pending);
        r.value
    }

    /// Evaluates a compare-tag-with-constant instruction; `None` for any other instruction.
    #[inline(always)]
    fn compare_tag(&mut self, instr: Instr) -> Option<Val> {
        Some(self.compare_loaded(compared_slot(instr)?, instr))
    }

    /// Loads tag `slot` and applies the compare-tag-with-constant instruction `instr` to it.
    #[inline(always)]
    fn compare_loaded(&mut self, slot: u16, instr: Instr) -> Val {
        let a = self.load(slot);
        compare_with(self.program, &self.slots, instr, a)
    }

    /// Evaluates a planned `when`. The common shape, a `when` naming one rule, runs the
    /// rule's body directly: same result, cache and trace as the `CallRule` it holds, one
    /// block entry instead of two.
    #[inline(always)]
    pub(crate) fn condition(&mut self, when: When) -> BlockResult {
        match when {
            When::Always => BlockResult { value: Val::TRUE, saw_pending: false },
            When::Rule(rule) => self.rule_result(rule),
            When::Cond(cond) => self.cond(cond),
        }
    }

    #[inline(always)]
    fn rule_result(&mut self, rule: u32) -> BlockResult {
        let pending_before = self.pending_reads;
        match self.cached_rule(rule) {
            // A provisional hit counts as a pending read, so it reports `saw_pending` too.
            Some(value) => BlockResult { value, saw_pending: self.pending_reads > pending_before },
            None => match self.program.plans.rules.get(rule as usize) {
                Some(&cond) => {
                    let r = self.cond(cond);
                    self.cache_rule(rule, r.value, r.saw_pending);
                    r
                }
                None => BlockResult { value: Val::MISSING, saw_pending: false },
            },
        }
    }

    /// The interpreter loop. The stack is a fixed buffer sized by the verifier with the top
    /// value kept in `top` (a register, not memory): the logical stack is `stack[1..sp]`
    /// followed by `top`, and `stack[0]` holds whatever `top` was before the first push.
    /// Every access is checked, so even a program that slipped past the verifier ends the
    /// block with `Missing` instead of panicking.
    #[inline(never)]
    fn interpret(&mut self, mut pc: usize) -> Val {
        let program = self.program;
        let code = &program.code[..];
        let mut sp = 0usize;
        let mut top = Val::MISSING;
        macro_rules! push {
            ($v:expr) => {{
                let v = $v;
                let Some(cell) = self.stack.get_mut(sp) else { return Val::MISSING };
                *cell = top;
                sp += 1;
                top = v;
            }};
        }
        // Removes and returns the value under `top`.
        macro_rules! pop {
            () => {{
                let Some(below) = sp.checked_sub(1) else { return Val::MISSING };
                sp = below;
                match self.stack.get(below) {
                    Some(&v) => v,
                    None => return Val::MISSING,
                }
            }};
        }
        loop {
            let Some(&instr) = code.get(pc) else { return Val::MISSING };
            pc += 1;
            match instr {
                Instr::LoadTag(slot) => push!(self.load(slot)),
                Instr::PushInt(i) => push!(Val::int(i64::from(i))),
                Instr::PushConst(k) => push!(const_val(program, k)),
                Instr::PushBool(b) => push!(Val::bool(b)),
                Instr::Cmp(_) => {
                    let a = pop!();
                    top = binary(program, &self.slots, instr, a, top);
                }
                // One arm each, so that the instruction is decoded once: `compare_with` is
                // inlined into each arm and folds to that arm's case.
                Instr::CmpTagConst { slot, .. } => push!(self.compare_loaded(slot, instr)),
                Instr::CmpTagInt { slot, .. } => push!(self.compare_loaded(slot, instr)),
                Instr::CmpTagEnum { slot, .. } => push!(self.compare_loaded(slot, instr)),
                Instr::CmpTagFloat { slot, .. } => push!(self.compare_loaded(slot, instr)),
                Instr::CmpTagText { slot, .. } => push!(self.compare_loaded(slot, instr)),
                Instr::Between => {
                    let (high, low) = (top, pop!());
                    let v = pop!();
                    top = between(program, &self.slots, v, low, high);
                }
                // One arm per shape, so that each instruction is decoded once: `unary` and
                // `binary` are inlined into each arm and fold to that arm's cases.
                Instr::InSet { .. }
                | Instr::Matches(_)
                | Instr::ContainsAny(_)
                | Instr::ContainsAll(_)
                | Instr::IsEmpty
                | Instr::Len
                | Instr::IsMissing { .. }
                | Instr::Neg
                | Instr::ToFloat => top = unary(program, &self.slots, instr, top),
                Instr::TextContains | Instr::StartsWith | Instr::EndsWith | Instr::ListContains => {
                    let a = pop!();
                    top = binary(program, &self.slots, instr, a, top);
                }
                Instr::Within(_) | Instr::OlderThan(_) => top = self.age_test(instr, top),
                Instr::Add | Instr::Sub | Instr::Mul | Instr::Div | Instr::Rem => {
                    let a = pop!();
                    top = binary(program, &self.slots, instr, a, top);
                }
                Instr::Not => top = unary(program, &self.slots, instr, top),
                Instr::AndJump(target) => {
                    if top.is_false() {
                        pc = target as usize;
                    }
                }
                Instr::OrJump(target) => {
                    if top.is_true() {
                        pc = target as usize;
                    }
                }
                Instr::And => {
                    let a = pop!();
                    top = kleene_and(a, top);
                }
                Instr::AndCheck(target) => {
                    let a = pop!();
                    top = kleene_and(a, top);
                    if top.is_false() {
                        pc = target as usize;
                    }
                }
                Instr::Or => {
                    let a = pop!();
                    top = kleene_or(a, top);
                }
                Instr::OrCheck(target) => {
                    let a = pop!();
                    top = kleene_or(a, top);
                    if top.is_true() {
                        pc = target as usize;
                    }
                }
                Instr::CallRule(rule) => match self.cached_rule(rule) {
                    Some(result) => push!(result),
                    None => match program.plans.rules.get(rule as usize) {
                        // A rule that is one tag comparison or set test: no call frame.
                        Some(Cond::Compare(_) | Cond::TagInSet { .. }) => push!(self.leaf_rule(rule)),
                        Some(_) => match program.rules.get(rule as usize) {
                            Some(info) => {
                                self.blocks_run += 1;
                                self.frames.push(Frame { ret: pc as u32, rule, pending_at_call: self.pending_reads });
                                pc = info.block.start as usize;
                            }
                            None => push!(Val::MISSING),
                        },
                        None => push!(Val::MISSING),
                    },
                },
                // The callee ran on top of the caller's stack and left exactly its result
                // (the verifier checks each block ends at depth 1), so `top` is the value
                // the call pushes.
                Instr::Return => match self.frames.pop() {
                    Some(frame) => {
                        // A result that read no tag still pending is final; one that did may
                        // change once the tag arrives (even a tag another clause asked for),
                        // so it is kept only until then.
                        self.cache_rule(frame.rule, top, self.pending_reads != frame.pending_at_call);
                        pc = frame.ret as usize;
                    }
                    None => return top,
                },
                Instr::Decide(n) => {
                    let n = usize::from(n).min(sp);
                    let values = &mut self.outcome.values;
                    values.clear();
                    if n > 0 {
                        // Field by field: decisions are a few values, shorter than a memcpy call.
                        for i in sp + 1 - n..sp {
                            values.push(self.stack.get(i).copied().unwrap_or(Val::MISSING));
                        }
                        values.push(top);
                    }
                    return Val::MISSING;
                }
            }
        }
    }

    /// `within` / `older than`: compares the age of a time with the instruction's seconds.
    #[inline(never)]
    pub(super) fn age_test(&mut self, instr: Instr, v: Val) -> Val {
        let (Instr::Within(k) | Instr::OlderThan(k)) = instr else { return Val::MISSING };
        let seconds = match self.program.consts.get(k as usize) {
            Some(Const::Seconds(s)) => *s,
            _ => return Val::MISSING,
        };
        let View::Time(t) = v.view() else { return Val::MISSING };
        match self.current_time().checked_sub(t) {
            Some(age) => Val::bool(if matches!(instr, Instr::Within(_)) { age <= seconds } else { age > seconds }),
            None => Val::MISSING,
        }
    }

    /// A rule's result if it was already computed this evaluation (`Missing` for a rule index
    /// out of range); `None` if it still has to run. A provisional result (one that read a
    /// tag still pending) counts as a pending read again, so whatever uses it is provisional
    /// too and is never cached as final.
    #[inline(always)]
    pub(super) fn cached_rule(&mut self, rule: u32) -> Option<Val> {
        let Some(&entry) = self.rule_cache.get(rule as usize) else { return Some(Val::MISSING) };
        if entry >> RULE_STATE_BITS != self.rule_epoch {
            return None;
        }
        if entry & PROVISIONAL != 0 {
            self.pending_reads += 1;
        }
        Some(match entry & 3 {
            1 => Val::FALSE,
            2 => Val::TRUE,
            _ => Val::MISSING,
        })
    }

    /// Records a rule's result for the rest of the request, or, when `provisional`, until
    /// the tags now pending are supplied (see [`Request::release_pending`]). Either way a
    /// rule body runs at most once per evaluation of a block, which keeps shared rule DAGs
    /// linear: `r1 = r0 and r0`, `r2 = r1 and r1`, … would otherwise double at every level.
    #[inline(always)]
    pub(super) fn cache_rule(&mut self, rule: u32, result: Val, provisional: bool) {
        let state = match truth(result) {
            Some(false) => 1,
            Some(true) => 2,
            None => 3,
        };
        let Some(cached) = self.rule_cache.get_mut(rule as usize) else { return };
        *cached = self.rule_epoch << RULE_STATE_BITS | state;
        if provisional {
            *cached |= PROVISIONAL;
            self.provisional_rules.push(rule);
        } else if let Some(trace) = &mut self.trace {
            trace.push(super::TraceEvent::Rule { rule, result: Kleene::from(result) });
        }
    }

    /// The value of tag `slot`; records it as needed when it is not loaded yet.
    #[inline(always)]
    fn load(&mut self, slot: u16) -> Val {
        let Some(&v) = self.vals.get(usize::from(slot)) else { return Val::MISSING };
        if v.is_pending() {
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

/// The tag a compare-tag-with-constant instruction reads; `None` for any other instruction.
#[inline(always)]
pub(super) fn compared_slot(instr: Instr) -> Option<u16> {
    match instr {
        Instr::CmpTagConst { slot, .. }
        | Instr::CmpTagInt { slot, .. }
        | Instr::CmpTagEnum { slot, .. }
        | Instr::CmpTagFloat { slot, .. }
        | Instr::CmpTagText { slot, .. } => Some(slot),
        _ => None,
    }
}

/// A compare-tag-with-constant instruction applied to its tag's value `a`.
#[inline(always)]
pub(super) fn compare_with(p: &Program, slots: &[TagSlot], instr: Instr, a: Val) -> Val {
    match instr {
        Instr::CmpTagConst { op, konst, .. } => compare(p, slots, op, a, const_val(p, konst)),
        Instr::CmpTagInt { op, value, .. } => {
            let ord = match a.view() {
                View::Int(x) => Some(x.cmp(&i64::from(value))),
                View::Float(f) => cmp_int_float(i64::from(value), f).map(Ordering::reverse),
                _ => None,
            };
            holds(op, ord)
        }
        Instr::CmpTagEnum { op, member, .. } => {
            let ord = match a.view() {
                View::Enum(x) => Some(x.cmp(&member)),
                _ => None,
            };
            holds(op, ord)
        }
        Instr::CmpTagFloat { op, konst, .. } => {
            let ord = match (a.view(), p.consts.get(konst as usize)) {
                (View::Float(x), Some(Const::Float(y))) => x.partial_cmp(y),
                (View::Int(i), Some(Const::Float(y))) => cmp_int_float(i, *y),
                _ => None,
            };
            holds(op, ord)
        }
        Instr::CmpTagText { op, konst, .. } => match (text(p, slots, a), p.consts.get(konst as usize)) {
            (Some(x), Some(Const::Text(y))) => compare_texts(op, x, y),
            _ => Val::MISSING,
        },
        _ => Val::MISSING,
    }
}

/// What a one-operand instruction (`Not` and the ones [`unary`] names) leaves for `a`.
#[inline(always)]
pub(super) fn unary(p: &Program, slots: &[TagSlot], instr: Instr, a: Val) -> Val {
    match instr {
        Instr::InSet { set, negated } => in_set(p, slots, a, set, negated),
        Instr::Matches(idx) => regex_match(p, slots, a, idx),
        Instr::ContainsAny(_) | Instr::ContainsAll(_) => list_test(p, slots, instr, a, Val::MISSING),
        Instr::IsEmpty => list_len(p, slots, a).map_or(Val::MISSING, |n| Val::bool(n == 0)),
        Instr::Len => match a.view() {
            View::Pending => Val::PENDING,
            _ => list_len(p, slots, a).map_or(Val::MISSING, |n| Val::int(n as i64)),
        },
        Instr::IsMissing { negated } => match a.view() {
            // Not loaded yet: whether it is missing is not known.
            View::Pending => Val::MISSING,
            View::Missing => Val::bool(!negated),
            _ => Val::bool(negated),
        },
        Instr::Neg => match a.view() {
            View::Int(i) => i.checked_neg().map_or(Val::MISSING, Val::int),
            View::Float(f) => Val::float(-f),
            View::Pending => Val::PENDING,
            _ => Val::MISSING,
        },
        Instr::ToFloat => match a.view() {
            View::Int(i) => Val::float(i as f64),
            View::Float(_) | View::Pending => a,
            _ => Val::MISSING,
        },
        Instr::Not => from_truth(truth(a).map(|b| !b)),
        _ => Val::MISSING,
    }
}

/// What a two-operand instruction without jumps leaves for `a` (pushed first) and `b`.
#[inline(always)]
pub(super) fn binary(p: &Program, slots: &[TagSlot], instr: Instr, a: Val, b: Val) -> Val {
    match instr {
        Instr::Cmp(op) => compare(p, slots, op, a, b),
        Instr::TextContains | Instr::StartsWith | Instr::EndsWith => text_test(p, slots, instr, a, b),
        Instr::ListContains => list_test(p, slots, instr, a, b),
        Instr::Add => arith(ArithOp::Add, a, b),
        Instr::Sub => arith(ArithOp::Sub, a, b),
        Instr::Mul => arith(ArithOp::Mul, a, b),
        Instr::Div => arith(ArithOp::Div, a, b),
        Instr::Rem => arith(ArithOp::Rem, a, b),
        Instr::And => kleene_and(a, b),
        Instr::Or => kleene_or(a, b),
        _ => Val::MISSING,
    }
}

/// `v between low and high`: one comparison, unknown if any of its three operands is.
#[inline]
pub(super) fn between(p: &Program, slots: &[TagSlot], v: Val, low: Val, high: Val) -> Val {
    let ge = compare(p, slots, CmpOp::Ge, v, low);
    let le = compare(p, slots, CmpOp::Le, v, high);
    if truth(ge).is_some() && truth(le).is_some() {
        kleene_and(ge, le)
    } else {
        Val::MISSING
    }
}

fn trace_read(trace: &mut Vec<super::TraceEvent>, s: &mut TagSlot, slot: u16) {
    if !s.traced {
        s.traced = true;
        trace.push(super::TraceEvent::Tag { tag: u32::from(slot) });
    }
}

// The less common instructions run out of line: inlined, their code (substring search, list
// walks, the clock) made the interpreter's frame larger and every block's entry slower.

/// `in` / `not in` a constant set: enum members by the plan's bit mask, anything else by
/// a binary search of the set.
#[inline]
pub(super) fn in_set(p: &Program, slots: &[TagSlot], v: Val, set: u32, negated: bool) -> Val {
    if let View::Enum(e) = v.view() {
        if let (Some(&Some(mask)), true) = (p.plans.enum_masks.get(set as usize), e < 64) {
            return Val::bool((mask >> e & 1 == 1) != negated);
        }
    }
    match (scalar_of(p, slots, v), p.sets.get(set as usize)) {
        (Some(s), Some(set)) => Val::bool(s.in_set(set) != negated),
        _ => Val::MISSING,
    }
}

/// Texts shorter than this (most tag values) are searched without the finder, whose
/// vector search costs more to enter than a short scan.
const SHORT_TEXT: usize = 64;

/// A text constant that tag values are searched for (`contains`, `starts_with`,
/// `ends_with`): its bytes and a substring finder, built once with the plan, and for a
/// needle of at most 8 bytes the needle as one little-endian word, so a short text is
/// matched a word at a time instead of through a call to `memcmp` or `memchr`.
pub(crate) struct Needle {
    bytes: Box<[u8]>,
    finder: memchr::memmem::Finder<'static>,
    /// The needle's bytes as a little-endian word (needles of 1 to 8 bytes)…
    word: u64,
    /// …and the mask of those bytes in a word read at a candidate position.
    mask: u64,
}

impl std::fmt::Debug for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Needle").field(&String::from_utf8_lossy(&self.bytes)).finish()
    }
}

impl Needle {
    pub fn new(needle: &[u8]) -> Needle {
        let (word, mask) = match needle.len() {
            len @ 1..=8 => {
                let mut bytes = [0u8; 8];
                bytes[..len].copy_from_slice(needle);
                (u64::from_le_bytes(bytes), u64::MAX >> (64 - 8 * len))
            }
            _ => (0, 0),
        };
        Needle { bytes: needle.into(), finder: memchr::memmem::Finder::new(needle).into_owned(), word, mask }
    }

    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the needle occurs in `hay`: a short text and a needle of at most 8 bytes by
    /// a scan for the first byte checking a word at each match, anything else by `search`.
    #[inline]
    pub fn is_in(&self, hay: &[u8]) -> bool {
        if self.mask == 0 || hay.len() >= SHORT_TEXT {
            return self.search(hay);
        }
        let first = self.word as u8;
        let Some(last) = hay.len().checked_sub(self.bytes.len()) else { return false };
        for (i, &b) in hay[..=last].iter().enumerate() {
            if b == first {
                let found = match word_at(hay, i) {
                    Some(w) => w & self.mask == self.word,
                    None => hay[i..].starts_with(&self.bytes),
                };
                if found {
                    return true;
                }
            }
        }
        false
    }

    /// `is_in` for long texts (the finder) and long needles (`memchr` for the first byte).
    #[inline(never)]
    fn search(&self, hay: &[u8]) -> bool {
        if hay.len() >= SHORT_TEXT {
            return self.finder.find(hay).is_some();
        }
        let Some((&first, rest)) = self.bytes.split_first() else { return true };
        let mut at = 0;
        while let Some(i) = hay.get(at..).and_then(|h| memchr::memchr(first, h)) {
            let start = at + i;
            if hay.get(start + 1..).is_some_and(|h| h.starts_with(rest)) {
                return true;
            }
            at = start + 1;
        }
        false
    }

    /// Whether `hay` starts with the needle.
    #[inline]
    pub fn starts(&self, hay: &[u8]) -> bool {
        match word_at(hay, 0) {
            Some(w) if self.mask != 0 => w & self.mask == self.word,
            _ => hay.starts_with(&self.bytes),
        }
    }

    /// Whether `hay` ends with the needle.
    #[inline]
    pub fn ends(&self, hay: &[u8]) -> bool {
        match hay.len().checked_sub(8).and_then(|i| word_at(hay, i)) {
            // The needle's bytes are the word's high ones.
            Some(w) if self.mask != 0 => w >> (64 - self.mask.count_ones()) == self.word,
            _ => hay.ends_with(&self.bytes),
        }
    }
}

/// The eight bytes of `hay` from `i` as a little-endian word, if there are eight.
#[inline(always)]
fn word_at(hay: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = hay.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// `contains`, `starts_with` or `ends_with` (`instr`) of a prepared needle in `hay`.
#[inline(always)]
fn needle_test(needle: &Needle, instr: Instr, hay: &[u8]) -> bool {
    match instr {
        Instr::TextContains => needle.is_in(hay),
        Instr::StartsWith => needle.starts(hay),
        _ => needle.ends(hay),
    }
}

/// `contains`, `starts_with`, `ends_with` on two texts.
#[inline(never)]
fn text_test(p: &Program, slots: &[TagSlot], instr: Instr, text_val: Val, arg: Val) -> Val {
    let Some(a) = text(p, slots, text_val) else { return Val::MISSING };
    // A constant needle (the usual case) was prepared with the plan. Texts are valid
    // UTF-8 already, so bytes compare as they are.
    if let View::Text(Ref::Const(k)) = arg.view() {
        if let Some(Some(needle)) = p.plans.needles.get(k as usize) {
            return Val::bool(needle_test(needle, instr, a.as_bytes()));
        }
    }
    match text(p, slots, arg) {
        Some(b) => Val::bool(match instr {
            Instr::TextContains => a.contains(b),
            Instr::StartsWith => a.as_bytes().starts_with(b.as_bytes()),
            _ => a.as_bytes().ends_with(b.as_bytes()),
        }),
        None => Val::MISSING,
    }
}

/// `contains` on a list (with `item`), `contains_any` and `contains_all` (with a set).
#[inline(never)]
fn list_test(p: &Program, slots: &[TagSlot], instr: Instr, list: Val, item: Val) -> Val {
    match instr {
        Instr::ListContains => match scalar_of(p, slots, item) {
            Some(item) => list_any(p, slots, list, |e| e.equals(item)),
            None => Val::MISSING,
        },
        Instr::ContainsAny(set) => match p.sets.get(set as usize) {
            Some(set) => list_any(p, slots, list, |e| e.in_set(set)),
            None => Val::MISSING,
        },
        Instr::ContainsAll(set) => match p.sets.get(set as usize) {
            Some(set) => contains_all(p, slots, list, set),
            None => Val::MISSING,
        },
        _ => Val::MISSING,
    }
}

/// Out of line: the regex engine's inlined search (and the thread-local its cache pool
/// reads) made the interpreter's frame larger and its prologue slower for every block.
#[inline(never)]
fn regex_match(p: &Program, slots: &[TagSlot], v: Val, idx: u32) -> Val {
    match (text(p, slots, v), p.regexes.get(idx as usize)) {
        (Some(t), Some(re)) => Val::bool(re.is_match(t)),
        _ => Val::MISSING,
    }
}

#[inline]
pub(crate) fn const_val(p: &Program, k: u32) -> Val {
    match p.consts.get(k as usize) {
        Some(Const::Int(i)) => Val::int(*i),
        Some(Const::Float(f)) => Val::float(*f),
        Some(Const::Text(_)) => Val::text(Ref::Const(k)),
        Some(Const::Bool(b)) => Val::bool(*b),
        Some(Const::Time(t)) => Val::time(*t),
        Some(Const::Enum(e)) => Val::member(*e),
        Some(Const::List(_)) => Val::list(Ref::Const(k)),
        Some(Const::Seconds(_)) | None => Val::MISSING,
    }
}

pub(crate) fn text<'a>(p: &'a Program, slots: &'a [TagSlot], v: Val) -> Option<&'a str> {
    match v.view() {
        View::Text(Ref::Const(k)) => match p.consts.get(k as usize)? {
            Const::Text(s) => Some(s),
            _ => None,
        },
        View::Text(Ref::Slot(s)) => match &slots.get(usize::from(s))?.value {
            TagValue::Text(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn scalar_of<'a>(p: &'a Program, slots: &'a [TagSlot], v: Val) -> Option<ScalarRef<'a>> {
    Some(match v.view() {
        View::Int(i) => ScalarRef::Int(i),
        View::Float(f) => ScalarRef::Float(f),
        View::Bool(b) => ScalarRef::Bool(b),
        View::Time(t) => ScalarRef::Time(t),
        View::Enum(e) => ScalarRef::Enum(e),
        View::Text(_) => ScalarRef::Text(text(p, slots, v)?),
        View::Missing | View::Pending | View::List(_) => return None,
    })
}

/// Calls `f` on each element of a list value; `None` when `v` is not a list.
fn for_each_elem<'a>(
    p: &'a Program,
    slots: &'a [TagSlot],
    v: Val,
    mut f: impl FnMut(ScalarRef<'a>) -> bool,
) -> Option<bool> {
    match v.view() {
        View::List(Ref::Slot(s)) => match &slots.get(usize::from(s))?.value {
            TagValue::List(items) => Some(items.iter().any(|i| f(i.as_ref()))),
            _ => None,
        },
        View::List(Ref::Const(k)) => match p.consts.get(k as usize)? {
            Const::List(items) => Some(items.iter().map(Scalar::as_ref).any(f)),
            _ => None,
        },
        _ => None,
    }
}

fn list_any<'a>(p: &'a Program, slots: &'a [TagSlot], v: Val, f: impl FnMut(ScalarRef<'a>) -> bool) -> Val {
    for_each_elem(p, slots, v, f).map_or(Val::MISSING, Val::bool)
}

fn list_len(p: &Program, slots: &[TagSlot], v: Val) -> Option<usize> {
    match v.view() {
        View::List(Ref::Slot(s)) => match &slots.get(usize::from(s))?.value {
            TagValue::List(items) => Some(items.len()),
            _ => None,
        },
        View::List(Ref::Const(k)) => match p.consts.get(k as usize)? {
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
        return Val::MISSING;
    }
    let all = set.ints.iter().all(|&i| {
        has(ScalarRef::Int(i)) == Some(true)
            || has(ScalarRef::Time(i)) == Some(true)
            || has(ScalarRef::Bool(i != 0)) == Some(true)
    }) && set.floats.iter().all(|&f| has(ScalarRef::Float(f)) == Some(true))
        && set.texts.iter().all(|t| has(ScalarRef::Text(t)) == Some(true))
        && set.enums.iter().all(|&e| has(ScalarRef::Enum(e)) == Some(true));
    Val::bool(all)
}

/// Compares two values; unknown when either is missing or their kinds do not compare.
pub(crate) fn compare(p: &Program, slots: &[TagSlot], op: CmpOp, a: Val, b: Val) -> Val {
    let ord: Option<Ordering> = match (a.view(), b.view()) {
        (View::Int(x), View::Int(y)) | (View::Time(x), View::Time(y)) => Some(x.cmp(&y)),
        (View::Float(x), View::Float(y)) => x.partial_cmp(&y),
        (View::Int(i), View::Float(f)) => cmp_int_float(i, f),
        (View::Float(f), View::Int(i)) => cmp_int_float(i, f).map(Ordering::reverse),
        (View::Bool(x), View::Bool(y)) => Some(x.cmp(&y)),
        (View::Enum(x), View::Enum(y)) => Some(x.cmp(&y)),
        (View::Text(_), View::Text(_)) => match (text(p, slots, a), text(p, slots, b)) {
            (Some(x), Some(y)) => return compare_texts(op, x, y),
            _ => None,
        },
        _ => None,
    };
    holds(op, ord)
}

#[inline]
fn holds(op: CmpOp, ord: Option<Ordering>) -> Val {
    ord.map_or(Val::MISSING, |o| Val::bool(op.holds(o)))
}

#[inline]
fn compare_texts(op: CmpOp, x: &str, y: &str) -> Val {
    // Equality needs no ordering: a length check settles most unequal texts.
    match op {
        CmpOp::Eq => Val::bool(x == y),
        CmpOp::Ne => Val::bool(x != y),
        _ => Val::bool(op.holds(x.cmp(y))),
    }
}

#[cfg(test)]
mod tests {
    use super::Needle;

    /// A prepared needle answers `contains`, `starts_with` and `ends_with` as the standard
    /// library does, across needle lengths on both sides of the one-word path (0, 1, 8, 9
    /// bytes), texts shorter than a word and past `SHORT_TEXT`, and matches at either end.
    #[test]
    fn needles_match_as_the_standard_library() {
        let needles = ["", "p", "ph", "phone", "Smartpho", "Smartphon", "é", "GB", "xyz"];
        let long = format!("{}Smartphone Pro{}", "x".repeat(60), "y".repeat(10));
        let hays = ["", "p", "ph", "phon", "phone", "a phone", "Smartphone Pro 15, 128 GB", "é", "xé", &long];
        let mut checked = 0;
        for needle in needles {
            let prepared = Needle::new(needle.as_bytes());
            for hay in hays {
                let h = hay.as_bytes();
                assert_eq!(prepared.is_in(h), hay.contains(needle), "{hay:?} contains {needle:?}");
                assert_eq!(prepared.starts(h), hay.starts_with(needle), "{hay:?} starts_with {needle:?}");
                assert_eq!(prepared.ends(h), hay.ends_with(needle), "{hay:?} ends_with {needle:?}");
                // The same needle shifted to every position of a text of every length up to 70.
                for len in [needle.len(), 7, 8, 9, 20, 63, 64, 70] {
                    for at in 0..=len.saturating_sub(needle.len()) {
                        let mut text = vec![b'.'; len.max(needle.len())];
                        text[at..at + needle.len()].copy_from_slice(needle.as_bytes());
                        let std_in = text.windows(needle.len().max(1)).any(|w| w == needle.as_bytes());
                        assert_eq!(prepared.is_in(&text), std_in || needle.is_empty(), "{needle:?} at {at} of {len}");
                        assert_eq!(prepared.starts(&text), text.starts_with(needle.as_bytes()));
                        assert_eq!(prepared.ends(&text), text.ends_with(needle.as_bytes()));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
    }
}
