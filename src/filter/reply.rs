//! Answers the filter gives itself, always as JSON: `{"error": CODE, "message": TEXT}`.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    /// A stable, machine-readable code (also Envoy's response-code details).
    pub code: &'static str,
    pub message: String,
    /// Envoy's `x-request-id` of the request, for replies that carry one (credentials).
    pub request_id: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl LocalReply {
    pub fn new(status: u32, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            request_id: None,
        }
    }

    /// The same reply, naming the request (to find it in Envoy's access log).
    pub fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id.map(str::to_owned);
        self
    }

    pub fn json_body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: self.code,
            message: &self.message,
            request_id: self.request_id.as_deref(),
        })
        .unwrap_or_default()
    }

    /// Envoy's response-code details must be a single token.
    pub fn details(&self) -> String {
        format!("envoy_lambda_{}", self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_with_code_and_message() {
        let r = LocalReply::new(413, "payload_too_large", "the \"body\" is 7 MB");
        let v: serde_json::Value = serde_json::from_slice(&r.json_body()).unwrap();
        assert_eq!(v["error"], "payload_too_large");
        assert_eq!(v["message"], "the \"body\" is 7 MB");
        assert_eq!(r.details(), "envoy_lambda_payload_too_large");
    }
}
