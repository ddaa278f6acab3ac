//! What the filter logic needs from Envoy, as a safe trait. The ABI layer implements it over
//! the real callbacks; tests implement it with `fake::FakeHost`.
//!
//! Borrowing mirrors Envoy's rules: bytes returned by a getter borrow `self` and so cannot be
//! held across a setter, because Envoy may invalidate them when headers or bodies change.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::config::RouteTarget;
use crate::wake::Wake;

/// The filter's counters (defined once per filter config, shown as `<namespace>.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Requests signed and sent to Lambda.
    Invocations,
    /// The function failed: `X-Amz-Function-Error`, or a result `unwrap` could not read.
    FunctionErrors,
    /// The Lambda API answered with an error status (throttling, not found, access denied …).
    ApiErrors,
    /// Requests answered by the filter itself (bad route, too large, no credentials …).
    LocalRejections,
    /// Envoy itself could not get an answer from Lambda (connection failure, route timeout …).
    UpstreamFailures,
    /// `InvokeWithResponseStream` answers whose event stream began (a 200).
    StreamedInvocations,
    /// Payload bytes of streamed answers passed on to clients.
    StreamedBytes,
    /// Streams cut because the function failed after its first bytes (`InvokeComplete` with
    /// an `ErrorCode`, or an exception event).
    StreamFunctionErrors,
    /// Streams cut because the event stream was not valid (CRC, lengths, headers, truncated).
    StreamFramingErrors,
}

impl Counter {
    pub const ALL: [Counter; 9] = [
        Counter::Invocations,
        Counter::FunctionErrors,
        Counter::ApiErrors,
        Counter::LocalRejections,
        Counter::UpstreamFailures,
        Counter::StreamedInvocations,
        Counter::StreamedBytes,
        Counter::StreamFunctionErrors,
        Counter::StreamFramingErrors,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Invocations => "invocations",
            Counter::FunctionErrors => "function_errors",
            Counter::ApiErrors => "api_errors",
            Counter::LocalRejections => "local_rejections",
            Counter::UpstreamFailures => "upstream_failures",
            Counter::StreamedInvocations => "streamed_invocations",
            Counter::StreamedBytes => "streamed_bytes",
            Counter::StreamFunctionErrors => "stream_function_errors",
            Counter::StreamFramingErrors => "stream_framing_errors",
        }
    }
}

/// The per-function stats, labelled `upstream`, `function`, `qualifier` (and, for some, one
/// more label: see [`FunctionStat::extra_label`]). Histograms take milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionStat {
    Invocations,
    /// `type`: Lambda's `X-Amz-Function-Error` (`Handled`, `Unhandled`), or `malformed`.
    FunctionErrors,
    /// `class`: `throttled`, `access_denied`, `not_found`, `server_error`, `other`.
    ApiErrors,
    /// `reason`: the local reply's code.
    LocalRejections,
    PayloadBytesIn,
    PayloadBytesOut,
    /// `Init Duration` in the `REPORT` line (`log_type: tail` only).
    ColdStarts,
    /// Request sent to Lambda → its response headers, on a monotonic clock.
    RoundTripMs,
    InitDurationMs,
    BilledDurationMs,
}

impl FunctionStat {
    pub const ALL: [FunctionStat; 10] = [
        FunctionStat::Invocations,
        FunctionStat::FunctionErrors,
        FunctionStat::ApiErrors,
        FunctionStat::LocalRejections,
        FunctionStat::PayloadBytesIn,
        FunctionStat::PayloadBytesOut,
        FunctionStat::ColdStarts,
        FunctionStat::RoundTripMs,
        FunctionStat::InitDurationMs,
        FunctionStat::BilledDurationMs,
    ];

    /// The label names every per-function stat carries, in order.
    pub const LABELS: [&'static str; 3] = ["upstream", "function", "qualifier"];

    pub fn name(self) -> &'static str {
        match self {
            FunctionStat::Invocations => "fn_invocations",
            FunctionStat::FunctionErrors => "fn_function_errors",
            FunctionStat::ApiErrors => "fn_api_errors",
            FunctionStat::LocalRejections => "fn_local_rejections",
            FunctionStat::PayloadBytesIn => "fn_payload_bytes_in",
            FunctionStat::PayloadBytesOut => "fn_payload_bytes_out",
            FunctionStat::ColdStarts => "fn_cold_starts",
            FunctionStat::RoundTripMs => "fn_round_trip_ms",
            FunctionStat::InitDurationMs => "fn_init_duration_ms",
            FunctionStat::BilledDurationMs => "fn_billed_duration_ms",
        }
    }

    /// The label after [`Self::LABELS`], if this stat has one.
    pub fn extra_label(self) -> Option<&'static str> {
        match self {
            FunctionStat::FunctionErrors => Some("type"),
            FunctionStat::ApiErrors => Some("class"),
            FunctionStat::LocalRejections => Some("reason"),
            _ => None,
        }
    }

    pub fn is_histogram(self) -> bool {
        matches!(
            self,
            FunctionStat::RoundTripMs
                | FunctionStat::InitDurationMs
                | FunctionStat::BilledDurationMs
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Which way through the filter: the request (client → Lambda) or the response; names a
/// header map, a body and its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// Which body buffer: the data of the current callback, or what Envoy has buffered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    ReceivedRequest,
    BufferedRequest,
    ReceivedResponse,
    BufferedResponse,
}

impl Body {
    fn pair(direction: Direction) -> (Body, Body) {
        match direction {
            Direction::Request => (Body::BufferedRequest, Body::ReceivedRequest),
            Direction::Response => (Body::BufferedResponse, Body::ReceivedResponse),
        }
    }
}

pub trait Host {
    /// The route's per-route config, if the matched route has one for this filter.
    fn route_target(&self) -> Option<Arc<RouteTarget>>;

    fn header(&self, map: Direction, name: &str) -> Option<&[u8]>;
    /// Every header as (name, value), pseudo-headers included, in Envoy's order. Copies.
    fn headers(&self, map: Direction) -> Vec<(String, String)>;
    /// The names of the headers for which `pred` holds (copies only those).
    fn header_names_matching(&self, map: Direction, pred: &dyn Fn(&str) -> bool) -> Vec<String> {
        self.headers(map)
            .into_iter()
            .filter(|(k, _)| pred(k))
            .map(|(k, _)| k)
            .collect()
    }
    /// Calls `f` with every header's name and value as Envoy holds them (names lower-case),
    /// in one pass: one ABI call for the whole map instead of one lookup per name.
    fn for_each_header(&self, map: Direction, f: &mut dyn FnMut(&[u8], &[u8])) {
        for (k, v) in self.headers(map) {
            f(k.as_bytes(), v.as_bytes());
        }
    }
    /// Replaces every value of `name`.
    fn set_header(&mut self, map: Direction, name: &str, value: &str);
    /// Adds one more value (e.g. a second `set-cookie`).
    fn add_header(&mut self, map: Direction, name: &str, value: &str);
    fn remove_header(&mut self, map: Direction, name: &str);

    /// The chunks of `body`, pointing into Envoy's buffers (no copy of the bytes).
    fn chunks(&self, body: Body) -> Vec<&[u8]>;
    /// Feeds `f` each chunk of `body`, in place; the hot path's allocation-free variant.
    fn for_each_chunk(&self, body: Body, f: &mut dyn FnMut(&[u8])) {
        for chunk in self.chunks(body) {
            f(chunk);
        }
    }
    fn body_len(&self, body: Body) -> u64;
    fn drain_body(&mut self, body: Body, len: u64);
    /// Appends to `body`; false if Envoy has no such buffer at this point.
    fn append_body(&mut self, body: Body, data: &[u8]) -> bool;
    /// True when the "received" body is in fact the whole buffered body (a resumed stream).
    fn received_is_buffered(&self, direction: Direction) -> bool;
    fn buffer_limit(&self) -> u64;
    fn set_buffer_limit(&mut self, limit: u64);

    fn send_local_reply(
        &mut self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
        details: &str,
    );

    /// Current bytes of the `index`-th secret of the filter config (`None` if Envoy has none).
    fn secret(&self, index: usize) -> Option<&[u8]>;
    /// The downstream peer's address (`ip:port`).
    fn source_address(&self) -> Option<&str>;
    fn set_metadata(&mut self, namespace: &str, key: &str, value: &str);
    fn set_metadata_number(&mut self, namespace: &str, key: &str, value: f64);
    fn set_metadata_bool(&mut self, namespace: &str, key: &str, value: bool);
    /// Envoy's `response.code_details` for the response being encoded: `via_upstream` for the
    /// upstream's answer, Envoy's reason for its own replies; `None` if Envoy does not say.
    fn response_code_details(&self) -> Option<&str> {
        None
    }
    /// Envoy's `response.flags` (its legacy bit mask: `UF` connection failure, `UT` timeout …).
    fn response_flags(&self) -> Option<u64> {
        None
    }

    /// The stream's scheduler, created on first use: background work wakes the stream with
    /// it (`on_scheduled` then runs on the stream's worker). `None` if Envoy gives none.
    fn waker(&mut self) -> Option<Arc<dyn Wake>> {
        None
    }
    /// Resumes a request the filter stopped (after `on_scheduled` finished it).
    fn continue_decoding(&mut self) {}

    fn increment(&mut self, counter: Counter) {
        self.add(counter, 1);
    }
    fn add(&mut self, counter: Counter, value: u64);
    /// Sends `data` to the client as more of the response body, without ending it (from a
    /// scheduled event, after the upstream's last chunk was held back).
    fn send_response_data(&mut self, data: &[u8]);
    /// Resets the stream now: what the client has not been sent is lost.
    fn reset_stream(&mut self);
    /// Asks for `on_scheduled` to run on this stream's worker once the current hook has
    /// returned (and what it passed on was encoded). False if Envoy could not schedule it.
    fn schedule(&mut self) -> bool;
    /// Adds `value` to a per-function counter, or records it in a histogram; `labels` are the
    /// values of [`FunctionStat::LABELS`], then of its extra label.
    fn record(&mut self, stat: FunctionStat, labels: &[&str], value: u64);
    fn log(&self, level: LogLevel, message: &str);
    fn now(&self) -> SystemTime;
    /// A monotonic clock, for durations.
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// The whole body of one direction so far, chunk by chunk and in order, without copying.
pub fn body_chunks(host: &dyn Host, direction: Direction) -> Vec<&[u8]> {
    let (buffered, received) = Body::pair(direction);
    let mut chunks = if host.received_is_buffered(direction) {
        Vec::new()
    } else {
        host.chunks(buffered)
    };
    chunks.extend(host.chunks(received));
    chunks
}

/// Replaces the whole body of one direction with `data`.
pub fn replace_body(host: &mut dyn Host, direction: Direction, data: &[u8]) {
    let (buffered, received) = Body::pair(direction);
    let n = host.body_len(buffered);
    host.drain_body(buffered, n);
    let n = host.body_len(received);
    host.drain_body(received, n);
    // Inside a body callback the new bytes go with the current data; with no body at all
    // (a request that ended with its headers) they become the buffered body.
    if !host.append_body(received, data) {
        host.append_body(buffered, data);
    }
}

#[cfg(test)]
pub mod fake {
    //! An in-memory host for unit tests of the filter state machine.

    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Default)]
    pub struct LocalReply {
        pub status: u32,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
        pub details: String,
    }

    #[derive(Default)]
    pub struct FakeHost {
        pub route: Option<Arc<RouteTarget>>,
        pub request_headers: Vec<(String, String)>,
        pub response_headers: Vec<(String, String)>,
        /// Chunks per body buffer; `None` = Envoy has no such buffer now.
        pub bodies: HashMap<&'static str, Vec<Vec<u8>>>,
        pub received_is_buffered: bool,
        pub buffer_limit: u64,
        pub reply: Option<LocalReply>,
        pub secrets: HashMap<usize, Vec<u8>>,
        pub source: Option<String>,
        pub metadata: Vec<(String, String, String)>,
        pub counters: HashMap<Counter, u64>,
        /// Per-function stats: (stat, label values joined by `|`) → every value recorded.
        pub recorded: Vec<(FunctionStat, String, u64)>,
        /// What `monotonic` returns (`Instant::now()` if unset).
        pub instant: Option<Instant>,
        pub time: Option<SystemTime>,
        pub code_details: Option<String>,
        pub response_flags: Option<u64>,
        /// Every line logged, with its level.
        pub logs: std::cell::RefCell<Vec<(LogLevel, String)>>,
        /// Stream resets asked for.
        pub resets: u32,
        /// What `send_response_data` sent.
        pub sent_data: Vec<u8>,
        /// `schedule` calls (the test runs `on_scheduled` itself).
        pub scheduled: u32,
        /// The stream's scheduler (records the events background work commits).
        pub waker: Option<Arc<crate::credentials::fake::FakeWaker>>,
        /// How often `continue_decoding` was called.
        pub continued: u32,
    }

    fn key(b: Body) -> &'static str {
        match b {
            Body::ReceivedRequest => "rq",
            Body::BufferedRequest => "bq",
            Body::ReceivedResponse => "rs",
            Body::BufferedResponse => "bs",
        }
    }

    impl FakeHost {
        fn map(&self, m: Direction) -> &Vec<(String, String)> {
            match m {
                Direction::Request => &self.request_headers,
                Direction::Response => &self.response_headers,
            }
        }

        fn map_mut(&mut self, m: Direction) -> &mut Vec<(String, String)> {
            match m {
                Direction::Request => &mut self.request_headers,
                Direction::Response => &mut self.response_headers,
            }
        }

        pub fn request(&self, name: &str) -> Option<&str> {
            self.header(Direction::Request, name)
                .and_then(|v| std::str::from_utf8(v).ok())
        }

        pub fn response(&self, name: &str) -> Option<&str> {
            self.header(Direction::Response, name)
                .and_then(|v| std::str::from_utf8(v).ok())
        }

        /// Sets the chunks of a body buffer (the data Envoy would deliver).
        pub fn put(&mut self, b: Body, chunks: &[&[u8]]) {
            self.bodies
                .insert(key(b), chunks.iter().map(|c| c.to_vec()).collect());
        }

        /// Everything in a body buffer, joined.
        pub fn body(&self, b: Body) -> Vec<u8> {
            self.bodies
                .get(key(b))
                .map(|c| c.concat())
                .unwrap_or_default()
        }

        /// What Envoy does after a "StopIterationAndBuffer": received data joins the buffer.
        pub fn buffer_received(&mut self, direction: Direction) {
            let (buffered, received) = Body::pair(direction);
            let data = self.bodies.remove(key(received)).unwrap_or_default();
            self.bodies.entry(key(buffered)).or_default().extend(data);
        }

        pub fn count(&self, c: Counter) -> u64 {
            self.counters.get(&c).copied().unwrap_or(0)
        }

        /// The values recorded for `stat` with these labels (joined by `|`).
        pub fn recorded(&self, stat: FunctionStat, labels: &str) -> Vec<u64> {
            self.recorded
                .iter()
                .filter(|(s, l, _)| *s == stat && l == labels)
                .map(|(_, _, v)| *v)
                .collect()
        }

        /// The last value of a metadata key of `envoy_lambda`.
        pub fn meta(&self, key: &str) -> Option<&str> {
            self.metadata
                .iter()
                .rev()
                .find(|(ns, k, _)| ns == "envoy_lambda" && k == key)
                .map(|(_, _, v)| v.as_str())
        }
    }

    impl Host for FakeHost {
        fn route_target(&self) -> Option<Arc<RouteTarget>> {
            self.route.clone()
        }
        fn header(&self, map: Direction, name: &str) -> Option<&[u8]> {
            self.map(map)
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_bytes())
        }
        fn headers(&self, map: Direction) -> Vec<(String, String)> {
            self.map(map).clone()
        }
        fn set_header(&mut self, map: Direction, name: &str, value: &str) {
            let m = self.map_mut(map);
            m.retain(|(k, _)| k != name);
            m.push((name.to_owned(), value.to_owned()));
        }
        fn add_header(&mut self, map: Direction, name: &str, value: &str) {
            self.map_mut(map).push((name.to_owned(), value.to_owned()));
        }
        fn remove_header(&mut self, map: Direction, name: &str) {
            self.map_mut(map).retain(|(k, _)| k != name);
        }
        fn chunks(&self, body: Body) -> Vec<&[u8]> {
            self.bodies
                .get(key(body))
                .map(|c| c.iter().map(Vec::as_slice).collect())
                .unwrap_or_default()
        }
        fn for_each_chunk(&self, body: Body, f: &mut dyn FnMut(&[u8])) {
            // Like Envoy's: no allocation, so allocation counts measure the filter alone.
            if let Some(chunks) = self.bodies.get(key(body)) {
                chunks.iter().for_each(|c| f(c));
            }
        }
        fn body_len(&self, body: Body) -> u64 {
            self.body(body).len() as u64
        }
        fn drain_body(&mut self, body: Body, len: u64) {
            let mut all = self.body(body);
            all.drain(..(len as usize).min(all.len()));
            if let Some(chunks) = self.bodies.get_mut(key(body)) {
                *chunks = vec![all];
            }
        }
        fn append_body(&mut self, body: Body, data: &[u8]) -> bool {
            match self.bodies.get_mut(key(body)) {
                Some(chunks) => {
                    chunks.push(data.to_vec());
                    true
                }
                None if matches!(body, Body::BufferedRequest | Body::BufferedResponse) => {
                    self.bodies.insert(key(body), vec![data.to_vec()]);
                    true
                }
                None => false,
            }
        }
        fn received_is_buffered(&self, _direction: Direction) -> bool {
            self.received_is_buffered
        }
        fn buffer_limit(&self) -> u64 {
            self.buffer_limit
        }
        fn set_buffer_limit(&mut self, limit: u64) {
            self.buffer_limit = limit;
        }
        fn send_local_reply(
            &mut self,
            status: u32,
            headers: &[(&str, &str)],
            body: &[u8],
            details: &str,
        ) {
            self.reply = Some(LocalReply {
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: body.to_vec(),
                details: details.to_owned(),
            });
        }
        fn secret(&self, index: usize) -> Option<&[u8]> {
            self.secrets.get(&index).map(Vec::as_slice)
        }
        fn source_address(&self) -> Option<&str> {
            self.source.as_deref()
        }
        fn set_metadata(&mut self, namespace: &str, key: &str, value: &str) {
            self.metadata
                .push((namespace.to_owned(), key.to_owned(), value.to_owned()));
        }
        fn add(&mut self, counter: Counter, value: u64) {
            *self.counters.entry(counter).or_default() += value;
        }
        fn send_response_data(&mut self, data: &[u8]) {
            self.sent_data.extend_from_slice(data);
        }
        fn reset_stream(&mut self) {
            self.resets += 1;
        }
        fn schedule(&mut self) -> bool {
            self.scheduled += 1;
            true
        }
        fn set_metadata_number(&mut self, namespace: &str, key: &str, value: f64) {
            self.set_metadata(namespace, key, &value.to_string());
        }
        fn set_metadata_bool(&mut self, namespace: &str, key: &str, value: bool) {
            self.set_metadata(namespace, key, &value.to_string());
        }
        fn record(&mut self, stat: FunctionStat, labels: &[&str], value: u64) {
            let expected = FunctionStat::LABELS.len() + usize::from(stat.extra_label().is_some());
            assert_eq!(labels.len(), expected, "{stat:?} takes {expected} labels");
            self.recorded.push((stat, labels.join("|"), value));
        }
        fn monotonic(&self) -> Instant {
            self.instant.unwrap_or_else(Instant::now)
        }
        fn log(&self, level: LogLevel, message: &str) {
            self.logs.borrow_mut().push((level, message.to_owned()));
        }
        fn response_code_details(&self) -> Option<&str> {
            self.code_details.as_deref()
        }
        fn response_flags(&self) -> Option<u64> {
            self.response_flags
        }
        fn now(&self) -> SystemTime {
            self.time.unwrap_or_else(SystemTime::now)
        }
        fn waker(&mut self) -> Option<Arc<dyn Wake>> {
            self.waker.clone().map(|w| w as Arc<dyn Wake>)
        }
        fn continue_decoding(&mut self) {
            self.continued += 1;
        }
    }
}
