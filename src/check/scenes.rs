//! Layers, scenes, instances, strategies, experiments and decisions.
//!
//! Owns: everything about *where* decisions are made — which request data a scene
//! provides (keys, passes) and whether its strategies only use that; decision shapes;
//! experiment percentages and layer ranges; unreachable strategies. Expression typing
//! itself is `expr.rs`'s.
//!
//! A scene is always returned, with failed parts replaced by inert placeholders, so tests
//! that name its instances and strategies do not report errors that are only echoes.
//! Placeholders never reach the compiler: any error stops the deck from being built.

use std::collections::HashMap;

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind};

use super::typed::*;
use super::{Checker, Uses};

use crate::limits::BUCKETS;

/// What request data a scene provides.
pub(super) struct SceneCtx<'s> {
    name: &'s str,
    keys: Vec<EntityId>,
    passes: Vec<TagId>,
    /// `on EVENT` (outreach).
    on: Option<EventId>,
    /// Whether the scene has an `on` at all (the event may be unknown, already reported).
    on_written: bool,
}

fn percent_text(hundredths: u32) -> String {
    if hundredths.is_multiple_of(100) {
        format!("{}%", hundredths / 100)
    } else {
        format!("{}.{:02}%", hundredths / 100, hundredths % 100).replace("0%", "%")
    }
}

impl<'a> Checker<'a> {
    pub(super) fn layer(&mut self, l: &'a ast::LayerDecl<'a>) {
        if let Some(&prev) = self.layer_by_name.get(l.name.name) {
            let prev = self.layers[prev as usize].span;
            return self.duplicate("layer", l.name.name, l.name.span, prev);
        }
        let mut uses = Uses::default();
        self.enter_item("unit", format!("layer {}", l.name.name), l.unit.span());
        let unit = self.unit(&l.unit, &mut uses);
        self.leave_item();
        let Some(unit) = unit else { return };
        self.layer_by_name.insert(l.name.name, self.layers.len() as LayerId);
        self.layers.push(Layer { name: l.name.name.into(), unit, span: l.span });
    }

    /// Resolves `by KEY` or `by TAG`: an entity key, or a text/int tag.
    fn unit(&mut self, u: &ast::Unit<'a>, uses: &mut Uses) -> Option<Unit> {
        match *u {
            ast::Unit::Key(key) => match self.entity_by_key.get(key.name) {
                Some(&e) => Some(Unit::Key(e)),
                None => {
                    let suggestion = did_you_mean(key.name, self.entity_by_key.keys().copied()).map(str::to_owned);
                    let mut d = Diagnostic::error(Code::UnknownKey, key.span, format!("unknown key `{}`", key.name))
                        .with_note(
                            "an A/B unit is an entity key (like `uid`) or a text/int tag (like `user.device_id`)",
                        )
                        .with_suggestion(suggestion.as_deref());
                    if self.rule_by_name.contains_key(key.name) {
                        d = d.with_note(format!("`{}` is a rule; units identify who is bucketed", key.name));
                    }
                    self.error(d);
                    None
                }
            },
            ast::Unit::Tag(path) => {
                let expr = ast::Expr { kind: ExprKind::Tag(path), span: path.span };
                let value = self.value(&expr, None, uses)?;
                if matches!(value.ty, Type::Text | Type::Int) {
                    let ValueKind::Tag(id) = value.kind else { unreachable!("a tag path types as a tag") };
                    return Some(Unit::Tag(id));
                }
                let ty = self.type_text(&value.ty);
                self.error(
                    Diagnostic::error(
                        Code::BadUnit,
                        path.span,
                        format!("`{}` cannot be an A/B unit: it is `{ty}`", path.to_dotted()),
                    )
                    .with_note("units are hashed as text: use an entity key or a `text` or `int` tag"),
                );
                None
            }
        }
    }

    fn unit_name(&self, unit: Unit) -> String {
        match unit {
            Unit::Key(e) => self.entities[e as usize].key.clone(),
            Unit::Tag(t) => self.tags[t as usize].name.clone(),
        }
    }

    pub(super) fn scene(&mut self, s: &'a ast::SceneDecl<'a>) -> Scene {
        let on = self.scene_on(s);
        let fanout = self.scene_fanout(s, on);
        let mut ctx =
            SceneCtx { name: s.name.name, keys: Vec::new(), passes: Vec::new(), on, on_written: s.on.is_some() };
        let mut key_spans: HashMap<&str, Span> = HashMap::new();
        for key in s.keys {
            if let Some(prev) = key_spans.insert(key.name, key.span) {
                self.repeated("key", key.name, key.span, prev);
                continue;
            }
            match self.entity_by_key.get(key.name) {
                Some(&e) => ctx.keys.push(e),
                None => {
                    let suggestion = did_you_mean(key.name, self.entity_by_key.keys().copied()).map(str::to_owned);
                    self.error(
                        Diagnostic::error(Code::UnknownKey, key.span, format!("unknown key `{}`", key.name))
                            .with_note("keys are declared by entities, like `entity user key uid`")
                            .with_suggestion(suggestion.as_deref()),
                    );
                }
            }
        }
        let mut pass_spans: HashMap<String, Span> = HashMap::new();
        for path in s.passes {
            if let Some(prev) = pass_spans.insert(path.to_dotted(), path.span) {
                self.repeated("pass-through tag", &path.to_dotted(), path.span, prev);
                continue;
            }
            let Some(tag) = self.lookup_tag(path) else { continue };
            if self.tags[tag as usize].owner != TagOwner::Passthrough {
                let name = self.tags[tag as usize].name.clone();
                self.error(
                    Diagnostic::error(Code::NotPassthrough, path.span, format!("`{name}` is not a pass-through tag"))
                        .with_note(
                            "`passes` lists `ctx.*` tags that callers supply; other tags are loaded from providers",
                        )
                        .with_help(format!(
                            "remove `{name}` from `passes`; the scene needs its entity's key in `keys` instead"
                        )),
                );
                continue;
            }
            ctx.passes.push(tag);
        }
        if let Some(event) = on {
            // The event's fields come with it, as pass-through tags.
            ctx.passes.extend(self.outreach.events[event as usize].fields.iter().map(|f| f.tag));
            let entity = self.outreach.events[event as usize].entity;
            if !ctx.keys.contains(&entity) {
                ctx.keys.push(entity);
            }
        }
        if let Some(f) = &fanout {
            // Decided for each matching unit of the fan-out's entity: the scene takes its key.
            if !ctx.keys.contains(&f.entity) {
                ctx.keys.push(f.entity);
            }
        }
        self.scene_event = on;
        let mut instance_names: HashMap<&str, Span> = HashMap::new();
        let mut instances = Vec::new();
        for inst in s.instances {
            if let Some(prev) = instance_names.insert(inst.name.name, inst.name.span) {
                self.duplicate("instance", inst.name.name, inst.name.span, prev);
                continue;
            }
            instances.push(self.instance(inst, &ctx));
        }
        self.scene_event = None;
        Scene { name: s.name.name.into(), keys: ctx.keys, passes: ctx.passes, instances, on, fanout, span: s.span }
    }

    fn instance(&mut self, inst: &'a ast::InstanceDecl<'a>, ctx: &SceneCtx) -> Instance {
        if inst.fields.len() > crate::limits::MAX_FIELDS {
            self.error(super::too_many(
                inst.name.span,
                "fields in a decision type",
                crate::limits::MAX_FIELDS,
                "group related values into fewer fields",
            ));
        }
        if inst.strategies.len() > crate::limits::MAX_STRATEGIES {
            self.error(super::too_many(
                inst.name.span,
                "strategies in an instance",
                crate::limits::MAX_STRATEGIES,
                "split the instance, or fold similar strategies into rules",
            ));
        }
        let mut fields: Vec<Field> = Vec::new();
        if inst.reach.is_some() || ctx.on.is_some() {
            let head = self.reach_fields(inst, ctx.on, ctx.on_written, ctx.name);
            if inst.reach.is_some() {
                fields = head;
            }
        }
        let mut field_spans: HashMap<&str, Span> = HashMap::new();
        for f in inst.fields {
            if let Some(prev) = field_spans.insert(f.name.name, f.name.span) {
                self.duplicate("field", f.name.name, f.name.span, prev);
                continue;
            }
            if let Some(ty) = self.type_expr(f.ty, false) {
                fields.push(Field { name: f.name.name.into(), ty });
            }
        }
        let mut strategies = Vec::new();
        let mut strategy_spans: HashMap<&str, Span> = HashMap::new();
        for st in inst.strategies {
            if let Some(prev) = strategy_spans.insert(st.name.name, st.name.span) {
                self.duplicate("strategy", st.name.name, st.name.span, prev);
                continue;
            }
            if st.name.name == "default" {
                self.error(
                    Diagnostic::error(Code::Duplicate, st.name.span, "a strategy cannot be named `default`")
                        .with_note("`default` names the instance's fallback decision in tests and traces"),
                );
                continue;
            }
            self.place = format!("{}.{}.{}", ctx.name, inst.name.name, st.name.name);
            strategies.push(self.strategy(st, &fields, ctx));
        }
        self.place = format!("{}.{}.default", ctx.name, inst.name.name);
        let default = inst.default.as_ref().map(|d| {
            self.enter_item("decision", self.place.clone(), d.decision.span);
            let decision = self.decision(d.decision, &fields, Some(ctx));
            self.leave_item();
            decision
        });
        self.check_reachability(inst, &strategies, fields.len());
        let reach = inst.reach.is_some();
        Instance { name: inst.name.name.into(), fields, strategies, default, reach, span: inst.span }
    }

    fn strategy(&mut self, st: &'a ast::StrategyDecl<'a>, fields: &[Field], ctx: &SceneCtx) -> Strategy {
        let when = st.when.map(|w| {
            let mut uses = Uses::default();
            self.enter_item("when", self.place.clone(), w.span);
            let cond = self.cond(w, &mut uses);
            self.leave_item();
            self.check_scene_uses(&uses, ctx);
            cond.unwrap_or(Cond { kind: CondKind::Const(false), span: w.span })
        });
        let outcome = match &st.body {
            ast::StrategyBody::Decision(d) => {
                self.enter_item("decision", self.place.clone(), d.span);
                let decision = self.decision(d, fields, Some(ctx));
                self.leave_item();
                Outcome::Decision(decision)
            }
            ast::StrategyBody::Experiment(x) => Outcome::Experiment(self.experiment(x, fields, ctx)),
        };
        Strategy { name: st.name.name.into(), when, outcome, span: st.span }
    }

    /// A decision against the instance's decision type. `ctx` is `None` for the expected
    /// decisions of tests, which are literals and read no request data.
    pub(super) fn decision(&mut self, d: &ast::Decision<'a>, fields: &[Field], ctx: Option<&SceneCtx>) -> Decision {
        let head = match self.reach_head(d, fields, ctx.is_none()) {
            Ok(head) => head,
            Err(()) => return Decision { values: Vec::new(), span: d.span },
        };
        let Some(head) = head else { return self.record_decision(d, fields, ctx) };
        let payload = &fields[REACH_FIELDS.len()..];
        let rest = if matches!(d.kind, ast::DecisionKind::Control) {
            self.control_payload(payload, d.span)
        } else {
            let record = self.record_decision(d, payload, ctx);
            if record.values.len() != payload.len() {
                return Decision { values: Vec::new(), span: d.span };
            }
            record.values
        };
        Decision { values: head.into_iter().chain(rest).collect(), span: d.span }
    }

    /// A record `{ … }` against exactly `fields`; no values when it does not match them.
    fn record_decision(&mut self, d: &ast::Decision<'a>, fields: &[Field], ctx: Option<&SceneCtx>) -> Decision {
        let mut values: Vec<Option<Value>> = fields.iter().map(|_| None).collect();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut complete = true;
        for init in d.fields {
            if let Some(prev) = seen.insert(init.name.name, init.name.span) {
                self.repeated("field", init.name.name, init.name.span, prev);
                continue;
            }
            let Some(index) = fields.iter().position(|f| f.name == init.name.name) else {
                let suggestion =
                    did_you_mean(init.name.name, fields.iter().map(|f| f.name.as_str())).map(str::to_owned);
                let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                self.error(
                    Diagnostic::error(
                        Code::ExtraField,
                        init.name.span,
                        format!("the decision type has no field `{}`", init.name.name),
                    )
                    .with_note(format!("the decision type's fields are: {}", names.join(", ")))
                    .with_suggestion(suggestion.as_deref()),
                );
                complete = false;
                continue;
            };
            let field = &fields[index];
            let mut uses = Uses::default();
            let value = self.value(init.value, Some(&field.ty), &mut uses);
            if let Some(ctx) = ctx {
                self.check_scene_uses(&uses, ctx);
            }
            let Some(mut value) = value else {
                complete = false;
                continue;
            };
            if self.expect_assignable(&value, &field.ty, &format!("field `{}`", field.name)).is_none() {
                complete = false;
                continue;
            }
            if let (ValueKind::Const(Const::Int(i)), Type::Float) = (&value.kind, &field.ty) {
                value = Value { kind: ValueKind::Const(Const::Float(*i as f64)), ty: Type::Float, span: value.span };
            }
            values[index] = Some(value);
        }
        let missing: Vec<&str> = fields
            .iter()
            .zip(&values)
            .filter(|(f, v)| v.is_none() && !seen.contains_key(f.name.as_str()))
            .map(|(f, _)| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
            let example = missing.iter().map(|m| format!("`{m}: …`")).collect::<Vec<_>>().join(", ");
            self.error(
                Diagnostic::error(Code::MissingField, d.span, format!("decision is missing {list}"))
                    .with_note("every decision of an instance has exactly the fields of its decision type")
                    .with_help(format!("add {example}")),
            );
            complete = false;
        }
        let values = if complete { values.into_iter().map(|v| v.expect("complete")).collect() } else { Vec::new() };
        Decision { values, span: d.span }
    }

    fn experiment(&mut self, x: &'a ast::ExperimentDecl<'a>, fields: &[Field], ctx: &SceneCtx) -> Experiment {
        if let Some(prev) = self.experiment_names.insert(x.name.name.to_string(), x.name.span) {
            self.experiment_names.insert(x.name.name.to_string(), prev);
            self.duplicate("experiment", x.name.name, x.name.span, prev);
        }
        let mut uses = Uses::default();
        self.enter_item("unit", self.place.clone(), x.unit.span());
        let unit = self.unit(&x.unit, &mut uses);
        self.leave_item();
        self.check_scene_uses(&uses, ctx);
        if let Some(Unit::Key(e)) = unit {
            if !ctx.keys.contains(&e) {
                let key = self.entities[e as usize].key.clone();
                self.error(
                    Diagnostic::error(
                        Code::KeyNotTaken,
                        x.unit.span(),
                        format!("scene `{}` does not take key `{key}`", ctx.name),
                    )
                    .with_label("the experiment's unit")
                    .with_help(format!("add `{key}` to the scene's `keys`")),
                );
            }
        }
        if x.groups.len() > crate::limits::MAX_GROUPS {
            self.error(super::too_many(
                x.name.span,
                "groups in an experiment",
                crate::limits::MAX_GROUPS,
                "use fewer, larger groups",
            ));
        }
        let mut groups = Vec::new();
        let mut group_spans: HashMap<&str, Span> = HashMap::new();
        let mut total = 0u32;
        for g in x.groups {
            if let Some(prev) = group_spans.insert(g.name.name, g.name.span) {
                self.error(
                    Diagnostic::error(
                        Code::DuplicateGroup,
                        g.name.span,
                        format!("experiment `{}` has two groups named `{}`", x.name.name, g.name.name),
                    )
                    .with_secondary(prev, "first defined here")
                    .with_help("group names must be unique within an experiment"),
                );
                continue;
            }
            if g.percent.hundredths == 0 {
                self.error(
                    Diagnostic::warning(
                        Code::EmptyGroup,
                        g.percent.span,
                        format!("group `{}` of experiment `{}` is 0%: no unit is ever in it", g.name.name, x.name.name),
                    )
                    .with_label("0% of the units")
                    .with_help("give it a share, or remove it (a holdout is an explicit group with a share)"),
                );
            }
            total += g.percent.hundredths;
            self.enter_item("decision", format!("{}.{}", self.place, g.name.name), g.decision.span);
            let decision = self.decision(g.decision, fields, Some(ctx));
            self.leave_item();
            groups.push(Group { name: g.name.name.into(), buckets: g.percent.hundredths, decision, span: g.span });
        }
        if total > BUCKETS {
            let parts: Vec<String> =
                x.groups.iter().map(|g| format!("{} {}", g.name.name, percent_text(g.percent.hundredths))).collect();
            self.error(
                Diagnostic::error(
                    Code::PercentOver100,
                    x.name.span,
                    format!("the groups of experiment `{}` add up to {}", x.name.name, percent_text(total)),
                )
                .with_note(format!("groups: {}", parts.join(", ")))
                .with_help("group percentages may add up to at most 100%; units left over are not in the experiment"),
            );
        }
        let layer = x.layer.as_ref().and_then(|claim| self.layer_claim(claim, x, unit));
        Experiment {
            name: x.name.name.into(),
            unit: unit.unwrap_or(Unit::Key(0)),
            salt: x.salt.map_or_else(|| x.name.name.to_string(), |s| s.value.to_string()),
            layer,
            groups,
            span: x.span,
        }
    }

    fn layer_claim(
        &mut self,
        claim: &ast::LayerClaim<'a>,
        x: &ast::ExperimentDecl<'a>,
        unit: Option<Unit>,
    ) -> Option<LayerClaim> {
        let Some(&layer) = self.layer_by_name.get(claim.layer.name) else {
            let suggestion = did_you_mean(claim.layer.name, self.layer_by_name.keys().copied()).map(str::to_owned);
            self.error(
                Diagnostic::error(
                    Code::UnknownLayer,
                    claim.layer.span,
                    format!("unknown layer `{}`", claim.layer.name),
                )
                .with_note("declare it like `layer checkout by uid`")
                .with_suggestion(suggestion.as_deref()),
            );
            return None;
        };
        let (start, end) = (claim.from.hundredths, claim.to.hundredths);
        if start >= end {
            self.error(
                Diagnostic::error(
                    Code::BadLayerRange,
                    claim.from.span.to(claim.to.span),
                    format!("layer range {}..{} is empty", percent_text(start), percent_text(end)),
                )
                .with_help("write the range low to high, like `0%..50%`; it covers [low, high)"),
            );
            return None;
        }
        let layer_unit = self.layers[layer as usize].unit;
        if let Some(unit) = unit.filter(|&u| u != layer_unit) {
            let (mine, theirs) = (self.unit_name(unit), self.unit_name(layer_unit));
            self.error(
                Diagnostic::error(
                    Code::LayerUnitMismatch,
                    x.unit.span(),
                    format!(
                        "experiment `{}` is by `{mine}` but layer `{}` is by `{theirs}`",
                        x.name.name, claim.layer.name
                    ),
                )
                .with_secondary(self.layers[layer as usize].span, "the layer is declared here")
                .with_note("experiments of one layer split the same units, or they could not exclude each other")
                .with_help(format!("bucket this experiment `by {theirs}`")),
            );
            return None;
        }
        let claim_value = LayerClaim { layer, start, end };
        self.claims.push((claim_value, claim.span, x.name.name.to_string()));
        Some(claim_value)
    }

    pub(super) fn check_layer_overlaps(&mut self) {
        let mut claims = std::mem::take(&mut self.claims);
        claims.sort_by_key(|(c, _, _)| (c.layer, c.start, c.end));
        // Sorted by start, a claim overlaps an earlier one exactly when it starts before the
        // furthest end seen so far in its layer.
        let mut reach: Option<usize> = None;
        for i in 0..claims.len() {
            let (claim, span, name) = &claims[i];
            let prev = reach.filter(|&r| claims[r].0.layer == claim.layer);
            match prev {
                Some(r) if claim.start < claims[r].0.end => {
                    let (other, other_span, other_name) = &claims[r];
                    let layer = self.layers[claim.layer as usize].name.clone();
                    self.error(
                        Diagnostic::error(
                            Code::LayerOverlap,
                            *span,
                            format!(
                                "experiments `{other_name}` and `{name}` claim overlapping ranges of layer `{layer}`"
                            ),
                        )
                        .with_secondary(
                            *other_span,
                            format!("`{other_name}` claims {}..{}", percent_text(other.start), percent_text(other.end)),
                        )
                        .with_note(
                            "experiments of one layer are mutually exclusive: their ranges may touch but not overlap",
                        )
                        .with_help(format!("start this range at {} or later", percent_text(other.end))),
                    );
                    if claim.end > other.end {
                        reach = Some(i);
                    }
                }
                _ => reach = Some(i),
            }
        }
    }

    /// Whether a strategy decides for every request that reaches it: `when` always holds and
    /// its decision cannot be unknown (constants only; an experiment by a key covering 100%).
    fn always_decides(strategy: &Strategy, field_count: usize) -> bool {
        let always = match &strategy.when {
            None => true,
            Some(c) => matches!(c.kind, CondKind::Const(true)),
        };
        // A decision that failed to check has no values; one that checked has one per field.
        let constant = |d: &Decision| d.values.len() == field_count && d.values.iter().all(|v| v.as_const().is_some());
        always
            && match &strategy.outcome {
                Outcome::Decision(d) => constant(d),
                Outcome::Experiment(x) => {
                    matches!(x.unit, Unit::Key(_))
                        && x.layer.is_none()
                        && x.groups.iter().map(|g| g.buckets).sum::<u32>() == BUCKETS
                        && x.groups.iter().all(|g| constant(&g.decision))
                }
            }
    }

    fn check_reachability(&mut self, inst: &ast::InstanceDecl<'a>, strategies: &[Strategy], field_count: usize) {
        let Some(first) = strategies.iter().position(|s| Self::always_decides(s, field_count)) else { return };
        let decider = &strategies[first];
        for later in &strategies[first + 1..] {
            self.error(
                Diagnostic::error(Code::Unreachable, later.span, format!("strategy `{}` can never decide", later.name))
                    .with_secondary(decider.span, format!("`{}` always decides first", decider.name))
                    .with_help("move it above, or give the earlier strategy a `when`"),
            );
        }
        if let Some(default) = &inst.default {
            self.error(
                Diagnostic::error(Code::Unreachable, default.span, "the default can never decide")
                    .with_secondary(decider.span, format!("`{}` always decides first", decider.name))
                    .with_help("remove the default, or give the strategy a `when`"),
            );
        }
    }

    /// Checks that every tag an expression reads (directly or through rules) can be read in
    /// this scene: its entity's key is among `keys`, or, for pass-through tags, it is passed.
    fn check_scene_uses(&mut self, uses: &Uses, ctx: &SceneCtx) {
        for read in &uses.tags {
            self.require_tag(*read, read.span, None, ctx);
        }
        for &(rule, span) in &uses.rules {
            let Some(reads) = self.rules[rule as usize].as_ref().map(|r| r.reads.clone()) else { continue };
            let mut reported = Vec::new();
            for read in reads {
                // One error per missing key or pass for each use, however many tags need it.
                let need = match self.tags[read.tag as usize].owner {
                    TagOwner::Entity(e) => Some(Err(e)),
                    TagOwner::Passthrough => Some(Ok(read.tag)),
                };
                if reported.contains(&need) {
                    continue;
                }
                if self.require_tag(read, span, Some(rule), ctx) {
                    reported.push(need);
                }
            }
        }
    }

    /// Reports (and returns true) when `read` cannot be satisfied in `ctx`. `at` is where the
    /// use is (the tag itself, or the rule that reads it).
    fn require_tag(&mut self, read: TagRead, at: Span, via: Option<RuleId>, ctx: &SceneCtx) -> bool {
        let tag = &self.tags[read.tag as usize];
        let via_text = |this: &Self| match via {
            Some(rule) => format!("rule `{}` reads `{}`", this.rule_decls[rule as usize].name.name, tag.name),
            None => format!("`{}`", tag.name),
        };
        let d = match tag.owner {
            TagOwner::Entity(e) if !ctx.keys.contains(&e) => {
                let key = &self.entities[e as usize].key;
                Diagnostic::error(
                    Code::KeyNotTaken,
                    at,
                    format!("{} here, but scene `{}` does not take key `{key}`", via_text(self), ctx.name),
                )
                .with_note(format!("`{}` is looked up by `{key}`", tag.name))
                .with_help(format!("add `{key}` to the scene's `keys`"))
            }
            TagOwner::Passthrough if !ctx.passes.contains(&read.tag) => Diagnostic::error(
                Code::NotPassed,
                at,
                format!("{} here, but scene `{}` does not pass it", via_text(self), ctx.name),
            )
            .with_note("pass-through tags come with the request; a scene lists the ones its callers supply")
            .with_help(format!("add `passes {}` to the scene", tag.name)),
            _ => return false,
        };
        let d = if via.is_some() { d.with_secondary(read.span, "read here") } else { d };
        self.error(d);
        true
    }
}
