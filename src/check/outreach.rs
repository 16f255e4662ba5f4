//! Outreach declarations: events, window tags, channels, actions, and the parts of scenes
//! and decisions that only outreach has (`on EVENT`, `event.FIELD`, `-> reach`, `reach …`,
//! `none`).
//!
//! Owns: resolving and typing those constructs into [`Outreach`] and into the ordinary
//! typed deck, so that the compiler and the VM need nothing new: an event's fields become
//! pass-through tags `event.EVENT.FIELD` that a scene `on` the event passes, a window tag is
//! an entity tag with no provider (the outreach runtime supplies its value), and a reach
//! decision is a record whose first fields are [`REACH_FIELDS`]. Must not: evaluate windows
//! or filters (the runtime's job).

use std::collections::HashMap;

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::limits::MAX_WINDOW_SECONDS;
use crate::ops::CmpOp;
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind, PredOp};

use super::typed::*;
use super::{Checker, Uses};

impl<'a> Checker<'a> {
    /// Events, window tags, channels and actions, after the plain tags (window tags may be
    /// read by rules, zone tags are plain tags).
    pub(super) fn outreach_items(&mut self, items: &[&'a ast::Item<'a>]) {
        for item in items {
            if let ast::Item::Event(e) = item {
                self.event(e);
            }
        }
        for item in items {
            if let ast::Item::WindowTag(w) = item {
                self.window_tag(w);
            }
        }
        for item in items {
            if let ast::Item::Channel(c) = item {
                self.channel(c);
            }
        }
        for item in items {
            if let ast::Item::Action(a) = item {
                self.action(a);
            }
        }
    }

    fn window_length(&mut self, what: &str, (secs, span): (i64, Span), code: Code) -> Option<i64> {
        if secs <= 0 || secs > MAX_WINDOW_SECONDS {
            self.error(
                Diagnostic::error(
                    code,
                    span,
                    format!("{what} must be between 1s and {}", crate::time::duration_text(MAX_WINDOW_SECONDS)),
                )
                .with_note(format!("the limit is {} days", MAX_WINDOW_SECONDS / 86_400)),
            );
            return None;
        }
        Some(secs)
    }

    fn event(&mut self, e: &'a ast::EventDecl<'a>) {
        if let Some(&prev) = self.event_by_name.get(e.name.name) {
            let prev = self.outreach.events[prev as usize].span;
            return self.duplicate("event", e.name.name, e.name.span, prev);
        }
        let Some(&entity) = self.entity_by_key.get(e.key.name) else {
            let suggestion = did_you_mean(e.key.name, self.entity_by_key.keys().copied()).map(str::to_owned);
            self.error(
                Diagnostic::error(Code::UnknownKey, e.key.span, format!("unknown key `{}`", e.key.name))
                    .with_note("an event is keyed by an entity key, like `event browse by uid { … }`")
                    .with_suggestion(suggestion.as_deref()),
            );
            return;
        };
        let late_seconds = match e.late {
            None => 0,
            // Reported; the event is kept (with no lateness) so its uses do not echo errors.
            Some(late) => self.window_length("an event's lateness", late, Code::InvalidReachDecl).unwrap_or(0),
        };
        let mut fields = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for f in e.fields {
            if let Some(prev) = seen.insert(f.name.name, f.name.span) {
                self.duplicate("event field", f.name.name, f.name.span, prev);
                ok = false;
                continue;
            }
            let Some(ty) = self.type_expr(f.ty, false) else {
                ok = false;
                continue;
            };
            fields.push((f.name.name, ty, f.name.span));
        }
        if !ok {
            return;
        }
        let id = self.outreach.events.len() as EventId;
        let mut typed = Vec::new();
        for (name, ty, span) in fields {
            // The field's pass-through tag. Two dots: no declared tag can have this name.
            let tag = self.tags.len() as TagId;
            self.tags.push(Tag {
                name: format!("event.{}.{name}", e.name.name),
                owner: TagOwner::Passthrough,
                ty: ty.clone(),
                provider: None,
                cache_seconds: None,
                status: ast::Status::Online,
                sensitive: false,
                span,
            });
            typed.push(EventField { name: name.into(), ty, tag });
        }
        self.event_by_name.insert(e.name.name, id);
        self.outreach.events.push(Event {
            name: e.name.name.into(),
            entity,
            late_seconds,
            fields: typed,
            span: e.span,
        });
    }

    fn lookup_event(&mut self, name: &ast::Ident<'a>) -> Option<EventId> {
        if let Some(&id) = self.event_by_name.get(name.name) {
            return Some(id);
        }
        let suggestion = did_you_mean(name.name, self.event_by_name.keys().copied()).map(str::to_owned);
        self.error(
            Diagnostic::error(Code::UnknownEvent, name.span, format!("unknown event `{}`", name.name))
                .with_note("declare it like `event browse by uid { sku: text }`")
                .with_suggestion(suggestion.as_deref()),
        );
        None
    }

    fn event_field(&mut self, event: EventId, name: &str, span: Span) -> Option<u32> {
        let ev = &self.outreach.events[event as usize];
        if let Some(i) = ev.fields.iter().position(|f| f.name == name) {
            return Some(i as u32);
        }
        let names: Vec<&str> = ev.fields.iter().map(|f| f.name.as_str()).collect();
        let d = Diagnostic::error(Code::UnknownEventField, span, format!("event `{}` has no field `{name}`", ev.name))
            .with_note(if names.is_empty() {
                format!("event `{}` declares no fields", ev.name)
            } else {
                format!("its fields are: {}", names.join(", "))
            })
            .with_suggestion(did_you_mean(name, names.iter().copied()));
        self.error(d);
        None
    }

    /// `event.FIELD` in a scene `on` an event: the field's pass-through tag.
    pub(super) fn event_tag(&mut self, path: &ast::Path) -> Option<TagId> {
        let Some(event) = self.scene_event else {
            self.error(
                Diagnostic::error(
                    Code::EventOutsideScene,
                    path.span,
                    format!("`{}` is only readable in a scene `on` an event", path.to_dotted()),
                )
                .with_note("`event.FIELD` is a field of the event that triggered the scene")
                .with_help(
                    "read it in a `when` or decision of a scene like `scene s on browse { … }`; a window's `where` names fields bare",
                ),
            );
            return None;
        };
        let field = self.event_field(event, path.second.name, path.second.span)?;
        Some(self.outreach.events[event as usize].fields[field as usize].tag)
    }

    fn window_tag(&mut self, w: &'a ast::WindowTagDecl<'a>) {
        let name = w.path.to_dotted();
        if let Some(&prev) = self.tag_by_name.get(&name) {
            let prev = self.tags[prev as usize].span;
            return self.duplicate("tag", &name, w.path.span, prev);
        }
        // Uses of a tag whose declaration fails stay quiet.
        self.failed_tags.insert(name.clone());
        let declared = self.type_expr(w.ty, false);
        let (event_name, field_name) = match w.source {
            ast::Unit::Key(event) => (event, None),
            ast::Unit::Tag(path) => (path.first, Some(path.second)),
        };
        let Some(event) = self.lookup_event(&event_name) else { return };
        let entity = self.outreach.events[event as usize].entity;
        let Some(agg) = Aggregate::ALL.iter().find(|(n, _)| *n == w.agg.name).map(|&(_, a)| a) else {
            let names: Vec<&str> = Aggregate::ALL.iter().map(|(n, _)| *n).collect();
            self.error(
                Diagnostic::error(Code::InvalidWindow, w.agg.span, format!("unknown aggregate `{}`", w.agg.name))
                    .with_note(format!("window aggregates are: {}", names.join(", ")))
                    .with_suggestion(did_you_mean(w.agg.name, names.iter().copied())),
            );
            return;
        };
        let field = match (agg, field_name) {
            (Aggregate::Count, None) => None,
            (Aggregate::Count, Some(f)) => {
                self.error(
                    Diagnostic::error(Code::InvalidWindow, f.span, "`count` counts events, not a field")
                        .with_help(format!("write `count({})`", event_name.name)),
                );
                return;
            }
            (_, None) => {
                self.error(
                    Diagnostic::error(
                        Code::InvalidWindow,
                        event_name.span,
                        format!("`{}` needs a field of the event", agg.as_str()),
                    )
                    .with_help(format!("write `{}({}.FIELD)`", agg.as_str(), event_name.name)),
                );
                return;
            }
            (_, Some(f)) => match self.event_field(event, f.name, f.span) {
                Some(i) => Some(i),
                None => return,
            },
        };
        let field_ty = field.map(|i| self.outreach.events[event as usize].fields[i as usize].ty.clone());
        // The aggregate's result type, or why the field's type does not allow it.
        let result = match (agg, &field_ty) {
            (Aggregate::Count, _) => Ok(Type::Int),
            (Aggregate::Sum, Some(t @ (Type::Int | Type::Float))) => Ok(t.clone()),
            (Aggregate::Min | Aggregate::Max, Some(t @ (Type::Int | Type::Float | Type::Time))) => Ok(t.clone()),
            (Aggregate::Last, Some(t)) if !matches!(t, Type::List(_)) => Ok(t.clone()),
            (Aggregate::Distinct, Some(Type::Int | Type::Text | Type::Enum(_) | Type::Bool)) => Ok(Type::Int),
            (_, Some(t)) => Err(t.clone()),
            (_, None) => unreachable!("only count has no field"),
        };
        let result = match result {
            Ok(t) => t,
            Err(t) => {
                let allowed = match agg {
                    Aggregate::Sum => "int and float fields",
                    Aggregate::Min | Aggregate::Max => "int, float and time fields",
                    Aggregate::Last => "scalar fields",
                    _ => "int, text, enum and bool fields",
                };
                let t = self.type_text(&t);
                self.error(
                    Diagnostic::error(
                        Code::InvalidWindow,
                        w.source.span(),
                        format!("`{}` cannot aggregate a `{t}` field", agg.as_str()),
                    )
                    .with_note(format!("`{}` takes {allowed}", agg.as_str())),
                );
                return;
            }
        };
        let filter = w.filter.and_then(|f| self.filter(f, event));
        let within = self.window_length("a window", w.within, Code::InvalidWindow);
        let Some(declared) = declared else { return };
        if declared != result {
            let (d, r) = (self.type_text(&declared), self.type_text(&result));
            self.error(
                Diagnostic::error(
                    Code::InvalidWindow,
                    w.ty.span,
                    format!("tag `{name}` is declared `{d}`, but `{}` gives `{r}`", agg.as_str()),
                )
                .with_help(format!("declare it `{r}`")),
            );
            return;
        }
        if w.path.first.name != self.entities[entity as usize].name {
            let entity_name = self.entities[entity as usize].name.clone();
            self.error(
                Diagnostic::error(
                    Code::InvalidWindow,
                    w.path.first.span,
                    format!(
                        "a window over `{}` events is a tag of `{entity_name}`, not of `{}`",
                        event_name.name, w.path.first.name
                    ),
                )
                .with_note("a window aggregates its unit's own events: its tag belongs to the event's entity")
                .with_help(format!("name it `{entity_name}.{}`", w.path.second.name)),
            );
            return;
        }
        if w.filter.is_some() && filter.is_none() {
            return;
        }
        let Some(within_seconds) = within else { return };
        if self.tags.len() >= crate::limits::MAX_TAGS {
            self.error(super::too_many(w.path.span, "tags", crate::limits::MAX_TAGS, "split the deck"));
            return;
        }
        self.failed_tags.remove(&name);
        let tag = self.tags.len() as TagId;
        self.tag_by_name.insert(name.clone(), tag);
        self.tags.push(Tag {
            name,
            owner: TagOwner::Entity(entity),
            ty: result,
            provider: None,
            cache_seconds: None,
            status: w.status.map_or(ast::Status::Online, |(s, _)| s),
            sensitive: false,
            span: w.path.span,
        });
        self.outreach.windows.push(Window { tag, event, agg, field, filter, within_seconds });
    }

    /// A window's `where`: field comparisons with literals, joined by `and`, `or`, `not`.
    fn filter(&mut self, e: &ast::Expr<'a>, event: EventId) -> Option<Filter> {
        match e.kind {
            ExprKind::And(clauses) | ExprKind::Or(clauses) => {
                let typed: Vec<Option<Filter>> = clauses.iter().map(|c| self.filter(c, event)).collect();
                let typed: Vec<Filter> = typed.into_iter().collect::<Option<_>>()?;
                Some(if matches!(e.kind, ExprKind::And(_)) { Filter::And(typed) } else { Filter::Or(typed) })
            }
            ExprKind::Not(inner) => Some(Filter::Not(Box::new(self.filter(inner, event)?))),
            ExprKind::Predicate { op, subject, args, op_span } => {
                let ExprKind::Name(field_name) = subject.kind else {
                    return self
                        .not_a_filter(subject.span, "the left side must be one of the event's fields, named bare");
                };
                let field = self.event_field(event, field_name, subject.span)?;
                let ty = self.outreach.events[event as usize].fields[field as usize].ty.clone();
                let mut uses = Uses::default();
                let cmp = match op {
                    PredOp::Cmp(op) => Some(op),
                    PredOp::In | PredOp::NotIn => None,
                    other => {
                        return self.not_a_filter(
                            op_span,
                            &format!("`{}` is not allowed in a window's `where`", other.as_str()),
                        )
                    }
                };
                let ordered = matches!(cmp, Some(CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge));
                if ordered && !matches!(ty, Type::Int | Type::Float | Type::Time) {
                    let t = self.type_text(&ty);
                    return self.not_a_filter(op_span, &format!("`{}` does not order `{t}` values", op.as_str()));
                }
                if matches!(ty, Type::List(_)) {
                    return self.not_a_filter(subject.span, "list fields cannot be compared in a `where`");
                }
                let arg = args.first()?;
                let hint = if cmp.is_some() { ty.clone() } else { Type::List(Box::new(ty.clone())) };
                let value = self.value(arg, Some(&hint), &mut uses)?;
                let Some(constant) = value.as_const().cloned() else {
                    return self.not_a_filter(arg.span, "a `where` compares fields with literals only");
                };
                match cmp {
                    Some(op) => {
                        let lhs = Value { kind: ValueKind::Const(Const::Int(0)), ty: ty.clone(), span: subject.span };
                        self.expect_comparable(&lhs, &value)?;
                        Some(Filter::Compare { field, op, value: constant })
                    }
                    None => {
                        let Const::List(set) = constant else {
                            return self.not_a_filter(arg.span, "`in` takes a list literal");
                        };
                        let elem = match &value.ty {
                            Type::List(t) => (**t).clone(),
                            _ => ty.clone(),
                        };
                        if !set.is_empty() && !elem.comparable_with(&ty) {
                            let (l, r) = (self.type_text(&ty), self.type_text(&elem));
                            self.error(
                                Diagnostic::error(
                                    Code::TypeMismatch,
                                    arg.span,
                                    format!("cannot compare `{l}` with `{r}`"),
                                )
                                .with_label(format!("this holds `{r}`")),
                            );
                            return None;
                        }
                        Some(Filter::InSet { field, set, negated: op == PredOp::NotIn })
                    }
                }
            }
            _ => self.not_a_filter(e.span, "a `where` is a comparison of an event field with a literal"),
        }
    }

    fn not_a_filter<T>(&mut self, span: Span, message: &str) -> Option<T> {
        self.error(
            Diagnostic::error(Code::NotAFilter, span, message.to_string())
                .with_note("a window's `where` compares the event's fields (named bare) with literals using `== != < <= > >= in` and `not in`, joined by `and`, `or`, `not`")
                .with_help("put other conditions in the rule or `when` that reads the window tag"),
        );
        None
    }

    fn caps(&mut self, caps: &[ast::Cap]) -> Vec<Cap> {
        let mut out = Vec::new();
        for cap in caps {
            if cap.count < 1 || cap.count > i64::from(u32::MAX) {
                self.error(
                    Diagnostic::error(Code::InvalidReachDecl, cap.span, format!("a cap of {} reaches", cap.count))
                        .with_note("a cap allows from 1 to 4294967295 sent reaches per window")
                        .with_help("to stop reaching altogether, remove the strategies that reach"),
                );
                continue;
            }
            if let Some(per) = self.window_length("a cap's window", (cap.per, cap.span), Code::InvalidReachDecl) {
                out.push(Cap { count: cap.count as u32, per_seconds: per });
            }
        }
        out
    }

    fn channel(&mut self, c: &'a ast::ChannelDecl<'a>) {
        if let Some(&prev) = self.channel_by_name.get(c.name.name) {
            let prev = self.outreach.channels[prev as usize].span;
            return self.duplicate("channel", c.name.name, c.name.span, prev);
        }
        let caps = self.caps(c.caps);
        let twice = |this: &mut Self, span: Span, what: &str| {
            this.error(
                Diagnostic::error(Code::InvalidReachDecl, span, format!("channel `{}` sets {what} twice", c.name.name))
                    .with_help("keep one"),
            );
        };
        for q in c.quiet.iter().skip(1) {
            twice(self, q.span, "quiet hours");
        }
        for z in c.zones.iter().skip(1) {
            twice(self, z.span, "a zone");
        }
        let quiet = c.quiet.first().and_then(|q| match (q.from, q.to) {
            (Some(from), Some(to)) if from != to => Some(QuietHours { from_minute: from, to_minute: to, drop: q.drop }),
            (Some(_), Some(_)) => {
                self.error(
                    Diagnostic::error(Code::InvalidReachDecl, q.span, "quiet hours that start when they end")
                        .with_help("give a start and an end that differ, like `quiet 22:00..08:00`"),
                );
                None
            }
            _ => {
                self.error(
                    Diagnostic::error(Code::InvalidReachDecl, q.span, "invalid time of day in quiet hours")
                        .with_note("times of day are `HH:MM` from `00:00` to `23:59`"),
                );
                None
            }
        });
        let zone = c.zones.first().and_then(|z| {
            let tag = self.lookup_tag(z)?;
            let t = &self.tags[tag as usize];
            let ok = t.ty == Type::Text && matches!(t.owner, TagOwner::Entity(_));
            if !ok {
                let ty = self.type_text(&t.ty.clone());
                self.error(
                    Diagnostic::error(
                        Code::InvalidReachDecl,
                        z.span,
                        format!("`{}` cannot hold time zones: it is `{ty}`", z.to_dotted()),
                    )
                    .with_note(
                        "a channel's zone is a `text` tag of the user holding an IANA name like \"Asia/Shanghai\"",
                    ),
                );
                return None;
            }
            Some(tag)
        });
        self.channel_by_name.insert(c.name.name, self.outreach.channels.len() as u32);
        self.outreach.channels.push(Channel { name: c.name.name.into(), caps, quiet, zone, span: c.span });
    }

    fn action(&mut self, a: &'a ast::ActionDecl<'a>) {
        if let Some(prev) = self.outreach.actions.iter().find(|x| x.name == a.name.value).map(|x| x.span) {
            return self.duplicate("action", a.name.value, a.name.span, prev);
        }
        let caps = self.caps(a.caps);
        for b in a.budgets.iter().skip(1) {
            self.error(
                Diagnostic::error(
                    Code::InvalidReachDecl,
                    b.span,
                    format!("action \"{}\" sets a budget twice", a.name.value),
                )
                .with_help("keep one"),
            );
        }
        let budget = a.budgets.first().and_then(|b| {
            if b.amount < 0 {
                self.error(
                    Diagnostic::error(Code::InvalidReachDecl, b.span, format!("a budget of {}", b.amount))
                        .with_note("budgets are zero or more"),
                );
                return None;
            }
            Some(Budget { amount: b.amount, field: b.of.map(|f| f.name.to_string()) })
        });
        self.outreach.actions.push(Action { name: a.name.value.into(), caps, budget, span: a.span });
    }

    /// `on EVENT` for a scene: the event, after checking what else the scene asks callers for.
    pub(super) fn scene_on(&mut self, s: &'a ast::SceneDecl<'a>) -> Option<EventId> {
        let on = s.on?;
        let event = self.lookup_event(&on)?;
        let ev = &self.outreach.events[event as usize];
        let key = self.entities[ev.entity as usize].key.clone();
        let ev_name = ev.name.clone();
        // A fan-out scene also takes the key of the units it fans out to.
        let fanout_key = s
            .fanout
            .and_then(|f| self.entity_by_name.get(f.entity.name))
            .map(|&e| self.entities[e as usize].key.clone());
        for k in s.keys {
            if k.name != key && fanout_key.as_deref() != Some(k.name) {
                self.error(
                    Diagnostic::error(
                        Code::OnSceneRequest,
                        k.span,
                        format!(
                            "scene `{}` runs on `{ev_name}` events, which carry `{key}`, not `{}`",
                            s.name.name, k.name
                        ),
                    )
                    .with_help(format!("a scene on an event takes only the event's key: `keys {key}`")),
                );
            }
        }
        for p in s.passes {
            self.error(
                Diagnostic::error(
                    Code::OnSceneRequest,
                    p.span,
                    format!("scene `{}` runs on events, which pass no `ctx` tags", s.name.name),
                )
                .with_help("read the event's own fields as `event.FIELD`"),
            );
        }
        Some(event)
    }

    /// `for each ENTITY with INDEX(FIELD == event.X and …) within D` of a scene `on` `event`
    /// (`None` when that event is unknown: the rest is still checked).
    pub(super) fn scene_fanout(&mut self, s: &'a ast::SceneDecl<'a>, event: Option<EventId>) -> Option<Fanout> {
        let f = s.fanout?;
        let entity = self.entity_by_name.get(f.entity.name).copied();
        if entity.is_none() {
            let suggestion = did_you_mean(f.entity.name, self.entity_by_name.keys().copied()).map(str::to_owned);
            self.error(
                Diagnostic::error(Code::UnknownEntity, f.entity.span, format!("unknown entity `{}`", f.entity.name))
                    .with_note("a fan-out decides for the units of an entity, like `for each user with …`")
                    .with_suggestion(suggestion.as_deref()),
            );
        }
        let index = self.lookup_event(&f.index);
        let within = self.window_length("a fan-out's window", f.within, Code::FanoutWindow);
        let (entity, event) = (entity?, event?);
        let trigger = &self.outreach.events[event as usize];
        let (trigger_name, trigger_entity) = (trigger.name.clone(), trigger.entity);
        let entity_name = self.entities[entity as usize].name.clone();
        if trigger_entity == entity {
            self.error(
                Diagnostic::error(
                    Code::FanoutEntity,
                    f.entity.span,
                    format!(
                        "`{trigger_name}` events are `{entity_name}` events already: there is nothing to fan out to"
                    ),
                )
                .with_note("a fan-out reaches units of another entity than the triggering event's")
                .with_help(format!("drop `for each …`: scene `{}` then decides for the event's own unit", s.name.name)),
            );
            return None;
        }
        let index = index?;
        let ix = &self.outreach.events[index as usize];
        if ix.entity != entity {
            let (ix_name, ix_key) = (ix.name.clone(), self.entities[ix.entity as usize].key.clone());
            let key = self.entities[entity as usize].key.clone();
            self.error(
                Diagnostic::error(
                    Code::FanoutEntity,
                    f.index.span,
                    format!("`{ix_name}` events are keyed by `{ix_key}`, not by `{entity_name}`'s key `{key}`"),
                )
                .with_note(format!(
                    "the index event records which `{entity_name}` to reach: it must be an event `by {key}`"
                )),
            );
            return None;
        }
        let trigger_key = self.entities[trigger_entity as usize].key.clone();
        let mut pairs: Vec<(u32, FanoutValue)> = Vec::new();
        let mut ok = true;
        for (field, value) in f.pairs {
            let fi = self.event_field(index, field.name, field.span);
            let v = if value.first.name != "event" {
                self.error(
                    Diagnostic::error(
                        Code::FanoutMatch,
                        value.span,
                        format!("`{}` is not a value of the triggering event", value.to_dotted()),
                    )
                    .with_help(format!(
                        "match with `event.FIELD` (a field of `{trigger_name}`) or `event.{trigger_key}` (its key)"
                    )),
                );
                None
            } else if let Some(i) =
                self.outreach.events[event as usize].fields.iter().position(|x| x.name == value.second.name)
            {
                Some(FanoutValue::Field(i as u32))
            } else if value.second.name == trigger_key {
                Some(FanoutValue::Key)
            } else {
                self.event_field(event, value.second.name, value.second.span).map(FanoutValue::Field)
            };
            let (Some(fi), Some(v)) = (fi, v) else {
                ok = false;
                continue;
            };
            if pairs.iter().any(|(x, _)| *x == fi) {
                self.error(
                    Diagnostic::error(
                        Code::FanoutMatch,
                        field.span,
                        format!("`{}` is matched more than once", field.name),
                    )
                    .with_help("match each field of the index event once"),
                );
                ok = false;
                continue;
            }
            let left = self.outreach.events[index as usize].fields[fi as usize].ty.clone();
            let right = match v {
                FanoutValue::Field(i) => Some(self.outreach.events[event as usize].fields[i as usize].ty.clone()),
                FanoutValue::Key => None,
            };
            let matchable = |t: &Type| matches!(t, Type::Int | Type::Text | Type::Bool | Type::Time | Type::Enum(_));
            let fits = match &right {
                // Keys are text or int (an int key matches the same number as an int field).
                None => matches!(left, Type::Int | Type::Text),
                Some(r) => matchable(&left) && *r == left,
            };
            if !fits {
                let l = self.type_text(&left);
                let r = right.as_ref().map_or_else(|| "key".to_string(), |r| self.type_text(r));
                self.error(
                    Diagnostic::error(
                        Code::FanoutMatch,
                        field.span.to(value.span),
                        format!("cannot match `{}` (`{l}`) with `{}` (`{r}`)", field.name, value.to_dotted()),
                    )
                    .with_note(
                        "a fan-out matches values of one type exactly: int, text, enum, bool or time \
                         (a key matches int and text fields); floats and lists cannot be matched",
                    ),
                );
                ok = false;
                continue;
            }
            pairs.push((fi, v));
        }
        if !ok {
            return None;
        }
        pairs.sort_by_key(|(fi, _)| *fi);
        Some(Fanout { entity, index, pairs, within_seconds: within? })
    }

    /// The decision type of a `reach` instance: [`REACH_FIELDS`], then the payload.
    /// `on_written`: the scene has an `on`, even one naming an unknown event (reported).
    pub(super) fn reach_fields(
        &mut self,
        inst: &ast::InstanceDecl<'a>,
        on: Option<EventId>,
        on_written: bool,
        scene: &str,
    ) -> Vec<Field> {
        if let (Some(span), false) = (inst.reach, on_written) {
            self.error(
                Diagnostic::error(
                    Code::ReachMismatch,
                    span,
                    format!("instance `{}` reaches users, but scene `{scene}` is not `on` an event", inst.name.name),
                )
                .with_help(format!("trigger the scene by an event: `scene {scene} on EVENT {{ … }}`")),
            );
        }
        if let (None, Some(_)) = (inst.reach, on) {
            self.error(
                Diagnostic::error(
                    Code::ReachMismatch,
                    inst.name.span,
                    format!("scene `{scene}` runs on events, so instance `{}` must be `-> reach`", inst.name.name),
                )
                .with_help(
                    "declare it `-> reach { PAYLOAD FIELDS }` and decide `reach CHANNEL \"action\" { … }` or `none`",
                ),
            );
        }
        vec![
            Field { name: REACH_FIELDS[0].into(), ty: Type::Text },
            Field { name: REACH_FIELDS[1].into(), ty: Type::Text },
            Field { name: REACH_FIELDS[2].into(), ty: Type::Int },
        ]
    }

    /// A decision's kind against its instance's: `Ok(None)` for a record in a record
    /// instance (checked as usual), `Ok(Some(head))` for reach and `none` in a reach
    /// instance (the [`REACH_FIELDS`] values), `Err(())` after reporting a mismatch.
    /// `expected`: the decision is a test's expectation (its mismatch says what to expect).
    pub(super) fn reach_head(
        &mut self,
        d: &ast::Decision<'a>,
        fields: &[Field],
        expected: bool,
    ) -> Result<Option<[Value; 3]>, ()> {
        let reach_instance = fields.first().is_some_and(|f| f.name == REACH_FIELDS[0]);
        let text = |s: &str, span| Value { kind: ValueKind::Const(Const::Text(s.into())), ty: Type::Text, span };
        let int = |i: i64, span| Value { kind: ValueKind::Const(Const::Int(i)), ty: Type::Int, span };
        match (d.kind, reach_instance) {
            (ast::DecisionKind::Record, false) => Ok(None),
            (ast::DecisionKind::Record, true) => {
                let mut diag = Diagnostic::error(
                    Code::ReachMismatch,
                    d.span,
                    "a `reach` instance decides reach actions, not records",
                );
                diag = if expected {
                    diag.with_help("expect `reach CHANNEL \"action\" { PAYLOAD }` (with its `dedup`, if any) or `none`")
                        .with_note("`none` holds when nobody is reached: the control group, or no decision")
                } else {
                    diag.with_help("write `reach CHANNEL \"action\" { PAYLOAD }` or `none` (the control group)")
                };
                self.error(diag);
                Err(())
            }
            (_, false) => {
                self.error(
                    Diagnostic::error(
                        Code::ReachMismatch,
                        d.span,
                        "reach actions and `none` are decisions of `reach` instances only",
                    )
                    .with_help(
                        "declare the instance `-> reach { … }` in a scene `on` an event, or decide a record `{ … }`",
                    ),
                );
                Err(())
            }
            (ast::DecisionKind::Control, true) => Ok(Some([text("", d.span), text("", d.span), int(0, d.span)])),
            (ast::DecisionKind::Reach { channel, action, dedup }, true) => {
                let mut ok = true;
                if !self.channel_by_name.contains_key(channel.name) {
                    let suggestion =
                        did_you_mean(channel.name, self.channel_by_name.keys().copied()).map(str::to_owned);
                    self.error(
                        Diagnostic::error(
                            Code::UnknownChannel,
                            channel.span,
                            format!("unknown channel `{}`", channel.name),
                        )
                        .with_note("declare it like `channel push cap 3 per 1d`")
                        .with_suggestion(suggestion.as_deref()),
                    );
                    ok = false;
                }
                let dedup = match dedup {
                    None => 0,
                    Some(dd) => self.window_length("a dedup window", dd, Code::InvalidReachDecl).unwrap_or_else(|| {
                        ok = false;
                        0
                    }),
                };
                if let Some(Budget { field: Some(f), .. }) =
                    self.outreach.actions.iter().find(|a| a.name == action.value).and_then(|a| a.budget.clone())
                {
                    if !fields[REACH_FIELDS.len()..].iter().any(|x| x.name == f && x.ty == Type::Int) {
                        self.error(
                            Diagnostic::error(
                                Code::InvalidReachDecl,
                                action.span,
                                format!(
                                    "action \"{}\" is budgeted by `{f}`, which this payload has no `int` field for",
                                    action.value
                                ),
                            )
                            .with_help(format!("add `{f}: int` to the instance's `reach {{ … }}` payload")),
                        );
                        ok = false;
                    }
                }
                if !ok {
                    return Err(());
                }
                Ok(Some([text(channel.name, channel.span), text(action.value, action.span), int(dedup, d.span)]))
            }
        }
    }

    /// Placeholder payload values for `none`, which sends nothing: one constant per field.
    pub(super) fn control_payload(&self, fields: &[Field], span: Span) -> Vec<Value> {
        fields
            .iter()
            .map(|f| {
                let c = match &f.ty {
                    Type::Int => Const::Int(0),
                    Type::Float => Const::Float(0.0),
                    Type::Bool => Const::Bool(false),
                    Type::Time => Const::Time(0),
                    Type::Duration => Const::Duration(0),
                    Type::Enum(_) => Const::Enum(0),
                    Type::List(_) => Const::List(Vec::new()),
                    _ => Const::Text(String::new()),
                };
                Value { kind: ValueKind::Const(c), ty: f.ty.clone(), span }
            })
            .collect()
    }
}
