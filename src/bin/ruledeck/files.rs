//! Reading inputs: rule files (directories expanded), bundles, data files, and their failures.
//!
//! Every read is bounded (`ruledeck::files::read_bounded`): a rule file by the source-size
//! limit, a bundle by the bundle limit, a data file by the data-file limit. Paths are
//! canonicalized so each file is read once however it is reached (named twice, through a
//! symlink, or through a symlinked directory), and directory walks never loop.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::compile::bundle;
use ruledeck::compile::program::Program;
use ruledeck::diagnostics::{self, Code, Diagnostic};
use ruledeck::files::{read_bounded, ReadError};
use ruledeck::limits::{MAX_BUNDLE_BYTES, MAX_DATA_FILE_BYTES, MAX_SOURCE_BYTES};
use ruledeck::source::Sources;

/// A usage or I/O failure: reported on stderr (or as JSON where asked), exit code 2.
pub struct Fatal(pub String);

impl From<ReadError> for Fatal {
    fn from(e: ReadError) -> Fatal {
        Fatal(e.to_string())
    }
}

/// Rule files found for a command, each once, in the order given (directories sorted).
struct Walk {
    files: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

/// Reads every file (expanding directories to the `.rule` files below them, sorted).
/// Unreadable paths and bundles are fatal; files that are not UTF-8 or are too large become
/// diagnostics.
pub fn read_sources(paths: &[PathBuf]) -> Result<(Sources, Vec<Diagnostic>), Fatal> {
    let mut sources = Sources::new();
    let mut diagnostics = Vec::new();
    for file in rule_files(paths)? {
        let name = file.display().to_string();
        match read_bounded(&file, MAX_SOURCE_BYTES) {
            Ok(bytes) => {
                let (_, problem) = ruledeck::add_file_bytes(&mut sources, &name, bytes);
                diagnostics.extend(problem);
            }
            Err(ReadError::TooLarge { size, limit, .. }) => {
                sources.add(name.as_str(), "");
                let size = if size > limit as u64 { format!("{size} bytes") } else { format!("over {limit} bytes") };
                diagnostics.push(
                    Diagnostic::unplaced(
                        Code::SourceTooLarge,
                        format!("`{name}` is {size}; the limit is {limit} bytes"),
                    )
                    .with_help("split the deck into several files"),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((sources, diagnostics))
}

/// The files named, with directories expanded to the `.rule` files below them (sorted),
/// each once. Unreadable paths and bundles are fatal, and so is finding no file at all.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Fatal> {
    let mut walk = Walk { files: Vec::new(), seen: HashSet::new(), dirs: HashSet::new() };
    for path in paths {
        walk.add(path, true)?;
    }
    if walk.files.is_empty() {
        return Err(Fatal(format!("no .rule files found in {}", display_list(paths))));
    }
    Ok(walk.files)
}

impl Walk {
    /// `named`: the user gave this path itself (so it is read whatever its extension).
    fn add(&mut self, path: &Path, named: bool) -> Result<(), Fatal> {
        let meta = std::fs::metadata(path).map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
        let canonical =
            std::fs::canonicalize(path).map_err(|e| Fatal(format!("cannot resolve `{}`: {e}", path.display())))?;
        if !meta.is_dir() {
            if named && is_bundle(path) {
                return Err(Fatal(format!(
                    "`{}` is a compiled bundle, not rule source: `check`, `test` and `build` read the .rule \
                     files it was built from (`eval` and `disasm` accept a bundle)",
                    path.display()
                )));
            }
            if self.seen.insert(canonical) {
                self.files.push(path.to_path_buf());
            }
            return Ok(());
        }
        // A directory reached twice (named twice, or a symlink back up the tree) is walked once.
        if !self.dirs.insert(canonical) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Fatal(format!("cannot read directory `{}`: {e}", path.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() || entry.extension().is_some_and(|e| e == "rule") {
                self.add(&entry, false)?;
            }
        }
        Ok(())
    }
}

/// The files a command reads, canonicalized: for refusing to overwrite one of them.
pub fn canonical_inputs(paths: &[PathBuf]) -> HashSet<PathBuf> {
    let mut walk = Walk { files: Vec::new(), seen: HashSet::new(), dirs: HashSet::new() };
    for path in paths {
        let _ = walk.add(path, false);
    }
    walk.seen
}

fn display_list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
}

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

/// A bundle is recognized by its magic bytes, whatever its name. Only regular files are
/// opened (opening a FIFO would block).
fn is_bundle(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut magic = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == bundle::MAGIC
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
