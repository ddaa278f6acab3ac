//! The refresh loop on a paused tokio clock: a scripted fetcher, a recording waker and log.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::*;
use crate::credentials::current::Lookup;
use crate::credentials::current::fake::FakeWaker;

const T0: u64 = 1_800_000_000;

/// Wall-clock time that follows tokio's (paused) clock.
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0) + self.start.elapsed()
    }
}

fn at(secs: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_secs_f64(secs)
}

/// Answers from a script: `Some(lifetime)` = keys `K<n>` valid that long, `None` = a failure.
/// Past the script's end it keeps failing. Records when each fetch happened.
struct Scripted {
    clock: Arc<TokioClock>,
    script: Mutex<VecDeque<Option<Duration>>>,
    calls: Arc<Mutex<Vec<SystemTime>>>,
}

impl Fetch for Scripted {
    fn fetch(&self) -> FetchFuture<'_> {
        Box::pin(async move {
            let now = self.clock.now();
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(now);
                calls.len()
            };
            match self.script.lock().unwrap().pop_front().flatten() {
                Some(life) => Ok(Fetched {
                    credentials: AwsCredentials {
                        access_key: format!("K{n}"),
                        secret_key: zeroize::Zeroizing::new("s3cr3t".into()),
                        session_token: None,
                    },
                    expires: Some(now + life),
                    source: SourceName::Container,
                }),
                None => Err(FetchError {
                    reason: FailureReason::ProviderError,
                    message: "connection refused".into(),
                }),
            }
        })
    }
}

struct Rig {
    current: Arc<CurrentCredentials>,
    calls: Arc<Mutex<Vec<SystemTime>>>,
    logs: Arc<Mutex<Vec<(LogLevel, String)>>>,
    stop: Arc<Stop>,
    clock: Arc<TokioClock>,
}

fn start(script: &[Option<u64>]) -> Rig {
    let clock = Arc::new(TokioClock {
        start: tokio::time::Instant::now(),
    });
    let current = Arc::new(CurrentCredentials::default());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let logs = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(Stop::default());
    let logged = Arc::clone(&logs);
    let refresher = Refresher {
        current: Arc::clone(&current),
        fetcher: Box::new(Scripted {
            clock: Arc::clone(&clock),
            script: Mutex::new(script.iter().map(|s| s.map(Duration::from_secs)).collect()),
            calls: Arc::clone(&calls),
        }),
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        seed: Box::new(|| 0), // no jitter: exact times
        log: Arc::new(move |level, line: &str| logged.lock().unwrap().push((level, line.into()))),
        describe: "upstream 'u' (source: container)".into(),
        stop: Arc::clone(&stop),
    };
    tokio::spawn(refresher.run());
    Rig {
        current,
        calls,
        logs,
        stop,
        clock,
    }
}

impl Rig {
    async fn until(&self, secs: f64) {
        let now = self.clock.now();
        if let Ok(d) = at(secs).duration_since(now) {
            tokio::time::sleep(d).await;
        }
        tokio::task::yield_now().await;
    }

    fn call_times(&self) -> Vec<f64> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.duration_since(at(0.0)).unwrap().as_secs_f64())
            .collect()
    }

    fn key(&self) -> Option<String> {
        match self.current.lookup(self.clock.now()) {
            Lookup::Ready(k) => Some(k.access_key.clone()),
            _ => None,
        }
    }

    fn warnings(&self) -> usize {
        let logs = self.logs.lock().unwrap();
        logs.iter().filter(|(l, _)| *l == LogLevel::Warn).count()
    }
}

#[tokio::test(start_paused = true)]
async fn refreshes_at_half_life_and_keeps_the_current_key_valid() {
    let rig = start(&[Some(30), Some(30), Some(30)]);
    rig.until(0.5).await;
    assert_eq!(rig.key().as_deref(), Some("K1"));
    rig.until(15.5).await;
    assert_eq!(rig.key().as_deref(), Some("K2"));
    rig.until(31.0).await;
    assert_eq!(rig.call_times(), [0.0, 15.0, 30.0]);
    assert_eq!(rig.key().as_deref(), Some("K3"));
    let snap = rig.current.stats.snapshot();
    assert_eq!(snap.ok, 3);
    assert_eq!(snap.expiration_unix_seconds, T0 + 60);
    assert_eq!(snap.source, Some(SourceName::Container));
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_keep_the_cache_until_expiry_then_heal() {
    // K1 lives 20 s; refreshes fail from 10 s on; the fifth retry succeeds.
    let rig = start(&[Some(20), None, None, None, None, None, Some(20)]);
    rig.until(10.5).await;
    assert_eq!(
        rig.key().as_deref(),
        Some("K1"),
        "a failed refresh keeps the cache"
    );
    rig.until(19.5).await;
    assert_eq!(rig.key().as_deref(), Some("K1"));
    rig.until(20.5).await;
    assert!(
        matches!(rig.current.lookup(rig.clock.now()), Lookup::Expired),
        "expired and not renewed: unavailable"
    );
    rig.until(45.0).await;
    // 10, then retries 1, 2, 4, 8, 16 s apart.
    assert_eq!(rig.call_times(), [0.0, 10.0, 11.0, 13.0, 17.0, 25.0, 41.0]);
    assert_eq!(rig.key().as_deref(), Some("K7"), "the first success heals");
    assert_eq!(rig.warnings(), 1, "one warning per failure streak");
    let logs = rig.logs.lock().unwrap();
    assert!(
        logs.iter()
            .any(|(l, m)| *l == LogLevel::Info && m.contains("after 5 failed"))
    );
    assert!(logs.iter().all(|(_, m)| !m.contains("s3cr3t")));
    let snap = rig.current.stats.snapshot();
    assert_eq!(snap.ok, 2);
    assert_eq!(snap.failed.iter().sum::<u64>(), 5);
}

#[tokio::test(start_paused = true)]
async fn retries_cap_at_thirty_seconds() {
    let rig = start(&[]);
    rig.until(200.0).await;
    let t = rig.call_times();
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[..6], [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]);
    assert!(gaps[6..].iter().all(|g| *g == 30.0), "{gaps:?}");
    assert_eq!(rig.warnings(), 1);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_woken_by_the_first_credentials_or_their_deadline() {
    // The first fetch fails; the second (1 s later) succeeds.
    let rig = start(&[None, Some(60)]);
    let w = Arc::new(FakeWaker::default());
    tokio::task::yield_now().await;
    // A stream that may wait 0.4 s: its deadline passes before the retry.
    let _short = rig.current.wait(w.clone(), 1, at(0.4)).unwrap();
    // One that may wait 5 s: woken by the credentials at 1 s.
    let _long = rig.current.wait(w.clone(), 2, at(5.0)).unwrap();
    rig.until(0.45).await;
    assert_eq!(w.events(), [1]);
    rig.until(1.1).await;
    assert_eq!(w.events(), [1, 2]);
    assert_eq!(rig.current.waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn stops_when_told_and_fetches_no_more() {
    let rig = start(&[Some(30), Some(30), Some(30)]);
    rig.until(1.0).await;
    rig.stop.stop();
    rig.until(100.0).await;
    assert_eq!(rig.call_times(), [0.0]);
}
