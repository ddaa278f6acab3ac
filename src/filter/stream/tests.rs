use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;
use crate::config::{FilterConfig, RouteTarget};
use crate::host::fake::FakeHost;

const CONFIG: &str = r#"{"name":"moto","spec":{"region":"us-east-1","secret_ref":"creds",
    "endpoint":{"scheme":"http","host":"127.0.0.1","port":5000}},
    "functions":[{"name":"echo","spec":{"function_name":"echo"}},
                 {"name":"echo-live","spec":{"function_name":"echo","qualifier":"live"}}]}"#;

fn filter() -> LambdaFilter {
    let config = FilterConfig::from_json(CONFIG.as_bytes()).unwrap();
    LambdaFilter::new(Arc::new(SharedConfig::new(config)))
}

fn host(function: &str, headers: &[(&str, &str)]) -> FakeHost {
    let mut h = FakeHost {
        route: Some(Arc::new(RouteTarget {
            upstream: "moto".into(),
            function: function.into(),
        })),
        buffer_limit: 1024 * 1024,
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
    // The client's own credentials and reserved headers are gone; ordinary ones stay.
    assert_eq!(h.request("cookie"), None);
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
    assert!(h.buffer_limit > LAMBDA_SYNC_PAYLOAD_LIMIT);
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in body.chunks(16 * 1024) {
        h.received = vec![chunk[..100].to_vec(), chunk[100..].to_vec()];
        assert_eq!(
            f.on_request_body(&mut h, false),
            BodyStatus::StopIterationAndBuffer
        );
        assert!(h.request("authorization").is_none(), "signed too early");
    }
    h.received.clear();
    assert_eq!(f.on_request_body(&mut h, true), BodyStatus::Continue);
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
fn a_resumed_stream_rehashes_the_whole_buffer() {
    let mut f = filter();
    let mut h = host("echo", &[(":method", "POST")]);
    f.on_request_headers(&mut h, false);
    h.received = vec![b"hello ".to_vec()];
    f.on_request_body(&mut h, false);
    h.received = vec![b"hello ".to_vec(), b"world".to_vec()];
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
    h.received = vec![b"abc".to_vec()];
    f.on_request_body(&mut h, false);
    h.received.clear();
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
    let chunk = vec![b'x'; 1024 * 1024];
    let mut status = BodyStatus::StopIterationAndBuffer;
    for _ in 0..7 {
        h.received = vec![chunk.clone()];
        status = f.on_request_body(&mut h, false);
        if status != BodyStatus::StopIterationAndBuffer {
            break;
        }
    }
    assert_eq!(status, BodyStatus::StopIterationNoBuffer);
    assert_eq!(h.reply.as_ref().unwrap().status, 413);
    assert!(h.request("authorization").is_none());
    // Later callbacks of a rejected stream do nothing.
    assert_eq!(f.on_request_body(&mut h, true), BodyStatus::Continue);
}

#[test]
fn unknown_function_and_upstream_are_clear_errors() {
    let mut f = filter();
    let mut h = host("nope", &get_headers());
    f.on_request_headers(&mut h, true);
    assert_eq!(h.reply.as_ref().unwrap().status, 404);
    assert!(reply_json(&h)["message"]
        .as_str()
        .unwrap()
        .contains("'nope'"));

    let mut f = filter();
    let mut h = host("echo", &get_headers());
    h.route = Some(Arc::new(RouteTarget {
        upstream: "other".into(),
        function: "echo".into(),
    }));
    f.on_request_headers(&mut h, true);
    assert_eq!(h.reply.as_ref().unwrap().status, 500);
    assert_eq!(reply_json(&h)["error"], "unknown_upstream");
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
fn function_error_becomes_502_and_keeps_the_header() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    h.response_headers = vec![
        (":status".into(), "200".into()),
        ("x-amz-function-error".into(), "Unhandled".into()),
    ];
    f.on_response_headers(&mut h);
    assert_eq!(h.response_header(":status"), Some(&b"502"[..]));
    assert!(h.response_header("x-amz-function-error").is_some());
    assert_eq!(h.count(Counter::FunctionErrors), 1);
}

#[test]
fn a_success_is_left_alone() {
    let mut f = filter();
    let mut h = host("echo", &get_headers());
    f.on_request_headers(&mut h, true);
    h.response_headers = vec![(":status".into(), "200".into())];
    f.on_response_headers(&mut h);
    assert_eq!(h.response_header(":status"), Some(&b"200"[..]));
    assert_eq!(h.count(Counter::FunctionErrors), 0);
}
