//! HTTP requests as the events that API Gateway and ALB send to Lambda, so that functions
//! written for them run unchanged behind Envoy. Field names and shapes follow AWS's published
//! examples (see the golden tests).

mod alb;
mod apigw_v1;
mod apigw_v2;
mod body;
mod query;
mod time;

use std::time::SystemTime;

pub use body::ChunkedBody;

use super::RequestFormat;

/// The client's request as the event needs it, captured before any header is rewritten.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    /// `:path` as received: path plus `?query`, still percent-encoded.
    pub path_and_query: String,
    /// Every regular header in arrival order, names in lower case (Envoy's own form).
    pub headers: Vec<(String, String)>,
    pub source_ip: String,
    pub request_id: String,
    pub host: String,
    pub protocol: String,
}

/// Facts about the deployment that some events carry.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    pub region: &'a str,
    pub time: SystemTime,
}

impl HttpRequest {
    pub fn raw_path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("/")
    }

    pub fn raw_query(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn user_agent(&self) -> &str {
        self.header("user-agent").unwrap_or("")
    }
}

/// Builds the event JSON for `format` (never called for `Raw`, whose payload is the body).
pub fn build_event(
    format: RequestFormat,
    req: &HttpRequest,
    body: &ChunkedBody<'_>,
    ctx: &EventContext<'_>,
) -> Vec<u8> {
    let result = match format {
        RequestFormat::Raw | RequestFormat::ApigwV2 => apigw_v2::build(req, body, ctx),
        RequestFormat::ApigwV1 => apigw_v1::build(req, body, ctx),
        RequestFormat::Alb => alb::build(req, body, ctx, false),
        RequestFormat::AlbMultiValue => alb::build(req, body, ctx, true),
    };
    // Serializing maps of strings into a Vec cannot fail.
    result.unwrap_or_default()
}

#[cfg(test)]
mod tests;
