//! The streamed response path over the fake host: chunks in, payloads out, cuts and preludes.

use std::sync::Arc;

use super::*;
use crate::config::{FilterConfig, FunctionRef, RouteTarget};
use crate::host::fake::FakeHost;
use crate::host::{Body, Counter, Direction};
use crate::lambda::eventstream::{encode_message, invoke_complete, payload_chunk};
use crate::lambda::{InvokeMode, InvokeOverrides, LogType, ResponseFormat};

const CONFIG: &str = r#"{"name":"l","spec":{"region":"us-east-1","secret_ref":"creds",
    "endpoint":{"scheme":"http","host":"127.0.0.1","port":5000}},
    "functions":[{"name":"f","spec":{"function_name":"f"}}]}"#;

/// A filter that has sent `POST …/response-streaming-invocations` and a host holding
/// Lambda's 200 headers.
fn invoked(overrides: InvokeOverrides) -> (LambdaFilter, FakeHost) {
    let config = FilterConfig::from_json(CONFIG.as_bytes()).unwrap();
    let mut f = LambdaFilter::new(Arc::new(SharedConfig::new(config)));
    let mut h = FakeHost {
        route: Some(Arc::new(RouteTarget {
            upstream: "l".into(),
            function: FunctionRef::Named("f".into()),
            overrides: InvokeOverrides {
                invoke_mode: Some(InvokeMode::ResponseStream),
                ..overrides
            },
        })),
        buffer_limit: 1024 * 1024,
        ..Default::default()
    };
    h.request_headers = [
        (":method", "POST"),
        (":path", "/f"),
        ("content-length", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    h.secrets
        .insert(0, b"access_key: AKID\nsecret_key: s\n".to_vec());
    assert_eq!(
        f.on_request_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    assert!(h.buffer_limit > 1024 * 1024, "the request raised it");
    h.put(Body::ReceivedRequest, &[b"{}"]);
    assert_eq!(f.on_request_body(&mut h, true), BodyStatus::Continue);
    assert_eq!(
        h.request(":path"),
        Some("/2021-11-15/functions/f/response-streaming-invocations")
    );
    h.response_headers = [
        (":status", "200"),
        ("content-type", "application/vnd.amazon.eventstream"),
        ("content-length", "999"),
        ("x-amzn-requestid", "rid"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    (f, h)
}

/// Hands `chunk` to the filter as one response body callback; what the client gets.
fn chunk(
    f: &mut LambdaFilter,
    h: &mut FakeHost,
    pieces: &[&[u8]],
    eos: bool,
) -> (BodyStatus, Vec<u8>) {
    h.put(Body::ReceivedResponse, pieces);
    let s = f.on_response_body(h, eos);
    (s, h.body(Body::ReceivedResponse))
}

fn metadata<'a>(h: &'a FakeHost, key: &str) -> Option<&'a str> {
    h.metadata
        .iter()
        .rev()
        .find(|(ns, k, _)| ns == METADATA_NAMESPACE && k == key)
        .map(|(_, _, v)| v.as_str())
}

#[test]
fn payloads_replace_each_chunk_as_it_comes() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    assert_eq!(
        f.on_response_headers(&mut h, false),
        HeadersStatus::Continue
    );
    assert_eq!(h.response("content-type"), Some("application/octet-stream"));
    assert_eq!(h.response("content-length"), None);
    assert_eq!(
        h.buffer_limit,
        1024 * 1024,
        "the stream gets the limit back"
    );
    let mut s = payload_chunk(b"hello ");
    s.extend(payload_chunk(b"wor"));
    let second = payload_chunk(b"ld");
    // A chunk ends inside a message: its bytes wait, the complete ones pass.
    s.extend_from_slice(&second[..5]);
    assert_eq!(
        chunk(&mut f, &mut h, &[&s[..7], &s[7..]], false),
        (BodyStatus::Continue, b"hello wor".to_vec())
    );
    let mut rest = second[5..].to_vec();
    rest.extend(invoke_complete("{}"));
    assert_eq!(
        chunk(&mut f, &mut h, &[&rest], true),
        (BodyStatus::Continue, b"ld".to_vec())
    );
    assert_eq!(h.count(Counter::StreamedInvocations), 1);
    assert_eq!(h.count(Counter::StreamedBytes), 11);
    assert_eq!(h.resets, 0);
    assert_eq!(metadata(&h, "stream_error"), None);
}

#[test]
fn a_function_set_content_type_reaches_the_client() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    h.set_header(Direction::Response, "content-type", "text/event-stream");
    f.on_response_headers(&mut h, false);
    assert_eq!(h.response("content-type"), Some("text/event-stream"));
}

#[test]
fn a_mid_stream_error_passes_what_came_before_then_cuts() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    f.on_response_headers(&mut h, false);
    let mut s = payload_chunk(b"partial");
    s.extend(invoke_complete(
        r#"{"ErrorCode":"Unhandled","ErrorDetails":"boom\nline"}"#,
    ));
    assert_eq!(
        chunk(&mut f, &mut h, &[&s], false),
        (BodyStatus::Continue, b"partial".to_vec())
    );
    assert_eq!(h.resets, 0, "not before the bytes are encoded");
    assert_eq!(h.scheduled, 1);
    // Whatever else comes is dropped, and the end of the stream is held back.
    assert_eq!(
        chunk(&mut f, &mut h, &[&payload_chunk(b"x")], true),
        (BodyStatus::StopIterationNoBuffer, vec![])
    );
    f.on_scheduled(&mut h, STREAM_CUT_EVENT);
    assert_eq!(h.resets, 1);
    assert_eq!(h.count(Counter::StreamFunctionErrors), 1);
    assert_eq!(metadata(&h, "stream_error"), Some("function_error"));
    assert_eq!(metadata(&h, "stream_error_code"), Some("Unhandled"));
    assert_eq!(metadata(&h, "stream_error_details"), Some("boom line"));
}

#[test]
fn a_fault_in_the_last_chunk_is_sent_from_the_scheduled_event() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    f.on_response_headers(&mut h, false);
    let mut s = payload_chunk(b"good ");
    let mut bad = payload_chunk(b"bad");
    let n = bad.len();
    bad[n - 1] ^= 1;
    s.extend(bad);
    assert_eq!(
        chunk(&mut f, &mut h, &[&s], true),
        (BodyStatus::StopIterationNoBuffer, vec![])
    );
    f.on_scheduled(&mut h, STREAM_CUT_EVENT);
    assert_eq!(h.sent_data, b"good ");
    assert_eq!(h.resets, 0);
    f.on_scheduled(&mut h, STREAM_CUT_EVENT);
    assert_eq!(h.resets, 1);
    assert_eq!(h.count(Counter::StreamFramingErrors), 1);
    assert_eq!(metadata(&h, "stream_error_code"), Some("message_crc"));
}

#[test]
fn a_stream_that_ends_inside_a_message_or_without_completion_is_cut() {
    for tail in [payload_chunk(b"cut")[..9].to_vec(), Vec::new()] {
        let (mut f, mut h) = invoked(InvokeOverrides::default());
        f.on_response_headers(&mut h, false);
        let mut s = payload_chunk(b"a");
        s.extend(&tail);
        chunk(&mut f, &mut h, &[&s], true);
        f.on_scheduled(&mut h, STREAM_CUT_EVENT);
        f.on_scheduled(&mut h, STREAM_CUT_EVENT);
        assert_eq!(h.sent_data, b"a");
        assert_eq!(h.resets, 1);
        let code = if tail.is_empty() {
            "no_invoke_complete"
        } else {
            "truncated"
        };
        assert_eq!(metadata(&h, "stream_error_code"), Some(code));
    }
}

#[test]
fn exception_events_are_function_errors() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    f.on_response_headers(&mut h, false);
    let e = encode_message(
        &[
            (":message-type", "exception"),
            (":exception-type", "ServiceException"),
        ],
        b"{}",
    );
    chunk(&mut f, &mut h, &[&e], false);
    f.on_scheduled(&mut h, STREAM_CUT_EVENT);
    assert_eq!(h.resets, 1);
    assert_eq!(metadata(&h, "stream_error_code"), Some("ServiceException"));
}

#[test]
fn the_log_tail_goes_to_metadata() {
    let (mut f, mut h) = invoked(InvokeOverrides {
        log_type: Some(LogType::Tail),
        ..Default::default()
    });
    assert_eq!(h.request("x-amz-log-type"), Some("Tail"));
    f.on_response_headers(&mut h, false);
    chunk(
        &mut f,
        &mut h,
        &[&invoke_complete(r#"{"LogResult":"aGVsbG8="}"#)],
        true,
    );
    assert_eq!(metadata(&h, "log_result"), Some("hello"));
}

fn unwrap_route() -> InvokeOverrides {
    InvokeOverrides {
        response_format: Some(ResponseFormat::Unwrap),
        ..Default::default()
    }
}

#[test]
fn the_prelude_sets_status_headers_and_cookies() {
    let (mut f, mut h) = invoked(unwrap_route());
    assert_eq!(
        f.on_response_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    let prelude =
        br#"{"statusCode":201,"headers":{"Content-Type":"text/plain"},"cookies":["a=1"]}"#;
    // The prelude spans two messages; its end and the body start share a third.
    let (s, out) = chunk(&mut f, &mut h, &[&payload_chunk(&prelude[..10])], false);
    assert_eq!((s, out), (BodyStatus::StopIterationNoBuffer, vec![]));
    let mut rest = payload_chunk(&prelude[10..]);
    rest.extend(payload_chunk(b"\0\0\0\0\0\0\0\0body "));
    assert_eq!(
        chunk(&mut f, &mut h, &[&rest], false),
        (BodyStatus::Continue, b"body ".to_vec())
    );
    assert_eq!(h.response(":status"), Some("201"));
    assert_eq!(h.response("content-type"), Some("text/plain"));
    assert_eq!(h.response("set-cookie"), Some("a=1"));
    assert_eq!(h.response("x-amzn-requestid"), Some("rid"));
    let mut end = payload_chunk(b"more");
    end.extend(invoke_complete("{}"));
    assert_eq!(
        chunk(&mut f, &mut h, &[&end], true),
        (BodyStatus::Continue, b"more".to_vec())
    );
}

#[test]
fn a_bad_prelude_is_a_502_like_buffered_unwrap() {
    let (mut f, mut h) = invoked(unwrap_route());
    f.on_response_headers(&mut h, false);
    let p = payload_chunk(b"{\"statusCode\":200,\"headers\":{\"a b\":\"x\"}}\0\0\0\0\0\0\0\0");
    chunk(&mut f, &mut h, &[&p], false);
    let reply = h.reply.as_ref().expect("a local reply");
    assert_eq!(reply.status, 502);
    assert!(String::from_utf8_lossy(&reply.body).contains("malformed_function_response"));
    assert_eq!(h.count(Counter::FunctionErrors), 1);
}

#[test]
fn a_prelude_without_its_end_is_bounded() {
    let (mut f, mut h) = invoked(unwrap_route());
    f.on_response_headers(&mut h, false);
    let big = vec![b' '; 40 * 1024];
    chunk(&mut f, &mut h, &[&payload_chunk(&big)], false);
    assert!(h.reply.is_none());
    chunk(&mut f, &mut h, &[&payload_chunk(&big)], false);
    let reply = h.reply.as_ref().expect("a 502 past 64 KiB");
    assert_eq!(reply.status, 502);
}

#[test]
fn a_function_error_before_the_prelude_ends_is_a_502() {
    let (mut f, mut h) = invoked(unwrap_route());
    f.on_response_headers(&mut h, false);
    let e = invoke_complete(r#"{"ErrorCode":"Unhandled"}"#);
    chunk(&mut f, &mut h, &[&e], true);
    let reply = h.reply.as_ref().expect("a local reply");
    assert_eq!(reply.status, 502);
    assert!(String::from_utf8_lossy(&reply.body).contains("function_error"));
    assert_eq!(h.resets, 0);
    assert_eq!(h.count(Counter::StreamFunctionErrors), 1);
}

#[test]
fn a_function_content_type_means_no_prelude() {
    let (mut f, mut h) = invoked(unwrap_route());
    h.set_header(Direction::Response, "content-type", "text/csv");
    assert_eq!(
        f.on_response_headers(&mut h, false),
        HeadersStatus::Continue
    );
    assert_eq!(h.response("content-type"), Some("text/csv"));
}

#[test]
fn errors_before_the_stream_map_as_buffered() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    h.response_headers = vec![
        (":status".into(), "429".into()),
        ("x-amzn-errortype".into(), "TooManyRequestsException".into()),
        ("x-amzn-requestid".into(), "rid".into()),
    ];
    assert_eq!(
        f.on_response_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    assert_eq!(h.count(Counter::StreamedInvocations), 0);
    h.put(Body::ReceivedResponse, &[br#"{"message":"Rate exceeded"}"#]);
    f.on_response_body(&mut h, true);
    assert_eq!(h.response(":status"), Some("429"));
}

#[test]
fn an_empty_200_is_a_502() {
    let (mut f, mut h) = invoked(InvokeOverrides::default());
    assert_eq!(
        f.on_response_headers(&mut h, true),
        HeadersStatus::StopIteration
    );
    assert_eq!(h.reply.as_ref().map(|r| r.status), Some(502));
    assert_eq!(h.count(Counter::StreamFramingErrors), 1);
}
