//! What uses a tag: the rules that read it (directly or through other rules), the
//! strategies and instances that depend on them, and the tests that give it.
//!
//! Owns: walking the checked deck for tag uses. Must not: change the deck or judge status.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::check::typed::*;
use crate::Checked;

/// Everything that uses one tag. Each release's manifest records this for every tag, so
/// what a *live* release feeds can be asked without its source files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refs {
    /// The tag asked about.
    pub tag: String,
    /// Rules that read the tag, directly or through other rules; sorted.
    pub rules: Vec<String>,
    /// For rules that read it only through other rules: the rules they use that do.
    pub through: BTreeMap<String, Vec<String>>,
    /// `scene.instance.strategy` (or `scene.instance.default`); in deck order.
    pub strategies: Vec<String>,
    /// `scene.instance`; in deck order.
    pub instances: Vec<String>,
    /// Names of the tests that give the tag a value; in deck order.
    pub tests: Vec<String>,
}

fn value_tags(v: &Value, out: &mut BTreeSet<TagId>) {
    match &v.kind {
        ValueKind::Const(_) => {}
        ValueKind::Tag(t) => {
            out.insert(*t);
        }
        ValueKind::Len(inner) | ValueKind::Neg(inner) => value_tags(inner, out),
        ValueKind::Arith { first, rest } => {
            value_tags(first, out);
            for (_, v) in rest {
                value_tags(v, out);
            }
        }
    }
}

/// Tags a condition reads directly, and rules it calls directly.
fn cond_uses(c: &Cond, tags: &mut BTreeSet<TagId>, rules: &mut BTreeSet<RuleId>) {
    use CondKind::*;
    let vals = |vs: &[&Value], tags: &mut BTreeSet<TagId>| vs.iter().for_each(|v| value_tags(v, tags));
    match &c.kind {
        Const(_) => {}
        Rule(r) => {
            rules.insert(*r);
        }
        Bool(v) | IsEmpty(v) => vals(&[v], tags),
        Not(inner) => cond_uses(inner, tags, rules),
        And(cs) | Or(cs) => cs.iter().for_each(|c| cond_uses(c, tags, rules)),
        Compare { lhs, rhs, .. } => vals(&[lhs, rhs], tags),
        Between { value, low, high } => vals(&[value, low, high], tags),
        InSet { value, .. } | Matches { value, .. } | IsMissing { value, .. } => vals(&[value], tags),
        Text { value, arg, .. } => vals(&[value, arg], tags),
        ListContains { list, item, .. } => vals(&[list, item], tags),
        ListContainsAny { list, .. } | ListContainsAll { list, .. } => vals(&[list], tags),
        Before { value, at } | After { value, at } => vals(&[value, at], tags),
        Within { value, .. } | OlderThan { value, .. } => vals(&[value], tags),
    }
}

/// Every tag a strategy's `when`, decisions and unit read, rules followed transitively.
fn strategy_tags(deck: &Deck, st: &Strategy) -> BTreeSet<TagId> {
    let mut tags = BTreeSet::new();
    let mut rules = BTreeSet::new();
    if let Some(w) = &st.when {
        cond_uses(w, &mut tags, &mut rules);
    }
    match &st.outcome {
        Outcome::Decision(d) => d.values.iter().for_each(|v| value_tags(v, &mut tags)),
        Outcome::Experiment(x) => {
            if let crate::check::typed::Unit::Tag(t) = x.unit {
                tags.insert(t);
            }
            if let Some(claim) = &x.layer {
                if let Some(Layer { unit: crate::check::typed::Unit::Tag(t), .. }) =
                    deck.layers.get(claim.layer as usize)
                {
                    tags.insert(*t);
                }
            }
            for g in &x.groups {
                g.decision.values.iter().for_each(|v| value_tags(v, &mut tags));
            }
        }
    }
    for r in rules {
        tags.extend(deck.rules[r as usize].reads.iter().map(|read| read.tag));
    }
    tags
}

/// Whether rule `r` reads tag `t` in its own body (not only through rules it uses).
fn reads_directly(rule: &Rule, t: TagId) -> bool {
    let mut tags = BTreeSet::new();
    let mut rules = BTreeSet::new();
    cond_uses(&rule.cond, &mut tags, &mut rules);
    tags.contains(&t)
}

fn used_rules(rule: &Rule) -> BTreeSet<RuleId> {
    let mut tags = BTreeSet::new();
    let mut rules = BTreeSet::new();
    cond_uses(&rule.cond, &mut tags, &mut rules);
    rules
}

/// Everything that uses tag `name`; `None` if the deck declares no such tag.
pub fn refs(checked: &Checked, name: &str) -> Option<Refs> {
    let deck = &checked.deck;
    let t = deck.tags.iter().position(|tag| tag.name == name)? as TagId;
    let mut out = Refs { tag: name.to_string(), ..Refs::default() };
    for rule in &deck.rules {
        if !rule.reads.iter().any(|r| r.tag == t) {
            continue;
        }
        out.rules.push(rule.name.clone());
        if !reads_directly(rule, t) {
            let via: Vec<String> = used_rules(rule)
                .into_iter()
                .map(|r| &deck.rules[r as usize])
                .filter(|r| r.reads.iter().any(|read| read.tag == t))
                .map(|r| r.name.clone())
                .collect();
            out.through.insert(rule.name.clone(), via);
        }
    }
    out.rules.sort();
    for scene in &deck.scenes {
        for inst in &scene.instances {
            let place = format!("{}.{}", scene.name, inst.name);
            let mut uses = false;
            for st in &inst.strategies {
                if strategy_tags(deck, st).contains(&t) {
                    out.strategies.push(format!("{place}.{}", st.name));
                    uses = true;
                }
            }
            if let Some(d) = &inst.default {
                let mut tags = BTreeSet::new();
                d.values.iter().for_each(|v| value_tags(v, &mut tags));
                if tags.contains(&t) {
                    out.strategies.push(format!("{place}.default"));
                    uses = true;
                }
            }
            if uses {
                out.instances.push(place);
            }
        }
    }
    out.tests =
        deck.tests.iter().filter(|test| test.tags.iter().any(|(tag, _)| *tag == t)).map(|t| t.name.clone()).collect();
    Some(out)
}

/// The usage index of every tag, for a release's manifest.
pub fn usage(checked: &Checked) -> BTreeMap<String, Refs> {
    checked.deck.tags.iter().filter_map(|tag| refs(checked, &tag.name)).map(|r| (r.tag.clone(), r)).collect()
}
