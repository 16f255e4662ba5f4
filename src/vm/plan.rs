//! What the VM precomputes from a verified program, so that a decision does not rediscover
//! it from the bytecode every time.
//!
//! Owns: the per-instance plan (how each `when`, rule body and decision is best run: a lone
//! tag comparison without the interpreter, a decision made only of constants as a ready
//! slice of values, anything else as a block for the interpreter; each `when` compiled for
//! the direct tier when it can be, see `tree.rs`) and prepared needles for text constants.
//! Must not: change what anything means. Every plan is the same evaluation as the bytecode
//! it was made from (`tests/differential.rs` holds the VM to the reference evaluator), and
//! shared rule bodies still go through the rule cache, so each rule runs at most once per
//! block evaluation, as the interpreter's `CallRule` does.
//!
//! Built by the verifier as its last step (it is derived data, never serialized), so a
//! program from a bundle gets the same plan as a freshly compiled one.

use super::machine::{const_val, Needle};
use super::tree::{Compiled, CondFn, Trees};
use super::value::Val;
use crate::compile::instr::Instr;
use crate::compile::program::{Block, Const, OutcomeInfo, Program};

/// The precomputed plans of a program (empty until the verifier builds them).
#[derive(Debug, Default)]
pub(crate) struct Plans {
    /// Per scene, per instance.
    pub scenes: Vec<Vec<InstancePlan>>,
    /// Per rule: how its body runs.
    pub rules: Vec<Cond>,
    /// The field values of every constant decision, back to back (see [`Decision::Const`]).
    pub values: Vec<Val>,
    /// Per constant of the pool: a text constant prepared for searching (see [`Needle`]),
    /// built once, so `contains` searches without setting up a searcher per evaluation.
    pub needles: Vec<Option<Needle>>,
    /// Per constant set: its enum members as a bit mask, when every one is below 64 (an
    /// enum value is then in the set by one bit test; it never equals a non-enum element).
    pub enum_masks: Vec<Option<u64>>,
    /// The rule bodies of the direct tier, compiled (see [`Direct`]).
    pub compiled: Compiled,
}

/// One instance: its strategies in order and its default.
#[derive(Debug, Default)]
pub(crate) struct InstancePlan {
    pub strategies: Vec<StrategyPlan>,
    pub default: Option<Decision>,
}

/// One strategy: its `when`, and its decision (`None` for an experiment) or its
/// experiment's group decisions (empty otherwise).
#[derive(Debug)]
pub(crate) struct StrategyPlan {
    pub when: When,
    /// How its `when` runs in the direct tier.
    pub direct: Direct,
    pub decision: Option<Decision>,
    pub groups: Vec<Decision>,
}

/// How a `when` is evaluated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum When {
    /// No `when`: always holds.
    Always,
    /// The `when` names one rule: the rule's result (through the rule cache).
    Rule(u32),
    /// Anything else.
    Cond(Cond),
}

/// How a `when` runs in the direct tier: over loaded tags, as a tree (see `vm/tree.rs`),
/// before any suspension and without a trace.
#[derive(Debug)]
pub(crate) enum Direct {
    /// No `when`: always holds.
    Always,
    /// The `when` names rule `0`, whose body is a tree (it counts its own block).
    Rule(u32),
    /// The `when`'s tree, compiled (one block entered).
    Tree(CondFn),
    /// Not a tree: the general path evaluates it.
    No,
}

/// How a condition block (a `when` or a rule body) is evaluated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cond {
    /// One comparison of a tag with a constant (the instruction), without the interpreter.
    Compare(Instr),
    /// Whether tag `slot` is (`negated`: is not) in constant set `set`.
    TagInSet { slot: u16, set: u32, negated: bool },
    /// `first and second` (`or`: `first or second`), each a tag comparison or a rule whose
    /// body is one: the block `first, AndJump/OrJump, second, And/Or, Return`, short
    /// circuit included, without the interpreter.
    Pair { first: Atom, second: Atom, or: bool },
    /// The interpreter runs the block.
    Block(Block),
}

/// One side of a [`Cond::Pair`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Atom {
    /// A tag compared with a constant (the instruction).
    Compare(Instr),
    /// A rule whose body is planned as a [`Cond::Compare`] or [`Cond::TagInSet`], through
    /// the rule cache as `CallRule`. Only such rules: evaluating one never comes back here,
    /// so a chain of rules never nests native calls.
    Rule(u32),
}

/// How a decision block is evaluated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Decision {
    /// Only constants: its field values are `values[start..start + len]`, all known.
    Const { start: u32, len: u32 },
    /// The interpreter runs the block.
    Block(Block),
}

/// Builds the plans of a verified program.
pub(crate) fn build(p: &Program) -> Plans {
    let mut trees = Trees::build(p);
    let leaves: Vec<Cond> = p.rules.iter().map(|r| leaf(p, r.block)).collect();
    let mut values = Vec::new();
    let mut decision = |block: Block| match constant_fields(p, block) {
        Some(fields) => {
            let start = values.len() as u32;
            values.extend_from_slice(&fields);
            Decision::Const { start, len: fields.len() as u32 }
        }
        None => Decision::Block(block),
    };
    let scenes = p
        .scenes
        .iter()
        .map(|scene| {
            scene
                .instances
                .iter()
                .map(|inst| InstancePlan {
                    strategies: inst
                        .strategies
                        .iter()
                        .map(|st| StrategyPlan {
                            when: match st.when {
                                None => When::Always,
                                Some(block) => match *p.block_code(block) {
                                    [Instr::CallRule(rule), Instr::Return] => When::Rule(rule),
                                    _ => When::Cond(pair(p, block, &leaves).unwrap_or_else(|| leaf(p, block))),
                                },
                            },
                            direct: match st.when {
                                None => Direct::Always,
                                Some(block) => match *p.block_code(block) {
                                    [Instr::CallRule(rule), Instr::Return] => match trees.inlined(p, rule) {
                                        Some(body) => Direct::Tree(body),
                                        None if trees.rule_is_tree(rule) => Direct::Rule(rule),
                                        None => Direct::No,
                                    },
                                    _ => trees.condition(p, block).map_or(Direct::No, Direct::Tree),
                                },
                            },
                            decision: match &st.outcome {
                                OutcomeInfo::Decision(block) => Some(decision(*block)),
                                OutcomeInfo::Experiment(_) => None,
                            },
                            groups: match &st.outcome {
                                OutcomeInfo::Decision(_) => Vec::new(),
                                OutcomeInfo::Experiment(x) => x.groups.iter().map(|g| decision(g.decision)).collect(),
                            },
                        })
                        .collect(),
                    default: inst.default.map(&mut decision),
                })
                .collect()
        })
        .collect();
    let rules = p.rules.iter().map(|r| pair(p, r.block, &leaves).unwrap_or_else(|| leaf(p, r.block))).collect();
    let needles = p
        .consts
        .iter()
        .map(|c| match c {
            Const::Text(t) => Some(Needle::new(t.as_bytes())),
            _ => None,
        })
        .collect();
    let enum_masks =
        p.sets.iter().map(|set| set.enums.iter().try_fold(0u64, |mask, &e| (e < 64).then(|| mask | 1 << e))).collect();
    let compiled = trees.compile_rules(p);
    Plans { scenes, rules, values, needles, enum_masks, compiled }
}

fn is_tag_comparison(instr: Instr) -> bool {
    matches!(
        instr,
        Instr::CmpTagConst { .. }
            | Instr::CmpTagInt { .. }
            | Instr::CmpTagEnum { .. }
            | Instr::CmpTagFloat { .. }
            | Instr::CmpTagText { .. }
    )
}

/// A block planned on its own: one comparison, one set test, or the interpreter.
fn leaf(p: &Program, block: Block) -> Cond {
    match *p.block_code(block) {
        [instr, Instr::Return] if is_tag_comparison(instr) => Cond::Compare(instr),
        [Instr::LoadTag(slot), Instr::InSet { set, negated }, Instr::Return] => Cond::TagInSet { slot, set, negated },
        _ => Cond::Block(block),
    }
}

/// A block of two atoms joined by `and` or `or` (see [`Cond::Pair`]); `leaves` are the
/// rules' own plans, which say which rules can be atoms.
fn pair(p: &Program, block: Block, leaves: &[Cond]) -> Option<Cond> {
    let atom = |instr: Instr| match instr {
        Instr::CallRule(rule) => matches!(leaves.get(rule as usize), Some(Cond::Compare(_) | Cond::TagInSet { .. }))
            .then_some(Atom::Rule(rule)),
        instr => is_tag_comparison(instr).then_some(Atom::Compare(instr)),
    };
    // The jump skips the second atom and its join, straight to the `Return`.
    let end = block.start + 4;
    match *p.block_code(block) {
        [a, Instr::AndJump(to), b, Instr::And, Instr::Return] if to == end => {
            Some(Cond::Pair { first: atom(a)?, second: atom(b)?, or: false })
        }
        [a, Instr::OrJump(to), b, Instr::Or, Instr::Return] if to == end => {
            Some(Cond::Pair { first: atom(a)?, second: atom(b)?, or: true })
        }
        _ => None,
    }
}

/// The field values of a decision block made only of known constants, `None` otherwise.
fn constant_fields(p: &Program, block: Block) -> Option<Vec<Val>> {
    let mut fields = Vec::new();
    for &instr in p.block_code(block) {
        let v = match instr {
            Instr::PushBool(b) => Val::bool(b),
            Instr::PushInt(i) => Val::int(i64::from(i)),
            Instr::PushConst(k) => const_val(p, k),
            // The verifier checked the block leaves exactly `n` values, the fields.
            Instr::Decide(n) => return (usize::from(n) == fields.len()).then_some(fields),
            _ => return None,
        };
        if v.is_unknown() {
            return None;
        }
        fields.push(v);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::{Input, RequestError, Step};

    const DECK: &str = r#"
entity user key uid
tag user.age: int from "profile"
tag user.tier: enum(a, b, c) from "crm"
tag user.title: text from "profile"
rule user adult = user.age > 18
scene s {
  keys uid
  instance i -> { n: int } {
    strategy one when adult => { n: 1 }
    strategy two when user.tier in [a, c] => { n: user.age }
    strategy three when user.title contains "phone" => { n: 3 }
    default => { n: 0 }
  }
}
"#;

    fn decide(p: &Program, age: i64, tier: &str, title: &str) -> Result<Option<String>, RequestError> {
        let mut req = p.request("s", "i")?;
        req.key("uid", "u-1")?;
        for (name, value) in
            [("user.age", Input::Int(age)), ("user.tier", Input::Text(tier)), ("user.title", Input::Text(title))]
        {
            req.supply(p.tag(name).unwrap().0, Some(value));
        }
        assert_eq!(p.run(&mut req)?, Step::Done);
        Ok(req.outcome().strategy().map(str::to_string))
    }

    #[test]
    fn plans_pick_the_shapes_they_can_run_without_the_interpreter() {
        let p = crate::compile(&[("deck.rule", DECK)]).unwrap();
        let inst = &p.plans.scenes[0][0];
        assert!(matches!(inst.strategies[0].when, When::Rule(0)));
        assert!(matches!(p.plans.rules[0], Cond::Compare(Instr::CmpTagInt { .. })));
        assert!(matches!(inst.strategies[1].when, When::Cond(Cond::TagInSet { negated: false, .. })));
        assert!(matches!(inst.strategies[1].decision, Some(Decision::Block(_))), "reads a tag");
        assert!(matches!(inst.strategies[2].when, When::Cond(Cond::Block(_))));
        assert!(matches!(inst.strategies[0].decision, Some(Decision::Const { len: 1, .. })));
        assert!(matches!(inst.default, Some(Decision::Const { len: 1, .. })));
        assert_eq!(p.plans.enum_masks, vec![Some(0b101)]);
        assert!(p.plans.needles.iter().flatten().any(|n| n.bytes() == b"phone"));
        assert_eq!(decide(&p, 30, "b", "").unwrap().as_deref(), Some("one"));
        assert_eq!(decide(&p, 10, "c", "").unwrap().as_deref(), Some("two"));
        assert_eq!(decide(&p, 10, "b", "a Smartphone").unwrap().as_deref(), Some("three"));
        let long = format!("{}phone", "x".repeat(100));
        assert_eq!(decide(&p, 10, "b", &long).unwrap().as_deref(), Some("three"), "the finder, past 64 bytes");
        assert_eq!(decide(&p, 10, "b", "phon").unwrap().as_deref(), Some("default"));
    }

    /// `Outcome::constant` says whether the fields came from a constant decision.
    #[test]
    fn outcomes_say_when_their_decision_was_constant() {
        let p = crate::compile(&[("deck.rule", DECK)]).unwrap();
        let constant = |age: i64, tier: &str| {
            let mut req = p.request("s", "i").unwrap();
            req.key("uid", "u-1").unwrap();
            req.supply(p.tag("user.age").unwrap().0, Some(Input::Int(age)));
            req.supply(p.tag("user.tier").unwrap().0, Some(Input::Text(tier)));
            req.supply(p.tag("user.title").unwrap().0, None);
            assert_eq!(p.run(&mut req), Ok(Step::Done));
            (req.outcome().strategy().map(str::to_string), req.outcome().constant())
        };
        assert_eq!(constant(30, "b"), (Some("one".into()), true));
        assert_eq!(constant(10, "a"), (Some("two".into()), false), "`n: user.age` reads a tag");
        assert_eq!(constant(10, "b"), (Some("default".into()), true));
    }

    const PAIRS: &str = r#"
entity user key uid
tag user.age: int from "profile"
tag user.tier: enum(a, b, c) from "crm"
tag user.score: float from "risk"
rule user adult = user.age > 18
rule user gold = user.tier in [a]
rule user both = user.age > 18 and user.score < 0.5
rule user either = adult or user.tier == b
rule user chained = both and gold
scene s {
  keys uid
  instance i -> { n: int } {
    strategy and_rule when adult and user.score >= 0.9 => { n: 1 }
    strategy or_set when gold or user.score < 0.1 => { n: 2 }
    strategy named when both => { n: 3 }
    strategy or_rule when either and user.score > 0.8 => { n: 4 }
    strategy not_a_leaf when chained or user.age == 7 => { n: 5 }
    default => { n: 0 }
  }
}
"#;

    /// The trace (tags read, rules, strategies tried) and the blocks entered for the given
    /// tags (`None`: missing).
    fn strategies_taken(p: &Program, age: Option<i64>, tier: Option<&str>, score: Option<f64>) -> Vec<String> {
        let mut req = p.request("s", "i").unwrap();
        req.key("uid", "u-1").unwrap();
        req.explain(true);
        req.supply(p.tag("user.age").unwrap().0, age.map(Input::Int));
        req.supply(p.tag("user.tier").unwrap().0, tier.map(Input::Text));
        req.supply(p.tag("user.score").unwrap().0, score.map(Input::Float));
        assert_eq!(p.run(&mut req), Ok(Step::Done));
        let mut seen: Vec<String> = req.outcome().trace().iter().map(|e| format!("{e:?}")).collect();
        seen.push(format!("blocks {}", req.blocks_run()));
        seen
    }

    /// Pairs of comparisons and leaf rules are planned as [`Cond::Pair`] and give what the
    /// interpreter gives for the same block, over every mix of true, false and missing.
    #[test]
    fn pairs_are_planned_and_agree_with_the_interpreter() {
        let planned = crate::compile(&[("deck.rule", PAIRS)]).unwrap();
        let inst = &planned.plans.scenes[0][0];
        let pair = |w: When| matches!(w, When::Cond(Cond::Pair { .. }));
        assert!(pair(inst.strategies[0].when), "comparison and a leaf rule");
        assert!(matches!(inst.strategies[1].when, When::Cond(Cond::Pair { or: true, .. })));
        assert!(matches!(inst.strategies[2].when, When::Rule(2)));
        assert!(matches!(planned.plans.rules[2], Cond::Pair { or: false, .. }), "a rule's body");
        assert!(matches!(inst.strategies[3].when, When::Cond(Cond::Block(_))), "`either` is a pair, not a leaf");
        assert!(matches!(inst.strategies[4].when, When::Cond(Cond::Block(_))));
        assert!(matches!(planned.plans.rules[4], Cond::Block(_)), "`both` is a pair, not a leaf");

        // The same program with every condition left to the interpreter.
        let mut interpreted = crate::compile(&[("deck.rule", PAIRS)]).unwrap();
        for rule in 0..interpreted.rules.len() {
            interpreted.plans.rules[rule] = Cond::Block(interpreted.rules[rule].block);
        }
        let blocks: Vec<_> = interpreted.scenes[0].instances[0].strategies.iter().map(|s| s.when).collect();
        for (plan, block) in interpreted.plans.scenes[0][0].strategies.iter_mut().zip(blocks) {
            if let When::Cond(_) = plan.when {
                plan.when = When::Cond(Cond::Block(block.unwrap()));
            }
        }
        let mut cases = 0;
        for age in [None, Some(30), Some(7), Some(10)] {
            for tier in [None, Some("a"), Some("b"), Some("c")] {
                for score in [None, Some(0.05), Some(0.3), Some(0.95)] {
                    assert_eq!(
                        strategies_taken(&planned, age, tier, score),
                        strategies_taken(&interpreted, age, tier, score),
                        "age {age:?}, tier {tier:?}, score {score:?}"
                    );
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 64);
    }

    #[test]
    fn a_bundle_is_planned_when_loaded_and_an_unverified_program_is_refused() {
        let p = crate::compile(&[("deck.rule", DECK)]).unwrap();
        let loaded = Program::from_bundle(&p.to_bundle()).unwrap();
        assert_eq!(decide(&loaded, 30, "b", "").unwrap().as_deref(), Some("one"));
        let unverified: Program = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        match decide(&unverified, 30, "b", "") {
            Err(RequestError::InvalidInput(message)) => assert!(message.contains("not verified"), "{message}"),
            other => panic!("an unverified program ran: {other:?}"),
        }
    }
}
