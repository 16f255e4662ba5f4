//! The service's Prometheus metrics: what `/metrics` reports.
//!
//! Owns: the registry and every metric of the service (decisions, refusals, latency, the
//! current release, release load failures). Must not: decide anything or touch the store;
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
        Metrics { registry, decisions, refusals, latency, release, load_failures }
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

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
