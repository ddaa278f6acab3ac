//! Routes whose upstream or function this filter config does not define.
//!
//! Envoy gives a per-route config no link to the filter config of the listener that will use
//! it, so whether its names exist is only known per request. Each such name is answered with a
//! JSON 404/500 every time but logged once per filter config; the set is bounded, so even a
//! route table that names thousands of missing functions cannot grow it without limit.

use std::collections::HashSet;
use std::sync::Mutex;

/// How many distinct names are remembered (and logged) per filter config.
pub const MAX_LOGGED: usize = 64;

#[derive(Debug, Default)]
pub struct UnresolvedNames {
    seen: Mutex<HashSet<String>>,
}

/// What to log for a name that did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOnce {
    /// The first time: log it.
    First,
    /// The set just filled up: log that further names go unlogged.
    LimitReached,
    /// Logged before (or past the limit): stay quiet.
    Quiet,
}

impl UnresolvedNames {
    /// Records `key` (e.g. `upstream 'u' function 'f'`) and says whether to log it.
    pub fn note(&self, key: &str) -> LogOnce {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(key) {
            return LogOnce::Quiet;
        }
        match seen.len() {
            n if n < MAX_LOGGED => {
                seen.insert(key.to_owned());
                LogOnce::First
            }
            n if n == MAX_LOGGED => {
                // A marker no real key can equal (keys never start with a NUL).
                seen.insert("\0limit".to_owned());
                LogOnce::LimitReached
            }
            _ => LogOnce::Quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_logged_once_and_the_set_is_bounded() {
        let u = UnresolvedNames::default();
        assert_eq!(u.note("upstream 'a'"), LogOnce::First);
        assert_eq!(u.note("upstream 'a'"), LogOnce::Quiet);
        assert_eq!(u.note("upstream 'b'"), LogOnce::First);
        for i in 2..MAX_LOGGED {
            assert_eq!(u.note(&format!("n{i}")), LogOnce::First);
        }
        assert_eq!(u.note("one too many"), LogOnce::LimitReached);
        for i in 0..1000 {
            assert_eq!(u.note(&format!("more{i}")), LogOnce::Quiet);
        }
        assert_eq!(u.note("upstream 'a'"), LogOnce::Quiet);
        assert_eq!(u.seen.lock().unwrap().len(), MAX_LOGGED + 1);
    }
}
