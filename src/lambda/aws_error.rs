//! The one reader of AWS error answers, used by the request path and by discovery: which error
//! it is (`X-Amzn-ErrorType`, JSON `__type`/`code`, XML `<Code>`) and AWS's message, cut to its
//! first line with credentials, signatures and tokens redacted.
//!
//! AWS's text is not safe to pass on as it is. After its first line `InvalidSignatureException`
//! quotes the canonical request (host, content hash and `x-amz-security-token:<token>`);
//! `IncompleteSignatureException` quotes the `Authorization` header (access key id, credential
//! scope, `Signature=`); `AccessDeniedException` names the account and the role. Account ids in
//! ARNs are kept: they are what makes an access-denied message useful to the operator.

use serde_json::Value;

/// The longest message kept (characters, after redaction).
pub const MAX_MESSAGE_CHARS: usize = 256;

/// What stands in for a removed secret.
pub const REDACTED: &str = "[redacted]";

/// An AWS error answer, read and made safe to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsError {
    /// The error's name, e.g. `TooManyRequestsException`; only ever an identifier.
    pub kind: Option<String>,
    /// AWS's message: first line only, redacted, without control characters, at most
    /// [`MAX_MESSAGE_CHARS`] characters (then ending in `…`).
    pub message: Option<String>,
}

impl AwsError {
    /// Reads an error answer. `error_type` is the `X-Amzn-ErrorType` header when there is one
    /// (`ResourceNotFoundException:http://internal.amazon.com/…`); it wins over the body's.
    pub fn read(error_type: Option<&str>, body: &[u8]) -> Self {
        let (body_kind, raw_message) = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => {
                let field = |names: &[&str]| {
                    names
                        .iter()
                        .find_map(|n| o.get(*n).and_then(Value::as_str).map(str::to_owned))
                };
                (
                    field(&["__type", "code", "Code"]),
                    field(&["Message", "message", "errorMessage"]),
                )
            }
            Ok(_) => (None, None),
            Err(_) => (xml_text(body, "Code"), xml_text(body, "Message")),
        };
        let kind = error_type
            .and_then(identifier)
            .or_else(|| body_kind.as_deref().and_then(identifier));
        AwsError {
            kind,
            message: raw_message.as_deref().and_then(clean_message),
        }
    }

    /// `Kind: message` (or whichever of the two there is) for one log line.
    pub fn summary(&self) -> Option<String> {
        match (&self.kind, &self.message) {
            (Some(k), Some(m)) => Some(format!("{k}: {m}")),
            (Some(k), None) => Some(k.clone()),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        }
    }
}

/// The error name of `X-Amzn-ErrorType` or `__type`: before any `:` (a URL follows), after any
/// `#` (a Smithy namespace precedes). Anything that is not a plain identifier is dropped.
fn identifier(raw: &str) -> Option<String> {
    let name = raw.split(':').next().unwrap_or_default();
    let name = name.rsplit('#').next().unwrap_or_default().trim();
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    // An error name is never a secret; one that looks like a key id or a token is not trusted.
    (ok && redact(name) == name).then(|| name.to_owned())
}

/// First line, redacted, control characters as spaces, trimmed and length-limited.
fn clean_message(raw: &str) -> Option<String> {
    let first = raw.split(['\n', '\r']).next().unwrap_or_default();
    // Redact before cutting: a secret cut in half would no longer be recognised.
    let redacted = redact(first);
    let text: String = redacted
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return Some(text.to_owned());
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    Some(cut)
}

/// The text of the first `<tag>…</tag>` of an XML error (IAM-style: moto, STS), with the five
/// predefined entities and a CDATA wrapper undone.
fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    let inner = text[start..end].trim();
    let inner = inner
        .strip_prefix("<![CDATA[")
        .and_then(|s| s.strip_suffix("]]>"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            inner
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        });
    Some(inner)
}

/// Markers whose value is a credential, a signature or a token: the value after them (up to a
/// delimiter) is replaced. Lower case; matched case-insensitively.
const SECRET_MARKERS: [&str; 4] = [
    "credential=",
    "signature=",
    "x-amz-security-token:",
    "x-amz-security-token=",
];

/// Runs of the base64 alphabet at least this long are taken for tokens, keys or signatures
/// (a secret key is 40 characters, a signature 64 hex digits, a session token hundreds).
const BLOB_MIN_LEN: usize = 40;

/// Removes what must never leave the gateway from AWS's text: `Credential=…`, `Signature=…`,
/// `x-amz-security-token` values, access key ids (`AKIA…`/`ASIA…`) and long base64 blobs.
pub fn redact(text: &str) -> String {
    let text = redact_marked_values(text);
    let text = redact_access_key_ids(&text);
    redact_blobs(&text)
}

fn is_value_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '&' | '\'' | '"' | ';' | '<' | '>' | ')' | ']')
}

fn redact_marked_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase(); // same byte offsets: ASCII-only change
    let mut out = String::with_capacity(text.len());
    // Where each marker occurs next at or after `at`, searched again only once `at` has passed
    // it: one scan per marker over the text, not one per redaction (a long line with many
    // `signature=` and no `credential=` would otherwise cost quadratic time on a worker).
    let mut next_of: [Option<usize>; SECRET_MARKERS.len()] = SECRET_MARKERS.map(|m| lower.find(m));
    let mut at = 0;
    while at < text.len() {
        for (slot, m) in next_of.iter_mut().zip(SECRET_MARKERS) {
            if slot.is_some_and(|p| p < at) {
                *slot = lower[at..].find(m).map(|i| at + i);
            }
        }
        let next = next_of
            .iter()
            .zip(SECRET_MARKERS)
            .filter_map(|(p, m)| p.map(|p| (p, m.len())))
            .min();
        let Some((start, len)) = next else { break };
        let value_start = start + len;
        let after = &text[value_start..];
        let skip_spaces = after.len() - after.trim_start_matches(' ').len();
        let value = &after[skip_spaces..];
        let value_len = value.find(is_value_end).unwrap_or(value.len());
        out.push_str(&text[at..value_start + skip_spaces]);
        if value_len > 0 {
            out.push_str(REDACTED);
        }
        at = value_start + skip_spaces + value_len;
    }
    out.push_str(&text[at..]);
    out
}

/// `AKIA`/`ASIA` + 16 upper-case letters or digits, wherever they stand: glued to other
/// characters (`…EXAMPLEtion`, found by the api_error fuzz target) they are still a key id.
fn redact_access_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 20 <= bytes.len() {
        let candidate = &bytes[i..i + 20];
        if (candidate.starts_with(b"AKIA") || candidate.starts_with(b"ASIA"))
            && candidate[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            i += 20;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn is_base64(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')
}

fn redact_blobs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run_start: Option<usize> = None;
    let flush = |out: &mut String, run: &str| {
        if run.len() >= BLOB_MIN_LEN {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
    };
    for (i, c) in text.char_indices() {
        match (is_base64(c), run_start) {
            (true, None) => run_start = Some(i),
            (true, Some(_)) => {}
            (false, Some(s)) => {
                flush(&mut out, &text[s..i]);
                run_start = None;
                out.push(c);
            }
            (false, None) => out.push(c),
        }
    }
    if let Some(s) = run_start {
        flush(&mut out, &text[s..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "IQoJb3JpZ2luX2VjEHAaCXVzLWVhc3QtMSJHMEUCIQDkR2Pq8vJ0dW5Wm7W0Xy+Hh0k5Q\
                         Zq4Q3lJ8VVe0ZsxGgIgSf0Yh5m1n4JmQ1hJ7mX0r0pE3aW5yq3y5cQ2rUqJd0Iq";

    fn assert_clean(s: &str) {
        for secret in [
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAXAMPLEXAMPLE1234",
            TOKEN,
            &TOKEN[..60],
            "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
            "aws4_request",
            "x-amz-security-token:I",
        ] {
            assert!(!s.contains(secret), "{secret} in {s}");
        }
    }

    #[test]
    fn an_error_name_that_looks_like_a_key_id_is_dropped() {
        // Found by the api_error fuzz target: the name was copied into the client's message.
        let e = AwsError::read(Some("ASIAQWERTYUIOPASDFGH"), b"");
        assert_eq!(e.kind, None);
        let e = AwsError::read(None, br#"{"__type":"AKIAIOSFODNN7EXAMPLE","message":"x"}"#);
        assert_eq!(e.kind, None);
        let e = AwsError::read(Some("AKIAIOSFODNN7EXAMPLEtion"), b"");
        assert_eq!(e.kind, None);
        let e = AwsError::read(Some("TooManyRequestsException:http://x"), b"");
        assert_eq!(e.kind.as_deref(), Some("TooManyRequestsException"));
    }

    #[test]
    fn invalid_signature_keeps_the_first_line_only() {
        let body = serde_json::json!({
            "Type": "User",
            "message": format!(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details.\n\nThe Canonical String for this request should have \
                 been\n'POST\n/2015-03-31/functions/echo/invocations\n\n\
                 host:lambda.us-east-1.amazonaws.com\nx-amz-content-sha256:\
                 fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\n\
                 x-amz-date:20261201T120000Z\nx-amz-security-token:{TOKEN}\n\n\
                 host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n\
                 fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024'\n\n\
                 The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261201T120000Z\n\
                 20261201/us-east-1/lambda/aws4_request\n\
                 9e0e6f8b1c9a7a3e1e0d3f6b2b7c4a3e5d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b'\n"
            ),
        });
        let e = AwsError::read(
            Some(
                "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            ),
            body.to_string().as_bytes(),
        );
        assert_eq!(e.kind.as_deref(), Some("InvalidSignatureException"));
        let m = e.message.as_deref().unwrap();
        assert!(m.starts_with("The request signature we calculated"), "{m}");
        assert!(m.ends_with("documentation for details."), "{m}");
        assert_clean(m);
        assert!(!m.contains("Canonical") && !m.contains("host:"), "{m}");
    }

    #[test]
    fn a_canonical_request_on_one_line_is_still_redacted() {
        // A peer that flattens newlines must not get the token through.
        let flat = format!(
            "signature mismatch; canonical request: POST /2015-03-31/functions/f/invocations \
             host:lambda.us-east-1.amazonaws.com x-amz-security-token:{TOKEN} \
             x-amz-content-sha256:fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
        );
        let r = redact(&flat);
        assert_clean(&r);
        assert!(r.contains("x-amz-security-token:[redacted]"), "{r}");
        assert!(r.contains("host:lambda.us-east-1.amazonaws.com"), "{r}");
    }

    #[test]
    fn incomplete_signature_loses_key_scope_and_signature() {
        let body = br#"{"message":"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261201/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-content-sha256, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"}"#;
        let e = AwsError::read(Some("IncompleteSignatureException"), body);
        let m = e.message.unwrap();
        assert_clean(&m);
        assert!(m.contains("Credential=[redacted]"), "{m}");
        assert!(m.contains("Signature=[redacted]"), "{m}");
        assert!(m.contains("SignedHeaders=host;x-amz-content-sha256"), "{m}");
        assert_eq!(
            e.kind.as_deref(),
            Some("IncompleteSignatureException"),
            "header wins"
        );
    }

    #[test]
    fn access_denied_keeps_the_arns() {
        let body = br#"{"Type":"User","Message":"User: arn:aws:sts::123456789012:assumed-role/gateway-role/i-0abc is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:orders because no identity-based policy allows the lambda:InvokeFunction action"}"#;
        let e = AwsError::read(Some("AccessDeniedException"), body);
        let m = e.message.unwrap();
        assert!(
            m.starts_with(
                "User: arn:aws:sts::123456789012:assumed-role/gateway-role/i-0abc is not authorized"
            ),
            "{m}"
        );
        assert!(m.contains("function:orders"), "{m}");
    }

    #[test]
    fn moto_iam_style_xml() {
        let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error>\
                     <Code>InvalidClientTokenId</Code><Message>The security token included in the \
                     request is invalid. (key &apos;AKIAIOSFODNN7EXAMPLE&apos;)</Message>\
                     <Type>Sender</Type></Error></Errors></ErrorResponse>";
        let e = AwsError::read(None, body);
        assert_eq!(e.kind.as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(
            e.message.as_deref(),
            Some("The security token included in the request is invalid. (key '[redacted]')")
        );
        let cdata = b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message><![CDATA[a & b]]></Message></Error></ErrorResponse>";
        assert_eq!(
            AwsError::read(None, cdata).summary().as_deref(),
            Some("SignatureDoesNotMatch: a & b")
        );
    }

    #[test]
    fn kinds_come_from_the_header_then_the_body() {
        let json = br#"{"__type":"com.amazonaws.lambda#TooManyRequestsException","message":"Rate exceeded"}"#;
        let e = AwsError::read(None, json);
        assert_eq!(
            e.summary().as_deref(),
            Some("TooManyRequestsException: Rate exceeded")
        );
        // Lambda's `Type` (User/Service) is not the error's name.
        let e = AwsError::read(None, br#"{"Type":"User","Message":"Rate exceeded"}"#);
        assert_eq!(e.summary().as_deref(), Some("Rate exceeded"));
        // Free text in a header is not an identifier.
        assert_eq!(AwsError::read(Some("a b <script>"), b"").kind, None);
        assert_eq!(AwsError::read(None, b"<html/>"), AwsError::default());
        assert_eq!(AwsError::read(None, b"{}").summary(), None);
        assert_eq!(AwsError::read(None, b"[1]").summary(), None);
        assert_eq!(
            AwsError::read(None, br#"{"errorMessage":"boom"}"#)
                .message
                .as_deref(),
            Some("boom")
        );
    }

    #[test]
    fn long_messages_are_cut_after_redaction_and_controls_removed() {
        let long = format!(r#"{{"Message":"{} \u0007end"}}"#, "word ".repeat(100));
        let m = AwsError::read(None, long.as_bytes()).message.unwrap();
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(m.ends_with('…') && !m.contains('\u{7}'), "{m}");
        // A token that straddles the cut is still removed whole.
        let straddle = format!(
            r#"{{"Message":"{}{TOKEN}"}}"#,
            "x ".repeat(MAX_MESSAGE_CHARS / 2 - 10)
        );
        assert_clean(&AwsError::read(None, straddle.as_bytes()).message.unwrap());
    }

    #[test]
    fn redaction_is_linear_in_the_length_of_the_line() {
        // 1.2 MB of `signature=` values and no other marker: quadratic scanning took about a
        // minute here (each redaction searched the rest of the line for every marker).
        let line = "signature=x ".repeat(100_000);
        let started = std::time::Instant::now();
        let r = redact(&line);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(r, "signature=[redacted] ".repeat(100_000));
        // Markers interleaved: each still redacted once, in order.
        assert_eq!(
            redact("Signature=a Credential=b signature=c x-amz-security-token=d Credential=e"),
            "Signature=[redacted] Credential=[redacted] signature=[redacted] \
             x-amz-security-token=[redacted] Credential=[redacted]"
        );
    }

    #[test]
    fn redaction_edge_cases() {
        assert_eq!(redact("plain text"), "plain text");
        assert_eq!(redact("Signature="), "Signature=");
        assert_eq!(
            redact("signature= abc, next"),
            "signature= [redacted], next"
        );
        assert_eq!(
            redact("X-Amz-Security-Token=abc&X-Amz-Signature=def"),
            "X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]"
        );
        assert_eq!(redact("id AKIAIOSFODNN7EXAMPLE."), "id [redacted].");
        assert_eq!(redact("xAKIAIOSFODNN7EXAMPLEtion"), "x[redacted]tion");
        // A longer run still starts with a key id: safer to cut it than to guess.
        assert_eq!(
            redact("AKIAIOSFODNN7EXAMPLEX (21 chars)"),
            "[redacted]X (21 chars)"
        );
        assert_eq!(
            redact("ünïcödé Signature=ü1 ok"),
            "ünïcödé Signature=[redacted] ok"
        );
        assert_eq!(
            redact("arn:aws:lambda:us-east-1:123456789012:function:my-function"),
            "arn:aws:lambda:us-east-1:123456789012:function:my-function"
        );
    }
}
