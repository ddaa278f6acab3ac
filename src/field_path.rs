//! JSON deserialization that says where it failed: the path of the offending value
//! (`upstreams[1].spec.region`), which config errors and Lambda API page errors both report.

use serde::{Deserialize, Deserializer};

/// A serde error and the path (below the document's root) of the value it is about.
#[derive(Debug)]
pub(crate) struct PathError {
    /// `""` at the root, else e.g. `Functions[3]` or `spec.endpoint`.
    path: String,
    error: serde_json::Error,
}

/// Deserializes `T`, keeping the path of the failing value in the error.
pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, PathError>
where
    D: Deserializer<'de, Error = serde_json::Error>,
    T: Deserialize<'de>,
{
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        PathError {
            // serde_path_to_error writes the root as ".".
            path: if path == "." { String::new() } else { path },
            error: e.into_inner(),
        }
    })
}

impl PathError {
    /// Where the failing value is; `""` at the root.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The field the error is about: the path, plus the name of a missing field (serde names
    /// it only in its message), so that `spec` + ``missing field `region` `` is `spec.region`.
    pub(crate) fn field(&self) -> String {
        join(&self.path, missing_field(&self.message()).unwrap_or(""))
    }

    /// serde's own text (it names unknown fields and the expected type).
    pub(crate) fn message(&self) -> String {
        self.error.to_string()
    }

    /// True when the JSON was well formed but had the wrong shape (not a syntax error).
    pub(crate) fn is_data(&self) -> bool {
        self.error.is_data()
    }
}

/// `prefix.rest`, leaving out the dot when either side is empty.
pub(crate) fn join(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only the errors matter here
    struct Doc {
        spec: Spec,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Spec {
        region: String,
    }

    fn fail(v: serde_json::Value) -> PathError {
        deserialize::<_, Doc>(v).unwrap_err()
    }

    #[test]
    fn paths_and_fields_name_the_value() {
        let e = fail(json!({"spec": {"region": 1}}));
        assert_eq!(
            (e.path(), e.field().as_str()),
            ("spec.region", "spec.region")
        );
        assert!(e.is_data());
        let e = fail(json!({"spec": {}}));
        assert_eq!((e.path(), e.field().as_str()), ("spec", "spec.region"));
        let e = fail(json!({}));
        assert_eq!((e.path(), e.field().as_str()), ("", "spec"));
        let e = fail(json!({"spec": {"region": "r"}, "colour": 1}));
        assert_eq!(e.field(), "colour");
        assert!(
            e.message().contains("unknown field `colour`"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn syntax_errors_are_not_data_errors() {
        let mut de = serde_json::Deserializer::from_slice(b"{\"spec\": ");
        let e = deserialize::<_, Doc>(&mut de).unwrap_err();
        assert!(!e.is_data());
    }

    #[test]
    fn join_leaves_out_empty_sides() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", ""), "a");
        assert_eq!(join("a", "b"), "a.b");
    }
}
