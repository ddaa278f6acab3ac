//! One HTTP stream through the filter: the state it moves through and what both directions share.
//!
//! Request path ([`request`]): `request_headers` resolves the route's function and
//! options and strips client headers; the body is hashed chunk by chunk, in place, while Envoy
//! buffers it (or, for event formats, wrapped into the event at the end); at end of stream the
//! request is rewritten to `POST /2015-03-31/functions/…/invocations`, signed and continued.
//! Response path ([`response`]): function errors become 502, Lambda API errors
//! are mapped, and `unwrap` turns the function's result into the HTTP response it describes.
//! Everything runs on the worker thread; nothing blocks.

use std::sync::Arc;
use std::time::SystemTime;

use super::observe::Observation;
use super::reply::LocalReply;
use super::shared::SharedConfig;
use super::upstream_failure::UpstreamFailure;
use crate::config::{Function, Upstream};
use crate::credentials::{Identity, WaitTicket};
use crate::host::{Counter, Host};
use crate::lambda::events::HttpRequest;
use crate::lambda::{InvokeOptions, RequestFormat};
use crate::sigv4::PayloadHasher;

mod api_error_reply;
mod request;
mod response;
mod streaming;

/// Envoy's headers status values this filter returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersStatus {
    Continue,
    StopIteration,
}

/// Envoy's body status values this filter returns.
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

/// Dynamic metadata namespace for what the filter exposes to access logs and later filters.
pub const METADATA_NAMESPACE: &str = "envoy_lambda";

/// The request being collected.
struct Pending {
    upstream: Arc<Upstream>,
    function: Arc<Function>,
    options: InvokeOptions,
    /// Raw format: the payload hash, fed as chunks arrive.
    hasher: PayloadHasher,
    /// Event formats: the client's request line and headers, captured before stripping.
    request: Option<Box<HttpRequest>>,
    /// Raw format: what of the client's request stays on the Invoke request.
    kept: Kept,
}

/// What of the client's request line and headers stays on the Invoke request as it came
/// (each header left alone saves Envoy a set or removal, ~1.3k instructions).
#[derive(Clone, Copy, Debug, Default)]
struct Kept {
    /// Raw bodies: the client's content-length (Envoy's codec checked it).
    content_length: Option<u64>,
    /// The client's method is already `POST`.
    post: bool,
}

/// The scheduler event that resumes a stream waiting for credentials.
pub const CREDENTIALS_EVENT: u64 = 1;
/// The scheduler event that cuts a streamed response once what was passed on is encoded.
pub const STREAM_CUT_EVENT: u64 = 0;

/// A request ready to be signed, paused until its upstream's first credentials arrive (or
/// its deadline passes). Dropping it leaves the waiters' list.
struct Awaiting {
    upstream: Arc<Upstream>,
    function: Arc<Function>,
    options: InvokeOptions,
    payload_hex: String,
    payload_len: u64,
    kept: Kept,
    identity: Arc<Identity>,
    since: SystemTime,
    deadline: SystemTime,
    ticket: Option<WaitTicket>,
}

/// How the end of a request went: sent on, or paused for credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finished {
    Sent,
    Waiting,
}

/// How the response must be rewritten once its body is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewrite {
    /// The function's result describes the HTTP response.
    Unwrap(RequestFormat),
    /// The Lambda API answered with an error status.
    ApiError(u32),
    /// Envoy could not get Lambda's answer (its own local reply).
    UpstreamFailure(UpstreamFailure),
}

enum State {
    /// The route has no envoy-lambda config: the filter does nothing.
    PassThrough,
    /// Waiting for the end of the request body.
    Collecting(Box<Pending>),
    /// The request is complete and waits for its upstream's first credentials.
    AwaitingCredentials(Box<Awaiting>),
    /// Sent to Lambda; the response is checked when it comes.
    Invoked(InvokeOptions),
    /// Buffering the response body to rewrite it at its end.
    Rewriting(Rewrite),
    /// Passing an `InvokeWithResponseStream` answer on, event by event.
    Streaming(Box<streaming::Streaming>),
    /// The stream must be cut once what was passed on has been encoded (`on_scheduled`),
    /// after sending these bytes (decoded from the upstream's last chunk, held back so that
    /// the stream does not end cleanly).
    CutPending(Vec<u8>),
    /// Answered locally, or finished.
    Done,
}

pub struct LambdaFilter {
    shared: Arc<SharedConfig>,
    state: State,
    /// The upstream the request was sent to, for the response path's error answers.
    invoked: Option<Arc<Upstream>>,
    /// The stream's buffer limit before the request raised it: a streamed response gets it
    /// back (memory per stream stays bounded whatever the response size).
    limit_before: Option<u64>,
    /// Per-function stats and access-log metadata.
    obs: Observation,
}

impl LambdaFilter {
    pub fn new(shared: Arc<SharedConfig>) -> Self {
        Self {
            shared,
            state: State::PassThrough,
            invoked: None,
            limit_before: None,
            obs: Observation::default(),
        }
    }

    fn reject_headers(&mut self, host: &mut dyn Host, reply: LocalReply) -> HeadersStatus {
        self.reject(host, reply);
        HeadersStatus::StopIteration
    }

    fn reject(&mut self, host: &mut dyn Host, reply: LocalReply) {
        self.state = State::Done;
        host.increment(Counter::LocalRejections);
        self.obs.rejected(host, reply.code);
        host.send_local_reply(
            reply.status,
            &[("content-type", "application/json")],
            &reply.json_body(),
            &reply.details(),
        );
    }
}

/// Raises the stream's buffer limit to `wanted` (never lowers one the operator set higher);
/// returns the limit before.
fn ensure_buffer_limit(host: &mut dyn Host, wanted: u64) -> u64 {
    let before = host.buffer_limit();
    if before < wanted {
        host.set_buffer_limit(wanted);
    }
    before
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod streaming_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wait_tests;
