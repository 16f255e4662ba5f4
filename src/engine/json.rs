//! The JSON formats of DESIGN §5: request documents, provider values, results and traces,
//! and the file-backed provider behind `--tags`.

use serde_json::{json, Map, Value};

use super::{Loaded, Provider, TagQuery};
use crate::vm::request::parse_time;
use crate::vm::value::TagValue;
use crate::vm::{FieldValue, Input, Outcome, Request, RequestError, StrategyNote, TraceEvent};

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

/// Applies a request document: entity keys by key name (text or integer), pass-through
/// tags by full name, and an optional `now` (RFC 3339). Errors name the field.
pub fn apply_input(req: &mut Request<'_>, input: &Value) -> Result<(), RequestError> {
    let Value::Object(fields) = input else {
        return Err(RequestError::InvalidInput("a request must be a JSON object".into()));
    };
    for (name, value) in fields {
        if name == "now" {
            let t = value.as_str().and_then(parse_time).ok_or_else(|| {
                RequestError::InvalidInput("`now` must be an RFC 3339 time like \"2026-11-21T08:00:00Z\"".into())
            })?;
            req.now(t);
        } else if name.contains('.') {
            let mut scratch = Vec::new();
            let input = input_from_json(value, &mut scratch)
                .map_err(|found| RequestError::InvalidPass { tag: name.clone(), problem: format!("found {found}") })?;
            req.pass(name, input)?;
        } else {
            match value {
                Value::String(s) => req.key(name, s)?,
                Value::Number(n) if n.is_i64() || n.is_u64() => req.key(name, &n.to_string())?,
                _ => return Err(RequestError::InvalidInput(format!("key `{name}` must be text or an integer"))),
            };
        }
    }
    Ok(())
}

fn field_json(v: &FieldValue<'_>) -> Value {
    match v {
        FieldValue::Int(i) => json!(i),
        FieldValue::Float(f) => json!(f),
        FieldValue::Text(s) | FieldValue::Enum(s) => json!(s),
        FieldValue::Bool(b) => json!(b),
        FieldValue::Time(t) => json!(crate::vm::request::format_time(*t)),
        FieldValue::List(items) => Value::Array(items.iter().map(field_json).collect()),
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
        TagValue::Time(t) => json!(crate::vm::request::format_time(*t)),
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
                        crate::vm::value::Scalar::Int(x) => json!(x),
                        crate::vm::value::Scalar::Float(x) => json!(x),
                        crate::vm::value::Scalar::Text(x) => json!(x),
                        crate::vm::value::Scalar::Bool(x) => json!(x),
                        crate::vm::value::Scalar::Time(x) => json!(crate::vm::request::format_time(*x)),
                        crate::vm::value::Scalar::Enum(x) => member(elem, *x),
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

/// The result document: decision, strategy, experiment, group, bucket; with `explain`, the
/// trace of every tag read, rule evaluated and strategy tried, in order.
pub fn outcome_json(outcome: &Outcome<'_>, explain: bool) -> Value {
    let req = outcome.request();
    let p = req.program();
    let decision = outcome.decided().then(|| {
        let fields: Map<String, Value> = outcome.fields().map(|(name, v)| (name.to_string(), field_json(&v))).collect();
        Value::Object(fields)
    });
    let mut doc = json!({
        "scene": req.scene_name(),
        "instance": req.instance_name(),
        "decision": decision,
        "strategy": outcome.strategy(),
        "experiment": outcome.experiment(),
        "group": outcome.group(),
        "bucket": outcome.bucket(),
    });
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
