//! Hostile and extreme inputs: each must end in a diagnostic (or succeed), never a panic,
//! a stack overflow or a hang. Tests run on the default 2 MiB test-thread stack on purpose.

use ruledeck::diagnostics::{render_text, Code};
use ruledeck::limits::{MAX_NESTING, MAX_SOURCE_BYTES};

const PRE: &str = "entity user key uid\ntag user.a: int from \"p\"\ntag user.vip: bool from \"p\"\n";

fn codes(src: &str) -> Vec<Code> {
    match ruledeck::check(&[("hostile.rule", src)]) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code).collect(),
    }
}

#[test]
fn two_hundred_thousand_nested_parens_is_a_diagnostic() {
    let src = format!("{PRE}rule user r = {}true{}", "(".repeat(200_000), ")".repeat(200_000));
    assert_eq!(codes(&src), vec![Code::NestingTooDeep]);
}

#[test]
fn two_hundred_thousand_nots_is_a_diagnostic() {
    let src = format!("{PRE}rule user r = {}true", "not ".repeat(200_000));
    assert_eq!(codes(&src), vec![Code::NestingTooDeep]);
}

#[test]
fn deep_brackets_of_every_kind_are_diagnostics() {
    for (open, close) in [("[", "]"), ("{", "}"), ("- ", "")] {
        let src = format!("{PRE}rule user r = user.a > {}1{}", open.repeat(100_000), close.repeat(100_000));
        assert_eq!(codes(&src), vec![Code::NestingTooDeep], "{open}");
    }
}

#[test]
fn nesting_exactly_at_the_limit_still_compiles() {
    // The rule's own expression has no enclosing brackets, so the limit applies in full.
    let depth = MAX_NESTING;
    let src = format!("{PRE}rule user r = {}user.vip{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(codes(&src), vec![]);
    let over = format!("{PRE}rule user r = {}user.vip{}", "(".repeat(depth + 1), ")".repeat(depth + 1));
    assert_eq!(codes(&over), vec![Code::NestingTooDeep]);
}

#[test]
fn flat_chain_of_100_000_and_clauses_compiles() {
    let clauses: Vec<String> = (0..100_000).map(|i| format!("user.a != {i}")).collect();
    let src = format!("{PRE}rule user r = {}", clauses.join(" and "));
    let checked = ruledeck::check(&[("chain.rule", &src)]).expect("a flat chain is not nesting");
    assert_eq!(checked.deck.rules.len(), 1);
}

#[test]
fn flat_chains_of_or_and_arithmetic_compile() {
    let ors: Vec<String> = (0..50_000).map(|i| format!("user.a == {i}")).collect();
    let sum = vec!["user.a"; 50_000].join(" + ");
    let src = format!("{PRE}rule user r = {}\nrule user s = {sum} > 0", ors.join(" or "));
    assert_eq!(codes(&src), vec![]);
}

#[test]
fn long_chains_of_rules_using_rules_do_not_overflow() {
    let mut src = String::from(PRE);
    src.push_str("rule user r0 = user.vip\n");
    for i in 1..20_000 {
        src.push_str(&format!("rule user r{i} = r{}\n", i - 1));
    }
    assert_eq!(codes(&src), vec![]);
    // …and a cycle through all of them is one error, found without recursion.
    let cyclic = src.replace("rule user r0 = user.vip", "rule user r0 = r19999");
    assert_eq!(codes(&cyclic), vec![Code::RuleCycle]);
}

#[test]
fn oversized_source_is_rejected_before_lexing() {
    let src = format!("{PRE}//{}", "x".repeat(MAX_SOURCE_BYTES));
    let err = ruledeck::check(&[("huge.rule", &src)]).unwrap_err();
    insta::assert_snapshot!(render_text(&err.sources, &err.diagnostics));
}

#[test]
fn every_lexical_problem_in_a_file_is_reported() {
    let src = "rule user r = user.a > 3 $\ntag user.b: text from \"x\\q\"\nrule user s = \"open\n";
    assert_eq!(codes(src), vec![Code::UnexpectedChar, Code::InvalidEscape, Code::UnterminatedString]);
}

#[test]
fn errors_are_reported_per_file_across_files() {
    let err = ruledeck::check(&[("a.rule", "rule user r = \n"), ("b.rule", "tag user.x int\n")]).unwrap_err();
    let files: Vec<u32> = err.diagnostics.iter().filter_map(|d| d.span).map(|s| s.file).collect();
    assert_eq!(files, vec![0, 1]);
}

/// A small deterministic generator, so the sweep below is reproducible without a fuzzer.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutates every fixture many times (byte flips, deletions, duplications, splices of
/// language fragments) and checks the result: it must return, with diagnostics or a deck.
#[test]
fn mutated_fixtures_never_panic() {
    let fragments: &[&[u8]] = &[
        b"(",
        b")",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"/*",
        b"not ",
        b" and ",
        b" or ",
        b"-",
        b"@",
        b"%",
        b"..",
        b"=>",
        b"->",
        b"\xff",
        b"\0",
        b"9999999999999999999999",
        b"1.5%",
        b"99d",
        b"user.",
        b"strategy x ",
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut runs = 0;
    for stage in ["parse", "check"] {
        for entry in std::fs::read_dir(dir.join(stage)).unwrap() {
            let original = std::fs::read(entry.unwrap().path()).unwrap();
            if original.len() > 20_000 {
                continue;
            }
            for _ in 0..60 {
                let mut bytes = original.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len() + 1);
                    match rng.below(4) {
                        0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                        1 if at < bytes.len() => {
                            let end = (at + rng.below(16)).min(bytes.len());
                            bytes.drain(at..end);
                        }
                        2 => {
                            let f = fragments[rng.below(fragments.len())];
                            bytes.splice(at..at, f.iter().copied());
                        }
                        _ => {
                            let end = (at + rng.below(64)).min(bytes.len());
                            let copy = bytes[at..end].to_vec();
                            bytes.splice(at..at, copy);
                        }
                    }
                }
                let mut sources = ruledeck::source::Sources::new();
                let (_, problem) = ruledeck::add_file_bytes(&mut sources, "mutant.rule", bytes);
                if problem.is_none() {
                    if let Err(e) = ruledeck::check_sources(sources) {
                        // Rendering must not panic either, whatever the spans.
                        let _ = render_text(&e.sources, &e.diagnostics);
                    }
                }
                runs += 1;
            }
        }
    }
    assert!(runs > 1000);
}

/// Evaluation is bounded by the deck's size: no loops exist, jumps go forward, rule calls
/// form no cycle and each rule runs at most once per request. A deck of maximal shape —
/// 20,000 chained rules and 10,000 strategies all using the deepest one, with every tag
/// missing so no strategy decides — enters each block at most once.
#[test]
fn evaluation_of_a_maximal_deck_is_bounded_by_its_size() {
    let rules = 20_000;
    let strategies = ruledeck::limits::MAX_STRATEGIES;
    let mut src = String::from(PRE);
    src.push_str("rule user r0 = user.a > 1 and user.vip\n");
    for i in 1..rules {
        src.push_str(&format!("rule user r{i} = r{} or user.a == {i}\n", i - 1));
    }
    src.push_str("scene s { keys uid instance i -> { n: int } {\n");
    for i in 0..strategies {
        src.push_str(&format!("strategy s{i} when r{} and user.a != {i} => {{ n: {i} }}\n", rules - 1));
    }
    src.push_str("default => { n: -1 } } }\n");
    let program = ruledeck::compile(&[("maximal.rule", &src)]).unwrap_or_else(|e| panic!("{e}"));
    let mut req = program.request("s", "i").unwrap();
    req.key("uid", "u").unwrap();
    let mut suspensions = 0;
    while program.run(&mut req).unwrap() == ruledeck::vm::Step::NeedTags {
        suspensions += 1;
        let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
        for t in needed {
            req.supply(t, None);
        }
    }
    assert_eq!(req.outcome().strategy(), Some("default"));
    assert_eq!(suspensions, 1, "both tags of the first condition are asked for together");
    // Each when (and the default) once, each rule body at most once, plus the first
    // strategy's block and rule chain once more before the suspension.
    let bound = (strategies + 1 + rules) as u64 + 1 + rules as u64;
    assert!(req.blocks_run() <= bound, "{} blocks run, bound {bound}", req.blocks_run());
    assert!(req.blocks_run() >= (strategies + 1) as u64);
}

#[test]
fn count_limits_are_diagnostics() {
    let fields: Vec<String> = (0..=ruledeck::limits::MAX_FIELDS).map(|i| format!("f{i}: int")).collect();
    let values: Vec<String> = (0..=ruledeck::limits::MAX_FIELDS).map(|i| format!("f{i}: 1")).collect();
    let src = format!(
        "{PRE}scene s {{ keys uid instance i -> {{ {} }} {{ default => {{ {} }} }} }}",
        fields.join(", "),
        values.join(", ")
    );
    assert_eq!(codes(&src), vec![Code::TooMany]);
    let strategies: String = (0..=ruledeck::limits::MAX_STRATEGIES)
        .map(|i| format!("strategy s{i} when user.vip => {{ n: 1 }}\n"))
        .collect();
    let src = format!("{PRE}scene s {{ keys uid instance i -> {{ n: int }} {{ {strategies} }} }}");
    assert_eq!(codes(&src), vec![Code::TooMany]);
    let groups: String = (0..=ruledeck::limits::MAX_GROUPS).map(|i| format!("g{i} 0% => {{ n: 1 }}\n")).collect();
    let src = format!("{PRE}scene s {{ keys uid instance i -> {{ n: int }} {{ strategy x {{ experiment e by uid {{ {groups} }} }} }} }}");
    assert_eq!(codes(&src), vec![Code::TooMany]);
}

#[test]
fn more_tags_than_slots_is_a_diagnostic() {
    let mut src = String::from("entity user key uid\n");
    for i in 0..=ruledeck::limits::MAX_TAGS {
        src.push_str(&format!("tag user.t{i}: int from \"p\"\n"));
    }
    let err = ruledeck::check(&[("many.rule", &src)]).unwrap_err();
    assert_eq!(err.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(), vec![Code::TooMany]);
    insta::assert_snapshot!(render_text(&err.sources, &err.diagnostics));
}

/// A shared rule DAG, `r_i = r_{i-1} and r_{i-1}` (or `or`), evaluates each rule once per
/// block whatever the mix of supplied, missing and pending tags: the tree it unfolds to has
/// 2^33 leaves, so anything but caching every result, provisional ones included, never ends.
#[test]
fn shared_rule_dags_are_linear_for_every_mix_of_tag_states() {
    let levels = 32;
    for op in ["and", "or"] {
        let mut src = String::from(PRE);
        src.push_str("tag user.b: int from \"q\"\n");
        src.push_str("rule user r0 = user.a > 1 and user.b > 1\n");
        for i in 1..=levels {
            src.push_str(&format!("rule user r{i} = r{} {op} r{}\n", i - 1, i - 1));
        }
        src.push_str(&format!(
            "scene s {{ keys uid instance i -> {{ n: int }} {{\n strategy top when r{levels} => {{ n: 1 }}\n\
             strategy again when user.a != 7 and r{levels} => {{ n: 2 }}\n default => {{ n: 0 }} }} }}\n"
        ));
        let program = ruledeck::compile(&[("dag.rule", &src)]).unwrap_or_else(|e| panic!("{e}"));
        let a = program.tag("user.a").unwrap().0;
        let b = program.tag("user.b").unwrap().0;
        // Each tag: given up front (a value, or missing), supplied missing when asked, or
        // given a value when asked.
        #[derive(Clone, Copy, Debug)]
        enum State {
            Given(i64),
            GivenMissing,
            AskedMissing,
            AskedValue(i64),
        }
        let states = [
            State::Given(5),
            State::Given(0),
            State::GivenMissing,
            State::AskedMissing,
            State::AskedValue(5),
            State::AskedValue(0),
        ];
        for sa in states {
            for sb in states {
                let mut req = program.request("s", "i").unwrap();
                req.key("uid", "u").unwrap();
                for (tag, state) in [(a, sa), (b, sb)] {
                    match state {
                        State::Given(v) => req.supply(tag, Some(ruledeck::vm::Input::Int(v))),
                        State::GivenMissing => req.supply(tag, None),
                        State::AskedMissing | State::AskedValue(_) => {}
                    }
                }
                let mut suspensions = 0;
                while program.run(&mut req).unwrap() == ruledeck::vm::Step::NeedTags {
                    suspensions += 1;
                    assert!(suspensions <= 2, "{op} {sa:?} {sb:?}: more suspensions than tags");
                    let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
                    for t in needed {
                        match if t == a { sa } else { sb } {
                            State::AskedValue(v) => req.supply(t, Some(ruledeck::vm::Input::Int(v))),
                            State::AskedMissing => req.supply(t, None),
                            given => panic!("{op} {sa:?} {sb:?}: asked again for a tag given up front ({given:?})"),
                        }
                    }
                }
                // Three blocks (two whens and the default's constant decision is copied), each
                // evaluating every rule at most once, per pass; at most three passes.
                let bound = 3 * 2 * (levels as u64 + 2);
                assert!(req.blocks_run() <= bound, "{op} {sa:?} {sb:?}: {} blocks run", req.blocks_run());
                let value = |s: State| match s {
                    State::Given(v) | State::AskedValue(v) => Some(v > 1),
                    State::GivenMissing | State::AskedMissing => None,
                };
                // `x and x` and `x or x` are both `x` in Kleene logic.
                let r0 = match (value(sa), value(sb)) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                let expected = if r0 == Some(true) { Some("top") } else { Some("default") };
                assert_eq!(req.outcome().strategy(), expected, "{op} {sa:?} {sb:?}");
            }
        }
    }
}

/// pest's detailed-error switch is process-wide: compilations reporting syntax errors on
/// several threads at once (a service, a language server) must all get the same message.
#[test]
fn concurrent_syntax_errors_render_the_same() {
    let bad = format!("{PRE}rule user r = user.a > 1 and\nrule user s = (user.a\n");
    let expected = ruledeck::check(&[("bad.rule", &bad)]).unwrap_err().to_string();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(ruledeck::check(&[("bad.rule", &bad)]).unwrap_err().to_string(), expected);
                }
            });
        }
    });
}

/// Disassembling a 100,000-clause rule on one line is linear: the line's text is found once,
/// not once per instruction (that took over 20 s).
#[test]
fn disassembling_a_long_one_line_chain_is_linear() {
    let clauses = vec!["user.a > 1"; 100_000].join(" and ");
    let src = format!("{PRE}rule user r = {clauses}\n");
    let program = ruledeck::compile(&[("long.rule", &src)]).unwrap_or_else(|e| panic!("{e}"));
    let text = ruledeck::compile::disasm::disassemble(&program);
    // The source line is printed once, beside the first instruction that comes from it.
    assert_eq!(text.matches("long.rule:4").count(), 1);
    assert!(text.lines().count() > 100_000);
}
