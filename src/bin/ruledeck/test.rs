//! `ruledeck test`: run the decks' `test` blocks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::engine::{Loaded, Provider, TagQuery};
use ruledeck::testing::{self, TestOptions};

use crate::files::{read_sources, report, Fatal};
use crate::Format;

pub fn run(
    paths: &[PathBuf],
    filter: Option<&str>,
    tags: Option<&Path>,
    providers: Option<&Path>,
    coverage: bool,
    format: Format,
) -> Result<ExitCode, Fatal> {
    let (sources, read_errors) = read_sources(paths)?;
    if !read_errors.is_empty() {
        report(&sources, &read_errors);
        return Ok(ExitCode::from(2));
    }
    let checked = match ruledeck::check_sources(sources) {
        Ok(c) => c,
        Err(errors) => {
            report(&errors.sources, &errors.diagnostics);
            return Ok(ExitCode::from(2));
        }
    };
    report(&checked.sources, &checked.warnings);
    let program = match ruledeck::compile::compile(&checked) {
        Ok(p) => p,
        Err(e) => return Err(Fatal(format!("internal compiler error: {e}"))),
    };
    let mut tags_file = match tags {
        Some(path) => Some(crate::eval::tags_provider(Some(path), &program)?),
        None => None,
    };
    let routed = match providers {
        Some(path) => Some(routed(path, &program, tags_file.take())?),
        None => None,
    };
    let provider: Option<&dyn Provider> = match (&routed, &tags_file) {
        (Some(r), _) => Some(r),
        (None, Some(t)) => Some(t),
        (None, None) => None,
    };
    let options = TestOptions { filter, tags: provider, wall_clock: None };
    let result = testing::run(&checked, &program, &options);
    if let Some(filter) = filter.filter(|_| result.tests.is_empty()) {
        // A filter that matches nothing is a typo far more often than an intent.
        eprintln!(
            "error: no test name contains `{filter}` ({} test{} in the deck)",
            result.filtered_out,
            if result.filtered_out == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(1));
    }
    match format {
        Format::Text => print!("{}", testing::render_text(&result, &checked.sources, coverage)),
        Format::Json => println!("{}", testing::render_json(&result, &checked.sources)),
    }
    Ok(if result.failed() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `expect tag` through the configured providers: each query goes to the provider its
/// tag's `from` names (the `--tags` file for names the configuration does not give).
#[cfg_attr(not(feature = "serve"), allow(dead_code))]
struct Routed {
    by_tag: std::collections::HashMap<String, std::sync::Arc<dyn Provider>>,
}

impl Provider for Routed {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        queries
            .iter()
            .map(|q| match self.by_tag.get(q.tag) {
                Some(p) => p.load(std::slice::from_ref(q)).pop().unwrap_or(Loaded::Missing),
                None => Loaded::Failed(format!("no provider serves `{}`", q.tag)),
            })
            .collect()
    }
}

#[cfg(feature = "serve")]
fn routed(path: &Path, program: &ruledeck::Program, tags: Option<ruledeck::TagsFile>) -> Result<Routed, Fatal> {
    use std::sync::Arc;
    let providers = ruledeck::serve::providers::load(path).map_err(Fatal)?;
    let fallback: Option<Arc<dyn Provider>> = tags.map(|t| Arc::new(t) as Arc<dyn Provider>);
    if fallback.is_none() {
        let missing = providers.missing_for(program);
        if !missing.is_empty() {
            return Err(Fatal(missing.join("; ")));
        }
    }
    let mut by_tag = std::collections::HashMap::new();
    for (tag, name) in program.provider_names() {
        if let Some(p) = providers.named.get(name).cloned().or_else(|| fallback.clone()) {
            by_tag.insert(tag.to_string(), p);
        }
    }
    Ok(Routed { by_tag })
}

#[cfg(not(feature = "serve"))]
fn routed(_: &Path, _: &ruledeck::Program, _: Option<ruledeck::TagsFile>) -> Result<Routed, Fatal> {
    unreachable!("--providers exists only with the `serve` feature")
}
