//! `ruledeck diff FILES… --store DIR`: what publishing would change, before it does.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::engine::Engine;
use ruledeck::release::{diff, manifest, Manifest, Store};
use serde_json::Value;

use crate::eval::tags_provider;
use crate::files::{read_sources, report, store_refused, Fatal};
use crate::Format;

pub fn run(
    paths: &[PathBuf],
    dir: &Path,
    inputs: Option<&Path>,
    tags: Option<&Path>,
    format: Format,
) -> Result<ExitCode, Fatal> {
    let store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => return Ok(store_refused(e)),
    };
    let current = match store.current_number().and_then(|n| n.map(|n| store.load(Some(n))).transpose()) {
        Ok(c) => c,
        Err(e) => return Ok(store_refused(e)),
    };
    let baseline = current.as_ref().map(|c| c.manifest.baseline());
    let (sources, read_errors) = read_sources(paths)?;
    if !read_errors.is_empty() {
        return Ok(report(&sources, &read_errors).unwrap_or(ExitCode::from(1)));
    }
    let (checked, items) = match ruledeck::check_sources_against(sources, baseline.as_ref()) {
        Ok(c) => c,
        Err(errors) => return Ok(report(&errors.sources, &errors.diagnostics).unwrap_or(ExitCode::from(1))),
    };
    let program = match ruledeck::compile::compile(&checked) {
        Ok(p) => p,
        Err(e) => return Err(Fatal(format!("internal compiler error: {e}"))),
    };
    let old: Option<&Manifest> = current.as_ref().map(|c| &c.manifest);
    let planned = manifest::plan(&checked, &program, &items, "", old);
    let mut d = diff::diff(old, &planned);
    if let Some(path) = inputs {
        let file = std::fs::File::open(path).map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
        let mut requests = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            let doc: Value = serde_json::from_str(&line)
                .map_err(|e| Fatal(format!("`{}` line {}: not valid JSON: {e}", path.display(), i + 1)))?;
            requests.push(doc);
        }
        // Without --tags nothing can be loaded: every loaded tag is missing (unknown).
        let provider = || tags_provider(tags, &program);
        let (new_tags, old_tags) = (provider()?, provider()?);
        let new_engine = Engine::new(program).with_fallback(new_tags);
        let old_engine = current.as_ref().map(|c| Engine::new(c.program.clone()).with_fallback(old_tags));
        diff::sample(&mut d, old_engine.as_ref(), &new_engine, &requests);
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&d).expect("JSON")),
        Format::Text => print!("{}", diff::render_text(&d)),
    }
    Ok(ExitCode::SUCCESS)
}
