//! The module side of one filter config: what `http_filter_config_new` builds (the validated
//! config, its secret subscriptions, metric ids and discovery) and hands to Envoy as the
//! `config_module_ptr`, until `http_filter_config_destroy`.

use std::sync::Arc;

use super::config_scheduler::ConfigScheduler;
use super::credentials_library;
use super::credentials_stats::{CREDENTIALS_STATS_EVENT, CredentialsRuntime};
use super::discovery::DiscoveryRuntime;
use super::ffi::{self, Buffer, ConfigEnvoyPtr, ConfigModulePtr, HttpHeader};
use super::log::envoy_log;
use super::metrics::{
    CredentialMetrics, DiscoveryMetrics, FunctionMetrics, StreamCounters, add_config_counter,
};
use crate::config::{CredentialsFrom, FilterConfig};
use crate::counter_batch::{self, CounterBatch, MemberId};
use crate::filter::SharedConfig;
use crate::host::{Counter, FunctionStat};

pub struct ConfigHandle {
    pub shared: Arc<SharedConfig>,
    /// One generic-secret subscription handle per `config.secrets()` entry.
    pub secret_handles: Vec<u64>,
    counters: StreamCounters,
    function_metrics: FunctionMetrics,
    /// Main-thread discovery, when an upstream enables it (never in `--mode validate`).
    discovery: Option<DiscoveryRuntime>,
    /// Provider-backed credentials' stats, when an upstream has them (never in validate).
    credentials: Option<CredentialsRuntime>,
    /// Per-function counter adds of the streams, published on the main thread.
    function_counts: Arc<CounterBatch>,
    /// The config's place with the process's flush thread (never in validate).
    flush_member: Option<MemberId>,
    /// For the last flush, in config_destroy.
    config_envoy_ptr: MainThreadOnly,
}

/// The config's event that publishes its per-function counters (the flush thread sends it).
const FUNCTION_COUNTS_EVENT: u64 = 1 << 61;

/// The config's Envoy pointer, kept for config_destroy, which gets no pointer of its own.
struct MainThreadOnly(ConfigEnvoyPtr);

// SAFETY: the pointer is only used by `ConfigHandle::destroy`, which Envoy runs on the main
// thread inside the config's destructor, before the config's stats scope is released.
unsafe impl Send for MainThreadOnly {}
// SAFETY: as above; the pointer is never mutated.
unsafe impl Sync for MainThreadOnly {}

fn log_error(line: &str) {
    envoy_log(ffi::LOG_ERROR, line);
}

impl ConfigHandle {
    /// Validates the config, subscribes to its secrets and defines its metrics (config_new:
    /// the only time Envoy allows either). The error names the field at fault.
    pub fn new(config_envoy_ptr: ConfigEnvoyPtr, bytes: &[u8]) -> Result<Self, String> {
        // Routes are not checked against it here: they may belong to another listener's filter
        // config, or come in a later update. The filter answers unknown names per request.
        let config = FilterConfig::from_json(bytes).map_err(|e| e.to_string())?;
        let secret_handles = subscribe_secrets(config_envoy_ptr, &config)?;
        let counters = StreamCounters::define(config_envoy_ptr);
        let function_metrics = FunctionMetrics::define(config_envoy_ptr);
        let mut shared = SharedConfig::new(config);
        // SAFETY: a plain query, valid on the main thread where config_new runs.
        let validating = unsafe { ffi::envoy_dynamic_module_callback_is_validation_mode() };
        let has_providers = shared
            .config
            .upstreams()
            .any(|u| matches!(u.credentials, CredentialsFrom::Provider(_)));
        let credentials = if has_providers {
            // Loaded in `--mode validate` too: a missing library is found before deployment.
            let providers = credentials_library::providers().map_err(|e| {
                format!("credentials: a provider-backed upstream needs the AWS SDK library: {e}")
            })?;
            let metrics = CredentialMetrics::define(config_envoy_ptr);
            // Validating a config fetches nothing: no provider, no network.
            (!validating)
                .then(|| {
                    CredentialsRuntime::start(config_envoy_ptr, &mut shared, metrics, &providers)
                })
                .flatten()
        } else {
            None
        };
        let discovery = if shared.discovered.is_empty() {
            None
        } else {
            let metrics = DiscoveryMetrics::define(config_envoy_ptr);
            // SAFETY: a plain query, valid on the main thread where config_new runs.
            if unsafe { ffi::envoy_dynamic_module_callback_is_validation_mode() } {
                None
            } else {
                DiscoveryRuntime::start(config_envoy_ptr, &mut shared, &secret_handles, metrics)
            }
        };
        let function_counts = Arc::new(CounterBatch::new());
        let flush_member = if validating {
            None
        } else if let Some(scheduler) = ConfigScheduler::new(config_envoy_ptr) {
            Some(counter_batch::global().join(
                Arc::clone(&function_counts),
                scheduler,
                FUNCTION_COUNTS_EVENT,
                log_error,
            ))
        } else {
            log_error(
                "envoy-lambda: no config scheduler; per-function counters are published when \
                 the config ends",
            );
            None
        };
        Ok(Self {
            shared: Arc::new(shared),
            secret_handles,
            counters,
            function_metrics,
            discovery,
            credentials,
            function_counts,
            flush_member,
            config_envoy_ptr: MainThreadOnly(config_envoy_ptr),
        })
    }

    /// A stream's add to a per-function counter: summed here, published by the next flush.
    pub fn add_function_count(&self, stat: FunctionStat, labels: &[&str], n: u64) {
        if self.function_counts.add(stat, labels, n) && self.flush_member.is_some() {
            counter_batch::global().poke();
        }
    }

    /// Publishes the summed per-function counters (main thread).
    fn publish_function_counts(&self, config_envoy_ptr: ConfigEnvoyPtr) {
        self.function_counts.flush(|stat, labels, n| {
            if let Some(id) = self.function_metrics.id(stat) {
                add_config_counter(config_envoy_ptr, id, labels, n);
            }
        });
    }

    pub fn counter_id(&self, counter: Counter) -> Option<usize> {
        self.counters.id(counter)
    }

    pub fn function_stat_id(&self, stat: FunctionStat) -> Option<usize> {
        self.function_metrics.id(stat)
    }

    /// The pointer Envoy keeps for this config (one strong count, released by [`Self::destroy`]).
    pub fn into_module_ptr(self) -> ConfigModulePtr {
        ConfigModulePtr::from_raw(Box::into_raw(Box::new(Arc::new(self))).cast())
    }

    /// Reads the config behind a module pointer.
    ///
    /// The config lives on after this borrow of the pointer (in Envoy's hands until destroy),
    /// but what the hook may rely on is bound to the borrow, that is to the hook.
    ///
    /// # Safety
    /// `ptr` must come from [`Self::into_module_ptr`] and not be destroyed while borrowed.
    pub unsafe fn from_module_ptr(ptr: &ConfigModulePtr) -> &Arc<ConfigHandle> {
        // SAFETY: as the caller guarantees, `ptr` is a live `Box<Arc<ConfigHandle>>`.
        unsafe { &*ptr.as_raw().cast::<Arc<ConfigHandle>>() }
    }

    /// Releases Envoy's reference (streams may still hold theirs); discovery stops with it.
    ///
    /// # Safety
    /// `ptr` must be null or come from [`Self::into_module_ptr`], destroyed only this once.
    pub unsafe fn destroy(ptr: ConfigModulePtr) {
        let raw = ptr.as_raw().cast::<Arc<ConfigHandle>>().cast_mut();
        if raw.is_null() {
            return;
        }
        // SAFETY: as the caller guarantees, `raw` is a live `Box<Arc<ConfigHandle>>`, now ours.
        let handle = unsafe { Box::from_raw(raw) };
        if let Some(d) = &handle.discovery {
            d.shutdown();
        }
        if let Some(c) = &handle.credentials {
            c.shutdown();
        }
        if let Some(id) = handle.flush_member {
            counter_batch::global().leave(id);
            counter_batch::global().stop_when_idle();
        }
        // What the streams added since the last flush; the stats scope is still alive here.
        handle.publish_function_counts(handle.config_envoy_ptr.0);
    }

    /// The flush thread, a credential refresher or the discovery timer (or a hand-over) woke
    /// this config (main thread).
    pub fn on_scheduled(&self, config_envoy_ptr: ConfigEnvoyPtr, event_id: u64) {
        if event_id == FUNCTION_COUNTS_EVENT {
            self.publish_function_counts(config_envoy_ptr);
            return;
        }
        if event_id & CREDENTIALS_STATS_EVENT != 0 && event_id & (1 << 63) == 0 {
            if let Some(c) = &self.credentials {
                c.on_scheduled(config_envoy_ptr, event_id);
            }
            return;
        }
        if let Some(d) = &self.discovery {
            d.on_scheduled(config_envoy_ptr, &self.shared, event_id);
        }
    }

    /// A discovery listing came back (or failed); `headers` and `chunks` are Envoy's reply.
    pub fn on_callout_done(
        &self,
        config_envoy_ptr: ConfigEnvoyPtr,
        callout_id: u64,
        result: u32,
        headers: &[HttpHeader],
        chunks: &[Buffer],
    ) {
        if let Some(d) = &self.discovery {
            d.on_callout_done(
                config_envoy_ptr,
                &self.shared,
                callout_id,
                result,
                headers,
                chunks,
            );
        }
    }
}

/// One generic-secret subscription per `config.secrets()` entry, in order.
fn subscribe_secrets(
    config_envoy_ptr: ConfigEnvoyPtr,
    config: &FilterConfig,
) -> Result<Vec<u64>, String> {
    let mut secret_handles = Vec::new();
    for secret in config.secrets() {
        let source = secret.config_source.as_deref().unwrap_or("");
        // SAFETY: `config_envoy_ptr` is live during config_new, the only time subscribing is
        // allowed; both buffers outlive the call.
        let handle = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(
                config_envoy_ptr,
                Buffer::from_slice(secret.name.as_bytes()),
                Buffer::from_slice(source.as_bytes()),
            )
        };
        if handle == 0 {
            return Err(if source.is_empty() {
                format!(
                    "spec.secret_ref: Envoy has no static generic secret named '{}' \
                     (static_resources.secrets[].generic_secret)",
                    secret.name
                )
            } else {
                format!(
                    "spec.secret_source: Envoy could not subscribe to SDS secret '{}' \
                     (is bootstrap node.id and node.cluster set? see Envoy's log above)",
                    secret.name
                )
            });
        }
        secret_handles.push(handle);
    }
    Ok(secret_handles)
}
