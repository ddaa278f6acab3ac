//! Whatever arrives — config bytes, secret bytes, Lambda answers, request paths — the parsers
//! answer with a value or an error, never a panic (a panic in a hook would be a 500 for the
//! client and, before the guard, an abort of Envoy). Property tests over arbitrary input,
//! plus structured-ish input that gets past the first checks.

use envoy_lambda::config::{FilterConfig, PathTemplate, RouteTarget};
use envoy_lambda::credentials::AwsCredentials;
use envoy_lambda::discovery::{parse_aliases_page, parse_functions_page, parse_versions_page};
use envoy_lambda::lambda::api_error::map_api_error;
use envoy_lambda::lambda::aws_error::AwsError;
use envoy_lambda::lambda::events::{ChunkedBody, EventContext, HttpRequest, build_event};
use envoy_lambda::lambda::unwrap::{MAX_HEADER_BYTES, MAX_HEADERS, unwrap};
use envoy_lambda::lambda::{FunctionName, Qualifier, RequestFormat};
use proptest::prelude::*;

const FORMATS: [RequestFormat; 5] = [
    RequestFormat::Raw,
    RequestFormat::ApigwV2,
    RequestFormat::ApigwV1,
    RequestFormat::Alb,
    RequestFormat::AlbMultiValue,
];

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Mostly plausible header names, some of them the proxy's own, some with any byte.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}",
        1 => prop::sample::select(vec!["Content-Length", "content-length ", "Transfer-Encoding",
            "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer", ":status", "Set-Cookie"])
            .prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => "[ -~\t\r\n\u{0}\u{7f}]{0,12}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~\t]{0,16}",
        1 => "\\PC{0,16}",
        1 => "[ -~\t\r\n\u{0}\u{1}\u{7f}]{0,16}",
    ]
}

/// What the client may be sent: a final status, token names, field-content values, no
/// framing or hop-by-hop header, and no body for 204/304.
fn check_sendable(r: &envoy_lambda::lambda::unwrap::HttpResponse) -> Result<(), TestCaseError> {
    prop_assert!((200..=599).contains(&r.status), "status {}", r.status);
    prop_assert!(
        r.headers.len() <= MAX_HEADERS,
        "{} headers",
        r.headers.len()
    );
    let bytes: usize = r.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    prop_assert!(bytes <= MAX_HEADER_BYTES, "{bytes} bytes of headers");
    for (name, value) in &r.headers {
        prop_assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "name {name:?}"
        );
        prop_assert_eq!(name.to_ascii_lowercase(), name.clone());
        prop_assert!(
            ![
                "content-length",
                "transfer-encoding",
                "connection",
                "keep-alive",
                "upgrade",
                "te",
                "trailer"
            ]
            .contains(&name.as_str()),
            "framing header {name:?}"
        );
        prop_assert!(
            value
                .bytes()
                .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
            "value {value:?}"
        );
        prop_assert!(!value.starts_with([' ', '\t']) && !value.ends_with([' ', '\t']));
    }
    if matches!(r.status, 204 | 304) {
        prop_assert!(r.body.is_empty());
    }
    Ok(())
}

/// JSON-ish text: valid JSON fragments that look like our documents, glued at random.
fn jsonish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"name\"",
        "\"spec\"",
        "\"region\"",
        "\"us-east-1\"",
        "\"secret_ref\"",
        "\"functions\"",
        "\"function_name\"",
        "\"qualifier\"",
        "\"upstreams\"",
        "\"statusCode\"",
        "\"headers\"",
        "\"body\"",
        "\"isBase64Encoded\"",
        "true",
        "null",
        "200",
        "-1",
        "1e999",
        "\"\\u0000\"",
        "\"arn:aws:lambda:us-east-1:123456789012:function:f\"",
        "\"discovery\"",
        "\"enabled\"",
        "\"cluster\"",
        "\"refresh_interval\"",
        "\"0.5s\"",
        "\"Functions\"",
        "\"NextMarker\"",
        "\"FunctionName\"",
        "\"Aliases\"",
        "\"Versions\"",
    ]);
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn configs_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), text in jsonish()) {
        let _ = FilterConfig::from_json(&bytes);
        let _ = FilterConfig::from_json(text.as_bytes());
        let _ = RouteTarget::from_json(&bytes);
        let _ = RouteTarget::from_json(text.as_bytes());
    }

    #[test]
    fn secrets_never_panic_and_never_echo(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Err(e) = AwsCredentials::parse(&bytes) {
            let shown = e.to_string();
            // The message is one of a few fixed texts, whatever the input was.
            prop_assert!(shown.len() < 120, "{shown}");
            if let Ok(s) = std::str::from_utf8(&bytes) {
                if s.len() > 12 {
                    prop_assert!(!shown.contains(s.trim()), "{shown}");
                }
            }
        }
    }

    #[test]
    fn lambda_answers_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        text in jsonish(),
        status in 0u32..700,
        error_type in proptest::option::of("[A-Za-z:/.]{0,40}"),
        retry in proptest::option::of("[0-9a-z ]{0,6}"),
    ) {
        for format in FORMATS {
            for input in [&bytes[..], text.as_bytes()] {
                if let Ok(r) = unwrap(format, input) {
                    check_sendable(&r)?;
                }
            }
        }
        for body in [&bytes[..], text.as_bytes()] {
            let aws = AwsError::read(error_type.as_deref(), body);
            let _ = aws.summary();
            let m = map_api_error(status, &aws, retry.as_deref());
            prop_assert!((400..=599).contains(&m.status));
            if let Some(r) = m.retry_after {
                prop_assert!(!r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    /// Wherever AWS puts a key id or a token in its message, the reader's message has neither.
    #[test]
    fn aws_messages_never_carry_keys_or_tokens(
        prefix in "[ -~]{0,80}",
        suffix in "[ -~]{0,80}",
        key in "(AKIA|ASIA)[A-Z0-9]{16}",
        token in "[A-Za-z0-9+/]{40,400}",
    ) {
        for text in [
            format!("{prefix} Credential={key}/20261201/us-east-1/lambda/aws4_request{suffix}"),
            format!("{prefix} {key} {suffix}"),
            format!("{prefix}x-amz-security-token:{token}{suffix}"),
            format!("{prefix} {token} {suffix}"),
            format!("{prefix}Signature={token}{suffix}"),
        ] {
            let body = serde_json::json!({ "message": text }).to_string();
            let m = AwsError::read(None, body.as_bytes()).message.unwrap_or_default();
            prop_assert!(!m.contains(&key), "{m}");
            prop_assert!(!m.contains(&token[..30]), "{m}");
        }
    }

    /// Function answers shaped like the real thing, with names and values drawn from every
    /// byte class: whatever unwrap accepts is safe to put on the wire.
    #[test]
    fn unwrapped_headers_are_always_sendable(
        status in prop_oneof![0u64..700, Just(204), Just(304)],
        headers in prop::collection::vec((header_name(), header_value()), 0..6),
        multi in prop::collection::vec((header_name(), prop::collection::vec(header_value(), 0..3)), 0..4),
        cookies in prop::collection::vec(header_value(), 0..3),
        body in "\\PC{0,20}",
        // Plain headers around the limits: up to 130 of them, up to 130 × 700 bytes.
        (padding, padding_len) in (0usize..130, 0usize..700),
    ) {
        let mut headers: std::collections::BTreeMap<_, _> = headers.into_iter().collect();
        for i in 0..padding {
            headers.insert(format!("x-pad-{i}"), "v".repeat(padding_len));
        }
        let answer = serde_json::json!({
            "statusCode": status,
            "headers": headers,
            "multiValueHeaders": multi.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "cookies": cookies,
            "body": body,
        });
        for format in FORMATS {
            if let Ok(r) = unwrap(format, answer.to_string().as_bytes()) {
                check_sendable(&r)?;
            }
        }
    }

    #[test]
    fn listing_pages_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), text in jsonish()) {
        for b in [&bytes[..], text.as_bytes()] {
            let _ = parse_functions_page(b);
            let _ = parse_aliases_page(b);
            let _ = parse_versions_page(b);
        }
    }

    #[test]
    fn names_and_paths_never_panic(s in "\\PC{0,80}", path in "[/a-z%:0-9A-F.?=&{}]{0,40}") {
        let _ = FunctionName::parse(&s);
        let _ = Qualifier::parse(&s);
        if let Ok(t) = PathTemplate::parse(&s) {
            let _ = t.extract(&path);
        }
        if let Ok(t) = PathTemplate::parse("/lambda/{function}") {
            let _ = t.extract(&path);
        }
    }

    /// Any request becomes an event that is valid JSON and carries the body exactly.
    #[test]
    fn events_are_always_valid_json(
        path in "\\PC{0,60}",
        headers in prop::collection::vec(("[a-z-]{1,12}", "\\PC{0,20}"), 0..8),
        body in prop::collection::vec(any::<u8>(), 0..400),
        split in 0usize..400,
        content_type in proptest::option::of("(text/plain|application/json|image/png)(; charset=utf-8)?"),
    ) {
        let mut req = HttpRequest {
            method: "POST".into(),
            path_and_query: path,
            headers,
            ..Default::default()
        };
        if let Some(ct) = &content_type {
            req.headers.push(("content-type".into(), ct.clone()));
        }
        let split = split.min(body.len());
        let chunks: Vec<&[u8]> = vec![&body[..split], &body[split..]];
        let b = ChunkedBody::new(&chunks, content_type.as_deref());
        let ctx = EventContext { region: "us-east-1", time: std::time::SystemTime::now() };
        for format in [RequestFormat::ApigwV2, RequestFormat::ApigwV1, RequestFormat::Alb, RequestFormat::AlbMultiValue] {
            let event: serde_json::Value = serde_json::from_slice(&build_event(format, &req, &b, &ctx))
                .map_err(|e| TestCaseError::fail(format!("{format:?}: {e}")))?;
            let carried = match (&event["body"], event["isBase64Encoded"].as_bool()) {
                (serde_json::Value::String(s), Some(true)) => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
                }
                (serde_json::Value::String(s), _) => s.clone().into_bytes(),
                _ => Vec::new(),
            };
            prop_assert_eq!(&carried, &body, "{:?}", format);
        }
    }
}
