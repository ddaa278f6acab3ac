//! The AWS SDK for Rust's credential providers, for envoy-lambda, as a library of their own.
//!
//! The module (`libenvoy_lambda.so`) loads this library (`libenvoy_lambda_credentials_sdk.so`,
//! next to it) the first time a filter config names a credential provider; a config that
//! signs with Envoy secrets never maps it. The interface is C, described in
//! `envoy_lambda_credentials_wire`.
//!
//! - `providers`: one fetch of a [`FetchRequest`] through the SDK's providers.
//! - `background`: the library's one thread (a tokio current-thread runtime) that runs the
//!   fetches, started on the first fetch and stopped by the module.
//! - `abi`: the exported C functions, the only `unsafe`.
//!
//! [`FetchRequest`]: envoy_lambda_credentials_wire::FetchRequest

mod abi;
pub mod background;
pub mod providers;
