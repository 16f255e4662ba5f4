//! Bundles: round trips, corrupt files, and forged programs the verifier must refuse.

use ruledeck::compile::bundle::{self, BundleError};
use ruledeck::compile::instr::Instr;
use ruledeck::compile::program::{Block, Const, OutcomeInfo, Program, Ty};
use ruledeck::ops::CmpOp;
use ruledeck::vm::{Input, Step};

const DECK: &str = r#"
entity user key uid
tag user.risk: int from "risk"
tag user.name: text from "profile"
tag ctx.channel: enum(app, h5) passthrough
rule user low = user.risk < 30 and user.name matches "^[a-z]+$"
layer checkout by uid
scene s {
  keys uid
  passes ctx.channel
  instance i -> { n: int, label: text } {
    strategy a when low and ctx.channel == app {
      experiment e by uid in checkout 0%..50% { x 50% => { n: 1, label: "x" } y 50% => { n: 2, label: user.name } }
    }
    strategy b when user.risk > 100 => { n: user.risk / 2, label: "b" }
    default => { n: 0, label: "" }
  }
}
"#;

fn program() -> Program {
    ruledeck::compile(&[("deck.rule", DECK)]).unwrap()
}

fn forge(edit: impl FnOnce(&mut Program)) -> Result<Program, BundleError> {
    let mut p = program();
    edit(&mut p);
    bundle::from_bytes(&bundle::to_bytes(&p))
}

fn refused(edit: impl FnOnce(&mut Program), expected: &str) {
    match forge(edit) {
        Err(BundleError::Invalid(e)) => assert!(e.message.contains(expected), "{e}: expected {expected:?}"),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a forged bundle was accepted (expected {expected:?})"),
    }
}

/// Decides for a handful of users; used to compare programs and to run accepted bundles.
fn decisions(p: &Program) -> Vec<String> {
    (0..20)
        .map(|i| {
            let mut req = p.request("s", "i").unwrap();
            req.key("uid", &format!("u-{i}")).unwrap().pass("ctx.channel", Input::Text("app")).unwrap();
            while p.run(&mut req).unwrap() == Step::NeedTags {
                let needed: Vec<(u32, String)> = req.needed().map(|n| (n.tag, n.name.to_string())).collect();
                for (t, name) in needed {
                    match name.as_str() {
                        "user.risk" => req.supply(t, Some(Input::Int(i * 10))),
                        _ => req.supply(t, Some(Input::Text("abc"))),
                    }
                }
            }
            let o = req.outcome();
            format!("{:?} {:?} {:?}", o.strategy(), o.group(), o.fields().collect::<Vec<_>>())
        })
        .collect()
}

#[test]
fn bundles_round_trip() {
    let original = program();
    let bytes = bundle::to_bytes(&original);
    let loaded = bundle::from_bytes(&bytes).unwrap();
    assert_eq!(ruledeck::compile::disasm::disassemble(&original), ruledeck::compile::disasm::disassemble(&loaded));
    assert_eq!(decisions(&original), decisions(&loaded));
    assert_eq!(bundle::to_bytes(&loaded), bytes, "serialization is deterministic");
}

#[test]
fn corrupt_files_are_refused_with_the_reason() {
    let bytes = bundle::to_bytes(&program());
    assert!(matches!(bundle::from_bytes(b"not a bundle at all, really"), Err(BundleError::NotABundle)));
    assert!(matches!(bundle::from_bytes(&bytes[..10]), Err(BundleError::NotABundle)));
    let mut v = bytes.clone();
    v[8] = 9;
    assert!(matches!(bundle::from_bytes(&v), Err(BundleError::UnsupportedVersion(9))));
    assert!(matches!(bundle::from_bytes(&bytes[..bytes.len() - 1]), Err(BundleError::Truncated { .. })));
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(matches!(bundle::from_bytes(&padded), Err(BundleError::Truncated { .. })));
    let mut flipped = bytes.clone();
    let last = flipped.len() - 5;
    flipped[last] ^= 0x40;
    assert!(matches!(bundle::from_bytes(&flipped), Err(BundleError::Checksum { .. })));
    // Every message says what is wrong.
    let e = bundle::from_bytes(&flipped).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains("checksum"), "{e}");
}

#[test]
fn garbage_payloads_with_valid_checksums_are_refused() {
    let mut bytes = bundle::to_bytes(&program());
    let payload_len = bytes.len() - 24;
    for (i, b) in bytes[24..].iter_mut().enumerate().take(payload_len.min(64)) {
        *b = (i as u8).wrapping_mul(37);
    }
    let crc = crc32(&bytes[24..]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(bundle::from_bytes(&bytes), Err(BundleError::Decode(_) | BundleError::Invalid(_))));
}

fn crc32(data: &[u8]) -> u32 {
    // The bundle's CRC-32 (IEEE), computed independently of the crate under test.
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn rule_block(p: &Program) -> Block {
    p.rules[0].block
}

#[test]
fn forged_jumps_are_refused() {
    refused(
        |p| {
            let b = rule_block(p);
            p.code[b.start as usize + 1] = Instr::AndJump(b.start);
        },
        "goes backwards",
    );
    refused(
        |p| {
            let b = rule_block(p);
            p.code[b.start as usize + 1] = Instr::AndJump(b.end + 3);
        },
        "leaves block",
    );
}

#[test]
fn forged_indexes_are_refused() {
    refused(|p| p.code[0] = Instr::LoadTag(999), "out of range");
    refused(|p| p.code[0] = Instr::CmpTagConst { op: CmpOp::Lt, slot: 0, konst: 9999 }, "out of range");
    refused(|p| p.code[0] = Instr::CmpTagInt { op: CmpOp::Lt, slot: 77, value: 1 }, "out of range");
    refused(|p| p.code[0] = Instr::CmpTagEnum { op: CmpOp::Eq, slot: 77, member: 0 }, "out of range");
    // The typed compare instructions also refuse a constant of another kind.
    refused(
        |p| {
            p.consts.push(Const::Int(1));
            p.code[0] = Instr::CmpTagText { op: CmpOp::Eq, slot: 1, konst: (p.consts.len() - 1) as u32 };
        },
        "out of range",
    );
    refused(
        |p| {
            p.consts.push(Const::Text("x".into()));
            p.code[0] = Instr::CmpTagFloat { op: CmpOp::Eq, slot: 0, konst: (p.consts.len() - 1) as u32 };
        },
        "out of range",
    );
    refused(|p| p.code[0] = Instr::PushConst(12345), "out of range");
    refused(|p| p.code[0] = Instr::InSet { set: 77, negated: false }, "out of range");
    refused(|p| p.code[0] = Instr::Matches(5), "out of range");
    refused(|p| p.code[0] = Instr::CallRule(40), "out of range");
    refused(
        |p| {
            p.consts.push(Const::Int(1));
            p.code[0] = Instr::Within((p.consts.len() - 1) as u32);
        },
        "out of range",
    );
    refused(|p| p.rules[0].block = Block { start: 0, end: 100_000 }, "out of range");
    refused(|p| p.tags[0].entity = Some(9), "entity 9 out of range");
    refused(|p| p.tags[0].ty = Ty::Enum(99), "enum 99 out of range");
    refused(|p| p.scenes[0].passes = vec![0], "not a pass-through tag");
    refused(|p| p.scenes[0].keys = vec![3], "key 3 out of range");
}

#[test]
fn forged_stack_shapes_are_refused() {
    // An `And` with one value on the stack underflows.
    refused(|p| p.code[0] = Instr::And, "pops 2 values");
    // A condition block must end with exactly one value.
    refused(
        |p| {
            let b = rule_block(p);
            p.code[b.end as usize - 1] = Instr::Decide(1);
        },
        "wrong terminator",
    );
    // A return in the middle of a block.
    refused(|p| p.code[1] = Instr::Return, "exactly one terminator");
    // A decision with the wrong number of fields.
    refused(
        |p| {
            let OutcomeInfo::Decision(b) = p.scenes[0].instances[0].strategies[1].outcome else { panic!() };
            p.code[b.end as usize - 1] = Instr::Decide(1);
        },
        "wrong terminator",
    );
    refused(|p| p.spans.pop().map(drop).unwrap_or(()), "spans for");
}

#[test]
fn forged_recursion_is_refused() {
    // A rule that calls itself would never terminate.
    refused(
        |p| {
            let b = rule_block(p);
            p.code[b.start as usize] = Instr::CallRule(0);
        },
        "calls itself",
    );
}

#[test]
fn forged_tables_are_refused() {
    refused(
        |p| {
            if let OutcomeInfo::Experiment(x) = &mut p.scenes[0].instances[0].strategies[0].outcome {
                x.groups[0].buckets = 9_000;
            }
        },
        "exceed 10000 buckets",
    );
    refused(
        |p| {
            if let OutcomeInfo::Experiment(x) = &mut p.scenes[0].instances[0].strategies[0].outcome {
                x.layer.as_mut().unwrap().end = 20_000;
            }
        },
        "invalid layer claim",
    );
    refused(|p| p.regex_sources[0] = "(unclosed".into(), "regex");
}

/// Random single-byte corruptions of the payload, with the checksum repaired so they reach
/// the decoder and verifier: loading never panics, and whatever loads runs without panicking.
#[test]
fn mutated_bundles_never_panic() {
    let original = bundle::to_bytes(&program());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut accepted = 0;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bytes = original.clone();
        let at = 24 + (state as usize % (bytes.len() - 24));
        bytes[at] = (state >> 32) as u8;
        let crc = crc32(&bytes[24..]);
        bytes[20..24].copy_from_slice(&crc.to_le_bytes());
        if let Ok(p) = bundle::from_bytes(&bytes) {
            accepted += 1;
            if p.request("s", "i").is_ok() {
                decisions_lenient(&p);
            }
        }
    }
    assert!(accepted > 0, "some mutations (e.g. in names) are harmless and load");
}

fn decisions_lenient(p: &Program) {
    let mut req = match p.request("s", "i") {
        Ok(r) => r,
        Err(_) => return,
    };
    let _ = req.key("uid", "u-1").map(|r| r.pass("ctx.channel", Input::Text("app")).ok());
    for _ in 0..10 {
        match p.run(&mut req) {
            Ok(Step::NeedTags) => {
                let needed: Vec<u32> = req.needed().map(|n| n.tag).collect();
                for t in needed {
                    req.supply(t, Some(Input::Int(3)));
                }
            }
            _ => return,
        }
    }
}

/// A deck with events, windows, channels and actions: its outreach tables travel in the
/// bundle (format 3) and are verified like the bytecode.
const OUTREACH_DECK: &str = r#"
entity user key uid
event browse by uid late 5m { sku: text, category: enum(phone, book) }
tag user.phones: int = count(browse where category == phone and not sku == "x") within 10m
tag user.zone: text from "profile"
channel push cap 3 per 1d quiet 22:00..08:00 zone user.zone
action "nudge" budget 100
scene nudge on browse {
  keys uid
  instance n -> reach { sku: text } {
    strategy many when user.phones >= 3 => reach push "nudge" { sku: event.sku } dedup 1d
  }
}
"#;

fn outreach_program() -> Program {
    ruledeck::compile(&[("deck.rule", OUTREACH_DECK)]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn outreach_tables_round_trip_through_bundles() {
    let p = outreach_program();
    assert_eq!(p.outreach.events.len(), 1);
    assert_eq!(p.outreach.windows[0].filter.len(), 4, "two comparisons, a not, an and: {:?}", p.outreach.windows[0]);
    assert_eq!(p.outreach.scene_events, [Some(0)]);
    assert_eq!(p.outreach.max_dedup_seconds, 86_400);
    let loaded = bundle::from_bytes(&bundle::to_bytes(&p)).unwrap();
    assert_eq!(loaded.outreach, p.outreach);
}

/// Bundles written before outreach travelled in them (format 2: the program alone) still
/// load, as programs that take no events: stored releases keep loading and rolling back.
#[test]
fn format_2_bundles_still_load() {
    let p = program();
    let bytes = bundle::to_bytes(&p);
    // Format 2 is format 4 without the outreach and fan-out sections.
    let section = postcard::to_allocvec(&p.outreach).unwrap().len()
        + postcard::to_allocvec(&p.outreach.scene_fanouts).unwrap().len();
    let payload = &bytes[24..bytes.len() - section];
    let mut old = Vec::new();
    old.extend_from_slice(bundle::MAGIC);
    old.extend_from_slice(&2u32.to_le_bytes());
    old.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    old.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    old.extend_from_slice(payload);
    let loaded = bundle::from_bytes(&old).unwrap();
    assert!(loaded.outreach.is_empty());
    assert_eq!(decisions(&loaded), decisions(&p));
    // A format-2 payload followed by anything is refused, not half read.
    let mut padded = old.clone();
    padded.push(0);
    padded[12..20].copy_from_slice(&((payload.len() + 1) as u64).to_le_bytes());
    let crc = crc32fast::hash(&padded[24..]);
    padded[20..24].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(bundle::from_bytes(&padded), Err(BundleError::Decode(_))));
}

fn refused_outreach(edit: impl FnOnce(&mut Program), expected: &str) {
    let mut p = outreach_program();
    edit(&mut p);
    match bundle::from_bytes(&bundle::to_bytes(&p)) {
        Err(BundleError::Invalid(e)) => assert!(e.message.contains(expected), "{e}: expected {expected:?}"),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a forged bundle was accepted (expected {expected:?})"),
    }
}

#[test]
fn forged_outreach_tables_are_refused() {
    use ruledeck::compile::program::FilterStep;
    refused_outreach(|p| p.outreach.events[0].entity = 9, "entity 9 out of range");
    refused_outreach(|p| p.outreach.events[0].fields[0].tag = 0, "has no pass-through tag");
    refused_outreach(|p| p.outreach.windows[0].event = 4, "event 4 out of range");
    refused_outreach(|p| p.outreach.windows[0].field = Some(0), "`count` with a wrong field");
    refused_outreach(|p| p.outreach.windows[0].filter.push(FilterStep::And(2)), "malformed filter");
    refused_outreach(|p| p.outreach.windows[0].filter.insert(0, FilterStep::Not), "malformed filter");
    refused_outreach(|p| drop(p.outreach.windows[0].filter.pop()), "malformed filter");
    refused_outreach(
        |p| p.outreach.windows[0].filter[0] = FilterStep::Compare { field: 7, op: CmpOp::Eq, value: Const::Int(1) },
        "filter field out of range",
    );
    refused_outreach(|p| p.outreach.windows[0].within_seconds = -1, "negative window");
    refused_outreach(|p| p.outreach.channels[0].zone = Some(99), "zone tag out of range");
    refused_outreach(|p| p.outreach.scene_events = vec![Some(0), None], "2 scene events for 1 scenes");
    refused_outreach(|p| p.outreach.scene_events = vec![Some(3)], "scene event 3 out of range");
}

/// A deck with a fan-out scene: a price drop (by item) reaches each favoriter (by user).
const FANOUT_DECK: &str = r#"
entity user key uid
entity item key skuid
event favorite by uid { sku: text, size: int, at: time, rating: float }
event price_drop by skuid { new_cents: int, size: int, rating: float }
channel push
scene alert on price_drop for each user with favorite(sku == event.skuid and size == event.size) within 30d {
  instance a -> reach {
    default => reach push "drop"
  }
}
"#;

fn fanout_program() -> Program {
    ruledeck::compile(&[("deck.rule", FANOUT_DECK)]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn fanouts_round_trip_through_bundles_and_format_3_still_loads() {
    use ruledeck::compile::program::{FanoutInfo, FanoutValue};
    let p = fanout_program();
    let expected = FanoutInfo {
        entity: 0,
        index_event: 0,
        pairs: vec![(0, FanoutValue::Key), (1, FanoutValue::Field(1))],
        within_seconds: 30 * 86_400,
    };
    assert_eq!(p.outreach.scene_fanouts, [Some(expected)]);
    let bytes = bundle::to_bytes(&p);
    assert_eq!(bundle::from_bytes(&bytes).unwrap().outreach, p.outreach);
    // Format 3 is format 4 without the fan-out section: a program without fan-outs.
    let section = postcard::to_allocvec(&p.outreach.scene_fanouts).unwrap().len();
    let payload = &bytes[24..bytes.len() - section];
    let mut old = Vec::new();
    old.extend_from_slice(bundle::MAGIC);
    old.extend_from_slice(&3u32.to_le_bytes());
    old.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    old.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    old.extend_from_slice(payload);
    let loaded = bundle::from_bytes(&old).unwrap();
    assert!(loaded.outreach.scene_fanouts.is_empty());
    assert_eq!(loaded.outreach.events, p.outreach.events);
}

fn refused_fanout(edit: impl FnOnce(&mut ruledeck::compile::program::FanoutInfo), expected: &str) {
    let mut p = fanout_program();
    edit(p.outreach.scene_fanouts[0].as_mut().unwrap());
    match bundle::from_bytes(&bundle::to_bytes(&p)) {
        Err(BundleError::Invalid(e)) => assert!(e.message.contains(expected), "{e}: expected {expected:?}"),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a forged bundle was accepted (expected {expected:?})"),
    }
}

#[test]
fn forged_fanouts_are_refused() {
    use ruledeck::compile::program::FanoutValue;
    refused_fanout(|f| f.entity = 7, "entity 7 out of range");
    refused_fanout(|f| f.entity = 1, "fans out to the triggering event's own entity");
    refused_fanout(|f| f.index_event = 9, "index event 9 out of range");
    refused_fanout(|f| f.index_event = 1, "is not keyed by the fan-out's entity");
    refused_fanout(|f| f.within_seconds = 0, "window out of range");
    refused_fanout(|f| f.within_seconds = 401 * 86_400, "window out of range");
    refused_fanout(|f| f.pairs.clear(), "pairs empty, unsorted or repeated");
    refused_fanout(|f| f.pairs.reverse(), "pairs empty, unsorted or repeated");
    refused_fanout(|f| f.pairs[1].0 = 0, "pairs empty, unsorted or repeated");
    refused_fanout(|f| f.pairs[1].0 = 9, "index field 9 out of range");
    refused_fanout(|f| f.pairs[1].1 = FanoutValue::Field(9), "trigger field 9 out of range");
    // `sku` (text) with `size` (int); `at` (time) with the key; `rating` (float) with itself.
    refused_fanout(|f| f.pairs[0].1 = FanoutValue::Field(1), "field `sku` cannot be matched");
    refused_fanout(|f| f.pairs[1] = (2, FanoutValue::Key), "field `at` cannot be matched");
    refused_fanout(|f| f.pairs[1] = (3, FanoutValue::Field(2)), "field `rating` cannot be matched");
    let mut p = fanout_program();
    p.outreach.scene_fanouts.push(None);
    assert!(
        matches!(bundle::from_bytes(&bundle::to_bytes(&p)), Err(BundleError::Invalid(e)) if e.message.contains("2 scene fan-outs for 1 scenes"))
    );
    let mut p = fanout_program();
    p.outreach.scene_events = vec![None];
    assert!(
        matches!(bundle::from_bytes(&bundle::to_bytes(&p)), Err(BundleError::Invalid(e)) if e.message.contains("the scene is not on an event"))
    );
}

/// An instance's content (what its release version hashes) changes with its scene's fan-out:
/// another window, another match, another index event.
#[test]
fn an_instance_version_changes_with_its_fanout() {
    use ruledeck::compile::content::instance_content;
    let content = |deck: &str| {
        let p = ruledeck::compile(&[("deck.rule", deck)]).unwrap_or_else(|e| panic!("{e}"));
        instance_content(&p, 0, 0).unwrap()
    };
    let base = content(FANOUT_DECK);
    assert!(base.contains("for each user within 2592000s"), "{base}");
    let variants = [
        FANOUT_DECK.replace("within 30d", "within 7d"),
        FANOUT_DECK.replace(" and size == event.size", ""),
        FANOUT_DECK
            .replace("event favorite by uid {", "event wish by uid { sku: text, size: int }\nevent favorite by uid {")
            .replace("with favorite(", "with wish("),
    ];
    for v in variants {
        assert_ne!(content(&v), base, "{v}");
    }
    // Declarations the fan-out does not read leave it alone.
    assert_eq!(content(&FANOUT_DECK.replace("channel push", "channel push\nchannel sms")), base);
}
