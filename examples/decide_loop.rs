//! A loop of whole decisions for instruction counting (docs/performance.md): the peers'
//! `ruledeck` path (`restart`, `run`, read the deciding strategy) over a reused request
//! with every tag of workload W1–W5 supplied (the `hit` case of `benches/inputs/peers/data.json`).
//!
//! ```sh
//! cargo build --release --example decide_loop
//! valgrind --tool=callgrind target/release/examples/decide_loop w1 100000
//! valgrind --tool=callgrind target/release/examples/decide_loop w1 0
//! ```
//! The difference of the two totals, divided by 100,000, is the cost of one decision.
//!
//! `decide_loop engine N` instead makes the `engine/warm_cache_decision` bench's decision N
//! times: an `Engine` run whose tags all come from its TTL cache.

use std::hint::black_box;

#[path = "../benches/inputs/engine_warm_cache.rs"]
mod engine_warm_cache;

use ruledeck::vm::{Input, Step};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(workload), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: decide_loop w1|w2|w3|w4|w5 DECISIONS");
        std::process::exit(2);
    };
    if workload == "engine" {
        return engine_loop(n);
    }
    let path = format!("{}/benches/inputs/peers/{workload}.rule", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let program = ruledeck::compile(&[(path.as_str(), src.as_str())]).unwrap_or_else(|e| panic!("{e}"));
    let (key, tags): (&str, &[(&str, Input<'_>)]) = match workload.as_str() {
        "w1" => ("uid", &[("user.age", Input::Int(30))]),
        "w2" => (
            "uid",
            &[
                ("user.risk", Input::Int(12)),
                ("user.lifecycle", Input::Text("active")),
                ("user.days_since_order", Input::Int(30)),
                ("user.city", Input::Text("lyon")),
            ],
        ),
        "w3" => ("uid", &[("user.lifecycle", Input::Text("dormant"))]),
        "w4" => (
            "uid",
            &[
                ("user.risk", Input::Int(45)),
                ("user.vip", Input::Bool(true)),
                ("user.blocked", Input::Bool(false)),
                ("user.spend", Input::Float(250.75)),
                ("user.rating", Input::Float(4.2)),
                ("user.city", Input::Text("lyon")),
                ("user.lifecycle", Input::Text("active")),
                ("user.age", Input::Int(34)),
                ("user.country", Input::Text("FR")),
            ],
        ),
        "w5" => ("sku", &[("item.title", Input::Text("Smartphone Pro 15, 128 GB"))]),
        other => panic!("no workload {other}"),
    };
    let mut req = program.request("s", "i").expect("scene s, instance i");
    req.key(key, "k-1").expect("key");
    for &(name, value) in tags {
        let (id, _) = program.tag(name).unwrap_or_else(|| panic!("no tag {name}"));
        req.supply(id, Some(value));
    }
    assert_eq!(program.run(&mut req), Ok(Step::Done));
    assert_eq!(req.outcome().strategy(), Some("hit"), "the hit case decides `hit`");
    let mut hits = 0u64;
    for _ in 0..n {
        req.restart();
        let done = matches!(program.run(&mut req), Ok(Step::Done));
        hits += u64::from(done && req.outcome().strategy() == Some("hit"));
    }
    black_box(hits);
}

/// What `benches/vm.rs`'s `engine/warm_cache_decision` times, `n` times after a first
/// decision that fills the cache.
fn engine_loop(n: u64) {
    use ruledeck::engine::Engine;
    let path = format!("{}/benches/inputs/engine_warm_cache.rule", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let program = ruledeck::compile(&[(path.as_str(), src.as_str())]).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(std::sync::Arc::new(program)).with_fallback(engine_warm_cache::Fixed);
    let program = engine.program().clone();
    let mut req = program.request("s", "i").expect("scene s, instance i");
    let mut buckets = 0u64;
    for _ in 0..=n {
        req.reset();
        req.key("uid", "u-1001").expect("key").pass("ctx.channel", Input::Text("app")).expect("pass");
        engine.run(&mut req).expect("decides");
        buckets += u64::from(req.outcome().bucket().unwrap_or(0));
    }
    black_box(buckets);
}
