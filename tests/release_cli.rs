//! The release commands of the `ruledeck` binary: `release`, `releases`, `rollback`,
//! `diff`, `refs`, `check --store` and `eval --store`, their output and their refusals.
//! Decks are the files under `tests/fixtures/release/`; outputs are snapshots.

use std::path::Path;
use std::process::Command;

const FIXED_NOW: &str = "2026-12-01T10:00:00Z";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a fixed release time; the store's path reads `[STORE]` in output.
fn ruledeck(store: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ruledeck"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RULEDECK_NOW", FIXED_NOW)
        .output()
        .unwrap();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&store.display().to_string(), "[STORE]");
    Run { code: out.status.code().unwrap_or(-1), stdout: clean(&out.stdout), stderr: clean(&out.stderr) }
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/release/{name}")
}

fn store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store").display().to_string();
    (dir, path)
}

fn release(store: &str, deck: &str) -> Run {
    let run = ruledeck(Path::new(store), &["release", &fixture(deck), "--store", store]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn first_release_then_a_change_then_unchanged() {
    let (_tmp, s) = store();
    let first = release(&s, "v1");
    insta::assert_snapshot!("first_release", first.stdout);
    let second = release(&s, "v2");
    let doc = json(&second.stdout);
    assert_eq!(doc["release"], 2);
    assert_eq!(doc["instances"]["payment.installments"], serde_json::json!({"version": 2, "changed": true}));
    assert_eq!(doc["instances"]["traffic.banner"], serde_json::json!({"version": 1, "changed": false}));
    let again = release(&s, "v2");
    let doc = json(&again.stdout);
    assert_eq!(doc["unchanged"], true);
    assert_eq!(doc["release"], 2, "nothing was published");
    insta::assert_snapshot!("unchanged_release", again.stdout);
}

#[test]
fn releases_lists_history_newest_first() {
    let (_tmp, s) = store();
    release(&s, "v1");
    let p = Path::new(&s);
    assert_eq!(ruledeck(p, &["release", &fixture("v2"), "--store", &s, "--note", "9 installments"]).code, 0);
    assert_eq!(ruledeck(p, &["rollback", "1", "--store", &s, "--note", "finance said no"]).code, 0);
    let text = ruledeck(p, &["releases", "--store", &s]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!("releases_text", text.stdout);
    let list = ruledeck(p, &["releases", "--store", &s, "--format", "json"]);
    insta::assert_snapshot!("releases_json", list.stdout);
}

#[test]
fn rollback_rolls_forward_with_the_old_versions() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    release(&s, "v2");
    let back = ruledeck(p, &["rollback", "1", "--store", &s]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    insta::assert_snapshot!("rollback", back.stdout);
    let doc = json(&back.stdout);
    assert_eq!(doc["release"], 3);
    assert_eq!(doc["instances"]["payment.installments"]["version"], 1);
    // Publishing v2's content again brings back v2's version, under a new number.
    let forward = json(&release(&s, "v2").stdout);
    assert_eq!(forward["release"], 4);
    assert_eq!(forward["instances"]["payment.installments"]["version"], 2);
}

#[test]
fn rollback_refusals() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    let none = ruledeck(p, &["rollback", "1", "--store", &s]);
    assert_eq!(none.code, 1);
    insta::assert_snapshot!("rollback_without_store", none.stderr);
    release(&s, "v1");
    let missing = ruledeck(p, &["rollback", "7", "--store", &s]);
    assert_eq!(missing.code, 1);
    insta::assert_snapshot!("rollback_to_missing_release", missing.stderr);
    let same = ruledeck(p, &["rollback", "1", "--store", &s]);
    assert_eq!(same.code, 0);
    assert_eq!(json(&same.stdout)["unchanged"], true);
}

#[test]
fn release_refuses_errors_and_failing_tests() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    let failing = ruledeck(p, &["release", &fixture("failing_test"), "--store", &s]);
    assert_eq!(failing.code, 1);
    assert!(failing.stdout.is_empty(), "{}", failing.stdout);
    insta::assert_snapshot!("release_failing_test", failing.stderr);
    // Without a release, every use of a disabled tag is E0303.
    let disabled = ruledeck(p, &["release", &fixture("disabled_unchanged"), "--store", &s]);
    assert_eq!(disabled.code, 1);
    insta::assert_snapshot!("release_disabled_tag_on_empty_store", disabled.stderr);
    let list = ruledeck(p, &["releases", "--store", &s]);
    assert_eq!(list.stdout.trim(), "no releases yet");
}

#[test]
fn tag_status_is_judged_against_the_current_release() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    // The rule reading user.legacy_level is unchanged since release 1: it keeps working.
    let check = ruledeck(p, &["check", &fixture("disabled_unchanged"), "--store", &s]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    // Without the store the same deck is refused.
    let plain = ruledeck(p, &["check", &fixture("disabled_unchanged")]);
    assert_eq!(plain.code, 1);
    // A changed rule may not take up the disabled tag.
    let changed = ruledeck(p, &["check", &fixture("disabled_changed"), "--store", &s]);
    assert_eq!(changed.code, 1);
    insta::assert_snapshot!("check_store_changed_rule_uses_disabled_tag", changed.stderr);
    // Disabling publishes a release but changes no version: status is not content.
    let doc = json(&release(&s, "disabled_unchanged").stdout);
    assert_eq!(doc["release"], 2);
    for (name, i) in doc["instances"].as_object().unwrap() {
        assert_eq!(i["changed"], false, "{name}");
        assert_eq!(i["version"], 1, "{name}");
    }
    let refused = ruledeck(p, &["release", &fixture("disabled_changed"), "--store", &s]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("compared with release 2"), "{}", refused.stderr);
}

#[test]
fn versions_survive_unrelated_edits() {
    let (_tmp, s) = store();
    release(&s, "v1");
    let doc = json(&release(&s, "unrelated_edit").stdout);
    assert_eq!(doc["release"], 2, "a new scene is new content");
    assert_eq!(doc["instances"]["payment.installments"], serde_json::json!({"version": 1, "changed": false}));
    assert_eq!(doc["instances"]["traffic.banner"], serde_json::json!({"version": 1, "changed": false}));
    assert_eq!(doc["instances"]["loyalty.badge"], serde_json::json!({"version": 1, "changed": true}));
}

#[test]
fn eval_from_the_store_names_release_and_version() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    release(&s, "v2");
    let input = r#"{"uid": "u-1001", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}"#;
    let tags = fixture("tags.json");
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = ["eval", "--store", &s, "--scene", "payment", "--instance", "installments"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(["--input", input, "--tags", &tags].iter().map(|x| x.to_string()));
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let current: Vec<String> = args(&[]);
    let current = ruledeck(p, &current.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(current.code, 0, "{}", current.stderr);
    insta::assert_snapshot!("eval_store_current", current.stdout);
    let old = args(&["--release", "1"]);
    let old = ruledeck(p, &old.iter().map(String::as_str).collect::<Vec<_>>());
    let doc = json(&old.stdout);
    assert_eq!((doc["release"].clone(), doc["version"].clone()), (1.into(), 1.into()));
    assert_eq!(doc["decision"]["count"], 6);
    let missing = args(&["--release", "9"]);
    let missing = ruledeck(p, &missing.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(missing.code, 1);
    insta::assert_snapshot!("eval_store_missing_release", missing.stderr);
}

#[test]
fn diff_reports_changes_and_their_impact() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    let args =
        ["diff", &fixture("v2"), "--store", &s, "--inputs", &fixture("inputs.jsonl"), "--tags", &fixture("tags.json")];
    let text = ruledeck(p, &args);
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!("diff_text", text.stdout);
    let mut with_json = args.to_vec();
    with_json.extend(["--format", "json"]);
    let doc = ruledeck(p, &with_json);
    insta::assert_snapshot!("diff_json", doc.stdout);
    let d = json(&doc.stdout);
    assert_eq!(d["instances"]["payment.installments"]["decisions_changed"], 2, "u-1001 and u-1003 are in treatment");
    assert_eq!(d["instances"]["traffic.banner"]["requests"], 4, "fields for other scenes are left out, not refused");
    assert_eq!(d["instances"]["traffic.banner"]["decisions_changed"], 0);
    // Status changes and rule changes are listed without a sample too.
    let status = ruledeck(p, &["diff", &fixture("disabled_unchanged"), "--store", &s, "--format", "json"]);
    let d = json(&status.stdout);
    assert_eq!(d["tags"]["user.legacy_level"], "status: online -> disabled");
    assert_eq!(d["instances"]["payment.installments"]["status"], "unchanged");
}

/// What `diff` refuses, each with what it prints and its exit code: a deck that does not
/// compile (as `check` reports it, 1), a store that is missing or is some other folder (1,
/// nothing created), and a sample line that is not JSON (an input error, 2, naming the line).
#[test]
fn diff_refusals() {
    let (tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    let outcome = |run: &Run| format!("exit code {}\n{}", run.code, run.stderr);
    let broken = ruledeck(p, &["diff", &fixture("compile_error"), "--store", &s]);
    assert!(broken.stdout.is_empty(), "{}", broken.stdout);
    insta::assert_snapshot!("diff_compile_error", outcome(&broken));
    // `diff` never creates a store, unlike `release`.
    let missing = tmp.path().join("nowhere");
    let run = ruledeck(&missing, &["diff", &fixture("v1"), "--store", missing.to_str().unwrap()]);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    insta::assert_snapshot!("diff_missing_store", outcome(&run));
    assert!(!missing.exists(), "diff created the store");
    let other = not_a_store(&tmp);
    let run = ruledeck(&other, &["diff", &fixture("v1"), "--store", other.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("[STORE]`: not a release store"), "{}", run.stderr);
    assert!(!other.join("releases").exists(), "diff turned the folder into a store");
    let bad = ruledeck(p, &["diff", &fixture("v2"), "--store", &s, "--inputs", &fixture("bad_inputs.jsonl")]);
    assert!(bad.stdout.is_empty(), "no partial diff is printed: {}", bad.stdout);
    // Blank lines are skipped but counted: the bad line is named by its number in the file.
    insta::assert_snapshot!("diff_bad_inputs_line", outcome(&bad));
}

/// A folder that holds other files: not a store, and not one any command may take over.
fn not_a_store(tmp: &tempfile::TempDir) -> std::path::PathBuf {
    let dir = tmp.path().join("documents");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a release\n").unwrap();
    dir
}

#[test]
fn diff_against_an_empty_store_has_no_release_to_compare() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    // A refused first release leaves the store created and empty.
    assert_eq!(ruledeck(p, &["release", &fixture("failing_test"), "--store", &s]).code, 1);
    assert_eq!(ruledeck(p, &["releases", "--store", &s]).stdout.trim(), "no releases yet");
    let (inputs, tags) = (fixture("inputs.jsonl"), fixture("tags.json"));
    let run =
        ruledeck(p, &["diff", &fixture("v1"), "--store", &s, "--inputs", &inputs, "--tags", &tags, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let d = json(&run.stdout);
    assert_eq!(d["against"], serde_json::Value::Null, "{d}");
    for (name, i) in d["instances"].as_object().unwrap() {
        assert_eq!(i["status"], "added", "{name}");
    }
    insta::assert_snapshot!("diff_empty_store_json", run.stdout);
}

#[test]
fn check_against_a_store_reports_like_check() {
    let (tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    let run = ruledeck(p, &["check", &fixture("disabled_unchanged"), "--store", &s]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    insta::assert_snapshot!("check_store_ok", run.stderr);
    // A folder of other files is refused by the commands that read a store, left as it was.
    let other = not_a_store(&tmp);
    let check = ruledeck(&other, &["check", &fixture("v1"), "--store", other.to_str().unwrap()]);
    assert_eq!(check.code, 1);
    insta::assert_snapshot!("check_store_not_a_store", check.stderr);
    let list = ruledeck(&other, &["releases", "--store", other.to_str().unwrap()]);
    assert_eq!(list.code, 1);
    assert!(list.stdout.is_empty(), "{}", list.stdout);
    insta::assert_snapshot!("releases_not_a_store", list.stderr);
    let entries: Vec<_> = std::fs::read_dir(&other).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["notes.txt"]);
}

#[test]
fn refs_follows_rules_through_rules() {
    let p = Path::new("/nonexistent");
    let text = ruledeck(p, &["refs", "user.legacy_level", &fixture("v1")]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!("refs_text", text.stdout);
    let doc = ruledeck(p, &["refs", "user.legacy_level", &fixture("v1"), "--format", "json"]);
    insta::assert_snapshot!("refs_json", doc.stdout);
    let d = json(&doc.stdout);
    assert_eq!(d["rules"], serde_json::json!(["trusted_veteran", "veteran"]));
    assert_eq!(d["through"]["trusted_veteran"], serde_json::json!(["veteran"]));
    assert_eq!(d["strategies"], serde_json::json!(["payment.installments.loyal"]));
    let unknown = ruledeck(p, &["refs", "user.legacy_levl", &fixture("v1")]);
    assert_eq!(unknown.code, 1);
    insta::assert_snapshot!("refs_unknown_tag", unknown.stderr);
}

#[test]
fn refs_of_a_live_release_come_from_its_manifest() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    release(&s, "v1");
    release(&s, "v2");
    let from_files = ruledeck(p, &["refs", "user.legacy_level", &fixture("v1"), "--format", "json"]);
    let live = ruledeck(p, &["refs", "user.legacy_level", "--store", &s, "--format", "json"]);
    assert_eq!(live.code, 0, "{}", live.stderr);
    assert_eq!(json(&live.stdout), json(&from_files.stdout), "the manifest records what the files say");
    let old = ruledeck(p, &["refs", "user.risk_score", "--store", &s, "--release", "1", "--format", "json"]);
    assert_eq!(json(&old.stdout)["rules"], serde_json::json!(["low_risk", "trusted_veteran"]));
    let unknown = ruledeck(p, &["refs", "user.risk_scor", "--store", &s]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("did you mean `user.risk_score`?"), "{}", unknown.stderr);
}

#[test]
fn a_corrupt_bundle_is_refused_naming_the_file() {
    let (_tmp, s) = store();
    let p = Path::new(&s);
    let doc = json(&release(&s, "v1").stdout);
    let bundle = Path::new(&s).join("bundles").join(format!("{}.rdb", doc["hash"].as_str().unwrap()));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&bundle, &bytes).unwrap();
    let run = ruledeck(
        p,
        &["eval", "--store", &s, "--scene", "traffic", "--instance", "banner", "--input", r#"{"uid": "u-1"}"#],
    );
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "nothing was decided: {}", run.stdout);
    let hash = doc["hash"].as_str().unwrap();
    insta::assert_snapshot!(
        "corrupt_bundle",
        run.stderr
            .replace(hash, "[HASH]")
            .lines()
            .map(|l| l.split(": its SHA-256").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn concurrent_release_processes_serialize() {
    let (_tmp, s) = store();
    let decks = ["v1", "v2", "unrelated_edit", "salt_changed"];
    let children: Vec<_> = decks
        .iter()
        .map(|deck| {
            Command::new(env!("CARGO_BIN_EXE_ruledeck"))
                .args(["release", &fixture(deck), "--store", &s])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("RULEDECK_NOW", FIXED_NOW)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut numbers = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let doc = json(&String::from_utf8_lossy(&out.stdout));
        numbers.push(doc["release"].as_u64().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3, 4], "each process published its own release, numbers never shared");
    let history = ruledeck(Path::new(&s), &["releases", "--store", &s, "--format", "json"]);
    let list = json(&history.stdout);
    let listed: Vec<u64> = list.as_array().unwrap().iter().map(|e| e["release"].as_u64().unwrap()).collect();
    assert_eq!(listed, [4, 3, 2, 1]);
    for entry in list.as_array().unwrap() {
        let n = entry["release"].as_u64().unwrap();
        let parent = entry["parent"].as_u64();
        assert_eq!(parent, if n == 1 { None } else { Some(n - 1) }, "each release was published over the one before");
    }
}
