//! Fan-out indexes: which units had an index event (`favorite`) with given field values,
//! and when.
//!
//! Owns: the entries of one index value (the event times and units of the index events
//! whose matched fields had that value), kept sorted by event time so that out-of-order
//! events insert in place, pruned from the old end relative to the value's newest entry,
//! bounded by [`MAX_FANOUT_ENTRIES`]; the text key an index value is stored under; and the
//! lookup of the units with an entry inside a window, in ascending key order. Must not:
//! know about scenes, filters or storage.

use serde::{Deserialize, Serialize};

use super::window::FieldVal;
use crate::limits::MAX_FANOUT_ENTRIES;

/// The entries of one index value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexEntries {
    /// `(event time, unit key)` sorted by time; equal times in arrival order.
    pub items: Vec<(i64, String)>,
}

impl IndexEntries {
    /// Adds an index event's entry in time order, evicting the oldest entry when full. An
    /// entry it holds already (a copy of an event its unit no longer remembers) is not
    /// added twice.
    pub fn insert(&mut self, time: i64, unit: &str) {
        let at = self.items.partition_point(|(t, _)| *t <= time);
        let same_time = &self.items[self.items.partition_point(|(t, _)| *t < time)..at];
        if same_time.iter().any(|(_, u)| u == unit) {
            return;
        }
        self.items.insert(at, (time, unit.to_string()));
        if self.items.len() > MAX_FANOUT_ENTRIES {
            self.items.remove(0);
        }
    }

    /// Drops entries older than `before`.
    pub fn prune(&mut self, before: i64) {
        let n = self.items.partition_point(|(t, _)| *t < before);
        self.items.drain(..n);
    }

    /// The newest entry's time.
    pub fn newest(&self) -> Option<i64> {
        self.items.last().map(|(t, _)| *t)
    }

    /// The units with an entry at `from ≤ time ≤ to`, each once, in ascending key order
    /// (byte order of the key's text).
    pub fn units(&self, from: i64, to: i64) -> Vec<&str> {
        let lo = self.items.partition_point(|(t, _)| *t < from);
        let hi = self.items.partition_point(|(t, _)| *t <= to);
        let mut units: Vec<&str> = self.items[lo..hi.max(lo)].iter().map(|(_, u)| u.as_str()).collect();
        units.sort_unstable();
        units.dedup();
        units
    }
}

/// A matched value as text: the form keys (text or int) and fields compare in.
pub fn value_text(v: &FieldVal) -> String {
    match v {
        FieldVal::Int(i) | FieldVal::Time(i) => i.to_string(),
        FieldVal::Text(t) => t.clone(),
        FieldVal::Bool(b) => b.to_string(),
        // The checker and verifier refuse float matches; kept distinct all the same.
        FieldVal::Float(f) => format!("{f:?}"),
    }
}

/// The key an index value is stored under: the index event's name and matched fields'
/// names (so that state survives a release that reorders declarations), then each value
/// length-prefixed (so that no text can pose as two values).
pub fn index_key(event: &str, fields: &[&str], values: &[String]) -> String {
    let mut key = format!("{event}({})", fields.join(","));
    for v in values {
        key.push_str(&format!("\u{0}{}:{v}", v.len()));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries stay in time order (equal times in arrival order), and the same unit at the
    /// same time is kept once.
    #[test]
    fn entries_are_ordered_and_kept_once() {
        let mut e = IndexEntries::default();
        for (t, u) in [(20, "b"), (10, "a"), (20, "c"), (20, "b"), (10, "a"), (15, "a")] {
            e.insert(t, u);
        }
        let items: Vec<(i64, &str)> = e.items.iter().map(|(t, u)| (*t, u.as_str())).collect();
        assert_eq!(items, [(10, "a"), (15, "a"), (20, "b"), (20, "c")]);
        assert_eq!(e.units(10, 20), ["a", "b", "c"]);
    }
}
