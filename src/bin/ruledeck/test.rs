//! `ruledeck test`: run the decks' `test` blocks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::testing::{self, TestOptions};

use crate::files::{read_sources, report, Fatal};
use crate::Format;

pub fn run(
    paths: &[PathBuf],
    filter: Option<&str>,
    tags: Option<&Path>,
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
    let tags_file = match tags {
        Some(path) => Some(crate::eval::tags_provider(Some(path), &program)?),
        None => None,
    };
    let options = TestOptions {
        filter,
        tags: tags_file.as_ref().map(|t| t as &dyn ruledeck::engine::Provider),
        wall_clock: None,
    };
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
