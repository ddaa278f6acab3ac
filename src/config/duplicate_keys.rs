//! Refuses JSON objects that set a key twice. serde_json keeps the last value silently, so
//! `{"region": "us-east-1", …, "region": "eu-west-1"}` would load with a region nobody reads
//! when reviewing the first lines of the config.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The path of the first key set twice, e.g. `spec.region` or `functions[1].name`; `None`
/// when every object has distinct keys (or the text is not JSON: the parser says why later).
pub(super) fn first_duplicate_key(bytes: &[u8]) -> Option<String> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Walk {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de);
    found.into_inner()
}

/// Walks one JSON value, `path` being where it sits.
struct Walk<'a> {
    path: String,
    found: &'a RefCell<Option<String>>,
}

impl Walk<'_> {
    fn child(&self, path: String) -> Self {
        Walk {
            path,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !keys.insert(key) {
                *self.found.borrow_mut() = Some(path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value_seed(self.child(path))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        while seq
            .next_element_seed(self.child(format!("{}[{i}]", self.path)))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    // Scalars carry no keys.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_path_of_a_repeated_key() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"a":1,"b":2}"#, None),
            (r#"{"a":1,"a":2}"#, Some("a")),
            (
                r#"{"spec":{"region":"x","region":"y"}}"#,
                Some("spec.region"),
            ),
            (
                r#"{"functions":[{"name":"f"},{"name":"g","name":"h"}]}"#,
                Some("functions[1].name"),
            ),
            (
                r#"{"upstreams":[{"spec":{"d":{"x":[1,{"k":1,"k":2}]}}}]}"#,
                Some("upstreams[0].spec.d.x[1].k"),
            ),
            // The same key in sibling objects is fine.
            (r#"{"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":2}]}"#, None),
            (
                r#"{"n":-1.5,"m":18446744073709551615,"s":"\u0000","t":true,"z":null}"#,
                None,
            ),
            ("{not json", None),
        ];
        for (json, want) in cases {
            assert_eq!(
                first_duplicate_key(json.as_bytes()).as_deref(),
                *want,
                "{json}"
            );
        }
    }
}
