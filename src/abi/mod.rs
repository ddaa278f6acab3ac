//! The Envoy 1.40 dynamic-module ABI: the only place with `unsafe`.
//!
//! - [`ffi`]: raw `extern "C"` declarations of the callbacks we import, and the C types.
//! - [`hooks`]: the `envoy_dynamic_module_on_*` functions we export (see `include/`).
//! - [`envoy_host`]: [`crate::host::Host`] over the raw callbacks for one stream.
//! - [`guard`]: the panic boundary every hook goes through.
//!
//! Facts about this ABI that were verified against the real binary are in `docs/abi-notes.md`.
#![allow(unsafe_code)]

mod discovery;
mod envoy_host;
pub mod ffi;
mod guard;
pub mod hooks;
mod log;
