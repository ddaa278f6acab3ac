//! One discovery per identity in the process, shared by every filter config that names it.
//!
//! Envoy builds a new filter config on every LDS or ECDS update and keeps the old one while its
//! listener drains (600 s by default). Without sharing, each config would start with an empty
//! table (503 `discovery_pending` until its first listing) and each would poll ListFunctions
//! until it is destroyed. Here the state of a discovery — its [`UpstreamDiscovery`] (schedule,
//! back-off, refresh in progress) and its [`FunctionTable`] — belongs to a registry entry keyed
//! by [`DiscoveryKey`]; configs are *members* of the entry:
//!
//! - **carry-over**: a config that joins an existing entry reads the entry's table, so it
//!   answers with the last good list from its first request;
//! - **one poller**: the newest member polls; older members stop polling but keep reading the
//!   same table, so a draining listener still serves an up-to-date list;
//! - **hand-over**: a refresh in progress finishes through the member that started it (its
//!   callouts belong to that config); the next one starts through the poller. When a member is
//!   destroyed mid-refresh (Envoy cancels its callouts), the refresh is dropped and restarts at
//!   once through the newest survivor;
//! - **schedule**: the entry's `due` time belongs to the entry, not to a config; the timer wakes
//!   whoever polls when it falls due (through that config's scheduler, [`Wake`]).
//!
//! Everything here is plain state changed under one lock ([`Global`]); time and randomness are
//! parameters, I/O is the caller's (see `runtime.rs`).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::backoff::{Backoff, spread};
use super::driver::{Outcome, Report, Step, UpstreamDiscovery};
use super::lambda_api::ApiRequest;
use super::table::FunctionTable;
use crate::config::DiscoverySettings;
use crate::config::Upstream;

/// A woken poller that has not started its refresh after this long is woken again (the
/// scheduler event was lost, e.g. its config was being destroyed).
pub const WAKE_RETRY: Duration = Duration::from_secs(30);

/// Flag on a scheduler event: "re-publish your gauges", no refresh.
pub const SYNC_EVENT: u64 = 1 << 63;

/// Asks a config to run `event` on Envoy's main thread (Envoy: `config_scheduler_commit`).
/// Called with the registry lock held, so never after the member has left.
pub use crate::wake::Wake;

/// What makes two upstreams the same discovery: the Lambda API they reach (scheme, host,
/// region, Envoy cluster), with which credentials (secret name and source), what they list
/// (include/exclude, aliases, versions) and the upstream's name (the label of its stats and
/// the name routes use). Refresh intervals are not part of it: the poller's apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiscoveryKey(String);

impl DiscoveryKey {
    /// `None` when the upstream does not discover.
    pub fn new(upstream: &Upstream, credentials: &str) -> Option<Self> {
        let d = upstream.discovery.as_ref()?;
        fn globs(g: &[crate::config::Glob]) -> Vec<&str> {
            g.iter().map(|g| g.as_str()).collect()
        }
        Some(Self(format!(
            "{:?}",
            (
                &upstream.name,
                &upstream.endpoint.scheme,
                &upstream.endpoint.authority,
                upstream.region.as_str(),
                &d.cluster,
                credentials,
                d.filter.include.as_deref().map(globs),
                globs(&d.filter.exclude),
                d.aliases,
                d.versions,
            )
        )))
    }

    #[cfg(test)]
    pub fn for_test(text: &str) -> Self {
        Self(text.to_owned())
    }
}

/// A config's membership in one entry.
pub type MemberId = u64;

struct Member {
    key: DiscoveryKey,
    /// The config's number in this process (1, 2, … in creation order), for stats and logs.
    config: u64,
    waker: Arc<dyn Wake>,
    /// The event the config runs for this upstream (its slot).
    event: u64,
    /// The config's intervals (not part of the key): the poller's apply to the entry, so a
    /// survivor's are restored when a newer member leaves.
    settings: DiscoverySettings,
}

/// The member carrying the refresh in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sender {
    member: MemberId,
    /// The callout in flight, once Envoy has given it an id.
    callout: Option<u64>,
    /// A send in progress (its sequence number): a done hook that Envoy runs inline, before
    /// the callout call returns, belongs to it.
    sending: Option<u64>,
}

struct Entry {
    driver: UpstreamDiscovery,
    /// Join order; the last one polls.
    members: Vec<MemberId>,
    /// When the next refresh starts (`None` while one runs).
    due: Option<Instant>,
    sender: Option<Sender>,
    /// The member woken for the due refresh, until its event runs.
    woken: Option<MemberId>,
    /// Delay after a caught panic: 1 s doubling to the refresh interval.
    panic_backoff: Backoff,
}

impl Entry {
    fn poller(&self) -> Option<MemberId> {
        self.members.last().copied()
    }
}

/// Who joins: a config (its number in the process) and how to wake it for this upstream.
pub struct Joiner {
    pub config: u64,
    pub waker: Arc<dyn Wake>,
    /// The scheduler event that means "this upstream" in that config.
    pub event: u64,
}

/// What a joining config gets.
#[derive(Debug, Clone)]
pub struct Joined {
    pub member: MemberId,
    /// The entry's table: the workers of the joining config read this one.
    pub table: Arc<FunctionTable>,
    /// Names in the table carried over (`None`: no good listing yet).
    pub carried: Option<usize>,
    /// The config that polled before (`None`: a new discovery).
    pub previous_poller: Option<u64>,
}

/// Who polls an entry, for a gauge and a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// The polling config's number.
    pub config: u64,
    /// Configs sharing the entry.
    pub configs: usize,
}

/// A tiny xorshift64* generator for jitter seeds: not for secrets.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// Seeded once per process from the clock and the process id, so a fleet started together
    /// gets different schedules.
    pub fn from_process() -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::new(nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Every discovery of the process.
pub struct Registry {
    entries: HashMap<DiscoveryKey, Entry>,
    members: HashMap<MemberId, Member>,
    next_member: MemberId,
    send_seq: u64,
    jitter: Jitter,
    /// Tells the timer thread to end (no discovery left).
    timer_stop: bool,
}

impl Registry {
    pub fn new(jitter: Jitter) -> Self {
        Self {
            entries: HashMap::new(),
            members: HashMap::new(),
            next_member: 1,
            send_seq: 0,
            jitter,
            timer_stop: false,
        }
    }

    /// A config with an upstream of this key starts; it becomes the poller. A new key's first
    /// refresh is due at once.
    pub fn join(
        &mut self,
        key: DiscoveryKey,
        upstream: &str,
        settings: &DiscoverySettings,
        by: Joiner,
        now: Instant,
    ) -> Joined {
        let Joiner {
            config,
            waker,
            event,
        } = by;
        let member = self.next_member;
        self.next_member += 1;
        let previous_poller = self
            .entries
            .get(&key)
            .and_then(Entry::poller)
            .and_then(|m| self.members.get(&m))
            .map(|m| m.config);
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            driver: UpstreamDiscovery::new(upstream, settings.clone()),
            members: Vec::new(),
            due: Some(now),
            sender: None,
            woken: None,
            panic_backoff: Backoff::new(settings.refresh_interval),
        });
        // The newest config's intervals apply from the next refresh on.
        apply_settings(entry, settings);
        entry.members.push(member);
        let table = Arc::clone(entry.driver.table());
        let carried = table.is_ready().then(|| table.len());
        self.members.insert(
            member,
            Member {
                key,
                config,
                waker,
                event,
                settings: settings.clone(),
            },
        );
        Joined {
            member,
            table,
            carried,
            previous_poller,
        }
    }

    /// A config is destroyed. Its refresh in progress (if any) is dropped and restarts through
    /// the newest survivor at once; the survivor is woken to re-publish its gauges, and its
    /// intervals apply again (a wait scheduled with the leaver's longer interval is cut to the
    /// survivor's). The entry goes when its last member does. Returns who polls now.
    pub fn leave(&mut self, member: MemberId, now: Instant) -> Option<Polling> {
        let seed = self.jitter.next_u64();
        let m = self.members.remove(&member)?;
        let entry = self.entries.get_mut(&m.key)?;
        entry.members.retain(|&x| x != member);
        if entry.sender.is_some_and(|s| s.member == member) {
            entry.driver.abort();
            entry.sender = None;
            entry.due = Some(now);
        } else if entry.woken == Some(member) {
            // Woken, but its event will not run now: wake the next poller instead.
            entry.woken = None;
            entry.due = Some(now);
        }
        let Some(poller) = entry.poller() else {
            self.entries.remove(&m.key);
            return None;
        };
        let configs = entry.members.len();
        let p = self.members.get(&poller)?;
        if *entry.driver.settings() != p.settings {
            apply_settings(entry, &p.settings);
            let interval = p.settings.refresh_interval;
            let latest = now.checked_add(interval + interval / 10);
            if entry.due.is_some_and(|due| latest.is_some_and(|l| due > l)) {
                entry.due = now.checked_add(spread(interval, seed)).or(entry.due);
            }
        }
        p.waker.wake(p.event | SYNC_EVENT);
        Some(Polling {
            config: p.config,
            configs,
        })
    }

    /// Wakes the poller of every entry whose refresh is due; returns when the next one is.
    pub fn fire_due(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for entry in self.entries.values_mut() {
            if let Some(due) = entry.due {
                if due <= now {
                    if let Some(p) = entry.poller().and_then(|p| self.members.get(&p)) {
                        // Woken first: if waking panics, the entry stays due and the restarted
                        // timer tries again.
                        p.waker.wake(p.event);
                        // Stays due a while in case the event never runs.
                        entry.due = Some(now + WAKE_RETRY);
                        entry.woken = entry.poller();
                    }
                }
            }
            if let Some(due) = entry.due {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    /// The member's scheduler event ran: if it polls and nothing runs, a refresh starts and its
    /// first request is returned (to sign and send through this member's config). A member
    /// that no longer polls makes the entry due at once, so the timer wakes the one that does.
    pub fn on_event(
        &mut self,
        member: MemberId,
        now: Instant,
        wall: SystemTime,
    ) -> Option<ApiRequest> {
        let entry = self.entry_mut(member)?;
        if entry.woken == Some(member) {
            entry.woken = None;
        }
        if entry.sender.is_some() {
            return None;
        }
        if entry.poller() != Some(member) {
            entry.due = Some(now);
            return None;
        }
        let request = entry.driver.start(wall)?;
        entry.due = None;
        entry.sender = Some(Sender {
            member,
            callout: None,
            sending: None,
        });
        Some(request)
    }

    /// Before a send: marks it in progress. `None` when `member` no longer carries the refresh.
    pub fn begin_send(&mut self, member: MemberId) -> Option<u64> {
        self.send_seq += 1;
        let seq = self.send_seq;
        let entry = self.entry_mut(member)?;
        let sender = entry.sender.as_mut().filter(|s| s.member == member)?;
        sender.sending = Some(seq);
        Some(seq)
    }

    /// After a send. `Ok(id)`: the callout is in flight (unless Envoy already answered inline).
    /// `Err`: it could not be signed or sent; the refresh fails and the outcome says what next.
    pub fn sent(
        &mut self,
        member: MemberId,
        seq: u64,
        result: Result<u64, String>,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Outcome> {
        let seed = self.jitter.next_u64();
        let entry = self.entry_mut(member)?;
        let sender = entry.sender.as_mut().filter(|s| s.member == member)?;
        let inline_answer = sender.sending != Some(seq);
        sender.sending = None;
        match result {
            Ok(id) => {
                if !inline_answer {
                    sender.callout = Some(id);
                }
                None
            }
            Err(reason) if !inline_answer => {
                let outcome = entry.driver.on_transport_failure(&reason, wall, seed);
                Some(apply(entry, outcome, now))
            }
            Err(_) => None,
        }
    }

    /// A callout reply for one of `members` (a config's members): `None` if none of them
    /// waits for `callout` (a reply for a refresh that was dropped). `reply` is the status and
    /// body, or the reason there is no HTTP reply.
    pub fn on_reply(
        &mut self,
        members: &[MemberId],
        callout: u64,
        reply: Result<(u16, &[u8]), String>,
        now: Instant,
        wall: SystemTime,
    ) -> Option<(MemberId, Outcome)> {
        let seed = self.jitter.next_u64();
        let member = members.iter().copied().find(|m| {
            self.members
                .get(m)
                .and_then(|mm| self.entries.get(&mm.key))
                .and_then(|e| e.sender)
                .is_some_and(|s| {
                    s.member == *m
                        && (s.callout == Some(callout)
                            || (s.sending.is_some() && s.callout.is_none()))
                })
        })?;
        let entry = self.entry_mut(member)?;
        if let Some(s) = entry.sender.as_mut() {
            s.callout = None;
            s.sending = None;
        }
        let outcome = match reply {
            Ok((status, body)) => entry.driver.on_response(status, body, wall, seed),
            Err(reason) => entry.driver.on_transport_failure(&reason, wall, seed),
        };
        Some((member, apply(entry, outcome, now)))
    }

    /// A step for `member` panicked: drop the refresh in progress (whoever carries it; the
    /// state may be half-updated) and start again after the panic back-off. Returns the delay.
    pub fn recover(&mut self, member: MemberId, now: Instant) -> Option<Duration> {
        let seed = self.jitter.next_u64();
        let entry = self.entry_mut(member)?;
        entry.driver.abort();
        entry.sender = None;
        let delay = entry.panic_backoff.on_failure(seed);
        entry.due = Some(now + delay);
        Some(delay)
    }

    /// Who polls the entry `member` belongs to.
    pub fn polling(&self, member: MemberId) -> Option<Polling> {
        let entry = self.entries.get(&self.members.get(&member)?.key)?;
        let config = self.members.get(&entry.poller()?)?.config;
        Some(Polling {
            config,
            configs: entry.members.len(),
        })
    }

    /// The table of `member`'s entry.
    pub fn table(&self, member: MemberId) -> Option<Arc<FunctionTable>> {
        let entry = self.entries.get(&self.members.get(&member)?.key)?;
        Some(Arc::clone(entry.driver.table()))
    }

    /// When `member`'s entry refreshes next (`None` while a refresh runs).
    #[cfg(test)]
    pub fn due(&self, member: MemberId) -> Option<Instant> {
        self.entries.get(&self.members.get(&member)?.key)?.due
    }

    /// Discoveries in the process.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry_mut(&mut self, member: MemberId) -> Option<&mut Entry> {
        let key = &self.members.get(&member)?.key;
        self.entries.get_mut(key)
    }
}

/// A member's intervals become the entry's, from the next refresh on.
fn apply_settings(entry: &mut Entry, settings: &DiscoverySettings) {
    entry.driver.update_settings(settings.clone());
    entry.panic_backoff = Backoff::new(settings.refresh_interval);
}

/// The end of a refresh schedules the next; a success also resets the panic back-off.
fn apply(entry: &mut Entry, outcome: Outcome, now: Instant) -> Outcome {
    match &outcome.step {
        Step::Send(_) => {}
        Step::Wait(delay) => {
            entry.sender = None;
            entry.due = Some(now + *delay);
        }
        Step::Idle => {}
    }
    if matches!(outcome.report, Some(Report::Refreshed { .. })) {
        entry.panic_backoff = Backoff::new(entry.driver.settings().refresh_interval);
    }
    outcome
}

/// The process's registry with the condition variable its timer thread waits on.
pub struct Global {
    registry: Mutex<Registry>,
    changed: Condvar,
    timer: Mutex<Option<std::thread::JoinHandle<()>>>,
    timer_panics: std::sync::atomic::AtomicU64,
}

impl Global {
    pub fn new(jitter: Jitter) -> Self {
        Self {
            registry: Mutex::new(Registry::new(jitter)),
            changed: Condvar::new(),
            timer: Mutex::new(None),
            timer_panics: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Runs `f` on the registry and wakes the timer thread (a due time may have changed).
    pub fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let value = f(&mut self.lock());
        self.changed.notify_all();
        value
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A caught panic must not stop discovery for good; `recover` repairs the entry.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One turn of the timer thread: wake what is due, then sleep until the next due time (or
    /// a change). Breaks once the timer is told to stop.
    pub fn timer_turn(&self, idle: Duration) -> ControlFlow<()> {
        let mut registry = self.lock();
        if registry.timer_stop {
            return ControlFlow::Break(());
        }
        let now = Instant::now();
        let wait = registry
            .fire_due(now)
            .map_or(idle, |t| t.saturating_duration_since(now).min(idle));
        let _unused = self
            .changed
            .wait_timeout(registry, wait)
            .unwrap_or_else(|p| p.into_inner());
        ControlFlow::Continue(())
    }

    /// The timer's pause after a panic, cut short by a stop.
    fn pause(&self, delay: Duration) {
        let registry = self.lock();
        if !registry.timer_stop {
            let _unused = self
                .changed
                .wait_timeout(registry, delay)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Starts the timer thread unless it runs.
    pub fn start_timer(&'static self, log_error: fn(&str)) {
        let mut timer = self.timer.lock().unwrap_or_else(|p| p.into_inner());
        if timer.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        self.lock().timer_stop = false;
        let spawned = std::thread::Builder::new()
            .name("envoy-lambda-discovery".into())
            .spawn(move || {
                super::supervise::supervise(
                    "discovery timer",
                    || self.timer_turn(Duration::from_secs(3600)),
                    |line| {
                        self.timer_panics
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        log_error(&line);
                    },
                    |delay| self.pause(delay),
                )
            });
        match spawned {
            Ok(handle) => *timer = Some(handle),
            Err(e) => log_error(&format!(
                "envoy-lambda: could not start the discovery timer thread ({e}); discovery is off"
            )),
        }
    }

    /// Once the last discovery is gone, stops the timer thread and waits for it (config
    /// destroy): Envoy may unload the module after its last config, and no thread of ours may
    /// still be running its code then. Returns whether it stopped one.
    pub fn stop_timer_when_idle(&self) -> bool {
        {
            let mut registry = self.lock();
            if !registry.is_empty() {
                return false;
            }
            registry.timer_stop = true;
        }
        self.changed.notify_all();
        let handle = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take();
        handle.is_some_and(|h| h.join().is_ok())
    }

    /// Timer-thread panics not yet counted in a stat (the main thread counts them).
    pub fn take_timer_panics(&self) -> u64 {
        self.timer_panics
            .swap(0, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The process's registry.
pub fn global() -> &'static Global {
    static GLOBAL: std::sync::OnceLock<Global> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(|| Global::new(Jitter::from_process()))
}

#[cfg(test)]
pub(crate) mod tests;
