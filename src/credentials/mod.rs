//! AWS credentials: the seed's secret format (parsed per request, cached per secret), and
//! provider-backed identities refreshed in the background.
//!
//! - `secret`, `cache`: the seed's Envoy secret and its parse cache.
//! - `schedule`: when to fetch next (expiry arithmetic, back-off), time as a parameter.
//! - `current`: the credentials an identity signs with now (lock-free for workers) and the
//!   streams waiting for the first ones.
//! - `refresher`: one identity's loop over the [`Fetch`] and [`Clock`] seams.
//! - `sdk_provider`: [`Fetch`] over the AWS SDK's providers (`aws-config`).
//! - `registry`: one refresher per distinct identity per process, on one background thread.
//! - `stats`: what refreshers count, published by each config as Envoy stats.
//! - `upstreams`: one config's upstreams → what each signs with now.

mod cache;
mod current;
mod refresher;
mod registry;
mod schedule;
mod sdk_provider;
mod secret;
mod stats;
mod upstreams;

pub use current::{CurrentCredentials, Held, Lookup, WaitTicket, WatchTicket};
pub use refresher::{Clock, Fetch, FetchError, FetchFuture, Fetched, LogFn};
pub use registry::Identity;
pub use secret::{AwsCredentials, CredentialsError};
pub use stats::{
    CredentialsStat, FailureReason, SourceName, StatsSink, StatsSnapshot, publish as publish_stats,
};
pub use upstreams::{ConfigCredentials, Keys, Resolved};

#[cfg(test)]
pub(crate) use current::fake;
