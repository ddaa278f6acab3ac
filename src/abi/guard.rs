//! The panic boundary: no panic may unwind into Envoy (that would abort the process, or worse).

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::ffi;
use super::log::envoy_log;

/// Runs `f`; if it panics, logs which hook panicked and returns `on_panic()` instead.
pub fn guard<T>(hook: &str, on_panic: impl FnOnce() -> T, f: impl FnOnce() -> T) -> T {
    guard_with(|m| envoy_log(ffi::LOG_ERROR, m), hook, on_panic, f)
}

fn guard_with<T>(
    log: impl FnOnce(&str),
    hook: &str,
    on_panic: impl FnOnce() -> T,
    f: impl FnOnce() -> T,
) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            log(&format!("envoy-lambda: panic in {hook}: {what}"));
            // The fallbacks are constants or one `send_response` call: nothing that can panic.
            on_panic()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_fallback_and_a_log_line() {
        let mut logged = String::new();
        let v = guard_with(
            |m| logged = m.to_owned(),
            "http_filter_request_headers",
            || 1u32,
            || -> u32 { panic!("boom {}", 7) },
        );
        assert_eq!(v, 1);
        assert_eq!(
            logged,
            "envoy-lambda: panic in http_filter_request_headers: boom 7"
        );
    }

    #[test]
    fn no_panic_no_fallback() {
        let v = guard_with(|_| unreachable!(), "h", || 1u32, || 0u32);
        assert_eq!(v, 0);
    }
}
