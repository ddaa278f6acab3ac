//! Answers the filter gives itself, always as JSON: `{"error": CODE, "message": TEXT}`.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    /// A stable, machine-readable code (also Envoy's response-code details).
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl LocalReply {
    pub fn new(status: u32, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn json_body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: self.code,
            message: &self.message,
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
