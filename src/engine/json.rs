//! The JSON formats hosts and the CLI speak (documented in docs/runtime.md): request documents, provider values, results and traces,
//! and the file-backed provider behind `--tags`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::{Loaded, Provider, TagQuery};
use crate::compile::program::{Program, TagInfo};
use crate::vm::request::SlotState;
use crate::vm::value::TagValue;
use crate::vm::{FieldValue, Input, Outcome, Request, StrategyNote, TraceEvent};

/// Converts a JSON value into a VM input; list elements go into `scratch`. `Err` names the
/// kind of JSON that cannot be a tag value. `null` is not handled here: it means missing.
pub fn input_from_json<'a>(v: &'a Value, scratch: &'a mut Vec<Input<'a>>) -> Result<Input<'a>, &'static str> {
    scalar_input(v).or_else(|e| match v {
        Value::Array(items) => {
            for item in items {
                scratch.push(scalar_input(item)?);
            }
            Ok(Input::List(&scratch[..]))
        }
        _ => Err(e),
    })
}

fn scalar_input(v: &Value) -> Result<Input<'_>, &'static str> {
    match v {
        Value::Bool(b) => Ok(Input::Bool(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Input::Int(i)),
            (None, Some(f)) => Ok(Input::Float(f)),
            (None, None) => Err("a number out of range"),
        },
        Value::String(s) => Ok(Input::Text(s)),
        Value::Null => Err("null"),
        Value::Array(_) => Err("a list"),
        Value::Object(_) => Err("an object"),
    }
}

/// A time given as data: RFC 3339 text (rounded down to the second) or whole seconds.
pub(crate) fn data_time(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => crate::time::parse_data(s),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// A decision's result object without its trace, written straight from the outcome: the
/// one definition of that format. [`outcome_json`] makes it a tree; a host that writes many
/// results (`eval --inputs`) serializes it directly, with no tree to build and drop.
pub struct OutcomeDoc<'o, 'r> {
    /// The finished request's outcome.
    pub outcome: &'o Outcome<'r>,
    /// The release and version, for a result from a store: after the outcome's members.
    pub stamp: Option<(&'o Value, &'o Value)>,
}

impl Serialize for OutcomeDoc<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (o, req) = (self.outcome, self.outcome.request());
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("scene", req.scene_name())?;
        map.serialize_entry("instance", req.instance_name())?;
        map.serialize_entry("decision", &o.decided().then_some(DecisionDoc(o)))?;
        map.serialize_entry("strategy", &o.strategy())?;
        map.serialize_entry("experiment", &o.experiment())?;
        map.serialize_entry("group", &o.group())?;
        map.serialize_entry("bucket", &o.bucket())?;
        if let Some((release, version)) = self.stamp {
            map.serialize_entry("release", release)?;
            map.serialize_entry("version", version)?;
        }
        map.end()
    }
}

/// The decision's fields as a JSON object, in declaration order.
struct DecisionDoc<'o, 'r>(&'o Outcome<'r>);

impl Serialize for DecisionDoc<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.fields().map(|(name, v)| (name, FieldDoc(v))))
    }
}

/// One decision field's value as JSON, as result objects hold it (see [`FieldDoc`]).
pub fn field_json(v: &FieldValue<'_>) -> Value {
    // Serializing into a tree cannot fail.
    serde_json::to_value(FieldDoc(v.clone())).unwrap_or(Value::Null)
}

/// One field value: numbers and bools as themselves (a float that is not finite as `null`),
/// text and enum members as strings, times in RFC 3339.
struct FieldDoc<'a>(FieldValue<'a>);

impl Serialize for FieldDoc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            FieldValue::Int(i) => s.serialize_i64(*i),
            FieldValue::Float(f) if f.is_finite() => s.serialize_f64(*f),
            FieldValue::Float(_) => s.serialize_none(),
            FieldValue::Text(t) | FieldValue::Enum(t) => s.serialize_str(t),
            FieldValue::Bool(b) => s.serialize_bool(*b),
            FieldValue::Time(t) => s.serialize_str(&crate::time::format(*t)),
            FieldValue::List(items) => s.collect_seq(items.iter().map(|v| FieldDoc(v.clone()))),
        }
    }
}

pub(crate) fn tag_value_json(v: &TagValue, ty: &crate::compile::program::Ty, enums: &[Vec<String>]) -> Value {
    use crate::compile::program::Ty;
    let member = |ty: Ty, e: u32| match ty {
        Ty::Enum(id) => enums.get(id as usize).and_then(|m| m.get(e as usize)).map_or(Value::Null, |m| json!(m)),
        _ => Value::Null,
    };
    match v {
        TagValue::Int(i) => json!(i),
        TagValue::Float(f) => json!(f),
        TagValue::Text(s) => json!(s),
        TagValue::Bool(b) => json!(b),
        TagValue::Time(t) => json!(crate::time::format(*t)),
        TagValue::Enum(e) => member(*ty, *e),
        TagValue::List(items) => {
            let elem = match ty {
                Ty::List(e) => e.ty(),
                other => *other,
            };
            Value::Array(
                items
                    .iter()
                    .map(|i| match i {
                        crate::compile::program::Scalar::Int(x) => json!(x),
                        crate::compile::program::Scalar::Float(x) => json!(x),
                        crate::compile::program::Scalar::Text(x) => json!(x),
                        crate::compile::program::Scalar::Bool(x) => json!(x),
                        crate::compile::program::Scalar::Time(x) => json!(crate::time::format(*x)),
                        crate::compile::program::Scalar::Enum(x) => member(elem, *x),
                    })
                    .collect(),
            )
        }
    }
}

pub(crate) fn note_text(note: StrategyNote) -> &'static str {
    match note {
        StrategyNote::NotTaken => "not taken",
        StrategyNote::Decided => "decided",
        StrategyNote::DecisionUnknown => "decision value unknown",
        StrategyNote::UnitMissing => "experiment unit missing",
        StrategyNote::OutsideLayerRange => "outside the experiment's layer range",
        StrategyNote::NotInExperiment => "bucket not covered by any group",
    }
}

/// What traces and decision logs show instead of the value of a tag declared `sensitive`.
pub const SENSITIVE: &str = "<sensitive>";

/// The result document: decision, strategy, experiment, group, bucket; with `explain`, the
/// trace of every tag read, rule evaluated and strategy tried, in order.
pub fn outcome_json(outcome: &Outcome<'_>, explain: bool) -> Value {
    let req = outcome.request();
    let p = req.program();
    // Serializing into a tree cannot fail: every key is a string.
    let mut doc = serde_json::to_value(OutcomeDoc { outcome, stamp: None }).unwrap_or(Value::Null);
    if explain {
        let inst = &p.scenes[req.scene as usize].instances[req.instance as usize];
        let trace: Vec<Value> = outcome
            .trace()
            .iter()
            .map(|event| match *event {
                TraceEvent::Tag { tag } => {
                    let info = &p.tags[tag as usize];
                    let slot = &req.slots[tag as usize];
                    match &slot.missing {
                        Some(reason) => json!({"tag": info.name, "missing": reason.to_string()}),
                        // A sensitive value never leaves in full; that it was present still shows.
                        None if info.sensitive => json!({"tag": info.name, "value": SENSITIVE}),
                        None => json!({"tag": info.name, "value": tag_value_json(&slot.value, &info.ty, &p.enums)}),
                    }
                }
                TraceEvent::Rule { rule, result } => json!({"rule": p.rules[rule as usize].name, "result": result}),
                TraceEvent::Strategy { strategy, when, note, bucket } => {
                    let mut e = json!({"strategy": inst.strategies[strategy as usize].name, "when": when, "outcome": note_text(note)});
                    if let Some(b) = bucket {
                        e["bucket"] = json!(b);
                    }
                    e
                }
                TraceEvent::Default { note } => json!({"strategy": "default", "outcome": note_text(note)}),
            })
            .collect();
        doc["trace"] = Value::Array(trace);
    }
    doc
}

/// The tags a finished request read or was given, as `{"user.risk_score": 12, …}` in the
/// deck's declaration order: the value, `null` when it was missing (no value, failed, wrong
/// type), and [`SENSITIVE`] for a tag declared `sensitive` that had a value. For records
/// such as the service's decision log.
pub fn tags_read_json(req: &Request<'_>) -> Value {
    let p = req.program();
    let mut map = Map::new();
    for (info, slot) in p.tags.iter().zip(&req.slots) {
        let value = match slot.state {
            SlotState::NotLoaded => continue,
            SlotState::Missing => None,
            SlotState::Loaded => Some(&slot.value),
        };
        map.insert(info.name.clone(), read_json(p, info, value));
    }
    Value::Object(map)
}

/// One tag a finished request read: its index, and its value (`None`: missing).
#[cfg(feature = "outreach")]
pub(crate) type TagRead = (u32, Option<TagValue>);

/// The tags a finished request read, kept to be written later without the request (a
/// tracking record is serialized on the thread that commits it): [`TagsReadJson`] writes
/// them as [`tags_read_json`] does.
#[cfg(feature = "outreach")]
pub(crate) fn tags_read(req: &Request<'_>) -> Vec<TagRead> {
    let reads = req.slots.iter().enumerate().filter_map(|(tag, slot)| match slot.state {
        SlotState::NotLoaded => None,
        SlotState::Missing => Some((tag as u32, None)),
        SlotState::Loaded => Some((tag as u32, Some(slot.value.clone()))),
    });
    reads.collect()
}

/// Tags kept by [`tags_read`], serialized as [`tags_read_json`] writes them.
#[cfg(feature = "outreach")]
pub(crate) struct TagsReadJson<'a>(pub &'a Program, pub &'a [TagRead]);

#[cfg(feature = "outreach")]
impl Serialize for TagsReadJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let TagsReadJson(p, reads) = *self;
        let mut m = serializer.serialize_map(Some(reads.len()))?;
        for (tag, value) in reads {
            let info = &p.tags[*tag as usize];
            m.serialize_entry(&info.name, &read_json(p, info, value.as_ref()))?;
        }
        m.end()
    }
}

/// A read tag's value in a record: `null` when missing, [`SENSITIVE`] for a sensitive one.
fn read_json(p: &Program, info: &TagInfo, value: Option<&TagValue>) -> Value {
    match value {
        None => Value::Null,
        Some(_) if info.sensitive => Value::String(SENSITIVE.into()),
        Some(v) => tag_value_json(v, &info.ty, &p.enums),
    }
}

/// The file-backed provider of `--tags FILE.json`:
/// `{"user": {"u-1001": {"risk_score": 12, "lifecycle": "active"}}, "item": {…}}`.
/// A tag that is not in the file (or is `null`) is missing.
#[derive(Debug)]
pub struct TagsFile {
    entities: Map<String, Value>,
}

impl TagsFile {
    /// Validates the document's shape: entity → key → field → value.
    pub fn from_json(doc: Value) -> Result<TagsFile, String> {
        let Value::Object(entities) = doc else {
            return Err("the tags file must be a JSON object of entities".into());
        };
        for (entity, keys) in &entities {
            let Value::Object(keys) = keys else {
                return Err(format!("`{entity}` must map keys to objects of tag values"));
            };
            if let Some((key, _)) = keys.iter().find(|(_, fields)| !fields.is_object()) {
                return Err(format!("`{entity}.{key}` must be an object of tag values"));
            }
        }
        Ok(TagsFile { entities })
    }
}

impl TagsFile {
    /// Entities and fields in the file that no tag of `program` declares, as warnings: a
    /// typo there would otherwise read silently as "no value". Sorted, so output is stable.
    pub fn unknown_names(&self, program: &crate::compile::program::Program) -> Vec<String> {
        use crate::diagnostics::did_you_mean;
        let mut warnings = Vec::new();
        fn declared<'p>(
            program: &'p crate::compile::program::Program,
            entity: &'p str,
        ) -> impl Iterator<Item = &'p str> + 'p {
            program
                .tags
                .iter()
                .filter_map(move |t| t.name.split_once('.').filter(|(e, _)| *e == entity).map(|(_, f)| f))
        }
        let entities: Vec<&str> = program
            .entities
            .iter()
            .map(|e| e.name.as_str())
            .filter(|e| declared(program, e).next().is_some())
            .collect();
        let mut names: Vec<&String> = self.entities.keys().collect();
        names.sort();
        for entity in names {
            if !entities.contains(&entity.as_str()) {
                let hint = did_you_mean(entity, entities.iter().copied())
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                warnings.push(format!("entity `{entity}` has no tags in the deck, so its data is never read{hint}"));
                continue;
            }
            let mut fields: Vec<&str> = self.entities[entity]
                .as_object()
                .into_iter()
                .flat_map(|keys| keys.values())
                .filter_map(Value::as_object)
                .flat_map(|fields| fields.keys().map(String::as_str))
                .collect();
            fields.sort_unstable();
            fields.dedup();
            for field in fields {
                if !declared(program, entity).any(|f| f == field) {
                    let hint = did_you_mean(field, declared(program, entity))
                        .map_or(String::new(), |s| format!("; did you mean `{entity}.{s}`?"));
                    warnings.push(format!("no tag `{entity}.{field}` is declared, so this field is never read{hint}"));
                }
            }
        }
        warnings
    }
}

impl Provider for TagsFile {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        queries
            .iter()
            .map(|q| match self.entities.get(q.entity).and_then(|keys| keys.get(q.key)).and_then(|f| f.get(q.field)) {
                None | Some(Value::Null) => Loaded::Missing,
                Some(v) => Loaded::Value(v.clone()),
            })
            .collect()
    }
}

/// Parses JSON as serde_json does, but refuses an object with a key twice (serde_json keeps
/// the last one silently: a second `"u-1"` in a tags file would replace the first user's
/// data). The error names the key and its line and column.
pub fn parse_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Builds a [`Value`] like `Value`'s own `Deserialize`, checking object keys for duplicates.
#[derive(Clone, Copy)]
pub(super) struct Strict;

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::from(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(Value::from(u))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::from(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?} (each key may appear once in an object; merge the two entries)"
                )));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The result object written straight from an outcome, pinned here for every kind of
    /// field and for a stamp, is byte for byte what serializing `outcome_json`'s tree gives.
    #[test]
    fn result_objects_written_directly_equal_the_tree() {
        let src = "entity user key uid\ntag user.n: int from \"p\"\n\
                   scene s { keys uid instance i -> { i: int, f: float, w: float, t: text, e: enum(a, b), b: bool, \
                   at: time, l: list<int>, m: list<text> } {\n\
                   strategy x when user.n > 0 => { i: user.n, f: 2.5, w: 3.0, t: \"q\\\"uote\", e: b, b: true, \
                   at: @2026-11-21T08:00:00Z, l: [1, 5], m: [] }\n\
                   default => { i: 0, f: 0.0, w: 0.0, t: \"\", e: a, b: false, at: @1970-01-01T00:00:00Z, l: [], m: [\"x\"] } } }\n";
        let p = crate::compile(&[("deck.rule", src)]).unwrap();
        let (release, version) = (json!(7), json!("sha256:ab"));
        let mut written = Vec::new();
        for n in [Some(-4), Some(5), None] {
            let mut req = p.request("s", "i").unwrap();
            req.key("uid", "u-1").unwrap();
            req.supply(p.tag("user.n").unwrap().0, n.map(Input::Int));
            assert_eq!(p.run(&mut req), Ok(crate::vm::Step::Done));
            let outcome = req.outcome();
            for stamp in [None, Some((&release, &version))] {
                let direct = serde_json::to_string(&OutcomeDoc { outcome: &outcome, stamp }).unwrap();
                let mut tree = outcome_json(&outcome, false);
                if let (Some((r, v)), Value::Object(map)) = (stamp, &mut tree) {
                    map.insert("release".into(), r.clone());
                    map.insert("version".into(), v.clone());
                }
                assert_eq!(direct, serde_json::to_string(&tree).unwrap());
                written.push(direct);
            }
        }
        assert_eq!(
            written[3],
            r#"{"scene":"s","instance":"i","decision":{"i":5,"f":2.5,"w":3.0,"t":"q\"uote","e":"b","b":true,"at":"2026-11-21T08:00:00Z","l":[1,5],"m":[]},"strategy":"x","experiment":null,"group":null,"bucket":null,"release":7,"version":"sha256:ab"}"#
        );
        assert!(written[0].contains(r#""decision":{"i":0,"f":0.0,"#), "{}", written[0]);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_place() {
        let e = parse_json(b"{\"user\": {\"u-1\": {\"a\": 1},\n \"u-1\": {\"a\": 2}}}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "duplicate key \"u-1\" (each key may appear once in an object; merge the two entries) at line 2 column 6"
        );
        assert_eq!(
            parse_json(b"{\"a\": [1, 2.5, \"x\", null, true], \"b\": {}}").unwrap(),
            json!({"a": [1, 2.5, "x", null, true], "b": {}})
        );
        assert!(parse_json(b"{} trailing").is_err());
    }
}
