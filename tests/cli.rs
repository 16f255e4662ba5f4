//! The `ruledeck` binary: exit codes, output formats and file handling.

use std::path::PathBuf;
use std::process::Command;

fn ruledeck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ruledeck"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ruledeck-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_clean_file_exits_0() {
    let (code, _, err) = ruledeck(&["check", "tests/fixtures/check/ok_design_example.rule"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no errors"));
}

#[test]
fn check_errors_exit_1_with_locations() {
    let (code, _, err) = ruledeck(&["check", "tests/fixtures/check/err_E0401_extra_field.rule"]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0401]: the decision type has no field `lable`"), "{err}");
    assert!(err.contains("--> tests/fixtures/check/err_E0401_extra_field.rule:11:74"), "{err}");
    assert!(err.trim_end().ends_with("error: 1 error in 1 file"), "{err}");
}

#[test]
fn check_json_format() {
    let (code, out, _) = ruledeck(&["check", "--format", "json", "tests/fixtures/check/err_E0201_not_a_member.rule"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["errors"], 2);
    let first = &json["diagnostics"][0];
    assert_eq!(first["code"], "E0201");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "tests/fixtures/check/err_E0201_not_a_member.rule");
    assert_eq!(first["line"], 11);
    assert_eq!(first["column"], 33);
    assert_eq!(first["help"], "did you mean `active`?");
    insta::assert_snapshot!(out);
}

#[test]
fn check_json_clean_has_no_diagnostics() {
    let (code, out, _) = ruledeck(&["check", "--format", "json", "tests/fixtures/check/ok_operators.rule"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["errors"], 0);
    assert_eq!(json["diagnostics"].as_array().unwrap().len(), 0);
}

#[test]
fn missing_file_exits_2() {
    let (code, _, err) = ruledeck(&["check", "no/such/file.rule"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read `no/such/file.rule`"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(ruledeck(&["check"]).0, 2);
    assert_eq!(ruledeck(&["frobnicate"]).0, 2);
    assert_eq!(ruledeck(&["check", "--format", "xml", "x.rule"]).0, 2);
}

#[test]
fn invalid_utf8_is_a_located_diagnostic() {
    let (code, _, err) = ruledeck(&["check", "tests/fixtures/parse/err_E0001_invalid_utf8.rule"]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0001]: file is not valid UTF-8"), "{err}");
    assert!(err.contains("err_E0001_invalid_utf8.rule:2:32"), "{err}");
}

#[test]
fn directories_are_searched_for_rule_files_and_names_are_shared() {
    let dir = temp_dir("dirs");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("tags.rule"), "entity user key uid\ntag user.vip: bool from \"p\"\n").unwrap();
    std::fs::write(dir.join("nested/rules.rule"), "rule user vip = user.vip\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rule file").unwrap();
    let (code, _, err) = ruledeck(&["check", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("checked 2 files"), "{err}");
    let (code, _, err) = ruledeck(&["check", temp_dir("empty").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("no .rule files"), "{err}");
}

const PAYMENT_1001: &str =
    r#"{"uid": "u-1001", "orderid": "o-1", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}"#;

#[test]
fn eval_one_request() {
    let (code, out, err) = ruledeck(&[
        "eval",
        "examples/deck",
        "--scene",
        "payment",
        "--instance",
        "installments",
        "--tags",
        "examples/deck/tags.json",
        "--input",
        PAYMENT_1001,
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        r#"{"scene":"payment","instance":"installments","decision":{"count":6,"label":"6 interest-free"},"strategy":"low_risk_boost","experiment":"inst_2611","group":"treatment","bucket":7818}"#
    );
}

#[test]
fn eval_explain_adds_the_trace() {
    let (code, out, _) = ruledeck(&[
        "eval",
        "examples/deck",
        "--scene",
        "payment",
        "--instance",
        "installments",
        "--tags",
        "examples/deck/tags.json",
        "--explain",
        "--input",
        r#"{"uid": "u-1004", "orderid": "o-1", "ctx.channel": "app", "now": "2026-11-21T08:00:00Z"}"#,
    ]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    insta::assert_json_snapshot!(doc);
}

#[test]
fn eval_many_requests_keeps_order_and_reports_bad_lines() {
    let dir = temp_dir("inputs");
    let lines = [
        PAYMENT_1001,
        r#"{"uid": "u-1003", "orderid": "o-2", "ctx.channel": "h5", "now": "2026-11-21T08:00:00Z"}"#,
        r#"{"uid": "u-1002"}"#,
        "not json",
        "",
        r#"{"uid": "u-9", "orderid": "o-3", "ctx.channel": "mini"}"#,
        r#"{"uid": "u-9", "orderid": "o-3", "ctx.channel": "tv"}"#,
    ];
    std::fs::write(dir.join("in.jsonl"), lines.join("\n")).unwrap();
    let (code, out, err) = ruledeck(&[
        "eval",
        "examples/deck",
        "--scene",
        "payment",
        "--instance",
        "installments",
        "--tags",
        "examples/deck/tags.json",
        "--inputs",
        dir.join("in.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "three lines were refused");
    assert!(err.contains("3 requests were refused"), "{err}");
    let results: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), 7, "one output line per input line, blank ones included");
    assert_eq!(results[0]["group"], "treatment");
    assert_eq!(results[1]["strategy"], "win_back", "u-1003 last ordered in March: lapsed");
    assert_eq!(results[2]["error"], "missing key `orderid`");
    assert_eq!(results[2]["line"], 3, "a refusal names its line");
    assert!(results[3]["error"].as_str().unwrap().contains("not valid JSON"));
    assert_eq!(results[3]["line"], 4);
    assert_eq!(results[4], serde_json::Value::Null, "a blank line answers null");
    assert_eq!(results[5]["strategy"], "default");
    assert_eq!(
        results[6]["error"], "invalid value for `ctx.channel`: \"tv\" is not a member of enum(app, h5, mini)",
        "a refusal names the value and lists the members"
    );
}

/// Past one chunk of lines (4,096), decided by several workers: output line N still answers
/// input line N, refusals name their own line, and every answer equals the one `--input` gives.
#[test]
fn eval_many_chunks_keeps_order() {
    let dir = temp_dir("chunks");
    let requests = [
        PAYMENT_1001,
        r#"{"uid": "u-1003", "orderid": "o-2", "ctx.channel": "h5", "now": "2026-11-21T08:00:00Z"}"#,
        r#"{"uid": "u-9", "orderid": "o-3", "ctx.channel": "mini", "now": "2026-11-21T08:00:00Z"}"#,
        r#"{"uid": "u-1002"}"#,
        "",
    ];
    let n = 9_001;
    let lines: Vec<&str> = (0..n).map(|i| requests[(i * 7 + i / 13) % requests.len()]).collect();
    std::fs::write(dir.join("in.jsonl"), lines.join("\n")).unwrap();
    let args = ["eval", "examples/deck", "--scene", "payment", "--instance", "installments"];
    let tags = ["--tags", "examples/deck/tags.json"];
    let expected: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            if r.is_empty() {
                return serde_json::Value::Null;
            }
            let (_, out, _) = ruledeck(&[&args[..], &tags[..], &["--input", r]].concat());
            serde_json::from_str(out.trim()).unwrap()
        })
        .collect();
    let path = dir.join("in.jsonl");
    let (code, out, _) = ruledeck(&[&args[..], &tags[..], &["--inputs", path.to_str().unwrap()]].concat());
    assert_eq!(code, 3, "the request without `orderid` is refused");
    let results: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), n);
    for (i, result) in results.iter().enumerate() {
        let mut want = expected[(i * 7 + i / 13) % requests.len()].clone();
        if want.get("error").is_some() {
            want["line"] = serde_json::json!(i + 1);
        }
        assert_eq!(result, &want, "line {}", i + 1);
    }
}

#[test]
fn eval_reads_requests_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ruledeck"))
        .args(["eval", "examples/deck", "--scene", "payment", "--instance", "installments"])
        .args(["--tags", "examples/deck/tags.json", "--inputs", "-"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{PAYMENT_1001}\n{PAYMENT_1001}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["group"] == "treatment"));
}

#[test]
fn eval_refuses_unknown_scene_and_requires_a_request() {
    let (code, _, err) = ruledeck(&["eval", "examples/deck", "--scene", "nope", "--instance", "x", "--input", "{}"]);
    assert_eq!(code, 3, "a refused request");
    assert!(err.contains("unknown scene `nope`"), "{err}");
    let (code, _, err) = ruledeck(&["eval", "examples/deck", "--scene", "paymnet", "--instance", "x", "--input", "{}"]);
    assert_eq!(code, 3);
    assert!(err.contains("unknown scene `paymnet`; did you mean `payment`?"), "{err}");
    let (code, _, err) =
        ruledeck(&["eval", "examples/deck", "--scene", "payment", "--instance", "instalments", "--input", "{}"]);
    assert_eq!(code, 3);
    assert!(err.contains("has no instance `instalments`; did you mean `installments`?"), "{err}");
    let (code, _, _) = ruledeck(&["eval", "examples/deck", "--scene", "payment", "--instance", "installments"]);
    assert_eq!(code, 2);
}

#[test]
fn build_then_eval_and_disasm_the_bundle() {
    let dir = temp_dir("bundle");
    let bundle = dir.join("deck.rdb");
    let (code, _, err) = ruledeck(&["build", "examples/deck", "-o", bundle.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = ruledeck(&[
        "eval",
        bundle.to_str().unwrap(),
        "--scene",
        "payment",
        "--instance",
        "installments",
        "--tags",
        "examples/deck/tags.json",
        "--input",
        PAYMENT_1001,
    ]);
    assert_eq!(code, 0);
    assert!(out.contains(r#""bucket":7818"#), "{out}");
    let (code, listing, _) = ruledeck(&["disasm", bundle.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(listing.contains("CmpTagInt user.risk_score < 30"), "{listing}");
    assert!(listing.contains("examples/deck/rules.rule:2"), "{listing}");
    // A corrupt bundle is refused with the reason, not a panic.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&bundle, bytes).unwrap();
    let (code, _, err) = ruledeck(&["disasm", bundle.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn test_command_exit_codes_filter_and_last_line() {
    let (code, out, _) = ruledeck(&["test", "tests/fixtures/run/passing.rule"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().last(), Some("4 passed, 0 failed"));
    let (code, out, _) = ruledeck(&["test", "tests/fixtures/run/failing.rule"]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().last(), Some("1 passed, 5 failed"));
    let (code, out, _) = ruledeck(&["test", "tests/fixtures/run/failing.rule", "--filter", "passes"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().last(), Some("1 passed, 0 failed, 5 skipped"));
    // A deck that does not compile is exit 2, with its diagnostics.
    let (code, _, err) = ruledeck(&["test", "tests/fixtures/check/err_E0102_unknown_tag.rule"]);
    assert_eq!(code, 2);
    assert!(err.contains("error[E0102]"), "{err}");
    let (code, _, _) = ruledeck(&["test"]);
    assert_eq!(code, 2);
}

#[test]
fn test_command_tags_and_json() {
    let (code, out, _) =
        ruledeck(&["test", "tests/fixtures/run/tag_data.rule", "--tags", "tests/fixtures/run/tag_data.tags.json"]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().last(), Some("1 passed, 1 failed"));
    let (code, out, _) = ruledeck(&["test", "tests/fixtures/run/failing.rule", "--format", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((doc["passed"].as_u64(), doc["failed"].as_u64()), (Some(1), Some(5)));
    let first = &doc["tests"][0];
    assert_eq!(first["status"], "failed");
    assert_eq!(first["file"], "tests/fixtures/run/failing.rule");
    assert_eq!(first["failures"][0]["line"], 23);
    assert_eq!(first["failures"][0]["expected"], "{ count: 6, label: \"6\" }");
    assert!(doc["coverage"][0]["branches"].as_array().unwrap().iter().any(|b| b["reached"] == false));
}

/// Regression: rules sharing a tag that is still being loaded once cached "unknown" and
/// made these example requests fall through to no decision.
#[test]
fn eval_rules_sharing_a_pending_tag() {
    let run = |instance: &str, input: &str| {
        let (code, out, err) = ruledeck(&[
            "eval",
            "examples/deck",
            "--scene",
            "coupons",
            "--instance",
            instance,
            "--tags",
            "examples/deck/tags.json",
            "--input",
            input,
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let welcome = run("welcome_coupon", r#"{"uid":"u-1005","skuid":"sku-dress-7","now":"2026-11-21T08:00:00Z"}"#);
    assert_eq!(
        (welcome["strategy"].as_str(), welcome["decision"]["discount_cents"].as_i64()),
        (Some("fashion_welcome"), Some(3885))
    );
    let loyalty = run("loyalty_coupon", r#"{"uid":"u-1008","skuid":"sku-coat-2","now":"2026-11-21T08:00:00Z"}"#);
    assert_eq!(
        (loyalty["strategy"].as_str(), loyalty["decision"]["discount_cents"].as_i64()),
        (Some("clearance_push"), Some(8990))
    );
}

#[test]
fn non_regular_files_are_refused_without_reading_them() {
    let (code, _, err) = ruledeck(&["check", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`/dev/zero` is a device, not a regular file"), "{err}");
    let dir = temp_dir("fifo");
    let fifo = dir.join("deck.rule");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Opening a FIFO with no writer would block forever; it must be refused first.
    let (code, _, err) = ruledeck(&["check", fifo.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a FIFO, not a regular file"), "{err}");
    let (code, _, err) =
        ruledeck(&["eval", fifo.to_str().unwrap(), "--scene", "s", "--instance", "i", "--input", "{}"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn oversized_files_are_refused_by_their_size_not_read() {
    let dir = temp_dir("sparse");
    // Sparse: a gigabyte that costs nothing on disk; reading it whole would take seconds.
    let big = dir.join("big.rule");
    std::fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    let (code, _, err) = ruledeck(&["check", big.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error[E0002]") && err.contains("is 1073741824 bytes; the limit is 8388608 bytes"), "{err}");
    let (code, out, _) = ruledeck(&["check", "--format", "json", big.to_str().unwrap()]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["diagnostics"][0]["code"], "E0002");
    let bundle = dir.join("big.rdb");
    let mut f = std::fs::File::create(&bundle).unwrap();
    use std::io::Write;
    f.write_all(b"RDECK\0\r\n").unwrap();
    f.set_len(2 << 30).unwrap();
    let (code, _, err) =
        ruledeck(&["eval", bundle.to_str().unwrap(), "--scene", "s", "--instance", "i", "--input", "{}"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is 2147483648 bytes; the limit is 268435456 bytes (256 MiB)"), "{err}");
}

#[test]
fn io_errors_are_json_when_json_is_asked_for() {
    let (code, out, _) = ruledeck(&["check", "--format", "json", "no/such/deck.rule"]);
    assert_eq!(code, 2);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc["fatal"].as_str().unwrap().contains("cannot read `no/such/deck.rule`"), "{doc}");
}

#[test]
fn each_file_is_read_once_through_symlinks_and_repeats() {
    let dir = temp_dir("symlinks");
    std::fs::write(dir.join("a.rule"), "entity user key uid\ntag user.x: int from \"p\"\n").unwrap();
    std::os::unix::fs::symlink(".", dir.join("self")).unwrap();
    std::os::unix::fs::symlink("a.rule", dir.join("alias.rule")).unwrap();
    let d = dir.to_str().unwrap();
    let a = dir.join("a.rule");
    for args in [vec!["check", d], vec!["check", d, d], vec!["check", a.to_str().unwrap(), d]] {
        let (code, _, err) = ruledeck(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.contains("checked 1 file: no errors"), "{args:?}: {err}");
    }
}

#[test]
fn bundles_given_to_check_or_test_are_named_as_bundles() {
    let dir = temp_dir("rdb-check");
    let bundle = dir.join("deck.rdb");
    let (code, _, _) = ruledeck(&["build", "examples/deck", "-o", bundle.to_str().unwrap()]);
    assert_eq!(code, 0);
    for command in ["check", "test"] {
        let (code, _, err) = ruledeck(&[command, bundle.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("is a compiled bundle, not rule source"), "{err}");
    }
}

#[test]
fn build_never_overwrites_an_input_and_writes_atomically() {
    let dir = temp_dir("overwrite");
    let src = dir.join("x.rule");
    let text = "entity user key uid\ntag user.x: int from \"p\"\n";
    std::fs::write(&src, text).unwrap();
    let (code, _, err) = ruledeck(&["build", src.to_str().unwrap(), "-o", src.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("is one of the inputs: refusing to overwrite it"), "{err}");
    let (code, _, err) = ruledeck(&["build", dir.to_str().unwrap(), "-o", src.to_str().unwrap()]);
    assert_eq!(code, 2, "an input found by walking a directory: {err}");
    assert_eq!(std::fs::read_to_string(&src).unwrap(), text, "the source is untouched");
    let out = dir.join("x.rdb");
    let (code, _, err) = ruledeck(&["build", src.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
}

#[test]
fn duplicate_json_keys_are_refused_with_name_and_place() {
    let (code, out, _) = ruledeck(&[
        "eval",
        "examples/deck",
        "--scene",
        "payment",
        "--instance",
        "installments",
        "--input",
        r#"{"uid": "u-1", "uid": "u-2", "orderid": "o", "ctx.channel": "app"}"#,
    ]);
    assert_eq!(code, 3);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(doc["error"].as_str().unwrap().contains(r#"duplicate key "uid""#), "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("line 1 column 20"), "{doc}");
    let dir = temp_dir("dup-tags");
    let tags = dir.join("tags.json");
    std::fs::write(&tags, "{\"user\": {\"u-1\": {\"risk_score\": 1},\n  \"u-1\": {\"risk_score\": 2}}}").unwrap();
    let (code, _, err) = ruledeck(&[
        "eval",
        "examples/deck",
        "--scene",
        "payment",
        "--instance",
        "installments",
        "--tags",
        tags.to_str().unwrap(),
        "--input",
        PAYMENT_1001,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains(r#"duplicate key "u-1""#) && err.contains("line 2 column 7"), "{err}");
}

#[test]
fn tags_files_warn_about_what_no_tag_declares_and_take_times_as_seconds() {
    let dir = temp_dir("tags-warn");
    std::fs::write(
        dir.join("deck.rule"),
        "entity user key uid\ntag user.seen: time from \"p\"\ntag user.risk_score: int from \"p\"\n\
         rule user recent = user.seen within 1d\n\
         scene s { keys uid instance i -> { ok: bool } { strategy r when recent => { ok: true } default => { ok: false } } }\n",
    )
    .unwrap();
    // 1795248000 is 2026-11-21T08:00:00Z; `now` is an hour later.
    std::fs::write(
        dir.join("tags.json"),
        r#"{"usr": {}, "user": {"u-1": {"seen": 1795248000, "risk_scor": 3}, "u-2": {"seen": "2026-11-21T08:00:00.9Z"}}}"#,
    )
    .unwrap();
    let run = |uid: &str| {
        let input = format!(r#"{{"uid": "{uid}", "now": "2026-11-21T09:00:00Z"}}"#);
        ruledeck(&[
            "eval",
            dir.join("deck.rule").to_str().unwrap(),
            "--scene",
            "s",
            "--instance",
            "i",
            "--tags",
            dir.join("tags.json").to_str().unwrap(),
            "--input",
            &input,
        ])
    };
    let (code, out, err) = run("u-1");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""strategy":"r""#), "seconds since the epoch are a time: {out}");
    assert!(err.contains("warning:") && err.contains("entity `usr` has no tags in the deck"), "{err}");
    assert!(
        err.contains("no tag `user.risk_scor` is declared") && err.contains("did you mean `user.risk_score`?"),
        "{err}"
    );
    let (code, out, _) = run("u-2");
    assert_eq!(code, 0);
    assert!(out.contains(r#""strategy":"r""#), "fractional seconds round down: {out}");
}

#[test]
fn a_test_filter_that_matches_nothing_fails() {
    let (code, _, err) = ruledeck(&["test", "examples/deck", "--filter", "no test has this name"]);
    assert_eq!(code, 1);
    assert!(err.contains("no test name contains `no test has this name`"), "{err}");
}

#[test]
fn eval_exit_codes_tell_a_broken_deck_from_a_refused_request() {
    let dir = temp_dir("exit-codes");
    std::fs::write(dir.join("bad.rule"), "rule user r = user.nope > 1\n").unwrap();
    let (code, _, _) =
        ruledeck(&["eval", dir.join("bad.rule").to_str().unwrap(), "--scene", "s", "--instance", "i", "--input", "{}"]);
    assert_eq!(code, 1, "the deck does not compile");
    let (code, _, _) =
        ruledeck(&["eval", "examples/deck", "--scene", "payment", "--instance", "installments", "--input", "{}"]);
    assert_eq!(code, 3, "the request is refused");
}

#[test]
fn warnings_are_printed_and_do_not_fail_check() {
    let fixture = "tests/fixtures/check/warn_W0506_zero_percent_group.rule";
    let (code, _, err) = ruledeck(&["check", fixture]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning[W0506]") && err.contains("no errors, 1 warning"), "{err}");
    let (code, out, _) = ruledeck(&["check", "--format", "json", fixture]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((doc["errors"].as_u64(), doc["warnings"].as_u64()), (Some(0), Some(1)));
    assert_eq!(doc["diagnostics"][0]["severity"], "warning");
}

fn ruledeck_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ruledeck"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fmt_rewrites_files_in_place_and_check_lists_what_would_change() {
    let dir = temp_dir("fmt");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let messy = "entity user key uid\nrule user r=user.a>1\n";
    std::fs::write(dir.join("sub/messy.rule"), messy).unwrap();
    std::fs::write(dir.join("tidy.rule"), "entity item key skuid\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rule file").unwrap();
    let d = dir.to_str().unwrap();

    let (code, out, err) = ruledeck(&["fmt", "--check", d]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.trim(), dir.join("sub/messy.rule").display().to_string());
    assert!(err.contains("1 file would be reformatted, 1 already formatted"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("sub/messy.rule")).unwrap(), messy, "--check changes nothing");

    let (code, _, err) = ruledeck(&["fmt", d]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 file reformatted, 1 already formatted"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/messy.rule")).unwrap(),
        "entity user key uid\nrule user r = user.a > 1\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temp files are left behind: {leftovers:?}");

    let (code, out, _) = ruledeck(&["fmt", "--check", d]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn fmt_leaves_a_file_that_does_not_parse_untouched() {
    let dir = temp_dir("fmt-bad");
    let bad = "rule user r =   \n";
    std::fs::write(dir.join("bad.rule"), bad).unwrap();
    std::fs::write(dir.join("ok.rule"), "entity  user key uid\n").unwrap();
    let (code, _, err) = ruledeck(&["fmt", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("error[E0014]"), "{err}");
    assert!(err.contains("1 file reformatted, 0 already formatted, 1 not formatted because of errors"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("bad.rule")).unwrap(), bad);
    assert_eq!(std::fs::read_to_string(dir.join("ok.rule")).unwrap(), "entity user key uid\n");
}

#[test]
fn fmt_stdin_to_stdout() {
    let (code, out, err) = ruledeck_stdin(&["fmt", "-"], "entity user key uid\nrule user r=user.a>1");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "entity user key uid\nrule user r = user.a > 1\n");

    let (code, out, _) = ruledeck_stdin(&["fmt", "--check", "-"], "entity  user key uid\n");
    assert_eq!((code, out.trim()), (1, "-"));
    let (code, _, _) = ruledeck_stdin(&["fmt", "--check", "-"], "entity user key uid\n");
    assert_eq!(code, 0);

    let (code, out, err) = ruledeck_stdin(&["fmt", "-"], "rule user r =");
    assert_eq!((code, out.as_str()), (1, ""), "nothing on stdout for a file that does not parse");
    assert!(err.contains("error[E0014]") && err.contains("<stdin>:1:"), "{err}");
}
