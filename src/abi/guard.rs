//! The panic boundary: no panic may unwind into Envoy (that would abort the process, or worse).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::ffi;
use super::log::envoy_log;

/// Runs `f`; if it panics, logs which hook panicked and returns `on_panic` instead.
pub fn guard<T>(hook: &str, on_panic: impl FnOnce() -> T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            envoy_log(ffi::LOG_ERROR, &format!("envoy-lambda: panic in {hook}: {what}"));
            // The fallbacks are constants or one `send_response` call: nothing that can panic.
            on_panic()
        }
    }
}
