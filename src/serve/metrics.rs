//! The service's Prometheus metrics: what `/metrics` reports.
//!
//! Owns: the registry and every metric of the service (decisions, refusals, latency, the
//! current release, release load failures, provider calls/failures/latency, tag cache hits
//! and misses, decision log lines written and dropped, unauthorized requests, and the
//! outreach counts of `/v1/events`: events by kind and outcome, reaches, filters, ingest
//! latency). Must not: decide anything or touch the store;
//! the handlers and the store watcher record into it.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of a decision: all three come from the deck (never from the caller's text), so
/// the number of series is bounded by the deck's size.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The scene, `payment`.
    pub scene: String,
    /// The instance, `installments`.
    pub instance: String,
    /// The strategy that decided, `default` for the default, `none` when nothing decided.
    pub strategy: String,
}

/// Labels of a refused request: only the reason (caller-chosen names are not labels, so
/// bad traffic cannot grow the series without bound).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `bad_request`, `not_found`, `too_large` or `not_ready`.
    pub reason: String,
}

/// Labels of a provider's metrics: the provider's name from the configuration (bounded
/// by the configuration, never by callers).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// The name tags give in `from "…"`.
    pub provider: String,
}

/// Labels of the cache counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub result: String,
}

/// Labels of an ingested event: its kind (a kind the deck declares, or `unknown`) and what
/// became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The event's kind, `browse`; `unknown` when the deck does not declare it (or it has none).
    pub kind: String,
    /// `processed`, `duplicate`, `late` or `invalid`.
    pub outcome: String,
}

/// Labels of a reach: the deck's channel and the reach's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReachLabels {
    /// The channel, `push`.
    pub channel: String,
    /// `sent`, `held`, `suppressed` or `dropped`.
    pub outcome: String,
}

/// Labels of a filtered reach.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilteredLabels {
    /// `cap`, `dedup`, `budget` or `quiet`.
    pub reason: String,
}

/// Every metric the service keeps.
pub struct Metrics {
    registry: Registry,
    /// Decisions made, by scene, instance and strategy.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Requests (and batch entries) refused, by reason.
    pub refusals: Family<RefusalLabels, Counter>,
    /// Time to decide one request on the blocking pool, in seconds.
    pub latency: Histogram,
    /// The release being served (0 when none is, or when serving files).
    pub release: Gauge,
    /// Releases the store made current that failed to load or verify.
    pub load_failures: Counter,
    /// Provider calls (one per batch), by provider.
    pub provider_calls: Family<ProviderLabels, Counter>,
    /// Tag queries a provider failed or timed out on, by provider.
    pub provider_failures: Family<ProviderLabels, Counter>,
    /// Time of one provider call, by provider, in seconds.
    pub provider_latency: Family<ProviderLabels, Histogram>,
    /// Lookups of cached tags (those declared with `cache`), by `hit` or `miss`.
    pub cache: Family<CacheLabels, Counter>,
    /// Decision log lines written.
    pub log_written: Counter,
    /// Decision log lines dropped because the writer was behind (its queue was full).
    pub log_dropped_full: Counter,
    /// Decision log lines dropped because writing them failed (a full disk, a bad path).
    pub log_write_errors: Counter,
    /// Requests refused for a missing or wrong bearer token.
    pub unauthorized: Counter,
    /// Events posted to `/v1/events` and committed, by kind and outcome.
    pub events: Family<EventLabels, Counter>,
    /// Reaches decided for posted events, by channel and outcome.
    pub reaches: Family<ReachLabels, Counter>,
    /// Reaches refused by a filter, by reason.
    pub filtered: Family<FilteredLabels, Counter>,
    /// Control-group decisions (`none`) for posted events.
    pub control: Counter,
    /// Time to ingest and commit one `/v1/events` request's events, in seconds.
    pub ingest_latency: Histogram,
    cache_hit: Counter,
    cache_miss: Counter,
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ruledeck");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let refusals = Family::<RefusalLabels, Counter>::default();
        // 10 µs to about 0.33 s: a warm decision takes microseconds, a slow provider more.
        let latency = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        let release = Gauge::default();
        let load_failures = Counter::default();
        registry.register("decisions", "Decisions made, by scene, instance and strategy", decisions.clone());
        registry.register("refusals", "Requests and batch entries refused, by reason", refusals.clone());
        registry.register("decision_latency_seconds", "Time to decide one request", latency.clone());
        registry.register("release", "The release being served (0: none, or serving files)", release.clone());
        registry.register(
            "release_load_failures",
            "Current releases of the store that failed to load or verify and were not served",
            load_failures.clone(),
        );
        let provider_calls = Family::<ProviderLabels, Counter>::default();
        let provider_failures = Family::<ProviderLabels, Counter>::default();
        let provider_latency = Family::<ProviderLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_05, 2.0, 14))) as fn() -> Histogram,
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "provider_calls",
            "Provider calls (one per batch of tags), by provider",
            provider_calls.clone(),
        );
        registry.register(
            "provider_failures",
            "Tag queries a provider failed or timed out on (the tags are unknown), by provider",
            provider_failures.clone(),
        );
        registry.register(
            "provider_latency_seconds",
            "Time of one provider call, by provider",
            provider_latency.clone(),
        );
        registry.register("tag_cache", "Lookups of cached tags, by result (hit or miss)", cache.clone());
        let log_written = Counter::default();
        let log_dropped_full = Counter::default();
        let log_write_errors = Counter::default();
        let unauthorized = Counter::default();
        registry.register("decision_log_written", "Decision log lines written", log_written.clone());
        registry.register(
            "decision_log_dropped",
            "Decision log lines dropped because the writer's queue was full",
            log_dropped_full.clone(),
        );
        registry.register(
            "decision_log_write_errors",
            "Decision log lines dropped because writing failed (full disk, bad path)",
            log_write_errors.clone(),
        );
        registry.register("unauthorized", "Requests refused for a missing or wrong bearer token", unauthorized.clone());
        let events = Family::<EventLabels, Counter>::default();
        let reaches = Family::<ReachLabels, Counter>::default();
        let filtered = Family::<FilteredLabels, Counter>::default();
        let control = Counter::default();
        // 50 µs to about 1.6 s: a request of a few events and its fsync'd commit, up to a
        // full batch.
        let ingest_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register("outreach_events", "Events posted and committed, by kind and outcome", events.clone());
        registry.register("outreach_reaches", "Reaches of posted events, by channel and outcome", reaches.clone());
        registry.register(
            "outreach_filtered",
            "Reaches of posted events refused by a filter, by reason",
            filtered.clone(),
        );
        registry.register("outreach_control", "Control-group decisions of posted events", control.clone());
        registry.register(
            "outreach_ingest_latency_seconds",
            "Time to ingest and commit one request's events",
            ingest_latency.clone(),
        );
        // Looked up once, so a cache lookup costs one atomic add.
        let cache_hit = cache.get_or_create(&CacheLabels { result: "hit".into() }).clone();
        let cache_miss = cache.get_or_create(&CacheLabels { result: "miss".into() }).clone();
        Metrics {
            registry,
            decisions,
            refusals,
            latency,
            release,
            load_failures,
            provider_calls,
            provider_failures,
            provider_latency,
            cache,
            log_written,
            log_dropped_full,
            log_write_errors,
            unauthorized,
            events,
            reaches,
            filtered,
            control,
            ingest_latency,
            cache_hit,
            cache_miss,
        }
    }

    /// Counts one refusal.
    pub fn refuse(&self, reason: &str) {
        self.refusals.get_or_create(&RefusalLabels { reason: reason.to_string() }).inc();
    }

    /// The text exposition format (OpenMetrics, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl crate::engine::Observer for Metrics {
    fn cache_lookup(&self, hit: bool) {
        if hit { &self.cache_hit } else { &self.cache_miss }.inc();
    }

    fn provider_call(&self, name: &str, _queries: usize, failed: usize, elapsed: std::time::Duration) {
        let labels = ProviderLabels { provider: name.to_string() };
        self.provider_calls.get_or_create(&labels).inc();
        if failed > 0 {
            self.provider_failures.get_or_create(&labels).inc_by(failed as u64);
        }
        self.provider_latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
