//! The properties the fuzz targets check, shared with the tests that replay their corpora.
//!
//! Owns: what "never crashes" means for each entry point. Each function panics exactly when
//! the property is violated, which is what libFuzzer reports as a crash — and what an
//! ordinary `#[test]` replaying the seed and regression files reports as a failure. Keeping
//! the properties here means the fuzzer and the test suite can never check different things.
#![doc(hidden)]

use crate::compile::bundle;
use crate::compile::program::{Program, Ty};
use crate::diagnostics::{render_json, render_text, Code};
use crate::source::Sources;
use crate::vm::{Input, Step};

/// Any bytes: decoding and parsing never panic, and rendering whatever diagnostics come out
/// never panics either.
pub fn parse_bytes(data: &[u8]) {
    let mut sources = Sources::new();
    let (_, problem) = crate::add_file_bytes(&mut sources, "fuzz.rule", data.to_vec());
    let diagnostics = match problem {
        Some(d) => vec![d],
        None => {
            let bump = bumpalo::Bump::new();
            match crate::syntax::parse(&bump, 0, &sources.get(0).text) {
                Ok(_) => Vec::new(),
                Err(d) => d,
            }
        }
    };
    let _ = render_text(&sources, &diagnostics);
}

/// Any UTF-8 text: checking never panics and never reports an internal error; a deck that
/// checks clean compiles into a program the verifier accepts.
pub fn check_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::compile(&[("fuzz.rule", text)]) {
        Ok(program) => {
            let _ = crate::compile::disasm::disassemble(&program);
            run_everything(&program);
        }
        Err(errors) => {
            assert!(
                !errors.diagnostics.iter().any(|d| d.code == Code::Internal),
                "internal error on a deck:\n{errors}"
            );
            let _ = render_text(&errors.sources, &errors.diagnostics);
            let _ = render_json(&errors.sources, &errors.diagnostics);
        }
    }
}

/// Any bytes: loading a bundle never panics, and a bundle the verifier accepts runs every
/// instance without panicking. The input is tried as it is and again behind a repaired
/// header (magic, version, length, checksum): random bytes almost never carry a valid
/// checksum, and without the repair the decoder and the verifier would hardly be reached.
/// The same bytes are read as a release manifest and as a release journal too.
pub fn bundle_bytes(data: &[u8]) {
    // The other files a release store reads back: manifests and the journal. Refused or
    // accepted, never a panic.
    let _ = crate::release::store::parse_manifest(data, 1);
    let _ = crate::release::store::parse_journal(data);
    let payload = if data.len() >= 24 && &data[..8] == bundle::MAGIC { &data[24..] } else { data };
    let mut repaired = Vec::with_capacity(24 + payload.len());
    repaired.extend_from_slice(bundle::MAGIC);
    repaired.extend_from_slice(&bundle::FORMAT_VERSION.to_le_bytes());
    repaired.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    repaired.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    repaired.extend_from_slice(payload);
    for bytes in [data, &repaired[..]] {
        if let Ok(program) = bundle::from_bytes(bytes) {
            let _ = crate::compile::disasm::disassemble(&program);
            run_everything(&program);
        }
    }
}

/// Runs every instance of a program once, supplying a plausible value for every tag.
pub fn run_everything(program: &Program) {
    for scene in &program.scenes {
        for instance in &scene.instances {
            let Ok(mut req) = program.request(&scene.name, &instance.name) else { continue };
            req.explain(true).now(1_795_000_000);
            for &e in &scene.keys {
                let key = program.entities[e as usize].key.clone();
                let _ = req.key(&key, "u-1");
            }
            for &t in &scene.passes {
                let tag = &program.tags[t as usize];
                let _ = req.pass(&tag.name, sample(program, tag.ty));
            }
            for _ in 0..program.tags.len() + 1 {
                match program.run(&mut req) {
                    Ok(Step::NeedTags) => {
                        let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
                        for t in needed {
                            let ty = program.tags[t as usize].ty;
                            req.supply(t, Some(sample(program, ty)));
                        }
                    }
                    Ok(Step::Done) => {
                        let outcome = req.outcome();
                        let _ = crate::engine::outcome_json(&outcome, true);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}

fn sample(program: &Program, ty: Ty) -> Input<'_> {
    match ty {
        Ty::Int => Input::Int(7),
        Ty::Float => Input::Float(0.5),
        Ty::Text => Input::Text("x"),
        Ty::Bool => Input::Bool(true),
        Ty::Time => Input::Time(1_790_000_000),
        Ty::Enum(e) => Input::Text(program.enums.get(e as usize).and_then(|m| m.first()).map_or("", String::as_str)),
        Ty::List(_) => Input::List(&[]),
    }
}

/// Any UTF-8 text: formatting never panics; a file that does not parse comes back as an
/// error and never as text; formatted text formats to itself.
pub fn fmt_idempotent(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match crate::fmt::format_source("fuzz.rule", text) {
        Ok(once) => {
            let twice = crate::fmt::format_source("fuzz.rule", &once)
                .unwrap_or_else(|e| panic!("formatted text does not format:\n{e}\n--- formatted:\n{once}"));
            assert_eq!(once, twice, "formatting is not idempotent; input:\n{text}");
        }
        Err(errors) => {
            assert!(
                !errors.diagnostics.iter().any(|d| d.code == Code::Internal),
                "internal formatter error:\n{errors}\n--- input:\n{text}"
            );
            let bump = bumpalo::Bump::new();
            assert!(
                crate::syntax::parse(&bump, 0, text.strip_prefix('\u{FEFF}').unwrap_or(text)).is_err(),
                "a file that parses was refused:\n{errors}"
            );
        }
    }
}

/// Any UTF-8 text that formats: the formatted text keeps the same comments, reports the same
/// diagnostics, compiles to the same program (ignoring source positions) and passes and
/// fails the same tests.
pub fn fmt_meaning(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(formatted) = crate::fmt::format_source("fuzz.rule", text) else { return };
    assert_eq!(comments(text), comments(&formatted), "comments differ; formatted:\n{formatted}");
    assert_eq!(meaning(text), meaning(&formatted), "meaning differs; input:\n{text}\n--- formatted:\n{formatted}");
}

/// The comments of a file, sorted (a multiset).
fn comments(src: &str) -> Vec<String> {
    use crate::syntax::lexer::{tokens, Token};
    let mut out: Vec<String> = tokens(src)
        .filter_map(|(t, r)| match t {
            Ok(Token::LineComment) => Some(src[r].trim_end().to_string()),
            Ok(Token::BlockComment) => Some(src[r].to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// What a deck means, with every source position left out: the diagnostic codes if it does
/// not check, else its warnings' codes, the compiled program (serialized without spans and
/// sources, and disassembled without source lines) and each test's outcome.
fn meaning(src: &str) -> String {
    let checked = match crate::check(&[("fuzz.rule", src)]) {
        Ok(c) => c,
        Err(errors) => {
            let mut codes: Vec<&str> = errors.diagnostics.iter().map(|d| d.code.as_str()).collect();
            codes.sort();
            return format!("errors {codes:?}");
        }
    };
    let mut program = match crate::compile::compile(&checked) {
        Ok(p) => p,
        Err(e) => return format!("internal {e}"),
    };
    let report = crate::testing::run(
        &checked,
        &program,
        &crate::testing::TestOptions { wall_clock: Some(1_795_000_000), ..Default::default() },
    );
    let mut warnings: Vec<&str> = checked.warnings.iter().map(|d| d.code.as_str()).collect();
    warnings.sort();
    let mut out = format!("warnings {warnings:?}\n");
    for line in crate::compile::disasm::disassemble(&program).lines() {
        out.push_str(line.split(" ; ").next().unwrap_or("").trim_end());
        out.push('\n');
    }
    for t in &report.tests {
        out.push_str(&format!("test {:?} {:?}\n", t.name, t.status));
        for f in &t.failures {
            out.push_str(&format!("  {} {} {} {:?}\n", f.expectation, f.expected, f.actual, f.why));
        }
    }
    program.spans.clear();
    program.sources.clear();
    out.push_str(&format!("{:?}", bundle::to_bytes(&program)));
    out
}

/// The deck [`outreach_events`] replays logs into: a count and a filtered sum over sliding
/// windows, late events, a channel cap, a dedup window and a count budget.
#[cfg(feature = "outreach")]
const OUTREACH_DECK: &str = r#"
entity user key uid
event tap by uid late 10m { n: int }
tag user.taps: int = count(tap) within 30m
tag user.big: int = sum(tap.n where n > 3) within 1h
channel push cap 2 per 1h
action "x" budget 5
scene s on tap {
  instance i -> reach { taps: int, big: int } {
    default => reach push "x" { taps: user.taps, big: user.big } dedup 10m
  }
}
"#;

/// One generated event: its unit, minute, id and field, decoded from four bytes.
#[cfg(feature = "outreach")]
#[derive(Clone, Copy)]
struct FuzzEvent {
    unit: u8,
    minute: i64,
    id: u8,
    n: i64,
}

/// Any bytes, read as an event log (four bytes an event: unit, minute, id, field; a byte
/// 0xFF starts a raw text line instead) replayed through the outreach runtime. Never a
/// panic, and against a brute-force reference: every window value a reach carries equals a
/// scan of the unit's ingested events (an id is a duplicate while its unit remembers it: for
/// 70 minutes, the deck's longest span plus its lateness, behind the unit's newest event,
/// from the id's latest appearance; late events included), every event that is neither late nor a duplicate decides exactly
/// once, no unit gets more than 2 sends in any hour or two sends within 10 minutes, at most 5
/// sends in all, and ingesting the same log again reaches nobody (it records invalid lines,
/// and events forgotten by then, as late).
#[cfg(feature = "outreach")]
pub fn outreach_events(data: &[u8]) {
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    use serde_json::{json, Value};

    static PROGRAM: OnceLock<std::sync::Arc<Program>> = OnceLock::new();
    let program = PROGRAM.get_or_init(|| std::sync::Arc::new(crate::compile(&[("fuzz.rule", OUTREACH_DECK)]).unwrap()));
    let base = 1_795_000_000i64; // a fixed instant: the log is in event time, never the clock
    let mut lines = Vec::new();
    let mut events: Vec<Option<FuzzEvent>> = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && lines.len() < 64 {
        if rest[0] == 0xFF {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            lines.push(String::from_utf8_lossy(&rest[1..end]).replace(['\n', '\r'], " "));
            events.push(None);
            rest = &rest[(end + 1).min(rest.len())..];
            continue;
        }
        let b = |i: usize| rest.get(i).copied().unwrap_or(0);
        let e = FuzzEvent { unit: b(0) % 3, minute: i64::from(b(1)), id: b(2) % 48, n: i64::from(b(3) % 8) };
        rest = &rest[4.min(rest.len())..];
        let time = crate::time::format(base + e.minute * 60);
        lines.push(
            json!({"id": e.id, "event": "tap", "time": time, "uid": format!("u{}", e.unit), "n": e.n}).to_string(),
        );
        events.push(Some(e));
    }
    let tags = crate::engine::TagsFile::from_json(json!({})).unwrap();
    let mut o = crate::outreach::Outreach::open(program.clone(), tags, None).unwrap();
    // Two batches at most: ids, windows and sends are read back from committed state too.
    o.batch_size = 32;
    let mut records = Vec::new();
    for l in &lines {
        records.extend(o.ingest_line(l).unwrap());
    }
    records.extend(o.commit().unwrap());
    let records: Vec<Value> = records.iter().map(|r| serde_json::from_str(r.get()).unwrap()).collect();

    // A raw line that happens to be a valid event is outside the reference: then only
    // "never a panic" is checked.
    let raw = events.iter().filter(|e| e.is_none()).count();
    if records.iter().filter(|r| r["outcome"] == "invalid").count() != raw {
        return;
    }
    // The reference: events ingested in log order (a unit's ids are remembered for 70
    // minutes behind its newest event); each new, non-late one decides with its windows
    // over the events ingested so far.
    let mut ingested: Vec<FuzzEvent> = Vec::new();
    let mut ids: BTreeMap<u8, Vec<(i64, u8)>> = BTreeMap::new();
    let mut latest: BTreeMap<u8, i64> = BTreeMap::new();
    let mut expected = Vec::new();
    for e in events.iter().flatten() {
        let before = latest.get(&e.unit).copied();
        let remembered = ids.entry(e.unit).or_default();
        // Forgotten once older than 70 minutes behind the newest event; seen again later in
        // event time, remembered from then on.
        remembered.retain(|&(t, _)| before.is_none_or(|l| t >= l - 70));
        if let Some(seen) = remembered.iter_mut().find(|(_, id)| *id == e.id) {
            seen.0 = seen.0.max(e.minute);
            continue;
        }
        remembered.push((e.minute, e.id));
        let late = before.is_some_and(|l| e.minute < l - 10);
        latest.entry(e.unit).and_modify(|l| *l = (*l).max(e.minute)).or_insert(e.minute);
        ingested.push(*e);
        if !late {
            let unit = || ingested.iter().filter(|x| x.unit == e.unit);
            let count = unit().filter(|x| (e.minute - 30..=e.minute).contains(&x.minute)).count() as i64;
            let big: i64 =
                unit().filter(|x| x.n > 3 && (e.minute - 60..=e.minute).contains(&x.minute)).map(|x| x.n).sum();
            expected.push((e.id.to_string(), e.minute, count, big));
        }
    }
    let decisions: Vec<&Value> = records.iter().filter(|r| r.get("scene").is_some()).collect();
    assert_eq!(decisions.len(), expected.len(), "one decision per new, non-late event: {decisions:?}");
    let mut sends: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (r, (id, minute, count, big)) in decisions.iter().zip(&expected) {
        assert_eq!(r["event"].as_str(), Some(id.as_str()), "decisions in log order");
        assert_eq!(r["payload"]["taps"], json!(count), "count window of {r}");
        assert_eq!(r["payload"]["big"], json!(big), "sum window of {r}");
        if r["outcome"] == "sent" {
            sends.entry(r["unit"].as_str().unwrap().to_string()).or_default().push(*minute);
        }
    }
    let total: usize = sends.values().map(Vec::len).sum();
    assert!(total <= 5, "the budget of 5 was exceeded: {sends:?}");
    for times in sends.values_mut() {
        times.sort_unstable();
        for (i, &t) in times.iter().enumerate() {
            let in_hour = times.iter().filter(|&&u| u > t - 60 && u <= t).count();
            assert!(in_hour <= 2, "more than 2 sends in the hour ending {t}: {times:?}");
            if i > 0 {
                assert!(t - times[i - 1] >= 10, "two sends within the dedup window: {times:?}");
            }
        }
    }
    let mut again = Vec::new();
    for l in &lines {
        again.extend(o.ingest_line(l).unwrap());
    }
    again.extend(o.commit().unwrap());
    let again: Vec<Value> = again.iter().map(|r| serde_json::from_str(r.get()).unwrap()).collect();
    assert!(
        again.iter().all(|r| r["outcome"] == "invalid" || r["outcome"] == "late"),
        "a second ingest recorded {again:?}"
    );
}
