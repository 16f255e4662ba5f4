//! The bytecode verifier: every program is checked before anything runs it.
//!
//! Owns: the guarantees the VM relies on — every index in range, every block well formed
//! (forward jumps inside the block, one terminator at its end), stack depths consistent
//! and never negative, rule calls forming no cycle, tables consistent with each other and
//! regexes valid. A program that passes cannot make the VM index out of bounds or loop;
//! the VM still treats values of an unexpected kind as unknown, so operand kinds need not
//! be proven here.
//!
//! Treats its input as hostile: it comes from bundles that may be corrupt or forged.

use std::fmt;

use super::instr::Instr;
use super::program::*;
use crate::limits::BUCKETS;
use crate::limits::{MAX_REGEX_COMPILED_BYTES, MAX_REGEX_NESTING};

/// Why a program was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid program: {}", self.message)
    }
}

impl std::error::Error for VerifyError {}

fn fail<T>(message: impl Into<String>) -> Result<T, VerifyError> {
    Err(VerifyError { message: message.into() })
}

#[derive(Clone, Copy, PartialEq)]
enum BlockKind {
    Cond,
    Decision(u16),
}

/// Verifies `p` and fills in what the VM needs (compiled regexes, stack and call depths,
/// the VM's plans).
pub fn verify(p: &mut Program) -> Result<(), VerifyError> {
    if p.spans.len() != p.code.len() {
        return fail(format!("{} spans for {} instructions", p.spans.len(), p.code.len()));
    }
    if p.code.len() > u32::MAX as usize / 2 {
        return fail("too many instructions");
    }
    if p.tags.len() > usize::from(u16::MAX) + 1 {
        return fail("too many tags");
    }
    check_tables(p)?;
    check_outreach(p)?;
    let mut max_stack = 0;
    let mut rule_depths = Vec::with_capacity(p.rules.len());
    for (i, rule) in p.rules.iter().enumerate() {
        let depth = block(p, rule.block, BlockKind::Cond).map_err(|e| at(e, &format!("rule {i}")))?;
        max_stack = max_stack.max(depth);
        rule_depths.push(depth);
    }
    for scene in &p.scenes {
        for inst in &scene.instances {
            let fields = u16::try_from(inst.fields.len()).or_else(|_| fail("too many fields"))?;
            let decision = BlockKind::Decision(fields);
            for st in &inst.strategies {
                if let Some(w) = st.when {
                    max_stack = max_stack.max(block(p, w, BlockKind::Cond).map_err(|e| at(e, &st.name))?);
                }
                match &st.outcome {
                    OutcomeInfo::Decision(d) => max_stack = max_stack.max(block(p, *d, decision)?),
                    OutcomeInfo::Experiment(x) => {
                        for g in &x.groups {
                            max_stack = max_stack.max(block(p, g.decision, decision)?);
                        }
                    }
                }
            }
            if let Some(d) = inst.default {
                max_stack = max_stack.max(block(p, d, decision)?);
            }
        }
    }
    let calls = rule_calls(p, &rule_depths)?;
    p.max_calls = calls.depth;
    // A rule runs on top of its caller's stack: the deepest a block's own values reach plus
    // the deepest chain of rules it can call is a bound on everything at once.
    p.max_stack = max_stack.saturating_add(calls.stack);
    p.regexes = p
        .regex_sources
        .iter()
        .map(|src| {
            regex::RegexBuilder::new(src)
                .size_limit(MAX_REGEX_COMPILED_BYTES)
                .nest_limit(MAX_REGEX_NESTING)
                .build()
                .or_else(|e| fail(format!("regex {src:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    // Last: plans are derived from code the checks above accepted.
    p.plans = crate::vm::plan::build(p);
    Ok(())
}

fn at(e: VerifyError, place: &str) -> VerifyError {
    VerifyError { message: format!("{place}: {}", e.message) }
}

fn check_ty(p: &Program, ty: &Ty) -> Result<(), VerifyError> {
    let ty = match ty {
        Ty::List(elem) => elem.ty(),
        other => *other,
    };
    match ty {
        Ty::Enum(e) if e as usize >= p.enums.len() => fail(format!("enum {e} out of range")),
        Ty::Enum(e) if p.enums[e as usize].is_empty() => fail(format!("enum {e} has no members")),
        _ => Ok(()),
    }
}

fn check_unit(p: &Program, unit: Unit) -> Result<(), VerifyError> {
    match unit {
        Unit::Key(e) if e as usize >= p.entities.len() => fail(format!("unit key {e} out of range")),
        Unit::Tag(t) => match p.tags.get(t as usize) {
            None => fail(format!("unit tag {t} out of range")),
            Some(tag) if !matches!(tag.ty, Ty::Int | Ty::Text) => {
                fail(format!("unit tag `{}` is not int or text", tag.name))
            }
            Some(_) => Ok(()),
        },
        Unit::Key(_) => Ok(()),
    }
}

fn check_tables(p: &Program) -> Result<(), VerifyError> {
    for tag in &p.tags {
        check_ty(p, &tag.ty)?;
        if let Some(e) = tag.entity {
            if e as usize >= p.entities.len() {
                return fail(format!("tag `{}`: entity {e} out of range", tag.name));
            }
        }
    }
    for layer in &p.layers {
        check_unit(p, layer.unit)?;
    }
    for scene in &p.scenes {
        if let Some(e) = scene.keys.iter().find(|&&e| e as usize >= p.entities.len()) {
            return fail(format!("scene `{}`: key {e} out of range", scene.name));
        }
        for &t in &scene.passes {
            match p.tags.get(t as usize) {
                Some(tag) if tag.entity.is_none() => {}
                _ => return fail(format!("scene `{}`: pass {t} is not a pass-through tag", scene.name)),
            }
        }
        for inst in &scene.instances {
            for f in &inst.fields {
                check_ty(p, &f.ty)?;
            }
            for st in &inst.strategies {
                if let OutcomeInfo::Experiment(x) = &st.outcome {
                    check_unit(p, x.unit)?;
                    let total = x.groups.iter().try_fold(0u32, |sum, g| sum.checked_add(g.buckets));
                    if total.is_none_or(|t| t > BUCKETS) {
                        return fail(format!("experiment `{}`: groups exceed {BUCKETS} buckets", x.name));
                    }
                    if let Some(claim) = &x.layer {
                        let Some(layer) = p.layers.get(claim.layer as usize) else {
                            return fail(format!("experiment `{}`: layer out of range", x.name));
                        };
                        if claim.start >= claim.end || claim.end > BUCKETS || layer.unit != x.unit {
                            return fail(format!("experiment `{}`: invalid layer claim", x.name));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The outreach tables: every index in range, every window's `where` a well-formed postfix
/// program over its event's fields, so the outreach runtime can index without checking.
fn check_outreach(p: &Program) -> Result<(), VerifyError> {
    let o = &p.outreach;
    for ev in &o.events {
        if ev.entity as usize >= p.entities.len() {
            return fail(format!("event `{}`: entity {} out of range", ev.name, ev.entity));
        }
        if ev.late_seconds < 0 {
            return fail(format!("event `{}`: negative lateness", ev.name));
        }
        for f in &ev.fields {
            check_ty(p, &f.ty)?;
            match p.tags.get(f.tag as usize) {
                Some(tag) if tag.entity.is_none() && tag.ty == f.ty => {}
                _ => {
                    return fail(format!("event `{}`: field `{}` has no pass-through tag of its type", ev.name, f.name))
                }
            }
        }
    }
    for (i, w) in o.windows.iter().enumerate() {
        let place = format!("window {i}");
        let Some(ev) = o.events.get(w.event as usize) else {
            return fail(format!("{place}: event {} out of range", w.event));
        };
        match p.tags.get(w.tag as usize) {
            Some(tag) if tag.entity == Some(ev.entity) => {}
            _ => return fail(format!("{place}: tag {} is not a tag of the event's entity", w.tag)),
        }
        match (w.agg, w.field) {
            (crate::ops::Aggregate::Count, None) => {}
            (crate::ops::Aggregate::Count, Some(_)) | (_, None) => {
                return fail(format!("{place}: `{}` with a wrong field", w.agg.as_str()))
            }
            (_, Some(f)) if f as usize >= ev.fields.len() => return fail(format!("{place}: field {f} out of range")),
            (_, Some(_)) => {}
        }
        if w.within_seconds < 0 {
            return fail(format!("{place}: negative window"));
        }
        let mut depth: u32 = 0;
        for step in &w.filter {
            let (pops, field) = match step {
                FilterStep::Compare { field, .. } | FilterStep::InSet { field, .. } => (0, Some(*field)),
                FilterStep::And(n) | FilterStep::Or(n) => (*n, None),
                FilterStep::Not => (1, None),
            };
            if field.is_some_and(|f| f as usize >= ev.fields.len()) {
                return fail(format!("{place}: filter field out of range"));
            }
            if pops == 0 && field.is_none() || pops > depth {
                return fail(format!("{place}: malformed filter"));
            }
            depth = depth - pops + 1;
        }
        if !w.filter.is_empty() && depth != 1 {
            return fail(format!("{place}: malformed filter"));
        }
    }
    for c in &o.channels {
        if c.zone.is_some_and(|z| z as usize >= p.tags.len()) {
            return fail(format!("channel `{}`: zone tag out of range", c.name));
        }
        if c.caps.iter().any(|cap| cap.per_seconds < 0) {
            return fail(format!("channel `{}`: negative cap window", c.name));
        }
    }
    for a in &o.actions {
        if a.caps.iter().any(|cap| cap.per_seconds < 0) {
            return fail(format!("action `{}`: negative cap window", a.name));
        }
    }
    if !o.scene_events.is_empty() && o.scene_events.len() != p.scenes.len() {
        return fail(format!("{} scene events for {} scenes", o.scene_events.len(), p.scenes.len()));
    }
    if let Some(e) = o.scene_events.iter().flatten().find(|&&e| e as usize >= o.events.len()) {
        return fail(format!("scene event {e} out of range"));
    }
    if o.max_dedup_seconds < 0 {
        return fail("negative dedup window");
    }
    if !o.scene_fanouts.is_empty() && o.scene_fanouts.len() != p.scenes.len() {
        return fail(format!("{} scene fan-outs for {} scenes", o.scene_fanouts.len(), p.scenes.len()));
    }
    for (s, f) in o.scene_fanouts.iter().enumerate() {
        let Some(f) = f else { continue };
        let place = format!("fan-out of scene {s}");
        let Some(trigger) = o.scene_event(s).and_then(|e| o.events.get(e as usize)) else {
            return fail(format!("{place}: the scene is not on an event"));
        };
        if f.entity as usize >= p.entities.len() {
            return fail(format!("{place}: entity {} out of range", f.entity));
        }
        if trigger.entity == f.entity {
            return fail(format!("{place}: fans out to the triggering event's own entity"));
        }
        let Some(index) = o.events.get(f.index_event as usize) else {
            return fail(format!("{place}: index event {} out of range", f.index_event));
        };
        if index.entity != f.entity {
            return fail(format!("{place}: index event `{}` is not keyed by the fan-out's entity", index.name));
        }
        if !p.scenes[s].keys.contains(&f.entity) {
            return fail(format!("{place}: the scene does not take the fan-out entity's key"));
        }
        if f.within_seconds <= 0 || f.within_seconds > crate::limits::MAX_WINDOW_SECONDS {
            return fail(format!("{place}: window out of range"));
        }
        if f.pairs.is_empty() || f.pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return fail(format!("{place}: pairs empty, unsorted or repeated"));
        }
        for &(fi, v) in &f.pairs {
            let Some(left) = index.fields.get(fi as usize) else {
                return fail(format!("{place}: index field {fi} out of range"));
            };
            let fits = match v {
                FanoutValue::Key => matches!(left.ty, Ty::Int | Ty::Text),
                FanoutValue::Field(i) => match trigger.fields.get(i as usize) {
                    None => return fail(format!("{place}: trigger field {i} out of range")),
                    Some(right) => {
                        right.ty == left.ty && matches!(left.ty, Ty::Int | Ty::Text | Ty::Bool | Ty::Time | Ty::Enum(_))
                    }
                },
            };
            if !fits {
                return fail(format!("{place}: field `{}` cannot be matched with its value", left.name));
            }
        }
    }
    Ok(())
}

/// Checks one block and returns the deepest stack it needs.
fn block(p: &Program, b: Block, kind: BlockKind) -> Result<u32, VerifyError> {
    let (start, end) = (b.start as usize, b.end as usize);
    if start >= end || end > p.code.len() {
        return fail(format!("block {start}..{end} out of range"));
    }
    // Depth on entry to each instruction of the block, as established by fall-through or jumps.
    let mut depth: Vec<Option<u32>> = vec![None; end - start];
    depth[0] = Some(0);
    let mut max = 0;
    for pc in start..end {
        let instr = p.code[pc];
        let Some(d) = depth[pc - start] else {
            return fail(format!("instruction {pc} is unreachable"));
        };
        operands(p, instr).map_err(|e| at(e, &format!("instruction {pc}")))?;
        let (pops, pushes) = instr.stack_effect();
        if d < pops {
            return fail(format!("instruction {pc} ({instr:?}) pops {pops} values from a stack of {d}"));
        }
        let after = d - pops + pushes;
        max = max.max(after).max(d);
        let last = pc + 1 == end;
        if instr.is_terminator() != last {
            return fail(format!("instruction {pc}: block {start}..{end} must end in exactly one terminator"));
        }
        match (instr, kind) {
            (Instr::Return, BlockKind::Cond) if d == 1 => {}
            (Instr::Decide(n), BlockKind::Decision(fields)) if n == fields && d == u32::from(n) => {}
            (i, _) if i.is_terminator() => {
                return fail(format!("instruction {pc}: wrong terminator {i:?} for this block"))
            }
            _ => {}
        }
        if let Some(target) = instr.target() {
            let target = target as usize;
            if target <= pc || target >= end {
                return fail(format!(
                    "instruction {pc}: jump to {target} leaves block {start}..{end} or goes backwards"
                ));
            }
            merge(&mut depth[target - start], after, pc)?;
        }
        if !last {
            merge(&mut depth[pc + 1 - start], after, pc)?;
        }
    }
    Ok(max)
}

fn merge(slot: &mut Option<u32>, depth: u32, pc: usize) -> Result<(), VerifyError> {
    match *slot {
        None => *slot = Some(depth),
        Some(d) if d == depth => {}
        Some(d) => return fail(format!("instruction {pc}: stack depth {depth} meets {d} at a join")),
    }
    Ok(())
}

fn operands(p: &Program, instr: Instr) -> Result<(), VerifyError> {
    let slot_ok = |s: u16| (s as usize) < p.tags.len();
    let const_ok = |k: u32| (k as usize) < p.consts.len();
    let ok = match instr {
        Instr::LoadTag(s) => slot_ok(s),
        Instr::CmpTagConst { slot, konst, .. } => slot_ok(slot) && const_ok(konst),
        Instr::CmpTagInt { slot, .. } | Instr::CmpTagEnum { slot, .. } => slot_ok(slot),
        Instr::CmpTagText { slot, konst, .. } => {
            slot_ok(slot) && matches!(p.consts.get(konst as usize), Some(Const::Text(_)))
        }
        Instr::CmpTagFloat { slot, konst, .. } => {
            slot_ok(slot) && matches!(p.consts.get(konst as usize), Some(Const::Float(_)))
        }
        Instr::PushConst(k) => const_ok(k),
        Instr::InSet { set, .. } | Instr::ContainsAny(set) | Instr::ContainsAll(set) => (set as usize) < p.sets.len(),
        Instr::Matches(r) => (r as usize) < p.regex_sources.len(),
        Instr::Within(k) | Instr::OlderThan(k) => matches!(p.consts.get(k as usize), Some(Const::Seconds(_))),
        Instr::CallRule(r) => (r as usize) < p.rules.len(),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        fail(format!("operand of {instr:?} out of range"))
    }
}

struct RuleCalls {
    /// Longest chain of rule calls.
    depth: u32,
    /// Most stack values a chain of rule calls holds at once.
    stack: u32,
}

/// The longest chain of rule calls and the stack it needs; fails on a cycle (which would
/// never terminate). `rule_depths` is each rule block's own deepest stack.
fn rule_calls(p: &Program, rule_depths: &[u32]) -> Result<RuleCalls, VerifyError> {
    let calls: Vec<Vec<usize>> = p
        .rules
        .iter()
        .map(|r| {
            p.block_code(r.block)
                .iter()
                .filter_map(|i| match i {
                    Instr::CallRule(c) => Some(*c as usize),
                    _ => None,
                })
                .collect()
        })
        .collect();
    // depth[r]: None unvisited, Some(None) on the current path, Some(Some(d)) finished.
    let mut depth: Vec<Option<Option<u32>>> = vec![None; calls.len()];
    let mut need = vec![0u32; calls.len()];
    let mut deepest = 0;
    let mut most_stack = 0;
    for root in 0..calls.len() {
        if depth[root].is_some() {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        depth[root] = Some(None);
        while let Some(&mut (r, ref mut next)) = stack.last_mut() {
            if let Some(&callee) = calls[r].get(*next) {
                *next += 1;
                match depth[callee] {
                    None => {
                        depth[callee] = Some(None);
                        stack.push((callee, 0));
                    }
                    Some(None) => return fail(format!("rule {callee} calls itself")),
                    Some(Some(_)) => {}
                }
            } else {
                let d = 1 + calls[r].iter().filter_map(|&c| depth[c].flatten()).max().unwrap_or(0);
                depth[r] = Some(Some(d));
                deepest = deepest.max(d);
                let callee_need = calls[r].iter().map(|&c| need[c]).max().unwrap_or(0);
                need[r] = rule_depths[r].saturating_add(callee_need);
                most_stack = most_stack.max(need[r]);
                stack.pop();
            }
        }
    }
    Ok(RuleCalls { depth: deepest, stack: most_stack })
}
