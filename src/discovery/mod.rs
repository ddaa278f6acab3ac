//! Function discovery: which functions an upstream's account offers, refreshed periodically.
//!
//! Flow, per upstream with `spec.discovery.enabled`:
//!
//! 1. `config::parse_discovery` validates the `discovery` block at config load
//!    ([`DiscoverySettings`](crate::config::DiscoverySettings); config types live in `config`,
//!    which never imports this module).
//! 2. On the main thread, every `refresh_interval`, a `Refresh` decides which Lambda API
//!    request to send next (`ApiRequest`: `ListFunctions` pages following `NextMarker`, then
//!    optionally `ListAliases` / `ListVersionsByFunction` per included function) and digests each
//!    reply. The ABI layer signs each GET with the upstream's credentials and sends it through an
//!    Envoy config-level HTTP callout; nothing here does I/O or reads the clock.
//! 3. A completed refresh yields a `DiscoveredSet` (`name`, `name:alias`, `name:version`,
//!    sorted) that is swapped into the upstream's `FunctionTable`. Workers read the table on
//!    every request without a lock: not ready yet → 503, absent → 404.
//! 4. A failed refresh changes nothing in the table (the previous good set stays in use); the
//!    next attempt follows `Backoff`, and warnings are paced by `LogRateLimiter`.
//!
//! `UpstreamDiscovery` strings 2–4 together for one upstream. It lives in the process-wide
//! `Registry`, one per `DiscoveryKey`, shared by every filter config with that upstream:
//! the newest config polls, older ones (draining listeners) read the same table, and a new
//! config starts with the last good list. `ConfigDiscovery` is one config's side of it
//! (join, hook steps under `catch_unwind`, stats, leave) over `DiscoveryIo`; one timer
//! thread per process (`Global`, restarted by `supervise` after a panic) wakes pollers.

mod backoff;
mod callout;
mod driver;
mod lambda_api;
mod refresh;
mod registry;
mod runtime;
mod set;
mod supervise;
mod table;

pub(crate) use lambda_api::ApiRequest;
pub use lambda_api::{
    AliasSummary, FunctionSummary, Page, PageError, VersionSummary, parse_aliases_page,
    parse_functions_page, parse_versions_page,
};
pub(crate) use registry::{Wake, global};
pub(crate) use runtime::{
    CalloutReply, ConfigDiscovery, DiscoveryCounter, DiscoveryGauge, DiscoveryIo,
};
#[cfg(test)] // the filter's tests build sets by hand
pub(crate) use set::DiscoveredSet;
pub(crate) use table::{FunctionTable, Lookup};
