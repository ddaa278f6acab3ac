//! When to fetch an identity's credentials next. Time and randomness are parameters.
//!
//! After a success: at the earlier of (expiry − 5 min ± 1 min) and (now + half the remaining
//! lifetime): hour-long STS keys are renewed after 30 minutes, keys that live a few minutes
//! some 5 minutes (± a jitter of a minute, so a fleet does not refresh in lockstep) before they
//! lapse, keys that live tens of seconds at half-life. Credentials without an expiry (static keys) are re-read every 15 minutes,
//! which picks up an edited profile file. After a failure: 1 s, 2 s, 4 s … capped at 30 s, each
//! cut by up to a quarter (jitter); the cached credentials stay in use meanwhile.

use std::time::{Duration, SystemTime};

/// How far ahead of the expiry a refresh is due (before jitter).
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// The ± spread of [`REFRESH_AHEAD`].
pub const REFRESH_JITTER: Duration = Duration::from_secs(60);
/// Re-read period of credentials that do not expire.
pub const STATIC_REFRESH: Duration = Duration::from_secs(15 * 60);
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
pub const MAX_RETRY: Duration = Duration::from_secs(30);

/// When to refresh credentials fetched at `now` that expire at `expires` (`None`: never).
/// `seed` is any random `u64` and picks the jitter.
pub fn refresh_at(now: SystemTime, expires: Option<SystemTime>, seed: u64) -> SystemTime {
    let Some(expires) = expires else {
        return now + STATIC_REFRESH;
    };
    let Ok(remaining) = expires.duration_since(now) else {
        return now; // already expired: try again at once (the back-off paces repeats)
    };
    let half_life = now + remaining / 2;
    let span_ms = REFRESH_JITTER.as_millis() as u64;
    // An offset in [-jitter, +jitter] around REFRESH_AHEAD.
    let offset = seed % (2 * span_ms + 1);
    let ahead = REFRESH_AHEAD + Duration::from_millis(offset) - REFRESH_JITTER;
    // The earlier of the two, unless "ahead of expiry" is already past (a lifetime under
    // five minutes): then half-life alone. Never sooner than a second from now.
    let due = match expires.checked_sub(ahead) {
        Some(before_expiry) if before_expiry > now => before_expiry.min(half_life),
        _ => half_life,
    };
    due.max((now + MIN_GAP).min(expires))
}

/// The shortest pause between two successful fetches.
const MIN_GAP: Duration = Duration::from_secs(1);

/// The delay before retry number `failures` (1 for the first), cut by up to a quarter.
pub fn retry_delay(failures: u32, seed: u64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let base = FIRST_RETRY
        .checked_mul(1 << doublings)
        .map_or(MAX_RETRY, |d| d.min(MAX_RETRY));
    let quarter_ms = base.as_millis() as u64 / 4;
    base - Duration::from_millis(seed % (quarter_ms + 1))
}

/// A random `u64` for the jitter (no RNG dependency: the std hasher's random keys).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn mid() -> u64 {
        REFRESH_JITTER.as_millis() as u64 // the seed that lands on REFRESH_AHEAD exactly
    }

    #[test]
    fn minutes_long_keys_are_renewed_five_minutes_ahead_with_jitter() {
        // 9 minutes: 5 min ahead (4 min from now) is earlier than half-life (4.5 min).
        assert_eq!(refresh_at(at(0), Some(at(540)), mid()), at(240));
        // The spread covers ±1 min and nothing more (and never passes half-life).
        let earliest = refresh_at(at(0), Some(at(540)), 2 * mid());
        let latest = refresh_at(at(0), Some(at(540)), 0);
        assert_eq!(earliest, at(180));
        assert_eq!(latest, at(270));
        for seed in [1, 7, 99_999, u64::MAX] {
            let t = refresh_at(at(0), Some(at(540)), seed);
            assert!(t >= earliest && t <= latest, "{seed}");
        }
    }

    #[test]
    fn hour_long_keys_are_renewed_at_half_life() {
        assert_eq!(refresh_at(at(0), Some(at(3600)), mid()), at(1800));
        assert_eq!(refresh_at(at(1800), Some(at(3600)), 0), at(2700));
        // Near the end, five minutes ahead wins.
        assert_eq!(refresh_at(at(3000), Some(at(3600)), mid()), at(3300));
    }

    #[test]
    fn short_lifetimes_are_renewed_at_half_life() {
        assert_eq!(refresh_at(at(0), Some(at(30)), mid()), at(15));
        assert_eq!(refresh_at(at(100), Some(at(120)), 0), at(110));
        // 8 minutes: 5 min ahead (3 min from now) is earlier than half-life (4 min).
        assert_eq!(refresh_at(at(0), Some(at(480)), mid()), at(180));
        // 5 min 10 s: "ahead" would be 10 s from now, half-life is later: 10 s it is.
        assert_eq!(refresh_at(at(0), Some(at(310)), mid()), at(10));
        // Never a busy loop: at least a second, unless that is past the expiry.
        assert_eq!(refresh_at(at(0), Some(at(1)), 0), at(1));
        assert_eq!(
            refresh_at(at(0), Some(at(0) + Duration::from_millis(1500)), 0),
            at(1)
        );
    }

    #[test]
    fn expired_or_static_credentials() {
        assert_eq!(refresh_at(at(50), Some(at(40)), 0), at(50));
        assert_eq!(refresh_at(at(0), None, 0), at(0) + STATIC_REFRESH);
    }

    #[test]
    fn retries_start_within_a_second_and_cap_at_thirty() {
        assert_eq!(retry_delay(1, 0), Duration::from_secs(1));
        assert_eq!(retry_delay(2, 0), Duration::from_secs(2));
        assert_eq!(retry_delay(5, 0), Duration::from_secs(16));
        assert_eq!(retry_delay(6, 0), MAX_RETRY);
        assert_eq!(retry_delay(60, 0), MAX_RETRY);
        for seed in [1, 250, 12345, u64::MAX] {
            let d = retry_delay(1, seed);
            assert!(d <= FIRST_RETRY && d >= Duration::from_millis(750), "{d:?}");
        }
    }
}
