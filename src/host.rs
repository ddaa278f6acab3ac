//! What the filter logic needs from Envoy, as a safe trait. The ABI layer implements it over
//! the real callbacks; tests implement it with [`fake::FakeHost`].
//!
//! Borrowing mirrors Envoy's rules: bytes returned by a getter borrow `self` and so cannot be
//! held across a setter, because Envoy may invalidate them when headers change.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::RouteTarget;

/// The filter's counters (defined once per filter config, shown as `<namespace>.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Requests signed and sent to Lambda.
    Invocations,
    /// Lambda answered with `X-Amz-Function-Error`.
    FunctionErrors,
    /// Requests answered by the filter itself (bad route, too large, no credentials …).
    LocalRejections,
}

impl Counter {
    pub const ALL: [Counter; 3] = [
        Counter::Invocations,
        Counter::FunctionErrors,
        Counter::LocalRejections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::Invocations => "invocations",
            Counter::FunctionErrors => "function_errors",
            Counter::LocalRejections => "local_rejections",
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

pub trait Host {
    /// The route's per-route config, if the matched route has one for this filter.
    fn route_target(&self) -> Option<Arc<RouteTarget>>;

    fn request_header(&self, name: &str) -> Option<&[u8]>;
    /// Names of every request header present (lower-case, pseudo-headers included).
    fn request_header_names(&self) -> Vec<String>;
    fn set_request_header(&mut self, name: &str, value: &str);
    fn remove_request_header(&mut self, name: &str);

    fn response_header(&self, name: &str) -> Option<&[u8]>;
    fn set_response_header(&mut self, name: &str, value: &str);

    /// Feeds `f` the request body chunks received in this callback, in place (no copy).
    fn for_each_received_request_chunk(&self, f: &mut dyn FnMut(&[u8]));
    /// True when the "received" body is in fact the whole buffered body (a resumed stream).
    fn received_is_buffered_request_body(&self) -> bool;
    fn request_buffer_limit(&self) -> u64;
    fn set_request_buffer_limit(&mut self, limit: u64);

    fn send_local_reply(
        &mut self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
        details: &str,
    );

    /// Current bytes of the `index`-th secret of the filter config (`None` if Envoy has none).
    fn secret(&self, index: usize) -> Option<&[u8]>;

    fn increment(&mut self, counter: Counter);
    fn log(&self, level: LogLevel, message: &str);
    fn now(&self) -> SystemTime;
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
        pub received: Vec<Vec<u8>>,
        pub received_is_buffered: bool,
        pub buffer_limit: u64,
        pub reply: Option<LocalReply>,
        pub secrets: HashMap<usize, Vec<u8>>,
        pub counters: HashMap<Counter, u64>,
        pub logs: Vec<(LogLevel, String)>,
        pub time: Option<SystemTime>,
    }

    fn get<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a [u8]> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_bytes())
    }

    fn set(h: &mut Vec<(String, String)>, name: &str, value: &str) {
        h.retain(|(k, _)| k != name);
        h.push((name.to_owned(), value.to_owned()));
    }

    impl FakeHost {
        pub fn request(&self, name: &str) -> Option<&str> {
            get(&self.request_headers, name).and_then(|v| std::str::from_utf8(v).ok())
        }

        pub fn count(&self, c: Counter) -> u64 {
            self.counters.get(&c).copied().unwrap_or(0)
        }
    }

    impl Host for FakeHost {
        fn route_target(&self) -> Option<Arc<RouteTarget>> {
            self.route.clone()
        }
        fn request_header(&self, name: &str) -> Option<&[u8]> {
            get(&self.request_headers, name)
        }
        fn request_header_names(&self) -> Vec<String> {
            self.request_headers
                .iter()
                .map(|(k, _)| k.clone())
                .collect()
        }
        fn set_request_header(&mut self, name: &str, value: &str) {
            set(&mut self.request_headers, name, value);
        }
        fn remove_request_header(&mut self, name: &str) {
            self.request_headers.retain(|(k, _)| k != name);
        }
        fn response_header(&self, name: &str) -> Option<&[u8]> {
            get(&self.response_headers, name)
        }
        fn set_response_header(&mut self, name: &str, value: &str) {
            set(&mut self.response_headers, name, value);
        }
        fn for_each_received_request_chunk(&self, f: &mut dyn FnMut(&[u8])) {
            self.received.iter().for_each(|c| f(c));
        }
        fn received_is_buffered_request_body(&self) -> bool {
            self.received_is_buffered
        }
        fn request_buffer_limit(&self) -> u64 {
            self.buffer_limit
        }
        fn set_request_buffer_limit(&mut self, limit: u64) {
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
        fn increment(&mut self, counter: Counter) {
            *self.counters.entry(counter).or_default() += 1;
        }
        fn log(&self, _level: LogLevel, _message: &str) {}
        fn now(&self) -> SystemTime {
            self.time.unwrap_or_else(SystemTime::now)
        }
    }
}
