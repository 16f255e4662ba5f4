//! `test` blocks: given values and expectations, checked like everything else.
//!
//! Owns: typing `given` against keys and tag types, and resolving `expect` targets
//! (scene, instance, strategy, group). Running tests is not this module's job.

use std::collections::HashMap;

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast;

use super::typed::*;
use super::{Checker, Uses};

impl<'a> Checker<'a> {
    pub(super) fn test(&mut self, t: &'a ast::TestDecl<'a>, scenes: &[Scene]) -> Option<Test> {
        let errors_before = self.diags.len();
        let mut test = Test {
            name: t.name.value.into(),
            keys: Vec::new(),
            tags: Vec::new(),
            now: None,
            expects: Vec::new(),
            span: t.span,
        };
        let mut seen: HashMap<String, Span> = HashMap::new();
        // `event.FIELD` in `given` is a field of the event of the scenes the test expects
        // decisions of (when they all run on one kind of event).
        let mut events = t.expects.iter().filter_map(|e| match e {
            ast::Expect::Decision { target, .. } => scenes.iter().find(|s| s.name == target.first.name).map(|s| s.on),
            _ => None,
        });
        let first = events.next().flatten();
        self.scene_event = first.filter(|_| events.all(|on| on == first));
        for entry in t.given {
            let (name, span) = match &entry.name {
                ast::GivenName::Key(k) => (k.name.to_string(), k.span),
                ast::GivenName::Tag(p) => (p.to_dotted(), p.span),
            };
            if let Some(prev) = seen.insert(name.clone(), span) {
                self.repeated("given value", &name, span, prev);
                continue;
            }
            match &entry.name {
                ast::GivenName::Key(k) if k.name == "now" => {
                    if let Some(Const::Time(t)) = self.given_const(entry.value, &Type::Time, "`now`") {
                        test.now = Some(t);
                    }
                }
                ast::GivenName::Key(k) => {
                    let Some(&entity) = self.entity_by_key.get(k.name) else {
                        let candidates = self.entity_by_key.keys().copied().chain(["now"]);
                        let suggestion = did_you_mean(k.name, candidates).map(str::to_owned);
                        self.error(
                            Diagnostic::error(Code::UnknownKey, k.span, format!("unknown key `{}`", k.name))
                                .with_note(
                                    "`given` takes request keys (like `uid`), tags (like `user.risk_score`) and `now`",
                                )
                                .with_suggestion(suggestion.as_deref()),
                        );
                        continue;
                    };
                    if let Some(value) = self.key_literal(entry.value, k.name) {
                        test.keys.push((entity, value));
                    }
                }
                ast::GivenName::Tag(path) => {
                    let Some(tag) = self.lookup_tag(path) else { continue };
                    let ty = self.tags[tag as usize].ty.clone();
                    let what = format!("the value of `{}`", self.tags[tag as usize].name);
                    if let Some(c) = self.given_const(entry.value, &ty, &what) {
                        test.tags.push((tag, c));
                    }
                }
            }
        }
        self.scene_event = None;
        // `None`: no decision expectation yet; `Some(None)`: the last one named an unknown
        // target, already reported, so strategy expectations after it stay quiet.
        let mut current: Option<Option<(SceneId, u32)>> = None;
        for expect in t.expects {
            match expect {
                ast::Expect::Decision { target, decision, span } => {
                    current = Some(self.expectation_target(target, scenes));
                    let Some(Some((scene, instance))) = current else { continue };
                    let inst = &scenes[scene as usize].instances[instance as usize];
                    let decision = decision.map(|d| {
                        let decision = self.decision(d, &inst.fields, None);
                        let mut consts = Vec::new();
                        for v in decision.values {
                            match v.kind {
                                ValueKind::Const(c) => consts.push(c),
                                _ => self.error(
                                    Diagnostic::error(
                                        Code::TypeMismatch,
                                        v.span,
                                        "expected decisions hold literals only",
                                    )
                                    .with_help("write the value the decision should have"),
                                ),
                            }
                        }
                        consts
                    });
                    test.expects.push(Expectation::Decision { scene, instance, decision, span: *span });
                }
                ast::Expect::Tag { tag, key, value, span } => {
                    let Some(id) = self.lookup_tag(tag) else { continue };
                    let info = &self.tags[id as usize];
                    if info.owner == TagOwner::Passthrough {
                        let name = info.name.clone();
                        self.error(
                            Diagnostic::error(
                                Code::NotATagTest,
                                tag.span,
                                format!("`{name}` is a pass-through tag; no provider loads it"),
                            )
                            .with_note(
                                "`expect tag` checks what the `--tags` data file holds for a provider-loaded tag",
                            ),
                        );
                        continue;
                    }
                    let ty = info.ty.clone();
                    let what = format!("the value of `{}`", info.name);
                    let key_name = match info.owner {
                        TagOwner::Entity(e) => self.entities[e as usize].key.clone(),
                        TagOwner::Passthrough => unreachable!("pass-through tags were refused above"),
                    };
                    let Some(key) = self.key_literal(key, &key_name) else { continue };
                    let expected = match value {
                        Some(v) => match self.given_const(v, &ty, &what) {
                            Some(c) => Some(c),
                            None => continue,
                        },
                        None => None,
                    };
                    test.expects.push(Expectation::Tag { tag: id, key, value: expected, span: *span });
                }
                ast::Expect::Strategy { strategy, group, span } => {
                    let Some(target) = current else {
                        self.error(
                            Diagnostic::error(
                                Code::ExpectWithoutDecision,
                                *span,
                                "`expect strategy` has no decision to speak of",
                            )
                            .with_note(
                                "`expect strategy` is about the outcome of the `expect SCENE.INSTANCE => …` before it",
                            )
                            .with_help("put an `expect SCENE.INSTANCE => …` above it"),
                        );
                        continue;
                    };
                    let Some((scene, instance)) = target else { continue };
                    let inst = &scenes[scene as usize].instances[instance as usize];
                    if let Some((strategy, group)) = self.expectation_strategy(inst, strategy, *group) {
                        test.expects.push(Expectation::Strategy { strategy, group, span: *span });
                    }
                }
            }
        }
        (self.diags.len() == errors_before).then_some(test)
    }

    /// A key value: a text or int literal (ints are keys in decimal).
    fn key_literal(&mut self, e: &ast::Expr<'a>, key: &str) -> Option<String> {
        let mut uses = Uses::default();
        let value = self.value(e, Some(&Type::Text), &mut uses)?;
        match value.kind {
            ValueKind::Const(Const::Text(s)) => Some(s),
            ValueKind::Const(Const::Int(i)) => Some(i.to_string()),
            _ => {
                self.error(
                    Diagnostic::error(
                        Code::TypeMismatch,
                        value.span,
                        format!("key `{key}` takes a text or int literal"),
                    )
                    .with_help(format!("write it like `{key}: \"u-1001\"`")),
                );
                None
            }
        }
    }

    fn given_const(&mut self, e: &ast::Expr<'a>, ty: &Type, what: &str) -> Option<Const> {
        let mut uses = Uses::default();
        let value = self.value(e, Some(ty), &mut uses)?;
        self.expect_assignable(&value, ty, what)?;
        match value.kind {
            ValueKind::Const(Const::Int(i)) if *ty == Type::Float => Some(Const::Float(i as f64)),
            ValueKind::Const(c) => Some(c),
            _ => {
                self.error(
                    Diagnostic::error(Code::TypeMismatch, value.span, "given values are literals")
                        .with_help("write the value itself; tags not given are missing"),
                );
                None
            }
        }
    }

    fn expectation_target(&mut self, target: &ast::Path<'a>, scenes: &[Scene]) -> Option<(SceneId, u32)> {
        let Some(scene) = scenes.iter().position(|s| s.name == target.first.name) else {
            let suggestion = did_you_mean(target.first.name, scenes.iter().map(|s| s.name.as_str())).map(str::to_owned);
            self.error(
                Diagnostic::error(
                    Code::UnknownScene,
                    target.first.span,
                    format!("unknown scene `{}`", target.first.name),
                )
                .with_suggestion(suggestion.as_deref()),
            );
            return None;
        };
        let instances = &scenes[scene].instances;
        let Some(instance) = instances.iter().position(|i| i.name == target.second.name) else {
            let suggestion =
                did_you_mean(target.second.name, instances.iter().map(|i| i.name.as_str())).map(str::to_owned);
            self.error(
                Diagnostic::error(
                    Code::UnknownInstance,
                    target.second.span,
                    format!("scene `{}` has no instance `{}`", target.first.name, target.second.name),
                )
                .with_suggestion(suggestion.as_deref()),
            );
            return None;
        };
        Some((scene as SceneId, instance as u32))
    }

    fn expectation_strategy(
        &mut self,
        inst: &Instance,
        strategy: &ast::Ident<'a>,
        group: Option<ast::Ident<'a>>,
    ) -> Option<(StrategyRef, Option<u32>)> {
        let found = if strategy.name == "default" {
            if inst.default.is_none() {
                self.error(
                    Diagnostic::error(
                        Code::UnknownStrategy,
                        strategy.span,
                        format!("instance `{}` has no default", inst.name),
                    )
                    .with_note(
                        "without a default, an instance where no strategy holds makes no decision: expect `=> none`",
                    ),
                );
                return None;
            }
            StrategyRef::Default
        } else {
            match inst.strategies.iter().position(|s| s.name == strategy.name) {
                Some(i) => StrategyRef::Named(i as u32),
                None => {
                    let candidates = inst.strategies.iter().map(|s| s.name.as_str()).chain(["default"]);
                    let suggestion = did_you_mean(strategy.name, candidates).map(str::to_owned);
                    self.error(
                        Diagnostic::error(
                            Code::UnknownStrategy,
                            strategy.span,
                            format!("instance `{}` has no strategy `{}`", inst.name, strategy.name),
                        )
                        .with_suggestion(suggestion.as_deref()),
                    );
                    return None;
                }
            }
        };
        let Some(group) = group else { return Some((found, None)) };
        let experiment = match found {
            StrategyRef::Named(i) => match &inst.strategies[i as usize].outcome {
                Outcome::Experiment(x) => Some(x),
                Outcome::Decision(_) => None,
            },
            StrategyRef::Default => None,
        };
        let Some(experiment) = experiment else {
            self.error(
                Diagnostic::error(
                    Code::UnknownGroup,
                    group.span,
                    format!("strategy `{}` has no experiment, so no groups", strategy.name),
                )
                .with_help("remove `group …`"),
            );
            return None;
        };
        match experiment.groups.iter().position(|g| g.name == group.name) {
            Some(g) => Some((found, Some(g as u32))),
            None => {
                let suggestion =
                    did_you_mean(group.name, experiment.groups.iter().map(|g| g.name.as_str())).map(str::to_owned);
                let names: Vec<&str> = experiment.groups.iter().map(|g| g.name.as_str()).collect();
                self.error(
                    Diagnostic::error(
                        Code::UnknownGroup,
                        group.span,
                        format!("experiment `{}` has no group `{}`", experiment.name, group.name),
                    )
                    .with_note(format!("its groups are: {}", names.join(", ")))
                    .with_suggestion(suggestion.as_deref()),
                );
                None
            }
        }
    }
}
