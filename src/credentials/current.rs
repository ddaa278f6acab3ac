//! The credentials an identity signs with right now, read lock-free by the workers, and the
//! streams waiting for the first ones.
//!
//! Only the refresher writes: it stores a fetched set, and never clears one on a failure, so
//! the cached credentials keep signing until their own expiry. A stream that finds none yet
//! registers a [`WaitTicket`]; the refresher wakes it (through the stream's scheduler) when
//! credentials arrive or its deadline passes. Every wake happens under the waiters' lock, and a
//! ticket leaves the list under that lock when dropped, so no wake reaches a stream (or a
//! scheduler) that is gone.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use super::stats::RefreshStats;
use super::{AwsCredentials, SourceName};
use crate::wake::Wake;

/// A fetched set of credentials.
pub struct Held {
    pub credentials: Arc<AwsCredentials>,
    /// `None`: they do not expire (static keys).
    pub expires: Option<SystemTime>,
    /// Which provider supplied them.
    pub source: SourceName,
}

impl fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("credentials", &self.credentials)
            .field("expires", &self.expires)
            .field("source", &self.source)
            .finish()
    }
}

/// What a request finds.
#[derive(Debug)]
pub enum Lookup {
    Ready(Arc<AwsCredentials>),
    /// None were ever fetched: the request may wait for the first ones.
    Pending,
    /// The cached ones expired and no refresh has succeeded since.
    Expired,
}

struct Waiter {
    id: u64,
    waker: Arc<dyn Wake>,
    event: u64,
    deadline: SystemTime,
}

struct Watcher {
    id: u64,
    waker: Arc<dyn Wake>,
    event: u64,
}

#[derive(Default)]
pub struct CurrentCredentials {
    held: ArcSwapOption<Held>,
    waiters: Mutex<Vec<Waiter>>,
    watchers: Mutex<Vec<Watcher>>,
    next_id: AtomicU64,
    /// A waiter arrived: the refresher re-reads the earliest deadline.
    pub(super) waiter_added: Notify,
    pub stats: RefreshStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CurrentCredentials {
    /// The credentials to sign with at `now` (lock-free).
    pub fn lookup(&self, now: SystemTime) -> Lookup {
        match self.held.load_full() {
            None => Lookup::Pending,
            Some(h) if h.expires.is_none_or(|e| now < e) => {
                Lookup::Ready(Arc::clone(&h.credentials))
            }
            Some(_) => Lookup::Expired,
        }
    }

    /// The current set, expired or not (stats, logs).
    pub fn held(&self) -> Option<Arc<Held>> {
        self.held.load_full()
    }

    /// Installs a fetched set and wakes every waiting stream.
    pub(crate) fn store(&self, held: Held) {
        self.held.store(Some(Arc::new(held)));
        for w in lock(&self.waiters).drain(..) {
            w.waker.wake(w.event);
        }
    }

    /// Waits for the first credentials until `deadline`: `waker.wake(event)` runs when they
    /// arrive or the deadline passes (whichever first; the stream then looks again). `None`
    /// when credentials exist already (look again now).
    pub fn wait(
        self: &Arc<Self>,
        waker: Arc<dyn Wake>,
        event: u64,
        deadline: SystemTime,
    ) -> Option<WaitTicket> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut waiters = lock(&self.waiters);
            // Checked under the lock that `store` wakes under: a set stored before this
            // check is seen here, one stored after it finds this waiter in the list.
            if self.held.load().is_some() {
                return None;
            }
            waiters.push(Waiter {
                id,
                waker,
                event,
                deadline,
            });
        }
        self.waiter_added.notify_one();
        Some(WaitTicket {
            current: Arc::clone(self),
            id,
        })
    }

    /// Wakes the waiters whose deadline is `now` or earlier; the earliest deadline left.
    pub(super) fn expire_waiters(&self, now: SystemTime) -> Option<SystemTime> {
        let mut waiters = lock(&self.waiters);
        waiters.retain(|w| {
            let due = w.deadline <= now;
            if due {
                w.waker.wake(w.event);
            }
            !due
        });
        waiters.iter().map(|w| w.deadline).min()
    }

    /// Streams waiting now.
    pub fn waiting(&self) -> usize {
        lock(&self.waiters).len()
    }

    /// Registers a config to be woken after every refresh attempt (to publish its stats).
    pub fn watch(self: &Arc<Self>, waker: Arc<dyn Wake>, event: u64) -> WatchTicket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.watchers).push(Watcher { id, waker, event });
        WatchTicket {
            current: Arc::clone(self),
            id,
        }
    }

    pub(super) fn notify_watchers(&self) {
        for w in lock(&self.watchers).iter() {
            w.waker.wake(w.event);
        }
    }
}

impl fmt::Debug for CurrentCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentCredentials")
            .field("held", &self.held.load_full())
            .finish_non_exhaustive()
    }
}

/// A stream's place among the waiters; dropping it leaves the list (under its lock).
pub struct WaitTicket {
    current: Arc<CurrentCredentials>,
    id: u64,
}

impl Drop for WaitTicket {
    fn drop(&mut self) {
        lock(&self.current.waiters).retain(|w| w.id != self.id);
    }
}

impl fmt::Debug for WaitTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaitTicket({})", self.id)
    }
}

/// A config's registration for stats wake-ups; dropping it unregisters (under the lock).
pub struct WatchTicket {
    current: Arc<CurrentCredentials>,
    id: u64,
}

impl WatchTicket {
    /// The newest registration: the one config whose stats count this identity's refreshes.
    pub fn is_newest(&self) -> bool {
        lock(&self.current.watchers)
            .last()
            .is_some_and(|w| w.id == self.id)
    }
}

impl Drop for WatchTicket {
    fn drop(&mut self) {
        lock(&self.current.watchers).retain(|w| w.id != self.id);
    }
}

#[cfg(test)]
pub(crate) mod fake {
    use super::*;

    /// Records every wake.
    #[derive(Default)]
    pub struct FakeWaker(pub Mutex<Vec<u64>>);

    impl Wake for FakeWaker {
        fn wake(&self, event: u64) {
            lock(&self.0).push(event);
        }
    }

    impl FakeWaker {
        pub fn events(&self) -> Vec<u64> {
            lock(&self.0).clone()
        }
    }

    pub fn held(key: &str, expires: Option<SystemTime>) -> Held {
        Held {
            credentials: Arc::new(AwsCredentials {
                access_key: key.to_owned(),
                secret_key: zeroize::Zeroizing::new(format!("secret-of-{key}")),
                session_token: Some(zeroize::Zeroizing::new(format!("token-of-{key}"))),
            }),
            expires,
            source: SourceName::Env,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    #[test]
    fn pending_then_ready_then_expired() {
        let c = Arc::new(CurrentCredentials::default());
        assert!(matches!(c.lookup(at(0)), Lookup::Pending));
        c.store(held("ASIA1", Some(at(30))));
        assert!(matches!(c.lookup(at(29)), Lookup::Ready(k) if k.access_key == "ASIA1"));
        assert!(matches!(c.lookup(at(30)), Lookup::Expired));
        c.store(held("AKIA2", None));
        assert!(matches!(c.lookup(at(1_000_000)), Lookup::Ready(_)));
    }

    #[test]
    fn waiters_are_woken_once_by_the_first_credentials() {
        let c = Arc::new(CurrentCredentials::default());
        let w = Arc::new(FakeWaker::default());
        let _a = c.wait(w.clone(), 1, at(10)).unwrap();
        let _b = c.wait(w.clone(), 2, at(10)).unwrap();
        assert_eq!(c.waiting(), 2);
        c.store(held("A", None));
        assert_eq!(w.events(), [1, 2]);
        assert_eq!(c.waiting(), 0);
        // Once credentials exist nobody waits.
        assert!(c.wait(w.clone(), 3, at(10)).is_none());
    }

    #[test]
    fn deadlines_wake_and_dropped_tickets_are_never_woken() {
        let c = Arc::new(CurrentCredentials::default());
        let w = Arc::new(FakeWaker::default());
        let early = c.wait(w.clone(), 1, at(1)).unwrap();
        let gone = c.wait(w.clone(), 2, at(1)).unwrap();
        let _late = c.wait(w.clone(), 3, at(5)).unwrap();
        drop(gone); // the stream was destroyed while waiting
        assert_eq!(c.expire_waiters(at(0)), Some(at(1)));
        assert!(w.events().is_empty());
        assert_eq!(c.expire_waiters(at(1)), Some(at(5)));
        assert_eq!(w.events(), [1]);
        drop(early); // woken already: dropping is harmless
        c.store(held("A", None));
        assert_eq!(w.events(), [1, 3]);
    }

    #[test]
    fn watchers_hear_every_attempt_until_dropped() {
        let c = Arc::new(CurrentCredentials::default());
        let w = Arc::new(FakeWaker::default());
        let t = c.watch(w.clone(), 7);
        c.notify_watchers();
        drop(t);
        c.notify_watchers();
        assert_eq!(w.events(), [7]);
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = CurrentCredentials::default();
        c.store(held("ASIAKEY", None));
        let d = format!("{c:?}");
        assert!(d.contains("ASIAKEY"), "{d}");
        assert!(!d.contains("secret-of") && !d.contains("token-of"), "{d}");
    }
}
