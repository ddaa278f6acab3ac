//! The hooks Envoy calls (`envoy_dynamic_module_on_*`). Each one is a single `guard` call that
//! converts raw pointers and hands over to safe code; `include/envoy_lambda.h` is generated
//! from this file by cbindgen.
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "C entry points: Envoy is the only caller, and the ABI guarantees the pointers it passes"
)]

use std::cell::RefCell;
use std::ffi::c_char;
use std::sync::Arc;

use super::discovery::{DiscoveryMetrics, DiscoveryRuntime};
use super::envoy_host::EnvoyHost;
use super::ffi::{
    self, Buffer, ConfigEnvoyPtr, ConfigModulePtr, FilterEnvoyPtr, FilterModulePtr, HttpHeader,
    PerRouteConfigModulePtr,
};
use super::guard::guard;
use super::log::envoy_log;
use crate::config::{FilterConfig, RouteTarget};
use crate::filter::{
    BodyStatus, HeadersStatus, LambdaFilter, LocalReply, SharedConfig, TrailersStatus,
};
use crate::host::{Counter, Host};

/// What `http_filter_config_new` returns to Envoy: the shared config plus Envoy-side ids.
pub struct ConfigHandle {
    pub shared: Arc<SharedConfig>,
    /// One generic-secret subscription handle per `config.secrets()` entry.
    pub secret_handles: Vec<u64>,
    counter_ids: Vec<(Counter, usize)>,
    /// Main-thread discovery, when an upstream enables it (never in `--mode validate`).
    discovery: Option<DiscoveryRuntime>,
}

impl ConfigHandle {
    pub fn counter_id(&self, counter: Counter) -> Option<usize> {
        self.counter_ids
            .iter()
            .find(|(c, _)| *c == counter)
            .map(|(_, id)| *id)
    }
}

/// What `http_filter_new` returns: one per stream. `RefCell` turns an unexpected re-entrant
/// hook call into a refused borrow instead of two `&mut` to the same filter.
struct StreamHandle {
    config: Arc<ConfigHandle>,
    filter: RefCell<LambdaFilter>,
}

/// Reads the module-owned config behind `ptr`.
///
/// # Safety
/// `ptr` must come from `envoy_dynamic_module_on_http_filter_config_new` and not be destroyed.
unsafe fn config_ref<'a>(ptr: ConfigModulePtr) -> &'a Arc<ConfigHandle> {
    // SAFETY: as the caller guarantees, `ptr` is a live `Box<Arc<ConfigHandle>>`.
    unsafe { &*(ptr as *const Arc<ConfigHandle>) }
}

/// # Safety
/// `ptr` must come from `envoy_dynamic_module_on_http_filter_new` and not be destroyed.
unsafe fn stream_ref<'a>(ptr: FilterModulePtr) -> &'a StreamHandle {
    // SAFETY: as the caller guarantees, `ptr` is a live `Box<StreamHandle>`.
    unsafe { &*(ptr as *const StreamHandle) }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    ffi::ABI_VERSION.as_ptr().cast()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    config_envoy_ptr: ConfigEnvoyPtr,
    name: Buffer,
    config: Buffer,
) -> ConfigModulePtr {
    guard("http_filter_config_new", std::ptr::null, || {
        // SAFETY: Envoy passes buffers valid for the duration of this call.
        let (name, config) = unsafe { (name.as_slice(), config.as_slice()) };
        match new_config(config_envoy_ptr, config) {
            Ok(handle) => Box::into_raw(Box::new(Arc::new(handle))) as ConfigModulePtr,
            Err(message) => {
                envoy_log(
                    ffi::LOG_ERROR,
                    &format!(
                        "envoy-lambda: invalid filter config '{}': {message}",
                        String::from_utf8_lossy(name)
                    ),
                );
                std::ptr::null()
            }
        }
    })
}

fn new_config(config_envoy_ptr: ConfigEnvoyPtr, bytes: &[u8]) -> Result<ConfigHandle, String> {
    // Routes are not checked against it here: they may belong to another listener's filter
    // config, or come in a later update. The filter answers unknown names per request.
    let config = FilterConfig::from_json(bytes).map_err(|e| e.to_string())?;
    let mut secret_handles = Vec::new();
    for secret in config.secrets() {
        let source = secret.config_source.as_deref().unwrap_or("");
        // SAFETY: `config_envoy_ptr` is live during config_new, the only time subscribing is
        // allowed; both buffers outlive the call.
        let handle = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(
                config_envoy_ptr,
                Buffer::from_slice(secret.name.as_bytes()),
                Buffer::from_slice(source.as_bytes()),
            )
        };
        if handle == 0 {
            return Err(if source.is_empty() {
                format!(
                    "spec.secret_ref: Envoy has no static generic secret named '{}' \
                     (static_resources.secrets[].generic_secret)",
                    secret.name
                )
            } else {
                format!(
                    "spec.secret_source: Envoy could not subscribe to SDS secret '{}' \
                     (is bootstrap node.id and node.cluster set? see Envoy's log above)",
                    secret.name
                )
            });
        }
        secret_handles.push(handle);
    }
    let mut counter_ids = Vec::new();
    for counter in Counter::ALL {
        let mut id = 0usize;
        // SAFETY: `config_envoy_ptr` is live during config_new, the only time metrics can be
        // defined; the name outlives the call; no labels.
        let rc = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                config_envoy_ptr,
                Buffer::from_slice(counter.name().as_bytes()),
                std::ptr::null(),
                0,
                &mut id,
            )
        };
        if rc == ffi::METRICS_SUCCESS {
            counter_ids.push((counter, id));
        } else {
            envoy_log(
                ffi::LOG_WARN,
                &format!(
                    "envoy-lambda: could not define counter {} ({rc})",
                    counter.name()
                ),
            );
        }
    }
    let mut shared = SharedConfig::new(config);
    let discovery = if shared.discovered.is_empty() {
        None
    } else {
        let metrics = DiscoveryMetrics {
            refresh_ok: define(
                config_envoy_ptr,
                false,
                "discovery_refresh_ok",
                &["upstream"],
            ),
            refresh_failed: define(
                config_envoy_ptr,
                false,
                "discovery_refresh_failed",
                &["upstream", "reason"],
            ),
            functions: define(config_envoy_ptr, true, "discovery_functions", &["upstream"]),
            last_success: define(
                config_envoy_ptr,
                true,
                "discovery_last_success_unix_seconds",
                &["upstream"],
            ),
            function_present: define(
                config_envoy_ptr,
                true,
                "discovered_function",
                &["upstream", "function"],
            ),
            panics: define(config_envoy_ptr, false, "discovery_panics", &["upstream"]),
            timer_panics: define(config_envoy_ptr, false, "discovery_timer_panics", &[]),
            configs: define(config_envoy_ptr, true, "discovery_configs", &["upstream"]),
            poller_config: define(
                config_envoy_ptr,
                true,
                "discovery_poller_config",
                &["upstream"],
            ),
        };
        // SAFETY: a plain query, valid on the main thread where config_new runs.
        if unsafe { ffi::envoy_dynamic_module_callback_is_validation_mode() } {
            None
        } else {
            DiscoveryRuntime::start(config_envoy_ptr, &mut shared, &secret_handles, metrics)
        }
    };
    Ok(ConfigHandle {
        shared: Arc::new(shared),
        secret_handles,
        counter_ids,
        discovery,
    })
}

/// Defines a labelled counter or gauge (config_new only); `None` if Envoy refuses.
fn define(
    config_envoy_ptr: ConfigEnvoyPtr,
    gauge: bool,
    name: &str,
    labels: &[&str],
) -> Option<usize> {
    let labels: Vec<Buffer> = labels
        .iter()
        .map(|l| Buffer::from_slice(l.as_bytes()))
        .collect();
    let mut id = 0usize;
    // SAFETY: `config_envoy_ptr` is live during config_new; every buffer outlives the call.
    let rc = unsafe {
        if gauge {
            ffi::envoy_dynamic_module_callback_http_filter_config_define_gauge(
                config_envoy_ptr,
                Buffer::from_slice(name.as_bytes()),
                labels.as_ptr(),
                labels.len(),
                &mut id,
            )
        } else {
            ffi::envoy_dynamic_module_callback_http_filter_config_define_counter(
                config_envoy_ptr,
                Buffer::from_slice(name.as_bytes()),
                labels.as_ptr(),
                labels.len(),
                &mut id,
            )
        }
    };
    if rc == ffi::METRICS_SUCCESS {
        Some(id)
    } else {
        envoy_log(
            ffi::LOG_WARN,
            &format!("envoy-lambda: could not define metric {name} ({rc})"),
        );
        None
    }
}

#[no_mangle]
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
            let config = unsafe { config_ref(config_module_ptr) };
            if let Some(d) = &config.discovery {
                d.on_scheduled(config_envoy_ptr, &config.shared, event_id);
            }
        },
    )
}

#[no_mangle]
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
            let config = unsafe { config_ref(config_module_ptr) };
            let Some(d) = &config.discovery else { return };
            // SAFETY: Envoy passes `headers_len` headers and `chunks_len` chunks (or null pointers
            // with zero lengths), valid for the duration of this hook.
            let (headers, chunks) = unsafe {
                (
                    slice_or_empty(headers, headers_len),
                    slice_or_empty(chunks, chunks_len),
                )
            };
            let status = headers
                .iter()
                // SAFETY: each header's ranges point into Envoy's reply, valid during this hook.
                .map(|h| unsafe { h.as_slices() })
                .find(|(k, _)| *k == b":status")
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u16>().ok())
                .unwrap_or(0);
            let mut body = Vec::new();
            for chunk in chunks {
                // SAFETY: as above, for the body chunks.
                body.extend_from_slice(unsafe { chunk.as_slice() });
            }
            d.on_callout_done(
                config_envoy_ptr,
                &config.shared,
                callout_id,
                result,
                status,
                &body,
            );
        },
    )
}

/// # Safety
/// `ptr` must be null (then `len` is ignored) or valid for `len` elements for `'a`.
unsafe fn slice_or_empty<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-null and valid for `len` elements, as the caller guarantees.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(
    config_module_ptr: ConfigModulePtr,
) {
    guard(
        "http_filter_config_destroy",
        || (),
        || {
            if !config_module_ptr.is_null() {
                // SAFETY: Envoy destroys each config it got from config_new exactly once.
                let handle = unsafe { Box::from_raw(config_module_ptr as *mut Arc<ConfigHandle>) };
                // Streams may still hold the handle; discovery stops with the config.
                if let Some(d) = &handle.discovery {
                    d.shutdown();
                }
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    name: Buffer,
    config: Buffer,
) -> PerRouteConfigModulePtr {
    guard("http_filter_per_route_config_new", std::ptr::null, || {
        // SAFETY: Envoy passes buffers valid for the duration of this call.
        let (name, config) = unsafe { (name.as_slice(), config.as_slice()) };
        // Only the route's own document can be checked here: the hook does not say which
        // filter config will serve the route.
        match RouteTarget::from_json(config) {
            Ok(target) => Box::into_raw(Box::new(Arc::new(target))) as PerRouteConfigModulePtr,
            Err(e) => {
                envoy_log(
                    ffi::LOG_ERROR,
                    &format!(
                        "envoy-lambda: invalid per-route config '{}': {e}",
                        String::from_utf8_lossy(name)
                    ),
                );
                std::ptr::null()
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    ptr: PerRouteConfigModulePtr,
) {
    guard(
        "http_filter_per_route_config_destroy",
        || (),
        || {
            if !ptr.is_null() {
                // SAFETY: Envoy destroys each per-route config it got from us exactly once.
                drop(unsafe { Box::from_raw(ptr as *mut Arc<RouteTarget>) });
            }
        },
    )
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config_module_ptr: ConfigModulePtr,
    _filter_envoy_ptr: FilterEnvoyPtr,
) -> FilterModulePtr {
    guard("http_filter_new", std::ptr::null, || {
        // SAFETY: Envoy passes the config it got from config_new; it outlives its streams.
        let config = Arc::clone(unsafe { config_ref(config_module_ptr) });
        let filter = RefCell::new(LambdaFilter::new(Arc::clone(&config.shared)));
        Box::into_raw(Box::new(StreamHandle { config, filter })) as FilterModulePtr
    })
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter_module_ptr: FilterModulePtr) {
    guard(
        "http_filter_destroy",
        || (),
        || {
            if !filter_module_ptr.is_null() {
                // SAFETY: Envoy destroys each stream it got from http_filter_new exactly once.
                drop(unsafe { Box::from_raw(filter_module_ptr as *mut StreamHandle) });
            }
        },
    )
}

/// Runs `f` on the stream's filter with an Envoy host. On a panic the client gets a JSON 500
/// and `on_panic` is returned, so Envoy stops iterating instead of forwarding a half-edit.
fn with_stream<T: Copy>(
    hook: &str,
    filter_envoy_ptr: FilterEnvoyPtr,
    filter_module_ptr: FilterModulePtr,
    idle: T,
    on_panic: T,
    f: impl FnOnce(&mut LambdaFilter, &mut EnvoyHost<'_>) -> T,
) -> T {
    guard(
        hook,
        || {
            // SAFETY: the pointers are the ones Envoy passed to this hook.
            let stream = unsafe { stream_ref(filter_module_ptr) };
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
            // SAFETY: the pointers are the ones Envoy passed to this hook.
            let stream = unsafe { stream_ref(filter_module_ptr) };
            let Ok(mut filter) = stream.filter.try_borrow_mut() else {
                return idle; // re-entered from inside one of our own callbacks
            };
            // SAFETY: `filter_envoy_ptr` is live during this hook.
            let mut host = unsafe { EnvoyHost::new(filter_envoy_ptr, &stream.config) };
            f(&mut filter, &mut host)
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

#[no_mangle]
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

#[no_mangle]
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

#[no_mangle]
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

#[no_mangle]
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

#[no_mangle]
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

// The hooks below are mandatory in the 1.40 ABI but have nothing to do for this filter.

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) -> u32 {
    ffi::TRAILERS_CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _event_id: u64,
) {
}

#[no_mangle]
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

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _headers: *const HttpHeader,
    _headers_len: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _chunks: *const Buffer,
    _chunks_len: usize,
    _end_stream: bool,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _trailers: *const HttpHeader,
    _trailers_len: usize,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
    _stream_id: u64,
    _reason: u32,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _filter_envoy_ptr: FilterEnvoyPtr,
    _filter_module_ptr: FilterModulePtr,
) {
}
