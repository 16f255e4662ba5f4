//! VM benchmarks: whole decisions with every tag supplied up front (no suspension), on a
//! reused request — the steady state of a host that has its tags in hand. `…/run_only`
//! re-evaluates a prepared request (`restart`), measuring the VM without request setup.
//!
//! Run: `cargo bench --bench vm`. Inputs are files in `benches/inputs/`.

use criterion::{criterion_group, criterion_main, Criterion};
use ruledeck::compile::program::Program;
use ruledeck::vm::{Input, Request, Step};

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

criterion_group!(benches, four_clause_rule, ten_strategies_with_experiment);
criterion_main!(benches);
