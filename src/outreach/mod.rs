//! The outreach runtime: behavior events in, reach actions (and tracking records) out.
//!
//! Owns: event ingestion in event time (ids, lateness), the window tags' state per unit,
//! running the scenes `on` each event through the [`Engine`], the reach filters in their
//! documented order (quiet hours, dedup, caps, budget) and the durable state they judge by,
//! kept behind a [`state::Store`] (an embedded redb database, or Redis shared by several
//! deciders). Must not: parse or check decks, or reach into the
//! compiler (it takes a compiled [`Program`], from rule files or a release, and reads its
//! outreach tables like any host), nor evaluate rules itself (the VM does, through the
//! engine; window tags are supplied to it as ordinary tag values).
//!
//! Crash safety: events are processed in batches; a batch's state changes *and* its
//! tracking records are committed in one store transaction (redb) or script (Redis), and records are handed to the
//! caller only after the commit. With the embedded store (one writer) a full batch commits
//! on another thread while the next one is decided, reading the committing batch's state
//! from memory; commits still happen one after another, in order, so a crash leaves a
//! prefix of the batches durable. A crash before a commit loses the whole batch (state and
//! records), so a restart processes those events again as if for the first time; a crash
//! after it leaves them ingested (their ids are stored), so they are skipped. Either way no
//! reach is recorded twice and no cap or budget is lost. Fan-out indexes are state like
//! the rest: updated in the batch, committed in the same transaction.

mod event;
pub mod fanout;
mod record;
pub mod state;
pub mod tracking;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compile::program::{FanoutValue, Ty};
use crate::engine::{field_json, tags_read, Engine, Loaded, TagsFile};
use crate::ops::{Aggregate, Cap, REACH_FIELDS};
use crate::vm::{FieldValue, Input};
use crate::Program;
use event::{EventDoc, Scalar};
use fanout::IndexEntries;
pub use record::Record;
use record::{Decision, Reach, Tracked};
use window::{AggValue, Entries, FieldVal};

use state::{Committed, RedbStore, Store, Writes};

/// Why one event line was not (fully) processed.
enum IngestError {
    /// The line is refused: tracked as invalid, counted, and the replay goes on.
    Refused(String),
    /// The state store failed: the batch cannot be committed as it is.
    Store(String),
}

impl From<String> for IngestError {
    fn from(reason: String) -> Self {
        IngestError::Refused(reason)
    }
}

impl From<&str> for IngestError {
    fn from(reason: &str) -> Self {
        IngestError::Refused(reason.to_string())
    }
}

/// Events per durable commit unless a host sets [`Outreach::batch_size`] (`replay
/// --batch`). A commit rewrites every page of the state's B-trees that its batch touched,
/// and ids and units are spread over all of them, so larger batches write less per event:
/// on the example log, 10,000 events per commit replayed 1.7× as fast as 1,000. A crash
/// loses at most one batch's work, which a restart decides again.
pub const DEFAULT_BATCH: usize = 10_000;

/// Why the runtime could not go on (bad input lines are not errors: they are counted).
#[derive(Debug)]
pub struct OutreachError(pub String);

impl std::fmt::Display for OutreachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutreachError {}

fn store_err(e: impl std::fmt::Display) -> OutreachError {
    OutreachError(format!("outreach state: {e}"))
}

/// What replaying a log did, for the summary.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Event lines read (including invalid and already ingested ones).
    pub events: u64,
    /// Events skipped because their id was already ingested.
    pub duplicates: u64,
    /// Lines refused (not JSON, unknown kind, missing key or field, bad time), with reasons.
    pub invalid: u64,
    /// Late events (they entered windows but triggered nothing).
    pub late: u64,
    /// Decisions made (reach actions and control groups).
    pub decisions: u64,
    /// Control-group decisions (`none`).
    pub control: u64,
    /// Sent reaches by channel (held reaches included, at their send time).
    pub reaches: BTreeMap<String, u64>,
    /// Filtered reaches by reason (`cap`, `dedup`, `budget`, `quiet`).
    pub filtered: BTreeMap<String, u64>,
    /// Units a fan-out trigger matched beyond [`crate::limits::MAX_FANOUT_UNITS`]: not decided.
    #[serde(skip_serializing_if = "is_zero")]
    pub fanout_skipped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One fan-out index: an index event kind and the fields its values are made of.
struct IndexSpec {
    event: u32,
    /// Indexes into the event's fields, ascending.
    fields: Vec<u32>,
    /// How far behind an index value's newest entry entries are kept: the longest window
    /// of the scenes reading the index plus their triggers' lateness.
    keep: i64,
}

/// Serialized per-unit state: its latest event time, its windows, its sends and the ids of
/// its events.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct UnitState {
    latest: Option<i64>,
    /// Window tag name (`user.phone_browses`) → entries.
    windows: BTreeMap<String, Entries>,
    /// Sent (or held, at their send time) reaches, oldest first: (time, channel, action).
    sends: Vec<(i64, String, String)>,
    /// The unit's ingested events inside the horizon, oldest first: (event time, [`id_key`]).
    /// Kept here rather than in a table of all ids: no insert of its own per event, and
    /// forgotten with the rest of the unit's state once older than anything it keeps (an
    /// event that old is late, and beyond every window, whether seen or not).
    ids: Vec<(i64, IdKey)>,
    /// Ids of events at or before this time were dropped to stay within
    /// [`crate::limits::MAX_UNIT_IDS`]: such an event, not found, may be a duplicate and is
    /// taken for one.
    ids_dropped_until: Option<i64>,
}

/// The unit state of builds that kept ids in a table of their own (what a state's units
/// hold until they are next written).
#[derive(Deserialize)]
struct UnitStateWithoutIds {
    latest: Option<i64>,
    windows: BTreeMap<String, Entries>,
    sends: Vec<(i64, String, String)>,
}

impl UnitState {
    /// Reads a unit's stored bytes, in this build's form or the one before it. The forms
    /// cannot be mistaken: the older one ends where this one's ids begin, so it does not
    /// read as this one.
    fn from_bytes(bytes: &[u8]) -> Result<UnitState, postcard::Error> {
        postcard::from_bytes(bytes).or_else(|e| {
            let old: UnitStateWithoutIds = postcard::from_bytes(bytes).map_err(|_| e)?;
            Ok(UnitState { latest: old.latest, windows: old.windows, sends: old.sends, ..UnitState::default() })
        })
    }

    /// Whether the event `key` at `time` was ingested (or may have been). An id seen again
    /// later in event time is remembered from then on: it is forgotten only once every
    /// event that carried it is older than anything the unit keeps, so that a log replayed
    /// into the state finds each of its events either remembered or late.
    fn seen_again(&mut self, time: i64, key: &IdKey) -> bool {
        match self.ids.iter().position(|(_, k)| k == key) {
            Some(i) => {
                if self.ids[i].0 < time {
                    self.ids.remove(i);
                    self.remember(time, *key);
                }
                true
            }
            None => self.ids_dropped_until.is_some_and(|t| time <= t),
        }
    }

    /// Remembers an ingested event, dropping the oldest id when full.
    fn remember(&mut self, time: i64, key: IdKey) {
        let at = self.ids.partition_point(|(t, _)| *t <= time);
        self.ids.insert(at, (time, key));
        if self.ids.len() > crate::limits::MAX_UNIT_IDS {
            let (dropped, _) = self.ids.remove(0);
            self.ids_dropped_until = Some(self.ids_dropped_until.map_or(dropped, |t| t.max(dropped)));
        }
    }
}

/// An event id's key: the first 128 bits of its SHA-256. Two distinct ids collide with
/// probability 2^-128 per pair, and a cryptographic hash leaves no way to craft an id that
/// shadows another. Fixed width: cheap to keep and compare.
pub(crate) type IdKey = [u8; 16];

pub(crate) fn id_key(id: &[u8]) -> IdKey {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id);
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// The batch's maps: iteration order never matters (commits sort), so a fast hasher.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The state a batch works on: loaded from the store as touched, written back at commit.
#[derive(Default)]
struct Batch {
    units: FastMap<String, UnitState>,
    /// The version each unit's state was read at (what the commit checks).
    versions: FastMap<String, u64>,
    /// Budgets touched: spent when read, spent now.
    budgets: FastMap<String, (i64, i64)>,
    /// Fan-out index values touched, by [`fanout::index_key`].
    index: FastMap<String, IndexEntries>,
    /// The version each index value was read at (what the commit checks).
    index_versions: FastMap<String, u64>,
    /// Each unit's and index value's state as read: what is unchanged is not written back.
    loaded_units: FastMap<String, AsRead>,
    loaded_index: FastMap<String, AsRead>,
    records: Vec<Tracked>,
    /// Event lines in the batch.
    events: usize,
    /// The batch's lines, decided again if a commit finds its state changed (kept only for a
    /// store with other writers: with one, a commit never does).
    lines: Vec<String>,
    /// The summary before the batch, restored before deciding it again.
    summary_before: Summary,
    /// Window tags the batch began to keep, and the event time each starts at.
    window_starts: Vec<(String, i64)>,
}

/// A unit's or index value's state when a batch read it.
enum AsRead {
    /// Not in the state.
    Absent,
    /// These bytes.
    Bytes(Vec<u8>),
    /// As the batch committing in the background left it: written back whatever it is now
    /// (telling whether it changed would take serializing it).
    Committing,
}

impl AsRead {
    /// Whether `now` is what was read, so need not be written; `absent` is what reads as
    /// not in the state.
    fn unchanged(&self, now: Option<&[u8]>, absent: Option<&[u8]>) -> bool {
        match self {
            AsRead::Absent => now == absent,
            AsRead::Bytes(read) => now == Some(read.as_slice()),
            AsRead::Committing => false,
        }
    }
}

impl From<Option<Vec<u8>>> for AsRead {
    fn from(bytes: Option<Vec<u8>>) -> AsRead {
        bytes.map_or(AsRead::Absent, AsRead::Bytes)
    }
}

/// A unit's or index value's state as a batch first reads it, with what it read and the
/// version: from the batch committing in the background when that holds it, else from the
/// store (`None` bytes: the default state).
fn read_through<T: Clone + Default>(
    committing: Option<&T>,
    stored: impl FnOnce() -> Result<state::Versioned, String>,
    decode: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<(T, AsRead, u64), IngestError> {
    if let Some(state) = committing {
        return Ok((state.clone(), AsRead::Committing, 0));
    }
    let stored = stored().map_err(IngestError::Store)?;
    let state = match &stored.bytes {
        Some(bytes) => decode(bytes).map_err(IngestError::Store)?,
        None => T::default(),
    };
    Ok((state, AsRead::from(stored.bytes), stored.version))
}

/// A batch committing on another thread, and what the next batch reads through it until
/// it is durable: its units (with their ids), index values and budgets as it left them.
struct InFlight {
    commit: std::thread::JoinHandle<Result<Vec<Record>, String>>,
    batch: Arc<Batch>,
}

/// A unit state or index value as stored. Into a buffer the size of a typical unit state
/// (growing from empty, copying as it doubled, was a fiftieth of a commit).
fn encode(value: &impl Serialize) -> Result<Vec<u8>, String> {
    postcard::to_extend(value, Vec::with_capacity(512)).map_err(|e| e.to_string())
}

impl Batch {
    /// The batch's state writes (records aside), in key order.
    fn writes(&self, program: &Program) -> Result<Writes, String> {
        let mut writes = Writes::default();
        let mut units: Vec<_> = self.units.iter().collect();
        units.sort_by(|a, b| a.0.cmp(b.0));
        let default_state = encode(&UnitState::default())?;
        for (key, state) in units {
            let bytes = encode(state)?;
            // Read but unchanged (a fanned-out user that was not reached, say): not
            // written, so it neither costs a write nor conflicts with its own decider.
            let unchanged = |read: &AsRead| read.unchanged(Some(&bytes), Some(&default_state));
            if self.loaded_units.get(key).is_some_and(unchanged) {
                continue;
            }
            let version = self.versions.get(key).copied().unwrap_or(0);
            writes.units.push((key.clone(), bytes, version));
        }
        let mut budgets: Vec<_> = self.budgets.iter().filter(|(_, (read, now))| now != read).collect();
        budgets.sort_by(|a, b| a.0.cmp(b.0));
        for (action, (read, now)) in budgets {
            let limit = program.outreach.actions.iter().find(|a| &a.name == action);
            let limit = limit.and_then(|a| a.budget.as_ref()).map_or(i64::MAX, |b| b.amount);
            writes.budgets.push((action.clone(), now - read, limit));
        }
        let mut index: Vec<_> = self.index.iter().collect();
        index.sort_by(|a, b| a.0.cmp(b.0));
        for (key, entries) in index {
            let bytes = if entries.items.is_empty() { None } else { Some(encode(entries)?) };
            if self.loaded_index.get(key).is_some_and(|read| read.unchanged(bytes.as_deref(), None)) {
                continue;
            }
            let version = self.index_versions.get(key).copied().unwrap_or(0);
            writes.index.push((key.clone(), bytes, version));
        }
        writes.window_starts = self.window_starts.clone();
        writes.window_starts.sort();
        Ok(writes)
    }
}

/// The outreach runtime over one deck and one state store.
pub struct Outreach {
    program: Arc<Program>,
    engine: Engine,
    /// The release the program came from, stamped on every record (`None`: rule files).
    release: Option<u64>,
    /// Instance versions of that release, by scene and instance index of the program.
    versions: Vec<Vec<Option<u64>>>,
    engines: Engines,
    store: Arc<dyn Store>,
    /// The last full batch, while it commits in the background ([`Store::sole_writer`]).
    in_flight: Option<InFlight>,
    /// Records made durable and not yet handed to the caller.
    ready: Vec<Record>,
    /// When each window tag of the program began to be kept (see [`Outreach::adopt_windows`]).
    window_starts: HashMap<String, i64>,
    /// Window tags that start with the next event ingested.
    unstarted: Vec<String>,
    batch: Batch,
    /// Events per commit ([`DEFAULT_BATCH`] unless set).
    pub batch_size: usize,
    /// Longest span of event time any state is needed for (windows, caps, dedup) plus the
    /// longest lateness: older entries and sends are pruned.
    keep_seconds: i64,
    max_late: i64,
    /// Fan-out indexes, and per scene the one its fan-out reads.
    specs: Vec<IndexSpec>,
    scene_specs: Vec<Option<usize>>,
    summary: Summary,
    /// Test hook: abort the process (no unwinding, no commit) after this many events.
    fail_after: Option<u64>,
}

/// Makes the engine a program's scenes decide with: where loaded tags (and channel zones)
/// come from. A service passes its `--providers` and `--tags`; [`Outreach::open`] a tags
/// file.
pub type Engines = Arc<dyn Fn(Arc<Program>) -> Engine + Send + Sync>;

/// Engines whose every provider name is served by `tags`.
fn tags_engines(tags: impl Into<Arc<TagsFile>>) -> Engines {
    let tags: Arc<TagsFile> = tags.into();
    Arc::new(move |program| Engine::new(program).with_fallback(tags.clone()))
}

impl Outreach {
    /// Opens (or creates) the state in `state_dir` (`None`: in memory, gone at the end) for
    /// `program`'s events, loading other tags from `tags`.
    pub fn open(
        program: impl Into<Arc<Program>>,
        tags: impl Into<Arc<TagsFile>>,
        state_dir: Option<&Path>,
    ) -> Result<Outreach, OutreachError> {
        let store = RedbStore::open(state_dir).map_err(store_err)?;
        Outreach::with_engines(program, tags_engines(tags), Box::new(store))
    }

    /// Like [`Outreach::open`], over any state store (e.g. [`state::RedisStore`], shared by
    /// several deciders).
    pub fn with_store(
        program: impl Into<Arc<Program>>,
        tags: impl Into<Arc<TagsFile>>,
        store: Box<dyn Store>,
    ) -> Result<Outreach, OutreachError> {
        Outreach::with_engines(program, tags_engines(tags), store)
    }

    /// Like [`Outreach::with_store`], with loaded tags and channel zones from the providers
    /// of the engines `engines` makes (one per program; again at each
    /// [`Outreach::set_program`]).
    pub fn with_engines(
        program: impl Into<Arc<Program>>,
        engines: Engines,
        store: Box<dyn Store>,
    ) -> Result<Outreach, OutreachError> {
        let program: Arc<Program> = program.into();
        let (keep, max_late) = horizons(&program);
        let (specs, scene_specs) = index_specs(&program);
        let engine = engines(program.clone());
        let fail_after = std::env::var("RULEDECK_OUTREACH_FAIL_AFTER").ok().and_then(|v| v.parse().ok());
        let mut outreach = Outreach {
            program,
            engine,
            release: None,
            versions: Vec::new(),
            engines,
            store: Arc::from(store),
            in_flight: None,
            ready: Vec::new(),
            window_starts: HashMap::new(),
            unstarted: Vec::new(),
            batch: Batch::default(),
            batch_size: DEFAULT_BATCH,
            keep_seconds: keep + max_late,
            max_late,
            specs,
            scene_specs,
            summary: Summary::default(),
            fail_after,
        };
        outreach.adopt_windows()?;
        Ok(outreach)
    }

    /// Learns when each window tag of the program began to be kept. A tag the state has no
    /// start for begins with the next event ingested, and until it has run its `within`
    /// from there it reads missing: counting only part of its span would make a rule like
    /// `count(order) within 90d == 0` hold for everyone. In a fresh state, and in one written
    /// before starts were kept, the program's window tags hold all the history the state
    /// has seen (`i64::MIN`).
    fn adopt_windows(&mut self) -> Result<(), OutreachError> {
        let kept = self.store.window_starts().map_err(store_err)?;
        let whole = kept.is_none() || self.store.fresh().map_err(store_err)?;
        self.window_starts = kept.unwrap_or_default();
        // Starts the batch holds are to be committed with it (those of a fresh state).
        for (name, start) in &self.batch.window_starts {
            self.window_starts.entry(name.clone()).or_insert(*start);
        }
        self.unstarted.clear();
        for w in &self.program.outreach.windows {
            let name = &self.program.tags[w.tag as usize].name;
            if self.window_starts.contains_key(name) || self.unstarted.contains(name) {
                continue;
            }
            if whole {
                self.window_starts.insert(name.clone(), i64::MIN);
                self.batch.window_starts.push((name.clone(), i64::MIN));
            } else {
                self.unstarted.push(name.clone());
            }
        }
        Ok(())
    }

    /// Runs `program` from the next event on (a host's hot swap to a new release), keeping
    /// the state: ids, sends, budgets and windows, which are keyed by name (units by entity
    /// name and key, windows by tag name, sends and budgets by channel and action). A window
    /// tag of the new program reads the entries kept under its name; a new name starts
    /// with the next event and reads missing until it has run its `within`. Records are
    /// stamped with `release` and `versions` (by `scene.instance`) from now on. Refused
    /// between a batch's first event and its commit: commit first.
    pub fn set_program(
        &mut self,
        program: impl Into<Arc<Program>>,
        release: Option<u64>,
        versions: impl IntoIterator<Item = (String, u64)>,
    ) -> Result<(), OutreachError> {
        if self.batch.events > 0 {
            return Err(OutreachError("the program changes only between batches: commit first".into()));
        }
        // The new program's windows are adopted from the state as committed.
        self.finish_in_flight()?;
        let program: Arc<Program> = program.into();
        let (keep, max_late) = horizons(&program);
        (self.specs, self.scene_specs) = index_specs(&program);
        self.engine = (self.engines)(program.clone());
        self.program = program;
        self.release = release;
        self.versions = instance_versions(&self.program, versions);
        self.keep_seconds = keep + max_late;
        self.max_late = max_late;
        self.adopt_windows()
    }

    /// Stamps every record with the release the program came from and the version of the
    /// record's instance in it (`versions` by `scene.instance`).
    pub fn with_release(mut self, release: u64, versions: impl IntoIterator<Item = (String, u64)>) -> Outreach {
        self.release = Some(release);
        self.versions = instance_versions(&self.program, versions);
        self
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Ingests one event line (a JSON object); returns the records made durable since the
    /// last call (empty until a batch commits). With a store that has one writer, a full
    /// batch commits on another thread and its records come with a later call.
    pub fn ingest_line(&mut self, line: &str) -> Result<Vec<Record>, OutreachError> {
        if self.batch.events == 0 {
            self.batch.summary_before = self.summary.clone();
        }
        self.batch.events += 1;
        if !self.store.sole_writer() {
            self.batch.lines.push(line.to_string());
        }
        self.process(line)?;
        if self.fail_after.is_some_and(|n| self.summary.events >= n) {
            // Simulates a crash: no unwinding, no commit, no flush.
            std::process::abort();
        }
        if self.batch.events >= self.batch_size {
            if self.store.sole_writer() {
                return self.commit_in_background();
            }
            return self.commit();
        }
        Ok(Vec::new())
    }

    /// Decides one line into the current batch. A refused line is tracked as invalid; a
    /// failure of the state store is an error, after which the batch must not be committed
    /// (see [`Outreach::discard`]).
    fn process(&mut self, line: &str) -> Result<(), OutreachError> {
        self.summary.events += 1;
        match self.ingest(line) {
            Ok(()) => Ok(()),
            Err(IngestError::Refused(reason)) => {
                self.summary.invalid += 1;
                self.batch.records.push(Tracked::Invalid { reason });
                Ok(())
            }
            Err(IngestError::Store(e)) => Err(store_err(e)),
        }
    }

    /// Drops the batch in progress (its events count as never seen; the summary is as
    /// before it), for a host whose ingest or commit failed and that goes on with the
    /// state as of the last commit. A batch committing in the background is waited for
    /// first: its records, if it became durable, come with the next call that returns
    /// records; if it failed, it is dropped too.
    pub fn discard(&mut self) {
        let lost = match self.in_flight.take().map(|f| (f.batch, Self::join(f.commit))) {
            Some((_, Ok(records))) => {
                self.ready.extend(records);
                None
            }
            Some((batch, Err(_))) => Some(batch),
            None => None,
        };
        self.drop_work(lost.as_deref());
    }

    /// Drops the batch in progress and `lost`, a batch before it whose commit failed.
    fn drop_work(&mut self, lost: Option<&Batch>) {
        let mut started = Vec::new();
        if let Some(lost) = lost {
            self.summary = lost.summary_before.clone();
            started = lost.window_starts.clone();
        } else if self.batch.events > 0 {
            self.summary = std::mem::take(&mut self.batch.summary_before);
        }
        started.append(&mut self.batch.window_starts);
        self.batch = Batch::default();
        // Starts the batch set are not kept; a start from the whole history still is to be.
        for (name, start) in started {
            if start == i64::MIN {
                self.batch.window_starts.push((name, start));
            } else {
                self.window_starts.remove(&name);
                self.unstarted.push(name);
            }
        }
    }

    /// Commits the current batch and returns its records, now durable. If the store says
    /// another decider changed what the batch read (a unit, a budget, an event id), the
    /// batch is decided again on the fresh state, up to [`MAX_COMMIT_ATTEMPTS`] times.
    ///
    /// [`MAX_COMMIT_ATTEMPTS`]: crate::limits::MAX_COMMIT_ATTEMPTS
    pub fn commit(&mut self) -> Result<Vec<Record>, OutreachError> {
        self.finish_in_flight()?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut writes = self.batch.writes(&self.program).map_err(store_err)?;
            writes.records = self.batch.records.iter().map(|r| r.to_record(&self.program)).collect();
            match self.store.commit(&writes).map_err(store_err)? {
                Committed::Done => {
                    self.batch = Batch::default();
                    let mut records = std::mem::take(&mut self.ready);
                    records.append(&mut writes.records);
                    return Ok(records);
                }
                Committed::Conflict(what) if attempts >= crate::limits::MAX_COMMIT_ATTEMPTS => {
                    return Err(OutreachError(format!(
                        "outreach state: gave up after {attempts} attempts to commit a batch ({what} kept changing)"
                    )));
                }
                Committed::Conflict(_) => {
                    // Decide the batch again on the state as it is now.
                    let lines = std::mem::take(&mut self.batch.lines);
                    self.summary = std::mem::take(&mut self.batch.summary_before);
                    self.batch = Batch { summary_before: self.summary.clone(), ..Batch::default() };
                    // Another decider may have started a window the batch started too.
                    self.adopt_windows()?;
                    for line in &lines {
                        self.process(line)?;
                    }
                    self.batch.events = lines.len();
                    self.batch.lines = lines;
                }
            }
        }
    }

    /// Hands the full batch to a thread that commits it, after the one before it has
    /// committed, and goes on with an empty batch that reads through it; returns the
    /// records made durable since the last call.
    fn commit_in_background(&mut self) -> Result<Vec<Record>, OutreachError> {
        let done = self.finish_in_flight()?;
        let batch = Arc::new(std::mem::take(&mut self.batch));
        let (store, program, shared) = (self.store.clone(), self.program.clone(), batch.clone());
        // The thread serializes the batch (state and records) too: the deciding thread
        // only decides.
        let started = std::thread::Builder::new().name("outreach-commit".into()).spawn(move || {
            let mut writes = shared.writes(&program)?;
            writes.records = shared.records.iter().map(|r| r.to_record(&program)).collect();
            match store.commit(&writes)? {
                Committed::Done => Ok(writes.records),
                // The store has one writer; it cannot happen, and is not taken for a success.
                Committed::Conflict(what) => Err(format!("the state was changed by another writer ({what})")),
            }
        });
        // The batch before, read by nobody now, is freed while this one commits.
        drop(done);
        match started {
            Ok(commit) => {
                self.in_flight = Some(InFlight { commit, batch });
                Ok(std::mem::take(&mut self.ready))
            }
            Err(e) => {
                self.drop_work(Some(&batch));
                Err(OutreachError(format!("cannot start a thread to commit the batch: {e}")))
            }
        }
    }

    /// The records of a background commit once it is durable, or why it is not.
    fn join(commit: std::thread::JoinHandle<Result<Vec<Record>, String>>) -> Result<Vec<Record>, String> {
        commit.join().unwrap_or_else(|_| Err("the commit thread panicked".into()))
    }

    /// Waits for the batch committing in the background and returns it, durable. If it
    /// failed, it is lost, and so is the batch in progress, which was decided on top of it:
    /// both are dropped (their events count as never seen) and the error is returned.
    fn finish_in_flight(&mut self) -> Result<Option<Arc<Batch>>, OutreachError> {
        let Some(f) = self.in_flight.take() else { return Ok(None) };
        match Self::join(f.commit) {
            Ok(records) => {
                self.ready.extend(records);
                Ok(Some(f.batch))
            }
            Err(e) => {
                self.drop_work(Some(&f.batch));
                Err(store_err(e))
            }
        }
    }

    /// The batch committing in the background, which lookups read before the store.
    fn committing(&self) -> Option<&Batch> {
        self.in_flight.as_ref().map(|f| &*f.batch)
    }

    fn unit(&mut self, key: &str) -> Result<&mut UnitState, IngestError> {
        if !self.batch.units.contains_key(key) {
            let (state, read, version) = read_through(
                self.committing().and_then(|b| b.units.get(key)),
                || self.store.unit(key),
                |bytes| UnitState::from_bytes(bytes).map_err(|e| format!("corrupt unit state of `{key}`: {e}")),
            )?;
            self.batch.versions.insert(key.to_string(), version);
            self.batch.loaded_units.insert(key.to_string(), read);
            self.batch.units.insert(key.to_string(), state);
        }
        Ok(self.batch.units.get_mut(key).expect("just inserted"))
    }

    fn index_entries(&mut self, key: &str) -> Result<&mut IndexEntries, IngestError> {
        if !self.batch.index.contains_key(key) {
            let (entries, read, version) = read_through(
                self.committing().and_then(|b| b.index.get(key)),
                || self.store.index(key),
                |bytes| postcard::from_bytes(bytes).map_err(|e| format!("corrupt fan-out index `{key}`: {e}")),
            )?;
            self.batch.index_versions.insert(key.to_string(), version);
            self.batch.loaded_index.insert(key.to_string(), read);
            self.batch.index.insert(key.to_string(), entries);
        }
        Ok(self.batch.index.get_mut(key).expect("just inserted"))
    }

    /// The key of the index value `spec` looks up (or updates) for these values (one per
    /// field of the spec, in its order). Fields go into the key by name, in name order, so
    /// a release that reorders the index event's fields finds the same values.
    fn spec_key(&self, spec: usize, values: &[String]) -> String {
        let spec = &self.specs[spec];
        let ev = &self.program.outreach.events[spec.event as usize];
        let mut pairs: Vec<(&str, &String)> =
            spec.fields.iter().map(|&f| ev.fields[f as usize].name.as_str()).zip(values).collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let names: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
        let values: Vec<String> = pairs.into_iter().map(|(_, v)| v.clone()).collect();
        fanout::index_key(&ev.name, &names, &values)
    }

    fn spent(&mut self, action: &str) -> Result<i64, IngestError> {
        if let Some((_, now)) = self.batch.budgets.get(action) {
            return Ok(*now);
        }
        let spent = match self.committing().and_then(|b| b.budgets.get(action)) {
            Some((_, now)) => *now,
            None => self.store.spent(action).map_err(IngestError::Store)?,
        };
        self.batch.budgets.insert(action.to_string(), (spent, spent));
        Ok(spent)
    }

    /// One event; `Err` says why the line was refused, or that the store failed.
    fn ingest(&mut self, line: &str) -> Result<(), IngestError> {
        let obj = EventDoc::parse(line).map_err(|e| format!("not JSON: {e}"))?.ok_or("an event is a JSON object")?;
        let kind = obj.str("event").ok_or("missing `event` (the event's kind)")?;
        let program = self.program.clone();
        let (ev_id, ev) = program
            .outreach
            .events
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == kind)
            .ok_or_else(|| format!("unknown event kind `{kind}`"))?;
        let time_text = obj.str("time").ok_or("missing `time` (RFC 3339)")?;
        let time = crate::time::parse_data(time_text).ok_or_else(|| format!("invalid time `{time_text}`"))?;
        let key_name = &program.entities[ev.entity as usize].key;
        let unit = unit_text(obj.get(key_name))
            .ok_or_else(|| format!("missing `{key_name}` (the event's unit, text or int)"))?;
        let mut fields = Vec::new();
        for f in &ev.fields {
            let raw = obj.get(&f.name).ok_or_else(|| format!("missing field `{}`", f.name))?;
            let val = match (f.ty, raw) {
                (Ty::Int, Scalar::Num(n)) if n.is_i64() => FieldVal::Int(n.as_i64().unwrap_or(0)),
                (Ty::Float, Scalar::Num(n)) => FieldVal::Float(n.as_f64().unwrap_or(0.0)),
                (Ty::Text, Scalar::Str(s)) => FieldVal::Text(s.to_string()),
                (Ty::Enum(e), Scalar::Str(s)) if program.enums[e as usize].iter().any(|m| m == s) => {
                    FieldVal::Text(s.to_string())
                }
                (Ty::Bool, Scalar::Bool(b)) => FieldVal::Bool(*b),
                (Ty::Time, Scalar::Str(s)) => FieldVal::Time(
                    crate::time::parse_data(s).ok_or_else(|| format!("field `{}`: invalid time", f.name))?,
                ),
                _ => {
                    return Err(format!("field `{}` is not a valid `{}`", f.name, program.type_name(f.ty, ", ")).into())
                }
            };
            fields.push(val);
        }
        let id = event_id(line, &obj);
        let id_key = id_key(id.as_bytes());
        let unit_key = format!("{}\u{0}{unit}", program.entities[ev.entity as usize].name);
        let legacy_seen = self.store.has_legacy_ids() && self.store.seen(&id).map_err(IngestError::Store)?;
        if legacy_seen || self.unit(&unit_key)?.seen_again(time, &id_key) {
            self.summary.duplicates += 1;
            return Ok(());
        }
        for name in std::mem::take(&mut self.unstarted) {
            self.window_starts.insert(name.clone(), time);
            self.batch.window_starts.push((name, time));
        }
        let ev_id = ev_id as u32;
        let late_seconds = ev.late_seconds;
        let keep = self.keep_seconds;
        // Windows: the event enters every window over its kind whose filter it passes.
        let members = |field: u32, m: u32| match ev.fields.get(field as usize).map(|f| f.ty) {
            Some(Ty::Enum(e)) => program.enums[e as usize].get(m as usize).cloned(),
            _ => None,
        };
        let windows: Vec<(&str, Option<FieldVal>)> = program
            .outreach
            .windows
            .iter()
            .filter(|w| w.event == ev_id)
            .filter(|w| window::passes(&w.filter, &fields, &members))
            .map(|w| (program.tags[w.tag as usize].name.as_str(), w.field.map(|f| fields[f as usize].clone())))
            .collect();
        let state = self.unit(&unit_key)?;
        let latest = state.latest;
        let is_late = latest.is_some_and(|l| time < l.saturating_sub(late_seconds));
        for (w, value) in windows {
            let w = w.to_string();
            state.windows.entry(w).or_default().insert(time, value);
        }
        let newest = latest.map_or(time, |l| l.max(time));
        state.latest = Some(newest);
        let horizon = newest.saturating_sub(keep);
        for entries in state.windows.values_mut() {
            entries.prune(horizon);
        }
        let n = state.sends.partition_point(|(t, _, _)| *t < horizon);
        state.sends.drain(..n);
        state.remember(time, id_key);
        let n = state.ids.partition_point(|(t, _)| *t < horizon);
        state.ids.drain(..n);
        // Fan-out indexes over this kind (late events too: they are facts for later triggers).
        for spec in 0..self.specs.len() {
            if self.specs[spec].event != ev_id {
                continue;
            }
            let values: Vec<String> =
                self.specs[spec].fields.iter().map(|&f| fanout::value_text(&fields[f as usize])).collect();
            let key = self.spec_key(spec, &values);
            let keep = self.specs[spec].keep;
            let entries = self.index_entries(&key)?;
            entries.insert(time, &unit);
            let newest = entries.newest().unwrap_or(time);
            entries.prune(newest.saturating_sub(keep));
        }
        if is_late {
            self.summary.late += 1;
            self.batch.records.push(Tracked::Late { event: id, unit, kind: kind.to_string(), scene: None, at: time });
            return Ok(());
        }
        let trigger = Trigger { ev_id, id: &id, unit: &unit, unit_key: &unit_key, now: time, fields: &fields };
        let scenes = (0..program.scenes.len()).filter(|&s| program.outreach.scene_event(s) == Some(ev_id));
        for s in scenes {
            if program.outreach.scene_fanout(s).is_some() {
                self.fan_out(s, &trigger, kind)?;
                continue;
            }
            for i in 0..program.scenes[s].instances.len() {
                self.decide(s, i, &trigger, None)?;
            }
        }
        Ok(())
    }

    /// A fan-out scene on a trigger: the units with an index event matching the trigger's
    /// values in `[now − D, now]`, each decided for once (every instance), in ascending
    /// key order, at most [`crate::limits::MAX_FANOUT_UNITS`] of them.
    fn fan_out(&mut self, scene: usize, t: &Trigger<'_>, kind: &str) -> Result<(), IngestError> {
        let program = self.program.clone();
        let f = program.outreach.scene_fanout(scene).expect("a fan-out scene");
        let spec = self.scene_specs[scene].expect("every fan-out has an index");
        let values: Vec<String> = f
            .pairs
            .iter()
            .map(|(_, v)| match v {
                FanoutValue::Field(i) => fanout::value_text(&t.fields[*i as usize]),
                FanoutValue::Key => t.unit.to_string(),
            })
            .collect();
        let key = self.spec_key(spec, &values);
        let late = program.outreach.events[t.ev_id as usize].late_seconds;
        let entries = self.index_entries(&key)?;
        // Entries are kept only so far behind the value's newest one: a trigger further
        // behind it than its lateness is late for this scene (it might miss pruned units).
        if entries.newest().is_some_and(|n| t.now < n.saturating_sub(late)) {
            self.summary.late += 1;
            self.batch.records.push(Tracked::Late {
                event: t.id.to_string(),
                unit: t.unit.to_string(),
                kind: kind.to_string(),
                scene: Some(program.scenes[scene].name.clone()),
                at: t.now,
            });
            return Ok(());
        }
        let mut units: Vec<String> =
            entries.units(t.now.saturating_sub(f.within_seconds), t.now).into_iter().map(str::to_string).collect();
        if units.len() > crate::limits::MAX_FANOUT_UNITS {
            self.summary.fanout_skipped += (units.len() - crate::limits::MAX_FANOUT_UNITS) as u64;
            units.truncate(crate::limits::MAX_FANOUT_UNITS);
        }
        let entity = &program.entities[f.entity as usize].name;
        for user in units {
            let user_key = format!("{entity}\u{0}{user}");
            self.unit(&user_key)?;
            for i in 0..program.scenes[scene].instances.len() {
                self.decide(scene, i, t, Some((&user, &user_key)))?;
            }
        }
        Ok(())
    }

    /// One instance's decision on a trigger: for the trigger's own unit, or (`target`) for
    /// one unit of a fan-out, as `(key, unit state key)`.
    fn decide(
        &mut self,
        scene: usize,
        instance: usize,
        t: &Trigger<'_>,
        target: Option<(&str, &str)>,
    ) -> Result<(), IngestError> {
        let Trigger { ev_id, id, now, fields, .. } = *t;
        let (unit, unit_key) = target.unwrap_or((t.unit, t.unit_key));
        let program = self.program.clone();
        let sc = &program.scenes[scene];
        let inst = &sc.instances[instance];
        let ev = &program.outreach.events[ev_id as usize];
        let mut req = program.request(&sc.name, &inst.name).map_err(|e| e.to_string())?;
        let key_name = &program.entities[ev.entity as usize].key;
        req.key(key_name, t.unit).map_err(|e| e.to_string())?;
        let fan_entity = program.outreach.scene_fanout(scene).map(|f| f.entity);
        if let (Some(e), Some((user, _))) = (fan_entity, target) {
            req.key(&program.entities[e as usize].key, user).map_err(|e| e.to_string())?;
        }
        for (f, v) in ev.fields.iter().zip(fields) {
            let name = &program.tags[f.tag as usize].name;
            let input = match v {
                FieldVal::Int(i) => Input::Int(*i),
                FieldVal::Float(x) => Input::Float(*x),
                FieldVal::Text(t) => Input::Text(t),
                FieldVal::Bool(b) => Input::Bool(*b),
                FieldVal::Time(t) => Input::Time(*t),
            };
            req.pass(name, input).map_err(|e| e.to_string())?;
        }
        req.now(now);
        // Window tags of the trigger's unit and of the fanned-out unit, computed at `now`,
        // supplied before the run.
        for w in &program.outreach.windows {
            let entity = program.outreach.events[w.event as usize].entity;
            let state = if entity == ev.entity {
                self.batch.units.get(t.unit_key)
            } else if fan_entity == Some(entity) {
                self.batch.units.get(unit_key)
            } else {
                continue;
            };
            let tag = w.tag;
            // A window kept for less than its span reads missing (see `adopt_windows`).
            let start = self.window_starts.get(&program.tags[tag as usize].name).copied().unwrap_or(i64::MIN);
            if start > now.saturating_sub(w.within_seconds) {
                req.supply(tag, None);
                continue;
            }
            let float = program.tags[tag as usize].ty == Ty::Float;
            let value = state.and_then(|s| s.windows.get(&program.tags[tag as usize].name)).map_or_else(
                || Entries::default().aggregate(w.agg, w.within_seconds, now, float),
                |e| e.aggregate(w.agg, w.within_seconds, now, float),
            );
            let value = match (&value, w.agg) {
                (AggValue::Int(i), _) => Some(Input::Int(*i)),
                (AggValue::Float(f), _) => Some(Input::Float(*f)),
                (AggValue::Val(v), Aggregate::Min | Aggregate::Max | Aggregate::Last) => Some(match v {
                    FieldVal::Int(i) => Input::Int(*i),
                    FieldVal::Float(x) => Input::Float(*x),
                    FieldVal::Text(t) => Input::Text(t),
                    FieldVal::Bool(b) => Input::Bool(*b),
                    FieldVal::Time(t) => Input::Time(*t),
                }),
                _ => None,
            };
            req.supply(tag, value);
        }
        self.engine.run(&mut req).map_err(|e| format!("deciding {}.{}: {e}", sc.name, inst.name))?;
        let outcome = req.outcome();
        if !outcome.decided() {
            return Ok(());
        }
        let mut channel = String::new();
        let mut action = String::new();
        let mut dedup = 0i64;
        let mut payload = Map::new();
        for (name, value) in outcome.fields() {
            match (name, &value) {
                (n, FieldValue::Text(t)) if n == REACH_FIELDS[0] => channel = t.to_string(),
                (n, FieldValue::Text(t)) if n == REACH_FIELDS[1] => action = t.to_string(),
                (n, FieldValue::Int(i)) if n == REACH_FIELDS[2] => dedup = *i,
                (n, v) => {
                    payload.insert(n.to_string(), field_json(v));
                }
            }
        }
        let mut record = Decision {
            event: id.to_string(),
            unit: unit.to_string(),
            scene: sc.name.clone(),
            instance: inst.name.clone(),
            release: self.release,
            version: self.versions.get(scene).and_then(|v| v.get(instance)).copied().flatten(),
            strategy: outcome.strategy().map(str::to_string),
            experiment: outcome.experiment().map(str::to_string),
            group: outcome.group().map(str::to_string),
            bucket: outcome.bucket(),
            reach: None,
            at: now,
            tags: tags_read(&req),
        };
        self.summary.decisions += 1;
        if channel.is_empty() {
            self.summary.control += 1;
            self.batch.records.push(Tracked::Decision(Box::new(record)));
            return Ok(());
        }
        let verdict = self.filter(unit, unit_key, &channel, &action, dedup, &payload, now)?;
        let (outcome, reason, at) = match verdict {
            Verdict::Sent(at) if at == now => ("sent", None, at),
            Verdict::Sent(at) => ("held", None, at),
            Verdict::Refused(reason, at) => {
                *self.summary.filtered.entry(reason.to_string()).or_default() += 1;
                (if reason == "quiet" { "dropped" } else { "suppressed" }, Some(reason), at)
            }
        };
        if matches!(outcome, "sent" | "held") {
            *self.summary.reaches.entry(channel.clone()).or_default() += 1;
        }
        record.reach = Some(Reach { channel, action, payload, outcome, reason });
        record.at = at;
        self.batch.records.push(Tracked::Decision(Box::new(record)));
        Ok(())
    }

    /// The filters, in order: quiet hours fix the send time, then dedup, caps (channel,
    /// then action) and the budget, each judged at the send time. The first that refuses
    /// gives the reason; a reach that passes is recorded as sent (counted by caps and budget).
    #[allow(clippy::too_many_arguments)]
    fn filter(
        &mut self,
        unit: &str,
        unit_key: &str,
        channel: &str,
        action: &str,
        dedup: i64,
        payload: &Map<String, Value>,
        now: i64,
    ) -> Result<Verdict, IngestError> {
        let program = self.program.clone();
        let ch = program.outreach.channels.iter().find(|c| c.name == channel).ok_or("unknown channel")?;
        let act = program.outreach.actions.iter().find(|a| a.name == action);
        // 1. Quiet hours in the user's zone.
        let mut at = now;
        if let Some(q) = ch.quiet {
            let zone = ch.zone.and_then(|z| match self.engine.load_tag(z, unit, Some(now)) {
                Some(Loaded::Value(Value::String(s))) => s.parse::<chrono_tz::Tz>().ok(),
                _ => None,
            });
            if let Some(end) = quiet_end(now, q.from_minute, q.to_minute, zone.unwrap_or(chrono_tz::UTC)) {
                if q.drop {
                    return Ok(Verdict::Refused("quiet", now));
                }
                at = end;
            }
        }
        let caps_ch = ch.caps.clone();
        let caps_act = act.map(|a| a.caps.clone()).unwrap_or_default();
        let budget = act.and_then(|a| a.budget.clone());
        let no_sends = Vec::new();
        let sends = self.batch.units.get(unit_key).map_or(&no_sends, |s| &s.sends);
        // 2. Dedup: the same action to this unit within `dedup` of a sent one.
        if dedup > 0 && sends.iter().any(|(t, _, a)| a == action && (t - at).abs() < dedup) {
            return Ok(Verdict::Refused("dedup", at));
        }
        // 3. Caps: at most N sends in any window (t − D, t] that would hold the new one.
        let sends_ch: Vec<i64> = sends.iter().filter(|(_, c, _)| c == channel).map(|s| s.0).collect();
        let sends_act: Vec<i64> = sends.iter().filter(|(_, _, a)| a == action).map(|s| s.0).collect();
        let over = |caps: &[Cap], sends: &[i64]| {
            caps.iter().any(|cap| {
                let mut all: Vec<i64> = sends.to_vec();
                all.push(at);
                // Windows ending at the new send or at a later one that would also hold it.
                all.iter().filter(|&&end| end >= at && end - cap.per_seconds < at).any(|&end| {
                    all.iter().filter(|&&t| t > end - cap.per_seconds && t <= end).count() > cap.count as usize
                })
            })
        };
        if over(&caps_ch, &sends_ch) || over(&caps_act, &sends_act) {
            return Ok(Verdict::Refused("cap", at));
        }
        // 4. Budget: count of sends, or the sum of a payload field; never exceeded.
        if let Some(b) = &budget {
            let cost = match &b.field {
                None => 1,
                Some(f) => payload.get(f).and_then(Value::as_i64).unwrap_or(0),
            };
            let spent = self.spent(action)?;
            // A negative amount would give budget back: refused like an overspend.
            match spent.checked_add(cost).filter(|_| cost >= 0) {
                Some(total) if total <= b.amount => {
                    if let Some(entry) = self.batch.budgets.get_mut(action) {
                        entry.1 = total;
                    }
                }
                _ => return Ok(Verdict::Refused("budget", at)),
            }
        }
        let state = self.unit(unit_key)?;
        let pos = state.sends.partition_point(|(t, _, _)| *t <= at);
        state.sends.insert(pos, (at, channel.to_string(), action.to_string()));
        Ok(Verdict::Sent(at))
    }

    /// The longest allowed lateness of the deck's events.
    pub fn max_late(&self) -> i64 {
        self.max_late
    }

    /// The program the runtime decides with.
    pub fn program(&self) -> &Arc<Program> {
        &self.program
    }

    /// Committed tracking records from position `from` on, oldest first, each with its
    /// position in the state's tracking log (positions start at 0 and never repeat).
    pub fn tracking_since(&self, from: u64) -> Result<Vec<(u64, Value)>, OutreachError> {
        let rows = self.store.tracking_since(from).map_err(store_err)?;
        rows.into_iter()
            .map(|(seq, text)| {
                serde_json::from_str(&text).map(|r| (seq, r)).map_err(|e| store_err(format!("corrupt record: {e}")))
            })
            .collect()
    }
}

impl Drop for Outreach {
    /// A batch still committing finishes first: the state's file is not left to a thread
    /// the host no longer knows about (its records are in the state's tracking log).
    fn drop(&mut self) {
        if let Some(f) = self.in_flight.take() {
            let _ = f.commit.join();
        }
    }
}

/// Instance versions (by `scene.instance`) by scene and instance index of `program`.
fn instance_versions(program: &Program, versions: impl IntoIterator<Item = (String, u64)>) -> Vec<Vec<Option<u64>>> {
    let versions: HashMap<String, u64> = versions.into_iter().collect();
    let version = |s: &crate::compile::program::SceneInfo, i: &str| versions.get(&format!("{}.{i}", s.name)).copied();
    program.scenes.iter().map(|s| s.instances.iter().map(|i| version(s, &i.name)).collect()).collect()
}

/// The fan-out indexes `program` keeps (one per index event and field set, however many
/// scenes read it), and which one each scene reads.
fn index_specs(program: &Program) -> (Vec<IndexSpec>, Vec<Option<usize>>) {
    let o = &program.outreach;
    let mut specs: Vec<IndexSpec> = Vec::new();
    let mut scene_specs = Vec::new();
    for s in 0..program.scenes.len() {
        let spec = o.scene_fanout(s).map(|f| {
            let fields: Vec<u32> = f.pairs.iter().map(|(fi, _)| *fi).collect();
            let late = o.scene_event(s).and_then(|e| o.events.get(e as usize)).map_or(0, |e| e.late_seconds);
            let keep = f.within_seconds + late;
            match specs.iter().position(|x| x.event == f.index_event && x.fields == fields) {
                Some(i) => {
                    specs[i].keep = specs[i].keep.max(keep);
                    i
                }
                None => {
                    specs.push(IndexSpec { event: f.index_event, fields, keep });
                    specs.len() - 1
                }
            }
        });
        scene_specs.push(spec);
    }
    (specs, scene_specs)
}

/// How far back a program needs state (its longest window, cap and dedup) and its longest
/// lateness, in seconds.
fn horizons(program: &Program) -> (i64, i64) {
    let o = &program.outreach;
    let max_late = o.events.iter().map(|e| e.late_seconds).max().unwrap_or(0);
    let mut keep = o.windows.iter().map(|w| w.within_seconds).max().unwrap_or(0);
    for c in o.channels.iter().flat_map(|c| &c.caps).chain(o.actions.iter().flat_map(|a| &a.caps)) {
        keep = keep.max(c.per_seconds);
    }
    keep = keep.max(crate::limits::MAX_WINDOW_SECONDS.min(o.max_dedup_seconds));
    (keep, max_late)
}

/// The event a decision is made on.
#[derive(Clone, Copy)]
struct Trigger<'a> {
    ev_id: u32,
    id: &'a str,
    unit: &'a str,
    unit_key: &'a str,
    now: i64,
    fields: &'a [FieldVal],
}

enum Verdict {
    /// Sent at this time (later than the event when held through quiet hours).
    Sent(i64),
    /// Refused by this filter, judged at this time.
    Refused(&'static str, i64),
}

/// An event's unit key: text, or an integer written as its digits.
fn unit_text(value: Option<&Scalar<'_>>) -> Option<String> {
    match value? {
        Scalar::Str(s) => Some(s.to_string()),
        Scalar::Num(n) if n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// An event's identity: its `id` (text or number), else the first 16 bytes of the SHA-256
/// of its trimmed line, in hex. The one definition: ingestion and the tracking store agree.
fn event_id(line: &str, event: &EventDoc<'_>) -> String {
    match event.get("id") {
        Some(Scalar::Str(s)) => s.to_string(),
        Some(Scalar::Num(n)) => n.to_string(),
        _ => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(line.trim().as_bytes());
            digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
        }
    }
}

/// When `now` falls in quiet hours `from..to` (minutes after local midnight, wrapping when
/// `from > to`) in `zone`, the instant they end; `None` outside them.
pub fn quiet_end(now: i64, from: u32, to: u32, zone: chrono_tz::Tz) -> Option<i64> {
    use chrono::{Duration, TimeZone, Timelike};
    let utc = chrono::DateTime::from_timestamp(now, 0)?;
    let local = utc.with_timezone(&zone);
    let minute = local.hour() * 60 + local.minute();
    let inside = if from < to { minute >= from && minute < to } else { minute >= from || minute < to };
    if !inside {
        return None;
    }
    // The end is `to` today if still ahead, else `to` tomorrow (local wall clock).
    let date = local.date_naive();
    let end_date = if minute < to { date } else { date + Duration::days(1) };
    let end_naive = end_date.and_hms_opt(to / 60, to % 60, 0)?;
    // A wall time skipped by a DST change: the first instant after the gap.
    let end = zone
        .from_local_datetime(&end_naive)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(end_naive + Duration::hours(1))).earliest())?;
    Some(end.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit written before ids were kept in unit states reads with its windows and sends
    /// and no ids; one written now reads back whole, ids included.
    #[test]
    fn unit_states_of_both_forms_read() {
        #[derive(Serialize)]
        struct Before {
            latest: Option<i64>,
            windows: BTreeMap<String, Entries>,
            sends: Vec<(i64, String, String)>,
        }
        let mut windows = BTreeMap::new();
        windows.entry("user.taps".to_string()).or_insert_with(Entries::default).insert(50, None);
        let sends = vec![(60, "push".to_string(), "x".to_string())];
        let before = Before { latest: Some(70), windows: windows.clone(), sends: sends.clone() };
        let read = UnitState::from_bytes(&postcard::to_allocvec(&before).unwrap()).unwrap();
        assert_eq!((read.latest, read.windows, read.sends), (Some(70), windows.clone(), sends.clone()));
        assert!(read.ids.is_empty() && read.ids_dropped_until.is_none());

        let mut now = UnitState { latest: Some(70), windows, sends, ..UnitState::default() };
        now.remember(70, id_key(b"e-1"));
        now.ids_dropped_until = Some(3);
        let read = UnitState::from_bytes(&postcard::to_allocvec(&now).unwrap()).unwrap();
        assert_eq!((read.ids, read.ids_dropped_until), (now.ids, Some(3)));
        assert!(UnitState::from_bytes(&[1, 2]).is_err(), "neither form");
    }

    /// Ids are found whatever their time; one seen again later is kept from that time; past
    /// the limit the oldest go, and an event at or before them, not found, is taken for a
    /// duplicate (it may be one) while a later one is not.
    #[test]
    fn a_unit_remembers_ids_within_its_limit() {
        let mut unit = UnitState::default();
        unit.remember(100, id_key(b"a"));
        assert!(unit.seen_again(40, &id_key(b"a")));
        assert_eq!(unit.ids, [(100, id_key(b"a"))], "an earlier sighting changes nothing");
        assert!(unit.seen_again(150, &id_key(b"a")));
        assert_eq!(unit.ids, [(150, id_key(b"a"))], "kept from its latest sighting");
        assert!(!unit.seen_again(150, &id_key(b"b")));

        let mut full = UnitState::default();
        for i in 0..crate::limits::MAX_UNIT_IDS as i64 + 2 {
            full.remember(1000 + i, id_key(&i.to_le_bytes()));
        }
        assert_eq!(full.ids.len(), crate::limits::MAX_UNIT_IDS);
        assert_eq!(full.ids_dropped_until, Some(1001), "the two oldest were dropped");
        assert!(full.seen_again(1000, &id_key(b"new")), "as old as a dropped one: maybe a duplicate");
        assert!(full.seen_again(1001, &id_key(b"new")));
        assert!(!full.seen_again(1002, &id_key(b"new")), "newer than every dropped id");
        assert!(full.seen_again(1002, &id_key(&2i64.to_le_bytes())), "kept ones are found");
    }
}
