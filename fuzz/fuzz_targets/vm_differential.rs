//! Structured input → a well-typed deck and tag values (missing and wrong-typed ones too);
//! the VM, driven like a host with suspend/resume, must decide exactly what the reference
//! tree-walking evaluator (tests/common/reference.rs) decides.
#![no_main]

use std::collections::HashMap;

use arbitrary::Unstructured;
use ruledeck::vm::{FieldValue, Input, Step};

#[path = "../../tests/common/reference.rs"]
mod reference;

use reference::{Provided, RefValue};

const CATALOG: &str = r#"
entity user key uid
tag user.i: int from "p"
tag user.j: int from "p"
tag user.f: float from "p"
tag user.s: text from "p"
tag user.b: bool from "p"
tag user.t: time from "p"
tag user.e: enum(red, green, blue) from "p"
tag user.l: list<int> from "p"
tag user.w: list<text> from "p"
tag ctx.c: enum(app, h5) passthrough
layer lay by uid
"#;

const TAGS: [&str; 9] = ["user.i", "user.j", "user.f", "user.s", "user.b", "user.t", "user.e", "user.l", "user.w"];
const NOW: i64 = 1_795_000_000;
const INTS: [i64; 8] = [0, 1, -1, 7, 30, i64::MAX, i64::MIN, 1_000_000];
const TEXTS: [&str; 4] = ["", "phone", "Smartphone", "tv"];
const OPS: [&str; 6] = ["==", "!=", "<", "<=", ">", ">="];

fn pick<'a, T: Copy>(u: &mut Unstructured<'a>, xs: &[T]) -> arbitrary::Result<T> {
    Ok(xs[u.choose_index(xs.len())?])
}

fn int(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    if u.arbitrary::<bool>()? { pick(u, &INTS) } else { Ok(i64::from(u.int_in_range(-50i8..=50)?)) }
}

/// An int literal as source text (`- 5` style is avoided; i64::MIN is written as one literal).
fn lit(i: i64) -> String {
    i.to_string()
}

fn cond(u: &mut Unstructured<'_>, depth: u32, rules: usize) -> arbitrary::Result<String> {
    let composite = depth < 4 && u.ratio(2, 5)?;
    if composite {
        return Ok(match u.int_in_range(0..=2)? {
            0 => format!("({} and {})", cond(u, depth + 1, rules)?, cond(u, depth + 1, rules)?),
            1 => format!("({} or {})", cond(u, depth + 1, rules)?, cond(u, depth + 1, rules)?),
            _ => format!("not ({})", cond(u, depth + 1, rules)?),
        });
    }
    Ok(match u.int_in_range(0..=13)? {
        0 => format!("user.i {} {}", pick(u, &OPS)?, lit(int(u)?)),
        1 => format!("user.f {} {}.5", pick(u, &OPS)?, u.int_in_range(-3i8..=40)?),
        2 => format!("user.i {} user.j", pick(u, &OPS)?),
        3 => format!("user.i between {} and {}", lit(int(u)?), lit(int(u)?)),
        4 => {
            let negated = if u.arbitrary()? { "not in" } else { "in" };
            let members: Vec<&str> = ["red", "green", "blue"].into_iter().filter(|_| u.arbitrary().unwrap_or(false)).collect();
            format!("user.e {negated} [{}]", members.join(", "))
        }
        5 => {
            let op = pick(u, &["==", "!=", "contains", "not contains", "starts_with", "ends_with"])?;
            format!("user.s {op} \"{}\"", pick(u, &TEXTS)?)
        }
        6 => pick(u, &["user.b", "user.b == true", "user.b != false", "not user.b"])?.to_string(),
        7 => match u.int_in_range(0..=3)? {
            0 => format!("user.t within {}d", u.int_in_range(0u8..=40)?),
            1 => format!("user.t older than {}d", u.int_in_range(0u8..=40)?),
            2 => "user.t before @2026-11-01T00:00:00Z".to_string(),
            _ => "user.t after @2026-11-01T00:00:00Z".to_string(),
        },
        8 => match u.int_in_range(0..=4)? {
            0 => format!("user.l contains {}", lit(int(u)?)),
            1 => format!("user.l contains_any [{}, {}]", lit(int(u)?), lit(int(u)?)),
            2 => format!("user.l contains_all [{}]", lit(int(u)?)),
            3 => "user.l is empty".to_string(),
            _ => format!("len(user.l) > {}", u.int_in_range(0u8..=3)?),
        },
        9 => {
            let what = pick(u, &["user.i", "user.s", "(user.i + user.j)", "len(user.w)", "-user.i", "user.e"])?;
            format!("{what} {}", pick(u, &["is missing", "is present"])?)
        }
        10 => format!("ctx.c == {}", pick(u, &["app", "h5"])?),
        11 => format!("(user.i * {} + user.j) / {} > {}", lit(int(u)?), lit(int(u)?), lit(int(u)?)),
        12 if rules > 0 => format!("r{}", u.choose_index(rules)?),
        _ => format!("user.w contains \"{}\"", pick(u, &TEXTS)?),
    })
}

fn value_expr(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    Ok(match u.int_in_range(0..=4)? {
        0 => lit(int(u)?),
        1 => "user.i".to_string(),
        2 => format!("user.i + {}", lit(int(u)?)),
        3 => format!("user.i * user.j - {}", lit(int(u)?)),
        _ => format!("user.j / {} % {}", lit(int(u)?), lit(int(u)?)),
    })
}

fn deck(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let mut src = String::from(CATALOG);
    let rules = u.int_in_range(0..=4)?;
    for r in 0..rules {
        // A rule may use the rules before it, so there are no cycles.
        src.push_str(&format!("rule mixed r{r} = {}\n", cond(u, 1, r)?));
    }
    src.push_str("scene s {\n  keys uid\n  passes ctx.c\n  instance i -> { n: int, x: float } {\n");
    let strategies = u.int_in_range(1..=5)?;
    let mut layered = false;
    for k in 0..strategies {
        src.push_str(&format!("    strategy st{k} when {}", cond(u, 0, rules)?));
        if u.ratio(1, 3)? {
            let name = format!("x{k}");
            let salt = if u.arbitrary()? { format!(" salt \"salt{}\"", u.int_in_range(0..=3)?) } else { String::new() };
            let layer = if !layered && u.arbitrary()? {
                layered = true;
                let start = u.int_in_range(0u8..=99)?;
                format!(" in lay {start}%..{}%", u.int_in_range(start + 1..=100)?)
            } else {
                String::new()
            };
            src.push_str(&format!(" {{\n      experiment {name} by uid{layer}{salt} {{\n"));
            let mut left = 10_000u32;
            for g in 0..u.int_in_range(1..=3)? {
                let share = u.int_in_range(0..=left)?;
                left -= share;
                src.push_str(&format!(
                    "        g{g} {}.{:02}% => {{ n: {}, x: {} }}\n",
                    share / 100,
                    share % 100,
                    value_expr(u)?,
                    value_expr(u)?
                ));
            }
            src.push_str("      }\n    }\n");
        } else {
            src.push_str(&format!(" => {{ n: {}, x: user.f }}\n", value_expr(u)?));
        }
    }
    if u.arbitrary()? {
        src.push_str(&format!("    default => {{ n: {}, x: 0.25 }}\n", value_expr(u)?));
    }
    src.push_str("  }\n}\n");
    Ok(src)
}

fn provided(u: &mut Unstructured<'_>, tag: &str) -> arbitrary::Result<Option<Provided>> {
    // Missing, right-typed, or (sometimes) wrong-typed: bad provider data must count as missing.
    match u.int_in_range(0..=9)? {
        0 | 1 => return Ok(None),
        2 => return Ok(Some(Provided::Text("oops".into()))),
        _ => {}
    }
    Ok(Some(match tag {
        "user.i" | "user.j" => Provided::Int(int(u)?),
        "user.f" => Provided::Float(f64::from(u.int_in_range(-100i16..=100)?) / 4.0),
        "user.s" => Provided::Text(pick(u, &TEXTS)?.to_string()),
        "user.b" => Provided::Bool(u.arbitrary()?),
        "user.t" => Provided::Time(NOW - i64::from(u.int_in_range(-5i32..=60)?) * 86_400),
        "user.e" => Provided::Text(pick(u, &["red", "green", "blue", "purple"])?.to_string()),
        "user.l" => Provided::List((0..u.int_in_range(0..=3)?).map(|_| int(u).map(Provided::Int)).collect::<Result<_, _>>()?),
        _ => Provided::List((0..u.int_in_range(0..=2)?).map(|_| pick(u, &TEXTS).map(|t| Provided::Text(t.into()))).collect::<Result<_, _>>()?),
    }))
}

fn input<'a>(p: &'a Provided, scratch: &'a mut Vec<Input<'a>>) -> Input<'a> {
    fn scalar(p: &Provided) -> Input<'_> {
        match p {
            Provided::Int(i) => Input::Int(*i),
            Provided::Float(f) => Input::Float(*f),
            Provided::Text(s) => Input::Text(s),
            Provided::Bool(b) => Input::Bool(*b),
            Provided::Time(t) => Input::Time(*t),
            Provided::List(_) => Input::List(&[]),
        }
    }
    match p {
        Provided::List(items) => {
            scratch.extend(items.iter().map(scalar));
            Input::List(&scratch[..])
        }
        other => scalar(other),
    }
}

fn field(v: &FieldValue<'_>) -> RefValue {
    match v {
        FieldValue::Int(i) => RefValue::Int(*i),
        FieldValue::Float(f) => RefValue::Float(*f),
        FieldValue::Text(s) => RefValue::Text(s.to_string()),
        FieldValue::Bool(b) => RefValue::Bool(*b),
        FieldValue::Time(t) => RefValue::Time(*t),
        FieldValue::Enum(e) => RefValue::Enum(e.to_string()),
        FieldValue::List(items) => RefValue::List(items.iter().map(field).collect()),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(src) = deck(&mut u) else { return };
    let values: Vec<Option<Provided>> = match TAGS.iter().map(|t| provided(&mut u, t)).collect() {
        Ok(v) => v,
        Err(_) => return,
    };
    let uid = format!("u-{}", u.int_in_range(0u16..=5000).unwrap_or(0));
    let channel = if u.arbitrary().unwrap_or(false) { "app" } else { "h5" };
    // Generated decks may trip a check (e.g. an always-deciding strategy before others):
    // those are the checker's to refuse, not this target's to compare.
    let Ok(checked) = ruledeck::check(&[("gen.rule", &src)]) else { return };
    let program = ruledeck::compile::compile(&checked).expect("checked decks compile");

    // The VM, driven like a host.
    let mut req = program.request("s", "i").unwrap();
    req.key("uid", &uid).unwrap();
    req.pass("ctx.c", Input::Text(channel)).unwrap();
    req.now(NOW);
    let mut asked = Vec::new();
    loop {
        match program.run(&mut req).unwrap() {
            Step::Done => break,
            Step::NeedTags => {
                let needed: Vec<(u32, String)> = req.needed().map(|n| (n.tag, n.name.to_string())).collect();
                assert!(!needed.is_empty());
                for (tag, name) in needed {
                    assert!(!asked.contains(&name), "{name} asked for twice\n{src}");
                    let index = TAGS.iter().position(|t| *t == name).expect("only catalog tags are loaded");
                    match &values[index] {
                        Some(p) => {
                            let mut scratch = Vec::new();
                            req.supply(tag, Some(input(p, &mut scratch)));
                        }
                        None => req.supply(tag, None),
                    }
                    asked.push(name);
                }
            }
        }
    }
    let outcome = req.outcome();

    // The reference, on the same (coerced) values.
    let deck = &checked.deck;
    let mut tags = HashMap::new();
    for (name, value) in TAGS.iter().zip(&values) {
        let id = deck.tags.iter().position(|t| t.name == *name).unwrap() as u32;
        let coerced = value.as_ref().and_then(|p| reference::coerce(deck, &deck.tags[id as usize].ty, p));
        tags.insert(id, coerced);
    }
    let channel_tag = deck.tags.iter().position(|t| t.name == "ctx.c").unwrap() as u32;
    tags.insert(channel_tag, Some(RefValue::Enum(channel.to_string())));
    let keys = HashMap::from([("uid".to_string(), uid.clone())]);
    let expected = reference::evaluate(deck, "s", "i", &keys, &tags, NOW);

    let got = reference::RefOutcome {
        strategy: outcome.strategy().map(str::to_string),
        experiment: outcome.experiment().map(str::to_string),
        group: outcome.group().map(str::to_string),
        bucket: outcome.bucket(),
        fields: outcome.fields().map(|(_, v)| field(&v)).collect(),
    };
    assert_eq!(got, expected, "VM and reference disagree on\n{src}\nvalues {values:?} uid {uid} channel {channel}");
});
