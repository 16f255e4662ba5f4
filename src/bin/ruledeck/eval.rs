//! `ruledeck eval`: decisions as JSON, one request or a JSON Lines file (or stdin) of them.
//!
//! Exit codes: 0 every request decided; 1 the deck does not compile; 2 usage or I/O; 3 a
//! request was refused (its output line says why, with its line number). From a store, a
//! release the store refuses (missing, or a corrupt bundle or manifest) exits 1.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::engine::{apply_json, outcome_json, Engine, OutcomeDoc, TagsFile};
use ruledeck::files::{read_line_bounded, Line};
use ruledeck::limits::MAX_REQUEST_BYTES;
use serde_json::{json, Value};

use crossbeam_utils::CachePadded;

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
    if let Err(e) = engine.program().request(args.scene, args.instance) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(REFUSED));
    }
    let stamp = stamp.map(|(release, version)| (json!(release), json!(version)));
    let decider = Decider { engine: &engine, args: &args, stamp };
    // One request per worker, reused line after line.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS);
    let mut workers: Vec<CachePadded<Worker<'_>>> = (0..workers)
        .map(|_| {
            let mut req = engine.program().request(args.scene, args.instance).map_err(|e| Fatal(e.to_string()))?;
            req.explain(args.explain);
            Ok(CachePadded::new(Worker { req, out: Vec::new() }))
        })
        .collect::<Result<_, Fatal>>()?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut refused = 0usize;
    let write_err = |e: std::io::Error| Fatal(format!("cannot write output: {e}"));
    match (args.input, args.inputs) {
        (Some(one), _) => {
            if one.len() > MAX_REQUEST_BYTES {
                return Err(Fatal(format!(
                    "--input is {} bytes; a request may be at most {MAX_REQUEST_BYTES}",
                    one.len()
                )));
            }
            let Worker { req, out: answer } = &mut *workers[0];
            refused += usize::from(decider.answer(req, Ok(one.as_bytes()), None, answer));
            out.write_all(answer).map_err(write_err)?;
        }
        (None, Some(path)) => {
            let name = path.display().to_string();
            let source: Box<dyn Read> = if name == "-" {
                Box::new(std::io::stdin())
            } else {
                let meta = std::fs::metadata(path).map_err(|e| Fatal(format!("cannot read `{name}`: {e}")))?;
                if meta.is_dir() {
                    return Err(Fatal(format!("`{name}` is a directory: give a JSON Lines file, or - for stdin")));
                }
                Box::new(std::fs::File::open(path).map_err(|e| Fatal(format!("cannot read `{name}`: {e}")))?)
            };
            let mut reader = BufReader::with_capacity(CHUNK_BYTES, source);
            // Lines are read into one buffer per chunk, decided by the workers (each a
            // contiguous run of lines, into its own output buffer), then written in input
            // order: output line N always answers input line N. A chunk is what has been
            // read already (at most `CHUNK_LINES`), so a line typed on a terminal is
            // answered at once and a file is decided thousands of lines at a time.
            let mut chunk = Chunk::default();
            let mut buf = Vec::new();
            let mut number = 0;
            let mut failure = None;
            while failure.is_none() {
                chunk.clear();
                let mut end = false;
                while chunk.lines.len() < CHUNK_LINES {
                    number += 1;
                    match read_line_bounded(&mut reader, &mut buf, MAX_REQUEST_BYTES) {
                        Err(e) => {
                            failure = Some(Fatal(format!("cannot read `{name}`: {e}")));
                            break;
                        }
                        Ok(Line::End) => {
                            end = true;
                            break;
                        }
                        Ok(Line::Read) => chunk.push(number, Some(&buf)),
                        Ok(Line::TooLong) => chunk.push(number, None),
                    }
                    if reader.buffer().is_empty() {
                        break;
                    }
                }
                // The lines before a read error are still answered.
                refused += decider.chunk(&mut workers, &chunk);
                for worker in &workers {
                    out.write_all(&worker.out).map_err(write_err)?;
                }
                out.flush().map_err(write_err)?;
                if end {
                    break;
                }
            }
            if let Some(failure) = failure {
                return Err(failure);
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

/// Workers deciding `--inputs` lines at most (the machine's cores, up to this).
const MAX_WORKERS: usize = 16;
/// Lines per chunk: enough that starting the workers is a small part of a chunk's time.
const CHUNK_LINES: usize = 4096;
/// The input buffer's size: a chunk is at most what one refill reads.
const CHUNK_BYTES: usize = 1 << 20;

/// A chunk of input lines: their bytes back to back, and per line its number and range
/// (`None` for a line longer than a request may be).
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    lines: Vec<(usize, Option<(usize, usize)>)>,
}

impl Chunk {
    fn clear(&mut self) {
        self.bytes.clear();
        self.lines.clear();
    }

    fn push(&mut self, number: usize, line: Option<&[u8]>) {
        let range = line.map(|l| {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(l);
            (start, self.bytes.len())
        });
        self.lines.push((number, range));
    }
}

/// One worker's reused request and the answers to its run of a chunk's lines. Workers are
/// padded to cache lines of their own: both are written on every line, and two workers side
/// by side made two cores slower than one.
struct Worker<'p> {
    req: ruledeck::Request<'p>,
    out: Vec<u8>,
}

/// Answers request lines: what every worker shares.
struct Decider<'a> {
    engine: &'a Engine,
    args: &'a Args<'a>,
    /// The release and version stamped on results from a store.
    stamp: Option<(Value, Value)>,
}

impl Decider<'_> {
    /// Decides a chunk, one contiguous run of lines per request (worker), each into its
    /// output buffer; returns how many were refused.
    fn chunk(&self, workers: &mut [CachePadded<Worker<'_>>], chunk: &Chunk) -> usize {
        let per = chunk.lines.len().div_ceil(workers.len()).max(1);
        let run = |worker: &mut Worker<'_>, lines: &[(usize, Option<(usize, usize)>)]| {
            let Worker { req, out } = worker;
            out.clear();
            let mut refused = 0;
            for &(number, range) in lines {
                let bytes = match range {
                    Some((start, end)) => Ok(&chunk.bytes[start..end]),
                    None => Err(format!("line is longer than {MAX_REQUEST_BYTES} bytes, the limit for one request")),
                };
                refused += usize::from(self.answer(req, bytes, Some(number), out));
            }
            refused
        };
        let mut parts = chunk.lines.chunks(per);
        let work: Vec<(&mut Worker<'_>, &[_])> =
            workers.iter_mut().map(|w| (&mut **w, parts.next().unwrap_or(&[]))).collect();
        // One worker: no thread to start.
        if chunk.lines.len() <= per {
            return work.into_iter().map(|(worker, lines)| run(worker, lines)).sum();
        }
        std::thread::scope(|scope| {
            let mut work = work.into_iter();
            let (first, first_lines) = work.next().expect("at least one worker");
            let run = &run;
            let handles: Vec<_> = work.map(|(worker, lines)| scope.spawn(move || run(worker, lines))).collect();
            let mine = run(first, first_lines);
            mine + handles.into_iter().map(|h| h.join().expect("an eval worker panicked")).sum::<usize>()
        })
    }

    /// Appends the answer to one request line to `out` (a decision, an error naming the
    /// line, or `null` for a blank line); `true` when the request was refused. `Err` is a
    /// line refused before parsing (too long). Each line is parsed once.
    fn answer(
        &self,
        req: &mut ruledeck::Request<'_>,
        bytes: Result<&[u8], String>,
        line: Option<usize>,
        out: &mut Vec<u8>,
    ) -> bool {
        let args = self.args;
        let mut refused = false;
        let doc = if bytes.as_ref().is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace)) && line.is_some() {
            Value::Null
        } else {
            req.reset();
            let result = bytes
                .and_then(|bytes| apply_json(req, bytes).map_err(|e| e.to_string()))
                .and_then(|()| self.engine.run(req).map_err(|e| e.to_string()));
            match result {
                // The common answer is written straight from the outcome: building the tree
                // and dropping it was 40% of a line.
                Ok(()) if !args.explain => {
                    let stamp = self.stamp.as_ref().map(|(release, version)| (release, version));
                    // Writing JSON into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, &OutcomeDoc { outcome: &req.outcome(), stamp });
                    out.push(b'\n');
                    return false;
                }
                Ok(()) => {
                    let mut doc = outcome_json(&req.outcome(), args.explain);
                    if let (Some((release, version)), Value::Object(map)) = (&self.stamp, &mut doc) {
                        map.insert("release".into(), release.clone());
                        map.insert("version".into(), version.clone());
                    }
                    doc
                }
                Err(error) => {
                    refused = true;
                    let mut doc = json!({"scene": args.scene, "instance": args.instance, "error": error});
                    if let Some(n) = line {
                        doc["line"] = json!(n);
                    }
                    doc
                }
            }
        };
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &doc);
        out.push(b'\n');
        refused
    }
}
