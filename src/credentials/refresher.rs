//! One identity's refresh loop: fetch, store, schedule the next fetch ([`schedule`]), retry
//! with back-off, wake waiting streams (and time them out), tell the configs to publish stats,
//! log one warning per failure streak, stop when no config holds the identity.
//!
//! Everything it touches is a parameter: the fetcher ([`Fetch`]), the clock ([`Clock`]), the
//! jitter seeds and the log, so unit tests drive it on a paused tokio clock with fakes.
//!
//! [`schedule`]: super::schedule

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::AwsCredentials;
use super::current::{CurrentCredentials, Held};
use super::schedule::{refresh_at, retry_delay};
use super::stats::{FailureReason, SourceName};
use crate::host::LogLevel;

/// A successful fetch (`Debug` shows no secret: [`AwsCredentials`]' own redacts them).
#[derive(Debug)]
pub struct Fetched {
    pub credentials: AwsCredentials,
    pub expires: Option<SystemTime>,
    pub source: SourceName,
}

/// A failed fetch. `message` never holds secret material (the fetcher's duty, tested there).
#[derive(Debug, Clone)]
pub struct FetchError {
    pub reason: FailureReason,
    pub message: String,
}

pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// Gets a fresh set of credentials from the identity's providers.
pub trait Fetch: Send + Sync + 'static {
    fn fetch(&self) -> FetchFuture<'_>;
}

/// Wall-clock time (credential expiry is wall-clock). Sleeping goes through tokio's timer.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

pub type LogFn = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Tells a refresher to end (its identity is no longer held by any config).
#[derive(Default)]
pub struct Stop {
    stopped: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

pub struct Refresher {
    pub current: Arc<CurrentCredentials>,
    pub fetcher: Box<dyn Fetch>,
    pub clock: Arc<dyn Clock>,
    pub seed: Box<dyn Fn() -> u64 + Send + Sync>,
    pub log: LogFn,
    /// `upstream 'u' (source: chain)`, for log lines.
    pub describe: String,
    pub stop: Arc<Stop>,
}

/// What the loop waits for between steps.
enum Woken {
    Stop,
    Time,
}

impl Refresher {
    /// Runs until stopped. Never panics on a provider's behalf: a fetch error is a value.
    pub async fn run(self) {
        let mut failures: u32 = 0;
        let mut next_fetch = self.clock.now();
        loop {
            // Until the next fetch is due: time out waiters whose deadline passes.
            loop {
                if self.stop.is_stopped() {
                    return;
                }
                let now = self.clock.now();
                let earliest = self.current.expire_waiters(now);
                if now >= next_fetch {
                    break;
                }
                let until = earliest.map_or(next_fetch, |d| d.min(next_fetch));
                if let Woken::Stop = self.pause(until).await {
                    return;
                }
            }
            let result = {
                let fetch = self.fetcher.fetch();
                tokio::pin!(fetch);
                // Waiters' deadlines keep running while a fetch is slow.
                loop {
                    let earliest = self.current.expire_waiters(self.clock.now());
                    let sleep = self.sleep_until(earliest);
                    tokio::select! {
                        r = &mut fetch => break r,
                        _ = self.stop.notify.notified() => return,
                        _ = self.current.waiter_added.notified() => {}
                        _ = sleep => {}
                    }
                }
            };
            let now = self.clock.now();
            let result = result.and_then(|f| match f.expires {
                Some(e) if e <= now => Err(FetchError {
                    reason: FailureReason::Expired,
                    message: "the provider answered with credentials that have expired".into(),
                }),
                _ => Ok(f),
            });
            match result {
                Ok(fetched) => {
                    if failures > 0 {
                        (self.log)(
                            LogLevel::Info,
                            &format!(
                                "envoy-lambda: credentials for {} refreshed again after {failures} \
                                 failed attempt(s)",
                                self.describe
                            ),
                        );
                    }
                    failures = 0;
                    let expiration = fetched.expires.map_or(0, unix_seconds);
                    next_fetch = refresh_at(now, fetched.expires, (self.seed)());
                    self.current.stats.succeeded(expiration, fetched.source);
                    self.current.store(Held {
                        credentials: Arc::new(fetched.credentials),
                        expires: fetched.expires,
                        source: fetched.source,
                    });
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.current.stats.failed(e.reason);
                    if failures == 1 {
                        let cached = match self.current.held().and_then(|h| h.expires) {
                            Some(exp) if exp > now => format!(
                                "; the cached credentials stay in use until they expire in {}s",
                                exp.duration_since(now).unwrap_or_default().as_secs()
                            ),
                            Some(_) => "; the cached credentials have expired: requests get 503 \
                                        credentials_unavailable until a refresh succeeds"
                                .to_owned(),
                            None if self.current.held().is_some() => {
                                "; the cached credentials stay in use".to_owned()
                            }
                            None => "; requests get 503 credentials_unavailable until a fetch \
                                     succeeds"
                                .to_owned(),
                        };
                        (self.log)(
                            LogLevel::Warn,
                            &format!(
                                "envoy-lambda: fetching credentials for {} failed ({}): {}{cached}; \
                                 retrying with back-off (logged once per failure streak)",
                                self.describe,
                                e.reason.name(),
                                e.message
                            ),
                        );
                    }
                    next_fetch = now + retry_delay(failures, (self.seed)());
                }
            }
            self.current.notify_watchers();
        }
    }

    /// Sleeps until `until`, a new waiter, or stop.
    async fn pause(&self, until: SystemTime) -> Woken {
        let sleep = self.sleep_until(Some(until));
        tokio::select! {
            _ = self.stop.notify.notified() => Woken::Stop,
            _ = self.current.waiter_added.notified() => Woken::Time,
            _ = sleep => Woken::Time,
        }
    }

    async fn sleep_until(&self, until: Option<SystemTime>) {
        match until {
            None => std::future::pending::<()>().await,
            Some(t) => {
                let d = t.duration_since(self.clock.now()).unwrap_or(Duration::ZERO);
                tokio::time::sleep(d).await
            }
        }
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
