//! The analysts' tracking store: a SQLite database holding every tracking record and every
//! ingested event, for A/B attribution in SQL.
//!
//! Owns: the schema, and keeping the database a faithful projection of the outreach state.
//! Must not: decide, filter or hold state of its own that the runtime relies on — the redb
//! state stays the one source of truth, and this database can always be rebuilt from it.
//!
//! Crash safety without a distributed commit: records are copied from the state's durable
//! tracking log by position (`seq`), in one SQLite transaction per catch-up, so a crash
//! between the state's commit and this one is repaired by the next catch-up (which starts
//! after the largest `seq` present); events are keyed by their id and inserted with
//! `INSERT OR IGNORE`, so feeding a log twice stores each event once.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::event::{EventDoc, Scalar};
use super::{event_id, unit_text, Outreach, OutreachError};

/// The schema. Times are kept both as RFC 3339 text and as Unix seconds (`*_unix`), which
/// compare and subtract in SQL.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    seq        INTEGER PRIMARY KEY,  -- position in the state's tracking log
    event      TEXT,
    unit       TEXT,
    scene      TEXT,
    instance   TEXT,
    release    INTEGER,
    version    INTEGER,
    strategy   TEXT,
    experiment TEXT,
    grp        TEXT,                 -- the experiment group (`group` is an SQL keyword)
    bucket     INTEGER,
    channel    TEXT,
    action     TEXT,
    payload    TEXT,                 -- JSON
    outcome    TEXT NOT NULL,        -- sent | held | suppressed | dropped | control | late | invalid
    reason     TEXT,
    at         TEXT,
    at_unix    INTEGER,
    tags       TEXT,                 -- JSON: the tags the decision read, sensitive ones masked
    record     TEXT NOT NULL         -- the whole record as JSON
);
CREATE INDEX IF NOT EXISTS records_by_group ON records (experiment, grp, unit);
CREATE INDEX IF NOT EXISTS records_by_unit ON records (unit, at_unix);
CREATE TABLE IF NOT EXISTS events (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    unit       TEXT NOT NULL,
    time       TEXT NOT NULL,
    time_unix  INTEGER NOT NULL,
    fields     TEXT NOT NULL         -- JSON: the declared fields
);
CREATE INDEX IF NOT EXISTS events_by_unit ON events (unit, kind, time_unix);
CREATE TABLE IF NOT EXISTS meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL         -- `state`: the state this database projects
);
";

fn sql_err(e: rusqlite::Error) -> OutreachError {
    OutreachError(format!("tracking database: {e}"))
}

/// A SQLite tracking database (`replay --tracking-db FILE`).
pub struct TrackingDb {
    conn: Connection,
    /// Event lines seen since the last sync, stored with the next one.
    pending_events: Vec<(String, String, String, String, i64, String)>,
}

impl TrackingDb {
    /// Opens (or creates) the database at `path` as the projection of the state named
    /// `state` (a state directory's canonical path, or a Redis URL and prefix). Records are
    /// copied by their position in that state's tracking log, so a database that follows
    /// one state is refused for another.
    pub fn open(path: &Path, state: &str) -> Result<TrackingDb, OutreachError> {
        let conn = Connection::open(path).map_err(sql_err)?;
        // Durable commits: a write-ahead log synced at every commit.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql_err)?;
        conn.execute_batch(SCHEMA).map_err(sql_err)?;
        let follows: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'state'", [], |r| r.get(0))
            .optional()
            .map_err(sql_err)?;
        match follows {
            Some(follows) if follows != state => {
                return Err(OutreachError(format!(
                    "this tracking database follows the state `{follows}`, not `{state}`: give each state its own database"
                )));
            }
            Some(_) => {}
            None => {
                conn.execute("INSERT INTO meta (key, value) VALUES ('state', ?1)", [state]).map_err(sql_err)?;
            }
        }
        Ok(TrackingDb { conn, pending_events: Vec::new() })
    }

    /// Notes one event line for the events table, if it names a declared kind, a valid time
    /// and its unit (the declared fields it carries are kept as given; a line the runtime
    /// refuses for a missing or ill-typed field may still be stored here; a nested value,
    /// which no field takes, as null).
    pub fn note_event(&mut self, outreach: &Outreach, line: &str) {
        let Ok(Some(obj)) = EventDoc::parse(line) else { return };
        let program = outreach.program();
        let Some(kind) = obj.str("event") else { return };
        let Some(ev) = program.outreach.events.iter().find(|e| e.name == kind) else { return };
        let Some(time) = obj.str("time") else { return };
        let Some(time_unix) = crate::time::parse_data(time) else { return };
        let key = &program.entities[ev.entity as usize].key;
        let Some(unit) = unit_text(obj.get(key)) else { return };
        let scalar = |v: &Scalar<'_>| match v {
            Scalar::Str(s) => Value::String(s.to_string()),
            Scalar::Num(n) => Value::Number(n.clone()),
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Null => Value::Null,
            // Not a value any field takes: the runtime refuses the line.
            Scalar::Nested => Value::Null,
        };
        let fields: serde_json::Map<String, Value> =
            ev.fields.iter().filter_map(|f| Some((f.name.clone(), scalar(obj.get(&f.name)?)))).collect();
        let id = event_id(line, &obj);
        self.pending_events.push((
            id,
            kind.to_string(),
            unit,
            time.to_string(),
            time_unix,
            Value::Object(fields).to_string(),
        ));
    }

    /// Copies every committed record the database does not hold yet, and the events noted
    /// since the last sync, in one transaction. Returns how many records it copied.
    pub fn sync(&mut self, outreach: &Outreach) -> Result<usize, OutreachError> {
        let next: u64 = self
            .conn
            .query_row("SELECT MAX(seq) FROM records", [], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map_err(sql_err)?
            .flatten()
            .map_or(0, |max| max as u64 + 1);
        let records = outreach.tracking_since(next)?;
        let tx = self.conn.transaction().map_err(sql_err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records (seq, event, unit, scene, instance, release, version, strategy, experiment,
                        grp, bucket, channel, action, payload, outcome, reason, at, at_unix, tags, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
                )
                .map_err(sql_err)?;
            for (seq, r) in &records {
                let text = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                let int = |k: &str| r.get(k).and_then(Value::as_i64);
                let json = |k: &str| r.get(k).filter(|v| !v.is_null()).map(Value::to_string);
                let at = text("at");
                let at_unix = at.as_deref().and_then(crate::time::parse_data);
                insert
                    .execute(params![
                        *seq as i64,
                        text("event"),
                        text("unit"),
                        text("scene"),
                        text("instance"),
                        int("release"),
                        int("version"),
                        text("strategy"),
                        text("experiment"),
                        text("group"),
                        int("bucket"),
                        text("channel"),
                        text("action"),
                        json("payload"),
                        text("outcome").unwrap_or_default(),
                        text("reason"),
                        at,
                        at_unix,
                        json("tags"),
                        r.to_string(),
                    ])
                    .map_err(sql_err)?;
            }
            let mut event = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (id, kind, unit, time, time_unix, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql_err)?;
            for (id, kind, unit, time, time_unix, fields) in &self.pending_events {
                event.execute(params![id, kind, unit, time, time_unix, fields]).map_err(sql_err)?;
            }
        }
        tx.commit().map_err(sql_err)?;
        self.pending_events.clear();
        Ok(records.len())
    }

    /// The connection, for queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
