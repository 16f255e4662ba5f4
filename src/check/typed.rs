//! The typed deck: what the checker hands to the compiler.
//!
//! Owns: resolved, typed declarations with indexes instead of names, and a span on every
//! node for error reporting downstream. Owns its data (no arena, no AST references), so the
//! syntax tree can be dropped once checking is done. Must not: carry anything unresolved —
//! every name here has been looked up and every type checked.

use crate::ops::{ArithOp, CmpOp};
use crate::source::Span;
use crate::syntax::ast::Status;

pub use super::types::{Const, EnumDef, EnumId, Type};

pub type EntityId = u32;
pub type TagId = u32;
pub type RuleId = u32;
pub type LayerId = u32;
pub type SceneId = u32;

/// A whole checked program: every file of one compilation.
#[derive(Debug)]
pub struct Deck {
    pub entities: Vec<Entity>,
    pub enums: Vec<EnumDef>,
    pub tags: Vec<Tag>,
    pub rules: Vec<Rule>,
    pub layers: Vec<Layer>,
    pub scenes: Vec<Scene>,
    pub tests: Vec<Test>,
    /// Events, window tags, channels and actions (empty for decks without outreach).
    pub outreach: Outreach,
}

#[derive(Debug)]
pub struct Entity {
    pub name: String,
    /// The request key its tags are looked up by, e.g. `uid`.
    pub key: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagOwner {
    Entity(EntityId),
    /// `ctx.*`: supplied by the caller with the request.
    Passthrough,
}

#[derive(Debug)]
pub struct Tag {
    /// Full dotted name, e.g. `user.risk_score`.
    pub name: String,
    pub owner: TagOwner,
    pub ty: Type,
    /// The host provider that loads it (`None` for pass-through tags).
    pub provider: Option<String>,
    /// Seconds a loaded value may be reused across requests.
    pub cache_seconds: Option<i64>,
    /// Declared `sensitive`: its value is masked in traces and decision logs.
    pub sensitive: bool,
    pub status: Status,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    Entity(EntityId),
    Custom,
    Mixed,
}

#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub cond: Cond,
    /// Every tag the rule reads, directly or through rules it uses, each with the span of a
    /// direct read (for "rule `x` reads `user.y` here" notes). Sorted by tag, no duplicates.
    pub reads: Vec<TagRead>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagRead {
    pub tag: TagId,
    pub span: Span,
}

/// A typed boolean expression, evaluated in Kleene three-valued logic.
#[derive(Debug)]
pub struct Cond {
    pub kind: CondKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug)]
pub enum CondKind {
    Const(bool),
    Rule(RuleId),
    /// A `bool` value used bare: `user.vip`.
    Bool(Value),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    /// Operands have comparable types (numbers across int/float; otherwise equal types).
    Compare {
        op: CmpOp,
        lhs: Value,
        rhs: Value,
    },
    /// Inclusive on both ends.
    Between {
        value: Value,
        low: Value,
        high: Value,
    },
    /// `value in [..]`; `negated` for `not in`. Elements have the value's type.
    InSet {
        value: Value,
        set: Vec<Const>,
        negated: bool,
    },
    /// Text operators; `negated` for `not contains`.
    Text {
        op: TextOp,
        value: Value,
        arg: Value,
        negated: bool,
    },
    /// `matches`: the pattern compiled at check time (so it is known to be valid).
    Matches {
        value: Value,
        pattern: String,
    },
    /// `list contains item`; `negated` for `not contains`.
    ListContains {
        list: Value,
        item: Value,
        negated: bool,
    },
    ListContainsAny {
        list: Value,
        items: Vec<Const>,
    },
    ListContainsAll {
        list: Value,
        items: Vec<Const>,
    },
    IsEmpty(Value),
    /// `is missing`; `negated` for `is present`. Never unknown.
    IsMissing {
        value: Value,
        negated: bool,
    },
    Before {
        value: Value,
        at: Value,
    },
    After {
        value: Value,
        at: Value,
    },
    /// now − value ≤ seconds.
    Within {
        value: Value,
        seconds: i64,
    },
    /// now − value > seconds.
    OlderThan {
        value: Value,
        seconds: i64,
    },
}

/// A typed value expression.
#[derive(Debug)]
pub struct Value {
    pub kind: ValueKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Debug)]
pub enum ValueKind {
    Const(Const),
    Tag(TagId),
    /// Length of a list value.
    Len(Box<Value>),
    Neg(Box<Value>),
    /// Left to right: `first op1 v1 op2 v2 …` (precedence is already in the nesting).
    Arith {
        first: Box<Value>,
        rest: Vec<(ArithOp, Value)>,
    },
}

impl Value {
    pub fn as_const(&self) -> Option<&Const> {
        match &self.kind {
            ValueKind::Const(c) => Some(c),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// An entity's request key, always present in a valid request.
    Key(EntityId),
    /// A text or int tag; when it is missing the experiment does not match.
    Tag(TagId),
}

#[derive(Debug)]
pub struct Layer {
    pub name: String,
    pub unit: Unit,
    pub span: Span,
}

#[derive(Debug)]
pub struct Scene {
    pub name: String,
    pub keys: Vec<EntityId>,
    pub passes: Vec<TagId>,
    pub instances: Vec<Instance>,
    /// `on EVENT`: the event kind that triggers it. Its fields are then in `passes`.
    pub on: Option<EventId>,
    /// `for each ENTITY with INDEX(…) within D`: decides once per matching unit.
    pub fanout: Option<Fanout>,
    pub span: Span,
}

/// `for each user with favorite(sku == event.skuid) within 30d`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fanout {
    /// The entity decided for; the scene takes its key (and the trigger's).
    pub entity: EntityId,
    /// The index event kind, keyed by `entity`.
    pub index: EventId,
    /// (field of the index event, the trigger's value), sorted by the index field.
    pub pairs: Vec<(u32, FanoutValue)>,
    pub within_seconds: i64,
}

#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub ty: Type,
}

#[derive(Debug)]
pub struct Instance {
    pub name: String,
    /// The decision type: every decision of this instance has exactly these fields.
    pub fields: Vec<Field>,
    /// Tried top to bottom; the first whose `when` holds decides.
    pub strategies: Vec<Strategy>,
    pub default: Option<Decision>,
    /// A `reach` instance: its first [`REACH_FIELDS`] fields are the reach's channel,
    /// action and dedup, the rest the payload (see [`Outreach`]).
    pub reach: bool,
    pub span: Span,
}

#[derive(Debug)]
pub struct Strategy {
    pub name: String,
    /// `None`: always holds.
    pub when: Option<Cond>,
    pub outcome: Outcome,
    pub span: Span,
}

#[derive(Debug)]
pub enum Outcome {
    Decision(Decision),
    Experiment(Experiment),
}

/// A decision: one value per field of the instance's decision type, in field order.
#[derive(Debug)]
pub struct Decision {
    pub values: Vec<Value>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Experiment {
    pub name: String,
    pub unit: Unit,
    /// The hash salt: the experiment's name unless `salt "…"` overrides it.
    pub salt: String,
    pub layer: Option<LayerClaim>,
    /// In declaration order; group i takes the bucket range after group i−1's.
    pub groups: Vec<Group>,
    pub span: Span,
}

/// `in LAYER A%..B%`: the experiment sees units whose layer bucket is in `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerClaim {
    pub layer: LayerId,
    /// Bucket, 0..=10000.
    pub start: u32,
    /// Bucket, exclusive.
    pub end: u32,
}

#[derive(Debug)]
pub struct Group {
    pub name: String,
    /// How many of the 10,000 buckets this group covers (its percentage × 100).
    pub buckets: u32,
    pub decision: Decision,
    pub span: Span,
}

#[derive(Debug)]
pub struct Test {
    pub name: String,
    /// Request keys the test gives: entity and value (ints are given as their decimal text).
    pub keys: Vec<(EntityId, String)>,
    /// Tag values the test gives (pass-through and loaded tags alike); all others are missing.
    pub tags: Vec<(TagId, Const)>,
    /// `now`, seconds since the Unix epoch.
    pub now: Option<i64>,
    pub expects: Vec<Expectation>,
    pub span: Span,
}

#[derive(Debug)]
pub enum Expectation {
    /// `expect scene.instance => {…}`; `decision` is `None` for `=> none`. Values are in the
    /// instance's field order.
    Decision { scene: SceneId, instance: u32, decision: Option<Vec<Const>>, span: Span },
    /// `expect strategy S [group G]`, about the preceding decision expectation.
    Strategy { strategy: StrategyRef, group: Option<u32>, span: Span },
    /// `expect tag T for KEY => VALUE`: the `--tags` file's value for that key; `None` for
    /// `=> missing`.
    Tag { tag: TagId, key: String, value: Option<Const>, span: Span },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyRef {
    /// Index into the instance's strategies.
    Named(u32),
    /// The instance's `default`.
    Default,
}

// ---------------------------------------------------------------------------------------
// Outreach
// ---------------------------------------------------------------------------------------

pub type EventId = u32;

pub use crate::ops::{Aggregate, Budget, Cap, FanoutValue, QuietHours, REACH_FIELDS};

/// Everything outreach adds to a deck.
#[derive(Debug, Default)]
pub struct Outreach {
    pub events: Vec<Event>,
    pub windows: Vec<Window>,
    pub channels: Vec<Channel>,
    pub actions: Vec<Action>,
}

/// `event browse by uid late 5m { sku: text }`.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    /// The entity whose key the event carries.
    pub entity: EntityId,
    /// Allowed lateness, seconds.
    pub late_seconds: i64,
    pub fields: Vec<EventField>,
    pub span: Span,
}

#[derive(Debug)]
pub struct EventField {
    pub name: String,
    pub ty: Type,
    /// The pass-through tag `event.EVENT.FIELD` that carries it into a scene `on` the event.
    pub tag: TagId,
}

/// `tag user.x: int = AGG(EVENT[.FIELD] [where FILTER]) within D`.
#[derive(Debug)]
pub struct Window {
    /// The tag it computes (owned by the event's entity, no provider).
    pub tag: TagId,
    pub event: EventId,
    pub agg: Aggregate,
    /// Index into the event's fields; `None` for `count`.
    pub field: Option<u32>,
    pub filter: Option<Filter>,
    pub within_seconds: i64,
}

/// A window's `where`: a condition over the event's fields (which are always present).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `field OP literal`; numbers compare across int and float.
    Compare {
        field: u32,
        op: CmpOp,
        value: Const,
    },
    /// `field in [..]`, `field not in [..]`.
    InSet {
        field: u32,
        set: Vec<Const>,
        negated: bool,
    },
}

#[derive(Debug)]
pub struct Channel {
    pub name: String,
    pub caps: Vec<Cap>,
    pub quiet: Option<QuietHours>,
    /// A text tag of the user holding an IANA time zone; UTC without.
    pub zone: Option<TagId>,
    pub span: Span,
}

/// `action "name" cap … budget …`.
#[derive(Debug)]
pub struct Action {
    pub name: String,
    pub caps: Vec<Cap>,
    pub budget: Option<Budget>,
    pub span: Span,
}
