//! The response path: log tail to metadata, function errors, Lambda API errors, `unwrap`.

use std::borrow::Cow;

use base64::Engine as _;

use super::api_error_reply::{Answer, upstream_failure_answer};
use super::{BUFFER_HEADROOM, LambdaFilter, Rewrite, State, ensure_buffer_limit, parse_u64};
use super::{BodyStatus, HeadersStatus, METADATA_NAMESPACE};
use crate::filter::reply::LocalReply;
use crate::host::{Counter, Direction, Host, body_chunks, replace_body};
use crate::lambda::unwrap::{has_body, unwrap};
use crate::lambda::{InvocationType, LAMBDA_SYNC_PAYLOAD_LIMIT, LogType, ResponseFormat};

impl LambdaFilter {
    pub fn on_response_headers(
        &mut self,
        host: &mut dyn Host,
        end_of_stream: bool,
    ) -> HeadersStatus {
        let State::Invoked(options) = &self.state else {
            return HeadersStatus::Continue;
        };
        // The few (Copy) options the response needs; no clone of the whole set.
        let (log_type, invocation_type, request_format, response_format, streams) = (
            options.log_type,
            options.invocation_type,
            options.request_format,
            options.response_format,
            options.streams(),
        );
        // One pass over the headers instead of three lookups by name (each lookup copies and
        // lower-cases the name inside Envoy): most answers are a plain 200.
        let (mut status, mut has_log, mut function_error) = (0u32, false, false);
        let mut seen = self.obs.seen_headers();
        host.for_each_header(Direction::Response, &mut |name, value| match name {
            b":status" => status = parse_u64(value).unwrap_or(0) as u32,
            b"x-amz-log-result" => has_log = true,
            b"x-amz-function-error" => function_error = true,
            _ => seen.see(name, value),
        });
        self.obs.response_headers(host, &seen);
        // The function's log tail goes to dynamic metadata, never to the client.
        if has_log {
            if log_type == LogType::Tail {
                let decoded = host
                    .header(Direction::Response, "x-amz-log-result")
                    .and_then(|log| base64::engine::general_purpose::STANDARD.decode(log).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                host.set_metadata(METADATA_NAMESPACE, "log_result", &decoded);
                self.obs.log_tail(host, &decoded);
            }
            host.remove_header(Direction::Response, "x-amz-log-result");
        }
        // A function error comes back as 200 with `X-Amz-Function-Error`: it must not look
        // like a success, so the status becomes 502 (the header and error payload are kept).
        if function_error {
            host.set_header(Direction::Response, ":status", "502");
            host.increment(Counter::FunctionErrors);
            self.obs.function_error(host);
            self.state = State::Done;
            return HeadersStatus::Continue;
        }
        let rewrite = if status >= 400 {
            Self::error_rewrite(host, status)
        } else if streams && status == 200 {
            return self.start_stream(host, end_of_stream, response_format, log_type);
        } else if response_format == ResponseFormat::Unwrap
            && invocation_type == InvocationType::Sync
            && status == 200
        {
            Some(Rewrite::Unwrap(request_format))
        } else {
            None
        };
        if let Some(Rewrite::ApiError(status)) = rewrite {
            self.obs.api_error(host, status);
        }
        let Some(rewrite) = rewrite else {
            self.state = State::Done;
            return HeadersStatus::Continue;
        };
        self.state = State::Rewriting(rewrite);
        // The body is buffered whole to be rewritten: make room for Lambda's largest answer.
        ensure_buffer_limit(host, LAMBDA_SYNC_PAYLOAD_LIMIT + BUFFER_HEADROOM);
        if end_of_stream {
            self.rewrite_response(host, rewrite);
            return HeadersStatus::Continue;
        }
        HeadersStatus::StopIteration
    }

    pub fn on_response_body(&mut self, host: &mut dyn Host, end_of_stream: bool) -> BodyStatus {
        if matches!(self.state, State::Streaming(_) | State::CutPending(_)) {
            return self.stream_body(host, end_of_stream);
        }
        let State::Rewriting(rewrite) = self.state else {
            return BodyStatus::Continue;
        };
        if !end_of_stream {
            return BodyStatus::StopIterationAndBuffer;
        }
        self.rewrite_response(host, rewrite);
        BodyStatus::Continue
    }

    fn rewrite_response(&mut self, host: &mut dyn Host, rewrite: Rewrite) {
        self.state = State::Done;
        // Lambda's answer is at most 6 MB and must be parsed whole anyway.
        let payload = body_chunks(host, Direction::Response).concat();
        // The body may borrow from `payload` (an unwrapped body without escapes): copied once,
        // into Envoy's buffer.
        let owned = |(status, headers, body): Answer| (status, headers, Cow::Owned(body));
        let (status, headers, body): (u32, Vec<(String, String)>, Cow<[u8]>) = match rewrite {
            Rewrite::ApiError(upstream_status) => {
                owned(self.api_error_answer(host, upstream_status, &payload))
            }
            Rewrite::UpstreamFailure(failure) => {
                self.obs.error_code(host, failure.reply().1);
                owned(upstream_failure_answer(host, failure))
            }
            Rewrite::Unwrap(format) => match unwrap(format, &payload) {
                Ok(r) => (r.status, r.headers, r.body),
                Err(e) => {
                    host.increment(Counter::FunctionErrors);
                    self.obs.malformed_result(host);
                    let reply = LocalReply::new(502, "malformed_function_response", e.to_string());
                    owned((
                        502,
                        vec![("content-type".into(), "application/json".into())],
                        reply.json_body(),
                    ))
                }
            },
        };
        set_response_head(host, status, &headers);
        // 204/304 end at their headers: no content-length (and `unwrap` left no body).
        if has_body(status) {
            host.set_header(
                Direction::Response,
                "content-length",
                &body.len().to_string(),
            );
        }
        replace_body(host, Direction::Response, &body);
    }
}

/// Replaces the response's status and headers with those the function described. Lambda's
/// own headers (request id, executed version) stay.
pub(super) fn set_response_head(host: &mut dyn Host, status: u32, headers: &[(String, String)]) {
    for (name, _) in host.headers(Direction::Response) {
        if !name.starts_with(':') && !name.starts_with("x-amzn-") && !name.starts_with("x-amz-") {
            host.remove_header(Direction::Response, &name);
        }
    }
    host.set_header(Direction::Response, ":status", &status.to_string());
    for (name, value) in headers {
        if name == "content-length" || name == "transfer-encoding" || name.starts_with(':') {
            continue;
        }
        host.add_header(Direction::Response, name, value);
    }
}
