//! [`Host`] over the raw callbacks of one stream. Rebuilt for every hook call, never stored:
//! the `filter_envoy_ptr` is only known valid during the hook that received it.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::SystemTime;

use super::call_count;
use super::config_handle::ConfigHandle;
use super::envoy_buffer::EnvoyBuffer;
use super::ffi::{self, Buffer, FilterEnvoyPtr, HttpHeader};
use super::log::envoy_log;
use super::route_config;
use super::stream_scheduler::StreamScheduler;
use crate::config::RouteTarget;
use crate::host::{Body, Counter, Direction, FunctionStat, Host, LogLevel};
use crate::wake::Wake;

pub struct EnvoyHost<'a> {
    ptr: FilterEnvoyPtr,
    config: &'a ConfigHandle,
    /// The stream's scheduler slot, when the hook may create one.
    scheduler: Option<&'a OnceCell<Arc<StreamScheduler>>>,
}

fn map_id(map: Direction) -> u32 {
    match map {
        Direction::Request => ffi::HEADERS_REQUEST,
        Direction::Response => ffi::HEADERS_RESPONSE,
    }
}

fn body_id(body: Body) -> u32 {
    match body {
        Body::ReceivedRequest => ffi::BODY_RECEIVED_REQUEST,
        Body::BufferedRequest => ffi::BODY_BUFFERED_REQUEST,
        Body::ReceivedResponse => ffi::BODY_RECEIVED_RESPONSE,
        Body::BufferedResponse => ffi::BODY_BUFFERED_RESPONSE,
    }
}

fn text(s: &str) -> Buffer {
    Buffer::from_slice(s.as_bytes())
}

/// Up to this many headers or body chunks are read into a stack array, not a `Vec`.
const STACK_ITEMS: usize = 64;

impl<'a> EnvoyHost<'a> {
    /// Calls `f` with Envoy's header array for `map` (names and values point into the map).
    fn with_raw_headers<R>(&self, map: Direction, f: impl FnOnce(&[HttpHeader]) -> R) -> R {
        let map = map_id(map);
        call_count::note("http_get_headers_size");
        // SAFETY: `self.ptr` is live for this hook.
        let n = unsafe { ffi::envoy_dynamic_module_callback_http_get_headers_size(self.ptr, map) };
        let empty = HttpHeader {
            key_ptr: std::ptr::null(),
            key_len: 0,
            value_ptr: std::ptr::null(),
            value_len: 0,
        };
        let mut stack = [empty; STACK_ITEMS];
        let mut heap = Vec::new();
        let out: &mut [HttpHeader] = if n <= STACK_ITEMS {
            &mut stack[..n]
        } else {
            heap.resize(n, empty);
            &mut heap
        };
        call_count::note("http_get_headers");
        // SAFETY: `out` has room for the `n` entries Envoy reported for this map.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_headers(self.ptr, map, out.as_mut_ptr())
        };
        f(if ok { out } else { &[] })
    }

    /// # Safety
    /// `ptr` must be the `filter_envoy_ptr` Envoy passed to the hook being run, and the value
    /// must not outlive that hook.
    pub unsafe fn new(ptr: FilterEnvoyPtr, config: &'a ConfigHandle) -> Self {
        Self {
            ptr,
            config,
            scheduler: None,
        }
    }

    /// Lets [`Host::waker`] create (once) and hand out the stream's scheduler.
    pub fn with_scheduler(mut self, slot: &'a OnceCell<Arc<StreamScheduler>>) -> Self {
        self.scheduler = Some(slot);
        self
    }
}

impl Host for EnvoyHost<'_> {
    fn route_target(&self) -> Option<Arc<RouteTarget>> {
        call_count::note("get_most_specific_route_config");
        // SAFETY: `self.ptr` is live for this hook.
        let p =
            unsafe { ffi::envoy_dynamic_module_callback_get_most_specific_route_config(self.ptr) };
        // SAFETY: Envoy returns null or a per-route config of this module (made by
        // `route_config::into_module_ptr`); the route (and so the box) outlives the stream.
        unsafe { route_config::target(p) }
    }

    fn header(&self, map: Direction, name: &str) -> Option<&[u8]> {
        let mut out = Buffer::EMPTY;
        let mut count = 0usize;
        call_count::note("http_get_header");
        // SAFETY: `self.ptr` is live for this hook (see `new`); `name` outlives the call; the
        // out-pointers are valid locals.
        let found = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_header(
                self.ptr,
                map_id(map),
                text(name),
                &mut out,
                0,
                &mut count,
            )
        };
        // SAFETY: Envoy's header bytes stay valid until the map changes, which needs `&mut self`,
        // so they are bound to this borrow of `self`.
        found.then(|| unsafe { EnvoyBuffer::new(self, out) }.as_slice())
    }

    fn headers(&self, map: Direction) -> Vec<(String, String)> {
        self.with_raw_headers(map, |headers| {
            headers
                .iter()
                .map(|h| {
                    // SAFETY: Envoy filled both ranges with bytes of the live header map, which
                    // `&self` keeps unchanged.
                    let (k, v) = unsafe { EnvoyBuffer::key_value(self, h) };
                    (
                        String::from_utf8_lossy(k.as_slice()).into_owned(),
                        String::from_utf8_lossy(v.as_slice()).into_owned(),
                    )
                })
                .collect()
        })
    }

    fn header_names_matching(&self, map: Direction, pred: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.with_raw_headers(map, |headers| {
            headers
                .iter()
                // SAFETY: Envoy filled the key range with bytes of the live header map, which
                // `&self` keeps unchanged.
                .filter_map(|h| unsafe { EnvoyBuffer::key_value(self, h) }.0.to_str())
                .filter(|k| pred(k))
                .map(str::to_owned)
                .collect()
        })
    }

    fn for_each_header(&self, map: Direction, f: &mut dyn FnMut(&[u8], &[u8])) {
        self.with_raw_headers(map, |headers| {
            for h in headers {
                // SAFETY: Envoy filled both ranges with bytes of the live header map, which
                // `&self` keeps unchanged.
                let (k, v) = unsafe { EnvoyBuffer::key_value(self, h) };
                f(k.as_slice(), v.as_slice());
            }
        });
    }

    fn set_header(&mut self, map: Direction, name: &str, value: &str) {
        call_count::note("http_set_header");
        // SAFETY: `self.ptr` is live; Envoy copies key and value before returning.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                map_id(map),
                text(name),
                text(value),
            );
        }
    }

    fn add_header(&mut self, map: Direction, name: &str, value: &str) {
        call_count::note("http_add_header");
        // SAFETY: `self.ptr` is live; Envoy copies key and value before returning.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_add_header(
                self.ptr,
                map_id(map),
                text(name),
                text(value),
            );
        }
    }

    fn remove_header(&mut self, map: Direction, name: &str) {
        call_count::note("http_set_header(remove)");
        // SAFETY: `self.ptr` is live; a null value pointer asks Envoy to remove the header.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_set_header(
                self.ptr,
                map_id(map),
                text(name),
                Buffer::EMPTY,
            );
        }
    }

    fn chunks(&self, body: Body) -> Vec<&[u8]> {
        let sel = body_id(body);
        call_count::note("http_get_body_chunks_size");
        // SAFETY: `self.ptr` is live for this hook.
        let n =
            unsafe { ffi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr, sel) };
        call_count::note_n("body_slices", n as u64);
        if n == 0 {
            return Vec::new();
        }
        // Chunk descriptors only (16 B each); the bytes themselves are read in place.
        let mut chunks = vec![Buffer::EMPTY; n];
        call_count::note("http_get_body_chunks");
        // SAFETY: `chunks` has room for the `n` descriptors Envoy reported.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_body_chunks(
                self.ptr,
                sel,
                chunks.as_mut_ptr(),
            )
        };
        if !ok {
            return Vec::new();
        }
        chunks
            .into_iter()
            // SAFETY: each descriptor points into Envoy's body slices, which stay valid until
            // the body changes, which needs `&mut self`.
            .map(|c| unsafe { EnvoyBuffer::new(self, c) }.as_slice())
            .collect()
    }

    fn for_each_chunk(&self, body: Body, f: &mut dyn FnMut(&[u8])) {
        let sel = body_id(body);
        call_count::note("http_get_body_chunks_size");
        // SAFETY: `self.ptr` is live for this hook.
        let n =
            unsafe { ffi::envoy_dynamic_module_callback_http_get_body_chunks_size(self.ptr, sel) };
        call_count::note_n("body_slices", n as u64);
        if n == 0 {
            return;
        }
        let mut stack = [Buffer::EMPTY; STACK_ITEMS];
        let mut heap = Vec::new();
        let out: &mut [Buffer] = if n <= STACK_ITEMS {
            &mut stack[..n]
        } else {
            heap.resize(n, Buffer::EMPTY);
            &mut heap
        };
        call_count::note("http_get_body_chunks");
        // SAFETY: `out` has room for the `n` descriptors Envoy reported.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_get_body_chunks(self.ptr, sel, out.as_mut_ptr())
        };
        if !ok {
            return;
        }
        for chunk in out.iter() {
            // SAFETY: each descriptor points into Envoy's body slices, unchanged while `&self`
            // is borrowed.
            f(unsafe { EnvoyBuffer::new(self, *chunk) }.as_slice());
        }
    }

    fn body_len(&self, body: Body) -> u64 {
        call_count::note("http_get_body_size");
        // SAFETY: `self.ptr` is live for this hook.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_get_body_size(self.ptr, body_id(body)) as u64
        }
    }

    fn drain_body(&mut self, body: Body, len: u64) {
        if len == 0 {
            return;
        }
        call_count::note("http_drain_body");
        // SAFETY: `self.ptr` is live for this hook.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_drain_body(
                self.ptr,
                body_id(body),
                len as usize,
            );
        }
    }

    fn append_body(&mut self, body: Body, data: &[u8]) -> bool {
        call_count::note("http_append_body");
        // SAFETY: `self.ptr` is live; Envoy copies `data` before returning.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_append_body(
                self.ptr,
                body_id(body),
                Buffer::from_slice(data),
            )
        }
    }

    fn received_is_buffered(&self, direction: Direction) -> bool {
        call_count::note(match direction {
            Direction::Request => "http_received_buffered_request_body",
            Direction::Response => "http_received_buffered_response_body",
        });
        // SAFETY: `self.ptr` is live for this hook.
        unsafe {
            match direction {
                Direction::Request => {
                    ffi::envoy_dynamic_module_callback_http_received_buffered_request_body(self.ptr)
                }
                Direction::Response => {
                    ffi::envoy_dynamic_module_callback_http_received_buffered_response_body(
                        self.ptr,
                    )
                }
            }
        }
    }

    fn buffer_limit(&self) -> u64 {
        call_count::note("http_get_buffer_limit");
        // SAFETY: `self.ptr` is live for this hook.
        unsafe { ffi::envoy_dynamic_module_callback_http_get_buffer_limit(self.ptr) }
    }

    fn set_buffer_limit(&mut self, limit: u64) {
        call_count::note("http_set_buffer_limit");
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
            .map(|(k, v)| HttpHeader::from_pair(k.as_bytes(), v.as_bytes()))
            .collect();
        call_count::note("http_send_response");
        // SAFETY: `self.ptr` is live; every buffer borrowed here outlives the call, during which
        // Envoy copies them.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_send_response(
                self.ptr,
                status,
                headers.as_ptr(),
                headers.len(),
                Buffer::from_slice(body),
                text(details),
            );
        }
    }

    fn secret(&self, index: usize) -> Option<&[u8]> {
        let handle = *self.config.secret_handles.get(index)?;
        let mut out = Buffer::EMPTY;
        call_count::note("http_filter_get_generic_secret");
        // SAFETY: `self.ptr` is live; `handle` came from this config's subscription.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_get_generic_secret(
                self.ptr, handle, &mut out,
            )
        };
        // SAFETY: the bytes stay valid during this hook, which `&self` lies within (a rotation
        // happens on the main thread and is published to workers between events, not during one).
        ok.then(|| unsafe { EnvoyBuffer::new(self, out) }.as_slice())
    }

    fn source_address(&self) -> Option<&str> {
        let mut out = Buffer::EMPTY;
        call_count::note("http_filter_get_attribute_string");
        // SAFETY: `self.ptr` is live; `out` is a valid local.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.ptr,
                ffi::ATTRIBUTE_SOURCE_ADDRESS,
                &mut out,
            )
        };
        // SAFETY: the address string belongs to the stream's connection info, live during the
        // hook, which `&self` lies within.
        ok.then(|| unsafe { EnvoyBuffer::new(self, out) }.to_str())
            .flatten()
    }

    fn response_code_details(&self) -> Option<&str> {
        let mut out = Buffer::EMPTY;
        call_count::note("http_filter_get_attribute_string");
        // SAFETY: `self.ptr` is live; `out` is a valid local.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.ptr,
                ffi::ATTRIBUTE_RESPONSE_CODE_DETAILS,
                &mut out,
            )
        };
        // SAFETY: the details string belongs to the stream info, live during the hook, which
        // `&self` lies within.
        ok.then(|| unsafe { EnvoyBuffer::new(self, out) }.to_str())
            .flatten()
    }

    fn response_flags(&self) -> Option<u64> {
        let mut flags = 0u64;
        call_count::note("http_filter_get_attribute_int");
        // SAFETY: `self.ptr` is live; `flags` is a valid local.
        let ok = unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_get_attribute_int(
                self.ptr,
                ffi::ATTRIBUTE_RESPONSE_FLAGS,
                &mut flags,
            )
        };
        ok.then_some(flags)
    }

    fn set_metadata(&mut self, namespace: &str, key: &str, value: &str) {
        call_count::note("http_set_dynamic_metadata_string");
        // SAFETY: `self.ptr` is live; Envoy copies the three buffers.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
                self.ptr,
                text(namespace),
                text(key),
                text(value),
            );
        }
    }

    fn set_metadata_number(&mut self, namespace: &str, key: &str, value: f64) {
        // SAFETY: `self.ptr` is live; Envoy copies both buffers.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
                self.ptr,
                text(namespace),
                text(key),
                value,
            );
        }
    }

    fn set_metadata_bool(&mut self, namespace: &str, key: &str, value: bool) {
        // SAFETY: `self.ptr` is live; Envoy copies both buffers.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
                self.ptr,
                text(namespace),
                text(key),
                value,
            );
        }
    }

    fn record(&mut self, stat: FunctionStat, labels: &[&str], value: u64) {
        // Counters are summed in the module and published once a period (counter_batch):
        // Envoy's labelled add costs a stat-name lookup per call.
        if !stat.is_histogram() {
            if !labels.is_empty() {
                self.config.add_function_count(stat, labels, value);
            }
            return;
        }
        let Some(id) = self.config.function_stat_id(stat) else {
            return;
        };
        // At most the three common labels and one more; a stack array, no allocation.
        let mut values = [Buffer::EMPTY; FunctionStat::LABELS.len() + 1];
        let n = labels.len().min(values.len());
        for (slot, label) in values.iter_mut().zip(labels) {
            *slot = text(label);
        }
        // Zero labels would silently hit the unlabelled metric of the same id (abi-notes).
        if n == 0 {
            return;
        }
        // SAFETY: `self.ptr` is live; `id` was defined for this config in config_new with
        // these label names; the label buffers outlive the call.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_record_histogram_value(
                self.ptr,
                id,
                values.as_ptr(),
                n,
                value,
            );
        }
    }

    fn add(&mut self, counter: Counter, value: u64) {
        let Some(id) = self.config.counter_id(counter) else {
            return;
        };
        call_count::note("http_filter_increment_counter");
        // SAFETY: `self.ptr` is live; `id` was defined for this config in config_new, unlabelled.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_increment_counter(
                self.ptr,
                id,
                std::ptr::null(),
                0,
                value,
            );
        }
    }

    fn send_response_data(&mut self, data: &[u8]) {
        // SAFETY: `self.ptr` is live for this hook; Envoy copies `data` before returning.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_send_response_data(
                self.ptr,
                Buffer::from_slice(data),
                false,
            );
        }
    }

    fn reset_stream(&mut self) {
        // SAFETY: `self.ptr` is live for this hook; the details buffer outlives the call.
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_reset_stream(
                self.ptr,
                ffi::STREAM_RESET_LOCAL,
                text("envoy_lambda_stream_cut"),
            );
        }
    }

    fn schedule(&mut self) -> bool {
        // SAFETY: `self.ptr` is live for this hook.
        let scheduler =
            unsafe { ffi::envoy_dynamic_module_callback_http_filter_scheduler_new(self.ptr) };
        if scheduler.is_null() {
            return false;
        }
        // SAFETY: `scheduler` was just created and is deleted once, here. A committed event is
        // posted to the worker's dispatcher with a weak reference to the stream, so deleting
        // the scheduler right after does not cancel it (and a destroyed stream never sees it).
        unsafe {
            ffi::envoy_dynamic_module_callback_http_filter_scheduler_commit(
                scheduler,
                crate::filter::STREAM_CUT_EVENT,
            );
            ffi::envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler);
        }
        true
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

    fn waker(&mut self) -> Option<Arc<dyn Wake>> {
        let slot = self.scheduler?;
        if slot.get().is_none() {
            // SAFETY: `self.ptr` is the live stream pointer of the running hook.
            let scheduler = unsafe { StreamScheduler::new(self.ptr) }?;
            let _ = slot.set(Arc::new(scheduler));
        }
        slot.get().map(|s| Arc::clone(s) as Arc<dyn Wake>)
    }

    fn continue_decoding(&mut self) {
        // SAFETY: `self.ptr` is live for this hook; Envoy may re-enter the module, which the
        // stream's `RefCell` turns into a no-op.
        unsafe { ffi::envoy_dynamic_module_callback_http_filter_continue_decoding(self.ptr) }
    }
}
