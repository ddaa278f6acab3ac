//! The documents exactly as users write them. Unknown fields are errors, so typos are caught.

use serde::Deserialize;

use crate::lambda::{InvocationType, InvokeMode, LogType, RequestFormat, ResponseFormat};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilterConfig {
    pub upstreams: Vec<RawUpstream>,
}

/// Gloo's AWS upstream: `{name, type: aws, spec: {region, secret_ref}, functions: [...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub spec: RawAwsSpec,
    #[serde(default)]
    pub functions: Vec<RawFunction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAwsSpec {
    pub region: String,
    /// The seed's Envoy secret; without it, `credentials` names an AWS provider.
    #[serde(default)]
    pub secret_ref: Option<String>,
    // Provider-backed credentials (`config::credentials` validates them).
    #[serde(default)]
    pub credentials: Option<serde_json::Value>,
    #[serde(default)]
    pub assume_role: Option<serde_json::Value>,
    #[serde(default)]
    pub credentials_wait: Option<serde_json::Value>,
    /// Where the Lambda API is reached (a local peer, a VPC endpoint); AWS by default.
    #[serde(default)]
    pub endpoint: Option<RawEndpoint>,
    /// An Envoy `ConfigSource` for the secret (SDS); absent means a static bootstrap secret.
    #[serde(default)]
    pub secret_source: Option<serde_json::Value>,
    /// Function discovery (`config::discovery::parse_discovery` validates it).
    #[serde(default)]
    pub discovery: Option<serde_json::Value>,
    // Invocation defaults for every route to this upstream (see `lambda::InvokeOptions`).
    #[serde(default)]
    pub invocation_type: Option<InvocationType>,
    #[serde(default)]
    pub log_type: Option<LogType>,
    #[serde(default)]
    pub client_context: Option<serde_json::Value>,
    #[serde(default)]
    pub request_format: Option<RequestFormat>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub invoke_mode: Option<InvokeMode>,
    /// Show AWS's (redacted) error message to clients: for gateways whose clients are internal.
    #[serde(default)]
    pub expose_aws_error_message: bool,
    /// Per-function stats: `per_function` (default), `per_upstream` or `off`.
    #[serde(default)]
    pub function_stats: Option<super::FunctionStats>,
    /// Send an `X-Amzn-Trace-Id` derived from `traceparent` (or Envoy's request id).
    #[serde(default)]
    pub trace_propagation: bool,
    /// Set the `envoy_lambda` access-log metadata keys (default true).
    #[serde(default)]
    pub access_log_metadata: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEndpoint {
    #[serde(default)]
    pub scheme: Option<String>,
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunction {
    pub name: String,
    pub spec: RawFunctionSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunctionSpec {
    pub function_name: String,
    #[serde(default)]
    pub qualifier: String,
    /// This function's `invoke_mode` (a route's own still wins).
    #[serde(default)]
    pub invoke_mode: Option<InvokeMode>,
}

/// Per-route: which upstream and which of its functions this route invokes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouteTarget {
    pub upstream: String,
    /// A function of the upstream by name …
    #[serde(default)]
    pub function: Option<String>,
    /// … or taken from the request path (`/lambda/{function}`).
    #[serde(default)]
    pub path_template: Option<String>,
    // Overrides of the upstream's invocation defaults for this route. (The same six fields as
    // in `RawAwsSpec`: serde's `flatten` would lose `deny_unknown_fields`, which matters more.)
    #[serde(default)]
    pub invocation_type: Option<InvocationType>,
    #[serde(default)]
    pub log_type: Option<LogType>,
    #[serde(default)]
    pub client_context: Option<serde_json::Value>,
    #[serde(default)]
    pub request_format: Option<RequestFormat>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub invoke_mode: Option<InvokeMode>,
}
