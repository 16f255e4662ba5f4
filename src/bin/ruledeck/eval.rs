//! `ruledeck eval`: decisions as JSON, one request or a JSON Lines file (or stdin) of them.
//!
//! Exit codes: 0 every request decided; 1 the deck does not compile; 2 usage or I/O; 3 a
//! request was refused (its output line says why, with its line number). From a store, a
//! release the store refuses (missing, or a corrupt bundle or manifest) exits 1.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::engine::{apply_input, outcome_json, parse_json, Engine, TagsFile};
use ruledeck::files::{read_line_bounded, Line};
use ruledeck::limits::MAX_REQUEST_BYTES;
use serde_json::{json, Value};

use crate::files::{load_program, read_json_file, store_refused, Fatal};

/// Exit code of a run in which some request was refused.
pub const REFUSED: u8 = 3;

pub struct Args<'a> {
    pub paths: &'a [PathBuf],
    pub scene: &'a str,
    pub instance: &'a str,
    pub input: Option<&'a str>,
    pub inputs: Option<&'a Path>,
    pub tags: Option<&'a Path>,
    pub explain: bool,
    /// Decide with a store's release (`None`: its current one) instead of `paths`.
    pub store: Option<(&'a Path, Option<u64>)>,
}

/// The `--tags` provider (with a warning per entity or field no tag declares), or an
/// empty one: without a data file every loaded tag is missing (unknown).
pub fn tags_provider(path: Option<&Path>, program: &ruledeck::compile::program::Program) -> Result<TagsFile, Fatal> {
    let Some(path) = path else {
        return Ok(TagsFile::from_json(json!({})).expect("an empty tags file is valid"));
    };
    let file = TagsFile::from_json(read_json_file(path)?).map_err(|e| Fatal(format!("`{}`: {e}", path.display())))?;
    for warning in file.unknown_names(program) {
        eprintln!("warning: `{}`: {warning}", path.display());
    }
    Ok(file)
}

pub fn run(args: Args<'_>) -> Result<ExitCode, Fatal> {
    // From a store: the release's program, and the release and version stamped on results.
    let (program, stamp) = match args.store {
        Some((dir, number)) => match ruledeck::release::Store::open(dir).and_then(|s| s.load(number)) {
            Ok(loaded) => {
                let version = loaded.manifest.instances.get(&format!("{}.{}", args.scene, args.instance));
                (loaded.program, Some((loaded.manifest.release, version.map(|i| i.version))))
            }
            Err(e) => return Ok(store_refused(e)),
        },
        None => match load_program(args.paths)? {
            Ok(p) => (std::sync::Arc::new(p), None),
            Err(code) => return Ok(code),
        },
    };
    let tags = tags_provider(args.tags, &program)?;
    let engine = Engine::new(program).with_fallback(tags);
    // The scene and instance are checked once, up front: they are the same for every line.
    let mut req = match engine.program().request(args.scene, args.instance) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(REFUSED));
        }
    };
    req.explain(args.explain);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut refused = 0usize;
    let write_err = |e: std::io::Error| Fatal(format!("cannot write output: {e}"));
    // One output line per input line: a decision, an error naming the line, or `null` for a
    // blank line, so output line N always answers input line N.
    // `Err` is a line refused before parsing (too long).
    let mut answer = |bytes: Result<&[u8], String>, line: Option<usize>, out: &mut dyn Write| -> Result<(), Fatal> {
        let doc = if bytes.as_ref().is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace)) && line.is_some() {
            Value::Null
        } else {
            req.reset();
            let result = bytes
                .and_then(|bytes| parse_json(bytes).map_err(|e| format!("not valid JSON: {e}")))
                .and_then(|doc| apply_input(&mut req, &doc).map_err(|e| e.to_string()))
                .and_then(|()| engine.run(&mut req).map_err(|e| e.to_string()));
            match result {
                Ok(()) => {
                    let mut doc = outcome_json(&req.outcome(), args.explain);
                    if let (Some((release, version)), Value::Object(map)) = (stamp, &mut doc) {
                        map.insert("release".into(), json!(release));
                        map.insert("version".into(), json!(version));
                    }
                    doc
                }
                Err(error) => {
                    refused += 1;
                    let mut doc = json!({"scene": args.scene, "instance": args.instance, "error": error});
                    if let Some(n) = line {
                        doc["line"] = json!(n);
                    }
                    doc
                }
            }
        };
        serde_json::to_writer(&mut *out, &doc).map_err(|e| Fatal(format!("cannot write output: {e}")))?;
        out.write_all(b"\n").map_err(write_err)
    };
    match (args.input, args.inputs) {
        (Some(one), _) => {
            if one.len() > MAX_REQUEST_BYTES {
                return Err(Fatal(format!(
                    "--input is {} bytes; a request may be at most {MAX_REQUEST_BYTES}",
                    one.len()
                )));
            }
            answer(Ok(one.as_bytes()), None, &mut out)?
        }
        (None, Some(path)) => {
            let name = path.display().to_string();
            let mut reader: Box<dyn BufRead> = if name == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let meta = std::fs::metadata(path).map_err(|e| Fatal(format!("cannot read `{name}`: {e}")))?;
                if meta.is_dir() {
                    return Err(Fatal(format!("`{name}` is a directory: give a JSON Lines file, or - for stdin")));
                }
                let file = std::fs::File::open(path).map_err(|e| Fatal(format!("cannot read `{name}`: {e}")))?;
                Box::new(std::io::BufReader::new(file))
            };
            let mut buf = Vec::new();
            let mut number = 0;
            loop {
                number += 1;
                match read_line_bounded(&mut reader, &mut buf, MAX_REQUEST_BYTES)
                    .map_err(|e| Fatal(format!("cannot read `{name}`: {e}")))?
                {
                    Line::End => break,
                    Line::Read => answer(Ok(&buf), Some(number), &mut out)?,
                    Line::TooLong => {
                        let error = format!("line is longer than {MAX_REQUEST_BYTES} bytes, the limit for one request");
                        answer(Err(error), Some(number), &mut out)?
                    }
                }
            }
        }
        (None, None) => return Err(Fatal("give a request with --input JSON or --inputs FILE.jsonl".into())),
    }
    out.flush().map_err(write_err)?;
    drop(out);
    if refused > 0 {
        eprintln!("error: {refused} request{} refused", if refused == 1 { " was" } else { "s were" });
        return Ok(ExitCode::from(REFUSED));
    }
    Ok(ExitCode::SUCCESS)
}
