//! Typing of conditions and values.
//!
//! Owns: resolving names inside expressions (rules, tags, enum members), the operator
//! table checks, literal typing and regex compilation. Records every tag and rule an
//! expression uses in [`Uses`]; whether a use is allowed *here* (a rule's kind, a scene's
//! keys) is the caller's decision, not this module's.

use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use crate::syntax::ast::{self, ExprKind, PredOp};

use super::typed::*;
use super::{Checker, Uses};
use crate::ops::CmpOp;

use crate::limits::{MAX_REGEX_COMPILED_BYTES, MAX_REGEX_NESTING};

impl<'a> Checker<'a> {
    /// Types an expression used as a condition.
    pub(super) fn cond(&mut self, e: &ast::Expr<'a>, uses: &mut Uses) -> Option<Cond> {
        let kind = match e.kind {
            ExprKind::Or(clauses) | ExprKind::And(clauses) => {
                // Check every clause (no early return) so each independent error is reported.
                let typed: Vec<Option<Cond>> = clauses.iter().map(|c| self.cond(c, uses)).collect();
                let typed: Vec<Cond> = typed.into_iter().collect::<Option<_>>()?;
                if matches!(e.kind, ExprKind::Or(_)) {
                    CondKind::Or(typed)
                } else {
                    CondKind::And(typed)
                }
            }
            ExprKind::Not(inner) => CondKind::Not(Box::new(self.cond(inner, uses)?)),
            ExprKind::Predicate { op, op_span, subject, args } => self.predicate(op, op_span, subject, args, uses)?,
            ExprKind::Bool(b) => CondKind::Const(b),
            ExprKind::Name(name) => CondKind::Rule(self.rule_ref(name, e.span, uses)?),
            _ => {
                let value = self.value(e, None, uses)?;
                if value.ty != Type::Bool {
                    let ty = self.type_text(&value.ty);
                    self.error(
                        Diagnostic::error(
                            Code::NotACondition,
                            e.span,
                            format!("expected a condition, found a value of type `{ty}`"),
                        )
                        .with_label("not a condition")
                        .with_help(format!(
                            "compare it with something; `{}` allows: {}",
                            value.ty,
                            value.ty.allowed_ops_text()
                        )),
                    );
                    return None;
                }
                CondKind::Bool(value)
            }
        };
        Some(Cond { kind, span: e.span })
    }

    fn rule_ref(&mut self, name: &str, span: Span, uses: &mut Uses) -> Option<RuleId> {
        if let Some(&id) = self.rule_by_name.get(name) {
            uses.rules.push((id, span));
            return Some(id);
        }
        let suggestion = did_you_mean(name, self.rule_by_name.keys().copied()).map(str::to_owned);
        let mut d = Diagnostic::error(Code::UnknownRule, span, format!("unknown rule `{name}`"))
            .with_label("no rule has this name")
            .with_suggestion(suggestion.as_deref());
        if self.entity_by_key.contains_key(name) {
            d = d.with_note(format!("`{name}` is a request key; conditions read tags and rules, not keys"));
        }
        self.error(d);
        None
    }

    fn predicate(
        &mut self,
        op: PredOp,
        op_span: Span,
        subject: &ast::Expr<'a>,
        args: &[ast::Expr<'a>],
        uses: &mut Uses,
    ) -> Option<CondKind> {
        // `app == ctx.channel`: a bare name on the left takes its type from the right.
        let (value, first_arg) =
            if matches!(subject.kind, ExprKind::Name(_)) && matches!(op, PredOp::Cmp(CmpOp::Eq | CmpOp::Ne)) {
                let arg = self.value(&args[0], None, uses);
                let value = self.value(subject, arg.as_ref().map(|a| &a.ty), uses);
                (value?, Some(arg?))
            } else {
                (self.value(subject, None, uses)?, None)
            };
        if !value.ty.allows(op) {
            let ty = self.type_text(&value.ty);
            self.error(
                Diagnostic::error(
                    Code::OperatorNotAllowed,
                    op_span,
                    format!("operator `{}` is not allowed for `{}`", op.as_str(), value.ty),
                )
                .with_secondary(value.span, format!("this is `{ty}`"))
                .with_help(format!("`{}` allows: {}", value.ty, value.ty.allowed_ops_text())),
            );
            return None;
        }
        let elem = match &value.ty {
            Type::List(t) => Some((**t).clone()),
            _ => None,
        };
        let kind = match op {
            PredOp::Cmp(op) => {
                let rhs = match first_arg {
                    Some(a) => a,
                    None => self.value(&args[0], Some(&value.ty), uses)?,
                };
                self.expect_comparable(&value, &rhs)?;
                CondKind::Compare { op, lhs: value, rhs }
            }
            PredOp::Between => {
                let low = self.value(&args[0], Some(&value.ty), uses);
                let high = self.value(&args[1], Some(&value.ty), uses);
                let (low, high) = (low?, high?);
                self.expect_comparable(&value, &low)?;
                self.expect_comparable(&value, &high)?;
                CondKind::Between { value, low, high }
            }
            PredOp::In | PredOp::NotIn => {
                // Numbers compare across int and float, so `int_tag in [1.5]` is as valid as
                // `int_tag == 1.5`: a float anywhere in the list makes it a list of floats.
                let has_float = matches!(args[0].kind, ExprKind::List(items) if items.iter().any(|i| matches!(i.kind, ExprKind::Float(_))));
                let elem = if value.ty == Type::Int && has_float { Type::Float } else { value.ty.clone() };
                let set = self.const_list(&args[0], &elem, uses)?;
                CondKind::InSet { value, set, negated: op == PredOp::NotIn }
            }
            PredOp::Contains | PredOp::NotContains => {
                let negated = op == PredOp::NotContains;
                match elem {
                    Some(elem) => {
                        let item = self.value(&args[0], Some(&elem), uses)?;
                        self.expect_assignable(&item, &elem, "list element")?;
                        CondKind::ListContains { list: value, item, negated }
                    }
                    None => {
                        let arg = self.value(&args[0], Some(&Type::Text), uses)?;
                        self.expect_assignable(&arg, &Type::Text, "text operand")?;
                        CondKind::Text { op: TextOp::Contains, value, arg, negated }
                    }
                }
            }
            PredOp::ContainsAny | PredOp::ContainsAll => {
                let elem = elem.expect("only lists allow contains_any/contains_all");
                let items = self.const_list(&args[0], &elem, uses)?;
                if op == PredOp::ContainsAny {
                    CondKind::ListContainsAny { list: value, items }
                } else {
                    CondKind::ListContainsAll { list: value, items }
                }
            }
            PredOp::StartsWith | PredOp::EndsWith => {
                let arg = self.value(&args[0], Some(&Type::Text), uses)?;
                self.expect_assignable(&arg, &Type::Text, "text operand")?;
                let op = if op == PredOp::StartsWith { TextOp::StartsWith } else { TextOp::EndsWith };
                CondKind::Text { op, value, arg, negated: false }
            }
            PredOp::Matches => {
                let ExprKind::Text(pattern) = args[0].kind else {
                    unreachable!("the grammar only allows a text literal after `matches`")
                };
                self.compile_regex(pattern, args[0].span)?;
                CondKind::Matches { value, pattern: pattern.to_string() }
            }
            PredOp::IsMissing | PredOp::IsPresent => CondKind::IsMissing { value, negated: op == PredOp::IsPresent },
            PredOp::IsEmpty => CondKind::IsEmpty(value),
            PredOp::Before | PredOp::After => {
                let at = self.value(&args[0], Some(&Type::Time), uses)?;
                self.expect_assignable(&at, &Type::Time, "instant")?;
                if op == PredOp::Before {
                    CondKind::Before { value, at }
                } else {
                    CondKind::After { value, at }
                }
            }
            PredOp::Within | PredOp::OlderThan => {
                let window = self.value(&args[0], Some(&Type::Duration), uses)?;
                let Some(&Const::Duration(seconds)) = window.as_const() else {
                    let found = self.type_text(&window.ty);
                    self.error(
                        Diagnostic::error(
                            Code::TypeMismatch,
                            window.span,
                            format!("expected a duration literal, found `{found}`"),
                        )
                        .with_help("write a duration like `30s`, `15m`, `3h` or `90d`"),
                    );
                    return None;
                };
                if op == PredOp::Within {
                    CondKind::Within { value, seconds }
                } else {
                    CondKind::OlderThan { value, seconds }
                }
            }
        };
        Some(kind)
    }

    fn compile_regex(&mut self, pattern: &str, span: Span) -> Option<()> {
        let built = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_COMPILED_BYTES)
            .nest_limit(MAX_REGEX_NESTING)
            .build();
        match built {
            Ok(_) => Some(()),
            Err(regex::Error::CompiledTooBig(limit)) => {
                self.error(
                    Diagnostic::error(Code::RegexTooLarge, span, "regex is too large once compiled")
                        .with_note(format!("a compiled regex may use at most {limit} bytes"))
                        .with_help("simplify the pattern: large counted repetitions like `{1000}` multiply its size"),
                );
                None
            }
            Err(e) => {
                self.error(
                    Diagnostic::error(Code::InvalidRegex, span, "invalid regex")
                        .with_note(e.to_string())
                        .with_note("regexes use the syntax of the Rust `regex` crate and run in linear time: no backreferences or lookaround"),
                );
                None
            }
        }
    }

    pub(super) fn expect_comparable(&mut self, lhs: &Value, rhs: &Value) -> Option<()> {
        if lhs.ty.comparable_with(&rhs.ty) {
            return Some(());
        }
        let (l, r) = (self.type_text(&lhs.ty), self.type_text(&rhs.ty));
        self.error(
            Diagnostic::error(Code::TypeMismatch, rhs.span, format!("cannot compare `{l}` with `{r}`"))
                .with_label(format!("this is `{r}`"))
                .with_secondary(lhs.span, format!("this is `{l}`")),
        );
        None
    }

    pub(super) fn expect_assignable(&mut self, value: &Value, target: &Type, what: &str) -> Option<()> {
        if value.ty.assignable_to(target) {
            return Some(());
        }
        let (found, expected) = (self.type_text(&value.ty), self.type_text(target));
        self.error(
            Diagnostic::error(
                Code::TypeMismatch,
                value.span,
                format!("expected `{expected}` as {what}, found `{found}`"),
            )
            .with_label(format!("this is `{found}`")),
        );
        None
    }

    /// A list literal of constants whose elements have type `elem`.
    fn const_list(&mut self, e: &ast::Expr<'a>, elem: &Type, uses: &mut Uses) -> Option<Vec<Const>> {
        let list = self.value(e, Some(&Type::List(Box::new(elem.clone()))), uses)?;
        match list.kind {
            ValueKind::Const(Const::List(items)) => Some(items),
            _ => unreachable!("list literals type as constant lists"),
        }
    }

    /// Types an expression used as a value. `hint` is the type the context expects: it
    /// resolves bare enum members, types `[]`, and turns int literals into floats.
    pub(super) fn value(&mut self, e: &ast::Expr<'a>, hint: Option<&Type>, uses: &mut Uses) -> Option<Value> {
        let span = e.span;
        let constant = |c: Const, ty: Type| Some(Value { kind: ValueKind::Const(c), ty, span });
        match e.kind {
            ExprKind::Int(v) if hint == Some(&Type::Float) => constant(Const::Float(v as f64), Type::Float),
            ExprKind::Int(v) => constant(Const::Int(v), Type::Int),
            ExprKind::Float(v) => constant(Const::Float(v), Type::Float),
            ExprKind::Bool(b) => constant(Const::Bool(b), Type::Bool),
            ExprKind::Duration(s) => constant(Const::Duration(s), Type::Duration),
            ExprKind::Time(t) => constant(Const::Time(t), Type::Time),
            ExprKind::Text(s) => {
                if let Some(&Type::Enum(id)) = hint {
                    let ty = self.type_text(&Type::Enum(id));
                    let is_member = self.enums[id as usize].members.iter().any(|m| m == s);
                    let help = if is_member {
                        format!("enum members are written bare: `{s}`")
                    } else {
                        format!("write one of the members bare, like `{}`", self.enums[id as usize].members[0])
                    };
                    self.error(
                        Diagnostic::error(Code::TypeMismatch, span, format!("expected a member of `{ty}`, found text"))
                            .with_help(help),
                    );
                    return None;
                }
                constant(Const::Text(s.to_string()), Type::Text)
            }
            ExprKind::Name(name) => self.name_value(name, span, hint),
            ExprKind::Tag(path) => {
                let id = self.lookup_tag(&path)?;
                let tag = &self.tags[id as usize];
                if tag.status != ast::Status::Online && !self.item_released() {
                    let status = if tag.status == ast::Status::Draft { "draft" } else { "disabled" };
                    let mut d = Diagnostic::error(Code::InactiveTag, span, format!("tag `{}` is {status}", tag.name))
                        .with_secondary(tag.span, format!("declared {status} here"))
                        .with_note("new and changed rules may only use online tags; released rules keep working");
                    d = match (self.baseline, &self.item) {
                        (Some(b), Some(item)) => d
                            .with_note(format!(
                                "compared with release {}: {} is new or changed since it",
                                b.release,
                                item.describe()
                            ))
                            .with_help(format!(
                                "put the tag online (remove `{status}`), stop using it here, or keep this {} as release {} has it",
                                item.noun(),
                                b.release
                            )),
                        _ => d.with_help(format!("put the tag online (remove `{status}`) or do not use it")),
                    };
                    self.error(d);
                    return None;
                }
                uses.tags.push(TagRead { tag: id, span });
                Some(Value { kind: ValueKind::Tag(id), ty: tag.ty.clone(), span })
            }
            ExprKind::List(items) => self.list_value(items, span, hint, uses),
            ExprKind::Len(inner) => {
                let inner = self.value(inner, None, uses)?;
                if !matches!(inner.ty, Type::List(_)) {
                    let ty = self.type_text(&inner.ty);
                    self.error(
                        Diagnostic::error(Code::OperatorNotAllowed, span, format!("`len` is not allowed for `{ty}`"))
                            .with_help(format!(
                                "`len` takes a list; `{}` allows: {}",
                                inner.ty,
                                inner.ty.allowed_ops_text()
                            )),
                    );
                    return None;
                }
                Some(Value { kind: ValueKind::Len(Box::new(inner)), ty: Type::Int, span })
            }
            ExprKind::Neg(inner) => {
                let inner = self.value(inner, hint.filter(|h| h.is_numeric()), uses)?;
                self.expect_numeric(&inner, "-")?;
                let ty = inner.ty.clone();
                // Fold `- 5` into a constant so it is as good as `-5` wherever literals are required.
                let folded = match inner.kind {
                    ValueKind::Const(Const::Int(i)) => i.checked_neg().map(Const::Int),
                    ValueKind::Const(Const::Float(f)) => Some(Const::Float(-f)),
                    _ => None,
                };
                let kind = match folded {
                    Some(c) => ValueKind::Const(c),
                    None => ValueKind::Neg(Box::new(inner)),
                };
                Some(Value { kind, ty, span })
            }
            ExprKind::Arith { first, rest } => {
                let first = self.value(first, None, uses);
                let rest: Vec<Option<(crate::ops::ArithOp, Value)>> =
                    rest.iter().map(|(op, operand)| Some((*op, self.value(operand, None, uses)?))).collect();
                let first = first?;
                let rest: Vec<(crate::ops::ArithOp, Value)> = rest.into_iter().collect::<Option<_>>()?;
                // The first non-number in a chain is reported; the rest would repeat it.
                self.expect_numeric(&first, rest[0].0.as_str())?;
                for (op, v) in &rest {
                    self.expect_numeric(v, op.as_str())?;
                }
                let float = first.ty == Type::Float || rest.iter().any(|(_, v)| v.ty == Type::Float);
                let ty = if float { Type::Float } else { Type::Int };
                Some(Value { kind: ValueKind::Arith { first: Box::new(first), rest }, ty, span })
            }
            ExprKind::Or(_) | ExprKind::And(_) | ExprKind::Not(_) | ExprKind::Predicate { .. } => {
                self.error(
                    Diagnostic::error(Code::NotAValue, span, "expected a value, found a condition")
                        .with_note("decisions and operands hold values: literals, tags and arithmetic"),
                );
                None
            }
        }
    }

    fn expect_numeric(&mut self, v: &Value, op: &str) -> Option<()> {
        if v.ty.is_numeric() {
            return Some(());
        }
        let ty = self.type_text(&v.ty);
        self.error(
            Diagnostic::error(
                Code::OperatorNotAllowed,
                v.span,
                format!("operator `{op}` is not allowed for `{}`", v.ty),
            )
            .with_label(format!("this is `{ty}`"))
            .with_help(format!(
                "arithmetic takes int and float values; `{}` allows: {}",
                v.ty,
                v.ty.allowed_ops_text()
            )),
        );
        None
    }

    /// A bare name in value position: an enum member when the context expects an enum.
    fn name_value(&mut self, name: &str, span: Span, hint: Option<&Type>) -> Option<Value> {
        if let Some(&Type::Enum(id)) = hint {
            let members = &self.enums[id as usize].members;
            if let Some(index) = members.iter().position(|m| m == name) {
                return Some(Value { kind: ValueKind::Const(Const::Enum(index as u32)), ty: Type::Enum(id), span });
            }
            let suggestion = did_you_mean(name, members.iter().map(String::as_str)).map(str::to_owned);
            let ty = self.type_text(&Type::Enum(id));
            self.error(
                Diagnostic::error(Code::NotAMember, span, format!("`{name}` is not a member of `{ty}`"))
                    .with_label("not a member")
                    .with_suggestion(suggestion.as_deref())
                    .with_note(format!("the members are: {}", self.enums[id as usize].members.join(", "))),
            );
            return None;
        }
        let mut d = Diagnostic::error(Code::NotAValue, span, format!("expected a value, found name `{name}`"));
        d = if self.rule_by_name.contains_key(name) {
            d.with_note(format!("`{name}` is a rule: rules are conditions, not values"))
        } else {
            d.with_note("a bare name is an enum member only where it is compared with (or stored as) an enum")
        };
        if let Some(ty) = hint {
            d = d.with_help(format!("expected a `{}` value here", self.type_text(ty)));
        }
        self.error(d);
        None
    }

    fn list_value(
        &mut self,
        items: &[ast::Expr<'a>],
        span: Span,
        hint: Option<&Type>,
        uses: &mut Uses,
    ) -> Option<Value> {
        let hinted_elem = match hint {
            Some(Type::List(t)) => Some((**t).clone()),
            _ => None,
        };
        let mut elem = hinted_elem.clone();
        let mut consts = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let Some(v) = self.value(item, elem.as_ref(), uses) else {
                ok = false;
                continue;
            };
            let target = elem.get_or_insert_with(|| v.ty.clone()).clone();
            if matches!(v.ty, Type::List(_)) || v.ty == Type::Duration {
                let ty = self.type_text(&v.ty);
                self.error(Diagnostic::error(Code::TypeMismatch, v.span, format!("lists cannot hold `{ty}` values")));
                ok = false;
                continue;
            }
            if self.expect_assignable(&v, &target, "list element").is_none() {
                ok = false;
                continue;
            }
            match v.kind {
                ValueKind::Const(Const::Int(i)) if target == Type::Float => consts.push(Const::Float(i as f64)),
                ValueKind::Const(c) => consts.push(c),
                _ => {
                    self.error(
                        Diagnostic::error(Code::TypeMismatch, v.span, "list literals hold constants only")
                            .with_help("compare with the tag separately, or move the values into a list tag"),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        let Some(elem) = elem else {
            self.error(
                Diagnostic::error(Code::TypeMismatch, span, "cannot tell the element type of `[]` here")
                    .with_help("an empty list can only appear where its type is known, like `x in []`"),
            );
            return None;
        };
        Some(Value { kind: ValueKind::Const(Const::List(consts)), ty: Type::List(Box::new(elem)), span })
    }
}
