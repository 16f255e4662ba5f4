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

use ruledeck::limits::{MAX_BATCH_REQUESTS, MAX_HTTP_BODY_BYTES};
use serde_json::{json, Value};

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
    fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let code = self.child.wait().unwrap().code();
        (code, self.stderr())
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
