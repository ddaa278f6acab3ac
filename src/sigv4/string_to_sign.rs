//! The credential scope and the string to sign:
//! `AWS4-HMAC-SHA256\n<datetime>\n<date>/<region>/<service>/aws4_request\n<hex(SHA-256(canonical request))>`.

use super::sink::Sink;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// `<date>/<region>/<service>/aws4_request`.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub date: &'a [u8; 8],
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    pub fn write(&self, sink: &mut impl Sink) {
        sink.put(self.date);
        sink.put(b"/");
        sink.put(self.region.as_bytes());
        sink.put(b"/");
        sink.put(self.service.as_bytes());
        sink.put(b"/aws4_request");
    }
}

pub fn write_string_to_sign(
    amz_date: &[u8; 16],
    scope: &Scope<'_>,
    canonical_request_sha256_hex: &[u8; 64],
    sink: &mut impl Sink,
) {
    sink.put(ALGORITHM.as_bytes());
    sink.put(b"\n");
    sink.put(amz_date);
    sink.put(b"\n");
    scope.write(sink);
    sink.put(b"\n");
    sink.put(canonical_request_sha256_hex);
}
