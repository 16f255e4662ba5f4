//! End-to-end tests of `ruledeck lsp`: the real binary driven over stdio pipes as an editor
//! drives it (Content-Length framing, initialize, initialized, didOpen, didChange, requests,
//! shutdown, exit). The workspace is `tests/fixtures/lsp/deck`; its absolute URI is replaced
//! by `file:///deck` in snapshots so they hold on any machine.
#![cfg(feature = "lsp")]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

fn deck_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lsp/deck")
}

/// The workspace URI as the server spells it.
fn root_uri() -> String {
    dir_uri(&deck_dir())
}

/// A directory's URI as the server spells it (unreserved characters and `/` kept).
fn dir_uri(dir: &Path) -> String {
    let mut s = String::from("file://");
    for b in dir.to_str().unwrap().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn uri(file: &str) -> String {
    format!("{}/{file}", root_uri())
}

fn fixture(file: &str) -> String {
    std::fs::read_to_string(deck_dir().join(file)).unwrap()
}

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
    /// Notifications read while waiting for a response, oldest first.
    pending: Vec<Value>,
    /// Every diagnostics notification read, in order.
    published: Vec<Value>,
}

impl Client {
    fn start() -> Client {
        Client::start_in(&deck_dir())
    }

    /// A server whose one workspace folder is `root`.
    fn start_in(root: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ruledeck"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ruledeck lsp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut client = Client { child, stdin, stdout, next_id: 0, pending: Vec::new(), published: Vec::new() };
        let init = client.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": null,
                "capabilities": {},
                "workspaceFolders": [{ "uri": dir_uri(root), "name": "deck" }],
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "ruledeck");
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn read(&mut self) -> Value {
        let mut length = None;
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "server closed stdout");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                length = Some(n.parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; length.expect("a Content-Length header")];
        self.stdout.read_exact(&mut body).unwrap();
        let message: Value = serde_json::from_slice(&body).unwrap();
        if message["method"] == "textDocument/publishDiagnostics" {
            self.published.push(message.clone());
        }
        message
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its response; notifications that arrive first are kept.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.read();
            if message.get("method").is_none() && message["id"] == id {
                return message;
            }
            self.pending.push(message);
        }
    }

    /// The diagnostics published for `file` at `version` (`None`: not open in the editor).
    fn diagnostics(&mut self, file: &str, version: Option<i64>) -> Value {
        let wanted = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri(file)
                && m["params"]["version"] == json!(version)
        };
        if let Some(i) = self.pending.iter().rposition(wanted) {
            let found = self.pending.remove(i);
            self.pending
                .retain(|m| !(m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri(file)));
            return found["params"]["diagnostics"].clone();
        }
        loop {
            let m = self.read();
            if wanted(&m) {
                return m["params"]["diagnostics"].clone();
            }
        }
    }

    fn open(&mut self, file: &str, text: &str) {
        let params =
            json!({ "textDocument": { "uri": uri(file), "languageId": "ruledeck", "version": 1, "text": text } });
        self.notify("textDocument/didOpen", params);
    }

    fn change(&mut self, file: &str, version: i64, text: &str) {
        let params =
            json!({ "textDocument": { "uri": uri(file), "version": version }, "contentChanges": [{ "text": text }] });
        self.notify("textDocument/didChange", params);
    }

    /// A request at the position of the `nth` occurrence of `needle` in `text`, plus `shift`
    /// characters, in UTF-16 as the protocol counts.
    fn at(&mut self, method: &str, file: &str, text: &str, needle: &str, shift: usize, extra: Value) -> Value {
        let mut params = json!({ "textDocument": { "uri": uri(file) }, "position": position(text, needle, shift) });
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.request(method, params)
    }

    fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r["result"], Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
    }
}

/// The protocol position of the first `needle` in `text`, `shift` characters in.
fn position(text: &str, needle: &str, shift: usize) -> Value {
    let offset = text.find(needle).unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let offset = offset + needle.chars().take(shift).map(char::len_utf8).sum::<usize>();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..offset].matches('\n').count();
    let character = text[line_start..offset].encode_utf16().count();
    json!({ "line": line, "character": character })
}

/// A response with the machine-specific workspace path replaced.
fn portable(v: &Value) -> Value {
    serde_json::from_str(&v.to_string().replace(&root_uri(), "file:///deck")).unwrap()
}

/// Semantic tokens decoded to `[line, column, length, type]` rows, easier to review.
fn decode_tokens(data: &Value, legend: &[&str]) -> Vec<String> {
    let data: Vec<u64> = data.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let (mut line, mut col) = (0, 0);
    data.chunks(5)
        .map(|t| {
            if t[0] > 0 {
                line += t[0];
                col = t[1];
            } else {
                col += t[1];
            }
            let def = if t[4] & 1 == 1 { " (declaration)" } else { "" };
            format!("{line}:{col} len {} {}{def}", t[2], legend[t[3] as usize])
        })
        .collect()
}

#[test]
fn workspace_files_get_diagnostics_and_a_clean_deck_gets_none() {
    let mut c = Client::start();
    // Both workspace files are published at start-up, before anything is opened.
    assert_eq!(c.diagnostics("catalog.rule", None), json!([]));
    assert_eq!(c.diagnostics("main.rule", None), json!([]));
    let text = fixture("main.rule");
    c.open("main.rule", &text);
    assert_eq!(c.diagnostics("main.rule", Some(1)), json!([]));
    c.shutdown();
}

#[test]
fn did_you_mean_diagnostics_carry_codes_exact_ranges_and_quick_fixes() {
    let mut c = Client::start();
    let text = fixture("main.rule")
        .replace("and low_risk\n", "and low_rsik\n")
        .replace("user.lifecycle == active", "user.lifecycle == actve")
        .replace("in hero 0%", "in heroo 0%")
        .replace("\"本地\" }\n  expect strategy local", "\"本地\" }\n  expect strategy locl");
    c.open("main.rule", &text);
    let diagnostics = c.diagnostics("main.rule", Some(1));
    insta::assert_json_snapshot!("diagnostics", portable(&diagnostics));
    // The rule after the Chinese text literal: its range counts UTF-16 units.
    let rule = diagnostics.as_array().unwrap().iter().find(|d| d["code"] == "E0103").unwrap();
    assert_eq!(rule["range"]["start"], position(&text, "low_rsik", 0));
    let actions = c.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": uri("main.rule") },
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 40, "character": 0 } },
            "context": { "diagnostics": [] },
        }),
    );
    insta::assert_json_snapshot!("code_actions", portable(&actions["result"]));
    // Applying every fix leaves no diagnostics.
    c.change("main.rule", 2, &fixture("main.rule"));
    assert_eq!(c.diagnostics("main.rule", Some(2)), json!([]));
    c.shutdown();
}

#[test]
fn a_syntax_error_is_reported_where_it_is() {
    let mut c = Client::start();
    let text = fixture("main.rule")
        .replace("rule user low_risk = user.risk_score < 30", "rule user low_risk = user.risk_score <");
    c.open("main.rule", &text);
    insta::assert_json_snapshot!("syntax_error", portable(&c.diagnostics("main.rule", Some(1))));
    c.shutdown();
}

#[test]
fn hover_shows_tags_rules_and_members() {
    let mut c = Client::start();
    let text = fixture("main.rule");
    c.open("main.rule", &text);
    let tag = c.at("textDocument/hover", "main.rule", &text, "user.risk_score < 30", 6, json!({}));
    let rule = c.at("textDocument/hover", "main.rule", &text, "low_risk\n", 2, json!({}));
    let member = c.at("textDocument/hover", "main.rule", &text, "active\n", 1, json!({}));
    let strategy = c.at("textDocument/hover", "main.rule", &text, "strategy local", 10, json!({}));
    let key = c.at("textDocument/hover", "main.rule", &text, "keys uid", 6, json!({}));
    insta::assert_json_snapshot!(
        "hover",
        portable(&json!([tag["result"], rule["result"], member["result"], strategy["result"], key["result"]]))
    );
    c.shutdown();
}

#[test]
fn hover_says_a_tag_is_sensitive() {
    let mut c = Client::start();
    let catalog = fixture("catalog.rule").replacen("from \"risk\"", "from \"risk\" sensitive", 1);
    assert!(catalog.contains("sensitive"), "the fixture declares user.risk_score from \"risk\"");
    c.open("catalog.rule", &catalog);
    let text = fixture("main.rule");
    c.open("main.rule", &text);
    let tag = c.at("textDocument/hover", "main.rule", &text, "user.risk_score < 30", 6, json!({}));
    assert!(tag.to_string().contains("| sensitive | yes"), "{tag}");
    c.shutdown();
}

#[test]
fn definition_and_references_span_files() {
    let mut c = Client::start();
    let text = fixture("main.rule");
    c.open("main.rule", &text);
    let request = |c: &mut Client, method: &str, needle: &str, shift: usize| {
        let extra = json!({ "context": { "includeDeclaration": true } });
        portable(&c.at(method, "main.rule", &text, needle, shift, extra)["result"])
    };
    let results = json!({
        // After a Chinese text literal on the same line.
        "rule after 上海": request(&mut c, "textDocument/definition", "low_risk\n", 3),
        "tag in another file": request(&mut c, "textDocument/definition", "user.city", 6),
        "entity of a tag": request(&mut c, "textDocument/definition", "user.city", 1),
        "layer": request(&mut c, "textDocument/definition", "hero 0%", 1),
        "strategy from a test": request(&mut c, "textDocument/definition", "strategy local\n}", 10),
        "scene from a test": request(&mut c, "textDocument/definition", "home.banner", 1),
        "instance from a test": request(&mut c, "textDocument/definition", "home.banner", 6),
        "member": request(&mut c, "textDocument/definition", "active\n", 0),
        "references to a rule": request(&mut c, "textDocument/references", "low_risk =", 0),
        "references to a tag": request(&mut c, "textDocument/references", "user.city", 7),
        "references to a key": request(&mut c, "textDocument/references", "keys uid", 6),
    });
    insta::assert_json_snapshot!("navigation", results);
    c.shutdown();
}

/// A fan-out deck, opened beside the workspace's (its own entities, so it adds no clashes).
const FANOUT: &str = r#"entity shopper key sid
entity product key pid
event favorite by sid { sku: text }
event price_drop by pid { new_cents: int }
channel push
scene alert on price_drop for each shopper with favorite(sku == event.pid) within 30d {
  instance a -> reach {
    default => reach push "drop"
  }
}
"#;

/// The names of a fan-out scene resolve: its trigger and index events and its entity, with
/// hover on the scene showing the fan-out.
#[test]
fn fanout_scenes_resolve_their_events_and_entity() {
    let mut c = Client::start();
    c.open("fanout.rule", FANOUT);
    let mut at = |method: &str, needle: &str, shift: usize| {
        let extra = json!({ "context": { "includeDeclaration": true } });
        c.at(method, "fanout.rule", FANOUT, needle, shift, extra)["result"].clone()
    };
    let (def, refs) = ("textDocument/definition", "textDocument/references");
    assert_eq!(spots(&at(def, "favorite(sku", 2)), ["fanout.rule 2:6-2:14"], "the index event");
    assert_eq!(spots(&at(def, "on price_drop", 4)), ["fanout.rule 3:6-3:16"], "the trigger event");
    assert_eq!(spots(&at(def, "each shopper", 6)), ["fanout.rule 0:7-0:14"], "the fan-out's entity");
    assert_eq!(spots(&at(refs, "event favorite", 7)), ["fanout.rule 2:6-2:14", "fanout.rule 5:48-5:56"]);
    let scene = at("textDocument/hover", "scene alert", 7).to_string();
    assert!(scene.contains("for each shopper with favorite(sku == event.pid) within 30d"), "{scene}");
    let event = at("textDocument/hover", "favorite(sku", 1).to_string();
    assert!(event.contains("event favorite by sid { sku: text }"), "{event}");
    c.shutdown();
}

/// A second test block for `main.rule`: it names strategy `colour` and its group `red`.
const GROUP_TEST: &str = r#"
test "low-risk users outside 上海 see the colour experiment" {
  given { uid: "u-1", ctx.channel: app, user.city: "北京", user.risk_score: 1,
          user.lifecycle: new }
  expect home.banner => { label: "red" }
  expect strategy colour group red
}
"#;

/// Locations as `FILE LINE:COLUMN-LINE:COLUMN` (0-based, as the protocol counts), easier to
/// review in a snapshot than the JSON.
fn spots(result: &Value) -> Vec<String> {
    let locations = result.as_array().unwrap_or_else(|| panic!("not a list of locations: {result}"));
    locations
        .iter()
        .map(|l| {
            let file = l["uri"].as_str().unwrap().rsplit('/').next().unwrap();
            let (s, e) = (&l["range"]["start"], &l["range"]["end"]);
            format!("{file} {}:{}-{}:{}", s["line"], s["character"], e["line"], e["character"])
        })
        .collect()
}

#[test]
fn definition_and_references_of_strategies_scenes_instances_layers_and_groups() {
    let mut c = Client::start();
    let text = fixture("main.rule") + GROUP_TEST;
    c.open("main.rule", &text);
    assert_eq!(c.diagnostics("main.rule", Some(1)), json!([]), "the added test block is valid");
    let mut request = |method: &str, needle: &str, shift: usize, declaration: bool| {
        let extra = json!({ "context": { "includeDeclaration": declaration } });
        spots(&c.at(method, "main.rule", &text, needle, shift, extra)["result"])
    };
    let (def, refs) = ("textDocument/definition", "textDocument/references");
    let results = json!({
        "strategy colour from `expect strategy colour group red`": request(def, "strategy colour group", 10, true),
        "references to strategy colour": request(refs, "strategy colour when", 10, true),
        "references to strategy local, from its use in a test": request(refs, "strategy local\n}", 10, true),
        "scene home from a test": request(def, "home.banner => { label: \"red\"", 1, true),
        "references to scene home": request(refs, "scene home", 7, true),
        "instance banner from a test": request(def, "home.banner => { label: \"red\"", 6, true),
        "references to instance banner": request(refs, "instance banner", 10, true),
        "layer hero from its claim": request(def, "hero 0%", 1, true),
        "references to layer hero": request(refs, "layer hero", 7, true),
        "group red from a test": request(def, "group red", 7, true),
        "references to group red": request(refs, "red  50%", 0, true),
        "references to group red, without the declaration": request(refs, "red  50%", 0, false),
        "references to group blue (never expected)": request(refs, "blue 50%", 0, true),
    });
    insta::assert_json_snapshot!("navigation_scoped_names", results);
    c.shutdown();
}

/// `$/cancelRequest`. The server drains every message already queued before it answers any,
/// and answers a request whose cancel is in that batch with RequestCancelled (-32800)
/// without computing it; a request it already took up is answered normally, and a cancel
/// for an answered or unknown id is ignored. Which of the two a cancel sent right after
/// its request meets depends on how far the server has read, which a test cannot fix
/// without timing, so this pins what holds either way: every request gets exactly one
/// answer, in order, which is the result or RequestCancelled, and nothing else changes.
#[test]
fn cancelled_requests_get_one_answer_the_result_or_request_cancelled() {
    let mut c = Client::start();
    let text = fixture("main.rule");
    c.open("main.rule", &text);
    let hover = json!({ "textDocument": { "uri": uri("main.rule") }, "position": position(&text, "low_risk\n", 2) });
    let expected = c.request("textDocument/hover", hover.clone())["result"].clone();
    assert!(expected.is_object(), "{expected}");
    // In one write: twenty requests, each followed by its cancel (numbers and strings as
    // ids), a cancel for an id never used, and a last request that nothing cancels.
    let ids: Vec<Value> =
        (0..20).map(|i| if i % 2 == 0 { json!(1000 + i) } else { json!(format!("req-{i}")) }).collect();
    let mut wire = String::new();
    let mut frame = |message: Value| {
        let body = message.to_string();
        wire.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    };
    for id in &ids {
        frame(json!({ "jsonrpc": "2.0", "id": id, "method": "textDocument/hover", "params": hover }));
        frame(json!({ "jsonrpc": "2.0", "method": "$/cancelRequest", "params": { "id": id } }));
    }
    frame(json!({ "jsonrpc": "2.0", "method": "$/cancelRequest", "params": { "id": 999 } }));
    frame(json!({ "jsonrpc": "2.0", "id": "last", "method": "textDocument/hover", "params": hover }));
    c.stdin.write_all(wire.as_bytes()).unwrap();
    c.stdin.flush().unwrap();
    let mut answers = Vec::new();
    loop {
        let message = c.read();
        if message.get("method").is_some() {
            continue;
        }
        let last = message["id"] == "last";
        answers.push(message);
        if last {
            break;
        }
    }
    let answered: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
    let mut wanted: Vec<&Value> = ids.iter().collect();
    let last = json!("last");
    wanted.push(&last);
    assert_eq!(answered, wanted, "one answer per request, in order, none for the unknown id");
    for answer in &answers[..ids.len()] {
        match answer.get("error") {
            Some(error) => assert_eq!(error, &json!({ "code": -32800, "message": "cancelled" }), "{answer}"),
            None => assert_eq!(answer["result"], expected, "{answer}"),
        }
    }
    assert_eq!(answers[ids.len()]["result"], expected, "the uncancelled request is answered");
    // A cancel for a request already answered changes nothing: the next request is answered.
    c.notify("$/cancelRequest", json!({ "id": "last" }));
    assert_eq!(c.request("textDocument/hover", hover)["result"], expected);
    c.shutdown();
}

#[test]
fn completion_offers_tags_members_operators_and_rules() {
    let mut c = Client::start();
    let base = fixture("main.rule");
    let mut version = 1;
    c.open("main.rule", &base);
    let mut complete = |c: &mut Client, edit: &str| {
        // The edit replaces `when shanghai` and the cursor sits at its end.
        let text = base.replace("when shanghai and user.lifecycle == active", edit);
        version += 1;
        c.change("main.rule", version, &text);
        let needle = format!("{edit}\n");
        let r = c.at("textDocument/completion", "main.rule", &text, &needle, edit.chars().count(), json!({}));
        let items = r["result"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|i| format!("{} ({})", i["label"].as_str().unwrap(), i["detail"].as_str().unwrap_or("")))
            .collect::<Vec<_>>()
    };
    let results = json!({
        "when user.": complete(&mut c, "when user."),
        "when user.ri": complete(&mut c, "when user.ri"),
        "when user.lifecycle == ": complete(&mut c, "when user.lifecycle == "),
        "when user.lifecycle in [new, ": complete(&mut c, "when user.lifecycle in [new, "),
        "when ctx.channel not in [": complete(&mut c, "when ctx.channel not in ["),
        "when user.risk_score ": complete(&mut c, "when user.risk_score "),
        "when user.segments ": complete(&mut c, "when user.segments "),
        "when ": complete(&mut c, "when "),
        "when low_risk and sh": complete(&mut c, "when low_risk and sh"),
    });
    insta::assert_json_snapshot!("completion", results);
    c.shutdown();
}

#[test]
fn rename_edits_every_use_and_refuses_collisions_and_keywords() {
    let mut c = Client::start();
    let main = fixture("main.rule");
    let catalog = fixture("catalog.rule");
    c.open("main.rule", &main);
    c.open("catalog.rule", &catalog);
    let prepare = c.at("textDocument/prepareRename", "main.rule", &main, "low_risk\n", 0, json!({}));
    let rule = c.at("textDocument/rename", "main.rule", &main, "low_risk\n", 0, json!({ "newName": "safe" }));
    // A tag renamed by its full name keeps its entity; the declaration is in the other file.
    let tag = c.at("textDocument/rename", "main.rule", &main, "user.city", 6, json!({ "newName": "user.home_city" }));
    let strategy =
        c.at("textDocument/rename", "main.rule", &main, "strategy local", 10, json!({ "newName": "nearby" }));
    let collision = c.at("textDocument/rename", "main.rule", &main, "low_risk\n", 0, json!({ "newName": "shanghai" }));
    let tag_collision =
        c.at("textDocument/rename", "main.rule", &main, "user.city", 6, json!({ "newName": "risk_score" }));
    let keyword = c.at("textDocument/rename", "main.rule", &main, "low_risk\n", 0, json!({ "newName": "between" }));
    let not_a_name = c.at("textDocument/rename", "main.rule", &main, "low_risk\n", 0, json!({ "newName": "9lives" }));
    let scene = c.at("textDocument/prepareRename", "main.rule", &main, "scene home", 7, json!({}));
    insta::assert_json_snapshot!(
        "rename",
        portable(&json!({
            "prepare": prepare["result"],
            "rule": rule["result"],
            "tag": tag["result"],
            "strategy": strategy["result"],
            "collision": collision["error"],
            "tag collision": tag_collision["error"],
            "keyword": keyword["error"],
            "not a name": not_a_name["error"],
            "scene (not renamable)": scene["result"],
        }))
    );
    c.shutdown();
}

#[test]
fn document_symbols_and_semantic_tokens() {
    let mut c = Client::start();
    let main = fixture("main.rule");
    let catalog = fixture("catalog.rule");
    c.open("main.rule", &main);
    c.open("catalog.rule", &catalog);
    let symbols = c.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri("main.rule") } }));
    insta::assert_json_snapshot!("document_symbols", portable(&symbols["result"]));
    let init_legend = [
        "keyword",
        "type",
        "class",
        "parameter",
        "property",
        "function",
        "namespace",
        "struct",
        "method",
        "event",
        "enumMember",
        "string",
        "number",
        "comment",
        "operator",
        "variable",
    ];
    // The catalog has Chinese and an emoji in comments before tokens on the same line.
    let tokens =
        c.request("textDocument/semanticTokens/full", json!({ "textDocument": { "uri": uri("catalog.rule") } }));
    insta::assert_json_snapshot!("semantic_tokens", decode_tokens(&tokens["result"]["data"], &init_legend));
    c.shutdown();
}

#[test]
fn formatting_returns_edits_for_the_whole_document() {
    let mut c = Client::start();
    // Messy spacing, Chinese and an emoji: the edit's end position counts UTF-16 units.
    let text = fixture("catalog.rule")
        .replace("entity user key uid", "entity   user  key uid")
        .replace("tag user.city: text from \"profile\"", "tag user.city :text   from \"profile\"   // 城市 😀");
    c.open("catalog.rule", &text);
    let r = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri("catalog.rule") }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    insta::assert_json_snapshot!("formatting", portable(&r["result"]));
    // Formatting the formatted text changes nothing.
    c.change("catalog.rule", 2, r["result"][0]["newText"].as_str().unwrap());
    let again = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri("catalog.rule") }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(again["result"], json!([]));
    c.shutdown();
}

#[test]
fn queued_edits_are_checked_once_for_the_newest_text() {
    let mut c = Client::start();
    let good = fixture("main.rule");
    c.open("main.rule", &good);
    assert_eq!(c.diagnostics("main.rule", Some(1)), json!([]));
    // Twenty edits in a row: the last one is broken. Whatever the server coalesced, the
    // diagnostics it publishes last are those of version 21, and versions only grow.
    for v in 2..=21 {
        let text = if v == 21 { good.replace("and low_risk\n", "and low_rsik\n") } else { format!("{good}// {v}\n") };
        c.change("main.rule", v, &text);
    }
    let last = c.diagnostics("main.rule", Some(21));
    assert_eq!(last.as_array().unwrap().len(), 1, "{last}");
    assert_eq!(last[0]["code"], "E0103");
    let versions: Vec<i64> = c
        .published
        .iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri("main.rule"))
        .filter_map(|m| m["params"]["version"].as_i64())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    c.shutdown();
}

#[test]
fn unknown_requests_are_errors_not_crashes() {
    let mut c = Client::start();
    let r = c.request("textDocument/foldingRange", json!({ "textDocument": { "uri": uri("main.rule") } }));
    assert_eq!(r["error"]["code"], -32601);
    let r = c.request("textDocument/hover", json!({ "nonsense": true }));
    assert_eq!(r["error"]["code"], -32602);
    c.shutdown();
}

/// The VS Code grammar highlights every keyword the language grammar has (it is a second
/// spelling of the same list, so this test keeps them together).
#[test]
fn the_textmate_grammar_covers_every_keyword() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("editors/vscode/syntaxes/ruledeck.tmLanguage.json");
    let grammar: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut words = Vec::new();
    for section in ["keywords", "literals"] {
        for pattern in grammar["repository"][section]["patterns"].as_array().unwrap() {
            let Some(m) = pattern["match"].as_str() else { continue };
            let inner = m.trim_start_matches("\\b").trim_end_matches("\\b");
            let inner = inner.trim_start_matches('(').trim_end_matches(')');
            words.extend(inner.split('|').map(str::to_string));
        }
    }
    let missing: Vec<&String> = ruledeck::lsp::keywords().iter().filter(|k| !words.contains(k)).collect();
    assert!(missing.is_empty(), "keywords the TextMate grammar does not highlight: {missing:?}");
}

#[test]
fn rename_waits_for_a_deck_that_parses_and_closing_goes_back_to_the_disk_copy() {
    let mut c = Client::start();
    let main = fixture("main.rule");
    let broken = fixture("catalog.rule") + "tag user.\n";
    c.open("main.rule", &main);
    c.open("catalog.rule", &broken);
    let r = c.at("textDocument/rename", "main.rule", &main, "low_risk\n", 0, json!({ "newName": "safe" }));
    assert_eq!(
        r["error"]["message"], "catalog.rule does not parse; fix its syntax errors first so every use is found",
        "{r}"
    );
    // Closing the broken file: the server reads the disk copy again, which parses.
    c.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri("catalog.rule") } }));
    assert_eq!(c.diagnostics("catalog.rule", None), json!([]));
    let r = c.at("textDocument/rename", "main.rule", &main, "low_risk\n", 0, json!({ "newName": "safe" }));
    assert!(r["result"]["documentChanges"].is_array(), "{r}");
    c.shutdown();
}

/// A FIFO named like a rule file is not read (opening it would block the server for good):
/// the server says so in the client's log and answers requests as usual.
#[cfg(unix)]
#[test]
fn a_fifo_in_the_workspace_is_left_out_with_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.rule"), fixture("catalog.rule")).unwrap();
    let fifo = dir.path().join("x.rule");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    // A server that opened the FIFO would block until a writer came; this one comes at once
    // and writes nothing, so such a server reads an empty file instead of hanging the test,
    // and the assertions below fail. Its `open` itself waits for a reader.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(fifo)))
    };
    let mut c = Client::start_in(dir.path());
    let a = format!("{}/a.rule", dir_uri(dir.path()));
    let r = c.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": a } }));
    assert!(r["result"].as_array().is_some_and(|s| !s.is_empty()), "{r}");
    let notices: Vec<&Value> = c.pending.iter().filter(|m| m["method"] == "window/logMessage").collect();
    assert_eq!(notices.len(), 1, "{:?}", c.pending);
    let message = notices[0]["params"]["message"].as_str().unwrap();
    assert!(message.contains("x.rule` is a FIFO, not a regular file"), "{message}");
    assert_eq!(notices[0]["params"]["type"], 2, "a warning");
    let published: Vec<&Value> = c.published.iter().map(|m| &m["params"]["uri"]).collect();
    assert_eq!(published, [&json!(a)], "only a.rule is in the deck");
    c.shutdown();
    // Release the writer, which still waits for a reader.
    drop(std::fs::File::open(&fifo).unwrap());
    writer.join().unwrap();
}

/// `self -> .` inside the workspace: the walk neither loops nor loads a file twice, so
/// each file is published once and references name each place once.
#[cfg(unix)]
#[test]
fn a_symlink_loop_in_the_workspace_loads_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["catalog.rule", "main.rule"] {
        std::fs::write(dir.path().join(file), fixture(file)).unwrap();
    }
    std::os::unix::fs::symlink(".", dir.path().join("self")).unwrap();
    let mut c = Client::start_in(dir.path());
    let root = dir_uri(dir.path());
    let text = fixture("main.rule");
    let main = format!("{root}/main.rule");
    let params = json!({
        "textDocument": { "uri": main },
        "position": position(&text, "user.city", 7),
        "context": { "includeDeclaration": true },
    });
    let refs = c.request("textDocument/references", params);
    let mut published: Vec<String> =
        c.published.iter().map(|m| m["params"]["uri"].as_str().unwrap().to_string()).collect();
    published.sort();
    assert_eq!(published, [format!("{root}/catalog.rule"), main.clone()]);
    let places: Vec<String> = refs["result"].as_array().unwrap().iter().map(|l| l.to_string()).collect();
    assert!(places.len() >= 2, "a declaration and a use: {refs}");
    let distinct: std::collections::BTreeSet<&String> = places.iter().collect();
    assert_eq!(distinct.len(), places.len(), "{refs}");
    assert!(places.iter().all(|p| !p.contains("/self/")), "{refs}");
    c.shutdown();
}
