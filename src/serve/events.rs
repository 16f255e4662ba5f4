//! `POST /v1/events`: behavior events in, reach actions out, through the service's one
//! outreach state.
//!
//! Owns: the service's [`Outreach`] runtime (its redb state in `--outreach-state DIR`, or
//! Redis with `--outreach-state redis://…`),
//! switching it to each release the deck serves with its state kept, ingesting one
//! request's events in order and committing them once (durable before the answer), the
//! request's summary, and the outreach metrics. Must not: ingest on an async worker (a
//! commit fsyncs), or let two requests ingest at once (redb has one writer, and a request's
//! events are one batch): requests queue on an async mutex, and the holder runs on the
//! blocking pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::deck::{Snapshot, TagSources};
use super::metrics::{EventLabels, FilteredLabels, Metrics, ReachLabels};
use crate::outreach::{Engines, Outreach, Record};
use crate::Program;

/// The key prefix of a Redis `--outreach-state` (the same as `ruledeck replay`'s default, so
/// a replay and the service can share one state).
const REDIS_PREFIX: &str = "ruledeck:outreach";

/// The service's outreach runtime: opened at start (or on the first request, when no
/// release had loaded by then) and reopened from its last commit after any failure.
pub struct Events {
    dir: PathBuf,
    /// Where event scenes' loaded tags and channel zones come from: the service's sources.
    engines: Engines,
    runtime: Arc<tokio::sync::Mutex<Option<Runtime>>>,
}

struct Runtime {
    outreach: Outreach,
    /// The program it runs, compared by pointer with each request's snapshot.
    program: Arc<Program>,
}

/// What one request's events did, durable: the body of the answer.
#[derive(serde::Serialize)]
pub struct Ingested {
    /// The release they ran on (`None`: rule files).
    pub release: Option<u64>,
    /// Their tracking records, in order.
    pub records: Vec<Record>,
    /// Their counts, shaped as `ruledeck replay`'s summary.
    pub summary: Value,
}

/// Why a request's events were not ingested (then none of them was).
pub enum EventsError {
    /// The deck declares no events (404).
    NoEvents(String),
    /// The state could not be opened, read or committed (503): nothing of the request was
    /// kept, and the next request starts again from the last commit.
    State(String),
}

/// One posted event: its text as the caller wrote it (an event without an `id` is
/// identified by its hash, as a replay line is) and its `event` kind when it has one.
pub struct Posted {
    /// The event object's JSON text.
    pub text: Box<RawValue>,
    /// Its `event` field, when text (a metric label only if the deck declares the kind).
    pub kind: Option<String>,
}

impl Events {
    /// The runtime over the state in `dir` (`dir/outreach.redb`); loaded tags and channel
    /// zones come from `sources`, as the service's decisions' tags do (`--providers` and
    /// `--tags`), and are counted in the same metrics.
    pub fn new(dir: PathBuf, sources: TagSources) -> Events {
        let engines: Engines = Arc::new(move |program| sources.engine(program));
        Events { dir, engines, runtime: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    /// Opens the state for `snapshot`'s program now, so that a state that cannot be opened
    /// (a directory that cannot be created, a state another process holds) stops the
    /// service at start. Blocking.
    pub fn open_now(&self, snapshot: &Snapshot) -> Result<(), String> {
        let mut slot = self.runtime.blocking_lock();
        if slot.is_none() {
            *slot = Some(self.open(snapshot).map_err(|e| format!("--outreach-state: {e}"))?);
        }
        Ok(())
    }

    fn open(&self, snapshot: &Snapshot) -> Result<Runtime, String> {
        let program = snapshot.program().clone();
        // `--outreach-state redis://…`: state shared with other replicas (events partitioned
        // by unit across them); checked commits keep budgets and caps exact between them.
        let redis_url = crate::outreach::state::redis_url(&self.dir)?;
        let store: Box<dyn crate::outreach::state::Store> = match redis_url {
            Some(url) => Box::new(crate::outreach::state::RedisStore::open(url, REDIS_PREFIX)?),
            None => Box::new(crate::outreach::state::RedbStore::open(Some(&self.dir))?),
        };
        let mut outreach =
            Outreach::with_engines(program.clone(), self.engines.clone(), store).map_err(|e| e.to_string())?;
        if let Some((release, versions)) = snapshot.release_versions() {
            outreach = outreach.with_release(release, versions);
        }
        Ok(Runtime { outreach, program })
    }

    /// Ingests `events` in order and commits them once, after the requests before it, on
    /// the release `snapshot` gives once this request's turn has come (so requests run on
    /// releases in the order they ingest, never going back). `Err` only when the blocking
    /// task panicked (a fault).
    pub async fn ingest(
        self: &Arc<Self>,
        snapshot: impl FnOnce() -> Option<Snapshot> + Send + 'static,
        events: Vec<Posted>,
        metrics: Arc<Metrics>,
    ) -> Result<Result<Ingested, EventsError>, tokio::task::JoinError> {
        let mut slot = self.runtime.clone().lock_owned().await;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let snapshot = snapshot().ok_or_else(|| EventsError::State("no release is loaded yet".into()))?;
            this.ingest_blocking(&mut slot, &snapshot, &events, &metrics)
        })
        .await
    }

    fn ingest_blocking(
        &self,
        slot: &mut Option<Runtime>,
        snapshot: &Snapshot,
        events: &[Posted],
        metrics: &Metrics,
    ) -> Result<Ingested, EventsError> {
        let program = snapshot.program().clone();
        let release = snapshot.release_versions();
        if program.outreach.events.is_empty() {
            let what = match &release {
                Some((n, _)) => format!("release {n}"),
                None => "the deck".to_string(),
            };
            return Err(EventsError::NoEvents(format!(
                "{what} declares no events (`event … by KEY {{…}}`), so there is nothing to ingest"
            )));
        }
        // Taken out while it works: if anything fails (or panics) before the commit, the
        // runtime is dropped with its half-done batch, and the next request reopens the state
        // as of its last commit.
        let mut rt = match slot.take() {
            Some(rt) => rt,
            None => self.open(snapshot).map_err(EventsError::State)?,
        };
        if !Arc::ptr_eq(&rt.program, &program) {
            let (number, versions) = release.clone().map_or((None, Vec::new()), |(n, v)| (Some(n), v));
            rt.outreach
                .set_program(program.clone(), number, versions)
                .map_err(|e| EventsError::State(e.to_string()))?;
            rt.program = program.clone();
        }
        rt.outreach.batch_size = usize::MAX;
        let state_err = |e: crate::outreach::OutreachError| EventsError::State(e.to_string());
        let start = Instant::now();
        let before = serde_json::to_value(rt.outreach.summary()).expect("a summary serializes");
        let mut records = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let s = rt.outreach.summary();
            let counts = (s.invalid, s.duplicates, s.late);
            records.extend(rt.outreach.ingest_line(event.text.get()).map_err(state_err)?);
            let s = rt.outreach.summary();
            outcomes.push(if s.invalid > counts.0 {
                "invalid"
            } else if s.duplicates > counts.1 {
                "duplicate"
            } else if s.late > counts.2 {
                "late"
            } else {
                "processed"
            });
        }
        records.extend(rt.outreach.commit().map_err(state_err)?);
        metrics.ingest_latency.observe(start.elapsed().as_secs_f64());
        let after = serde_json::to_value(rt.outreach.summary()).expect("a summary serializes");
        *slot = Some(rt);
        // Counted once durable. Labels come from the deck (kinds it declares, its channels)
        // or fixed sets, never from the caller's text.
        for (event, outcome) in events.iter().zip(outcomes) {
            let kind = match &event.kind {
                Some(k) if program.outreach.events.iter().any(|e| &e.name == k) => k.clone(),
                _ => "unknown".to_string(),
            };
            metrics.events.get_or_create(&EventLabels { kind, outcome: outcome.to_string() }).inc();
        }
        /// What the metrics count of a record.
        #[derive(serde::Deserialize)]
        struct Counted {
            outcome: String,
            channel: Option<String>,
            reason: Option<String>,
        }
        for r in &records {
            let Ok(Counted { outcome, channel, reason }) = serde_json::from_str(r.get()) else { continue };
            match outcome.as_str() {
                "sent" | "held" | "suppressed" | "dropped" => {
                    let channel = channel.unwrap_or_default();
                    metrics.reaches.get_or_create(&ReachLabels { channel, outcome: outcome.clone() }).inc();
                    // `cap`, `dedup`, `budget` or `quiet`: the runtime's own words.
                    if let Some(reason) = reason {
                        metrics.filtered.get_or_create(&FilteredLabels { reason }).inc();
                    }
                }
                "control" => {
                    metrics.control.inc();
                }
                _ => {}
            }
        }
        Ok(Ingested { release: release.map(|(n, _)| n), records, summary: difference(&after, &before) })
    }
}

/// `after − before` of two summaries, field by field: top-level counts stay (zero
/// included), the entries of nested counts (`reaches`, `filtered`) only when not zero, as in
/// a replay's summary.
fn difference(after: &Value, before: &Value) -> Value {
    fn sub(after: &Value, before: Option<&Value>, nested: bool) -> Option<Value> {
        match after {
            Value::Number(n) => {
                let d = n.as_u64().unwrap_or(0).saturating_sub(before.and_then(Value::as_u64).unwrap_or(0));
                (d > 0 || !nested).then(|| Value::from(d))
            }
            Value::Object(map) => {
                let out: Map<String, Value> = map
                    .iter()
                    .filter_map(|(k, v)| sub(v, before.and_then(|b| b.get(k)), true).map(|d| (k.clone(), d)))
                    .collect();
                Some(Value::Object(out))
            }
            other => Some(other.clone()),
        }
    }
    match after {
        Value::Object(map) => Value::Object(
            map.iter().filter_map(|(k, v)| sub(v, before.get(k), false).map(|d| (k.clone(), d))).collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_summary_difference_keeps_top_level_zeros_and_drops_nested_ones() {
        let before = json!({"events": 3, "late": 1, "reaches": {"push": 2}, "filtered": {"cap": 1}});
        let after = json!({"events": 5, "late": 1, "reaches": {"push": 2, "sms": 1}, "filtered": {"cap": 3}});
        assert_eq!(
            super::difference(&after, &before),
            json!({"events": 2, "late": 0, "reaches": {"sms": 1}, "filtered": {"cap": 2}})
        );
    }
}
