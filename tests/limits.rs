//! The limit table of docs/language.md §7 states every limit in `ruledeck::limits` (every
//! `pub const` of src/limits.rs is compared).

use ruledeck::limits::*;

/// `12345678` as `12,345,678`, the way the table writes numbers.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_documented_limits_are_the_code_limits() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/language.md")).unwrap();
    let table = &docs[docs.find("## 7. Limits").expect("the limits section")..];
    let table = &table[..table.find("What is **not** limited").expect("the end of the table")];
    let row = |label: &str| -> &str {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("docs/language.md §7 has no row `{label}`"))
    };
    // (row label, constant's name, text the row must hold).
    macro_rules! number {
        ($label:expr, $name:ident) => {
            ($label, stringify!($name), grouped($name as u64))
        };
    }
    let cases = [
        number!("source file size", MAX_SOURCE_BYTES),
        number!("nesting depth", MAX_NESTING),
        number!("token length", MAX_TOKEN_BYTES),
        number!("fields per decision type", MAX_FIELDS),
        number!("strategies per instance", MAX_STRATEGIES),
        number!("groups per experiment", MAX_GROUPS),
        number!("tags per deck", MAX_TAGS),
        number!("list literal", MAX_LIST_LEN),
        number!("compiled regex size", MAX_REGEX_COMPILED_BYTES),
        number!("regex nesting", MAX_REGEX_NESTING),
        number!("percentages", BUCKETS),
        number!("bundle size", MAX_BUNDLE_BYTES),
        number!("data file (`--tags`)", MAX_DATA_FILE_BYTES),
        number!("one request", MAX_REQUEST_BYTES),
        number!("JSON nesting", MAX_JSON_DEPTH),
        number!("compiled condition height", MAX_TREE_HEIGHT),
        number!("engine cache", CACHE_CAPACITY),
        number!("near cache (per thread)", NEAR_CACHE_SLOTS),
        number!("HTTP body (`serve`)", MAX_HTTP_BODY_BYTES),
        number!("batch size (`serve`)", MAX_BATCH_REQUESTS),
        number!("body read time (`serve`)", HTTP_BODY_TIMEOUT_MS),
        number!("header read time (`serve`)", HTTP_HEADER_TIMEOUT_MS),
        number!("events per request (`serve`)", MAX_EVENTS_PER_REQUEST),
        number!("decision log file (`serve`)", DECISION_LOG_ROTATE_BYTES),
        // A bare `5` would be found in any row; the row names the oldest file kept.
        ("decision log file (`serve`)", "DECISION_LOG_FILES", format!("`PATH.{DECISION_LOG_FILES}`")),
        number!("decision log queue (`serve`)", DECISION_LOG_QUEUE),
        number!("token file (`serve`)", MAX_TOKEN_FILE_BYTES),
        number!("providers file (`serve`)", MAX_PROVIDERS_FILE_BYTES),
        number!("provider answer (`serve`)", MAX_PROVIDER_ANSWER_BYTES),
        number!("outreach windows", MAX_WINDOW_SECONDS),
        number!("window entries", MAX_WINDOW_ENTRIES),
        number!("unit ids", MAX_UNIT_IDS),
        number!("commit attempts (outreach)", MAX_COMMIT_ATTEMPTS),
        number!("Redis state call (outreach)", REDIS_STATE_TIMEOUT_MS),
        number!("fan-out units", MAX_FANOUT_UNITS),
        number!("fan-out index entries", MAX_FANOUT_ENTRIES),
    ];
    for (label, name, text) in &cases {
        let row = row(label);
        assert!(row.contains(text.as_str()), "`{label}`: the docs say {row:?}, the code's {name} says {text}");
    }
    // Every constant of src/limits.rs is in the list above, so a new limit cannot be left
    // out of the table unnoticed.
    let code = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/limits.rs")).unwrap();
    let declared: Vec<&str> = code
        .lines()
        .filter_map(|l| l.strip_prefix("pub const "))
        .map(|l| l.split(':').next().unwrap().trim())
        .collect();
    assert!(declared.len() >= cases.len(), "src/limits.rs declares {declared:?}");
    let checked: Vec<&str> = cases.iter().map(|(_, name, _)| *name).collect();
    let unchecked: Vec<&&str> = declared.iter().filter(|d| !checked.contains(d)).collect();
    assert!(unchecked.is_empty(), "limits not compared with docs/language.md §7: {unchecked:?}");
}

/// serde_json's own recursion limit is what MAX_JSON_DEPTH documents: nesting below it
/// parses, nesting that reaches it is refused.
#[test]
fn json_nesting_beyond_the_limit_is_refused() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(ruledeck::engine::parse_json(nested(MAX_JSON_DEPTH - 1).as_bytes()).is_ok());
    let err = ruledeck::engine::parse_json(nested(MAX_JSON_DEPTH).as_bytes()).unwrap_err();
    assert!(err.to_string().contains("recursion limit exceeded"), "{err}");
}
