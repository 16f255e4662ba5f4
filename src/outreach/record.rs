//! Tracking records: what the runtime notes for each refused or late line and for each
//! decision and its reach, and their one JSON form (the tracking log's, and what hosts get).
//!
//! Owns: the record's typed form, built while deciding, and its serialization, done once
//! per record when its batch commits (on the committing thread, when there is one). Must
//! not: decide or filter anything; the runtime fills the fields in.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::engine::{TagRead, TagsReadJson};
use crate::Program;

/// A durable tracking record as hosts get it: one JSON object, the same text the state's
/// tracking log keeps (its fields are described in the outreach documentation).
pub type Record = Box<RawValue>;

/// One tracking record before it is serialized.
#[derive(Debug)]
pub(crate) enum Tracked {
    /// A line refused, and why.
    Invalid { reason: String },
    /// A late event; `scene` is set for a fan-out trigger later than its index allows.
    Late { event: String, unit: String, kind: String, scene: Option<String>, at: i64 },
    /// A decision, and what became of its reach.
    Decision(Box<Decision>),
}

/// One instance's decision on one event, for one unit.
#[derive(Debug)]
pub(crate) struct Decision {
    pub event: String,
    pub unit: String,
    pub scene: String,
    pub instance: String,
    pub release: Option<u64>,
    pub version: Option<u64>,
    pub strategy: Option<String>,
    pub experiment: Option<String>,
    pub group: Option<String>,
    pub bucket: Option<u32>,
    /// `None`: the control group (`none`), which reaches nobody.
    pub reach: Option<Reach>,
    /// When it was sent, held to, or judged.
    pub at: i64,
    /// The tags the decision read.
    pub tags: Vec<TagRead>,
}

/// A decision's reach and the filters' verdict on it.
#[derive(Debug)]
pub(crate) struct Reach {
    pub channel: String,
    pub action: String,
    pub payload: Map<String, Value>,
    /// `sent`, `held`, `suppressed` or `dropped`.
    pub outcome: &'static str,
    /// The filter that refused it (`cap`, `dedup`, `budget`, `quiet`).
    pub reason: Option<&'static str>,
}

impl Tracked {
    /// The record's JSON text; `program` is the one that made it (its tags' names).
    pub(crate) fn to_record(&self, program: &Program) -> Record {
        serde_json::value::to_raw_value(&RecordJson(self, program)).expect("records serialize to JSON")
    }
}

/// A record with the program that names its tags.
struct RecordJson<'a>(&'a Tracked, &'a Program);

/// Keys in a fixed order per kind of record (the order of the documented examples).
impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let at = |t: i64| crate::time::format(t);
        match self.0 {
            Tracked::Invalid { reason } => {
                let mut m = serializer.serialize_map(Some(2))?;
                m.serialize_entry("outcome", "invalid")?;
                m.serialize_entry("reason", reason)?;
                m.end()
            }
            Tracked::Late { event, unit, kind, scene, at: time } => {
                let mut m = serializer.serialize_map(None)?;
                m.serialize_entry("event", event)?;
                m.serialize_entry("unit", unit)?;
                m.serialize_entry("kind", kind)?;
                if let Some(scene) = scene {
                    m.serialize_entry("scene", scene)?;
                }
                m.serialize_entry("outcome", "late")?;
                m.serialize_entry("at", &at(*time))?;
                m.end()
            }
            Tracked::Decision(d) => {
                let mut m = serializer.serialize_map(None)?;
                m.serialize_entry("event", &d.event)?;
                m.serialize_entry("unit", &d.unit)?;
                m.serialize_entry("scene", &d.scene)?;
                m.serialize_entry("instance", &d.instance)?;
                m.serialize_entry("release", &d.release)?;
                m.serialize_entry("version", &d.version)?;
                m.serialize_entry("strategy", &d.strategy)?;
                m.serialize_entry("experiment", &d.experiment)?;
                m.serialize_entry("group", &d.group)?;
                m.serialize_entry("bucket", &d.bucket)?;
                match &d.reach {
                    None => m.serialize_entry("outcome", "control")?,
                    Some(r) => {
                        m.serialize_entry("channel", &r.channel)?;
                        m.serialize_entry("action", &r.action)?;
                        m.serialize_entry("payload", &r.payload)?;
                        m.serialize_entry("outcome", r.outcome)?;
                        m.serialize_entry("reason", &r.reason)?;
                    }
                }
                m.serialize_entry("at", &at(d.at))?;
                m.serialize_entry("tags", &TagsReadJson(self.1, &d.tags))?;
                m.end()
            }
        }
    }
}
