//! The canonical URI and canonical query string (the request's first two canonical lines).
//!
//! The path is taken as sent (already percent-encoded once, as every AWS service but S3
//! expects) and encoded once more: every byte but the unreserved ones and `/` becomes `%XX`.
//! With normalization on, empty and `.` segments are dropped and `..` removes the one before,
//! as RFC 3986 §5.2.4 and `aws-sigv4` do. Query parameters are decoded (`%XX`, and `+` as a
//! space, as `application/x-www-form-urlencoded` says), encoded again the canonical way, and
//! sorted by encoded name, then encoded value. Nothing is allocated: segments and parameters
//! live in fixed arrays, and a request with more of them is refused.

use std::cmp::Ordering;

use super::error::SignError;
use super::sink::Sink;

/// More segments than any AWS API path has; beyond it, normalization refuses the path.
pub const MAX_PATH_SEGMENTS: usize = 64;
/// More query parameters than any request this module signs.
pub const MAX_QUERY_PARAMS: usize = 32;

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986's unreserved bytes, as a table: the path's bytes are all looked up.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

#[inline]
fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

fn escape(b: u8) -> [u8; 3] {
    [
        b'%',
        HEX_UPPER[usize::from(b >> 4)],
        HEX_UPPER[usize::from(b & 0xf)],
    ]
}

/// `bytes` with every byte outside the unreserved set (and `/` when `keep_slash`) as `%XX`,
/// written in runs.
fn write_encoded(bytes: &[u8], keep_slash: bool, sink: &mut impl Sink) {
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            continue;
        }
        sink.put(&bytes[run..i]);
        sink.put(&escape(b));
        run = i + 1;
    }
    sink.put(&bytes[run..]);
}

/// The canonical URI of `path` (the part of the request target before `?`).
pub fn write_canonical_path(
    path: &str,
    normalize: bool,
    sink: &mut impl Sink,
) -> Result<(), SignError> {
    if path.is_empty() {
        sink.put(b"/");
        return Ok(());
    }
    if !path.starts_with('/') {
        sink.put(b"/");
    }
    // A byte loop for `//` (`str::contains("//")` would set up a substring searcher), without
    // early exit so that it vectorizes.
    let has_double_slash = || {
        let bytes = path.as_bytes();
        bytes
            .iter()
            .zip(&bytes[1..])
            .fold(false, |found, (&a, &b)| found | ((a == b'/') & (b == b'/')))
    };
    if !normalize || !(path.contains('.') || has_double_slash()) {
        write_encoded(path.as_bytes(), true, sink);
        return Ok(());
    }
    let mut kept: [&str; MAX_PATH_SEGMENTS] = [""; MAX_PATH_SEGMENTS];
    let mut n: usize = 0;
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => n = n.saturating_sub(1),
            s => {
                if n == MAX_PATH_SEGMENTS {
                    return Err(SignError::TooManyPathSegments);
                }
                kept[n] = s;
                n += 1;
            }
        }
    }
    // These all end in a directory ("/", "/.", "/..", with or without a last "/").
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    if path.starts_with('/') {
        sink.put(b"/");
    }
    for (i, segment) in kept[..n].iter().enumerate() {
        if i > 0 {
            sink.put(b"/");
        }
        write_encoded(segment.as_bytes(), false, sink);
    }
    if ends_with_slash && n > 0 {
        sink.put(b"/");
    }
    Ok(())
}

/// The canonical bytes of one query name or value: decoded, then encoded again.
struct CanonicalBytes<'a> {
    raw: &'a [u8],
    pending: [u8; 3],
    pending_len: u8,
    pending_at: u8,
}

impl<'a> CanonicalBytes<'a> {
    fn new(raw: &'a str) -> Self {
        Self {
            raw: raw.as_bytes(),
            pending: [0; 3],
            pending_len: 0,
            pending_at: 0,
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// The next decoded byte of `raw`, and how many input bytes it took.
fn decode_one(raw: &[u8]) -> (u8, usize) {
    match raw {
        [b'%', hi, lo, ..] => match (hex_value(*hi), hex_value(*lo)) {
            (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
            _ => (b'%', 1),
        },
        [b'+', ..] => (b' ', 1),
        [b, ..] => (*b, 1),
        [] => (0, 0),
    }
}

impl Iterator for CanonicalBytes<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        if self.pending_at < self.pending_len {
            let b = self.pending[usize::from(self.pending_at)];
            self.pending_at += 1;
            return Some(b);
        }
        if self.raw.is_empty() {
            return None;
        }
        let (b, used) = decode_one(self.raw);
        self.raw = &self.raw[used..];
        if is_unreserved(b) {
            return Some(b);
        }
        self.pending = escape(b);
        self.pending_len = 3;
        self.pending_at = 1;
        Some(b'%')
    }
}

/// Already canonical: nothing to decode and nothing to encode.
fn is_plain(s: &str) -> bool {
    s.bytes().all(is_unreserved)
}

fn compare_canonical(a: &str, b: &str) -> Ordering {
    if is_plain(a) && is_plain(b) {
        return a.cmp(b);
    }
    CanonicalBytes::new(a).cmp(CanonicalBytes::new(b))
}

fn write_canonical_component(s: &str, sink: &mut impl Sink) {
    if is_plain(s) {
        sink.put(s.as_bytes());
        return;
    }
    let mut raw = s.as_bytes();
    while !raw.is_empty() {
        // The longest run that is already canonical goes out in one piece.
        let run = raw.iter().take_while(|&&b| is_unreserved(b)).count();
        if run > 0 {
            sink.put(&raw[..run]);
            raw = &raw[run..];
            continue;
        }
        let (b, used) = decode_one(raw);
        raw = &raw[used..];
        if is_unreserved(b) {
            sink.put(&[b]);
        } else {
            sink.put(&escape(b));
        }
    }
}

/// The canonical query string of `query` (the part after `?`, without it).
pub fn write_canonical_query(query: &str, sink: &mut impl Sink) -> Result<(), SignError> {
    if query.is_empty() {
        return Ok(());
    }
    let mut params: [(&str, &str); MAX_QUERY_PARAMS] = [("", ""); MAX_QUERY_PARAMS];
    let mut n = 0;
    // Empty pieces (`a=1&&b=2`) are no parameter, as in form decoding.
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        if n == MAX_QUERY_PARAMS {
            return Err(SignError::TooManyQueryParameters);
        }
        params[n] = piece.split_once('=').unwrap_or((piece, ""));
        n += 1;
    }
    let params = &mut params[..n];
    // Insertion sort: stable, no allocation, and n is small.
    for i in 1..params.len() {
        let mut j = i;
        while j > 0 && {
            let (a, b) = (params[j - 1], params[j]);
            compare_canonical(a.0, b.0).then_with(|| compare_canonical(a.1, b.1))
                == Ordering::Greater
        } {
            params.swap(j - 1, j);
            j -= 1;
        }
    }
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        write_canonical_component(name, sink);
        sink.put(b"=");
        write_canonical_component(value, sink);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str, normalize: bool) -> String {
        let mut out = Vec::new();
        write_canonical_path(p, normalize, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn query(q: &str) -> String {
        let mut out = Vec::new();
        write_canonical_query(q, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn paths_are_encoded_once_more() {
        assert_eq!(path("/f%3A7/invocations", true), "/f%253A7/invocations");
        assert_eq!(path("/a b/@", true), "/a%20b/%40");
        assert_eq!(path("", true), "/");
        assert_eq!(path("relative", false), "/relative");
    }

    #[test]
    fn normalization_removes_dot_segments_and_empty_ones() {
        assert_eq!(path("/a/./b/../c", true), "/a/c");
        assert_eq!(path("/a/./b/../c", false), "/a/./b/../c");
        assert_eq!(path("/../..", true), "/");
        assert_eq!(path("//x//", true), "/x/");
        assert_eq!(path("/x/y/.", true), "/x/y/");
        let deep = "/a".repeat(MAX_PATH_SEGMENTS + 1) + "/.";
        assert!(write_canonical_path(&deep, true, &mut Vec::new()).is_err());
    }

    #[test]
    fn query_parameters_are_sorted_after_encoding() {
        assert_eq!(query("b=2&a=1"), "a=1&b=2");
        assert_eq!(query("a=2&a=1"), "a=1&a=2");
        assert_eq!(query("flag&&x="), "flag=&x=");
        // Encoded names sort by their encoded bytes: `%` before letters.
        assert_eq!(query("Param=1&%E1%88%B4=2"), "%E1%88%B4=2&Param=1");
        assert_eq!(query("k=a+b%2b%7e%2F"), "k=a%20b%2B~%2F");
        assert_eq!(query("k=%zz"), "k=%25zz");
        assert_eq!(
            query("MaxItems=50&Marker=a%2Bb%2Fc%3D%3D"),
            "Marker=a%2Bb%2Fc%3D%3D&MaxItems=50"
        );
        let many = "a=1&".repeat(MAX_QUERY_PARAMS + 1);
        assert!(write_canonical_query(&many, &mut Vec::new()).is_err());
    }
}
