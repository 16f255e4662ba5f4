//! `ruledeck release`, `ruledeck releases` and `ruledeck rollback`: publishing to a store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::release::{Manifest, Publish, Store};
use ruledeck::testing::{self, TestOptions};
use serde_json::{json, Map, Value};

use crate::eval::tags_provider;
use crate::files::{now_text, read_sources, report, store_refused, Fatal};
use crate::Format;

/// The JSON printed after a publish (or a refusal to publish unchanged content).
fn publish_json(outcome: &Publish) -> Value {
    let (m, unchanged) = match outcome {
        Publish::Published(m) => (m, false),
        Publish::Unchanged(m) => (m, true),
        Publish::Moved { current } => return json!({"moved": current}),
    };
    let instances: Map<String, Value> = m
        .instances
        .iter()
        .map(|(name, i)| {
            let changed = !unchanged && m.changed.contains(name);
            (name.clone(), json!({"version": i.version, "changed": changed}))
        })
        .collect();
    let mut doc = json!({"release": m.release, "hash": m.hash});
    if unchanged {
        doc["unchanged"] = json!(true);
    }
    if let Some(of) = m.rollback_of {
        doc["rollback_of"] = json!(of);
    }
    doc["instances"] = Value::Object(instances);
    doc
}

pub fn release(paths: &[PathBuf], dir: &Path, tags: Option<&Path>, note: Option<&str>) -> Result<ExitCode, Fatal> {
    let store = match Store::create(dir) {
        Ok(s) => s,
        Err(e) => return Ok(store_refused(e)),
    };
    // Checked against the current release, then published only if it is still current:
    // another `release` that got the lock first makes this one check again.
    loop {
        let current = match store.current_manifest() {
            Ok(m) => m,
            Err(e) => return Ok(store_refused(e)),
        };
        let baseline = current.as_ref().map(Manifest::baseline);
        let (sources, read_errors) = read_sources(paths)?;
        if !read_errors.is_empty() {
            report(&sources, &read_errors);
            eprintln!("error: nothing was published");
            return Ok(ExitCode::from(1));
        }
        let (checked, items) = match ruledeck::check_sources_against(sources, baseline.as_ref()) {
            Ok(c) => c,
            Err(errors) => {
                report(&errors.sources, &errors.diagnostics);
                eprintln!("error: nothing was published");
                return Ok(ExitCode::from(1));
            }
        };
        let program = match ruledeck::compile::compile(&checked) {
            Ok(p) => p,
            Err(e) => return Err(Fatal(format!("internal compiler error: {e}"))),
        };
        report(&checked.sources, &checked.warnings);
        let tags_file = tags.map(|path| tags_provider(Some(path), &program)).transpose()?;
        let provider = tags_file.as_ref().map(|t| t as &dyn ruledeck::engine::Provider);
        let result = testing::run(&checked, &program, &TestOptions { tags: provider, ..TestOptions::default() });
        if result.failed() > 0 {
            eprint!("{}", testing::render_text(&result, &checked.sources, false));
            let s = if result.failed() == 1 { "" } else { "s" };
            eprintln!("error: {} test{s} failed; nothing was published", result.failed());
            return Ok(ExitCode::from(1));
        }
        let time = now_text()?;
        let against = current.as_ref().map(|m| m.release);
        match store.publish(&checked, &program, &items, against, &time, note) {
            Ok(Publish::Moved { .. }) => continue,
            Ok(outcome) => {
                println!("{}", serde_json::to_string_pretty(&publish_json(&outcome)).expect("JSON"));
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Ok(store_refused(e)),
        }
    }
}

pub fn rollback(n: u64, dir: &Path, note: Option<&str>) -> Result<ExitCode, Fatal> {
    let store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => return Ok(store_refused(e)),
    };
    let time = now_text()?;
    match store.rollback(n, &time, note) {
        Ok(outcome) => {
            println!("{}", serde_json::to_string_pretty(&publish_json(&outcome)).expect("JSON"));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(store_refused(e)),
    }
}

pub fn releases(dir: &Path, format: Format) -> Result<ExitCode, Fatal> {
    let store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => return Ok(store_refused(e)),
    };
    let (history, current) = match store.history().and_then(|h| Ok((h, store.current_number()?))) {
        Ok(h) => h,
        Err(e) => return Ok(store_refused(e)),
    };
    match format {
        Format::Json => {
            let list: Vec<Value> = history
                .iter()
                .map(|e| {
                    let mut doc = serde_json::to_value(e).expect("JSON");
                    doc["current"] = json!(Some(e.release) == current);
                    doc
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list).expect("JSON"));
        }
        Format::Text => {
            if history.is_empty() {
                println!("no releases yet");
            }
            for e in &history {
                let mark = if Some(e.release) == current { "*" } else { " " };
                let what = match e.rollback_of {
                    Some(of) => format!("rollback to {of}"),
                    None => "release".to_string(),
                };
                let changed =
                    if e.changed.is_empty() { "no instance changed".to_string() } else { e.changed.join(", ") };
                println!(
                    "{mark} {:>4}  {}  {:<16} {}  {changed}",
                    e.release,
                    e.time,
                    what,
                    &e.hash[..12.min(e.hash.len())]
                );
                if let Some(note) = &e.note {
                    println!("        {note}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
