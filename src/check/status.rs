//! Tag status judged against a release: which items are unchanged since it.
//!
//! Owns: the fingerprint of a checkable item (a rule, a strategy's `when`, a decision, an
//! experiment or layer unit) and the [`Baseline`] a release hands the checker. A `draft`
//! or `disabled` tag may be used only by an item whose fingerprint the baseline holds:
//! an item that is new or changed since the release gets E0303, an unchanged one keeps
//! working. Must not: know where a baseline is stored (that is the release layer's).
//!
//! A fingerprint covers the item's kind, its place (`rule NAME`, `when SCENE.INSTANCE.
//! STRATEGY`, …) and its source text with runs of whitespace collapsed, so re-indenting or
//! re-wrapping an item keeps it unchanged while any other edit makes it new.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::Checker;
use crate::source::Span;

/// The items of a release, for judging tag status against it.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    /// The release compared with, named in diagnostics.
    pub release: u64,
    /// Fingerprints of every item the release holds (see [`fingerprint`]).
    pub items: HashSet<String>,
}

/// The fingerprint of an item: 32 hex digits of SHA-256 over its kind, place and source
/// text with whitespace collapsed.
pub fn fingerprint(kind: &str, place: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b" ");
    h.update(place.as_bytes());
    h.update(b"\n");
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            h.update(b" ");
        }
        h.update(word.as_bytes());
    }
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The item being checked.
pub(super) struct Item {
    pub kind: &'static str,
    pub place: String,
    pub fingerprint: String,
}

impl Item {
    /// How diagnostics name the item: "rule `lapsed`", "the `when` of `payment.cod.waive_fee`".
    pub fn describe(&self) -> String {
        match self.kind {
            "rule" => format!("rule `{}`", self.place),
            "when" => format!("the `when` of `{}`", self.place),
            other => format!("the {other} of `{}`", self.place),
        }
    }

    /// The item's kind as a noun: "rule", "`when`", "decision", "unit".
    pub fn noun(&self) -> &'static str {
        if self.kind == "when" {
            "`when`"
        } else {
            self.kind
        }
    }
}

impl Checker<'_> {
    /// Starts checking an item: tag uses inside it are judged by whether it is released.
    pub(super) fn enter_item(&mut self, kind: &'static str, place: String, span: Span) {
        let text = self.sources.map_or("", |s| {
            let file = s.get(span.file);
            file.text.get(span.start as usize..span.end as usize).unwrap_or("")
        });
        let fingerprint = fingerprint(kind, &place, text);
        self.items.push(fingerprint.clone());
        self.item = Some(Item { kind, place, fingerprint });
    }

    pub(super) fn leave_item(&mut self) {
        self.item = None;
    }

    /// Whether the item being checked is unchanged since the baseline release.
    pub(super) fn item_released(&self) -> bool {
        match (self.baseline, &self.item) {
            (Some(b), Some(item)) => b.items.contains(&item.fingerprint),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn whitespace_does_not_change_an_item_other_edits_do() {
        let a = fingerprint("rule", "lapsed", "rule user lapsed = user.last_order_at older than 90d");
        let b = fingerprint("rule", "lapsed", "rule user lapsed =\n    user.last_order_at   older than 90d");
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("rule", "lapsed", "rule user lapsed = user.last_order_at older than 60d"));
        assert_ne!(a, fingerprint("when", "lapsed", "rule user lapsed = user.last_order_at older than 90d"));
        assert_ne!(a, fingerprint("rule", "other", "rule user lapsed = user.last_order_at older than 90d"));
        assert_eq!(a.len(), 32);
    }
}
