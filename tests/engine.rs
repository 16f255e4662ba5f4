//! The engine: providers, batching per provider, the TTL cache, and JSON in and out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ruledeck::engine::{Engine, EngineError, Loaded, Provider, TagQuery, TagsFile};
use serde_json::{json, Value};

const DECK: &str = r#"
entity user key uid
entity item key skuid
tag user.risk: int from "risk" cache 1h
tag user.fresh: int from "risk"
tag user.lifecycle: enum(new, active) from "crm" cache 1h
tag item.price: int from "catalog"
tag ctx.channel: enum(app, h5) passthrough
scene s {
  keys uid, skuid
  passes ctx.channel
  instance i -> { n: int } {
    strategy a when user.risk < 30 and user.lifecycle == active and user.fresh > 0 and item.price > 10 => { n: 1 }
    default => { n: 0 }
  }
}
"#;

/// A provider that records every batch it is asked for and answers from a fixed table.
#[derive(Default, Clone)]
struct Recording {
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    fail: bool,
}

impl Provider for Recording {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        self.calls.lock().unwrap().push(queries.iter().map(|q| format!("{}@{}", q.tag, q.key)).collect());
        queries
            .iter()
            .map(|q| {
                if self.fail {
                    return Loaded::Failed("timeout".into());
                }
                match q.field {
                    "risk" => Loaded::Value(json!(12)),
                    "fresh" => Loaded::Value(json!(1)),
                    "lifecycle" => Loaded::Value(json!("active")),
                    "price" => Loaded::Value(json!(99)),
                    _ => Loaded::Missing,
                }
            })
            .collect()
    }
}

fn engine(risk: Recording, crm: Recording, catalog: Recording) -> Engine {
    let program = ruledeck::compile(&[("deck.rule", DECK)]).unwrap();
    Engine::new(program).with_provider("risk", risk).with_provider("crm", crm).with_provider("catalog", catalog)
}

fn request(uid: &str) -> Value {
    json!({"uid": uid, "skuid": "sku-1", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"})
}

#[test]
fn one_call_per_provider_per_suspension_and_the_cache_serves_repeats() {
    let (risk, crm, catalog) = (Recording::default(), Recording::default(), Recording::default());
    let e = engine(risk.clone(), crm.clone(), catalog.clone());
    let first = e.decide_json("s", "i", &request("u-1"), false).unwrap();
    assert_eq!(first["decision"], json!({"n": 1}));
    // All four tags of the `when` are needed together: one call per provider.
    assert_eq!(risk.calls.lock().unwrap().len(), 1);
    assert_eq!(risk.calls.lock().unwrap()[0], vec!["user.risk@u-1", "user.fresh@u-1"]);
    assert_eq!(crm.calls.lock().unwrap().len(), 1);
    assert_eq!(catalog.calls.lock().unwrap().len(), 1);
    // Again for the same user: cached tags come from the cache; uncached ones are loaded.
    e.decide_json("s", "i", &request("u-1"), false).unwrap();
    assert_eq!(risk.calls.lock().unwrap()[1], vec!["user.fresh@u-1"]);
    assert_eq!(crm.calls.lock().unwrap().len(), 1, "lifecycle is cached for an hour");
    assert_eq!(catalog.calls.lock().unwrap().len(), 2, "price has no cache");
    // A different user is a different cache entry.
    e.decide_json("s", "i", &request("u-2"), false).unwrap();
    assert_eq!(crm.calls.lock().unwrap().len(), 2);
}

/// Cache keys are built on the stack up to 60 bytes of key value and on the heap beyond:
/// both serve repeats, and two long keys that share their first 60 bytes stay apart.
#[test]
fn the_cache_keeps_long_keys_apart() {
    let (risk, crm, catalog) = (Recording::default(), Recording::default(), Recording::default());
    let e = engine(risk, crm.clone(), catalog);
    let long = "u-".to_string() + &"x".repeat(100);
    for uid in [long.clone() + "1", long.clone() + "2", long.clone() + "1", "short".into(), "short".into()] {
        e.decide_json("s", "i", &request(&uid), false).unwrap();
    }
    let calls: Vec<String> = crm.calls.lock().unwrap().iter().flatten().cloned().collect();
    assert_eq!(
        calls,
        vec![format!("user.lifecycle@{long}1"), format!("user.lifecycle@{long}2"), "user.lifecycle@short".into()]
    );
}

/// Each thread keeps copies of the values it read in a near cache of 256 slots. With more
/// keys than slots, slots are shared: every decision still reads its own key's value, and
/// every repeat is served from a cache (the provider is asked once per key), on this
/// thread and on another one.
#[test]
fn the_near_cache_keeps_keys_apart_and_serves_repeats() {
    let src = "entity user key uid\ntag user.score: int from \"p\" cache 1h\n\
               scene s { keys uid instance i -> { n: int } { default => { n: user.score } } }\n";
    /// The score is the number in the key, so a value served for the wrong key shows.
    #[derive(Clone, Default)]
    struct Numbered(Arc<AtomicUsize>);
    impl Provider for Numbered {
        fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
            self.0.fetch_add(queries.len(), Ordering::SeqCst);
            queries.iter().map(|q| Loaded::Value(json!(q.key[2..].parse::<i64>().unwrap()))).collect()
        }
    }
    let provider = Numbered::default();
    let e = Engine::new(ruledeck::compile(&[("deck.rule", src)]).unwrap()).with_provider("p", provider.clone());
    let users = 3 * ruledeck::limits::NEAR_CACHE_SLOTS;
    let decide_all = |e: &Engine| {
        for round in 0..3 {
            for u in 0..users {
                let doc = e.decide_json("s", "i", &json!({"uid": format!("u-{u}")}), false).unwrap();
                assert_eq!(doc["decision"]["n"], json!(u), "round {round}: {doc}");
            }
        }
    };
    decide_all(&e);
    assert_eq!(provider.0.load(Ordering::SeqCst), users, "one load per key; every repeat from a cache");
    std::thread::scope(|scope| {
        scope.spawn(|| decide_all(&e));
    });
    assert_eq!(provider.0.load(Ordering::SeqCst), users, "another thread reads the shared cache");
}

/// The cache keeps each value as the request's slot held it, converted and coerced: a
/// decision served from the cache reads exactly what the first one loaded, for every type,
/// for a missing value and for a value of the wrong type (traced with what was found).
#[test]
fn cached_values_read_as_they_were_loaded() {
    let src = "entity user key uid\n\
               tag user.i: int from \"p\" cache 1h\ntag user.f: float from \"p\" cache 1h\n\
               tag user.t: text from \"p\" cache 1h\ntag user.b: bool from \"p\" cache 1h\n\
               tag user.at: time from \"p\" cache 1h\ntag user.e: enum(a, b) from \"p\" cache 1h\n\
               tag user.l: list<text> from \"p\" cache 1h\ntag user.gone: int from \"p\" cache 1h\n\
               tag user.bad: int from \"p\" cache 1h\n\
               scene s { keys uid instance i -> { i: int, f: float, t: text, b: bool, at: time, e: enum(a, b), l: list<text> } {\n\
               strategy x when user.gone > 0 or user.bad > 0 => { i: 0, f: 0.0, t: \"\", b: false, at: @2026-01-01T00:00:00Z, e: a, l: [] }\n\
               default => { i: user.i, f: user.f, t: user.t, b: user.b, at: user.at, e: user.e, l: user.l } } }\n";
    #[derive(Clone, Default)]
    struct Typed(Arc<AtomicUsize>);
    impl Provider for Typed {
        fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
            self.0.fetch_add(queries.len(), Ordering::SeqCst);
            queries
                .iter()
                .map(|q| match q.field {
                    "i" => Loaded::Value(json!(7)),
                    "f" => Loaded::Value(json!(2.5)),
                    "t" => Loaded::Value(json!(format!("text of {}", q.key))),
                    "b" => Loaded::Value(json!(true)),
                    "at" => Loaded::Value(json!("2026-11-21T08:00:00+01:00")),
                    "e" => Loaded::Value(json!("b")),
                    "l" => Loaded::Value(json!(["x", "y"])),
                    "bad" => Loaded::Value(json!({"not": "an int"})),
                    _ => Loaded::Missing,
                })
                .collect()
        }
    }
    let provider = Typed::default();
    let e = Engine::new(ruledeck::compile(&[("deck.rule", src)]).unwrap()).with_provider("p", provider.clone());
    let input = json!({"uid": "u-1", "now": "2026-11-21T08:00:00Z"});
    let loaded = e.decide_json("s", "i", &input, true).unwrap();
    let loads = provider.0.load(Ordering::SeqCst);
    assert_eq!(loads, 9);
    let cached = e.decide_json("s", "i", &input, true).unwrap();
    assert_eq!(provider.0.load(Ordering::SeqCst), loads, "the second decision read only the cache");
    assert_eq!(cached, loaded);
    assert_eq!(
        loaded["decision"],
        json!({"i": 7, "f": 2.5, "t": "text of u-1", "b": true, "at": "2026-11-21T07:00:00Z", "e": "b", "l": ["x", "y"]})
    );
    let trace = loaded["trace"].to_string();
    assert!(trace.contains("user.bad") && trace.contains("an object"), "{trace}");
    // Another key's text value is its own.
    let other = e.decide_json("s", "i", &json!({"uid": "u-2", "now": "2026-11-21T08:00:00Z"}), false).unwrap();
    assert_eq!(other["decision"]["t"], json!("text of u-2"));
}

/// A suspension that needs more tags than the engine keeps on the stack (16) loads them all.
#[test]
fn a_suspension_of_many_tags_loads_every_one() {
    let tags: String = (0..40).map(|i| format!("tag user.t{i}: int from \"risk\" cache 1h\n")).collect();
    let all: Vec<String> = (0..40).map(|i| format!("user.t{i} > 0")).collect();
    let src = format!(
        "entity user key uid\n{tags}scene s {{ keys uid instance i -> {{ n: int }} {{\n\
         strategy a when {} => {{ n: 1 }}\n default => {{ n: 0 }} }} }}\n",
        all.join(" and ")
    );
    #[derive(Clone, Default)]
    struct Ones(Arc<Mutex<Vec<usize>>>);
    impl Provider for Ones {
        fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
            self.0.lock().unwrap().push(queries.len());
            queries.iter().map(|_| Loaded::Value(json!(1))).collect()
        }
    }
    let ones = Ones::default();
    let e = Engine::new(ruledeck::compile(&[("deck.rule", src.as_str())]).unwrap()).with_provider("risk", ones.clone());
    let doc = e.decide_json("s", "i", &json!({"uid": "u-1"}), false).unwrap();
    assert_eq!(doc["strategy"], json!("a"), "every tag was supplied: {doc}");
    assert_eq!(*ones.0.lock().unwrap(), vec![40], "one suspension asked for all forty");
    // Again: all forty from the cache.
    assert_eq!(e.decide_json("s", "i", &json!({"uid": "u-1"}), false).unwrap()["strategy"], json!("a"));
    assert_eq!(*ones.0.lock().unwrap(), vec![40]);
}

#[test]
fn provider_failures_are_unknown_and_not_cached() {
    let failing = Recording { fail: true, ..Recording::default() };
    let e = engine(failing.clone(), Recording::default(), Recording::default());
    let out = e.decide_json("s", "i", &request("u-1"), true).unwrap();
    assert_eq!(out["strategy"], "default");
    let trace = out["trace"].as_array().unwrap();
    assert!(trace.iter().any(|t| t["tag"] == "user.risk" && t["missing"] == "provider failed: timeout"), "{trace:?}");
    e.decide_json("s", "i", &request("u-1"), false).unwrap();
    assert_eq!(failing.calls.lock().unwrap().len(), 2, "a failure is retried on the next request");
}

#[test]
fn a_missing_provider_is_an_error_naming_it() {
    let program = ruledeck::compile(&[("deck.rule", DECK)]).unwrap();
    let e = Engine::new(program).with_provider("risk", Recording::default());
    match e.decide_json("s", "i", &request("u-1"), false) {
        // `crm` and `catalog` are both missing; `crm` is needed first (by the first condition's
        // second clause), and the report follows evaluation order, not a hash map's.
        Err(EngineError::NoProvider { provider, .. }) => assert_eq!(provider, "crm"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_tags_file_provider_and_result_format() {
    let program = ruledeck::compile(&[("deck.rule", DECK)]).unwrap();
    let file = TagsFile::from_json(json!({
        "user": {"u-1": {"risk": 12, "fresh": 3, "lifecycle": "active"}, "u-2": {"risk": "high"}},
        "item": {"sku-1": {"price": 50}}
    }))
    .unwrap();
    let e = Engine::new(program).with_fallback(file);
    let out = e.decide_json("s", "i", &request("u-1"), false).unwrap();
    assert_eq!(
        out.to_string(),
        r#"{"scene":"s","instance":"i","decision":{"n":1},"strategy":"a","experiment":null,"group":null,"bucket":null}"#
    );
    let explained = e.decide_json("s", "i", &request("u-2"), true).unwrap();
    insta::assert_json_snapshot!(explained);
    assert!(TagsFile::from_json(json!([1, 2])).is_err());
    assert!(TagsFile::from_json(json!({"user": {"u-1": 5}})).unwrap_err().contains("user.u-1"));
}

#[test]
fn request_documents_are_validated_naming_the_field() {
    let e = engine(Recording::default(), Recording::default(), Recording::default());
    let err = |doc: Value| e.decide_json("s", "i", &doc, false).unwrap_err().to_string();
    assert_eq!(err(json!({"uid": "u", "ctx.channel": "app"})), "missing key `skuid`");
    assert_eq!(err(json!({"uid": "u", "skuid": "k"})), "missing pass-through tag `ctx.channel`");
    assert!(err(json!({"uid": "u", "skuid": "k", "ctx.channel": "tv"})).contains("ctx.channel"));
    assert!(err(json!({"uid": "u", "skuid": "k", "ctx.channel": "app", "now": "yesterday"})).contains("`now`"));
    assert!(err(json!({"uid": {"x": 1}})).contains("key `uid`"));
    assert_eq!(err(json!({"orderid": "o"})), "scene `s` does not take key `orderid`");
    assert_eq!(err(json!([1])), "a request must be a JSON object");
    // Integer keys are their decimal text.
    assert!(e.decide_json("s", "i", &json!({"uid": 1001, "skuid": 7, "ctx.channel": "h5"}), false).is_ok());
}

#[test]
fn the_engine_is_shared_across_threads() {
    let calls = Arc::new(AtomicUsize::new(0));
    struct Counting(Arc<AtomicUsize>);
    impl Provider for Counting {
        fn load(&self, q: &[TagQuery<'_>]) -> Vec<Loaded> {
            self.0.fetch_add(1, Ordering::Relaxed);
            q.iter().map(|_| Loaded::Value(json!(5))).collect()
        }
    }
    let program = ruledeck::compile(&[("deck.rule", DECK)]).unwrap();
    let e = Engine::new(program).with_fallback(Counting(calls.clone()));
    std::thread::scope(|s| {
        for t in 0..4 {
            let e = &e;
            s.spawn(move || {
                for i in 0..50 {
                    let out = e.decide_json("s", "i", &request(&format!("u-{t}-{i}")), false).unwrap();
                    assert_eq!(out["strategy"], "default", "lifecycle 5 is not a member: missing");
                }
            });
        }
    });
    assert!(calls.load(Ordering::Relaxed) >= 200);
}
