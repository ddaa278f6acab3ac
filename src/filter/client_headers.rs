//! Which client headers are removed before the request is signed and sent to AWS.

/// True for a request header that must not reach Lambda: the client's own credentials and
/// cookies, anything in AWS's reserved `x-amz-*` / `x-amzn-*` space (a client must not be able
/// to pick, say, the invocation type or a security token), and hop-by-hop headers.
///
/// Takes the name's bytes: Envoy's names are checked tokens, and a UTF-8 check per header
/// would cost more than the test itself.
pub fn must_not_reach_aws(name: impl AsRef<[u8]>) -> bool {
    const EXACT: &[&str] = &[
        "authorization",
        "proxy-authorization",
        "cookie",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length", // set again from the payload that is actually sent
    ];
    let name = name.as_ref();
    EXACT
        .iter()
        .any(|e| name.eq_ignore_ascii_case(e.as_bytes()))
        || starts_with_ignore_case(name, b"x-amz-")
        || starts_with_ignore_case(name, b"x-amzn-")
}

fn starts_with_ignore_case(name: &[u8], prefix: &[u8]) -> bool {
    name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_credentials_reserved_and_hop_by_hop() {
        for h in [
            "authorization",
            "Authorization",
            "cookie",
            "x-amz-date",
            "X-Amz-Security-Token",
            "x-amz-invocation-type",
            "x-amzn-trace-id",
            "transfer-encoding",
            "connection",
            "proxy-authorization",
        ] {
            assert!(must_not_reach_aws(h), "{h}");
        }
    }

    #[test]
    fn keeps_ordinary_headers() {
        for h in [
            ":path",
            "content-type",
            "accept",
            "user-agent",
            "x-request-id",
            "x-amazing",
        ] {
            assert!(!must_not_reach_aws(h), "{h}");
        }
    }
}
