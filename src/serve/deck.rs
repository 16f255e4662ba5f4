//! What the service decides with: a fixed program (files) or the store's live release.
//!
//! Owns: loading releases from the store as it moves (the watcher calls [`Deck::refresh`]),
//! refusing one that fails to load while the previous keeps serving, and remembering why
//! (shown by `/v1/release`). Must not: write to the store, or mix releases inside one
//! decision — a [`Snapshot`] is taken once per request (or batch) and decides to the end.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use super::metrics::Metrics;
use super::providers::Providers;
use crate::compile::program::Program;
use crate::engine::{Engine, EngineError, Loaded, Provider, TagQuery, TagsFile};
use crate::release::{Live, LiveRelease, Store};

/// Polls between retries of a current release that failed to load (a damaged bundle stays
/// damaged until someone publishes again, and each try hashes the whole bundle).
const RETRY_POLLS: u32 = 25;

/// The `--tags` provider, shared by every release's engine.
#[derive(Clone)]
pub struct SharedTags(pub Arc<TagsFile>);

impl Provider for SharedTags {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        self.0.load(queries)
    }
}

/// Where every release's engine gets its tags: the `--providers` configuration (by name),
/// the `--tags` file (every other name), and the metrics the engine reports to.
#[derive(Clone)]
pub struct TagSources {
    /// `--tags`: serves every provider name the configuration does not.
    pub tags: Option<SharedTags>,
    /// `--providers`.
    pub providers: Option<Arc<Providers>>,
    /// Cache lookups and provider calls are counted here.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for TagSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut providers: Vec<&String> = self.providers.iter().flat_map(|p| p.named.keys()).collect();
        providers.sort();
        f.debug_struct("TagSources")
            .field("tags", &self.tags.is_some())
            .field("providers", &providers)
            .finish_non_exhaustive()
    }
}

impl TagSources {
    /// An engine over `program` with these sources. Without `--tags` or `--providers`,
    /// every tag is missing (an empty file serves them all).
    pub fn engine(&self, program: impl Into<Arc<Program>>) -> Engine {
        let mut engine = Engine::new(program).with_observer(self.metrics.clone());
        if let Some(providers) = &self.providers {
            for (name, provider) in &providers.named {
                engine = engine.with_provider(name, provider.clone());
            }
        }
        match (&self.tags, &self.providers) {
            (Some(tags), _) => engine.with_fallback(tags.clone()),
            (None, Some(_)) => engine,
            (None, None) => engine.with_fallback(SharedTags(Arc::new(
                TagsFile::from_json(serde_json::json!({})).expect("an empty tags file is valid"),
            ))),
        }
    }

    /// Whether any provider of `--providers` waits on I/O.
    pub fn has_remote(&self) -> bool {
        self.providers.as_ref().is_some_and(|p| p.named.values().any(|p| p.is_remote()))
    }

    /// Refuses a program that loads tags from a provider nobody serves (only possible with
    /// `--providers` and no `--tags`), naming each such tag.
    pub fn check(&self, program: &Program) -> Result<(), String> {
        match (&self.tags, &self.providers) {
            (None, Some(providers)) => {
                let missing = providers.missing_for(program);
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(missing.join("; "))
                }
            }
            _ => Ok(()),
        }
    }
}

/// The decks a service can serve.
pub enum Deck {
    /// Compiled from files at start; never changes.
    Files(Arc<Engine>),
    /// The store's current release, swapped as the store moves.
    Store(StoreDeck),
}

/// Serving a store: the live release (once one has loaded) and the last load error.
pub struct StoreDeck {
    store: Store,
    sources: TagSources,
    live: OnceLock<Live>,
    status: Mutex<LoadStatus>,
    /// Held for a whole refresh.
    refreshing: Mutex<()>,
}

impl StoreDeck {
    fn status(&self) -> std::sync::MutexGuard<'_, LoadStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a release that could not be served; counts and reports it once.
    fn fail(&self, metrics: &Metrics, release: Option<u64>, message: String) {
        let mut status = self.status();
        let same = status.error.as_ref().is_some_and(|e| e.release == release && e.message == message);
        if !same {
            metrics.load_failures.inc();
            tracing::error!("not serving the store's current release: {message}");
        }
        status.error = Some(LoadError { release, message });
        status.since_try = 0;
    }
}

#[derive(Default)]
struct LoadStatus {
    /// Why the store's current release is not the one served (`None`: it is).
    error: Option<LoadError>,
    /// Polls since the failed release was last tried.
    since_try: u32,
}

struct LoadError {
    /// The release that failed, when the store's `CURRENT` could be read.
    release: Option<u64>,
    message: String,
}

/// What one request (or one whole batch) decides with.
#[derive(Clone)]
pub enum Snapshot {
    /// A program compiled from files.
    Files(Arc<Engine>),
    /// One release, held until the decision ends.
    Release(Arc<LiveRelease>),
}

impl Snapshot {
    /// The program it decides with.
    pub fn program(&self) -> &Arc<Program> {
        match self {
            Snapshot::Files(engine) => engine.program(),
            Snapshot::Release(release) => release.engine.program(),
        }
    }

    /// The release and its instances' versions (by `scene.instance`); `None` for files.
    pub fn release_versions(&self) -> Option<(u64, Vec<(String, u64)>)> {
        match self {
            Snapshot::Files(_) => None,
            Snapshot::Release(r) => Some((
                r.number(),
                r.manifest.instances.iter().map(|(name, entry)| (name.clone(), entry.version)).collect(),
            )),
        }
    }

    /// One decision as the CLI's result object; from a store, with `release` and `version`.
    pub fn decide(&self, scene: &str, instance: &str, input: &Value, explain: bool) -> Result<Value, EngineError> {
        match self {
            Snapshot::Files(engine) => engine.decide_json(scene, instance, input, explain),
            Snapshot::Release(release) => release.decide_json(scene, instance, input, explain),
        }
    }

    /// Like [`Snapshot::decide`], also returning the tags read (sensitive ones masked), for
    /// the decision log.
    pub fn decide_logged(
        &self,
        scene: &str,
        instance: &str,
        input: &Value,
        explain: bool,
    ) -> Result<(Value, Value), EngineError> {
        match self {
            Snapshot::Files(engine) => engine.decide_json_logged(scene, instance, input, explain),
            Snapshot::Release(release) => {
                let (mut doc, tags) = release.engine.decide_json_logged(scene, instance, input, explain)?;
                release.stamp(&mut doc, scene, instance);
                Ok((doc, tags))
            }
        }
    }
}

impl Deck {
    /// Serves `program` (compiled from files) with `sources`; refused when a tag's provider
    /// is served by none of them.
    pub fn files(program: Program, sources: &TagSources) -> Result<Deck, String> {
        sources.check(&program)?;
        Ok(Deck::Files(Arc::new(sources.engine(program))))
    }

    /// Serves `store`'s current release; call [`Deck::refresh`] to load it (and later ones).
    /// A release with a tag whose provider `sources` do not serve is refused like one that
    /// fails to load.
    pub fn store(store: Store, sources: TagSources) -> Deck {
        Deck::Store(StoreDeck {
            store,
            sources,
            live: OnceLock::new(),
            status: Mutex::default(),
            refreshing: Mutex::new(()),
        })
    }

    /// What to decide with now, or `None` while no release has loaded.
    pub fn snapshot(&self) -> Option<Snapshot> {
        match self {
            Deck::Files(engine) => Some(Snapshot::Files(engine.clone())),
            Deck::Store(s) => s.live.get().map(|live| Snapshot::Release(live.current())),
        }
    }

    /// Loads the store's current release if it is newer than the one served. Blocking (reads
    /// and hashes files): run it off the async workers. A release that fails is refused,
    /// counted once, and the served one stays.
    pub fn refresh(&self, metrics: &Metrics) {
        let Deck::Store(s) = self else { return };
        // One refresh at a time, so swaps stay in order. The status lock is held only to
        // read or record, never during a load, so `/v1/release` never waits on one.
        let _turn = s.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let served = s.live.get().map(|live| live.current().number());
        let n = match s.store.current_number() {
            Ok(Some(n)) => n,
            Ok(None) => return,
            Err(e) => return s.fail(metrics, None, e.to_string()),
        };
        // Numbers only grow: an older or equal CURRENT is never swapped to.
        if served.is_some_and(|served| n <= served) {
            return;
        }
        {
            let mut status = s.status();
            if status.error.as_ref().is_some_and(|e| e.release == Some(n)) && status.since_try < RETRY_POLLS {
                status.since_try += 1;
                return;
            }
        }
        let loaded = s.store.load(Some(n)).map_err(|e| e.to_string()).and_then(|loaded| {
            s.sources.check(&loaded.program).map(|()| loaded).map_err(|e| format!("release {n}: {e}"))
        });
        match loaded {
            Ok(loaded) => {
                match s.live.get() {
                    Some(live) => live.swap(loaded),
                    None => {
                        if let Some(tags) = &s.sources.tags {
                            for w in tags.0.unknown_names(&loaded.program) {
                                tracing::warn!("--tags: {w}");
                            }
                        }
                        let sources = s.sources.clone();
                        let live = Live::new(loaded, move |program| sources.engine(program));
                        // Set only here, under `refreshing`, so it cannot be set already.
                        let _ = s.live.set(live);
                    }
                }
                s.status().error = None;
                metrics.release.set(n as i64);
                tracing::info!("serving release {n}");
            }
            Err(e) => s.fail(metrics, Some(n), e),
        }
    }

    /// Whether any configured provider waits on I/O (then decisions go to the blocking pool).
    pub fn has_remote_providers(&self) -> bool {
        match self {
            Deck::Files(engine) => engine.has_remote_providers(),
            Deck::Store(s) => s.sources.has_remote(),
        }
    }

    /// Whether a deck is loaded (`/readyz`).
    pub fn ready(&self) -> bool {
        self.snapshot().is_some()
    }

    /// The `/v1/release` document.
    pub fn describe(&self) -> Value {
        match self {
            Deck::Files(_) => json!({"source": "files", "release": null, "error": null}),
            Deck::Store(s) => {
                let mut doc = match s.live.get().map(|live| live.current()) {
                    Some(r) => {
                        let m = &r.manifest;
                        let instances: serde_json::Map<String, Value> =
                            m.instances.iter().map(|(name, entry)| (name.clone(), json!(entry.version))).collect();
                        json!({
                            "source": "store",
                            "release": m.release,
                            "kind": m.kind,
                            "time": m.time,
                            "note": m.note,
                            "hash": m.hash,
                            "instances": instances,
                        })
                    }
                    None => json!({"source": "store", "release": null}),
                };
                doc["error"] = match &s.status().error {
                    Some(e) => json!({"release": e.release, "message": e.message}),
                    None => Value::Null,
                };
                doc
            }
        }
    }
}
