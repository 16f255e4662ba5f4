//! The compiled program: bytecode plus the tables that give it meaning.
//!
//! Owns: everything the VM and the engine need at run time, in a form that serializes into
//! bundles. Names are kept (for requests, results, traces and the disassembler); types are
//! runtime type tags, not the checker's types. Must not: hold anything the checker produced
//! (the typed deck is dropped after compiling) or any runtime state (that is the request's).

use serde::{Deserialize, Serialize};

use super::instr::Instr;
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
    #[serde(skip)]
    pub(crate) regexes: Vec<regex::Regex>,
    /// What the VM precomputes from the verified program (built by the verifier).
    #[serde(skip)]
    pub(crate) plans: crate::vm::plan::Plans,
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
