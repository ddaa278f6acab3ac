//! The three read-only Lambda API calls discovery makes, and their replies.
//!
//! - `ListFunctions`: `GET /2015-03-31/functions/?MaxItems=50[&Marker=…]`
//! - `ListAliases`: `GET /2015-03-31/functions/<name>/aliases?MaxItems=50[&Marker=…]`
//! - `ListVersionsByFunction`: `GET /2015-03-31/functions/<name>/versions?MaxItems=50[&Marker=…]`
//!
//! All are body-less GETs (payload hash = SHA-256 of the empty string). The query is written
//! in that order; SigV4 canonicalisation sorts it, so the order does not matter for the
//! signature. Pages are read with serde, ignoring the many fields we do not need, but the list
//! itself is required: an error document answered with 200 must not read as "no functions".

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Lambda's documented maximum `MaxItems` for all three calls.
pub const PAGE_SIZE: u32 = 50;

const FUNCTIONS_PATH: &str = "/2015-03-31/functions/";

/// AWS URI encoding: RFC 3986 unreserved characters stay, everything else is `%XX`. Markers are
/// opaque base64-like tokens (`+`, `/`, `=`), so they must be encoded, and `+` in particular,
/// which a form decoder would otherwise read as a space.
const AWS_URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Which listing a request belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the Lambda API's own operation names
pub enum ApiCall {
    ListFunctions,
    /// Aliases of the named function.
    ListAliases(String),
    /// Published versions of the named function.
    ListVersions(String),
}

impl ApiCall {
    /// The API operation's name, for logs and stats.
    pub fn operation(&self) -> &'static str {
        match self {
            ApiCall::ListFunctions => "ListFunctions",
            ApiCall::ListAliases(_) => "ListAliases",
            ApiCall::ListVersions(_) => "ListVersionsByFunction",
        }
    }

    /// The function a per-function call is about.
    pub fn function(&self) -> Option<&str> {
        match self {
            ApiCall::ListFunctions => None,
            ApiCall::ListAliases(f) | ApiCall::ListVersions(f) => Some(f),
        }
    }
}

impl fmt::Display for ApiCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.function() {
            None => f.write_str(self.operation()),
            Some(name) => write!(f, "{}({name})", self.operation()),
        }
    }
}

/// One request to send: `GET <path_and_query>` to the upstream's endpoint, SigV4-signed for
/// service `lambda` with an empty payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    pub call: ApiCall,
    /// Already percent-encoded; send and sign as is.
    pub path_and_query: String,
}

impl ApiRequest {
    pub const METHOD: &'static str = "GET";

    /// The request for one page of `call`, after `marker` (the previous page's `NextMarker`).
    pub fn new(call: ApiCall, marker: Option<&str>) -> Self {
        let mut path = String::with_capacity(96);
        path.push_str(FUNCTIONS_PATH);
        match &call {
            ApiCall::ListFunctions => {}
            ApiCall::ListAliases(name) => {
                path.extend(utf8_percent_encode(name, AWS_URI_ENCODE));
                path.push_str("/aliases");
            }
            ApiCall::ListVersions(name) => {
                path.extend(utf8_percent_encode(name, AWS_URI_ENCODE));
                path.push_str("/versions");
            }
        }
        path.push_str("?MaxItems=");
        path.push_str(&PAGE_SIZE.to_string());
        if let Some(marker) = marker {
            path.push_str("&Marker=");
            path.extend(utf8_percent_encode(marker, AWS_URI_ENCODE));
        }
        Self {
            call,
            path_and_query: path,
        }
    }
}

/// One page of a listing. `next_marker` is `None` on the last page (absent, `null` or `""`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// A `FunctionConfiguration` from `ListFunctions`, reduced to what discovery uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FunctionSummary {
    #[serde(rename = "FunctionName")]
    pub name: String,
    #[serde(rename = "FunctionArn", default)]
    pub arn: Option<String>,
}

/// An `AliasConfiguration` from `ListAliases`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AliasSummary {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "FunctionVersion", default)]
    pub function_version: Option<String>,
}

/// A `FunctionConfiguration` from `ListVersionsByFunction`: only its `Version` matters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VersionSummary {
    #[serde(rename = "Version")]
    pub version: String,
}

#[derive(Deserialize)]
struct RawFunctionsPage {
    #[serde(rename = "Functions")]
    functions: Vec<FunctionSummary>,
    #[serde(rename = "NextMarker", default)]
    next_marker: Option<String>,
}

#[derive(Deserialize)]
struct RawAliasesPage {
    #[serde(rename = "Aliases")]
    aliases: Vec<AliasSummary>,
    #[serde(rename = "NextMarker", default)]
    next_marker: Option<String>,
}

#[derive(Deserialize)]
struct RawVersionsPage {
    #[serde(rename = "Versions")]
    versions: Vec<VersionSummary>,
    #[serde(rename = "NextMarker", default)]
    next_marker: Option<String>,
}

/// A 200 reply that is not the expected page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageError {
    /// Not JSON at all (an HTML error page from a proxy, a truncated body …).
    NotJson(String),
    /// JSON, but not this call's page: the message names the path, e.g. `Functions[3].FunctionName`.
    WrongShape(String),
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::NotJson(m) => write!(f, "reply is not JSON: {m}"),
            PageError::WrongShape(m) => write!(f, "reply is not the expected page: {m}"),
        }
    }
}

impl std::error::Error for PageError {}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, PageError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = crate::field_path::deserialize(&mut de).map_err(|e| {
        if !e.is_data() {
            PageError::NotJson(e.message())
        } else if e.path().is_empty() {
            PageError::WrongShape(e.message())
        } else {
            PageError::WrongShape(format!("{}: {}", e.path(), e.message()))
        }
    })?;
    de.end().map_err(|e| PageError::NotJson(e.to_string()))?;
    Ok(value)
}

fn marker(raw: Option<String>) -> Option<String> {
    raw.filter(|m| !m.is_empty())
}

pub fn parse_functions_page(body: &[u8]) -> Result<Page<FunctionSummary>, PageError> {
    let raw: RawFunctionsPage = parse_json(body)?;
    Ok(Page {
        items: raw.functions,
        next_marker: marker(raw.next_marker),
    })
}

pub fn parse_aliases_page(body: &[u8]) -> Result<Page<AliasSummary>, PageError> {
    let raw: RawAliasesPage = parse_json(body)?;
    Ok(Page {
        items: raw.aliases,
        next_marker: marker(raw.next_marker),
    })
}

pub fn parse_versions_page(body: &[u8]) -> Result<Page<VersionSummary>, PageError> {
    let raw: RawVersionsPage = parse_json(body)?;
    Ok(Page {
        items: raw.versions,
        next_marker: marker(raw.next_marker),
    })
}

/// What an HTTP status means for a refresh, and for the failure stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// 200: a page.
    Ok,
    /// 401/403: bad or missing credentials, a wrong signature or a denied `lambda:List*`.
    Auth,
    /// 429: `TooManyRequestsException` (the account's control-plane rate).
    Throttled,
    /// 5xx: `ServiceException` and friends.
    Server,
    /// Anything else (400, 404, a 3xx from a misconfigured endpoint …).
    Other,
}

pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200 => StatusClass::Ok,
        401 | 403 => StatusClass::Auth,
        429 => StatusClass::Throttled,
        500..=599 => StatusClass::Server,
        _ => StatusClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped after the ListFunctions example in the Lambda API reference, with the fields a
    /// 2024 runtime returns (most are ignored).
    const FUNCTIONS_PAGE: &str = r#"{
        "Functions": [
            {
                "FunctionName": "orders-api",
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-api",
                "Runtime": "python3.12",
                "Role": "arn:aws:iam::123456789012:role/lambda-role",
                "Handler": "app.handler",
                "CodeSize": 1042,
                "Description": "",
                "Timeout": 3,
                "MemorySize": 128,
                "LastModified": "2024-05-01T12:00:00.000+0000",
                "CodeSha256": "YFgDgEKG3ugvF1+pX64gV6tu9qNuIYNUdgJm8nCxsSU=",
                "Version": "$LATEST",
                "Environment": {"Variables": {"STAGE": "prod"}},
                "TracingConfig": {"Mode": "PassThrough"},
                "RevisionId": "88ebe1e1-bfdf-4dc3-84de-3017268fa1ff",
                "Layers": [],
                "PackageType": "Zip",
                "Architectures": ["x86_64"],
                "EphemeralStorage": {"Size": 512},
                "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
                "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/orders-api"}
            },
            {
                "FunctionName": "billing",
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:billing",
                "Runtime": "nodejs20.x",
                "Version": "$LATEST",
                "PackageType": "Zip"
            }
        ],
        "NextMarker": "eyJNYXJrZXIiOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAyfQ=="
    }"#;

    const ALIASES_PAGE: &str = r#"{
        "Aliases": [
            {
                "AliasArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-api:BLUE",
                "Description": "Production environment BLUE.",
                "FunctionVersion": "2",
                "Name": "BLUE",
                "RevisionId": "594f41fb-xmpl-4c20-95c7-6ca5f2a92c93",
                "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.7}}
            },
            {
                "AliasArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-api:LIVE",
                "Description": "Production environment LIVE.",
                "FunctionVersion": "1",
                "Name": "LIVE",
                "RevisionId": "6d78d3bd-xmpl-4e8e-9a5f-f6bba3ecfbe3"
            }
        ]
    }"#;

    const VERSIONS_PAGE: &str = r#"{
        "Versions": [
            {"FunctionName": "orders-api", "Version": "$LATEST",
             "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-api:$LATEST"},
            {"FunctionName": "orders-api", "Version": "1",
             "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-api:1"},
            {"FunctionName": "orders-api", "Version": "2",
             "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:orders-api:2"}
        ],
        "NextMarker": null
    }"#;

    #[test]
    fn request_lines() {
        assert_eq!(
            ApiRequest::new(ApiCall::ListFunctions, None).path_and_query,
            "/2015-03-31/functions/?MaxItems=50"
        );
        assert_eq!(
            ApiRequest::new(ApiCall::ListFunctions, Some("a+b/c==")).path_and_query,
            "/2015-03-31/functions/?MaxItems=50&Marker=a%2Bb%2Fc%3D%3D"
        );
        assert_eq!(
            ApiRequest::new(ApiCall::ListAliases("orders-api".into()), None).path_and_query,
            "/2015-03-31/functions/orders-api/aliases?MaxItems=50"
        );
        assert_eq!(
            ApiRequest::new(ApiCall::ListVersions("f_1".into()), Some("2")).path_and_query,
            "/2015-03-31/functions/f_1/versions?MaxItems=50&Marker=2"
        );
        assert_eq!(ApiRequest::METHOD, "GET");
        assert_eq!(
            ApiCall::ListVersions("f".into()).to_string(),
            "ListVersionsByFunction(f)"
        );
    }

    #[test]
    fn functions_page() {
        let page = parse_functions_page(FUNCTIONS_PAGE.as_bytes()).unwrap();
        let names: Vec<_> = page.items.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["orders-api", "billing"]);
        assert_eq!(
            page.items[0].arn.as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:orders-api")
        );
        assert_eq!(
            page.next_marker.as_deref(),
            Some("eyJNYXJrZXIiOiBudWxsLCAiYm90b190cnVuY2F0ZV9hbW91bnQiOiAyfQ==")
        );
    }

    #[test]
    fn last_page_markers() {
        for body in [
            r#"{"Functions": []}"#,
            r#"{"Functions": [], "NextMarker": null}"#,
            r#"{"Functions": [], "NextMarker": ""}"#,
        ] {
            let page = parse_functions_page(body.as_bytes()).unwrap();
            assert_eq!(page.next_marker, None, "{body}");
        }
    }

    #[test]
    fn aliases_and_versions_pages() {
        let a = parse_aliases_page(ALIASES_PAGE.as_bytes()).unwrap();
        assert_eq!(a.next_marker, None);
        assert_eq!(a.items[0].name, "BLUE");
        assert_eq!(a.items[0].function_version.as_deref(), Some("2"));
        assert_eq!(a.items[1].name, "LIVE");
        let v = parse_versions_page(VERSIONS_PAGE.as_bytes()).unwrap();
        let versions: Vec<_> = v.items.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(versions, ["$LATEST", "1", "2"]);
    }

    #[test]
    fn bad_pages_are_errors_not_empty_lists() {
        assert!(matches!(
            parse_functions_page(b"<html>502 Bad Gateway</html>"),
            Err(PageError::NotJson(_))
        ));
        assert!(matches!(
            parse_functions_page(br#"{"Functions": [""#),
            Err(PageError::NotJson(_))
        ));
        assert!(matches!(
            parse_functions_page(br#"{"Functions": []} trailing"#),
            Err(PageError::NotJson(_))
        ));
        assert!(matches!(
            parse_functions_page(b""),
            Err(PageError::NotJson(_))
        ));
        // An error document with status 200 must not read as "the account has no functions".
        let e = parse_functions_page(br#"{"Message": "nope", "Type": "User"}"#).unwrap_err();
        assert!(
            matches!(&e, PageError::WrongShape(m) if m.contains("Functions")),
            "{e}"
        );
        let e = parse_functions_page(br#"{"Functions": [{"FunctionName": 7}]}"#).unwrap_err();
        assert!(
            matches!(&e, PageError::WrongShape(m) if m.starts_with("Functions[0].FunctionName")),
            "{e}"
        );
        let e = parse_functions_page(br#"{"Functions": [], "NextMarker": 5}"#).unwrap_err();
        assert!(
            matches!(&e, PageError::WrongShape(m) if m.contains("NextMarker")),
            "{e}"
        );
        assert!(parse_aliases_page(FUNCTIONS_PAGE.as_bytes()).is_err());
        assert!(parse_versions_page(br#"{"Versions": [{"Name": "x"}]}"#).is_err());
        assert!(parse_functions_page(b"[]").is_err());
    }

    #[test]
    fn status_classes() {
        assert_eq!(classify_status(200), StatusClass::Ok);
        assert_eq!(classify_status(403), StatusClass::Auth);
        assert_eq!(classify_status(401), StatusClass::Auth);
        assert_eq!(classify_status(429), StatusClass::Throttled);
        assert_eq!(classify_status(500), StatusClass::Server);
        assert_eq!(classify_status(503), StatusClass::Server);
        assert_eq!(classify_status(404), StatusClass::Other);
        assert_eq!(classify_status(400), StatusClass::Other);
        assert_eq!(classify_status(204), StatusClass::Other);
    }
}
