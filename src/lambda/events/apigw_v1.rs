//! API Gateway REST API proxy integration (payload format 1.0).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ChunkedBody, EventContext, HttpRequest, query, time};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    resource: &'static str,
    path: &'a str,
    http_method: &'a str,
    headers: BTreeMap<&'a str, &'a str>,
    multi_value_headers: BTreeMap<&'a str, Vec<&'a str>>,
    query_string_parameters: Option<BTreeMap<String, String>>,
    multi_value_query_string_parameters: Option<BTreeMap<String, Vec<String>>>,
    path_parameters: Option<BTreeMap<String, String>>,
    stage_variables: Option<BTreeMap<String, String>>,
    request_context: RequestContext<'a>,
    body: Option<ChunkedBody<'a>>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'static str,
    api_id: &'static str,
    domain_name: &'a str,
    http_method: &'a str,
    identity: Identity<'a>,
    path: &'a str,
    protocol: &'a str,
    request_id: &'a str,
    request_time: String,
    request_time_epoch: u64,
    resource_id: &'static str,
    resource_path: &'static str,
    stage: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    source_ip: &'a str,
    user_agent: &'a str,
}

pub(super) fn build(
    req: &HttpRequest,
    body: &ChunkedBody<'_>,
    ctx: &EventContext<'_>,
) -> serde_json::Result<Vec<u8>> {
    let mut headers = BTreeMap::new();
    let mut multi: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in &req.headers {
        headers.insert(k.as_str(), v.as_str()); // the last value wins, as in API Gateway
        multi.entry(k.as_str()).or_default().push(v.as_str());
    }
    let pairs = query::pairs(req.raw_query(), true);
    let event = Event {
        resource: "/{proxy+}",
        path: req.raw_path(),
        http_method: &req.method,
        headers,
        multi_value_headers: multi,
        query_string_parameters: (!pairs.is_empty()).then(|| query::last(&pairs)),
        multi_value_query_string_parameters: (!pairs.is_empty()).then(|| query::multi(&pairs)),
        path_parameters: None,
        stage_variables: None,
        request_context: RequestContext {
            account_id: "anonymous",
            api_id: "envoy-lambda",
            domain_name: &req.host,
            http_method: &req.method,
            identity: Identity {
                source_ip: &req.source_ip,
                user_agent: req.user_agent(),
            },
            path: req.raw_path(),
            protocol: &req.protocol,
            request_id: &req.request_id,
            request_time: time::clf(ctx.time),
            request_time_epoch: time::epoch_millis(ctx.time),
            resource_id: "envoy",
            resource_path: "/{proxy+}",
            stage: "$default",
        },
        body: (!body.is_empty()).then_some(*body),
        is_base64_encoded: body.base64 && !body.is_empty(),
    };
    serde_json::to_vec(&event)
}
