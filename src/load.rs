//! Reading a deck from disk: rule files named or found below directories, and bundles.
//!
//! Owns: expanding directories to the `.rule` files below them (sorted, each file once
//! however it is reached: named twice, through a symlink or a symlinked directory; walks
//! never loop), recognizing a bundle by its magic bytes, and reading each source within the
//! source-size limit (too large or not UTF-8 becomes a diagnostic). Shared by the CLI and
//! the Python package, so both name and order a deck's files the same way. Must not: parse
//! or check anything.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::compile::bundle;
use crate::diagnostics::{Code, Diagnostic};
use crate::files::{read_bounded, ReadError};
use crate::limits::MAX_SOURCE_BYTES;
use crate::source::Sources;

/// Rule files found for a command, each once, in the order given (directories sorted).
struct Walk {
    files: Vec<PathBuf>,
    seen: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

/// Reads every file (expanding directories to the `.rule` files below them, sorted).
/// Unreadable paths and bundles are fatal; files that are not UTF-8 or are too large become
/// diagnostics.
pub fn read_sources(paths: &[PathBuf]) -> Result<(Sources, Vec<Diagnostic>), String> {
    let mut sources = Sources::new();
    let mut diagnostics = Vec::new();
    for file in rule_files(paths)? {
        let name = file.display().to_string();
        match read_bounded(&file, MAX_SOURCE_BYTES) {
            Ok(bytes) => {
                let (_, problem) = crate::add_file_bytes(&mut sources, &name, bytes);
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
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok((sources, diagnostics))
}

/// The files named, with directories expanded to the `.rule` files below them (sorted),
/// each once. Unreadable paths and bundles are fatal, and so is finding no file at all.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut walk = Walk { files: Vec::new(), seen: HashSet::new(), dirs: HashSet::new() };
    for path in paths {
        walk.add(path, true)?;
    }
    if walk.files.is_empty() {
        return Err(format!("no .rule files found in {}", display_list(paths)));
    }
    Ok(walk.files)
}

impl Walk {
    /// `named`: the user gave this path itself (so it is read whatever its extension).
    fn add(&mut self, path: &Path, named: bool) -> Result<(), String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let canonical = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve `{}`: {e}", path.display()))?;
        if !meta.is_dir() {
            if named && is_bundle(path) {
                return Err(format!(
                    "`{}` is a compiled bundle, not rule source: `check`, `test` and `build` read the .rule \
                     files it was built from (`eval` and `disasm` accept a bundle)",
                    path.display()
                ));
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
            .map_err(|e| format!("cannot read directory `{}`: {e}", path.display()))?
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

/// A bundle is recognized by its magic bytes, whatever its name. Only regular files are
/// opened (opening a FIFO would block).
pub fn is_bundle(path: &Path) -> bool {
    use std::io::Read;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut magic = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == bundle::MAGIC
}
