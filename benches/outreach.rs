//! Outreach benchmarks: events ingested per second through the runtime, in memory (the
//! state's commits are redb's in-memory backend, so the numbers are the runtime's own cost,
//! not the disk's), with windows alone and with windows, decisions and every filter.
//!
//! Run: `cargo bench --bench outreach`. Each iteration ingests and commits 2,000 events
//! from a deterministic log of 200 users into a fresh state (the state's creation is not
//! timed). `ruledeck replay` on disk is measured in docs/performance.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ruledeck::engine::TagsFile;
use ruledeck::outreach::Outreach;
use ruledeck::Program;
use std::sync::Arc;

/// Window tags only: every browse updates two windows and decides an instance whose
/// strategy never holds, so no reach reaches the filters.
const WINDOWS_ONLY: &str = r#"
entity user key uid
event browse by uid late 5m { sku: text, category: text }
event order by uid { amount_cents: int }
tag user.phone_browses: int = count(browse where category == "phone") within 10m
tag user.spent_90d: int = sum(order.amount_cents) within 90d
channel push
scene s on browse {
  instance i -> reach { sku: text } {
    strategy never when user.phone_browses > 1000 and user.spent_90d > 0 => reach push "x" { sku: event.sku }
  }
}
"#;

/// The events: 200 users, 10 each, mostly phone browses, some orders, a little out of
/// order (within the lateness).
fn events() -> Vec<String> {
    let start = 1_795_000_000i64; // a fixed instant: event time, never the clock
    let mut lines = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for i in 0..2000u64 {
        let user = i % 200;
        let t = start + (i as i64) * 7 - next(60) as i64;
        let time = ruledeck::time::format(t);
        let line = if next(12) == 0 {
            format!(
                r#"{{"id":"e{i}","event":"order","time":"{time}","uid":"u-{user}","amount_cents":{}}}"#,
                next(50_000)
            )
        } else {
            let category = ["phone", "phone", "phone", "case", "book"][next(5) as usize];
            format!(
                r#"{{"id":"e{i}","event":"browse","time":"{time}","uid":"u-{user}","sku":"{category}-{}","category":"{category}"}}"#,
                next(20)
            )
        };
        lines.push(line);
    }
    lines
}

fn ingest(c: &mut Criterion, name: &str, program: Arc<Program>) {
    let lines = events();
    let mut group = c.benchmark_group("outreach");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || {
                let tags = TagsFile::from_json(serde_json::json!({})).unwrap();
                let mut o = Outreach::open(program.clone(), tags, None).unwrap();
                o.batch_size = 1000;
                o
            },
            |mut o| {
                let mut records = 0;
                for l in &lines {
                    records += o.ingest_line(l).unwrap().len();
                }
                records + o.commit().unwrap().len()
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn outreach(c: &mut Criterion) {
    let windows = ruledeck::compile(&[("windows.rule", WINDOWS_ONLY)]).unwrap_or_else(|e| panic!("{e}"));
    ingest(c, "windows_only", Arc::new(windows));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/outreach/lapsed_nudge.rule");
    let src = std::fs::read_to_string(path).unwrap();
    let lapsed = ruledeck::compile(&[(path, src.as_str())]).unwrap_or_else(|e| panic!("{e}"));
    ingest(c, "windows_decisions_filters", Arc::new(lapsed));
}

criterion_group!(benches, outreach);
criterion_main!(benches);
