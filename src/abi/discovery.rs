//! Function discovery's Envoy side: the config scheduler (how the process's discovery timer
//! wakes a config), and [`DiscoveryIo`] over a config's Envoy pointer for the duration of one
//! main-thread hook (secrets, callouts, stats, log). Who polls, hand-over between configs,
//! carry-over of the table, panic recovery and jitter are in `crate::discovery` (safe code).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::envoy_buffer::EnvoyBuffer;
use super::ffi::{self, Buffer, ConfigEnvoyPtr, ConfigSchedulerEnvoyPtr, HttpHeader};
use super::log::envoy_log;
use super::metrics::{DiscoveryMetrics, add_config_counter, set_config_gauge};
use crate::credentials::Keys;
use crate::discovery::{
    CalloutReply, ConfigDiscovery, DiscoveryCounter, DiscoveryGauge, DiscoveryIo, Wake, global,
};
use crate::filter::SharedConfig;
use crate::host::LogLevel;

/// A listing that got no answer in this time counts as a transport failure.
const CALLOUT_TIMEOUT_MS: u64 = 10_000;

/// Numbers filter configs in load order, for the `discovery_poller_config` gauge and logs.
static CONFIG_NUMBERS: AtomicU64 = AtomicU64::new(1);

/// A config's scheduler, as the discovery timer thread wakes it.
struct Scheduler(ConfigSchedulerEnvoyPtr);

// SAFETY: Envoy documents `config_scheduler_commit` as callable from any thread. The registry
// calls `wake` only under its lock and only for members; `DiscoveryRuntime::shutdown` leaves
// the registry (under that lock) before it deletes the pointer.
unsafe impl Send for Scheduler {}
// SAFETY: as above; the pointer itself is never mutated.
unsafe impl Sync for Scheduler {}

impl Wake for Scheduler {
    fn wake(&self, event: u64) {
        // SAFETY: the scheduler is live while its config is a registry member (see above).
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event)
        }
    }
}

/// One config's Envoy, during one main-thread hook.
struct EnvoyIo<'a> {
    cfg: ConfigEnvoyPtr,
    secret_handles: &'a [u64],
    metrics: &'a DiscoveryMetrics,
}

impl DiscoveryIo for EnvoyIo<'_> {
    fn secret(&self, secret: usize) -> &[u8] {
        let Some(&handle) = self.secret_handles.get(secret) else {
            return &[];
        };
        let mut out = Buffer::EMPTY;
        // SAFETY: `cfg` is the config's envoy pointer passed to the running main-thread hook.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_get_generic_secret(
                self.cfg, handle, &mut out,
            )
        };
        if ok {
            // SAFETY: the secret bytes are valid during this hook, which `self` is borrowed
            // within; the caller parses (or compares) them before any other Envoy call.
            unsafe { EnvoyBuffer::new(self, out) }.as_slice()
        } else {
            &[]
        }
    }

    fn callout(&mut self, cluster: &str, headers: &[(String, String)]) -> Result<u64, String> {
        let raw: Vec<HttpHeader> = headers
            .iter()
            .map(|(k, v)| HttpHeader::from_pair(k.as_bytes(), v.as_bytes()))
            .collect();
        let mut id = 0u64;
        // SAFETY: `cfg` is live during the main-thread hook; every buffer outlives the call,
        // which copies them.
        let rc = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_http_callout(
                self.cfg,
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

    fn count(&mut self, counter: DiscoveryCounter, labels: &[&str]) {
        if let Some(id) = self.metrics.counter(counter) {
            add_config_counter(self.cfg, id, labels, 1);
        }
    }

    fn set_gauge(&mut self, gauge: DiscoveryGauge, labels: &[&str], value: u64) {
        if let Some(id) = self.metrics.gauge(gauge) {
            set_config_gauge(self.cfg, id, labels, value);
        }
    }

    fn log(&mut self, level: LogLevel, line: &str) {
        envoy_log(log_level(level), line);
    }
}

fn log_level(level: LogLevel) -> u32 {
    match level {
        LogLevel::Debug => ffi::LOG_DEBUG,
        LogLevel::Info => ffi::LOG_INFO,
        LogLevel::Warn => ffi::LOG_WARN,
        LogLevel::Error => ffi::LOG_ERROR,
    }
}

fn log_error(line: &str) {
    envoy_log(ffi::LOG_ERROR, line);
}

/// One filter config's discovery: its registry membership and its scheduler.
pub struct DiscoveryRuntime {
    discovery: ConfigDiscovery,
    scheduler: Arc<Scheduler>,
    secret_handles: Vec<u64>,
    metrics: DiscoveryMetrics,
}

impl DiscoveryRuntime {
    /// Joins every discovering upstream to the process's registry (config_new); the config's
    /// tables become the shared ones. `None` when no upstream discovers.
    pub fn start(
        config_envoy_ptr: ConfigEnvoyPtr,
        shared: &mut SharedConfig,
        secret_handles: &[u64],
        metrics: DiscoveryMetrics,
    ) -> Option<Self> {
        if shared.discovered.is_empty() {
            return None;
        }
        // SAFETY: `config_envoy_ptr` is live during config_new, where this runs.
        let raw = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config_envoy_ptr)
        };
        if raw.is_null() {
            log_error("envoy-lambda: no config scheduler; discovery is off");
            return None;
        }
        let scheduler = Arc::new(Scheduler(raw));
        let mut io = EnvoyIo {
            cfg: config_envoy_ptr,
            secret_handles,
            metrics: &metrics,
        };
        let number = CONFIG_NUMBERS.fetch_add(1, Ordering::Relaxed);
        let joined = ConfigDiscovery::join(
            global(),
            &mut io,
            &shared.config,
            &mut shared.discovered,
            Arc::clone(&scheduler) as Arc<dyn Wake>,
            number,
        );
        let Some(discovery) = joined else {
            // SAFETY: nothing else has the scheduler: no upstream joined.
            unsafe { ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(raw) };
            return None;
        };
        global().start_timer(log_error);
        Some(Self {
            discovery,
            scheduler,
            secret_handles: secret_handles.to_vec(),
            metrics,
        })
    }

    fn io(&self, cfg: ConfigEnvoyPtr) -> EnvoyIo<'_> {
        EnvoyIo {
            cfg,
            secret_handles: &self.secret_handles,
            metrics: &self.metrics,
        }
    }

    /// The timer (or a hand-over) woke this config (main thread).
    pub fn on_scheduled(&self, cfg: ConfigEnvoyPtr, shared: &SharedConfig, event_id: u64) {
        let keys = Keys {
            config: &shared.config,
            credentials: &shared.credentials,
        };
        self.discovery
            .on_event(global(), &mut self.io(cfg), &keys, event_id);
    }

    /// A listing came back (or failed); `headers` and `chunks` are Envoy's reply.
    pub fn on_callout_done(
        &self,
        cfg: ConfigEnvoyPtr,
        shared: &SharedConfig,
        callout_id: u64,
        result: u32,
        headers: &[HttpHeader],
        chunks: &[Buffer],
    ) {
        let status = headers
            .iter()
            // SAFETY: each header's ranges point into Envoy's reply, valid during this hook,
            // which the borrow of `headers` lies within.
            .map(|h| unsafe { EnvoyBuffer::key_value(headers, h) })
            .find(|(k, _)| k.as_slice() == b":status")
            .and_then(|(_, v)| v.to_str()?.parse::<u16>().ok())
            .unwrap_or(0);
        let mut body = Vec::new();
        for chunk in chunks {
            // SAFETY: as above, for the body chunks and `chunks`.
            body.extend_from_slice(unsafe { EnvoyBuffer::new(chunks, *chunk) }.as_slice());
        }
        let reply = if result == ffi::CALLOUT_SUCCESS {
            CalloutReply::Http {
                status,
                body: &body,
            }
        } else {
            CalloutReply::Failed(result)
        };
        let keys = Keys {
            config: &shared.config,
            credentials: &shared.credentials,
        };
        self.discovery
            .on_callout_done(global(), &mut self.io(cfg), &keys, callout_id, reply);
    }

    /// Leaves the registry, then frees the scheduler (config_destroy, main thread).
    pub fn shutdown(&self) {
        for line in self.discovery.leave(global()) {
            envoy_log(ffi::LOG_INFO, &line);
        }
        global().stop_timer_when_idle();
        // SAFETY: the config has left the registry, the only place that wakes its scheduler,
        // and `leave` ran under the registry lock the timer thread holds while waking.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.scheduler.0)
        };
    }
}
