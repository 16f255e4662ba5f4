//! What publishing a deck would change against the current release: instances, rules and
//! tags added, changed or removed, tag status changes, and — over a sample of requests —
//! how many decisions of each instance would change, with examples.
//!
//! Owns: comparing two manifests and deciding sample requests under two engines. Must
//! not: write anything.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use super::manifest::Manifest;
use crate::engine::Engine;

/// How many example requests a changed instance reports at most.
pub const MAX_EXAMPLES: usize = 3;

/// What publishing a deck would change against the current release.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    /// The release compared with (`None`: the store has none yet).
    pub against: Option<u64>,
    /// Every instance of either side, by `scene.instance`.
    pub instances: BTreeMap<String, InstanceDiff>,
    /// Rules added, changed or removed (unchanged ones are left out).
    pub rules: BTreeMap<String, String>,
    /// Tags added, changed, removed, or whose status changes (`status: online -> disabled`).
    pub tags: BTreeMap<String, String>,
}

/// One instance's change.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceDiff {
    /// `added`, `changed`, `removed` or `unchanged`.
    pub status: String,
    /// Version in the current release and after publishing.
    pub version: [Option<u64>; 2],
    /// With a sample: requests decided under either release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<usize>,
    /// With a sample: how many of those requests would be decided differently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decisions_changed: Option<usize>,
    /// A few of those requests, with both results.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<Example>,
}

/// One sample request whose result would change.
#[derive(Clone, Debug, Serialize)]
pub struct Example {
    /// The request.
    pub input: Value,
    /// Its result under the current release.
    pub before: Value,
    /// Its result after publishing.
    pub after: Value,
}

fn compare<'m, T: PartialEq>(
    old: impl Iterator<Item = (&'m String, T)>,
    new: impl Iterator<Item = (&'m String, T)>,
) -> BTreeMap<&'m String, (Option<T>, Option<T>)> {
    let mut out: BTreeMap<&String, (Option<T>, Option<T>)> = BTreeMap::new();
    for (k, v) in old {
        out.entry(k).or_insert((None, None)).0 = Some(v);
    }
    for (k, v) in new {
        out.entry(k).or_insert((None, None)).1 = Some(v);
    }
    out
}

fn status<T: PartialEq>(pair: &(Option<T>, Option<T>)) -> &'static str {
    match pair {
        (None, Some(_)) => "added",
        (Some(_), None) => "removed",
        (Some(a), Some(b)) if a == b => "unchanged",
        _ => "changed",
    }
}

/// Compares the current release's manifest (if any) with the one publishing would write.
pub fn diff(old: Option<&Manifest>, new: &Manifest) -> Diff {
    let empty = Manifest { instances: BTreeMap::new(), rules: BTreeMap::new(), tags: BTreeMap::new(), ..new.clone() };
    let base = old.unwrap_or(&empty);
    let instances = compare(base.instances.iter(), new.instances.iter())
        .into_iter()
        .map(|(name, pair)| {
            let status = status(&(pair.0.map(|i| &i.content), pair.1.map(|i| &i.content))).to_string();
            let version = [pair.0.map(|i| i.version), pair.1.map(|i| i.version)];
            (
                name.clone(),
                InstanceDiff { status, version, requests: None, decisions_changed: None, examples: Vec::new() },
            )
        })
        .collect();
    let rules = compare(base.rules.iter(), new.rules.iter())
        .into_iter()
        .filter_map(|(name, pair)| Some((name.clone(), status(&pair))).filter(|(_, s)| *s != "unchanged"))
        .map(|(n, s)| (n, s.to_string()))
        .collect();
    let mut tags = BTreeMap::new();
    for (name, (a, b)) in compare(base.tags.iter(), new.tags.iter()) {
        let text = match (a, b) {
            (None, Some(_)) => "added".to_string(),
            (Some(_), None) => "removed".to_string(),
            (Some(a), Some(b)) if a.content != b.content && a.status != b.status => {
                format!("changed; status: {} -> {}", a.status, b.status)
            }
            (Some(a), Some(b)) if a.content != b.content => "changed".to_string(),
            (Some(a), Some(b)) if a.status != b.status => format!("status: {} -> {}", a.status, b.status),
            _ => continue,
        };
        tags.insert(name.clone(), text);
    }
    Diff { against: old.map(|m| m.release), instances, rules, tags }
}

/// The parts of a result that say what was decided (the trace and bucket left out: a
/// bucket only moves with its experiment, which the strategy and group already show).
fn decided(doc: &Value) -> Value {
    match doc {
        Value::Object(m) => {
            let keep = ["decision", "strategy", "experiment", "group", "error"];
            Value::Object(
                m.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect(),
            )
        }
        other => other.clone(),
    }
}

/// The part of a sample request a scene takes: `now`, its keys and its pass-through tags.
/// A sample serves every scene, so fields meant for other scenes are left out, not refused.
fn for_scene(engine: &Engine, scene: &str, input: &Value) -> Value {
    let p = engine.program();
    let Some((_, info)) = p.scene(scene) else { return input.clone() };
    let Value::Object(fields) = input else { return input.clone() };
    let keys: Vec<&str> =
        info.keys.iter().filter_map(|&e| p.entities.get(e as usize)).map(|e| e.key.as_str()).collect();
    let passes: Vec<&str> =
        info.passes.iter().filter_map(|&t| p.tags.get(t as usize)).map(|t| t.name.as_str()).collect();
    let taken =
        |name: &str| name == "now" || if name.contains('.') { passes.contains(&name) } else { keys.contains(&name) };
    Value::Object(fields.iter().filter(|(k, _)| taken(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn decide(engine: Option<&Engine>, scene: &str, instance: &str, input: &Value) -> Option<Value> {
    let engine = engine?;
    engine.program().scene(scene)?.1.instances.iter().find(|i| i.name == instance)?;
    let input = for_scene(engine, scene, input);
    Some(match engine.decide_json(scene, instance, &input, false) {
        Ok(doc) => doc,
        Err(e) => json!({"scene": scene, "instance": instance, "error": e.to_string()}),
    })
}

/// Decides every sample request for every instance under both releases and records, per
/// instance, how many requests were decided and how many decisions change. A request
/// refused under both (it lacks the scene's keys) does not count for that instance.
pub fn sample(diff: &mut Diff, old: Option<&Engine>, new: &Engine, inputs: &[Value]) {
    let names: BTreeSet<String> = diff.instances.keys().cloned().collect();
    for name in names {
        let Some((scene, instance)) = name.split_once('.') else { continue };
        let (mut requests, mut changed, mut examples) = (0, 0, Vec::new());
        for input in inputs {
            let before = decide(old, scene, instance, input);
            let after = decide(Some(new), scene, instance, input);
            let refused = |d: &Option<Value>| d.as_ref().is_none_or(|d| d.get("error").is_some());
            if refused(&before) && refused(&after) {
                continue;
            }
            requests += 1;
            let (before, after) = (before.unwrap_or(Value::Null), after.unwrap_or(Value::Null));
            if decided(&before) != decided(&after) {
                changed += 1;
                if examples.len() < MAX_EXAMPLES {
                    examples.push(Example { input: input.clone(), before, after });
                }
            }
        }
        let entry = diff.instances.get_mut(&name).expect("listed above");
        entry.requests = Some(requests);
        entry.decisions_changed = Some(changed);
        entry.examples = examples;
    }
}

/// The readable form of a diff.
pub fn render_text(d: &Diff) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match d.against {
        Some(n) => {
            let _ = writeln!(out, "against release {n}:");
        }
        None => {
            let _ = writeln!(out, "against an empty store (this would be the first release):");
        }
    }
    let v = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("v{v}"));
    let _ = writeln!(out, "instances:");
    for (name, i) in &d.instances {
        let _ = write!(out, "  {:<9} {name} ({} -> {})", i.status, v(i.version[0]), v(i.version[1]));
        match (i.requests, i.decisions_changed) {
            (Some(0), _) => out.push_str(": no sample request carries this scene's keys and pass-through tags"),
            (Some(r), Some(c)) => {
                let _ = write!(out, ": {c} of {r} sample decisions change");
            }
            _ => {}
        }
        out.push('\n');
        for e in &i.examples {
            let show = |doc: &Value| {
                if let Some(err) = doc.get("error") {
                    return format!("refused ({})", err.as_str().unwrap_or(""));
                }
                let s = |k: &str| doc.get(k).filter(|v| !v.is_null()).map(|v| v.to_string().replace('"', ""));
                let mut text = s("strategy").unwrap_or_else(|| "no decision".into());
                if let Some(g) = s("group") {
                    text = format!("{text}/{g}");
                }
                let decision = doc.get("decision").map_or("none".to_string(), Value::to_string);
                format!("{text} {decision}")
            };
            let _ = writeln!(out, "      {}: {} -> {}", e.input, show(&e.before), show(&e.after));
        }
    }
    if !d.rules.is_empty() {
        let _ = writeln!(out, "rules:");
        for (name, s) in &d.rules {
            let _ = writeln!(out, "  {s:<9} {name}");
        }
    }
    if !d.tags.is_empty() {
        let _ = writeln!(out, "tags:");
        for (name, s) in &d.tags {
            let _ = writeln!(out, "  {name}: {s}");
        }
    }
    out
}
