//! When to refresh next, and how often to say that refreshes fail.
//!
//! After a success the next refresh is one `refresh_interval` away, ±10 % chosen by a seed so
//! that a fleet of Envoys started together drifts apart instead of polling in lockstep. After
//! failures it is
//! sooner at first and then backs off: 1 s, 2 s, 4 s … doubling up to `refresh_interval`, and
//! never more than 5 minutes, so a credential fix or an AWS recovery is picked up quickly
//! without hammering the control plane (ListFunctions is limited to 15 requests/s per account,
//! shared with every other tool). Each delay is shortened by a jitter of up to a quarter so that
//! many Envoys restarted together do not retry in step; the randomness is a parameter, so tests
//! (and the caller) decide it. Time is never read here.

use std::time::{Duration, SystemTime};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(5 * 60);

/// The refresh schedule of one upstream.
#[derive(Debug, Clone)]
pub struct Backoff {
    interval: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(refresh_interval: Duration) -> Self {
        Self {
            interval: refresh_interval,
            failures: 0,
        }
    }

    /// A newer config's refresh interval; the failure count stays.
    pub fn set_interval(&mut self, refresh_interval: Duration) {
        self.interval = refresh_interval;
    }

    /// A refresh succeeded: the next one is an interval ±10 % away, and the back-off restarts.
    /// `seed` is any random `u64`; `0` gives the interval exactly.
    pub fn on_success(&mut self, seed: u64) -> Duration {
        self.failures = 0;
        spread(self.interval, seed)
    }

    /// A refresh failed: the delay before the next attempt. `seed` is any random `u64`; `0`
    /// gives the delay without jitter.
    pub fn on_failure(&mut self, seed: u64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        jitter(self.base_delay(), seed)
    }

    /// Failures since the last success, for a gauge or a log line.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// The un-jittered delay after `self.failures` failures (at least one).
    fn base_delay(&self) -> Duration {
        let cap = self.interval.min(MAX_RETRY).max(FIRST_RETRY);
        let doublings = self.failures.saturating_sub(1).min(31);
        FIRST_RETRY
            .checked_mul(1u32 << doublings)
            .map_or(cap, |d| d.min(cap))
    }
}

/// `delay` minus up to 25 %, chosen by `seed`, at millisecond resolution.
fn jitter(delay: Duration, seed: u64) -> Duration {
    let quarter_ms = u64::try_from(delay.as_millis() / 4).unwrap_or(u64::MAX);
    let cut = seed % quarter_ms.saturating_add(1);
    delay.saturating_sub(Duration::from_millis(cut))
}

/// `interval` ± up to 10 %, chosen by `seed`, at millisecond resolution; seed 0 is no change.
pub fn spread(interval: Duration, seed: u64) -> Duration {
    let tenth_ms = u64::try_from(interval.as_millis() / 10).unwrap_or(u64::MAX / 4);
    let width = tenth_ms.saturating_mul(2).saturating_add(1);
    // Seed 0 lands in the middle of [-tenth, +tenth].
    let offset = seed.wrapping_add(tenth_ms) % width;
    interval
        .saturating_add(Duration::from_millis(offset))
        .saturating_sub(Duration::from_millis(tenth_ms))
}

/// Lets one failure log line through per `every`, counting the ones held back, so that an
/// upstream failing every second does not flood Envoy's log. Time is passed in.
#[derive(Debug, Clone)]
pub struct LogRateLimiter {
    every: Duration,
    last: Option<SystemTime>,
    suppressed: u64,
}

/// What to do with a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDecision {
    /// Write it, mentioning that `suppressed` similar lines were held back since the last one.
    Log {
        suppressed: u64,
    },
    Suppress,
}

impl LogRateLimiter {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    pub fn check(&mut self, now: SystemTime) -> LogDecision {
        let due = match self.last {
            None => true,
            // A clock that went backwards lets the line through rather than muting it for long.
            Some(last) => now.duration_since(last).map_or(true, |d| d >= self.every),
        };
        if due {
            self.last = Some(now);
            LogDecision::Log {
                suppressed: std::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += 1;
            LogDecision::Suppress
        }
    }

    /// Lines held back since the last one written.
    #[cfg(test)]
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn doubles_from_one_second_to_the_interval() {
        let mut b = Backoff::new(Duration::from_secs(60));
        let seq: Vec<f64> = (0..9).map(|_| secs(b.on_failure(0))).collect();
        assert_eq!(seq, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]);
        assert_eq!(b.consecutive_failures(), 9);
    }

    #[test]
    fn never_more_than_five_minutes() {
        let mut b = Backoff::new(Duration::from_secs(3600));
        let seq: Vec<f64> = (0..11).map(|_| secs(b.on_failure(0))).collect();
        assert_eq!(
            seq,
            [
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0
            ]
        );
        for _ in 0..100 {
            assert_eq!(
                b.on_failure(0),
                MAX_RETRY,
                "no overflow after many failures"
            );
        }
    }

    #[test]
    fn short_interval_caps_early() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let seq: Vec<f64> = (0..4).map(|_| secs(b.on_failure(0))).collect();
        assert_eq!(seq, [1.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn success_restores_the_interval_and_restarts_backoff() {
        let mut b = Backoff::new(Duration::from_secs(30));
        b.on_failure(0);
        b.on_failure(0);
        assert_eq!(b.on_success(0), Duration::from_secs(30));
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.on_failure(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_shortens_by_at_most_a_quarter_and_is_deterministic() {
        let base = Duration::from_secs(8);
        assert_eq!(jitter(base, 0), base);
        assert_eq!(jitter(base, 2000), Duration::from_millis(6000));
        assert_eq!(jitter(base, 2001), base, "wraps: seed % 2001");
        assert_eq!(jitter(base, 12345), jitter(base, 12345));
        for seed in [1, 7, 999, u64::MAX, 0xdead_beef] {
            let d = jitter(base, seed);
            assert!(d <= base && d >= Duration::from_secs(6), "{seed}: {d:?}");
        }
        let mut b = Backoff::new(Duration::from_secs(60));
        assert_eq!(b.on_failure(100), Duration::from_millis(900));
    }

    #[test]
    fn success_delay_stays_within_ten_percent_of_the_interval() {
        let interval = Duration::from_secs(60);
        assert_eq!(spread(interval, 0), interval);
        let (lo, hi) = (Duration::from_secs(54), Duration::from_secs(66));
        let mut seen = std::collections::BTreeSet::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = spread(interval, x);
            assert!(lo <= d && d <= hi, "{d:?}");
            seen.insert(d.as_secs());
        }
        // The whole band is used, not one end of it.
        assert!(seen.contains(&54) && seen.contains(&65), "{seen:?}");
        assert_eq!(
            spread(Duration::from_secs(1), 1),
            Duration::from_millis(1001)
        );
        assert_eq!(
            spread(Duration::from_secs(1), 100),
            Duration::from_millis(1100)
        );
        assert_eq!(
            spread(Duration::from_secs(1), 101),
            Duration::from_millis(900)
        );
        // No overflow at the extremes.
        assert!(spread(Duration::MAX, u64::MAX) <= Duration::MAX);
    }

    #[test]
    fn log_limiter_lets_one_line_per_period_through() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut l = LogRateLimiter::new(Duration::from_secs(60));
        assert_eq!(l.check(at(0)), LogDecision::Log { suppressed: 0 });
        assert_eq!(l.check(at(1)), LogDecision::Suppress);
        assert_eq!(l.check(at(30)), LogDecision::Suppress);
        assert_eq!(l.check(at(59)), LogDecision::Suppress);
        assert_eq!(l.suppressed(), 3);
        assert_eq!(l.check(at(60)), LogDecision::Log { suppressed: 3 });
        assert_eq!(l.check(at(61)), LogDecision::Suppress);
        assert_eq!(l.check(at(500)), LogDecision::Log { suppressed: 1 });
        // Clock stepped back: let the line through.
        assert_eq!(l.check(at(10)), LogDecision::Log { suppressed: 0 });
    }
}
