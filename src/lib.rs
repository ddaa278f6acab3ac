//! envoy-lambda: an Envoy dynamic module (HTTP filter) that turns routed HTTP requests into
//! SigV4-signed AWS Lambda `Invoke` calls.
//!
//! Layering (only `abi` may use `unsafe`):
//! - [`abi`]: raw Envoy 1.40 ABI declarations, the exported hooks and the Envoy-backed [`host::Host`].
//! - [`host`]: the narrow interface the filter logic needs from Envoy, with a fake for tests.
//! - [`config`]: raw serde documents (shaped after the Gloo AWS upstream) → validated config.
//! - [`lambda`]: Lambda naming rules and the Invoke request shape.
//! - [`sigv4`]: incremental payload hashing and the SigV4 signer (Invokes and listings alike).
//! - [`credentials`]: the seed's secret format, parsed without ever echoing secret bytes.
//! - [`discovery`]: which functions an upstream's account offers, listed through signed Lambda
//!   API GETs and refreshed periodically.
//! - [`filter`]: the per-stream state machine (headers → body → sign → continue).
//! - `clock`: the timestamp formats AWS wants, without a date library.

pub(crate) mod abi;
mod clock;
pub mod config;
pub mod credentials;
pub mod discovery;
mod field_path;
pub mod filter;
pub mod host;
pub mod lambda;
pub mod sigv4;
