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
