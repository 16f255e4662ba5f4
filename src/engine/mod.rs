//! The host API for blocking providers: drives the VM's suspend/resume loop, batches tag
//! loads per provider, and keeps loaded values in a concurrent TTL cache.
//!
//! Owns: providers, caching (each tag's `cache` duration is its entry's time to live; tags
//! without `cache` are always loaded afresh), and the JSON formats of docs/runtime.md (requests,
//! results, traces, the `--tags` file). Must not: evaluate anything itself — the VM decides.

mod apply;
mod json;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use apply::{apply_input, apply_json, RequestJsonError};
pub(crate) use json::{data_time, note_text, tag_value_json};
pub use json::{
    field_json, input_from_json, outcome_json, parse_json, tags_read_json, OutcomeDoc, TagsFile, SENSITIVE,
};
#[cfg(feature = "outreach")]
pub(crate) use json::{tags_read, TagRead, TagsReadJson};

use crate::compile::program::Program;
use crate::limits::{CACHE_CAPACITY, NEAR_CACHE_SLOTS};
use crate::vm::request::SlotCopy;
use crate::vm::{Request, RequestError, Step};
use crossbeam_utils::CachePadded;
use thread_local::ThreadLocal;

/// One tag to load: which tag (full name and field), for which entity key value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagQuery<'a> {
    /// Full name, `user.risk_score`.
    pub tag: &'a str,
    /// The entity, `user`.
    pub entity: &'a str,
    /// The field, `risk_score`.
    pub field: &'a str,
    /// The entity key's value, `u-1001`.
    pub key: &'a str,
}

/// What a provider found for one query.
#[derive(Clone, Debug, PartialEq)]
pub enum Loaded {
    /// A value, coerced to the tag's type (RFC 3339 text for times, member names for enums).
    Value(serde_json::Value),
    /// The provider has no value: the tag is missing (unknown).
    Missing,
    /// The provider failed for this query: the tag is unknown, and nothing is cached.
    Failed(String),
}

/// A source of tag values. One call serves a whole batch, so a provider backed by a remote
/// service can make one round trip per suspension. Must return one result per query, in order.
pub trait Provider: Send + Sync {
    /// Loads one batch: one result per query, in the queries' order.
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded>;

    /// Loads one batch for a request whose `now` is `now` (seconds since the Unix epoch;
    /// `None` when the request gave none and the wall clock applies). Providers whose answer
    /// depends on the date (a user package with an expiry) override this; the engine calls
    /// it, and by default it is [`Provider::load`].
    fn load_at(&self, queries: &[TagQuery<'_>], now: Option<i64>) -> Vec<Loaded> {
        let _ = now;
        self.load(queries)
    }

    /// Whether a load waits on I/O (a network call). When one suspension needs several such
    /// providers, the engine calls them in parallel, each on its own thread, so the
    /// suspension costs the slowest of them rather than their sum. In-memory providers keep
    /// the default (`false`) and are called on the request's thread.
    fn is_remote(&self) -> bool {
        false
    }
}

impl<P: Provider + ?Sized> Provider for Arc<P> {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        (**self).load(queries)
    }
    fn load_at(&self, queries: &[TagQuery<'_>], now: Option<i64>) -> Vec<Loaded> {
        (**self).load_at(queries, now)
    }
    fn is_remote(&self) -> bool {
        (**self).is_remote()
    }
}

/// What an engine reports as it loads tags, for a host's metrics. Called on the deciding
/// thread (or a provider's thread); implementations must be cheap and must not block.
pub trait Observer: Send + Sync {
    /// A lookup of a cached tag (one whose declaration has `cache`): found or not.
    fn cache_lookup(&self, hit: bool);
    /// One call of provider `name` with `queries` queries took `elapsed`; `failed` of its
    /// results were [`Loaded::Failed`] (all of them when the provider timed out).
    fn provider_call(&self, name: &str, queries: usize, failed: usize, elapsed: Duration);
}

/// Why the engine could not decide.
#[derive(Debug)]
pub enum EngineError {
    /// The request itself was refused (a missing key, an unknown scene, …).
    Request(RequestError),
    /// No provider is registered under the name a tag's `from` gives.
    NoProvider {
        /// The provider name the tag's `from` gives.
        provider: String,
        /// The tag that needed it.
        tag: String,
    },
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Request(e) => e.fmt(f),
            EngineError::NoProvider { provider, tag } => {
                write!(f, "no provider `{provider}` is registered (needed for `{tag}`)")
            }
        }
    }
}

impl std::error::Error for EngineError {}

impl From<RequestError> for EngineError {
    fn from(e: RequestError) -> Self {
        EngineError::Request(e)
    }
}

/// A cached provider answer, as the request's slot held it once converted and coerced to
/// the tag's type (so a hit is a copy, not a conversion), and the instant it stops being
/// served (its tag's `cache` after it was loaded). An expired entry is a miss; it stays
/// until overwritten or evicted, which the cache's bound on entries makes happen.
#[derive(Clone)]
struct Cached {
    slot: Arc<SlotCopy>,
    expires: Instant,
}

/// Decides with blocking providers. Shareable across threads (`&Engine` is all a thread needs).
pub struct Engine {
    program: Arc<Program>,
    providers: HashMap<String, Arc<dyn Provider>>,
    fallback: Option<Arc<dyn Provider>>,
    observer: Option<Arc<dyn Observer>>,
    /// Keyed by [`cache_key`]: the tag's id and the key value.
    cache: quick_cache::sync::Cache<Vec<u8>, Cached>,
    /// Each deciding thread's [`NearCache`] in front of `cache`, padded to its own cache
    /// lines: the threads' entries sit side by side, and each borrow writes its flag.
    near: ThreadLocal<CachePadded<RefCell<NearCache>>>,
}

/// The entries one thread last read from the shared cache, direct-mapped by the key's hash
/// ([`NEAR_CACHE_SLOTS`] of them). A hot key (a popular item; a user with many requests)
/// is then served without writing to memory other threads share: a read of the shared
/// cache takes its shard's lock and clones the entry's `Arc`, and on two cores those
/// writes made `eval --inputs` slower than on one. An entry is a copy of a shared one with
/// the same expiry, so it is never served longer than the shared cache would serve it.
struct NearCache {
    slots: Vec<Option<(Vec<u8>, Cached)>>,
}

impl Default for NearCache {
    fn default() -> NearCache {
        NearCache { slots: vec![None; NEAR_CACHE_SLOTS] }
    }
}

impl NearCache {
    fn slot(&mut self, key: &[u8]) -> &mut Option<(Vec<u8>, Cached)> {
        let hash = foldhash::quality::FixedState::with_seed(0).hash_one(key);
        &mut self.slots[hash as usize % NEAR_CACHE_SLOTS]
    }
}

impl Engine {
    /// An engine over `program`, with no providers yet and an empty cache.
    pub fn new(program: impl Into<Arc<Program>>) -> Engine {
        Engine {
            program: program.into(),
            providers: HashMap::new(),
            fallback: None,
            observer: None,
            // Room for CACHE_CAPACITY entries; tables grow from a small start as it fills.
            cache: quick_cache::sync::Cache::with(
                1024,
                CACHE_CAPACITY,
                Default::default(),
                Default::default(),
                Default::default(),
            ),
            near: ThreadLocal::new(),
        }
    }

    /// Registers the provider that tags `from "NAME"` load from.
    pub fn with_provider(mut self, name: &str, provider: impl Provider + 'static) -> Engine {
        self.providers.insert(name.to_string(), Arc::new(provider));
        self
    }

    /// Serves every provider name that has no provider of its own (e.g. a `--tags` file).
    pub fn with_fallback(mut self, provider: impl Provider + 'static) -> Engine {
        self.fallback = Some(Arc::new(provider));
        self
    }

    /// Reports cache lookups and provider calls to `observer` (the service's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Engine {
        self.observer = Some(observer);
        self
    }

    /// Whether any registered provider (or the fallback) waits on I/O
    /// ([`Provider::is_remote`]).
    pub fn has_remote_providers(&self) -> bool {
        self.providers.values().chain(self.fallback.iter()).any(|p| p.is_remote())
    }

    /// The program this engine decides with.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Runs `req` to completion, loading tags from providers (and the cache) whenever the
    /// VM suspends. Read the result with `req.outcome()`.
    pub fn run(&self, req: &mut Request<'_>) -> Result<(), EngineError> {
        let mut key_buf = KeyBuf::default();
        // One clock read per run, and only once a cached tag is needed.
        let mut now: Option<Instant> = None;
        // One batch per provider, in the order evaluation first needed each: which provider
        // is called first (and which one is reported missing) never depends on hashing.
        let mut batches: Vec<(&str, Vec<(u32, String)>)> = Vec::new();
        loop {
            if self.program.run(req)? == Step::Done {
                return Ok(());
            }
            let program = req.program();
            let mut needed = Needed::default();
            req.needed().for_each(|n| needed.push(n.tag));
            for tag in needed.iter() {
                let info = &program.tags[tag as usize];
                if info.cache_seconds.is_some() {
                    // Built in a reused buffer: a lookup on the warm path allocates no key.
                    let now = *now.get_or_insert_with(Instant::now);
                    let key = cache_key(&mut key_buf, tag, req.key_for(tag));
                    let hit = self.cached(key, now, |slot| req.restore_slot(tag, slot));
                    if let Some(observer) = &self.observer {
                        observer.cache_lookup(hit);
                    }
                    if hit {
                        continue;
                    }
                }
                let provider = info.provider.as_deref().unwrap_or("");
                let query = (tag, req.key_for(tag).to_string());
                match batches.iter_mut().find(|(name, _)| *name == provider) {
                    Some((_, batch)) => batch.push(query),
                    None => batches.push((provider, vec![query])),
                }
            }
            // Resolve every batch's provider first: a missing one refuses the request before
            // any provider is called.
            let mut calls: Vec<Call<'_>> = Vec::with_capacity(batches.len());
            for (provider_name, batch) in batches.drain(..) {
                match self.providers.get(provider_name).or(self.fallback.as_ref()) {
                    Some(p) => calls.push((provider_name, p, batch)),
                    None => {
                        let tag = program.tags[batch[0].0 as usize].name.clone();
                        return Err(EngineError::NoProvider { provider: provider_name.to_string(), tag });
                    }
                }
            }
            let request_now = req.now;
            let load = |(name, provider, batch): &Call<'_>| {
                let queries: Vec<TagQuery<'_>> = batch
                    .iter()
                    .map(|(tag, key)| {
                        let info = &program.tags[*tag as usize];
                        let (entity, field) = info.name.split_once('.').unwrap_or(("", &info.name));
                        TagQuery { tag: &info.name, entity, field, key }
                    })
                    .collect();
                let start = self.observer.as_ref().map(|_| Instant::now());
                let results = provider.load_at(&queries, request_now);
                if let (Some(observer), Some(start)) = (&self.observer, start) {
                    let failed = results.iter().filter(|r| matches!(r, Loaded::Failed(_))).count()
                        + batch.len().saturating_sub(results.len());
                    observer.provider_call(name, batch.len(), failed, start.elapsed());
                }
                results
            };
            let remote = calls.iter().filter(|(_, p, _)| p.is_remote()).count();
            let answers: Vec<Vec<Loaded>> = if remote > 1 {
                // Several providers that wait on I/O: each on its own thread, all at once.
                std::thread::scope(|scope| {
                    let handles: Vec<_> = calls
                        .iter()
                        .map(|call| if call.1.is_remote() { Some(scope.spawn(|| load(call))) } else { None })
                        .collect();
                    calls
                        .iter()
                        .zip(handles)
                        .map(|(call, handle)| match handle {
                            Some(h) => h
                                .join()
                                .unwrap_or_else(|_| vec![Loaded::Failed("the provider panicked".into()); call.2.len()]),
                            None => load(call),
                        })
                        .collect()
                })
            } else {
                calls.iter().map(load).collect()
            };
            for ((_, _, batch), results) in calls.iter().zip(answers) {
                for (i, (tag, key)) in batch.iter().enumerate() {
                    let result =
                        results.get(i).cloned().unwrap_or(Loaded::Failed("provider returned too few results".into()));
                    let ttl = program.tags[*tag as usize].cache_seconds.map(|s| Duration::from_secs(s.max(0) as u64));
                    let expires = ttl.map(|ttl| *now.get_or_insert_with(Instant::now) + ttl);
                    match result {
                        Loaded::Value(v) => supply_json(req, *tag, Some(&v)),
                        Loaded::Missing => req.supply(*tag, None),
                        Loaded::Failed(e) => {
                            req.supply_failure(*tag, e);
                            continue;
                        }
                    }
                    if let (Some(expires), Some(slot)) = (expires, req.copy_slot(*tag)) {
                        let key = cache_key(&mut key_buf, *tag, key).to_vec();
                        self.cache.insert(key, Cached { slot: Arc::new(slot), expires });
                    }
                }
            }
        }
    }

    /// Loads one tag's value for one key value from the provider that serves it, as a
    /// decision's suspension would (reported to the observer, not cached): for hosts that
    /// need a tag outside a decision, such as outreach reading a user's time zone for quiet
    /// hours. `None`: no such tag, or no provider serves it.
    pub fn load_tag(&self, tag: u32, key: &str, now: Option<i64>) -> Option<Loaded> {
        let info = self.program.tags.get(tag as usize)?;
        let name = info.provider.as_deref().unwrap_or("");
        let provider = self.providers.get(name).or(self.fallback.as_ref())?;
        let (entity, field) = info.name.split_once('.').unwrap_or(("", &info.name));
        let start = self.observer.as_ref().map(|_| Instant::now());
        let loaded = provider.load_at(&[TagQuery { tag: &info.name, entity, field, key }], now).pop();
        if let (Some(observer), Some(start)) = (&self.observer, start) {
            let failed = usize::from(!matches!(loaded, Some(Loaded::Value(_) | Loaded::Missing)));
            observer.provider_call(name, 1, failed, start.elapsed());
        }
        Some(loaded.unwrap_or(Loaded::Failed("provider returned too few results".into())))
    }

    /// Serves the unexpired cached value of `key` to `supply` (`true`), from this thread's
    /// near cache or else the shared one (then kept near). `false`: not cached, or expired.
    fn cached(&self, key: &[u8], now: Instant, supply: impl FnOnce(&SlotCopy)) -> bool {
        let near = self.near.get_or(|| CachePadded::new(RefCell::new(NearCache::default())));
        // Only a provider that decides with this engine on its own thread finds it borrowed.
        let Ok(mut near) = near.try_borrow_mut() else {
            return self.cache.get(key).filter(|c| c.expires > now).map(|c| supply(&c.slot)).is_some();
        };
        let slot = near.slot(key);
        if let Some((near_key, cached)) = slot {
            if near_key.as_slice() == key && cached.expires > now {
                supply(&cached.slot);
                return true;
            }
        }
        let Some(cached) = self.cache.get(key).filter(|c| c.expires > now) else {
            return false;
        };
        supply(&cached.slot);
        match slot {
            Some((near_key, near_cached)) => {
                near_key.clear();
                near_key.extend_from_slice(key);
                *near_cached = cached;
            }
            None => *slot = Some((key.to_vec(), cached)),
        }
        true
    }

    /// One decision from a JSON request (`{"uid": "u-1", "ctx.channel": "app", "now": "…"}`),
    /// as the JSON result document (docs/runtime.md).
    pub fn decide_json(
        &self,
        scene: &str,
        instance: &str,
        input: &serde_json::Value,
        explain: bool,
    ) -> Result<serde_json::Value, EngineError> {
        let mut req = self.program.request(scene, instance)?;
        req.explain(explain);
        apply_input(&mut req, input)?;
        self.run(&mut req)?;
        Ok(outcome_json(&req.outcome(), explain))
    }
}

impl Engine {
    /// Like [`Engine::decide_json`], also returning the tags the decision read or was given
    /// (see [`tags_read_json`]), for a decision log.
    pub fn decide_json_logged(
        &self,
        scene: &str,
        instance: &str,
        input: &serde_json::Value,
        explain: bool,
    ) -> Result<(serde_json::Value, serde_json::Value), EngineError> {
        let mut req = self.program.request(scene, instance)?;
        req.explain(explain);
        apply_input(&mut req, input)?;
        self.run(&mut req)?;
        Ok((outcome_json(&req.outcome(), explain), tags_read_json(&req)))
    }
}

/// One provider call of a suspension: the provider's name, the provider, and the batch of
/// `(tag, key value)` it is asked for.
type Call<'a> = (&'a str, &'a Arc<dyn Provider>, Vec<(u32, String)>);

/// Where cache keys are built: on the stack, unless the key value is long. (A warm decision
/// then allocates nothing for its keys; growing a `Vec` was a seventh of one.)
struct KeyBuf {
    stack: [u8; 64],
    heap: Vec<u8>,
}

impl Default for KeyBuf {
    fn default() -> KeyBuf {
        KeyBuf { stack: [0; 64], heap: Vec::new() }
    }
}

/// The cache key of a tag's value for one key value: the tag id's four bytes, then the key.
/// (Formatting the id as text cost more than the rest of a cache hit.)
fn cache_key<'b>(buf: &'b mut KeyBuf, tag: u32, key: &str) -> &'b [u8] {
    let len = 4 + key.len();
    if let Some(stack) = buf.stack.get_mut(..len) {
        stack[..4].copy_from_slice(&tag.to_le_bytes());
        stack[4..].copy_from_slice(key.as_bytes());
        return stack;
    }
    buf.heap.clear();
    buf.heap.extend_from_slice(&tag.to_le_bytes());
    buf.heap.extend_from_slice(key.as_bytes());
    &buf.heap
}

/// The tags a suspension needs, copied out of the request (which is supplied while they are
/// gone through): the first sixteen on the stack.
#[derive(Default)]
struct Needed {
    first: [u32; 16],
    len: usize,
    more: Vec<u32>,
}

impl Needed {
    fn push(&mut self, tag: u32) {
        match self.first.get_mut(self.len) {
            Some(slot) => {
                *slot = tag;
                self.len += 1;
            }
            None => self.more.push(tag),
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.first[..self.len].iter().chain(&self.more).copied()
    }
}

fn supply_json(req: &mut Request<'_>, tag: u32, value: Option<&serde_json::Value>) {
    match value {
        None | Some(serde_json::Value::Null) => req.supply(tag, None),
        Some(v) => {
            let mut scratch = Vec::new();
            match input_from_json(v, &mut scratch) {
                Ok(input) => req.supply(tag, Some(input)),
                Err(found) => req.supply_wrong_type(tag, found),
            }
        }
    }
}
