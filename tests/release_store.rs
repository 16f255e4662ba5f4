//! The release store through the host API: crash safety at every write step, corrupt and
//! truncated files, version assignment, sticky A/B across releases, and hot swapping
//! under load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ruledeck::engine::{Engine, Loaded, Provider, TagQuery, TagsFile};
use ruledeck::release::store::WRITE_STEPS;
use ruledeck::release::{Live, Manifest, Publish, Store};
use serde_json::json;

fn deck(name: &str) -> String {
    let path = format!("{}/tests/fixtures/release/{name}/deck.rule", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks `text` against the store's current release and publishes it.
fn publish_text(store: &Store, text: &str, time: &str) -> Result<Publish, ruledeck::release::StoreError> {
    let current = store.current_manifest()?;
    let baseline = current.as_ref().map(Manifest::baseline);
    let mut sources = ruledeck::source::Sources::new();
    sources.add("deck.rule", text);
    let (checked, items) = ruledeck::check_sources_against(sources, baseline.as_ref()).expect("the deck checks");
    let program = ruledeck::compile::compile(&checked).expect("the deck compiles");
    store.publish(&checked, &program, &items, current.map(|m| m.release), time, None)
}

fn published(p: Publish) -> Manifest {
    match p {
        Publish::Published(m) => m,
        other => panic!("expected a new release, got {other:?}"),
    }
}

const T: &str = "2026-12-01T10:00:00Z";

#[test]
fn a_crash_after_any_write_step_leaves_the_previous_or_the_new_release() {
    // "CURRENT renamed into place" is the commit point.
    let commit = WRITE_STEPS.iter().position(|s| *s == "CURRENT renamed into place").unwrap();
    let manifest_placed = WRITE_STEPS.iter().position(|s| *s == "manifest renamed into place").unwrap();
    let orphan_of = |step: usize| (manifest_placed..commit).contains(&step);
    for (step, name) in WRITE_STEPS.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let store = Store::create(&dir).unwrap();
        let first = published(publish_text(&store, &deck("v1"), T).unwrap());
        let crashing = Store::open(&dir).unwrap().crash_after(step);
        let err = publish_text(&crashing, &deck("v2"), T).expect_err("the injected crash stops the publish");
        assert!(err.to_string().contains(name), "step {step}: {err}");

        // After the "restart": a consistent store at exactly one of the two releases.
        let store = Store::open(&dir).unwrap();
        let current = store.load(None).unwrap_or_else(|e| panic!("step {step}: {e}"));
        let expected = if step < commit { 1 } else { 2 };
        assert_eq!(current.manifest.release, expected, "crash after `{name}`");
        let installments = current.manifest.instances["payment.installments"].version;
        assert_eq!(installments, expected, "the content is the release's own");
        if expected == 1 {
            assert_eq!(current.manifest, first);
        }
        let history = store.history().unwrap();
        assert_eq!(history[0].release, expected, "the history ends at the current release (step {step})");
        assert_eq!(history.len() as u64, expected);

        if orphan_of(step) {
            let err = store.rollback(2, T, None).expect_err("an orphan was never released");
            assert!(err.to_string().contains("was never current"), "{err}");
        }
        // The next publish works and never reuses a number an interrupted one may have taken.
        let next = publish_text(&store, &deck("unrelated_edit"), T).unwrap();
        let next = published(next);
        // An interrupted publish whose manifest reached `releases/` burned its number.
        assert_eq!(next.release, if orphan_of(step) { 3 } else { expected + 1 }, "step {step}");
        let history = store.history().unwrap();
        assert_eq!(history[0].release, next.release);
        let numbers: Vec<u64> = history.iter().map(|e| e.release).collect();
        let mut sorted = numbers.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(numbers, sorted, "newest first, no duplicates (step {step})");
    }
}

#[test]
fn corrupt_and_truncated_bundles_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let m = published(publish_text(&store, &deck("v1"), T).unwrap());
    let bundle = store.dir().join("bundles").join(format!("{}.rdb", m.hash));
    let good = std::fs::read(&bundle).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped byte", {
            let mut b = good.clone();
            b[good.len() / 2] ^= 1;
            b
        }),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
    ];
    for (what, bytes) in cases {
        std::fs::write(&bundle, &bytes).unwrap();
        let err = store.load(None).err().unwrap_or_else(|| panic!("{what}: loaded"));
        let text = err.to_string();
        assert!(text.contains(&bundle.display().to_string()), "{what}: {text}");
        assert!(text.contains("corrupt"), "{what}: {text}");
    }
    // Rolling back to a release whose bundle is damaged is refused, and writes nothing.
    std::fs::write(&bundle, &good[..10]).unwrap();
    published(publish_text(&store, &deck("v2"), T).unwrap());
    let err = store.rollback(1, T, None).expect_err("refused");
    assert!(err.to_string().contains(&bundle.display().to_string()), "{err}");
    assert_eq!(store.current_number().unwrap(), Some(2));
    // Publishing the same content again rewrites the damaged bundle (same name, same bytes).
    let again = published(publish_text(&store, &deck("v1"), T).unwrap());
    assert_eq!((again.release, &again.hash), (3, &m.hash));
    assert_eq!(std::fs::read(&bundle).unwrap(), good);
    assert_eq!(store.load(Some(1)).unwrap().manifest.hash, m.hash, "release 1 loads again");
}

#[test]
fn corrupt_manifests_and_pointers_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s")).unwrap();
    published(publish_text(&store, &deck("v1"), T).unwrap());
    let manifest = store.dir().join("releases").join("0000000001.json");
    let good = std::fs::read_to_string(&manifest).unwrap();
    for (what, text) in [
        ("truncated", good[..good.len() / 2].to_string()),
        ("edited version", good.replacen("\"version\": 1", "\"version\": 7", 1)),
        ("renumbered", good.replacen("\"release\": 1", "\"release\": 2", 1)),
    ] {
        std::fs::write(&manifest, &text).unwrap();
        let err = store.load(None).err().unwrap_or_else(|| panic!("{what}: loaded"));
        assert!(err.to_string().contains("0000000001.json"), "{what}: {err}");
    }
    std::fs::write(&manifest, &good).unwrap();
    std::fs::write(store.dir().join("CURRENT"), "one\n").unwrap();
    let err = store.load(None).err().unwrap();
    assert!(err.to_string().contains("CURRENT"), "{err}");
    assert!(err.to_string().contains("does not hold a release number"), "{err}");
}

#[test]
fn a_torn_journal_line_is_completed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let store = Store::create(&dir).unwrap();
    published(publish_text(&store, &deck("v1"), T).unwrap());
    let torn = WRITE_STEPS.iter().position(|s| *s == "half a journal line appended").unwrap();
    let crashing = Store::open(&dir).unwrap().crash_after(torn);
    publish_text(&crashing, &deck("v2"), T).unwrap_err();
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(!journal.ends_with('\n'), "the crash left half a line");
    let store = Store::open(&dir).unwrap();
    let history = store.history().unwrap();
    assert_eq!(history.iter().map(|e| e.release).collect::<Vec<_>>(), [2, 1]);
    published(publish_text(&store, &deck("unrelated_edit"), T).unwrap());
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let parsed: Vec<u64> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| e["release"].as_u64().unwrap())
        .collect();
    assert_eq!(parsed, [1, 2, 3], "release 2's line was completed before release 3's");
}

#[test]
fn versions_follow_content() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let v = |m: &Manifest| m.instances["payment.installments"].version;
    let r1 = published(publish_text(&store, &deck("v1"), T).unwrap());
    let r2 = published(publish_text(&store, &deck("v2"), T).unwrap());
    let r3 = published(publish_text(&store, &deck("v1"), T).unwrap());
    let r4 = published(publish_text(&store, &deck("salt_changed"), T).unwrap());
    assert_eq!([v(&r1), v(&r2), v(&r3), v(&r4)], [1, 2, 1, 3], "returning content takes back its version");
    assert!([&r1, &r2, &r3, &r4].iter().all(|m| m.instances["traffic.banner"].version == 1));
    let r5 = published(store.rollback(2, T, Some("back to nine")).unwrap());
    assert_eq!((r5.release, v(&r5), r5.rollback_of), (5, 2, Some(2)));
    assert_eq!(r5.parent, Some(4));
    assert!(matches!(publish_text(&store, &deck("v2"), T).unwrap(), Publish::Unchanged(_)));
}

/// A provider that knows every user as low-risk and active.
struct LowRiskEveryone;

impl Provider for LowRiskEveryone {
    fn load(&self, queries: &[TagQuery<'_>]) -> Vec<Loaded> {
        queries
            .iter()
            .map(|q| match q.field {
                "risk_score" => Loaded::Value(json!(12)),
                "lifecycle" => Loaded::Value(json!("active")),
                _ => Loaded::Missing,
            })
            .collect()
    }
}

fn engine_factory() -> impl Fn(Arc<ruledeck::compile::program::Program>) -> Engine + Send + Sync + 'static {
    let tags =
        std::fs::read_to_string(format!("{}/tests/fixtures/release/tags.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&tags).unwrap();
    move |program| Engine::new(program).with_fallback(TagsFile::from_json(doc.clone()).unwrap())
}

#[test]
fn units_keep_their_group_while_the_experiment_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s")).unwrap();
    published(publish_text(&store, &deck("v1"), T).unwrap());
    // Every unit is a low-risk active user, so every unit enters the experiment.
    let live = Live::open(&store, |program| Engine::new(program).with_fallback(LowRiskEveryone)).unwrap();
    let units: Vec<String> = (0..200).map(|i| format!("u-{i}")).collect();
    let groups = |live: &Live| -> Vec<(u64, serde_json::Value, serde_json::Value)> {
        units
            .iter()
            .map(|u| {
                let release = live.current();
                let input = json!({"uid": u, "ctx.channel": "app", "now": T});
                let doc = release.decide_json("payment", "installments", &input, false).unwrap();
                (doc["release"].as_u64().unwrap(), doc["group"].clone(), doc["bucket"].clone())
            })
            .collect()
    };
    let before = groups(&live);
    // v2 changes the treatment's decision, not the experiment's name, salt, unit or split.
    published(publish_text(&store, &deck("v2"), T).unwrap());
    assert!(live.refresh(&store).unwrap());
    let after = groups(&live);
    assert!(after.iter().all(|(r, _, _)| *r == 2));
    assert!(after.iter().all(|(_, g, _)| !g.is_null()), "every unit is in the experiment");
    let groups_of =
        |g: &[(u64, serde_json::Value, serde_json::Value)]| g.iter().map(|x| x.1.clone()).collect::<Vec<_>>();
    assert_eq!(groups_of(&before), groups_of(&after));
    let buckets = |g: &[(u64, serde_json::Value, serde_json::Value)]| g.iter().map(|x| x.2.clone()).collect::<Vec<_>>();
    assert_eq!(buckets(&before), buckets(&after), "same experiment, same buckets, same groups");
    // A new salt re-buckets units.
    published(publish_text(&store, &deck("salt_changed"), T).unwrap());
    live.refresh(&store).unwrap();
    assert_ne!(buckets(&after), buckets(&groups(&live)));
}

#[test]
fn hot_swapping_fifty_releases_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s")).unwrap();
    let base = deck("v1");
    // Release i answers the web default with the label "r{i}", so a result shows which
    // release's code decided it.
    let version_text = |i: u64| {
        base.replace(r#"default => { count: 1, label: "" }"#, &format!(r#"default => {{ count: 1, label: "r{i}" }}"#))
    };
    published(publish_text(&store, &version_text(1), T).unwrap());
    let live = Arc::new(Live::open(&store, engine_factory()).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (live, done) = (live.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                let mut decisions = 0u64;
                let input = json!({"uid": format!("u-{t}"), "ctx.channel": "h5", "now": T});
                // Bounded: stops once the publisher is done (after one more decision, which
                // then runs on the last release), or after a generous count.
                while decisions < 20_000_000 {
                    let finishing = done.load(Ordering::SeqCst);
                    let release = live.current();
                    let doc = release.decide_json("payment", "installments", &input, false).expect("no decision fails");
                    let n = doc["release"].as_u64().unwrap();
                    assert_eq!(n, release.number());
                    assert_eq!(doc["decision"]["label"], format!("r{n}"), "the decision ran wholly on release {n}");
                    assert_eq!(doc["version"], release.manifest.instances["payment.installments"].version);
                    assert!(n >= last, "release numbers only grow ({last} then {n})");
                    last = n;
                    decisions += 1;
                    if finishing {
                        break;
                    }
                }
                last
            })
        })
        .collect();
    for i in 2..=51 {
        let m = published(publish_text(&store, &version_text(i), T).unwrap());
        assert_eq!(m.release, i);
        assert_eq!(m.instances["payment.installments"].version, i, "each label is new content");
        assert!(live.refresh(&store).unwrap());
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        let last = r.join().expect("no reader panicked");
        assert_eq!(last, 51, "every reader ended on the last release");
    }
    assert_eq!(live.current().number(), 51);
    assert!(!live.refresh(&store).unwrap(), "already current");
}

#[test]
fn every_prefix_of_a_manifest_and_a_journal_is_refused_or_read_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::create(tmp.path().join("s")).unwrap();
    published(publish_text(&store, &deck("v1"), T).unwrap());
    published(publish_text(&store, &deck("v2"), T).unwrap());
    let manifest = std::fs::read(store.dir().join("releases/0000000002.json")).unwrap();
    let journal = std::fs::read(store.dir().join("journal.jsonl")).unwrap();
    assert!(ruledeck::release::store::parse_manifest(&manifest, 2).is_ok());
    assert_eq!(ruledeck::release::store::parse_journal(&journal).unwrap().len(), 2);
    for cut in (0..manifest.len()).step_by(13) {
        assert!(ruledeck::release::store::parse_manifest(&manifest[..cut], 2).is_err(), "prefix {cut} accepted");
        ruledeck::fuzzing::bundle_bytes(&manifest[..cut]);
    }
    for cut in 0..journal.len() {
        // A cut inside the last line is a torn append: the first entry survives.
        let entries = ruledeck::release::store::parse_journal(&journal[..cut]).unwrap();
        assert!(entries.len() <= 2);
        ruledeck::fuzzing::bundle_bytes(&journal[..cut]);
    }
}

fn status_fixture(name: &str) -> ruledeck::source::Sources {
    let path = format!("{}/tests/fixtures/release/status_items/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut sources = ruledeck::source::Sources::new();
    sources.add(name, std::fs::read_to_string(&path).unwrap());
    sources
}

#[test]
fn tag_status_is_judged_per_item() {
    // The release: both tags online.
    let (_, items) = ruledeck::check_sources_against(status_fixture("online.rule"), None).unwrap();
    let baseline = ruledeck::check::status::Baseline { release: 4, items: items.into_iter().collect() };
    // Disabling them breaks nothing that is released: the `when`, the decision reading
    // user.tier and the experiment unit are all unchanged.
    ruledeck::check_sources_against(status_fixture("disabled.rule"), Some(&baseline))
        .expect("unchanged items keep working");
    // Without a release every use is E0303.
    let err = ruledeck::check_sources_against(status_fixture("disabled.rule"), None).unwrap_err();
    let codes: Vec<&str> = err.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["E0303"; 4], "{err}");
    // Changing one `when` makes only that item new.
    let err =
        ruledeck::check_sources_against(status_fixture("disabled_when_changed.rule"), Some(&baseline)).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    insta::assert_snapshot!("status_changed_when", err.to_string());
}

/// Processes that publish the first release of a store at the same moment all create it:
/// one of them finding the store's folders half made must not call it "not a store".
#[test]
fn concurrent_first_creations_of_a_store_all_open_it() {
    for round in 0..40 {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(format!("store-{round}"));
        let start = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (dir, start) = (dir.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Store::create(&dir).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}

#[test]
fn a_folder_holding_other_files_is_not_made_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let e = Store::create(tmp.path()).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("not a release store"), "{e}");
    assert!(!tmp.path().join("releases").exists());
}
