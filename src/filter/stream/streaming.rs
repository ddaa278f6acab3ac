//! The response path of `invoke_mode: response_stream`: Lambda's 200 carries an event stream;
//! each response body chunk Envoy hands over is decoded, and its bytes are replaced by the
//! `PayloadChunk` payloads it completes, so the client gets the function's bytes as they come.
//! At most one partial message (the decoder's) and, with `unwrap`, the HTTP prelude (≤ 64 KiB)
//! are held per stream; Envoy's buffer limit is not raised.
//!
//! How a stream that cannot end well is ended: once the client has the status, a function
//! error (`InvokeComplete` with an `ErrorCode`, an exception event) or a bad frame cuts it —
//! the bytes decoded before the fault are passed on, then the stream is reset from a
//! scheduled event (HTTP/2: RST_STREAM; HTTP/1.1: the connection is closed without the
//! terminating chunk). A reset, not trailers: HTTP/1.1 clients rarely read trailers, and a
//! reset is what every client reports as an error. Before the status is sent (an `unwrap`
//! prelude not read yet) the client gets a 502 instead, as a buffered invocation would.

use base64::Engine as _;

use super::response::set_response_head;
use super::{BodyStatus, HeadersStatus, LambdaFilter, METADATA_NAMESPACE, State};
use crate::filter::reply::LocalReply;
use crate::host::{Body, Counter, Direction, Host};
use crate::lambda::eventstream::{Decoder, FrameError, Message};
use crate::lambda::unwrap::{has_body, unwrap_prelude};
use crate::lambda::{LogType, ResponseFormat};

/// Lambda's own eventstream media type, and the Function URL prelude's: neither describes the
/// function's bytes, so neither reaches the client.
const EVENTSTREAM_TYPE: &str = "application/vnd.amazon.eventstream";
const PRELUDE_TYPE: &str = "application/vnd.awslambda.http-integration-response";
/// Ends the JSON prelude of an HTTP response stream.
const PRELUDE_END: [u8; 8] = [0; 8];
/// The prelude (status, headers, cookies) may take at most this much.
pub const MAX_PRELUDE: usize = 64 * 1024;
/// Function-written error details kept in metadata, at most.
const MAX_DETAILS: usize = 1024;

pub(super) struct Streaming {
    decoder: Decoder,
    events: Events,
    /// `unwrap`: the stream's first bytes until the prelude's end; `None` once the status and
    /// headers are sent.
    prelude: Option<Vec<u8>>,
    log_type: LogType,
}

/// What the messages of one body chunk brought.
#[derive(Default)]
struct Events {
    /// The payload bytes to pass on (reused from chunk to chunk).
    payload: Vec<u8>,
    /// `InvokeComplete` was seen: nothing after it counts.
    complete: bool,
    log_result: Option<String>,
    /// The function failed: (error code, details).
    failure: Option<(String, String)>,
}

impl Events {
    fn on_message(&mut self, m: Message<'_>) {
        if self.complete || self.failure.is_some() {
            return;
        }
        match (m.str_header(":message-type"), m.str_header(":event-type")) {
            (Some("event"), Some("PayloadChunk")) => self.payload.extend_from_slice(m.payload),
            (Some("event"), Some("InvokeComplete")) => {
                self.complete = true;
                let v: serde_json::Value = serde_json::from_slice(m.payload).unwrap_or_default();
                let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
                self.log_result = field("LogResult");
                if let Some(code) = field("ErrorCode") {
                    self.failure = Some((code, field("ErrorDetails").unwrap_or_default()));
                }
            }
            (Some(kind @ ("exception" | "error")), _) => {
                let code = m
                    .str_header(":exception-type")
                    .or_else(|| m.str_header(":error-code"))
                    .unwrap_or(kind);
                let details = m
                    .str_header(":error-message")
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(m.payload).into_owned());
                self.failure = Some((code.to_owned(), details));
            }
            // Other events (none today) are not the function's bytes.
            _ => {}
        }
    }
}

/// Why a stream is cut.
enum Fault {
    Function {
        code: String,
        details: String,
    },
    Framing(FrameError),
    /// The event stream ended cleanly but without `InvokeComplete`.
    NoCompletion,
}

impl Fault {
    fn kind(&self) -> &'static str {
        match self {
            Fault::Function { .. } => "function_error",
            Fault::Framing(_) | Fault::NoCompletion => "framing_error",
        }
    }

    fn code(&self) -> &str {
        match self {
            Fault::Function { code, .. } => code,
            Fault::Framing(e) => e.code(),
            Fault::NoCompletion => "no_invoke_complete",
        }
    }

    fn details(&self) -> String {
        match self {
            Fault::Function { details, .. } => details.clone(),
            Fault::Framing(e) => e.to_string(),
            Fault::NoCompletion => "the event stream ended without InvokeComplete".into(),
        }
    }

    fn counter(&self) -> Counter {
        match self {
            Fault::Function { .. } => Counter::StreamFunctionErrors,
            Fault::Framing(_) | Fault::NoCompletion => Counter::StreamFramingErrors,
        }
    }
}

impl LambdaFilter {
    /// Lambda's 200 to `InvokeWithResponseStream`: the body is an event stream.
    pub(super) fn start_stream(
        &mut self,
        host: &mut dyn Host,
        end_of_stream: bool,
        response_format: ResponseFormat,
        log_type: LogType,
    ) -> HeadersStatus {
        host.increment(Counter::StreamedInvocations);
        // The request's raised limit is for the request; the stream passes through.
        if let Some(limit) = self.limit_before.take() {
            host.set_buffer_limit(limit);
        }
        // Lambda's `Content-Type` is the stream's (`ResponseStreamContentType`): the type the
        // function set, the prelude's, or the eventstream's own.
        let lambda_type = host
            .header(Direction::Response, "content-type")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let function_type = lambda_type
            .filter(|t| !media_type_is(t, EVENTSTREAM_TYPE) && !media_type_is(t, PRELUDE_TYPE));
        // Lambda's framing of the event stream is not the client's.
        host.remove_header(Direction::Response, "content-length");
        // With `unwrap` the prelude is read unless the function said its bytes are of a type
        // of their own (it then wrote no prelude).
        let prelude = response_format == ResponseFormat::Unwrap && function_type.is_none();
        if !prelude {
            let content_type = function_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            host.set_header(Direction::Response, "content-type", content_type);
        }
        // A 200 without a single event is not what Lambda sends: the client gets a 502 (its
        // status is not sent yet).
        let headers_held = prelude || end_of_stream;
        self.state = State::Streaming(Box::new(Streaming {
            decoder: Decoder::new(),
            events: Events::default(),
            prelude: headers_held.then(Vec::new),
            log_type,
        }));
        if end_of_stream {
            self.stream_fault(host, Fault::NoCompletion, true, Vec::new());
            return HeadersStatus::StopIteration;
        }
        if prelude {
            HeadersStatus::StopIteration
        } else {
            HeadersStatus::Continue
        }
    }

    pub(super) fn stream_body(&mut self, host: &mut dyn Host, end_of_stream: bool) -> BodyStatus {
        let State::Streaming(s) = &mut self.state else {
            // Cut, waiting for the scheduled reset: nothing more reaches the client (and the
            // end of the stream is held back with it).
            drain(host);
            return BodyStatus::StopIterationNoBuffer;
        };
        let Streaming {
            decoder,
            events,
            log_type,
            ..
        } = &mut **s;
        events.payload.clear();
        let mut framing = Ok(());
        host.for_each_chunk(Body::ReceivedResponse, &mut |chunk| {
            if framing.is_ok() {
                framing = decoder.feed(chunk, &mut |m| events.on_message(m));
            }
        });
        drain(host);
        let mut bytes = std::mem::take(&mut events.payload);
        if let Some(log) = events.log_result.take() {
            if *log_type == LogType::Tail {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(log)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                host.set_metadata(METADATA_NAMESPACE, "log_result", &decoded);
            }
        }
        let fault = if let Err(e) = framing {
            Some(Fault::Framing(e))
        } else if let Some((code, details)) = events.failure.take() {
            Some(Fault::Function { code, details })
        } else if end_of_stream {
            match decoder.finish() {
                Err(e) => Some(Fault::Framing(e)),
                Ok(()) if !events.complete => Some(Fault::NoCompletion),
                Ok(()) => None,
            }
        } else {
            None
        };
        if let Some(prelude) = &mut s.prelude {
            prelude.extend_from_slice(&bytes);
            bytes.clear();
            match read_prelude(prelude) {
                PreludeRead::Incomplete if fault.is_none() && !end_of_stream => {
                    return BodyStatus::StopIterationNoBuffer;
                }
                PreludeRead::Incomplete if fault.is_none() => {
                    let reason = "the stream ended before the end of its HTTP prelude";
                    return self.bad_prelude(host, reason.into());
                }
                PreludeRead::Incomplete => {}
                PreludeRead::TooLarge => {
                    let reason = format!(
                        "the HTTP prelude is longer than {MAX_PRELUDE} bytes (or lacks its 8 NUL bytes)"
                    );
                    return self.bad_prelude(host, reason);
                }
                PreludeRead::Done(end) => {
                    let rest = prelude.split_off(end + PRELUDE_END.len());
                    prelude.truncate(end);
                    let head = match unwrap_prelude(prelude) {
                        Ok(head) => head,
                        Err(e) => return self.bad_prelude(host, e.to_string()),
                    };
                    set_response_head(host, head.status, &head.headers);
                    if has_body(head.status) {
                        bytes = rest;
                    }
                    s.prelude = None;
                }
            }
        }
        let State::Streaming(s) = &mut self.state else {
            return BodyStatus::StopIterationNoBuffer;
        };
        if let Some(fault) = fault {
            return self.stream_fault(host, fault, end_of_stream, bytes);
        }
        pass_on(host, &bytes);
        // Hand the buffer back for the next chunk.
        bytes.clear();
        s.events.payload = bytes;
        if end_of_stream {
            self.state = State::Done;
        }
        BodyStatus::Continue
    }

    /// The prelude could not be read: the client has no status yet, so it gets a 502.
    fn bad_prelude(&mut self, host: &mut dyn Host, reason: String) -> BodyStatus {
        self.state = State::Done;
        host.increment(Counter::FunctionErrors);
        host.set_metadata(METADATA_NAMESPACE, "stream_error", "function_error");
        host.set_metadata(METADATA_NAMESPACE, "stream_error_code", "bad_prelude");
        host.set_metadata(METADATA_NAMESPACE, "stream_error_details", &reason);
        let reply = LocalReply::new(502, "malformed_function_response", reason);
        host.send_local_reply(
            502,
            &[("content-type", "application/json")],
            &reply.json_body(),
            &reply.details(),
        );
        BodyStatus::StopIterationNoBuffer
    }

    /// Ends a stream that cannot end well: metadata and counter, then a 502 if the client has
    /// no status yet, else `bytes` (decoded before the fault) passed on and the stream reset
    /// after them. On the upstream's last chunk (`last`) the chunk cannot carry them (it would
    /// end the stream cleanly): they are sent from the scheduled event, before the reset.
    fn stream_fault(
        &mut self,
        host: &mut dyn Host,
        fault: Fault,
        last: bool,
        bytes: Vec<u8>,
    ) -> BodyStatus {
        let headers_sent = matches!(&self.state, State::Streaming(s) if s.prelude.is_none());
        host.increment(fault.counter());
        let details = capped(&fault.details());
        host.set_metadata(METADATA_NAMESPACE, "stream_error", fault.kind());
        host.set_metadata(METADATA_NAMESPACE, "stream_error_code", fault.code());
        host.set_metadata(METADATA_NAMESPACE, "stream_error_details", &details);
        if !headers_sent {
            self.state = State::Done;
            let (error, message) = match &fault {
                Fault::Function { code, .. } => (
                    "function_error",
                    format!("the function failed before its HTTP prelude ended: {code}"),
                ),
                _ => (
                    "malformed_function_response",
                    format!("the response stream is not valid: {details}"),
                ),
            };
            let reply = LocalReply::new(502, error, message);
            host.send_local_reply(
                502,
                &[("content-type", "application/json")],
                &reply.json_body(),
                &reply.details(),
            );
            return BodyStatus::StopIterationNoBuffer;
        }
        let held = if last {
            bytes
        } else {
            pass_on(host, &bytes);
            Vec::new()
        };
        self.state = State::CutPending(held);
        if host.schedule() {
            return if last {
                BodyStatus::StopIterationNoBuffer
            } else {
                BodyStatus::Continue
            };
        }
        drain(host);
        self.state = State::Done;
        host.reset_stream();
        BodyStatus::StopIterationNoBuffer
    }

    /// The event asked for by [`Host::schedule`]: the bytes before a fault were encoded, now
    /// the stream is cut.
    pub(super) fn on_stream_cut(&mut self, host: &mut dyn Host) {
        let State::CutPending(held) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        if !held.is_empty() {
            host.add(Counter::StreamedBytes, held.len() as u64);
            // Re-enters this filter's body hook, which finds the stream borrowed and passes
            // the bytes on as they are.
            host.send_response_data(&held);
            // The reset comes from one more event: a reset in the same turn would cancel
            // HTTP/2 frames not yet written.
            self.state = State::CutPending(Vec::new());
            if host.schedule() {
                return;
            }
            self.state = State::Done;
        }
        host.reset_stream();
    }
}

enum PreludeRead {
    Incomplete,
    TooLarge,
    /// The prelude's JSON ends at this offset; the 8 NUL bytes follow.
    Done(usize),
}

fn read_prelude(buf: &[u8]) -> PreludeRead {
    // JSON has no NUL byte: the first one starts the end marker.
    match buf
        .windows(PRELUDE_END.len())
        .position(|w| w == PRELUDE_END)
    {
        Some(end) if end <= MAX_PRELUDE => PreludeRead::Done(end),
        Some(_) => PreludeRead::TooLarge,
        None if buf.len() > MAX_PRELUDE + PRELUDE_END.len() => PreludeRead::TooLarge,
        None => PreludeRead::Incomplete,
    }
}

/// `bytes` become the chunk's data (it was drained), and are counted.
fn pass_on(host: &mut dyn Host, bytes: &[u8]) {
    if !bytes.is_empty() {
        host.add(Counter::StreamedBytes, bytes.len() as u64);
        host.append_body(Body::ReceivedResponse, bytes);
    }
}

fn drain(host: &mut dyn Host) {
    let n = host.body_len(Body::ReceivedResponse);
    if n > 0 {
        host.drain_body(Body::ReceivedResponse, n);
    }
}

/// `type` is `media` (case-insensitive), with or without parameters.
fn media_type_is(value: &str, media: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(media))
}

/// At most `MAX_DETAILS` bytes, cut at a character boundary, control characters as spaces.
fn capped(s: &str) -> String {
    let mut end = s.len().min(MAX_DETAILS);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
