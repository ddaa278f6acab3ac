//! The Envoy 1.40 dynamic-module ABI: the only place with `unsafe`.
//!
//! - [`ffi`]: raw `extern "C"` declarations of the callbacks we import, the C types and the
//!   pointer kinds (one newtype each).
//! - [`hooks`]: the `envoy_dynamic_module_on_*` functions we export (see `include/`), each one
//!   `guard` call plus pointer conversion.
//! - `config_handle`: what a filter config is on the module side (built in config_new:
//!   validated config, secret subscriptions, metric ids, discovery).
//! - `stream_handle`: what a stream is on the module side, and the stream hooks' panic boundary.
//! - `envoy_host`: [`crate::host::Host`] over the raw callbacks for one stream.
//! - `stream_scheduler`: a stream's Envoy scheduler, how background work resumes a stream.
//! - `config_scheduler`: a config's Envoy scheduler, how background threads reach the main
//!   thread (credential stats, the per-function counter flush).
//! - `credentials_library`: loads the AWS SDK credentials library (`crates/credentials-sdk`)
//!   next to the module when a config names a provider, and fetches through its C functions.
//! - `credentials_stats`: publishes the credential refreshers' stats (config scheduler).
//! - `discovery`: function discovery's Envoy side (scheduler, callouts, config metrics).
//! - `route_config`: what a per-route config is on the module side.
//! - `metrics`: counter and gauge definition (config_new only).
//! - `envoy_buffer`: Envoy-owned bytes bound to a borrow (the only `from_raw_parts`).
//! - `guard`: the panic boundary every hook goes through; `log`: Envoy's logger.
//! - `call_count`: hook, ABI-call and body-slice counts for benchmarks (feature
//!   `abi-counters`; empty without it).
//!
//! Dependencies inside `abi/` point one way, from the hooks down to the raw declarations
//! (`grep -n "use super::" src/abi/*.rs`); no module uses one above it:
//!
//! ```text
//! hooks          -> stream_handle, config_handle, route_config, envoy_buffer, guard, log, ffi
//! stream_handle  -> envoy_host, stream_scheduler, config_handle, guard, call_count, ffi
//! envoy_host     -> config_handle, route_config, stream_scheduler, envoy_buffer, log, call_count, ffi
//! stream_scheduler -> ffi
//! config_handle  -> credentials_stats, discovery, config_scheduler, metrics, log, ffi
//! credentials_stats -> config_scheduler, metrics, log, ffi
//! config_scheduler -> ffi
//! discovery      -> metrics, envoy_buffer, log, ffi
//! metrics        -> log, ffi
//! route_config   -> ffi
//! envoy_buffer   -> ffi
//! guard          -> log, ffi
//! log            -> ffi
//! call_count     (nothing)
//! ffi            (nothing)
//! ```
//!
//! Facts about this ABI that were verified against the real binary are in `docs/abi-notes.md`.
#![allow(unsafe_code)]

mod call_count;
mod config_handle;
mod config_scheduler;
mod credentials_library;
mod credentials_stats;
mod discovery;
mod envoy_buffer;
mod envoy_host;
pub mod ffi;
mod guard;
pub mod hooks;
mod log;
mod metrics;
mod route_config;
mod stream_handle;
mod stream_scheduler;
