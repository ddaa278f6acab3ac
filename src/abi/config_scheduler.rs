//! A filter config's Envoy scheduler as a background thread wakes it: its events run on
//! Envoy's main thread (`on_http_filter_config_scheduled`). Deleted with the last `Arc`.

use std::sync::Arc;

use super::ffi::{self, ConfigEnvoyPtr, ConfigSchedulerEnvoyPtr};
use crate::wake::Wake;

pub struct ConfigScheduler(ConfigSchedulerEnvoyPtr);

// SAFETY: Envoy documents `config_scheduler_commit` as callable from any thread; the pointer
// is deleted only in `Drop`, once no thread holds it.
unsafe impl Send for ConfigScheduler {}
// SAFETY: as above.
unsafe impl Sync for ConfigScheduler {}

impl ConfigScheduler {
    /// A new scheduler of the config (config_new, main thread); `None` if Envoy gives none.
    pub fn new(config_envoy_ptr: ConfigEnvoyPtr) -> Option<Arc<Self>> {
        // SAFETY: `config_envoy_ptr` is live during config_new, where this runs.
        let raw = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_new(config_envoy_ptr)
        };
        (!raw.is_null()).then(|| Arc::new(Self(raw)))
    }
}

impl Wake for ConfigScheduler {
    fn wake(&self, event: u64) {
        // SAFETY: live until `Drop`, which cannot run while `&self` exists.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_commit(self.0, event)
        }
    }
}

impl Drop for ConfigScheduler {
    fn drop(&mut self) {
        // SAFETY: created by `config_scheduler_new`, deleted once, here.
        unsafe { ffi::envoy_dynamic_module_callback_http_filter_config_scheduler_delete(self.0) }
    }
}
