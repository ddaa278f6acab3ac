//! One HTTP stream through the filter.
//!
//! Request path: `request_headers` resolves the route's function and strips client headers;
//! the body is hashed chunk by chunk, in place, while Envoy buffers it; at end of stream the
//! request is rewritten to `POST /2015-03-31/functions/…/invocations`, signed and continued.
//! Everything runs on the worker thread and nothing blocks: signing is a few µs of CPU.

use std::sync::Arc;

use super::client_headers::must_not_reach_aws;
use super::reply::LocalReply;
use super::shared::SharedConfig;
use crate::config::{Function, Upstream};
use crate::host::{Counter, Host, LogLevel};
use crate::lambda::LAMBDA_SYNC_PAYLOAD_LIMIT;
use crate::sigv4::{sign_invoke, InvokeToSign, PayloadHasher};

/// Envoy's request-headers status values this filter returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersStatus {
    Continue,
    StopIteration,
}

/// Envoy's request-body status values this filter returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStatus {
    Continue,
    StopIterationAndBuffer,
    StopIterationNoBuffer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailersStatus {
    Continue,
    StopIteration,
}

/// Head-room above Lambda's limit so that our own 413 answers before Envoy's buffer overflows.
const BUFFER_HEADROOM: u64 = 1024 * 1024;

enum State {
    /// The route has no envoy-lambda config: the filter does nothing.
    PassThrough,
    /// Waiting for the end of the body, hashing it as it arrives.
    Collecting {
        upstream: Arc<Upstream>,
        function: Arc<Function>,
        hasher: PayloadHasher,
    },
    /// Sent to Lambda; the response is checked for a function error.
    Invoked,
    /// Answered locally.
    Rejected,
}

pub struct LambdaFilter {
    shared: Arc<SharedConfig>,
    state: State,
}

impl LambdaFilter {
    pub fn new(shared: Arc<SharedConfig>) -> Self {
        Self {
            shared,
            state: State::PassThrough,
        }
    }

    pub fn on_request_headers(
        &mut self,
        host: &mut dyn Host,
        end_of_stream: bool,
    ) -> HeadersStatus {
        let Some(target) = host.route_target() else {
            return HeadersStatus::Continue;
        };
        let config = &self.shared.config;
        let Some(upstream) = config.upstream(&target.upstream).cloned() else {
            return self.reject_headers(
                host,
                LocalReply::new(
                    500,
                    "unknown_upstream",
                    format!(
                        "the route names upstream '{}', which the filter config does not define",
                        target.upstream
                    ),
                ),
            );
        };
        let Some(function) = upstream.functions.get(&target.function).cloned() else {
            return self.reject_headers(
                host,
                LocalReply::new(
                    404,
                    "unknown_function",
                    format!(
                        "upstream '{}' has no function '{}'",
                        upstream.name, target.function
                    ),
                ),
            );
        };
        if let Some(len) = host.request_header("content-length").and_then(parse_u64) {
            if len > LAMBDA_SYNC_PAYLOAD_LIMIT {
                return self.reject_headers(host, too_large(len));
            }
        }
        strip_client_headers(host);
        let hasher = PayloadHasher::new();
        if end_of_stream {
            return match self.invoke(host, &upstream, &function, hasher) {
                Ok(()) => HeadersStatus::Continue,
                Err(reply) => self.reject_headers(host, reply),
            };
        }
        // Envoy's default 1 MiB buffer would refuse payloads Lambda accepts.
        let wanted = LAMBDA_SYNC_PAYLOAD_LIMIT + BUFFER_HEADROOM;
        if host.request_buffer_limit() < wanted {
            host.set_request_buffer_limit(wanted);
        }
        self.state = State::Collecting {
            upstream,
            function,
            hasher,
        };
        HeadersStatus::StopIteration
    }

    pub fn on_request_body(&mut self, host: &mut dyn Host, end_of_stream: bool) -> BodyStatus {
        let State::Collecting { hasher, .. } = &mut self.state else {
            return BodyStatus::Continue;
        };
        if host.received_is_buffered_request_body() {
            // The received data is the whole buffer (a resumed stream): start over with it.
            *hasher = PayloadHasher::new();
        }
        host.for_each_received_request_chunk(&mut |chunk| hasher.update(chunk));
        if hasher.len() > LAMBDA_SYNC_PAYLOAD_LIMIT {
            let reply = too_large(hasher.len());
            self.reject(host, reply);
            return BodyStatus::StopIterationNoBuffer;
        }
        if !end_of_stream {
            return BodyStatus::StopIterationAndBuffer;
        }
        match self.finish(host) {
            Ok(()) => BodyStatus::Continue,
            Err(reply) => {
                self.reject(host, reply);
                BodyStatus::StopIterationNoBuffer
            }
        }
    }

    /// With trailers, no body callback has end_of_stream set: the trailers are the end.
    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> TrailersStatus {
        if !matches!(self.state, State::Collecting { .. }) {
            return TrailersStatus::Continue;
        }
        match self.finish(host) {
            Ok(()) => TrailersStatus::Continue,
            Err(reply) => {
                self.reject(host, reply);
                TrailersStatus::StopIteration
            }
        }
    }

    /// A function error comes back as 200 with `X-Amz-Function-Error`: it must not look like a
    /// success, so the status becomes 502 (the header and the error payload are kept).
    pub fn on_response_headers(&mut self, host: &mut dyn Host) -> HeadersStatus {
        if matches!(self.state, State::Invoked)
            && host.response_header("x-amz-function-error").is_some()
        {
            host.set_response_header(":status", "502");
            host.increment(Counter::FunctionErrors);
        }
        HeadersStatus::Continue
    }

    fn finish(&mut self, host: &mut dyn Host) -> Result<(), LocalReply> {
        let State::Collecting {
            upstream,
            function,
            hasher,
        } = std::mem::replace(&mut self.state, State::Rejected)
        else {
            return Ok(());
        };
        self.invoke(host, &upstream, &function, hasher)
    }

    /// Rewrites the request into a signed Invoke call.
    fn invoke(
        &mut self,
        host: &mut dyn Host,
        upstream: &Upstream,
        function: &Function,
        hasher: PayloadHasher,
    ) -> Result<(), LocalReply> {
        let digest = hasher.finish();
        let secret = &self.shared.config.secrets()[upstream.secret];
        let creds = host
            .secret(upstream.secret)
            .ok_or(crate::credentials::CredentialsError::Unavailable)
            .and_then(|bytes| self.shared.credentials[upstream.secret].get(bytes))
            .map_err(|e| {
                let message = format!(
                    "no usable AWS credentials for upstream '{}' (secret '{}'): {e}",
                    upstream.name, secret.name
                );
                host.log(LogLevel::Warn, &message);
                LocalReply::new(503, "credentials_unavailable", message)
            })?;
        let signed = sign_invoke(
            InvokeToSign {
                authority: &upstream.endpoint.authority,
                path_and_query: &function.invoke_path,
                payload_sha256_hex: digest.hex(),
                region: &upstream.region,
                time: host.now(),
            },
            &creds,
        )
        .map_err(|e| LocalReply::new(500, "signing_failed", e.to_string()))?;

        host.set_request_header(":method", "POST");
        host.set_request_header(":path", &function.invoke_path);
        host.set_request_header(":authority", &upstream.endpoint.authority);
        host.set_request_header("content-length", &digest.len().to_string());
        for (name, value) in &signed {
            host.set_request_header(name, value);
        }
        host.increment(Counter::Invocations);
        self.state = State::Invoked;
        Ok(())
    }

    fn reject_headers(&mut self, host: &mut dyn Host, reply: LocalReply) -> HeadersStatus {
        self.reject(host, reply);
        HeadersStatus::StopIteration
    }

    fn reject(&mut self, host: &mut dyn Host, reply: LocalReply) {
        self.state = State::Rejected;
        host.increment(Counter::LocalRejections);
        host.send_local_reply(
            reply.status,
            &[("content-type", "application/json")],
            &reply.json_body(),
            &reply.details(),
        );
    }
}

fn strip_client_headers(host: &mut dyn Host) {
    for name in host.request_header_names() {
        if must_not_reach_aws(&name) {
            host.remove_request_header(&name);
        }
    }
}

fn too_large(len: u64) -> LocalReply {
    LocalReply::new(
        413,
        "payload_too_large",
        format!(
            "the request body ({len} bytes) exceeds Lambda's synchronous payload limit of {LAMBDA_SYNC_PAYLOAD_LIMIT} bytes"
        ),
    )
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests;
