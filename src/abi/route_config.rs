//! The module side of one per-route config: the route's validated target, handed to Envoy as
//! the `per_route_config_module_ptr` and read back per stream through
//! `get_most_specific_route_config`.

use std::sync::Arc;

use super::ffi::PerRouteConfigModulePtr;
use crate::config::RouteTarget;

/// The pointer Envoy keeps for a route (one strong count, released by [`destroy`]).
pub fn into_module_ptr(target: RouteTarget) -> PerRouteConfigModulePtr {
    PerRouteConfigModulePtr::from_raw(Box::into_raw(Box::new(Arc::new(target))).cast())
}

/// The target behind a module pointer; `None` for a route without one (null).
///
/// # Safety
/// `ptr` must be null or come from [`into_module_ptr`] and not be destroyed.
pub unsafe fn target(ptr: PerRouteConfigModulePtr) -> Option<Arc<RouteTarget>> {
    // SAFETY: as the caller guarantees, a non-null `ptr` is a live `Box<Arc<RouteTarget>>`.
    let target = unsafe { ptr.as_raw().cast::<Arc<RouteTarget>>().as_ref() }?;
    Some(Arc::clone(target))
}

/// # Safety
/// `ptr` must be null or come from [`into_module_ptr`], destroyed only this once.
pub unsafe fn destroy(ptr: PerRouteConfigModulePtr) {
    if !ptr.as_raw().is_null() {
        // SAFETY: as the caller guarantees, `ptr` is a live `Box<Arc<RouteTarget>>`, now ours.
        drop(unsafe { Box::from_raw(ptr.as_raw().cast::<Arc<RouteTarget>>().cast_mut()) });
    }
}
