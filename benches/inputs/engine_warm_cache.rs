//! The provider behind `engine_warm_cache.rule`, shared by `benches/vm.rs` and
//! `examples/decide_loop.rs` (included by path) so both time the same decision.

use ruledeck::engine::{Loaded, Provider, TagQuery};

/// Answers every tag of `engine_warm_cache.rule` with a fixed value.
pub struct Fixed;

impl Provider for Fixed {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        queries
            .iter()
            .map(|q| match q.field {
                "risk" => Loaded::Value(serde_json::json!(12)),
                "lifecycle" => Loaded::Value(serde_json::json!("active")),
                _ => Loaded::Value(serde_json::json!("lyon")),
            })
            .collect()
    }
}
