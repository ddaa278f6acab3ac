//! Function discovery inside Envoy: a timer thread commits config-scheduler events; the main
//! thread (scheduled and callout-done hooks) signs Lambda API listings and sends them through
//! Envoy's own HTTP client (config-level callouts). Workers never wait on any of this: they
//! read the `FunctionTable`s lock-free.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::ffi::{self, Buffer, ConfigEnvoyPtr, ConfigSchedulerPtr, HttpHeader};
use super::log::envoy_log;
use crate::config::Upstream;
use crate::discovery::{signed_headers, ApiRequest, Outcome, Report, Step, UpstreamDiscovery};
use crate::filter::SharedConfig;

/// A listing that got no answer in this time counts as a transport failure.
const CALLOUT_TIMEOUT_MS: u64 = 10_000;

/// The config scheduler, shared with the timer thread.
#[derive(Clone, Copy)]
struct Scheduler(ConfigSchedulerPtr);

// SAFETY: Envoy documents `config_scheduler_commit` as callable from any thread; the pointer is
// deleted only after the timer thread has been joined (`DiscoveryRuntime::shutdown`).
unsafe impl Send for Scheduler {}
// SAFETY: as above; the pointer itself is never mutated.
unsafe impl Sync for Scheduler {}

/// Metric ids defined in config_new (labelled by `upstream`, and `function` for the table).
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscoveryMetrics {
    pub refresh_ok: Option<usize>,
    pub refresh_failed: Option<usize>,
    pub functions: Option<usize>,
    pub last_success: Option<usize>,
    pub function_present: Option<usize>,
}

struct Slot {
    upstream: Arc<Upstream>,
    driver: UpstreamDiscovery,
    /// The callout in flight, once Envoy has given it an id.
    callout: Option<u64>,
    /// A send in progress (its sequence number): a done hook that Envoy runs inline, before
    /// the callout call returns, belongs to it.
    sending: Option<u64>,
    send_seq: u64,
    /// Names whose `discovered_function` gauge is 1.
    published: HashSet<String>,
}

struct TimerState {
    due: Vec<(Instant, u64)>,
    stop: bool,
}

pub struct DiscoveryRuntime {
    shared: Arc<SharedConfig>,
    secret_handles: Vec<u64>,
    metrics: DiscoveryMetrics,
    slots: Mutex<Vec<Slot>>,
    timer: Arc<(Mutex<TimerState>, Condvar)>,
    timer_thread: Mutex<Option<JoinHandle<()>>>,
    scheduler: Scheduler,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere (caught by the hook guard) must not stop discovery for good.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

impl DiscoveryRuntime {
    /// Starts discovery for every upstream that enables it; `None` when none does.
    pub fn start(
        config_envoy_ptr: ConfigEnvoyPtr,
        shared: &Arc<SharedConfig>,
        secret_handles: &[u64],
        metrics: DiscoveryMetrics,
    ) -> Option<Self> {
        let slots: Vec<Slot> = shared
            .config
            .upstreams()
            .filter_map(|u| {
                let settings = u.discovery.clone()?;
                let table = Arc::clone(shared.discovered.get(&u.name)?);
                Some(Slot {
                    upstream: Arc::clone(u),
                    driver: UpstreamDiscovery::with_table(u.name.clone(), settings, table),
                    callout: None,
                    sending: None,
                    send_seq: 0,
                    published: HashSet::new(),
                })
            })
            .collect();
        if slots.is_empty() {
            return None;
        }
        // SAFETY: `config_envoy_ptr` is live during config_new, where this runs.
        let scheduler = Scheduler(unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config_envoy_ptr)
        });
        if scheduler.0.is_null() {
            envoy_log(
                ffi::LOG_ERROR,
                "envoy-lambda: no config scheduler; discovery is off",
            );
            return None;
        }
        let timer = Arc::new((
            Mutex::new(TimerState {
                // The first refresh of every upstream, as soon as the main loop runs.
                due: (0..slots.len() as u64)
                    .map(|i| (Instant::now(), i))
                    .collect(),
                stop: false,
            }),
            Condvar::new(),
        ));
        let thread = {
            let timer = Arc::clone(&timer);
            std::thread::Builder::new()
                .name("envoy-lambda-discovery".into())
                .spawn(move || timer_loop(&timer, scheduler))
                .ok()
        };
        Some(Self {
            shared: Arc::clone(shared),
            secret_handles: secret_handles.to_vec(),
            metrics,
            slots: Mutex::new(slots),
            timer,
            timer_thread: Mutex::new(thread),
            scheduler,
        })
    }

    /// Stops the timer thread and frees the scheduler (config_destroy, main thread).
    pub fn shutdown(&self) {
        {
            let (state, cv) = &*self.timer;
            lock(state).stop = true;
            cv.notify_all();
        }
        if let Some(t) = lock(&self.timer_thread).take() {
            let _ = t.join();
        }
        // SAFETY: the only other user of the scheduler, the timer thread, has been joined.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.scheduler.0)
        };
    }

    fn schedule(&self, slot: usize, delay: Duration) {
        let (state, cv) = &*self.timer;
        lock(state).due.push((Instant::now() + delay, slot as u64));
        cv.notify_all();
    }

    /// The timer fired for `event_id` (= slot index): start a refresh.
    pub fn on_scheduled(&self, cfg: ConfigEnvoyPtr, event_id: u64) {
        let slot = event_id as usize;
        let first = lock(&self.slots)
            .get_mut(slot)
            .and_then(|s| s.driver.start(SystemTime::now()));
        if let Some(request) = first {
            self.drive(
                cfg,
                slot,
                Outcome {
                    step: Step::Send(request),
                    report: None,
                },
            );
        }
    }

    /// A listing came back (or failed).
    pub fn on_callout_done(
        &self,
        cfg: ConfigEnvoyPtr,
        callout_id: u64,
        result: u32,
        status: u16,
        body: &[u8],
    ) {
        let now = SystemTime::now();
        let outcome = {
            let mut slots = lock(&self.slots);
            let Some(index) = slots
                .iter()
                .position(|s| s.callout == Some(callout_id))
                .or_else(|| {
                    slots
                        .iter()
                        .position(|s| s.sending.is_some() && s.callout.is_none())
                })
            else {
                return; // a reply for a config that has moved on
            };
            let slot = &mut slots[index];
            slot.callout = None;
            slot.sending = None;
            let outcome = if result == ffi::CALLOUT_SUCCESS {
                slot.driver.on_response(status, body, now, seed())
            } else {
                slot.driver.on_transport_failure(
                    &format!("callout failed (result {result})"),
                    now,
                    seed(),
                )
            };
            (index, outcome)
        };
        self.drive(cfg, outcome.0, outcome.1);
    }

    /// Carries out what the driver asked for, until a request is in flight or a timer is set.
    fn drive(&self, cfg: ConfigEnvoyPtr, index: usize, mut outcome: Outcome) {
        loop {
            if let Some(report) = outcome.report.take() {
                self.report(cfg, index, report);
            }
            let request = match outcome.step {
                Step::Send(request) => request,
                Step::Wait(delay) => return self.schedule(index, delay),
                Step::Idle => return,
            };
            let (prepared, seq) = {
                let mut slots = lock(&self.slots);
                let Some(slot) = slots.get_mut(index) else {
                    return;
                };
                slot.send_seq += 1;
                slot.sending = Some(slot.send_seq);
                (self.prepare(cfg, &slot.upstream, &request), slot.send_seq)
            };
            let sent = prepared.and_then(|(cluster, headers)| send(cfg, &cluster, &headers));
            let mut slots = lock(&self.slots);
            let Some(slot) = slots.get_mut(index) else {
                return;
            };
            match sent {
                Ok(id) => {
                    // Unless Envoy already answered inline (then the done hook took over).
                    if slot.sending == Some(seq) {
                        slot.sending = None;
                        slot.callout = Some(id);
                    }
                    return;
                }
                Err(reason) => {
                    slot.sending = None;
                    outcome = slot
                        .driver
                        .on_transport_failure(&reason, SystemTime::now(), seed());
                }
            }
        }
    }

    /// The cluster and signed headers for one listing request.
    fn prepare(
        &self,
        cfg: ConfigEnvoyPtr,
        upstream: &Upstream,
        request: &ApiRequest,
    ) -> Result<(String, Vec<(String, String)>), String> {
        let cluster = upstream
            .discovery
            .as_ref()
            .map(|d| d.cluster.clone())
            .unwrap_or_default();
        let handle = *self
            .secret_handles
            .get(upstream.secret)
            .ok_or("no secret subscription")?;
        let mut out = Buffer::EMPTY;
        // SAFETY: `cfg` is the config's envoy pointer passed to the running main-thread hook.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_get_generic_secret(
                cfg, handle, &mut out,
            )
        };
        let bytes = if ok {
            // SAFETY: the secret bytes are valid during this hook; they are parsed (or
            // compared) before any other Envoy call.
            unsafe { out.as_slice() }
        } else {
            &[][..]
        };
        let creds = self.shared.credentials[upstream.secret]
            .get(bytes)
            .map_err(|e| format!("credentials: {e}"))?;
        let headers = signed_headers(request, upstream, &creds, SystemTime::now())
            .map_err(|e| e.to_string())?;
        Ok((cluster, headers))
    }

    fn report(&self, cfg: ConfigEnvoyPtr, index: usize, report: Report) {
        let mut slots = lock(&self.slots);
        let Some(slot) = slots.get_mut(index) else {
            return;
        };
        let upstream = slot.upstream.name.clone();
        match report {
            Report::Refreshed { names, requests } => {
                counter(cfg, self.metrics.refresh_ok, &[&upstream]);
                gauge(cfg, self.metrics.functions, &[&upstream], names as u64);
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                gauge(cfg, self.metrics.last_success, &[&upstream], secs);
                // One gauge per function: 1 while discovered, 0 once gone (stats cannot be
                // deleted), so `/stats?filter=discovered_function` is the function table.
                let current: HashSet<String> = match slot.driver.table().state() {
                    crate::discovery::TableState::Ready(snap) => {
                        snap.set.iter().map(str::to_owned).collect()
                    }
                    crate::discovery::TableState::NotReady => HashSet::new(),
                };
                for gone in slot.published.difference(&current) {
                    gauge(cfg, self.metrics.function_present, &[&upstream, gone], 0);
                }
                for name in current.difference(&slot.published) {
                    gauge(cfg, self.metrics.function_present, &[&upstream, name], 1);
                }
                slot.published = current;
                envoy_log(
                    ffi::LOG_DEBUG,
                    &format!("envoy-lambda: upstream '{upstream}' discovered {names} functions in {requests} requests"),
                );
            }
            Report::Failed { kind, log, .. } => {
                counter(cfg, self.metrics.refresh_failed, &[&upstream, kind.name()]);
                if let Some(line) = log {
                    envoy_log(ffi::LOG_WARN, &format!("envoy-lambda: {line}"));
                }
            }
        }
    }
}

fn send(cfg: ConfigEnvoyPtr, cluster: &str, headers: &[(String, String)]) -> Result<u64, String> {
    let raw: Vec<HttpHeader> = headers
        .iter()
        .map(|(k, v)| HttpHeader::from_pair(k.as_bytes(), v.as_bytes()))
        .collect();
    let mut id = 0u64;
    // SAFETY: `cfg` is live during the main-thread hook; every buffer outlives the call, which
    // copies them.
    let rc = unsafe {
        ffi::envoy_dynamic_module_callback_http_filter_config_http_callout(
            cfg,
            &mut id,
            Buffer::from_slice(cluster.as_bytes()),
            raw.as_ptr(),
            raw.len(),
            Buffer::EMPTY,
            CALLOUT_TIMEOUT_MS,
        )
    };
    if rc == ffi::CALLOUT_INIT_SUCCESS {
        Ok(id)
    } else {
        Err(match rc {
            2 => format!("Envoy has no cluster '{cluster}'"),
            other => format!("Envoy refused the callout (code {other})"),
        })
    }
}

fn labels<'a>(values: &'a [&'a str]) -> Vec<Buffer> {
    values
        .iter()
        .map(|v| Buffer::from_slice(v.as_bytes()))
        .collect()
}

fn counter(cfg: ConfigEnvoyPtr, id: Option<usize>, values: &[&str]) {
    let Some(id) = id else { return };
    let l = labels(values);
    // SAFETY: `cfg` is live during the main-thread hook; `id` was defined with `l.len()` labels.
    unsafe {
        ffi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
            cfg,
            id,
            l.as_ptr(),
            l.len(),
            1,
        );
    }
}

fn gauge(cfg: ConfigEnvoyPtr, id: Option<usize>, values: &[&str], value: u64) {
    let Some(id) = id else { return };
    let l = labels(values);
    // SAFETY: as in `counter`.
    unsafe {
        ffi::envoy_dynamic_module_callback_http_filter_config_set_gauge(
            cfg,
            id,
            l.as_ptr(),
            l.len(),
            value,
        );
    }
}

fn timer_loop(timer: &(Mutex<TimerState>, Condvar), scheduler: Scheduler) {
    let (state, cv) = timer;
    let mut s = lock(state);
    loop {
        if s.stop {
            return;
        }
        let now = Instant::now();
        if let Some(pos) = s.due.iter().position(|(at, _)| *at <= now) {
            let (_, id) = s.due.swap_remove(pos);
            drop(s);
            // SAFETY: commit is thread-safe; the scheduler outlives this thread (see `Scheduler`).
            unsafe {
                ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
                    scheduler.0,
                    id,
                )
            };
            s = lock(state);
            continue;
        }
        let wait = s
            .due
            .iter()
            .map(|(at, _)| at.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(3600));
        s = cv
            .wait_timeout(s, wait)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}
