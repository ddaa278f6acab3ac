//! Function-name globs for `discovery.include` / `discovery.exclude`: `*` (any run, also empty)
//! and `?` (exactly one character), nothing else.
//!
//! Patterns are limited to the characters a Lambda function name can contain plus the two
//! wildcards, so a pattern that could never match (`orders/*`, `[a-z]*`) is refused at load
//! instead of silently discovering nothing. Matching is case-sensitive, like function names.

use std::fmt;

/// A validated glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Box<str>);

/// Lambda function names are at most 64 characters; a pattern of literals longer than that
/// can never match, but with `*` a pattern may be a little longer. 256 is a typo guard.
const MAX_PATTERN_LEN: usize = 256;

impl Glob {
    /// Accepts `[A-Za-z0-9_.-]` (the characters of a function's own name), `*` and `?`; the error text names the offending character.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("must not be empty (use \"*\" for every function)".into());
        }
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "'{pattern}' is longer than {MAX_PATTERN_LEN} characters"
            ));
        }
        if let Some(bad) = pattern
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?')))
        {
            return Err(format!(
                "'{pattern}' contains '{bad}': a function-name glob may only use letters, \
                 digits, '-', '_', '.' and the wildcards '*' and '?'"
            ));
        }
        Ok(Self(pattern.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the whole `name` matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative matcher with single-star backtracking: O(pattern × name) in the worst case,
/// linear in practice, no recursion (so no stack growth on `*****…`). Bytes are compared;
/// patterns are ASCII by construction, and a non-ASCII name simply does not match literals.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the name position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry from there.
                Some((resume, tried)) => {
                    star = Some((resume, tried + 1));
                    p = resume;
                    n = tried + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// `include` (default: everything) minus `exclude`, applied to a function's own name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    /// `None`: every function is included.
    pub include: Option<Vec<Glob>>,
    pub exclude: Vec<Glob>,
}

impl NameFilter {
    pub fn allows(&self, function_name: &str) -> bool {
        let included = match &self.include {
            None => true,
            Some(globs) => globs.iter().any(|g| g.matches(function_name)),
        };
        included && !self.exclude.iter().any(|g| g.matches(function_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn literals_match_whole_names_only() {
        assert!(m("orders", "orders"));
        assert!(!m("orders", "orders-v2"));
        assert!(!m("orders", "order"));
        assert!(!m("Orders", "orders"), "case-sensitive");
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(m("*", "anything"));
        assert!(m("orders-*", "orders-"));
        assert!(m("orders-*", "orders-api"));
        assert!(!m("orders-*", "orders"));
        assert!(m("*-api", "billing-api"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a-xx-b-yy-c"));
        assert!(!m("a*b*c", "a-xx-b-yy-cd"));
        assert!(m("**a**", "banana"));
        // Backtracking: the first `b` is not the right one.
        assert!(m("*bc", "abbc"));
        assert!(m("a*bcd", "abcbcd"));
    }

    #[test]
    fn question_mark_is_exactly_one_character() {
        assert!(m("fn-?", "fn-1"));
        assert!(!m("fn-?", "fn-"));
        assert!(!m("fn-?", "fn-10"));
        assert!(m("fn-??", "fn-10"));
        assert!(m("?*", "x"));
        assert!(!m("?*", ""));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let name = "a".repeat(64);
        let pattern = format!("{}b", "*a".repeat(30));
        assert!(!m(&pattern, &name));
    }

    #[test]
    fn refuses_patterns_that_could_never_match() {
        assert!(Glob::parse("").unwrap_err().contains("must not be empty"));
        let e = Glob::parse("orders/*").unwrap_err();
        assert!(e.contains("'/'"), "{e}");
        assert!(Glob::parse("[a-z]*").is_err());
        assert!(Glob::parse("fn name").is_err());
        assert!(Glob::parse(&"*".repeat(MAX_PATTERN_LEN + 1)).is_err());
        assert!(Glob::parse("Orders_v2-*?").is_ok());
        assert!(
            Glob::parse("orders.v2-*").unwrap().matches("orders.v2-eu"),
            "dots as in names"
        );
    }

    #[test]
    fn filter_is_include_minus_exclude() {
        let g = |p: &str| Glob::parse(p).unwrap();
        let all = NameFilter::default();
        assert!(all.allows("x"));
        let f = NameFilter {
            include: Some(vec![g("orders-*"), g("billing")]),
            exclude: vec![g("*-test")],
        };
        assert!(f.allows("orders-api"));
        assert!(f.allows("billing"));
        assert!(!f.allows("orders-test"));
        assert!(!f.allows("shipping"));
        let only_exclude = NameFilter {
            include: None,
            exclude: vec![g("internal-*")],
        };
        assert!(only_exclude.allows("public"));
        assert!(!only_exclude.allows("internal-cron"));
    }
}
