//! Lambda API error answers (not function errors): what the client gets instead.

use serde_json::Value;

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
