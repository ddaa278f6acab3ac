//! `aws-sigv4` (a dev-dependency) as the oracle the unit tests hold the signer against.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use super::RequestToSign;
use crate::credentials::AwsCredentials;

/// The headers `aws-sigv4` would add for `req`, with the signer's settings.
pub fn reference_headers(req: &RequestToSign<'_>, creds: &AwsCredentials) -> Vec<(String, String)> {
    let identity: Identity = Credentials::new(
        creds.access_key.as_str(),
        creds.secret_key.as_str(),
        creds.session_token.as_ref().map(|t| t.to_string()),
        None,
        "oracle",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = if req.send_content_sha256 {
        PayloadChecksumKind::XAmzSha256
    } else {
        PayloadChecksumKind::NoHeader
    };
    if !req.normalize_path {
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(req.region)
        .name(req.service)
        .time(req.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.path_and_query,
        req.headers.iter().copied(),
        SignableBody::Precomputed(req.payload_sha256_hex.to_owned()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect()
}
