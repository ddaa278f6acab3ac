//! Lambda API error answers mapped to what the client gets. Input, one field a line:
//! the status, `X-Amzn-ErrorType`, `Retry-After` (an empty line: header absent), then the body.
//!
//! The client-facing message must not carry credentials or signature material that an AWS
//! error body may quote (an IAM `SignatureDoesNotMatch` echoes the canonical request and the
//! `Authorization` header's `Credential=`/`Signature=`).
#![no_main]

use envoy_lambda::lambda::api_error::map_api_error;
use envoy_lambda::lambda::aws_error::AwsError;
use envoy_lambda_fuzz::{access_key_ids, fields};
use libfuzzer_sys::fuzz_target;

fn header(field: Option<&&[u8]>) -> Option<String> {
    field
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
}

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 4);
    let status = std::str::from_utf8(f[0])
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(500);
    let error_type = header(f.get(1));
    let retry_after = header(f.get(2));
    let body = f.get(3).copied().unwrap_or_default();
    let error = AwsError::read(error_type.as_deref(), body);
    let m = map_api_error(status, &error, retry_after.as_deref());
    // What reaches the log (and, opted in, the client): AWS's first line, redacted.
    let summary = error.summary().unwrap_or_default();

    assert!(
        (400..=599).contains(&m.status),
        "client status {}",
        m.status
    );
    if let Some(r) = &m.retry_after {
        assert!(
            !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()),
            "Retry-After {r:?}"
        );
    }
    for secret in ["Signature=", "Credential="] {
        assert!(
            !m.message.contains(secret),
            "message shows {secret}: {:?}",
            m.message
        );
    }
    for id in access_key_ids(data) {
        assert!(
            !m.message.contains(&id),
            "message shows key id {id}: {:?}",
            m.message
        );
        assert!(
            !summary.contains(&id),
            "summary shows key id {id}: {summary:?}"
        );
    }
    assert!(
        !summary.contains('\n') && !summary.contains('\r'),
        "{summary:?}"
    );
});
