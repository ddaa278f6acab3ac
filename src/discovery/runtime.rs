//! Discovery as seen from one filter config: joining the process's [`Global`] registry at
//! config load, running refresh steps in Envoy's main-thread hooks (scheduler events, callout
//! replies), publishing stats, leaving at config destroy. All I/O goes through
//! [`DiscoveryIo`], which the ABI layer implements over the config's Envoy pointer for the
//! duration of one hook (and tests with a fake).
//!
//! Every step runs under `catch_unwind`: a panic logs one error line, counts
//! `discovery_panics`, drops the refresh in progress and restarts it after a back-off, so a
//! bug in parsing a page cannot end discovery for good.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::callout::signed_headers;
use super::driver::{Outcome, Report, Step};
use super::lambda_api::ApiRequest;
use super::registry::{DiscoveryKey, Global, Joiner, MemberId, Polling, SYNC_EVENT, Wake};
use super::supervise::panic_message;
use super::table::{FunctionTable, Snapshot, TableState};
use crate::config::{FilterConfig, Upstream};
use crate::credentials::{Keys, Resolved};
use crate::host::LogLevel;

/// Counters discovery increments (labels in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryCounter {
    /// `[upstream]`
    RefreshOk,
    /// `[upstream, reason]`
    RefreshFailed,
    /// `[upstream]`: a refresh step panicked (a bug); it restarts after a back-off.
    Panics,
    /// `[]`: the process's discovery timer thread panicked and restarted.
    TimerPanics,
}

/// Gauges discovery sets (labels in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryGauge {
    /// `[upstream]`: names in the table.
    Functions,
    /// `[upstream]`: Unix time of the last good listing.
    LastSuccess,
    /// `[upstream, function]`: 1 while discovered, 0 once gone.
    FunctionPresent,
    /// `[upstream]`: filter configs sharing the discovery (the newest polls).
    Configs,
    /// `[upstream]`: the number of the filter config that polls (1, 2, … in load order).
    PollerConfig,
}

/// What discovery needs from the config it runs in, during one main-thread hook.
pub trait DiscoveryIo {
    /// The bytes of the config's `secret`-th secret as Envoy holds them now (empty if none).
    fn secret(&self, secret: usize) -> &[u8];
    /// Sends a body-less request through the config's HTTP client; the callout id.
    fn callout(&mut self, cluster: &str, headers: &[(String, String)]) -> Result<u64, String>;
    fn count(&mut self, counter: DiscoveryCounter, labels: &[&str]);
    fn set_gauge(&mut self, gauge: DiscoveryGauge, labels: &[&str], value: u64);
    fn log(&mut self, level: LogLevel, line: &str);
}

/// A callout's end as Envoy reports it.
#[derive(Debug, Clone, Copy)]
pub enum CalloutReply<'a> {
    Http {
        status: u16,
        body: &'a [u8],
    },
    /// No HTTP reply (reset, timeout, too large); the ABI's result code.
    Failed(u32),
}

struct Slot {
    member: MemberId,
    upstream: Arc<Upstream>,
    /// Names whose `discovered_function` gauge this config set to 1.
    published: HashSet<String>,
    /// The snapshot `published` reflects.
    synced: Option<Arc<Snapshot>>,
}

/// One config's discovering upstreams, each a member of a registry entry.
pub struct ConfigDiscovery {
    config: u64,
    slots: Mutex<Vec<Slot>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConfigDiscovery {
    /// Joins every discovering upstream of `config` to the registry (config load). `tables`
    /// (the config's upstream → table map) gets the shared tables, so the config's workers
    /// read the last good list at once. `waker` delivers this config's scheduler events;
    /// `number` is the config's number in the process.
    pub fn join(
        global: &Global,
        io: &mut impl DiscoveryIo,
        config: &FilterConfig,
        tables: &mut std::collections::HashMap<String, Arc<FunctionTable>>,
        waker: Arc<dyn Wake>,
        number: u64,
    ) -> Option<Self> {
        let mut slots = Vec::new();
        let mut upstreams: Vec<&Arc<Upstream>> = config.upstreams().collect();
        upstreams.sort_by(|a, b| a.name.cmp(&b.name));
        for u in upstreams {
            let Some(settings) = &u.discovery else {
                continue;
            };
            let Some(key) = DiscoveryKey::new(u, &config.credentials_key(u)) else {
                continue;
            };
            let event = slots.len() as u64;
            let joined = global.with(|r| {
                let by = Joiner {
                    config: number,
                    waker: Arc::clone(&waker),
                    event,
                };
                r.join(key, &u.name, settings, by, Instant::now())
            });
            tables.insert(u.name.clone(), Arc::clone(&joined.table));
            let line = match (joined.previous_poller, joined.carried) {
                (None, _) => format!(
                    "envoy-lambda: discovery for upstream '{}': filter config #{number} polls \
                     (first listing pending)",
                    u.name
                ),
                (Some(prev), carried) => format!(
                    "envoy-lambda: discovery for upstream '{}': filter config #{number} polls \
                     now instead of #{prev}, starting with {}",
                    u.name,
                    carried.map_or("no list yet (first listing pending)".to_owned(), |n| {
                        format!("the last good list ({n} names)")
                    })
                ),
            };
            io.log(LogLevel::Info, &line);
            slots.push(Slot {
                member: joined.member,
                upstream: Arc::clone(u),
                published: HashSet::new(),
                synced: None,
            });
        }
        if slots.is_empty() {
            return None;
        }
        let this = Self {
            config: number,
            slots: Mutex::new(slots),
        };
        // This config's own references to the gauges, so they outlive older configs' scopes.
        let joined = lock(&this.slots).len();
        for index in 0..joined {
            this.sync_gauges(global, io, index);
        }
        Some(this)
    }

    /// Leaves the registry (config destroy): another config of the same discovery takes over.
    /// Returns a line to log per upstream that is still discovered by another config.
    pub fn leave(&self, global: &Global) -> Vec<String> {
        let slots = std::mem::take(&mut *lock(&self.slots));
        slots
            .into_iter()
            .filter_map(|slot| {
                let polling = global.with(|r| r.leave(slot.member, Instant::now()))?;
                Some(format!(
                    "envoy-lambda: discovery for upstream '{}': filter config #{} is gone; \
                     #{} polls ({} config(s) share the list)",
                    slot.upstream.name, self.config, polling.config, polling.configs
                ))
            })
            .collect()
    }

    /// A scheduler event of this config ran (main thread).
    pub fn on_event(
        &self,
        global: &Global,
        io: &mut impl DiscoveryIo,
        keys: &Keys<'_>,
        event: u64,
    ) {
        let timer_panics = global.take_timer_panics();
        if timer_panics > 0 {
            for _ in 0..timer_panics {
                io.count(DiscoveryCounter::TimerPanics, &[]);
            }
        }
        let index = (event & !SYNC_EVENT) as usize;
        let Some(member) = lock(&self.slots).get(index).map(|s| s.member) else {
            return;
        };
        self.guarded(global, io, index, member, |this, io| {
            if event & SYNC_EVENT == 0 {
                let now = Instant::now();
                let first = global.with(|r| r.on_event(member, now, SystemTime::now()));
                if let Some(request) = first {
                    let outcome = Outcome {
                        step: Step::Send(request),
                        report: None,
                    };
                    this.drive(global, io, keys, index, outcome);
                }
            }
            this.sync_gauges(global, io, index);
        });
    }

    /// A callout of this config ended (main thread).
    pub fn on_callout_done(
        &self,
        global: &Global,
        io: &mut impl DiscoveryIo,
        keys: &Keys<'_>,
        callout: u64,
        reply: CalloutReply<'_>,
    ) {
        let members: Vec<MemberId> = lock(&self.slots).iter().map(|s| s.member).collect();
        let reply = match reply {
            CalloutReply::Http { status, body } => Ok((status, body)),
            CalloutReply::Failed(code) => Err(format!("callout failed (result {code})")),
        };
        // Finding the member cannot panic in our code; the step after it is guarded.
        let claimed = catch_unwind(AssertUnwindSafe(|| {
            global.with(|r| r.on_reply(&members, callout, reply, Instant::now(), SystemTime::now()))
        }));
        let (member, outcome) = match claimed {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return, // a reply for a refresh that was dropped
            Err(payload) => {
                // We do not know whose it was: every upstream of this config restarts.
                for (index, member) in members.iter().enumerate() {
                    self.recovered(global, io, index, *member, payload.as_ref());
                }
                return;
            }
        };
        let Some(index) = members.iter().position(|m| *m == member) else {
            return;
        };
        self.guarded(global, io, index, member, |this, io| {
            this.drive(global, io, keys, index, outcome);
        });
    }

    /// Runs one step for `member`; a panic is logged, counted and repaired.
    fn guarded<I: DiscoveryIo>(
        &self,
        global: &Global,
        io: &mut I,
        index: usize,
        member: MemberId,
        step: impl FnOnce(&Self, &mut I),
    ) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| step(self, io))) {
            self.recovered(global, io, index, member, payload.as_ref());
        }
    }

    fn recovered(
        &self,
        global: &Global,
        io: &mut impl DiscoveryIo,
        index: usize,
        member: MemberId,
        payload: &(dyn std::any::Any + Send),
    ) {
        let upstream = self.upstream_name(index);
        let delay = global.with(|r| r.recover(member, Instant::now()));
        io.count(DiscoveryCounter::Panics, &[&upstream]);
        io.log(
            LogLevel::Error,
            &format!(
                "envoy-lambda: panic in discovery for upstream '{upstream}': {}; the refresh \
                 restarts in {:?} and the previous function list stays in use",
                panic_message(payload),
                delay.unwrap_or_default()
            ),
        );
    }

    fn upstream_name(&self, index: usize) -> String {
        lock(&self.slots)
            .get(index)
            .map(|s| s.upstream.name.clone())
            .unwrap_or_default()
    }

    /// Carries out the outcome's steps until a request is in flight or the refresh is over.
    /// No lock is held while Envoy is called: its done hook may run inside the callout call.
    fn drive(
        &self,
        global: &Global,
        io: &mut impl DiscoveryIo,
        keys: &Keys<'_>,
        index: usize,
        mut outcome: Outcome,
    ) {
        let Some((member, upstream)) = lock(&self.slots)
            .get(index)
            .map(|s| (s.member, Arc::clone(&s.upstream)))
        else {
            return;
        };
        loop {
            if let Some(report) = outcome.report.take() {
                self.report(global, io, index, report);
            }
            let Step::Send(request) = outcome.step else {
                return;
            };
            let Some(seq) = global.with(|r| r.begin_send(member)) else {
                return; // the refresh was dropped meanwhile
            };
            let sent = send(io, keys, &upstream, &request);
            match global.with(|r| r.sent(member, seq, sent, Instant::now(), SystemTime::now())) {
                Some(next) => outcome = next,
                None => return,
            }
        }
    }

    fn report(&self, global: &Global, io: &mut impl DiscoveryIo, index: usize, report: Report) {
        let upstream = self.upstream_name(index);
        match report {
            Report::Refreshed { names, requests } => {
                io.count(DiscoveryCounter::RefreshOk, &[&upstream]);
                io.log(
                    LogLevel::Debug,
                    &format!(
                        "envoy-lambda: upstream '{upstream}' discovered {names} functions in \
                         {requests} requests (filter config #{})",
                        self.config
                    ),
                );
                self.sync_gauges(global, io, index);
            }
            Report::Failed { kind, log, .. } => {
                io.count(DiscoveryCounter::RefreshFailed, &[&upstream, kind.name()]);
                if let Some(line) = log {
                    io.log(LogLevel::Warn, &format!("envoy-lambda: {line}"));
                }
            }
        }
    }

    /// Sets this config's gauges to the shared table: the function count, the last success,
    /// one `discovered_function` gauge per name (1, or 0 once gone), who polls.
    fn sync_gauges(&self, global: &Global, io: &mut impl DiscoveryIo, index: usize) {
        let mut slots = lock(&self.slots);
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        let (table, polling): (Option<Arc<FunctionTable>>, Option<Polling>) =
            global.with(|r| (r.table(slot.member), r.polling(slot.member)));
        let upstream = slot.upstream.name.clone();
        if let Some(p) = polling {
            io.set_gauge(DiscoveryGauge::Configs, &[&upstream], p.configs as u64);
            io.set_gauge(DiscoveryGauge::PollerConfig, &[&upstream], p.config);
        }
        let Some(TableState::Ready(snapshot)) = table.map(|t| t.state()) else {
            return;
        };
        if slot
            .synced
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, &snapshot))
        {
            return;
        }
        io.set_gauge(
            DiscoveryGauge::Functions,
            &[&upstream],
            snapshot.set.len() as u64,
        );
        let secs = snapshot
            .refreshed_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        io.set_gauge(DiscoveryGauge::LastSuccess, &[&upstream], secs);
        let current: HashSet<String> = snapshot.set.iter().map(str::to_owned).collect();
        for gone in slot.published.difference(&current) {
            io.set_gauge(DiscoveryGauge::FunctionPresent, &[&upstream, gone], 0);
        }
        for name in current.difference(&slot.published) {
            io.set_gauge(DiscoveryGauge::FunctionPresent, &[&upstream, name], 1);
        }
        slot.published = current;
        slot.synced = Some(snapshot);
    }
}

/// Signs `request` with the upstream's current credentials (secret or provider) and sends it.
fn send(
    io: &mut impl DiscoveryIo,
    keys: &Keys<'_>,
    upstream: &Upstream,
    request: &ApiRequest,
) -> Result<u64, String> {
    let cluster = upstream
        .discovery
        .as_ref()
        .map(|d| d.cluster.clone())
        .unwrap_or_default();
    let creds = match keys.resolve(upstream, |i| Some(io.secret(i)), SystemTime::now()) {
        Resolved::Ready(c) => c,
        Resolved::Pending(_) => {
            return Err("credentials: the first ones are still being fetched".into());
        }
        Resolved::Unavailable(why) => return Err(format!("credentials: {why}")),
    };
    let headers =
        signed_headers(request, upstream, &creds, SystemTime::now()).map_err(|e| e.to_string())?;
    io.callout(&cluster, &headers)
}

#[cfg(test)]
mod tests;
