//! Application Load Balancer target event (single-value headers and query, ALB's default).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{query, ChunkedBody, EventContext, HttpRequest};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    request_context: RequestContext,
    http_method: &'a str,
    path: &'a str,
    query_string_parameters: BTreeMap<String, String>,
    headers: BTreeMap<&'a str, &'a str>,
    body: BodyOrEmpty<'a>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
struct RequestContext {
    elb: Elb,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Elb {
    target_group_arn: String,
}

/// ALB sends `""` for an empty body, not null.
#[derive(Serialize)]
#[serde(untagged)]
enum BodyOrEmpty<'a> {
    Empty(&'static str),
    Body(ChunkedBody<'a>),
}

pub(super) fn build(
    req: &HttpRequest,
    body: &ChunkedBody<'_>,
    ctx: &EventContext<'_>,
) -> serde_json::Result<Vec<u8>> {
    let mut headers = BTreeMap::new();
    for (k, v) in &req.headers {
        headers.insert(k.as_str(), v.as_str());
    }
    // ALB passes query parameters exactly as received, without percent-decoding them.
    let pairs = query::pairs(req.raw_query(), false);
    let event = Event {
        request_context: RequestContext {
            elb: Elb {
                target_group_arn: format!(
                    "arn:aws:elasticloadbalancing:{}:000000000000:targetgroup/envoy-lambda/0000000000000000",
                    ctx.region
                ),
            },
        },
        http_method: &req.method,
        path: req.raw_path(),
        query_string_parameters: query::last(&pairs),
        headers,
        body: if body.is_empty() {
            BodyOrEmpty::Empty("")
        } else {
            BodyOrEmpty::Body(*body)
        },
        is_base64_encoded: body.base64 && !body.is_empty(),
    };
    serde_json::to_vec(&event)
}
