//! Every fixed limit of ruledeck, in one place.
//!
//! Owns: the numbers. Each stage that enforces a limit imports it from here, and
//! `docs/language.md` §7 lists them all (a test reads that table and compares it with these
//! constants, so the documentation cannot drift). Must not: enforce anything itself.

/// Buckets in the A/B space: a percentage `p%` (two decimals at most) covers `p × 100` of
/// them, so `12.34%` is 1234 buckets (a fact of the language more than a limit, kept here so
/// the checker and the VM share it without one reaching into the other).
pub const BUCKETS: u32 = 10_000;
/// Largest source file, in bytes (E0002); also the most a reader takes from a `.rule` file.
pub const MAX_SOURCE_BYTES: usize = 8 * 1024 * 1024;
/// Deepest nesting of brackets plus consecutive `not` / unary `-` (E0003).
pub const MAX_NESTING: usize = 64;
/// Longest single token: a name, number or text literal with its quotes (E0004).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Most elements in one list literal (E0013).
pub const MAX_LIST_LEN: usize = 10_000;
/// Most tags one deck may declare: request slots are numbered with 16 bits (E0015).
pub const MAX_TAGS: usize = 65_536;
/// Most fields in one decision type (E0015).
pub const MAX_FIELDS: usize = 1_024;
/// Most strategies in one instance (E0015).
pub const MAX_STRATEGIES: usize = 10_000;
/// Most groups in one experiment (E0015).
pub const MAX_GROUPS: usize = 1_000;
/// Largest compiled form of one `matches` pattern, in bytes (E0205).
pub const MAX_REGEX_COMPILED_BYTES: usize = 256 * 1024;
/// Deepest nesting of groups and repetitions in one `matches` pattern (E0204).
pub const MAX_REGEX_NESTING: u32 = 32;
/// Largest bundle accepted, in bytes; a reader stops at one byte past it.
pub const MAX_BUNDLE_BYTES: usize = 256 * 1024 * 1024;
/// Largest JSON data file (`--tags`), in bytes.
pub const MAX_DATA_FILE_BYTES: usize = 1024 * 1024 * 1024;
/// Longest request document: `--input`, and each line of `--inputs`, in bytes.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Nesting of arrays and objects at which any JSON input is refused (serde_json's own
/// bound: 127 levels parse, 128 do not).
pub const MAX_JSON_DEPTH: usize = 128;
/// Most loaded tag values the engine's cache holds (past it, entries are evicted by
/// S3-FIFO: those read once go first).
pub const CACHE_CAPACITY: u64 = 1_000_000;
/// Cached tag values each deciding thread keeps in front of the shared cache (its entries
/// last read, one per slot of a table indexed by the key's hash).
pub const NEAR_CACHE_SLOTS: usize = 256;
/// Highest condition (a `when` or rule body, counting the rules it calls) that the VM
/// compiles to closures; a higher one runs in the interpreter (same result). Compiled
/// conditions recurse on the native stack, the interpreter's frames live on the heap.
pub const MAX_TREE_HEIGHT: u32 = 32;
/// Largest HTTP request body `ruledeck serve` reads, in bytes (413 above it).
pub const MAX_HTTP_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Longest `ruledeck serve` waits for a request's line and headers, in milliseconds (the
/// connection is closed after it).
pub const HTTP_HEADER_TIMEOUT_MS: u64 = 10_000;
/// Longest `ruledeck serve` waits for a request body to arrive, in milliseconds (408 after it).
pub const HTTP_BODY_TIMEOUT_MS: u64 = 10_000;
/// Most requests in one `POST /v1/decide/batch` (413 above it).
pub const MAX_BATCH_REQUESTS: usize = 10_000;
/// Most events in one `POST /v1/events` (413 above it).
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Size at which `ruledeck serve`'s decision log file is rotated, in bytes (unless
/// `--decision-log-rotate-bytes` says otherwise).
pub const DECISION_LOG_ROTATE_BYTES: u64 = 64 * 1024 * 1024;
/// Rotated decision log files kept (`PATH.1` … `PATH.5`) besides the current one.
pub const DECISION_LOG_FILES: usize = 5;
/// Decision log lines queued for the writer; a line that finds the queue full is dropped.
pub const DECISION_LOG_QUEUE: usize = 65_536;
/// Largest `--token-file` `ruledeck serve` reads, in bytes.
pub const MAX_TOKEN_FILE_BYTES: usize = 64 * 1024;
/// Largest `--providers` configuration file `ruledeck serve` reads, in bytes.
pub const MAX_PROVIDERS_FILE_BYTES: usize = 1024 * 1024;
/// Largest answer an `http` tag provider may send for one batch, in bytes (above it the
/// batch's tags are unknown).
pub const MAX_PROVIDER_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Longest window of a window tag (`within D`) and longest allowed lateness (`late D`) and
/// cap, dedup or quiet window, in seconds: 400 days (E0802, E0805). Runtime state per unit is
/// kept for at most this long plus the lateness.
pub const MAX_WINDOW_SECONDS: i64 = 400 * 86_400;
/// Entries one unit keeps for one window tag (its events inside the window). When an entry
/// is evicted to make room, windows that reach back to it read as missing until it ages out.
pub const MAX_WINDOW_ENTRIES: usize = 10_000;
/// Ids of ingested events one unit remembers (its events inside the horizon). When one is
/// dropped to make room, an event of that unit at or before its time that is not among
/// those left is taken for a duplicate: it may be one.
pub const MAX_UNIT_IDS: usize = 10_000;
/// Times one outreach batch is decided and committed when shared state (Redis) keeps
/// changing under it; past that, the batch is an error and nothing of it is committed.
pub const MAX_COMMIT_ATTEMPTS: usize = 64;
/// Longest wait for one call to a Redis outreach state (connect, read, write), in
/// milliseconds; past it the batch fails and nothing of it is committed.
pub const REDIS_STATE_TIMEOUT_MS: u64 = 5_000;
/// Most units one trigger of a fan-out scene decides for: the first ones in ascending key
/// order; the rest are skipped and counted (`fanout_skipped` in the replay summary).
pub const MAX_FANOUT_UNITS: usize = 10_000;
/// Entries (index events) one fan-out index keeps per value, such as the favorites of one
/// item. When one is evicted to make room (the oldest), a unit whose only matching index
/// event it was is not reached.
pub const MAX_FANOUT_ENTRIES: usize = 100_000;
