//! The outreach runtime: windows against a brute-force reference over generated event
//! logs, each reach filter's guarantee, replaying twice, and crash-restart of `ruledeck
//! replay` (a process aborted mid-replay, resumed, compared with an uninterrupted run).
#![cfg(feature = "outreach")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use ruledeck::engine::TagsFile;
use ruledeck::outreach::state::{Committed, RedbStore, Store, Versioned, Writes};
use ruledeck::outreach::{Outreach, Record};
use serde_json::{json, Value};

#[path = "common/redis.rs"]
mod redis_server;
use redis_server::Redis;

fn open(deck: &str, tags: Value, state: Option<&Path>) -> Outreach {
    let program = ruledeck::compile(&[("deck.rule", deck)]).unwrap_or_else(|e| panic!("{e}"));
    let mut o = Outreach::open(program, TagsFile::from_json(tags).unwrap(), state).unwrap();
    o.batch_size = usize::MAX;
    o
}

/// Records as JSON values, to look into.
fn values(records: Vec<Record>) -> Vec<Value> {
    records.iter().map(|r| serde_json::from_str(r.get()).unwrap()).collect()
}

/// Every record of replaying `lines` (one commit at the end).
fn replay(o: &mut Outreach, lines: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for l in lines {
        out.extend(o.ingest_line(l).unwrap());
    }
    out.extend(o.commit().unwrap());
    values(out)
}

fn sent(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| matches!(r["outcome"].as_str(), Some("sent" | "held"))).collect()
}

// ---- windows against a brute-force reference --------------------------------------------

const WINDOW_DECK: &str = r#"
entity user key uid
event view by uid late 2m { cat: enum(phone, book, case), price: int }
event buy by uid { amount: int }
tag user.phones: int = count(view where cat == phone) within 10m
tag user.spent: int = sum(buy.amount) within 10m
tag user.cheapest: int = min(view.price where price >= 10) within 10m
tag user.dearest: int = max(view.price) within 10m
tag user.last_cat_price: int = last(view.price where cat in [book, case]) within 10m
tag user.prices: int = distinct(view.price where not (cat == book)) within 10m
channel probe
scene totals on view {
  instance counts -> reach { phones: int, spent: int, prices: int } {
    default => reach probe "counts" { phones: user.phones, spent: user.spent, prices: user.prices }
  }
  instance cheapest -> reach { v: int } {
    strategy known when user.cheapest is present => reach probe "cheapest" { v: user.cheapest }
    default => none
  }
  instance dearest -> reach { v: int } {
    strategy known when user.dearest is present => reach probe "dearest" { v: user.dearest }
    default => none
  }
  instance last -> reach { v: int } {
    strategy known when user.last_cat_price is present => reach probe "last" { v: user.last_cat_price }
    default => none
  }
}
"#;

#[derive(Clone, Debug)]
struct Ev {
    id: usize,
    user: u8,
    buy: bool,
    cat: usize,
    price: i64,
    time: i64,
}

const CATS: [&str; 3] = ["phone", "book", "case"];
const T0: i64 = 1_795_248_000;

fn line(e: &Ev) -> String {
    let time = ruledeck::time::format(T0 + e.time);
    if e.buy {
        json!({"id": e.id.to_string(), "event": "buy", "time": time, "uid": format!("u{}", e.user), "amount": e.price})
    } else {
        json!({"id": e.id.to_string(), "event": "view", "time": time, "uid": format!("u{}", e.user),
               "cat": CATS[e.cat], "price": e.price})
    }
    .to_string()
}

/// What each instance should decide for each non-late `view`, by brute force over every
/// event ingested before it (and itself), in arrival order.
fn reference(events: &[Ev]) -> BTreeMap<(String, &'static str), Value> {
    let mut out = BTreeMap::new();
    for (k, e) in events.iter().enumerate() {
        let before = &events[..k];
        let latest = before.iter().filter(|x| x.user == e.user).map(|x| x.time).max();
        let late_by = if e.buy { 0 } else { 120 };
        if e.buy || latest.is_some_and(|l| e.time < l - late_by) {
            continue;
        }
        let window: Vec<&Ev> =
            events[..=k].iter().filter(|x| x.user == e.user && x.time >= e.time - 600 && x.time <= e.time).collect();
        let views = || window.iter().filter(|x| !x.buy);
        let phones = views().filter(|x| x.cat == 0).count();
        let spent: i64 = window.iter().filter(|x| x.buy).map(|x| x.price).sum();
        let prices: BTreeSet<i64> = views().filter(|x| x.cat != 1).map(|x| x.price).collect();
        let id = e.id.to_string();
        out.insert((id.clone(), "counts"), json!({"phones": phones, "spent": spent, "prices": prices.len()}));
        if let Some(v) = views().filter(|x| x.price >= 10).map(|x| x.price).min() {
            out.insert((id.clone(), "cheapest"), json!({ "v": v }));
        }
        if let Some(v) = views().map(|x| x.price).max() {
            out.insert((id.clone(), "dearest"), json!({ "v": v }));
        }
        // The latest time; among equal times the last to arrive.
        let last = views().filter(|x| x.cat != 0).max_by_key(|x| (x.time, x.id)).map(|x| x.price);
        if let Some(v) = last {
            out.insert((id.clone(), "last"), json!({ "v": v }));
        }
    }
    out
}

fn check_windows(raw: Vec<(u8, bool, usize, i64, i64)>) -> Result<(), TestCaseError> {
    let events: Vec<Ev> = raw
        .into_iter()
        .enumerate()
        .map(|(id, (user, buy, cat, price, time))| Ev { id, user, buy, cat, price, time })
        .collect();
    let lines: Vec<String> = events.iter().map(line).collect();
    let mut o = open(WINDOW_DECK, json!({}), None);
    let records = replay(&mut o, &lines);
    let mut got = BTreeMap::new();
    for r in sent(&records) {
        let key = (
            r["event"].as_str().unwrap().to_string(),
            match r["action"].as_str().unwrap() {
                "counts" => "counts",
                "cheapest" => "cheapest",
                "dearest" => "dearest",
                _ => "last",
            },
        );
        got.insert(key, r["payload"].clone());
    }
    prop_assert_eq!(got, reference(&events));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x0e7_2e4c4),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Out-of-order events (times jump back and forth), lateness (2m for views, 0 for
    /// buys) and window edges (times on a 30s grid, so events land exactly on `now − 10m`).
    #[test]
    fn windows_agree_with_brute_force(raw in prop::collection::vec(
        (0u8..3, prop::bool::weighted(0.2), 0usize..3, 0i64..40, (0i64..80).prop_map(|t| t * 30)),
        0..60,
    )) {
        check_windows(raw)?;
    }
}

#[test]
fn window_edges_are_inclusive_on_both_ends() {
    // Views at 0, 600 (exactly 10m later) and 601: at 600 both count, at 601 the first is out.
    let raw = vec![(0, false, 0, 5, 0), (0, false, 0, 5, 600), (0, false, 0, 5, 601)];
    check_windows(raw).unwrap();
    let events = [(0usize, 0i64), (1, 600), (2, 601)];
    let lines: Vec<String> =
        events.iter().map(|&(id, t)| line(&Ev { id, user: 0, buy: false, cat: 0, price: 5, time: t })).collect();
    let mut o = open(WINDOW_DECK, json!({}), None);
    let records = replay(&mut o, &lines);
    let phones: Vec<i64> = sent(&records)
        .iter()
        .filter(|r| r["action"] == "counts")
        .map(|r| r["payload"]["phones"].as_i64().unwrap())
        .collect();
    assert_eq!(phones, [1, 2, 2]);
}

// ---- filters ---------------------------------------------------------------------------

fn filter_deck(channel: &str, decision: &str) -> String {
    format!(
        r#"
entity user key uid
tag user.zone: text from "profile"
event tap by uid {{ n: int }}
{channel}
action "coin" budget 10 of amount
action "counted" cap 2 per 1h budget 3
scene s on tap {{
  instance i -> reach {{ amount: int }} {{
    default => {decision}
  }}
}}
"#
    )
}

fn taps(user: &str, times: &[&str]) -> Vec<String> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("{user}-{i}"), "event": "tap", "time": t, "uid": user, "n": i}).to_string())
        .collect()
}

fn outcomes(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or("").to_string(),
                r["reason"].as_str().unwrap_or("").to_string(),
                r["at"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn a_channel_cap_allows_n_sends_in_any_window_of_its_length() {
    let deck = filter_deck("channel push cap 2 per 1h", r#"reach push "x" { amount: 0 }"#);
    let mut o = open(&deck, json!({}), None);
    let times = [
        "2026-11-21T08:00:00Z",
        "2026-11-21T08:30:00Z",
        "2026-11-21T08:59:59Z",
        "2026-11-21T09:00:00Z",
        "2026-11-21T09:29:59Z",
    ];
    let r = replay(&mut o, &taps("u", &times));
    let got: Vec<String> = outcomes(&r).into_iter().map(|(o, why, _)| format!("{o}:{why}")).collect();
    // 08:59:59 would be the third within an hour; at 09:00 the 08:00 send has left (t − 1h, t];
    // at 09:29:59 the window (08:29:59, 09:29:59] holds 08:30 and 09:00 already.
    assert_eq!(got, ["sent:", "sent:", "suppressed:cap", "sent:", "suppressed:cap"]);
    assert_eq!(o.summary().filtered["cap"], 2);
}

#[test]
fn dedup_suppresses_the_same_action_within_its_window_of_a_sent_one() {
    let deck = filter_deck("channel push", r#"reach push "x" { amount: 0 } dedup 1h"#);
    let mut o = open(&deck, json!({}), None);
    let r = replay(&mut o, &taps("u", &["2026-11-21T08:00:00Z", "2026-11-21T08:59:59Z", "2026-11-21T09:00:00Z"]));
    let got: Vec<String> = outcomes(&r).into_iter().map(|(o, why, _)| format!("{o}:{why}")).collect();
    assert_eq!(got, ["sent:", "suppressed:dedup", "sent:"]);
}

#[test]
fn quiet_hours_hold_until_their_end_in_the_users_zone_or_drop() {
    let deck = filter_deck("channel push quiet 22:00..08:00 zone user.zone", r#"reach push "x" { amount: 0 }"#);
    let tags = json!({"user": {"sh": {"zone": "Asia/Shanghai"}}});
    let mut o = open(&deck, tags.clone(), None);
    // 23:30Z is 07:30 in Shanghai (held to 08:00 local = 00:00Z); in UTC it is 23:30, quiet
    // until 08:00Z. 12:00Z is 20:00 in Shanghai: sent at once.
    let mut lines = taps("sh", &["2026-11-21T23:30:00Z", "2026-11-22T12:00:00Z"]);
    lines.extend(taps("utc", &["2026-11-21T23:30:00Z"]));
    let r = replay(&mut o, &lines);
    assert_eq!(
        outcomes(&r),
        [
            ("held".into(), "".into(), "2026-11-22T00:00:00Z".into()),
            ("sent".into(), "".into(), "2026-11-22T12:00:00Z".into()),
            ("held".into(), "".into(), "2026-11-22T08:00:00Z".into()),
        ]
    );
    let deck = filter_deck("channel push quiet 22:00..08:00 drop", r#"reach push "x" { amount: 0 }"#);
    let mut o = open(&deck, json!({}), None);
    let r = replay(&mut o, &taps("u", &["2026-11-21T23:30:00Z", "2026-11-22T08:00:00Z"]));
    let got: Vec<String> = outcomes(&r).into_iter().map(|(o, why, _)| format!("{o}:{why}")).collect();
    assert_eq!(got, ["dropped:quiet", "sent:"]);
}

#[test]
fn a_held_reach_counts_against_caps_at_its_send_time() {
    // Held from 07:00 to 08:00; the 08:30 reach is then the second in an hour.
    let deck = filter_deck("channel push cap 1 per 1h quiet 06:00..08:00", r#"reach push "x" { amount: 0 }"#);
    let mut o = open(&deck, json!({}), None);
    let r = replay(&mut o, &taps("u", &["2026-11-21T07:00:00Z", "2026-11-21T08:30:00Z", "2026-11-21T09:00:01Z"]));
    let got: Vec<String> = outcomes(&r).into_iter().map(|(o, why, _)| format!("{o}:{why}")).collect();
    assert_eq!(got, ["held:", "suppressed:cap", "sent:"]);
}

#[test]
fn budgets_are_never_exceeded_by_count_or_by_amount() {
    let deck = filter_deck("channel push", r#"reach push "coin" { amount: 4 }"#);
    let mut o = open(&deck, json!({}), None);
    let times: Vec<String> = (0..6).map(|i| format!("2026-11-21T08:0{i}:00Z")).collect();
    let times: Vec<&str> = times.iter().map(String::as_str).collect();
    let mut lines = taps("a", &times);
    lines.extend(taps("b", &times));
    let r = replay(&mut o, &lines);
    // 10 of amount at 4 a reach: two reaches (8), never a third (12), across users.
    assert_eq!(sent(&r).len(), 2);
    assert_eq!(o.summary().filtered["budget"], 10);

    // A negative amount cannot refill the budget.
    let deck = filter_deck("channel push", r#"reach push "coin" { amount: 0 - 4 }"#);
    let mut o = open(&deck, json!({}), None);
    let r = replay(&mut o, &taps("a", &times[..1]));
    assert_eq!(outcomes(&r)[0].1, "budget");

    let deck = filter_deck("channel push", r#"reach push "counted" { amount: 0 }"#);
    let mut o = open(&deck, json!({}), None);
    let mut lines = taps("a", &times);
    lines.extend(taps("b", &times));
    lines.extend(taps("c", &times));
    let r = replay(&mut o, &lines);
    // The action's cap (2 per hour per user) and its budget (3 sends in all).
    assert_eq!(sent(&r).len(), 3);
    assert_eq!(o.summary().filtered["cap"], 4);
    assert_eq!(o.summary().filtered["budget"], 11);
}

#[test]
fn the_control_group_is_tracked_and_never_reached() {
    let deck = filter_deck("channel push", "none");
    let mut o = open(&deck, json!({}), None);
    let r = replay(&mut o, &taps("u", &["2026-11-21T08:00:00Z"]));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["outcome"], "control");
    assert!(o.summary().reaches.is_empty());
}

#[test]
fn bad_lines_are_counted_and_tracked_not_fatal() {
    let deck = filter_deck("channel push", r#"reach push "x" { amount: 0 }"#);
    let mut o = open(&deck, json!({}), None);
    let lines: Vec<String> = [
        "not json",
        r#"{"event": "nope", "time": "2026-11-21T08:00:00Z", "uid": "u"}"#,
        r#"{"event": "tap", "time": "yesterday", "uid": "u", "n": 1}"#,
        r#"{"event": "tap", "time": "2026-11-21T08:00:00Z", "n": 1}"#,
        r#"{"event": "tap", "time": "2026-11-21T08:00:00Z", "uid": "u", "n": "one"}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let r = replay(&mut o, &lines);
    assert_eq!(o.summary().invalid, 5);
    let reasons: Vec<&str> = r.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].starts_with("not JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "unknown event kind `nope`");
    assert_eq!(reasons[2], "invalid time `yesterday`");
    assert_eq!(reasons[3], "missing `uid` (the event's unit, text or int)");
    assert_eq!(reasons[4], "field `n` is not a valid `int`");
}

// ---- durability ------------------------------------------------------------------------

#[test]
fn replaying_the_same_log_twice_reaches_nobody_twice() {
    let dir = tempfile::tempdir().unwrap();
    let deck = filter_deck("channel push", r#"reach push "x" { amount: 0 }"#);
    let lines = taps("u", &["2026-11-21T08:00:00Z", "2026-11-21T09:00:00Z"]);
    let mut o = open(&deck, json!({}), Some(dir.path()));
    assert_eq!(sent(&replay(&mut o, &lines)).len(), 2);
    drop(o);
    let mut o = open(&deck, json!({}), Some(dir.path()));
    assert!(replay(&mut o, &lines).is_empty());
    assert_eq!(o.summary().duplicates, 2);
    // Events without ids are identified by a hash of their line.
    let fresh = tempfile::tempdir().unwrap();
    let no_id: Vec<String> = lines.iter().map(|l| l.replace("\"id\"", "\"ref\"")).collect();
    let mut o = open(&deck, json!({}), Some(fresh.path()));
    assert_eq!(sent(&replay(&mut o, &no_id)).len(), 2);
    drop(o);
    let mut o = open(&deck, json!({}), Some(fresh.path()));
    assert!(replay(&mut o, &no_id).is_empty());
}

/// A store whose `fail`th commit fails (and commits nothing), as a full disk would.
struct FailingCommit {
    inner: RedbStore,
    commits: std::sync::atomic::AtomicU32,
    fail: u32,
}

impl Store for FailingCommit {
    fn seen(&self, id: &str) -> Result<bool, String> {
        self.inner.seen(id)
    }
    fn unit(&self, key: &str) -> Result<Versioned, String> {
        self.inner.unit(key)
    }
    fn index(&self, key: &str) -> Result<Versioned, String> {
        self.inner.index(key)
    }
    fn spent(&self, action: &str) -> Result<i64, String> {
        self.inner.spent(action)
    }
    fn commit(&self, writes: &Writes) -> Result<Committed, String> {
        if self.commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == self.fail {
            return Err("no space left on device".into());
        }
        self.inner.commit(writes)
    }
    fn tracking_since(&self, from: u64) -> Result<Vec<(u64, String)>, String> {
        self.inner.tracking_since(from)
    }
    fn window_starts(&self) -> Result<Option<std::collections::HashMap<String, i64>>, String> {
        self.inner.window_starts()
    }
    fn fresh(&self) -> Result<bool, String> {
        self.inner.fresh()
    }
    fn sole_writer(&self) -> bool {
        true
    }
}

/// A batch that fails to commit in the background fails the call that waits for it; the
/// batch decided on top of it is dropped with it, and after `discard` the same events
/// decide as they would have (nothing of the failed batches was kept or counted).
#[test]
fn a_background_commit_that_fails_drops_the_batch_decided_on_top_of_it() {
    let deck = filter_deck("channel push cap 2 per 1h", r#"reach push "coin" { amount: 1 }"#);
    let times: Vec<String> = (0..6).map(|m| format!("2026-11-21T08:0{m}:00Z")).collect();
    let lines = taps("u", &times.iter().map(String::as_str).collect::<Vec<_>>());
    let program = std::sync::Arc::new(ruledeck::compile(&[("deck.rule", &deck)]).unwrap());
    let mut clean = Outreach::open(program.clone(), TagsFile::from_json(json!({})).unwrap(), None).unwrap();
    clean.batch_size = 2;
    let expected = replay(&mut clean, &lines);

    let store = FailingCommit { inner: RedbStore::open(None).unwrap(), commits: 0.into(), fail: 2 };
    let mut o = Outreach::with_store(program, TagsFile::from_json(json!({})).unwrap(), Box::new(store)).unwrap();
    o.batch_size = 2;
    let mut got = Vec::new();
    for l in &lines[..4] {
        got.extend(values(o.ingest_line(l).unwrap()));
    }
    assert_eq!(got, expected[..2], "the first batch's records once the second is handed over");
    assert!(o.ingest_line(&lines[4]).is_ok());
    let err = o.ingest_line(&lines[5]).unwrap_err().to_string();
    assert!(err.contains("no space left on device"), "{err}");
    o.discard();
    assert_eq!(o.summary().events, 2, "only the first batch counts");
    assert_eq!(o.summary().decisions, 2);
    for l in &lines[2..] {
        got.extend(values(o.ingest_line(l).unwrap()));
    }
    got.extend(values(o.commit().unwrap()));
    assert_eq!(got, expected);
    assert_eq!(o.summary(), clean.summary());
}

/// An id is remembered by its unit (the same id on another unit is another event), for as
/// long as the unit keeps state for its time: once older than that, a copy of the event is
/// late, and decides nothing, rather than a duplicate.
#[test]
fn ids_are_remembered_per_unit_until_their_events_are_older_than_its_state() {
    let deck = r#"
entity user key uid
event tap by uid { n: int }
tag user.taps: int = count(tap) within 1h
channel push
scene s on tap {
  instance i -> reach { taps: int } {
    default => reach push "x" { taps: user.taps }
  }
}
"#;
    let tap = |id: &str, uid: &str, time: &str| {
        json!({"id": id, "event": "tap", "time": time, "uid": uid, "n": 1}).to_string()
    };
    let lines = [
        tap("a", "u", "2026-11-21T08:00:00Z"),
        tap("a", "v", "2026-11-21T08:00:00Z"),
        tap("a", "u", "2026-11-21T08:00:00Z"),
        tap("b", "u", "2026-11-21T10:00:00Z"),
        tap("a", "u", "2026-11-21T08:00:00Z"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut o = open(deck, json!({}), Some(dir.path()));
    let records = replay(&mut o, &lines);
    let decided: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["scene"] == "s")
        .map(|r| (r["event"].as_str().unwrap(), r["unit"].as_str().unwrap()))
        .collect();
    assert_eq!(decided, [("a", "u"), ("a", "v"), ("b", "u")]);
    assert_eq!((o.summary().duplicates, o.summary().late), (1, 1));
    // The same log again, into the same state: nobody is reached.
    drop(o);
    let mut o = open(deck, json!({}), Some(dir.path()));
    assert!(sent(&replay(&mut o, &lines)).is_empty());
    assert_eq!((o.summary().duplicates, o.summary().late), (2, 3), "u forgot a: its copies are late");
}

fn ruledeck(args: &[&str], fail_after: Option<u64>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ruledeck"));
    cmd.args(args);
    cmd.env_remove("RULEDECK_OUTREACH_FAIL_AFTER");
    if let Some(n) = fail_after {
        cmd.env("RULEDECK_OUTREACH_FAIL_AFTER", n.to_string());
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn a_replay_killed_mid_batch_resumes_to_the_same_reaches_as_an_uninterrupted_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deck = root.join("examples/outreach/lapsed_nudge.rule");
    let events = root.join("examples/outreach/lapsed_events.jsonl");
    let (deck, events) = (deck.to_str().unwrap(), events.to_str().unwrap());
    let whole = tempfile::tempdir().unwrap();
    let (ok, reference) =
        ruledeck(&["replay", events, deck, "--batch", "7", "--state", whole.path().to_str().unwrap()], None);
    assert!(ok);
    let expected: Vec<Value> = reference.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Batches of 7 commit in the background while the next is decided, reading it from
    // memory: they decide as one batch committed at the end does.
    let one_batch = tempfile::tempdir().unwrap();
    let (ok, at_once) = ruledeck(&["replay", events, deck, "--state", one_batch.path().to_str().unwrap()], None);
    assert!(ok);
    assert_eq!(reference, at_once);
    let tracking_log = |state: &Path| {
        let program = ruledeck::compile(&[(deck, &std::fs::read_to_string(deck).unwrap())]).unwrap();
        let o = Outreach::open(program, TagsFile::from_json(json!({})).unwrap(), Some(state)).unwrap();
        o.tracking_since(0).unwrap().into_iter().map(|(_, r)| r).collect::<Vec<Value>>()
    };
    assert_eq!(tracking_log(whole.path()), expected, "an uninterrupted run prints its whole tracking log");
    for fail_after in [1, 30, 71, 150] {
        let state = tempfile::tempdir().unwrap();
        let state_arg = state.path().to_str().unwrap();
        let (ok, first) = ruledeck(&["replay", events, deck, "--batch", "7", "--state", state_arg], Some(fail_after));
        assert!(!ok, "the injected failure aborts the process");
        let (ok, second) = ruledeck(&["replay", events, deck, "--batch", "7", "--state", state_arg], None);
        assert!(ok);
        // Duplicates of the committed part are skipped silently: the state's tracking log
        // holds every record once, as an uninterrupted run's does.
        assert_eq!(tracking_log(state.path()), expected, "aborted after {fail_after} events");
        // Printed records are durable ones, each printed once, in order. (A batch that
        // became durable while the next was decided, just before the crash, is in the
        // log but was never printed.)
        let printed: Vec<Value> =
            first.lines().chain(second.lines()).map(|l| serde_json::from_str(l).unwrap()).collect();
        let mut rest = expected.iter();
        for r in &printed {
            assert!(rest.any(|e| e == r), "aborted after {fail_after}: {r} printed out of order or twice");
        }
        assert!(printed.len() + 7 >= expected.len(), "aborted after {fail_after}: more than a batch unprinted");
    }
    let (ok, again) = ruledeck(&["replay", events, deck, "--state", whole.path().to_str().unwrap()], None);
    assert!(ok);
    assert!(again.is_empty(), "a second replay into the same state reaches nobody: {again}");
}

/// Records print as their documented JSON, key order included: one of each kind, from
/// both examples and a refused line.
#[test]
fn records_print_as_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/outreach");
    let path = |name: &str| root.join(name).to_str().unwrap().to_string();
    let (ok, price) = ruledeck(
        &["replay", &path("price_events.jsonl"), &path("price_alert.rule"), "--tags", &path("tags.json")],
        None,
    );
    assert!(ok);
    let (ok, lapsed) = ruledeck(&["replay", &path("lapsed_events.jsonl"), &path("lapsed_nudge.rule")], None);
    assert!(ok);
    let dir = tempfile::tempdir().unwrap();
    let refused = dir.path().join("refused.jsonl");
    std::fs::write(&refused, "{\"event\": \"browse\", \"uid\": \"u-1\"}\n").unwrap();
    let (ok, invalid) = ruledeck(&["replay", refused.to_str().unwrap(), &path("lapsed_nudge.rule")], None);
    assert!(ok);
    // The lapsed log's first record of each outcome.
    let mut outcomes = BTreeSet::new();
    let lapsed: Vec<&str> = lapsed
        .lines()
        .filter(|l| outcomes.insert(serde_json::from_str::<Value>(l).unwrap()["outcome"].to_string()))
        .collect();
    insta::assert_snapshot!("records", format!("{price}{}\n{invalid}", lapsed.join("\n")));
}

#[test]
fn the_price_drop_example_reaches_as_its_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/outreach");
    let (events, deck, tags) = (root.join("price_events.jsonl"), root.join("price_alert.rule"), root.join("tags.json"));
    let (ok, out) =
        ruledeck(&["replay", events.to_str().unwrap(), deck.to_str().unwrap(), "--tags", tags.to_str().unwrap()], None);
    assert!(ok);
    let got: Vec<String> = out
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            format!("{} {} {} {} {}", r["event"], r["unit"], r["outcome"], r["reason"], r["at"])
        })
        .collect();
    assert_eq!(
        got,
        [
            // phone-9 drops: its favoriters of the last 30 days, in ascending key order (u-2
            // favorited first). u-4's favorite is 51 days old; u-3 favorited another item.
            // Shanghai: 14:00 local, sent at once.
            r#""d1" "u-1" "sent" null "2026-11-21T06:00:00Z""#,
            // Berlin: 07:00 local, held to the end of quiet hours (08:00 local).
            r#""d1" "u-2" "held" null "2026-11-21T07:00:00Z""#,
            // case-1 drops: only u-3, whose zone is unknown (UTC): held to 08:00 UTC.
            r#""d2" "u-3" "held" null "2026-11-21T08:00:00Z""#,
            // A second phone-9 drop within a day: dedup, per user.
            r#""d3" "u-1" "suppressed" "dedup" "2026-11-21T09:00:00Z""#,
            r#""d3" "u-2" "suppressed" "dedup" "2026-11-21T09:00:00Z""#,
            // Out of order but within the 10m lateness: decided, and deduplicated.
            r#""d4" "u-1" "suppressed" "dedup" "2026-11-21T08:55:00Z""#,
            r#""d4" "u-2" "suppressed" "dedup" "2026-11-21T08:55:00Z""#,
            // An hour behind the item's latest drop: late, traced, never reached.
            r#""d5" "phone-9" "late" null "2026-11-21T08:00:00Z""#,
        ]
    );
}

// ---- fan-out ---------------------------------------------------------------------------

/// Favorites (by user) and price drops (by item); a drop reaches each user with a favorite
/// of the item within the hour before it.
fn fan_deck(channel: &str, dedup: &str) -> String {
    format!(
        r#"
entity user key uid
entity item key skuid
event favorite by uid late 1d {{ sku: text }}
event price_drop by skuid late 2m {{ new_cents: int }}
tag user.favs_1d: int = count(favorite) within 1d
tag item.drops_10m: int = count(price_drop) within 10m
{channel}
scene alert on price_drop for each user with favorite(sku == event.skuid) within 1h {{
  instance a -> reach {{ new_cents: int, favs: int, drops: int }} {{
    default => reach push "drop" {{ new_cents: event.new_cents, favs: user.favs_1d, drops: item.drops_10m }} {dedup}
  }}
}}
"#
    )
}

fn fav(id: &str, user: &str, sku: &str, t: i64) -> String {
    json!({"id": id, "event": "favorite", "time": ruledeck::time::format(T0 + t), "uid": user, "sku": sku}).to_string()
}

fn drop_(id: &str, sku: &str, t: i64) -> String {
    json!({"id": id, "event": "price_drop", "time": ruledeck::time::format(T0 + t), "skuid": sku, "new_cents": 90})
        .to_string()
}

/// `(event, unit, outcome)` of each record.
fn reached(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (text("event"), text("unit"), text("outcome"))
        })
        .collect()
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect()
}

#[test]
fn a_fanout_decides_once_per_matching_user_in_ascending_key_order() {
    let mut o = open(&fan_deck("channel push", ""), json!({}), None);
    // Favorited in another order than the keys'; `u-10` sorts between `u-1` and `u-2`.
    let mut lines: Vec<String> =
        ["u-3", "u-1", "u-2", "u-10"].iter().enumerate().map(|(i, u)| fav(&format!("f{i}"), u, "p", 0)).collect();
    lines.push(fav("f9", "u-1", "p", 60));
    lines.push(drop_("d", "p", 120));
    let r = replay(&mut o, &lines);
    assert_eq!(
        reached(&r),
        triples(&[("d", "u-1", "sent"), ("d", "u-10", "sent"), ("d", "u-2", "sent"), ("d", "u-3", "sent")])
    );
    // Each decision has the user's own window tags and the item's; the trigger's fields.
    assert_eq!(r[0]["payload"], json!({"new_cents": 90, "favs": 2, "drops": 1}));
    assert_eq!(r[1]["payload"], json!({"new_cents": 90, "favs": 1, "drops": 1}));
    assert_eq!(o.summary().decisions, 4);
}

#[test]
fn fanout_window_edges_are_inclusive_on_both_ends() {
    let mut o = open(&fan_deck("channel push", ""), json!({}), None);
    let t = 10_000;
    let lines = vec![
        fav("f1", "u-early", "p", t - 3601),
        fav("f2", "u-edge", "p", t - 3600),
        fav("f3", "u-now", "p", t),
        fav("f4", "u-after", "p", t + 1),
        drop_("d", "p", t),
    ];
    let r = replay(&mut o, &lines);
    assert_eq!(reached(&r), triples(&[("d", "u-edge", "sent"), ("d", "u-now", "sent")]));
}

#[test]
fn a_favorite_of_another_item_does_not_match() {
    let mut o = open(&fan_deck("channel push", ""), json!({}), None);
    let lines = vec![fav("f1", "u-1", "p", 0), fav("f2", "u-2", "q", 0), drop_("d1", "q", 60), drop_("d2", "r", 60)];
    let r = replay(&mut o, &lines);
    assert_eq!(reached(&r), triples(&[("d1", "u-2", "sent")]));
}

#[test]
fn filters_apply_to_each_fanned_out_user_on_their_own() {
    // A cap of one a day per user: the second drop reaches only the user who had none.
    let mut o = open(&fan_deck("channel push cap 1 per 1d", ""), json!({}), None);
    let lines = vec![
        fav("f1", "u-1", "p", 0),
        fav("f2", "u-2", "p", 0),
        drop_("d1", "p", 60),
        fav("f3", "u-3", "p", 120),
        drop_("d2", "p", 180),
    ];
    let r = replay(&mut o, &lines);
    let expected = [
        ("d1", "u-1", "sent"),
        ("d1", "u-2", "sent"),
        ("d2", "u-1", "suppressed"),
        ("d2", "u-2", "suppressed"),
        ("d2", "u-3", "sent"),
    ];
    assert_eq!(reached(&r), triples(&expected));
    assert_eq!(o.summary().filtered["cap"], 2);
    // Dedup the same way, per user.
    let mut o = open(&fan_deck("channel push", "dedup 1h"), json!({}), None);
    let r = replay(&mut o, &lines);
    assert_eq!(reached(&r), triples(&expected));
    assert_eq!(o.summary().filtered["dedup"], 2);
}

#[test]
fn a_trigger_decides_for_at_most_max_fanout_units_the_first_in_key_order() {
    use ruledeck::limits::MAX_FANOUT_UNITS;
    let mut o = open(&fan_deck("channel push", ""), json!({}), None);
    let mut lines: Vec<String> =
        (0..=MAX_FANOUT_UNITS).map(|i| fav(&format!("f{i}"), &format!("u{i:06}"), "p", 0)).collect();
    lines.push(drop_("d", "p", 60));
    let r = replay(&mut o, &lines);
    assert_eq!(r.len(), MAX_FANOUT_UNITS);
    assert_eq!(r[0]["unit"], "u000000");
    assert_eq!(r[MAX_FANOUT_UNITS - 1]["unit"], format!("u{:06}", MAX_FANOUT_UNITS - 1));
    assert_eq!(o.summary().fanout_skipped, 1);
    let summary = serde_json::to_value(o.summary()).unwrap();
    assert_eq!(summary["fanout_skipped"], 1);
}

#[test]
fn an_index_value_keeps_at_most_max_fanout_entries_evicting_the_oldest() {
    use ruledeck::limits::MAX_FANOUT_ENTRIES;
    use ruledeck::outreach::fanout::IndexEntries;
    let mut e = IndexEntries::default();
    for i in 0..=MAX_FANOUT_ENTRIES as i64 {
        e.insert(i, &format!("u{i}"));
    }
    assert_eq!(e.items.len(), MAX_FANOUT_ENTRIES);
    assert_eq!(e.items[0], (1, "u1".to_string()));
    // An out-of-order entry older than every kept one is itself the oldest: evicted at once.
    e.insert(-5, "u-old");
    assert_eq!(e.items[0], (1, "u1".to_string()));
    assert_eq!(e.units(0, 2), ["u1", "u2"]);
}

#[test]
fn the_fanout_index_survives_a_restart_and_a_replay_twice_reaches_nobody_twice() {
    let dir = tempfile::tempdir().unwrap();
    let deck = fan_deck("channel push", "");
    let favorites = vec![fav("f1", "u-1", "p", 0), fav("f2", "u-2", "p", 10)];
    let mut o = open(&deck, json!({}), Some(dir.path()));
    assert!(replay(&mut o, &favorites).is_empty());
    drop(o);
    // Reopened: the favorites are only in the state's index.
    let drops = vec![drop_("d1", "p", 60)];
    let mut o = open(&deck, json!({}), Some(dir.path()));
    assert_eq!(reached(&replay(&mut o, &drops)), triples(&[("d1", "u-1", "sent"), ("d1", "u-2", "sent")]));
    drop(o);
    let mut o = open(&deck, json!({}), Some(dir.path()));
    let all: Vec<String> = favorites.iter().chain(&drops).cloned().collect();
    assert!(replay(&mut o, &all).is_empty());
    assert_eq!(o.summary().duplicates, 3);
    // A batch that never commits (a crash) leaves no index entries behind.
    let fresh = tempfile::tempdir().unwrap();
    let mut o = open(&deck, json!({}), Some(fresh.path()));
    for l in &favorites {
        assert!(o.ingest_line(l).unwrap().is_empty());
    }
    drop(o);
    let mut o = open(&deck, json!({}), Some(fresh.path()));
    assert!(replay(&mut o, &drops).is_empty(), "uncommitted favorites are gone whole");
}

/// `(user or item, is a drop, sku, time)`.
type FanEv = (u8, bool, u8, i64);

fn fan_line(k: usize, &(who, is_drop, sku, t): &FanEv) -> String {
    let (id, sku) = (k.to_string(), format!("p{sku}"));
    if is_drop {
        drop_(&id, &sku, t)
    } else {
        fav(&id, &format!("u{who}"), &sku, t)
    }
}

/// By brute force over every event before each drop: late drops (behind their item's
/// latest drop, or behind the newest favorite of the item, by more than 2m) reach nobody;
/// others reach each user with a favorite of the item in `[t − 1h, t]`, in key order.
fn fan_reference(events: &[FanEv]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (k, &(_, is_drop, sku, t)) in events.iter().enumerate() {
        if !is_drop {
            continue;
        }
        let before = &events[..k];
        let latest_drop = before.iter().filter(|e| e.1 && e.2 == sku).map(|e| e.3).max();
        let favorites: Vec<&FanEv> = before.iter().filter(|e| !e.1 && e.2 == sku).collect();
        let newest_favorite = favorites.iter().map(|e| e.3).max();
        let id = k.to_string();
        if latest_drop.is_some_and(|l| t < l - 120) || newest_favorite.is_some_and(|n| t < n - 120) {
            out.push((id, format!("p{sku}"), "late".to_string()));
            continue;
        }
        let users: BTreeSet<String> =
            favorites.iter().filter(|e| e.3 >= t - 3600 && e.3 <= t).map(|e| format!("u{}", e.0)).collect();
        out.extend(users.into_iter().map(|u| (id.clone(), u, "sent".to_string())));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(0xfa2_0a7),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Fanned-out decisions against a scan of every event: users `u0`…`u11` (so `u10` sorts
    /// before `u2`), three items, times on a 5-minute grid over 8 hours (events exactly on
    /// `t − 1h`, out of order, late by the item's drops or by the index), favorites of other
    /// items, and commits every 7 events (the index read back from the state).
    #[test]
    fn fanout_agrees_with_brute_force(events in prop::collection::vec(
        (0u8..12, prop::bool::weighted(0.3), 0u8..3, (0i64..96).prop_map(|t| t * 300)),
        0..60,
    )) {
        let lines: Vec<String> = events.iter().enumerate().map(|(k, e)| fan_line(k, e)).collect();
        let mut o = open(&fan_deck("channel push", ""), json!({}), None);
        o.batch_size = 7;
        let got = reached(&replay(&mut o, &lines));
        prop_assert_eq!(got, fan_reference(&events));
    }
}

// ---- records ---------------------------------------------------------------------------

#[test]
fn records_carry_the_tags_read_with_sensitive_values_masked() {
    let deck = r#"
entity user key uid
event tap by uid { n: int }
tag user.taps: int = count(tap) within 1h
tag user.score: int from "risk" sensitive
channel push
scene s on tap {
  instance i -> reach { n: int } {
    strategy hot when user.taps >= 2 and user.score > 5 => reach push "x" { n: event.n }
  }
}
"#;
    let mut o = open(deck, json!({"user": {"u": {"score": 9}}}), None);
    let r = replay(&mut o, &taps("u", &["2026-11-21T08:00:00Z", "2026-11-21T08:10:00Z"]));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["outcome"], "sent");
    assert_eq!(r[0]["strategy"], "hot");
    assert_eq!(r[0]["tags"]["user.taps"], 2);
    assert_eq!(r[0]["tags"]["user.score"], "<sensitive>");
    assert_eq!(r[0]["tags"]["event.tap.n"], 1);
    // From rule files there is no release.
    assert_eq!(r[0]["release"], Value::Null);
    assert_eq!(r[0]["version"], Value::Null);
}

/// `replay --store` runs a published release: the same records as from the rule files, each
/// stamped with the release and its instance's version.
#[test]
fn replay_from_a_store_stamps_the_release_and_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deck = root.join("examples/outreach/lapsed_nudge.rule");
    let events = root.join("examples/outreach/lapsed_events.jsonl");
    let (deck, events) = (deck.to_str().unwrap(), events.to_str().unwrap());
    let store = tempfile::tempdir().unwrap();
    let store = store.path().join("store");
    let store = store.to_str().unwrap();
    let published = Command::new(env!("CARGO_BIN_EXE_ruledeck"))
        .args(["release", deck, "--store", store])
        .env("RULEDECK_NOW", "2026-12-01T10:00:00Z")
        .output()
        .unwrap();
    assert!(published.status.success(), "{}", String::from_utf8_lossy(&published.stderr));
    let (ok, from_files) = ruledeck(&["replay", events, deck], None);
    assert!(ok);
    let (ok, from_store) = ruledeck(&["replay", events, "--store", store], None);
    assert!(ok);
    let from_files: Vec<Value> = from_files.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let from_store: Vec<Value> = from_store.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(from_files.iter().any(|r| r["outcome"] == "sent"));
    assert_eq!(from_files.len(), from_store.len());
    for (mut f, s) in from_files.into_iter().zip(from_store) {
        if f.get("scene").is_some() {
            assert_eq!((&s["release"], &s["version"]), (&json!(1), &json!(1)), "{s}");
            f["release"] = json!(1);
            f["version"] = json!(1);
        }
        assert_eq!(f, s);
    }
    let (ok, refused) = ruledeck(&["replay", events, "--store", store, "--release", "7"], None);
    assert!(!ok && refused.is_empty());
}

// ---- the SQLite tracking store -----------------------------------------------------------

fn sql_count(db: &Path, query: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(query, [], |r| r.get(0)).unwrap()
}

/// `--tracking-db` holds every record printed and every event ingested, once, however often
/// the log is replayed; a database that missed commits (here: one that did not exist yet)
/// is caught up from the state's durable tracking log; the attribution query of the docs runs.
#[test]
fn the_tracking_database_is_a_complete_projection_of_the_state() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/outreach");
    let (deck, events) = (root.join("lapsed_nudge.rule"), root.join("lapsed_events.jsonl"));
    let (deck, events) = (deck.to_str().unwrap(), events.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (state, db) = (dir.path().join("state"), dir.path().join("tracking.sqlite"));
    let (state, db_arg) = (state.to_str().unwrap(), db.to_str().unwrap());
    let (ok, out) =
        ruledeck(&["replay", events, deck, "--batch", "7", "--state", state, "--tracking-db", db_arg], None);
    assert!(ok);
    let printed = out.lines().count() as i64;
    assert!(printed > 20);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM records"), printed);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM records WHERE outcome = 'sent'"), {
        out.lines().filter(|l| l.contains(r#""outcome":"sent""#)).count() as i64
    });
    let log = std::fs::read_to_string(events).unwrap();
    let ids: BTreeSet<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM events"), ids.len() as i64);
    // Replayed again: nothing new anywhere.
    let (ok, again) = ruledeck(&["replay", events, deck, "--state", state, "--tracking-db", db_arg], None);
    assert!(ok && again.is_empty());
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM records"), printed);
    assert_eq!(sql_count(&db, "SELECT COUNT(*) FROM events"), ids.len() as i64);
    assert_eq!(sql_count(&db, "SELECT COUNT(DISTINCT seq) FROM records"), printed);
    // A database added later catches up with everything the state committed before it.
    let late_db = dir.path().join("late.sqlite");
    let (ok, nothing) =
        ruledeck(&["replay", events, deck, "--state", state, "--tracking-db", late_db.to_str().unwrap()], None);
    assert!(ok && nothing.is_empty());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let late = rusqlite::Connection::open(&late_db).unwrap();
    let all = |c: &rusqlite::Connection| -> Vec<String> {
        let mut q = c.prepare("SELECT record FROM records ORDER BY seq").unwrap();
        q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(all(&late), all(&conn));
    let in_order: Vec<String> = out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap().to_string()).collect();
    assert_eq!(all(&conn), in_order, "the records table holds what replay printed, in order");
    // The documented attribution query.
    let sql = std::fs::read_to_string(root.join("attribution.sql")).unwrap();
    let docs = std::fs::read_to_string(root.join("../../docs/outreach.md")).unwrap();
    assert!(docs.contains(&sql), "docs/outreach.md shows examples/outreach/attribution.sql as it is");
    let mut q = conn.prepare(&sql).unwrap();
    let rows: Vec<String> = q
        .query_map([], |r| {
            Ok(format!(
                "{} {} units={} reached={} converted={}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    insta::assert_snapshot!("attribution", rows.join("\n"));
}

/// A window tag that a new program adds to a state with history starts with the next
/// event, and reads missing until it has run its `within`: `orders == 0` over an hour of
/// which the state kept five minutes must not call every user lapsed. The start is durable
/// (a reopened state keeps it), and in a fresh state windows hold the whole history.
#[test]
fn a_window_added_to_a_state_with_history_reads_missing_until_it_has_run_its_span() {
    let deck = |orders: bool| {
        let (tag, when) = if orders {
            ("tag user.orders: int = count(order) within 1h", "user.orders == 0")
        } else {
            ("", "user.views >= 1")
        };
        format!(
            r#"
entity user key uid
event view by uid {{ sku: text }}
event order by uid {{ amount_cents: int }}
tag user.views: int = count(view) within 1d
{tag}
channel push
scene s on view {{
  instance i -> reach {{ }} {{
    strategy lapsed when {when} => reach push "nudge" {{ }}
  }}
}}
"#
        )
    };
    let view =
        |id: &str, time: &str| json!({"id": id, "event": "view", "time": time, "uid": "u-1", "sku": "p"}).to_string();
    let reached = |records: &[Value]| records.iter().filter(|r| r["outcome"] == "sent").count();
    let state = tempfile::tempdir().unwrap();
    let mut o = open(&deck(false), json!({}), Some(state.path()));
    assert_eq!(reached(&replay(&mut o, &[view("v1", "2026-11-21T08:00:00Z")])), 1);
    o.set_program(ruledeck::compile(&[("deck.rule", deck(true).as_str())]).unwrap(), None, []).unwrap();
    // `user.orders` starts at 08:05 (the next event): unknown until 09:05.
    assert_eq!(reached(&replay(&mut o, &[view("v2", "2026-11-21T08:05:00Z")])), 0);
    assert_eq!(reached(&replay(&mut o, &[view("v3", "2026-11-21T09:04:59Z")])), 0);
    drop(o);
    // Reopened: the start is kept (not restarted, not taken as the whole history).
    let mut o = open(&deck(true), json!({}), Some(state.path()));
    assert_eq!(reached(&replay(&mut o, &[view("v4", "2026-11-21T09:04:59Z")])), 0);
    assert_eq!(reached(&replay(&mut o, &[view("v5", "2026-11-21T09:05:00Z")])), 1);
    // A batch that is discarded does not keep the start it set: a new window started by
    // it starts again at the next event.
    let mut o = open(&deck(false), json!({}), None);
    assert_eq!(reached(&replay(&mut o, &[view("w1", "2026-11-21T08:00:00Z")])), 1);
    o.set_program(ruledeck::compile(&[("deck.rule", deck(true).as_str())]).unwrap(), None, []).unwrap();
    assert!(o.ingest_line(&view("w2", "2026-11-21T08:05:00Z")).unwrap().is_empty());
    o.discard();
    assert_eq!(reached(&replay(&mut o, &[view("w3", "2026-11-21T09:05:00Z")])), 0, "started at 09:05, not 08:05");
    // A fresh state holds all the history it has: the window is whole from the first event,
    // also when a new program comes before any event.
    let mut o = open(&deck(true), json!({}), None);
    assert_eq!(reached(&replay(&mut o, &[view("x1", "2026-11-21T08:00:00Z")])), 1);
    let mut o = open(&deck(false), json!({}), None);
    o.set_program(ruledeck::compile(&[("deck.rule", deck(true).as_str())]).unwrap(), None, []).unwrap();
    assert_eq!(reached(&replay(&mut o, &[view("x2", "2026-11-21T08:00:00Z")])), 1);
    // A state with history written before starts were kept (no `window_starts` table):
    // the windows of the program that opens it are taken as whole, as they were counted.
    let legacy = tempfile::tempdir().unwrap();
    let mut o = open(&deck(false), json!({}), Some(legacy.path()));
    assert_eq!(reached(&replay(&mut o, &[view("y1", "2026-11-21T08:00:00Z")])), 1);
    drop(o);
    {
        let db = redb::Database::open(legacy.path().join("outreach.redb")).unwrap();
        let w = db.begin_write().unwrap();
        assert!(w.delete_table(redb::TableDefinition::<&str, i64>::new("window_starts")).unwrap());
        w.commit().unwrap();
    }
    let mut o = open(&deck(true), json!({}), Some(legacy.path()));
    assert_eq!(reached(&replay(&mut o, &[view("y2", "2026-11-21T08:05:00Z")])), 1);
}

/// A host swapping programs (a new release) keeps the state: window entries are kept by
/// the window tag's name, so a program that declares the same windows in another order
/// (and adds one) reads each window's count on from where the old program left it.
#[test]
fn a_new_program_that_reorders_window_tags_keeps_counting() {
    let deck = |windows: &str, action: &str| {
        format!(
            r#"
entity user key uid
event view by uid {{ sku: text }}
event order by uid {{ amount_cents: int }}
{windows}
channel push
scene s on view {{
  instance i -> reach {{ views: int, orders: int }} {{
    default => reach push "{action}" {{ views: user.views, orders: user.orders }}
  }}
}}
"#
        )
    };
    let views = "tag user.views: int = count(view) within 1d";
    let orders = "tag user.orders: int = count(order) within 1d";
    let first = deck(&format!("{views}\n{orders}"), "first");
    let second = deck(&format!("{orders}\ntag user.carts: int = count(order) within 2d\n{views}"), "second");
    let state = tempfile::tempdir().unwrap();
    let event = |id: &str, kind: &str, time: &str| {
        let field = if kind == "view" { json!({"sku": "p-1"}) } else { json!({"amount_cents": 100}) };
        let mut e = json!({"id": id, "event": kind, "time": time, "uid": "u-1"});
        e.as_object_mut().unwrap().extend(field.as_object().unwrap().clone());
        e.to_string()
    };
    let mut o = open(&first, json!({}), Some(state.path()));
    let records = replay(
        &mut o,
        &[
            event("v1", "view", "2026-11-21T08:00:00Z"),
            event("o1", "order", "2026-11-21T08:01:00Z"),
            event("v2", "view", "2026-11-21T08:02:00Z"),
        ],
    );
    let counts = |records: &[Value]| -> Vec<(String, i64, i64)> {
        records
            .iter()
            .map(|r| {
                let p = &r["payload"];
                (r["action"].as_str().unwrap().to_string(), p["views"].as_i64().unwrap(), p["orders"].as_i64().unwrap())
            })
            .collect()
    };
    assert_eq!(counts(&records), [("first".to_string(), 1, 0), ("first".to_string(), 2, 1)]);
    let second = ruledeck::compile(&[("deck.rule", second.as_str())]).unwrap();
    o.set_program(second, Some(2), [("s.i".to_string(), 2)]).unwrap();
    let records = replay(&mut o, &[event("v3", "view", "2026-11-21T08:03:00Z")]);
    assert_eq!(counts(&records), [("second".to_string(), 3, 1)]);
    assert_eq!((&records[0]["release"], &records[0]["version"]), (&json!(2), &json!(2)));
    // Mid-batch the program cannot change (the batch's records would mix programs).
    o.ingest_line(&event("v4", "view", "2026-11-21T08:04:00Z")).unwrap();
    let first = ruledeck::compile(&[("deck.rule", first.as_str())]).unwrap();
    assert!(o.set_program(first, None, []).is_err());
    // The state on disk holds windows by name too: reopened with the second program, the
    // counts go on.
    o.commit().unwrap();
    drop(o);
    let mut o = open(&deck(&format!("{orders}\n{views}"), "third"), json!({}), Some(state.path()));
    let records = replay(&mut o, &[event("v5", "view", "2026-11-21T08:05:00Z")]);
    assert_eq!(counts(&records), [("third".to_string(), 5, 1)]);
}

// ---- state on Redis ------------------------------------------------------------------------

/// Replaying into Redis gives the records replaying into a directory gives, a second replay
/// reaches nobody, and a replay aborted mid-log resumes to the same records.
#[test]
fn redis_state_decides_as_the_embedded_one_and_survives_a_crash() {
    let Some(redis) = Redis::start() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deck = root.join("examples/outreach/lapsed_nudge.rule");
    let events = root.join("examples/outreach/lapsed_events.jsonl");
    let (deck, events) = (deck.to_str().unwrap(), events.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (ok, embedded) =
        ruledeck(&["replay", events, deck, "--batch", "7", "--state", dir.path().to_str().unwrap()], None);
    assert!(ok);
    let state = |prefix: &str| ["--state", redis.url.as_str(), "--state-prefix", prefix].map(str::to_string);
    let replay_into = |prefix: &str, fail_after: Option<u64>| {
        let mut args = vec!["replay".to_string(), events.into(), deck.into(), "--batch".into(), "7".into()];
        args.extend(state(prefix));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ruledeck(&args, fail_after)
    };
    let (ok, on_redis) = replay_into("t1", None);
    assert!(ok);
    assert_eq!(on_redis, embedded);
    let (ok, again) = replay_into("t1", None);
    assert!(ok && again.is_empty(), "a second replay into the same Redis state reached someone: {again}");
    for fail_after in [1, 30, 71, 150] {
        let prefix = format!("crash{fail_after}");
        let (ok, first) = replay_into(&prefix, Some(fail_after));
        assert!(!ok, "the injected failure aborts the process");
        let (ok, second) = replay_into(&prefix, None);
        assert!(ok);
        assert_eq!(format!("{first}{second}"), embedded, "aborted after {fail_after} events");
    }
}

fn redis_outreach(deck: &str, redis: &Redis, prefix: &str) -> Outreach {
    let program = ruledeck::compile(&[("deck.rule", deck)]).unwrap_or_else(|e| panic!("{e}"));
    let store = ruledeck::outreach::state::RedisStore::open(&redis.url, prefix).unwrap();
    let mut o = Outreach::with_store(program, TagsFile::from_json(json!({})).unwrap(), Box::new(store)).unwrap();
    o.batch_size = usize::MAX;
    o
}

/// Two deciders share one Redis state, each deciding a whole batch on what it read before
/// either commits: the commit that comes second finds the budget (or the shared unit) changed,
/// and decides its batch again. The budget is never overspent and the shared unit is
/// reached once, whichever commits first.
#[test]
fn deciders_sharing_redis_never_overspend_a_budget_or_reach_a_unit_twice() {
    let Some(redis) = Redis::start() else { return };
    let deck = r#"
entity user key uid
event tap by uid { n: int }
channel push
action "coin" budget 5
scene s on tap {
  instance i -> reach { n: int } {
    strategy hello when event.n == 99 => reach push "hello" { n: event.n } dedup 1d
    default => reach push "coin" { n: event.n } dedup 1d
  }
}
"#;
    let barrier = std::sync::Barrier::new(2);
    let results: Vec<Vec<Value>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|decider| {
                let (barrier, redis) = (&barrier, &redis);
                scope.spawn(move || {
                    let mut o = redis_outreach(deck, redis, "shared");
                    // Ten units of its own partition, and one unit both are (wrongly) sent.
                    let mut lines: Vec<String> = (0..10)
                        .map(|u| {
                            json!({"id": format!("d{decider}-{u}"), "event": "tap", "uid": format!("u{decider}-{u}"),
                                   "time": "2026-11-21T08:00:00Z", "n": u})
                            .to_string()
                        })
                        .collect();
                    lines.push(
                        json!({"id": format!("s{decider}"), "event": "tap", "uid": "both",
                               "time": "2026-11-21T08:00:00Z", "n": 99})
                        .to_string(),
                    );
                    for l in &lines {
                        assert!(o.ingest_line(l).unwrap().is_empty());
                    }
                    // Both batches are decided on the same state before either commits.
                    barrier.wait();
                    values(o.commit().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&Value> = results.iter().flatten().collect();
    let outcomes = |action: &str, unit: Option<&str>| -> Vec<String> {
        let mut o: Vec<String> = all
            .iter()
            .filter(|r| r["action"] == action && unit.is_none_or(|u| r["unit"] == u))
            .map(|r| format!("{} {}", r["outcome"].as_str().unwrap(), r["reason"].as_str().unwrap_or("-")))
            .collect();
        o.sort();
        o
    };
    let coins = outcomes("coin", None);
    assert_eq!(coins.iter().filter(|o| *o == "sent -").count(), 5, "the budget of 5 is spent exactly: {coins:?}");
    assert_eq!(coins.len(), 20);
    assert_eq!(outcomes("hello", Some("both")), ["sent -", "suppressed dedup"], "the shared unit is reached once");
    let mut c = redis.connection();
    let spent: i64 = redis::cmd("HGET").arg("shared:budgets").arg("coin").query(&mut c).unwrap();
    assert_eq!(spent, 5);
    let tracked: i64 = redis::cmd("LLEN").arg("shared:tracking").query(&mut c).unwrap();
    assert_eq!(tracked, all.len() as i64, "every record committed once");
}

/// A state store that fails is an error, never an event tracked as invalid: the batch is
/// not committed, and a host can discard it and go on from the last commit.
#[test]
fn a_failing_state_store_is_an_error_not_an_invalid_event() {
    let Some(redis) = Redis::start() else { return };
    let deck = filter_deck("channel push", r#"reach push "x" { amount: 0 }"#);
    let mut o = redis_outreach(&deck, &redis, "failing");
    let first = taps("u", &["2026-11-21T08:00:00Z"]);
    assert!(o.ingest_line(&first[0]).unwrap().is_empty());
    drop(redis);
    // Another unit: its state is read from the store.
    let second = taps("v", &["2026-11-21T09:00:00Z"]);
    let err = o.ingest_line(&second[0]).expect_err("a store that is gone fails the ingest");
    assert!(err.to_string().starts_with("outreach state: redis state"), "{err}");
    o.discard();
    assert_eq!(o.summary().events, 0, "the discarded batch counts nothing");
}

#[test]
fn a_tracking_database_follows_one_durable_state() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/outreach");
    let (deck, events) = (root.join("lapsed_nudge.rule"), root.join("lapsed_events.jsonl"));
    let (deck, events) = (deck.to_str().unwrap(), events.to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.sqlite");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_ruledeck")).args(args).output().unwrap();
    let out = run(&["replay", events, deck, "--tracking-db", db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tracking-db needs --state"));
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    assert!(run(&["replay", events, deck, "--state", a.to_str().unwrap(), "--tracking-db", db]).status.success());
    let out = run(&["replay", events, deck, "--state", b.to_str().unwrap(), "--tracking-db", db]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give each state its own database"), "{out:?}");
    // A state named by another scheme is refused, not taken for a directory.
    let out = run(&["replay", events, deck, "--state", "rediss://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`rediss://` is not supported"), "{out:?}");
    assert!(!Path::new("rediss:").exists());
}

/// A two-field fan-out index is keyed by field names, not positions: a release that
/// declares the index event's fields in another order finds the favorites the first kept.
#[test]
fn a_release_that_reorders_an_index_events_fields_keeps_its_fanout_index() {
    let deck = |fields: &str| {
        format!(
            r#"
entity user key uid
entity item key skuid
event favorite by uid {{ {fields} }}
event price_drop by skuid {{ shop: text }}
channel push
scene alert on price_drop for each user with favorite(sku == event.skuid and shop == event.shop) within 1h {{
  instance a -> reach {{ shop: text }} {{
    default => reach push "drop" {{ shop: event.shop }}
  }}
}}
"#
        )
    };
    let compile = |src: &str| ruledeck::compile(&[("deck.rule", src)]).unwrap_or_else(|e| panic!("{e}"));
    let mut o =
        Outreach::open(compile(&deck("sku: text, shop: text")), TagsFile::from_json(json!({})).unwrap(), None).unwrap();
    o.batch_size = usize::MAX;
    let favorite = json!({"id": "f", "event": "favorite", "time": "2026-11-21T08:00:00Z", "uid": "u-1",
                          "sku": "p", "shop": "s1"});
    assert!(replay(&mut o, &[favorite.to_string()]).is_empty());
    o.set_program(compile(&deck("shop: text, sku: text")), None, []).unwrap();
    let drop = json!({"id": "d", "event": "price_drop", "time": "2026-11-21T08:30:00Z", "skuid": "p", "shop": "s1"});
    let records = replay(&mut o, &[drop.to_string()]);
    assert_eq!(reached(&records), [("d".to_string(), "u-1".to_string(), "sent".to_string())]);
}

/// Window starts in both stores: none recorded (and the state fresh) before the first
/// commit; after it, the state says it keeps them; a start once kept is never moved. On
/// Redis, where another decider may have started the same window first, a commit that
/// would move it conflicts, so the batch is decided again on the kept start.
#[test]
fn window_starts_are_kept_once_and_a_different_start_conflicts() {
    use ruledeck::outreach::state::{Committed, RedbStore, RedisStore, Store, Writes};
    let start = |at: i64| Writes { window_starts: vec![("user.orders".to_string(), at)], ..Writes::default() };
    let kept = Some(std::collections::HashMap::from([("user.orders".to_string(), 100)]));
    let first = |a: &mut dyn Store| {
        assert!(a.fresh().unwrap());
        assert_eq!(a.window_starts().unwrap(), None, "nothing committed yet");
        let writes = Writes { units: vec![("user\0u-1".into(), vec![0], 0)], ..start(100) };
        assert!(matches!(a.commit(&writes).unwrap(), Committed::Done));
        assert!(!a.fresh().unwrap());
    };
    // One redb writer: a second start is simply not taken.
    let dir = tempfile::tempdir().unwrap();
    let mut redb = RedbStore::open(Some(dir.path())).unwrap();
    first(&mut redb);
    assert_eq!(redb.window_starts().unwrap(), kept);
    assert!(matches!(redb.commit(&start(200)).unwrap(), Committed::Done));
    assert_eq!(redb.window_starts().unwrap(), kept, "the first start is kept");
    // Two deciders on one Redis: the second one's different start conflicts.
    let Some(redis) = Redis::start() else { return };
    let mut a = RedisStore::open(&redis.url, "starts").unwrap();
    let b = RedisStore::open(&redis.url, "starts").unwrap();
    first(&mut a);
    assert_eq!(b.window_starts().unwrap(), kept);
    match b.commit(&start(200)).unwrap() {
        Committed::Conflict(what) => assert_eq!(what, "window user.orders"),
        Committed::Done => panic!("a different start must conflict"),
    }
    assert!(matches!(b.commit(&start(100)).unwrap(), Committed::Done), "the same start does not");
    assert_eq!(a.window_starts().unwrap(), kept);
}
