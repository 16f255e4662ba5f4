//! Where outreach state lives: the embedded redb database (one process), or Redis (several
//! deciders sharing counters, events partitioned by unit).
//!
//! Owns: reading committed state (ingested ids, per-unit state, budgets spent, the tracking
//! log) and committing one batch's writes atomically. Must not: interpret any of it — unit
//! states are opaque bytes here; windows, caps and filters are the runtime's.
//!
//! A commit is all or nothing, and it is *checked*: it names the version of every unit state
//! it read and the room left in every budget it spends from. The embedded store has one
//! writer, so its checks always pass; on Redis another decider may have committed in
//! between, and then the commit changes nothing and reports a conflict, after which the
//! runtime reads the state again and decides the batch again. That is what makes a budget
//! never overspent and a unit never double-reached across deciders.

use std::collections::HashMap;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use super::{id_key, IdKey};

// Keys are bytes, not `&str`: redb validates UTF-8 on every comparison of a `&str` key,
// which was a tenth of a replay's instructions.
/// Ingested event ids of builds that kept them in a table of their own, by [`id_key`] (the
/// runtime now keeps them in their unit's state: an insert of their own per event was a
/// third of a replay's time). Read, never written.
const SEEN: TableDefinition<IdKey, ()> = TableDefinition::new("ids.v4");
/// The ingested ids of still earlier builds, as text: moved into [`SEEN`] when a state is opened.
const SEEN_AS_TEXT: TableDefinition<&[u8], ()> = TableDefinition::new("ids.v3");
/// Per-unit state, windows keyed by their tag's name (so a release that reorders, adds or
/// drops window tags keeps each window's entries with its name).
const UNITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("units.v3");
/// The per-unit state of earlier builds, windows keyed by their index in the deck: a state
/// holding it is refused rather than misread.
const UNITS_BY_INDEX: TableDefinition<&str, &[u8]> = TableDefinition::new("units");
const BUDGETS: TableDefinition<&str, i64> = TableDefinition::new("budgets");
/// The tracking log, one row per commit: the position of its first record → its records,
/// one per line. A row per record cost a B-tree insert each (a sixth of a commit).
const TRACKING: TableDefinition<u64, &str> = TableDefinition::new("tracking.v2");
/// The tracking log of earlier builds, one row per record: moved into [`TRACKING`] (as
/// rows of one record) when a state is opened.
const TRACKING_BY_RECORD: TableDefinition<u64, &str> = TableDefinition::new("tracking");
/// Fan-out indexes: index value (see `fanout::index_key`) → its entries.
const FANOUT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("fanout.v3");
/// Window tag name → the event time from which the state has kept it (see
/// [`Store::window_starts`]); the key [`STARTS_KEPT`] marks a state that keeps them.
const WINDOW_STARTS: TableDefinition<&str, i64> = TableDefinition::new("window_starts");
/// The entry of [`WINDOW_STARTS`] (and of the Redis hash) that says a state keeps window
/// starts: one written before they were kept has windows whose start nobody recorded.
const STARTS_KEPT: &str = "";

/// A unit's committed state and the version it was committed under (0: never written).
pub struct Versioned {
    /// The state's bytes; `None` for a unit never written.
    pub bytes: Option<Vec<u8>>,
    /// Commits of this unit so far (what a checked commit compares).
    pub version: u64,
}

/// One batch's writes.
#[derive(Default)]
pub struct Writes {
    /// Unit states: key, new bytes, and the version they were read at.
    pub units: Vec<(String, Vec<u8>, u64)>,
    /// Fan-out index values: key, new bytes (`None`: none left, remove), and the version
    /// they were read at.
    pub index: Vec<(String, Option<Vec<u8>>, u64)>,
    /// Budgets: action, amount added by the batch, and the budget's limit.
    pub budgets: Vec<(String, i64, i64)>,
    /// Tracking records, in order (one line each: JSON text has no raw line breaks).
    pub records: Vec<super::Record>,
    /// Window tags the batch began to keep, with the event time they start at; a window
    /// whose start the state holds already must have the same one (or the commit conflicts).
    pub window_starts: Vec<(String, i64)>,
}

/// What a checked commit did.
pub enum Committed {
    /// Everything is durable.
    Done,
    /// Another writer changed what the batch read (named here): nothing was written.
    Conflict(String),
}

/// A place for outreach state.
pub trait Store: Send + Sync {
    /// Whether the state holds event ids kept apart from their units (by builds before ids
    /// were kept in unit states), which [`Store::seen`] then looks up.
    fn has_legacy_ids(&self) -> bool {
        false
    }
    /// Whether an event id is among the ids kept apart from their units.
    fn seen(&self, id: &str) -> Result<bool, String>;
    /// A unit's committed state.
    fn unit(&self, key: &str) -> Result<Versioned, String>;
    /// A fan-out index value's committed entries.
    fn index(&self, key: &str) -> Result<Versioned, String>;
    /// What an action's budget has spent so far.
    fn spent(&self, action: &str) -> Result<i64, String>;
    /// Commits one batch atomically, if nothing it read changed since.
    fn commit(&self, writes: &Writes) -> Result<Committed, String>;
    /// Whether this store has one writer, the runtime, so a commit never conflicts: the
    /// runtime may then decide the next batch while the last one commits on another thread.
    fn sole_writer(&self) -> bool {
        false
    }
    /// Committed tracking records from position `from` on, with their positions.
    fn tracking_since(&self, from: u64) -> Result<Vec<(u64, String)>, String>;
    /// When each window tag began to be kept: the event time of the first event ingested
    /// while the tag existed (`i64::MIN`: with the state's first event, so it holds all the
    /// history the state has seen). `None` for a state written before starts were kept.
    fn window_starts(&self) -> Result<Option<HashMap<String, i64>>, String>;
    /// Whether no event was ever committed to this state.
    fn fresh(&self) -> Result<bool, String>;
}

/// What a `--state` argument names: a Redis URL (`Some`), or a directory (`None`). Any
/// other `SCHEME://` is refused rather than taken for a directory of that name.
pub fn redis_url(state: &Path) -> Result<Option<&str>, String> {
    let Some(text) = state.to_str() else { return Ok(None) };
    match text.split_once("://") {
        Some(("redis", _)) => Ok(Some(text)),
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
            Err(format!("`{text}`: a state is a directory or `redis://HOST:PORT/DB` (`{scheme}://` is not supported)"))
        }
        _ => Ok(None),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The embedded default: one redb database file (or memory), one writer.
pub struct RedbStore {
    db: Database,
    /// The position of the next tracking record; held through a commit, which it numbers.
    next_seq: std::sync::Mutex<u64>,
    /// Whether [`SEEN`] holds any id.
    legacy_ids: bool,
    /// The tables as of the last commit, opened at the first lookup after it: a lookup is
    /// then one B-tree search, where a transaction and a table opened per lookup cost an
    /// eighth of a replay's instructions. A commit drops them (they would not see it).
    reader: std::sync::Mutex<Option<Reader>>,
}

/// The tables lookups read, from one read transaction.
struct Reader {
    seen: redb::ReadOnlyTable<IdKey, ()>,
    units: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    fanout: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    budgets: redb::ReadOnlyTable<&'static str, i64>,
}

impl RedbStore {
    fn read<T>(&self, lookup: impl FnOnce(&Reader) -> Result<T, redb::StorageError>) -> Result<T, String> {
        let mut reader = self.reader.lock().map_err(|_| "a lookup of the outreach state panicked".to_string())?;
        if reader.is_none() {
            let r = self.db.begin_read().map_err(err)?;
            *reader = Some(Reader {
                seen: r.open_table(SEEN).map_err(err)?,
                units: r.open_table(UNITS).map_err(err)?,
                fanout: r.open_table(FANOUT).map_err(err)?,
                budgets: r.open_table(BUDGETS).map_err(err)?,
            });
        }
        lookup(reader.as_ref().expect("opened above")).map_err(err)
    }
}

impl RedbStore {
    /// Opens (or creates) `DIR/outreach.redb`; `None`: in memory, gone at the end.
    pub fn open(dir: Option<&Path>) -> Result<RedbStore, String> {
        let db = match dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create state directory {}: {e}", dir.display()))?;
                Database::create(dir.join("outreach.redb")).map_err(err)?
            }
            None => Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(err)?,
        };
        let w = db.begin_write().map_err(err)?;
        let next_seq;
        let legacy_ids;
        {
            if w.open_table(UNITS_BY_INDEX).map_err(err)?.first().map_err(err)?.is_some() {
                return Err("written by an earlier ruledeck (windows by index, not by name); start a new state".into());
            }
            w.delete_table(UNITS_BY_INDEX).map_err(err)?;
            let mut seen = w.open_table(SEEN).map_err(err)?;
            {
                let old = w.open_table(SEEN_AS_TEXT).map_err(err)?;
                for row in old.iter().map_err(err)? {
                    seen.insert(id_key(row.map_err(err)?.0.value()), ()).map_err(err)?;
                }
            }
            legacy_ids = seen.first().map_err(err)?.is_some();
            drop(seen);
            w.delete_table(SEEN_AS_TEXT).map_err(err)?;
            w.open_table(UNITS).map_err(err)?;
            w.open_table(BUDGETS).map_err(err)?;
            w.open_table(FANOUT).map_err(err)?;
            w.open_table(WINDOW_STARTS).map_err(err)?;
            let mut t = w.open_table(TRACKING).map_err(err)?;
            {
                let old = w.open_table(TRACKING_BY_RECORD).map_err(err)?;
                for row in old.iter().map_err(err)? {
                    let (seq, text) = row.map_err(err)?;
                    t.insert(seq.value(), text.value()).map_err(err)?;
                }
            }
            w.delete_table(TRACKING_BY_RECORD).map_err(err)?;
            next_seq = match t.last().map_err(err)? {
                Some((first, records)) => first.value() + records.value().split('\n').count() as u64,
                None => 0,
            };
        }
        w.commit().map_err(err)?;
        Ok(RedbStore { db, next_seq: std::sync::Mutex::new(next_seq), legacy_ids, reader: std::sync::Mutex::new(None) })
    }
}

impl Store for RedbStore {
    fn has_legacy_ids(&self) -> bool {
        self.legacy_ids
    }

    fn seen(&self, id: &str) -> Result<bool, String> {
        self.read(|r| Ok(r.seen.get(id_key(id.as_bytes()))?.is_some()))
    }

    fn unit(&self, key: &str) -> Result<Versioned, String> {
        let bytes = self.read(|r| Ok(r.units.get(key.as_bytes())?.map(|v| v.value().to_vec())))?;
        Ok(Versioned { bytes, version: 0 })
    }

    fn index(&self, key: &str) -> Result<Versioned, String> {
        let bytes = self.read(|r| Ok(r.fanout.get(key.as_bytes())?.map(|v| v.value().to_vec())))?;
        Ok(Versioned { bytes, version: 0 })
    }

    fn spent(&self, action: &str) -> Result<i64, String> {
        self.read(|r| Ok(r.budgets.get(action)?.map_or(0, |v| v.value())))
    }

    fn commit(&self, writes: &Writes) -> Result<Committed, String> {
        let mut next_seq = self.next_seq.lock().map_err(|_| "a commit of the outreach state panicked".to_string())?;
        // One writer (this process holds the database): what the batch read is still current.
        let w = self.db.begin_write().map_err(err)?;
        {
            let mut units = w.open_table(UNITS).map_err(err)?;
            for (key, bytes, _) in &writes.units {
                units.insert(key.as_bytes(), bytes.as_slice()).map_err(err)?;
            }
            let mut index = w.open_table(FANOUT).map_err(err)?;
            for (key, bytes, _) in &writes.index {
                match bytes {
                    Some(bytes) => index.insert(key.as_bytes(), bytes.as_slice()).map(drop).map_err(err)?,
                    None => index.remove(key.as_bytes()).map(drop).map_err(err)?,
                }
            }
            let mut budgets = w.open_table(BUDGETS).map_err(err)?;
            for (action, added, _) in &writes.budgets {
                let spent = budgets.get(action.as_str()).map_err(err)?.map_or(0, |v| v.value());
                budgets.insert(action.as_str(), spent + added).map_err(err)?;
            }
            if !writes.records.is_empty() {
                let mut tracking = w.open_table(TRACKING).map_err(err)?;
                let mut lines = String::with_capacity(writes.records.iter().map(|r| r.get().len() + 1).sum());
                for r in &writes.records {
                    if !lines.is_empty() {
                        lines.push('\n');
                    }
                    lines.push_str(r.get());
                }
                tracking.insert(*next_seq, lines.as_str()).map_err(err)?;
            }
            let mut starts = w.open_table(WINDOW_STARTS).map_err(err)?;
            for (name, start) in &writes.window_starts {
                if starts.get(name.as_str()).map_err(err)?.is_none() {
                    starts.insert(name.as_str(), start).map_err(err)?;
                }
            }
            starts.insert(STARTS_KEPT, 0).map_err(err)?;
        }
        w.commit().map_err(err)?;
        *next_seq += writes.records.len() as u64;
        // Lookups from now on must see this commit (and the old snapshot's pages can be
        // reused). Lookups made while it ran read the state before it, which is what a
        // runtime deciding the next batch meanwhile expects (it reads the batch itself).
        *self.reader.lock().map_err(|_| "a lookup of the outreach state panicked".to_string())? = None;
        Ok(Committed::Done)
    }

    fn tracking_since(&self, from: u64) -> Result<Vec<(u64, String)>, String> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(TRACKING).map_err(err)?;
        // From the commit that holds record `from`, if any.
        let first =
            t.range(..=from).map_err(err)?.next_back().transpose().map_err(err)?.map_or(from, |(k, _)| k.value());
        let mut out = Vec::new();
        for row in t.range(first..).map_err(err)? {
            let (seq, text) = row.map_err(err)?;
            for (i, record) in text.value().split('\n').enumerate() {
                let seq = seq.value() + i as u64;
                if seq >= from {
                    out.push((seq, record.to_string()));
                }
            }
        }
        Ok(out)
    }

    fn window_starts(&self) -> Result<Option<HashMap<String, i64>>, String> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(WINDOW_STARTS).map_err(err)?;
        let mut starts = HashMap::new();
        for row in t.iter().map_err(err)? {
            let (name, start) = row.map_err(err)?;
            starts.insert(name.value().to_string(), start.value());
        }
        Ok(starts.remove(STARTS_KEPT).map(|_| starts))
    }

    fn fresh(&self) -> Result<bool, String> {
        self.read(|r| Ok(r.seen.first()?.is_none() && r.units.first()?.is_none()))
    }

    fn sole_writer(&self) -> bool {
        true
    }
}

/// Shared state on Redis, for several deciders: keys under a prefix, one hash of unit states
/// (which hold their events' ids) and one of their versions, a hash of budgets, a list of
/// tracking records (and, in a state written before ids were kept in unit states, a set of
/// the ids ingested then, read but never written). Every commit is one Lua script, which
/// Redis runs atomically: it checks the versions and budget room the batch relied on and
/// writes everything, or nothing.
/// Durability is Redis's own (run it with `appendonly yes` and `appendfsync always` for a
/// commit to survive a power cut; `everysec` may lose the last second).
pub struct RedisStore {
    /// Reads take `&self` (the tracking store reads through a shared runtime).
    conn: std::sync::Mutex<redis::Connection>,
    prefix: String,
    /// Whether the state has the set of ids of earlier builds.
    legacy_ids: bool,
}

/// KEYS: units, versions, budgets, tracking, fanout, fanout versions, window starts.
/// ARGV: counts (units, budgets, records, index values, window starts), then
/// (key, bytes, expected version) per unit, (action, added, limit) per budget, the records,
/// (key, bytes or empty for none left, expected version) per index value, (name, start) per
/// window start (a start already kept must be the same).
const COMMIT_SCRIPT: &str = r#"
local n_units, n_budgets, n_records, n_index, n_starts = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local at = 6
local units_at = at
at = at + 3 * n_units
local budgets_at = at
at = at + 3 * n_budgets
local records_at = at
at = at + n_records
local index_at = at
at = at + 3 * n_index
local starts_at = at
for i = 0, n_units - 1 do
  local key, expected = ARGV[units_at + 3 * i], ARGV[units_at + 3 * i + 2]
  local version = redis.call('HGET', KEYS[2], key) or '0'
  if version ~= expected then return {'conflict', 'unit ' .. key} end
end
for i = 0, n_index - 1 do
  local key, expected = ARGV[index_at + 3 * i], ARGV[index_at + 3 * i + 2]
  local version = redis.call('HGET', KEYS[6], key) or '0'
  if version ~= expected then return {'conflict', 'fan-out index ' .. key} end
end
for i = 0, n_budgets - 1 do
  local action, added, limit = ARGV[budgets_at + 3 * i], tonumber(ARGV[budgets_at + 3 * i + 1]), tonumber(ARGV[budgets_at + 3 * i + 2])
  local spent = tonumber(redis.call('HGET', KEYS[3], action) or '0')
  if spent + added > limit then return {'conflict', 'budget ' .. action} end
end
for i = 0, n_starts - 1 do
  local name, start = ARGV[starts_at + 2 * i], ARGV[starts_at + 2 * i + 1]
  local kept = redis.call('HGET', KEYS[7], name)
  if kept and kept ~= start then return {'conflict', 'window ' .. name} end
end
for i = 0, n_units - 1 do
  local key = ARGV[units_at + 3 * i]
  redis.call('HSET', KEYS[1], key, ARGV[units_at + 3 * i + 1])
  redis.call('HINCRBY', KEYS[2], key, 1)
end
for i = 0, n_budgets - 1 do redis.call('HINCRBY', KEYS[3], ARGV[budgets_at + 3 * i], ARGV[budgets_at + 3 * i + 1]) end
for i = 0, n_records - 1 do redis.call('RPUSH', KEYS[4], ARGV[records_at + i]) end
for i = 0, n_index - 1 do
  local key, bytes = ARGV[index_at + 3 * i], ARGV[index_at + 3 * i + 1]
  if bytes == '' then redis.call('HDEL', KEYS[5], key) else redis.call('HSET', KEYS[5], key, bytes) end
  redis.call('HINCRBY', KEYS[6], key, 1)
end
for i = 0, n_starts - 1 do redis.call('HSET', KEYS[7], ARGV[starts_at + 2 * i], ARGV[starts_at + 2 * i + 1]) end
redis.call('HSET', KEYS[7], '', '0')
return {'ok', ''}
"#;

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT/DB`), keeping every key under `prefix`. Every
    /// call waits at most [`REDIS_STATE_TIMEOUT_MS`], so a Redis that stops answering fails
    /// the batch rather than hanging it.
    ///
    /// [`REDIS_STATE_TIMEOUT_MS`]: crate::limits::REDIS_STATE_TIMEOUT_MS
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore, String> {
        let timeout = std::time::Duration::from_millis(crate::limits::REDIS_STATE_TIMEOUT_MS);
        let client = redis::Client::open(url).map_err(|e| format!("redis state `{url}`: {e}"))?;
        let mut conn = client.get_connection_with_timeout(timeout).map_err(|e| format!("redis state `{url}`: {e}"))?;
        conn.set_read_timeout(Some(timeout)).map_err(|e| format!("redis state `{url}`: {e}"))?;
        conn.set_write_timeout(Some(timeout)).map_err(|e| format!("redis state `{url}`: {e}"))?;
        redis::cmd("PING").query::<String>(&mut conn).map_err(|e| format!("redis state `{url}`: {e}"))?;
        let mut store = RedisStore { conn: std::sync::Mutex::new(conn), prefix: prefix.to_string(), legacy_ids: false };
        let legacy: u64 = store.query(redis::cmd("EXISTS").arg(store.key("seen")))?;
        store.legacy_ids = legacy == 1;
        Ok(store)
    }

    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.prefix)
    }

    /// A value of a versioned hash and its version, both from the same commit (MULTI/EXEC).
    fn versioned(&self, values: &str, versions: &str, key: &str) -> Result<Versioned, String> {
        let mut pipe = redis::pipe();
        pipe.atomic().hget(self.key(values), key).hget(self.key(versions), key);
        let mut conn = self.conn.lock().map_err(|_| "redis state: a connection user panicked".to_string())?;
        let (bytes, version): (Option<Vec<u8>>, Option<u64>) =
            pipe.query(&mut *conn).map_err(|e| format!("redis state: {e}"))?;
        Ok(Versioned { bytes, version: version.unwrap_or(0) })
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut conn = self.conn.lock().map_err(|_| "redis state: a connection user panicked".to_string())?;
        cmd.query(&mut *conn).map_err(|e| format!("redis state: {e}"))
    }
}

impl Store for RedisStore {
    fn has_legacy_ids(&self) -> bool {
        self.legacy_ids
    }

    fn seen(&self, id: &str) -> Result<bool, String> {
        self.query(redis::cmd("SISMEMBER").arg(self.key("seen")).arg(id))
    }

    fn unit(&self, key: &str) -> Result<Versioned, String> {
        self.versioned("units", "versions", key)
    }

    fn index(&self, key: &str) -> Result<Versioned, String> {
        self.versioned("fanout", "fanout_versions", key)
    }

    fn spent(&self, action: &str) -> Result<i64, String> {
        let spent: Option<i64> = self.query(redis::cmd("HGET").arg(self.key("budgets")).arg(action))?;
        Ok(spent.unwrap_or(0))
    }

    fn commit(&self, writes: &Writes) -> Result<Committed, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COMMIT_SCRIPT).arg(7);
        for what in ["units", "versions", "budgets", "tracking", "fanout", "fanout_versions", "window_starts"] {
            cmd.arg(self.key(what));
        }
        cmd.arg(writes.units.len())
            .arg(writes.budgets.len())
            .arg(writes.records.len())
            .arg(writes.index.len())
            .arg(writes.window_starts.len());
        for (key, bytes, version) in &writes.units {
            cmd.arg(key).arg(bytes.as_slice()).arg(version.to_string());
        }
        for (action, added, limit) in &writes.budgets {
            cmd.arg(action).arg(*added).arg(*limit);
        }
        for r in &writes.records {
            cmd.arg(r.get());
        }
        for (key, bytes, version) in &writes.index {
            cmd.arg(key).arg(bytes.as_deref().unwrap_or_default()).arg(version.to_string());
        }
        for (name, start) in &writes.window_starts {
            cmd.arg(name).arg(start.to_string());
        }
        let (status, what): (String, String) = self.query(&cmd)?;
        Ok(if status == "ok" { Committed::Done } else { Committed::Conflict(what) })
    }

    fn tracking_since(&self, from: u64) -> Result<Vec<(u64, String)>, String> {
        let records: Vec<String> = self.query(redis::cmd("LRANGE").arg(self.key("tracking")).arg(from).arg(-1))?;
        Ok(records.into_iter().enumerate().map(|(i, r)| (from + i as u64, r)).collect())
    }

    fn window_starts(&self) -> Result<Option<HashMap<String, i64>>, String> {
        let mut starts: HashMap<String, i64> = self.query(redis::cmd("HGETALL").arg(self.key("window_starts")))?;
        Ok(starts.remove(STARTS_KEPT).map(|_| starts))
    }

    fn fresh(&self) -> Result<bool, String> {
        let kept: u64 = self.query(redis::cmd("EXISTS").arg(self.key("seen")).arg(self.key("units")))?;
        Ok(kept == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state written by a build that kept event ids as text still knows every id it
    /// ingested once opened by this one (the ids move to their fixed-width keys, once).
    #[test]
    fn ids_kept_as_text_are_moved_and_still_seen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join("outreach.redb")).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut old = w.open_table(SEEN_AS_TEXT).unwrap();
                for id in ["u-1-0", "u-2-7", "évènement \"x\""] {
                    old.insert(id.as_bytes(), ()).unwrap();
                }
            }
            w.commit().unwrap();
        }
        let store = RedbStore::open(Some(dir.path())).unwrap();
        for id in ["u-1-0", "u-2-7", "évènement \"x\""] {
            assert!(store.seen(id).unwrap(), "{id}");
        }
        assert!(!store.seen("u-3-0").unwrap());
        assert!(store.has_legacy_ids());
        drop(store);
        // Reopened: the text table is gone and nothing is moved twice.
        let store = RedbStore::open(Some(dir.path())).unwrap();
        assert!(store.seen("u-2-7").unwrap() && store.has_legacy_ids());
        let r = store.db.begin_read().unwrap();
        assert!(r.open_table(SEEN_AS_TEXT).is_err(), "the old table was deleted");
    }
    fn records(texts: &[&str]) -> Vec<super::super::Record> {
        texts.iter().map(|t| serde_json::value::RawValue::from_string(t.to_string()).unwrap()).collect()
    }

    /// The tracking log is kept a commit per row; a state that kept a row per record has
    /// them moved, and positions run on across both, from any starting point.
    #[test]
    fn tracking_positions_run_across_commits_and_moved_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join("outreach.redb")).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut old = w.open_table(TRACKING_BY_RECORD).unwrap();
                old.insert(0, r#"{"n":0}"#).unwrap();
                old.insert(1, r#"{"n":1}"#).unwrap();
            }
            w.commit().unwrap();
        }
        let store = RedbStore::open(Some(dir.path())).unwrap();
        let batch = |texts: &[&str]| Writes { records: records(texts), ..Writes::default() };
        store.commit(&batch(&[r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#])).unwrap();
        store.commit(&batch(&[])).unwrap();
        drop(store);
        let store = RedbStore::open(Some(dir.path())).unwrap();
        store.commit(&batch(&[r#"{"n":5}"#])).unwrap();
        for from in 0..=7 {
            let got = store.tracking_since(from).unwrap();
            let want: Vec<(u64, String)> = (from..6).map(|n| (n, format!(r#"{{"n":{n}}}"#))).collect();
            assert_eq!(got, want, "from {from}");
        }
        let r = store.db.begin_read().unwrap();
        assert!(r.open_table(TRACKING_BY_RECORD).is_err(), "the old table was deleted");
    }
    /// A state whose ids a build kept in a table of their own still finds them: an event it
    /// ingested then is a duplicate now, though its unit's state holds no id.
    #[test]
    fn ids_kept_apart_by_an_earlier_build_are_still_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join("outreach.redb")).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(SEEN).unwrap().insert(id_key(b"u-0"), ()).unwrap();
            w.commit().unwrap();
        }
        let deck = "entity user key uid\nevent tap by uid { n: int }\n";
        let program = crate::compile(&[("deck.rule", deck)]).unwrap();
        let tags = crate::engine::TagsFile::from_json(serde_json::json!({})).unwrap();
        let mut o = crate::outreach::Outreach::open(program, tags, Some(dir.path())).unwrap();
        for id in ["u-0", "u-1"] {
            let line = format!(r#"{{"id":"{id}","event":"tap","time":"2026-11-21T08:00:00Z","uid":"u","n":1}}"#);
            o.ingest_line(&line).unwrap();
        }
        o.commit().unwrap();
        assert_eq!(o.summary().duplicates, 1);
    }
}
