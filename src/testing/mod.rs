//! Running `test` blocks: requests built from `given`, outcomes compared with `expect`,
//! tag expectations checked against a data file, and branch coverage.
//!
//! Owns: the meaning of a test run and its report (text and JSON). Tests never fetch tags:
//! a tag a test does not give is missing. Must not: parse or check (it gets a checked deck
//! and its compiled program) or do I/O beyond the provider it is handed for tag tests.

use std::fmt::Write;

use serde::Serialize;

use crate::check::typed::{Const, Expectation, StrategyRef, Test};
use crate::compile::program::{OutcomeInfo, Program, Ty};
use crate::engine::{Loaded, Provider, TagQuery};
use crate::ops::REACH_FIELDS;
use crate::source::{Sources, Span};
use crate::vm::value::MissingReason;
use crate::vm::{Decider, FieldValue, Input, Request, Step, TraceEvent};
use crate::Checked;

/// Which tests to run and with what.
#[derive(Default)]
pub struct TestOptions<'a> {
    /// Run only tests whose name contains this.
    pub filter: Option<&'a str>,
    /// The data file for `expect tag` (the `--tags` provider); without it those tests are skipped.
    pub tags: Option<&'a dyn Provider>,
    /// What the wall clock reads for tests that give no `now` (`None`: the system clock). A
    /// test whose outcome read the clock fails and counts toward no coverage, so the report
    /// is the same whatever this is; it exists so that can be tested.
    pub wall_clock: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Skipped(String),
}

/// One expectation that did not hold.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    #[serde(skip)]
    pub span: Span,
    /// The expectation as written.
    pub expectation: String,
    pub expected: String,
    pub actual: String,
    /// Why: the tags read, rules and strategies tried, in order.
    pub why: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestResult {
    pub name: String,
    #[serde(skip)]
    pub span: Span,
    #[serde(flatten)]
    pub status: Status,
    pub failures: Vec<Failure>,
}

/// One decision branch of an instance and whether any test reached it.
#[derive(Clone, Debug, Serialize)]
pub struct Branch {
    pub branch: String,
    pub reached: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstanceCoverage {
    pub scene: String,
    pub instance: String,
    pub branches: Vec<Branch>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestReport {
    pub tests: Vec<TestResult>,
    /// Tests left out by the filter.
    pub filtered_out: usize,
    pub coverage: Vec<InstanceCoverage>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.status == Status::Passed).count()
    }

    pub fn failed(&self) -> usize {
        self.tests.iter().filter(|t| t.status == Status::Failed).count()
    }

    pub fn skipped(&self) -> usize {
        self.tests.iter().filter(|t| matches!(t.status, Status::Skipped(_))).count()
    }
}

/// Runs the deck's tests against its compiled program.
pub fn run(checked: &Checked, program: &Program, options: &TestOptions<'_>) -> TestReport {
    // reached[scene][instance][branch]
    let mut reached: Vec<Vec<Vec<bool>>> = program
        .scenes
        .iter()
        .map(|s| s.instances.iter().map(|i| vec![false; branch_labels(i).len()]).collect())
        .collect();
    let mut tests = Vec::new();
    let mut filtered_out = 0;
    for test in &checked.deck.tests {
        if options.filter.is_some_and(|f| !test.name.contains(f)) {
            filtered_out += 1;
            continue;
        }
        tests.push(run_one(program, test, options, &mut reached));
    }
    let coverage = program
        .scenes
        .iter()
        .enumerate()
        .flat_map(|(s, scene)| {
            let reached = &reached;
            scene.instances.iter().enumerate().map(move |(i, inst)| InstanceCoverage {
                scene: scene.name.clone(),
                instance: inst.name.clone(),
                branches: branch_labels(inst)
                    .into_iter()
                    .zip(&reached[s][i])
                    .map(|(branch, &reached)| Branch { branch, reached })
                    .collect(),
            })
        })
        .collect();
    TestReport { tests, filtered_out, coverage }
}

/// The decision branches of an instance: each plain strategy, each experiment group, the default.
fn branch_labels(inst: &crate::compile::program::InstanceInfo) -> Vec<String> {
    let mut labels = Vec::new();
    for st in &inst.strategies {
        match &st.outcome {
            OutcomeInfo::Decision(_) => labels.push(format!("strategy {}", st.name)),
            OutcomeInfo::Experiment(x) => {
                labels.extend(x.groups.iter().map(|g| format!("strategy {} group {}", st.name, g.name)))
            }
        }
    }
    if inst.default.is_some() {
        labels.push("default".to_string());
    }
    labels
}

fn branch_index(inst: &crate::compile::program::InstanceInfo, decider: Decider, group: Option<u32>) -> usize {
    let mut index = 0;
    for (i, st) in inst.strategies.iter().enumerate() {
        let width = match &st.outcome {
            OutcomeInfo::Decision(_) => 1,
            OutcomeInfo::Experiment(x) => x.groups.len(),
        };
        if decider == Decider::Strategy(i as u32) {
            return index + group.unwrap_or(0) as usize;
        }
        index += width;
    }
    index
}

/// The last decision's outcome, for `expect strategy`.
struct Last {
    scene: u32,
    instance: u32,
    decider: Option<Decider>,
    group: Option<u32>,
    why: Vec<String>,
}

fn run_one(program: &Program, test: &Test, options: &TestOptions<'_>, reached: &mut [Vec<Vec<bool>>]) -> TestResult {
    let mut failures = Vec::new();
    let has_tag_tests = test.expects.iter().any(|e| matches!(e, Expectation::Tag { .. }));
    if has_tag_tests && options.tags.is_none() {
        return TestResult {
            name: test.name.clone(),
            span: test.span,
            status: Status::Skipped("it checks tag data: run with --tags FILE.json or --providers FILE.toml".into()),
            failures,
        };
    }
    let mut last: Option<Last> = None;
    for expect in &test.expects {
        match expect {
            Expectation::Decision { scene, instance, decision, span } => {
                let scene_info = &program.scenes[*scene as usize];
                let inst = &scene_info.instances[*instance as usize];
                let expectation = format!(
                    "expect {}.{} => {}",
                    scene_info.name,
                    inst.name,
                    decision.as_ref().map_or("none".to_string(), |d| expected_decision(program, inst, d))
                );
                let mut req = match program.request(&scene_info.name, &inst.name) {
                    Ok(r) => r,
                    Err(e) => {
                        failures.push(fail(*span, expectation, "a decision", &format!("request refused: {e}"), vec![]));
                        last = None;
                        continue;
                    }
                };
                req.wall_clock = options.wall_clock;
                match decide(program, &mut req, test) {
                    Err(problem) => {
                        failures.push(fail(*span, expectation, "a decision", &problem, vec![]));
                        last = None;
                    }
                    Ok(()) => {
                        let outcome = req.outcome();
                        let why = explain(&req);
                        let actual = actual_decision(&req);
                        // An outcome that read the clock depends on when the test runs: it
                        // neither passes nor counts toward coverage.
                        if let Some(decider) = outcome.decider().filter(|_| !req.read_wall_clock()) {
                            let branch = branch_index(inst, decider, outcome.group_index());
                            if let Some(slot) = reached[*scene as usize][*instance as usize].get_mut(branch) {
                                *slot = true;
                            }
                        }
                        let holds = match decision {
                            // For a reach instance `none` is nobody reached: the control
                            // group's `none` (no channel), or no decision.
                            None => {
                                !outcome.decided()
                                    || (is_reach(inst)
                                        && outcome.fields().next().is_some_and(|(_, v)| v == FieldValue::Text("")))
                            }
                            Some(expected) => {
                                outcome.decided()
                                    && outcome
                                        .fields()
                                        .zip(expected)
                                        .all(|((_, got), want)| same_value(program, &got, want))
                            }
                        };
                        if req.read_wall_clock() {
                            // The outcome depends on when the test runs; comparing it would be noise.
                            failures.push(fail(
                                *span,
                                expectation,
                                "a result that does not depend on the clock",
                                "a time operator (`within`, `older than`) read the wall clock: give `now: @…` in `given`",
                                vec![],
                            ));
                        } else if !holds {
                            let expected =
                                decision.as_ref().map_or("none".to_string(), |d| expected_decision(program, inst, d));
                            failures.push(fail(*span, expectation, &expected, &actual, why.clone()));
                        }
                        // What follows an outcome that read the clock would depend on it too.
                        last = (!req.read_wall_clock()).then_some(Last {
                            scene: *scene,
                            instance: *instance,
                            decider: outcome.decider(),
                            group: outcome.group_index(),
                            why,
                        });
                    }
                }
            }
            Expectation::Strategy { strategy, group, span } => {
                let Some(prev) = &last else { continue };
                let inst = &program.scenes[prev.scene as usize].instances[prev.instance as usize];
                let want = match strategy {
                    StrategyRef::Named(i) => Decider::Strategy(*i),
                    StrategyRef::Default => Decider::Default,
                };
                let describe = |d: Option<Decider>, g: Option<u32>| -> String {
                    match d {
                        None => "no decision".to_string(),
                        Some(Decider::Default) => "strategy default".to_string(),
                        Some(Decider::Strategy(i)) => {
                            let st = &inst.strategies[i as usize];
                            let group = match (&st.outcome, g) {
                                (OutcomeInfo::Experiment(x), Some(g)) => {
                                    format!(" group {}", x.groups[g as usize].name)
                                }
                                _ => String::new(),
                            };
                            format!("strategy {}{group}", st.name)
                        }
                    }
                };
                let holds = prev.decider == Some(want) && (group.is_none() || *group == prev.group);
                if !holds {
                    let expected = describe(Some(want), *group);
                    let actual = describe(prev.decider, prev.group);
                    failures.push(fail(*span, format!("expect {expected}"), &expected, &actual, prev.why.clone()));
                }
            }
            Expectation::Tag { tag, key, value, span } => {
                let provider = options.tags.expect("tests with tag expectations were skipped without a provider");
                let info = &program.tags[*tag as usize];
                let (entity, field) = info.name.split_once('.').unwrap_or(("", &info.name));
                let expected = value.as_ref().map_or("missing".to_string(), |c| const_text(program, &info.ty, c));
                let expectation = format!("expect tag {} for {key:?} => {expected}", info.name);
                let mut loaded = provider.load(&[TagQuery { tag: &info.name, entity, field, key }]).pop();
                // A value of the wrong type is missing, exactly as `eval` treats it.
                let mut wrong_type = None;
                if let Some(Loaded::Value(v)) = &loaded {
                    let mut scratch = Vec::new();
                    let fits = crate::engine::input_from_json(v, &mut scratch)
                        .and_then(|input| crate::vm::request::check_type(program, &info.ty, input));
                    if let Err(found) = fits {
                        wrong_type = Some(format!(
                            "missing (wrong type: expected {}, found {found} {v})",
                            program.type_name(info.ty, ", ")
                        ));
                        loaded = Some(Loaded::Missing);
                    }
                }
                let missing_text = wrong_type.unwrap_or_else(|| "missing".to_string());
                let (holds, actual) = match (&loaded, value) {
                    (Some(Loaded::Value(v)), Some(c)) => (json_matches(program, &info.ty, v, c), v.to_string()),
                    (Some(Loaded::Value(v)), None) => (false, v.to_string()),
                    (Some(Loaded::Missing) | None, None) => (true, missing_text),
                    (Some(Loaded::Missing) | None, Some(_)) => (false, missing_text),
                    (Some(Loaded::Failed(e)), _) => (false, format!("provider failed: {e}")),
                };
                if !holds {
                    failures.push(fail(*span, expectation, &expected, &actual, vec![]));
                }
            }
        }
    }
    let status = if failures.is_empty() { Status::Passed } else { Status::Failed };
    TestResult { name: test.name.clone(), span: test.span, status, failures }
}

fn fail(span: Span, expectation: String, expected: &str, actual: &str, why: Vec<String>) -> Failure {
    Failure { span, expectation, expected: expected.to_string(), actual: actual.to_string(), why }
}

/// Builds and runs the request a test describes. Every tag the test does not give is
/// missing from the start, so nothing is ever fetched.
fn decide(program: &Program, req: &mut Request<'_>, test: &Test) -> Result<(), String> {
    req.explain(true);
    let scene = &program.scenes[req.scene as usize];
    for (entity, value) in &test.keys {
        if scene.keys.contains(entity) {
            req.key(&program.entities[*entity as usize].key, value).map_err(|e| format!("request refused: {e}"))?;
        }
    }
    if let Some(now) = test.now {
        req.now(now);
    }
    let mut given = vec![false; program.tags.len()];
    for (tag, value) in &test.tags {
        given[*tag as usize] = true;
        let info = &program.tags[*tag as usize];
        let mut scratch = Vec::new();
        let input = const_input(program, &info.ty, value, &mut scratch);
        if info.entity.is_none() {
            if scene.passes.contains(tag) {
                req.pass(&info.name, input).map_err(|e| format!("request refused: {e}"))?;
            }
        } else {
            req.supply(*tag, Some(input));
        }
    }
    for (tag, info) in program.tags.iter().enumerate() {
        if !given[tag] && info.entity.is_some() {
            req.supply_missing(tag as u32, MissingReason::NotGiven);
        }
    }
    match program.run(req) {
        Ok(Step::Done) => Ok(()),
        Ok(Step::NeedTags) => Err("the VM asked for tags although every tag was given or missing".into()),
        Err(e) => Err(format!("request refused: {e}")),
    }
}

/// The enum type of a value of type `ty`, or of its elements for a list.
fn enum_of(ty: &Ty) -> Option<u32> {
    match ty {
        Ty::Enum(id) => Some(*id),
        Ty::List(elem) => match elem.ty() {
            Ty::Enum(id) => Some(id),
            _ => None,
        },
        _ => None,
    }
}

fn member_name<'p>(p: &'p Program, ty: &Ty, e: u32) -> Option<&'p str> {
    enum_of(ty).and_then(|id| p.enums.get(id as usize)).and_then(|m| m.get(e as usize)).map(String::as_str)
}

fn member(p: &Program, ty: &Ty, e: u32) -> String {
    member_name(p, ty, e).map_or_else(|| format!("#{e}"), str::to_string)
}

fn const_input<'a>(p: &'a Program, ty: &Ty, c: &'a Const, scratch: &'a mut Vec<Input<'a>>) -> Input<'a> {
    fn scalar<'a>(p: &'a Program, ty: &Ty, c: &'a Const) -> Input<'a> {
        match c {
            Const::Int(i) => Input::Int(*i),
            Const::Float(f) => Input::Float(*f),
            Const::Text(s) => Input::Text(s),
            Const::Bool(b) => Input::Bool(*b),
            Const::Time(t) | Const::Duration(t) => Input::Time(*t),
            Const::Enum(e) => Input::Text(member_name(p, ty, *e).unwrap_or("")),
            Const::List(_) => Input::List(&[]),
        }
    }
    match c {
        Const::List(items) => {
            scratch.extend(items.iter().map(|i| scalar(p, ty, i)));
            Input::List(&scratch[..])
        }
        other => scalar(p, ty, other),
    }
}

fn const_text(p: &Program, ty: &Ty, c: &Const) -> String {
    match c {
        Const::Int(i) => i.to_string(),
        Const::Float(f) => format!("{f:?}"),
        Const::Text(s) => format!("{s:?}"),
        Const::Bool(b) => b.to_string(),
        Const::Time(t) => format!("@{}", crate::time::format(*t)),
        Const::Duration(s) => format!("{s}s"),
        Const::Enum(e) => member(p, ty, *e),
        Const::List(items) => {
            format!("[{}]", items.iter().map(|i| const_text(p, ty, i)).collect::<Vec<_>>().join(", "))
        }
    }
}

fn expected_decision(p: &Program, inst: &crate::compile::program::InstanceInfo, values: &[Const]) -> String {
    let mut fields: Vec<String> =
        inst.fields.iter().zip(values).map(|(f, v)| format!("{}: {}", f.name, const_text(p, &f.ty, v))).collect();
    if is_reach(inst) {
        let text = |i: usize| match values.get(i) {
            Some(Const::Text(t)) => t.as_str(),
            _ => "",
        };
        let dedup = match values.get(2) {
            Some(Const::Int(secs)) => *secs,
            _ => 0,
        };
        let payload = fields.split_off(REACH_FIELDS.len().min(fields.len()));
        return reach_text(text(0), text(1), dedup, &payload);
    }
    format!("{{ {} }}", fields.join(", "))
}

/// Whether `inst` decides reach actions: its first fields are [`REACH_FIELDS`].
fn is_reach(inst: &crate::compile::program::InstanceInfo) -> bool {
    inst.fields.first().is_some_and(|f| f.name == REACH_FIELDS[0])
}

/// A reach decision as written: `reach push "chat" { sku: "s" } dedup 1d`, or `none` for
/// the control group (no channel).
fn reach_text(channel: &str, action: &str, dedup: i64, payload: &[String]) -> String {
    if channel.is_empty() {
        return "none".to_string();
    }
    let mut text = format!("reach {channel} {action:?} {{ {} }}", payload.join(", "));
    if dedup > 0 {
        let _ = write!(text, " dedup {}", crate::time::duration_text(dedup));
    }
    text
}

fn field_text(v: &FieldValue<'_>) -> String {
    match v {
        FieldValue::Int(i) => i.to_string(),
        FieldValue::Float(f) => format!("{f:?}"),
        FieldValue::Text(s) => format!("{s:?}"),
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::Time(t) => format!("@{}", crate::time::format(*t)),
        FieldValue::Enum(e) => e.to_string(),
        FieldValue::List(items) => format!("[{}]", items.iter().map(field_text).collect::<Vec<_>>().join(", ")),
    }
}

fn actual_decision(req: &Request<'_>) -> String {
    let outcome = req.outcome();
    if !outcome.decided() {
        return "none".to_string();
    }
    let mut fields: Vec<String> = outcome.fields().map(|(n, v)| format!("{n}: {}", field_text(&v))).collect();
    let head: Vec<(&str, FieldValue<'_>)> = outcome.fields().take(REACH_FIELDS.len()).collect();
    let decision = match head.as_slice() {
        [(name, FieldValue::Text(channel)), (_, FieldValue::Text(action)), (_, FieldValue::Int(dedup))]
            if *name == REACH_FIELDS[0] =>
        {
            let payload = fields.split_off(REACH_FIELDS.len());
            reach_text(channel, action, *dedup, &payload)
        }
        _ => format!("{{ {} }}", fields.join(", ")),
    };
    let mut by = format!("strategy {}", outcome.strategy().unwrap_or("?"));
    if let (Some(x), Some(g), Some(b)) = (outcome.experiment(), outcome.group(), outcome.bucket()) {
        let _ = write!(by, ", experiment {x} group {g} (bucket {b})");
    }
    format!("{decision} by {by}")
}

fn same_value(p: &Program, got: &FieldValue<'_>, want: &Const) -> bool {
    match (got, want) {
        (FieldValue::Int(a), Const::Int(b)) => a == b,
        (FieldValue::Float(a), Const::Float(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
        (FieldValue::Float(a), Const::Int(b)) => *a == *b as f64,
        (FieldValue::Text(a), Const::Text(b)) => a == b,
        (FieldValue::Bool(a), Const::Bool(b)) => a == b,
        (FieldValue::Time(a), Const::Time(b)) => a == b,
        (FieldValue::Enum(a), Const::Enum(b)) => p.enums.iter().any(|m| m.get(*b as usize).is_some_and(|n| n == a)),
        (FieldValue::List(a), Const::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(p, x, y))
        }
        _ => false,
    }
}

/// Whether a data-file value equals an expected constant of the tag's type.
fn json_matches(p: &Program, ty: &Ty, v: &serde_json::Value, want: &Const) -> bool {
    match (want, v) {
        (Const::Int(i), _) => v.as_i64() == Some(*i),
        (Const::Float(f), _) => v.as_f64().is_some_and(|x| x == *f || (x - f).abs() <= 1e-9 * x.abs().max(f.abs())),
        (Const::Text(s), _) => v.as_str() == Some(s),
        (Const::Bool(b), _) => v.as_bool() == Some(*b),
        (Const::Time(t), _) => crate::engine::data_time(v) == Some(*t),
        (Const::Enum(e), _) => v.as_str() == Some(member(p, ty, *e).as_str()),
        (Const::List(items), serde_json::Value::Array(vs)) => {
            items.len() == vs.len() && items.iter().zip(vs).all(|(c, v)| json_matches(p, ty, v, c))
        }
        _ => false,
    }
}

/// The trace of a request as readable lines.
fn explain(req: &Request<'_>) -> Vec<String> {
    let p = req.program();
    let inst = &p.scenes[req.scene as usize].instances[req.instance as usize];
    req.outcome()
        .trace()
        .iter()
        .map(|e| match *e {
            TraceEvent::Tag { tag } => {
                let info = &p.tags[tag as usize];
                let slot = &req.slots[tag as usize];
                match &slot.missing {
                    Some(reason) => format!("{} is missing ({reason})", info.name),
                    None if info.sensitive => format!("{} = \"{}\"", info.name, crate::engine::SENSITIVE),
                    None => {
                        format!("{} = {}", info.name, crate::engine::tag_value_json(&slot.value, &info.ty, &p.enums))
                    }
                }
            }
            TraceEvent::Rule { rule, result } => format!("rule {} is {result}", p.rules[rule as usize].name),
            TraceEvent::Strategy { strategy, when, note, bucket } => {
                let name = &inst.strategies[strategy as usize].name;
                let bucket = bucket.map_or(String::new(), |b| format!(" (bucket {b})"));
                format!("strategy {name}: when {when}, {}{bucket}", crate::engine::note_text(note))
            }
            TraceEvent::Default { note } => format!("default: {}", crate::engine::note_text(note)),
        })
        .collect()
}

/// Renders a report like `cargo test`: one line per test, then failures with expected vs
/// actual and why, optionally coverage, and last the line `N passed, M failed[, K skipped]`.
pub fn render_text(report: &TestReport, sources: &Sources, coverage: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "running {} test{}", report.tests.len(), if report.tests.len() == 1 { "" } else { "s" });
    for t in &report.tests {
        let status = match &t.status {
            Status::Passed => "ok".to_string(),
            Status::Failed => "FAILED".to_string(),
            Status::Skipped(why) => format!("skipped ({why})"),
        };
        let _ = writeln!(out, "test {} ... {status}", t.name);
    }
    let failed: Vec<&TestResult> = report.tests.iter().filter(|t| t.status == Status::Failed).collect();
    if !failed.is_empty() {
        out.push_str("\nfailures:\n");
        for t in failed {
            let _ = writeln!(out, "\n---- {} ----", t.name);
            for f in &t.failures {
                let file = sources.get(f.span.file);
                let (line, col) = file.line_col(f.span.start);
                let _ = writeln!(out, "  --> {}:{line}:{col}", file.name);
                let _ = writeln!(out, "  {}", f.expectation);
                let _ = writeln!(out, "  expected: {}", f.expected);
                let _ = writeln!(out, "    actual: {}", f.actual);
                if !f.why.is_empty() {
                    out.push_str("  why:\n");
                    for line in &f.why {
                        let _ = writeln!(out, "    {line}");
                    }
                }
            }
        }
    }
    if coverage {
        out.push_str("\ncoverage:\n");
        for c in &report.coverage {
            let total = c.branches.len();
            let hit = c.branches.iter().filter(|b| b.reached).count();
            let _ = writeln!(out, "  {}.{}: {hit} of {total} branches reached", c.scene, c.instance);
            for b in c.branches.iter().filter(|b| !b.reached) {
                let _ = writeln!(out, "    untested: {}", b.branch);
            }
        }
    }
    out.push('\n');
    let _ = write!(out, "{} passed, {} failed", report.passed(), report.failed());
    let skipped = report.skipped() + report.filtered_out;
    if skipped > 0 {
        let _ = write!(out, ", {skipped} skipped");
    }
    out.push('\n');
    out
}

/// The report as JSON for tools: every test with its status and failures (with file and
/// line), the counts, and coverage.
pub fn render_json(report: &TestReport, sources: &Sources) -> String {
    let tests: Vec<serde_json::Value> = report
        .tests
        .iter()
        .map(|t| {
            let file = sources.get(t.span.file);
            let (line, _) = file.line_col(t.span.start);
            let mut doc = serde_json::to_value(t).expect("test results serialize");
            doc["file"] = serde_json::json!(file.name);
            doc["line"] = serde_json::json!(line);
            if let Some(failures) = doc["failures"].as_array_mut() {
                for (f, failure) in failures.iter_mut().zip(&t.failures) {
                    let (line, column) = sources.get(failure.span.file).line_col(failure.span.start);
                    f["line"] = serde_json::json!(line);
                    f["column"] = serde_json::json!(column);
                }
            }
            doc
        })
        .collect();
    let doc = serde_json::json!({
        "tests": tests,
        "passed": report.passed(),
        "failed": report.failed(),
        "skipped": report.skipped() + report.filtered_out,
        "coverage": report.coverage,
    });
    serde_json::to_string_pretty(&doc).expect("reports serialize")
}
