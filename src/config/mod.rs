//! Filter and per-route configuration: raw serde documents, then validated types.
//!
//! The filter config is either the seed's Gloo upstream document as written, or
//! `{"upstreams": [<that document>, …]}` for several upstreams. Envoy hands it over as the bytes
//! of a `google.protobuf.StringValue` (JSON) or as a `google.protobuf.Struct` rendered to JSON.
//!
//! Each document is checked on its own at load. Whether a route's upstream and function exist
//! is answered per request, against the filter config of the listener that serves it
//! (`unresolved` logs such routes once).

mod credentials;
mod discovery;
mod duplicate_keys;
mod error;
mod glob;
mod path_template;
mod raw;
pub(crate) mod unresolved;
mod validated;

pub use credentials::{
    AssumeRole, CredentialSource, CredentialsFrom, DEFAULT_CREDENTIALS_WAIT, ProviderSpec,
};
pub use discovery::DiscoverySettings;
pub use error::ConfigError;
pub use glob::{Glob, NameFilter};
pub use path_template::PathTemplate;
pub use validated::{
    Endpoint, FilterConfig, Function, FunctionRef, FunctionStats, RouteTarget, SecretIndex,
    SecretRef, Upstream,
};
