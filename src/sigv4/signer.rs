//! Signs a Lambda Invoke request with `aws-sigv4`, given a payload hash computed beforehand.
//!
//! What is signed is exactly what is sent: `host` (the `:authority` we set), `x-amz-date`,
//! `x-amz-content-sha256` (always: Lambda accepts it, and it binds the body to the signature),
//! `x-amz-security-token` when the credentials are temporary, and the Invoke options
//! (`x-amz-invocation-type`, `x-amz-log-type`, `x-amz-client-context`). No client header is signed,
//! so nothing a proxy or the client adds later can break the signature.

use std::fmt;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::credentials::AwsCredentials;

pub const LAMBDA_SERVICE: &str = "lambda";

/// The parts of the outgoing request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct InvokeToSign<'a> {
    pub authority: &'a str,
    /// Already percent-encoded once (see `lambda::invoke_path`).
    pub path_and_query: &'a str,
    pub payload_sha256_hex: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
    /// More headers to sign and send (`x-amz-invocation-type`, `x-amz-log-type`, …), lower-case.
    pub extra_headers: &'a [(&'a str, &'a str)],
}

/// Headers to set on the request: `authorization`, `x-amz-date`, `x-amz-content-sha256` and
/// maybe `x-amz-security-token`.
pub type SignedHeaders = Vec<(&'static str, String)>;

/// Signing failed; the message is aws-sigv4's and never includes key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(pub String);

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigV4 signing failed: {}", self.0)
    }
}

impl std::error::Error for SignError {}

pub fn sign_invoke(
    req: InvokeToSign<'_>,
    creds: &AwsCredentials,
) -> Result<SignedHeaders, SignError> {
    let mut headers = Vec::with_capacity(1 + req.extra_headers.len());
    headers.push(("host", req.authority));
    headers.extend_from_slice(req.extra_headers);
    let signed = sign_request(
        RequestToSign {
            method: "POST",
            path_and_query: req.path_and_query,
            headers: &headers,
            payload_sha256_hex: req.payload_sha256_hex,
            send_content_sha256: true,
            region: req.region,
            service: LAMBDA_SERVICE,
            time: req.time,
            double_encode_path: true,
            normalize_path: true,
        },
        creds,
    )?;
    Ok(signed.headers)
}

/// Any request, for the AWS SigV4 test suite; [`sign_invoke`] is this with Lambda's settings.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    /// Headers to sign (names lower- or mixed-case); they must all be sent as given.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256_hex: &'a str,
    /// Also send (and sign) `x-amz-content-sha256`.
    pub send_content_sha256: bool,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
    /// Every service but S3 encodes the canonical URI twice …
    pub double_encode_path: bool,
    /// … and normalizes it (`/a/./b/../c` → `/a/c`).
    pub normalize_path: bool,
}

#[derive(Debug, Clone)]
pub struct Signed {
    pub headers: SignedHeaders,
    pub signature: String,
}

pub fn sign_request(req: RequestToSign<'_>, creds: &AwsCredentials) -> Result<Signed, SignError> {
    let identity: Identity = Credentials::new(
        creds.access_key.as_str(),
        creds.secret_key.as_str(),
        creds.session_token.as_ref().map(|t| t.to_string()),
        None,
        "envoy-lambda-secret",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = if req.send_content_sha256 {
        PayloadChecksumKind::XAmzSha256
    } else {
        PayloadChecksumKind::NoHeader
    };
    if !req.double_encode_path {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
    }
    if !req.normalize_path {
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    // We choose exactly which headers are signed; aws-sigv4's proxy-unsafe list is irrelevant.
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(req.region)
        .name(req.service)
        .time(req.time)
        .settings(settings)
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.path_and_query,
        req.headers.iter().copied(),
        SignableBody::Precomputed(req.payload_sha256_hex.to_owned()),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, signature) = sign(signable, &params)
        .map_err(|e| SignError(e.to_string()))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(Signed {
        headers: headers
            .into_iter()
            .map(|h| (h.name(), h.value().to_owned()))
            .collect(),
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(token: Option<&str>) -> AwsCredentials {
        let yaml = match token {
            Some(t) => format!("access_key: AKIDEXAMPLE\nsecret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\nsession_token: {t}\n"),
            None => "access_key: AKIDEXAMPLE\nsecret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n".into(),
        };
        AwsCredentials::parse(yaml.as_bytes()).unwrap()
    }

    fn header<'a>(h: &'a SignedHeaders, name: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn at_20150830() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160) // 2015-08-30T12:36:00Z
    }

    #[test]
    fn signs_host_date_and_content_hash() {
        let h = sign_invoke(
            InvokeToSign {
                authority: "lambda.us-east-1.amazonaws.com",
                path_and_query: "/2015-03-31/functions/echo/invocations",
                payload_sha256_hex: EMPTY_SHA,
                region: "us-east-1",
                time: at_20150830(),
                extra_headers: &[],
            },
            &creds(None),
        )
        .unwrap();
        assert_eq!(header(&h, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(header(&h, "x-amz-content-sha256"), Some(EMPTY_SHA));
        let auth = header(&h, "authorization").unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
            ),
            "{auth}"
        );
        assert!(header(&h, "x-amz-security-token").is_none());
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let h = sign_invoke(
            InvokeToSign {
                authority: "127.0.0.1:5000",
                path_and_query: "/2015-03-31/functions/echo/invocations?Qualifier=live",
                payload_sha256_hex: EMPTY_SHA,
                region: "eu-west-1",
                time: at_20150830(),
                extra_headers: &[("x-amz-invocation-type", "Event")],
            },
            &creds(Some("TOKEN")),
        )
        .unwrap();
        assert_eq!(header(&h, "x-amz-security-token"), Some("TOKEN"));
        assert!(header(&h, "authorization")
            .unwrap()
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-invocation-type;x-amz-security-token"));
    }
}
