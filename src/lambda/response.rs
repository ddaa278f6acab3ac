//! What the client gets back: unwrapping an API Gateway/ALB-style result into an HTTP
//! response, and mapping Lambda API errors to statuses a client can act on.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::RequestFormat;

/// An HTTP response described by the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The function's result could not be read as an HTTP response (a bug in the function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwrapError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    status_code: Value,
    #[serde(default)]
    headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    multi_value_headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    cookies: Option<Vec<Value>>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    is_base64_encoded: Option<Value>,
}

/// Reads the function's payload as an HTTP response, with the rules of the event format the
/// request used (`apigw_v2` guesses for results without `statusCode`; the others require it).
pub fn unwrap(format: RequestFormat, payload: &[u8]) -> Result<HttpResponse, UnwrapError> {
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    let described = matches!(&parsed, Some(Value::Object(o)) if o.contains_key("statusCode"));
    if !described {
        return if matches!(format, RequestFormat::ApigwV2 | RequestFormat::Raw) {
            // HTTP API 2.0: a result that is not an object with statusCode is the body of a 200.
            Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: payload.to_vec(),
            })
        } else {
            Err(UnwrapError(
                "the function's result is not a JSON object with a statusCode".into(),
            ))
        };
    }
    let d: Described = serde_json::from_value(parsed.unwrap_or_default())
        .map_err(|e| UnwrapError(format!("the function's result is malformed: {e}")))?;
    let status = match &d.status_code {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| {
        UnwrapError(format!(
            "statusCode {} is not an HTTP status",
            d.status_code
        ))
    })? as u32;
    let mut headers = Vec::new();
    for (k, v) in d.headers.iter().flatten() {
        headers.push((k.to_ascii_lowercase(), scalar(k, v)?));
    }
    for (k, v) in d.multi_value_headers.iter().flatten() {
        let Value::Array(values) = v else {
            return Err(UnwrapError(format!("multiValueHeaders.{k} is not a list")));
        };
        let k = k.to_ascii_lowercase();
        // multiValueHeaders wins over headers for the same name, as in API Gateway.
        headers.retain(|(name, _)| *name != k);
        for v in values {
            headers.push((k.clone(), scalar(&k, v)?));
        }
    }
    for c in d.cookies.iter().flatten() {
        headers.push(("set-cookie".into(), scalar("cookies", c)?));
    }
    let is_base64 = matches!(d.is_base64_encoded, Some(Value::Bool(true)))
        || matches!(&d.is_base64_encoded, Some(Value::String(s)) if s == "true");
    let body = match d.body {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if is_base64 => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|_| UnwrapError("body is marked isBase64Encoded but is not base64".into()))?,
        Some(Value::String(s)) => s.into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn scalar(name: &str, v: &Value) -> Result<String, UnwrapError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(UnwrapError(format!("header {name} is not a string"))),
    };
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(UnwrapError(format!("header {name} contains a line break")));
    }
    Ok(s)
}

/// A Lambda API error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedError {
    pub status: u32,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<String>,
}

/// Maps an error answer of the Lambda Invoke API (not a function error) to what the client
/// gets. `error_type` is `X-Amzn-ErrorType` (e.g. `ResourceNotFoundException:http://…`).
pub fn map_api_error(
    status: u32,
    error_type: Option<&str>,
    retry_after: Option<&str>,
    body: &[u8],
) -> MappedError {
    let kind = error_type
        .and_then(|t| t.split(':').next())
        .map(str::to_owned)
        .or_else(|| xml_code(body))
        .unwrap_or_default();
    let aws_message = message_of(body);
    let (client_status, code, what) = match (status, kind.as_str()) {
        (400, "InvalidRequestContentException") => (
            400,
            "invalid_request_content",
            "Lambda could not parse the payload as JSON",
        ),
        (400, _) => (
            502,
            "lambda_rejected_request",
            "Lambda refused the request's parameters",
        ),
        (401 | 403, _) => (
            403,
            "lambda_access_denied",
            "AWS refused the gateway's credentials or policy",
        ),
        (404, _) => (
            404,
            "function_not_found",
            "the function, version or alias does not exist",
        ),
        (409, _) => (
            503,
            "function_not_ready",
            "the function is being created or updated",
        ),
        (413, _) => (
            413,
            "payload_too_large",
            "Lambda refused the payload as too large",
        ),
        (415, _) => (
            415,
            "unsupported_media_type",
            "Lambda refused the payload's content type",
        ),
        (429, _) => (429, "throttled", "Lambda throttled the invocation"),
        (500, _) => (502, "lambda_service_error", "Lambda had an internal error"),
        (502, _) => (
            502,
            "lambda_bad_gateway",
            "Lambda could not run the function",
        ),
        (503, _) => (503, "lambda_unavailable", "Lambda is unavailable"),
        (504, _) => (504, "lambda_timeout", "Lambda timed out"),
        (400..=499, _) => (502, "lambda_rejected_request", "Lambda refused the request"),
        _ => (502, "lambda_error", "Lambda answered with an error"),
    };
    let retry_after = match client_status {
        429 | 503 => Some(
            retry_after
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty())
                .unwrap_or(if status == 409 { "5" } else { "1" })
                .to_owned(),
        ),
        _ => None,
    };
    let detail = match (kind.is_empty(), aws_message) {
        (false, Some(m)) => format!(" ({status} {kind}: {m})"),
        (false, None) => format!(" ({status} {kind})"),
        (true, Some(m)) => format!(" ({status}: {m})"),
        (true, None) => format!(" ({status})"),
    };
    MappedError {
        status: client_status,
        code,
        message: format!("{what}{detail}"),
        retry_after,
    }
}

/// Lambda's JSON errors carry `Message` (or `message`); IAM-style XML errors `<Message>`.
fn message_of(body: &[u8]) -> Option<String> {
    if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) {
        for k in ["Message", "message", "errorMessage"] {
            if let Some(Value::String(s)) = o.get(k) {
                return Some(truncate(s));
            }
        }
        return None;
    }
    xml_tag(body, "Message").map(|s| truncate(&s))
}

fn xml_code(body: &[u8]) -> Option<String> {
    xml_tag(body, "Code")
}

fn xml_tag(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim().to_owned())
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a HttpResponse, k: &str) -> Vec<&'a str> {
        r.headers
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn unwraps_a_described_response() {
        let r = unwrap(
            RequestFormat::ApigwV2,
            br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Count":3},
                "cookies":["a=1; Path=/","b=2"],"body":"created","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), ["text/plain"]);
        assert_eq!(header(&r, "x-count"), ["3"]);
        assert_eq!(header(&r, "set-cookie"), ["a=1; Path=/", "b=2"]);
        assert_eq!(r.body, b"created");
    }

    #[test]
    fn base64_bodies_and_multi_value_headers() {
        let r = unwrap(
            RequestFormat::Alb,
            br#"{"statusCode":"200","statusDescription":"200 OK","multiValueHeaders":{"Set-Cookie":["x=1","y=2"]},
                "headers":{"set-cookie":"lost"},"body":"AAEC/w==","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.body, [0, 1, 2, 255]);
        assert_eq!(header(&r, "set-cookie"), ["x=1", "y=2"]);
    }

    #[test]
    fn http_api_treats_other_results_as_a_200_body() {
        for payload in [
            &br#"{"hello":"world"}"#[..],
            b"\"just a string\"",
            b"[1,2]",
            b"not json",
        ] {
            let r = unwrap(RequestFormat::ApigwV2, payload).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, payload);
        }
    }

    #[test]
    fn malformed_results_are_errors_not_panics() {
        assert!(unwrap(RequestFormat::ApigwV1, b"[1]").is_err());
        assert!(unwrap(RequestFormat::ApigwV1, br#"{"statusCode":99}"#).is_err());
        assert!(unwrap(RequestFormat::ApigwV1, br#"{"statusCode":"abc"}"#).is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"a":{}}}"#
        )
        .is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"a":"x\r\ny: z"}}"#
        )
        .is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#
        )
        .is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"multiValueHeaders":{"a":"b"}}"#
        )
        .is_err());
    }

    #[test]
    fn api_errors_map_to_actionable_statuses() {
        let cases: &[(u32, Option<&str>, u32, &str)] = &[
            (
                400,
                Some("InvalidRequestContentException"),
                400,
                "invalid_request_content",
            ),
            (
                400,
                Some("InvalidParameterValueException"),
                502,
                "lambda_rejected_request",
            ),
            (403, None, 403, "lambda_access_denied"),
            (
                404,
                Some("ResourceNotFoundException:http://internal.amazon.com/"),
                404,
                "function_not_found",
            ),
            (
                409,
                Some("ResourceConflictException"),
                503,
                "function_not_ready",
            ),
            (
                413,
                Some("RequestTooLargeException"),
                413,
                "payload_too_large",
            ),
            (415, None, 415, "unsupported_media_type"),
            (429, Some("TooManyRequestsException"), 429, "throttled"),
            (500, Some("ServiceException"), 502, "lambda_service_error"),
            (
                502,
                Some("EC2ThrottledException"),
                502,
                "lambda_bad_gateway",
            ),
            (503, None, 503, "lambda_unavailable"),
            (504, None, 504, "lambda_timeout"),
            (418, None, 502, "lambda_rejected_request"),
        ];
        for (status, kind, want, code) in cases {
            let m = map_api_error(
                *status,
                *kind,
                None,
                br#"{"Type":"User","Message":"details"}"#,
            );
            assert_eq!((m.status, m.code), (*want, *code), "{status} {kind:?}");
            assert!(m.message.contains("details"), "{}", m.message);
        }
        assert_eq!(
            map_api_error(429, None, Some("7"), b"")
                .retry_after
                .as_deref(),
            Some("7")
        );
        assert_eq!(
            map_api_error(429, None, None, b"").retry_after.as_deref(),
            Some("1")
        );
        assert_eq!(
            map_api_error(409, None, None, b"").retry_after.as_deref(),
            Some("5")
        );
        assert_eq!(map_api_error(404, None, None, b"").retry_after, None);
        let xml = b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>";
        let m = map_api_error(403, None, None, xml);
        assert!(
            m.message.contains("SignatureDoesNotMatch") && m.message.contains("does not match"),
            "{}",
            m.message
        );
    }
}
