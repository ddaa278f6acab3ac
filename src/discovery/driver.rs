//! Discovery of one upstream end to end, still without I/O: what the ABI layer calls from the
//! main thread's timer and callout callbacks.
//!
//! ```text
//! timer fired        → if let Some(req) = d.start(now) { callout(req) }
//! callout answered   → let out = d.on_response(status, body, now, seed);
//! callout failed     → let out = d.on_transport_failure("reset", now, seed);
//!                      match out.step { Send(req) => callout(req), Wait(delay) => arm timer(delay),
//!                                       Idle => {} }
//!                      if let Some(Report::Failed { log: Some(line), .. }) = out.report { warn!(line) }
//! ```
//!
//! Exactly one request is in flight at a time per upstream (so at most 1 request/s per
//! upstream against the account's 15/s ListFunctions quota while paging). A failed refresh
//! leaves the table as it was: workers keep using the previous good set.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::backoff::{Backoff, LogDecision, LogRateLimiter};
use super::lambda_api::ApiRequest;
use super::refresh::{FailureKind, Refresh, RefreshError};
use super::table::{FunctionTable, TableState};
use crate::config::DiscoverySettings;

/// At most one "discovery failed" warning per upstream per this period.
pub const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(60);

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Sign and send this request; report its reply.
    Send(ApiRequest),
    /// The refresh is over; call [`UpstreamDiscovery::start`] after this delay.
    Wait(Duration),
    /// Nothing new to do: a stray reply; the timer or callout already pending stays in charge.
    Idle,
}

/// The end of a refresh, for stats and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The table now holds `names` names.
    Refreshed { names: usize, requests: usize },
    /// The table was left as it was. `log` is the warning to write, `None` when rate-limited.
    Failed {
        kind: FailureKind,
        error: RefreshError,
        log: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub step: Step,
    pub report: Option<Report>,
}

/// Discovery state of one upstream (main thread only); the table is shared with the workers.
#[derive(Debug)]
pub struct UpstreamDiscovery {
    upstream: String,
    settings: DiscoverySettings,
    table: Arc<FunctionTable>,
    backoff: Backoff,
    log_limiter: LogRateLimiter,
    current: Option<Refresh>,
    /// When the last refresh that listed every function's aliases/versions was started.
    last_full: Option<SystemTime>,
    /// Whether the refresh in progress lists every function's aliases/versions.
    current_is_full: bool,
}

impl UpstreamDiscovery {
    pub fn new(upstream: impl Into<String>, settings: DiscoverySettings) -> Self {
        Self::with_table(upstream, settings, Arc::new(FunctionTable::new()))
    }

    /// Like `new`, publishing into a table the workers already hold.
    pub fn with_table(
        upstream: impl Into<String>,
        settings: DiscoverySettings,
        table: Arc<FunctionTable>,
    ) -> Self {
        Self {
            upstream: upstream.into(),
            backoff: Backoff::new(settings.refresh_interval),
            settings,
            table,
            log_limiter: LogRateLimiter::new(FAILURE_LOG_PERIOD),
            current: None,
            last_full: None,
            current_is_full: false,
        }
    }

    /// The table workers read; clone the `Arc` into the per-worker config.
    pub fn table(&self) -> &Arc<FunctionTable> {
        &self.table
    }

    pub fn settings(&self) -> &DiscoverySettings {
        &self.settings
    }

    /// New intervals (a newer config of the same discovery): they apply from the next refresh
    /// on; the back-off keeps its count of failures.
    pub fn update_settings(&mut self, settings: DiscoverySettings) {
        self.backoff.set_interval(settings.refresh_interval);
        self.settings = settings;
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> bool {
        self.current.is_some()
    }

    /// Starts a refresh and returns its first request; `None` if one is already running (the
    /// callout's timeout guarantees it ends, so a late timer tick is simply ignored). Aliases
    /// and versions of known functions are listed again only once `aliases_refresh_interval`
    /// has passed since the last refresh that listed them all.
    pub fn start(&mut self, now: SystemTime) -> Option<ApiRequest> {
        if self.current.is_some() {
            return None;
        }
        let per_function = self.settings.aliases || self.settings.versions;
        let full_due = match (self.settings.aliases_refresh_interval, self.last_full) {
            (None, _) | (_, None) => true,
            (Some(every), Some(last)) => now.duration_since(last).map_or(true, |d| d >= every),
        };
        let previous = match self.table.state() {
            TableState::Ready(snapshot) if per_function && !full_due => Some(snapshot),
            _ => None,
        };
        self.current_is_full = previous.is_none();
        if self.current_is_full {
            self.last_full = Some(now);
        }
        let refresh = match previous {
            Some(previous) => Refresh::reusing(&self.settings, previous),
            None => Refresh::new(&self.settings),
        };
        let first = refresh.next_request();
        self.current = Some(refresh);
        first
    }

    /// The reply to the outstanding request. `now` stamps a published set and paces the
    /// failure log; `seed` is any random `u64` for the retry jitter.
    pub fn on_response(&mut self, status: u16, body: &[u8], now: SystemTime, seed: u64) -> Outcome {
        let Some(refresh) = self.current.as_mut() else {
            return self.failed(RefreshError::NotWaiting, now, seed);
        };
        if let Err(e) = refresh.on_response(status, body) {
            self.current = None;
            return self.failed(e, now, seed);
        }
        if let Some(next) = refresh.next_request() {
            return Outcome {
                step: Step::Send(next),
                report: None,
            };
        }
        self.finish(now, seed)
    }

    /// Drops the refresh in progress without a report: its sender is gone (its config was
    /// destroyed, Envoy cancels its callouts) or it panicked. The table keeps the last good set.
    pub fn abort(&mut self) {
        if self.current.take().is_some() && self.current_is_full {
            // The full listing did not happen: the next refresh does it.
            self.last_full = None;
        }
    }

    /// The outstanding request got no HTTP reply (reset, timeout, could not be signed or sent).
    pub fn on_transport_failure(&mut self, reason: &str, now: SystemTime, seed: u64) -> Outcome {
        let error = match self.current.take() {
            Some(mut refresh) => refresh.on_transport_failure(reason),
            None => RefreshError::NotWaiting,
        };
        self.failed(error, now, seed)
    }

    fn finish(&mut self, now: SystemTime, seed: u64) -> Outcome {
        let Some(refresh) = self.current.take() else {
            return self.failed(RefreshError::NotWaiting, now, seed);
        };
        let requests = refresh.requests();
        match refresh.finish() {
            Ok(set) => {
                let names = set.len();
                self.table.publish(set, now);
                Outcome {
                    step: Step::Wait(self.backoff.on_success(seed)),
                    report: Some(Report::Refreshed { names, requests }),
                }
            }
            Err(e) => self.failed(e, now, seed),
        }
    }

    fn failed(&mut self, error: RefreshError, now: SystemTime, seed: u64) -> Outcome {
        if self.current_is_full && !matches!(error, RefreshError::NotWaiting) {
            self.last_full = None;
        }
        // A reply with no refresh running is a caller bug; whatever timer or callout is pending
        // stays the only one, so the schedule is left alone.
        let delay = match error {
            RefreshError::NotWaiting => None,
            _ => Some(self.backoff.on_failure(seed)),
        };
        let log = match self.log_limiter.check(now) {
            LogDecision::Suppress => None,
            LogDecision::Log { suppressed } => {
                let mut line = format!(
                    "discovery for upstream '{}' failed ({}): {error}; the previous function \
                     list stays in use",
                    self.upstream,
                    error.kind().name()
                );
                if let Some(d) = delay {
                    line.push_str(&format!(
                        "; retry in {d:?} ({} failure(s) in a row)",
                        self.backoff.consecutive_failures()
                    ));
                }
                if suppressed > 0 {
                    line.push_str(&format!("; {suppressed} similar line(s) suppressed"));
                }
                Some(line)
            }
        };
        Outcome {
            step: delay.map_or(Step::Idle, Step::Wait),
            report: Some(Report::Failed {
                kind: error.kind(),
                error,
                log,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::table::Lookup;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn discovery() -> UpstreamDiscovery {
        let settings = DiscoverySettings {
            enabled: true,
            refresh_interval: Duration::from_secs(30),
            ..Default::default()
        };
        UpstreamDiscovery::new("lambda-east", settings)
    }

    const PAGE_1: &[u8] = br#"{"Functions":[{"FunctionName":"a"}],"NextMarker":"m1"}"#;
    const PAGE_2: &[u8] = br#"{"Functions":[{"FunctionName":"b"}],"NextMarker":null}"#;

    #[test]
    fn a_successful_refresh_publishes_and_waits_an_interval() {
        let mut d = discovery();
        let table = Arc::clone(d.table());
        let first = d.start(at(0)).unwrap();
        assert_eq!(first.path_and_query, "/2015-03-31/functions/?MaxItems=50");
        assert_eq!(d.start(at(0)), None, "one refresh at a time");
        let out = d.on_response(200, PAGE_1, at(0), 0);
        let Step::Send(second) = out.step else {
            panic!("{out:?}")
        };
        assert!(second.path_and_query.ends_with("&Marker=m1"));
        assert_eq!(
            table.lookup("a"),
            Lookup::NotReady,
            "nothing published mid-refresh"
        );
        let out = d.on_response(200, PAGE_2, at(1), 0);
        assert_eq!(out.step, Step::Wait(Duration::from_secs(30)));
        assert_eq!(
            out.report,
            Some(Report::Refreshed {
                names: 2,
                requests: 2
            })
        );
        assert_eq!(table.lookup("b"), Lookup::Found);
        assert_eq!(table.last_success(), Some(at(1)));
        assert!(!d.in_flight());
    }

    #[test]
    fn failures_keep_the_old_set_back_off_and_rate_limit_the_log() {
        let mut d = discovery();
        let table = Arc::clone(d.table());
        d.start(at(0));
        d.on_response(200, PAGE_2, at(0), 0);
        assert_eq!(table.len(), 1);

        d.start(at(0));
        let out = d.on_response(
            403,
            br#"{"message":"The security token included in the request is invalid."}"#,
            at(30),
            0,
        );
        assert_eq!(out.step, Step::Wait(Duration::from_secs(1)));
        let Some(Report::Failed { kind, log, .. }) = out.report else {
            panic!()
        };
        assert_eq!(kind, FailureKind::Auth);
        assert_eq!(
            log.as_deref(),
            Some(
                "discovery for upstream 'lambda-east' failed (auth): ListFunctions answered 403: \
                 The security token included in the request is invalid.; the previous function \
                 list stays in use; retry in 1s (1 failure(s) in a row)"
            )
        );
        assert_eq!(table.lookup("b"), Lookup::Found, "previous good set kept");

        d.start(at(0));
        let out = d.on_transport_failure("connection reset", at(31), 0);
        assert_eq!(out.step, Step::Wait(Duration::from_secs(2)));
        assert!(matches!(
            out.report,
            Some(Report::Failed {
                kind: FailureKind::Transport,
                log: None,
                ..
            })
        ));

        d.start(at(0));
        let out = d.on_response(500, b"", at(100), 0);
        assert_eq!(out.step, Step::Wait(Duration::from_secs(4)));
        let Some(Report::Failed {
            log: Some(line), ..
        }) = out.report
        else {
            panic!()
        };
        assert!(line.ends_with("; 1 similar line(s) suppressed"), "{line}");

        d.start(at(0));
        let out = d.on_response(200, PAGE_2, at(104), 0);
        assert_eq!(
            out.step,
            Step::Wait(Duration::from_secs(30)),
            "back to the interval"
        );
        assert_eq!(table.last_success(), Some(at(104)));
    }

    #[test]
    fn stray_replies_are_reported_without_disturbing_a_refresh() {
        let mut d = discovery();
        let out = d.on_response(200, PAGE_1, at(0), 0);
        assert_eq!(out.step, Step::Idle);
        assert!(matches!(
            out.report,
            Some(Report::Failed {
                kind: FailureKind::Internal,
                ..
            })
        ));
        assert_eq!(d.on_transport_failure("late", at(1), 0).step, Step::Idle);
        assert!(d.start(at(1)).is_some());
        assert!(d.in_flight());
        // The stray replies did not count as failures: the first real one retries after 1 s.
        assert_eq!(
            d.on_response(500, b"", at(2), 0).step,
            Step::Wait(Duration::from_secs(1))
        );
    }

    /// Answers every request of a refresh: one function `a` with alias `live`.
    fn run_refresh(d: &mut UpstreamDiscovery, now: SystemTime) -> Vec<String> {
        let mut paths = Vec::new();
        let mut next = d.start(now);
        while let Some(req) = next {
            paths.push(req.path_and_query.clone());
            let body: &[u8] = match req.call {
                crate::discovery::lambda_api::ApiCall::ListFunctions => {
                    br#"{"Functions":[{"FunctionName":"a"}],"NextMarker":null}"#
                }
                _ => br#"{"Aliases":[{"Name":"live"}],"NextMarker":null}"#,
            };
            next = match d.on_response(200, body, now, 0).step {
                Step::Send(r) => Some(r),
                _ => None,
            };
        }
        paths
    }

    #[test]
    fn aliases_are_listed_again_only_every_aliases_refresh_interval() {
        let settings = DiscoverySettings {
            enabled: true,
            refresh_interval: Duration::from_secs(30),
            aliases: true,
            aliases_refresh_interval: Some(Duration::from_secs(120)),
            ..Default::default()
        };
        let mut d = UpstreamDiscovery::new("u", settings);
        let table = Arc::clone(d.table());
        assert_eq!(
            run_refresh(&mut d, at(0)).len(),
            2,
            "first refresh lists aliases"
        );
        assert_eq!(table.lookup("a:live"), Lookup::Found);
        assert_eq!(run_refresh(&mut d, at(30)).len(), 1, "functions only");
        assert_eq!(
            table.lookup("a:live"),
            Lookup::Found,
            "kept from the full one"
        );
        assert_eq!(run_refresh(&mut d, at(90)).len(), 1);
        assert_eq!(run_refresh(&mut d, at(120)).len(), 2, "full again");

        // An aborted full refresh is redone at the next start.
        d.start(at(240));
        d.abort();
        assert!(!d.in_flight());
        assert_eq!(run_refresh(&mut d, at(241)).len(), 2);
    }

    #[test]
    fn success_waits_are_jittered_by_the_seed() {
        let mut d = discovery();
        d.start(at(0));
        let out = d.on_response(200, PAGE_2, at(0), 1);
        // 30 s ± 3 s: seed 1 is 3001 ms into the 6001 ms band.
        assert_eq!(out.step, Step::Wait(Duration::from_millis(30_001)));
    }
}
