//! VM benchmarks: whole decisions with every tag supplied up front (no suspension), on a
//! reused request — the steady state of a host that has its tags in hand. `…/run_only`
//! re-evaluates a prepared request (`restart`), measuring the VM without request setup.
//!
//! Run: `cargo bench --bench vm`. Inputs are files in `benches/inputs/`.

use criterion::{criterion_group, criterion_main, Criterion};
use ruledeck::compile::program::{Program, Ty};
use ruledeck::vm::{Input, Request, Step};

#[path = "inputs/engine_warm_cache.rs"]
mod engine_warm_cache;

fn load(name: &str) -> Program {
    let path = format!("{}/benches/inputs/{name}", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).expect("bench input");
    ruledeck::compile(&[(path.as_str(), src.as_str())]).unwrap_or_else(|e| panic!("{e}"))
}

/// Supplies every tag of the program from `values` (by name) before running.
fn decide(p: &Program, req: &mut Request<'_>, uid: &str, values: &[(u32, Input<'_>)], channel: Option<&str>) -> bool {
    req.reset();
    req.key("uid", uid).unwrap();
    if let Some(c) = channel {
        req.pass("ctx.channel", Input::Text(c)).unwrap();
    }
    for &(tag, value) in values {
        req.supply(tag, Some(value));
    }
    assert_eq!(p.run(req).unwrap(), Step::Done);
    req.outcome().decided()
}

fn tag(p: &Program, name: &str) -> u32 {
    p.tag(name).unwrap().0
}

fn four_clause_rule(c: &mut Criterion) {
    let p = load("four_clause_rule.rule");
    let values = [
        (tag(&p, "user.risk"), Input::Int(12)),
        (tag(&p, "user.lifecycle"), Input::Text("active")),
        (tag(&p, "user.days_since_order"), Input::Int(30)),
        (tag(&p, "user.city"), Input::Text("lyon")),
    ];
    let mut req = p.request("s", "i").unwrap();
    assert!(decide(&p, &mut req, "u-1", &values, None));
    assert_eq!(req.outcome().strategy(), Some("hit"));
    c.bench_function("vm/four_clause_rule", |b| b.iter(|| decide(&p, &mut req, "u-1", &values, None)));
    c.bench_function("vm/four_clause_rule/run_only", |b| b.iter(|| run_again(&p, &mut req)));
}

/// Evaluates again with the same inputs: the VM's own cost, without building the request.
fn run_again(p: &Program, req: &mut Request<'_>) -> bool {
    req.restart();
    assert_eq!(p.run(req).unwrap(), Step::Done);
    req.outcome().decided()
}

fn ten_strategies_with_experiment(c: &mut Criterion) {
    let p = load("ten_strategies.rule");
    let values = [
        (tag(&p, "user.risk"), Input::Int(12)),
        (tag(&p, "user.lifecycle"), Input::Text("active")),
        (tag(&p, "user.city"), Input::Text("lyon")),
        (tag(&p, "user.spend"), Input::Float(20.0)),
    ];
    let mut req = p.request("s", "i").unwrap();
    assert!(decide(&p, &mut req, "u-1001", &values, Some("app")));
    assert_eq!(req.outcome().strategy(), Some("s10"), "the experiment strategy decides");
    c.bench_function("vm/ten_strategies_with_experiment", |b| {
        b.iter(|| decide(&p, &mut req, "u-1001", &values, Some("app")))
    });
    c.bench_function("vm/ten_strategies_with_experiment/run_only", |b| b.iter(|| run_again(&p, &mut req)));
}

/// One instance decided in a deck of 1,000 rules (benches/inputs/rules_1000.rule), every tag
/// supplied: the program's size must not slow a decision that reads little of it.
fn deck_of_1000_rules(c: &mut Criterion) {
    let p = load("rules_1000.rule");
    let mut req = p.request("s0", "slot").unwrap();
    req.key("uid", "u-1").unwrap().pass("ctx.channel", Input::Text("app")).unwrap().now(1_795_000_000);
    let texts = [Input::Text("seg_1"), Input::Text("seg_2")];
    for (id, tag) in p.tags.iter().enumerate() {
        let value = match tag.ty {
            Ty::Int => Input::Int(500),
            Ty::Text => Input::Text("c1x"),
            Ty::Time => Input::Time(1_790_000_000),
            Ty::Enum(_) => Input::Text("active"),
            Ty::List(_) => Input::List(&texts),
            _ => continue,
        };
        if tag.entity.is_some() {
            req.supply(id as u32, Some(value));
        }
    }
    assert_eq!(p.run(&mut req).unwrap(), Step::Done);
    c.bench_function("vm/deck_of_1000_rules/run_only", |b| b.iter(|| run_again(&p, &mut req)));
}

/// A request whose first condition needs five tags: run, suspend with a batch of five,
/// supply them, resume, decide.
fn suspend_resume_batch_of_five(c: &mut Criterion) {
    let p = load("batch_of_five.rule");
    let mut req = p.request("s", "i").unwrap();
    let mut needed: Vec<u32> = Vec::with_capacity(8);
    let mut round_trip = |req: &mut Request<'_>| {
        req.reset();
        req.key("uid", "u-1").unwrap();
        assert_eq!(p.run(req).unwrap(), Step::NeedTags);
        needed.clear();
        needed.extend(req.needed().map(|n| n.tag));
        assert_eq!(needed.len(), 5);
        for &tag in &needed {
            req.supply(tag, Some(Input::Int(5)));
        }
        assert_eq!(p.run(req).unwrap(), Step::Done);
        req.outcome().decided()
    };
    round_trip(&mut req);
    c.bench_function("vm/suspend_resume_batch_of_five", |b| b.iter(|| round_trip(&mut req)));
}

/// An `Engine` decision with a warm TTL cache: every tag comes from the cache.
fn engine_warm_cache(c: &mut Criterion) {
    use ruledeck::engine::Engine;
    let engine = Engine::new(load("engine_warm_cache.rule")).with_fallback(engine_warm_cache::Fixed);
    let program = engine.program().clone();
    let mut req = program.request("s", "i").unwrap();
    let decide = |req: &mut Request<'_>| {
        req.reset();
        req.key("uid", "u-1001").unwrap().pass("ctx.channel", Input::Text("app")).unwrap();
        engine.run(req).unwrap();
        req.outcome().bucket()
    };
    assert!(decide(&mut req).is_some(), "the experiment decides");
    c.bench_function("engine/warm_cache_decision", |b| b.iter(|| decide(&mut req)));
}

criterion_group!(
    benches,
    four_clause_rule,
    ten_strategies_with_experiment,
    deck_of_1000_rules,
    suspend_resume_batch_of_five,
    engine_warm_cache
);
criterion_main!(benches);
