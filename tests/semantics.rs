//! VM semantics, through real decks and a host loop: the semantics of docs/language.md one behaviour at a time.

use std::collections::HashMap;

use ruledeck::compile::program::Program;
use ruledeck::vm::{ab, Input, RequestError, Step};

const NOW: i64 = 1_795_000_000; // 2026-11-18T…Z

const CATALOG: &str = r#"
entity user key uid
entity item key skuid
tag user.a: bool from "p"
tag user.b: bool from "p"
tag user.n: int from "p"
tag user.m: int from "p"
tag user.f: float from "p"
tag user.name: text from "p"
tag user.seen: time from "p"
tag user.tags: list<text> from "p"
tag user.levels: list<int> from "p"
tag user.stage: enum(new, active) from "p" cache 1m
tag user.device: text from "p"
tag user.number: int from "p"
tag item.price: int from "catalog"
tag ctx.channel: enum(app, h5) passthrough
"#;

fn compile(body: &str) -> Program {
    let src = format!("{CATALOG}\n{body}");
    ruledeck::compile(&[("test.rule", &src)]).unwrap_or_else(|e| panic!("{e}"))
}

/// One decision's observable result.
#[derive(Debug, Default, PartialEq)]
struct Got {
    strategy: Option<String>,
    experiment: Option<String>,
    group: Option<String>,
    bucket: Option<u32>,
    fields: Vec<String>,
    /// Each suspension's batch of needed tags.
    batches: Vec<Vec<String>>,
}

type Tags<'a> = &'a [(&'a str, Option<Input<'a>>)];

/// Runs `scene.instance` like a host: keys, pass-through values, and a provider table
/// (`None` = the provider has no value; tags absent from the table also have none).
fn decide(
    p: &Program,
    scene: &str,
    keys: &[(&str, &str)],
    channel: Option<&str>,
    tags: Tags<'_>,
) -> Result<Got, RequestError> {
    let mut req = p.request(scene, "i")?;
    for (k, v) in keys {
        req.key(k, v)?;
    }
    if let Some(c) = channel {
        req.pass("ctx.channel", Input::Text(c))?;
    }
    req.now(NOW);
    let table: HashMap<&str, Option<Input<'_>>> = tags.iter().copied().collect();
    let mut got = Got::default();
    while p.run(&mut req)? == Step::NeedTags {
        let needed: Vec<(u32, String)> = req.needed().map(|n| (n.tag, n.name.to_string())).collect();
        assert!(!needed.is_empty(), "NeedTags with nothing needed");
        for (tag, name) in &needed {
            assert!(!got.batches.iter().flatten().any(|n| n == name), "{name} requested twice");
            req.supply(*tag, table.get(name.as_str()).copied().flatten());
        }
        got.batches.push(needed.into_iter().map(|(_, n)| n).collect());
    }
    let o = req.outcome();
    got.strategy = o.strategy().map(str::to_string);
    got.experiment = o.experiment().map(str::to_string);
    got.group = o.group().map(str::to_string);
    got.bucket = o.bucket();
    got.fields = o.fields().map(|(n, v)| format!("{n}={v:?}")).collect();
    Ok(got)
}

fn strategy(p: &Program, tags: Tags<'_>) -> Option<String> {
    decide(p, "s", &[("uid", "u-1")], None, tags).unwrap().strategy
}

/// A deck whose single strategy `hit` holds exactly when `cond` is true.
fn when(cond: &str) -> Program {
    compile(&format!("scene s {{ keys uid instance i -> {{ n: int }} {{ strategy hit when {cond} => {{ n: 1 }} }} }}"))
}

fn b(v: Option<bool>) -> Option<Input<'static>> {
    v.map(Input::Bool)
}

#[test]
fn kleene_and_or_not_truth_tables() {
    let values = [Some(true), Some(false), None];
    let and = when("user.a and user.b");
    let or = when("user.a or user.b");
    let not = when("not user.a");
    for x in values {
        for y in values {
            let tags = [("user.a", b(x)), ("user.b", b(y))];
            let k_and = match (x, y) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            let k_or = match (x, y) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            };
            // Only a definite true decides: unknown never grants.
            assert_eq!(strategy(&and, &tags).is_some(), k_and == Some(true), "{x:?} and {y:?}");
            assert_eq!(strategy(&or, &tags).is_some(), k_or == Some(true), "{x:?} or {y:?}");
        }
        let k_not = x.map(|v| !v);
        assert_eq!(strategy(&not, &[("user.a", b(x))]).is_some(), k_not == Some(true), "not {x:?}");
    }
}

#[test]
fn unknown_never_grants_even_negated() {
    for cond in ["user.n > 3", "not (user.n > 3)", "user.n != 3", "not (user.n == 3)", "user.name != \"x\""] {
        assert_eq!(strategy(&when(cond), &[]), None, "{cond} with missing data");
    }
}

#[test]
fn is_missing_and_is_present_are_never_unknown() {
    assert!(strategy(&when("user.n is missing"), &[]).is_some());
    assert!(strategy(&when("user.n is present"), &[("user.n", Some(Input::Int(1)))]).is_some());
    assert!(strategy(&when("not (user.n is present)"), &[]).is_some());
    assert!(strategy(&when("user.n is missing or user.n > 3"), &[]).is_some());
}

#[test]
fn strategies_are_tried_top_to_bottom_then_default_then_none() {
    let p = compile(
        "scene s { keys uid instance i -> { n: int } {
            strategy first when user.n > 10 => { n: 1 }
            strategy second when user.n > 5 => { n: 2 }
            default => { n: 3 } } }
         scene t { keys uid instance i -> { n: int } { strategy only when user.n > 10 => { n: 1 } } }",
    );
    let d = |n: i64| decide(&p, "s", &[("uid", "u")], None, &[("user.n", Some(Input::Int(n)))]).unwrap();
    assert_eq!((d(20).strategy.as_deref(), d(20).fields), (Some("first"), vec!["n=Int(1)".to_string()]));
    assert_eq!(d(7).strategy.as_deref(), Some("second"));
    assert_eq!(d(1).strategy.as_deref(), Some("default"));
    let none = decide(&p, "t", &[("uid", "u")], None, &[("user.n", Some(Input::Int(1)))]).unwrap();
    assert_eq!((none.strategy, none.fields), (None, vec![]));
}

#[test]
fn integer_arithmetic_is_checked_and_truncates_toward_zero() {
    let p = compile(
        "scene s { keys uid instance i -> { q: int, r: int } {
            strategy math when user.n is present => { q: user.n / user.m, r: user.n % user.m }
            default => { q: 0, r: 0 } } }
         scene t { keys uid instance i -> { v: int } {
            strategy overflow when user.n is present => { v: user.n * 2 }
            strategy next => { v: 7 } } }",
    );
    let run = |scene: &str, n: i64, m: i64| {
        decide(&p, scene, &[("uid", "u")], None, &[("user.n", Some(Input::Int(n))), ("user.m", Some(Input::Int(m)))])
            .unwrap()
    };
    assert_eq!(run("s", -7, 2).fields, vec!["q=Int(-3)", "r=Int(-1)"]);
    assert_eq!(run("s", 7, -2).fields, vec!["q=Int(-3)", "r=Int(1)"]);
    // Division by zero makes the value unknown: the strategy does not decide.
    assert_eq!(run("s", 7, 0).strategy.as_deref(), Some("default"));
    // i64::MIN / -1 overflows.
    assert_eq!(run("s", i64::MIN, -1).strategy.as_deref(), Some("default"));
    assert_eq!(run("t", i64::MAX, 0).strategy.as_deref(), Some("next"));
    assert_eq!(run("t", 21, 0).fields, vec!["v=Int(42)"]);
}

#[test]
fn a_decision_with_an_unknown_value_falls_through() {
    let p = compile(
        "scene s { keys uid instance i -> { n: int } {
            strategy uses_tag => { n: user.n + 1 }
            default => { n: 0 } } }
         scene t { keys uid instance i -> { n: int } { default => { n: user.n } } }",
    );
    assert_eq!(decide(&p, "s", &[("uid", "u")], None, &[]).unwrap().strategy.as_deref(), Some("default"));
    // An unknown default decides nothing at all.
    let t = decide(&p, "t", &[("uid", "u")], None, &[]).unwrap();
    assert_eq!((t.strategy, t.fields.len()), (None, 0));
}

#[test]
fn float_arithmetic_mixes_with_ints_and_non_finite_is_unknown() {
    let p = compile(
        "scene s { keys uid instance i -> { x: float } {
            strategy calc when user.f is present => { x: user.f * 2 + user.n }
            default => { x: -1 } } }",
    );
    let run = |f: f64| {
        decide(&p, "s", &[("uid", "u")], None, &[("user.f", Some(Input::Float(f))), ("user.n", Some(Input::Int(1)))])
            .unwrap()
    };
    assert_eq!(run(1.25).fields, vec!["x=Float(3.5)"]);
    assert_eq!(run(f64::MAX).strategy.as_deref(), Some("default"));
}

#[test]
fn ints_and_floats_compare_exactly() {
    // 2^53 + 1 is not representable as f64; a naive conversion would call these equal.
    let p = when("user.n > 9007199254740992.0");
    assert!(strategy(&p, &[("user.n", Some(Input::Int(9_007_199_254_740_993)))]).is_some());
    assert!(strategy(&when("user.n == 2.5"), &[("user.n", Some(Input::Int(2)))]).is_none());
    assert!(strategy(&when("user.n in [2.0, 3.5]"), &[("user.n", Some(Input::Int(2)))]).is_some());
    assert!(strategy(&when("user.f in [2, 3]"), &[("user.f", Some(Input::Float(3.0)))]).is_some());
}

#[test]
fn text_operators_and_regex() {
    let name = |s: &'static str| [("user.name", Some(Input::Text(s)))];
    assert!(strategy(&when("user.name contains \"phone\""), &name("smartphone x")).is_some());
    assert!(strategy(&when("user.name starts_with \"Smart\" and user.name ends_with \"x\""), &name("Smartphone x"))
        .is_some());
    assert!(strategy(&when("user.name not contains \"tv\""), &name("phone")).is_some());
    assert!(strategy(&when("user.name matches \"^1\\\\d{10}$\""), &name("13800138000")).is_some());
    assert!(strategy(&when("user.name matches \"^1\\\\d{10}$\""), &name("1380013800")).is_none());
    assert!(strategy(&when("user.name in [\"a\", \"b\"]"), &name("b")).is_some());
    assert!(strategy(&when("user.name not in [\"a\", \"b\"]"), &name("c")).is_some());
}

#[test]
fn list_operators() {
    let tags = [Input::Text("vip"), Input::Text("new")];
    let levels = [Input::Int(1), Input::Int(5)];
    let t = [("user.tags", Some(Input::List(&tags))), ("user.levels", Some(Input::List(&levels)))];
    assert!(strategy(&when("user.tags contains \"vip\""), &t).is_some());
    assert!(strategy(&when("user.tags not contains \"churn\""), &t).is_some());
    assert!(strategy(&when("user.levels contains_any [5, 9]"), &t).is_some());
    assert!(strategy(&when("user.levels contains_all [1, 5]"), &t).is_some());
    assert!(strategy(&when("user.levels contains_all [1, 9]"), &t).is_none());
    assert!(strategy(&when("len(user.tags) == 2 and not (user.tags is empty)"), &t).is_some());
    assert!(strategy(&when("user.tags is empty"), &[("user.tags", Some(Input::List(&[])))]).is_some());
    assert!(strategy(&when("user.tags contains \"vip\""), &[]).is_none());
}

#[test]
fn time_operators_use_the_requests_now() {
    let seen = |ago: i64| [("user.seen", Some(Input::Time(NOW - ago)))];
    let day = 86_400;
    assert!(strategy(&when("user.seen within 7d"), &seen(7 * day)).is_some());
    assert!(strategy(&when("user.seen within 7d"), &seen(7 * day + 1)).is_none());
    assert!(strategy(&when("user.seen older than 7d"), &seen(7 * day)).is_none());
    assert!(strategy(&when("user.seen older than 7d"), &seen(7 * day + 1)).is_some());
    assert!(strategy(
        &when("user.seen before @2026-01-01T00:00:00Z"),
        &[("user.seen", Some(Input::Text("2025-12-31T23:59:59Z")))]
    )
    .is_some());
    assert!(strategy(
        &when("user.seen after @2026-01-01T00:00:00Z"),
        &[("user.seen", Some(Input::Text("2026-01-01T00:00:00Z")))]
    )
    .is_none());
}

#[test]
fn provider_values_of_the_wrong_type_count_as_missing() {
    let p = when("user.n > 3 or user.n is missing");
    // Text for an int tag: missing, so `is missing` holds. It never crashes, never grants `> 3`.
    assert!(strategy(&p, &[("user.n", Some(Input::Text("12")))]).is_some());
    assert!(strategy(&when("user.n > 3"), &[("user.n", Some(Input::Text("12")))]).is_none());
    assert!(strategy(&when("user.stage == active"), &[("user.stage", Some(Input::Text("unheard-of")))]).is_none());
    assert!(strategy(&when("user.f > 1"), &[("user.f", Some(Input::Float(f64::NAN)))]).is_none());
}

#[test]
fn tags_load_lazily_in_batches_and_at_most_once() {
    let p = compile(
        "scene s { keys uid passes ctx.channel instance i -> { n: int } {
            strategy both when user.n > 1 and user.m > 1 => { n: 1 }
            strategy again when user.n > 0 and user.name == \"x\" => { n: 2 }
            strategy channel when ctx.channel == h5 and user.f > 1.0 => { n: 3 } } }",
    );
    let tags =
        [("user.n", Some(Input::Int(1))), ("user.m", Some(Input::Int(5))), ("user.name", Some(Input::Text("x")))];
    let got = decide(&p, "s", &[("uid", "u")], Some("app"), &tags).unwrap();
    assert_eq!(got.strategy.as_deref(), Some("again"));
    // Both tags of the first condition in one batch; `user.n` is not asked for again; the
    // third strategy is never reached, so `user.f` is never fetched.
    assert_eq!(got.batches, vec![vec!["user.n".to_string(), "user.m".to_string()], vec!["user.name".to_string()]]);
    // A clause decided by a pass-through value needs no load at all.
    let p = compile("scene s { keys uid passes ctx.channel instance i -> { n: int } { strategy c when ctx.channel == h5 and user.f > 1.0 => { n: 3 } } }");
    assert_eq!(decide(&p, "s", &[("uid", "u")], Some("app"), &[]).unwrap().batches, Vec::<Vec<String>>::new());
}

#[test]
fn a_definite_result_does_not_wait_for_pending_tags() {
    // `user.a` true settles the `or`; `user.b` was pending in the same batch but is not needed
    // again after resuming.
    let p = when("user.a or user.b");
    let got = decide(&p, "s", &[("uid", "u")], None, &[("user.a", Some(Input::Bool(true)))]).unwrap();
    assert_eq!(got.strategy.as_deref(), Some("hit"));
    assert_eq!(got.batches.len(), 1);
}

#[test]
fn rules_are_evaluated_once_per_request() {
    let p = compile(
        "rule user r = user.n > 3
         scene s { keys uid instance i -> { n: int } {
            strategy one when r and user.m > 100 => { n: 1 }
            strategy two when r => { n: 2 } } }",
    );
    let mut req = p.request("s", "i").unwrap();
    req.key("uid", "u").unwrap().explain(true).now(NOW);
    while p.run(&mut req).unwrap() == Step::NeedTags {
        let needed: Vec<(u32, String)> = req.needed().map(|n| (n.tag, n.name.to_string())).collect();
        for (tag, name) in needed {
            req.supply(tag, Some(Input::Int(if name == "user.n" { 5 } else { 1 })));
        }
    }
    assert_eq!(req.outcome().strategy(), Some("two"));
    let rule_events =
        req.outcome().trace().iter().filter(|e| matches!(e, ruledeck::vm::TraceEvent::Rule { .. })).count();
    assert_eq!(rule_events, 1);
}

fn experiment_deck() -> Program {
    compile(
        "layer checkout by uid
         scene s { keys uid instance i -> { g: text } {
            strategy exp { experiment inst_2611 by uid { control 50% => { g: \"c\" } treatment 50% => { g: \"t\" } } } } }
         scene partial { keys uid instance i -> { g: text } {
            strategy exp { experiment partial_exp by uid { only 30% => { g: \"only\" } } }
            default => { g: \"outside\" } } }
         scene salted { keys uid instance i -> { g: text } {
            strategy exp { experiment named by uid salt \"inst_2611\" { control 50% => { g: \"c\" } treatment 50% => { g: \"t\" } } } } }
         scene layered { keys uid instance i -> { g: text } {
            strategy left { experiment left_exp by uid in checkout 0%..40% { a 100% => { g: \"left\" } } }
            strategy right { experiment right_exp by uid in checkout 40%..100% { b 100% => { g: \"right\" } } } } }
         scene by_tag { keys uid instance i -> { g: text } {
            strategy t { experiment tag_exp by user.number { x 100% => { g: \"x\" } } }
            default => { g: \"no unit\" } } }",
    )
}

#[test]
fn experiments_follow_the_normative_hash() {
    let p = experiment_deck();
    for i in 0..200 {
        let uid = format!("u-{i}");
        let got = decide(&p, "s", &[("uid", &uid)], None, &[]).unwrap();
        let bucket = ab::bucket("inst_2611", &uid);
        assert_eq!(got.bucket, Some(bucket));
        assert_eq!(got.group.as_deref(), Some(if bucket < 5000 { "control" } else { "treatment" }), "{uid}");
        assert_eq!(got.experiment.as_deref(), Some("inst_2611"));
    }
    // The language reference's example: u-1001 lands in treatment.
    assert_eq!(decide(&p, "s", &[("uid", "u-1001")], None, &[]).unwrap().group.as_deref(), Some("treatment"));
}

#[test]
fn partial_coverage_falls_through_to_the_next_strategy() {
    let p = experiment_deck();
    let (mut inside, mut outside) = (0, 0);
    for i in 0..300 {
        let uid = format!("u-{i}");
        let got = decide(&p, "partial", &[("uid", &uid)], None, &[]).unwrap();
        if ab::bucket("partial_exp", &uid) < 3000 {
            assert_eq!((got.group.as_deref(), got.strategy.as_deref()), (Some("only"), Some("exp")));
            inside += 1;
        } else {
            assert_eq!((got.group, got.strategy.as_deref()), (None, Some("default")));
            outside += 1;
        }
    }
    assert!(inside > 50 && outside > 150, "{inside} {outside}");
}

#[test]
fn salt_overrides_the_experiment_name() {
    let p = experiment_deck();
    for i in 0..100 {
        let uid = format!("u-{i}");
        let plain = decide(&p, "s", &[("uid", &uid)], None, &[]).unwrap();
        let salted = decide(&p, "salted", &[("uid", &uid)], None, &[]).unwrap();
        // Same salt, same split, whatever the experiment is called.
        assert_eq!((plain.bucket, plain.group), (salted.bucket, salted.group));
    }
}

#[test]
fn layers_make_experiments_mutually_exclusive() {
    let p = experiment_deck();
    for i in 0..300 {
        let uid = format!("u-{i}");
        let got = decide(&p, "layered", &[("uid", &uid)], None, &[]).unwrap();
        let layer_bucket = ab::bucket("checkout", &uid);
        let expect = if layer_bucket < 4000 { ("left", "left_exp") } else { ("right", "right_exp") };
        assert_eq!((got.strategy.as_deref(), got.experiment.as_deref()), (Some(expect.0), Some(expect.1)), "{uid}");
        // Group choice uses the experiment's own salt, not the layer's.
        assert_eq!(got.bucket, Some(ab::bucket(expect.1, &uid)));
    }
}

#[test]
fn a_tag_unit_is_hashed_as_decimal_text_and_a_missing_unit_falls_through() {
    let p = experiment_deck();
    let got = decide(&p, "by_tag", &[("uid", "u")], None, &[("user.number", Some(Input::Int(-42)))]).unwrap();
    assert_eq!((got.group.as_deref(), got.bucket), (Some("x"), Some(ab::bucket("tag_exp", "-42"))));
    let missing = decide(&p, "by_tag", &[("uid", "u")], None, &[]).unwrap();
    assert_eq!(missing.strategy.as_deref(), Some("default"));
}

#[test]
fn bad_requests_are_refused_naming_the_field() {
    let p = compile("scene s { keys uid passes ctx.channel instance i -> { n: int } { default => { n: 1 } } }");
    assert_eq!(
        p.request("nope", "i").err(),
        Some(RequestError::UnknownScene { scene: "nope".into(), did_you_mean: None })
    );
    assert!(matches!(p.request("s", "nope"), Err(RequestError::UnknownInstance { .. })));
    let mut req = p.request("s", "i").unwrap();
    assert!(matches!(req.key("skuid", "x"), Err(RequestError::UnknownKey { key, .. }) if key == "skuid"));
    assert!(matches!(req.pass("ctx.other", Input::Text("x")), Err(RequestError::UnknownPass { .. })));
    assert!(
        matches!(req.pass("ctx.channel", Input::Text("tv")), Err(RequestError::InvalidPass { tag, .. }) if tag == "ctx.channel")
    );
    assert!(matches!(req.pass("ctx.channel", Input::Int(1)), Err(RequestError::InvalidPass { .. })));
    assert_eq!(p.run(&mut req), Err(RequestError::MissingKey("uid".into())));
    req.key("uid", "u").unwrap();
    assert_eq!(p.run(&mut req), Err(RequestError::MissingPass("ctx.channel".into())));
    req.pass("ctx.channel", Input::Text("h5")).unwrap();
    assert_eq!(p.run(&mut req), Ok(Step::Done));
}

#[test]
fn a_reset_request_decides_afresh() {
    let p = when("user.n > 3");
    let mut req = p.request("s", "i").unwrap();
    for (n, expect) in [(5, Some("hit")), (1, None), (9, Some("hit"))] {
        req.reset();
        req.key("uid", "u").unwrap();
        while p.run(&mut req).unwrap() == Step::NeedTags {
            let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
            for t in needed {
                req.supply(t, Some(Input::Int(n)));
            }
        }
        assert_eq!(req.outcome().strategy(), expect);
    }
}

/// Regression: a rule whose only tag was already pending (asked for by another clause of the
/// same condition) must not keep its "unknown" for the rest of the request.
#[test]
fn a_rule_reading_an_already_pending_tag_is_not_cached_as_unknown() {
    let p = compile(
        "rule user above = user.n > 10
         rule user below = user.n < 50
         scene s { keys uid instance i -> { ok: bool } {
            strategy yes when above and below => { ok: true }
            default => { ok: false } } }
         scene t { keys uid instance i -> { ok: bool } {
            strategy direct when user.name != \"x\" and not about_name => { ok: true }
            default => { ok: false } } }
         rule user about_name = user.name == \"y\"",
    );
    let got = decide(&p, "s", &[("uid", "u")], None, &[("user.n", Some(Input::Int(30)))]).unwrap();
    assert_eq!(got.strategy.as_deref(), Some("yes"));
    let got = decide(&p, "t", &[("uid", "u")], None, &[("user.name", Some(Input::Text("z")))]).unwrap();
    assert_eq!(got.strategy.as_deref(), Some("direct"));
}

/// A request belongs to the program that made it: another program (say, the release before
/// a hot swap) refuses to run it rather than run it on the wrong bytecode or silently on
/// its own program.
#[test]
fn a_request_runs_only_on_its_own_program() {
    let src = "entity user key uid\nscene s { keys uid instance i -> { n: int } { default => { n: 1 } } }\n";
    let first = ruledeck::compile(&[("a.rule", src)]).unwrap();
    let second = ruledeck::compile(&[("a.rule", src)]).unwrap();
    let mut req = first.request("s", "i").unwrap();
    req.key("uid", "u").unwrap();
    assert_eq!(second.run(&mut req), Err(RequestError::OtherProgram));
    assert_eq!(req.run(), Ok(ruledeck::Step::Done));
    assert_eq!(req.outcome().strategy(), Some("default"));
}
