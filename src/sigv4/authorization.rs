//! The `authorization` header value:
//! `AWS4-HMAC-SHA256 Credential=<access key>/<scope>, SignedHeaders=<names>, Signature=<hex>`.

use super::header_set::HeaderSet;
use super::sink::Sink;
use super::string_to_sign::{ALGORITHM, Scope};

/// The value, in one allocation of the right size.
pub fn authorization(
    access_key: &str,
    scope: &Scope<'_>,
    headers: &HeaderSet<'_>,
    signature_hex: &[u8; 64],
) -> String {
    // The fixed parts are 144 bytes.
    let capacity = 160 + access_key.len() + scope.region.len() + scope.service.len();
    let mut out = Vec::with_capacity(capacity + headers.names_len());
    out.put(ALGORITHM.as_bytes());
    out.put(b" Credential=");
    out.put(access_key.as_bytes());
    out.put(b"/");
    scope.write(&mut out);
    out.put(b", SignedHeaders=");
    headers.write_names(&mut out);
    out.put(b", Signature=");
    out.put(signature_hex);
    // Every piece is a &str or ASCII (hex digits, lowered ASCII names).
    String::from_utf8(out).unwrap_or_default()
}
