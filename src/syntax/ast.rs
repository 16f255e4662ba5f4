//! The untyped syntax tree, allocated in a bumpalo arena.
//!
//! Owns: the shape of what was written, with a span on every node. Names are unresolved
//! strings; literals are decoded (escapes, numbers, times) but untyped. Must not: resolve
//! names or know types. That is `check`'s job, which reads this tree and builds its own.
//!
//! Every node is `Copy`-free of destructors (only `&'a` references into the arena), so the
//! whole tree is dropped at once with its arena.

use crate::ops::{ArithOp, CmpOp};
use crate::source::Span;

/// A name as written.
#[derive(Clone, Copy, Debug)]
pub struct Ident<'a> {
    pub name: &'a str,
    pub span: Span,
}

/// `entity.name`: a tag (or `scene.instance` after `expect`).
#[derive(Clone, Copy, Debug)]
pub struct Path<'a> {
    pub first: Ident<'a>,
    pub second: Ident<'a>,
    pub span: Span,
}

impl Path<'_> {
    pub fn to_dotted(&self) -> String {
        format!("{}.{}", self.first.name, self.second.name)
    }
}

/// One parsed file.
#[derive(Debug)]
pub struct File<'a> {
    pub items: &'a [Item<'a>],
}

#[derive(Debug)]
pub enum Item<'a> {
    Entity(&'a EntityDecl<'a>),
    Tag(&'a TagDecl<'a>),
    Rule(&'a RuleDecl<'a>),
    Layer(&'a LayerDecl<'a>),
    Scene(&'a SceneDecl<'a>),
    Test(&'a TestDecl<'a>),
    /// `event NAME by KEY [late D] { fields }` (outreach).
    Event(&'a EventDecl<'a>),
    /// `tag PATH: TYPE = AGG(…) within D` (outreach).
    WindowTag(&'a WindowTagDecl<'a>),
    /// `channel NAME options…` (outreach).
    Channel(&'a ChannelDecl<'a>),
    /// `action "NAME" options…` (outreach).
    Action(&'a ActionDecl<'a>),
}

/// `event browse by uid late 5m { sku: text }`
#[derive(Debug)]
pub struct EventDecl<'a> {
    pub name: Ident<'a>,
    pub key: Ident<'a>,
    /// Allowed lateness in seconds, with its span.
    pub late: Option<(i64, Span)>,
    pub fields: &'a [FieldDecl<'a>],
    pub span: Span,
}

/// `tag user.phone_browses: int = count(browse where category == "phone") within 10m`
#[derive(Debug)]
pub struct WindowTagDecl<'a> {
    pub path: Path<'a>,
    pub ty: &'a TypeExpr<'a>,
    /// `count`, `sum`, … as written (the checker rejects other names).
    pub agg: Ident<'a>,
    /// `browse` or `order.amount_cents`.
    pub source: Unit<'a>,
    pub filter: Option<&'a Expr<'a>>,
    /// Seconds, with the span of the duration.
    pub within: (i64, Span),
    pub status: Option<(Status, Span)>,
    pub span: Span,
}

/// `cap N per D`
#[derive(Clone, Copy, Debug)]
pub struct Cap {
    pub count: i64,
    /// Seconds.
    pub per: i64,
    pub span: Span,
}

/// `channel push cap 3 per 1d quiet 22:00..08:00 drop zone user.tz`
#[derive(Debug)]
pub struct ChannelDecl<'a> {
    pub name: Ident<'a>,
    pub caps: &'a [Cap],
    pub quiet: &'a [Quiet],
    pub zones: &'a [Path<'a>],
    pub span: Span,
}

/// `quiet 22:00..08:00 [hold | drop]`: minutes after midnight.
#[derive(Clone, Copy, Debug)]
pub struct Quiet {
    /// Minutes after midnight; `None` where the clock was not a valid time of day.
    pub from: Option<u32>,
    pub to: Option<u32>,
    pub drop: bool,
    pub span: Span,
}

/// `action "red_packet" cap 1 per 30d budget 100_000 of amount_cents`
#[derive(Debug)]
pub struct ActionDecl<'a> {
    pub name: StrLit<'a>,
    pub caps: &'a [Cap],
    pub budgets: &'a [Budget<'a>],
    pub span: Span,
}

/// `budget N [of FIELD]`
#[derive(Clone, Copy, Debug)]
pub struct Budget<'a> {
    pub amount: i64,
    pub of: Option<Ident<'a>>,
    pub span: Span,
}

/// `entity user key uid`
#[derive(Debug)]
pub struct EntityDecl<'a> {
    pub name: Ident<'a>,
    pub key: Ident<'a>,
    pub span: Span,
}

/// `tag user.risk_score: int from "risk" cache 3m`
#[derive(Debug)]
pub struct TagDecl<'a> {
    pub path: Path<'a>,
    pub ty: &'a TypeExpr<'a>,
    pub options: &'a [TagOption<'a>],
    pub span: Span,
}

#[derive(Debug)]
pub enum TagOption<'a> {
    From(StrLit<'a>),
    /// Seconds.
    Cache(i64, Span),
    Passthrough(Span),
    /// Traces and decision logs mask the value.
    Sensitive(Span),
    Status(Status, Span),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Draft,
    Online,
    Disabled,
}

/// A decoded text literal.
#[derive(Clone, Copy, Debug)]
pub struct StrLit<'a> {
    pub value: &'a str,
    pub span: Span,
}

#[derive(Debug)]
pub struct TypeExpr<'a> {
    pub kind: TypeExprKind<'a>,
    pub span: Span,
}

#[derive(Debug)]
pub enum TypeExprKind<'a> {
    /// `int`, `float`, `text`, `bool`, `time` — or a name the checker rejects.
    Named(Ident<'a>),
    Enum(&'a [Ident<'a>]),
    List(&'a TypeExpr<'a>),
}

/// `rule user low_risk = EXPR`
#[derive(Debug)]
pub struct RuleDecl<'a> {
    pub kind: Ident<'a>,
    pub name: Ident<'a>,
    pub expr: &'a Expr<'a>,
    pub span: Span,
}

/// `layer checkout by uid`
#[derive(Debug)]
pub struct LayerDecl<'a> {
    pub name: Ident<'a>,
    pub unit: Unit<'a>,
    pub span: Span,
}

/// `by uid` or `by user.device_id`
#[derive(Clone, Copy, Debug)]
pub enum Unit<'a> {
    Key(Ident<'a>),
    Tag(Path<'a>),
}

impl Unit<'_> {
    pub fn span(&self) -> Span {
        match self {
            Unit::Key(i) => i.span,
            Unit::Tag(p) => p.span,
        }
    }
}

#[derive(Debug)]
pub struct SceneDecl<'a> {
    pub name: Ident<'a>,
    /// `on EVENT`: the event kind that triggers the scene (outreach).
    pub on: Option<Ident<'a>>,
    /// `for each ENTITY with INDEX(FIELD == event.FIELD …) within D` after `on EVENT`.
    pub fanout: Option<&'a Fanout<'a>>,
    pub keys: &'a [Ident<'a>],
    pub passes: &'a [Path<'a>],
    pub instances: &'a [InstanceDecl<'a>],
    pub span: Span,
}

/// `for each user with favorite(sku == event.skuid) within 30d` (outreach fan-out).
#[derive(Debug)]
pub struct Fanout<'a> {
    /// The entity whose units the scene decides for (`user`).
    pub entity: Ident<'a>,
    /// The index event kind (`favorite`), keyed by that entity.
    pub index: Ident<'a>,
    /// `FIELD == event.FIELD`: a field of the index event, a value of the trigger.
    pub pairs: &'a [(Ident<'a>, Path<'a>)],
    /// The window before the trigger, seconds, with its span.
    pub within: (i64, Span),
    pub span: Span,
}

#[derive(Debug)]
pub struct InstanceDecl<'a> {
    pub name: Ident<'a>,
    /// `-> reach { payload }`: the span of `reach`; `fields` are then the payload's.
    pub reach: Option<Span>,
    pub fields: &'a [FieldDecl<'a>],
    pub strategies: &'a [StrategyDecl<'a>],
    pub default: Option<DefaultDecl<'a>>,
    pub span: Span,
}

/// `count: int` in a decision type.
#[derive(Debug)]
pub struct FieldDecl<'a> {
    pub name: Ident<'a>,
    pub ty: &'a TypeExpr<'a>,
}

#[derive(Debug)]
pub struct StrategyDecl<'a> {
    pub name: Ident<'a>,
    pub when: Option<&'a Expr<'a>>,
    pub body: StrategyBody<'a>,
    pub span: Span,
}

#[derive(Debug)]
pub enum StrategyBody<'a> {
    Decision(&'a Decision<'a>),
    Experiment(&'a ExperimentDecl<'a>),
}

#[derive(Debug)]
pub struct DefaultDecl<'a> {
    pub decision: &'a Decision<'a>,
    pub span: Span,
}

#[derive(Debug)]
pub struct ExperimentDecl<'a> {
    pub name: Ident<'a>,
    pub unit: Unit<'a>,
    pub layer: Option<LayerClaim<'a>>,
    pub salt: Option<StrLit<'a>>,
    pub groups: &'a [GroupDecl<'a>],
    pub span: Span,
}

/// `in checkout 0%..50%`
#[derive(Debug)]
pub struct LayerClaim<'a> {
    pub layer: Ident<'a>,
    pub from: Percent,
    pub to: Percent,
    pub span: Span,
}

/// A percentage in hundredths of a percent (basis points of 1/10000): `12.5%` is 1250.
#[derive(Clone, Copy, Debug)]
pub struct Percent {
    pub hundredths: u32,
    pub span: Span,
}

#[derive(Debug)]
pub struct GroupDecl<'a> {
    pub name: Ident<'a>,
    pub percent: Percent,
    pub decision: &'a Decision<'a>,
    pub span: Span,
}

/// `{ count: 3, label: "x" }`, `reach push "action" { … } dedup 1d`, or `none`.
#[derive(Debug)]
pub struct Decision<'a> {
    pub kind: DecisionKind<'a>,
    /// The record's fields (a reach action's payload).
    pub fields: &'a [FieldInit<'a>],
    pub span: Span,
}

/// Which kind of decision was written.
#[derive(Clone, Copy, Debug)]
pub enum DecisionKind<'a> {
    /// `{ … }`
    Record,
    /// `reach CHANNEL "action" [{ … }] [dedup D]`; dedup in seconds.
    Reach { channel: Ident<'a>, action: StrLit<'a>, dedup: Option<(i64, Span)> },
    /// `none` in a reach instance: the tracked control group.
    Control,
}

#[derive(Debug)]
pub struct FieldInit<'a> {
    pub name: Ident<'a>,
    pub value: &'a Expr<'a>,
}

#[derive(Debug)]
pub struct TestDecl<'a> {
    pub name: StrLit<'a>,
    pub given: &'a [GivenEntry<'a>],
    pub expects: &'a [Expect<'a>],
    pub span: Span,
}

#[derive(Debug)]
pub enum GivenName<'a> {
    /// An entity key such as `uid`, or `now`.
    Key(Ident<'a>),
    Tag(Path<'a>),
}

#[derive(Debug)]
pub struct GivenEntry<'a> {
    pub name: GivenName<'a>,
    pub value: &'a Expr<'a>,
}

#[derive(Debug)]
pub enum Expect<'a> {
    /// `expect scene.instance => {…}`; `decision` is `None` for `=> none`.
    Decision { target: Path<'a>, decision: Option<&'a Decision<'a>>, span: Span },
    /// `expect strategy S [group G]`
    Strategy { strategy: Ident<'a>, group: Option<Ident<'a>>, span: Span },
    /// `expect tag T for KEY => VALUE`; `value` is `None` for `=> missing`.
    Tag { tag: Path<'a>, key: &'a Expr<'a>, value: Option<&'a Expr<'a>>, span: Span },
}

/// An expression: a condition or a value; which one is the checker's call.
#[derive(Clone, Copy, Debug)]
pub struct Expr<'a> {
    pub kind: ExprKind<'a>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug)]
pub enum ExprKind<'a> {
    /// Two or more clauses joined by `or` (flat: a chain of 100,000 does not nest).
    Or(&'a [Expr<'a>]),
    /// Two or more clauses joined by `and`.
    And(&'a [Expr<'a>]),
    Not(&'a Expr<'a>),
    /// `subject OP args…`: comparisons and every other operator after a value.
    Predicate {
        op: PredOp,
        op_span: Span,
        subject: &'a Expr<'a>,
        args: &'a [Expr<'a>],
    },
    /// `first (op operand)*` with one precedence level per chain (flat, like `and`).
    Arith {
        first: &'a Expr<'a>,
        rest: &'a [(ArithOp, Expr<'a>)],
    },
    Neg(&'a Expr<'a>),
    Len(&'a Expr<'a>),
    List(&'a [Expr<'a>]),
    /// A bare name: a rule, an enum member, or a key, by context.
    Name(&'a str),
    Tag(Path<'a>),
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
    /// Seconds.
    Duration(i64),
    /// Seconds since the Unix epoch, UTC.
    Time(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredOp {
    /// `== != < <= > >=`: the comparison the checker, compiler and VM carry on unchanged.
    Cmp(CmpOp),
    Between,
    In,
    NotIn,
    Contains,
    NotContains,
    ContainsAny,
    ContainsAll,
    StartsWith,
    EndsWith,
    Matches,
    IsMissing,
    IsPresent,
    IsEmpty,
    Before,
    After,
    Within,
    OlderThan,
}

impl PredOp {
    /// The operator as the user writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PredOp::Cmp(op) => op.as_str(),
            PredOp::Between => "between",
            PredOp::In => "in",
            PredOp::NotIn => "not in",
            PredOp::Contains => "contains",
            PredOp::NotContains => "not contains",
            PredOp::ContainsAny => "contains_any",
            PredOp::ContainsAll => "contains_all",
            PredOp::StartsWith => "starts_with",
            PredOp::EndsWith => "ends_with",
            PredOp::Matches => "matches",
            PredOp::IsMissing => "is missing",
            PredOp::IsPresent => "is present",
            PredOp::IsEmpty => "is empty",
            PredOp::Before => "before",
            PredOp::After => "after",
            PredOp::Within => "within",
            PredOp::OlderThan => "older than",
        }
    }
}
