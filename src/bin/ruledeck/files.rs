//! Reading inputs: rule files (directories expanded), bundles, and their failures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::compile::bundle;
use ruledeck::compile::program::Program;
use ruledeck::diagnostics::{self, Diagnostic};
use ruledeck::source::Sources;

/// A usage or I/O failure: reported on stderr, exit code 2.
pub struct Fatal(pub String);

/// Reads every file (expanding directories to the `.rule` files below them, sorted).
/// Unreadable paths are fatal; files that are not UTF-8 become diagnostics.
pub fn read_sources(paths: &[PathBuf]) -> Result<(Sources, Vec<Diagnostic>), Fatal> {
    let files = rule_files(paths)?;
    let mut sources = Sources::new();
    let mut diagnostics = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| Fatal(format!("cannot read `{}`: {e}", file.display())))?;
        let (_, problem) = ruledeck::add_file_bytes(&mut sources, &file.display().to_string(), bytes);
        diagnostics.extend(problem);
    }
    Ok((sources, diagnostics))
}

/// The files named, with directories expanded to the `.rule` files below them (sorted).
/// Finding none at all is fatal.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Fatal> {
    let mut files = Vec::new();
    for path in paths {
        collect_rule_files(path, &mut files)?;
    }
    if files.is_empty() {
        return Err(Fatal(format!("no .rule files found in {}", display_list(paths))));
    }
    Ok(files)
}

fn collect_rule_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Fatal> {
    let meta = std::fs::metadata(path).map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Fatal(format!("cannot read directory `{}`: {e}", path.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_rule_files(&entry, out)?;
        } else if entry.extension().is_some_and(|e| e == "rule") {
            out.push(entry);
        }
    }
    Ok(())
}

fn display_list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
}

/// Prints diagnostics rustc-style with a summary line, for commands that compile.
pub fn report(sources: &Sources, diagnostics: &[Diagnostic]) -> ExitCode {
    eprint!("{}", diagnostics::render_text(sources, diagnostics));
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let files = if sources.len() == 1 { "file" } else { "files" };
    eprintln!("error: {errors} error{} in {} {files}", if errors == 1 { "" } else { "s" }, sources.len());
    ExitCode::from(1)
}

/// A program from one bundle, or compiled from rule files. `Err(Ok(code))`: diagnostics
/// were printed and the command should exit with `code`.
pub fn load_program(paths: &[PathBuf]) -> Result<Result<Program, ExitCode>, Fatal> {
    if let [single] = paths {
        if is_bundle(single) {
            let bytes = std::fs::read(single).map_err(|e| Fatal(format!("cannot read `{}`: {e}", single.display())))?;
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
        return Ok(Err(report(&sources, &read_errors)));
    }
    match ruledeck::check_sources(sources).and_then(ruledeck::compile_checked) {
        Ok(p) => Ok(Ok(p)),
        Err(errors) => Ok(Err(report(&errors.sources, &errors.diagnostics))),
    }
}

/// A bundle is recognized by its magic bytes, whatever its name.
fn is_bundle(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == bundle::MAGIC
}
