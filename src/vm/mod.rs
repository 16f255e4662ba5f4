//! The VM: runs a compiled program over a request, suspending when it needs tags.
//!
//! Owns: instance evaluation — strategies top to bottom, `when` in Kleene logic, experiments
//! and layers by the normative hash, defaults — and the suspend/resume protocol. Must not:
//! do I/O. When the VM reaches tags that are not loaded it returns [`Step::NeedTags`] with
//! every tag the current condition (or decision) reads and does not have, so the host can
//! fetch them in one batch; the host supplies them and calls [`Program::run`] again, which
//! resumes at the same strategy. Earlier strategies are never re-evaluated.
//!
//! Two tiers evaluate `when`s. The direct tier (`tree.rs`: conditions compiled to closures)
//! runs while every tag a `when` reads is loaded and no trace is kept; the general loop
//! (below) takes over at the first strategy that reads a tag not loaded yet, keeping the
//! suspension bookkeeping and traces, with the interpreter (`machine.rs`) and its plans
//! (`plan.rs`).
//!
//! Why treating a pending tag as unknown is sound: Kleene logic is monotone — replacing an
//! unknown by a known value never changes a result that was already true or false. So if a
//! `when` is decided without a pending tag, that tag is not needed at all; only when the
//! result is unknown *and* depends on pending tags does the VM suspend.

pub mod ab;
mod machine;
pub(crate) mod plan;
pub mod request;
mod tree;
pub mod value;

use serde::Serialize;

use crate::compile::program::{OutcomeInfo, Program, Unit};
pub use request::{Input, Need, Request, RequestError};
use request::{Phase, SlotState};
use value::{Kleene, TagValue, Val, View};

/// What a run produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The decision is made: read it with [`Request::outcome`].
    Done,
    /// Tags must be loaded first: read them with [`Request::needed`], supply, run again.
    NeedTags,
}

/// Which branch decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decider {
    Strategy(u32),
    Default,
}

/// The outcome of a finished request (kept in the request; read through [`Outcome`]).
#[derive(Debug)]
pub(crate) struct OutcomeState {
    pub decider: Option<Decider>,
    pub group: Option<u32>,
    pub bucket: Option<u32>,
    /// The decision was made only of constants (see [`Outcome::constant`]): its values
    /// are the plan's `values[start..start + len]`, not copied into `values`.
    pub constant: Option<(u32, u32)>,
    /// The values of a decision computed by the interpreter.
    pub values: Vec<Val>,
}

impl OutcomeState {
    pub fn with_fields(n: usize) -> OutcomeState {
        OutcomeState { decider: None, group: None, bucket: None, constant: None, values: Vec::with_capacity(n) }
    }

    pub fn clear(&mut self) {
        self.decider = None;
        self.group = None;
        self.bucket = None;
        self.constant = None;
        self.values.clear();
    }
}

/// Why a strategy did not decide, or that it did, for traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyNote {
    /// Its `when` was false or unknown.
    NotTaken,
    Decided,
    /// A decision value was unknown (missing tag, overflow, division by zero).
    DecisionUnknown,
    /// The experiment's unit was missing.
    UnitMissing,
    /// The unit's layer bucket is outside the experiment's claimed range.
    OutsideLayerRange,
    /// The unit's bucket is beyond the groups' coverage.
    NotInExperiment,
}

/// One step of an explained evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceEvent {
    /// A tag was read (its value or why it is missing is in the request).
    Tag {
        tag: u32,
    },
    Rule {
        rule: u32,
        result: Kleene,
    },
    Strategy {
        strategy: u32,
        when: Kleene,
        note: StrategyNote,
        bucket: Option<u32>,
    },
    Default {
        note: StrategyNote,
    },
}

impl Program {
    /// Runs (or resumes) a request made by this program; see [`Request::run`]. A request made
    /// by another program (say, the release before a hot swap) is refused, never run here.
    #[inline]
    pub fn run(&self, req: &mut Request<'_>) -> Result<Step, RequestError> {
        if !std::ptr::eq(self, req.program) {
            return Err(RequestError::OtherProgram);
        }
        req.program.run_request(req)
    }

    fn run_request(&self, req: &mut Request<'_>) -> Result<Step, RequestError> {
        if req.done {
            return Ok(Step::Done);
        }
        if !req.validated {
            self.validate(req)?;
            req.validated = true;
        }
        // The last suspension's tags have been supplied (or not): start a fresh list, and let
        // evaluation rediscover anything still missing.
        req.release_pending();
        // Made by the verifier; a program deserialized without it has none and is refused.
        let Some(plan) = req.plan else {
            return Err(unverified());
        };
        // The direct tier: with no trace to keep and nothing evaluated yet, the `when`s that
        // are trees run over the loaded tags without the bookkeeping of the general loop. It
        // hands over to that loop at the first strategy that reads a tag not loaded yet, has
        // no tree, or decides other than by constants.
        if req.strategy == 0 && req.phase == Phase::When && req.trace.is_none() {
            if let Some(step) = req.direct(plan) {
                return Ok(step);
            }
        }
        self.run_strategies(req, plan)
    }

    /// The general loop: strategies from `req.strategy` on, then the default, suspending
    /// when a result depends on tags not loaded yet, with traces.
    #[inline(never)]
    fn run_strategies(&self, req: &mut Request<'_>, plan: &plan::InstancePlan) -> Result<Step, RequestError> {
        while let Some(sp) = plan.strategies.get(req.strategy as usize) {
            let index = req.strategy;
            if req.phase == Phase::When {
                let when = match sp.when {
                    plan::When::Always => Val::TRUE,
                    when => {
                        let r = req.condition(when);
                        // Suspend only with something to ask for, so every `NeedTags` lets the
                        // host make progress.
                        if r.saw_pending && value::truth(r.value).is_none() && !req.pending.is_empty() {
                            return Ok(Step::NeedTags);
                        }
                        req.release_pending();
                        r.value
                    }
                };
                if !when.is_true() {
                    req.note(index, Kleene::from(when), StrategyNote::NotTaken, None);
                    req.strategy += 1;
                    continue;
                }
                req.phase = Phase::Outcome;
            }
            let (note, bucket) = match sp.decision {
                Some(decision) => match req.decide(decision) {
                    None => return Ok(Step::NeedTags),
                    Some(true) => (StrategyNote::Decided, None),
                    Some(false) => (StrategyNote::DecisionUnknown, None),
                },
                None => match &req.info.strategies[index as usize].outcome {
                    OutcomeInfo::Experiment(x) => match self.experiment(req, x, &sp.groups) {
                        None => return Ok(Step::NeedTags),
                        Some(result) => result,
                    },
                    // Planned with a decision; not reached.
                    OutcomeInfo::Decision(_) => (StrategyNote::DecisionUnknown, None),
                },
            };
            req.note(index, Kleene::True, note, bucket);
            if note == StrategyNote::Decided {
                req.outcome.decider = Some(Decider::Strategy(index));
                req.done = true;
                return Ok(Step::Done);
            }
            req.strategy += 1;
            req.phase = Phase::When;
        }
        if let Some(decision) = plan.default {
            match req.decide(decision) {
                None => return Ok(Step::NeedTags),
                Some(true) => {
                    req.outcome.decider = Some(Decider::Default);
                    req.trace_event(TraceEvent::Default { note: StrategyNote::Decided });
                }
                Some(false) => req.trace_event(TraceEvent::Default { note: StrategyNote::DecisionUnknown }),
            }
        }
        req.done = true;
        Ok(Step::Done)
    }

    /// An experiment strategy whose `when` held: the unit, the layer's range, the group, and
    /// the group's decision. `None` when it suspended for tags.
    #[inline(never)]
    fn experiment(
        &self,
        req: &mut Request<'_>,
        x: &crate::compile::program::ExperimentInfo,
        groups: &[plan::Decision],
    ) -> Option<(StrategyNote, Option<u32>)> {
        // The unit as text: an entity key, or a text/int tag (loaded on demand).
        let unit_ok = match x.unit {
            Unit::Key(e) => {
                req.unit_buf.clear();
                let key = &req.keys[e as usize];
                req.unit_buf.push_str(key);
                true
            }
            Unit::Tag(t) => req.unit_from_tag(t)?,
        };
        Some(if !unit_ok {
            (StrategyNote::UnitMissing, None)
        } else if x.layer.as_ref().is_some_and(|c| {
            let layer = &self.layers[c.layer as usize];
            !ab::in_range(ab::bucket(&layer.name, &req.unit_buf), c.start, c.end)
        }) {
            (StrategyNote::OutsideLayerRange, None)
        } else {
            let bucket = ab::bucket(&x.salt, &req.unit_buf);
            let group = x.groups.iter().map(|g| g.buckets).scan(0u32, |end, b| {
                *end += b;
                Some(*end)
            });
            match group.enumerate().find(|&(_, end)| bucket < end).map(|(g, _)| g) {
                None => (StrategyNote::NotInExperiment, Some(bucket)),
                Some(g) => {
                    match req.decide(groups.get(g).copied().unwrap_or(plan::Decision::Block(x.groups[g].decision)))? {
                        true => {
                            req.outcome.group = Some(g as u32);
                            req.outcome.bucket = Some(bucket);
                            (StrategyNote::Decided, Some(bucket))
                        }
                        false => (StrategyNote::DecisionUnknown, Some(bucket)),
                    }
                }
            }
        })
    }

    fn validate(&self, req: &Request<'_>) -> Result<(), RequestError> {
        let scene = &self.scenes[req.scene as usize];
        if let Some(&e) = scene.keys.iter().find(|&&e| !req.key_set[e as usize]) {
            return Err(RequestError::MissingKey(self.entities[e as usize].key.clone()));
        }
        if let Some(&t) = scene.passes.iter().find(|&&t| req.slots[t as usize].state != SlotState::Loaded) {
            return Err(RequestError::MissingPass(self.tags[t as usize].name.clone()));
        }
        Ok(())
    }
}

#[cold]
fn unverified() -> RequestError {
    RequestError::InvalidInput(
        "this program was not verified: load it with `Program::from_bundle` or build it with `compile`".into(),
    )
}

impl Request<'_> {
    /// Runs (or resumes) the request on the program that made it: [`Step::Done`] when the
    /// decision is made, [`Step::NeedTags`] when tags must be supplied first. Refuses a
    /// request missing a key or a pass-through value, naming it.
    pub fn run(&mut self) -> Result<Step, RequestError> {
        self.program.run_request(self)
    }

    /// Forgets tags recorded as needed during an evaluation that turned out not to need them,
    /// and the provisional rule results computed while they were pending: the next block
    /// evaluates those rules afresh (and asks for their tags again if it still needs them).
    #[inline]
    pub(crate) fn release_pending(&mut self) {
        // Nothing to release on the common path (every tag given, nothing provisional).
        if !self.pending.is_empty() || !self.provisional_rules.is_empty() {
            self.release_pending_slow();
        }
    }

    #[cold]
    fn release_pending_slow(&mut self) {
        for &slot in &self.pending {
            self.slots[usize::from(slot)].needed = false;
        }
        self.pending.clear();
        for rule in self.provisional_rules.drain(..) {
            if let Some(entry) = self.rule_cache.get_mut(rule as usize) {
                *entry = 0;
            }
        }
    }

    /// The direct tier (see `run_request`): `Some(Step::Done)` when it decided, `None` after
    /// setting `strategy` and `phase` to where the general loop takes over.
    #[inline(always)]
    fn direct(&mut self, plan: &plan::InstancePlan) -> Option<Step> {
        // The commonest instance, one strategy and a default, both constant: one condition
        // picks one of two ready decisions.
        if let (
            [plan::StrategyPlan {
                direct: plan::Direct::Tree(when),
                decision: Some(plan::Decision::Const { start, len }),
                ..
            }],
            Some(plan::Decision::Const { start: default_start, len: default_len }),
        ) = (&plan.strategies[..], plan.default)
        {
            self.blocks_run += 1;
            let when = when.call(self);
            if when.is_pending() {
                return None;
            }
            let (decider, decision) = match when.is_true() {
                true => (Decider::Strategy(0), (*start, *len)),
                false => (Decider::Default, (default_start, default_len)),
            };
            self.outcome.constant = Some(decision);
            self.outcome.decider = Some(decider);
            self.done = true;
            return Some(Step::Done);
        }
        for (index, sp) in plan.strategies.iter().enumerate() {
            let when = match &sp.direct {
                plan::Direct::Always => Val::TRUE,
                &plan::Direct::Rule(rule) => self.rule_tree(rule),
                plan::Direct::Tree(when) => {
                    self.blocks_run += 1;
                    when.call(self)
                }
                // Not compiled: handed over as if it read a tag not loaded.
                plan::Direct::No => Val::PENDING,
            };
            if when.is_pending() {
                self.strategy = index as u32;
                return None;
            }
            if when.is_true() {
                self.strategy = index as u32;
                self.phase = Phase::Outcome;
                return match sp.decision {
                    Some(decision @ plan::Decision::Const { .. }) => {
                        self.decide(decision);
                        self.outcome.decider = Some(Decider::Strategy(index as u32));
                        self.done = true;
                        Some(Step::Done)
                    }
                    _ => None,
                };
            }
        }
        self.strategy = plan.strategies.len() as u32;
        match plan.default {
            Some(decision @ plan::Decision::Const { .. }) => {
                self.decide(decision);
                self.outcome.decider = Some(Decider::Default);
                self.done = true;
                Some(Step::Done)
            }
            _ => None,
        }
    }

    /// Runs a decision: `Some(true)` decided, `Some(false)` a value is unknown, `None`
    /// suspended for pending tags. A decision made only of constants (most are) is read
    /// from the plan, without entering the interpreter.
    #[inline(always)]
    fn decide(&mut self, decision: plan::Decision) -> Option<bool> {
        match decision {
            plan::Decision::Const { start, len } => {
                // Read in place by `Outcome::fields`: nothing to copy.
                self.outcome.constant = Some((start, len));
                Some(true)
            }
            plan::Decision::Block(block) => {
                self.outcome.constant = None;
                self.decide_block(block)
            }
        }
    }

    #[inline(never)]
    fn decide_block(&mut self, block: crate::compile::program::Block) -> Option<bool> {
        let r = self.exec(block);
        let complete = self.outcome.values.iter().all(|v| !v.is_unknown());
        if !complete && r.saw_pending && !self.pending.is_empty() {
            return None;
        }
        self.release_pending();
        if !complete {
            self.outcome.values.clear();
        }
        Some(complete)
    }

    /// Writes a tag unit into `unit_buf`: `Some(true)` present, `Some(false)` missing,
    /// `None` not loaded (the tag is now pending).
    fn unit_from_tag(&mut self, tag: u32) -> Option<bool> {
        let slot = &mut self.slots[tag as usize];
        match slot.state {
            SlotState::NotLoaded => {
                self.pending_reads += 1;
                if !slot.needed {
                    slot.needed = true;
                    self.pending.push(tag as u16);
                }
                None
            }
            SlotState::Missing => Some(false),
            SlotState::Loaded => {
                match &slot.value {
                    TagValue::Text(s) => {
                        self.unit_buf.clear();
                        self.unit_buf.push_str(s);
                    }
                    TagValue::Int(i) => {
                        ab::int_unit(*i, &mut self.unit_buf);
                    }
                    _ => return Some(false),
                }
                if let Some(trace) = &mut self.trace {
                    if !slot.traced {
                        slot.traced = true;
                        trace.push(TraceEvent::Tag { tag });
                    }
                }
                Some(true)
            }
        }
    }

    fn note(&mut self, strategy: u32, when: Kleene, note: StrategyNote, bucket: Option<u32>) {
        self.trace_event(TraceEvent::Strategy { strategy, when, note, bucket });
    }

    fn trace_event(&mut self, event: TraceEvent) {
        if let Some(trace) = &mut self.trace {
            trace.push(event);
        }
    }

    /// The outcome; meaningful once `run` returned `Step::Done`.
    pub fn outcome(&self) -> Outcome<'_> {
        Outcome { req: self }
    }
}

/// A finished request's decision, read in place (no copies of texts).
pub struct Outcome<'r> {
    req: &'r Request<'r>,
}

/// A decision field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
    Time(i64),
    Enum(&'a str),
    List(Vec<FieldValue<'a>>),
}

impl<'r> Outcome<'r> {
    fn instance(&self) -> &'r crate::compile::program::InstanceInfo {
        self.req.info
    }

    /// Whether a decision was made (otherwise: no strategy held and no default decided).
    pub fn decided(&self) -> bool {
        self.req.outcome.decider.is_some()
    }

    pub fn decider(&self) -> Option<Decider> {
        self.req.outcome.decider
    }

    /// The deciding strategy's name, or `default`.
    pub fn strategy(&self) -> Option<&'r str> {
        match self.req.outcome.decider? {
            Decider::Strategy(i) => Some(&self.instance().strategies[i as usize].name),
            Decider::Default => Some("default"),
        }
    }

    pub fn experiment(&self) -> Option<&'r str> {
        match self.req.outcome.decider? {
            Decider::Strategy(i) => match &self.instance().strategies[i as usize].outcome {
                OutcomeInfo::Experiment(x) => Some(&x.name),
                OutcomeInfo::Decision(_) => None,
            },
            Decider::Default => None,
        }
    }

    pub fn group(&self) -> Option<&'r str> {
        let g = self.req.outcome.group?;
        match self.req.outcome.decider? {
            Decider::Strategy(i) => match &self.instance().strategies[i as usize].outcome {
                OutcomeInfo::Experiment(x) => x.groups.get(g as usize).map(|g| g.name.as_str()),
                OutcomeInfo::Decision(_) => None,
            },
            Decider::Default => None,
        }
    }

    pub fn group_index(&self) -> Option<u32> {
        self.req.outcome.group
    }

    pub fn bucket(&self) -> Option<u32> {
        self.req.outcome.bucket
    }

    /// Whether the decision was made only of constants: then every request that the same
    /// strategy (and experiment group) decides has the same fields, so a host converting
    /// many outcomes can convert those fields once per strategy and group.
    pub fn constant(&self) -> bool {
        self.req.outcome.decider.is_some() && self.req.outcome.constant.is_some()
    }

    /// The decision's fields in declaration order (empty when no decision was made).
    pub fn fields(&self) -> impl Iterator<Item = (&'r str, FieldValue<'r>)> + '_ {
        let inst = self.instance();
        let req: &'r Request<'r> = self.req;
        let values: &'r [Val] = match req.outcome.constant {
            Some((start, len)) => req.program.plans.values.get(start as usize..(start + len) as usize).unwrap_or(&[]),
            None => &req.outcome.values,
        };
        inst.fields.iter().zip(values).map(move |(f, &v)| (f.name.as_str(), field_value(req, &f.ty, v)))
    }

    /// The trace, when the request was built with `explain(true)`.
    pub fn trace(&self) -> &'r [TraceEvent] {
        self.req.trace.as_deref().unwrap_or(&[])
    }

    pub fn request(&self) -> &'r Request<'r> {
        self.req
    }
}

fn field_value<'a>(req: &'a Request<'_>, ty: &crate::compile::program::Ty, v: Val) -> FieldValue<'a> {
    use crate::compile::program::{Const, Ty};
    let p = req.program;
    let member = |ty: Ty, e: u32| -> &'a str {
        match ty {
            Ty::Enum(id) => p.enums.get(id as usize).and_then(|m| m.get(e as usize)).map_or("", String::as_str),
            _ => "",
        }
    };
    let elem = match ty {
        Ty::List(e) => e.ty(),
        other => *other,
    };
    match v.view() {
        View::Int(i) => FieldValue::Int(i),
        View::Float(f) => FieldValue::Float(f),
        View::Bool(b) => FieldValue::Bool(b),
        View::Time(t) => FieldValue::Time(t),
        View::Enum(e) => FieldValue::Enum(member(*ty, e)),
        View::Text(_) => FieldValue::Text(machine::text(p, &req.slots, v).unwrap_or("")),
        View::List(value::Ref::Const(k)) => match p.consts.get(k as usize) {
            Some(Const::List(items)) => {
                FieldValue::List(items.iter().map(|i| scalar_field(i.as_ref(), elem, &member)).collect())
            }
            _ => FieldValue::List(Vec::new()),
        },
        View::List(value::Ref::Slot(s)) => match &req.slots[usize::from(s)].value {
            TagValue::List(items) => {
                FieldValue::List(items.iter().map(|i| scalar_field(i.as_ref(), elem, &member)).collect())
            }
            _ => FieldValue::List(Vec::new()),
        },
        View::Missing | View::Pending => FieldValue::List(Vec::new()),
    }
}

fn scalar_field<'a>(
    s: value::ScalarRef<'a>,
    elem: crate::compile::program::Ty,
    member: &dyn Fn(crate::compile::program::Ty, u32) -> &'a str,
) -> FieldValue<'a> {
    // A list<int> value stored in a list<float> field reads as floats, like scalar fields do.
    if let (value::ScalarRef::Int(x), crate::compile::program::Ty::Float) = (s, elem) {
        return FieldValue::Float(x as f64);
    }
    match s {
        value::ScalarRef::Int(x) => FieldValue::Int(x),
        value::ScalarRef::Float(x) => FieldValue::Float(x),
        value::ScalarRef::Text(x) => FieldValue::Text(x),
        value::ScalarRef::Bool(x) => FieldValue::Bool(x),
        value::ScalarRef::Time(x) => FieldValue::Time(x),
        value::ScalarRef::Enum(x) => FieldValue::Enum(member(elem, x)),
    }
}
