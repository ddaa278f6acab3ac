//! How a function is invoked and how its HTTP request/response are mapped. Each option has an
//! upstream-wide default (`spec`) that a route may override.

use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

/// Lambda's `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvocationType {
    /// `RequestResponse`: wait for the function's result.
    #[default]
    Sync,
    /// `Event`: queue it; Lambda answers 202 at once.
    Async,
    /// `DryRun`: check permissions and parameters only; Lambda answers 204.
    DryRun,
}

impl InvocationType {
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Sync => "RequestResponse",
            Self::Async => "Event",
            Self::DryRun => "DryRun",
        }
    }

    /// Lambda's request payload limit for this invocation type.
    pub fn payload_limit(self) -> u64 {
        match self {
            Self::Sync | Self::DryRun => super::LAMBDA_SYNC_PAYLOAD_LIMIT,
            Self::Async => super::LAMBDA_ASYNC_PAYLOAD_LIMIT,
        }
    }
}

/// Lambda's `X-Amz-Log-Type`: `tail` returns the last 4 KB of the function's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogType {
    #[default]
    None,
    Tail,
}

/// What the Lambda payload is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestFormat {
    /// The request body, byte for byte (the seed's behaviour).
    #[default]
    Raw,
    /// API Gateway HTTP API, payload format 2.0.
    ApigwV2,
    /// API Gateway REST API proxy integration (payload format 1.0).
    ApigwV1,
    /// Application Load Balancer target (single-value headers and query: ALB's default).
    Alb,
    /// Application Load Balancer target with multi-value headers on (the target group
    /// attribute `lambda.multi_value_headers.enabled`): `multiValueHeaders` and
    /// `multiValueQueryStringParameters` instead of the single-value maps.
    AlbMultiValue,
}

/// What the client gets from the function's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// The function's payload is the body (status 200).
    #[default]
    Raw,
    /// The payload describes the HTTP response (`statusCode`, `headers`, `body` …).
    Unwrap,
}

/// Which Lambda API is called: `Invoke` (the whole result at once) or
/// `InvokeWithResponseStream` (the result as an eventstream of chunks, forwarded as they come).
/// The names are Lambda's own (a Function URL's `InvokeMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvokeMode {
    #[default]
    Buffered,
    ResponseStream,
}

/// The options in force for one invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvokeOptions {
    pub invocation_type: InvocationType,
    pub log_type: LogType,
    /// Already base64-encoded, as `X-Amz-Client-Context` wants it.
    pub client_context: Option<Arc<str>>,
    pub request_format: RequestFormat,
    pub response_format: ResponseFormat,
    pub invoke_mode: InvokeMode,
}

impl InvokeOptions {
    /// Whether this invocation goes to `InvokeWithResponseStream`. Lambda has no asynchronous
    /// streaming: an `async` that a route sets on a streaming upstream invokes buffered.
    pub fn streams(&self) -> bool {
        self.invoke_mode == InvokeMode::ResponseStream
            && self.invocation_type != InvocationType::Async
    }
}

/// The same options as written in config: each may be absent (= inherit).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvokeOverrides {
    pub invocation_type: Option<InvocationType>,
    pub log_type: Option<LogType>,
    pub client_context: Option<Arc<str>>,
    pub request_format: Option<RequestFormat>,
    pub response_format: Option<ResponseFormat>,
    pub invoke_mode: Option<InvokeMode>,
}

/// `X-Amz-Client-Context` may carry at most 3583 bytes of base64.
pub const MAX_CLIENT_CONTEXT_B64: usize = 3583;

impl InvokeOverrides {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// These overrides on top of `base`.
    pub fn apply_to(&self, base: &InvokeOptions) -> InvokeOptions {
        InvokeOptions {
            invocation_type: self.invocation_type.unwrap_or(base.invocation_type),
            log_type: self.log_type.unwrap_or(base.log_type),
            client_context: self
                .client_context
                .clone()
                .or_else(|| base.client_context.clone()),
            request_format: self.request_format.unwrap_or(base.request_format),
            response_format: self.response_format.unwrap_or(base.response_format),
            invoke_mode: self.invoke_mode.unwrap_or(base.invoke_mode),
        }
    }
}

/// Encodes a client context object for `X-Amz-Client-Context`, checking Lambda's size limit.
pub fn encode_client_context(value: &serde_json::Value) -> Result<Arc<str>, String> {
    if !value.is_object() {
        return Err("must be a JSON object (e.g. {\"custom\": {…}, \"env\": {…}})".into());
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(value.to_string());
    if encoded.len() > MAX_CLIENT_CONTEXT_B64 {
        return Err(format!(
            "is {} bytes once base64-encoded; Lambda accepts at most {MAX_CLIENT_CONTEXT_B64}",
            encoded.len()
        ));
    }
    Ok(encoded.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_and_limits() {
        assert_eq!(InvocationType::Sync.header_value(), "RequestResponse");
        assert_eq!(InvocationType::Async.header_value(), "Event");
        assert_eq!(InvocationType::DryRun.header_value(), "DryRun");
        assert_eq!(InvocationType::Sync.payload_limit(), 6 * 1024 * 1024);
        assert_eq!(InvocationType::Async.payload_limit(), 1024 * 1024);
    }

    #[test]
    fn overrides_inherit_what_they_do_not_set() {
        let base = InvokeOptions {
            log_type: LogType::Tail,
            request_format: RequestFormat::ApigwV2,
            ..Default::default()
        };
        let o = InvokeOverrides {
            invocation_type: Some(InvocationType::Async),
            ..Default::default()
        };
        let r = o.apply_to(&base);
        assert_eq!(r.invocation_type, InvocationType::Async);
        assert_eq!(r.log_type, LogType::Tail);
        assert_eq!(r.request_format, RequestFormat::ApigwV2);
        assert!(InvokeOverrides::default().is_empty());
    }

    #[test]
    fn only_sync_and_dry_run_stream() {
        let mut o = InvokeOptions {
            invoke_mode: InvokeMode::ResponseStream,
            ..Default::default()
        };
        assert!(o.streams());
        o.invocation_type = InvocationType::DryRun;
        assert!(o.streams());
        o.invocation_type = InvocationType::Async;
        assert!(!o.streams());
        assert!(!InvokeOptions::default().streams());
    }

    #[test]
    fn client_context_is_base64_json_within_limit() {
        let v = serde_json::json!({"custom": {"tenant": "a"}});
        let enc = encode_client_context(&v).unwrap();
        let dec = base64::engine::general_purpose::STANDARD
            .decode(enc.as_bytes())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&dec).unwrap(),
            v
        );
        assert!(encode_client_context(&serde_json::json!("x")).is_err());
        let big = serde_json::json!({"custom": {"k": "v".repeat(3000)}});
        assert!(encode_client_context(&big).unwrap_err().contains("3583"));
    }
}
