//! Sliding windows of event time for one unit and one window tag.
//!
//! Owns: the entries a window tag aggregates (time and value of each event that passed its
//! `where`), kept sorted by event time so that out-of-order events insert in place, pruned
//! from the old end as the unit's latest event time advances, and bounded by
//! [`MAX_WINDOW_ENTRIES`]. Must not: know about scenes, filters or storage.

use serde::{Deserialize, Serialize};

use crate::compile::program::{Const, FilterStep};
use crate::limits::MAX_WINDOW_ENTRIES;
use crate::ops::Aggregate;

/// One event field's value (enum members by name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FieldVal {
    /// An `int` field.
    Int(i64),
    /// A `float` field.
    Float(f64),
    /// A `text` field, or an `enum` field's member name.
    Text(String),
    /// A `bool` field.
    Bool(bool),
    /// A `time` field, seconds since the Unix epoch.
    Time(i64),
}

impl FieldVal {
    fn number(&self) -> Option<f64> {
        match self {
            FieldVal::Int(i) | FieldVal::Time(i) => Some(*i as f64),
            FieldVal::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The entries of one window of one unit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entries {
    /// `(event time, value)` sorted by time; equal times in arrival order.
    pub items: Vec<(i64, Option<FieldVal>)>,
    /// The newest time of an entry evicted because the window was full: a window that
    /// reaches back to it would be incomplete, so it reads as missing (unknown never grants).
    pub evicted_through: Option<i64>,
}

/// An aggregate's value at some `now`, or missing.
#[derive(Clone, Debug, PartialEq)]
pub enum AggValue {
    /// `count`, `distinct`, and `sum` of ints.
    Int(i64),
    /// `sum` of floats.
    Float(f64),
    /// `min`, `max`, `last`: the field's value.
    Val(FieldVal),
    /// No value: no event for `min`/`max`/`last`, an incomplete window, or an overflowing sum.
    Missing,
}

impl Entries {
    /// Adds an event's entry in time order, evicting the oldest entry when full.
    pub fn insert(&mut self, time: i64, value: Option<FieldVal>) {
        let at = self.items.partition_point(|(t, _)| *t <= time);
        self.items.insert(at, (time, value));
        if self.items.len() > MAX_WINDOW_ENTRIES {
            let (t, _) = self.items.remove(0);
            self.evicted_through = Some(self.evicted_through.map_or(t, |e| e.max(t)));
        }
    }

    /// Drops entries older than `before` (no later evaluation can reach them).
    pub fn prune(&mut self, before: i64) {
        let n = self.items.partition_point(|(t, _)| *t < before);
        self.items.drain(..n);
    }

    /// The aggregate over entries with `now − within ≤ time ≤ now`.
    pub fn aggregate(&self, agg: Aggregate, within: i64, now: i64, float: bool) -> AggValue {
        let start = now.saturating_sub(within);
        if self.evicted_through.is_some_and(|e| e >= start) {
            return AggValue::Missing;
        }
        let lo = self.items.partition_point(|(t, _)| *t < start);
        let hi = self.items.partition_point(|(t, _)| *t <= now);
        let slice = &self.items[lo..hi.max(lo)];
        let values = || slice.iter().filter_map(|(_, v)| v.as_ref());
        match agg {
            Aggregate::Count => AggValue::Int(slice.len() as i64),
            Aggregate::Sum if float => AggValue::Float(values().filter_map(FieldVal::number).sum()),
            Aggregate::Sum => {
                let mut sum: i64 = 0;
                for v in values() {
                    if let FieldVal::Int(i) = v {
                        match sum.checked_add(*i) {
                            Some(s) => sum = s,
                            // Checked i64, as the language's arithmetic: overflow is unknown.
                            None => return AggValue::Missing,
                        }
                    }
                }
                AggValue::Int(sum)
            }
            Aggregate::Min | Aggregate::Max => {
                let mut best: Option<&FieldVal> = None;
                for v in values() {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let (x, y) = (v.number().unwrap_or(0.0), b.number().unwrap_or(0.0));
                            if agg == Aggregate::Min {
                                x < y
                            } else {
                                x > y
                            }
                        }
                    };
                    if better {
                        best = Some(v);
                    }
                }
                best.map_or(AggValue::Missing, |b| AggValue::Val(b.clone()))
            }
            Aggregate::Last => values().next_back().map_or(AggValue::Missing, |v| AggValue::Val(v.clone())),
            Aggregate::Distinct => {
                let mut seen: Vec<&FieldVal> = Vec::new();
                for v in values() {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                AggValue::Int(seen.len() as i64)
            }
        }
    }
}

/// Whether an event's fields pass a window's `where` (postfix; empty: every event passes).
/// `enum_members(field, member)` names member `member` of enum field `field`.
pub fn passes(filter: &[FilterStep], fields: &[FieldVal], enum_members: &dyn Fn(u32, u32) -> Option<String>) -> bool {
    // The verifier proved the postfix well formed; a malformed one fails closed.
    let mut stack: Vec<bool> = Vec::new();
    for step in filter {
        let value = match step {
            FilterStep::Compare { field, op, value } => fields
                .get(*field as usize)
                .and_then(|v| compare(v, value, *field, enum_members))
                .is_some_and(|ord| op.holds(ord)),
            FilterStep::InSet { field, set, negated } => {
                let Some(v) = fields.get(*field as usize) else { return false };
                let found = set.iter().any(|c| compare(v, c, *field, enum_members).is_some_and(|o| o.is_eq()));
                found != *negated
            }
            FilterStep::And(n) | FilterStep::Or(n) => {
                let Some(from) = stack.len().checked_sub(*n as usize) else { return false };
                // Dropping the drain removes every operand, even where `all`/`any` stop early.
                let mut operands = stack.drain(from..);
                if matches!(step, FilterStep::And(_)) {
                    operands.all(|b| b)
                } else {
                    operands.any(|b| b)
                }
            }
            FilterStep::Not => match stack.pop() {
                Some(b) => !b,
                None => return false,
            },
        };
        stack.push(value);
    }
    stack.pop().unwrap_or(true)
}

fn compare(
    v: &FieldVal,
    c: &Const,
    field: u32,
    enum_members: &dyn Fn(u32, u32) -> Option<String>,
) -> Option<std::cmp::Ordering> {
    match (v, c) {
        (FieldVal::Text(a), Const::Text(b)) => Some(a.as_str().cmp(b.as_str())),
        (FieldVal::Text(a), Const::Enum(m)) => enum_members(field, *m).map(|name| a.as_str().cmp(name.as_str())),
        (FieldVal::Int(a), Const::Int(b)) => Some(a.cmp(b)),
        (FieldVal::Bool(a), Const::Bool(b)) => Some(a.cmp(b)),
        (FieldVal::Time(a), Const::Time(b)) => Some(a.cmp(b)),
        (a, Const::Int(b)) => a.number()?.partial_cmp(&(*b as f64)),
        (a, Const::Float(b)) => a.number()?.partial_cmp(b),
        _ => None,
    }
}
