//! Filter and per-route configuration: raw serde documents, then validated types.
//!
//! The filter config is either the seed's Gloo upstream document as written, or
//! `{"upstreams": [<that document>, …]}` for several upstreams. Envoy hands it over as the bytes
//! of a `google.protobuf.StringValue` (JSON) or as a `google.protobuf.Struct` rendered to JSON.

mod path_template;
mod raw;
pub mod route_registry;
mod validated;

pub use path_template::PathTemplate;
pub use validated::{
    ConfigError, Endpoint, FilterConfig, Function, FunctionRef, RouteTarget, SecretRef, Upstream,
};
