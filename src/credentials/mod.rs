//! AWS credentials: the seed's secret format (parsed per request, cached per secret), and
//! provider-backed identities refreshed in the background.
//!
//! - `secret`, `cache`: the seed's Envoy secret and its parse cache.
//! - `schedule`: when to fetch next (expiry arithmetic, back-off), time as a parameter.
//! - `current`: the credentials an identity signs with now (lock-free for workers) and the
//!   streams waiting for the first ones.
//! - `refresher`: one identity's loop over the [`Fetch`] and [`Clock`] seams.
//! - `providers`: the [`Providers`] seam (the AWS SDK's providers, in a library of their
//!   own), and what crosses to that library.
//! - `registry`: one refresher per distinct identity per process, on one background thread.
//! - `stats`: what refreshers count, published by each config as Envoy stats.
//! - `upstreams`: one config's upstreams → what each signs with now.

mod cache;
mod current;
mod providers;
mod refresher;
mod registry;
mod schedule;
mod secret;
mod stats;
mod upstreams;

pub use current::{CurrentCredentials, Held, Lookup, WaitTicket, WatchTicket};
pub use providers::{ANSWER_TIMEOUT, Providers, read_answer};
pub use refresher::{Clock, Fetch, FetchError, FetchFuture, Fetched, LogFn};
pub use registry::Identity;
pub use secret::{AwsCredentials, CredentialsError};
pub use stats::{
    CredentialsStat, FailureReason, SourceName, StatsSink, StatsSnapshot, publish as publish_stats,
};
pub use upstreams::{ConfigCredentials, Keys, Resolved};

#[cfg(test)]
pub(crate) use current::fake;
