//! API Gateway / ALB events built from any request: always valid JSON, the body carried
//! exactly (text or base64), and the same bytes however Envoy's buffers cut the body.
//!
//! Input: a few structured bytes (where to cut the body, the clock), then the request as
//! HTTP/1-style text: `METHOD path PROTOCOL`, `name: value` lines, an empty line, the body.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use envoy_lambda::lambda::events::{build_event, ChunkedBody, EventContext, HttpRequest};
use envoy_lambda::lambda::RequestFormat;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Shape {
    /// Where the body is cut into chunks (each taken modulo the body's length + 1).
    cuts: [u16; 3],
    /// Seconds since the epoch for the event's time fields.
    time: u32,
}

fn parse_request(text: &[u8]) -> (HttpRequest, &[u8]) {
    // The head ends at the first empty line (CRLF or bare LF).
    let end = (0..text.len()).find_map(|i| {
        [&b"\r\n\r\n"[..], b"\n\n"]
            .into_iter()
            .find(|sep| text[i..].starts_with(sep))
            .map(|sep| (i, i + sep.len()))
    });
    let (head, body) = match end {
        Some((h, b)) => (&text[..h], &text[b..]),
        None => (text, &b""[..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut start = lines.next().unwrap_or("").splitn(3, ' ');
    let mut req = HttpRequest {
        method: start.next().unwrap_or("GET").to_owned(),
        path_and_query: start.next().unwrap_or("/").to_owned(),
        protocol: start.next().unwrap_or("HTTP/1.1").to_owned(),
        source_ip: "192.0.2.7".into(),
        request_id: "7d1a3c2e-0000-4000-8000-000000000000".into(),
        ..Default::default()
    };
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let (name, value) = (name.to_ascii_lowercase(), value.trim_start().to_owned());
        if name == "host" {
            req.host = value.clone();
        }
        req.headers.push((name, value));
    }
    (req, body)
}

fn carried_body(event: &serde_json::Value) -> Vec<u8> {
    match (&event["body"], event["isBase64Encoded"].as_bool()) {
        (serde_json::Value::String(s), Some(true)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("isBase64Encoded body is base64"),
        (serde_json::Value::String(s), _) => s.clone().into_bytes(),
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(shape) = Shape::arbitrary(&mut u) else {
        return;
    };
    let (req, body) = parse_request(u.take_rest());
    let mut cuts: Vec<usize> = shape
        .cuts
        .iter()
        .map(|&c| usize::from(c) % (body.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain(std::iter::once(body.len())) {
        chunks.push(&body[from..cut]);
        from = cut;
    }
    let whole: [&[u8]; 1] = [body];
    let content_type = req.header("content-type");
    let ctx = EventContext {
        region: "us-east-1",
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(shape.time)),
    };
    for format in [
        RequestFormat::ApigwV2,
        RequestFormat::ApigwV1,
        RequestFormat::Alb,
    ] {
        let chunked = build_event(format, &req, &ChunkedBody::new(&chunks, content_type), &ctx);
        let event: serde_json::Value = serde_json::from_slice(&chunked)
            .unwrap_or_else(|e| panic!("{format:?}: not JSON ({e})"));
        assert_eq!(carried_body(&event), body, "{format:?}: the body changed");
        let joined = build_event(format, &req, &ChunkedBody::new(&whole, content_type), &ctx);
        assert!(chunked == joined, "{format:?}: chunking changed the event");
    }
});
