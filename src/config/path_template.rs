//! `path_template` of a catch-all route: `/lambda/{function}` takes the function's name from
//! the request path, so one route can invoke any discovered function.

use percent_encoding::percent_decode_str;

const PLACEHOLDER: &str = "{function}";

/// A path with one `{function}` segment, e.g. `/lambda/{function}` or `/fn/{function}/invoke`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    prefix: String,
    suffix: String,
}

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        if !template.starts_with('/') {
            return Err(format!("'{template}' must start with '/'"));
        }
        let Some((prefix, suffix)) = template.split_once(PLACEHOLDER) else {
            return Err(format!("'{template}' has no {PLACEHOLDER} segment"));
        };
        if suffix.contains(PLACEHOLDER) {
            return Err(format!("'{template}' has more than one {PLACEHOLDER}"));
        }
        if !prefix.ends_with('/') || !(suffix.is_empty() || suffix.starts_with('/')) {
            return Err(format!(
                "'{template}': {PLACEHOLDER} must be a whole path segment"
            ));
        }
        if prefix.contains(['{', '}', '?']) || suffix.contains(['{', '}', '?']) {
            return Err(format!(
                "'{template}' may only contain the {PLACEHOLDER} placeholder"
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The function name in `path` (query ignored, percent-decoded, so `fn%3Alive` → `fn:live`),
    /// or `None` when the path does not fit the template.
    pub fn extract(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or("");
        let rest = path.strip_prefix(&self.prefix)?;
        let segment = if self.suffix.is_empty() {
            rest.strip_suffix('/').unwrap_or(rest)
        } else {
            rest.strip_suffix(&self.suffix)?
        };
        if segment.is_empty() || segment.contains('/') {
            return None;
        }
        percent_decode_str(segment)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_segment() {
        let t = PathTemplate::parse("/lambda/{function}").unwrap();
        assert_eq!(t.extract("/lambda/orders").as_deref(), Some("orders"));
        assert_eq!(t.extract("/lambda/orders/").as_deref(), Some("orders"));
        assert_eq!(t.extract("/lambda/orders?x=1").as_deref(), Some("orders"));
        assert_eq!(
            t.extract("/lambda/orders%3Alive").as_deref(),
            Some("orders:live")
        );
        assert_eq!(
            t.extract("/lambda/orders:live").as_deref(),
            Some("orders:live")
        );
        assert_eq!(t.extract("/lambda/"), None);
        assert_eq!(t.extract("/lambda/a/b"), None);
        assert_eq!(t.extract("/other/a"), None);
        let t = PathTemplate::parse("/fn/{function}/invoke").unwrap();
        assert_eq!(t.extract("/fn/x/invoke").as_deref(), Some("x"));
        assert_eq!(t.extract("/fn/x/other"), None);
    }

    #[test]
    fn rejects_malformed_templates() {
        for bad in [
            "lambda/{function}",
            "/lambda",
            "/l/{function}/{function}",
            "/l{function}",
            "/l/{function}x",
            "/{name}/{function}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
