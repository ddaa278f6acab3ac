//! `response_format: unwrap`: reading a function's API Gateway/ALB-style result as the HTTP
//! response it describes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::RequestFormat;
use crate::http_field::is_tchar;

/// An HTTP response described by the function, already checked: a final status, header names
/// that are RFC 9110 tokens (lower case), values that are field-content, no framing or
/// hop-by-hop headers, and no body where the status forbids one. The body borrows from the
/// function's payload where it is its bytes unchanged (a JSON string without escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse<'a> {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Cow<'a, [u8]>,
}

/// The function's result could not be read as an HTTP response (a bug in the function).
/// Names and values are kept as shown (capped, escaped), never what follows a bad byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnwrapError {
    NotDescribed,
    /// serde's reason.
    Malformed(String),
    MultiValueNotAList(String),
    NotBase64,
    InterimStatus(u64),
    NotAStatus(String),
    EmptyHeaderName,
    /// The valid start of the name, the first bad byte and its offset.
    HeaderNameNotAToken {
        start: String,
        byte: u8,
        offset: usize,
    },
    HeaderNotAString(String),
    HeaderControlCharacter {
        name: String,
        byte: u8,
    },
    /// How many headers would have been sent.
    TooManyHeaders(usize),
    /// The bytes of their names and values.
    HeadersTooLarge(usize),
}

impl fmt::Display for UnwrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDescribed => {
                f.write_str("the function's result is not a JSON object with a statusCode")
            }
            Self::Malformed(e) => write!(f, "the function's result is malformed: {e}"),
            Self::MultiValueNotAList(name) => write!(f, "multiValueHeaders.{name} is not a list"),
            Self::NotBase64 => f.write_str("body is marked isBase64Encoded but is not base64"),
            Self::InterimStatus(s) => write!(
                f,
                "statusCode {s} is an interim (1xx) status; a function must answer with 200-599"
            ),
            Self::NotAStatus(v) => write!(f, "statusCode {v} is not an HTTP status (200-599)"),
            Self::EmptyHeaderName => f.write_str("a header name is empty"),
            Self::HeaderNameNotAToken {
                start,
                byte,
                offset,
            } => write!(
                f,
                "header name {start} is not an HTTP token: byte 0x{byte:02x} at offset {offset}"
            ),
            Self::HeaderNotAString(name) => write!(f, "header {name} is not a string"),
            Self::HeaderControlCharacter { name, byte } => write!(
                f,
                "header {name} has a control character (0x{byte:02x}) in its value"
            ),
            Self::TooManyHeaders(n) => write!(
                f,
                "the function's result has {n} headers (cookies included); at most {MAX_HEADERS} are sent"
            ),
            Self::HeadersTooLarge(n) => write!(
                f,
                "the function's headers are {n} bytes (names and values, cookies included); at most {MAX_HEADER_BYTES} are sent"
            ),
        }
    }
}

impl std::error::Error for UnwrapError {}

/// A described result. `B` is how the body is held: `&RawValue` (its text in the payload,
/// read by [`string_bytes`]), `Value` (the fallback parse), then [`BodyField`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described<B> {
    /// `None` when absent; a JSON `null` is `Some(Null)` (described, and not a status).
    #[serde(default, deserialize_with = "present")]
    status_code: Option<Value>,
    #[serde(default)]
    headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    multi_value_headers: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    cookies: Option<Vec<Value>>,
    // Absent is `None` without `default` (which would ask `B: Default`).
    body: Option<B>,
    #[serde(default)]
    is_base64_encoded: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl<B> Described<B> {
    fn map_body<C>(self, f: impl FnOnce(Option<B>) -> Option<C>) -> Described<C> {
        Described {
            status_code: self.status_code,
            headers: self.headers,
            multi_value_headers: self.multi_value_headers,
            cookies: self.cookies,
            body: f(self.body),
            is_base64_encoded: self.is_base64_encoded,
        }
    }
}

/// The `body` field, ready for [`from_described`].
enum BodyField<'a> {
    /// A string's contents: the payload's bytes, or decoded from its escapes.
    Text(Cow<'a, [u8]>),
    Parsed(Value),
}

/// The contents of the JSON string `raw` (its text in the payload): borrowed when it has no
/// escapes, else decoded in one pass. `None` for anything else (not a string, an escape this
/// does not decode exactly as serde_json does): the caller reads the payload the slow way.
fn string_bytes(raw: &RawValue) -> Option<Cow<'_, [u8]>> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    if memchr::memchr(b'\\', inner).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    unescape(inner).map(Cow::Owned)
}

/// RFC 8259 §7 escapes, into one buffer sized once: the input is the text between the quotes
/// of a string serde_json has already checked, so only the escapes need reading. A `\u`
/// surrogate that is not half of a pair gives `None` (serde_json refuses it).
fn unescape(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(rest.len());
    while let Some(i) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        let escape = *rest.get(i + 1)?;
        rest = &rest[i + 2..];
        let byte = match escape {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let (c, used) = unicode_escape(rest)?;
                rest = &rest[used..];
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(byte);
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The character of a `\u` escape whose `\u` is consumed, and how many more bytes it took
/// (4, or 10 for a surrogate pair).
fn unicode_escape(rest: &[u8]) -> Option<(char, usize)> {
    let hex4 = |b: &[u8]| -> Option<u32> {
        let digits = std::str::from_utf8(b.get(..4)?).ok()?;
        u32::from_str_radix(digits, 16)
            .ok()
            .filter(|_| digits.bytes().all(|d| d.is_ascii_hexdigit()))
    };
    let first = hex4(rest)?;
    match first {
        0xd800..=0xdbff => {
            let low = rest
                .get(4..6)
                .filter(|b| *b == b"\\u")
                .and(hex4(rest.get(6..)?))?;
            if !(0xdc00..=0xdfff).contains(&low) {
                return None;
            }
            char::from_u32(0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00)).map(|c| (c, 10))
        }
        0xdc00..=0xdfff => None,
        _ => char::from_u32(first).map(|c| (c, 4)),
    }
}

/// Headers the proxy owns: the framing it computes itself and hop-by-hop headers, which the
/// function cannot mean for the client's connection (ALB ignores them the same way).
const PROXY_OWNED: [&str; 9] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "http2-settings",
];

/// At most this many headers from the function reach the client, `cookies` counted as the
/// `set-cookie` headers they become. Envoy's own default limit for the headers it accepts
/// (`max_headers_count`: 100) — clients are built with limits of the same order, and one over
/// them resets the HTTP/2 stream or refuses the HTTP/1 response.
pub const MAX_HEADERS: usize = 100;

/// At most this many bytes of header names and values from the function reach the client:
/// Envoy's default `max_request_headers_kb` (60 KiB), for the same reason. HTTP/2 clients
/// advertise a header-list limit of this order (SETTINGS_MAX_HEADER_LIST_SIZE).
pub const MAX_HEADER_BYTES: usize = 60 * 1024;

/// Whether a response with this status carries a body and a `content-length`: 204 and 304
/// have neither (RFC 9110 §6.4.1, §8.6); every other final status has both.
pub fn has_body(status: u32) -> bool {
    !matches!(status, 204 | 304)
}

/// Reads the function's payload as an HTTP response, with the rules of the event format the
/// request used (`apigw_v2` guesses for results without `statusCode`; the others require it).
pub fn unwrap(format: RequestFormat, payload: &[u8]) -> Result<HttpResponse<'_>, UnwrapError> {
    // One parse that leaves the body in the payload. Whatever it cannot read (not an object,
    // a field of the wrong type, a key given twice, a body that is not a string) is read again
    // as a `Value`, which decides as before.
    match serde_json::from_slice::<Described<&RawValue>>(payload) {
        Ok(d) if d.status_code.is_some() => {
            let body = match d.body.map(string_bytes) {
                Some(None) => return unwrap_parsed(format, payload),
                body => body.flatten(),
            };
            from_described(d.map_body(|_| body.map(BodyField::Text)))
        }
        Ok(_) => not_described(format, payload),
        Err(_) => unwrap_parsed(format, payload),
    }
}

/// The same reading through a `Value` tree: what [`unwrap`] falls back to, and the oracle its
/// tests compare it with.
fn unwrap_parsed(format: RequestFormat, payload: &[u8]) -> Result<HttpResponse<'_>, UnwrapError> {
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    let described = matches!(&parsed, Some(Value::Object(o)) if o.contains_key("statusCode"));
    if !described {
        return not_described(format, payload);
    }
    let d: Described<Value> = serde_json::from_value(parsed.unwrap_or_default())
        .map_err(|e| UnwrapError::Malformed(e.to_string()))?;
    from_described(d.map_body(|b| b.map(BodyField::Parsed)))
}

/// A result that is not an object with a `statusCode`: for HTTP API 2.0 (and raw events) the
/// body of a 200, as it is; the other formats require a description.
fn not_described(format: RequestFormat, payload: &[u8]) -> Result<HttpResponse<'_>, UnwrapError> {
    if matches!(format, RequestFormat::ApigwV2 | RequestFormat::Raw) {
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Cow::Borrowed(payload),
        })
    } else {
        Err(UnwrapError::NotDescribed)
    }
}

/// The JSON prelude of a streamed HTTP response (`awslambda.HttpResponseStream.from`, the
/// Function URL convention): `statusCode` (200 when absent, as Function URLs do), `headers`
/// and `cookies`, checked exactly as [`unwrap`] checks a buffered result. The body follows
/// the prelude in the stream, so the result has none.
pub fn unwrap_prelude(json: &[u8]) -> Result<HttpResponse<'static>, UnwrapError> {
    let mut v: Value =
        serde_json::from_slice(json).map_err(|e| UnwrapError::Malformed(e.to_string()))?;
    let Some(o) = v.as_object_mut() else {
        return Err(UnwrapError::NotDescribed);
    };
    o.entry("statusCode").or_insert(Value::from(200));
    o.remove("body");
    o.remove("isBase64Encoded");
    let d: Described<Value> =
        serde_json::from_value(v).map_err(|e| UnwrapError::Malformed(e.to_string()))?;
    from_described(d.map_body(|b| b.map(BodyField::Parsed)))
}

fn from_described(d: Described<BodyField<'_>>) -> Result<HttpResponse<'_>, UnwrapError> {
    let status = final_status(d.status_code.as_ref().unwrap_or(&Value::Null))?;
    let mut headers = Vec::new();
    for (k, v) in d.headers.iter().flatten() {
        let name = field_name(k)?;
        headers.push((name, field_value(k, v)?));
    }
    let mut multi: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in d.multi_value_headers.iter().flatten() {
        let name = field_name(k)?;
        let Value::Array(values) = v else {
            return Err(UnwrapError::MultiValueNotAList(shown(k)));
        };
        let values = values
            .iter()
            .map(|v| field_value(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        multi.push((name, values));
    }
    // multiValueHeaders wins over headers for the same name, as in API Gateway, and of two
    // spellings of one name (`Set-Cookie`, `set-cookie`) the last wins. One pass with a set,
    // not a scan of every header per name: a function's answer may hold many thousands.
    let mut seen = HashSet::new();
    let mut multi: Vec<_> = multi
        .into_iter()
        .rev()
        .filter(|(name, _)| seen.insert(name.clone()))
        .collect();
    multi.reverse();
    headers.retain(|(n, _)| !seen.contains(n));
    for (name, values) in multi {
        headers.extend(values.into_iter().map(|v| (name.clone(), v)));
    }
    for c in d.cookies.iter().flatten() {
        headers.push(("set-cookie".into(), field_value("cookies", c)?));
    }
    // Exact names, compared after validation: `content-length ` cannot slip through.
    headers.retain(|(n, _)| !PROXY_OWNED.contains(&n.as_str()));
    within_limits(&headers)?;
    let is_base64 = matches!(d.is_base64_encoded, Some(Value::Bool(true)))
        || matches!(&d.is_base64_encoded, Some(Value::String(s)) if s == "true");
    let body = match d.body {
        None | Some(BodyField::Parsed(Value::Null)) => Cow::Borrowed(&[][..]),
        Some(BodyField::Parsed(Value::String(s))) => {
            text_body(Cow::Owned(s.into_bytes()), is_base64)?
        }
        Some(BodyField::Parsed(other)) => Cow::Owned(other.to_string().into_bytes()),
        Some(BodyField::Text(text)) => text_body(text, is_base64)?,
    };
    // 204/304 end at their headers; a body sent after them would be read by the client as the
    // start of the next response on the connection. It is dropped (API Gateway does the same).
    let body = if has_body(status) {
        body
    } else {
        Cow::Borrowed(&[][..])
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A string body: its UTF-8 bytes, or what they decode to when marked `isBase64Encoded`.
fn text_body(text: Cow<'_, [u8]>, is_base64: bool) -> Result<Cow<'_, [u8]>, UnwrapError> {
    if !is_base64 {
        return Ok(text);
    }
    base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map(Cow::Owned)
        .map_err(|_| UnwrapError::NotBase64)
}

/// What is sent must fit any client's header limits: a 502 instead of a response the client
/// would reset or refuse half-way. Counted after merging and dropping what the proxy owns.
fn within_limits(headers: &[(String, String)]) -> Result<(), UnwrapError> {
    if headers.len() > MAX_HEADERS {
        return Err(UnwrapError::TooManyHeaders(headers.len()));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(UnwrapError::HeadersTooLarge(bytes));
    }
    Ok(())
}

/// Only final statuses: a 1xx is an interim response and cannot end an exchange.
fn final_status(v: &Value) -> Result<u32, UnwrapError> {
    let status = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match status {
        Some(s @ 200..=599) => Ok(s as u32),
        Some(s @ 100..=199) => Err(UnwrapError::InterimStatus(s)),
        _ => Err(UnwrapError::NotAStatus(shown(&v.to_string()))),
    }
}

/// A header name must be an RFC 9110 token (`tchar`s only); it is sent in lower case. The error
/// shows the valid start of the name and the first bad byte, never what follows it.
fn field_name(name: &str) -> Result<String, UnwrapError> {
    match name.bytes().position(|b| !is_tchar(b)) {
        None if !name.is_empty() => Ok(name.to_ascii_lowercase()),
        None => Err(UnwrapError::EmptyHeaderName),
        Some(i) => Err(UnwrapError::HeaderNameNotAToken {
            start: shown(&name[..i]),
            byte: name.as_bytes()[i],
            offset: i,
        }),
    }
}

/// A header value must be RFC 9110 field-content: visible characters, spaces and tabs inside,
/// bytes >= 0x80 (UTF-8 text); no control character (CR, LF, NUL …) nor DEL. Leading and
/// trailing spaces and tabs are not part of a field value and are trimmed.
fn field_value(name: &str, v: &Value) -> Result<String, UnwrapError> {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return Ok(n.to_string()),
        Value::Bool(b) => return Ok(b.to_string()),
        _ => return Err(UnwrapError::HeaderNotAString(shown(name))),
    };
    if let Some(b) = s.bytes().find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(UnwrapError::HeaderControlCharacter {
            name: shown(name),
            byte: b,
        });
    }
    Ok(s.trim_matches([' ', '\t']).to_owned())
}

/// A name or value from the function as it may appear in an error message: quoted, escaped,
/// and cut short.
fn shown(s: &str) -> String {
    let cut: String = s.chars().take(64).collect();
    let mut out = format!("{cut:?}");
    if cut.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads where the borrowing parse and the `Value` reading could part ways.
    const TRICKY: &[&str] = &[
        r#"{"statusCode":200,"body":"plain"}"#,
        r#"{"statusCode":200,"body":"a\"b\\c\n\u00e9\ud83d\ude00"}"#,
        r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#,
        r#"{"statusCode":200,"body":"aGk\u003d","isBase64Encoded":"true"}"#,
        r#"{"statusCode":200,"body":"not base64!","isBase64Encoded":true}"#,
        r#"{"statusCode":200,"body":{"nested":[1,2.5,"x"]}}"#,
        r#"{"statusCode":200,"body":  12.50 }"#,
        r#"{"statusCode":200,"body":null}"#,
        r#"{"statusCode":200,"body":true}"#,
        r#"{"statusCode":null,"body":"x"}"#,
        r#"{"statusCode":"201","body":"x"}"#,
        r#"{"statusCode":200,"body":"first","body":"second"}"#,
        r#"{"statusCode":500,"statusCode":200}"#,
        r#"{"statusCode":200,"headers":5}"#,
        r#"{"headers":5}"#,
        r#"{"body":"no status"}"#,
        r#"{"statusCode":204,"body":"dropped"}"#,
        r#"{"statusCode":200,"headers":{"a":"1","A":"2"},"multiValueHeaders":{"a":["3"]}}"#,
        r#"{"statusCode":200,"cookies":["a=1",2],"other":{"ignored":[]}}"#,
        r#"[1,2]"#,
        r#""just a string""#,
        r#"{"statusCode":200,"body":"x"} trailing"#,
        r#"{"statusCode":200,"body":"\u0000"}"#,
        "{\"statusCode\":200,\"body\":\"bad\u{1}control\"}",
        "not json",
        "",
    ];

    fn same_reading(format: RequestFormat, payload: &[u8]) {
        let fast = unwrap(format, payload);
        let oracle = unwrap_parsed(format, payload);
        assert_eq!(
            fast,
            oracle,
            "{format:?} {:?}",
            String::from_utf8_lossy(payload)
        );
    }

    #[test]
    fn the_borrowing_parse_reads_every_payload_as_the_value_tree_does() {
        for payload in TRICKY {
            for format in [
                RequestFormat::ApigwV1,
                RequestFormat::ApigwV2,
                RequestFormat::Alb,
                RequestFormat::Raw,
            ] {
                same_reading(format, payload.as_bytes());
            }
        }
    }

    #[test]
    fn a_body_without_escapes_is_borrowed_from_the_payload_and_an_escaped_one_decoded() {
        let payload = br#"{"statusCode":200,"body":"0123456789"}"#;
        let r = unwrap(RequestFormat::ApigwV1, payload).unwrap();
        let Cow::Borrowed(body) = r.body else {
            panic!("copied: {:?}", r.body);
        };
        assert_eq!(body, b"0123456789");
        assert!(
            payload.as_ptr_range().contains(&body.as_ptr()),
            "not the payload's bytes"
        );

        let escaped = br#"{"statusCode":200,"body":"a\"b\\c\u00e9"}"#;
        let r = unwrap(RequestFormat::ApigwV1, escaped).unwrap();
        assert_eq!(&*r.body, "a\"b\\c\u{e9}".as_bytes());

        let raw_result = br#"{"no":"status"}"#;
        let r = unwrap(RequestFormat::ApigwV2, raw_result).unwrap();
        assert!(matches!(r.body, Cow::Borrowed(b) if b == raw_result));
    }

    proptest::proptest! {
        #[test]
        fn generated_results_read_the_same_both_ways(
            fields in proptest::collection::vec((0usize..8, 0usize..12), 0..7),
        ) {
            const KEYS: [&str; 8] = ["statusCode", "headers", "multiValueHeaders", "cookies",
                                     "body", "isBase64Encoded", "other", "statusCode"];
            const VALUES: [&str; 12] = ["200", "\"302\"", "null", "true", "\"aGk=\"",
                                        "\"a\\\"b\"", "{\"x-a\":\"1\"}", "{\"x-a\":[\"1\",2]}",
                                        "[\"c=1\"]", "7.5", "{}", "\"\\u0041\""];
            let body: Vec<String> = fields
                .iter()
                .map(|&(k, v)| format!("\"{}\":{}", KEYS[k], VALUES[v]))
                .collect();
            let payload = format!("{{{}}}", body.join(","));
            for format in [RequestFormat::ApigwV1, RequestFormat::ApigwV2] {
                same_reading(format, payload.as_bytes());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn escaped_bodies_decode_exactly_as_serde_json_decodes_them(
            pieces in proptest::collection::vec(0usize..20, 0..40),
            base64 in proptest::bool::ANY,
        ) {
            // Escapes serde_json reads, refuses (lone surrogates, bad hex, unknown letters)
            // or never sees in a valid document (a raw control character).
            const PIECES: [&str; 20] = ["a", "é", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n",
                                        "\\r", "\\t", "\\u0041", "\\u00e9", "\\ud83d\\ude00",
                                        "\\uD83D\\uDE00", "\\ud83d", "\\ude00", "\\ud83dx",
                                        "\\u12G4", "\\x", "\u{1}"];
            let text: String = pieces.iter().map(|&i| PIECES[i]).collect();
            let payload = format!(
                r#"{{"statusCode":200,"body":"{text}","isBase64Encoded":{base64}}}"#
            );
            same_reading(RequestFormat::ApigwV1, payload.as_bytes());
            same_reading(RequestFormat::ApigwV2, payload.as_bytes());
        }
    }

    fn header<'a>(r: &'a HttpResponse, k: &str) -> Vec<&'a str> {
        r.headers
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn unwraps_a_described_response() {
        let r = unwrap(
            RequestFormat::ApigwV2,
            br#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-Count":3},
                "cookies":["a=1; Path=/","b=2"],"body":"created","isBase64Encoded":false}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), ["text/plain"]);
        assert_eq!(header(&r, "x-count"), ["3"]);
        assert_eq!(header(&r, "set-cookie"), ["a=1; Path=/", "b=2"]);
        assert_eq!(&*r.body, b"created");
    }

    #[test]
    fn base64_bodies_and_multi_value_headers() {
        let r = unwrap(
            RequestFormat::Alb,
            br#"{"statusCode":"200","statusDescription":"200 OK","multiValueHeaders":{"Set-Cookie":["x=1","y=2"]},
                "headers":{"set-cookie":"lost"},"body":"AAEC/w==","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(&*r.body, [0, 1, 2, 255]);
        assert_eq!(header(&r, "set-cookie"), ["x=1", "y=2"]);
    }

    #[test]
    fn http_api_treats_other_results_as_a_200_body() {
        for payload in [
            &br#"{"hello":"world"}"#[..],
            b"\"just a string\"",
            b"[1,2]",
            b"not json",
        ] {
            let r = unwrap(RequestFormat::ApigwV2, payload).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, payload);
        }
    }

    #[test]
    fn malformed_results_are_errors_not_panics() {
        assert!(unwrap(RequestFormat::ApigwV1, b"[1]").is_err());
        assert!(unwrap(RequestFormat::ApigwV1, br#"{"statusCode":99}"#).is_err());
        assert!(unwrap(RequestFormat::ApigwV1, br#"{"statusCode":"abc"}"#).is_err());
        assert!(
            unwrap(
                RequestFormat::ApigwV1,
                br#"{"statusCode":200,"headers":{"a":{}}}"#
            )
            .is_err()
        );
        assert!(
            unwrap(
                RequestFormat::ApigwV1,
                br#"{"statusCode":200,"headers":{"a":"x\r\ny: z"}}"#
            )
            .is_err()
        );
        assert!(
            unwrap(
                RequestFormat::ApigwV1,
                br#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#
            )
            .is_err()
        );
        assert!(
            unwrap(
                RequestFormat::ApigwV1,
                br#"{"statusCode":200,"multiValueHeaders":{"a":"b"}}"#
            )
            .is_err()
        );
    }

    fn status_of(payload: &str) -> Result<u32, UnwrapError> {
        unwrap(RequestFormat::Alb, payload.as_bytes()).map(|r| r.status)
    }

    #[test]
    fn header_names_must_be_tokens() {
        for name in [
            "X-A: 1\r\nSet-Cookie: session=x\r\nX-B",
            "content-length ",
            " x",
            "x y",
            ":status",
            ":authority",
            "",
            "a\u{0}b",
            "a\u{7f}b",
            "caf\u{e9}",
            "a(b)",
            "a\"b",
            "a/b",
        ] {
            for body in [
                serde_json::json!({"statusCode": 200, "headers": {name: "1"}}),
                serde_json::json!({"statusCode": 200, "multiValueHeaders": {name: ["1"]}}),
            ] {
                let e = unwrap(RequestFormat::ApigwV1, body.to_string().as_bytes()).unwrap_err();
                assert!(
                    e.to_string().contains("not an HTTP token") || e.to_string().contains("empty"),
                    "{name:?}: {e:?}"
                );
                assert!(
                    !e.to_string().contains("Set-Cookie") && !e.to_string().contains('\r'),
                    "{e:?}"
                );
            }
        }
        // Every tchar is fine, and names are sent in lower case.
        let r = unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"X-Tok!#$%&'*+-.^_`|~09":"v"}}"#,
        )
        .unwrap();
        assert_eq!(header(&r, "x-tok!#$%&'*+-.^_`|~09"), ["v"]);
    }

    #[test]
    fn errors_never_repeat_what_follows_a_bad_byte() {
        let e = unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"X-A: 1\r\nSet-Cookie: session=x":"1"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"header name "X-A" is not an HTTP token: byte 0x3a at offset 3"#
        );
        let e = unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"x":"ok\r\nSet-Cookie: session=x"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"header "x" has a control character (0x0d) in its value"#
        );
    }

    #[test]
    fn header_values_must_be_field_content() {
        for value in [
            "a\r\nb", "a\nb", "a\rb", "a\u{0}b", "a\u{1}b", "a\u{1f}b", "a\u{7f}b",
        ] {
            for body in [
                serde_json::json!({"statusCode": 200, "headers": {"x": value}}),
                serde_json::json!({"statusCode": 200, "multiValueHeaders": {"x": ["ok", value]}}),
                serde_json::json!({"statusCode": 200, "cookies": [value]}),
            ] {
                let e = unwrap(RequestFormat::ApigwV2, body.to_string().as_bytes()).unwrap_err();
                assert!(
                    e.to_string().contains("control character"),
                    "{value:?}: {e:?}"
                );
            }
        }
        let r = unwrap(
            RequestFormat::ApigwV2,
            "{\"statusCode\":200,\"headers\":{\"x-tab\":\"a\\tb\",\"x-trim\":\" \\t v \\t\",\"x-utf8\":\"caf\u{e9}\",\"x-empty\":\"\"}}"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(header(&r, "x-tab"), ["a\tb"], "tab is field-content");
        assert_eq!(
            header(&r, "x-trim"),
            ["v"],
            "surrounding whitespace is trimmed"
        );
        assert_eq!(
            header(&r, "x-utf8"),
            ["caf\u{e9}"],
            "obs-text bytes are allowed"
        );
        assert_eq!(header(&r, "x-empty"), [""]);
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_the_proxys() {
        let r = unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"body":"abc","headers":{"Content-Length":"999","Transfer-Encoding":"chunked",
                "Connection":"close","Keep-Alive":"timeout=5","Upgrade":"h2c","TE":"trailers","Trailer":"x",
                "Proxy-Connection":"keep-alive","HTTP2-Settings":"AAA","X-Kept":"1"},
                "multiValueHeaders":{"content-length":["1","2"]}}"#,
        )
        .unwrap();
        assert_eq!(r.headers, [("x-kept".to_owned(), "1".to_owned())]);
        assert_eq!(&*r.body, b"abc");
    }

    #[test]
    fn only_final_statuses_are_accepted() {
        for s in [
            "100", "101", "103", "199", "99", "600", "0", "-200", "\"2xx\"", "200.5", "null",
        ] {
            let e = status_of(&format!(r#"{{"statusCode":{s}}}"#)).unwrap_err();
            assert!(e.to_string().contains("200-599"), "{s}: {e:?}");
        }
        assert!(
            status_of(r#"{"statusCode":101}"#)
                .unwrap_err()
                .to_string()
                .contains("interim")
        );
        for s in [200, 299, 404, 599] {
            assert_eq!(status_of(&format!(r#"{{"statusCode":{s}}}"#)).unwrap(), s);
        }
        assert_eq!(status_of(r#"{"statusCode":"201"}"#).unwrap(), 201);
    }

    #[test]
    fn multi_value_headers_win_and_the_last_spelling_wins() {
        let r = unwrap(
            RequestFormat::ApigwV1,
            br#"{"statusCode":200,"headers":{"x-a":"h","x-b":"h"},
                "multiValueHeaders":{"X-A":["m1"],"x-c":["c"],"x-a":["m2","m3"]}}"#,
        )
        .unwrap();
        assert_eq!(header(&r, "x-a"), ["m2", "m3"]);
        assert_eq!(header(&r, "x-b"), ["h"]);
        assert_eq!(header(&r, "x-c"), ["c"]);
    }

    #[test]
    fn many_headers_are_unwrapped_in_linear_time() {
        // 40,000 of each took 13 s when each multi-value name scanned every header.
        let mut headers = serde_json::Map::new();
        let mut multi = serde_json::Map::new();
        for i in 0..40_000 {
            headers.insert(format!("h{i}"), "v".into());
            multi.insert(format!("m{i}"), serde_json::json!(["v"]));
        }
        let body = serde_json::json!({"statusCode": 200, "headers": headers,
                                      "multiValueHeaders": multi})
        .to_string();
        let started = std::time::Instant::now();
        let e = unwrap(RequestFormat::ApigwV1, body.as_bytes()).unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // Merged, then refused whole: far more than a client takes.
        assert_eq!(e, UnwrapError::TooManyHeaders(80_000));
    }

    fn with_headers(n: usize, cookies: usize) -> Vec<u8> {
        let headers: serde_json::Map<_, _> = (0..n)
            .map(|i| (format!("x-h{i}"), "secret".into()))
            .collect();
        let cookies: Vec<_> = (0..cookies).map(|i| format!("c{i}=1")).collect();
        serde_json::json!({"statusCode": 200, "headers": headers, "cookies": cookies})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn at_most_100_headers_are_sent_cookies_included() {
        let payload = with_headers(98, 2);
        let r = unwrap(RequestFormat::ApigwV2, &payload).unwrap();
        assert_eq!(r.headers.len(), MAX_HEADERS);
        for (n, c) in [(101, 0), (99, 2), (0, 101)] {
            let e = unwrap(RequestFormat::ApigwV2, &with_headers(n, c)).unwrap_err();
            assert_eq!(e, UnwrapError::TooManyHeaders(101), "{n} + {c}");
            assert_eq!(
                e.to_string(),
                "the function's result has 101 headers (cookies included); at most 100 are sent"
            );
        }
        // What the proxy drops is not counted: 100 headers and a content-length are fine.
        let mut answer: serde_json::Value = serde_json::from_slice(&with_headers(100, 0)).unwrap();
        answer["headers"]["Content-Length"] = "3".into();
        let payload = answer.to_string();
        let r = unwrap(RequestFormat::ApigwV1, payload.as_bytes()).unwrap();
        assert_eq!(r.headers.len(), 100);
    }

    #[test]
    fn at_most_60_kib_of_names_and_values_are_sent() {
        let answer = |value_len: usize| {
            serde_json::json!({"statusCode": 200,
                "multiValueHeaders": {"X-Big": ["a".repeat(value_len)]},
                "cookies": ["c=1"]})
            .to_string()
        };
        // x-big + set-cookie + c=1: 5 + 10 + 3 bytes besides the big value.
        let fits = MAX_HEADER_BYTES - 18;
        let payload = answer(fits);
        let r = unwrap(RequestFormat::Alb, payload.as_bytes()).unwrap();
        let bytes: usize = r.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        assert_eq!(bytes, MAX_HEADER_BYTES);
        let e = unwrap(RequestFormat::Alb, answer(fits + 1).as_bytes()).unwrap_err();
        assert_eq!(e, UnwrapError::HeadersTooLarge(61_441));
        assert_eq!(
            e.to_string(),
            "the function's headers are 61441 bytes (names and values, cookies included); at most 61440 are sent"
        );
    }

    #[test]
    fn a_stream_prelude_is_checked_like_a_buffered_result() {
        let r = unwrap_prelude(
            br#"{"statusCode":201,"headers":{"Content-Type":"text/event-stream"},"cookies":["a=1","b=2"]}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), ["text/event-stream"]);
        assert_eq!(header(&r, "set-cookie"), ["a=1", "b=2"]);
        assert!(r.body.is_empty());
        assert_eq!(unwrap_prelude(b"{}").unwrap().status, 200);
        assert_eq!(
            unwrap_prelude(br#"{"headers":{"x-a: 1\r\nset-cookie":"x"}}"#),
            unwrap(
                RequestFormat::ApigwV1,
                br#"{"statusCode":200,"headers":{"x-a: 1\r\nset-cookie":"x"}}"#
            )
        );
        assert!(matches!(
            unwrap_prelude(br#"{"statusCode":101}"#),
            Err(UnwrapError::InterimStatus(101))
        ));
        assert_eq!(unwrap_prelude(b"[1]"), Err(UnwrapError::NotDescribed));
        assert!(matches!(
            unwrap_prelude(b"{\"statusCode\""),
            Err(UnwrapError::Malformed(_))
        ));
    }

    #[test]
    fn no_body_for_204_and_304() {
        for s in [204, 304] {
            let payload =
                format!(r#"{{"statusCode":{s},"body":"smuggled","headers":{{"etag":"\"x\""}}}}"#);
            let r = unwrap(RequestFormat::ApigwV1, payload.as_bytes()).unwrap();
            assert_eq!(r.status, s);
            assert!(r.body.is_empty(), "{s}");
            assert!(!has_body(s));
            assert_eq!(header(&r, "etag"), ["\"x\""]);
        }
        assert!(has_body(200) && has_body(205) && has_body(404));
    }
}
