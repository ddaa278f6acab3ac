//! What the filter logic needs from Envoy, as a safe trait. The ABI layer implements it over
//! the real callbacks; tests implement it with `fake::FakeHost`.
//!
//! Borrowing mirrors Envoy's rules: bytes returned by a getter borrow `self` and so cannot be
//! held across a setter, because Envoy may invalidate them when headers or bodies change.

use std::sync::Arc;
use std::time::SystemTime;

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
}

impl Counter {
    pub const ALL: [Counter; 5] = [
        Counter::Invocations,
        Counter::FunctionErrors,
        Counter::ApiErrors,
        Counter::LocalRejections,
        Counter::UpstreamFailures,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Invocations => "invocations",
            Counter::FunctionErrors => "function_errors",
            Counter::ApiErrors => "api_errors",
            Counter::LocalRejections => "local_rejections",
            Counter::UpstreamFailures => "upstream_failures",
        }
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

    fn increment(&mut self, counter: Counter);
    fn log(&self, level: LogLevel, message: &str);
    fn now(&self) -> SystemTime;
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
        pub time: Option<SystemTime>,
        pub code_details: Option<String>,
        pub response_flags: Option<u64>,
        /// Every line logged, with its level.
        pub logs: std::cell::RefCell<Vec<(LogLevel, String)>>,
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
        fn increment(&mut self, counter: Counter) {
            *self.counters.entry(counter).or_default() += 1;
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
