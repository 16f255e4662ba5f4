//! What one instance of a scene takes and gives, described for hosts that lay requests and
//! results out as typed columns (the Python package's Arrow batches, DataFrames).
//!
//! Owns: a read-only view of a [`Program`]'s tables — the scene's keys, its pass-through
//! tags, the loaded tags its keys can load, the instance's decision fields — with their
//! value types; and the positional way to give keys and pass-through values
//! ([`Request::key_at`], [`Request::pass_tag`]) for hosts that resolve each column to its
//! place once per batch instead of looking a name up on every row.
//! Must not: decide anything or expose the program's internal representation (types are
//! described by [`ValueType`], not by the compiler's runtime type tags); the positional
//! setters validate and coerce exactly as [`Request::key`] and [`Request::pass`] do.

use crate::compile::program::{Elem, Program, Ty};
use crate::vm::request::{coerce, member, refusal, SlotState};
use crate::vm::value::{TagValue, Val};
use crate::vm::{Input, Request, RequestError};

/// The kind of a scalar value (or of a list's elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float (finite).
    Float,
    /// UTF-8 text.
    Text,
    /// `true` or `false`.
    Bool,
    /// Whole seconds since the Unix epoch (RFC 3339 text in JSON).
    Time,
    /// One member of an enum, given and reported by its name.
    Enum,
}

/// A value's type: a scalar or a list of scalars; enum members are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueType<'p> {
    /// The scalar kind (of the elements, for a list).
    pub scalar: ScalarType,
    /// Whether the value is a list of `scalar`s.
    pub list: bool,
    /// The enum's members in declaration order (empty unless `scalar` is `Enum`).
    pub members: &'p [String],
}

/// A tag a request can carry or load, by full name (`user.risk_score`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagSignature<'p> {
    /// The tag's id: what [`crate::Need::tag`] reports and [`crate::Request::supply`] takes.
    pub id: u32,
    /// Full name, `user.risk_score`.
    pub name: &'p str,
    /// The value type.
    pub ty: ValueType<'p>,
    /// The key that loads it (`uid`); `None` for a pass-through tag.
    pub key: Option<&'p str>,
}

/// A decision field of the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSignature<'p> {
    /// The field's name.
    pub name: &'p str,
    /// Its value type.
    pub ty: ValueType<'p>,
}

/// What `scene.instance` takes and gives: see [`Program::signature`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature<'p> {
    /// The scene's key names (`uid`, `skuid`), in the scene's order.
    pub keys: Vec<&'p str>,
    /// The scene's pass-through tags, in the scene's order.
    pub passes: Vec<TagSignature<'p>>,
    /// Every loaded tag the scene's keys can load, in declaration order.
    pub tags: Vec<TagSignature<'p>>,
    /// The instance's decision fields, in declaration order.
    pub fields: Vec<FieldSignature<'p>>,
}

impl Program {
    /// Describes what a request for `scene.instance` takes (keys, pass-through tags, the
    /// loaded tags its keys can load) and what its decision holds. Refuses unknown names
    /// as [`Program::request`] does.
    pub fn signature(&self, scene: &str, instance: &str) -> Result<Signature<'_>, RequestError> {
        let req = self.request(scene, instance)?;
        let info = &self.scenes[req.scene as usize];
        let inst = &info.instances[req.instance as usize];
        let tag = |id: u32| {
            let t = &self.tags[id as usize];
            TagSignature {
                id,
                name: &t.name,
                ty: self.value_type(&t.ty),
                key: t.entity.map(|e| self.entities[e as usize].key.as_str()),
            }
        };
        Ok(Signature {
            keys: info.keys.iter().map(|&e| self.entities[e as usize].key.as_str()).collect(),
            passes: info.passes.iter().map(|&t| tag(t)).collect(),
            tags: (0..self.tags.len() as u32)
                .filter(|&t| self.tags[t as usize].entity.is_some_and(|e| info.keys.contains(&e)))
                .map(tag)
                .collect(),
            fields: inst.fields.iter().map(|f| FieldSignature { name: &f.name, ty: self.value_type(&f.ty) }).collect(),
        })
    }

    /// Every `(scene, instance)` of the program, in declaration order.
    pub fn instance_names(&self) -> Vec<(&str, &str)> {
        self.scenes.iter().flat_map(|s| s.instances.iter().map(move |i| (s.name.as_str(), i.name.as_str()))).collect()
    }

    fn value_type(&self, ty: &Ty) -> ValueType<'_> {
        let members = |e: u32| self.enums.get(e as usize).map_or(&[][..], Vec::as_slice);
        let scalar = |s, members| ValueType { scalar: s, list: false, members };
        match *ty {
            Ty::Int => scalar(ScalarType::Int, &[]),
            Ty::Float => scalar(ScalarType::Float, &[]),
            Ty::Text => scalar(ScalarType::Text, &[]),
            Ty::Bool => scalar(ScalarType::Bool, &[]),
            Ty::Time => scalar(ScalarType::Time, &[]),
            Ty::Enum(e) => scalar(ScalarType::Enum, members(e)),
            Ty::List(elem) => {
                let (s, m) = match elem {
                    Elem::Int => (ScalarType::Int, &[][..]),
                    Elem::Float => (ScalarType::Float, &[][..]),
                    Elem::Text => (ScalarType::Text, &[][..]),
                    Elem::Bool => (ScalarType::Bool, &[][..]),
                    Elem::Time => (ScalarType::Time, &[][..]),
                    Elem::Enum(e) => (ScalarType::Enum, members(e)),
                };
                ValueType { scalar: s, list: true, members: m }
            }
        }
    }
}

impl Request<'_> {
    /// Gives the scene's `index`-th key, in [`Signature::keys`] order: what
    /// [`Request::key`] does, without looking the name up (a host reading many rows resolves
    /// each key column's index once). An index past the scene's keys is refused.
    #[inline(always)]
    pub fn key_at(&mut self, index: usize, value: &str) -> Result<&mut Self, RequestError> {
        let program = self.program;
        let scene = &program.scenes[self.scene as usize];
        let Some(&entity) = scene.keys.get(index) else {
            return Err(RequestError::UnknownKey { scene: scene.name.clone(), key: format!("#{index}") });
        };
        let slot = &mut self.keys[entity as usize];
        slot.clear();
        slot.push_str(value);
        self.key_set[entity as usize] = true;
        Ok(self)
    }

    /// Gives the pass-through tag `tag` (its [`TagSignature::id`] in [`Signature::passes`]):
    /// what [`Request::pass`] does, without looking the name up. The value is checked and
    /// coerced as `pass` checks it (same errors); a tag the scene does not take is refused.
    #[inline(always)]
    pub fn pass_tag(&mut self, tag: u32, value: Input<'_>) -> Result<&mut Self, RequestError> {
        let program = self.program;
        let scene = &program.scenes[self.scene as usize];
        if !scene.passes.contains(&tag) {
            let name = program.tags.get(tag as usize).map_or_else(|| format!("#{tag}"), |t| t.name.clone());
            return Err(RequestError::UnknownPass { scene: scene.name.clone(), tag: name });
        }
        let info = &program.tags[tag as usize];
        let slot = &mut self.slots[tag as usize];
        // An enum member given as text is the commonest pass-through value.
        if let (Ty::Enum(e), Input::Text(text)) = (info.ty, value) {
            if let Some(m) = member(program, e, text) {
                slot.value = TagValue::Enum(m);
                slot.state = SlotState::Loaded;
                self.vals[tag as usize] = Val::member(m);
                return Ok(self);
            }
        }
        coerce(program, &info.ty, value, &mut slot.value).map_err(|found| RequestError::InvalidPass {
            tag: info.name.clone(),
            problem: refusal(program, &info.ty, value, found),
        })?;
        slot.state = SlotState::Loaded;
        self.sync_val(tag as usize);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_keys_passes_tags_and_fields() {
        let src = "entity user key uid\nentity item key skuid\n\
                   tag user.risk: int from \"r\"\ntag user.segs: list<enum(a, b)> from \"p\"\n\
                   tag item.price: int from \"c\"\ntag ctx.ch: enum(app, h5) passthrough\n\
                   scene s { keys uid passes ctx.ch instance i -> { n: int, when_: time, tags: list<text> } {\n\
                   default => { n: user.risk, when_: @2026-01-01T00:00:00Z, tags: [\"x\"] } } }\n";
        let p = crate::compile(&[("deck.rule", src)]).expect("deck compiles");
        let s = p.signature("s", "i").expect("known");
        assert_eq!(s.keys, ["uid"]);
        assert_eq!(s.passes.len(), 1);
        assert_eq!((s.passes[0].name, s.passes[0].key, s.passes[0].ty.scalar), ("ctx.ch", None, ScalarType::Enum));
        assert_eq!(s.passes[0].ty.members, ["app", "h5"]);
        // item.price is not loadable: the scene does not take `skuid`.
        let tags: Vec<_> = s.tags.iter().map(|t| (t.name, t.key, t.ty.scalar, t.ty.list)).collect();
        assert_eq!(
            tags,
            [("user.risk", Some("uid"), ScalarType::Int, false), ("user.segs", Some("uid"), ScalarType::Enum, true)]
        );
        assert_eq!(s.tags[0].id, p.tag("user.risk").unwrap().0);
        let fields: Vec<_> = s.fields.iter().map(|f| (f.name, f.ty.scalar, f.ty.list)).collect();
        assert_eq!(
            fields,
            [("n", ScalarType::Int, false), ("when_", ScalarType::Time, false), ("tags", ScalarType::Text, true)]
        );
        assert_eq!(p.instance_names(), [("s", "i")]);
        assert!(matches!(p.signature("nope", "i"), Err(RequestError::UnknownScene { .. })));
        assert!(matches!(p.signature("s", "nope"), Err(RequestError::UnknownInstance { .. })));
    }

    /// The positional setters decide exactly as the named ones, and refuse what they refuse.
    #[test]
    fn positional_keys_and_passes_equal_named_ones() {
        let src = "entity user key uid\ntag user.risk: int from \"r\"\ntag ctx.ch: enum(app, h5) passthrough\n\
                   scene s { keys uid passes ctx.ch instance i -> { n: int } {\n\
                   strategy a when ctx.ch == app and user.risk < 30 => { n: 1 }\n default => { n: 0 } } }\n";
        let p = crate::compile(&[("deck.rule", src)]).expect("deck compiles");
        let sig = p.signature("s", "i").expect("known");
        let (ch, risk) = (sig.passes[0].id, sig.tags[0].id);
        for (channel, score) in [("app", 10), ("app", 50), ("h5", 10)] {
            let mut named = p.request("s", "i").expect("request");
            named.key("uid", "u-1").unwrap().pass("ctx.ch", Input::Text(channel)).unwrap();
            let mut positional = p.request("s", "i").expect("request");
            positional.key_at(0, "u-1").unwrap().pass_tag(ch, Input::Text(channel)).unwrap();
            for req in [&mut named, &mut positional] {
                req.now(0).supply(risk, Some(Input::Int(score)));
                assert_eq!(p.run(req), Ok(crate::Step::Done));
            }
            assert_eq!(named.outcome().strategy(), positional.outcome().strategy());
            assert_eq!(named.outcome().fields().collect::<Vec<_>>(), positional.outcome().fields().collect::<Vec<_>>());
        }
        let mut req = p.request("s", "i").expect("request");
        assert!(matches!(req.key_at(1, "x"), Err(RequestError::UnknownKey { .. })));
        assert!(matches!(req.pass_tag(risk, Input::Int(1)), Err(RequestError::UnknownPass { .. })));
        assert!(matches!(req.pass_tag(99, Input::Int(1)), Err(RequestError::UnknownPass { .. })));
        let named = p.request("s", "i").unwrap().pass("ctx.ch", Input::Text("tv")).map(|_| ()).unwrap_err();
        let positional = req.pass_tag(ch, Input::Text("tv")).map(|_| ()).unwrap_err();
        assert_eq!(named, positional);
        assert_eq!(positional.to_string(), "invalid value for `ctx.ch`: \"tv\" is not a member of enum(app, h5)");
    }
}
