//! The limit table of docs/language.md §7 states every limit in `ruledeck::limits`.

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
    let cases: [(&str, u64); 27] = [
        ("source file size", MAX_SOURCE_BYTES as u64),
        ("nesting depth", MAX_NESTING as u64),
        ("token length", MAX_TOKEN_BYTES as u64),
        ("fields per decision type", MAX_FIELDS as u64),
        ("strategies per instance", MAX_STRATEGIES as u64),
        ("groups per experiment", MAX_GROUPS as u64),
        ("tags per deck", MAX_TAGS as u64),
        ("list literal", MAX_LIST_LEN as u64),
        ("compiled regex size", MAX_REGEX_COMPILED_BYTES as u64),
        ("regex nesting", u64::from(MAX_REGEX_NESTING)),
        ("percentages", u64::from(BUCKETS)),
        ("bundle size", MAX_BUNDLE_BYTES as u64),
        ("data file (`--tags`)", MAX_DATA_FILE_BYTES as u64),
        ("one request", MAX_REQUEST_BYTES as u64),
        ("JSON nesting", MAX_JSON_DEPTH as u64),
        ("engine cache", CACHE_CAPACITY),
        ("HTTP body (`serve`)", MAX_HTTP_BODY_BYTES as u64),
        ("batch size (`serve`)", MAX_BATCH_REQUESTS as u64),
        ("body read time (`serve`)", HTTP_BODY_TIMEOUT_MS),
        ("header read time (`serve`)", HTTP_HEADER_TIMEOUT_MS),
        ("decision log file (`serve`)", DECISION_LOG_ROTATE_BYTES),
        ("decision log queue (`serve`)", DECISION_LOG_QUEUE as u64),
        ("token file (`serve`)", MAX_TOKEN_FILE_BYTES as u64),
        ("providers file (`serve`)", MAX_PROVIDERS_FILE_BYTES as u64),
        ("provider answer (`serve`)", MAX_PROVIDER_ANSWER_BYTES as u64),
        ("outreach windows", MAX_WINDOW_SECONDS as u64),
        ("window entries", MAX_WINDOW_ENTRIES as u64),
    ];
    for (label, value) in cases {
        let row = row(label);
        assert!(row.contains(&grouped(value)), "`{label}`: the docs say {row:?}, the code says {value}");
    }
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
