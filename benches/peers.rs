//! ruledeck against peer Rust rule/expression engines on five workloads (W1–W5), with a
//! hand-written Rust closure as the floor. Each workload is a criterion group `peers/W<n>`
//! with one benchmark per engine: `ruledeck`, `closure`, `datalogic`, `zen`, `cel`, `rhai`.
//!
//! Inputs are files in `benches/inputs/peers/`: `w<n>.rule` (a deck whose one strategy is
//! `when w`), the same logic as `w<n>.cel`, `w<n>.rhai`, `w<n>.zen` and
//! `w<n>.jsonlogic.json`, and `data.json` (per workload, the variables of a `hit` case and
//! of a `miss` case). Every engine compiles its expression once and is given its variables
//! once, outside the timed loop; before timing, each must answer true on `hit` and false on
//! `miss`. The timed loop only evaluates, on each engine's fastest compile-once path:
//!
//! - ruledeck: a request with the key and every tag supplied, re-run with `restart` (no
//!   request setup), reading the deciding strategy;
//! - datalogic-rs: a compiled `Logic` on a `Session` over pre-parsed `ParsedData`
//!   (`eval_borrowed`, then `reset` of the session arena);
//! - zen-expression: an `Isolate` holding the environment, running a compiled expression;
//! - cel: a compiled `Program` executed against a prepared `Context`;
//! - rhai: an expression `AST` evaluated with a prepared `Scope` (`eval_ast_with_scope`).
//!
//! Run: `cargo bench --bench peers`. Results and their ratios: `benches/inputs/peers/RESULTS.md`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use ruledeck::compile::program::Program;
use ruledeck::vm::{Input, Request, Step};
use serde_json::{Map, Value};

/// The workloads: name, file stem, and the entity and key of the ruledeck deck.
const WORKLOADS: [(&str, &str, &str, &str); 5] = [
    ("W1", "w1", "user", "uid"),
    ("W2", "w2", "user", "uid"),
    ("W3", "w3", "user", "uid"),
    ("W4", "w4", "user", "uid"),
    ("W5", "w5", "item", "sku"),
];

fn input(name: &str) -> String {
    let path = format!("{}/benches/inputs/peers/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A peer's expression file, without its trailing newline.
fn expression(name: &str) -> String {
    input(name).trim().to_string()
}

type Vars = Map<String, Value>;

/// The `hit` and `miss` variables of a workload, from `data.json`.
fn data(workload: &str) -> (Vars, Vars) {
    let all: Value = serde_json::from_str(&input("data.json")).expect("data.json");
    let case = |which: &str| match &all[workload][which] {
        Value::Object(vars) => vars.clone(),
        other => panic!("data.json: {workload}.{which} is not an object: {other}"),
    };
    (case("hit"), case("miss"))
}

// ---------------------------------------------------------------------------------------
// ruledeck
// ---------------------------------------------------------------------------------------

fn load_deck(stem: &str) -> Program {
    let name = format!("{stem}.rule");
    let src = input(&name);
    ruledeck::compile(&[(name.as_str(), src.as_str())]).unwrap_or_else(|e| panic!("{e}"))
}

/// A request with the key and every tag supplied, ready to be re-run.
struct Ruledeck<'p> {
    req: Request<'p>,
}

impl<'p> Ruledeck<'p> {
    fn new(program: &'p Program, entity: &str, key: &str, vars: &Vars) -> Self {
        let mut req = program.request("s", "i").expect("scene s, instance i");
        req.key(key, "k-1").expect("key");
        for (name, value) in vars {
            let tag = format!("{entity}.{name}");
            let (id, _) = program.tag(&tag).unwrap_or_else(|| panic!("no tag {tag}"));
            let value = match value {
                Value::Bool(b) => Input::Bool(*b),
                Value::Number(n) => n.as_i64().map_or_else(|| Input::Float(n.as_f64().unwrap()), Input::Int),
                Value::String(s) => Input::Text(s),
                other => panic!("{tag}: unsupported value {other}"),
            };
            req.supply(id, Some(value));
        }
        assert_eq!(program.run(&mut req), Ok(Step::Done), "every tag is supplied");
        Ruledeck { req }
    }

    #[inline]
    fn eval(&mut self) -> bool {
        let program = self.req.program();
        self.req.restart();
        let done = matches!(program.run(&mut self.req), Ok(Step::Done));
        done && self.req.outcome().strategy() == Some("hit")
    }
}

// ---------------------------------------------------------------------------------------
// Hand-written closure (the floor)
// ---------------------------------------------------------------------------------------

/// The variables of every workload as plain Rust fields.
#[derive(Default)]
struct Record {
    age: i64,
    risk: i64,
    days_since_order: i64,
    lifecycle: String,
    city: String,
    vip: bool,
    blocked: bool,
    spend: f64,
    rating: f64,
    country: String,
    title: String,
}

impl Record {
    fn new(vars: &Vars) -> Self {
        let mut r = Record::default();
        for (name, value) in vars {
            let int = || value.as_i64().unwrap_or_else(|| panic!("{name}: not an int"));
            let float = || value.as_f64().unwrap_or_else(|| panic!("{name}: not a number"));
            let boolean = || value.as_bool().unwrap_or_else(|| panic!("{name}: not a bool"));
            let text = || value.as_str().unwrap_or_else(|| panic!("{name}: not text")).to_string();
            match name.as_str() {
                "age" => r.age = int(),
                "risk" => r.risk = int(),
                "days_since_order" => r.days_since_order = int(),
                "lifecycle" => r.lifecycle = text(),
                "city" => r.city = text(),
                "vip" => r.vip = boolean(),
                "blocked" => r.blocked = boolean(),
                "spend" => r.spend = float(),
                "rating" => r.rating = float(),
                "country" => r.country = text(),
                "title" => r.title = text(),
                other => panic!("no Record field {other}"),
            }
        }
        r
    }
}

/// Benchmarks each workload's logic written directly in Rust, after checking it on both cases.
/// Generic over the closure so that the call is direct and inlined, as in a host's own code.
fn bench_closure(
    group: &mut BenchmarkGroup<'_, WallTime>,
    workload: &str,
    hit: &Record,
    miss: &Record,
    rule: impl Fn(&Record) -> bool,
) {
    assert!(rule(hit) && !rule(miss), "{workload}/closure: expected true on hit, false on miss");
    group.bench_function("closure", |b| b.iter(|| rule(black_box(hit))));
}

fn closure(group: &mut BenchmarkGroup<'_, WallTime>, workload: &str, hit: &Record, miss: &Record) {
    match workload {
        "W1" => bench_closure(group, workload, hit, miss, |r| r.age > 18),
        "W2" => bench_closure(group, workload, hit, miss, |r| {
            r.risk < 30 && r.lifecycle == "active" && r.days_since_order <= 90 && r.city != "unknown"
        }),
        "W3" => {
            bench_closure(group, workload, hit, miss, |r| ["new", "active", "dormant"].contains(&r.lifecycle.as_str()))
        }
        "W4" => bench_closure(group, workload, hit, miss, |r| {
            (r.risk < 30 || r.vip)
                && !r.blocked
                && r.spend >= 100.5
                && r.rating > 3.5
                && (r.city == "paris" || r.city == "lyon")
                && r.lifecycle != "churned"
                && r.age >= 18 // `not (age < 18)`, as clippy prefers it
                && r.country != "XX"
        }),
        "W5" => {
            bench_closure(group, workload, hit, miss, |r| r.title.contains("phone") && r.title.starts_with("Smart"))
        }
        other => panic!("no closure for {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// datalogic-rs (JSONLogic)
// ---------------------------------------------------------------------------------------

/// A compiled rule, its pre-parsed data and a session whose arena is reused.
struct Datalogic<'e> {
    session: datalogic_rs::Session<'e>,
    logic: datalogic_rs::Logic,
    data: datalogic_rs::ParsedData,
}

impl<'e> Datalogic<'e> {
    fn new(engine: &'e datalogic_rs::Engine, rule: &str, vars: &Vars) -> Self {
        let logic = engine.compile(rule).unwrap_or_else(|e| panic!("datalogic compile: {e}"));
        let data = datalogic_rs::ParsedData::from_json(&Value::Object(vars.clone()).to_string()).expect("data");
        Datalogic { session: engine.session(), logic, data }
    }

    #[inline]
    fn eval(&mut self) -> bool {
        let hit = self.session.eval_borrowed(&self.logic, &self.data).map(|v| v.as_bool() == Some(true));
        self.session.reset();
        hit.expect("datalogic eval")
    }
}

// ---------------------------------------------------------------------------------------
// zen-expression (GoRules)
// ---------------------------------------------------------------------------------------

/// An isolate holding the environment, and an expression compiled by it.
struct Zen {
    isolate: zen_expression::Isolate,
    expression: zen_expression::Expression<zen_expression::expression::Standard>,
}

impl Zen {
    fn new(source: &str, vars: &Vars) -> Self {
        let mut isolate = zen_expression::Isolate::with_environment(Value::Object(vars.clone()).into());
        let expression = isolate.compile_standard(source).unwrap_or_else(|e| panic!("zen compile: {e}"));
        Zen { isolate, expression }
    }

    #[inline]
    fn eval(&mut self) -> bool {
        let result = self.isolate.run_compiled(self.expression.bytecode()).expect("zen eval");
        result.as_bool() == Some(true)
    }
}

// ---------------------------------------------------------------------------------------
// cel (cel-rust)
// ---------------------------------------------------------------------------------------

/// A compiled program and a context holding the variables.
struct Cel {
    program: cel::Program,
    context: cel::Context<'static, 'static>,
}

impl Cel {
    fn new(source: &str, vars: &Vars) -> Self {
        let program = cel::Program::compile(source).unwrap_or_else(|e| panic!("cel compile: {e}"));
        let mut context = cel::Context::default();
        for (name, value) in vars {
            let value = match value {
                Value::Bool(b) => cel::Value::Bool(*b),
                Value::Number(n) => n.as_i64().map_or_else(|| cel::Value::Float(n.as_f64().unwrap()), cel::Value::Int),
                Value::String(s) => cel::Value::String(Arc::new(s.clone())),
                other => panic!("{name}: unsupported value {other}"),
            };
            context.add_variable_from_value(name.as_str(), value);
        }
        Cel { program, context }
    }

    #[inline]
    fn eval(&self) -> bool {
        matches!(self.program.execute(&self.context), Ok(cel::Value::Bool(true)))
    }
}

// ---------------------------------------------------------------------------------------
// rhai
// ---------------------------------------------------------------------------------------

/// A compiled expression and a scope holding the variables.
struct Rhai<'e> {
    engine: &'e rhai::Engine,
    ast: rhai::AST,
    scope: rhai::Scope<'static>,
}

impl<'e> Rhai<'e> {
    fn new(engine: &'e rhai::Engine, source: &str, vars: &Vars) -> Self {
        let ast = engine.compile_expression(source).unwrap_or_else(|e| panic!("rhai compile: {e}"));
        let mut scope = rhai::Scope::new();
        for (name, value) in vars {
            let value: rhai::Dynamic = match value {
                Value::Bool(b) => (*b).into(),
                Value::Number(n) => n.as_i64().map_or_else(|| n.as_f64().unwrap().into(), Into::into),
                Value::String(s) => s.clone().into(),
                other => panic!("{name}: unsupported value {other}"),
            };
            scope.push_dynamic(name.as_str(), value);
        }
        Rhai { engine, ast, scope }
    }

    #[inline]
    fn eval(&mut self) -> bool {
        self.engine.eval_ast_with_scope::<bool>(&mut self.scope, &self.ast).expect("rhai eval")
    }
}

// ---------------------------------------------------------------------------------------
// The benchmarks
// ---------------------------------------------------------------------------------------

fn peers(c: &mut Criterion) {
    let datalogic_engine = datalogic_rs::Engine::new();
    let rhai_engine = rhai::Engine::new();

    for (workload, stem, entity, key) in WORKLOADS {
        let (hit, miss) = data(workload);
        let cel_src = expression(&format!("{stem}.cel"));
        let rhai_src = expression(&format!("{stem}.rhai"));
        let zen_src = expression(&format!("{stem}.zen"));
        let jsonlogic = expression(&format!("{stem}.jsonlogic.json"));
        let program = load_deck(stem);

        // Compiled once, given their variables once; each checked on both cases.
        let mut ruledeck = Ruledeck::new(&program, entity, key, &hit);
        let mut datalogic = Datalogic::new(&datalogic_engine, &jsonlogic, &hit);
        let mut zen = Zen::new(&zen_src, &hit);
        let cel = Cel::new(&cel_src, &hit);
        let mut rhai = Rhai::new(&rhai_engine, &rhai_src, &hit);

        let check = |engine: &str, on_hit: bool, on_miss: bool| {
            assert!(on_hit, "{workload}/{engine}: expected true on the hit case");
            assert!(!on_miss, "{workload}/{engine}: expected false on the miss case");
        };
        check("ruledeck", ruledeck.eval(), Ruledeck::new(&program, entity, key, &miss).eval());
        check("datalogic", datalogic.eval(), Datalogic::new(&datalogic_engine, &jsonlogic, &miss).eval());
        check("zen", zen.eval(), Zen::new(&zen_src, &miss).eval());
        check("cel", cel.eval(), Cel::new(&cel_src, &miss).eval());
        check("rhai", rhai.eval(), Rhai::new(&rhai_engine, &rhai_src, &miss).eval());

        let mut group = c.benchmark_group(format!("peers/{workload}"));
        group.bench_function("ruledeck", |b| b.iter(|| ruledeck.eval()));
        closure(&mut group, workload, &Record::new(&hit), &Record::new(&miss));
        group.bench_function("datalogic", |b| b.iter(|| datalogic.eval()));
        group.bench_function("zen", |b| b.iter(|| zen.eval()));
        group.bench_function("cel", |b| b.iter(|| cel.eval()));
        group.bench_function("rhai", |b| b.iter(|| rhai.eval()));
        group.finish();
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
