//! Raw declarations for the Envoy 1.40 (`v0.2.0`) dynamic-module ABI, written from
//! `source/extensions/dynamic_modules/abi/abi.h` and checked against `nm -D` of the 1.40.0
//! binary (`tests/abi_symbols.rs`). Only what this module uses is declared.
//!
//! C enums are plain integers here: Envoy may add values, and a Rust enum receiving an
//! unknown discriminant would be undefined behaviour.
//!
//! The pointer kinds the ABI passes are all `void *` in C; here each is its own type, so that
//! one kind cannot be passed where another belongs. `#[repr(transparent)]` keeps each exactly
//! the pointer it wraps (the same C signature; cbindgen emits a `typedef`). The name says who
//! owns what is behind it: `…EnvoyPtr` is Envoy's object, passed to us and only passed back;
//! `…ModulePtr` is ours, handed to Envoy, which passes it back until its destroy hook.
//!
//! ```compile_fail
//! use envoy_lambda::abi::ffi::{ConfigEnvoyPtr, FilterEnvoyPtr};
//! fn stream_of(config: ConfigEnvoyPtr) -> FilterEnvoyPtr {
//!     config // a config pointer is not a stream pointer
//! }
//! ```
//!
//! ```compile_fail
//! use envoy_lambda::abi::ffi::{ConfigModulePtr, FilterModulePtr};
//! fn stream_of(config: ConfigModulePtr) -> FilterModulePtr {
//!     config // ours too: a config is not a stream
//! }
//! ```

use std::ffi::c_void;

/// The ABI version string `envoy_dynamic_module_on_program_init` returns.
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// Envoy's filter config (`envoy_dynamic_module_type_http_filter_config_envoy_ptr`); valid
/// during the config hooks that receive it.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct ConfigEnvoyPtr(*mut c_void);

/// Envoy's stream (`envoy_dynamic_module_type_http_filter_envoy_ptr`); valid during the stream
/// hook that receives it, never stored.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct FilterEnvoyPtr(*mut c_void);

/// Envoy's scheduler of one filter config (`config_scheduler_new` .. `config_scheduler_delete`).
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct ConfigSchedulerEnvoyPtr(*mut c_void);

/// Envoy's scheduler of one stream (`http_filter_scheduler_new` .. `_delete`); its events run
/// on the stream's worker, later in the event loop (`on_http_filter_scheduled`).
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct FilterSchedulerEnvoyPtr(*mut c_void);

impl FilterSchedulerEnvoyPtr {
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }
}

/// `envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalReset`.
pub const STREAM_RESET_LOCAL: u32 = 0;

/// Our filter config (`config_handle`), from config_new to config_destroy.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct ConfigModulePtr(*const c_void);

/// Our stream (`stream_handle`), from http_filter_new to http_filter_destroy.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct FilterModulePtr(*const c_void);

/// Our per-route config (`route_config`), from per_route_config_new to its destroy hook.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct PerRouteConfigModulePtr(*const c_void);

impl ConfigSchedulerEnvoyPtr {
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }
}

impl ConfigModulePtr {
    /// What config_new returns for a rejected config.
    pub const NULL: Self = Self(std::ptr::null());

    pub fn from_raw(ptr: *const c_void) -> Self {
        Self(ptr)
    }

    pub fn as_raw(self) -> *const c_void {
        self.0
    }
}

impl FilterModulePtr {
    /// What http_filter_new returns for a refused stream.
    pub const NULL: Self = Self(std::ptr::null());

    pub fn from_raw(ptr: *const c_void) -> Self {
        Self(ptr)
    }

    pub fn as_raw(self) -> *const c_void {
        self.0
    }
}

impl PerRouteConfigModulePtr {
    /// What per_route_config_new returns for a rejected route config, and what
    /// `get_most_specific_route_config` returns for a route without one.
    pub const NULL: Self = Self(std::ptr::null());

    pub fn from_raw(ptr: *const c_void) -> Self {
        Self(ptr)
    }

    pub fn as_raw(self) -> *const c_void {
        self.0
    }
}

/// A byte range, owned by whichever side created it; passed by value (two registers). The
/// module's own are made with [`Buffer::from_slice`]; Envoy's are read through
/// `envoy_buffer::EnvoyBuffer`, bound to a borrow.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Buffer {
    pub ptr: *const u8,
    pub len: usize,
}

/// One header: key and value byte ranges.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HttpHeader {
    pub key_ptr: *const u8,
    pub key_len: usize,
    pub value_ptr: *const u8,
    pub value_len: usize,
}

impl Buffer {
    pub const EMPTY: Buffer = Buffer {
        ptr: std::ptr::null(),
        len: 0,
    };

    pub fn from_slice(s: &[u8]) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

impl HttpHeader {
    /// A header the module owns, for Envoy to copy during one call.
    pub fn from_pair(key: &[u8], value: &[u8]) -> Self {
        Self {
            key_ptr: key.as_ptr(),
            key_len: key.len(),
            value_ptr: value.as_ptr(),
            value_len: value.len(),
        }
    }
}

// Header map selectors.
pub const HEADERS_REQUEST: u32 = 0;
pub const HEADERS_RESPONSE: u32 = 2;
// Body selectors.
pub const BODY_RECEIVED_REQUEST: u32 = 0;
pub const BODY_BUFFERED_REQUEST: u32 = 1;
pub const BODY_RECEIVED_RESPONSE: u32 = 2;
pub const BODY_BUFFERED_RESPONSE: u32 = 3;
// Attribute ids (`source.address` is the 25th entry of the attribute enum).
pub const ATTRIBUTE_SOURCE_ADDRESS: u32 = 24;
/// `response.code_details` (17th entry, a string): `via_upstream` for the upstream's answer,
/// Envoy's reason (`response_timeout`, `upstream_reset_before_response_started{…}`) otherwise.
pub const ATTRIBUTE_RESPONSE_CODE_DETAILS: u32 = 16;
/// `response.flags` (18th entry, an int): the legacy response-flag bit mask.
pub const ATTRIBUTE_RESPONSE_FLAGS: u32 = 17;
// Header hook results.
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
// Body hook results.
pub const BODY_CONTINUE: u32 = 0;
pub const BODY_STOP_ITERATION_AND_BUFFER: u32 = 1;
pub const BODY_STOP_ITERATION_NO_BUFFER: u32 = 3;
// Trailers hook results.
pub const TRAILERS_CONTINUE: u32 = 0;
pub const TRAILERS_STOP_ITERATION: u32 = 1;
// Log levels.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;
// Metrics results.
pub const METRICS_SUCCESS: u32 = 0;
// Config-level callout: init result, and the result passed to the done hook.
pub const CALLOUT_INIT_SUCCESS: u32 = 0;
pub const CALLOUT_SUCCESS: u32 = 0;

unsafe extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: Buffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config_envoy_ptr: ConfigEnvoyPtr,
        name: Buffer,
        label_names: *const Buffer,
        label_names_len: usize,
        counter_id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config_envoy_ptr: ConfigEnvoyPtr,
        name: Buffer,
        label_names: *const Buffer,
        label_names_len: usize,
        gauge_id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config_envoy_ptr: ConfigEnvoyPtr,
        name: Buffer,
        label_names: *const Buffer,
        label_names_len: usize,
        histogram_id_out: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config_envoy_ptr: ConfigEnvoyPtr,
        counter_id: usize,
        label_values: *const Buffer,
        label_values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config_envoy_ptr: ConfigEnvoyPtr,
        gauge_id: usize,
        label_values: *const Buffer,
        label_values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_is_validation_mode() -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_config_get_generic_secret(
        config_envoy_ptr: ConfigEnvoyPtr,
        handle: u64,
        out: *mut Buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(
        config_envoy_ptr: ConfigEnvoyPtr,
    ) -> ConfigSchedulerEnvoyPtr;
    /// Safe to call from any thread; the event then runs on the main thread.
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
        scheduler: ConfigSchedulerEnvoyPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
        scheduler: ConfigSchedulerEnvoyPtr,
    );
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config_envoy_ptr: ConfigEnvoyPtr,
        callout_id_out: *mut u64,
        cluster: Buffer,
        headers: *const HttpHeader,
        headers_len: usize,
        body: Buffer,
        timeout_ms: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter_envoy_ptr: FilterEnvoyPtr,
        counter_id: usize,
        label_values: *const Buffer,
        label_values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_record_histogram_value(
        filter_envoy_ptr: FilterEnvoyPtr,
        histogram_id: usize,
        label_values: *const Buffer,
        label_values_len: usize,
        value: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(
        config_envoy_ptr: ConfigEnvoyPtr,
        name: Buffer,
        config_source_json: Buffer,
    ) -> u64;
    pub fn envoy_dynamic_module_callback_http_filter_get_generic_secret(
        filter_envoy_ptr: FilterEnvoyPtr,
        handle: u64,
        out: *mut Buffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_get_most_specific_route_config(
        filter_envoy_ptr: FilterEnvoyPtr,
    ) -> PerRouteConfigModulePtr;

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_map: u32,
        key: Buffer,
        out: *mut Buffer,
        index: usize,
        count_out: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_map: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_map: u32,
        out: *mut HttpHeader,
    ) -> bool;
    /// A null `value.ptr` removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_map: u32,
        key: Buffer,
        value: Buffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_add_header(
        filter_envoy_ptr: FilterEnvoyPtr,
        header_map: u32,
        key: Buffer,
        value: Buffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter_envoy_ptr: FilterEnvoyPtr,
        body: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_drain_body(
        filter_envoy_ptr: FilterEnvoyPtr,
        body: u32,
        len: usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_append_body(
        filter_envoy_ptr: FilterEnvoyPtr,
        body: u32,
        data: Buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_response_body(
        filter_envoy_ptr: FilterEnvoyPtr,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter_envoy_ptr: FilterEnvoyPtr,
        attribute_id: u32,
        out: *mut Buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter_envoy_ptr: FilterEnvoyPtr,
        attribute_id: u32,
        out: *mut u64,
    ) -> bool;
    /// Its result (a bool in some ABI versions) is not needed, so none is declared.
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
        filter_envoy_ptr: FilterEnvoyPtr,
        namespace: Buffer,
        key: Buffer,
        value: Buffer,
    );
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
        filter_envoy_ptr: FilterEnvoyPtr,
        namespace: Buffer,
        key: Buffer,
        value: f64,
    );
    pub fn envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
        filter_envoy_ptr: FilterEnvoyPtr,
        namespace: Buffer,
        key: Buffer,
        value: bool,
    );

    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter_envoy_ptr: FilterEnvoyPtr,
        body: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter_envoy_ptr: FilterEnvoyPtr,
        body: u32,
        out: *mut Buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter_envoy_ptr: FilterEnvoyPtr,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_buffer_limit(
        filter_envoy_ptr: FilterEnvoyPtr,
    ) -> u64;
    pub fn envoy_dynamic_module_callback_http_set_buffer_limit(
        filter_envoy_ptr: FilterEnvoyPtr,
        limit: u64,
    );

    /// A stream's scheduler (deleted by the module); `commit` is safe from any thread and runs
    /// `on_http_filter_scheduled` on the stream's worker, if the stream still exists.
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter_envoy_ptr: FilterEnvoyPtr,
    ) -> FilterSchedulerEnvoyPtr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: FilterSchedulerEnvoyPtr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(
        scheduler: FilterSchedulerEnvoyPtr,
    );
    /// Resumes a request the filter stopped; re-enters the module on the same stack.
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(
        filter_envoy_ptr: FilterEnvoyPtr,
    );

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter_envoy_ptr: FilterEnvoyPtr,
        status_code: u32,
        headers: *const HttpHeader,
        headers_len: usize,
        body: Buffer,
        details: Buffer,
    );

    /// Resets the stream (HTTP/2 RST_STREAM; HTTP/1 closes the connection).
    pub fn envoy_dynamic_module_callback_http_filter_reset_stream(
        filter_envoy_ptr: FilterEnvoyPtr,
        reason: u32,
        details: Buffer,
    );
    /// Sends response data through the encoder chain from its start (this filter's own hook,
    /// re-entered, passes it on unchanged).
    pub fn envoy_dynamic_module_callback_http_send_response_data(
        filter_envoy_ptr: FilterEnvoyPtr,
        data: Buffer,
        end_stream: bool,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_c_abi() {
        assert_eq!(size_of::<Buffer>(), 16);
        assert_eq!(offset_of!(Buffer, len), 8);
        assert_eq!(size_of::<HttpHeader>(), 32);
        assert_eq!(offset_of!(HttpHeader, key_len), 8);
        assert_eq!(offset_of!(HttpHeader, value_ptr), 16);
        assert_eq!(offset_of!(HttpHeader, value_len), 24);
    }

    #[test]
    fn pointer_kinds_are_plain_pointers() {
        use std::mem::align_of;
        for (size, align) in [
            (size_of::<ConfigEnvoyPtr>(), align_of::<ConfigEnvoyPtr>()),
            (size_of::<FilterEnvoyPtr>(), align_of::<FilterEnvoyPtr>()),
            (
                size_of::<ConfigSchedulerEnvoyPtr>(),
                align_of::<ConfigSchedulerEnvoyPtr>(),
            ),
            (
                size_of::<FilterSchedulerEnvoyPtr>(),
                align_of::<FilterSchedulerEnvoyPtr>(),
            ),
            (size_of::<ConfigModulePtr>(), align_of::<ConfigModulePtr>()),
            (size_of::<FilterModulePtr>(), align_of::<FilterModulePtr>()),
            (
                size_of::<PerRouteConfigModulePtr>(),
                align_of::<PerRouteConfigModulePtr>(),
            ),
        ] {
            assert_eq!(size, size_of::<*const c_void>());
            assert_eq!(align, align_of::<*const c_void>());
        }
    }
}
