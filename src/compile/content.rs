//! Canonical content of a compiled program's parts, for release versioning and diffs.
//!
//! Owns: a text rendering of an instance, a rule or a tag declaration that depends only on
//! what it means when run — names, values, types and code, with every index (tag slot,
//! constant, set, rule, enum, layer, jump target) resolved to what it points at. Two
//! programs compiled from decks that differ elsewhere give the same text for an unchanged
//! instance; any change an instance's decisions could observe changes its text.
//! Must not: include spans, source text, file names or a tag's status (status is not
//! content: disabling a tag must not change a version).
//!
//! An instance's content covers its decision type, its strategies (`when` code, decisions,
//! experiments with unit, salt, layer claim and groups), its default, the scene's keys and
//! pass-through tags (its request contract), and, transitively, every rule its code calls
//! and every tag declaration and layer it uses.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::instr::Instr;
use super::program::*;

/// The canonical content of instance `instance` of scene `scene` (indexes into
/// [`Program::scenes`] and that scene's `instances`). `None` if either is out of range.
pub fn instance_content(p: &Program, scene: usize, instance: usize) -> Option<String> {
    let sc = p.scenes.get(scene)?;
    let inst = sc.instances.get(instance)?;
    let mut w =
        Writer { p, out: String::new(), rules: BTreeSet::new(), tags: BTreeSet::new(), layers: BTreeSet::new() };
    let _ = writeln!(w.out, "instance {}.{}", sc.name, inst.name);
    let keys: Vec<&str> = sc.keys.iter().filter_map(|&e| p.entities.get(e as usize)).map(|e| e.key.as_str()).collect();
    let _ = writeln!(w.out, "keys {}", keys.join(","));
    for &t in &sc.passes {
        w.tags.insert(t);
        let name = w.tag_name(t).to_string();
        let _ = writeln!(w.out, "passes {name}");
    }
    for f in &inst.fields {
        let ty = w.ty(f.ty);
        let _ = writeln!(w.out, "field {} {ty}", f.name);
    }
    for st in &inst.strategies {
        let _ = writeln!(w.out, "strategy {}", st.name);
        if let Some(b) = st.when {
            w.block("when", b);
        }
        match &st.outcome {
            OutcomeInfo::Decision(b) => w.block("decision", *b),
            OutcomeInfo::Experiment(x) => {
                let unit = w.unit(x.unit);
                let _ = writeln!(w.out, "experiment {} salt {:?} by {unit}", x.name, x.salt);
                if let Some(c) = &x.layer {
                    w.layers.insert(c.layer);
                    let name = p.layers.get(c.layer as usize).map_or("?", |l| l.name.as_str());
                    let _ = writeln!(w.out, "in layer {name} [{}, {})", c.start, c.end);
                }
                for g in &x.groups {
                    let _ = writeln!(w.out, "group {} {}", g.name, g.buckets);
                    w.block("decision", g.decision);
                }
            }
        }
    }
    if let Some(b) = inst.default {
        w.block("default", b);
    }
    if let Some(ev) = p.outreach.scene_event(scene).and_then(|e| p.outreach.events.get(e as usize)) {
        let _ = write!(w.out, "on {}", event_content(p, ev));
        if let Some(f) = p.outreach.scene_fanout(scene) {
            // What the fan-out matches and over how long: which units the instance decides for.
            let entity = p.entities.get(f.entity as usize).map_or("?", |e| e.name.as_str());
            let _ = writeln!(w.out, "for each {entity} within {}s", f.within_seconds);
            if let Some(ix) = p.outreach.events.get(f.index_event as usize) {
                let _ = write!(w.out, "with {}", event_content(p, ix));
                for &(fi, v) in &f.pairs {
                    let field = ix.fields.get(fi as usize).map_or("?", |x| x.name.as_str());
                    let value = match v {
                        FanoutValue::Field(i) => ev.fields.get(i as usize).map_or("?", |x| x.name.as_str()),
                        FanoutValue::Key => p.entities.get(ev.entity as usize).map_or("?", |e| e.key.as_str()),
                    };
                    let _ = writeln!(w.out, "match {field} == event.{value}");
                }
            }
        }
    }
    if inst.is_reach() {
        // The filters its reaches go through: the channels and actions its decisions name.
        let named = |name: &str| w.out.contains(&format!("{name:?}"));
        let mut filters = String::new();
        for c in p.outreach.channels.iter().filter(|c| named(&c.name)) {
            let zone = c.zone.and_then(|z| p.tags.get(z as usize)).map(|t| t.name.as_str());
            let _ = writeln!(filters, "channel {} caps {:?} quiet {:?} zone {zone:?}", c.name, c.caps, c.quiet);
        }
        for a in p.outreach.actions.iter().filter(|a| named(&a.name)) {
            let _ = writeln!(filters, "action {:?} caps {:?} budget {:?}", a.name, a.caps, a.budget);
        }
        w.out.push_str(&filters);
    }
    w.called_rules();
    let layers: Vec<u32> = w.layers.iter().copied().collect();
    for l in layers {
        if let Some(layer) = p.layers.get(l as usize) {
            let unit = w.unit(layer.unit);
            let _ = writeln!(w.out, "layer {} by {unit}", layer.name);
        }
    }
    let mut tags: Vec<u32> = w.tags.iter().copied().collect();
    tags.sort_by(|a, b| w.tag_name(*a).cmp(w.tag_name(*b)));
    for t in tags {
        let decl = tag_content(p, t as usize).unwrap_or_default();
        w.out.push_str(&decl);
    }
    Some(w.out)
}

/// The canonical content of rule `rule`: its code and, transitively, the rules it calls
/// and the tag declarations it reads.
pub fn rule_content(p: &Program, rule: usize) -> Option<String> {
    let info = p.rules.get(rule)?;
    let mut w =
        Writer { p, out: String::new(), rules: BTreeSet::new(), tags: BTreeSet::new(), layers: BTreeSet::new() };
    let _ = writeln!(w.out, "rule {}", info.name);
    w.block("body", info.block);
    w.called_rules();
    let mut tags: Vec<u32> = w.tags.iter().copied().collect();
    tags.sort_by(|a, b| w.tag_name(*a).cmp(w.tag_name(*b)));
    for t in tags {
        w.out.push_str(&tag_content(p, t as usize).unwrap_or_default());
    }
    Some(w.out)
}

/// The canonical declaration of tag `tag`: name, entity and key, type, provider, cache time.
pub fn tag_content(p: &Program, tag: usize) -> Option<String> {
    let t = p.tags.get(tag)?;
    let w = Writer { p, out: String::new(), rules: BTreeSet::new(), tags: BTreeSet::new(), layers: BTreeSet::new() };
    let owner = match t.entity.and_then(|e| p.entities.get(e as usize)) {
        Some(e) => format!("{} key {}", e.name, e.key),
        None => "passthrough".into(),
    };
    // ` sensitive` only when declared, so the fingerprints of existing tags stay the same.
    let mut out = format!(
        "tag {} {owner} {} from {:?} cache {:?}{}\n",
        t.name,
        w.ty(t.ty),
        t.provider.as_deref().unwrap_or(""),
        t.cache_seconds,
        if t.sensitive { " sensitive" } else { "" }
    );
    // A window tag's value is its definition: the event, aggregate, field, filter, window.
    if let Some(win) = p.outreach.windows.iter().find(|win| win.tag as usize == tag) {
        let ev = p.outreach.events.get(win.event as usize);
        let field = win.field.and_then(|f| ev?.fields.get(f as usize)).map_or("", |f| f.name.as_str());
        let _ = writeln!(
            out,
            "= {}({}.{field}) where {:?} within {}",
            win.agg.as_str(),
            ev.map_or("?", |e| e.name.as_str()),
            win.filter,
            win.within_seconds
        );
        if let Some(ev) = ev {
            out.push_str(&event_content(p, ev));
        }
    }
    Some(out)
}

/// An event declaration: what its lines must carry and how late they may come.
fn event_content(p: &Program, ev: &EventInfo) -> String {
    let w = Writer { p, out: String::new(), rules: BTreeSet::new(), tags: BTreeSet::new(), layers: BTreeSet::new() };
    let entity = p.entities.get(ev.entity as usize).map_or("?", |e| e.key.as_str());
    let fields: Vec<String> = ev.fields.iter().map(|f| format!("{}: {}", f.name, w.ty(f.ty))).collect();
    format!("event {} by {entity} late {} {{ {} }}\n", ev.name, ev.late_seconds, fields.join(", "))
}

struct Writer<'p> {
    p: &'p Program,
    out: String,
    rules: BTreeSet<u32>,
    tags: BTreeSet<u32>,
    layers: BTreeSet<u32>,
}

impl Writer<'_> {
    /// Appends every rule the code so far calls, transitively, each once, in name order
    /// (not index order: indexes move when unrelated rules are added).
    fn called_rules(&mut self) {
        let mut bodies = std::collections::BTreeMap::new();
        let mut done = BTreeSet::new();
        while let Some(r) = self.rules.iter().copied().find(|r| !done.contains(r)) {
            done.insert(r);
            if let Some(rule) = self.p.rules.get(r as usize) {
                let outer = std::mem::take(&mut self.out);
                self.block(&format!("rule {}", rule.name), rule.block);
                bodies.insert(rule.name.clone(), std::mem::replace(&mut self.out, outer));
            }
        }
        for body in bodies.values() {
            self.out.push_str(body);
        }
    }

    fn tag_name(&self, t: u32) -> &str {
        self.p.tags.get(t as usize).map_or("?", |t| t.name.as_str())
    }

    fn ty(&self, ty: Ty) -> String {
        self.p.type_name(ty, ",")
    }

    fn unit(&mut self, u: Unit) -> String {
        match u {
            Unit::Key(e) => format!("key {}", self.p.entities.get(e as usize).map_or("?", |e| e.key.as_str())),
            Unit::Tag(t) => {
                self.tags.insert(t);
                format!("tag {}", self.tag_name(t))
            }
        }
    }

    fn member(&self, enum_type: Option<u32>, m: u32) -> String {
        enum_type
            .and_then(|t| self.p.enums.get(t as usize))
            .and_then(|members| members.get(m as usize))
            .map_or_else(|| format!("#{m}"), |s| format!("{s:?}"))
    }

    fn konst(&self, k: u32) -> String {
        match self.p.consts.get(k as usize) {
            // Enum constants are member indexes; the instruction's context names the enum,
            // and the tag declarations (with their members) are part of the content too.
            Some(c) => format!("{c:?}"),
            None => "?".into(),
        }
    }

    fn set(&self, s: u32) -> String {
        match self.p.sets.get(s as usize) {
            Some(set) => {
                let enums: Vec<String> = set.enums.iter().map(|&e| self.member(set.enum_type, e)).collect();
                format!("ints {:?} floats {:?} texts {:?} enums [{}]", set.ints, set.floats, set.texts, enums.join(","))
            }
            None => "?".into(),
        }
    }

    fn slot(&mut self, s: u16) -> String {
        self.tags.insert(u32::from(s));
        self.tag_name(u32::from(s)).to_string()
    }

    fn block(&mut self, what: &str, b: Block) {
        let _ = writeln!(self.out, "{what}:");
        let code = self.p.code.get(b.start as usize..b.end as usize).unwrap_or(&[]);
        for &i in code {
            let text = self.instr(i, b.start);
            let _ = writeln!(self.out, "  {text}");
        }
    }

    fn instr(&mut self, i: Instr, base: u32) -> String {
        let rel = |t: u32| t.wrapping_sub(base);
        match i {
            Instr::LoadTag(s) => format!("LoadTag {}", self.slot(s)),
            Instr::PushConst(k) => format!("PushConst {}", self.konst(k)),
            Instr::CmpTagConst { op, slot, konst } => {
                format!("CmpTagConst {} {} {}", self.slot(slot), op.as_str(), self.konst(konst))
            }
            Instr::CmpTagInt { op, slot, value } => format!("CmpTagInt {} {} {value}", self.slot(slot), op.as_str()),
            Instr::CmpTagEnum { op, slot, member } => {
                format!("CmpTagEnum {} {} #{member}", self.slot(slot), op.as_str())
            }
            Instr::CmpTagText { op, slot, konst } => {
                format!("CmpTagText {} {} {}", self.slot(slot), op.as_str(), self.konst(konst))
            }
            Instr::CmpTagFloat { op, slot, konst } => {
                format!("CmpTagFloat {} {} {}", self.slot(slot), op.as_str(), self.konst(konst))
            }
            Instr::InSet { set, negated } => format!("InSet {negated} {}", self.set(set)),
            Instr::Matches(r) => format!("Matches {:?}", self.p.regex_sources.get(r as usize).map_or("?", |s| s)),
            Instr::ContainsAny(s) => format!("ContainsAny {}", self.set(s)),
            Instr::ContainsAll(s) => format!("ContainsAll {}", self.set(s)),
            Instr::Within(k) => format!("Within {}", self.konst(k)),
            Instr::OlderThan(k) => format!("OlderThan {}", self.konst(k)),
            Instr::AndJump(t) => format!("AndJump +{}", rel(t)),
            Instr::OrJump(t) => format!("OrJump +{}", rel(t)),
            Instr::AndCheck(t) => format!("AndCheck +{}", rel(t)),
            Instr::OrCheck(t) => format!("OrCheck +{}", rel(t)),
            Instr::CallRule(r) => {
                self.rules.insert(r);
                format!("CallRule {}", self.p.rules.get(r as usize).map_or("?", |r| r.name.as_str()))
            }
            // Everything else carries no index: its debug form is its meaning.
            other => format!("{other:?}"),
        }
    }
}
