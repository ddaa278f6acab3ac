//! Filter and per-route configuration: raw serde documents, then validated types.
//!
//! The filter config is either the seed's Gloo upstream document as written, or
//! `{"upstreams": [<that document>, …]}` for several upstreams. Envoy hands it over as the bytes
//! of a `google.protobuf.StringValue` (JSON) or as a `google.protobuf.Struct` rendered to JSON.

mod raw;
pub mod route_registry;
mod validated;

pub use validated::{
    ConfigError, Endpoint, FilterConfig, Function, RouteTarget, SecretRef, Upstream,
};
