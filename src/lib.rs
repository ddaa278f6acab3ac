//! envoy-lambda: an Envoy dynamic module (HTTP filter) that turns routed HTTP requests into
//! SigV4-signed AWS Lambda `Invoke` calls.
//!
//! **Map for a newcomer.** Envoy loads the cdylib and calls the `envoy_dynamic_module_on_*`
//! hooks in `abi::hooks`, the only place with `unsafe` (every block has a `// SAFETY:`
//! line; `abi::envoy_host` implements [`host::Host`] over Envoy's callbacks). At config load
//! [`config`] turns the filter's JSON into a validated [`config::FilterConfig`] (upstreams,
//! functions, their [`config::DiscoverySettings`]); a rejection names the field. A request
//! then flows top-down: hooks → [`filter`]`::LambdaFilter` (one per stream, see
//! `filter/stream/request.rs`), which resolves the route's function (configured, or found by
//! discovery), hashes the body chunk by chunk ([`sigv4::PayloadHasher`]) or wraps it into an
//! API Gateway/ALB event ([`lambda::events`]), rewrites the request into the `Invoke` call of
//! [`lambda`] and signs it with the one signer of [`sigv4`], using keys parsed from the
//! Envoy secret by [`credentials`]. On the way back (`filter/stream/response.rs`) function
//! errors become 502, Lambda API errors are mapped ([`lambda::api_error`], AWS's text read
//! and redacted by [`lambda::aws_error`]) and `unwrap` turns a function's result into the HTTP
//! response it describes ([`lambda::unwrap`]). The background work lives in [`discovery`]:
//! one timer thread per process wakes each upstream's poller on Envoy's main thread, which
//! sends signed Lambda API listings through Envoy callouts (`abi::discovery`) and swaps the
//! result into a lock-free table that workers read per request; every loop turn runs under
//! `catch_unwind` (`discovery::supervise`). Everything outside `abi` is safe Rust, unit-tested
//! without Envoy through the fake [`host::Host`].
//!
//! Layering (each module uses only those below it; no cycles, checked over `use crate::…`):
//! - `abi` (crate-private): the Envoy 1.40 ABI, exported hooks, Envoy-backed hosts. Uses
//!   `filter`, `discovery`, `counter_batch`, `config`, `host`.
//! - [`filter`]: the per-stream state machine. Uses `discovery`, `host`, `config`, `sigv4`,
//!   `credentials`, `lambda`.
//! - [`discovery`]: which functions an upstream's account offers, listed through signed
//!   Lambda API GETs and refreshed periodically. Uses `config`, `host` (its log levels),
//!   `sigv4`, `credentials`, `lambda`.
//! - [`host`]: the narrow interface the filter needs from Envoy, with a fake for tests. Uses
//!   `config`.
//! - [`config`]: raw serde documents (shaped after the Gloo AWS upstream) → validated config,
//!   the discovery block included. Uses `lambda`.
//! - [`sigv4`]: incremental payload hashing and the staged SigV4 signer. Uses `lambda`,
//!   `credentials`, `clock`.
//! - [`lambda`]: Lambda naming rules (function names, qualifiers, regions), the Invoke
//!   request, events, and reading responses and AWS errors. Uses `clock`.
//! - `counter_batch`: per-function counters summed in the module, and the process's one
//!   thread that has each config's main thread publish them once a period. Uses `host` (the
//!   stat names), `wake`.
//! - [`credentials`]: the seed's secret format, parsed without ever echoing secret bytes.
//! - `clock`: the timestamp formats AWS wants, without a date library; `field_path`: serde
//!   errors with the path of the failing field; `http_field`: RFC 9110 token syntax (used by
//!   `sigv4` and `lambda`).

pub(crate) mod abi;
mod clock;
pub mod config;
pub(crate) mod counter_batch;
pub mod credentials;
pub mod discovery;
mod field_path;
pub mod filter;
pub mod host;
mod http_field;
pub mod lambda;
mod panic_message;
pub mod sigv4;
pub(crate) mod wake;
