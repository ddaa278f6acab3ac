//! Envoy's logger (component `dynamic_modules`).

use super::ffi;

/// Logs `message` at `level` if Envoy would show it (the check avoids formatting costs upstream).
pub fn envoy_log(level: u32, message: &str) {
    // SAFETY: both callbacks take plain values; `message` outlives the call, which copies it.
    unsafe {
        if ffi::envoy_dynamic_module_callback_log_enabled(level) {
            ffi::envoy_dynamic_module_callback_log(
                level,
                ffi::Buffer::from_slice(message.as_bytes()),
            );
        }
    }
}
