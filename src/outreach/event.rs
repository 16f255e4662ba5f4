//! Reading one event line: its JSON object as named scalars, parsed in one pass without
//! building a `serde_json::Value` tree (a fifth of a replay's parsing thread when it did).
//!
//! Owns: the line's syntax (a JSON object; strings borrowed from the line unless escaped;
//! nested values skipped) and what a key means when it appears twice (the last one, as a
//! JSON object read into a map keeps). Must not: judge the event (its kind, unit, fields
//! and time are the runtime's), or parse anything but one line.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// One top-level value of an event object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Num(Number),
    Bool(bool),
    Null,
    /// An object or an array (skipped: no event field holds one).
    Nested,
}

/// An event line's top-level keys and values, in order.
#[derive(Debug, Default)]
pub(crate) struct EventDoc<'a> {
    entries: Vec<(Cow<'a, str>, Scalar<'a>)>,
}

impl<'a> EventDoc<'a> {
    /// The line as an object; `Ok(None)` for JSON that is not an object; `Err` for text that
    /// is not JSON (serde_json's message).
    pub(crate) fn parse(line: &'a str) -> Result<Option<EventDoc<'a>>, serde_json::Error> {
        let Top(doc) = serde_json::from_str(line)?;
        Ok(doc)
    }

    /// The value of `key` (its last occurrence).
    pub(crate) fn get(&self, key: &str) -> Option<&Scalar<'a>> {
        self.entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The text value of `key`.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// A whole line: an object, or something else (`None`).
struct Top<'a>(Option<EventDoc<'a>>);

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut doc = EventDoc::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value = map.next_value::<Value<'de>>()?;
            doc.entries.push((key, value.0));
        }
        Ok(Top(Some(doc)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top<'de>, E> {
        Ok(Top(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top<'de>, E> {
        Ok(Top(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top<'de>, E> {
        Ok(Top(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top<'de>, E> {
        Ok(Top(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Top<'de>, E> {
        Ok(Top(None))
    }
    fn visit_unit<E>(self) -> Result<Top<'de>, E> {
        Ok(Top(None))
    }
}

/// One value of the object.
struct Value<'a>(Scalar<'a>);

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Str(Cow::Borrowed(s))))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Str(Cow::Owned(s.to_string()))))
    }
    fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Str(Cow::Owned(s))))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Num(n.into())))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Num(n.into())))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value<'de>, E> {
        // serde_json reads only finite numbers.
        Ok(Value(Number::from_f64(x).map_or(Scalar::Null, Scalar::Num)))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Bool(b)))
    }
    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value(Scalar::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value(Scalar::Nested))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value(Scalar::Nested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read as a `serde_json::Value` object read the same lines (the runtime's reading
    /// before): the same keys' values, the same refusals.
    #[test]
    fn reads_lines_as_a_value_tree_would() {
        let lines = [
            r#"{"event":"browse","time":"2026-11-21T08:00:00Z","uid":"u-1","n":3,"x":1.5,"b":true}"#,
            r#"{"event":"a\"b","uid":7,"n":-3,"big":18446744073709551615,"nested":{"a":[1,{"b":2}]},"z":null}"#,
            r#"{"k":1,"k":"two"}"#,
            r#"{"esc":"\u00e9\n"}"#,
            r#"[1,2]"#,
            r#"5"#,
            r#""text""#,
            r#"null"#,
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{"a":01}"#,
            r#""#,
        ];
        for line in lines {
            let tree = serde_json::from_str::<serde_json::Value>(line);
            match (EventDoc::parse(line), tree) {
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{line}"),
                (Ok(None), Ok(v)) => assert!(!v.is_object(), "{line}"),
                (Ok(Some(doc)), Ok(serde_json::Value::Object(obj))) => {
                    for (k, v) in &obj {
                        let want = match v {
                            serde_json::Value::String(s) => Scalar::Str(Cow::Borrowed(s)),
                            serde_json::Value::Number(n) => Scalar::Num(n.clone()),
                            serde_json::Value::Bool(b) => Scalar::Bool(*b),
                            serde_json::Value::Null => Scalar::Null,
                            _ => Scalar::Nested,
                        };
                        assert_eq!(doc.get(k), Some(&want), "{line}: {k}");
                    }
                    assert_eq!(doc.get("absent"), None);
                }
                (a, b) => panic!("{line}: {a:?} against {b:?}"),
            }
        }
    }
}
