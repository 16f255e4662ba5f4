//! `ruledeck eval`: decisions as JSON, one request or a JSON Lines file of them.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::engine::{apply_input, outcome_json, Engine, TagsFile};
use serde_json::{json, Value};

use crate::files::{load_program, store_refused, Fatal};

/// Where the program comes from.
pub enum Deck<'a> {
    /// Rule files and directories, or one bundle.
    Files(&'a [PathBuf]),
    /// A store's current release, or release N.
    Store(&'a Path, Option<u64>),
}

pub fn run(
    deck: Deck<'_>,
    scene: &str,
    instance: &str,
    input: Option<&str>,
    inputs: Option<&Path>,
    tags: Option<&Path>,
    explain: bool,
) -> Result<ExitCode, Fatal> {
    // From a store: the release's program, and the release and version stamped on results.
    let (program, stamp) = match deck {
        Deck::Store(dir, number) => match ruledeck::release::Store::open(dir).and_then(|s| s.load(number)) {
            Ok(loaded) => {
                let version = loaded.manifest.instances.get(&format!("{scene}.{instance}")).map(|i| i.version);
                (loaded.program, Some((loaded.manifest.release, version)))
            }
            Err(e) => return Ok(store_refused(e)),
        },
        Deck::Files(paths) => match load_program(paths)? {
            Ok(p) => (std::sync::Arc::new(p), None),
            Err(code) => return Ok(code),
        },
    };
    let mut engine = Engine::new(program);
    if let Some(path) = tags {
        let text =
            std::fs::read_to_string(path).map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
        let doc: Value =
            serde_json::from_str(&text).map_err(|e| Fatal(format!("`{}` is not valid JSON: {e}", path.display())))?;
        let file = TagsFile::from_json(doc).map_err(|e| Fatal(format!("`{}`: {e}", path.display())))?;
        engine = engine.with_fallback(file);
    } else {
        // Without --tags nothing can be loaded: every loaded tag is missing (unknown).
        engine = engine.with_fallback(TagsFile::from_json(json!({})).expect("an empty tags file is valid"));
    }
    // The scene and instance are checked once, up front: they are the same for every line.
    let mut req = match engine.program().request(scene, instance) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    req.explain(explain);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failures = 0usize;
    let mut decide = |line: &str, out: &mut dyn Write| -> Result<(), Fatal> {
        req.reset();
        let result = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not valid JSON: {e}"))
            .and_then(|doc| apply_input(&mut req, &doc).map_err(|e| e.to_string()))
            .and_then(|()| engine.run(&mut req).map_err(|e| e.to_string()));
        let mut doc = match result {
            Ok(()) => outcome_json(&req.outcome(), explain),
            Err(error) => {
                failures += 1;
                json!({"scene": scene, "instance": instance, "error": error})
            }
        };
        if let (Some((release, version)), Value::Object(map)) = (stamp, &mut doc) {
            map.insert("release".into(), json!(release));
            map.insert("version".into(), json!(version));
        }
        serde_json::to_writer(&mut *out, &doc).map_err(|e| Fatal(format!("cannot write output: {e}")))?;
        out.write_all(b"\n").map_err(|e| Fatal(format!("cannot write output: {e}")))
    };
    match (input, inputs) {
        (Some(one), _) => decide(one, &mut out)?,
        (None, Some(path)) => {
            let file =
                std::fs::File::open(path).map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
                if line.trim().is_empty() {
                    continue;
                }
                decide(&line, &mut out)?;
            }
        }
        (None, None) => return Err(Fatal("give a request with --input JSON or --inputs FILE.jsonl".into())),
    }
    out.flush().map_err(|e| Fatal(format!("cannot write output: {e}")))?;
    drop(out);
    if failures > 0 {
        eprintln!("error: {failures} request{} refused", if failures == 1 { " was" } else { "s were" });
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
