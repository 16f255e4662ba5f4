//! Request documents applied to a [`Request`] as they are parsed: `{"uid": "u-1",
//! "ctx.channel": "app", "now": "…"}` gives entity keys by key name (text or integer),
//! pass-through tags by full name, and an optional `now`.
//!
//! Owns: the meaning of a request document's members and the errors that name them. The
//! same code applies JSON text (no tree is built: `eval --inputs` spent half of a line
//! building and dropping one) and an already parsed [`Value`]. Must not: decide anything.
//!
//! What the text is checked for does not depend on the path: JSON that is not valid (a
//! duplicate key included) is refused as JSON even when a member before the fault was
//! already refused, exactly as if the whole document had been parsed first.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::json::Strict;
use crate::vm::{Input, Request, RequestError};

/// Why a request document given as text was not applied.
#[derive(Debug)]
pub enum RequestJsonError {
    /// The text is not valid JSON (or has a key twice in one object).
    NotJson(serde_json::Error),
    /// Valid JSON that is not a request this scene takes.
    Refused(RequestError),
}

impl fmt::Display for RequestJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestJsonError::NotJson(e) => write!(f, "not valid JSON: {e}"),
            RequestJsonError::Refused(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RequestJsonError {}

/// Applies a request document given as JSON text, member by member as it is parsed.
/// Strings are borrowed from `bytes` where they hold no escapes; nothing is allocated for
/// a document of keys, scalar pass-through values and `now`.
pub fn apply_json(req: &mut Request<'_>, bytes: &[u8]) -> Result<(), RequestJsonError> {
    let mut refused = None;
    // Valid UTF-8 (nearly every line) is checked once, a word at a time, instead of string
    // by string as it is parsed (a twentieth of a line's instructions); otherwise the
    // parser finds the bad bytes and says where.
    match std::str::from_utf8(bytes) {
        Ok(text) => apply(req, &mut serde_json::Deserializer::from_str(text), &mut refused),
        Err(_) => apply(req, &mut serde_json::Deserializer::from_slice(bytes), &mut refused),
    }
    .map_err(RequestJsonError::NotJson)?;
    refused.map_or(Ok(()), |e| Err(RequestJsonError::Refused(e)))
}

fn apply<'de, R: serde_json::de::Read<'de>>(
    req: &mut Request<'_>,
    de: &mut serde_json::Deserializer<R>,
    refused: &mut Option<RequestError>,
) -> Result<(), serde_json::Error> {
    Applier { req, refused }.deserialize(&mut *de)?;
    de.end()
}

/// Applies a parsed request document (see [`apply_json`]). Errors name the field.
pub fn apply_input(req: &mut Request<'_>, input: &Value) -> Result<(), RequestError> {
    let mut refused = None;
    // A tree is valid JSON with unique keys, so walking it cannot fail as JSON.
    Applier { req, refused: &mut refused }.deserialize(input).map_err(|e| RequestError::InvalidInput(e.to_string()))?;
    refused.map_or(Ok(()), Err)
}

/// Applies the members of a request object; the first refusal is kept in `refused`, and
/// the rest of the document is then only checked as JSON.
struct Applier<'a, 'p> {
    req: &'a mut Request<'p>,
    refused: &'a mut Option<RequestError>,
}

impl<'de> DeserializeSeed<'de> for Applier<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Applier<'_, '_> {
    fn not_an_object(self) {
        *self.refused = Some(RequestError::InvalidInput("a request must be a JSON object".into()));
    }
}

impl<'de> Visitor<'de> for Applier<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = SeenNames::default();
        while let Some(Name(name)) = map.next_key()? {
            if !seen.insert(name.clone()) {
                return Err(A::Error::custom(format_args!(
                    "duplicate key {name:?} (each key may appear once in an object; merge the two entries)"
                )));
            }
            if self.refused.is_some() {
                map.next_value_seed(Strict)?;
                continue;
            }
            let applied = if name == "now" {
                map.next_value_seed(NowSeed)?.map(|t| {
                    self.req.now(t);
                })
            } else if name.contains('.') {
                map.next_value_seed(PassSeed { req: self.req, tag: &name })?
            } else {
                map.next_value_seed(KeySeed { req: self.req, key: &name })?
            };
            if let Err(e) = applied {
                *self.refused = Some(e);
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Strict.visit_seq(seq)?;
        self.not_an_object();
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_object();
        Ok(())
    }
}

/// An object's key: borrowed from the text unless it holds escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The names of the members seen so far: a request has a handful, compared without
/// allocating (names with escapes, and names past the sixteenth, are kept in a `Vec`).
#[derive(Default)]
struct SeenNames<'de> {
    borrowed: [&'de str; 16],
    len: usize,
    others: Vec<Cow<'de, str>>,
}

impl<'de> SeenNames<'de> {
    /// Records `name`; `false` when it was seen before.
    fn insert(&mut self, name: Cow<'de, str>) -> bool {
        if self.borrowed[..self.len].iter().any(|n| *n == name.as_ref()) || self.others.contains(&name) {
            return false;
        }
        match name {
            Cow::Borrowed(s) if self.len < self.borrowed.len() => {
                self.borrowed[self.len] = s;
                self.len += 1;
            }
            _ => self.others.push(name),
        }
        true
    }
}

/// `now`: RFC 3339 text (rounded down to the second) or whole seconds since the epoch;
/// anything else comes back as the value, for the error.
struct NowSeed;

impl NowSeed {
    fn refused(value: Value) -> Result<i64, RequestError> {
        Err(RequestError::InvalidInput(format!(
            "`now` must be an RFC 3339 time like \"2026-11-21T08:00:00Z\" or whole seconds since the epoch, not {value}"
        )))
    }
}

impl<'de> DeserializeSeed<'de> for NowSeed {
    type Value = Result<i64, RequestError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NowSeed {
    type Value = Result<i64, RequestError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(crate::time::parse_data(s).map_or_else(|| Self::refused(Value::from(s)), Ok))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(Ok(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(u).or_else(|_| Self::refused(Value::from(u))))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Self::refused(Value::from(f)))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Self::refused(Value::from(b)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Self::refused(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(Self::refused(Strict.visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(Self::refused(Strict.visit_map(map)?))
    }
}

/// An entity key's value: text, or an integer (given as its digits).
struct KeySeed<'a, 'p> {
    req: &'a mut Request<'p>,
    key: &'a str,
}

impl KeySeed<'_, '_> {
    fn apply(self, value: &str) -> Result<(), RequestError> {
        self.req.key(self.key, value).map(drop)
    }
    fn refused(self) -> Result<(), RequestError> {
        Err(RequestError::InvalidInput(format!("key `{}` must be text or an integer", self.key)))
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = Result<(), RequestError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = Result<(), RequestError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key value")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(self.apply(s))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(self.apply(itoa::Buffer::new().format(i)))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(self.apply(itoa::Buffer::new().format(u)))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.refused())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.refused())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.refused())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Strict.visit_seq(seq)?;
        Ok(self.refused())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Strict.visit_map(map)?;
        Ok(self.refused())
    }
}

/// A pass-through tag's value: a scalar, or a list of scalars.
struct PassSeed<'a, 'p> {
    req: &'a mut Request<'p>,
    tag: &'a str,
}

impl PassSeed<'_, '_> {
    fn apply(self, value: Input<'_>) -> Result<(), RequestError> {
        self.req.pass(self.tag, value).map(drop)
    }
    fn refused(self, found: &str) -> Result<(), RequestError> {
        Err(RequestError::InvalidPass { tag: self.tag.to_owned(), problem: format!("found {found}") })
    }
}

impl<'de> DeserializeSeed<'de> for PassSeed<'_, '_> {
    type Value = Result<(), RequestError>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PassSeed<'_, '_> {
    type Value = Result<(), RequestError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tag value")
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(self.apply(Input::Text(s)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(self.apply(Input::Int(i)))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(self.apply(number(u)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(self.apply(Input::Float(f)))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(self.apply(Input::Bool(b)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.refused("null"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Strict.visit_map(map)?;
        Ok(self.refused("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Elements are kept until the list is complete; text is copied only when it holds
        // escapes.
        let mut items: Vec<Element<'de>> = Vec::new();
        let mut found = None;
        while found.is_none() {
            match seq.next_element_seed(ElementSeed)? {
                None => break,
                Some(Ok(item)) => items.push(item),
                Some(Err(kind)) => found = Some(kind),
            }
        }
        if let Some(found) = found {
            while seq.next_element_seed(Strict)?.is_some() {}
            return Ok(self.refused(found));
        }
        let inputs: Vec<Input<'_>> = items.iter().map(Element::input).collect();
        Ok(self.apply(Input::List(&inputs)))
    }
}

/// An integer above `i64::MAX` is taken as a float, as JSON numbers are.
fn number(u: u64) -> Input<'static> {
    i64::try_from(u).map_or(Input::Float(u as f64), Input::Int)
}

/// A list element as parsed: a scalar input, its text borrowed or copied.
enum Element<'de> {
    Scalar(Input<'de>),
    Text(String),
}

impl Element<'_> {
    fn input(&self) -> Input<'_> {
        match self {
            Element::Scalar(i) => *i,
            Element::Text(s) => Input::Text(s),
        }
    }
}

/// One list element: a scalar, or what was found instead.
struct ElementSeed;

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = Result<Element<'de>, &'static str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed {
    type Value = Result<Element<'de>, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list element")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(Element::Scalar(Input::Text(s))))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Ok(Element::Text(s.to_owned())))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(Ok(Element::Scalar(Input::Int(i))))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(Ok(Element::Scalar(number(u))))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Ok(Element::Scalar(Input::Float(f))))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Ok(Element::Scalar(Input::Bool(b))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Strict.visit_seq(seq)?;
        Ok(Err("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Strict.visit_map(map)?;
        Ok(Err("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{input_from_json, outcome_json, parse_json};

    /// The oracle: the document parsed into a tree first, then applied member by member
    /// (what `apply_json` replaced).
    fn reference(req: &mut Request<'_>, bytes: &[u8]) -> Result<(), String> {
        let doc = parse_json(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(fields) = doc else {
            return Err("a request must be a JSON object".into());
        };
        for (name, value) in &fields {
            let applied = if name == "now" {
                match crate::engine::data_time(value) {
                    Some(t) => {
                        req.now(t);
                        Ok(())
                    }
                    None => NowSeed::refused(value.clone()).map(drop),
                }
            } else if name.contains('.') {
                let mut scratch = Vec::new();
                match input_from_json(value, &mut scratch) {
                    Ok(input) => req.pass(name, input).map(drop),
                    Err(found) => {
                        Err(RequestError::InvalidPass { tag: name.clone(), problem: format!("found {found}") })
                    }
                }
            } else {
                match value {
                    Value::String(s) => req.key(name, s).map(drop),
                    Value::Number(n) if n.is_i64() || n.is_u64() => req.key(name, &n.to_string()).map(drop),
                    _ => Err(RequestError::InvalidInput(format!("key `{name}` must be text or an integer"))),
                }
            };
            applied.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Every request document below gets the same answer applied as text, applied as a
    /// parsed tree, and from the oracle; the answers are pinned in a snapshot.
    #[test]
    fn text_and_tree_are_applied_like_the_parsed_document() {
        let src = "entity user key uid\ntag user.n: int from \"p\"\n\
                   tag ctx.ch: enum(app, h5) passthrough\ntag ctx.ids: list<int> passthrough\n\
                   tag ctx.v: text passthrough\n\
                   scene s { keys uid passes ctx.ch, ctx.ids, ctx.v \
                   instance i -> { ch: enum(app, h5), ids: list<int>, v: text } {\n\
                   default => { ch: ctx.ch, ids: ctx.ids, v: ctx.v } } }\n";
        let p = crate::compile(&[("deck.rule", src)]).unwrap();
        let docs = [
            r#"{"uid": "u-1", "ctx.ch": "h5", "ctx.ids": [1, 2], "ctx.v": "x", "now": "2026-11-21T08:00:00Z"}"#,
            r#"{"uid": 1001, "ctx.ch": "app", "ctx.ids": [], "ctx.v": "a\"b\u00e9", "now": 1700000000}"#,
            r#"{"u\u0069d": "u-1", "ctx.ch": "app", "ctx.ids": [18446744073709551615], "ctx.v": ""}"#,
            r#"{"uid": 18446744073709551615, "ctx.ch": "app", "ctx.ids": [3], "ctx.v": "v"}"#,
            r#"{"uid": "u-1", "ctx.ch": "web", "ctx.ids": [1], "ctx.v": "v"}"#,
            r#"{"uid": 1.5, "ctx.ch": "app"}"#,
            r#"{"uid": ["a"], "ctx.ch": "app"}"#,
            r#"{"uid": {"a": 1}}"#,
            r#"{"uid": "u-1", "ctx.ids": [1, null, 3]}"#,
            r#"{"uid": "u-1", "ctx.ids": [1, [2], {"a": 1}]}"#,
            r#"{"uid": "u-1", "ctx.ids": ["a\nb"]}"#,
            r#"{"uid": "u-1", "ctx.v": null}"#,
            r#"{"uid": "u-1", "ctx.v": {"k": [1]}}"#,
            r#"{"uid": "u-1", "ctx.nope": 1}"#,
            r#"{"user": "u-1"}"#,
            r#"{"uid": "u-1", "now": "yesterday"}"#,
            r#"{"uid": "u-1", "now": 18446744073709551615}"#,
            r#"{"uid": "u-1", "now": [1, {"b": 2}]}"#,
            r#"{"uid": "u-1", "now": 1.5}"#,
            r#"{"uid": "u-1", "uid": "u-2"}"#,
            r#"{"uid": "u-1", "u\u0069d": "u-2"}"#,
            r#"{"bogus": 1, "uid": "a", "uid": "b"}"#,
            r#"{"bogus": 1, "x": {"k": 1, "k": 2}}"#,
            r#"{"uid": "u-1", "ctx.v": {"k": 1, "k": 2}}"#,
            r#"{"uid": "u-1", "ctx.ids": [1, {"k": 1, "k": 2}]}"#,
            r#"{"bogus": 1, "uid": "u-1"} trailing"#,
            r#"{"bogus": 1, "uid": "u-1""#,
            r#"[{"uid": "u-1"}]"#,
            r#""uid""#,
            r#"null"#,
            r#"17"#,
            r#"{}"#,
            "{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7,\"a8\":8,\"a9\":9,\"a10\":10,\
             \"a11\":11,\"a12\":12,\"a13\":13,\"a14\":14,\"a15\":15,\"a16\":16,\"a17\":17,\"a3\":3}",
            "",
        ];
        // Bytes that are not UTF-8, in a string and outside one.
        let not_utf8: [&[u8]; 2] = [b"{\"uid\": \"u-\xff1\", \"ctx.ch\": \"app\"}", b"{\"uid\": \"u-1\", \xff}"];
        let docs = docs.iter().map(|d| d.as_bytes()).chain(not_utf8);
        let answer = |req: &mut Request<'_>, applied: Result<(), String>| match applied {
            Err(e) => format!("refused: {e}"),
            Ok(()) => match p.run(req) {
                Ok(_) => serde_json::to_string(&outcome_json(&req.outcome(), false)).unwrap(),
                Err(e) => format!("refused: {e}"),
            },
        };
        let mut pinned = String::new();
        for doc in docs {
            let mut req = p.request("s", "i").unwrap();
            let applied = apply_json(&mut req, doc).map_err(|e| e.to_string());
            let text = answer(&mut req, applied);
            let mut req = p.request("s", "i").unwrap();
            let applied = reference(&mut req, doc);
            let oracle = answer(&mut req, applied);
            let doc_text = String::from_utf8_lossy(doc);
            assert_eq!(text, oracle, "{doc_text}");
            if let Ok(tree) = parse_json(doc) {
                let mut req = p.request("s", "i").unwrap();
                let applied = apply_input(&mut req, &tree).map_err(|e| e.to_string());
                let from_tree = answer(&mut req, applied);
                assert_eq!(from_tree, oracle, "{doc_text}");
            }
            pinned.push_str(&format!("{doc_text}\n  {text}\n"));
        }
        insta::assert_snapshot!(pinned);
    }
}
