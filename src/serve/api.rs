//! The HTTP API: routes, request documents, refusals and their status codes.
//!
//! Owns: reading bodies (with the size limit), validating request documents field by field,
//! mapping every refusal to a 4xx with a JSON body naming the field, and running decisions
//! on the blocking pool (providers block). Must not: decide anything itself (the engine
//! does) or load releases (the watcher does, through [`Deck`]).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};

use super::auth::Tokens;
use super::decision_log::DecisionLog;
use super::deck::{Deck, Snapshot};
use super::events::{Events, EventsError, Posted};
use super::metrics::{DecisionLabels, Metrics};
use crate::engine::{parse_json, EngineError};
#[cfg(doc)]
use crate::limits::HTTP_BODY_TIMEOUT_MS;
use crate::limits::{MAX_BATCH_REQUESTS, MAX_EVENTS_PER_REQUEST, MAX_HTTP_BODY_BYTES};
use crate::vm::RequestError;

/// A body larger than the limit is still read (and dropped) up to this many times the
/// limit, so the caller is sent its 413 on a healthy connection; beyond it the connection
/// is closed.
const DRAIN_FACTOR: usize = 4;

/// What a running service shares between requests.
pub struct Service {
    /// What decides.
    pub deck: Deck,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// `--decision-log`: one line per decision, when on.
    pub log: Option<DecisionLog>,
    /// `--token-file`: the bearer tokens every route but `/healthz` and `/readyz` requires.
    pub tokens: Option<Tokens>,
    /// How long a request body may take to arrive (408 after it).
    pub body_timeout: std::time::Duration,
    /// Whether single decisions run on the async worker itself: only when no provider waits
    /// on I/O (see [`crate::Provider::is_remote`]); otherwise on the blocking pool.
    pub inline: bool,
    /// `--outreach-state`: the outreach runtime behind `POST /v1/events` (off when `None`).
    pub events: Option<Arc<Events>>,
}

/// All routes of the service. With tokens, every route but `/healthz` and `/readyz` (which
/// load balancers probe without credentials) requires one.
pub fn router(service: Arc<Service>) -> Router {
    let protected = Router::new()
        .route("/v1/decide", post(decide))
        .route("/v1/decide/batch", post(batch))
        .route("/v1/events", post(events))
        .route("/v1/release", get(release))
        .route("/metrics", get(metrics))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .route_layer(axum::middleware::from_fn_with_state(service.clone(), authorize));
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).merge(protected).with_state(service)
}

/// Refuses a request without a valid bearer token (401), when tokens are configured.
async fn authorize(
    State(svc): State<Arc<Service>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(tokens) = &svc.tokens {
        let given = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !tokens.allows(given) {
            svc.metrics.unauthorized.inc();
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "missing or unknown token: send `Authorization: Bearer TOKEN`", "field": "Authorization"}),
            );
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    next.run(request).await
}

/// A refused request: its status, the field at fault (a path like `requests[2].input.uid`),
/// and what is wrong.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl Refusal {
    fn bad(field: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal { status: StatusCode::BAD_REQUEST, field: Some(field.into()), message: message.into() }
    }

    /// The metric label of the refusal.
    fn reason(&self) -> &'static str {
        match self.status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::SERVICE_UNAVAILABLE => "not_ready",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::BAD_REQUEST => "bad_request",
            _ => "other",
        }
    }

    fn doc(&self) -> Value {
        json!({"error": self.message, "field": self.field})
    }
}

fn json_response(status: StatusCode, doc: &impl serde::Serialize) -> Response {
    let mut body = serde_json::to_string(doc).expect("a response serializes");
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn refused(metrics: &Metrics, refusal: Refusal) -> Response {
    if refusal.status.is_server_error() {
        tracing::error!("{}", refusal.message);
    }
    metrics.refuse(refusal.reason());
    json_response(refusal.status, &refusal.doc())
}

fn not_ready() -> Refusal {
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        field: None,
        message: "no release is loaded yet; see GET /v1/release for why".into(),
    }
}

/// Reads the body, refusing one over [`MAX_HTTP_BODY_BYTES`] (413) after draining it, and
/// one that takes longer than `timeout` (default [`HTTP_BODY_TIMEOUT_MS`]) to arrive (408):
/// a client that trickles its body cannot hold a connection and its memory for long.
async fn read_body(headers: &HeaderMap, body: Body, timeout: std::time::Duration) -> Result<Vec<u8>, Refusal> {
    match tokio::time::timeout(timeout, read_body_untimed(headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(Refusal {
            status: StatusCode::REQUEST_TIMEOUT,
            field: Some("body".into()),
            message: format!("the body did not arrive within {} ms; send it at once", timeout.as_millis()),
        }),
    }
}

async fn read_body_untimed(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, Refusal> {
    let too_large = || Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        field: Some("body".into()),
        message: format!("the body is larger than {MAX_HTTP_BODY_BYTES} bytes, the limit; send a smaller batch"),
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (MAX_HTTP_BODY_BYTES * DRAIN_FACTOR) as u64) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Refusal::bad("body", format!("cannot read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= MAX_HTTP_BODY_BYTES {
                bytes.extend_from_slice(&data);
            } else if total > MAX_HTTP_BODY_BYTES * DRAIN_FACTOR {
                break;
            }
        }
    }
    if total > MAX_HTTP_BODY_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Parses a body as JSON, refusing duplicate keys and nesting past the JSON limit.
fn parse_body(bytes: &[u8]) -> Result<Value, Refusal> {
    parse_json(bytes).map_err(|e| Refusal::bad("body", format!("the body is not valid JSON: {e}")))
}

/// `prefix.name`, or `name` at the top level.
fn at(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One decision request, validated.
struct DecideRequest {
    scene: String,
    instance: String,
    input: Value,
    explain: bool,
    /// Where it sits in the body, for error fields (`""` or `requests[3]`).
    prefix: String,
}

const FIELDS: &str = "`scene`, `instance`, `input` and optionally `explain`";

fn decide_request(doc: &Value, prefix: &str) -> Result<DecideRequest, Refusal> {
    let whole = if prefix.is_empty() { "body" } else { prefix };
    let Value::Object(map) = doc else {
        return Err(Refusal::bad(
            whole,
            format!("a decision request is a JSON object with {FIELDS}, not {}", kind(doc)),
        ));
    };
    if let Some(key) = map.keys().find(|k| !["scene", "instance", "input", "explain"].contains(&k.as_str())) {
        return Err(Refusal::bad(at(prefix, key), format!("unknown field `{key}`; a decision request has {FIELDS}")));
    }
    let text = |name: &str| -> Result<String, Refusal> {
        match map.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(Refusal::bad(at(prefix, name), format!("`{name}` must be text, not {}", kind(other)))),
            None => {
                Err(Refusal::bad(at(prefix, name), format!("missing field `{name}`; a decision request has {FIELDS}")))
            }
        }
    };
    let scene = text("scene")?;
    let instance = text("instance")?;
    let input = match map.get("input") {
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(Refusal::bad(
                at(prefix, "input"),
                format!("`input` must be an object of keys and pass-through tags, not {}", kind(other)),
            ))
        }
        None => {
            return Err(Refusal::bad(
                at(prefix, "input"),
                "missing field `input` (the request's keys and pass-through tags, e.g. {\"uid\": \"u-1001\"})",
            ))
        }
    };
    let explain = match map.get("explain") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(Refusal::bad(
                at(prefix, "explain"),
                format!("`explain` must be true or false, not {}", kind(other)),
            ))
        }
    };
    Ok(DecideRequest { scene, instance, input, explain, prefix: prefix.to_string() })
}

/// The status and field of an engine refusal.
fn engine_refusal(e: EngineError, prefix: &str) -> Refusal {
    let input = |name: &str| at(&at(prefix, "input"), name);
    let (status, field) = match &e {
        EngineError::Request(r) => match r {
            RequestError::UnknownScene { .. } => (StatusCode::NOT_FOUND, at(prefix, "scene")),
            RequestError::UnknownInstance { .. } => (StatusCode::NOT_FOUND, at(prefix, "instance")),
            RequestError::UnknownKey { key, .. } => (StatusCode::BAD_REQUEST, input(key)),
            RequestError::UnknownPass { tag, .. } => (StatusCode::BAD_REQUEST, input(tag)),
            RequestError::MissingKey(k) => (StatusCode::BAD_REQUEST, input(k)),
            RequestError::MissingPass(t) => (StatusCode::BAD_REQUEST, input(t)),
            RequestError::InvalidPass { tag, .. } => (StatusCode::BAD_REQUEST, input(tag)),
            // The engine names the field in backticks (`key `uid` must be…`, `` `now` must be…``).
            RequestError::InvalidInput(message) => match message.split('`').nth(1) {
                Some(name) if !name.is_empty() => (StatusCode::BAD_REQUEST, input(name)),
                _ => (StatusCode::BAD_REQUEST, at(prefix, "input")),
            },
            _ => (StatusCode::BAD_REQUEST, at(prefix, "input")),
        },
        // Every deck is served with a fallback provider, so this is the service's fault.
        EngineError::NoProvider { .. } => (StatusCode::INTERNAL_SERVER_ERROR, at(prefix, "scene")),
    };
    Refusal { status, field: Some(field), message: e.to_string() }
}

/// Decides one request on `snapshot`, recording the metrics and the decision log line.
/// Blocking.
fn decide_on(snapshot: &Snapshot, svc: &Service, req: &DecideRequest) -> Result<Value, Refusal> {
    let metrics = &svc.metrics;
    let start = Instant::now();
    let result = match &svc.log {
        None => snapshot.decide(&req.scene, &req.instance, &req.input, req.explain).map(|doc| (doc, None)),
        Some(_) => {
            snapshot.decide_logged(&req.scene, &req.instance, &req.input, req.explain).map(|(d, t)| (d, Some(t)))
        }
    };
    let elapsed = start.elapsed();
    metrics.latency.observe(elapsed.as_secs_f64());
    let (doc, tags) = result.map_err(|e| engine_refusal(e, &req.prefix))?;
    if let (Some(log), Some(tags)) = (&svc.log, tags) {
        log.record(log_line(&doc, tags, elapsed));
    }
    let strategy = doc.get("strategy").and_then(Value::as_str).unwrap_or("none").to_string();
    let labels = DecisionLabels { scene: req.scene.clone(), instance: req.instance.clone(), strategy };
    metrics.decisions.get_or_create(&labels).inc();
    Ok(doc)
}

/// The decision log's line for one decision (docs/service.md, "Decision log").
fn log_line(doc: &Value, tags: Value, elapsed: std::time::Duration) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let field = |name: &str| doc.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "time": crate::time::format(now),
        "scene": field("scene"),
        "instance": field("instance"),
        "release": field("release"),
        "version": field("version"),
        "strategy": field("strategy"),
        "experiment": field("experiment"),
        "group": field("group"),
        "bucket": field("bucket"),
        "decision": field("decision"),
        "tags": tags,
        "latency_us": elapsed.as_micros() as u64,
    })
    .to_string()
}

/// Runs `work` on the blocking pool; a panic there is the service's fault (500), never
/// the caller's.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
    tokio::task::spawn_blocking(work).await.map_err(internal_error)
}

/// The 500 for a decision that panicked on the blocking pool (logged).
fn internal_error(e: tokio::task::JoinError) -> Response {
    tracing::error!("a decision failed inside the service: {e}");
    json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": "internal error", "field": null}))
}

async fn decide(State(svc): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    let parsed = async {
        let bytes = read_body(&headers, body, svc.body_timeout).await?;
        let req = decide_request(&parse_body(&bytes)?, "")?;
        let snapshot = svc.deck.snapshot().ok_or_else(not_ready)?;
        Ok::<_, Refusal>((req, snapshot))
    }
    .await;
    let (req, snapshot) = match parsed {
        Ok(p) => p,
        Err(r) => return refused(&svc.metrics, r),
    };
    // With only in-memory providers a decision takes microseconds and never waits: it runs
    // right here, saving the hand-off to the blocking pool and back (two thread switches).
    let result = if svc.inline {
        Ok(decide_on(&snapshot, &svc, &req))
    } else {
        let worker = svc.clone();
        blocking(move || decide_on(&snapshot, &worker, &req)).await
    };
    match result {
        Ok(Ok(doc)) => json_response(StatusCode::OK, &doc),
        Ok(Err(r)) => refused(&svc.metrics, r),
        Err(response) => response,
    }
}

async fn batch(State(svc): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    let parsed = async {
        let bytes = read_body(&headers, body, svc.body_timeout).await?;
        let doc = parse_body(&bytes)?;
        let Value::Object(mut map) = doc else {
            return Err(Refusal::bad(
                "body",
                format!("a batch is a JSON object {{\"requests\": [...]}}, not {}", kind(&doc)),
            ));
        };
        if let Some(key) = map.keys().find(|k| *k != "requests") {
            return Err(Refusal::bad(key.clone(), format!("unknown field `{key}`; a batch has only `requests`")));
        }
        let requests = match map.remove("requests") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(Refusal::bad("requests", format!("`requests` must be an array, not {}", kind(&other))))
            }
            None => return Err(Refusal::bad("requests", "missing field `requests` (an array of decision requests)")),
        };
        if requests.len() > MAX_BATCH_REQUESTS {
            return Err(Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                field: Some("requests".into()),
                message: format!(
                    "the batch has {} requests; a batch may have at most {MAX_BATCH_REQUESTS}: split it",
                    requests.len()
                ),
            });
        }
        let snapshot = svc.deck.snapshot().ok_or_else(not_ready)?;
        Ok((requests, snapshot))
    }
    .await;
    let (requests, snapshot) = match parsed {
        Ok(p) => p,
        Err(r) => return refused(&svc.metrics, r),
    };
    // The whole batch decides on one release. With only in-memory providers, on one
    // blocking thread; with remote ones, split into up to BATCH_PARALLELISM consecutive
    // runs on threads of their own, so their providers' round trips overlap. The results
    // keep the requests' order either way.
    let parts = if svc.inline { 1 } else { BATCH_PARALLELISM.min(requests.len()).max(1) };
    let per_part = requests.len().div_ceil(parts).max(1);
    let requests = Arc::new(requests);
    let mut handles = Vec::with_capacity(parts);
    for start in (0..requests.len()).step_by(per_part) {
        let (snapshot, worker, requests) = (snapshot.clone(), svc.clone(), requests.clone());
        let end = (start + per_part).min(requests.len());
        // Spawned now (a `blocking` future would start only when awaited, one after another).
        handles.push(tokio::task::spawn_blocking(move || {
            (start..end).map(|i| batch_entry(&snapshot, &worker, i, &requests[i])).collect::<Vec<Value>>()
        }));
    }
    let mut results: Result<Vec<Value>, Response> = Ok(Vec::with_capacity(requests.len()));
    for handle in handles {
        match (handle.await, &mut results) {
            (Ok(part), Ok(all)) => all.extend(part),
            (Err(e), Ok(_)) => results = Err(internal_error(e)),
            (_, Err(_)) => {}
        }
    }
    match results {
        Ok(results) => json_response(StatusCode::OK, &json!({ "results": results })),
        Err(response) => response,
    }
}

/// `POST /v1/events`: `{"events": [EVENT, …]}` ingested in order into the outreach state
/// and committed once (durable before the answer); the answer is the request's tracking
/// records and counts. A bad event is an `invalid` record, not a refusal.
async fn events(State(svc): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    let Some(runtime) = svc.events.clone() else {
        return refused(
            &svc.metrics,
            Refusal {
                status: StatusCode::NOT_FOUND,
                field: None,
                message: "events are off: start `ruledeck serve` with `--outreach-state DIR` to ingest them".into(),
            },
        );
    };
    let parsed = async {
        let bytes = read_body(&headers, body, svc.body_timeout).await?;
        let doc = parse_body(&bytes)?;
        let Value::Object(map) = &doc else {
            return Err(Refusal::bad(
                "body",
                format!("an events request is a JSON object {{\"events\": [...]}}, not {}", kind(&doc)),
            ));
        };
        if let Some(key) = map.keys().find(|k| *k != "events") {
            return Err(Refusal::bad(
                key.clone(),
                format!("unknown field `{key}`; an events request has only `events`"),
            ));
        }
        let items = match map.get("events") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(Refusal::bad("events", format!("`events` must be an array of events, not {}", kind(other))))
            }
            None => {
                return Err(Refusal::bad(
                    "events",
                    "missing field `events` (an array of event objects, each as a replay line)",
                ))
            }
        };
        if items.len() > MAX_EVENTS_PER_REQUEST {
            return Err(Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                field: Some("events".into()),
                message: format!(
                    "the request has {} events; a request may have at most {MAX_EVENTS_PER_REQUEST}: split it",
                    items.len()
                ),
            });
        }
        // Each event as the caller wrote it: one without an `id` is identified by the hash of
        // its text, as the same line is in a replay.
        #[derive(serde::Deserialize)]
        struct Raw {
            events: Vec<Box<serde_json::value::RawValue>>,
        }
        let raw: Raw = serde_json::from_slice(&bytes).map_err(|e| Refusal::bad("events", e.to_string()))?;
        let posted: Vec<Posted> = raw
            .events
            .into_iter()
            .zip(items)
            .map(|(text, item)| Posted { text, kind: item.get("event").and_then(Value::as_str).map(str::to_string) })
            .collect();
        // Refused at once when not ready; the release itself is taken when this request's
        // turn to ingest comes.
        if !svc.deck.ready() {
            return Err(not_ready());
        }
        Ok(posted)
    }
    .await;
    let posted = match parsed {
        Ok(p) => p,
        Err(r) => return refused(&svc.metrics, r),
    };
    let deck = svc.clone();
    match runtime.ingest(move || deck.deck.snapshot(), posted, svc.metrics.clone()).await {
        Ok(Ok(done)) => json_response(StatusCode::OK, &done),
        Ok(Err(EventsError::NoEvents(message))) => {
            refused(&svc.metrics, Refusal { status: StatusCode::NOT_FOUND, field: None, message })
        }
        Ok(Err(EventsError::State(message))) => refused(
            &svc.metrics,
            Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                field: None,
                message: format!("the outreach state failed, nothing of this request was kept; retry: {message}"),
            },
        ),
        Err(e) => internal_error(e),
    }
}

/// Most threads one batch decides on at once when its providers wait on I/O.
const BATCH_PARALLELISM: usize = 16;

/// One entry of a batch: its result, or its refusal in its place.
fn batch_entry(snapshot: &Snapshot, svc: &Service, i: usize, doc: &Value) -> Value {
    match decide_request(doc, &format!("requests[{i}]")).and_then(|req| decide_on(snapshot, svc, &req)) {
        Ok(doc) => doc,
        Err(r) => {
            svc.metrics.refuse(r.reason());
            let mut doc = r.doc();
            doc["status"] = json!(r.status.as_u16());
            doc
        }
    }
}

async fn release(State(svc): State<Arc<Service>>) -> Response {
    json_response(StatusCode::OK, &svc.deck.describe())
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(svc): State<Arc<Service>>) -> Response {
    if svc.deck.ready() {
        json_response(StatusCode::OK, &json!({"ready": true}))
    } else {
        let mut doc = Map::new();
        doc.insert("ready".into(), json!(false));
        doc.insert("error".into(), svc.deck.describe()["error"].clone());
        json_response(StatusCode::SERVICE_UNAVAILABLE, &Value::Object(doc))
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    let body = svc.metrics.encode();
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body)
        .into_response()
}

async fn unknown_route() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "no such endpoint; see /v1/decide, /v1/decide/batch, /v1/events, /v1/release, /healthz, /readyz, /metrics", "field": null}),
    )
}

async fn wrong_method() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "wrong method: decisions are POST, everything else GET", "field": null}),
    )
}
