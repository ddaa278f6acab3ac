//! Metric definition (config_new only: Envoy refuses definitions later): the stream counters,
//! the labelled per-function stats and, for discovering configs, the labelled discovery
//! counters and gauges.

use super::ffi::{self, Buffer, ConfigEnvoyPtr};
use super::log::envoy_log;
use crate::credentials::CredentialsStat;
use crate::discovery::{DiscoveryCounter, DiscoveryGauge};
use crate::host::{Counter, FunctionStat};

/// The stream counters' Envoy ids; a counter Envoy refused is absent (and never counted).
pub struct StreamCounters(Vec<(Counter, usize)>);

impl StreamCounters {
    /// Defines every [`Counter`], unlabelled.
    pub fn define(config_envoy_ptr: ConfigEnvoyPtr) -> Self {
        let ids = Counter::ALL
            .into_iter()
            .filter_map(|counter| {
                let id = define(config_envoy_ptr, Kind::Counter, counter.name(), &[])?;
                Some((counter, id))
            })
            .collect();
        Self(ids)
    }

    pub fn id(&self, counter: Counter) -> Option<usize> {
        self.0
            .iter()
            .find(|(c, _)| *c == counter)
            .map(|(_, id)| *id)
    }
}

/// The per-function stats' Envoy ids (labelled `upstream`, `function`, `qualifier`, and the
/// stat's extra label), indexed like [`FunctionStat::ALL`]; `None` where Envoy refused.
pub struct FunctionMetrics([Option<usize>; FunctionStat::ALL.len()]);

impl FunctionMetrics {
    pub fn define(config_envoy_ptr: ConfigEnvoyPtr) -> Self {
        Self(FunctionStat::ALL.map(|stat| {
            let mut labels = FunctionStat::LABELS.to_vec();
            labels.extend(stat.extra_label());
            let kind = if stat.is_histogram() {
                Kind::Histogram
            } else {
                Kind::Counter
            };
            define(config_envoy_ptr, kind, stat.name(), &labels)
        }))
    }

    pub fn id(&self, stat: FunctionStat) -> Option<usize> {
        // ALL lists each variant once, in declaration order.
        self.0[stat as usize]
    }
}

/// Metric ids defined in config_new (labelled by `upstream`, and `function` for the table).
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscoveryMetrics {
    pub refresh_ok: Option<usize>,
    pub refresh_failed: Option<usize>,
    pub functions: Option<usize>,
    pub last_success: Option<usize>,
    pub function_present: Option<usize>,
    pub panics: Option<usize>,
    pub timer_panics: Option<usize>,
    pub configs: Option<usize>,
    pub poller_config: Option<usize>,
}

impl DiscoveryMetrics {
    pub fn define(config_envoy_ptr: ConfigEnvoyPtr) -> Self {
        use Kind::{Counter, Gauge};
        let define = |kind, name, labels: &[&str]| define(config_envoy_ptr, kind, name, labels);
        Self {
            refresh_ok: define(Counter, "discovery_refresh_ok", &["upstream"]),
            refresh_failed: define(Counter, "discovery_refresh_failed", &["upstream", "reason"]),
            functions: define(Gauge, "discovery_functions", &["upstream"]),
            last_success: define(Gauge, "discovery_last_success_unix_seconds", &["upstream"]),
            function_present: define(Gauge, "discovered_function", &["upstream", "function"]),
            panics: define(Counter, "discovery_panics", &["upstream"]),
            timer_panics: define(Counter, "discovery_timer_panics", &[]),
            configs: define(Gauge, "discovery_configs", &["upstream"]),
            poller_config: define(Gauge, "discovery_poller_config", &["upstream"]),
        }
    }

    pub fn counter(&self, c: DiscoveryCounter) -> Option<usize> {
        match c {
            DiscoveryCounter::RefreshOk => self.refresh_ok,
            DiscoveryCounter::RefreshFailed => self.refresh_failed,
            DiscoveryCounter::Panics => self.panics,
            DiscoveryCounter::TimerPanics => self.timer_panics,
        }
    }

    pub fn gauge(&self, g: DiscoveryGauge) -> Option<usize> {
        match g {
            DiscoveryGauge::Functions => self.functions,
            DiscoveryGauge::LastSuccess => self.last_success,
            DiscoveryGauge::FunctionPresent => self.function_present,
            DiscoveryGauge::Configs => self.configs,
            DiscoveryGauge::PollerConfig => self.poller_config,
        }
    }
}

/// Metric ids of the credentials stats (labelled by `upstream`, and `reason` or `source`).
#[derive(Debug, Default, Clone, Copy)]
pub struct CredentialMetrics {
    pub refresh_ok: Option<usize>,
    pub refresh_failed: Option<usize>,
    pub expiration: Option<usize>,
    pub source: Option<usize>,
}

impl CredentialMetrics {
    pub fn define(config_envoy_ptr: ConfigEnvoyPtr) -> Self {
        use Kind::{Counter, Gauge};
        let define = |kind, name, labels: &[&str]| define(config_envoy_ptr, kind, name, labels);
        Self {
            refresh_ok: define(Counter, "credentials_refresh_ok", &["upstream"]),
            refresh_failed: define(
                Counter,
                "credentials_refresh_failed",
                &["upstream", "reason"],
            ),
            expiration: define(Gauge, "credentials_expiration_unix_seconds", &["upstream"]),
            source: define(Gauge, "credentials_source", &["upstream", "source"]),
        }
    }

    pub fn id(&self, stat: CredentialsStat) -> Option<usize> {
        match stat {
            CredentialsStat::RefreshOk => self.refresh_ok,
            CredentialsStat::RefreshFailed => self.refresh_failed,
            CredentialsStat::Expiration => self.expiration,
            CredentialsStat::Source => self.source,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Defines a labelled counter or gauge (config_new only); `None` if Envoy refuses.
fn define(
    config_envoy_ptr: ConfigEnvoyPtr,
    kind: Kind,
    name: &str,
    labels: &[&str],
) -> Option<usize> {
    let labels: Vec<Buffer> = labels
        .iter()
        .map(|l| Buffer::from_slice(l.as_bytes()))
        .collect();
    // No labels: a null array, as Envoy's own SDK passes.
    let labels_ptr = if labels.is_empty() {
        std::ptr::null()
    } else {
        labels.as_ptr()
    };
    let mut id = 0usize;
    // SAFETY: `config_envoy_ptr` is live during config_new, the only time metrics can be
    // defined; every buffer outlives the call; `id` is a valid local.
    let rc = unsafe {
        match kind {
            Kind::Gauge => ffi::envoy_dynamic_module_callback_http_filter_config_define_gauge(
                config_envoy_ptr,
                Buffer::from_slice(name.as_bytes()),
                labels_ptr,
                labels.len(),
                &mut id,
            ),
            Kind::Counter => ffi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                config_envoy_ptr,
                Buffer::from_slice(name.as_bytes()),
                labels_ptr,
                labels.len(),
                &mut id,
            ),
            Kind::Histogram => {
                ffi::envoy_dynamic_module_callback_http_filter_config_define_histogram(
                    config_envoy_ptr,
                    Buffer::from_slice(name.as_bytes()),
                    labels_ptr,
                    labels.len(),
                    &mut id,
                )
            }
        }
    };
    if rc == ffi::METRICS_SUCCESS {
        Some(id)
    } else {
        envoy_log(
            ffi::LOG_WARN,
            &format!(
                "envoy-lambda: could not define {} {name} ({rc})",
                kind.word()
            ),
        );
        None
    }
}

/// Adds `n` to a config-level counter from a main-thread hook (discovery, credentials).
pub fn add_config_counter(cfg: ConfigEnvoyPtr, id: usize, labels: &[&str], n: u64) {
    let l = label_buffers(labels);
    // SAFETY: `cfg` is live during the main-thread hook that calls this; `id` was defined on
    // this config with `l.len()` labels (the stat enums' docs list them).
    unsafe {
        ffi::envoy_dynamic_module_callback_http_filter_config_increment_counter(
            cfg,
            id,
            l.as_ptr(),
            l.len(),
            n,
        );
    }
}

/// Sets a config-level gauge from a main-thread hook (discovery, credentials).
pub fn set_config_gauge(cfg: ConfigEnvoyPtr, id: usize, labels: &[&str], value: u64) {
    let l = label_buffers(labels);
    // SAFETY: as in `add_config_counter`.
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

fn label_buffers(values: &[&str]) -> Vec<Buffer> {
    values
        .iter()
        .map(|v| Buffer::from_slice(v.as_bytes()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_stat_ids_follow_all() {
        for (i, stat) in FunctionStat::ALL.into_iter().enumerate() {
            assert_eq!(stat as usize, i, "{stat:?}");
        }
    }
}
