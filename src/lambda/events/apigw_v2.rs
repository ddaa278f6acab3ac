//! API Gateway HTTP API, payload format 2.0.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ChunkedBody, EventContext, HttpRequest, query, time};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'static str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    query_string_parameters: BTreeMap<String, String>,
    request_context: RequestContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<ChunkedBody<'a>>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'static str,
    api_id: &'static str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: Http<'a>,
    request_id: &'a str,
    route_key: &'static str,
    stage: &'static str,
    time: String,
    time_epoch: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: &'a str,
}

pub(super) fn build(
    req: &HttpRequest,
    body: &ChunkedBody<'_>,
    ctx: &EventContext<'_>,
) -> serde_json::Result<Vec<u8>> {
    let mut cookies = Vec::new();
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in &req.headers {
        if k == "cookie" {
            // 2.0 moves cookies into their own list.
            cookies.extend(v.split(';').map(str::trim).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(k.as_str())
            .and_modify(|e| {
                e.push(',');
                e.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    let pairs = query::pairs(req.raw_query(), true);
    let event = Event {
        version: "2.0",
        route_key: "$default",
        raw_path: req.raw_path(),
        raw_query_string: req.raw_query(),
        cookies,
        headers,
        query_string_parameters: query::joined(&pairs),
        request_context: RequestContext {
            account_id: "anonymous",
            api_id: "envoy-lambda",
            domain_name: &req.host,
            domain_prefix: req.host.split('.').next().unwrap_or(""),
            http: Http {
                method: &req.method,
                path: req.raw_path(),
                protocol: &req.protocol,
                source_ip: &req.source_ip,
                user_agent: req.user_agent(),
            },
            request_id: &req.request_id,
            route_key: "$default",
            stage: "$default",
            time: time::clf(ctx.time),
            time_epoch: time::epoch_millis(ctx.time),
        },
        body: (!body.is_empty()).then_some(*body),
        is_base64_encoded: body.base64 && !body.is_empty(),
    };
    serde_json::to_vec(&event)
}
