//! The `ruledeck` command line. Owns argument parsing, file I/O and exit codes; all
//! language work is the library's.
//!
//! Exit codes: 0 success, 1 the input has errors, 2 usage or I/O errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use ruledeck::diagnostics::{self, Diagnostic};
use ruledeck::source::Sources;

#[derive(Parser)]
#[command(name = "ruledeck", version, about = "Check, compile and run ruledeck rule files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check rule files; diagnostics go to stderr (JSON to stdout).
    Check {
        /// `.rule` files, or directories searched recursively for them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format for diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files, format } => check(&files, format),
    }
}

/// A usage or I/O failure: reported on stderr, exit code 2.
struct Fatal(String);

fn check(paths: &[PathBuf], format: Format) -> ExitCode {
    let (sources, read_errors) = match read_sources(paths) {
        Ok(loaded) => loaded,
        Err(Fatal(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let file_count = sources.len();
    let (sources, diagnostics) = if read_errors.is_empty() {
        match ruledeck::check_sources(sources) {
            Ok(checked) => (checked.sources, Vec::new()),
            Err(errors) => (errors.sources, errors.diagnostics),
        }
    } else {
        (sources, read_errors)
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    match format {
        Format::Json => println!("{}", diagnostics::render_json(&sources, &diagnostics)),
        Format::Text => {
            eprint!("{}", diagnostics::render_text(&sources, &diagnostics));
            let files = if file_count == 1 { "file" } else { "files" };
            match errors {
                0 => eprintln!("checked {file_count} {files}: no errors"),
                1 => eprintln!("error: 1 error in {file_count} {files}"),
                n => eprintln!("error: {n} errors in {file_count} {files}"),
            }
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Reads every file (expanding directories to the `.rule` files below them, sorted).
/// Unreadable paths are fatal; files that are not UTF-8 become diagnostics.
fn read_sources(paths: &[PathBuf]) -> Result<(Sources, Vec<Diagnostic>), Fatal> {
    let mut files = Vec::new();
    for path in paths {
        collect_rule_files(path, &mut files)?;
    }
    if files.is_empty() {
        return Err(Fatal(format!("no .rule files found in {}", display_list(paths))));
    }
    let mut sources = Sources::new();
    let mut diagnostics = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| Fatal(format!("cannot read `{}`: {e}", file.display())))?;
        let (_, problem) = ruledeck::add_file_bytes(&mut sources, &file.display().to_string(), bytes);
        diagnostics.extend(problem);
    }
    Ok((sources, diagnostics))
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
