//! One evaluation's state: keys, pass-through values, loaded tags, `now`, and the scratch
//! space the VM reuses.
//!
//! Owns: validating what the caller gives (refusing unknown or ill-typed keys and
//! pass-through values with an error naming the field), coercing provider values to the
//! tag's type (a wrong type becomes missing, with the reason kept for the trace), and
//! reuse: `reset` keeps every buffer, so a reused request decides without allocating.
//! Must not: evaluate anything (that is `machine.rs`).

use std::fmt;

use super::plan::InstancePlan;
use super::value::{slot_val, MissingReason, TagValue, Val};
use crate::compile::program::{InstanceInfo, Program, Scalar, Ty};
use crate::diagnostics::did_you_mean;

/// A request refused before or while running: the caller's mistake, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    UnknownScene {
        scene: String,
        /// The nearest scene name, when one is near enough to be a typo.
        did_you_mean: Option<String>,
    },
    UnknownInstance {
        scene: String,
        instance: String,
        /// The nearest instance name of the scene, when one is near enough to be a typo.
        did_you_mean: Option<String>,
    },
    /// A key this scene does not take.
    UnknownKey {
        scene: String,
        key: String,
    },
    /// A pass-through tag this scene does not take.
    UnknownPass {
        scene: String,
        tag: String,
    },
    MissingKey(String),
    MissingPass(String),
    /// A pass-through value of the wrong type.
    InvalidPass {
        tag: String,
        problem: String,
    },
    /// A request document that is not of the expected shape.
    InvalidInput(String),
    /// `Program::run` was given a request that another program made.
    OtherProgram,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnknownScene { scene, did_you_mean } => {
                write!(f, "unknown scene `{scene}`")?;
                suggest(f, did_you_mean)
            }
            RequestError::UnknownInstance { scene, instance, did_you_mean } => {
                write!(f, "scene `{scene}` has no instance `{instance}`")?;
                suggest(f, did_you_mean)
            }
            RequestError::UnknownKey { scene, key } => write!(f, "scene `{scene}` does not take key `{key}`"),
            RequestError::UnknownPass { scene, tag } => {
                write!(f, "scene `{scene}` does not take pass-through tag `{tag}`")
            }
            RequestError::MissingKey(k) => write!(f, "missing key `{k}`"),
            RequestError::MissingPass(t) => write!(f, "missing pass-through tag `{t}`"),
            RequestError::InvalidPass { tag, problem } => write!(f, "invalid value for `{tag}`: {problem}"),
            RequestError::InvalidInput(problem) => f.write_str(problem),
            RequestError::OtherProgram => {
                f.write_str("this request was made by another program: run it with `Request::run`")
            }
        }
    }
}

impl std::error::Error for RequestError {}

fn suggest(f: &mut fmt::Formatter<'_>, did_you_mean: &Option<String>) -> fmt::Result {
    match did_you_mean {
        Some(name) => write!(f, "; did you mean `{name}`?"),
        None => Ok(()),
    }
}

impl RequestError {
    fn unknown_instance(scene: &crate::compile::program::SceneInfo, instance: &str) -> RequestError {
        RequestError::UnknownInstance {
            scene: scene.name.clone(),
            instance: instance.to_string(),
            did_you_mean: did_you_mean(instance, scene.instances.iter().map(|i| i.name.as_str())).map(str::to_string),
        }
    }
}

/// Whether a value would be accepted for a tag of type `ty`; `Err` names what it is instead.
pub(crate) fn check_type(p: &Program, ty: &Ty, v: Input<'_>) -> Result<(), &'static str> {
    coerce(p, ty, v, &mut TagValue::Bool(false))
}

/// A value as a host supplies it: borrowed, typed loosely; coerced to the tag's type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Input<'a> {
    Int(i64),
    Float(f64),
    Text(&'a str),
    Bool(bool),
    /// Seconds since the Unix epoch.
    Time(i64),
    List(&'a [Input<'a>]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    NotLoaded,
    Loaded,
    Missing,
}

/// A tag's slot in a request. The value's buffers survive `reset` so reuse does not allocate.
#[derive(Debug)]
pub(crate) struct TagSlot {
    pub state: SlotState,
    pub value: TagValue,
    pub missing: Option<MissingReason>,
    /// Already reported to the caller as needed in the current suspension.
    pub needed: bool,
    /// Already recorded in the trace.
    pub traced: bool,
}

/// A supplied tag's slot as the engine's cache keeps it (see [`Request::copy_slot`]).
#[derive(Debug)]
pub(crate) struct SlotCopy {
    state: SlotState,
    value: TagValue,
    missing: Option<MissingReason>,
}

/// Where evaluation resumes after a suspension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    When,
    Outcome,
}

/// One decision request for one instance of one scene. Build it with
/// [`Program::request`], give keys, pass-through values and `now`, then run it.
pub struct Request<'p> {
    pub(crate) program: &'p Program,
    pub(crate) scene: u32,
    pub(crate) instance: u32,
    /// The instance's description and its plan (none for an unverified program), looked up
    /// once per request rather than once per decision.
    pub(crate) info: &'p InstanceInfo,
    pub(crate) plan: Option<&'p InstancePlan>,
    /// Key value per entity (only the scene's keys are settable).
    pub(crate) keys: Vec<String>,
    pub(crate) key_set: Vec<bool>,
    /// `None` until set or first needed; then the wall clock is read once for the request.
    pub(crate) now: Option<i64>,
    /// What `LoadTag` pushes for each slot, kept in step with `slots` whenever a tag is
    /// given or supplied: `Pending` until loaded, `Missing` when it has no value. Loading a
    /// tag on the hot path is then one array read.
    pub(crate) vals: Vec<Val>,
    /// Whether evaluation had to read the wall clock (tests require a fixed `now`).
    pub(crate) read_clock: bool,
    /// What reading the wall clock gives, when set (the test runner sets it, so that what a
    /// test that forgot `now` reports can itself be tested with different clocks).
    pub(crate) wall_clock: Option<i64>,
    pub(crate) slots: Vec<TagSlot>,
    /// Per rule: `rule_epoch << RULE_STATE_BITS | state`, state 1/2/3 for false/true/unknown,
    /// plus [`PROVISIONAL`] for a result that read a tag still pending; an entry from an
    /// earlier epoch means not evaluated. `restart` starts a new epoch instead of clearing
    /// the table, so a deck's size does not add to each decision.
    pub(crate) rule_cache: Vec<u32>,
    pub(crate) rule_epoch: u32,
    /// Rules whose cached result is provisional: forgotten when the pending tags are
    /// released (supplied, or found not needed), since the result may change then.
    pub(crate) provisional_rules: Vec<u32>,
    /// The VM's value stack: a fixed buffer as long as the verifier's bound, never resized.
    pub(crate) stack: Vec<Val>,
    pub(crate) frames: Vec<super::machine::Frame>,
    /// Tags the current suspension needs, in the order evaluation reached them.
    pub(crate) pending: Vec<u16>,
    /// Reads of tags not loaded yet, counted every time (not once per tag): a result
    /// computed while this count grew depends on data still to come and must not be kept.
    pub(crate) pending_reads: u32,
    /// Blocks entered (conditions, decisions, rule bodies) since the request was reset: the
    /// measure of work that `tests/hostile.rs` bounds by the deck's size.
    pub(crate) blocks_run: u64,
    pub(crate) strategy: u32,
    pub(crate) phase: Phase,
    pub(crate) validated: bool,
    pub(crate) done: bool,
    pub(crate) outcome: super::OutcomeState,
    pub(crate) unit_buf: String,
    pub(crate) trace: Option<Vec<super::TraceEvent>>,
}

impl Program {
    /// Starts a request for `scene.instance`, refusing unknown names.
    pub fn request(&self, scene: &str, instance: &str) -> Result<Request<'_>, RequestError> {
        let (scene_id, info) = self.scene(scene).ok_or_else(|| RequestError::UnknownScene {
            scene: scene.to_string(),
            did_you_mean: did_you_mean(scene, self.scenes.iter().map(|s| s.name.as_str())).map(str::to_string),
        })?;
        let instance_id = info
            .instances
            .iter()
            .position(|i| i.name == instance)
            .ok_or_else(|| RequestError::unknown_instance(info, instance))?;
        let field_count = info.instances[instance_id].fields.len();
        let req = Request {
            program: self,
            scene: scene_id,
            instance: instance_id as u32,
            info: &info.instances[instance_id],
            plan: self.plans.scenes.get(scene_id as usize).and_then(|s| s.get(instance_id)),
            keys: vec![String::new(); self.entities.len()],
            key_set: vec![false; self.entities.len()],
            now: None,
            vals: vec![Val::PENDING; self.tags.len()],
            read_clock: false,
            wall_clock: None,
            slots: self
                .tags
                .iter()
                .map(|_| TagSlot {
                    state: SlotState::NotLoaded,
                    value: TagValue::Int(0),
                    missing: None,
                    needed: false,
                    traced: false,
                })
                .collect(),
            rule_cache: vec![0; self.rules.len()],
            rule_epoch: 1,
            provisional_rules: Vec::new(),
            // One more than the deepest stack: the interpreter's first push spills a placeholder.
            stack: vec![Val::MISSING; self.max_stack as usize + 1],
            frames: Vec::with_capacity(self.max_calls as usize + 1),
            pending: Vec::with_capacity(self.tags.len().min(64)),
            pending_reads: 0,
            blocks_run: 0,
            strategy: 0,
            phase: Phase::When,
            validated: false,
            done: false,
            outcome: super::OutcomeState::with_fields(field_count),
            unit_buf: String::with_capacity(24),
            trace: None,
        };
        Ok(req)
    }
}

/// Low bits of a rule-cache entry that hold its state; the epoch is above them.
pub(crate) const RULE_STATE_BITS: u32 = 3;
/// The state bit of a provisional rule result.
pub(crate) const PROVISIONAL: u32 = 4;
/// Epochs before the rule cache is cleared for real (the epoch must fit above the state).
const RULE_EPOCHS: u32 = 1 << (32 - RULE_STATE_BITS);

fn wall_clock() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl<'p> Request<'p> {
    pub fn program(&self) -> &'p Program {
        self.program
    }

    /// Clears all per-request state but keeps every buffer: the next decision made with this
    /// request allocates nothing when its values fit the buffers the last one left.
    #[inline]
    pub fn reset(&mut self) {
        self.key_set.iter_mut().for_each(|k| *k = false);
        for slot in &mut self.slots {
            slot.state = SlotState::NotLoaded;
            slot.missing = None;
        }
        self.vals.iter_mut().for_each(|v| *v = Val::PENDING);
        self.validated = false;
        self.blocks_run = 0;
        self.now = None;
        self.restart();
    }

    /// Starts the evaluation over, keeping keys, pass-through values, `now` and every tag
    /// already loaded: to decide again after supplying more, or to decide another instance
    /// of the same scene for the same request (see [`Request::switch_instance`]).
    #[inline]
    pub fn restart(&mut self) {
        self.release_pending();
        if self.trace.is_some() {
            self.slots.iter_mut().for_each(|slot| slot.traced = false);
        }
        self.rule_epoch += 1;
        if self.rule_epoch == RULE_EPOCHS {
            self.rule_cache.iter_mut().for_each(|r| *r = 0);
            self.rule_epoch = 1;
        }
        self.frames.clear();
        self.pending_reads = 0;
        self.strategy = 0;
        self.phase = Phase::When;
        self.done = false;
        self.outcome.clear();
        if let Some(trace) = &mut self.trace {
            trace.clear();
        }
        self.read_clock = false;
    }

    /// Decides another instance of the same scene next, reusing everything loaded so far.
    pub fn switch_instance(&mut self, instance: &str) -> Result<&mut Self, RequestError> {
        let scene = &self.program.scenes[self.scene as usize];
        let index = scene
            .instances
            .iter()
            .position(|i| i.name == instance)
            .ok_or_else(|| RequestError::unknown_instance(scene, instance))?;
        self.instance = index as u32;
        self.info = &scene.instances[index];
        self.plan = self.program.plans.scenes.get(self.scene as usize).and_then(|s| s.get(index));
        self.restart();
        Ok(self)
    }

    /// Records a trace of every tag read, rule and strategy tried (allocates; off by default).
    pub fn explain(&mut self, on: bool) -> &mut Self {
        self.trace = on.then(Vec::new);
        // `restart` clears these only while tracing; start a trace from a clean slate.
        self.slots.iter_mut().for_each(|slot| slot.traced = false);
        self
    }

    /// Sets the evaluation time, seconds since the Unix epoch (defaults to the wall clock).
    #[inline]
    pub fn now(&mut self, seconds: i64) -> &mut Self {
        self.now = Some(seconds);
        self
    }

    /// The evaluation time: as set, or the wall clock read once per request when first needed.
    pub(crate) fn current_time(&mut self) -> i64 {
        match self.now {
            Some(now) => now,
            None => {
                self.read_clock = true;
                let now = self.wall_clock.unwrap_or_else(wall_clock);
                self.now = Some(now);
                now
            }
        }
    }

    /// How many blocks (conditions, decisions, rule bodies) evaluation has entered since the
    /// last `reset`. Each block is straight-line code run at most once per entry. (A decision
    /// made only of constants is read in place, not entered, and is not counted; in the
    /// direct tier a rule named by one `CallRule` in the whole program is compiled into its
    /// caller and counts as part of the caller's block.)
    pub fn blocks_run(&self) -> u64 {
        self.blocks_run
    }

    /// Whether a time operator ran without `now` set, so the result depends on the clock.
    pub fn read_wall_clock(&self) -> bool {
        self.read_clock
    }

    pub fn scene_name(&self) -> &'p str {
        &self.program.scenes[self.scene as usize].name
    }

    pub fn instance_name(&self) -> &'p str {
        &self.info.name
    }

    /// Gives an entity key, e.g. `key("uid", "u-1001")`.
    pub fn key(&mut self, name: &str, value: &str) -> Result<&mut Self, RequestError> {
        let scene = &self.program.scenes[self.scene as usize];
        let entity = scene
            .keys
            .iter()
            .copied()
            .find(|&e| self.program.entities[e as usize].key == name)
            .ok_or_else(|| RequestError::UnknownKey { scene: scene.name.clone(), key: name.to_string() })?;
        let slot = &mut self.keys[entity as usize];
        slot.clear();
        slot.push_str(value);
        self.key_set[entity as usize] = true;
        Ok(self)
    }

    /// Gives a pass-through tag's value, e.g. `pass("ctx.channel", Input::Text("app"))`.
    /// A value of the wrong type is refused: pass-through data comes from the caller.
    pub fn pass(&mut self, tag: &str, value: Input<'_>) -> Result<&mut Self, RequestError> {
        let scene = &self.program.scenes[self.scene as usize];
        let id = scene
            .passes
            .iter()
            .copied()
            .find(|&t| self.program.tags[t as usize].name == tag)
            .ok_or_else(|| RequestError::UnknownPass { scene: scene.name.clone(), tag: tag.to_string() })?;
        self.pass_tag(id, value)
    }

    /// Supplies a loaded tag's value. A value of the wrong type counts as missing (and the
    /// trace says why): bad provider data never crashes a request and never grants.
    #[inline(always)]
    pub fn supply(&mut self, tag: u32, value: Option<Input<'_>>) {
        let program = self.program;
        let Some(info) = program.tags.get(tag as usize) else { return };
        let slot = &mut self.slots[tag as usize];
        let Some(v) = value else {
            slot.state = SlotState::Missing;
            slot.missing = Some(MissingReason::NoValue);
            self.vals[tag as usize] = Val::MISSING;
            return;
        };
        // Numbers and bools are most supplies (and all of a batch's columns of them): write
        // the slot and what the VM reads without the general coercion.
        let direct = match (info.ty, v) {
            (Ty::Int, Input::Int(i)) => Some((TagValue::Int(i), Val::int(i))),
            (Ty::Float, Input::Float(f)) if f.is_finite() => Some((TagValue::Float(f), Val::float(f))),
            (Ty::Bool, Input::Bool(b)) => Some((TagValue::Bool(b), Val::bool(b))),
            (Ty::Time, Input::Time(t)) => Some((TagValue::Time(t), Val::time(t))),
            (Ty::Enum(e), Input::Text(s)) => member(program, e, s).map(|m| (TagValue::Enum(m), Val::member(m))),
            _ => None,
        };
        if let Some((value, val)) = direct {
            slot.value = value;
            slot.state = SlotState::Loaded;
            slot.missing = None;
            self.vals[tag as usize] = val;
            return;
        }
        self.supply_coerced(tag, v);
    }

    /// [`Request::supply`] of a value that needs the general coercion.
    #[inline(never)]
    fn supply_coerced(&mut self, tag: u32, v: Input<'_>) {
        let program = self.program;
        let Some(info) = program.tags.get(tag as usize) else { return };
        let slot = &mut self.slots[tag as usize];
        match coerce(program, &info.ty, v, &mut slot.value) {
            Ok(()) => {
                slot.state = SlotState::Loaded;
                slot.missing = None;
            }
            Err(found) => {
                slot.state = SlotState::Missing;
                slot.missing = Some(MissingReason::WrongType {
                    expected: program.type_name(info.ty, ", "),
                    found: found.to_string(),
                });
            }
        }
        self.sync_val(tag as usize);
    }

    /// Records a provider value that cannot be of any tag type (`found` says what it was).
    pub fn supply_wrong_type(&mut self, tag: u32, found: &str) {
        let program = self.program;
        if let (Some(slot), Some(info)) = (self.slots.get_mut(tag as usize), program.tags.get(tag as usize)) {
            slot.state = SlotState::Missing;
            slot.missing =
                Some(MissingReason::WrongType { expected: program.type_name(info.ty, ", "), found: found.to_string() });
        }
        self.sync_val(tag as usize);
    }

    /// Records that a tag could not be loaded (provider error or timeout): it is unknown.
    pub fn supply_failure(&mut self, tag: u32, error: impl Into<String>) {
        if let Some(slot) = self.slots.get_mut(tag as usize) {
            slot.state = SlotState::Missing;
            slot.missing = Some(MissingReason::ProviderFailed { error: error.into() });
        }
        self.sync_val(tag as usize);
    }

    /// Marks a tag missing with a given reason (tests use `NotGiven`).
    pub fn supply_missing(&mut self, tag: u32, reason: MissingReason) {
        if let Some(slot) = self.slots.get_mut(tag as usize) {
            slot.state = SlotState::Missing;
            slot.missing = Some(reason);
        }
        self.sync_val(tag as usize);
    }

    /// What a supplied tag's slot holds, for the engine's cache: [`Request::restore_slot`]
    /// puts it back into a request without converting and coercing the value again.
    pub(crate) fn copy_slot(&self, tag: u32) -> Option<SlotCopy> {
        let slot = self.slots.get(tag as usize)?;
        Some(SlotCopy { state: slot.state, value: slot.value.clone(), missing: slot.missing.clone() })
    }

    /// Supplies `tag` with a copy of what another request was supplied ([`Request::copy_slot`]).
    /// A text value is copied into the slot's own buffer, which `reset` keeps.
    pub(crate) fn restore_slot(&mut self, tag: u32, copy: &SlotCopy) {
        let Some(slot) = self.slots.get_mut(tag as usize) else { return };
        slot.state = copy.state;
        if copy.state == SlotState::Loaded {
            match (&mut slot.value, &copy.value) {
                (TagValue::Text(buf), TagValue::Text(text)) => {
                    buf.clear();
                    buf.push_str(text);
                }
                (value, other) => *value = other.clone(),
            }
        }
        if slot.missing.is_some() || copy.missing.is_some() {
            slot.missing = copy.missing.clone();
        }
        self.sync_val(tag as usize);
    }

    /// Brings `vals` (what `LoadTag` pushes) in line with a slot's state after a change.
    pub(crate) fn sync_val(&mut self, tag: usize) {
        if let (Some(slot), Some(val)) = (self.slots.get(tag), self.vals.get_mut(tag)) {
            *val = match slot.state {
                SlotState::NotLoaded => Val::PENDING,
                SlotState::Missing => Val::MISSING,
                SlotState::Loaded => slot_val(&slot.value, tag as u16),
            };
        }
    }

    /// The key value that loads `tag` (empty for a pass-through tag).
    pub fn key_for(&self, tag: u32) -> &str {
        match self.program.tags.get(tag as usize).and_then(|t| t.entity) {
            Some(e) => self.keys.get(e as usize).map_or("", String::as_str),
            None => "",
        }
    }

    /// The tags the VM needs before it can go on, after `run` returned `NeedTags`.
    pub fn needed(&self) -> impl Iterator<Item = Need<'_>> + '_ {
        self.pending.iter().map(move |&slot| {
            let tag = &self.program.tags[slot as usize];
            Need {
                tag: u32::from(slot),
                name: &tag.name,
                provider: tag.provider.as_deref().unwrap_or(""),
                key_name: tag.entity.map_or("", |e| self.program.entities[e as usize].key.as_str()),
                key_value: self.key_for(u32::from(slot)),
            }
        })
    }
}

/// A tag the VM needs: which, from which provider, for which key value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need<'a> {
    pub tag: u32,
    pub name: &'a str,
    pub provider: &'a str,
    pub key_name: &'a str,
    pub key_value: &'a str,
}

/// Why `value` is not a `ty`, naming the value: `"tv" is not a member of enum(app, h5)`, or
/// `expected int, found text`.
pub(crate) fn refusal(p: &Program, ty: &Ty, value: Input<'_>, found: &str) -> String {
    let enum_miss = |e: u32, s: &str| {
        member(p, e, s).is_none().then(|| format!("{s:?} is not a member of {}", p.type_name(Ty::Enum(e), ", ")))
    };
    let named = match (ty, value) {
        (Ty::Enum(e), Input::Text(s)) => enum_miss(*e, s),
        (Ty::List(elem), Input::List(items)) => match elem.ty() {
            Ty::Enum(e) => items.iter().find_map(|i| match i {
                Input::Text(s) => enum_miss(e, s),
                _ => None,
            }),
            _ => None,
        },
        _ => None,
    };
    named.unwrap_or_else(|| format!("expected {}, found {found}", p.type_name(*ty, ", ")))
}

fn input_kind(v: Input<'_>) -> &'static str {
    match v {
        Input::Int(_) => "an int",
        Input::Float(_) => "a float",
        Input::Text(_) => "text",
        Input::Bool(_) => "a bool",
        Input::Time(_) => "a time",
        Input::List(_) => "a list",
    }
}

fn scalar(p: &Program, ty: &Ty, v: Input<'_>) -> Result<Scalar, &'static str> {
    Ok(match (ty, v) {
        (Ty::Int, Input::Int(i)) => Scalar::Int(i),
        (Ty::Float, Input::Float(f)) if f.is_finite() => Scalar::Float(f),
        (Ty::Float, Input::Float(_)) => return Err("a float that is not finite"),
        (Ty::Float, Input::Int(i)) => Scalar::Float(i as f64),
        (Ty::Text, Input::Text(s)) => Scalar::Text(s.to_string()),
        (Ty::Bool, Input::Bool(b)) => Scalar::Bool(b),
        (Ty::Time, Input::Time(t)) => Scalar::Time(t),
        (Ty::Time, Input::Text(s)) => {
            Scalar::Time(crate::time::parse_data(s).ok_or("text that is not an RFC 3339 time")?)
        }
        // Whole seconds since the epoch, as providers that store times as numbers give them.
        (Ty::Time, Input::Int(t)) => Scalar::Time(t),
        (Ty::Enum(e), Input::Text(s)) => Scalar::Enum(member(p, *e, s).ok_or("text that is not a member")?),
        (_, other) => return Err(input_kind(other)),
    })
}

/// Coerces `v` to `ty` into `out`, reusing `out`'s text buffer. `Err` names what was found.
pub(crate) fn coerce(p: &Program, ty: &Ty, v: Input<'_>, out: &mut TagValue) -> Result<(), &'static str> {
    match (ty, v) {
        (Ty::Text, Input::Text(s)) => {
            if let TagValue::Text(buf) = out {
                buf.clear();
                buf.push_str(s);
            } else {
                *out = TagValue::Text(s.to_string());
            }
        }
        (Ty::List(elem), Input::List(items)) => {
            let elem = elem.ty();
            let items: Vec<Scalar> = items.iter().map(|&i| scalar(p, &elem, i)).collect::<Result<_, _>>()?;
            *out = TagValue::List(items);
        }
        (Ty::List(_), other) => return Err(input_kind(other)),
        _ => {
            *out = match scalar(p, ty, v)? {
                Scalar::Int(i) => TagValue::Int(i),
                Scalar::Float(f) => TagValue::Float(f),
                Scalar::Text(s) => TagValue::Text(s),
                Scalar::Bool(b) => TagValue::Bool(b),
                Scalar::Time(t) => TagValue::Time(t),
                Scalar::Enum(e) => TagValue::Enum(e),
            }
        }
    }
    Ok(())
}

pub(crate) fn member(p: &Program, e: u32, s: &str) -> Option<u32> {
    // Members are short words: a byte loop beats a call to `memcmp` per member.
    let same = |m: &String| m.len() == s.len() && m.bytes().zip(s.bytes()).all(|(a, b)| a == b);
    p.enums.get(e as usize)?.iter().position(same).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::Step;

    /// The rule cache is cleared for real when its epoch counter wraps: a result cached in
    /// epoch 1 must not be read back after 2^29 restarts bring the counter to 1 again.
    #[test]
    fn rule_cache_epochs_wrap_without_stale_results() {
        let src = "entity user key uid\ntag user.risk: int from \"p\"\nrule user low = user.risk < 30\n\
                   scene s { keys uid instance i -> { ok: bool } {\n\
                   strategy a when low => { ok: true }\n default => { ok: false } } }\n";
        let p = crate::compile(&[("deck.rule", src)]).expect("deck compiles");
        let risk = p.tag("user.risk").expect("tag").0;
        let mut req = p.request("s", "i").expect("request");
        req.key("uid", "u-1").expect("key");
        req.supply(risk, Some(Input::Int(10)));
        assert_eq!(p.run(&mut req), Ok(Step::Done));
        assert_eq!(req.outcome().strategy(), Some("a"));
        assert_eq!(req.rule_epoch, 1);

        req.rule_epoch = RULE_EPOCHS - 1;
        req.supply(risk, Some(Input::Int(50)));
        req.restart();
        assert_eq!(req.rule_epoch, 1, "the counter wrapped");
        assert_eq!(p.run(&mut req), Ok(Step::Done));
        assert_eq!(req.outcome().strategy(), Some("default"), "the rule was evaluated again");
    }
}
