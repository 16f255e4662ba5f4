//! `ruledeck serve` end to end: the real binary on a loopback port, called over HTTP.
//! Every endpoint, every refusal (4xx with the field named), batch order, hot swap from a
//! store as the real `ruledeck release` publishes, a damaged release refused while the old
//! one keeps serving, and a clean exit 0 on SIGTERM. Waits are bounded polls, never timed
//! assertions.
#![cfg(feature = "serve")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ruledeck::limits::{MAX_BATCH_REQUESTS, MAX_EVENTS_PER_REQUEST, MAX_HTTP_BODY_BYTES};
use serde_json::{json, Value};

#[path = "common/redis.rs"]
mod redis_server;
use redis_server::Redis;

const FIXED_NOW: &str = "2026-12-01T10:00:00Z";
/// Polls of a bounded wait (each after a short sleep): generous, so a slow machine passes,
/// yet a server that never swaps fails instead of hanging.
const POLLS: usize = 600;

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruledeck"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("RULEDECK_NOW", FIXED_NOW);
    cmd
}

fn fixture(path: &str) -> String {
    format!("tests/fixtures/{path}")
}

/// A running `ruledeck serve`, killed when dropped (unless it already exited).
struct Server {
    child: Child,
    base: String,
    stderr: PathBuf,
    agent: ureq::Agent,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let stderr = dir.path().join("stderr.txt");
        let mut child = bin()
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let _ = child.wait();
            panic!("no address announced ({line:?}); stderr: {}", std::fs::read_to_string(&stderr).unwrap());
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        Server { base: format!("http://{addr}"), child, stderr, agent, _dir: dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
        match result {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("transport error: {e}"),
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        Self::answer(self.agent.get(&format!("{}{path}", self.base)).call())
    }

    fn post_raw(&self, path: &str, body: &str) -> (u16, String) {
        let req = self.agent.post(&format!("{}{path}", self.base)).set("Content-Type", "application/json");
        Self::answer(req.send_string(body))
    }

    /// Posts `body`; the answer must be JSON.
    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let (code, text) = self.post_raw(path, body);
        (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (code, text) = self.get(path);
        (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    }

    fn release(&self) -> Value {
        let (code, doc) = self.get_json("/v1/release");
        assert_eq!(code, 200);
        doc
    }

    /// Polls `/v1/release` until `done` holds (bounded).
    fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..POLLS {
            let doc = self.release();
            if done(&doc) {
                return doc;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server never reached: {what}; last /v1/release: {}; stderr: {}", self.release(), self.stderr());
    }

    /// Sends SIGTERM; returns the exit code and what the server wrote to stderr.
    fn terminate(self) -> (Option<i32>, String) {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends SIGTERM and returns at once (the server drains meanwhile).
    fn sigterm(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Waits for the process to exit; its exit code and what it wrote to stderr.
    fn wait_exit(mut self) -> (Option<i32>, String) {
        let code = self.child.wait().unwrap().code();
        (code, self.stderr())
    }

    /// Polls stderr until it contains `line` (bounded).
    fn wait_for_log(&self, line: &str) {
        for _ in 0..POLLS {
            if self.stderr().contains(line) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server never logged {line:?}; stderr: {}", self.stderr());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn example_deck() -> Server {
    Server::start(&["examples/deck", "--tags", "examples/deck/tags.json"])
}

fn decide_body(scene: &str, instance: &str, input: Value) -> String {
    json!({"scene": scene, "instance": instance, "input": input}).to_string()
}

fn installments(uid: &str) -> String {
    decide_body(
        "payment",
        "installments",
        json!({"uid": uid, "orderid": "o-1", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}),
    )
}

#[test]
fn decide_answers_the_cli_result_object() {
    let server = example_deck();
    let (code, doc) = server.post("/v1/decide", &installments("u-1001"));
    assert_eq!(code, 200, "{doc}");
    insta::assert_json_snapshot!("decide_files", doc);
    // The same request through `eval` gives the same object.
    let eval = bin()
        .args(["eval", "examples/deck", "--tags", "examples/deck/tags.json", "--scene", "payment"])
        .args(["--instance", "installments", "--input"])
        .arg(
            json!({"uid": "u-1001", "orderid": "o-1", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}).to_string(),
        )
        .output()
        .unwrap();
    let eval: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(doc, eval);
    let body = json!({"scene": "payment", "instance": "installments", "explain": true,
        "input": {"uid": "u-1001", "orderid": "o-1", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}});
    let (code, explained) = server.post("/v1/decide", &body.to_string());
    assert_eq!(code, 200);
    assert!(explained["trace"].is_array(), "{explained}");
    assert_eq!(explained["decision"], doc["decision"]);
}

#[test]
fn batch_answers_in_order_with_refusals_in_place() {
    let server = example_deck();
    let requests: Vec<Value> = ["u-1001", "u-1002", "u-1003", "u-1004"]
        .iter()
        .map(|uid| serde_json::from_str(&installments(uid)).unwrap())
        .collect();
    let mut mixed = requests.clone();
    mixed.insert(1, json!({"scene": "payment", "instance": "nope", "input": {}}));
    mixed.insert(3, json!({"scene": "payment", "instance": "installments", "input": {"orderid": "o"}}));
    let (code, doc) = server.post("/v1/decide/batch", &json!({ "requests": mixed }).to_string());
    assert_eq!(code, 200, "{doc}");
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    // Each good entry is what `/v1/decide` answers for it alone.
    for (i, request) in [(0, &requests[0]), (2, &requests[1]), (4, &requests[2]), (5, &requests[3])] {
        let (_, alone) = server.post("/v1/decide", &request.to_string());
        assert_eq!(results[i], alone, "entry {i}");
    }
    insta::assert_json_snapshot!("batch_mixed", doc);
    let (code, empty) = server.post("/v1/decide/batch", r#"{"requests": []}"#);
    assert_eq!((code, empty), (200, json!({"results": []})));
}

/// Every refusal: its status, the field it names and its message, in one snapshot.
#[test]
fn bad_requests_are_4xx_naming_the_field() {
    let server = example_deck();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let good_input = r#"{"uid": "u-1001", "orderid": "o-1", "ctx.channel": "app"}"#;
    let cases: Vec<(&str, &str, String)> = vec![
        ("not JSON", "/v1/decide", "{\"scene\": ".into()),
        ("empty body", "/v1/decide", String::new()),
        ("not an object", "/v1/decide", "[1, 2]".into()),
        ("duplicate key", "/v1/decide", r#"{"scene": "payment", "scene": "traffic"}"#.into()),
        ("deep JSON", "/v1/decide", format!(r#"{{"scene": "payment", "instance": "cod", "input": {deep}}}"#)),
        ("missing scene", "/v1/decide", r#"{"instance": "cod", "input": {}}"#.into()),
        ("missing instance", "/v1/decide", r#"{"scene": "payment", "input": {}}"#.into()),
        ("missing input", "/v1/decide", r#"{"scene": "payment", "instance": "cod"}"#.into()),
        ("scene not text", "/v1/decide", r#"{"scene": 7, "instance": "cod", "input": {}}"#.into()),
        ("input not an object", "/v1/decide", r#"{"scene": "payment", "instance": "cod", "input": []}"#.into()),
        (
            "explain not a boolean",
            "/v1/decide",
            format!(r#"{{"scene": "payment", "instance": "cod", "input": {good_input}, "explain": "yes"}}"#),
        ),
        (
            "unknown field",
            "/v1/decide",
            format!(r#"{{"scene": "payment", "instance": "cod", "input": {good_input}, "explian": true}}"#),
        ),
        ("unknown scene", "/v1/decide", r#"{"scene": "paymnt", "instance": "cod", "input": {}}"#.into()),
        ("unknown instance", "/v1/decide", r#"{"scene": "payment", "instance": "cash", "input": {}}"#.into()),
        ("missing key", "/v1/decide", r#"{"scene": "payment", "instance": "cod", "input": {"orderid": "o"}}"#.into()),
        (
            "key of the wrong type",
            "/v1/decide",
            r#"{"scene": "payment", "instance": "cod", "input": {"uid": 1.5, "orderid": "o"}}"#.into(),
        ),
        (
            "unknown key",
            "/v1/decide",
            r#"{"scene": "payment", "instance": "cod", "input": {"uid": "u", "orderid": "o", "sku": "s"}}"#.into(),
        ),
        (
            "bad now",
            "/v1/decide",
            r#"{"scene": "payment", "instance": "cod", "input": {"uid": "u", "orderid": "o", "now": "yesterday"}}"#
                .into(),
        ),
        (
            "pass-through of the wrong type",
            "/v1/decide",
            r#"{"scene": "payment", "instance": "installments", "input": {"uid": "u", "orderid": "o", "ctx.channel": [1]}}"#
                .into(),
        ),
        ("batch not an object", "/v1/decide/batch", "[]".into()),
        ("batch without requests", "/v1/decide/batch", "{}".into()),
        ("batch requests not an array", "/v1/decide/batch", r#"{"requests": {}}"#.into()),
        ("batch unknown field", "/v1/decide/batch", r#"{"requests": [], "explain": true}"#.into()),
        ("batch not JSON", "/v1/decide/batch", "requests".into()),
    ];
    let mut report = String::new();
    for (name, path, body) in &cases {
        let (code, doc) = server.post(path, body);
        assert!((400..500).contains(&code), "{name}: {code} {doc}");
        assert!(doc["error"].is_string(), "{name}: {doc}");
        report.push_str(&format!("{name}: {code} {doc}\n"));
    }
    insta::assert_snapshot!("refusals", report);
    // Wrong routes and methods are JSON 4xx too.
    let (code, text) = server.get("/v1/nothing");
    assert_eq!(code, 404, "{text}");
    let (code, text) = server.get("/v1/decide");
    assert_eq!(code, 405, "{text}");
    // The server is still well after all of that.
    assert_eq!(server.post("/v1/decide", &installments("u-1001")).0, 200);
}

#[test]
fn oversized_bodies_and_batches_are_413() {
    let server = example_deck();
    // A valid JSON document just over the limit: the size is refused, not the content.
    let padding = " ".repeat(MAX_HTTP_BODY_BYTES);
    let (code, doc) = server.post("/v1/decide", &format!("{padding}{}", installments("u-1001")));
    assert_eq!(code, 413, "{doc}");
    assert_eq!(doc["field"], "body");
    let (code, doc) = server.post("/v1/decide/batch", &format!(r#"{{"requests": []}}{padding}"#));
    assert_eq!(code, 413, "{doc}");
    // Exactly at the limit is read.
    let body = installments("u-1001");
    let at_limit = format!("{}{body}", " ".repeat(MAX_HTTP_BODY_BYTES - body.len()));
    assert_eq!(server.post("/v1/decide", &at_limit).0, 200);
    // One request more than a batch may hold.
    let requests = vec![json!({}); MAX_BATCH_REQUESTS + 1];
    let (code, doc) = server.post("/v1/decide/batch", &json!({ "requests": requests }).to_string());
    assert_eq!(code, 413, "{doc}");
    assert_eq!(doc["field"], "requests");
    let requests = vec![json!({}); MAX_BATCH_REQUESTS];
    let (code, doc) = server.post("/v1/decide/batch", &json!({ "requests": requests }).to_string());
    assert_eq!(code, 200);
    assert_eq!(doc["results"].as_array().unwrap().len(), MAX_BATCH_REQUESTS);
}

#[test]
fn health_readiness_release_and_metrics() {
    let server = example_deck();
    assert_eq!(server.get_json("/healthz"), (200, json!({"status": "ok"})));
    assert_eq!(server.get_json("/readyz"), (200, json!({"ready": true})));
    assert_eq!(server.release(), json!({"source": "files", "release": null, "error": null}));
    server.post("/v1/decide", &installments("u-1001"));
    server.post("/v1/decide", &installments("u-1004"));
    server.post("/v1/decide", r#"{"scene": "x", "instance": "y", "input": {}}"#);
    server.post("/v1/decide", "{");
    let (code, text) = server.get("/metrics");
    assert_eq!(code, 200);
    for line in [
        r#"ruledeck_decisions_total{scene="payment",instance="installments",strategy="low_risk_boost"} 1"#,
        r#"ruledeck_decisions_total{scene="payment",instance="installments",strategy="default"} 1"#,
        r#"ruledeck_refusals_total{reason="not_found"} 1"#,
        r#"ruledeck_refusals_total{reason="bad_request"} 1"#,
        "ruledeck_decision_latency_seconds_count 3",
        r#"ruledeck_decision_latency_seconds_bucket{le="+Inf"} 3"#,
        "ruledeck_release 0",
        "ruledeck_release_load_failures_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
}

fn publish(store: &Path, deck: &str) -> Value {
    let out = bin().args(["release", &fixture(&format!("release/{deck}")), "--store"]).arg(store).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn store_server(store: &Path) -> Server {
    let store = store.display().to_string();
    Server::start(&["--store", &store, "--tags", &fixture("release/tags.json")])
}

fn store_request() -> String {
    decide_body(
        "payment",
        "installments",
        json!({"uid": "u-1001", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}),
    )
}

#[test]
fn a_store_is_served_and_hot_swapped_while_deciding() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    publish(&store, "v1");
    let server = store_server(&store);
    let (code, doc) = server.post("/v1/decide", &store_request());
    assert_eq!(code, 200, "{doc}");
    assert_eq!((doc["release"].clone(), doc["version"].clone()), (json!(1), json!(1)));
    assert_eq!(doc["decision"]["count"], 6);
    let mut release = server.release();
    release["hash"] = json!("[HASH]");
    insta::assert_json_snapshot!("release_1", release);

    // Deciders run throughout the swap: none may fail, each result's decision must be its
    // release's (6 in release 1, 9 in release 2), and release numbers only grow.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deciders: Vec<_> = (0..3)
        .map(|_| {
            let (agent, base, stop) = (server.agent.clone(), server.base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || seen.is_empty() {
                    let r = agent.post(&format!("{base}/v1/decide")).send_string(&store_request());
                    let doc: Value =
                        serde_json::from_str(&r.expect("no decision fails").into_string().unwrap()).unwrap();
                    let expected = if doc["release"] == 1 { 6 } else { 9 };
                    assert_eq!(doc["decision"]["count"], expected, "{doc}");
                    seen.push(doc["release"].as_u64().unwrap());
                }
                seen
            })
        })
        .collect();
    let published = publish(&store, "v2");
    assert_eq!(published["release"], 2);
    let release = server.wait_for("release 2", |doc| doc["release"] == 2);
    assert_eq!(release["instances"]["payment.installments"], 2);
    assert_eq!(release["instances"]["traffic.banner"], 1);
    assert_eq!(release["error"], Value::Null);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for decider in deciders {
        let seen = decider.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "releases went back: {seen:?}");
    }
    let (_, doc) = server.post("/v1/decide", &store_request());
    assert_eq!((doc["release"].clone(), doc["version"].clone()), (json!(2), json!(2)));
    assert_eq!(doc["decision"]["count"], 9);
    let (_, banner) = server.post("/v1/decide", &decide_body("traffic", "banner", json!({"uid": "u-1003"})));
    assert_eq!((banner["release"].clone(), banner["version"].clone()), (json!(2), json!(1)));
    // A batch is decided wholly on one release.
    let (_, batch) = server.post("/v1/decide/batch", &format!(r#"{{"requests": [{0}, {0}]}}"#, store_request()));
    assert!(batch["results"].as_array().unwrap().iter().all(|r| r["release"] == 2), "{batch}");
    let (_, metrics) = server.get("/metrics");
    assert!(metrics.lines().any(|l| l == "ruledeck_release 2"), "{metrics}");
    // A rollback is a new release, and is served like any other.
    let out = bin().args(["rollback", "1", "--store"]).arg(&store).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.wait_for("release 3", |doc| doc["release"] == 3);
    let (_, doc) = server.post("/v1/decide", &store_request());
    assert_eq!(
        (doc["release"].clone(), doc["version"].clone(), doc["decision"]["count"].clone()),
        (json!(3), json!(1), json!(6))
    );
}

/// Writes `CURRENT` the way the store does: a temporary file renamed over it.
fn point_current_at(store: &Path, n: u64) {
    let tmp = store.join("tmp").join("CURRENT.test");
    std::fs::write(&tmp, format!("{n}\n")).unwrap();
    std::fs::rename(&tmp, store.join("CURRENT")).unwrap();
}

#[test]
fn a_damaged_release_is_refused_and_the_old_one_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    publish(&store, "v1");
    // Release 2 is made in a copy of the store, damaged there, then moved in with CURRENT
    // pointing at it, so the server never sees it whole.
    let copy = tmp.path().join("copy");
    copy_dir(&store, &copy);
    let server = store_server(&store);
    let two = publish(&copy, "v2");
    let bundle = format!("{}.rdb", two["hash"].as_str().unwrap());
    let mut bytes = std::fs::read(copy.join("bundles").join(&bundle)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(store.join("bundles").join(&bundle), &bytes).unwrap();
    std::fs::copy(copy.join("releases/0000000002.json"), store.join("releases/0000000002.json")).unwrap();
    point_current_at(&store, 2);

    let release = server.wait_for("the load error of release 2", |doc| doc["error"] != Value::Null);
    assert_eq!(release["release"], 1, "the old release keeps serving");
    assert_eq!(release["error"]["release"], 2);
    let message = release["error"]["message"].as_str().unwrap();
    assert!(message.contains(&bundle), "the error names the bundle: {message}");
    let (code, doc) = server.post("/v1/decide", &store_request());
    assert_eq!((code, doc["release"].clone(), doc["decision"]["count"].clone()), (200, json!(1), json!(6)));
    assert_eq!(server.get_json("/readyz").0, 200);
    let (_, metrics) = server.get("/metrics");
    assert!(metrics.lines().any(|l| l == "ruledeck_release_load_failures_total 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "ruledeck_release 1"), "{metrics}");

    // A garbage CURRENT is refused the same way.
    std::fs::write(store.join("tmp").join("garbage"), "two\n").unwrap();
    std::fs::rename(store.join("tmp").join("garbage"), store.join("CURRENT")).unwrap();
    server.wait_for("the CURRENT error", |doc| doc["error"]["release"] == Value::Null && doc["error"] != Value::Null);
    assert_eq!(server.post("/v1/decide", &store_request()).1["release"], 1);

    // The next good release is served and clears the error.
    point_current_at(&store, 2);
    let three = publish(&store, "salt_changed");
    assert_eq!(three["release"], 3);
    let release = server.wait_for("release 3", |doc| doc["release"] == 3);
    assert_eq!(release["error"], Value::Null);
    assert_eq!(server.post("/v1/decide", &store_request()).1["release"], 3);
    assert!(server.stderr().contains("not serving the store's current release"), "{}", server.stderr());
}

#[test]
fn a_store_without_a_loadable_release_is_not_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    publish(&store, "v1");
    let doc = publish(&store, "v2");
    let bundle = store.join("bundles").join(format!("{}.rdb", doc["hash"].as_str().unwrap()));
    std::fs::write(&bundle, b"").unwrap();
    let server = store_server(&store);
    let (code, ready) = server.get_json("/readyz");
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["error"]["release"], 2);
    assert_eq!(server.release()["release"], Value::Null);
    let (code, doc) = server.post("/v1/decide", &store_request());
    assert_eq!(code, 503, "{doc}");
    let (code, _) = server.post("/v1/decide/batch", r#"{"requests": []}"#);
    assert_eq!(code, 503);
    assert_eq!(server.get_json("/healthz").0, 200, "alive, though not ready");
    // Publishing a good release makes it ready.
    publish(&store, "salt_changed");
    server.wait_for("release 3", |doc| doc["release"] == 3);
    assert_eq!(server.get_json("/readyz").0, 200);
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let server = example_deck();
    assert_eq!(server.post("/v1/decide", &installments("u-1001")).0, 200);
    let (code, stderr) = server.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("drained"), "{stderr}");
}

#[test]
fn startup_refusals() {
    let run = |args: &[&str]| bin().arg("serve").args(args).output().unwrap();
    let out = run(&["--store", "tests/fixtures/release/v1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a release store"));
    let out = run(&["examples/deck", "--token-file", "no/such/tokens.txt", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/tokens.txt"), "{out:?}");
    let out = run(&["examples/deck", "--listen", "not an address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on `not an address`"));
    // A deck with errors is reported as `check` reports it, and nothing is served.
    let tmp = tempfile::tempdir().unwrap();
    let deck = tmp.path().join("broken.rule");
    std::fs::write(&deck, "rule user r = \n").unwrap();
    let out = run(&[deck.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing listened");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// ---- Providers (`--providers FILE.toml`) against real servers on loopback ----

/// The deck the provider tests serve: one tag per provider kind.
const PROVIDER_DECK: &str = r#"
entity user key uid
tag user.risk_score: int from "risk" cache 3m sensitive
tag user.lifecycle: enum(new, active) from "crm"
tag user.level: int from "crm"
tag user.vip: bool from "vips"
tag user.segment: text from "segments"
rule user low_risk = user.risk_score < 30 and user.lifecycle == active
scene payment {
  keys uid
  instance installments -> { count: int } {
    strategy vip when user.vip => { count: 24 }
    strategy boost when low_risk => { count: 6 }
    strategy level when user.level >= 3 => { count: 3 }
    default => { count: 1 }
  }
}
scene promo {
  keys uid
  instance banner -> { text: text } {
    strategy seg when user.segment == "student" => { text: "student" }
    default => { text: "plain" }
  }
}
"#;

/// Called by a [`TagServerMode::Held`] server with each request it has read, before it
/// answers: `true` answers from the table, `false` answers HTTP 500.
type Hold = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// What a local HTTP tag server does with each request.
#[derive(Clone)]
enum TagServerMode {
    /// Answers from its table (`null` for what it does not have).
    Answer,
    /// Sleeps well past any timeout the tests configure, then answers.
    Slow,
    /// Answers HTTP 500.
    Fail,
    /// Answers 200 with a body that is not JSON.
    Malformed,
    /// Answers one value fewer than it was asked for.
    Short,
    /// Answers once the test lets it: the test's own synchronization, never a sleep.
    Held(Hold),
}

/// A tag service on loopback speaking the `http` provider protocol, recording every body.
struct TagServer {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl TagServer {
    fn start(mode: TagServerMode, table: Value) -> TagServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/tags", listener.local_addr().unwrap());
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (seen, table, mode) = (seen.clone(), table.clone(), mode.clone());
                // One thread per connection, serving its requests in turn (keep-alive).
                std::thread::spawn(move || loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    let mut body = vec![0u8; length];
                    if stream.read_exact(&mut body).is_err() {
                        return;
                    }
                    let doc: Value = serde_json::from_slice(&body).unwrap();
                    seen.lock().unwrap().push(doc.clone());
                    let values: Vec<Value> = doc["queries"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|q| table[q["key"].as_str().unwrap()][q["field"].as_str().unwrap()].clone())
                        .collect();
                    let (status, text) = match &mode {
                        TagServerMode::Answer => ("200 OK", json!({ "values": values }).to_string()),
                        TagServerMode::Slow => {
                            std::thread::sleep(Duration::from_millis(1500));
                            ("200 OK", json!({ "values": values }).to_string())
                        }
                        TagServerMode::Fail => ("500 Internal Server Error", "oops".to_string()),
                        TagServerMode::Malformed => ("200 OK", "{\"values\": [12,".to_string()),
                        TagServerMode::Short => ("200 OK", json!({ "values": &values[1..] }).to_string()),
                        TagServerMode::Held(hold) if hold() => ("200 OK", json!({ "values": values }).to_string()),
                        TagServerMode::Held(_) => ("500 Internal Server Error", "held too long".to_string()),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                });
            }
        });
        TagServer { url, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A deck directory with `PROVIDER_DECK`, a `providers.toml` and any extra files.
fn provider_setup(toml: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deck.rule"), PROVIDER_DECK).unwrap();
    std::fs::write(dir.path().join("providers.toml"), toml).unwrap();
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn provider_server(dir: &tempfile::TempDir) -> Server {
    let deck = dir.path().join("deck.rule");
    let toml = dir.path().join("providers.toml");
    Server::start(&[deck.to_str().unwrap(), "--providers", toml.to_str().unwrap()])
}

/// The rest of the deck's providers, from files, so each test varies one.
const FILE_PROVIDERS: &str = r#"
[providers.vips]
kind = "package"
path = "vips.txt"
expires = "2026-12-31"
[providers.segments]
kind = "file"
path = "tags.json"
"#;
const FILE_PROVIDER_FILES: [(&str, &str); 2] =
    [("vips.txt", "# VIP package\nu-vip\n"), ("tags.json", r#"{"user": {"u-1": {"segment": "student"}}}"#)];

fn pay(uid: &str, now: &str) -> String {
    json!({"scene": "payment", "instance": "installments", "input": {"uid": uid, "now": now}, "explain": true})
        .to_string()
}

/// The trace entry of `tag` in an explained result.
fn traced<'a>(doc: &'a Value, tag: &str) -> &'a Value {
    doc["trace"].as_array().unwrap().iter().find(|e| e["tag"] == tag).unwrap_or_else(|| panic!("{tag}: {doc}"))
}

fn metric(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn http_toml(risk_url: &str, crm_url: &str, timeout_ms: u64) -> String {
    format!(
        "[providers.risk]\nkind = \"http\"\nurl = \"{risk_url}\"\ntimeout_ms = {timeout_ms}\n\
         [providers.crm]\nkind = \"http\"\nurl = \"{crm_url}\"\ntimeout_ms = {timeout_ms}\n{FILE_PROVIDERS}"
    )
}

#[test]
fn http_providers_batch_per_suspension_and_the_cache_saves_calls() {
    let table = json!({"u-1": {"risk_score": 12, "lifecycle": "active", "level": 1}, "u-2": {"risk_score": 12}});
    let risk = TagServer::start(TagServerMode::Answer, table.clone());
    let crm = TagServer::start(TagServerMode::Answer, table);
    let dir = provider_setup(&http_toml(&risk.url, &crm.url, 2000), &FILE_PROVIDER_FILES);
    let server = provider_server(&dir);

    let (code, doc) = server.post("/v1/decide", &pay("u-1", FIXED_NOW));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["strategy"], "boost", "{doc}");
    assert_eq!(traced(&doc, "user.vip")["value"], false);
    // `sensitive`: the trace shows that the risk score was there, never what it was.
    assert_eq!(traced(&doc, "user.risk_score")["value"], "<sensitive>", "{doc}");
    assert!(!doc.to_string().contains("12"), "{doc}");
    // One POST per provider for the suspension that needed both of low_risk's tags.
    let bodies = risk.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        bodies[0],
        json!({"queries": [{"tag": "user.risk_score", "entity": "user", "field": "risk_score", "key": "u-1"}]})
    );
    assert_eq!(crm.bodies().len(), 1);

    // A missing value (`null`) is unknown: u-2 has no lifecycle, so low_risk is unknown
    // and never grants; level is asked for in the next suspension and is missing too.
    let (_, doc) = server.post("/v1/decide", &pay("u-2", FIXED_NOW));
    assert_eq!(doc["strategy"], "default", "{doc}");
    assert_eq!(traced(&doc, "user.lifecycle")["missing"], "no value", "{doc}");

    // `risk_score` has `cache 3m`: asking again for u-1 does not call the risk service.
    let (_, doc) = server.post("/v1/decide", &pay("u-1", FIXED_NOW));
    assert_eq!(doc["strategy"], "boost");
    assert_eq!(risk.bodies().len(), 2, "u-1 then u-2, and no third call");
    let (_, metrics) = server.get("/metrics");
    assert_eq!(metric(&metrics, "ruledeck_tag_cache_total{result=\"hit\"}"), 1.0, "{metrics}");
    assert_eq!(metric(&metrics, "ruledeck_tag_cache_total{result=\"miss\"}"), 2.0, "{metrics}");
    assert_eq!(metric(&metrics, "ruledeck_provider_calls_total{provider=\"risk\"}"), 2.0, "{metrics}");
    assert!(metrics.contains("ruledeck_provider_latency_seconds_count{provider=\"crm\"}"), "{metrics}");
    assert_eq!(metric(&metrics, "ruledeck_provider_failures_total{provider=\"risk\"}"), 0.0);

    // A batch over remote providers decides on several threads; the results keep the
    // requests' order, refusals in place.
    let requests: Vec<Value> = (0..40)
        .map(|i| match i % 3 {
            0 => json!({"scene": "payment", "instance": "installments", "input": {"uid": "u-1", "now": FIXED_NOW}}),
            1 => json!({"scene": "payment", "instance": "installments", "input": {"uid": "u-2", "now": FIXED_NOW}}),
            _ => json!({"scene": "payment", "instance": "nope", "input": {"uid": "u-1"}}),
        })
        .collect();
    let (code, doc) = server.post("/v1/decide/batch", &json!({ "requests": requests }).to_string());
    assert_eq!(code, 200, "{doc}");
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 40);
    for (i, r) in results.iter().enumerate() {
        match i % 3 {
            0 => assert_eq!(r["strategy"], "boost", "{i}: {r}"),
            1 => assert_eq!(r["strategy"], "default", "{i}: {r}"),
            _ => assert_eq!(r["field"], format!("requests[{i}].instance"), "{i}: {r}"),
        }
    }
}

#[test]
fn slow_failing_and_malformed_tag_services_make_tags_unknown_never_granting() {
    let table = json!({"u-1": {"risk_score": 12, "lifecycle": "active", "level": 5}});
    let good = TagServer::start(TagServerMode::Answer, table.clone());
    for (mode, why) in [
        (TagServerMode::Slow, "timed out after 200 ms"),
        (TagServerMode::Fail, "answered HTTP 500"),
        (TagServerMode::Malformed, "the answer is not JSON"),
        (TagServerMode::Short, "the answer has 0 values for 1 queries"),
    ] {
        let bad = TagServer::start(mode, table.clone());
        let dir = provider_setup(&http_toml(&bad.url, &good.url, 200), &FILE_PROVIDER_FILES);
        let server = provider_server(&dir);
        let (code, doc) = server.post("/v1/decide", &pay("u-1", FIXED_NOW));
        assert_eq!(code, 200, "{doc}");
        // low_risk is unknown (its risk score failed), so `boost` never grants; the next
        // strategy, from the healthy provider, still decides.
        assert_eq!(doc["strategy"], "level", "{why}: {doc}");
        let missing = traced(&doc, "user.risk_score")["missing"].as_str().unwrap().to_string();
        assert!(missing.contains(why) && missing.contains("provider `risk`"), "{why}: {missing}");
        let (_, metrics) = server.get("/metrics");
        assert_eq!(metric(&metrics, "ruledeck_provider_failures_total{provider=\"risk\"}"), 1.0, "{metrics}");
        // A failure is not cached: the next request asks again.
        server.post("/v1/decide", &pay("u-1", FIXED_NOW));
        assert_eq!(bad.bodies().len(), 2, "{why}");
    }
}

/// SIGTERM while a decision waits on its tag service: that request still completes with 200
/// and the decision that needs the held value, new connections are refused during the drain,
/// and the process exits 0. The tag service holds its answer until the test has seen the
/// drain start and its connection refused (channels, no sleeps to line things up).
#[test]
fn sigterm_lets_a_request_in_flight_finish_and_refuses_new_connections() {
    use std::sync::{mpsc, Arc, Mutex};
    let table = json!({"u-1": {"risk_score": 12, "lifecycle": "active", "level": 1}});
    let (called, risk_called) = mpsc::channel::<()>();
    let (let_answer, answer_allowed) = mpsc::channel::<()>();
    let gate = Mutex::new((called, answer_allowed));
    let hold: Hold = Arc::new(move || {
        let gate = gate.lock().unwrap();
        let _ = gate.0.send(());
        // Bounded so a broken test ends instead of hanging; released long before.
        gate.1.recv_timeout(Duration::from_secs(50)).is_ok()
    });
    let risk = TagServer::start(TagServerMode::Held(hold), table.clone());
    let crm = TagServer::start(TagServerMode::Answer, table);
    let dir = provider_setup(&http_toml(&risk.url, &crm.url, 60_000), &FILE_PROVIDER_FILES);
    let mut server = provider_server(&dir);
    let url = format!("{}/v1/decide", server.base);
    let in_flight = std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(120)).build();
        Server::answer(agent.post(&url).set("Content-Type", "application/json").send_string(&pay("u-1", FIXED_NOW)))
    });
    // The decision is waiting on the risk service: the request is in flight.
    risk_called.recv_timeout(Duration::from_secs(60)).expect("the risk service is called");
    server.sigterm();
    server.wait_for_log("shutting down");
    // The listener closes as the drain starts: bounded polls, as the log line comes first.
    let addr = server.base.trim_start_matches("http://").to_string();
    let refused = (0..POLLS).any(|_| match std::net::TcpStream::connect(&addr) {
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
            true
        }
        Ok(_) => {
            std::thread::sleep(Duration::from_millis(50));
            false
        }
    });
    assert!(refused, "new connections are still accepted while draining");
    assert!(matches!(server.child.try_wait(), Ok(None)), "the server exited with a request in flight");
    let_answer.send(()).unwrap();
    let (code, body) = in_flight.join().unwrap();
    assert_eq!(code, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["strategy"], "boost", "decided with the risk score that arrived after SIGTERM: {doc}");
    let (code, stderr) = server.wait_exit();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("drained"), "{stderr}");
}

/// Two tag services that meet: each holds its first answer until both have been asked.
#[derive(Default)]
struct Rendezvous {
    arrived: std::sync::Mutex<usize>,
    both: std::sync::Condvar,
}

impl Rendezvous {
    /// A hold for one of the two services: its first request waits for the other service's
    /// first request (up to `within`, then answers 500), later ones answer at once.
    fn hold(meeting: &std::sync::Arc<Rendezvous>, within: Duration) -> Hold {
        let (meeting, first) = (meeting.clone(), std::sync::atomic::AtomicBool::new(true));
        std::sync::Arc::new(move || {
            if !first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return true;
            }
            let mut arrived = meeting.arrived.lock().unwrap();
            *arrived += 1;
            meeting.both.notify_all();
            let (arrived, _) = meeting.both.wait_timeout_while(arrived, within, |n| *n < 2).unwrap();
            *arrived >= 2
        })
    }
}

/// The remote providers of one suspension are called in parallel: the risk and crm services
/// each hold their answer until both have been asked. Called one after the other, the first
/// would give up waiting (a 500, its tag unknown), `low_risk` would not grant, and the
/// decision would not be `boost`; the wait is bounded, so that fails rather than hangs.
#[test]
fn the_remote_providers_of_one_suspension_are_called_in_parallel() {
    let table = json!({"u-1": {"risk_score": 12, "lifecycle": "active", "level": 1}});
    let meeting = std::sync::Arc::new(Rendezvous::default());
    let within = Duration::from_secs(30);
    let risk = TagServer::start(TagServerMode::Held(Rendezvous::hold(&meeting, within)), table.clone());
    let crm = TagServer::start(TagServerMode::Held(Rendezvous::hold(&meeting, within)), table);
    let dir = provider_setup(&http_toml(&risk.url, &crm.url, 60_000), &FILE_PROVIDER_FILES);
    let server = provider_server(&dir);
    let (code, doc) = server.post("/v1/decide", &pay("u-1", FIXED_NOW));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["strategy"], "boost", "low_risk needs both services' values: {doc}");
    assert_eq!(traced(&doc, "user.risk_score").get("missing"), None, "{doc}");
    assert_eq!(traced(&doc, "user.lifecycle")["value"], "active", "{doc}");
    // `low_risk` reads one tag of each: one call to each, in the same suspension.
    assert_eq!((risk.bodies().len(), crm.bodies().len()), (1, 1));
}

#[test]
fn a_user_package_serves_its_keys_until_it_expires() {
    let table = json!({});
    let tags = TagServer::start(TagServerMode::Answer, table);
    let dir = provider_setup(&http_toml(&tags.url, &tags.url, 2000), &FILE_PROVIDER_FILES);
    let server = provider_server(&dir);
    let (_, doc) = server.post("/v1/decide", &pay("u-vip", "2026-12-31T23:59:59Z"));
    assert_eq!(doc["strategy"], "vip", "{doc}");
    // Not in the package: false, not unknown.
    let (_, doc) = server.post("/v1/decide", &pay("u-1", "2026-12-31T23:59:59Z"));
    assert_eq!(traced(&doc, "user.vip")["value"], false, "{doc}");
    // From the day after `expires` (by the request's `now`), the package is not served.
    let (_, doc) = server.post("/v1/decide", &pay("u-vip", "2027-01-01T00:00:00Z"));
    assert_eq!(doc["strategy"], "default", "{doc}");
    assert_eq!(traced(&doc, "user.vip")["missing"], "no value", "{doc}");
    // The file provider serves its table.
    let body = json!({"scene": "promo", "instance": "banner", "input": {"uid": "u-1"}}).to_string();
    assert_eq!(server.post("/v1/decide", &body).1["strategy"], "seg");
}

#[test]
fn redis_provider_reads_a_hash_per_key_and_failures_are_unknown() {
    let Some(redis) = Redis::start() else { return };
    let mut c = redis.connection();
    redis::cmd("HSET")
        .arg("user:u-1")
        .arg("lifecycle")
        .arg("active")
        .arg("level")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("HSET")
        .arg("user:u-3")
        .arg("lifecycle")
        .arg("dormant")
        .arg("level")
        .arg("4")
        .query::<()>(&mut c)
        .unwrap();
    let table = json!({"u-1": {"risk_score": 12}, "u-3": {"risk_score": 12}, "u-4": {"risk_score": 12}});
    let risk = TagServer::start(TagServerMode::Answer, table);
    let toml = format!(
        "[providers.risk]\nkind = \"http\"\nurl = \"{}\"\ntimeout_ms = 2000\n\
         [providers.crm]\nkind = \"redis\"\nurl = \"{}\"\nkey = \"user:{{key}}\"\ntimeout_ms = 2000\n{FILE_PROVIDERS}",
        risk.url, redis.url
    );
    let dir = provider_setup(&toml, &FILE_PROVIDER_FILES);
    let server = provider_server(&dir);
    let (_, doc) = server.post("/v1/decide", &pay("u-1", FIXED_NOW));
    assert_eq!(doc["strategy"], "boost", "{doc}");
    assert_eq!(traced(&doc, "user.lifecycle")["value"], "active");
    // `dormant` is not a member of the enum: the value is unknown, never a crash.
    let (_, doc) = server.post("/v1/decide", &pay("u-3", FIXED_NOW));
    assert_eq!(doc["strategy"], "level", "{doc}");
    assert!(traced(&doc, "user.lifecycle")["missing"].as_str().unwrap().contains("not a member"), "{doc}");
    assert_eq!(traced(&doc, "user.level")["value"], 4);
    // No hash at all: missing.
    let (_, doc) = server.post("/v1/decide", &pay("u-4", FIXED_NOW));
    assert_eq!(traced(&doc, "user.lifecycle")["missing"], "no value", "{doc}");
    // The batch decides too, each entry through the same providers.
    let batch = json!({"requests": [
        {"scene": "payment", "instance": "installments", "input": {"uid": "u-1", "now": FIXED_NOW}},
        {"scene": "payment", "instance": "installments", "input": {"uid": "u-3", "now": FIXED_NOW}},
    ]});
    let (_, doc) = server.post("/v1/decide/batch", &batch.to_string());
    assert_eq!(doc["results"][0]["strategy"], "boost", "{doc}");
    assert_eq!(doc["results"][1]["strategy"], "level", "{doc}");
    // Redis goes away: its tags are unknown, the request still succeeds, the metric counts.
    drop(c);
    drop(redis);
    let (code, doc) = server.post("/v1/decide", &pay("u-1", FIXED_NOW));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["strategy"], "default", "{doc}");
    assert!(traced(&doc, "user.lifecycle")["missing"].as_str().unwrap().contains("provider `crm` (redis)"), "{doc}");
    let (_, metrics) = server.get("/metrics");
    assert!(metric(&metrics, "ruledeck_provider_failures_total{provider=\"crm\"}") >= 1.0, "{metrics}");
}

#[test]
fn bad_provider_configurations_are_refused_naming_file_line_and_field() {
    let cases: [(&str, &str); 8] = [
        (
            "[providers.risk]\nkind = \"smtp\"\n",
            "providers.toml:2:8: `providers.risk.kind`: unknown provider kind `smtp`",
        ),
        (
            "[providers.risk]\nkind = \"http\"\nurl = \"https://x/tags\"\n",
            "providers.toml:3:7: `providers.risk.url`: https is not built in",
        ),
        ("[providers.risk]\nkind = \"http\"\nurl = \"http://h:99999/\"\n", "the port `99999` is not a number"),
        (
            "[providers.risk]\nkind = \"http\"\n",
            "providers.toml:1:1: `providers.risk.url`: a `http` provider needs `url`",
        ),
        (
            "[providers.risk]\nkind = \"http\"\nurl = \"http://h/\"\nttl = 3\n",
            "providers.toml:4:1: unknown field `ttl`",
        ),
        (
            "[providers.risk]\nkind = \"redis\"\nurl = \"redis://h/\"\nkey = \"user\"\n",
            "`providers.risk.key`: the key template must contain `{key}`",
        ),
        (
            "[providers.risk]\nkind = \"package\"\npath = \"p.txt\"\nexpires = \"31.12.2026\"\n",
            "`providers.risk.expires`: `31.12.2026` is not a date",
        ),
        ("[providers.risk\nkind = \"http\"\n", "providers.toml:1:"),
    ];
    for (toml, expected) in cases {
        let dir = provider_setup(toml, &[("p.txt", "u-1\n")]);
        let out = bin()
            .arg("serve")
            .arg(dir.path().join("deck.rule"))
            .arg("--providers")
            .arg(dir.path().join("providers.toml"))
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {stderr}");
        assert!(stderr.contains(expected), "{toml}: expected {expected:?} in {stderr}");
        assert!(out.stdout.is_empty(), "nothing listened");
    }
    // A tag whose provider the file does not configure (and no --tags serves the rest).
    let dir = provider_setup("[providers.risk]\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n", &[]);
    let out = bin()
        .arg("serve")
        .arg(dir.path().join("deck.rule"))
        .arg("--providers")
        .arg(dir.path().join("providers.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tag `user.lifecycle` loads from provider `crm`, which") && stderr.contains("(it has: `risk`)"),
        "{stderr}"
    );
}

// ---- Decision log (`--decision-log PATH`) ----

const LOGGED_DECK: &str = r#"
entity user key uid
tag user.risk_score: int from "risk" sensitive
tag user.lifecycle: enum(new, active) from "crm"
tag ctx.channel: enum(app, h5) passthrough
rule user low_risk = user.risk_score < 30 and user.lifecycle == active
scene payment {
  keys uid
  passes ctx.channel
  instance installments -> { count: int } {
    strategy boost when low_risk and ctx.channel == app {
      experiment inst by uid {
        control 50% => { count: 3 }
        treatment 50% => { count: 6 }
      }
    }
    default => { count: 1 }
  }
}
"#;

fn logged_server(dir: &Path, log: &str) -> Server {
    std::fs::write(dir.join("deck.rule"), LOGGED_DECK).unwrap();
    std::fs::write(dir.join("tags.json"), r#"{"user": {"u-1": {"risk_score": 12, "lifecycle": "active"}}}"#).unwrap();
    let (deck, tags) = (dir.join("deck.rule"), dir.join("tags.json"));
    Server::start(&[deck.to_str().unwrap(), "--tags", tags.to_str().unwrap(), "--decision-log", log])
}

fn logged_request(uid: &str) -> String {
    json!({"scene": "payment", "instance": "installments",
           "input": {"uid": uid, "ctx.channel": "app", "now": FIXED_NOW}})
    .to_string()
}

#[test]
fn the_decision_log_has_one_parseable_line_per_decision_with_sensitive_values_masked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let server = logged_server(dir.path(), log.to_str().unwrap());
    assert_eq!(server.post("/v1/decide", &logged_request("u-1")).0, 200);
    assert_eq!(server.post("/v1/decide", &logged_request("u-2")).0, 200);
    let batch = json!({"requests": [
        {"scene": "payment", "instance": "installments", "input": {"uid": "u-1", "ctx.channel": "h5", "now": FIXED_NOW}},
        {"scene": "payment", "instance": "nope", "input": {}},
    ]});
    assert_eq!(server.post("/v1/decide/batch", &batch.to_string()).0, 200);
    // Refusals are not decisions: not logged.
    assert_eq!(server.post("/v1/decide", "{}").0, 400);
    let (code, stderr) = server.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    let first = &lines[0];
    for field in [
        "time",
        "scene",
        "instance",
        "release",
        "version",
        "strategy",
        "experiment",
        "group",
        "bucket",
        "decision",
        "tags",
        "latency_us",
    ] {
        assert!(first.get(field).is_some(), "no `{field}` in {first}");
    }
    assert_eq!(first["scene"], "payment");
    assert_eq!(first["strategy"], "boost");
    assert_eq!(first["experiment"], "inst");
    assert!(first["group"].is_string() && first["bucket"].is_u64(), "{first}");
    assert_eq!(
        first["tags"],
        json!({"user.risk_score": "<sensitive>", "user.lifecycle": "active", "ctx.channel": "app"})
    );
    assert!(!text.contains("\"user.risk_score\":12"), "the sensitive value never reaches the log: {text}");
    // u-2 has no data: its tags are logged as missing (null).
    assert_eq!(lines[1]["tags"]["user.risk_score"], Value::Null, "{}", lines[1]);
    assert_eq!(lines[1]["strategy"], "default");
    assert_eq!(lines[2]["tags"]["ctx.channel"], "h5");
}

#[test]
fn a_failing_decision_log_drops_lines_with_a_counter_and_requests_still_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let missing_dir = dir.path().join("no such dir").join("decisions.jsonl");
    for sink in ["/dev/full", missing_dir.to_str().unwrap()] {
        let server = logged_server(dir.path(), sink);
        for _ in 0..20 {
            let (code, doc) = server.post("/v1/decide", &logged_request("u-1"));
            assert_eq!(code, 200, "{sink}: {doc}");
        }
        let mut errors = 0.0;
        for _ in 0..POLLS {
            let (_, metrics) = server.get("/metrics");
            errors = metric(&metrics, "ruledeck_decision_log_write_errors_total");
            if errors >= 20.0 {
                assert_eq!(metric(&metrics, "ruledeck_decision_log_written_total"), 0.0, "{metrics}");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(errors, 20.0, "{sink}: every line counted as dropped");
        let (code, stderr) = server.terminate();
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("decision log: cannot"), "{stderr}");
    }
}

// ---- Bearer tokens (`--token-file FILE`) ----

#[test]
fn tokens_guard_every_endpoint_but_health_and_rotate_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "# callers\nalpha-token\n\nbeta-token\n").unwrap();
    let server = Server::start(&[
        "examples/deck",
        "--tags",
        "examples/deck/tags.json",
        "--token-file",
        tokens.to_str().unwrap(),
    ]);
    let call = |path: &str, token: Option<&str>| -> (u16, String) {
        let url = format!("{}{path}", server.base);
        let mut req = if path.starts_with("/v1/decide") { server.agent.post(&url) } else { server.agent.get(&url) };
        if let Some(t) = token {
            req = req.set("Authorization", t);
        }
        let result = if path.starts_with("/v1/decide") { req.send_string(&installments("u-1001")) } else { req.call() };
        Server::answer(result)
    };
    for path in ["/v1/decide", "/v1/release", "/metrics"] {
        for bad in [None, Some("Bearer wrong"), Some("Basic alpha-token"), Some("Bearer alpha-toke"), Some("Bearer ")] {
            let (code, body) = call(path, bad);
            assert_eq!(code, 401, "{path} with {bad:?}: {body}");
            let doc: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(doc["field"], "Authorization", "{doc}");
        }
        assert_eq!(call(path, Some("Bearer alpha-token")).0, 200, "{path}");
        assert_eq!(call(path, Some("bearer beta-token")).0, 200, "{path}");
    }
    // Load balancers probe without credentials.
    assert_eq!(call("/healthz", None).0, 200);
    assert_eq!(call("/readyz", None).0, 200);
    let (_, metrics) = call("/metrics", Some("Bearer alpha-token"));
    assert_eq!(metric(&metrics, "ruledeck_unauthorized_total"), 15.0, "{metrics}");

    // Rotation: a new file replaces the old tokens within a bounded wait, no restart.
    std::fs::write(&tokens, "gamma-token-rotated\n").unwrap();
    let mut rotated = false;
    for _ in 0..POLLS {
        if call("/v1/release", Some("Bearer gamma-token-rotated")).0 == 200 {
            rotated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rotated, "the new token was never accepted");
    assert_eq!(call("/v1/release", Some("Bearer alpha-token")).0, 401, "the old token is gone");
    // A token file that disappears keeps the tokens in force (and says so), never opens up.
    std::fs::remove_file(&tokens).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(call("/v1/release", None).0, 401);
    assert_eq!(call("/v1/release", Some("Bearer gamma-token-rotated")).0, 200);
    assert!(server.stderr().contains("cannot re-read the token file"), "{}", server.stderr());
}

// ---- `ruledeck test --providers`: tag tests against the real sources ----

#[test]
fn tag_tests_run_through_the_configured_providers() {
    let table = json!({"u-1": {"risk_score": 12, "lifecycle": "active", "level": 2}});
    let tags = TagServer::start(TagServerMode::Answer, table);
    let dir = provider_setup(&http_toml(&tags.url, &tags.url, 2000), &FILE_PROVIDER_FILES);
    let tests = r#"
test "the sources answer what R&D expects" {
  expect tag user.risk_score for "u-1" => 12
  expect tag user.lifecycle for "u-1" => active
  expect tag user.level for "u-2" => missing
  expect tag user.vip for "u-vip" => true
  expect tag user.segment for "u-1" => "student"
}
test "a wrong expectation fails with what the source said" {
  expect tag user.level for "u-1" => 3
}
"#;
    let deck = dir.path().join("deck.rule");
    std::fs::write(&deck, format!("{PROVIDER_DECK}{tests}")).unwrap();
    let out = bin()
        .arg("test")
        .arg(&deck)
        .arg("--providers")
        .arg(dir.path().join("providers.toml"))
        .env("RULEDECK_NOW", "2026-12-01T00:00:00Z")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test the sources answer what R&D expects ... ok"), "{stdout}");
    assert!(stdout.contains("expect tag user.level for \"u-1\" => 3"), "{stdout}");
    assert!(stdout.trim_end().ends_with("1 passed, 1 failed"), "{stdout}");
    // The tag service was really asked, one query per expectation.
    assert_eq!(tags.bodies().len(), 4, "{:?}", tags.bodies());
}

#[test]
fn a_body_that_trickles_in_is_a_408() {
    use std::io::{Read, Write};
    let server = Server::start(&["examples/deck", "--tags", "examples/deck/tags.json", "--body-timeout-ms", "300"]);
    let addr = server.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    // Headers promising 100 bytes, then only a few of them, and nothing more.
    stream
        .write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sc")
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("send it at once") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"field\":\"body\""), "{answer}");
    // The service is unharmed.
    assert_eq!(server.post("/v1/decide", &installments("u-1001")).0, 200);
}

#[test]
fn headers_that_trickle_in_close_the_connection() {
    use std::io::{Read, Write};
    let server = Server::start(&["examples/deck", "--tags", "examples/deck/tags.json", "--header-timeout-ms", "300"]);
    let addr = server.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    // A request line, part of a header, and nothing more: the server hangs up.
    stream.write_all(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Ty").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(closed.is_ok(), "the connection was closed, not left open: {closed:?}");
    // The service is unharmed.
    assert_eq!(server.post("/v1/decide", &installments("u-1001")).0, 200);
}

// ---- POST /v1/events: outreach behind the service ----

const OUTREACH_DECK: &str = "examples/outreach/lapsed_nudge.rule";
const OUTREACH_TAGS: &str = "examples/outreach/tags.json";
const OUTREACH_EVENTS: &str = "examples/outreach/lapsed_events.jsonl";

/// The example event log's lines, as written.
fn event_lines() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(OUTREACH_EVENTS)).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// `{"events": [LINE, …]}` with each line as written (so an event without an id hashes as
/// its replay line does).
fn events_body(lines: &[String]) -> String {
    format!(r#"{{"events": [{}]}}"#, lines.join(",\n"))
}

fn events_server(state: &Path, extra: &[&str]) -> Server {
    let state = state.to_str().unwrap();
    let mut args = vec![OUTREACH_DECK, "--tags", OUTREACH_TAGS, "--outreach-state", state];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// `ruledeck replay` of the example log into a fresh state: its records and its summary.
fn replay_reference() -> (Vec<Value>, Value) {
    let out = bin().args(["replay", OUTREACH_EVENTS, OUTREACH_DECK, "--tags", OUTREACH_TAGS]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let summary = stderr.lines().find_map(|l| l.strip_prefix("summary: ")).expect("a summary line");
    (records, serde_json::from_str(summary).unwrap())
}

#[test]
fn events_answer_the_records_replay_prints_and_reach_nobody_twice_across_a_restart() {
    let (reference, summary) = replay_reference();
    assert!(reference.iter().any(|r| r["outcome"] == "sent"), "the example reaches someone");
    let lines = event_lines();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let server = events_server(&state, &[]);
    let (code, doc) = server.post("/v1/events", &events_body(&lines));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["records"], json!(reference));
    assert_eq!(doc["summary"], summary);
    assert_eq!(doc["release"], Value::Null);

    // The metrics count what the summary says.
    let (_, metrics) = server.get("/metrics");
    let sum = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let n = |v: &Value| v.as_u64().unwrap() as f64;
    assert_eq!(sum("ruledeck_outreach_events_total{"), n(&summary["events"]), "{metrics}");
    assert_eq!(sum(r#"ruledeck_outreach_events_total{kind="browse",outcome="late"}"#), n(&summary["late"]));
    assert_eq!(sum(r#"ruledeck_outreach_events_total{kind="browse",outcome="duplicate"}"#), n(&summary["duplicates"]));
    for (channel, sent) in summary["reaches"].as_object().unwrap() {
        let line = format!(r#"ruledeck_outreach_reaches_total{{channel="{channel}",outcome="sent"}}"#);
        assert_eq!(sum(&line), n(sent), "{line}");
    }
    for (reason, count) in summary["filtered"].as_object().unwrap() {
        assert_eq!(sum(&format!(r#"ruledeck_outreach_filtered_total{{reason="{reason}"}}"#)), n(count));
    }
    assert_eq!(sum("ruledeck_outreach_control_total "), n(&summary["control"]));
    assert_eq!(sum("ruledeck_outreach_ingest_latency_seconds_count "), 1.0);

    // The same batch again: every event was ingested already, nobody is reached twice.
    let all_duplicates = |doc: &Value| {
        assert_eq!(doc["records"], json!([]), "{doc}");
        assert_eq!(doc["summary"]["duplicates"], lines.len(), "{doc}");
        assert_eq!(doc["summary"]["decisions"], 0, "{doc}");
    };
    let (code, again) = server.post("/v1/events", &events_body(&lines));
    assert_eq!(code, 200);
    all_duplicates(&again);
    // The state was durable before the answers: a restarted service with the same state
    // knows every event.
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    let server = events_server(&state, &[]);
    let (code, after_restart) = server.post("/v1/events", &events_body(&lines));
    assert_eq!(code, 200);
    all_duplicates(&after_restart);
    drop(server);

    // Split into requests of 40 events, into a fresh state: the same records, in order.
    let server = events_server(&tmp.path().join("split"), &[]);
    let mut records = Vec::new();
    for chunk in lines.chunks(40) {
        let (code, doc) = server.post("/v1/events", &events_body(chunk));
        assert_eq!(code, 200, "{doc}");
        records.extend(doc["records"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(json!(records), json!(reference));
}

#[test]
fn events_refusals_limits_and_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    // Without --outreach-state the endpoint is off, and says how to turn it on.
    let server = Server::start(&[OUTREACH_DECK]);
    let (code, doc) = server.post("/v1/events", r#"{"events": []}"#);
    assert_eq!(code, 404, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("--outreach-state DIR"), "{doc}");
    drop(server);
    // A deck without events has nothing to ingest.
    let no_events = tmp.path().join("no-events");
    let server = Server::start(&[
        "examples/deck",
        "--tags",
        "examples/deck/tags.json",
        "--outreach-state",
        no_events.to_str().unwrap(),
    ]);
    let (code, doc) = server.post("/v1/events", r#"{"events": []}"#);
    assert_eq!(code, 404, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("the deck declares no events"), "{doc}");
    drop(server);

    let tokens = tmp.path().join("tokens.txt");
    std::fs::write(&tokens, "alpha-token\n").unwrap();
    let state = tmp.path().join("state");
    let server = events_server(&state, &["--token-file", tokens.to_str().unwrap()]);
    // A second service cannot take the same state (redb has one writer): exit 2 at start.
    let out = bin()
        .args(["serve", OUTREACH_DECK, "--outreach-state", state.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--outreach-state"), "{out:?}");

    let post = |body: &str, token: Option<&str>| -> (u16, Value) {
        let mut req = server.agent.post(&format!("{}/v1/events", server.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let (code, text) = Server::answer(req.send_string(body));
        (code, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    };
    let event = r#"{"id": "e-1", "event": "browse", "time": "2026-11-21T09:00:00Z", "uid": "u-1", "sku": "phone-1", "category": "phone"}"#;
    for token in [None, Some("wrong")] {
        let (code, doc) = post(&format!(r#"{{"events": [{event}]}}"#), token);
        assert_eq!(code, 401, "{doc}");
        assert_eq!(doc["field"], "Authorization");
    }
    let ok = Some("alpha-token");
    // The request's shape: 400 naming the field.
    for (body, field) in [
        ("[]", "body"),
        ("{", "body"),
        (r#"{"events": [], "events": []}"#, "body"),
        ("{}", "events"),
        (r#"{"events": {}}"#, "events"),
        (r#"{"events": "e-1"}"#, "events"),
        (r#"{"events": [], "evnets": []}"#, "evnets"),
    ] {
        let (code, doc) = post(body, ok);
        assert_eq!((code, doc["field"].as_str()), (400, Some(field)), "{body}: {doc}");
    }
    // One event more than a request may hold is 413; exactly at the limit is read, and a
    // bad event is an `invalid` record in its place, never a refusal.
    let (code, doc) = post(&json!({ "events": vec![json!({}); MAX_EVENTS_PER_REQUEST + 1] }).to_string(), ok);
    assert_eq!((code, doc["field"].as_str()), (413, Some("events")), "{doc}");
    let mut events = vec![json!(1); MAX_EVENTS_PER_REQUEST];
    events[1] = serde_json::from_str(event).unwrap();
    events[2] = json!({"event": "browse", "time": "yesterday", "uid": "u-1", "sku": "x", "category": "y"});
    let (code, doc) = post(&json!({ "events": events }).to_string(), ok);
    assert_eq!(code, 200, "{doc}");
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), MAX_EVENTS_PER_REQUEST - 1, "the good event decides nothing with one browse");
    assert_eq!(records[0], json!({"outcome": "invalid", "reason": "an event is a JSON object"}));
    assert_eq!(records[1], json!({"outcome": "invalid", "reason": "invalid time `yesterday`"}));
    assert_eq!(doc["summary"]["invalid"], MAX_EVENTS_PER_REQUEST - 1);
    assert_eq!(doc["summary"]["events"], MAX_EVENTS_PER_REQUEST);
    let metrics = server.agent.get(&format!("{}/metrics", server.base)).set("Authorization", "Bearer alpha-token");
    let metrics = metrics.call().unwrap().into_string().unwrap();
    assert_eq!(
        metric(&metrics, r#"ruledeck_outreach_events_total{kind="browse",outcome="processed"}"#),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, r#"ruledeck_outreach_events_total{kind="browse",outcome="invalid"}"#),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, r#"ruledeck_refusals_total{reason="too_large"}"#), 1.0, "{metrics}");
}

/// Writes `deck` into its own directory and publishes it with the real `ruledeck release`.
fn publish_deck(store: &Path, dir: &Path, deck: &str) -> Value {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("deck.rule"), deck).unwrap();
    let out = bin().arg("release").arg(dir).arg("--store").arg(store).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A deck whose every view reaches with the unit's window counts, under `action`.
fn counting_deck(windows: &[&str], action: &str) -> String {
    format!(
        r#"
entity user key uid
event view by uid {{ sku: text }}
event order by uid {{ amount_cents: int }}
{}
channel push
scene s on view {{
  instance i -> reach {{ views: int, orders: int }} {{
    default => reach push "{action}" {{ views: user.views, orders: user.orders }}
  }}
}}
"#,
        windows.join("\n")
    )
}

#[test]
fn events_run_on_the_served_release_and_keep_window_counts_across_a_swap() {
    let views = "tag user.views: int = count(view) within 1d";
    let orders = "tag user.orders: int = count(order) within 1d";
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    publish_deck(&store, &tmp.path().join("v1"), &counting_deck(&[views, orders], "first"));
    let state = tmp.path().join("state");
    let server = Server::start(&["--store", store.to_str().unwrap(), "--outreach-state", state.to_str().unwrap()]);
    let event = |id: &str, kind: &str, minute: u32| {
        let mut e = json!({"id": id, "event": kind, "time": format!("2026-11-21T08:{minute:02}:00Z"), "uid": "u-1"});
        if kind == "view" {
            e["sku"] = json!("p-1");
        } else {
            e["amount_cents"] = json!(100);
        }
        e
    };
    let post = |events: Vec<Value>| -> Value {
        let (code, doc) = server.post("/v1/events", &json!({ "events": events }).to_string());
        assert_eq!(code, 200, "{doc}");
        doc
    };
    let counts = |doc: &Value| -> Vec<Value> {
        doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!([r["action"], r["payload"]["views"], r["payload"]["orders"], r["release"], r["version"]]))
            .collect()
    };
    let doc = post(vec![event("v1", "view", 0), event("o1", "order", 1), event("v2", "view", 2)]);
    assert_eq!(doc["release"], 1);
    assert_eq!(counts(&doc), [json!(["first", 1, 0, 1, 1]), json!(["first", 2, 1, 1, 1])]);

    // Release 2 declares the windows in another order (and one more) and reaches under
    // another action: the next view is decided by it, with the counts carried on.
    let carts = "tag user.carts: int = count(order) within 2d";
    publish_deck(&store, &tmp.path().join("v2"), &counting_deck(&[carts, orders, views], "second"));
    let release = server.wait_for("release 2", |doc| doc["release"] == 2);
    assert_eq!(release["instances"]["s.i"], 2);
    let doc = post(vec![event("v3", "view", 3)]);
    assert_eq!(doc["release"], 2);
    assert_eq!(counts(&doc), [json!(["second", 3, 1, 2, 2])]);
    // Events already ingested under release 1 are still known.
    let doc = post(vec![event("v1", "view", 0)]);
    assert_eq!((doc["records"].clone(), doc["summary"]["duplicates"].clone()), (json!([]), json!(1)));
}

/// Two replicas over one Redis outreach state: events one replica ingested are duplicates
/// for the other, and the first answers exactly what `ruledeck replay` prints.
#[test]
fn replicas_sharing_a_redis_outreach_state_reach_nobody_twice() {
    let Some(redis) = Redis::start() else { return };
    let (reference, _) = replay_reference();
    let lines = event_lines();
    let state = PathBuf::from(&redis.url);
    let (a, b) = (events_server(&state, &[]), events_server(&state, &[]));
    let (code, doc) = a.post("/v1/events", &events_body(&lines));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["records"], json!(reference));
    let (code, doc) = b.post("/v1/events", &events_body(&lines));
    assert_eq!(code, 200, "{doc}");
    assert_eq!(doc["records"], json!([]), "{doc}");
    assert_eq!(doc["summary"]["duplicates"], lines.len(), "{doc}");
}

/// Event scenes load their tags, and channels their users' time zones, from the service's
/// `--providers` (here a real tag service on loopback), as decisions do: `u-1` is a VIP in
/// Shanghai, where 15:00Z is 23:00 and quiet (held to 08:00 local, 00:00Z); `u-2` is not a
/// VIP; `u-3` is a VIP in UTC, reached at once. Without the provider nobody is a VIP.
#[test]
fn event_scenes_load_tags_and_zones_from_the_services_providers() {
    const DECK: &str = r#"
entity user key uid
event browse by uid { sku: text }
tag user.vip: bool from "crm"
tag user.zone: text from "crm"
channel push quiet 22:00..08:00 zone user.zone
scene nudge on browse {
  instance hello -> reach { sku: text } {
    strategy vip when user.vip => reach push "hello" { sku: event.sku }
  }
}
"#;
    let crm = TagServer::start(
        TagServerMode::Answer,
        json!({
            "u-1": {"vip": true, "zone": "Asia/Shanghai"},
            "u-2": {"vip": false, "zone": "UTC"},
            "u-3": {"vip": true, "zone": "UTC"},
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deck.rule"), DECK).unwrap();
    let toml = format!("[providers.crm]\nkind = \"http\"\nurl = \"{}\"\ntimeout_ms = 5000\n", crm.url);
    std::fs::write(dir.path().join("providers.toml"), toml).unwrap();
    let (deck, toml, state) =
        (dir.path().join("deck.rule"), dir.path().join("providers.toml"), dir.path().join("state"));
    let server = Server::start(&[
        deck.to_str().unwrap(),
        "--providers",
        toml.to_str().unwrap(),
        "--outreach-state",
        state.to_str().unwrap(),
    ]);
    let lines: Vec<String> = ["u-1", "u-2", "u-3"]
        .iter()
        .map(|u| {
            format!(r#"{{"id": "{u}-0", "event": "browse", "time": "2026-11-21T15:00:00Z", "uid": "{u}", "sku": "s"}}"#)
        })
        .collect();
    let (code, doc) = server.post("/v1/events", &events_body(&lines));
    assert_eq!(code, 200, "{doc}");
    let reaches: Vec<(String, String, String)> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["outcome"].as_str(), Some("sent" | "held")))
        .map(|r| (r["unit"].to_string(), r["outcome"].to_string(), r["at"].to_string()))
        .collect();
    assert_eq!(
        reaches,
        [
            (r#""u-1""#.into(), r#""held""#.into(), r#""2026-11-22T00:00:00Z""#.into()),
            (r#""u-3""#.into(), r#""sent""#.into(), r#""2026-11-21T15:00:00Z""#.into()),
        ],
        "{doc}"
    );
    let asked: Vec<String> = crm
        .bodies()
        .iter()
        .flat_map(|b| {
            b["queries"].as_array().unwrap().iter().map(|q| format!("{}@{}", q["field"], q["key"])).collect::<Vec<_>>()
        })
        .collect();
    assert!(
        asked.contains(&r#""vip"@"u-2""#.to_string()) && asked.contains(&r#""zone"@"u-1""#.to_string()),
        "{asked:?}"
    );
    // Counted with the service's provider calls.
    let (_, metrics) = server.get("/metrics");
    assert!(metric(&metrics, r#"ruledeck_provider_calls_total{provider="crm""#) >= 4.0, "{metrics}");
}
