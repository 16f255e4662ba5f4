//! Differential tests: the bytecode VM against the tree-walking reference evaluator
//! (`tests/common/reference.rs`), which is written from the docs alone.
//!
//! The property tests generate decks as *source text* (so parsing, checking, compiling and
//! running are all exercised), plus a request: keys, pass-through values, `now`, and what each
//! tag's provider returns (a value, no value, a failure, or a value of the wrong type). They run
//! the VM like a host does, with the suspend/supply loop, then once more on the same request
//! after `reset`, and compare the outcome with the reference's. They also check that the VM
//! never asks for a tag the instance cannot read (nor for a pass-through tag), and
//! (`vm_asks_for_each_tag_at_most_once`) never asks for a tag twice in one request.
//!
//! Generation is choice-sequence based: every random decision draws one `u16` from a vector
//! that proptest generates and shrinks, and a drawn 0 always means the simplest option (an
//! exhausted vector reads as zeros). Shrinking the vector therefore shrinks the deck, and a
//! failure prints the shrunk deck and request.
//!
//! `PROPTEST_CASES=N` raises the number of cases (default 256; the strict property runs N/2).
//!
//! The deterministic tests check Kleene logic and other corners against both the reference and
//! hand-written expectations, and keep the VM bugs the properties found, minimized, as
//! regression tests. A new VM bug goes there as a test marked `#[ignore = "VM bug: …"]` until
//! it is fixed (if it keeps the properties failing meanwhile, steer the generator around it).

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use common::reference::{self, Provided, RefOutcome, RefValue};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use ruledeck::check::typed::Deck;
use ruledeck::compile::program::Program;
use ruledeck::vm::{FieldValue, Input, Step};

/// A fixed "current time" around which generated times cluster (2026-11-18T...Z).
const NOW0: i64 = 1_795_000_000;

// ==========================================================================================
// Running one request through the VM (like a host) and through the reference
// ==========================================================================================

/// What a tag's provider does in one request.
#[derive(Clone, Debug)]
enum Supply {
    NoValue,
    Failed,
    Value(Provided),
}

#[derive(Clone, Debug)]
struct Req {
    scene: String,
    instance: String,
    keys: Vec<(String, String)>,
    /// Pass-through tags by name, always well-typed (callers are validated).
    passes: Vec<(String, Provided)>,
    /// Loaded tags by name; a tag that is not here has no value.
    tags: Vec<(String, Supply)>,
    now: i64,
}

impl Req {
    fn supply_for(&self, tag: &str) -> Option<&Supply> {
        self.tags.iter().find(|(n, _)| n == tag).map(|(_, s)| s)
    }
}

#[derive(Debug)]
struct VmRun {
    outcome: RefOutcome,
    /// The batches of tags the VM asked for, in order.
    batches: Vec<Vec<String>>,
    /// Tags the VM asked for more than once (in one batch or after they were supplied). The
    /// host loop answers a repeated ask with the same value, as a caching host would.
    repeated: Vec<String>,
}

fn scalar_input(p: &Provided) -> Input<'_> {
    match p {
        Provided::Int(i) => Input::Int(*i),
        Provided::Float(f) => Input::Float(*f),
        Provided::Text(s) => Input::Text(s),
        Provided::Bool(b) => Input::Bool(*b),
        Provided::Time(t) => Input::Time(*t),
        Provided::List(_) => panic!("the generator makes no nested lists"),
    }
}

fn with_input<R>(p: &Provided, f: impl FnOnce(Input<'_>) -> R) -> R {
    match p {
        Provided::List(items) => {
            let items: Vec<Input<'_>> = items.iter().map(scalar_input).collect();
            f(Input::List(&items))
        }
        other => f(scalar_input(other)),
    }
}

fn field_to_ref(v: FieldValue<'_>) -> RefValue {
    match v {
        FieldValue::Int(i) => RefValue::Int(i),
        FieldValue::Float(f) => RefValue::Float(f),
        FieldValue::Text(s) => RefValue::Text(s.to_string()),
        FieldValue::Bool(b) => RefValue::Bool(b),
        FieldValue::Time(t) => RefValue::Time(t),
        FieldValue::Enum(s) => RefValue::Enum(s.to_string()),
        FieldValue::List(items) => RefValue::List(items.into_iter().map(field_to_ref).collect()),
    }
}

/// Runs the request with the suspend/supply loop, then once more on the same `Request` after
/// `reset` (hosts reuse requests), and checks both runs agree. `Err` for a request error or a
/// broken protocol invariant (an endless suspension, a reused request deciding differently).
fn run_vm(program: &Program, r: &Req) -> Result<VmRun, String> {
    let mut req = program.request(&r.scene, &r.instance).map_err(|e| format!("request: {e}"))?;
    let first = decide(program, &mut req, r)?;
    req.reset();
    let again = decide(program, &mut req, r)?;
    if (&again.outcome, &again.batches) != (&first.outcome, &first.batches) {
        return Err(format!("a reused request decided differently:\n  first: {first:?}\n  after reset: {again:?}"));
    }
    Ok(first)
}

fn decide(program: &Program, req: &mut ruledeck::vm::Request<'_>, r: &Req) -> Result<VmRun, String> {
    for (k, v) in &r.keys {
        req.key(k, v).map_err(|e| format!("key: {e}"))?;
    }
    for (t, v) in &r.passes {
        with_input(v, |i| req.pass(t, i).map(|_| ())).map_err(|e| format!("pass: {e}"))?;
    }
    req.now(r.now);
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut repeated = Vec::new();
    let mut seen = HashSet::new();
    loop {
        if batches.len() > program.tags.len() + 2 {
            return Err(format!("the VM keeps suspending (batches so far: {batches:?})"));
        }
        match program.run(req).map_err(|e| format!("run: {e}"))? {
            Step::Done => break,
            Step::NeedTags => {
                let needed: Vec<(u32, String)> = req.needed().map(|n| (n.tag, n.name.to_string())).collect();
                if needed.is_empty() {
                    return Err("NeedTags with no tag needed".into());
                }
                batches.push(needed.iter().map(|n| n.1.clone()).collect());
                for (id, name) in needed {
                    if !seen.insert(id) {
                        repeated.push(name.clone());
                    }
                    match r.supply_for(&name) {
                        None | Some(Supply::NoValue) => req.supply(id, None),
                        Some(Supply::Failed) => req.supply_failure(id, "provider timed out"),
                        Some(Supply::Value(p)) => with_input(p, |i| req.supply(id, Some(i))),
                    }
                }
            }
        }
    }
    let out = req.outcome();
    let outcome = RefOutcome {
        strategy: out.strategy().map(str::to_string),
        experiment: out.experiment().map(str::to_string),
        group: out.group().map(str::to_string),
        bucket: out.bucket(),
        fields: out.fields().map(|(_, v)| field_to_ref(v)).collect(),
    };
    Ok(VmRun { outcome, batches, repeated })
}

fn run_reference(deck: &Deck, r: &Req) -> RefOutcome {
    let keys: HashMap<String, String> = r.keys.iter().cloned().collect();
    let mut tags = HashMap::new();
    for (id, tag) in deck.tags.iter().enumerate() {
        let given = match r.passes.iter().find(|(n, _)| *n == tag.name) {
            Some((_, p)) => Some(p),
            None => match r.supply_for(&tag.name) {
                Some(Supply::Value(p)) => Some(p),
                _ => None,
            },
        };
        tags.insert(id as u32, given.and_then(|p| reference::coerce(deck, &tag.ty, p)));
    }
    reference::evaluate(deck, &r.scene, &r.instance, &keys, &tags, r.now)
}

/// Checks and compiles `src`, runs `r` on the VM and on the reference, and checks that the
/// VM asks only for tags the instance reads (never for pass-through tags). With `strict`, a
/// tag asked for twice is an error too; otherwise it is reported in `VmRun::repeated`.
fn both(src: &str, r: &Req, strict: bool) -> Result<(VmRun, RefOutcome), String> {
    let checked = ruledeck::check(&[("gen.rule", src)]).map_err(|e| format!("deck does not check:\n{e}"))?;
    let program = ruledeck::compile(&[("gen.rule", src)]).map_err(|e| format!("deck does not compile:\n{e}"))?;
    let deck = &checked.deck;
    let vm = run_vm(&program, r)?;
    let reads: BTreeSet<&str> = reference::instance_reads(deck, &r.scene, &r.instance)
        .into_iter()
        .map(|t| deck.tags[t as usize].name.as_str())
        .collect();
    for name in vm.batches.iter().flatten() {
        if !reads.contains(name.as_str()) {
            return Err(format!("the VM asked for `{name}`, which the instance does not read (reads: {reads:?})"));
        }
        if r.passes.iter().any(|(p, _)| p == name) {
            return Err(format!("the VM asked for the pass-through tag `{name}`"));
        }
    }
    if strict && !vm.repeated.is_empty() {
        return Err(format!("the VM asked for {:?} more than once; batches: {:?}", vm.repeated, vm.batches));
    }
    let reference = run_reference(deck, r);
    Ok((vm, reference))
}

fn describe(src: &str, r: &Req) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "--- deck ---\n{src}--- request ---");
    let _ = writeln!(s, "{}.{} now={} keys={:?} passes={:?}", r.scene, r.instance, r.now, r.keys, r.passes);
    for (t, v) in &r.tags {
        let _ = writeln!(s, "  {t}: {v:?}");
    }
    s
}

// ==========================================================================================
// The generator
// ==========================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ent {
    User,
    Item,
    Ctx,
}

/// The field types the generator uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum K {
    Int,
    Float,
    Text,
    Bool,
    Time,
    Tier,
    Chan,
    LText,
    LInt,
    LFloat,
    LChan,
}

const ALL_KINDS: &[K] =
    &[K::Int, K::Float, K::Text, K::Bool, K::Time, K::Tier, K::Chan, K::LText, K::LInt, K::LFloat, K::LChan];
const LIST_KINDS: &[K] = &[K::LText, K::LInt, K::LFloat, K::LChan];
const TIER: &[&str] = &["bronze", "silver", "gold"];
const CHAN: &[&str] = &["app", "h5", "mini"];

impl K {
    fn src(self) -> &'static str {
        match self {
            K::Int => "int",
            K::Float => "float",
            K::Text => "text",
            K::Bool => "bool",
            K::Time => "time",
            K::Tier => "enum(bronze, silver, gold)",
            K::Chan => "enum(app, h5, mini)",
            K::LText => "list<text>",
            K::LInt => "list<int>",
            K::LFloat => "list<float>",
            K::LChan => "list<enum(app, h5, mini)>",
        }
    }

    fn elem(self) -> K {
        match self {
            K::LText => K::Text,
            K::LInt => K::Int,
            K::LFloat => K::Float,
            K::LChan => K::Chan,
            other => panic!("{other:?} is not a list"),
        }
    }
}

/// The fixed tag catalog every generated deck declares.
const TAGS: &[(&str, K, Ent)] = &[
    ("user.age", K::Int, Ent::User),
    ("user.level", K::Int, Ent::User),
    ("user.num_id", K::Int, Ent::User),
    ("user.score", K::Float, Ent::User),
    ("user.ratio", K::Float, Ent::User),
    ("user.name", K::Text, Ent::User),
    ("user.city", K::Text, Ent::User),
    ("user.device", K::Text, Ent::User),
    ("user.vip", K::Bool, Ent::User),
    ("user.flag", K::Bool, Ent::User),
    ("user.seen_at", K::Time, Ent::User),
    ("user.joined_at", K::Time, Ent::User),
    ("user.tier", K::Tier, Ent::User),
    ("user.home", K::Chan, Ent::User),
    ("user.segs", K::LText, Ent::User),
    ("user.nums", K::LInt, Ent::User),
    ("user.fl", K::LFloat, Ent::User),
    ("user.chans", K::LChan, Ent::User),
    ("item.price", K::Int, Ent::Item),
    ("item.rating", K::Float, Ent::Item),
    ("item.cat", K::Text, Ent::Item),
    ("item.fresh", K::Bool, Ent::Item),
    ("item.listed_at", K::Time, Ent::Item),
    ("item.grade", K::Tier, Ent::Item),
    ("item.labels", K::LText, Ent::Item),
    ("ctx.channel", K::Chan, Ent::Ctx),
    ("ctx.n", K::Int, Ent::Ctx),
];

fn header() -> String {
    let mut s = String::from("entity user key uid\nentity item key skuid\n\n");
    for (i, (name, k, ent)) in TAGS.iter().enumerate() {
        match ent {
            Ent::Ctx => {
                let _ = writeln!(s, "tag {name}: {} passthrough", k.src());
            }
            _ => {
                let cache = if i % 3 == 0 { " cache 3m" } else { "" };
                let _ = writeln!(s, "tag {name}: {} from \"p{}\"{cache}", k.src(), i % 4);
            }
        }
    }
    s.push_str("tag user.legacy: int from \"legacy\" disabled\ntag user.beta: text from \"beta\" draft\n\n");
    s
}

const INT_LITS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "-7",
    "30",
    "100_00",
    "9223372036854775807",
    "-9223372036854775808",
    "4611686018427387904",
    "9007199254740993",
    "3_037_000_500",
];

fn float_lits() -> Vec<String> {
    let mut v: Vec<String> = [
        "0.5",
        "0.0",
        "-1.5",
        "2.5",
        "1.0",
        "30.0",
        "0.1",
        "9007199254740992.0",
        "9223372036854775808.0",
        "1_000.5",
        "-0.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("1{}.0", "0".repeat(300)));
    v
}

const TEXTS: &[&str] =
    &["", "a", "ab", "phone", "Phone", "ph", "one", "h", "é", "x y", "say \"hi\"", "12", "a\nb", "aXb", "PHONE"];

const DURATIONS: &[&str] =
    &["0s", "1s", "59s", "1m", "3h", "90d", "1_000s", "9223372036854775807s", "106751991167300d"];

const TIMES: &[i64] = &[
    NOW0,
    NOW0 - 1,
    NOW0 + 1,
    NOW0 - 60,
    NOW0 - 7_776_000,
    NOW0 - 7_776_001,
    0,
    -2_208_988_800,
    253_402_300_799,
    NOW0 - 10_800,
];

const PATTERNS: &[&str] = reference::KNOWN_PATTERNS;

fn text_lit(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            'é' => out.push_str("\\u{e9}"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pct(buckets: u32) -> String {
    if buckets.is_multiple_of(100) {
        format!("{}%", buckets / 100)
    } else {
        format!("{}.{:02}%", buckets / 100, buckets % 100)
    }
}

/// An expression's text, and whether it is free of tags and rules (so it might be a constant).
struct Ex {
    s: String,
    pure: bool,
}

fn lit(s: impl Into<String>) -> Ex {
    Ex { s: s.into(), pure: true }
}

fn rd(s: impl Into<String>) -> Ex {
    Ex { s: s.into(), pure: false }
}

/// What an expression may read.
struct Scope {
    ents: Vec<Ent>,
    rules: Vec<String>,
}

impl Scope {
    fn all(rules: Vec<String>) -> Scope {
        Scope { ents: vec![Ent::User, Ent::Item, Ent::Ctx], rules }
    }

    fn tags(&self, k: K) -> Vec<&'static str> {
        TAGS.iter().filter(|(_, kk, e)| *kk == k && self.ents.contains(e)).map(|t| t.0).collect()
    }
}

struct Gen<'a> {
    ch: &'a [u16],
    pos: usize,
}

impl Gen<'_> {
    /// 0..n; a zero (or an exhausted choice vector) gives 0, the simplest option.
    fn pick(&mut self, n: usize) -> usize {
        assert!(n > 0);
        let c = self.ch.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        usize::from(c) % n
    }

    /// True with the given probability; false on a zero choice.
    fn chance(&mut self, percent: usize) -> bool {
        self.pick(100) >= 100 - percent
    }

    fn one<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.pick(xs.len())]
    }

    fn tag(&mut self, sc: &Scope, k: K) -> Option<&'static str> {
        let ts = sc.tags(k);
        (!ts.is_empty()).then(|| ts[self.pick(ts.len())])
    }

    // ---- literals ------------------------------------------------------------------------

    fn int_lit(&mut self) -> Ex {
        lit(self.one(INT_LITS))
    }

    fn float_lit(&mut self) -> Ex {
        let v = float_lits();
        lit(v[self.pick(v.len())].clone())
    }

    fn text_lit(&mut self) -> Ex {
        lit(text_lit(self.one(TEXTS)))
    }

    fn time_lit(&mut self) -> Ex {
        lit(format!("@{}", reference::format_rfc3339_utc(self.one(TIMES))))
    }

    fn member(&mut self, k: K) -> Ex {
        lit(self.one(if k == K::Tier { TIER } else { CHAN }))
    }

    /// A constant of a scalar kind, as allowed inside list literals.
    fn scalar_const(&mut self, k: K) -> Ex {
        match k {
            K::Int => self.int_lit(),
            K::Float => {
                if self.chance(50) {
                    self.float_lit()
                } else {
                    self.int_lit()
                }
            }
            K::Text => self.text_lit(),
            K::Bool => lit(if self.chance(50) { "true" } else { "false" }),
            K::Time => self.time_lit(),
            K::Tier | K::Chan => self.member(k),
            other => panic!("no scalar constant of {other:?}"),
        }
    }

    fn list_lit(&mut self, elem: K, max: usize) -> Ex {
        let n = self.pick(max + 1);
        let items: Vec<String> = (0..n).map(|_| self.scalar_const(elem).s).collect();
        let trailing = if n > 0 && self.chance(10) { "," } else { "" };
        lit(format!("[{}{trailing}]", items.join(", ")))
    }

    // ---- values --------------------------------------------------------------------------

    fn tag_or(&mut self, sc: &Scope, k: K, fallback: impl FnOnce(&mut Self) -> Ex) -> Ex {
        match self.tag(sc, k) {
            Some(t) => rd(t),
            None => fallback(self),
        }
    }

    /// A numeric value; `int_only` keeps it of type `int`.
    fn num(&mut self, sc: &Scope, depth: u32, int_only: bool) -> Ex {
        let n = if depth == 0 { 5 } else { 7 };
        match self.pick(n) {
            0 => self.int_lit(),
            1 => self.tag_or(sc, K::Int, |g| g.int_lit()),
            2 if !int_only => self.float_lit(),
            3 if !int_only => self.tag_or(sc, K::Float, |g| g.float_lit()),
            2 | 3 => self.tag_or(sc, K::Int, |g| g.int_lit()),
            4 => {
                let lists: Vec<&str> = LIST_KINDS.iter().flat_map(|k| sc.tags(*k)).collect();
                if lists.is_empty() {
                    self.int_lit()
                } else {
                    rd(format!("len({})", lists[self.pick(lists.len())]))
                }
            }
            5 => {
                let first = self.num(sc, depth - 1, int_only);
                let mut s = format!("({}", first.s);
                let mut pure = first.pure;
                for _ in 0..1 + self.pick(3) {
                    let op = self.one(&["+", "-", "*", "/", "%"]);
                    let o = self.num(sc, depth - 1, int_only);
                    let _ = write!(s, " {op} {}", o.s);
                    pure &= o.pure;
                }
                s.push(')');
                Ex { s, pure }
            }
            _ => {
                let inner = self.num(sc, depth - 1, int_only);
                let s = if self.chance(50) { format!("-({})", inner.s) } else { format!("- {}", inner.s) };
                Ex { s, pure: inner.pure }
            }
        }
    }

    /// A value of kind `k` for a decision field (any tag may be read).
    fn field_value(&mut self, k: K) -> Ex {
        let sc = Scope::all(vec![]);
        let from_tag = self.chance(40);
        match k {
            K::Int => self.num(&sc, 2, true),
            K::Float => self.num(&sc, 2, false),
            // A list<int> tag stored in a list<float> field.
            K::LFloat if from_tag && self.chance(30) => rd("user.nums"),
            K::Text | K::Bool | K::Time | K::Tier | K::Chan | K::LText | K::LInt | K::LFloat | K::LChan if from_tag => {
                let sc_k = sc.tags(k);
                if sc_k.is_empty() {
                    self.const_of(k)
                } else {
                    rd(sc_k[self.pick(sc_k.len())])
                }
            }
            _ => self.const_of(k),
        }
    }

    fn const_of(&mut self, k: K) -> Ex {
        match k {
            K::LText | K::LInt | K::LFloat | K::LChan => self.list_lit(k.elem(), 3),
            scalar => self.scalar_const(scalar),
        }
    }

    // ---- conditions ----------------------------------------------------------------------

    fn cond(&mut self, sc: &Scope, depth: u32) -> Ex {
        if depth > 0 && self.chance(45) {
            match self.pick(3) {
                0 | 1 => {
                    let word = if self.pick(2) == 0 { " and " } else { " or " };
                    let n = 2 + self.pick(2);
                    let parts: Vec<Ex> = (0..n).map(|_| self.cond(sc, depth - 1)).collect();
                    let pure = parts.iter().all(|p| p.pure);
                    let s = parts.iter().map(|p| format!("({})", p.s)).collect::<Vec<_>>().join(word);
                    Ex { s, pure }
                }
                _ => {
                    let inner = self.cond(sc, depth - 1);
                    Ex { s: format!("not ({})", inner.s), pure: inner.pure }
                }
            }
        } else {
            self.pred(sc)
        }
    }

    fn pred(&mut self, sc: &Scope) -> Ex {
        match self.pick(11) {
            0 => lit(if self.chance(50) { "true" } else { "false" }),
            1 if !sc.rules.is_empty() => {
                let r = sc.rules[self.pick(sc.rules.len())].clone();
                rd(r)
            }
            1..=3 => self.num_pred(sc),
            4 => self.text_pred(sc),
            5 => self.enum_pred(sc),
            6 => self.bool_pred(sc),
            7 | 8 => self.list_pred(sc),
            _ => self.time_pred(sc),
        }
    }

    fn presence(&mut self, subject: &Ex) -> Ex {
        let word = if self.chance(50) { "is present" } else { "is missing" };
        Ex { s: format!("{} {word}", subject.s), pure: subject.pure }
    }

    fn num_pred(&mut self, sc: &Scope) -> Ex {
        let a = self.num(sc, 2, false);
        let (s, pure) = match self.pick(5) {
            0 => {
                let b = self.int_lit();
                (format!("{} {} {}", a.s, self.one(&["==", "!=", "<", "<=", ">", ">="]), b.s), a.pure)
            }
            1 => {
                let b = self.num(sc, 2, false);
                (format!("{} {} {}", a.s, self.one(&["==", "!=", "<", "<=", ">", ">="]), b.s), a.pure && b.pure)
            }
            2 => {
                let (lo, hi) = (self.num(sc, 1, false), self.num(sc, 1, false));
                (format!("{} between {} and {}", a.s, lo.s, hi.s), a.pure && lo.pure && hi.pure)
            }
            3 => {
                let n = self.pick(4);
                let items: Vec<String> = (0..n).map(|_| self.scalar_const(K::Float).s).collect();
                let word = if self.chance(50) { "not in" } else { "in" };
                (format!("{} {word} [{}]", a.s, items.join(", ")), a.pure)
            }
            _ => return self.presence(&a),
        };
        Ex { s, pure }
    }

    fn text_operand(&mut self, sc: &Scope) -> Ex {
        if self.chance(60) {
            self.tag_or(sc, K::Text, |g| g.text_lit())
        } else {
            self.text_lit()
        }
    }

    fn text_pred(&mut self, sc: &Scope) -> Ex {
        let a = self.text_operand(sc);
        let (s, pure) = match self.pick(8) {
            0 => {
                let b = self.text_operand(sc);
                (format!("{} {} {}", a.s, self.one(&["==", "!="]), b.s), a.pure && b.pure)
            }
            1 => {
                let list = self.list_lit(K::Text, 3);
                let word = if self.chance(50) { "not in" } else { "in" };
                (format!("{} {word} {}", a.s, list.s), a.pure)
            }
            2..=4 => {
                let b = self.text_operand(sc);
                let op = self.one(&["contains", "not contains", "starts_with", "ends_with"]);
                (format!("{} {op} {}", a.s, b.s), a.pure && b.pure)
            }
            5 | 6 => (format!("{} matches {}", a.s, text_lit(self.one(PATTERNS))), a.pure),
            _ => return self.presence(&a),
        };
        Ex { s, pure }
    }

    fn enum_pred(&mut self, sc: &Scope) -> Ex {
        let k = if self.chance(50) { K::Chan } else { K::Tier };
        let Some(t) = self.tag(sc, k) else { return self.num_pred(sc) };
        let m = self.member(k).s;
        let s = match self.pick(6) {
            0 => format!("{t} {} {m}", self.one(&["==", "!="])),
            1 => format!("{m} {} {t}", self.one(&["==", "!="])),
            2 => {
                let t2 = self.tag(sc, k).expect("a tag of this kind exists");
                format!("{t} {} {t2}", self.one(&["==", "!="]))
            }
            3 | 4 => {
                let list = self.list_lit(k, 3);
                let word = if self.chance(50) { "not in" } else { "in" };
                format!("{t} {word} {}", list.s)
            }
            _ => return self.presence(&rd(t)),
        };
        rd(s)
    }

    fn bool_pred(&mut self, sc: &Scope) -> Ex {
        let Some(t) = self.tag(sc, K::Bool) else { return self.num_pred(sc) };
        let s = match self.pick(5) {
            0 => t.to_string(),
            1 => format!("{t} {} {}", self.one(&["==", "!="]), self.one(&["true", "false"])),
            2 => format!("{} == {t}", self.one(&["true", "false"])),
            3 => {
                let t2 = self.tag(sc, K::Bool).expect("a bool tag exists");
                format!("{t} {} {t2}", self.one(&["==", "!="]))
            }
            _ => return self.presence(&rd(t)),
        };
        rd(s)
    }

    fn list_pred(&mut self, sc: &Scope) -> Ex {
        let kinds: Vec<K> = LIST_KINDS.iter().copied().filter(|k| !sc.tags(*k).is_empty()).collect();
        if kinds.is_empty() {
            return self.num_pred(sc);
        }
        let k = self.one(&kinds);
        let t = self.tag(sc, k).expect("a list tag exists");
        let elem = k.elem();
        let s = match self.pick(7) {
            0 | 1 => {
                // The item: a constant, or a tag of the element kind (an int for float lists).
                let item = if self.chance(40) {
                    let tag_kind = if elem == K::Float && self.chance(50) { K::Int } else { elem };
                    self.tag_or(sc, tag_kind, |g| g.scalar_const(elem)).s
                } else {
                    self.scalar_const(elem).s
                };
                let word = if self.chance(50) { "not contains" } else { "contains" };
                format!("{t} {word} {item}")
            }
            2 | 3 => {
                let list = self.list_lit(elem, 3);
                format!("{t} {} {}", self.one(&["contains_any", "contains_all"]), list.s)
            }
            4 => format!("{t} is empty"),
            5 => {
                let n = self.num(sc, 1, false);
                format!("len({t}) {} {}", self.one(&["==", "!=", "<", "<=", ">", ">="]), n.s)
            }
            _ => return self.presence(&rd(t)),
        };
        rd(s)
    }

    fn time_operand(&mut self, sc: &Scope) -> Ex {
        if self.chance(70) {
            self.tag_or(sc, K::Time, |g| g.time_lit())
        } else {
            self.time_lit()
        }
    }

    fn time_pred(&mut self, sc: &Scope) -> Ex {
        let a = self.time_operand(sc);
        let (s, pure) = match self.pick(5) {
            0 | 1 => {
                let b = self.time_operand(sc);
                (format!("{} {} {}", a.s, self.one(&["before", "after"]), b.s), a.pure && b.pure)
            }
            2 | 3 => {
                let d = self.one(DURATIONS);
                (format!("{} {} {d}", a.s, self.one(&["within", "older than"])), a.pure)
            }
            _ => return self.presence(&a),
        };
        Ex { s, pure }
    }

    // ---- declarations --------------------------------------------------------------------

    fn decision(&mut self, fields: &[K]) -> Ex {
        let mut pure = true;
        let parts: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let v = self.field_value(*k);
                pure &= v.pure;
                format!("f{i}: {}", v.s)
            })
            .collect();
        Ex { s: format!("{{ {} }}", parts.join(", ")), pure }
    }

    /// Group shares (in buckets) adding up to at most 10,000.
    fn shares(&mut self) -> Vec<u32> {
        let n = 1 + self.pick(4);
        let total = if self.chance(60) { 10_000 } else { self.pick(10_001) as u32 };
        let mut cuts: Vec<u32> = (0..n - 1).map(|_| self.pick(total as usize + 1) as u32).collect();
        if self.chance(30) {
            // Round shares, the common case in real decks.
            cuts.iter_mut().for_each(|c| *c = *c / 500 * 500);
        }
        cuts.push(0);
        cuts.push(total);
        cuts.sort_unstable();
        cuts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// `experiment NAME by UNIT [in lay A%..B%] [salt "…"] { groups }` and whether the checker
    /// may consider it always deciding.
    fn experiment(&mut self, name: &str, unit: &str, claim: Option<(u32, u32)>, fields: &[K]) -> Ex {
        let mut s = format!("experiment {name} by {unit}");
        if let Some((a, b)) = claim {
            let _ = write!(s, " in lay {}..{}", pct(a), pct(b));
        }
        if self.chance(25) {
            let _ = write!(s, " salt {}", text_lit(self.one(&["s", "x0", "lay", "", "ü-salt", "inst_2611"])));
        }
        s.push_str(" {\n");
        let shares = self.shares();
        let mut pure = true;
        for (i, b) in shares.iter().enumerate() {
            let d = self.decision(fields);
            pure &= d.pure;
            let _ = writeln!(s, "        g{i} {} => {}", pct(*b), d.s);
        }
        s.push_str("      }");
        let by_key = unit == "uid" || unit == "skuid";
        let always = by_key && claim.is_none() && shares.iter().sum::<u32>() == 10_000 && pure;
        Ex { s, pure: always }
    }

    /// Two non-empty, non-overlapping layer claims.
    fn claims(&mut self) -> [(u32, u32); 2] {
        let mut cuts: Vec<u32> = (0..4).map(|_| self.pick(10_001) as u32).collect();
        cuts.sort_unstable();
        if cuts[0] == cuts[1] || cuts[2] == cuts[3] {
            return [(0, 5000), (5000, 10_000)];
        }
        let touching = self.chance(30);
        if touching {
            [(cuts[0], cuts[1]), (cuts[1], cuts[3])]
        } else {
            [(cuts[0], cuts[1]), (cuts[2], cuts[3])]
        }
    }

    fn tag_supply(&mut self, k: K) -> Supply {
        match self.pick(12) {
            0 | 1 => Supply::NoValue,
            2 => Supply::Failed,
            3 => Supply::Value(self.wrong_value()),
            _ => Supply::Value(self.good_value(k)),
        }
    }

    fn int_val(&mut self) -> i64 {
        self.one(&[
            0,
            1,
            -1,
            2,
            3,
            7,
            -7,
            29,
            30,
            31,
            100,
            10_000,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            1 << 53,
            (1 << 53) + 1,
            1 << 62,
            3_037_000_500,
        ])
    }

    fn float_val(&mut self) -> f64 {
        self.one(&[
            0.0,
            0.5,
            -1.5,
            2.5,
            29.999,
            30.0,
            1.0,
            -0.0,
            1e300,
            9_223_372_036_854_775_808.0,
            9_007_199_254_740_992.0,
            f64::MAX,
            5e-324,
            0.1,
            3.0,
        ])
    }

    fn time_val(&mut self) -> i64 {
        if self.chance(15) {
            self.one(&[i64::MIN, i64::MAX, i64::MIN + 1])
        } else {
            self.one(TIMES)
        }
    }

    fn good_scalar(&mut self, k: K) -> Provided {
        match k {
            K::Int => Provided::Int(self.int_val()),
            K::Float => {
                if self.chance(20) {
                    Provided::Int(self.int_val())
                } else {
                    Provided::Float(self.float_val())
                }
            }
            K::Text => Provided::Text(self.one(TEXTS).to_string()),
            K::Bool => Provided::Bool(self.chance(50)),
            K::Time => {
                let t = self.time_val();
                if self.chance(20) && (-62_135_596_800..=253_402_300_799).contains(&t) {
                    Provided::Text(reference::format_rfc3339_utc(t))
                } else {
                    Provided::Time(t)
                }
            }
            K::Tier => Provided::Text(self.one(TIER).to_string()),
            K::Chan => Provided::Text(self.one(CHAN).to_string()),
            other => panic!("{other:?} is not scalar"),
        }
    }

    fn good_value(&mut self, k: K) -> Provided {
        match k {
            K::LText | K::LInt | K::LFloat | K::LChan => {
                let n = self.pick(5);
                Provided::List((0..n).map(|_| self.good_scalar(k.elem())).collect())
            }
            scalar => self.good_scalar(scalar),
        }
    }

    /// A value of an arbitrary (usually wrong) type.
    fn wrong_value(&mut self) -> Provided {
        match self.pick(17) {
            0 => Provided::Int(3),
            1 => Provided::Float(2.5),
            2 => Provided::Text("3".into()),
            3 => Provided::Text("gold".into()),
            4 => Provided::Text("app".into()),
            5 => Provided::Text("soon".into()),
            6 => Provided::Text("2026-02-30T00:00:00Z".into()),
            7 => Provided::Text(reference::format_rfc3339_utc(NOW0)),
            8 => Provided::Bool(true),
            9 => Provided::Time(NOW0),
            10 => Provided::List(vec![]),
            11 => Provided::List(vec![Provided::Int(1)]),
            12 => Provided::List(vec![Provided::Text("a".into())]),
            13 => Provided::Float(f64::NAN),
            14 => Provided::Float(f64::INFINITY),
            15 => Provided::Float(f64::NEG_INFINITY),
            _ => Provided::List(vec![Provided::Text("app".into()), Provided::Int(1)]),
        }
    }

    /// A whole deck and one request for its instance.
    fn case(&mut self) -> (String, Req) {
        let mut src = header();

        // Rules: each may use earlier rules (so there are no cycles), within its kind.
        let mut rules: Vec<(String, &str)> = Vec::new();
        for i in 0..self.pick(7) {
            let kind = self.one(&["mixed", "user", "item", "custom"]);
            let sc = match kind {
                "mixed" => Scope::all(rules.iter().map(|r| r.0.clone()).collect()),
                _ => Scope {
                    ents: vec![match kind {
                        "user" => Ent::User,
                        "item" => Ent::Item,
                        _ => Ent::Ctx,
                    }],
                    rules: rules.iter().filter(|r| r.1 == kind).map(|r| r.0.clone()).collect(),
                },
            };
            let c = self.cond(&sc, 2);
            let name = format!("r{i}");
            let _ = writeln!(src, "rule {kind} {name} = {}", c.s);
            rules.push((name, kind));
        }
        let rule_names: Vec<String> = rules.iter().map(|r| r.0.clone()).collect();

        // Decision type.
        let fields: Vec<K> = (0..self.pick(5)).map(|_| self.one(ALL_KINDS)).collect();
        let ftype: Vec<String> = fields.iter().enumerate().map(|(i, k)| format!("f{i}: {}", k.src())).collect();

        // A layer with two experiments, at random positions among the strategies.
        let layered = self.chance(40);
        let count = 1 + self.pick(6);
        let count = if layered { count.max(2) } else { count };
        let layer_unit = self.one(&["uid", "user.device", "user.num_id"]);
        let claims = self.claims();
        let p1 = self.pick(count);
        let p2 = if count > 1 { (p1 + 1 + self.pick(count - 1)) % count } else { usize::MAX };
        if layered {
            let _ = writeln!(src, "\nlayer lay by {layer_unit}");
        }

        let sc = Scope::all(rule_names);
        let mut body = String::new();
        let mut closed = false; // a strategy that may always decide was emitted: nothing may follow
        for i in 0..count {
            if closed {
                break;
            }
            let when = if self.chance(80) { Some(self.cond(&sc, 3)) } else { None };
            let _ = write!(body, "    strategy s{i}");
            if let Some(w) = &when {
                let _ = write!(body, " when {}", w.s);
            }
            let when_may_hold_always = when.as_ref().is_none_or(|w| w.pure);
            let layer_slot = if !layered {
                None
            } else if i == p1 {
                Some(0)
            } else if i == p2 {
                Some(1)
            } else {
                None
            };
            let always_outcome = if let Some(j) = layer_slot {
                let x = self.experiment(&format!("lx{j}"), layer_unit, Some(claims[j]), &fields);
                let _ = writeln!(body, " {{\n      {}\n    }}", x.s);
                x.pure
            } else if self.chance(30) {
                let unit = self.one(&["uid", "skuid", "user.device", "user.num_id", "item.cat", "item.price", "ctx.n"]);
                let x = self.experiment(&format!("x{i}"), unit, None, &fields);
                let _ = writeln!(body, " {{\n      {}\n    }}", x.s);
                x.pure
            } else {
                let d = self.decision(&fields);
                let _ = writeln!(body, " => {}", d.s);
                d.pure
            };
            closed = when_may_hold_always && always_outcome;
        }
        if !closed && self.chance(60) {
            let d = self.decision(&fields);
            let _ = writeln!(body, "    default => {}", d.s);
        }
        let _ = write!(
            src,
            "\nscene s {{\n  keys uid, skuid\n  passes ctx.channel, ctx.n\n  instance i -> {{ {} }} {{\n{body}  }}\n}}\n",
            ftype.join(", ")
        );

        // The request.
        let uid = self.one(&["u-1001", "u-1", "", "ü-ß", "42", "-7", "u-1002", "u-1003", "u-77"]);
        let skuid = self.one(&["sku-1", "", "9", "sku-77"]);
        let channel = self.one(CHAN);
        let n = self.int_val();
        let now = self.one(&[NOW0, NOW0, NOW0 + 1, NOW0 - 1, 0, i64::MAX, i64::MIN, NOW0 + 7_776_000]);
        let mut tags = Vec::new();
        for (name, k, ent) in TAGS {
            if *ent != Ent::Ctx {
                tags.push((name.to_string(), self.tag_supply(*k)));
            }
        }
        let req = Req {
            scene: "s".into(),
            instance: "i".into(),
            keys: vec![("uid".into(), uid.into()), ("skuid".into(), skuid.into())],
            passes: vec![("ctx.channel".into(), Provided::Text(channel.into())), ("ctx.n".into(), Provided::Int(n))],
            tags,
            now,
        };
        (src, req)
    }
}

/// One property case. `strict`: also fail when the VM asks for a tag twice.
fn run_case(choices: &[u16], strict: bool) -> Result<(), TestCaseError> {
    let (src, req) = Gen { ch: choices, pos: 0 }.case();
    if let Err(e) = ruledeck::check(&[("gen.rule", &src)]) {
        return Err(TestCaseError::fail(format!(
            "generator bug: the deck does not check:\n{e}\n{}",
            describe(&src, &req)
        )));
    }
    match both(&src, &req, strict) {
        Ok((vm, reference)) => {
            if vm.outcome != reference {
                return Err(TestCaseError::fail(format!(
                    "VM and reference disagree\n  vm:        {:?}\n  reference: {reference:?}\n  batches:   {:?}\n{}",
                    vm.outcome,
                    vm.batches,
                    describe(&src, &req)
                )));
            }
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!("{e}\n{}", describe(&src, &req)))),
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures print the minimal deck; no regression file is written into the repo.
        failure_persistence: None,
        max_shrink_iters: 4_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Same outcome as the reference; asks only for tags the instance reads.
    #[test]
    fn vm_agrees_with_reference(choices in prop::collection::vec(any::<u16>(), 0..1500)) {
        run_case(&choices, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: config().cases / 2, ..config() })]

    /// The same, and no tag is asked for twice in one request.
    #[test]
    fn vm_asks_for_each_tag_at_most_once(choices in prop::collection::vec(any::<u16>(), 0..1500)) {
        run_case(&choices, true)?;
    }
}

/// The generator itself: decks it makes from arbitrary choices always check (a generator bug
/// would otherwise only show up as a property failure).
#[test]
fn generated_decks_check() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..64 {
        let choices: Vec<u16> = (0..1500)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u16
            })
            .collect();
        let (src, req) = Gen { ch: &choices, pos: 0 }.case();
        if let Err(e) = ruledeck::check(&[("gen.rule", &src)]) {
            panic!("generator bug: the deck does not check:\n{e}\n{}", describe(&src, &req));
        }
    }
    // The all-zero (fully shrunk) choice sequence is a valid deck too.
    let (src, req) = Gen { ch: &[], pos: 0 }.case();
    if let Err(e) = ruledeck::check(&[("gen.rule", &src)]) {
        panic!("generator bug: the deck does not check:\n{e}\n{}", describe(&src, &req));
    }
}

// ==========================================================================================
// Deterministic tests: Kleene logic through real decks
// ==========================================================================================

const KLEENE_DECK: &str = r#"
entity user key uid
tag user.a: bool from "p"
tag user.b: bool from "p"
tag user.x: int from "p"
tag user.y: int from "p"
rule user ra = user.a
rule user rb = user.b
rule user xa = user.x > 0
rule user yb = user.y > 0

// Each instance shows a condition's truth value: "true" when it holds, "false" when its
// negation holds, "unknown" (the default) when neither does.
scene k {
  keys uid
  instance conj -> { v: text } {
    strategy t when user.a and user.b => { v: "true" }
    strategy f when not (user.a and user.b) => { v: "false" }
    default => { v: "unknown" }
  }
  instance conj_rev -> { v: text } {
    strategy t when user.b and user.a => { v: "true" }
    strategy f when not (user.b and user.a) => { v: "false" }
    default => { v: "unknown" }
  }
  instance disj -> { v: text } {
    strategy t when user.a or user.b => { v: "true" }
    strategy f when not (user.a or user.b) => { v: "false" }
    default => { v: "unknown" }
  }
  instance disj_rev -> { v: text } {
    strategy t when user.b or user.a => { v: "true" }
    strategy f when not (user.b or user.a) => { v: "false" }
    default => { v: "unknown" }
  }
  instance conj_rules -> { v: text } {
    strategy t when ra and rb => { v: "true" }
    strategy f when not (ra and rb) => { v: "false" }
    default => { v: "unknown" }
  }
  instance disj_rules -> { v: text } {
    strategy t when ra or rb => { v: "true" }
    strategy f when not (ra or rb) => { v: "false" }
    default => { v: "unknown" }
  }
  instance conj_cmp -> { v: text } {
    strategy t when user.x > 0 and user.y > 0 => { v: "true" }
    strategy f when not (user.x > 0 and user.y > 0) => { v: "false" }
    default => { v: "unknown" }
  }
  instance disj_cmp -> { v: text } {
    strategy t when xa or yb => { v: "true" }
    strategy f when not (xa or yb) => { v: "false" }
    default => { v: "unknown" }
  }
  instance neg -> { v: text } {
    strategy t when not user.a => { v: "true" }
    strategy f when not (not user.a) => { v: "false" }
    default => { v: "unknown" }
  }
  instance neg_cmp -> { v: text } {
    strategy t when not xa => { v: "true" }
    strategy f when not not (user.x > 0) => { v: "false" }
    default => { v: "unknown" }
  }
}
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tv {
    T,
    F,
    U,
}

const TVS: [Tv; 3] = [Tv::T, Tv::F, Tv::U];

impl Tv {
    fn name(self) -> &'static str {
        match self {
            Tv::T => "true",
            Tv::F => "false",
            Tv::U => "unknown",
        }
    }

    fn strategy(self) -> &'static str {
        match self {
            Tv::T => "t",
            Tv::F => "f",
            Tv::U => "default",
        }
    }

    /// As a bool tag's provider value.
    fn as_bool(self) -> Supply {
        match self {
            Tv::T => Supply::Value(Provided::Bool(true)),
            Tv::F => Supply::Value(Provided::Bool(false)),
            Tv::U => Supply::NoValue,
        }
    }

    /// As an int tag's value, for `x > 0`.
    fn as_positive(self) -> Supply {
        match self {
            Tv::T => Supply::Value(Provided::Int(1)),
            Tv::F => Supply::Value(Provided::Int(-1)),
            Tv::U => Supply::Value(Provided::Text("not a number".into())), // wrong type: missing
        }
    }
}

/// The tables of docs/language.md §5, written out by hand.
fn kleene_and(a: Tv, b: Tv) -> Tv {
    use Tv::*;
    match (a, b) {
        (T, T) => T,
        (T, F) | (F, T) | (F, F) | (F, U) | (U, F) => F,
        (T, U) | (U, T) | (U, U) => U,
    }
}

fn kleene_or(a: Tv, b: Tv) -> Tv {
    use Tv::*;
    match (a, b) {
        (T, _) | (_, T) => T,
        (F, F) => F,
        (F, U) | (U, F) | (U, U) => U,
    }
}

fn kleene_not(a: Tv) -> Tv {
    match a {
        Tv::T => Tv::F,
        Tv::F => Tv::T,
        Tv::U => Tv::U,
    }
}

fn kleene_req(instance: &str, tags: Vec<(String, Supply)>) -> Req {
    Req {
        scene: "k".into(),
        instance: instance.into(),
        keys: vec![("uid".into(), "u-1".into())],
        passes: vec![],
        tags,
        now: NOW0,
    }
}

fn expect_truth(r: &Req, expected: Tv) {
    let (vm, reference) = both(KLEENE_DECK, r, true).unwrap_or_else(|e| panic!("{e}\n{}", describe(KLEENE_DECK, r)));
    let vm = vm.outcome;
    let want = RefOutcome {
        strategy: Some(expected.strategy().into()),
        experiment: None,
        group: None,
        bucket: None,
        fields: vec![RefValue::Text(expected.name().into())],
    };
    assert_eq!(reference, want, "reference vs the docs' table for {}: tags {:?}", r.instance, r.tags);
    assert_eq!(vm, want, "VM vs the docs' table for {}: tags {:?}", r.instance, r.tags);
}

#[test]
fn kleene_and_truth_table() {
    for a in TVS {
        for b in TVS {
            let want = kleene_and(a, b);
            let bools = vec![("user.a".into(), a.as_bool()), ("user.b".into(), b.as_bool())];
            for inst in ["conj", "conj_rev", "conj_rules"] {
                expect_truth(&kleene_req(inst, bools.clone()), want);
            }
            let ints = vec![("user.x".into(), a.as_positive()), ("user.y".into(), b.as_positive())];
            expect_truth(&kleene_req("conj_cmp", ints), want);
        }
    }
}

#[test]
fn kleene_or_truth_table() {
    for a in TVS {
        for b in TVS {
            let want = kleene_or(a, b);
            let bools = vec![("user.a".into(), a.as_bool()), ("user.b".into(), b.as_bool())];
            for inst in ["disj", "disj_rev", "disj_rules"] {
                expect_truth(&kleene_req(inst, bools.clone()), want);
            }
            let ints = vec![("user.x".into(), a.as_positive()), ("user.y".into(), b.as_positive())];
            expect_truth(&kleene_req("disj_cmp", ints), want);
        }
    }
}

#[test]
fn kleene_not_truth_table() {
    for a in TVS {
        let want = kleene_not(a);
        expect_truth(&kleene_req("neg", vec![("user.a".into(), a.as_bool())]), want);
        expect_truth(&kleene_req("neg_cmp", vec![("user.x".into(), a.as_positive())]), want);
    }
}

#[test]
fn kleene_unknown_from_a_failed_provider() {
    // A provider failure is unknown too, exactly like no value.
    let r = kleene_req(
        "disj",
        vec![("user.a".into(), Supply::Failed), ("user.b".into(), Supply::Value(Provided::Bool(false)))],
    );
    expect_truth(&r, Tv::U);
    let r = kleene_req(
        "conj",
        vec![("user.a".into(), Supply::Failed), ("user.b".into(), Supply::Value(Provided::Bool(false)))],
    );
    expect_truth(&r, Tv::F);
}

// ==========================================================================================
// Deterministic tests: other corners of the semantics, against the docs and the reference
// ==========================================================================================

const SPOT_DECK: &str = r#"
entity user key uid
tag user.age: int from "p"
tag user.score: float from "p"
tag user.seen_at: time from "p"
scene s {
  keys uid
  instance gt -> {} {
    strategy t when user.age > user.score => {}
    strategy f when not (user.age > user.score) => {}
  }
  instance eq -> {} {
    strategy t when user.age == user.score => {}
    strategy f when not (user.age == user.score) => {}
  }
  instance chain -> { v: float } { strategy t => { v: user.age + 1 + 0.5 } }
  instance chain_float_first -> { v: float } { strategy t => { v: 0.5 + user.age + 1 } }
  instance divs -> { a: int, b: int, c: int, d: float, e: int } {
    strategy by_zero => { a: 1, b: 1, c: 1, d: 1.0, e: user.age / 0 }
    strategy min_by_minus_one => { a: 1, b: 1, c: 1, d: 1.0, e: -9223372036854775808 / (user.age - 4) }
    strategy t => { a: -7 / 2, b: -7 % 2, c: 7 % -2, d: -7.5 % 2, e: user.age / 2 }
  }
  instance win -> {} {
    strategy t when user.seen_at within 1m => {}
    strategy f when not (user.seen_at within 1m) => {}
  }
  instance old -> {} {
    strategy t when user.seen_at older than 1m => {}
    strategy f when not (user.seen_at older than 1m) => {}
  }
  instance score -> { v: float } { strategy t => { v: user.score } }
  instance seen -> { v: time } { strategy t => { v: user.seen_at } }
}
"#;

/// Exact int/float comparison, arithmetic corners, time windows at their bounds and with
/// overflowing ages, and provider values of the wrong type: the VM, the reference and the
/// expectation written from the docs must all agree.
#[test]
fn semantics_spot_checks() {
    let v = |p: Provided| Supply::Value(p);
    let decided = |s: &str, fields: Vec<RefValue>| RefOutcome {
        strategy: Some(s.into()),
        experiment: None,
        group: None,
        bucket: None,
        fields,
    };
    let none = RefOutcome { strategy: None, experiment: None, group: None, bucket: None, fields: vec![] };
    let two53 = 1_i64 << 53;
    type Case<'a> = (&'a str, Vec<(&'a str, Supply)>, i64, RefOutcome);
    let cases: Vec<Case> = vec![
        // 2^53 + 1 is not 2^53 (exact comparison, no rounding of the int to f64).
        (
            "gt",
            vec![("user.age", v(Provided::Int(two53 + 1))), ("user.score", v(Provided::Float(two53 as f64)))],
            NOW0,
            decided("t", vec![]),
        ),
        (
            "eq",
            vec![("user.age", v(Provided::Int(two53 + 1))), ("user.score", v(Provided::Float(two53 as f64)))],
            NOW0,
            decided("f", vec![]),
        ),
        // i64::MAX < 2^63.
        (
            "gt",
            vec![
                ("user.age", v(Provided::Int(i64::MAX))),
                ("user.score", v(Provided::Float(9_223_372_036_854_775_808.0))),
            ],
            NOW0,
            decided("f", vec![]),
        ),
        (
            "eq",
            vec![
                ("user.age", v(Provided::Int(i64::MAX))),
                ("user.score", v(Provided::Float(9_223_372_036_854_775_808.0))),
            ],
            NOW0,
            decided("f", vec![]),
        ),
        // One operator at a time: MAX + 1 overflows in int before the float operand is reached.
        ("chain", vec![("user.age", v(Provided::Int(i64::MAX)))], NOW0, none.clone()),
        (
            "chain_float_first",
            vec![("user.age", v(Provided::Int(i64::MAX)))],
            NOW0,
            decided("t", vec![RefValue::Float(i64::MAX as f64 + 1.0)]),
        ),
        // Division by zero and MIN / -1 are unknown: those strategies fall through.
        (
            "divs",
            vec![("user.age", v(Provided::Int(3)))],
            NOW0,
            decided(
                "t",
                vec![RefValue::Int(-3), RefValue::Int(-1), RefValue::Int(1), RefValue::Float(-1.5), RefValue::Int(1)],
            ),
        ),
        // `within D`: now - t <= D; `older than D`: now - t > D.
        ("win", vec![("user.seen_at", v(Provided::Time(NOW0 - 60)))], NOW0, decided("t", vec![])),
        ("win", vec![("user.seen_at", v(Provided::Time(NOW0 - 61)))], NOW0, decided("f", vec![])),
        ("old", vec![("user.seen_at", v(Provided::Time(NOW0 - 60)))], NOW0, decided("f", vec![])),
        ("old", vec![("user.seen_at", v(Provided::Time(NOW0 - 61)))], NOW0, decided("t", vec![])),
        ("win", vec![("user.seen_at", v(Provided::Time(i64::MAX)))], NOW0, decided("t", vec![])),
        // now - t overflows: unknown, so neither `within` nor its negation holds.
        ("win", vec![("user.seen_at", v(Provided::Time(i64::MIN)))], NOW0, none.clone()),
        ("old", vec![("user.seen_at", v(Provided::Time(1)))], i64::MIN, none.clone()),
        // Provider values: an int for a float tag is a float, for a time tag epoch seconds; non-finite floats, invalid RFC 3339
        // texts and values of another type are missing; a valid RFC 3339 text is a time.
        ("score", vec![("user.score", v(Provided::Int(3)))], NOW0, decided("t", vec![RefValue::Float(3.0)])),
        ("score", vec![("user.score", v(Provided::Float(f64::NAN)))], NOW0, none.clone()),
        ("score", vec![("user.score", v(Provided::Float(f64::INFINITY)))], NOW0, none.clone()),
        ("score", vec![("user.score", v(Provided::Text("3.0".into())))], NOW0, none.clone()),
        (
            "seen",
            vec![("user.seen_at", v(Provided::Text("2026-11-21T08:00:00Z".into())))],
            NOW0,
            decided("t", vec![RefValue::Time(1_795_248_000)]),
        ),
        ("seen", vec![("user.seen_at", v(Provided::Text("2026-02-30T08:00:00Z".into())))], NOW0, none.clone()),
        // An integer for a time tag is whole seconds since the epoch.
        ("seen", vec![("user.seen_at", v(Provided::Int(5)))], NOW0, decided("t", vec![RefValue::Time(5)])),
    ];
    for (instance, tags, now, want) in cases {
        let r = Req {
            scene: "s".into(),
            instance: instance.into(),
            keys: vec![("uid".into(), "u-1".into())],
            passes: vec![],
            tags: tags.into_iter().map(|(n, s)| (n.to_string(), s)).collect(),
            now,
        };
        let (vm, reference) = both(SPOT_DECK, &r, true).unwrap_or_else(|e| panic!("{e}\n{}", describe(SPOT_DECK, &r)));
        assert_eq!(reference, want, "reference vs expected: {instance} {:?} now={now}", r.tags);
        assert_eq!(vm.outcome, want, "VM vs expected: {instance} {:?} now={now}", r.tags);
    }
}

// ==========================================================================================
// Regression tests: VM bugs the property tests found, minimized (all fixed in c7cfe97
// "Fix five VM discrepancies found by the reference evaluator", except where noted)
// ==========================================================================================

/// Was: a strategy whose experiment is by a tag falls through, and the next suspension lists
/// that unit tag again although it was already supplied (and the next strategy does not read
/// it). Docs §5 "Lazy tags": a tag is loaded at most once per request.
#[test]
fn experiment_unit_tag_is_asked_for_once() {
    let src = r#"
entity user key uid
tag user.device: text from "p"
tag user.age: int from "p"
scene s {
  keys uid
  instance i -> {} {
    strategy s0 { experiment x0 by user.device { g0 0% => {} } }
    strategy s1 when user.age > 3 => {}
  }
}
"#;
    for device in [Supply::NoValue, Supply::Value(Provided::Text("d".into()))] {
        let r = Req {
            scene: "s".into(),
            instance: "i".into(),
            keys: vec![("uid".into(), "u-1".into())],
            passes: vec![],
            tags: vec![("user.device".into(), device), ("user.age".into(), Supply::Value(Provided::Int(5)))],
            now: NOW0,
        };
        let (vm, reference) = both(src, &r, false).unwrap();
        let expected =
            RefOutcome { strategy: Some("s1".into()), experiment: None, group: None, bucket: None, fields: vec![] };
        assert_eq!(reference, expected);
        assert_eq!(vm.outcome, expected);
        // The bug gave [user.device], then [user.device, user.age].
        assert_eq!(vm.batches, vec![vec!["user.device".to_string()], vec!["user.age".to_string()]]);
    }
}

/// Was: a `list<int>` tag stored in a `list<float>` field kept its int elements, although the
/// field's type is `list<float>`. Scalars are converted (an `int` tag in a `float` field comes
/// out as a float), and so are list literals (the checker types `[1]` as `list<float>` there).
/// Docs §3 instance / §8.17: an int is accepted where a float is expected; the decision has
/// the decision type.
#[test]
fn list_int_tag_in_a_list_float_field_reads_back_as_floats() {
    let src = r#"
entity user key uid
tag user.age: int from "p"
tag user.nums: list<int> from "p"
scene s {
  keys uid
  instance i -> { a: float, c: list<float> } {
    strategy s0 => { a: user.age, c: user.nums }
  }
}
"#;
    let r = Req {
        scene: "s".into(),
        instance: "i".into(),
        keys: vec![("uid".into(), "u-1".into())],
        passes: vec![],
        tags: vec![
            ("user.age".into(), Supply::Value(Provided::Int(5))),
            ("user.nums".into(), Supply::Value(Provided::List(vec![Provided::Int(2)]))),
        ],
        now: NOW0,
    };
    let (vm, reference) = both(src, &r, true).unwrap();
    let expected = RefOutcome {
        strategy: Some("s0".into()),
        experiment: None,
        group: None,
        bucket: None,
        fields: vec![RefValue::Float(5.0), RefValue::List(vec![RefValue::Float(2.0)])],
    };
    assert_eq!(reference, expected);
    // The bug gave [Float(5.0), List([Int(2)])].
    assert_eq!(vm.outcome, expected);
}

/// Was: `is missing` / `is present` on a computed value that reads a tag (`(user.age + 1)`,
/// `-user.age`, `len(user.nums)`) was decided without loading the tag: the VM never asked for
/// it and reported the value as missing, so `(user.age + 1) is missing` held with the age 3.
/// Docs §4: `is missing` is allowed on int values (arithmetic included, the checker accepts it);
/// §5: it tests whether the value is unknown. With the age 3, `user.age + 1` is 4: present.
#[test]
fn is_missing_on_a_computed_value_loads_its_tag() {
    let src = r#"
entity user key uid
tag user.age: int from "p"
tag user.nums: list<int> from "p"
scene s {
  keys uid
  instance sum -> {} {
    strategy missing when (user.age + 1) is missing => {}
    strategy present when (user.age + 1) is present => {}
  }
  instance neg -> {} {
    strategy missing when -user.age is missing => {}
    strategy present when -user.age is present => {}
  }
  instance length -> {} {
    strategy missing when len(user.nums) is missing => {}
    strategy present when len(user.nums) is present => {}
  }
}
"#;
    for instance in ["sum", "neg", "length"] {
        let r = Req {
            scene: "s".into(),
            instance: instance.into(),
            keys: vec![("uid".into(), "u-1".into())],
            passes: vec![],
            tags: vec![
                ("user.age".into(), Supply::Value(Provided::Int(3))),
                ("user.nums".into(), Supply::Value(Provided::List(vec![]))),
            ],
            now: NOW0,
        };
        let (vm, reference) = both(src, &r, true).unwrap();
        let expected = RefOutcome {
            strategy: Some("present".into()),
            experiment: None,
            group: None,
            bucket: None,
            fields: vec![],
        };
        assert_eq!(reference, expected, "{instance}");
        // The bug gave strategy `missing`, and no tag was asked for.
        assert_eq!(vm.outcome, expected, "{instance}: batches {:?}", vm.batches);
    }
}

/// Was: `x between LOW and HIGH` with a known `x` outside the range on one side and the other
/// bound unknown answered false (as `x >= LOW and x <= HIGH` in Kleene logic would), so
/// `not (x between 5 and y)` granted with `y` missing. Docs §5: "Comparisons and other
/// predicates with an unknown operand are unknown"; `between` is one predicate (§4), so the
/// result is unknown and neither strategy decides.
#[test]
fn between_with_an_unknown_bound_is_unknown() {
    let src = r#"
entity user key uid
tag user.x: int from "p"
tag user.y: int from "p"
scene s {
  keys uid
  instance high_unknown -> {} {
    strategy t when user.x between 5 and user.y => {}
    strategy f when not (user.x between 5 and user.y) => {}
  }
  instance low_unknown -> {} {
    strategy t when user.x between user.y and 5 => {}
    strategy f when not (user.x between user.y and 5) => {}
  }
}
"#;
    for (instance, x) in [("high_unknown", 1), ("low_unknown", 7)] {
        let r = Req {
            scene: "s".into(),
            instance: instance.into(),
            keys: vec![("uid".into(), "u-1".into())],
            passes: vec![],
            tags: vec![("user.x".into(), Supply::Value(Provided::Int(x)))],
            now: NOW0,
        };
        let (vm, reference) = both(src, &r, true).unwrap();
        let expected = RefOutcome { strategy: None, experiment: None, group: None, bucket: None, fields: vec![] };
        assert_eq!(reference, expected, "{instance}");
        // The bug gave strategy `f`.
        assert_eq!(vm.outcome, expected, "{instance}");
    }
}

/// Fixed in f695fed "Fix rules cached as unknown while sharing a pending tag": a rule evaluated in a condition that suspended for the rule's
/// tag (the same rule used twice, or an earlier clause reading the same tag) came out unknown
/// after the host supplied the tag, and stayed so for the rest of the request.
#[test]
fn rule_reused_after_a_suspension() {
    let cases = [
        // (when of s0, user.x, who should decide)
        ("r0 and r0", 1, "s0"),
        ("user.x > 0 and r0", 1, "s0"),
        ("r0 or r0", -1, "s1"),
    ];
    for (when, x, decider) in cases {
        let src = format!(
            r#"
entity user key uid
tag user.x: int from "p"
rule user r0 = user.x > 0
scene s {{
  keys uid
  instance i -> {{}} {{
    strategy s0 when {when} => {{}}
    strategy s1 when not r0 => {{}}
  }}
}}
"#
        );
        let r = Req {
            scene: "s".into(),
            instance: "i".into(),
            keys: vec![("uid".into(), "u-1".into())],
            passes: vec![],
            tags: vec![("user.x".into(), Supply::Value(Provided::Int(x)))],
            now: NOW0,
        };
        let (vm, reference) = both(&src, &r, true).unwrap();
        let expected =
            RefOutcome { strategy: Some(decider.into()), experiment: None, group: None, bucket: None, fields: vec![] };
        assert_eq!(reference, expected, "when {when}");
        assert_eq!(vm.outcome, expected, "when {when}");
    }
}

/// Was: `-0.0` equals `0.0` for `==`, `!=`, `contains` and `contains_all`, but not for `in`,
/// `not in` and `contains_any`: the same membership question got two answers. (The docs do
/// not single out `-0.0`; with `==` treating it as `0.0`, set membership must too.)
#[test]
fn negative_zero_is_zero_in_sets() {
    let src = r#"
entity user key uid
tag user.score: float from "p"
tag user.fl: list<float> from "p"
scene s {
  keys uid
  instance eq -> {} {
    strategy t when user.score == 0 => {}
    strategy f when user.score != 0 => {}
  }
  instance in_set -> {} {
    strategy t when user.score in [0, 1] => {}
    strategy f when user.score not in [0, 1] => {}
  }
  instance literal -> {} {
    strategy t when - 0.0 in [0.0] => {}
    strategy f when not (- 0.0 in [0.0]) => {}
  }
  instance any -> {} {
    strategy t when user.fl contains_any [0.0] => {}
    strategy f when not (user.fl contains_any [0.0]) => {}
  }
  instance all -> {} {
    strategy t when user.fl contains_all [0.0] => {}
    strategy f when not (user.fl contains_all [0.0]) => {}
  }
}
"#;
    for instance in ["eq", "in_set", "literal", "any", "all"] {
        let r = Req {
            scene: "s".into(),
            instance: instance.into(),
            keys: vec![("uid".into(), "u-1".into())],
            passes: vec![],
            tags: vec![
                ("user.score".into(), Supply::Value(Provided::Float(-0.0))),
                ("user.fl".into(), Supply::Value(Provided::List(vec![Provided::Float(-0.0)]))),
            ],
            now: NOW0,
        };
        let (vm, reference) = both(src, &r, true).unwrap();
        let expected =
            RefOutcome { strategy: Some("t".into()), experiment: None, group: None, bucket: None, fields: vec![] };
        assert_eq!(reference, expected, "{instance}");
        // The bug gave `f` for in_set, literal and any.
        assert_eq!(vm.outcome, expected, "{instance}");
    }
}
