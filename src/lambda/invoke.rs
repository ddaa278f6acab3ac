//! The Invoke request lines: `POST /2015-03-31/functions/{FunctionName}/invocations?Qualifier=…`
//! and, for `InvokeWithResponseStream`,
//! `POST /2021-11-15/functions/{FunctionName}/response-streaming-invocations?Qualifier=…`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{FunctionName, Qualifier};

/// Lambda's synchronous (RequestResponse) request payload limit: 6 MB.
pub const LAMBDA_SYNC_PAYLOAD_LIMIT: u64 = 6 * 1024 * 1024;

/// Lambda's asynchronous (Event) request payload limit: 1 MB (raised from 256 KB in 2025).
pub const LAMBDA_ASYNC_PAYLOAD_LIMIT: u64 = 1024 * 1024;

/// RFC 3986 unreserved characters stay as they are; everything else is `%XX` (AWS URI encoding).
const AWS_URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The path (with query) of an Invoke call. The function name is one path segment, so `:` in
/// ARNs and `$` in `$LATEST` are encoded once here; SigV4 encodes the canonical URI a second time.
pub fn invoke_path(function: &FunctionName, qualifier: Option<&Qualifier>) -> String {
    api_path("/2015-03-31", "/invocations", function, qualifier)
}

/// The path (with query) of an `InvokeWithResponseStream` call, encoded like [`invoke_path`].
pub fn stream_path(function: &FunctionName, qualifier: Option<&Qualifier>) -> String {
    api_path(
        "/2021-11-15",
        "/response-streaming-invocations",
        function,
        qualifier,
    )
}

fn api_path(
    version: &str,
    action: &str,
    function: &FunctionName,
    qualifier: Option<&Qualifier>,
) -> String {
    let mut path = String::with_capacity(64 + function.as_str().len());
    path.push_str(version);
    path.push_str("/functions/");
    path.extend(utf8_percent_encode(function.as_str(), AWS_URI_ENCODE));
    path.push_str(action);
    if let Some(q) = qualifier {
        path.push_str("?Qualifier=");
        path.extend(utf8_percent_encode(q.as_str(), AWS_URI_ENCODE));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str, q: Option<&str>) -> String {
        let q = q.map(|q| Qualifier::parse(q).unwrap());
        invoke_path(&FunctionName::parse(name).unwrap(), q.as_ref())
    }

    #[test]
    fn plain_name() {
        assert_eq!(path("echo", None), "/2015-03-31/functions/echo/invocations");
    }

    #[test]
    fn qualifier_goes_to_the_query() {
        assert_eq!(
            path("echo", Some("live")),
            "/2015-03-31/functions/echo/invocations?Qualifier=live"
        );
        assert_eq!(
            path("echo", Some("$LATEST")),
            "/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST"
        );
    }

    #[test]
    fn streaming_invocations_have_their_own_path() {
        let q = Qualifier::parse("$LATEST").unwrap();
        let name = FunctionName::parse("arn:aws:lambda:us-east-1:123456789012:function:f").unwrap();
        assert_eq!(
            stream_path(&name, Some(&q)),
            "/2021-11-15/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/response-streaming-invocations?Qualifier=%24LATEST"
        );
        assert_eq!(
            stream_path(&FunctionName::parse("echo").unwrap(), None),
            "/2021-11-15/functions/echo/response-streaming-invocations"
        );
    }

    #[test]
    fn arns_are_one_encoded_segment() {
        assert_eq!(
            path(
                "arn:aws:lambda:us-east-1:123456789012:function:f.v2_x-y",
                None
            ),
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af.v2_x-y/invocations"
        );
        assert_eq!(
            path("123456789012:function:f:$LATEST", None),
            "/2015-03-31/functions/123456789012%3Afunction%3Af%3A%24LATEST/invocations"
        );
    }
}
