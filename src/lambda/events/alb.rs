//! Application Load Balancer target event, in ALB's two shapes: single-value (the default: the
//! last value of a repeated header or query key) and multi-value (the target group attribute
//! `lambda.multi_value_headers.enabled`: every value, in `multiValueHeaders` and
//! `multiValueQueryStringParameters` *instead of* the single-value maps).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ChunkedBody, EventContext, HttpRequest, query};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    request_context: RequestContext,
    http_method: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_query_string_parameters: Option<BTreeMap<String, Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multi_value_headers: Option<BTreeMap<&'a str, Vec<&'a str>>>,
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
    multi_value: bool,
) -> serde_json::Result<Vec<u8>> {
    // ALB passes query parameters exactly as received, without percent-decoding them, in
    // both modes.
    let pairs = query::pairs(req.raw_query(), false);
    let (headers, multi_value_headers, query, multi_value_query) = if multi_value {
        let mut multi: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in &req.headers {
            multi.entry(k.as_str()).or_default().push(v.as_str());
        }
        (None, Some(multi), None, Some(query::multi(&pairs)))
    } else {
        // The last value wins, as in ALB's default mode.
        let single: BTreeMap<&str, &str> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (Some(single), None, Some(query::last(&pairs)), None)
    };
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
        query_string_parameters: query,
        multi_value_query_string_parameters: multi_value_query,
        headers,
        multi_value_headers,
        body: if body.is_empty() {
            BodyOrEmpty::Empty("")
        } else {
            BodyOrEmpty::Body(*body)
        },
        is_base64_encoded: body.base64 && !body.is_empty(),
    };
    serde_json::to_vec(&event)
}
