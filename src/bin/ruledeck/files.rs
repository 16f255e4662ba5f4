//! Reading inputs: rule files (directories expanded), bundles, data files, and their failures.
//!
//! Every read is bounded (`ruledeck::files::read_bounded`): a rule file by the source-size
//! limit, a bundle by the bundle limit, a data file by the data-file limit. Paths are
//! canonicalized so each file is read once however it is reached (named twice, through a
//! symlink, or through a symlinked directory), and directory walks never loop.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::compile::bundle;
use ruledeck::compile::program::Program;
use ruledeck::diagnostics::{self, Diagnostic};
use ruledeck::files::{read_bounded, ReadError};
use ruledeck::limits::{MAX_BUNDLE_BYTES, MAX_DATA_FILE_BYTES};
use ruledeck::source::Sources;

/// A usage or I/O failure: reported on stderr (or as JSON where asked), exit code 2.
pub struct Fatal(pub String);

impl From<ReadError> for Fatal {
    fn from(e: ReadError) -> Fatal {
        Fatal(e.to_string())
    }
}

/// Reads every file (expanding directories to the `.rule` files below them, sorted); see
/// [`ruledeck::load::read_sources`].
pub fn read_sources(paths: &[PathBuf]) -> Result<(Sources, Vec<Diagnostic>), Fatal> {
    ruledeck::load::read_sources(paths).map_err(Fatal)
}

/// The files named, with directories expanded (see [`ruledeck::load::rule_files`]).
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Fatal> {
    ruledeck::load::rule_files(paths).map_err(Fatal)
}

pub use ruledeck::load::canonical_inputs;
use ruledeck::load::is_bundle;

/// Prints diagnostics rustc-style with a summary line, for commands that compile. Exit code
/// 1 when any is an error; warnings alone are printed and do not stop the command.
pub fn report(sources: &Sources, diagnostics: &[Diagnostic]) -> Option<ExitCode> {
    eprint!("{}", diagnostics::render_text(sources, diagnostics));
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors == 0 {
        return None;
    }
    let files = if sources.len() == 1 { "file" } else { "files" };
    eprintln!("error: {errors} error{} in {} {files}", if errors == 1 { "" } else { "s" }, sources.len());
    Some(ExitCode::from(1))
}

/// Rule files read and checked. `Err(Ok(code))`: diagnostics were printed and the command
/// should exit with `code` (1).
pub fn check_files(paths: &[PathBuf]) -> Result<Result<ruledeck::Checked, ExitCode>, Fatal> {
    let (sources, read_errors) = read_sources(paths)?;
    if !read_errors.is_empty() {
        return Ok(Err(report(&sources, &read_errors).unwrap_or(ExitCode::from(1))));
    }
    match ruledeck::check_sources(sources) {
        Ok(checked) => Ok(Ok(checked)),
        Err(errors) => Ok(Err(report(&errors.sources, &errors.diagnostics).unwrap_or(ExitCode::from(1)))),
    }
}

/// A program from one bundle, or compiled from rule files. `Err(Ok(code))`: diagnostics
/// were printed and the command should exit with `code`.
pub fn load_program(paths: &[PathBuf]) -> Result<Result<Program, ExitCode>, Fatal> {
    if let [single] = paths {
        if is_bundle(single) {
            let bytes = read_bounded(single, MAX_BUNDLE_BYTES)?;
            return match bundle::from_bytes(&bytes) {
                Ok(p) => Ok(Ok(p)),
                Err(e) => {
                    eprintln!("error: `{}`: {e}", single.display());
                    Ok(Err(ExitCode::from(1)))
                }
            };
        }
    }
    let (sources, read_errors) = read_sources(paths)?;
    if !read_errors.is_empty() {
        return Ok(Err(report(&sources, &read_errors).unwrap_or(ExitCode::from(1))));
    }
    match ruledeck::check_sources(sources).and_then(ruledeck::compile_checked) {
        Ok(p) => Ok(Ok(p)),
        Err(errors) => Ok(Err(report(&errors.sources, &errors.diagnostics).unwrap_or(ExitCode::from(1)))),
    }
}

/// A JSON data file (`--tags`), read within the data-file limit and parsed strictly
/// (duplicate keys refused).
pub fn read_json_file(path: &Path) -> Result<serde_json::Value, Fatal> {
    let bytes = read_bounded(path, MAX_DATA_FILE_BYTES)?;
    ruledeck::engine::parse_json(&bytes).map_err(|e| Fatal(format!("`{}` is not valid JSON: {e}", path.display())))
}

/// The time recorded in a release's manifest: now, or `RULEDECK_NOW` (RFC 3339) when set.
/// `RULEDECK_NOW` exists for tests and reproducible demos, so their output is stable.
pub fn now_text() -> Result<String, Fatal> {
    if let Ok(fixed) = std::env::var("RULEDECK_NOW") {
        return match ruledeck::time::parse_literal(&fixed) {
            Ok(t) => Ok(ruledeck::time::format(t)),
            Err(_) => {
                Err(Fatal(format!("RULEDECK_NOW must be an RFC 3339 time like 2026-11-21T08:00:00Z, not {fixed:?}")))
            }
        };
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Fatal(format!("the system clock is before 1970: {e}")))?
        .as_secs();
    Ok(ruledeck::time::format(secs as i64))
}

/// A store that cannot be read or refuses what it holds (a corrupt bundle or manifest, a
/// missing release): reported naming the file, exit 1.
pub fn store_refused(e: ruledeck::release::StoreError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}
