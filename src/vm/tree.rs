//! The direct tier: condition blocks compiled to closures, for requests whose tags are
//! loaded.
//!
//! Owns: decompiling a condition block (a `when` or a rule body) into an expression tree,
//! compiling the tree into one closure per node, and evaluating those closures over a
//! request without the interpreter's stack, dispatch or suspension bookkeeping. Must not:
//! change what anything means. Every operation goes through the same functions as the
//! interpreter's (`compare_with`, `unary`, `binary`, `between`, `age_test`), evaluates its
//! operands in the same order, and `and`/`or` chains stop where the interpreter's jumps
//! would; rules go through the same rule cache. The one difference is what a tag not
//! loaded yet does: a closure returns `Pending` at once, and the caller evaluates that
//! block the general way, which records what to fetch (see `Program::run_request`).
//!
//! Decompiling is symbolic execution of the block's stack code: each instruction pops the
//! nodes of its operands and pushes its own. Jumps are accepted only in the shape the code
//! generator gives `and`/`or` chains, `a, AndJump(t), b, AndCheck(t), …, z, And` ending at
//! `t` (or the same with `OrJump`, `OrCheck`, `Or`): the jumps only skip the rest of the
//! chain once its value is settled, which is the chain node's short circuit. Anything else
//! (a block that does not end in one value and `Return`) is refused and stays with the
//! interpreter.
//!
//! Evaluating a tree recurses, so trees are at most [`MAX_TREE_HEIGHT`] nodes high,
//! counting the trees of the rules they call; a higher condition stays with the
//! interpreter, whose frames live on the heap.

use super::machine::{between, binary, compare_with, const_val, in_set, text, unary, Needle};
use super::request::Request;
use super::value::{truth, Val};
use crate::compile::instr::Instr;
use crate::compile::program::{Block, Program};
use crate::limits::MAX_TREE_HEIGHT;

/// One node of an expression tree.
#[derive(Clone, Copy, Debug)]
enum Node {
    /// A compare-tag-with-constant instruction (`CmpTag*`): reads its tag itself.
    CompareTag(Instr),
    /// Tag `0`'s value (`LoadTag`).
    Load(u16),
    /// A constant (`PushInt`, `PushConst`, `PushBool`).
    Const(Val),
    /// `instr` applied to the values of `kids[start..start + len]`, in push order.
    Op { instr: Instr, start: u32, len: u32 },
    /// Kleene `and` (`or`: `or`) of `kids[start..start + len]`, left to right, stopping at
    /// the first false (true) one.
    Chain { or: bool, start: u32, len: u32 },
    /// Rule `0`'s result.
    Rule(u32),
}

/// Every expression tree of a program, in one arena; only needed while compiling.
pub(crate) struct Trees {
    nodes: Vec<Node>,
    /// The operands of `Op` and `Chain` nodes, each node's back to back.
    kids: Vec<u32>,
    /// Per rule: the root of its body's tree, when its body is one (and so is the body of
    /// every rule it calls) and the whole is at most [`MAX_TREE_HEIGHT`] high.
    rules: Vec<Option<u32>>,
    /// Per rule with a tree: that tree's height, counting the rules it calls.
    heights: Vec<u32>,
    /// Per rule: how many `CallRule`s name it in the whole program.
    calls: Vec<u32>,
}

impl Trees {
    /// The trees of every rule body of a verified program. Rules are decompiled callees
    /// first, so a `CallRule` knows whether its rule is a tree and how high.
    pub fn build(p: &Program) -> Trees {
        let mut trees = Trees {
            nodes: Vec::new(),
            kids: Vec::new(),
            rules: vec![None; p.rules.len()],
            heights: vec![0; p.rules.len()],
            calls: vec![0; p.rules.len()],
        };
        for instr in &p.code {
            if let Instr::CallRule(rule) = *instr {
                if let Some(n) = trees.calls.get_mut(rule as usize) {
                    *n += 1;
                }
            }
        }
        for rule in callees_first(p) {
            if let Some((root, height)) = trees.decompile(p, p.rules[rule].block) {
                trees.rules[rule] = Some(root);
                trees.heights[rule] = height;
            }
        }
        trees
    }

    /// Whether rule `rule`'s body is a tree.
    pub fn rule_is_tree(&self, rule: u32) -> bool {
        matches!(self.rules.get(rule as usize), Some(Some(_)))
    }

    /// The compiled tree of a condition block (a `when`), `None` when it is not a tree.
    pub fn condition(&mut self, p: &Program, block: Block) -> Option<CondFn> {
        let (root, _) = self.decompile(p, block)?;
        Some(self.compile(p, root))
    }

    /// The compiled body of rule `rule` when one `CallRule` in the whole program names it:
    /// then it is compiled into its caller, without the rule cache, as it can run at most
    /// once per evaluation of that caller anyway (its work counts as part of the caller's
    /// block).
    pub fn inlined(&self, p: &Program, rule: u32) -> Option<CondFn> {
        self.inline_root(rule).map(|root| self.compile(p, root))
    }

    fn inline_root(&self, rule: u32) -> Option<u32> {
        match (self.calls.get(rule as usize), self.rules.get(rule as usize)) {
            (Some(1), Some(&Some(root))) => Some(root),
            _ => None,
        }
    }

    /// Compiles every rule body that is a tree.
    pub fn compile_rules(&self, p: &Program) -> Compiled {
        Compiled { rules: self.rules.iter().map(|root| root.map(|root| self.compile(p, root))).collect() }
    }

    fn decompile(&mut self, p: &Program, block: Block) -> Option<(u32, u32)> {
        let code = p.block_code(block);
        let (nodes, kids) = (self.nodes.len(), self.kids.len());
        let mut d = Decompiler { p, code, base: block.start, trees: self };
        match d.expr(0, 0) {
            Some((root, height, end)) if end + 1 == code.len() && code[end] == Instr::Return => Some((root, height)),
            _ => {
                // Drop what a refused block left behind.
                self.nodes.truncate(nodes);
                self.kids.truncate(kids);
                None
            }
        }
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    fn kids_of(&self, start: u32, len: u32) -> &[u32] {
        &self.kids[start as usize..(start + len) as usize]
    }

    /// Compiles the tree at `node` into one closure per node; each closure holds what its
    /// node reads, so evaluating it decodes nothing. The commonest shapes (a tag compared
    /// with a constant, a tag in a set, a text tag against a text constant) are one
    /// closure each, with their operands read in place.
    fn compile(&self, p: &Program, node: u32) -> CondFn {
        // The instruction is built inside each closure from what it captured, so the
        // operation's `match` folds to its one case there.
        macro_rules! compare_tag {
            ($slot:expr, $instr:expr) => {{
                let slot = $slot;
                CondFn(Box::new(move |req| {
                    let a = req.peek(slot);
                    if a.is_pending() {
                        return a;
                    }
                    compare_with(req.program, &req.slots, $instr, a)
                }))
            }};
        }
        match self.nodes[node as usize] {
            Node::CompareTag(instr) => match instr {
                Instr::CmpTagInt { op, slot, value } => compare_tag!(slot, Instr::CmpTagInt { op, slot, value }),
                Instr::CmpTagEnum { op, slot, member } => compare_tag!(slot, Instr::CmpTagEnum { op, slot, member }),
                Instr::CmpTagFloat { op, slot, konst } => compare_tag!(slot, Instr::CmpTagFloat { op, slot, konst }),
                Instr::CmpTagText { op, slot, konst } => compare_tag!(slot, Instr::CmpTagText { op, slot, konst }),
                Instr::CmpTagConst { op, slot, konst } => compare_tag!(slot, Instr::CmpTagConst { op, slot, konst }),
                _ => CondFn(Box::new(|_| Val::MISSING)),
            },
            Node::Load(slot) => CondFn(Box::new(move |req| req.peek(slot))),
            Node::Const(v) => CondFn(Box::new(move |_| v)),
            Node::Op { instr, start, len } => self.compile_op(p, instr, self.kids_of(start, len)),
            Node::Chain { or, start, len } => {
                let kids: Box<[CondFn]> = self.kids_of(start, len).iter().map(|&k| self.compile(p, k)).collect();
                // The value that ends the chain: false for `and`, true for `or`.
                let settles = or;
                CondFn(Box::new(move |req| {
                    let mut all_known = true;
                    for kid in kids.iter() {
                        let v = kid.call(req);
                        match truth(v) {
                            Some(b) if b == settles => return v,
                            Some(_) => {}
                            None if v.is_pending() => return v,
                            None => all_known = false,
                        }
                    }
                    if all_known {
                        Val::bool(!settles)
                    } else {
                        Val::MISSING
                    }
                }))
            }
            Node::Rule(rule) => match self.inline_root(rule) {
                Some(root) => self.compile(p, root),
                None => CondFn(Box::new(move |req| req.rule_tree(rule))),
            },
        }
    }

    /// An operation on the values of `kids`, each checked for `Pending` before it is used.
    fn compile_op(&self, p: &Program, instr: Instr, kids: &[u32]) -> CondFn {
        let node = |k: u32| self.nodes[k as usize];
        match (instr, kids) {
            (Instr::Not, &[k]) => match node(k) {
                Node::Load(slot) => CondFn(Box::new(move |req| {
                    let a = req.peek(slot);
                    if a.is_pending() {
                        return a;
                    }
                    unary(req.program, &req.slots, Instr::Not, a)
                })),
                _ => {
                    let a = self.compile(p, k);
                    CondFn(Box::new(move |req| {
                        let a = a.call(req);
                        if a.is_pending() {
                            return a;
                        }
                        unary(req.program, &req.slots, Instr::Not, a)
                    }))
                }
            },
            // `tag in [...]`, `tag not in [...]`.
            (Instr::InSet { set, negated }, &[k]) => match node(k) {
                Node::Load(slot) => CondFn(Box::new(move |req| {
                    let a = req.peek(slot);
                    if a.is_pending() {
                        return a;
                    }
                    in_set(req.program, &req.slots, a, set, negated)
                })),
                _ => self.generic_op(p, instr, kids),
            },
            // A text tag against a text constant: the needle is prepared once.
            (Instr::TextContains | Instr::StartsWith | Instr::EndsWith, &[hay, needle]) => {
                match (node(hay), node(needle)) {
                    (Node::Load(slot), Node::Const(c)) if text(p, &[], c).is_some() => {
                        let needle = Needle::new(text(p, &[], c).unwrap_or_default().as_bytes());
                        macro_rules! text_test {
                            ($test:ident) => {
                                CondFn(Box::new(move |req| {
                                    let a = req.peek(slot);
                                    if a.is_pending() {
                                        return a;
                                    }
                                    match text(req.program, &req.slots, a) {
                                        Some(hay) => Val::bool(needle.$test(hay.as_bytes())),
                                        None => Val::MISSING,
                                    }
                                }))
                            };
                        }
                        match instr {
                            Instr::TextContains => text_test!(is_in),
                            Instr::StartsWith => text_test!(starts),
                            _ => text_test!(ends),
                        }
                    }
                    _ => self.generic_op(p, instr, kids),
                }
            }
            _ => self.generic_op(p, instr, kids),
        }
    }

    fn generic_op(&self, p: &Program, instr: Instr, kids: &[u32]) -> CondFn {
        let mut operands = kids.iter().map(|&k| self.compile(p, k));
        macro_rules! operand {
            ($req:ident, $f:ident) => {{
                let v = $f.call($req);
                if v.is_pending() {
                    return v;
                }
                v
            }};
        }
        match (operands.next(), operands.next(), operands.next()) {
            (Some(a), None, None) => match instr {
                Instr::Within(_) | Instr::OlderThan(_) => CondFn(Box::new(move |req| {
                    let a = operand!(req, a);
                    req.age_test(instr, a)
                })),
                _ => CondFn(Box::new(move |req| {
                    let a = operand!(req, a);
                    unary(req.program, &req.slots, instr, a)
                })),
            },
            (Some(a), Some(b), None) => CondFn(Box::new(move |req| {
                let a = operand!(req, a);
                let b = operand!(req, b);
                binary(req.program, &req.slots, instr, a, b)
            })),
            (Some(v), Some(low), Some(high)) => CondFn(Box::new(move |req| {
                let v = operand!(req, v);
                let low = operand!(req, low);
                let high = operand!(req, high);
                between(req.program, &req.slots, v, low, high)
            })),
            // The decompiler makes no other arity.
            _ => CondFn(Box::new(|_| Val::MISSING)),
        }
    }
}

/// The rules in an order where every rule comes after the rules it calls (the verifier has
/// checked that calls form no cycle).
fn callees_first(p: &Program) -> Vec<usize> {
    let calls = |r: usize| {
        p.block_code(p.rules[r].block).iter().filter_map(|i| match i {
            Instr::CallRule(c) => Some(*c as usize),
            _ => None,
        })
    };
    let mut order = Vec::with_capacity(p.rules.len());
    let mut visited = vec![false; p.rules.len()];
    for root in 0..p.rules.len() {
        if visited[root] {
            continue;
        }
        visited[root] = true;
        // (rule, how many of its calls have been followed)
        let mut stack = vec![(root, 0usize)];
        while let Some(&mut (r, ref mut next)) = stack.last_mut() {
            match calls(r).nth(*next) {
                Some(callee) => {
                    *next += 1;
                    if callee < visited.len() && !visited[callee] {
                        visited[callee] = true;
                        stack.push((callee, 0));
                    }
                }
                None => {
                    order.push(r);
                    stack.pop();
                }
            }
        }
    }
    order
}

struct Decompiler<'a> {
    p: &'a Program,
    /// The block's code; `pc`s here index it.
    code: &'a [Instr],
    /// Where the block starts in the program's code (what jump targets count from).
    base: u32,
    trees: &'a mut Trees,
}

impl Decompiler<'_> {
    /// The expression that leaves one value from `pc` up to the next chain separator, join
    /// or `Return`: (node, height, the pc it stops at). `depth` is how deeply chains nest
    /// here, bounded like the height.
    fn expr(&mut self, mut pc: usize, depth: u32) -> Option<(u32, u32, usize)> {
        if depth > MAX_TREE_HEIGHT {
            return None;
        }
        // The symbolic stack: each entry a node and its height.
        let mut stack: Vec<(u32, u32)> = Vec::new();
        loop {
            let instr = *self.code.get(pc)?;
            let (node, height) = match instr {
                Instr::AndJump(target) | Instr::OrJump(target) => {
                    let target = target.checked_sub(self.base)?;
                    let (first, height) = stack.pop()?;
                    let or = matches!(instr, Instr::OrJump(_));
                    let (node, height, next) = self.chain(first, height, pc, target, or, depth)?;
                    stack.push((node, height));
                    pc = next;
                    continue;
                }
                Instr::AndCheck(_) | Instr::OrCheck(_) | Instr::And | Instr::Or | Instr::Return | Instr::Decide(_) => {
                    break
                }
                Instr::CallRule(rule) => {
                    let r = rule as usize;
                    self.trees.rules.get(r).copied().flatten()?;
                    (Node::Rule(rule), 1 + self.trees.heights[r])
                }
                Instr::LoadTag(slot) => (Node::Load(slot), 1),
                Instr::PushInt(_) | Instr::PushConst(_) | Instr::PushBool(_) => {
                    let v = match instr {
                        Instr::PushInt(i) => Val::int(i64::from(i)),
                        Instr::PushConst(k) => const_val(self.p, k),
                        _ => Val::bool(instr == Instr::PushBool(true)),
                    };
                    (Node::Const(v), 1)
                }
                Instr::CmpTagConst { .. }
                | Instr::CmpTagInt { .. }
                | Instr::CmpTagEnum { .. }
                | Instr::CmpTagFloat { .. }
                | Instr::CmpTagText { .. } => (Node::CompareTag(instr), 1),
                _ => {
                    let (pops, pushes) = instr.stack_effect();
                    if pushes != 1 || pops == 0 || pops > 3 || stack.len() < pops as usize {
                        return None;
                    }
                    let operands = stack.split_off(stack.len() - pops as usize);
                    let height = 1 + operands.iter().map(|&(_, h)| h).max().unwrap_or(0);
                    let start = self.trees.kids.len() as u32;
                    self.trees.kids.extend(operands.iter().map(|&(k, _)| k));
                    (Node::Op { instr, start, len: pops }, height)
                }
            };
            if height > MAX_TREE_HEIGHT {
                return None;
            }
            stack.push((self.trees.push(node), height));
            pc += 1;
        }
        match stack[..] {
            [(node, height)] => Some((node, height, pc)),
            _ => None,
        }
    }

    /// The chain that `first` starts with the jump at `pc` to `target` (both in the block).
    fn chain(
        &mut self,
        first: u32,
        first_height: u32,
        pc: usize,
        target: u32,
        or: bool,
        depth: u32,
    ) -> Option<(u32, u32, usize)> {
        let mut operands = vec![first];
        let mut height = first_height;
        let mut pc = pc + 1;
        loop {
            let (node, h, next) = self.expr(pc, depth + 1)?;
            operands.push(node);
            height = height.max(h);
            match (*self.code.get(next)?, or) {
                (Instr::AndCheck(t), false) | (Instr::OrCheck(t), true) if t.checked_sub(self.base) == Some(target) => {
                    pc = next + 1
                }
                // The join is the chain's last instruction: the jumps land right after it.
                (Instr::And, false) | (Instr::Or, true) if next + 1 == target as usize => break,
                _ => return None,
            }
        }
        let start = self.trees.kids.len() as u32;
        let len = operands.len() as u32;
        self.trees.kids.extend(operands);
        let height = height + 1;
        (height <= MAX_TREE_HEIGHT).then_some(())?;
        Some((self.trees.push(Node::Chain { or, start, len }), height, target as usize))
    }
}

/// A condition compiled to a closure: `Bool` or `Missing` (unknown) over the request's
/// loaded tags, or `Pending` as soon as it reads a tag not loaded yet. It leaves the request
/// as it was apart from the rule results it settled (final: they read loaded tags only),
/// the blocks it counts (one per rule body run, as the interpreter counts) and the clock
/// read that `within`/`older than` make, as the interpreter's.
pub(crate) struct CondFn(Box<dyn Fn(&mut Request<'_>) -> Val + Send + Sync>);

impl CondFn {
    #[inline(always)]
    pub fn call(&self, req: &mut Request<'_>) -> Val {
        (self.0)(req)
    }
}

impl std::fmt::Debug for CondFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CondFn")
    }
}

/// The compiled rule bodies of a program's direct tier.
#[derive(Debug, Default)]
pub(crate) struct Compiled {
    /// Per rule: its body's closure, when its body is a tree.
    pub rules: Vec<Option<CondFn>>,
}

impl Request<'_> {
    /// Rule `rule`'s result through the rule cache, its compiled body run on a miss.
    #[inline(always)]
    pub(crate) fn rule_tree(&mut self, rule: u32) -> Val {
        if let Some(v) = self.cached_rule(rule) {
            return v;
        }
        let program = self.program;
        let Some(Some(body)) = program.plans.compiled.rules.get(rule as usize) else { return Val::MISSING };
        let v = body.call(self);
        if !v.is_pending() {
            self.blocks_run += 1;
            self.cache_rule(rule, v, false);
        }
        v
    }

    /// Tag `slot`'s value as loaded (`Pending` if not), recording nothing.
    #[inline(always)]
    fn peek(&self, slot: u16) -> Val {
        self.vals.get(usize::from(slot)).copied().unwrap_or(Val::MISSING)
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::program::Program;
    use crate::limits::MAX_TREE_HEIGHT;
    use crate::vm::plan::Direct;
    use crate::vm::{Input, Step};

    const DECK: &str = r#"
entity user key uid
tag user.age: int from "profile"
tag user.vip: bool from "crm"
tag user.tier: enum(a, b, c) from "crm"
tag user.title: text from "profile"
tag user.score: float from "risk"
tag user.seen: time from "crm"
rule user adult = user.age > 18
rule user shared = user.tier in [a, b]
rule user once = shared and not user.vip
scene s {
  keys uid
  instance i -> { n: int } {
    strategy named when once => { n: 1 }
    strategy chains when (user.age < 5 or user.vip) and not (user.score > 0.5) => { n: 2 }
    strategy texts when user.title contains "phone" and user.title starts_with "Smart" => { n: 3 }
    strategy values when user.age * 2 between 30 and user.score * 100 => { n: 4 }
    strategy presence when user.title is missing or user.seen within 1d => { n: 5 }
    strategy shared_again when shared and adult => { n: 6 }
    strategy reads when adult => { n: user.age }
    default => { n: 0 }
  }
}
"#;

    fn program() -> Program {
        crate::compile(&[("deck.rule", DECK)]).unwrap()
    }

    /// The values of (age, vip, tier, title, score, seen): `None` is missing.
    type Tags<'a> = (Option<i64>, Option<bool>, Option<&'a str>, Option<&'a str>, Option<f64>, Option<i64>);

    /// Decides with every tag supplied up front (the direct tier) or asked for (the general
    /// loop, and `explain` keeps it there): (strategy, fields, tags asked for).
    fn decide(p: &Program, tags: Tags<'_>, up_front: bool) -> (Option<String>, String, usize) {
        let mut req = p.request("s", "i").unwrap();
        req.key("uid", "u-1").unwrap().now(1_800_000_000);
        req.explain(!up_front);
        let (age, vip, tier, title, score, seen) = tags;
        let values = [
            ("user.age", age.map(Input::Int)),
            ("user.vip", vip.map(Input::Bool)),
            ("user.tier", tier.map(Input::Text)),
            ("user.title", title.map(Input::Text)),
            ("user.score", score.map(Input::Float)),
            ("user.seen", seen.map(Input::Time)),
        ];
        let supply = |req: &mut crate::vm::Request<'_>, id: u32| {
            let name = &p.tags[id as usize].name;
            let value = values.iter().find(|(n, _)| n == name).and_then(|(_, v)| *v);
            req.supply(id, value);
        };
        if up_front {
            (0..p.tags.len() as u32).for_each(|id| supply(&mut req, id));
        }
        let mut asked = 0;
        while p.run(&mut req).unwrap() == Step::NeedTags {
            let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
            asked += needed.len();
            needed.into_iter().for_each(|id| supply(&mut req, id));
        }
        let fields = format!("{:?}", req.outcome().fields().collect::<Vec<_>>());
        (req.outcome().strategy().map(str::to_string), fields, asked)
    }

    #[test]
    fn every_condition_of_the_deck_is_compiled_and_shared_rules_keep_their_cache() {
        let p = program();
        let plan = &p.plans.scenes[0][0];
        let kinds: Vec<&str> = plan
            .strategies
            .iter()
            .map(|s| match s.direct {
                Direct::Always => "always",
                Direct::Rule(_) => "rule",
                Direct::Tree(_) => "tree",
                Direct::No => "no",
            })
            .collect();
        // `once` is named once, so it is compiled into the `when`; `adult` is named twice.
        assert_eq!(kinds, ["tree", "tree", "tree", "tree", "tree", "tree", "rule"]);
    }

    /// The direct tier decides what the general loop decides, over a grid of values and
    /// missing tags, and asks for nothing when every tag is supplied.
    #[test]
    fn the_direct_tier_decides_as_the_general_loop() {
        let p = program();
        let mut cases = 0;
        let now = 1_800_000_000;
        for age in [None, Some(3), Some(16), Some(40)] {
            for vip in [None, Some(true), Some(false)] {
                for tier in [None, Some("a"), Some("c")] {
                    for title in [None, Some("Smartphone 15"), Some("a phone")] {
                        for score in [None, Some(0.2), Some(0.9)] {
                            for seen in [None, Some(now - 60), Some(now - 200_000)] {
                                let tags = (age, vip, tier, title, score, seen);
                                let direct = decide(&p, tags, true);
                                let general = decide(&p, tags, false);
                                assert_eq!(direct.2, 0, "{tags:?}: asked for tags that were supplied");
                                assert_eq!((&direct.0, &direct.1), (&general.0, &general.1), "{tags:?}");
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 972);
    }

    /// A run that meets a tag not loaded yet hands over to the general loop at that
    /// strategy: it asks for that strategy's tags only, and decides as the general loop.
    #[test]
    fn a_tag_not_loaded_hands_over_at_its_strategy() {
        let p = program();
        let mut req = p.request("s", "i").unwrap();
        req.key("uid", "u-1").unwrap().now(1_800_000_000);
        let id = |name: &str| p.tag(name).unwrap().0;
        // `named` (tier, vip) is false without `chains`' score.
        req.supply(id("user.tier"), Some(Input::Text("c")));
        req.supply(id("user.vip"), Some(Input::Bool(false)));
        req.supply(id("user.age"), Some(Input::Int(3)));
        assert_eq!(p.run(&mut req), Ok(Step::NeedTags));
        let needed: Vec<&str> = req.needed().map(|n| n.name).collect();
        assert_eq!(needed, ["user.score"]);
        req.supply(id("user.score"), Some(Input::Float(0.1)));
        assert_eq!(p.run(&mut req), Ok(Step::Done));
        assert_eq!(req.outcome().strategy(), Some("chains"));
    }

    /// The one-strategy shape (one `when`, a constant decision and a constant default)
    /// picks the strategy or the default, reads the decision in place, hands over when its
    /// tag is not loaded, and a restarted request decides afresh.
    #[test]
    fn one_strategy_instances_pick_one_of_two_ready_decisions() {
        let src = "entity user key uid\ntag user.age: int from \"p\"\nscene s { keys uid instance i -> { n: int, why: text } {\n\
                   strategy adult when user.age >= 18 => { n: 1, why: \"adult\" }\n\
                   default => { n: 0, why: \"minor or unknown\" } } }\n";
        let p = crate::compile(&[("one.rule", src)]).unwrap();
        let fields = |req: &crate::vm::Request<'_>| format!("{:?}", req.outcome().fields().collect::<Vec<_>>());
        let mut req = p.request("s", "i").unwrap();
        req.key("uid", "u").unwrap();
        assert_eq!(p.run(&mut req), Ok(Step::NeedTags), "the tag is not loaded: handed over, asked for");
        req.supply(0, Some(Input::Int(30)));
        assert_eq!(p.run(&mut req), Ok(Step::Done));
        assert_eq!(req.outcome().strategy(), Some("adult"));
        assert_eq!(fields(&req), r#"[("n", Int(1)), ("why", Text("adult"))]"#);
        assert!(req.outcome().constant());
        for (age, strategy, n) in [(Some(12), "default", 0), (None, "default", 0), (Some(18), "adult", 1)] {
            req.reset();
            req.key("uid", "u").unwrap();
            req.supply(0, age.map(Input::Int));
            assert_eq!(p.run(&mut req), Ok(Step::Done), "{age:?}");
            assert_eq!(req.outcome().strategy(), Some(strategy), "{age:?}");
            assert!(fields(&req).starts_with(&format!(r#"[("n", Int({n}))"#)), "{age:?}: {}", fields(&req));
            req.restart();
            assert_eq!(p.run(&mut req), Ok(Step::Done), "{age:?}, restarted");
            assert_eq!(req.outcome().strategy(), Some(strategy), "{age:?}, restarted");
        }
    }

    /// Conditions higher than `MAX_TREE_HEIGHT`, directly or through the rules they call,
    /// stay with the interpreter, and decide the same.
    #[test]
    fn conditions_too_high_for_a_tree_stay_with_the_interpreter() {
        let nots = MAX_TREE_HEIGHT as usize;
        let deep = format!("{}user.age > 18{}", "not (".repeat(nots), ")".repeat(nots));
        let mut rules = String::from("rule user r0 = user.age > 1\n");
        for i in 1..=20 {
            rules.push_str(&format!("rule user r{i} = r{} and user.age != {}\n", i - 1, 100 + i));
        }
        let src = format!(
            "entity user key uid\ntag user.age: int from \"p\"\n{rules}scene s {{ keys uid instance i -> {{ n: int }} {{\n\
             strategy deep when {deep} => {{ n: 1 }}\n strategy chained when r20 => {{ n: 2 }}\n\
             strategy shallow when not (not (user.age > 18)) => {{ n: 3 }}\n default => {{ n: 0 }} }} }}\n"
        );
        let p = crate::compile(&[("deep.rule", &src)]).unwrap();
        let plan = &p.plans.scenes[0][0];
        assert!(matches!(plan.strategies[0].direct, Direct::No), "{} nots", nots);
        assert!(matches!(plan.strategies[1].direct, Direct::No), "20 rules, each called once");
        assert!(matches!(plan.strategies[2].direct, Direct::Tree(_)));
        for (age, expected) in [(40, "deep"), (10, "chained"), (0, "default")] {
            let mut req = p.request("s", "i").unwrap();
            req.key("uid", "u").unwrap();
            req.supply(0, Some(Input::Int(age)));
            assert_eq!(p.run(&mut req), Ok(Step::Done));
            // 32 `not`s: `deep` is `user.age > 18`; `chained` is `user.age > 1`.
            assert_eq!(req.outcome().strategy(), Some(expected), "age {age}");
        }
    }
}
