//! [`Host`] over the raw callbacks of one stream. Rebuilt for every hook call, never stored:
//! the `filter_envoy_ptr` is only known valid during the hook that received it.

use std::sync::Arc;
use std::time::SystemTime;

use super::ffi::{self, Buffer, FilterEnvoyPtr, HttpHeader};
use super::hooks::ConfigHandle;
use super::log::envoy_log;
use crate::config::RouteTarget;
use crate::host::{Counter, Host, LogLevel};

pub struct EnvoyHost<'a> {
    ptr: FilterEnvoyPtr,
    config: &'a ConfigHandle,
}

impl<'a> EnvoyHost<'a> {
    /// # Safety
    /// `ptr` must be the `filter_envoy_ptr` Envoy passed to the hook being run, and the value
    /// must not outlive that hook.
    pub unsafe fn new(ptr: FilterEnvoyPtr, config: &'a ConfigHandle) -> Self {
        Self { ptr, config }
    }

    fn header(&self, map: u32, name: &str) -> Option<&[u8]> {
        let mut out = Buffer::EMPTY;
        let mut count = 0usize;
        // SAFETY: `self.ptr` is live for this hook (see `new`); `name` outlives the call; the
        // out-pointers are valid locals.
        let found = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_header(
                self.ptr,
                map,
                Buffer::from_slice(name.as_bytes()),
                &mut out,
                0,
                &mut count,
            )
        };
        // SAFETY: Envoy's header bytes stay valid until the map changes, which needs `&mut self`.
        found.then(|| unsafe { out.as_slice() })
    }

    fn set_header(&mut self, map: u32, name: &str, value: Option<&[u8]>) {
        let value = value.map_or(Buffer::EMPTY, Buffer::from_slice);
        // SAFETY: `self.ptr` is live; Envoy copies key and value before returning. A null value
        // pointer asks Envoy to remove the header.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                map,
                Buffer::from_slice(name.as_bytes()),
                value,
            );
        }
    }
}

impl Host for EnvoyHost<'_> {
    fn route_target(&self) -> Option<Arc<RouteTarget>> {
        // SAFETY: `self.ptr` is live for this hook.
        let p =
            unsafe { ffi::envoy_dynamic_module_callback_get_most_specific_route_config(self.ptr) };
        if p.is_null() {
            return None;
        }
        // SAFETY: every per-route config of this module is an `Arc<RouteTarget>` boxed by
        // `on_http_filter_per_route_config_new`; the route (and so the box) outlives the stream.
        let target = unsafe { &*(p as *const Arc<RouteTarget>) };
        Some(Arc::clone(target))
    }

    fn request_header(&self, name: &str) -> Option<&[u8]> {
        self.header(ffi::HEADERS_REQUEST, name)
    }

    fn request_header_names(&self) -> Vec<String> {
        // SAFETY: `self.ptr` is live for this hook.
        let n = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_headers_size(self.ptr, ffi::HEADERS_REQUEST)
        };
        let mut headers = vec![
            HttpHeader {
                key_ptr: std::ptr::null(),
                key_len: 0,
                value_ptr: std::ptr::null(),
                value_len: 0,
            };
            n
        ];
        // SAFETY: `headers` has room for the `n` entries Envoy reported for this map.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_headers(
                self.ptr,
                ffi::HEADERS_REQUEST,
                headers.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        headers
            .iter()
            .map(|h| {
                // SAFETY: Envoy filled `key_ptr/key_len` with bytes of the live header map.
                let key = unsafe {
                    Buffer {
                        ptr: h.key_ptr,
                        len: h.key_len,
                    }
                    .as_slice()
                };
                String::from_utf8_lossy(key).into_owned()
            })
            .collect()
    }

    fn set_request_header(&mut self, name: &str, value: &str) {
        self.set_header(ffi::HEADERS_REQUEST, name, Some(value.as_bytes()));
    }

    fn remove_request_header(&mut self, name: &str) {
        self.set_header(ffi::HEADERS_REQUEST, name, None);
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        self.header(ffi::HEADERS_RESPONSE, name)
    }

    fn set_response_header(&mut self, name: &str, value: &str) {
        self.set_header(ffi::HEADERS_RESPONSE, name, Some(value.as_bytes()));
    }

    fn for_each_received_request_chunk(&self, f: &mut dyn FnMut(&[u8])) {
        let sel = ffi::BODY_RECEIVED_REQUEST;
        // SAFETY: `self.ptr` is live for this hook.
        let n =
            unsafe { ffi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr, sel) };
        if n == 0 {
            return;
        }
        // Chunk descriptors only (16 B each); the bytes themselves are read in place.
        let mut chunks = vec![Buffer::EMPTY; n];
        // SAFETY: `chunks` has room for the `n` descriptors Envoy reported.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_body_chunks(
                self.ptr,
                sel,
                chunks.as_mut_ptr(),
            )
        };
        if !ok {
            return;
        }
        for chunk in chunks {
            // SAFETY: each descriptor points into Envoy's body slices, valid during this hook.
            f(unsafe { chunk.as_slice() });
        }
    }

    fn received_is_buffered_request_body(&self) -> bool {
        // SAFETY: `self.ptr` is live for this hook.
        unsafe { ffi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.ptr) }
    }

    fn request_buffer_limit(&self) -> u64 {
        // SAFETY: `self.ptr` is live for this hook.
        unsafe { ffi::envoy_dynamic_module_callback_http_get_buffer_limit(self.ptr) }
    }

    fn set_request_buffer_limit(&mut self, limit: u64) {
        // SAFETY: `self.ptr` is live for this hook.
        unsafe { ffi::envoy_dynamic_module_callback_http_set_buffer_limit(self.ptr, limit) }
    }

    fn send_local_reply(
        &mut self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
        details: &str,
    ) {
        let headers: Vec<HttpHeader> = headers
            .iter()
            .map(|(k, v)| HttpHeader {
                key_ptr: k.as_ptr(),
                key_len: k.len(),
                value_ptr: v.as_ptr(),
                value_len: v.len(),
            })
            .collect();
        // SAFETY: `self.ptr` is live; every buffer borrowed here outlives the call, during which
        // Envoy copies them.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_send_response(
                self.ptr,
                status,
                headers.as_ptr(),
                headers.len(),
                Buffer::from_slice(body),
                Buffer::from_slice(details.as_bytes()),
            );
        }
    }

    fn secret(&self, index: usize) -> Option<&[u8]> {
        let handle = *self.config.secret_handles.get(index)?;
        let mut out = Buffer::EMPTY;
        // SAFETY: `self.ptr` is live; `handle` came from this config's subscription.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_get_generic_secret(
                self.ptr, handle, &mut out,
            )
        };
        // SAFETY: the bytes stay valid during this hook (a rotation happens on the main thread
        // and is published to workers between events, not during one).
        ok.then(|| unsafe { out.as_slice() })
    }

    fn increment(&mut self, counter: Counter) {
        let Some(id) = self.config.counter_id(counter) else {
            return;
        };
        // SAFETY: `self.ptr` is live; `id` was defined for this config in config_new, unlabelled.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_increment_counter(
                self.ptr,
                id,
                std::ptr::null(),
                0,
                1,
            );
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Debug => ffi::LOG_DEBUG,
            LogLevel::Info => ffi::LOG_INFO,
            LogLevel::Warn => ffi::LOG_WARN,
            LogLevel::Error => ffi::LOG_ERROR,
        };
        envoy_log(level, message);
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
