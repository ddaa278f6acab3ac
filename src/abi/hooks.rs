//! The hooks Envoy calls (`envoy_dynamic_module_on_*`). Each one is a single `guard` call that
//! converts raw pointers and hands over to safe code; `include/envoy_lambda.h` is generated
//! from this file by cbindgen.
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "C entry points: Envoy is the only caller, and the ABI guarantees the pointers it passes"
)]

use std::ffi::c_char;
use std::sync::Arc;

use super::config_handle::ConfigHandle;
use super::envoy_buffer::{EnvoyBuffer, HookCall, slice_or_empty};
use super::ffi::{
    self, Buffer, ConfigEnvoyPtr, ConfigModulePtr, FilterEnvoyPtr, FilterModulePtr, HttpHeader,
    PerRouteConfigModulePtr,
};
use super::guard::guard;
use super::log::envoy_log;
use super::route_config;
use super::stream_handle::{StreamHandle, with_stream};
use crate::config::RouteTarget;
use crate::filter::{BodyStatus, HeadersStatus, TrailersStatus};

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    ffi::ABI_VERSION.as_ptr().cast()
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy_ptr: ConfigEnvoyPtr,
    name: Buffer,
    config: Buffer,
) -> ConfigModulePtr {
    guard(
        "http_filter_config_new",
        || ConfigModulePtr::NULL,
        || {
            let call = HookCall::new();
            // SAFETY: Envoy passes buffers valid for the duration of this call.
            let (name, config) = unsafe {
                (
                    EnvoyBuffer::new(&call, name).as_slice(),
                    EnvoyBuffer::new(&call, config).as_slice(),
                )
            };
            match ConfigHandle::new(config_envoy_ptr, config) {
                Ok(handle) => handle.into_module_ptr(),
                Err(message) => {
                    envoy_log(
                        ffi::LOG_ERROR,
                        &format!(
                            "envoy-lambda: invalid filter config '{}': {message}",
                            String::from_utf8_lossy(name)
                        ),
                    );
                    ConfigModulePtr::NULL
                }
            }
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    config_envoy_ptr: ConfigEnvoyPtr,
    config_module_ptr: ConfigModulePtr,
    event_id: u64,
) {
    guard(
        "http_filter_config_scheduled",
        || (),
        || {
            // SAFETY: Envoy passes the config it got from config_new, still alive.
            let config = unsafe { ConfigHandle::from_module_ptr(&config_module_ptr) };
            config.on_scheduled(config_envoy_ptr, event_id);
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    config_envoy_ptr: ConfigEnvoyPtr,
    config_module_ptr: ConfigModulePtr,
    callout_id: u64,
    result: u32,
    headers: *const HttpHeader,
    headers_len: usize,
    chunks: *const Buffer,
    chunks_len: usize,
) {
    guard(
        "http_filter_config_http_callout_done",
        || (),
        || {
            // SAFETY: Envoy passes the config it got from config_new, still alive.
            let config = unsafe { ConfigHandle::from_module_ptr(&config_module_ptr) };
            let call = HookCall::new();
            // SAFETY: Envoy passes `headers_len` headers and `chunks_len` chunks (or null pointers
            // with zero lengths), valid for the duration of this hook.
            let (headers, chunks) = unsafe {
                (
                    slice_or_empty(&call, headers, headers_len),
                    slice_or_empty(&call, chunks, chunks_len),
                )
            };
            config.on_callout_done(config_envoy_ptr, callout_id, result, headers, chunks);
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(
    config_module_ptr: ConfigModulePtr,
) {
    guard(
        "http_filter_config_destroy",
        || (),
        || {
            // SAFETY: Envoy destroys each config it got from config_new exactly once.
            unsafe { ConfigHandle::destroy(config_module_ptr) }
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    name: Buffer,
    config: Buffer,
) -> PerRouteConfigModulePtr {
    guard(
        "http_filter_per_route_config_new",
        || PerRouteConfigModulePtr::NULL,
        || {
            let call = HookCall::new();
            // SAFETY: Envoy passes buffers valid for the duration of this call.
            let (name, config) = unsafe {
                (
                    EnvoyBuffer::new(&call, name).as_slice(),
                    EnvoyBuffer::new(&call, config).as_slice(),
                )
            };
            // Only the route's own document can be checked here: the hook does not say which
            // filter config will serve the route.
            match RouteTarget::from_json(config) {
                Ok(target) => route_config::into_module_ptr(target),
                Err(e) => {
                    envoy_log(
                        ffi::LOG_ERROR,
                        &format!(
                            "envoy-lambda: invalid per-route config '{}': {e}",
                            String::from_utf8_lossy(name)
                        ),
                    );
                    PerRouteConfigModulePtr::NULL
                }
            }
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    per_route_config_module_ptr: PerRouteConfigModulePtr,
) {
    guard(
        "http_filter_per_route_config_destroy",
        || (),
        || {
            // SAFETY: Envoy destroys each per-route config it got from us exactly once.
            unsafe { route_config::destroy(per_route_config_module_ptr) }
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config_module_ptr: ConfigModulePtr,
    _filter_envoy_ptr: FilterEnvoyPtr,
) -> FilterModulePtr {
    guard(
        "http_filter_new",
        || FilterModulePtr::NULL,
        || {
            // SAFETY: Envoy passes the config it got from config_new; it outlives its streams.
            let config = unsafe { ConfigHandle::from_module_ptr(&config_module_ptr) };
            StreamHandle::new_module_ptr(Arc::clone(config))
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter_module_ptr: FilterModulePtr) {
    guard(
        "http_filter_destroy",
        || (),
        || {
            // SAFETY: Envoy destroys each stream it got from http_filter_new exactly once.
            unsafe { StreamHandle::destroy(filter_module_ptr) }
        },
    )
}

fn headers_status(s: HeadersStatus) -> u32 {
    match s {
        HeadersStatus::Continue => ffi::HEADERS_CONTINUE,
        HeadersStatus::StopIteration => ffi::HEADERS_STOP_ITERATION,
    }
}

fn body_status(s: BodyStatus) -> u32 {
    match s {
        BodyStatus::Continue => ffi::BODY_CONTINUE,
        BodyStatus::StopIterationAndBuffer => ffi::BODY_STOP_ITERATION_AND_BUFFER,
        BodyStatus::StopIterationNoBuffer => ffi::BODY_STOP_ITERATION_NO_BUFFER,
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    with_stream(
        "http_filter_request_headers",
        filter_envoy_ptr,
        filter_module_ptr,
        ffi::HEADERS_CONTINUE,
        ffi::HEADERS_STOP_ITERATION,
        |f, host| headers_status(f.on_request_headers(host, end_of_stream)),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    with_stream(
        "http_filter_request_body",
        filter_envoy_ptr,
        filter_module_ptr,
        ffi::BODY_CONTINUE,
        ffi::BODY_STOP_ITERATION_NO_BUFFER,
        |f, host| body_status(f.on_request_body(host, end_of_stream)),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
) -> u32 {
    with_stream(
        "http_filter_request_trailers",
        filter_envoy_ptr,
        filter_module_ptr,
        ffi::TRAILERS_CONTINUE,
        ffi::TRAILERS_STOP_ITERATION,
        |f, host| match f.on_request_trailers(host) {
            TrailersStatus::Continue => ffi::TRAILERS_CONTINUE,
            TrailersStatus::StopIteration => ffi::TRAILERS_STOP_ITERATION,
        },
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    with_stream(
        "http_filter_response_headers",
        filter_envoy_ptr,
        filter_module_ptr,
        ffi::HEADERS_CONTINUE,
        ffi::HEADERS_STOP_ITERATION,
        |f, host| headers_status(f.on_response_headers(host, end_of_stream)),
    )
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    end_of_stream: bool,
) -> u32 {
    with_stream(
        "http_filter_response_body",
        filter_envoy_ptr,
        filter_module_ptr,
        ffi::BODY_CONTINUE,
        ffi::BODY_STOP_ITERATION_NO_BUFFER,
        |f, host| body_status(f.on_response_body(host, end_of_stream)),
    )
}

/// A stream's scheduler event (its worker): the credentials it waited for, or its deadline.
#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    event_id: u64,
) {
    with_stream(
        "http_filter_scheduled",
        filter_envoy_ptr,
        filter_module_ptr,
        (),
        (),
        |f, host| f.on_scheduled(host, event_id),
    )
}

// The hooks below are mandatory in the 1.40 ABI but have nothing to do for this filter.

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) -> u32 {
    ffi::TRAILERS_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _callout_id: u64,
    _result: u32,
    _headers: *const HttpHeader,
    _headers_len: usize,
    _chunks: *const Buffer,
    _chunks_len: usize,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _headers: *const HttpHeader,
    _headers_len: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _chunks: *const Buffer,
    _chunks_len: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _trailers: *const HttpHeader,
    _trailers_len: usize,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}
