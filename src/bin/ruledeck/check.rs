//! `ruledeck check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::diagnostics;

use crate::files::{read_sources, store_refused, Fatal};
use crate::Format;

pub fn run(paths: &[PathBuf], format: Format, store: Option<&Path>) -> Result<ExitCode, Fatal> {
    // With a store, tag status is judged against its current release.
    let baseline = match store.map(|dir| ruledeck::release::Store::open(dir).and_then(|s| s.current_manifest())) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(m))) => Some(m.baseline()),
        Some(Err(e)) => return Ok(store_refused(e)),
    };
    let (sources, read_errors) = read_sources(paths)?;
    let file_count = sources.len();
    let (sources, diagnostics) = if read_errors.is_empty() {
        match ruledeck::check_sources_against(sources, baseline.as_ref()) {
            Ok((checked, _)) => (checked.sources, checked.warnings),
            Err(errors) => (errors.sources, errors.diagnostics),
        }
    } else {
        (sources, read_errors)
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let warned = match warnings {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    match format {
        Format::Json => println!("{}", diagnostics::render_json(&sources, &diagnostics)),
        Format::Text => {
            eprint!("{}", diagnostics::render_text(&sources, &diagnostics));
            let files = if file_count == 1 { "file" } else { "files" };
            match errors {
                0 => eprintln!("checked {file_count} {files}: no errors{warned}"),
                1 => eprintln!("error: 1 error in {file_count} {files}{warned}"),
                n => eprintln!("error: {n} errors in {file_count} {files}{warned}"),
            }
        }
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
