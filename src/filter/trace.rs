//! Trace propagation into the function: an X-Ray `X-Amzn-Trace-Id`
//! (`Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`) derived from the request's
//! W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), or else from
//! Envoy's `x-request-id`. X-Ray reads a W3C trace id as its root: the first 8 hex digits
//! take the place of the epoch seconds.
//!
//! The client's own `X-Amzn-Trace-Id` never reaches Lambda (every `x-amzn-*` request header is
//! stripped); only this derived one is sent. Like AWS's SDKs (aws-sigv4 and botocore leave
//! `x-amzn-trace-id` out of the canonical request), it is sent but not signed.

use sha2::{Digest, Sha256};

use crate::host::{Direction, Host};

const TRACE_HEADER: &str = "x-amzn-trace-id";

/// Adds the derived `X-Amzn-Trace-Id` to the request (after signing: it is not signed). The
/// client's own was stripped with every `x-amzn-*` header.
pub fn propagate_trace(host: &mut dyn Host) {
    let id = xray_trace_id(
        host.header(Direction::Request, "traceparent"),
        host.header(Direction::Request, "x-request-id"),
    );
    if let Some(id) = id {
        host.add_header(Direction::Request, TRACE_HEADER, &id);
    }
}

/// The `X-Amzn-Trace-Id` for a request with these headers; `None` if neither carries an id.
pub fn xray_trace_id(traceparent: Option<&[u8]>, request_id: Option<&[u8]>) -> Option<String> {
    traceparent
        .and_then(from_traceparent)
        .or_else(|| request_id.and_then(from_request_id))
}

fn from_traceparent(v: &[u8]) -> Option<String> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let mut parts = v.split('-');
    let (version, trace_id, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four parts; a later version may add more (W3C: read the first four).
    if version.len() != 2 || !is_hex(version) || version == "ff" {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace_id.len() != 32 || !is_hex(trace_id) || trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if parent.len() != 16 || !is_hex(parent) || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    if flags.len() != 2 || !is_hex(flags) {
        return None;
    }
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1;
    Some(format_xray(trace_id, parent, sampled == 1))
}

/// Envoy's request id is a UUID; its version digit tells whether Envoy's tracing sampled the
/// request (`9` sampled, `a` forced, `b` client-requested; `4` not traced).
fn from_request_id(v: &[u8]) -> Option<String> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let b = v.as_bytes();
    let uuid_shape = b.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && b.iter()
            .enumerate()
            .all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit());
    if !uuid_shape {
        return None;
    }
    let hex: String = v.chars().filter(|c| *c != '-').collect();
    let hex = hex.to_ascii_lowercase();
    let sampled = matches!(b[14], b'9' | b'a' | b'A' | b'b' | b'B');
    // No parent span: one derived from the id, stable for the request.
    let parent = hex::encode(&Sha256::digest(hex.as_bytes())[..8]);
    Some(format_xray(&hex, &parent, sampled))
}

fn format_xray(trace_id: &str, parent: &str, sampled: bool) -> String {
    let trace_id = trace_id.to_ascii_lowercase();
    format!(
        "Root=1-{}-{};Parent={};Sampled={}",
        &trace_id[..8],
        &trace_id[8..],
        parent.to_ascii_lowercase(),
        u8::from(sampled)
    )
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TP: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_becomes_an_xray_header() {
        assert_eq!(
            xray_trace_id(Some(TP), None).unwrap(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
        );
        let unsampled = b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00";
        assert_eq!(
            xray_trace_id(Some(unsampled), Some(b"ignored")).unwrap(),
            "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0"
        );
    }

    #[test]
    fn a_bad_traceparent_falls_back_to_the_request_id() {
        let rid = b"6f8c1a52-1d0c-4b0c-9d8e-0123456789ab";
        for bad in [
            &b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            b"garbage",
        ] {
            let got = xray_trace_id(Some(bad), Some(rid)).unwrap();
            assert!(
                got.starts_with("Root=1-6f8c1a52-1d0c4b0c9d8e0123456789ab;Parent="),
                "{got}"
            );
            assert!(got.ends_with(";Sampled=0"), "{got}");
        }
    }

    #[test]
    fn request_id_sampling_follows_envoys_uuid_mark() {
        let sampled = xray_trace_id(None, Some(b"6f8c1a52-1d0c-9b0c-9d8e-0123456789ab")).unwrap();
        assert!(sampled.ends_with(";Sampled=1"));
        assert_eq!(xray_trace_id(None, Some(b"not-a-uuid")), None);
        assert_eq!(xray_trace_id(None, None), None);
    }

    proptest! {
        #[test]
        fn the_header_is_always_xray_shaped(tp in "\\PC{0,80}", rid in "[0-9a-f-]{0,40}") {
            if let Some(h) = xray_trace_id(Some(tp.as_bytes()), Some(rid.as_bytes())) {
                let re_ok = h.len() == "Root=1-".len() + 8 + 1 + 24 + ";Parent=".len() + 16 + ";Sampled=0".len();
                prop_assert!(re_ok, "{}", h);
                prop_assert!(h.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
