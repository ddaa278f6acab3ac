//! Lambda API error answers (not function errors): what the client gets instead.

use super::aws_error::AwsError;

/// A Lambda API error as the client sees it: our code and our words. AWS's own text is in
/// [`AwsError`], for the log (and, if an upstream opts in, for the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedError {
    pub status: u32,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<String>,
}

/// Every code [`map_api_error`] can give, for per-code log pacing.
pub const API_ERROR_CODES: [&str; 13] = [
    "invalid_request_content",
    "lambda_rejected_request",
    "lambda_access_denied",
    "function_not_found",
    "function_not_ready",
    "payload_too_large",
    "unsupported_media_type",
    "throttled",
    "lambda_service_error",
    "lambda_bad_gateway",
    "lambda_unavailable",
    "lambda_timeout",
    "lambda_error",
];

/// Maps an error answer of the Lambda Invoke API (not a function error) to what the client
/// gets. `error` is the answer as [`AwsError::read`] saw it.
pub fn map_api_error(status: u32, error: &AwsError, retry_after: Option<&str>) -> MappedError {
    let kind = error.kind.as_deref().unwrap_or_default();
    let (client_status, code, what) = match (status, kind) {
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
    // The status and the error's name only: both are already in Lambda's headers, and the
    // name is an identifier (`AwsError` keeps nothing else there).
    let detail = if kind.is_empty() {
        format!(" ({status})")
    } else {
        format!(" ({status} {kind})")
    };
    MappedError {
        status: client_status,
        code,
        message: format!("{what}{detail}"),
        retry_after,
    }
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
            let aws = AwsError::read(*kind, br#"{"Type":"User","Message":"details"}"#);
            let m = map_api_error(*status, &aws, None);
            assert_eq!((m.status, m.code), (*want, *code), "{status} {kind:?}");
            assert!(API_ERROR_CODES.contains(&m.code), "{}", m.code);
            // AWS's text is never part of our message.
            assert!(!m.message.contains("details"), "{}", m.message);
            assert!(m.message.contains(&status.to_string()), "{}", m.message);
        }
        let none = AwsError::default();
        assert_eq!(
            map_api_error(429, &none, Some("7")).retry_after.as_deref(),
            Some("7")
        );
        assert_eq!(
            map_api_error(429, &none, None).retry_after.as_deref(),
            Some("1")
        );
        assert_eq!(
            map_api_error(409, &none, None).retry_after.as_deref(),
            Some("5")
        );
        assert_eq!(map_api_error(404, &none, None).retry_after, None);
        let xml = b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>";
        let m = map_api_error(403, &AwsError::read(None, xml), None);
        assert_eq!(
            m.message,
            "AWS refused the gateway's credentials or policy (403 SignatureDoesNotMatch)"
        );
    }
}
