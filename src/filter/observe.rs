//! What one stream tells operators: per-function stats (`fn_*`, labelled `upstream`,
//! `function`, `qualifier`) and dynamic metadata under `envoy_lambda` for access logs and
//! later filters. The stream state machine calls in at each step; nothing here changes the
//! request or the response.
//!
//! Cardinality: label values come from the config or from discovery (a discovered function
//! is labelled by its own name), never from the client; a function a request names but no
//! config or discovery knows is labelled `*`, as are all functions of an upstream with
//! `function_stats: per_upstream`.

use std::sync::Arc;
use std::time::Instant;

use super::stream::METADATA_NAMESPACE;
use crate::config::{Function, FunctionStats, Upstream};
use crate::host::{Direction, FunctionStat, Host};
use crate::lambda::InvocationType;
use crate::lambda::report::parse_report;

/// The label value for "no single function".
const ANY: &str = "*";
/// What Lambda runs for an unqualified name.
const LATEST: &str = "$LATEST";

#[derive(Default)]
pub(super) struct Observation {
    upstream: Option<Arc<Upstream>>,
    function: Option<Arc<Function>>,
    /// When the signed request went on to Lambda.
    sent_at: Option<Instant>,
}

impl Observation {
    pub fn set_upstream(&mut self, upstream: &Arc<Upstream>) {
        self.upstream = Some(Arc::clone(upstream));
    }

    pub fn set_function(&mut self, function: &Arc<Function>) {
        self.function = Some(Arc::clone(function));
    }

    /// `[upstream, function, qualifier]`, or `None` when the upstream has no per-function stats.
    fn labels(&self) -> Option<[&str; 3]> {
        let upstream = self.upstream.as_deref()?;
        match upstream.function_stats {
            FunctionStats::Off => None,
            FunctionStats::PerUpstream => Some([&upstream.name, ANY, ANY]),
            FunctionStats::PerFunction => {
                let (function, qualifier) =
                    self.function.as_deref().map_or((ANY, ANY), function_labels);
                Some([&upstream.name, function, qualifier])
            }
        }
    }

    /// Access-log metadata is on unless the upstream turned it off
    /// (`access_log_metadata: false`); before the upstream is known, on.
    fn metadata_on(&self) -> bool {
        self.upstream
            .as_deref()
            .is_none_or(|u| u.access_log_metadata)
    }

    fn meta(&self, host: &mut dyn Host, key: &str, value: &str) {
        if self.metadata_on() {
            host.set_metadata(METADATA_NAMESPACE, key, value);
        }
    }

    fn meta_number(&self, host: &mut dyn Host, key: &str, value: f64) {
        if self.metadata_on() {
            host.set_metadata_number(METADATA_NAMESPACE, key, value);
        }
    }

    /// The code of the answer the client gets instead of the function's (`error_code`).
    pub fn error_code(&self, host: &mut dyn Host, code: &str) {
        self.meta(host, "error_code", code);
    }

    fn record(&self, host: &mut dyn Host, stat: FunctionStat, value: u64) {
        if let Some(labels) = self.labels() {
            host.record(stat, &labels, value);
        }
    }

    fn record_with(&self, host: &mut dyn Host, stat: FunctionStat, extra: &str, value: u64) {
        if let Some([u, f, q]) = self.labels() {
            host.record(stat, &[u, f, q, extra], value);
        }
    }

    /// The filter answered itself with `code`.
    pub fn rejected(&self, host: &mut dyn Host, code: &'static str) {
        self.error_code(host, code);
        self.record_with(host, FunctionStat::LocalRejections, code, 1);
    }

    /// The signed Invoke request goes on to Lambda.
    pub fn invoked(&mut self, host: &mut dyn Host, invocation: InvocationType, payload_len: u64) {
        if let Some(f) = self.function.as_deref() {
            let (function, qualifier) = function_labels(f);
            self.meta(host, "function", function);
            self.meta(host, "qualifier", qualifier);
        }
        self.meta(host, "invocation_type", invocation.header_value());
        self.meta_number(host, "request_bytes", payload_len as f64);
        self.record(host, FunctionStat::Invocations, 1);
        // Each labelled add costs Envoy a stat-name lookup (thousands of instructions): adding
        // nothing is skipped.
        if payload_len > 0 {
            self.record(host, FunctionStat::PayloadBytesIn, payload_len);
        }
        self.sent_at = Some(host.monotonic());
    }

    /// What the response path's pass over the headers should pick up for [`Self::response_headers`].
    pub fn seen_headers(&self) -> SeenResponseHeaders {
        SeenResponseHeaders {
            keep_tokens: self.metadata_on(),
            ..SeenResponseHeaders::default()
        }
    }

    /// Lambda's response headers came (or Envoy's own answer in their place); `seen` is what
    /// the response path's one pass over them picked up.
    pub fn response_headers(&self, host: &mut dyn Host, seen: &SeenResponseHeaders) {
        if let Some(sent) = self.sent_at {
            let elapsed = host.monotonic().saturating_duration_since(sent);
            self.meta_number(host, "round_trip_ms", elapsed.as_secs_f64() * 1000.0);
            let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            self.record(host, FunctionStat::RoundTripMs, ms);
        }
        if seen.keep_tokens {
            for (value, key) in [
                (&seen.request_id, "request_id"),
                (&seen.executed_version, "executed_version"),
            ] {
                if let Some(value) = value {
                    host.set_metadata(METADATA_NAMESPACE, key, value);
                }
            }
        }
        if let Some(len) = seen.content_length {
            self.meta_number(host, "response_bytes", len as f64);
            if len > 0 {
                self.record(host, FunctionStat::PayloadBytesOut, len);
            }
        }
    }

    /// The function failed (`X-Amz-Function-Error`).
    pub fn function_error(&self, host: &mut dyn Host) {
        let label = match host.header(Direction::Response, "x-amz-function-error") {
            Some(b"Handled") => "Handled",
            Some(b"Unhandled") => "Unhandled",
            _ => "other",
        };
        self.failed(host, label, "function_error");
    }

    /// The function's result is not what `unwrap` can read.
    pub fn malformed_result(&self, host: &mut dyn Host) {
        self.failed(host, "malformed", "malformed_function_response");
    }

    fn failed(&self, host: &mut dyn Host, label: &str, code: &str) {
        self.meta(host, "function_error", label);
        self.error_code(host, code);
        self.record_with(host, FunctionStat::FunctionErrors, label, 1);
    }

    /// The Lambda API answered `status` (the mapped code follows with the body).
    pub fn api_error(&self, host: &mut dyn Host, status: u32) {
        let class = match status {
            429 => "throttled",
            401 | 403 => "access_denied",
            404 => "not_found",
            500..=599 => "server_error",
            _ => "other",
        };
        self.record_with(host, FunctionStat::ApiErrors, class, 1);
    }

    /// The decoded `log_type: tail` log: its `REPORT` line, if whole, into metadata and stats.
    pub fn log_tail(&self, host: &mut dyn Host, log: &str) {
        let Some(report) = parse_report(log) else {
            return;
        };
        self.meta_number(host, "duration_ms", report.duration_ms);
        self.meta_number(host, "billed_duration_ms", report.billed_duration_ms as f64);
        self.meta_number(host, "memory_size_mb", report.memory_size_mb as f64);
        self.meta_number(host, "max_memory_used_mb", report.max_memory_used_mb as f64);
        if self.metadata_on() {
            host.set_metadata_bool(METADATA_NAMESPACE, "cold_start", report.cold_start());
        }
        self.record(
            host,
            FunctionStat::BilledDurationMs,
            report.billed_duration_ms,
        );
        if let Some(init) = report.init_duration_ms {
            self.meta_number(host, "init_duration_ms", init);
            self.record(host, FunctionStat::ColdStarts, 1);
            self.record(host, FunctionStat::InitDurationMs, init.round() as u64);
        }
    }
}

/// `(function, qualifier)` labels: the configured name without an embedded `:qualifier`, and
/// the qualifier (explicit or embedded), `$LATEST` when there is none.
fn function_labels(f: &Function) -> (&str, &str) {
    let raw = f.function_name.as_str();
    match (&f.qualifier, f.function_name.embedded_qualifier()) {
        (Some(q), _) => (raw, q.as_str()),
        (None, Some(q)) => (
            raw.strip_suffix(q.as_str())
                .and_then(|r| r.strip_suffix(':'))
                .unwrap_or(raw),
            q.as_str(),
        ),
        (None, None) => (raw, LATEST),
    }
}

/// The response headers observation needs, picked up during the response path's one pass
/// over the header array (a lookup by name costs Envoy ~1.2k instructions each).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SeenResponseHeaders {
    /// Whether the tokens go to metadata: with `access_log_metadata: false` they are not
    /// copied at all.
    keep_tokens: bool,
    request_id: Option<String>,
    executed_version: Option<String>,
    content_length: Option<u64>,
}

impl SeenResponseHeaders {
    /// One header of the pass (names arrive lower-cased from Envoy).
    pub fn see(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b"x-amzn-requestid" if self.keep_tokens => self.request_id = token(value),
            b"x-amz-executed-version" if self.keep_tokens => self.executed_version = token(value),
            b"content-length" => {
                self.content_length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
            }
            _ => {}
        }
    }
}

/// A header value as a short token (request ids and versions), else nothing.
fn token(value: &[u8]) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$'));
    // All ASCII, so valid UTF-8: the checked conversion only confirms it.
    if ok {
        std::str::from_utf8(value).ok().map(str::to_owned)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_keeps_tokens_and_lengths_and_drops_the_rest() {
        let mut seen = SeenResponseHeaders {
            keep_tokens: true,
            ..SeenResponseHeaders::default()
        };
        seen.see(b"x-amzn-requestid", b"7c9a-11ef");
        seen.see(b"x-amz-executed-version", b"$LATEST");
        seen.see(b"content-length", b" 42 ");
        seen.see(b"x-other", b"ignored");
        assert_eq!(seen.request_id.as_deref(), Some("7c9a-11ef"));
        assert_eq!(seen.executed_version.as_deref(), Some("$LATEST"));
        assert_eq!(seen.content_length, Some(42));

        let fresh = || SeenResponseHeaders {
            keep_tokens: true,
            ..SeenResponseHeaders::default()
        };
        let mut bad = fresh();
        bad.see(b"x-amzn-requestid", b"a b");
        bad.see(b"x-amz-executed-version", &[b'1'; 129]);
        bad.see(b"content-length", b"-1");
        assert_eq!(bad, fresh());
    }

    #[test]
    fn without_metadata_the_pass_copies_no_token_but_still_reads_the_length() {
        let mut seen = SeenResponseHeaders::default();
        seen.see(b"x-amzn-requestid", b"7c9a-11ef");
        seen.see(b"x-amz-executed-version", b"$LATEST");
        seen.see(b"content-length", b"42");
        assert_eq!((seen.request_id, seen.executed_version), (None, None));
        assert_eq!(seen.content_length, Some(42));
    }
}
