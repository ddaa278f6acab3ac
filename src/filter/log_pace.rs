//! At most one log line per period for each (upstream, error code), shared by every worker
//! thread without a lock: one atomic timestamp per pair, claimed by compare-and-swap. Time is
//! passed in, so the pacing is unit-tested without sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One line per this period, per (upstream, code).
pub const AWS_ERROR_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The pacing of one kind of line.
#[derive(Debug)]
pub struct LogPace {
    period_ms: u64,
    /// Unix milliseconds of the last line written; 0 = never.
    last_ms: AtomicU64,
    /// Lines held back since then.
    suppressed: AtomicU64,
}

impl LogPace {
    pub fn new(period: Duration) -> Self {
        Self {
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last line)` when a line may be written at `now`, else `None`
    /// (and the line is counted as held back). Of two threads due at once, one writes.
    pub fn check(&self, now: SystemTime) -> Option<u64> {
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .max(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        // A clock that went backwards lets the line through rather than muting it for long.
        let due = last == 0 || now_ms < last || now_ms - last >= self.period_ms;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// A [`LogPace`] for every (upstream, code) pair, built once per filter config.
#[derive(Debug, Default)]
pub struct PacedLogs {
    by_upstream: HashMap<String, HashMap<&'static str, LogPace>>,
}

impl PacedLogs {
    pub fn new<'a>(
        upstreams: impl IntoIterator<Item = &'a str>,
        codes: &[&'static str],
        period: Duration,
    ) -> Self {
        let by_upstream = upstreams
            .into_iter()
            .map(|u| {
                let paces = codes.iter().map(|c| (*c, LogPace::new(period))).collect();
                (u.to_owned(), paces)
            })
            .collect();
        Self { by_upstream }
    }

    /// [`LogPace::check`] of the pair; a pair not set up is never held back.
    pub fn check(&self, upstream: &str, code: &str, now: SystemTime) -> Option<u64> {
        match self.by_upstream.get(upstream).and_then(|m| m.get(code)) {
            Some(pace) => pace.check(now),
            None => Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    #[test]
    fn one_line_per_period_counting_the_rest() {
        let p = LogPace::new(Duration::from_secs(10));
        assert_eq!(p.check(at(0)), Some(0));
        assert_eq!(p.check(at(1)), None);
        assert_eq!(p.check(at(9)), None);
        assert_eq!(p.check(at(10)), Some(2));
        assert_eq!(p.check(at(11)), None);
        assert_eq!(p.check(at(100)), Some(1));
        // The clock stepped back: let the line through.
        assert_eq!(p.check(at(50)), Some(0));
    }

    #[test]
    fn pairs_are_paced_apart() {
        let logs = PacedLogs::new(
            ["a", "b"],
            &["throttled", "lambda_timeout"],
            AWS_ERROR_LOG_PERIOD,
        );
        assert_eq!(logs.check("a", "throttled", at(0)), Some(0));
        assert_eq!(logs.check("a", "throttled", at(1)), None);
        assert_eq!(logs.check("a", "lambda_timeout", at(1)), Some(0));
        assert_eq!(logs.check("b", "throttled", at(1)), Some(0));
        assert_eq!(logs.check("zzz", "throttled", at(1)), Some(0));
    }

    #[test]
    fn threads_racing_write_one_line() {
        let p = Arc::new(LogPace::new(Duration::from_secs(10)));
        let written: u64 = (0..4)
            .map(|_| {
                let p = Arc::clone(&p);
                std::thread::spawn(move || (0..1000).filter(|_| p.check(at(5)).is_some()).count())
            })
            .map(|t| t.join().unwrap() as u64)
            .sum();
        assert_eq!(written, 1);
        assert_eq!(p.check(at(15)), Some(3999));
    }
}
