//! `ruledeck fmt`: rewrite rule files in the canonical layout, or check that they are.
//!
//! Owns: which files, reading and atomically replacing them, and what is printed. The
//! layout itself is `ruledeck::fmt`'s. A file that does not parse is never written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::diagnostics;
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
        let bytes = std::fs::read(path).map_err(|e| Fatal(format!("cannot read `{}`: {e}", path.display())))?;
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
            write_atomically(path, formatted.as_bytes())
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
    std::io::stdin().read_to_end(&mut bytes).map_err(|e| Fatal(format!("cannot read stdin: {e}")))?;
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

/// Replaces `path` so that a reader sees the old or the new file, never a torn one: a temp
/// file beside it, fsynced, renamed over it, and the directory fsynced.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.fmt-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.set_permissions(std::fs::metadata(path)?.permissions())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
