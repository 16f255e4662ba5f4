//! Hot-swapping releases in a host: every decision runs wholly on one release.
//!
//! Owns: the holder of the live release (an `ArcSwap`): readers take a snapshot `Arc` with
//! no lock and decide on it to the end, while a publisher swaps in a newer release; the
//! old one is freed when its last decision finishes. Must not: write to the store.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde_json::Value;

use super::manifest::Manifest;
use super::store::{Loaded, Store, StoreError};
use crate::compile::program::Program;
use crate::engine::{Engine, EngineError};

/// A release ready to decide: its manifest and an engine over its program.
pub struct LiveRelease {
    /// The release's manifest (number, versions, …).
    pub manifest: Manifest,
    /// The engine deciding with the release's program.
    pub engine: Engine,
}

impl LiveRelease {
    /// The release number.
    pub fn number(&self) -> u64 {
        self.manifest.release
    }

    /// The version of `scene.instance` in this release.
    pub fn version(&self, scene: &str, instance: &str) -> Option<u64> {
        self.manifest.instances.get(&format!("{scene}.{instance}")).map(|i| i.version)
    }

    /// One decision as the JSON result, with `"release"` and `"version"` added.
    pub fn decide_json(&self, scene: &str, instance: &str, input: &Value, explain: bool) -> Result<Value, EngineError> {
        let mut doc = self.engine.decide_json(scene, instance, input, explain)?;
        self.stamp(&mut doc, scene, instance);
        Ok(doc)
    }

    /// Adds `"release"` and `"version"` to a result document.
    pub fn stamp(&self, doc: &mut Value, scene: &str, instance: &str) {
        if let Value::Object(map) = doc {
            map.insert("release".into(), self.number().into());
            map.insert("version".into(), self.version(scene, instance).map_or(Value::Null, Value::from));
        }
    }
}

/// Builds the engine for a release's program (registers the host's providers).
pub type EngineFactory = dyn Fn(Arc<Program>) -> Engine + Send + Sync;

/// The live release of a host, swapped atomically.
pub struct Live {
    current: ArcSwap<LiveRelease>,
    factory: Box<EngineFactory>,
}

impl Live {
    /// Starts with `loaded`; `factory` builds each release's engine.
    pub fn new(loaded: Loaded, factory: impl Fn(Arc<Program>) -> Engine + Send + Sync + 'static) -> Live {
        let factory: Box<EngineFactory> = Box::new(factory);
        let first = LiveRelease { engine: factory(loaded.program), manifest: loaded.manifest };
        Live { current: ArcSwap::from_pointee(first), factory }
    }

    /// Opens the store's current release (verified) and serves it.
    pub fn open(
        store: &Store,
        factory: impl Fn(Arc<Program>) -> Engine + Send + Sync + 'static,
    ) -> Result<Live, StoreError> {
        Ok(Live::new(store.load(None)?, factory))
    }

    /// The release decisions should run on now. Hold the `Arc` for a whole decision.
    pub fn current(&self) -> Arc<LiveRelease> {
        self.current.load_full()
    }

    /// Serves `loaded` from now on; decisions already running finish on their release.
    pub fn swap(&self, loaded: Loaded) {
        let next = LiveRelease { engine: (self.factory)(loaded.program), manifest: loaded.manifest };
        self.current.store(Arc::new(next));
    }

    /// Swaps to the store's current release if it is not the one served. Returns whether
    /// it swapped. A release that fails to load (say, a corrupt bundle) is not served: the
    /// error is returned and the running release stays.
    pub fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        let Some(n) = store.current_number()? else { return Ok(false) };
        // Numbers only grow: never swap back to an older release than the one served.
        if n <= self.current.load().number() {
            return Ok(false);
        }
        self.swap(store.load(Some(n))?);
        Ok(true)
    }

    /// One decision on the current release; the result names the release and version.
    pub fn decide_json(&self, scene: &str, instance: &str, input: &Value, explain: bool) -> Result<Value, EngineError> {
        self.current().decide_json(scene, instance, input, explain)
    }
}
