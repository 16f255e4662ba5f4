//! The compiled program: bytecode plus the tables that give it meaning.
//!
//! Owns: everything the VM and the engine need at run time, in a form that serializes into
//! bundles. Names are kept (for requests, results, traces and the disassembler); types are
//! runtime type tags, not the checker's types. Must not: hold anything the checker produced
//! (the typed deck is dropped after compiling) or any runtime state (that is the request's).

use serde::{Deserialize, Serialize};

use super::instr::Instr;
pub use crate::ops::FanoutValue;
use crate::ops::{Aggregate, Budget, Cap, CmpOp, QuietHours, REACH_FIELDS};
use crate::source::Span;

/// A runtime type tag: what values a tag slot, field or constant holds. Not recursive
/// (list elements are scalars), so deserializing a hostile bundle cannot recurse deeply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ty {
    Int,
    Float,
    Text,
    Bool,
    Time,
    /// Index into [`Program::enums`].
    Enum(u32),
    List(Elem),
}

/// The type of a list's elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Elem {
    Int,
    Float,
    Text,
    Bool,
    Time,
    Enum(u32),
}

impl Elem {
    pub fn ty(self) -> Ty {
        match self {
            Elem::Int => Ty::Int,
            Elem::Float => Ty::Float,
            Elem::Text => Ty::Text,
            Elem::Bool => Ty::Bool,
            Elem::Time => Ty::Time,
            Elem::Enum(e) => Ty::Enum(e),
        }
    }
}

/// An element of a list: of a constant list in the program, or of a list tag's value in a
/// request (one type for both, so the VM compares them without converting).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Time(i64),
    Enum(u32),
}

/// A constant of the pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Const {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    /// Seconds since the Unix epoch.
    Time(i64),
    /// A member index of some enum (the instruction's context says which).
    Enum(u32),
    /// Seconds, for `within` / `older than`.
    Seconds(i64),
    /// A constant list (decision values).
    List(Vec<Scalar>),
}

/// A precomputed set for `in`, `contains_any` and `contains_all`: sorted by kind so that
/// membership is a binary search, and numbers match across int and float.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConstSet {
    /// Ints, times and bools (as 0/1), sorted, deduplicated.
    pub ints: Vec<i64>,
    /// Floats, sorted, deduplicated, never NaN.
    pub floats: Vec<f64>,
    pub texts: Vec<String>,
    pub enums: Vec<u32>,
    /// Number of distinct elements, for `contains_all`.
    pub len: u32,
    /// The enum type of `enums`, so the disassembler can name members.
    pub enum_type: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntityInfo {
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagInfo {
    /// Full name, `user.risk_score`.
    pub name: String,
    /// The entity whose key loads it; `None` for pass-through tags.
    pub entity: Option<u32>,
    pub ty: Ty,
    pub provider: Option<String>,
    pub cache_seconds: Option<i64>,
    /// Declared `sensitive`: hosts show `"<sensitive>"` instead of its value in traces and
    /// decision logs (whether it was present still shows).
    pub sensitive: bool,
    /// Estimated cost of reading it, used to order clauses: pass-through 0, cached 1, else 2.
    pub cost: u8,
}

/// A straight-line block of code: `[start, end)`, ending in its terminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleInfo {
    pub name: String,
    /// A condition block.
    pub block: Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// An entity's request key.
    Key(u32),
    /// A text or int tag.
    Tag(u32),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerInfo {
    pub name: String,
    pub unit: Unit,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FieldInfo {
    pub name: String,
    pub ty: Ty,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub buckets: u32,
    /// A decision block.
    pub decision: Block,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerClaim {
    pub layer: u32,
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExperimentInfo {
    pub name: String,
    pub salt: String,
    pub unit: Unit,
    pub layer: Option<LayerClaim>,
    pub groups: Vec<GroupInfo>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OutcomeInfo {
    /// A decision block.
    Decision(Block),
    Experiment(ExperimentInfo),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StrategyInfo {
    pub name: String,
    /// A condition block; `None` always holds.
    pub when: Option<Block>,
    pub outcome: OutcomeInfo,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    pub strategies: Vec<StrategyInfo>,
    /// A decision block.
    pub default: Option<Block>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SceneInfo {
    pub name: String,
    /// Entities whose keys every request of this scene carries.
    pub keys: Vec<u32>,
    /// Pass-through tags every request of this scene carries.
    pub passes: Vec<u32>,
    pub instances: Vec<InstanceInfo>,
}

/// A source file, kept so that the disassembler and traces can quote source lines.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceText {
    pub name: String,
    pub text: String,
}

/// A compiled program. Immutable once built; `Send + Sync`; shared by all requests.
#[derive(Debug, Serialize, Deserialize)]
pub struct Program {
    pub entities: Vec<EntityInfo>,
    /// Members of each enum type.
    pub enums: Vec<Vec<String>>,
    pub tags: Vec<TagInfo>,
    pub consts: Vec<Const>,
    pub sets: Vec<ConstSet>,
    /// `matches` patterns; compiled when the program is built or loaded.
    pub regex_sources: Vec<String>,
    pub code: Vec<Instr>,
    /// The source span of each instruction (parallel to `code`), read only on error paths
    /// and by the disassembler.
    pub spans: Vec<Span>,
    pub rules: Vec<RuleInfo>,
    pub layers: Vec<LayerInfo>,
    pub scenes: Vec<SceneInfo>,
    pub sources: Vec<SourceText>,
    /// Deepest stack any block needs (computed by the verifier).
    pub max_stack: u32,
    /// Deepest chain of rule calls (computed by the verifier).
    pub max_calls: u32,
    /// Events, window tags, channels and actions (empty for decks without outreach).
    /// Serialized in its own section of a bundle, after the program (format 3), so that
    /// bundles of format 2 still load.
    #[serde(skip)]
    pub outreach: OutreachInfo,
    #[serde(skip)]
    pub(crate) regexes: Vec<regex::Regex>,
    /// What the VM precomputes from the verified program (built by the verifier).
    #[serde(skip)]
    pub(crate) plans: crate::vm::plan::Plans,
}

/// What outreach adds to a program: the behavior events it takes, the window tags computed
/// from them, and the channels and actions its reach decisions go through.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutreachInfo {
    pub events: Vec<EventInfo>,
    pub windows: Vec<WindowInfo>,
    pub channels: Vec<ChannelInfo>,
    pub actions: Vec<ActionInfo>,
    /// Per scene (parallel to [`Program::scenes`]; empty when no scene has one): the event
    /// kind that triggers it.
    pub scene_events: Vec<Option<u32>>,
    /// The longest `dedup` of any reach decision, seconds: how long sends must be kept.
    pub max_dedup_seconds: i64,
    /// Per scene (parallel to [`Program::scenes`]; empty when no scene has one): its
    /// fan-out. Serialized in a section of its own after this one (bundle format 4), so
    /// that bundles of format 3 still load, as programs without fan-outs.
    #[serde(skip)]
    pub scene_fanouts: Vec<Option<FanoutInfo>>,
}

/// `for each ENTITY with INDEX(FIELD == event.X and …) within D` of a scene `on` an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FanoutInfo {
    /// The entity the scene decides for, one unit at a time.
    pub entity: u32,
    /// The index event kind (keyed by `entity`).
    pub index_event: u32,
    /// (field of the index event, the triggering event's value), sorted by the index field.
    pub pairs: Vec<(u32, FanoutValue)>,
    pub within_seconds: i64,
}

/// `event browse by uid late 5m { sku: text }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventInfo {
    pub name: String,
    /// The entity whose key the event carries.
    pub entity: u32,
    /// Allowed lateness, seconds.
    pub late_seconds: i64,
    pub fields: Vec<EventFieldInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventFieldInfo {
    pub name: String,
    pub ty: Ty,
    /// The pass-through tag that carries it into a scene `on` the event.
    pub tag: u32,
}

/// `tag user.x: int = AGG(EVENT[.FIELD] [where FILTER]) within D`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowInfo {
    /// The tag it computes.
    pub tag: u32,
    pub event: u32,
    pub agg: Aggregate,
    /// Index into the event's fields; `None` for `count`.
    pub field: Option<u32>,
    /// The `where`, in postfix order (empty: every event passes). Postfix rather than a
    /// tree so that decoding a hostile bundle cannot recurse.
    pub filter: Vec<FilterStep>,
    pub within_seconds: i64,
}

/// One step of a window's `where` in postfix order: comparisons push a truth value,
/// `And`/`Or` pop that many and push one, `Not` negates the top. Event fields are always
/// present, so the logic is two-valued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FilterStep {
    /// `field OP value`; numbers compare across int and float.
    Compare {
        field: u32,
        op: CmpOp,
        value: Const,
    },
    /// `field in [..]` (or `not in` when `negated`).
    InSet {
        field: u32,
        set: Vec<Const>,
        negated: bool,
    },
    And(u32),
    Or(u32),
    Not,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub name: String,
    pub caps: Vec<Cap>,
    pub quiet: Option<QuietHours>,
    /// A text tag of the user holding an IANA time zone; UTC without.
    pub zone: Option<u32>,
}

/// `action "name" cap … budget …`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionInfo {
    pub name: String,
    pub caps: Vec<Cap>,
    pub budget: Option<Budget>,
}

impl OutreachInfo {
    /// Whether the program takes no events at all.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The event kind that triggers scene `scene`, if any.
    pub fn scene_event(&self, scene: usize) -> Option<u32> {
        self.scene_events.get(scene).copied().flatten()
    }

    /// Scene `scene`'s fan-out, if it has one.
    pub fn scene_fanout(&self, scene: usize) -> Option<&FanoutInfo> {
        self.scene_fanouts.get(scene).and_then(Option::as_ref)
    }
}

impl InstanceInfo {
    /// A `reach` instance: its first fields are [`REACH_FIELDS`], the rest the payload.
    pub fn is_reach(&self) -> bool {
        self.fields.first().is_some_and(|f| f.name == REACH_FIELDS[0])
    }
}

impl Program {
    /// Every tag that loads from a provider, as `(tag name, provider name)` in declaration
    /// order (pass-through tags have none). Hosts check their provider set against it.
    pub fn provider_names(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.tags.iter().filter_map(|t| t.provider.as_deref().map(|p| (t.name.as_str(), p)))
    }

    /// Whether tag `tag` (an id, as in [`crate::Need::tag`]) is declared `sensitive`.
    pub fn is_sensitive(&self, tag: u32) -> bool {
        self.tags.get(tag as usize).is_some_and(|t| t.sensitive)
    }

    pub fn scene(&self, name: &str) -> Option<(u32, &SceneInfo)> {
        self.scenes.iter().enumerate().find(|(_, s)| s.name == name).map(|(i, s)| (i as u32, s))
    }

    pub fn tag(&self, name: &str) -> Option<(u32, &TagInfo)> {
        self.tags.iter().enumerate().find(|(_, t)| t.name == name).map(|(i, t)| (i as u32, t))
    }

    pub fn block_code(&self, block: Block) -> &[Instr] {
        &self.code[block.start as usize..block.end as usize]
    }

    /// A runtime type as the docs write it: `int`, `list<text>`, `enum(a, b)` with enum
    /// members joined by `member_sep`. The one type printer: messages use `", "`; version
    /// content hashes use `","`, so that spelling must never change.
    pub fn type_name(&self, ty: Ty, member_sep: &str) -> String {
        match ty {
            Ty::Int => "int".into(),
            Ty::Float => "float".into(),
            Ty::Text => "text".into(),
            Ty::Bool => "bool".into(),
            Ty::Time => "time".into(),
            Ty::Enum(e) => match self.enums.get(e as usize) {
                Some(members) => format!("enum({})", members.join(member_sep)),
                None => "enum(?)".into(),
            },
            Ty::List(elem) => format!("list<{}>", self.type_name(elem.ty(), member_sep)),
        }
    }
}
