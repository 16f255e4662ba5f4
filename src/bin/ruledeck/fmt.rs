//! `ruledeck fmt`: rewrite rule files in the canonical layout, or check that they are.
//!
//! Owns: which files, reading and atomically replacing them, and what is printed. The
//! layout itself is `ruledeck::fmt`'s. A file that does not parse is never written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::diagnostics;
use ruledeck::files::{read_bounded, write_atomic, ReadError};
use ruledeck::limits::MAX_SOURCE_BYTES;
use ruledeck::source::Sources;

use crate::files::{rule_files, Fatal};

pub fn run(paths: &[PathBuf], check: bool) -> Result<ExitCode, Fatal> {
    if paths.iter().any(|p| p.as_os_str() == "-") {
        if paths.len() > 1 {
            return Err(Fatal("`-` (stdin) cannot be combined with other files".into()));
        }
        return stdin(check);
    }
    let files = rule_files(paths)?;
    let (mut changed, mut failed) = (0usize, 0usize);
    for path in &files {
        let bytes = match read_bounded(path, MAX_SOURCE_BYTES) {
            Ok(bytes) => bytes,
            Err(e @ ReadError::TooLarge { .. }) => {
                eprintln!("error: {e}");
                failed += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let Some(formatted) = format_bytes(&path.display().to_string(), bytes.clone()) else {
            failed += 1;
            continue;
        };
        if formatted.as_bytes() == bytes {
            continue;
        }
        changed += 1;
        if check {
            println!("{}", path.display());
        } else {
            write_in_place(path, formatted.as_bytes())
                .map_err(|e| Fatal(format!("cannot write `{}`: {e}", path.display())))?;
        }
    }
    let total = files.len();
    let unchanged = total - changed - failed;
    let files_word = |n: usize| if n == 1 { "file" } else { "files" };
    let mut summary = if check {
        format!("{changed} {} would be reformatted, {unchanged} already formatted", files_word(changed))
    } else {
        format!("{changed} {} reformatted, {unchanged} already formatted", files_word(changed))
    };
    if failed > 0 {
        summary.push_str(&format!(", {failed} not formatted because of errors"));
    }
    eprintln!("{summary}");
    Ok(if failed > 0 || (check && changed > 0) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Formats stdin to stdout; with `--check`, prints nothing and says by its exit code.
fn stdin(check: bool) -> Result<ExitCode, Fatal> {
    let mut bytes = Vec::new();
    // One byte past the limit is enough to know the input is too large (the parser says so).
    std::io::stdin()
        .take(MAX_SOURCE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Fatal(format!("cannot read stdin: {e}")))?;
    let Some(formatted) = format_bytes("<stdin>", bytes.clone()) else { return Ok(ExitCode::from(1)) };
    if check {
        if formatted.as_bytes() != bytes {
            println!("-");
            eprintln!("stdin would be reformatted");
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    std::io::stdout().write_all(formatted.as_bytes()).map_err(|e| Fatal(format!("cannot write stdout: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// The formatted text, or `None` after printing why the file cannot be formatted.
fn format_bytes(name: &str, bytes: Vec<u8>) -> Option<String> {
    let mut sources = Sources::new();
    let (id, problem) = ruledeck::add_file_bytes(&mut sources, name, bytes);
    if let Some(d) = problem {
        eprint!("{}", diagnostics::render_text(&sources, &[d]));
        return None;
    }
    match ruledeck::fmt::format_source(name, &sources.get(id).text) {
        Ok(text) => Some(text),
        Err(errors) => {
            eprint!("{}", diagnostics::render_text(&errors.sources, &errors.diagnostics));
            None
        }
    }
}

/// Replaces `path` atomically (see `ruledeck::files::write_atomic`), keeping its permissions.
fn write_in_place(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let permissions = std::fs::metadata(path)?.permissions();
    write_atomic(path, contents)?;
    std::fs::set_permissions(path, permissions)
}
