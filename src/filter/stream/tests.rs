use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::request::strip_port;
use super::*;
use crate::config::{FilterConfig, RouteTarget};
use crate::host::fake::FakeHost;
use crate::host::{Body, Direction};
use crate::lambda::InvokeOverrides;
use crate::lambda::{InvocationType, LogType, RequestFormat, ResponseFormat};

const CONFIG: &str = r#"{"name":"moto","spec":{"region":"us-east-1","secret_ref":"creds",
    "endpoint":{"scheme":"http","host":"127.0.0.1","port":5000}},
    "functions":[{"name":"echo","spec":{"function_name":"echo"}},
                 {"name":"echo-live","spec":{"function_name":"echo","qualifier":"live"}}]}"#;

fn filter() -> LambdaFilter {
    let config = FilterConfig::from_json(CONFIG.as_bytes()).unwrap();
    LambdaFilter::new(Arc::new(SharedConfig::new(config)))
}

fn route(function: &str, overrides: InvokeOverrides) -> Option<Arc<RouteTarget>> {
    Some(Arc::new(RouteTarget {
        upstream: "moto".into(),
        function: crate::config::FunctionRef::Named(function.into()),
        overrides,
    }))
}

fn host(function: &str, headers: &[(&str, &str)]) -> FakeHost {
    let mut h = FakeHost {
        route: route(function, InvokeOverrides::default()),
        buffer_limit: 1024 * 1024,
        source: Some("192.0.2.7:41234".into()),
        ..Default::default()
    };
    h.request_headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    h.secrets.insert(
        0,
        b"access_key: AKIDEXAMPLE\nsecret_key: s3cr3t-value\n".to_vec(),
    );
    h
}

fn get_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        (":method", "GET"),
        (":path", "/lambda/echo?x=1"),
        (":authority", "gateway.example"),
        ("authorization", "Bearer client-token"),
        ("cookie", "session=abc"),
        ("x-amz-date", "19700101T000000Z"),
        ("x-amz-invocation-type", "Event"),
        ("accept", "application/json"),
    ]
}

/// Sends a body through the filter the way Envoy does: chunks, then an empty final call.
fn send_body(f: &mut LambdaFilter, h: &mut FakeHost, body: &[u8], chunk: usize) -> BodyStatus {
    for c in body.chunks(chunk) {
        h.put(
            Body::ReceivedRequest,
            &[&c[..c.len() / 2], &c[c.len() / 2..]],
        );
        let s = f.on_request_body(h, false);
        if s != BodyStatus::StopIterationAndBuffer {
            return s;
        }
        h.buffer_received(Direction::Request);
    }
    h.put(Body::ReceivedRequest, &[]);
    f.on_request_body(h, true)
}

fn sent_body(h: &FakeHost) -> Vec<u8> {
    [h.body(Body::BufferedRequest), h.body(Body::ReceivedRequest)].concat()
}

#[test]
fn routes_without_config_pass_through_untouched() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = None;
    assert_eq!(f.on_request_headers(&mut h, true), HeadersStatus::Continue);
    assert_eq!(h.request(":path"), Some("/lambda/echo?x=1"));
    assert_eq!(h.request("authorization"), Some("Bearer client-token"));
}

#[test]
fn get_without_body_becomes_a_signed_invoke() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    assert_eq!(f.on_request_headers(&mut h, true), HeadersStatus::Continue);
    assert_eq!(h.request(":method"), Some("POST"));
    assert_eq!(
        h.request(":path"),
        Some("/2015-03-31/functions/echo/invocations")
    );
    assert_eq!(h.request(":authority"), Some("127.0.0.1:5000"));
    assert_eq!(h.request("content-length"), Some("0"));
    assert_eq!(
        h.request("x-amz-content-sha256"),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    let auth = h.request("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(
        auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"),
        "{auth}"
    );
    // The client's own credentials and reserved headers are gone; ordinary ones stay.
    assert_eq!(h.request("cookie"), None);
    // Sync is Lambda's default: no header for it, and the client's own was dropped.
    assert_eq!(h.request("x-amz-invocation-type"), None);
    assert_ne!(h.request("x-amz-date"), Some("19700101T000000Z"));
    assert_eq!(h.request("accept"), Some("application/json"));
    assert_eq!(h.count(Counter::Invocations), 1);
}

#[test]
fn body_is_hashed_chunk_by_chunk_and_signed_at_the_end() {
    let mut f = filter();
    let mut h = host(
        "echo-live",
        &[
            (":method", "POST"),
            (":path", "/x"),
            ("transfer-encoding", "chunked"),
        ],
    );
    assert_eq!(
        f.on_request_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    assert!(h.buffer_limit > crate::lambda::LAMBDA_SYNC_PAYLOAD_LIMIT);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        send_body(&mut f, &mut h, &body, 16 * 1024),
        BodyStatus::Continue
    );
    assert_eq!(
        sent_body(&h),
        body,
        "the raw payload is the body, untouched"
    );
    assert_eq!(
        h.request("x-amz-content-sha256"),
        Some(hex::encode(Sha256::digest(&body)).as_str())
    );
    assert_eq!(h.request("content-length"), Some("100000"));
    assert_eq!(h.request("transfer-encoding"), None);
    assert_eq!(
        h.request(":path"),
        Some("/2015-03-31/functions/echo/invocations?Qualifier=live")
    );
}

#[test]
fn a_post_keeps_its_method_header_and_a_put_becomes_a_post() {
    // FakeHost's set_header moves a header to the end: a `:method` still first was not set.
    for (method, set) in [("POST", false), ("PUT", true)] {
        let mut f = filter();
        let mut h = host(
            "echo",
            &[(":method", method), (":path", "/x"), ("accept", "*/*")],
        );
        assert_eq!(f.on_request_headers(&mut h, true), HeadersStatus::Continue);
        assert_eq!(h.request(":method"), Some("POST"));
        let first = &h.request_headers[0].0;
        assert_eq!(first != ":method", set, "{method}: {:?}", h.request_headers);
    }
}

#[test]
fn a_resumed_stream_rehashes_the_whole_buffer() {
    let mut f = filter();
    let mut h = host("echo", &[(":method", "POST")]);
    f.on_request_headers(&mut h, false);
    h.put(Body::ReceivedRequest, &[b"hello "]);
    f.on_request_body(&mut h, false);
    h.put(Body::ReceivedRequest, &[b"hello ", b"world"]);
    h.received_is_buffered = true;
    f.on_request_body(&mut h, true);
    assert_eq!(
        h.request("x-amz-content-sha256"),
        Some(hex::encode(Sha256::digest(b"hello world")).as_str())
    );
}

#[test]
fn trailers_end_the_request() {
    let mut f = filter();
    let mut h = host("echo", &[(":method", "POST")]);
    f.on_request_headers(&mut h, false);
    h.put(Body::ReceivedRequest, &[b"abc"]);
    f.on_request_body(&mut h, false);
    h.put(Body::ReceivedRequest, &[]);
    assert_eq!(f.on_request_trailers(&mut h), TrailersStatus::Continue);
    assert_eq!(
        h.request("x-amz-content-sha256"),
        Some(hex::encode(Sha256::digest(b"abc")).as_str())
    );
}

fn reply_json(h: &FakeHost) -> serde_json::Value {
    serde_json::from_slice(&h.reply.as_ref().unwrap().body).unwrap()
}

#[test]
fn declared_oversize_body_gets_413_before_any_byte() {
    let mut f = filter();
    let mut h = host(
        "echo",
        &[(":method", "POST"), ("content-length", "6291457")],
    );
    assert_eq!(
        f.on_request_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    let reply = h.reply.as_ref().unwrap();
    assert_eq!(reply.status, 413);
    assert_eq!(reply.details, "envoy_lambda_payload_too_large");
    assert_eq!(reply_json(&h)["error"], "payload_too_large");
    assert_eq!(h.count(Counter::LocalRejections), 1);
    assert_eq!(h.count(Counter::Invocations), 0);
}

#[test]
fn streamed_oversize_body_gets_413_without_calling_aws() {
    let mut f = filter();
    let mut h = host("echo", &[(":method", "POST")]);
    f.on_request_headers(&mut h, false);
    let body = vec![b'x'; 7 * 1024 * 1024];
    assert_eq!(
        send_body(&mut f, &mut h, &body, 1024 * 1024),
        BodyStatus::StopIterationNoBuffer
    );
    assert_eq!(h.reply.as_ref().unwrap().status, 413);
    assert!(h.request("authorization").is_none());
    // Later callbacks of a rejected stream do nothing.
    assert_eq!(f.on_request_body(&mut h, true), BodyStatus::Continue);
}

#[test]
fn async_has_its_own_payload_limit() {
    let mut f = filter();
    let mut h = host(
        "echo",
        &[(":method", "POST"), ("content-length", "1048577")],
    );
    h.route = route(
        "echo",
        InvokeOverrides {
            invocation_type: Some(InvocationType::Async),
            ..Default::default()
        },
    );
    f.on_request_headers(&mut h, false);
    assert_eq!(h.reply.as_ref().unwrap().status, 413);
    assert!(
        reply_json(&h)["message"]
            .as_str()
            .unwrap()
            .contains("asynchronous")
    );
}

#[test]
fn unknown_function_and_upstream_are_clear_errors() {
    let mut f = filter();
    let mut h = host("nope", &get_headers());
    f.on_request_headers(&mut h, true);
    assert_eq!(h.reply.as_ref().unwrap().status, 404);
    assert!(
        reply_json(&h)["message"]
            .as_str()
            .unwrap()
            .contains("'nope'")
    );

    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = Some(Arc::new(RouteTarget {
        upstream: "other".into(),
        function: crate::config::FunctionRef::Named("echo".into()),
        overrides: InvokeOverrides::default(),
    }));
    f.on_request_headers(&mut h, true);
    assert_eq!(h.reply.as_ref().unwrap().status, 500);
    assert_eq!(reply_json(&h)["error"], "unknown_upstream");
}

#[test]
fn a_client_chosen_name_is_capped_and_escaped_in_the_404() {
    let mut f = filter();
    let path = format!("/lambda/a%0Ab%1B%5B31m{}", "x".repeat(5000));
    let mut h = host("unused", &[(":method", "GET"), (":path", &path)]);
    h.route = Some(Arc::new(RouteTarget {
        upstream: "moto".into(),
        function: crate::config::FunctionRef::FromPath(
            crate::config::PathTemplate::parse("/lambda/{function}").unwrap(),
        ),
        overrides: InvokeOverrides::default(),
    }));
    f.on_request_headers(&mut h, true);
    assert_eq!(h.reply.as_ref().unwrap().status, 404);
    let message = reply_json(&h)["message"].as_str().unwrap().to_owned();
    assert!(message.contains(r"'a\nb\u{1b}[31mxxx"), "{message}");
    assert!(!message.chars().any(char::is_control), "{message}");
    assert!(message.ends_with("x…'"), "{message}");
    assert!(message.chars().count() < 200, "{} chars", message.len());
}

#[test]
fn missing_or_bad_credentials_answer_503_without_leaking() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.secrets.clear();
    f.on_request_headers(&mut h, true);
    assert_eq!(h.reply.as_ref().unwrap().status, 503);
    assert_eq!(reply_json(&h)["error"], "credentials_unavailable");

    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.secrets.insert(0, b"secret_key: hunter2\n".to_vec());
    f.on_request_headers(&mut h, true);
    let body = String::from_utf8(h.reply.as_ref().unwrap().body.clone()).unwrap();
    assert!(
        body.contains("access_key") && !body.contains("hunter2"),
        "{body}"
    );
}

#[test]
fn missing_credentials_are_logged_once_per_period_not_per_request() {
    let shared = Arc::new(SharedConfig::new(
        FilterConfig::from_json(CONFIG.as_bytes()).unwrap(),
    ));
    let t0 = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    let warnings = |at: u64| {
        let mut f = LambdaFilter::new(Arc::clone(&shared));
        let mut h = host("echo", &get_headers());
        h.secrets.clear();
        h.time = Some(t0 + std::time::Duration::from_secs(at));
        f.on_request_headers(&mut h, true);
        assert_eq!(reply_json(&h)["error"], "credentials_unavailable");
        let logs = h.logs.borrow();
        logs.iter()
            .filter(|(level, _)| *level == crate::host::LogLevel::Warn)
            .map(|(_, line)| line.clone())
            .collect::<Vec<_>>()
    };
    let first = warnings(0);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].contains("secret 'creds'"), "{first:?}");
    for at in 1..5 {
        assert!(warnings(at).is_empty(), "request at +{at}s logged again");
    }
    let later = warnings(10);
    assert_eq!(later.len(), 1, "{later:?}");
    assert!(
        later[0].ends_with("(4 more since the last such line)"),
        "{later:?}"
    );
}

fn respond(f: &mut LambdaFilter, h: &mut FakeHost, headers: &[(&str, &str)], body: &[u8]) {
    h.response_headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let s = f.on_response_headers(h, body.is_empty());
    if body.is_empty() {
        return;
    }
    if s == HeadersStatus::StopIteration {
        h.put(Body::ReceivedResponse, &[&body[..body.len() / 2]]);
        assert_eq!(
            f.on_response_body(h, false),
            BodyStatus::StopIterationAndBuffer
        );
        h.buffer_received(Direction::Response);
        h.put(Body::ReceivedResponse, &[&body[body.len() / 2..]]);
    } else {
        h.put(Body::ReceivedResponse, &[body]);
    }
    assert_eq!(f.on_response_body(h, true), BodyStatus::Continue);
}

fn client_body(h: &FakeHost) -> Vec<u8> {
    [
        h.body(Body::BufferedResponse),
        h.body(Body::ReceivedResponse),
    ]
    .concat()
}

#[test]
fn function_error_becomes_502_and_keeps_header_and_payload() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    let payload = br#"{"errorMessage":"boom","errorType":"Exception"}"#;
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("x-amz-function-error", "Unhandled")],
        payload,
    );
    assert_eq!(h.response(":status"), Some("502"));
    assert_eq!(h.response("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(client_body(&h), payload);
    assert_eq!(h.count(Counter::FunctionErrors), 1);
}

#[test]
fn a_raw_success_is_left_alone() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("content-type", "application/json")],
        b"{\"a\":1}",
    );
    assert_eq!(h.response(":status"), Some("200"));
    assert_eq!(client_body(&h), b"{\"a\":1}");
    assert_eq!(h.count(Counter::FunctionErrors), 0);
}

/// Realistic AWS answers whose text must not reach the client.
const INVALID_SIGNATURE: &[u8] = b"{\"message\":\"The request signature we calculated does not match the signature you provided.\\n\\nThe Canonical String for this request should have been\\n'POST\\n/2015-03-31/functions/echo/invocations\\n\\nhost:lambda.us-east-1.amazonaws.com\\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\\nx-amz-security-token:IQoJb3JpZ2luX2VjEHAaCXVzLWVhc3QtMSJHMEUCIQDkR2Pq8vJ0dW5Wm7W0Xy\\n'\"}";

fn warnings(h: &FakeHost) -> Vec<String> {
    h.logs
        .borrow()
        .iter()
        .filter(|(l, _)| *l == crate::host::LogLevel::Warn)
        .map(|(_, m)| m.clone())
        .collect()
}

#[test]
fn lambda_api_errors_are_mapped_with_a_json_body() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.code_details = Some("via_upstream".into());
    f.on_request_headers(&mut h, true);
    respond(
        &mut f,
        &mut h,
        &[
            (":status", "429"),
            ("x-amzn-errortype", "TooManyRequestsException:http://internal.amazon.com/coral/"),
            ("retry-after", "3"),
            ("content-type", "application/json"),
            ("x-amzn-requestid", "req-1"),
            ("x-amz-apigw-id", "internal-id"),
            ("x-amzn-remapped-host", "internal-host"),
        ],
        br#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#,
    );
    assert_eq!(h.response(":status"), Some("429"));
    assert_eq!(h.response("retry-after"), Some("3"));
    assert_eq!(h.response("x-amzn-requestid"), Some("req-1"));
    assert_eq!(
        h.response("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    let mut names: Vec<&str> = h.response_headers.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            ":status",
            "content-length",
            "content-type",
            "retry-after",
            "x-amzn-errortype",
            "x-amzn-requestid"
        ]
    );
    let body: serde_json::Value = serde_json::from_slice(&client_body(&h)).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "error": "throttled",
            "message": "Lambda throttled the invocation (429 TooManyRequestsException)",
            "request_id": "req-1",
        })
    );
    assert_eq!(
        h.response("content-length"),
        Some(client_body(&h).len().to_string().as_str())
    );
    assert_eq!(h.count(Counter::ApiErrors), 1);
    assert_eq!(
        warnings(&h),
        [
            "envoy-lambda: upstream 'moto': Lambda answered 429 -> throttled (request id req-1): \
          TooManyRequestsException: Rate Exceeded."
        ]
    );
}

#[test]
fn aws_text_goes_to_one_paced_log_line_never_to_the_client() {
    let f_shared = filter().shared;
    for i in 0..3 {
        let mut f = LambdaFilter::new(Arc::clone(&f_shared));
        let mut h = host("echo", &get_headers());
        h.time = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 + i));
        f.on_request_headers(&mut h, true);
        respond(
            &mut f,
            &mut h,
            &[
                (":status", "403"),
                ("x-amzn-errortype", "InvalidSignatureException"),
                ("x-amzn-requestid", "rid-9"),
            ],
            INVALID_SIGNATURE,
        );
        let body = String::from_utf8(client_body(&h)).unwrap();
        assert_eq!(h.response(":status"), Some("403"));
        assert!(
            !body.contains("signature we calculated") && !body.contains("IQoJ"),
            "{body}"
        );
        assert!(body.contains(r#""request_id":"rid-9""#), "{body}");
        let logged = warnings(&h);
        if i == 0 {
            assert_eq!(logged.len(), 1, "{logged:?}");
            assert!(logged[0].ends_with("InvalidSignatureException: The request signature we calculated does not match the signature you provided."), "{logged:?}");
        } else {
            assert!(logged.is_empty(), "paced: {logged:?}");
        }
    }
}

#[test]
fn an_upstream_may_show_the_redacted_aws_message() {
    let config = CONFIG.replace(
        r#""secret_ref":"creds","#,
        r#""secret_ref":"creds","expose_aws_error_message":true,"#,
    );
    let shared = Arc::new(SharedConfig::new(
        FilterConfig::from_json(config.as_bytes()).unwrap(),
    ));
    let mut f = LambdaFilter::new(shared);
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    respond(
        &mut f,
        &mut h,
        &[(":status", "403"), ("x-amzn-requestid", "r")],
        br#"{"message":"Credential=AKIAIOSFODNN7EXAMPLE/20261201/us-east-1/lambda/aws4_request, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef is bad\nsecond line"}"#,
    );
    let body: serde_json::Value = serde_json::from_slice(&client_body(&h)).unwrap();
    assert_eq!(body["error"], "lambda_access_denied");
    assert_eq!(
        body["aws_message"],
        "Credential=[redacted], Signature=[redacted] is bad"
    );
}

#[test]
fn envoys_own_failures_are_not_lambda_errors() {
    for (status, details, flags, code) in [
        (
            "503",
            "upstream_reset_before_response_started{remote_connection_failure}",
            0x20,
            "upstream_unreachable",
        ),
        ("504", "response_timeout", 0x4, "upstream_timeout"),
    ] {
        let mut f = filter();
        let mut h = host("echo", &get_headers());
        h.code_details = Some(details.into());
        h.response_flags = Some(flags);
        f.on_request_headers(&mut h, true);
        respond(
            &mut f,
            &mut h,
            &[(":status", status), ("content-type", "text/plain")],
            b"upstream connect error or disconnect/reset before headers",
        );
        assert_eq!(h.response(":status"), Some(status));
        let body: serde_json::Value = serde_json::from_slice(&client_body(&h)).unwrap();
        assert_eq!(body["error"], code, "{body}");
        assert!(body.get("request_id").is_none(), "{body}");
        assert_eq!(h.count(Counter::UpstreamFailures), 1);
        assert_eq!(h.count(Counter::ApiErrors), 0);
    }
    // Another filter's local reply is left as it is.
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.code_details = Some("request_rate_limited".into());
    f.on_request_headers(&mut h, true);
    respond(&mut f, &mut h, &[(":status", "429")], b"slow down");
    assert_eq!(client_body(&h), b"slow down");
    assert_eq!(
        h.count(Counter::ApiErrors) + h.count(Counter::UpstreamFailures),
        0
    );
}

#[test]
fn log_tail_goes_to_metadata_and_never_to_the_client() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = route(
        "echo",
        InvokeOverrides {
            log_type: Some(LogType::Tail),
            ..Default::default()
        },
    );
    f.on_request_headers(&mut h, true);
    assert_eq!(h.request("x-amz-log-type"), Some("Tail"));
    let log = base64::engine::general_purpose::STANDARD.encode("START RequestId: 1\nEND\n");
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("x-amz-log-result", &log)],
        b"{}",
    );
    assert_eq!(h.response("x-amz-log-result"), None);
    let log_results: Vec<_> = h.metadata.iter().filter(|m| m.1 == "log_result").collect();
    assert_eq!(
        log_results,
        vec![&(
            "envoy_lambda".to_string(),
            "log_result".to_string(),
            "START RequestId: 1\nEND\n".to_string()
        )]
    );
}

#[test]
fn client_context_and_invocation_type_are_sent_and_signed() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = route(
        "echo",
        InvokeOverrides {
            invocation_type: Some(InvocationType::DryRun),
            client_context: Some("eyJjdXN0b20iOnt9fQ==".into()),
            ..Default::default()
        },
    );
    f.on_request_headers(&mut h, true);
    assert_eq!(h.request("x-amz-invocation-type"), Some("DryRun"));
    assert_eq!(
        h.request("x-amz-client-context"),
        Some("eyJjdXN0b20iOnt9fQ==")
    );
    assert!(h
        .request("authorization")
        .unwrap()
        .contains("SignedHeaders=host;x-amz-client-context;x-amz-content-sha256;x-amz-date;x-amz-invocation-type,"));
}

fn apigw_route(format: RequestFormat, response: ResponseFormat) -> Option<Arc<RouteTarget>> {
    route(
        "echo",
        InvokeOverrides {
            request_format: Some(format),
            response_format: Some(response),
            ..Default::default()
        },
    )
}

#[test]
fn apigw_v2_event_replaces_the_body_and_is_what_gets_signed() {
    let mut f = filter();
    let mut h = host(
        "echo",
        &[
            (":method", "POST"),
            (":path", "/orders/7?expand=items&expand=customer"),
            (":authority", "api.example.com"),
            ("content-type", "application/json"),
            ("cookie", "session=abc; theme=dark"),
            ("authorization", "Bearer user-token"),
            ("x-request-id", "rid-1"),
            ("user-agent", "curl/8"),
        ],
    );
    h.route = apigw_route(RequestFormat::ApigwV2, ResponseFormat::Unwrap);
    assert_eq!(
        f.on_request_headers(&mut h, false),
        HeadersStatus::StopIteration
    );
    assert_eq!(
        send_body(&mut f, &mut h, br#"{"qty":2}"#, 4),
        BodyStatus::Continue
    );
    let sent = sent_body(&h);
    let event: serde_json::Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(event["rawPath"], "/orders/7");
    assert_eq!(event["queryStringParameters"]["expand"], "items,customer");
    assert_eq!(
        event["cookies"],
        serde_json::json!(["session=abc", "theme=dark"])
    );
    assert_eq!(
        event["headers"]["authorization"], "Bearer user-token",
        "the function sees it"
    );
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "192.0.2.7");
    assert_eq!(event["requestContext"]["requestId"], "rid-1");
    assert_eq!(event["body"], r#"{"qty":2}"#);
    assert_eq!(event["isBase64Encoded"], false);
    // …but AWS gets neither the cookie nor the client's Authorization as headers.
    assert_eq!(h.request("cookie"), None);
    assert!(
        h.request("authorization")
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256")
    );
    assert_eq!(
        h.request("content-length"),
        Some(sent.len().to_string().as_str())
    );
    assert_eq!(h.request("content-type"), Some("application/json"));
    assert_eq!(
        h.request("x-amz-content-sha256"),
        Some(hex::encode(Sha256::digest(&sent)).as_str())
    );

    // The function answers like an HTTP API function; unwrap makes it the HTTP response.
    respond(
        &mut f,
        &mut h,
        &[(":status", "200"), ("content-type", "application/json"), ("x-amzn-requestid", "r")],
        br#"{"statusCode":201,"headers":{"content-type":"text/plain","location":"/orders/8"},"cookies":["a=1","b=2"],"body":"created"}"#,
    );
    assert_eq!(h.response(":status"), Some("201"));
    assert_eq!(h.response("content-type"), Some("text/plain"));
    assert_eq!(h.response("location"), Some("/orders/8"));
    let cookies: Vec<&str> = h
        .response_headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(client_body(&h), b"created");
    assert_eq!(h.response("content-length"), Some("7"));
}

#[test]
fn get_with_an_event_format_creates_a_body() {
    let mut f = filter();
    let mut h = host(
        "echo",
        &[(":method", "GET"), (":path", "/x"), (":authority", "h")],
    );
    h.route = apigw_route(RequestFormat::Alb, ResponseFormat::Raw);
    assert_eq!(f.on_request_headers(&mut h, true), HeadersStatus::Continue);
    let event: serde_json::Value = serde_json::from_slice(&h.body(Body::BufferedRequest)).unwrap();
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["body"], "");
}

#[test]
fn a_malformed_unwrap_result_is_a_502_not_a_panic() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = apigw_route(RequestFormat::ApigwV1, ResponseFormat::Unwrap);
    f.on_request_headers(&mut h, true);
    respond(&mut f, &mut h, &[(":status", "200")], b"[1,2,3]");
    assert_eq!(h.response(":status"), Some("502"));
    let body: serde_json::Value = serde_json::from_slice(&client_body(&h)).unwrap();
    assert_eq!(body["error"], "malformed_function_response");
    assert_eq!(h.count(Counter::FunctionErrors), 1);
}

#[test]
fn an_unwrapped_204_or_304_has_no_body_and_no_content_length() {
    for status in ["204", "304"] {
        let mut f = filter();
        let mut h = host("echo", &get_headers());
        h.route = apigw_route(RequestFormat::ApigwV1, ResponseFormat::Unwrap);
        f.on_request_headers(&mut h, true);
        let answer = format!(
            r#"{{"statusCode":{status},"headers":{{"Content-Length":"8"}},"body":"smuggled"}}"#
        );
        respond(
            &mut f,
            &mut h,
            &[(":status", "200"), ("content-length", "99")],
            answer.as_bytes(),
        );
        assert_eq!(h.response(":status"), Some(status));
        assert_eq!(h.response("content-length"), None, "{status}");
        assert!(client_body(&h).is_empty(), "{status}");
    }
}

#[test]
fn an_injected_header_name_never_reaches_the_response_headers() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = apigw_route(RequestFormat::Alb, ResponseFormat::Unwrap);
    f.on_request_headers(&mut h, true);
    respond(
        &mut f,
        &mut h,
        &[(":status", "200")],
        br#"{"statusCode":200,"headers":{"X-A: 1\r\nSet-Cookie: session=x\r\nX-B":"1"},"body":"hi"}"#,
    );
    assert_eq!(h.response(":status"), Some("502"));
    for (k, v) in &h.response_headers {
        assert!(
            !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']),
            "{k:?}: {v:?}"
        );
        assert!(!k.starts_with("x-a") && k != "set-cookie", "{k:?}");
    }
    let body: serde_json::Value = serde_json::from_slice(&client_body(&h)).unwrap();
    assert_eq!(body["error"], "malformed_function_response");
}

#[test]
fn more_headers_than_a_client_takes_are_a_502_with_none_of_them_sent() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = apigw_route(RequestFormat::ApigwV2, ResponseFormat::Unwrap);
    f.on_request_headers(&mut h, true);
    let headers: serde_json::Map<_, _> = (0..101)
        .map(|i| (format!("x-fn-{i}"), "from-the-function".into()))
        .collect();
    let answer = serde_json::json!({"statusCode": 200, "headers": headers, "body": "hi"});
    respond(
        &mut f,
        &mut h,
        &[(":status", "200")],
        answer.to_string().as_bytes(),
    );
    assert_eq!(h.response(":status"), Some("502"));
    assert!(
        h.response_headers
            .iter()
            .all(|(k, v)| !k.starts_with("x-fn-") && v != "from-the-function"),
        "{:?}",
        h.response_headers
    );
    let body: serde_json::Value = serde_json::from_slice(&client_body(&h)).unwrap();
    assert_eq!(body["error"], "malformed_function_response");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("101 headers") && message.contains("at most 100"),
        "{message}"
    );
    assert!(!message.contains("x-fn-") && !message.contains("from-the-function"));
    assert_eq!(h.count(Counter::FunctionErrors), 1);
}

#[test]
fn source_ports_are_stripped() {
    assert_eq!(strip_port("192.0.2.7:41234"), "192.0.2.7");
    assert_eq!(strip_port("[::1]:80"), "::1");
    assert_eq!(strip_port("::1"), "::1");
    assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
}

mod observe;

mod discovery {
    use super::*;
    use crate::config::{FunctionRef, PathTemplate};
    use crate::discovery::DiscoveredSet;

    fn discovering_filter() -> (LambdaFilter, Arc<SharedConfig>) {
        let config = FilterConfig::from_json(
            br#"{"name":"acct","spec":{"region":"us-east-1","secret_ref":"creds",
                 "discovery":{"enabled":true,"cluster":"lambda"}},
                 "functions":[{"name":"orders","spec":{"function_name":"orders-v2"}}]}"#,
        )
        .unwrap();
        let shared = Arc::new(SharedConfig::new(config));
        (LambdaFilter::new(Arc::clone(&shared)), shared)
    }

    fn template_host(path: &str) -> FakeHost {
        let mut h = host("unused", &[(":method", "GET"), (":path", path)]);
        h.route = Some(Arc::new(RouteTarget {
            upstream: "acct".into(),
            function: FunctionRef::FromPath(PathTemplate::parse("/lambda/{function}").unwrap()),
            overrides: InvokeOverrides::default(),
        }));
        h
    }

    #[test]
    fn before_the_first_listing_discovered_names_answer_503() {
        let (mut f, _) = discovering_filter();
        let mut h = template_host("/lambda/billing");
        f.on_request_headers(&mut h, true);
        assert_eq!(h.reply.as_ref().unwrap().status, 503);
        assert_eq!(reply_json(&h)["error"], "discovery_pending");
        // …while a static function works at once.
        let (mut f, _) = discovering_filter();
        let mut h = template_host("/lambda/orders");
        assert_eq!(f.on_request_headers(&mut h, true), HeadersStatus::Continue);
        assert_eq!(
            h.request(":path"),
            Some("/2015-03-31/functions/orders-v2/invocations")
        );
    }

    #[test]
    fn discovered_names_and_aliases_are_invoked_unknown_ones_are_404() {
        let (_, shared) = discovering_filter();
        shared.discovered["acct"].publish(
            DiscoveredSet::from_names(["billing", "billing:live", "orders"]),
            std::time::SystemTime::now(),
        );
        let run = |path: &str| {
            let mut f = LambdaFilter::new(Arc::clone(&shared));
            let mut h = template_host(path);
            f.on_request_headers(&mut h, true);
            h
        };
        let h = run("/lambda/billing%3Alive");
        assert!(h.reply.is_none());
        assert_eq!(
            h.request(":path"),
            Some("/2015-03-31/functions/billing%3Alive/invocations")
        );
        let h = run("/lambda/orders");
        assert_eq!(
            h.request(":path"),
            Some("/2015-03-31/functions/orders-v2/invocations"),
            "the static function wins over the discovered one"
        );
        let h = run("/lambda/payroll");
        assert_eq!(h.reply.as_ref().unwrap().status, 404);
        let h = run("/elsewhere");
        assert_eq!(h.reply.as_ref().unwrap().status, 404);
    }
}

#[test]
fn raw_body_keeps_the_clients_content_length_and_a_wrong_one_is_corrected() {
    for (declared, body) in [("5", b"hello".as_slice()), ("3", b"hello".as_slice())] {
        let mut f = filter();
        let mut h = host(
            "echo",
            &[
                (":method", "POST"),
                (":path", "/x"),
                ("content-length", declared),
            ],
        );
        assert_eq!(
            f.on_request_headers(&mut h, false),
            HeadersStatus::StopIteration
        );
        assert_eq!(send_body(&mut f, &mut h, body, 16), BodyStatus::Continue);
        assert_eq!(sent_body(&h), body);
        // The header that leaves is the payload's length, once.
        let lengths: Vec<_> = h
            .request_headers
            .iter()
            .filter(|(k, _)| k == "content-length")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(lengths, ["5"], "declared {declared}");
    }
}
