//! Golden checks: the events for AWS's published example requests, compared field by field
//! with the examples in the API Gateway and ALB developer guides.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        path_and_query: path.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        source_ip: "192.0.2.1".into(),
        request_id: "id".into(),
        host: "id.execute-api.us-east-1.amazonaws.com".into(),
        protocol: "HTTP/1.1".into(),
    }
}

fn ctx() -> EventContext<'static> {
    EventContext {
        region: "us-east-1",
        time: UNIX_EPOCH + Duration::from_millis(1_584_039_838_390),
    }
}

fn event(format: RequestFormat, req: &HttpRequest, body: &[u8], ct: Option<&str>) -> Value {
    let chunks: Vec<&[u8]> = body.chunks(5).collect();
    let body = ChunkedBody::new(&chunks, ct);
    serde_json::from_slice(&build_event(format, req, &body, &ctx())).unwrap()
}

fn example() -> HttpRequest {
    request(
        "POST",
        "/my/path?parameter1=value1&parameter1=value2&parameter2=value",
        &[
            ("header1", "value1"),
            ("header2", "value1"),
            ("header2", "value2"),
            ("cookie", "cookie1; cookie2"),
            ("user-agent", "agent"),
            ("content-type", "text/plain"),
        ],
    )
}

#[test]
fn http_api_v2_matches_the_published_example() {
    let e = event(
        RequestFormat::ApigwV2,
        &example(),
        b"Hello from Lambda",
        Some("text/plain"),
    );
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["rawPath"], "/my/path");
    assert_eq!(
        e["rawQueryString"],
        "parameter1=value1&parameter1=value2&parameter2=value"
    );
    assert_eq!(e["cookies"], json!(["cookie1", "cookie2"]));
    assert_eq!(e["headers"]["header1"], "value1");
    assert_eq!(e["headers"]["header2"], "value1,value2");
    assert!(e["headers"].get("cookie").is_none());
    assert_eq!(
        e["queryStringParameters"],
        json!({"parameter1": "value1,value2", "parameter2": "value"})
    );
    let rc = &e["requestContext"];
    assert_eq!(rc["domainName"], "id.execute-api.us-east-1.amazonaws.com");
    assert_eq!(rc["domainPrefix"], "id");
    assert_eq!(
        rc["http"],
        json!({"method": "POST", "path": "/my/path", "protocol": "HTTP/1.1",
               "sourceIp": "192.0.2.1", "userAgent": "agent"})
    );
    assert_eq!(rc["requestId"], "id");
    assert_eq!(rc["routeKey"], "$default");
    assert_eq!(rc["stage"], "$default");
    assert_eq!(rc["time"], "12/Mar/2020:19:03:58 +0000");
    assert_eq!(rc["timeEpoch"], 1_584_039_838_390u64);
    assert_eq!(e["body"], "Hello from Lambda");
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn http_api_v2_without_body_or_query() {
    let e = event(RequestFormat::ApigwV2, &request("GET", "/", &[]), b"", None);
    assert!(e.get("body").is_none());
    assert!(e.get("queryStringParameters").is_none());
    assert!(e.get("cookies").is_none());
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn rest_api_v1_matches_the_published_example() {
    let e = event(
        RequestFormat::ApigwV1,
        &example(),
        b"Hello from Lambda!",
        Some("text/plain"),
    );
    assert_eq!(e["resource"], "/{proxy+}");
    assert_eq!(e["path"], "/my/path");
    assert_eq!(e["httpMethod"], "POST");
    assert_eq!(e["headers"]["header1"], "value1");
    assert_eq!(e["headers"]["header2"], "value2");
    assert_eq!(
        e["multiValueHeaders"]["header2"],
        json!(["value1", "value2"])
    );
    assert_eq!(
        e["queryStringParameters"],
        json!({"parameter1": "value2", "parameter2": "value"})
    );
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"parameter1": ["value1", "value2"], "parameter2": ["value"]})
    );
    assert_eq!(e["pathParameters"], Value::Null);
    assert_eq!(e["stageVariables"], Value::Null);
    let rc = &e["requestContext"];
    assert_eq!(rc["httpMethod"], "POST");
    assert_eq!(rc["identity"]["sourceIp"], "192.0.2.1");
    assert_eq!(rc["identity"]["userAgent"], "agent");
    assert_eq!(rc["path"], "/my/path");
    assert_eq!(rc["protocol"], "HTTP/1.1");
    assert_eq!(rc["requestTimeEpoch"], 1_584_039_838_390u64);
    assert_eq!(e["body"], "Hello from Lambda!");
    assert_eq!(e["isBase64Encoded"], false);

    let e = event(RequestFormat::ApigwV1, &request("GET", "/", &[]), b"", None);
    assert_eq!(e["queryStringParameters"], Value::Null);
    assert_eq!(e["body"], Value::Null);
}

#[test]
fn alb_matches_the_published_example() {
    let req = request(
        "GET",
        "/lambda?query=1234ABCD&enc=a%20b",
        &[
            ("accept", "text/html,application/xhtml+xml"),
            ("host", "lambda-alb-123578498.us-east-1.elb.amazonaws.com"),
            ("x-forwarded-for", "72.12.164.125"),
        ],
    );
    let e = event(RequestFormat::Alb, &req, b"", None);
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["path"], "/lambda");
    assert_eq!(e["queryStringParameters"]["query"], "1234ABCD");
    assert_eq!(
        e["queryStringParameters"]["enc"], "a%20b",
        "ALB does not decode"
    );
    assert_eq!(e["headers"]["x-forwarded-for"], "72.12.164.125");
    assert_eq!(e["body"], "");
    assert_eq!(e["isBase64Encoded"], false);
    assert!(
        e["requestContext"]["elb"]["targetGroupArn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:elasticloadbalancing:us-east-1:")
    );
}

/// The ALB guide's multi-value examples: `?myKey=val1&myKey=val2` and two `cookie` headers.
fn alb_repeats() -> HttpRequest {
    request(
        "GET",
        "/lambda?myKey=val1&myKey=val2&enc=a%20b+c&flag",
        &[
            ("cookie", "name1=value1"),
            ("cookie", "name2=value2"),
            ("x-multi", "a"),
            ("x-multi", "b, c"),
            ("accept", "text/html"),
        ],
    )
}

#[test]
fn alb_single_value_mode_keeps_the_last_value() {
    let e = event(RequestFormat::Alb, &alb_repeats(), b"", None);
    assert_eq!(
        e["queryStringParameters"],
        json!({"myKey": "val2", "enc": "a%20b+c", "flag": ""})
    );
    assert_eq!(e["headers"]["cookie"], "name2=value2");
    assert_eq!(e["headers"]["x-multi"], "b, c");
    assert!(e.get("multiValueHeaders").is_none());
    assert!(e.get("multiValueQueryStringParameters").is_none());
}

#[test]
fn alb_multi_value_mode_matches_the_published_example() {
    let e = event(RequestFormat::AlbMultiValue, &alb_repeats(), b"", None);
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"myKey": ["val1", "val2"], "enc": ["a%20b+c"], "flag": [""]}),
        "every value, in order, still percent-encoded (ALB does not decode)"
    );
    assert_eq!(
        e["multiValueHeaders"]["cookie"],
        json!(["name1=value1", "name2=value2"])
    );
    assert_eq!(e["multiValueHeaders"]["x-multi"], json!(["a", "b, c"]));
    assert_eq!(e["multiValueHeaders"]["accept"], json!(["text/html"]));
    // The multi-value maps replace the single-value ones.
    assert!(e.get("headers").is_none());
    assert!(e.get("queryStringParameters").is_none());
    assert_eq!(e["httpMethod"], "GET");
    assert_eq!(e["path"], "/lambda");
    assert_eq!(e["body"], "");
    assert!(e["requestContext"]["elb"]["targetGroupArn"].is_string());

    let e = event(
        RequestFormat::AlbMultiValue,
        &request("GET", "/", &[]),
        b"",
        None,
    );
    assert_eq!(e["multiValueQueryStringParameters"], json!({}));
    assert_eq!(e["multiValueHeaders"], json!({}));
}

#[test]
fn binary_bodies_are_base64_in_every_format() {
    let req = request(
        "POST",
        "/up",
        &[("content-type", "application/octet-stream")],
    );
    for format in [
        RequestFormat::ApigwV2,
        RequestFormat::ApigwV1,
        RequestFormat::Alb,
        RequestFormat::AlbMultiValue,
    ] {
        let e = event(
            format,
            &req,
            &[0, 1, 2, 250, 251, 252, 253],
            Some("application/octet-stream"),
        );
        assert_eq!(e["isBase64Encoded"], true, "{format:?}");
        assert_eq!(e["body"], "AAEC+vv8/Q==", "{format:?}");
    }
}
