//! The canonical request, written to a sink (SHA-256 on the request path):
//!
//! ```text
//! <method>\n<canonical URI>\n<canonical query>\n<canonical headers>\n<signed headers>\n<payload hash>
//! ```

use super::canonical_uri::{write_canonical_path, write_canonical_query};
use super::error::SignError;
use super::header_set::HeaderSet;
use super::sink::Sink;

pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    /// The request target as sent: path, then `?` and the query if any.
    pub path_and_query: &'a str,
    /// Sorted (see [`HeaderSet::sort`]).
    pub headers: &'a HeaderSet<'a>,
    pub payload_sha256_hex: &'a str,
    pub normalize_path: bool,
}

pub fn write_canonical_request(
    req: &CanonicalRequest<'_>,
    sink: &mut impl Sink,
) -> Result<(), SignError> {
    let (path, query) = req
        .path_and_query
        .split_once('?')
        .unwrap_or((req.path_and_query, ""));
    sink.put(req.method.as_bytes());
    sink.put(b"\n");
    write_canonical_path(path, req.normalize_path, sink)?;
    sink.put(b"\n");
    write_canonical_query(query, sink)?;
    sink.put(b"\n");
    req.headers.write_canonical(sink);
    sink.put(b"\n");
    req.headers.write_names(sink);
    sink.put(b"\n");
    sink.put(req.payload_sha256_hex.as_bytes());
    Ok(())
}
