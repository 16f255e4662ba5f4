//! `ruledeck replay`: run outreach over a behavior-event log.
//!
//! Prints one JSON line per tracking record (reaches sent, held, suppressed, dropped;
//! control-group decisions; late and invalid events) once it is durable in the state, then
//! a summary on stderr. The deck comes from rule files or from a release store (then every
//! record carries the release and its instance's version). Exit codes: 0 done (invalid lines
//! are counted, not fatal); 1 the deck does not compile, or the store refuses the release;
//! 2 usage, I/O or state errors.

use std::borrow::Cow;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::files::{read_line_bounded, Line};
use ruledeck::limits::MAX_REQUEST_BYTES;
use ruledeck::outreach::state::RedisStore;
use ruledeck::outreach::tracking::TrackingDb;
use ruledeck::outreach::Outreach;
use serde_json::json;

use crate::files::{check_files, store_refused, Fatal};

pub struct Args<'a> {
    pub events: &'a Path,
    pub paths: &'a [PathBuf],
    /// A release store and the release to run (`None`: its current one), instead of `paths`.
    pub store: Option<(&'a Path, Option<u64>)>,
    /// A state directory, or a `redis://` URL.
    pub state: Option<&'a Path>,
    pub state_prefix: &'a str,
    pub tags: Option<&'a Path>,
    pub batch: usize,
    /// A SQLite tracking database to keep in step with the state.
    pub tracking_db: Option<&'a Path>,
}

pub fn run(args: Args<'_>) -> Result<ExitCode, Fatal> {
    let Args { events, paths, store, state, state_prefix, tags, batch, tracking_db } = args;
    let (program, release) = match store {
        Some((dir, number)) => match ruledeck::release::Store::open(dir).and_then(|s| s.load(number)) {
            Ok(loaded) => {
                let versions: Vec<(String, u64)> =
                    loaded.manifest.instances.iter().map(|(name, i)| (name.clone(), i.version)).collect();
                (loaded.program, Some((loaded.manifest.release, versions)))
            }
            Err(e) => return Ok(store_refused(e)),
        },
        None => {
            let checked = match check_files(paths)? {
                Ok(checked) => checked,
                Err(code) => return Ok(code),
            };
            let program =
                ruledeck::compile::compile(&checked).map_err(|e| Fatal(format!("internal compiler error: {e}")))?;
            (std::sync::Arc::new(program), None)
        }
    };
    let tags = crate::eval::tags_provider(tags, &program)?;
    let redis_url = state.map(ruledeck::outreach::state::redis_url).transpose().map_err(Fatal)?.flatten();
    let mut outreach = match redis_url {
        Some(url) => {
            let store = RedisStore::open(url, state_prefix).map_err(Fatal)?;
            Outreach::with_store(program, tags, Box::new(store))
        }
        None => Outreach::open(program, tags, state),
    }
    .map_err(|e| Fatal(e.to_string()))?;
    if let Some((number, versions)) = release {
        outreach = outreach.with_release(number, versions);
    }
    outreach.batch_size = batch.max(1);
    let mut tracking = match (tracking_db, state) {
        (Some(path), Some(state)) => {
            // The database copies records by their position in one state's log: it must
            // follow the same state every run.
            let identity = match redis_url {
                Some(url) => format!("{url}#{state_prefix}"),
                None => std::fs::canonicalize(state).unwrap_or_else(|_| state.to_path_buf()).display().to_string(),
            };
            Some(TrackingDb::open(path, &identity).map_err(|e| Fatal(format!("`{}`: {e}", path.display())))?)
        }
        (Some(_), None) => {
            return Err(Fatal(
                "--tracking-db needs --state: the database follows a durable state's tracking log".into(),
            ))
        }
        (None, _) => None,
    };
    let sync = |tracking: &mut Option<TrackingDb>, outreach: &Outreach| match tracking {
        Some(db) => db.sync(outreach).map(drop).map_err(|e| Fatal(e.to_string())),
        None => Ok(()),
    };
    let file = std::fs::File::open(events).map_err(|e| Fatal(format!("cannot read `{}`: {e}", events.display())))?;
    let mut reader = BufReader::new(file);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let write_err = |e: std::io::Error| Fatal(format!("cannot write output: {e}"));
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        let read = read_line_bounded(&mut reader, &mut buf, MAX_REQUEST_BYTES)
            .map_err(|e| Fatal(format!("cannot read `{}`: {e}", events.display())))?;
        line_no += 1;
        let too_long;
        let text = match read {
            Line::End => break,
            Line::TooLong => {
                too_long = format!("{{\"too_long_line\": {line_no}}}");
                Cow::Borrowed(too_long.as_str())
            }
            // The strict check first: it is the fast one, and nearly every line passes it.
            Line::Read => std::str::from_utf8(&buf).map_or_else(|_| String::from_utf8_lossy(&buf), Cow::Borrowed),
        };
        if text.trim().is_empty() {
            continue;
        }
        if let Some(db) = &mut tracking {
            db.note_event(&outreach, &text);
        }
        let records = outreach.ingest_line(&text).map_err(|e| Fatal(e.to_string()))?;
        if !records.is_empty() {
            sync(&mut tracking, &outreach)?;
            for r in records {
                writeln!(out, "{r}").map_err(write_err)?;
            }
            // Out as soon as durable: a crash later in the log loses no printed record.
            out.flush().map_err(write_err)?;
        }
    }
    let last = outreach.commit().map_err(|e| Fatal(e.to_string()))?;
    // Also catches up records an earlier, interrupted run committed but never copied.
    sync(&mut tracking, &outreach)?;
    for r in last {
        writeln!(out, "{r}").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    eprintln!("summary: {}", json!(outreach.summary()));
    Ok(ExitCode::SUCCESS)
}
