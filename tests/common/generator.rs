//! The deck and request generator for `tests/differential.rs`: turns a vector of choices into
//! a deck's source text and a request (keys, pass-through values, `now`, and what each tag's
//! provider returns: a value, no value, a failure, or a value of the wrong type).
//!
//! Generation is choice-sequence based: every random decision draws one `u16` from a vector
//! that proptest generates and shrinks, and a drawn 0 always means the simplest option (an
//! exhausted vector reads as zeros). Shrinking the vector therefore shrinks the deck, and a
//! failure prints the shrunk deck and request ([`describe`]).
//!
//! Every deck declares the same tag catalog ([`TAGS`]) and one scene `s` with one instance `i`;
//! decks always check (`generated_decks_check` in `tests/differential.rs` holds it to that).
//! This module makes text and data only: it never runs the VM or the reference evaluator.
#![allow(dead_code)]

use std::fmt::Write as _;

use super::reference::{self, Provided};

/// A fixed "current time" around which generated times cluster (2026-11-18T...Z).
pub const NOW0: i64 = 1_795_000_000;

// ==========================================================================================
// The request
// ==========================================================================================

/// What a tag's provider does in one request.
#[derive(Clone, Debug)]
pub enum Supply {
    NoValue,
    Failed,
    Value(Provided),
}

#[derive(Clone, Debug)]
pub struct Req {
    pub scene: String,
    pub instance: String,
    pub keys: Vec<(String, String)>,
    /// Pass-through tags by name, always well-typed (callers are validated).
    pub passes: Vec<(String, Provided)>,
    /// Loaded tags by name; a tag that is not here has no value.
    pub tags: Vec<(String, Supply)>,
    pub now: i64,
}

impl Req {
    pub fn supply_for(&self, tag: &str) -> Option<&Supply> {
        self.tags.iter().find(|(n, _)| n == tag).map(|(_, s)| s)
    }
}

/// The deck and the request, for a failure message.
pub fn describe(src: &str, r: &Req) -> String {
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

/// The deck (source text) and the request that `choices` describe.
pub fn generate(choices: &[u16]) -> (String, Req) {
    Gen { ch: choices, pos: 0 }.case()
}
