//! Human-readable bytecode: every block, every instruction with its operands resolved to
//! names, and the source line it came from.
//!
//! Owns: presentation only. Reads the span side table, which nothing on the hot path does.

use std::fmt::Write;

use super::instr::Instr;
use super::program::*;

/// Renders the whole program.
pub fn disassemble(p: &Program) -> String {
    let lines: Vec<Vec<usize>> = p
        .sources
        .iter()
        .map(|s| std::iter::once(0).chain(s.text.match_indices('\n').map(|(i, _)| i + 1)).collect())
        .collect();
    let mut d = Disasm { p, lines, out: String::new() };
    for rule in &p.rules {
        d.block(&format!("rule {}", rule.name), rule.block);
    }
    for scene in &p.scenes {
        for inst in &scene.instances {
            let place = format!("{}.{}", scene.name, inst.name);
            for st in &inst.strategies {
                if let Some(w) = st.when {
                    d.block(&format!("{place} strategy {} when", st.name), w);
                }
                match &st.outcome {
                    OutcomeInfo::Decision(b) => d.block(&format!("{place} strategy {} decision", st.name), *b),
                    OutcomeInfo::Experiment(x) => {
                        let layer = x.layer.as_ref().map_or(String::new(), |c| {
                            format!(" in {} [{}, {})", p.layers[c.layer as usize].name, c.start, c.end)
                        });
                        let unit = match x.unit {
                            Unit::Key(e) => p.entities[e as usize].key.clone(),
                            Unit::Tag(t) => p.tags[t as usize].name.clone(),
                        };
                        let mut start = 0;
                        for g in &x.groups {
                            let header = format!(
                                "{place} strategy {} experiment {} by {unit} salt {:?}{layer} group {} buckets [{start}, {})",
                                st.name,
                                x.name,
                                x.salt,
                                g.name,
                                start + g.buckets
                            );
                            d.block(&header, g.decision);
                            start += g.buckets;
                        }
                    }
                }
            }
            if let Some(b) = inst.default {
                d.block(&format!("{place} default"), b);
            }
        }
    }
    d.out
}

struct Disasm<'p> {
    p: &'p Program,
    lines: Vec<Vec<usize>>,
    out: String,
}

impl Disasm<'_> {
    fn block(&mut self, header: &str, b: Block) {
        let _ = writeln!(self.out, "{header}:");
        let mut last_line = None;
        for pc in b.start..b.end {
            let instr = self.p.code[pc as usize];
            let text = self.instr(instr);
            let span = self.p.spans[pc as usize];
            let line = self.line_of(span);
            // The line's text is looked up only when it changes: a 100,000-clause rule on one
            // line would otherwise scan that line once per instruction.
            let row = if last_line == Some((span.file, line)) {
                format!("  {pc:04}  {text}")
            } else {
                last_line = Some((span.file, line));
                let (file, source) = self.line_text(span.file, line);
                format!("  {pc:04}  {text:<44} ; {file}:{line}  {source}")
            };
            self.out.push_str(row.trim_end());
            self.out.push('\n');
        }
        self.out.push('\n');
    }

    /// The 1-based line a span starts on (0 for a span outside the program's sources).
    fn line_of(&self, span: crate::source::Span) -> usize {
        self.lines
            .get(span.file as usize)
            .map_or(0, |starts| starts.partition_point(|&s| s <= span.start as usize).max(1))
    }

    /// A source line's file name and text.
    fn line_text(&self, file: u32, line: usize) -> (&str, &str) {
        let (Some(src), Some(starts)) = (self.p.sources.get(file as usize), self.lines.get(file as usize)) else {
            return ("?", "");
        };
        let begin = starts[line.max(1) - 1];
        let end = starts.get(line).map_or(src.text.len(), |&next| next - 1);
        (&src.name, src.text[begin..end].trim())
    }

    fn member(&self, enum_type: Option<u32>, e: u32) -> String {
        enum_type
            .and_then(|t| self.p.enums.get(t as usize))
            .and_then(|m| m.get(e as usize))
            .map_or_else(|| format!("#{e}"), Clone::clone)
    }

    fn konst(&self, k: u32) -> String {
        match self.p.consts.get(k as usize) {
            Some(Const::Int(i)) => i.to_string(),
            Some(Const::Float(f)) => format!("{f:?}"),
            Some(Const::Text(s)) => format!("{s:?}"),
            Some(Const::Bool(b)) => b.to_string(),
            Some(Const::Time(t)) => format!("@{t}"),
            Some(Const::Enum(e)) => format!("#{e}"),
            Some(Const::Seconds(s)) => format!("{s}s"),
            Some(Const::List(items)) => format!("list of {}", items.len()),
            None => "?".into(),
        }
    }

    fn tag(&self, slot: u16) -> &str {
        self.p.tags.get(usize::from(slot)).map_or("?", |t| t.name.as_str())
    }

    fn set(&self, s: u32) -> String {
        let Some(set) = self.p.sets.get(s as usize) else { return "?".into() };
        let mut items: Vec<String> = set.ints.iter().map(|i| i.to_string()).collect();
        items.extend(set.floats.iter().map(|f| format!("{f:?}")));
        items.extend(set.texts.iter().map(|t| format!("{t:?}")));
        items.extend(set.enums.iter().map(|&e| self.member(set.enum_type, e)));
        if items.len() > 8 {
            let n = items.len();
            items.truncate(8);
            items.push(format!("… {n} in all"));
        }
        format!("{{{}}}", items.join(", "))
    }

    fn instr(&self, i: Instr) -> String {
        match i {
            Instr::LoadTag(s) => format!("LoadTag {}", self.tag(s)),
            Instr::PushInt(v) => format!("PushInt {v}"),
            Instr::PushConst(k) => format!("PushConst {}", self.konst(k)),
            Instr::PushBool(b) => format!("PushBool {b}"),
            Instr::Cmp(op) => format!("Cmp {}", op.as_str()),
            Instr::CmpTagConst { op, slot, konst } => {
                let value = match (self.p.consts.get(konst as usize), self.p.tags.get(usize::from(slot)).map(|t| t.ty))
                {
                    (Some(Const::Enum(e)), Some(Ty::Enum(t))) => self.member(Some(t), *e),
                    _ => self.konst(konst),
                };
                format!("CmpTagConst {} {} {value}", self.tag(slot), op.as_str())
            }
            Instr::AndCheck(t) => format!("AndCheck -> {t:04}"),
            Instr::OrCheck(t) => format!("OrCheck -> {t:04}"),
            Instr::CmpTagInt { op, slot, value } => format!("CmpTagInt {} {} {value}", self.tag(slot), op.as_str()),
            Instr::CmpTagEnum { op, slot, member } => {
                let ty = match self.p.tags.get(usize::from(slot)).map(|t| t.ty) {
                    Some(Ty::Enum(t)) => Some(t),
                    _ => None,
                };
                format!("CmpTagEnum {} {} {}", self.tag(slot), op.as_str(), self.member(ty, member))
            }
            Instr::CmpTagText { op, slot, konst } => {
                format!("CmpTagText {} {} {}", self.tag(slot), op.as_str(), self.konst(konst))
            }
            Instr::CmpTagFloat { op, slot, konst } => {
                format!("CmpTagFloat {} {} {}", self.tag(slot), op.as_str(), self.konst(konst))
            }
            Instr::InSet { set, negated } => format!("InSet{} {}", if negated { " not" } else { "" }, self.set(set)),
            Instr::Matches(r) => {
                format!("Matches /{}/", self.p.regex_sources.get(r as usize).map_or("?", String::as_str))
            }
            Instr::ContainsAny(s) => format!("ContainsAny {}", self.set(s)),
            Instr::ContainsAll(s) => format!("ContainsAll {}", self.set(s)),
            Instr::IsMissing { negated } => (if negated { "IsPresent" } else { "IsMissing" }).to_string(),
            Instr::Within(k) => format!("Within {}", self.konst(k)),
            Instr::OlderThan(k) => format!("OlderThan {}", self.konst(k)),
            Instr::AndJump(t) => format!("AndJump -> {t:04}"),
            Instr::OrJump(t) => format!("OrJump -> {t:04}"),
            Instr::CallRule(r) => format!("CallRule {}", self.p.rules.get(r as usize).map_or("?", |r| r.name.as_str())),
            Instr::Decide(n) => format!("Decide {n}"),
            other => format!("{other:?}"),
        }
    }
}
