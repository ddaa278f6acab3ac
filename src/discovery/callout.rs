//! A Lambda API listing request as the header list of an Envoy HTTP callout, signed.

use std::sync::Arc;
use std::time::SystemTime;

use super::ApiRequest;
use crate::config::Upstream;
use crate::credentials::AwsCredentials;
use crate::sigv4::{LAMBDA_SERVICE, RequestToSign, SignError, sign};

/// SHA-256 of the empty body: listings are GETs.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `:method`, `:path`, `host` and the signature headers for `request` to `upstream`.
pub fn signed_headers(
    request: &ApiRequest,
    upstream: &Upstream,
    creds: &Arc<AwsCredentials>,
    now: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    let authority = upstream.endpoint.authority.as_str();
    let host = [("host", authority)];
    let signed = sign(
        &RequestToSign {
            method: ApiRequest::METHOD,
            path_and_query: &request.path_and_query,
            headers: &host,
            payload_sha256_hex: EMPTY_SHA256,
            // moto (like botocore) needs the empty-body hash signed; AWS accepts it.
            send_content_sha256: true,
            region: upstream.region.as_str(),
            service: LAMBDA_SERVICE,
            time: now,
            normalize_path: true,
        },
        creds,
    )?;
    let mut headers = vec![
        (":method".to_owned(), ApiRequest::METHOD.to_owned()),
        (":path".to_owned(), request.path_and_query.clone()),
        ("host".to_owned(), authority.to_owned()),
    ];
    headers.extend(signed.headers().map(|(k, v)| (k.to_owned(), v.to_owned())));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterConfig;
    use crate::discovery::lambda_api::ApiCall;

    #[test]
    fn a_listing_is_a_signed_get_to_the_upstream() {
        let c = FilterConfig::from_json(
            br#"{"name":"u","spec":{"region":"eu-west-1","secret_ref":"s",
                 "endpoint":{"scheme":"http","host":"127.0.0.1","port":5000}}}"#,
        )
        .unwrap();
        let creds = Arc::new(AwsCredentials::parse(b"access_key: AKID\nsecret_key: s\n").unwrap());
        let req = ApiRequest::new(ApiCall::ListFunctions, Some("m/+x"));
        let h = signed_headers(&req, c.upstream("u").unwrap(), &creds, SystemTime::now()).unwrap();
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get(":method"), Some("GET"));
        assert_eq!(get(":path"), Some(req.path_and_query.as_str()));
        assert_eq!(get("host"), Some("127.0.0.1:5000"));
        assert_eq!(get("x-amz-content-sha256"), Some(EMPTY_SHA256));
        let auth = get("authorization").unwrap();
        assert!(auth.contains("/eu-west-1/lambda/aws4_request"), "{auth}");
        assert!(
            auth.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date"),
            "{auth}"
        );
    }
}
