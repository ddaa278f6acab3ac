//! `response_format: unwrap`: reading a function's API Gateway/ALB-style result as the HTTP
//! response it describes.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use super::RequestFormat;

/// An HTTP response described by the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The function's result could not be read as an HTTP response (a bug in the function).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnwrapError(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    status_code: Value,
    #[serde(default)]
    headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    multi_value_headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    cookies: Option<Vec<Value>>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    is_base64_encoded: Option<Value>,
}

/// Reads the function's payload as an HTTP response, with the rules of the event format the
/// request used (`apigw_v2` guesses for results without `statusCode`; the others require it).
pub fn unwrap(format: RequestFormat, payload: &[u8]) -> Result<HttpResponse, UnwrapError> {
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    let described = matches!(&parsed, Some(Value::Object(o)) if o.contains_key("statusCode"));
    if !described {
        return if matches!(format, RequestFormat::ApigwV2 | RequestFormat::Raw) {
            // HTTP API 2.0: a result that is not an object with statusCode is the body of a 200.
            Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: payload.to_vec(),
            })
        } else {
            Err(UnwrapError(
                "the function's result is not a JSON object with a statusCode".into(),
            ))
        };
    }
    let d: Described = serde_json::from_value(parsed.unwrap_or_default())
        .map_err(|e| UnwrapError(format!("the function's result is malformed: {e}")))?;
    let status = match &d.status_code {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| {
        UnwrapError(format!(
            "statusCode {} is not an HTTP status",
            d.status_code
        ))
    })? as u32;
    let mut headers = Vec::new();
    for (k, v) in d.headers.iter().flatten() {
        headers.push((k.to_ascii_lowercase(), scalar(k, v)?));
    }
    for (k, v) in d.multi_value_headers.iter().flatten() {
        let Value::Array(values) = v else {
            return Err(UnwrapError(format!("multiValueHeaders.{k} is not a list")));
        };
        let k = k.to_ascii_lowercase();
        // multiValueHeaders wins over headers for the same name, as in API Gateway.
        headers.retain(|(name, _)| *name != k);
        for v in values {
            headers.push((k.clone(), scalar(&k, v)?));
        }
    }
    for c in d.cookies.iter().flatten() {
        headers.push(("set-cookie".into(), scalar("cookies", c)?));
    }
    let is_base64 = matches!(d.is_base64_encoded, Some(Value::Bool(true)))
        || matches!(&d.is_base64_encoded, Some(Value::String(s)) if s == "true");
    let body = match d.body {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if is_base64 => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|_| UnwrapError("body is marked isBase64Encoded but is not base64".into()))?,
        Some(Value::String(s)) => s.into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn scalar(name: &str, v: &Value) -> Result<String, UnwrapError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(UnwrapError(format!("header {name} is not a string"))),
    };
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(UnwrapError(format!("header {name} contains a line break")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a HttpResponse, k: &str) -> Vec<&'a str> {
        r.headers
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn unwraps_a_described_response() {
        let r = unwrap(
            RequestFormat::ApigwV2,
            br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Count":3},
                "cookies":["a=1; Path=/","b=2"],"body":"created","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), ["text/plain"]);
        assert_eq!(header(&r, "x-count"), ["3"]);
        assert_eq!(header(&r, "set-cookie"), ["a=1; Path=/", "b=2"]);
        assert_eq!(r.body, b"created");
    }

    #[test]
    fn base64_bodies_and_multi_value_headers() {
        let r = unwrap(
            RequestFormat::Alb,
            br#"{"statusCode":"200","statusDescription":"200 OK","multiValueHeaders":{"Set-Cookie":["x=1","y=2"]},
                "headers":{"set-cookie":"lost"},"body":"AAEC/w==","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.body, [0, 1, 2, 255]);
        assert_eq!(header(&r, "set-cookie"), ["x=1", "y=2"]);
    }

    #[test]
    fn http_api_treats_other_results_as_a_200_body() {
        for payload in [
            &br#"{"hello":"world"}"#[..],
            b"\"just a string\"",
            b"[1,2]",
            b"not json",
        ] {
            let r = unwrap(RequestFormat::ApigwV2, payload).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, payload);
        }
    }

    #[test]
    fn malformed_results_are_errors_not_panics() {
        assert!(unwrap(RequestFormat::ApigwV1, b"[1]").is_err());
        assert!(unwrap(RequestFormat::ApigwV1, br#"{"statusCode":99}"#).is_err());
        assert!(unwrap(RequestFormat::ApigwV1, br#"{"statusCode":"abc"}"#).is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"a":{}}}"#
        )
        .is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"a":"x\r\ny: z"}}"#
        )
        .is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#
        )
        .is_err());
        assert!(unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"multiValueHeaders":{"a":"b"}}"#
        )
        .is_err());
    }
}
