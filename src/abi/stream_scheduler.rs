//! A stream's Envoy scheduler, as background work wakes the stream: the credentials
//! refresher commits an event when the first credentials arrive (or a wait times out), and
//! `on_http_filter_scheduled` then runs on the stream's worker.
//!
//! Lifetime: created on first use inside a stream hook, owned by the stream's handle, deleted
//! when the last `Arc` goes. Wakers are held only by the waiters' list, which a stream leaves
//! (under the list's lock, the one wakes happen under) when its filter is dropped, before the
//! handle drops its own `Arc`; so no commit reaches a deleted scheduler. A commit that races
//! with the stream's end is harmless: Envoy's scheduler holds the filter weakly and drops the
//! event once the stream is gone.

use super::ffi::{self, FilterEnvoyPtr, FilterSchedulerEnvoyPtr};
use crate::wake::Wake;

pub struct StreamScheduler(FilterSchedulerEnvoyPtr);

// SAFETY: Envoy documents `http_filter_scheduler_commit` as callable from any thread; the
// pointer is never mutated, and deleted only in `Drop`, when no thread can hold it any more.
unsafe impl Send for StreamScheduler {}
// SAFETY: as above.
unsafe impl Sync for StreamScheduler {}

impl StreamScheduler {
    /// # Safety
    /// `filter_envoy_ptr` must be the live stream pointer of the running stream hook.
    pub unsafe fn new(filter_envoy_ptr: FilterEnvoyPtr) -> Option<Self> {
        // SAFETY: as the caller guarantees, the stream is live during this hook.
        let raw = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_scheduler_new(filter_envoy_ptr)
        };
        (!raw.is_null()).then_some(Self(raw))
    }
}

impl Wake for StreamScheduler {
    fn wake(&self, event: u64) {
        // SAFETY: the scheduler is live until `Drop`, which cannot run while `&self` exists.
        unsafe { ffi::envoy_dynamic_module_callback_http_filter_scheduler_commit(self.0, event) }
    }
}

impl Drop for StreamScheduler {
    fn drop(&mut self) {
        // SAFETY: created by `scheduler_new`, deleted once, here.
        unsafe { ffi::envoy_dynamic_module_callback_http_filter_scheduler_delete(self.0) }
    }
}
