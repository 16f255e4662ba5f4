//! The `ruledeck` command line. Owns argument parsing, file I/O, output and exit codes; all
//! language work is the library's.
//!
//! Exit codes: 0 success, 1 the input has errors (diagnostics, failed tests), 2 usage or
//! I/O errors (and, for `test`, decks that do not compile), 3 `eval` refused a request.

mod build;
mod check;
mod diff;
mod eval;
mod files;
mod fmt;
mod refs;
mod release;
#[cfg(feature = "outreach")]
mod replay;
#[cfg(feature = "serve")]
mod serve;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
        /// Judge tag status against this store's current release.
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Make decisions: one request (`--input`) or one per line (`--inputs`), printed as JSON.
    Eval {
        /// `.rule` files or directories, or one compiled `.rdb` bundle.
        #[arg(required_unless_present = "store", conflicts_with = "store")]
        files: Vec<PathBuf>,
        /// Decide with a stored release (the current one unless `--release`).
        #[arg(long)]
        store: Option<PathBuf>,
        /// With `--store`: the release to decide with.
        #[arg(long, requires = "store")]
        release: Option<u64>,
        /// The scene whose instance decides (`payment` in `payment.installments`).
        #[arg(long)]
        scene: String,
        /// The instance of that scene that decides (`installments`).
        #[arg(long)]
        instance: String,
        /// One request as JSON: keys, pass-through tags, optional `now`.
        #[arg(long, conflicts_with = "inputs", required_unless_present = "inputs")]
        input: Option<String>,
        /// A JSON Lines file of requests (`-` for stdin); one result line per input line, in order.
        #[arg(long)]
        inputs: Option<PathBuf>,
        /// File-backed provider: `{"user": {"u-1001": {"risk_score": 12}}}`.
        #[arg(long)]
        tags: Option<PathBuf>,
        /// Add a trace of every tag read, rule and strategy tried.
        #[arg(long)]
        explain: bool,
    },
    /// Run the `test` blocks; the last line is `N passed, M failed`.
    Test {
        /// `.rule` files, or directories searched recursively for them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Run only tests whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Data file for `expect tag` expectations (the same format as `eval --tags`).
        #[arg(long)]
        tags: Option<PathBuf>,
        /// Check `expect tag` expectations against the real sources of a `serve --providers`
        /// file (with `--tags`, the file serves the provider names the configuration does not).
        #[cfg(feature = "serve")]
        #[arg(long)]
        providers: Option<PathBuf>,
        /// Report, per instance, the strategies, groups and defaults no test reached.
        #[arg(long)]
        coverage: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compile rule files into a bundle.
    Build {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The bundle to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Format rule files in place in the one canonical layout (`-`: stdin to stdout).
    Fmt {
        /// `.rule` files, directories searched recursively for them, or `-` for stdin.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; list the files that would change and exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Check, run the tests and publish a new release to a store.
    Release {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The store directory (created if it does not exist).
        #[arg(long)]
        store: PathBuf,
        /// Data file for the tests' `expect tag` expectations.
        #[arg(long)]
        tags: Option<PathBuf>,
        /// Why: recorded in the manifest and the journal.
        #[arg(long)]
        note: Option<String>,
    },
    /// The release history, newest first.
    Releases {
        #[arg(long)]
        store: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Publish a new release with release N's content (rolls forward).
    Rollback {
        /// The release whose content to bring back.
        release: u64,
        #[arg(long)]
        store: PathBuf,
        #[arg(long)]
        note: Option<String>,
    },
    /// What publishing FILES would change against the store's current release.
    Diff {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        store: PathBuf,
        /// Sample requests (JSON Lines): count the decisions that would change.
        #[arg(long)]
        inputs: Option<PathBuf>,
        /// File-backed provider for the sample.
        #[arg(long, requires = "inputs")]
        tags: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Which rules (directly or through other rules), strategies, instances and tests use a tag.
    Refs {
        /// The tag's full name, like `user.risk_score`.
        tag: String,
        /// `.rule` files or directories (the draft).
        #[arg(required_unless_present = "store", conflicts_with = "store")]
        files: Vec<PathBuf>,
        /// Ask a store's release instead: what the live deck feeds from the tag.
        #[arg(long)]
        store: Option<PathBuf>,
        /// With `--store`: the release to ask (the current one by default).
        #[arg(long, requires = "store")]
        release: Option<u64>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The decision service: HTTP/JSON decisions over FILES or a store's current release.
    #[cfg(feature = "serve")]
    Serve {
        /// `.rule` files or directories, or one `.rdb` bundle.
        #[arg(required_unless_present = "store", conflicts_with = "store")]
        files: Vec<PathBuf>,
        /// Serve this store's current release, and swap to each new one.
        #[arg(long)]
        store: Option<PathBuf>,
        /// File-backed provider for every tag: `{"user": {"u-1001": {"risk_score": 12}}}`.
        /// With `--providers`, it serves only the provider names the configuration does not.
        #[arg(long)]
        tags: Option<PathBuf>,
        /// Tag providers by name (`[providers.NAME]` tables, kinds file, http, redis, package).
        #[arg(long)]
        providers: Option<PathBuf>,
        /// Write one JSON line per decision to this file (rotated by size); off when not given.
        #[arg(long)]
        decision_log: Option<PathBuf>,
        /// Rotate the decision log when it would grow past this many bytes (default 64 MiB).
        #[arg(long, requires = "decision_log")]
        decision_log_rotate_bytes: Option<u64>,
        /// Require `Authorization: Bearer TOKEN` (one token a line in FILE, re-read when it
        /// changes) on every endpoint but /healthz and /readyz.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// How long a request body may take to arrive, in milliseconds (default 10000; 408 after).
        #[arg(long)]
        body_timeout_ms: Option<u64>,
        /// How long a request's line and headers may take, in milliseconds (default 10000;
        /// the connection is closed after it).
        #[arg(long)]
        header_timeout_ms: Option<u64>,
        /// Turn `POST /v1/events` on: behavior events in, reach actions out, with the outreach
        /// state (windows, caps, dedup, budgets, ingested ids, tracking) kept in this directory,
        /// or shared with other replicas on Redis (`redis://HOST:PORT/DB`).
        #[arg(long)]
        outreach_state: Option<PathBuf>,
        /// The address to listen on (port 0 picks a free port; the first line of stdout
        /// says which).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Print the bytecode, with the source line of each instruction.
    Disasm {
        /// `.rule` files or directories, or one `.rdb` bundle.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run outreach over a behavior-event log (JSON Lines): one JSON line per tracking
    /// record on stdout, a summary on stderr.
    #[cfg(feature = "outreach")]
    Replay {
        /// The event log: one JSON object a line with `event`, `time`, the unit key, the
        /// fields and an optional `id`.
        events: PathBuf,
        /// `.rule` files or directories (or `--store`).
        #[arg(required_unless_present = "store", conflicts_with = "store")]
        files: Vec<PathBuf>,
        /// Run a stored release's deck (the current one unless `--release`); records then
        /// carry the release and their instance's version.
        #[arg(long)]
        store: Option<PathBuf>,
        /// With `--store`: the release to run.
        #[arg(long, requires = "store")]
        release: Option<u64>,
        /// Keep state (windows, caps, dedup, budgets, ingested ids, tracking) in this
        /// directory across runs, or in Redis (`redis://HOST:PORT/DB`, shared by several
        /// deciders); in memory without.
        #[arg(long)]
        state: Option<PathBuf>,
        /// With a Redis `--state`: the prefix of every key (one per deck sharing a Redis).
        #[arg(long, default_value = "ruledeck:outreach")]
        state_prefix: String,
        /// File-backed provider for loaded tags (and channel zones).
        #[arg(long)]
        tags: Option<PathBuf>,
        /// Events per durable commit.
        #[arg(long, default_value_t = ruledeck::outreach::DEFAULT_BATCH)]
        batch: usize,
        /// Also keep every tracking record and ingested event in this SQLite database, for
        /// attribution queries (created if missing; caught up from the state if behind).
        #[arg(long)]
        tracking_db: Option<PathBuf>,
    },
    /// The language server, speaking LSP on stdin/stdout (started by editors).
    #[cfg(feature = "lsp")]
    Lsp,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, format, store } => match check::run(&files, format, store.as_deref()) {
            // Tools that asked for JSON get JSON for I/O failures too.
            Err(files::Fatal(message)) if format == Format::Json => {
                println!("{}", serde_json::json!({"diagnostics": [], "errors": 0, "warnings": 0, "fatal": message}));
                return ExitCode::from(2);
            }
            other => other,
        },
        Command::Eval { files, store, release, scene, instance, input, inputs, tags, explain } => {
            eval::run(eval::Args {
                paths: &files,
                scene: &scene,
                instance: &instance,
                input: input.as_deref(),
                inputs: inputs.as_deref(),
                tags: tags.as_deref(),
                explain,
                store: store.as_deref().map(|dir| (dir, release)),
            })
        }
        Command::Release { files, store, tags, note } => {
            release::release(&files, &store, tags.as_deref(), note.as_deref())
        }
        Command::Releases { store, format } => release::releases(&store, format),
        Command::Rollback { release, store, note } => release::rollback(release, &store, note.as_deref()),
        Command::Diff { files, store, inputs, tags, format } => {
            diff::run(&files, &store, inputs.as_deref(), tags.as_deref(), format)
        }
        Command::Refs { tag, files, store, release, format } => {
            refs::run(&tag, &files, store.as_deref().map(|dir| (dir, release)), format)
        }
        #[cfg(feature = "serve")]
        Command::Test { files, filter, tags, providers, coverage, format } => {
            test::run(&files, filter.as_deref(), tags.as_deref(), providers.as_deref(), coverage, format)
        }
        #[cfg(not(feature = "serve"))]
        Command::Test { files, filter, tags, coverage, format } => {
            test::run(&files, filter.as_deref(), tags.as_deref(), None, coverage, format)
        }
        Command::Build { files, output } => build::build(&files, &output),
        Command::Disasm { files } => build::disasm(&files),
        #[cfg(feature = "serve")]
        Command::Serve {
            files,
            store,
            tags,
            providers,
            decision_log,
            decision_log_rotate_bytes,
            token_file,
            body_timeout_ms,
            header_timeout_ms,
            outreach_state,
            listen,
        } => serve::run(serve::Args {
            paths: &files,
            store: store.as_deref(),
            tags: tags.as_deref(),
            providers: providers.as_deref(),
            options: ruledeck::serve::Options {
                listen,
                decision_log,
                decision_log_rotate_bytes,
                token_file,
                body_timeout_ms,
                header_timeout_ms,
                outreach_state,
                outreach_sources: None,
            },
        }),
        #[cfg(feature = "outreach")]
        Command::Replay { events, files, store, release, state, state_prefix, tags, batch, tracking_db } => {
            replay::run(replay::Args {
                events: &events,
                paths: &files,
                store: store.as_deref().map(|dir| (dir, release)),
                state: state.as_deref(),
                state_prefix: &state_prefix,
                tags: tags.as_deref(),
                batch,
                tracking_db: tracking_db.as_deref(),
            })
        }
        #[cfg(feature = "lsp")]
        Command::Lsp => match ruledeck::lsp::run_stdio() {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => Err(files::Fatal(format!("language server: {e}"))),
        },
        Command::Fmt { files, check } => fmt::run(&files, check),
    };
    match result {
        Ok(code) => code,
        Err(files::Fatal(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
