//! The module side of one stream: what `http_filter_new` hands to Envoy as the
//! `filter_module_ptr`, and [`with_stream`], the panic boundary of the stream hooks that run
//! filter code.

use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

use super::call_count;
use super::config_handle::ConfigHandle;
use super::envoy_host::EnvoyHost;
use super::ffi::{FilterEnvoyPtr, FilterModulePtr};
use super::guard::guard;
use super::stream_scheduler::StreamScheduler;
use crate::filter::{LambdaFilter, LocalReply};
use crate::host::{Counter, Host};

/// One per stream. `RefCell` turns an unexpected re-entrant hook call into a refused borrow
/// instead of two `&mut` to the same filter.
pub struct StreamHandle {
    config: Arc<ConfigHandle>,
    // Dropped before `scheduler` (declaration order): the filter leaves any waiters' list
    // first, so nothing can commit to the scheduler once it is deleted.
    filter: RefCell<LambdaFilter>,
    /// Created on first use (a request waiting for credentials).
    scheduler: OnceCell<Arc<StreamScheduler>>,
}

impl StreamHandle {
    /// The pointer Envoy keeps for a new stream of `config`.
    pub fn new_module_ptr(config: Arc<ConfigHandle>) -> FilterModulePtr {
        call_count::note("streams_created");
        let filter = RefCell::new(LambdaFilter::new(Arc::clone(&config.shared)));
        let handle = StreamHandle {
            config,
            filter,
            scheduler: OnceCell::new(),
        };
        FilterModulePtr::from_raw(Box::into_raw(Box::new(handle)).cast())
    }

    /// Bound to the borrow of the pointer, that is to the hook that received it.
    ///
    /// # Safety
    /// `ptr` must come from [`Self::new_module_ptr`] and not be destroyed while borrowed.
    unsafe fn from_module_ptr(ptr: &FilterModulePtr) -> &StreamHandle {
        // SAFETY: as the caller guarantees, `ptr` is a live `Box<StreamHandle>`.
        unsafe { &*ptr.as_raw().cast::<StreamHandle>() }
    }

    /// # Safety
    /// `ptr` must be null or come from [`Self::new_module_ptr`], destroyed only this once.
    pub unsafe fn destroy(ptr: FilterModulePtr) {
        let raw = ptr.as_raw().cast::<StreamHandle>().cast_mut();
        if !raw.is_null() {
            // SAFETY: as the caller guarantees, `raw` is a live `Box<StreamHandle>`, now ours.
            drop(unsafe { Box::from_raw(raw) });
        }
        call_count::stream_done();
    }
}

/// Runs `f` on the stream's filter with an Envoy host. On a panic the client gets a JSON 500
/// and `on_panic` is returned, so Envoy stops iterating instead of forwarding a half-edit.
///
/// The pointers must be the ones Envoy passed to the running stream hook.
pub fn with_stream<T: Copy>(
    hook: &'static str,
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    idle: T,
    on_panic: T,
    f: impl FnOnce(&mut LambdaFilter, &mut EnvoyHost<'_>) -> T,
) -> T {
    guard(
        hook,
        || {
            // SAFETY: Envoy passes the stream it got from http_filter_new, still alive.
            let stream = unsafe { StreamHandle::from_module_ptr(&filter_module_ptr) };
            // SAFETY: `filter_envoy_ptr` is live during this hook.
            let mut host = unsafe { EnvoyHost::new(filter_envoy_ptr, &stream.config) };
            let reply = LocalReply::new(
                500,
                "internal_error",
                format!("envoy-lambda failed in {hook}"),
            );
            host.increment(Counter::LocalRejections);
            host.send_local_reply(
                500,
                &[("content-type", "application/json")],
                &reply.json_body(),
                &reply.details(),
            );
            on_panic
        },
        || {
            call_count::note(hook);
            // SAFETY: Envoy passes the stream it got from http_filter_new, still alive.
            let stream = unsafe { StreamHandle::from_module_ptr(&filter_module_ptr) };
            let Ok(mut filter) = stream.filter.try_borrow_mut() else {
                return idle; // re-entered from inside one of our own callbacks
            };
            // SAFETY: `filter_envoy_ptr` is live during this hook.
            let mut host = unsafe { EnvoyHost::new(filter_envoy_ptr, &stream.config) }
                .with_scheduler(&stream.scheduler);
            f(&mut filter, &mut host)
        },
    )
}
