//! Credentials on the Envoy side of one filter config: starting its upstreams' identities
//! (never in `--mode validate`), and publishing their refreshers' stats on the main thread.
//!
//! The refresher thread cannot touch a config's stats itself (they belong to the config, on
//! the main thread); after every refresh attempt it wakes each watching config through the
//! config's scheduler, whose event then publishes (`credentials::publish_stats`). A config
//! leaves the watchers' lists (under their lock, the one wakes happen under) before its
//! scheduler is deleted.

use std::sync::{Arc, Mutex, MutexGuard};

use super::config_scheduler::ConfigScheduler;
use super::ffi::{self, ConfigEnvoyPtr};
use super::log::envoy_log;
use super::metrics::{CredentialMetrics, add_config_counter, set_config_gauge};
use crate::credentials::{
    CredentialsStat, Identity, LogFn, Providers, StatsSink, StatsSnapshot, WatchTicket,
    publish_stats,
};
use crate::filter::SharedConfig;
use crate::host::LogLevel;
use crate::wake::Wake;

/// Scheduler events of this kind carry the upstream's slot in the low bits.
pub const CREDENTIALS_STATS_EVENT: u64 = 1 << 62;

struct Slot {
    upstream: String,
    identity: Arc<Identity>,
    last: StatsSnapshot,
    ticket: WatchTicket,
}

pub struct CredentialsRuntime {
    slots: Mutex<Vec<Slot>>,
    metrics: CredentialMetrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The refreshers' log: Envoy's logger (thread-safe).
pub fn refresher_log() -> LogFn {
    Arc::new(|level, line: &str| {
        let level = match level {
            LogLevel::Debug => ffi::LOG_DEBUG,
            LogLevel::Info => ffi::LOG_INFO,
            LogLevel::Warn => ffi::LOG_WARN,
            LogLevel::Error => ffi::LOG_ERROR,
        };
        envoy_log(level, line);
    })
}

impl CredentialsRuntime {
    /// Joins the identities of the config's provider-backed upstreams and publishes their
    /// stats once (config_new). `None` when no upstream has a provider.
    pub fn start(
        config_envoy_ptr: ConfigEnvoyPtr,
        shared: &mut SharedConfig,
        metrics: CredentialMetrics,
        providers: &Arc<dyn Providers>,
    ) -> Option<Self> {
        shared
            .credentials
            .start(&shared.config, &refresher_log(), providers);
        let mut upstreams: Vec<(String, Arc<Identity>)> = shared
            .credentials
            .identities()
            .map(|(u, id)| (u.clone(), Arc::clone(id)))
            .collect();
        if upstreams.is_empty() {
            return None;
        }
        upstreams.sort_by(|a, b| a.0.cmp(&b.0));
        let scheduler = ConfigScheduler::new(config_envoy_ptr);
        let mut slots = Vec::new();
        for (index, (upstream, identity)) in upstreams.into_iter().enumerate() {
            let Some(scheduler) = &scheduler else {
                break; // no scheduler: the refreshers run, only their stats stay unpublished
            };
            let ticket = identity.current.watch(
                Arc::clone(scheduler) as Arc<dyn Wake>,
                CREDENTIALS_STATS_EVENT | index as u64,
            );
            slots.push(Slot {
                upstream,
                identity,
                last: StatsSnapshot::default(),
                ticket,
            });
        }
        let this = Self {
            slots: Mutex::new(slots),
            metrics,
        };
        let n = lock(&this.slots).len();
        for index in 0..n {
            // Counts start from here: what the identity did before belongs to older configs.
            this.publish(config_envoy_ptr, index, false);
        }
        Some(this)
    }

    /// The refresher of slot `event`'s upstream made an attempt (main thread).
    pub fn on_scheduled(&self, cfg: ConfigEnvoyPtr, event: u64) {
        let index = (event & !CREDENTIALS_STATS_EVENT) as usize;
        let counts = lock(&self.slots)
            .get(index)
            .is_some_and(|s| s.ticket.is_newest());
        self.publish(cfg, index, counts);
    }

    fn publish(&self, cfg: ConfigEnvoyPtr, index: usize, counts: bool) {
        let mut slots = lock(&self.slots);
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        let now = slot.identity.current.stats.snapshot();
        let mut sink = EnvoySink {
            cfg,
            metrics: &self.metrics,
        };
        publish_stats(&mut sink, &slot.upstream, &mut slot.last, now, counts);
    }

    /// Leaves every watchers' list (config_destroy, main thread); the scheduler is deleted
    /// when its last `Arc` goes, which is then ours.
    pub fn shutdown(&self) {
        lock(&self.slots).clear();
    }
}

struct EnvoySink<'a> {
    cfg: ConfigEnvoyPtr,
    metrics: &'a CredentialMetrics,
}

impl StatsSink for EnvoySink<'_> {
    fn add(&mut self, stat: CredentialsStat, labels: &[&str], n: u64) {
        if let Some(id) = self.metrics.id(stat) {
            add_config_counter(self.cfg, id, labels, n);
        }
    }

    fn set(&mut self, stat: CredentialsStat, labels: &[&str], value: u64) {
        if let Some(id) = self.metrics.id(stat) {
            set_config_gauge(self.cfg, id, labels, value);
        }
    }
}
