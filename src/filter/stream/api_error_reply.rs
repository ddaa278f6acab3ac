//! The response path's error answers. A Lambda API error gets our code, our message and
//! Lambda's request id, with an allow-list of Lambda's headers; AWS's own text goes to a paced
//! log line (first line, redacted), and to the client only if the upstream opts in. Envoy's own
//! failures to reach Lambda get codes and a counter of their own.

use serde::Serialize;

use super::{LambdaFilter, Rewrite};
use crate::filter::upstream_failure::{ErrorOrigin, UpstreamFailure, error_origin};
use crate::host::{Counter, Direction, Host, LogLevel};
use crate::lambda::api_error::{MappedError, map_api_error};
use crate::lambda::aws_error::AwsError;

/// Lambda's response headers a mapped error keeps (`Retry-After` is set from the mapping).
const KEPT_LAMBDA_HEADERS: [&str; 2] = ["x-amzn-requestid", "x-amzn-errortype"];

/// Status, headers and body of the answer that replaces Lambda's (or Envoy's).
pub(super) type Answer = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws_message: Option<&'a str>,
}

impl LambdaFilter {
    /// How an error status is rewritten, counted by who produced it; `None`: not ours.
    pub(super) fn error_rewrite(host: &mut dyn Host, status: u32) -> Option<Rewrite> {
        let origin = error_origin(
            status,
            host.response_code_details(),
            host.response_flags(),
            host.header(Direction::Response, "x-amzn-requestid")
                .is_some(),
        );
        match origin {
            ErrorOrigin::Lambda => {
                host.increment(Counter::ApiErrors);
                Some(Rewrite::ApiError(status))
            }
            ErrorOrigin::Envoy(failure) => {
                host.increment(Counter::UpstreamFailures);
                Some(Rewrite::UpstreamFailure(failure))
            }
            ErrorOrigin::Other => None,
        }
    }

    /// The client's answer to a Lambda API error `upstream_status` with body `payload`.
    pub(super) fn api_error_answer(
        &self,
        host: &mut dyn Host,
        upstream_status: u32,
        payload: &[u8],
    ) -> Answer {
        let error_type = header_string(host, "x-amzn-errortype");
        let retry_after = header_string(host, "retry-after");
        let request_id = header_string(host, "x-amzn-requestid").filter(|r| is_request_id(r));
        let aws = AwsError::read(error_type.as_deref(), payload);
        let mapped = map_api_error(upstream_status, &aws, retry_after.as_deref());
        self.log_aws_error(host, upstream_status, &mapped, &aws, request_id.as_deref());
        self.obs.error_code(host, mapped.code);

        drop_lambda_headers(host, &KEPT_LAMBDA_HEADERS);
        // The error type is kept as its bare name (AWS appends an internal URL to it).
        match (&error_type, &aws.kind) {
            (Some(_), Some(kind)) => host.set_header(Direction::Response, "x-amzn-errortype", kind),
            (Some(_), None) => host.remove_header(Direction::Response, "x-amzn-errortype"),
            (None, _) => {}
        }
        if request_id.is_none() {
            host.remove_header(Direction::Response, "x-amzn-requestid");
        }
        let expose = self
            .invoked
            .as_ref()
            .is_some_and(|u| u.expose_aws_error_message);
        let body = ErrorBody {
            error: mapped.code,
            message: &mapped.message,
            request_id: request_id.as_deref(),
            aws_message: aws.message.as_deref().filter(|_| expose),
        };
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(r) = mapped.retry_after {
            headers.push(("retry-after".to_owned(), r));
        }
        (mapped.status, headers, json(&body))
    }

    /// One warning per (upstream, code) per period: AWS's first line, redacted.
    fn log_aws_error(
        &self,
        host: &dyn Host,
        upstream_status: u32,
        mapped: &MappedError,
        aws: &AwsError,
        request_id: Option<&str>,
    ) {
        let upstream = self.invoked.as_ref().map_or("", |u| u.name.as_str());
        let Some(held_back) = self
            .shared
            .aws_error_log
            .check(upstream, mapped.code, host.now())
        else {
            return;
        };
        let mut line = format!(
            "envoy-lambda: upstream '{upstream}': Lambda answered {upstream_status} -> {} \
             (request id {}): {}",
            mapped.code,
            request_id.unwrap_or("none"),
            aws.summary().as_deref().unwrap_or("no message"),
        );
        if held_back > 0 {
            line.push_str(&format!(" ({held_back} more since the last such line)"));
        }
        host.log(LogLevel::Warn, &line);
    }
}

/// The client's answer when Envoy itself could not get Lambda's.
pub(super) fn upstream_failure_answer(host: &mut dyn Host, failure: UpstreamFailure) -> Answer {
    let (status, code, message) = failure.reply();
    host.log(
        LogLevel::Debug,
        &format!(
            "envoy-lambda: {code}: {}",
            host.response_code_details().unwrap_or("no details")
        ),
    );
    drop_lambda_headers(host, &[]);
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if status == 503 {
        headers.push(("retry-after".to_owned(), "1".to_owned()));
    }
    let body = ErrorBody {
        error: code,
        message,
        request_id: None,
        aws_message: None,
    };
    (status, headers, json(&body))
}

/// Removes every `x-amz*` response header not in `kept` (the rest are replaced later anyway).
fn drop_lambda_headers(host: &mut dyn Host, kept: &[&str]) {
    let names = host.header_names_matching(Direction::Response, &|n| {
        n.starts_with("x-amz") && !kept.contains(&n)
    });
    for name in names {
        host.remove_header(Direction::Response, &name);
    }
}

/// Lambda's request ids are UUIDs; anything that is not a short token is not passed on.
fn is_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn header_string(host: &dyn Host, name: &str) -> Option<String> {
    host.header(Direction::Response, name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn json(body: &ErrorBody<'_>) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}
