//! The SigV4 signer: one request in, the headers to add out, through the four stages of the
//! specification, each in its own module: the canonical request (hashed as it is written),
//! the string to sign, the signing key (cached per thread) and the authorization value.
//!
//! Nothing but the authorization value is allocated, so an Invoke is signed in about a
//! microsecond. [`sign_stages`] runs the very same code and also keeps each stage's text, for
//! the AWS test suite in `tests/sigv4_vectors.rs`.
//!
//! The signer always does what every AWS service but S3 expects: the path is encoded once
//! more (and normalized when asked), the session token is signed, `x-amz-date` is added.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::authorization::authorization;
use super::canonical_request::{CanonicalRequest, write_canonical_request};
use super::error::SignError;
use super::header_set::HeaderSet;
use super::signing_key;
use super::sink::{Tee, hex32};
use super::string_to_sign::{Scope, write_string_to_sign};
use crate::clock::amz_datetime;
use crate::credentials::AwsCredentials;

pub const LAMBDA_SERVICE: &str = "lambda";

/// What the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// The request target exactly as sent (already percent-encoded once).
    pub path_and_query: &'a str,
    /// The headers to sign, `host` among them; all must be sent as given. Names in any case;
    /// a name may repeat. Not `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` or
    /// `authorization`: the signer sets those.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256_hex: &'a str,
    /// Also send (and sign) `x-amz-content-sha256`.
    pub send_content_sha256: bool,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
    /// Normalize the canonical path (`/a/./b/../c` → `/a/c`): every service but S3 wants it.
    pub normalize_path: bool,
}

/// The headers to add to the request. `Debug` hides the token and the signature.
pub struct Signed<'a> {
    amz_date: [u8; 16],
    content_sha256: Option<&'a str>,
    security_token: Option<&'a str>,
    authorization: String,
}

impl<'a> Signed<'a> {
    pub fn amz_date(&self) -> &str {
        // amz_datetime writes ASCII digits, 'T' and 'Z' only.
        std::str::from_utf8(&self.amz_date).unwrap_or_default()
    }

    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// `x-amz-date`, `x-amz-content-sha256` (if asked for), `x-amz-security-token` (if the
    /// credentials are temporary) and `authorization`, in that order.
    pub fn headers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("x-amz-date", self.amz_date())),
            self.content_sha256.map(|v| ("x-amz-content-sha256", v)),
            self.security_token.map(|v| ("x-amz-security-token", v)),
            Some(("authorization", self.authorization.as_str())),
        ]
        .into_iter()
        .flatten()
    }
}

impl fmt::Debug for Signed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("amz_date", &self.amz_date())
            .field("content_sha256", &self.content_sha256)
            .field(
                "security_token",
                &self.security_token.map(|_| "** redacted **"),
            )
            .field("authorization", &"** redacted **")
            .finish()
    }
}

/// Each stage's output, for tests and diagnostics: these are secrets-adjacent (the signature
/// authorizes the request), so there is no `Debug`.
pub struct SigningStages {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signing_key_hex: String,
    pub signature_hex: String,
    pub authorization: String,
    pub amz_date: String,
}

/// Signs `req` with `creds`.
pub fn sign<'a>(
    req: &RequestToSign<'a>,
    creds: &'a Arc<AwsCredentials>,
) -> Result<Signed<'a>, SignError> {
    sign_recording(req, creds, None)
}

/// [`sign`], keeping every stage's text.
pub fn sign_stages(
    req: &RequestToSign<'_>,
    creds: &Arc<AwsCredentials>,
) -> Result<SigningStages, SignError> {
    let mut texts = StageTexts::default();
    let signed = sign_recording(req, creds, Some(&mut texts))?;
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ok(SigningStages {
        canonical_request: text(texts.canonical_request),
        string_to_sign: text(texts.string_to_sign),
        signing_key_hex: texts.signing_key_hex,
        signature_hex: texts.signature_hex,
        authorization: signed.authorization.clone(),
        amz_date: signed.amz_date().to_owned(),
    })
}

#[derive(Default)]
struct StageTexts {
    canonical_request: Vec<u8>,
    string_to_sign: Vec<u8>,
    signing_key_hex: String,
    signature_hex: String,
}

fn sign_recording<'a>(
    req: &RequestToSign<'a>,
    creds: &'a Arc<AwsCredentials>,
    mut texts: Option<&mut StageTexts>,
) -> Result<Signed<'a>, SignError> {
    if req.method.is_empty() || !req.method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(SignError::MethodNotAToken);
    }
    let amz_date = amz_datetime(req.time);
    let mut date = [0u8; 8];
    date.copy_from_slice(&amz_date[..8]);
    let amz_date_str = std::str::from_utf8(&amz_date).unwrap_or_default();
    let content_sha256 = req.send_content_sha256.then_some(req.payload_sha256_hex);
    let security_token = creds.session_token.as_deref().map(String::as_str);

    let mut headers = HeaderSet::new();
    for (name, value) in req.headers {
        headers.push_from_caller(name, value)?;
    }
    headers.push("x-amz-date", amz_date_str)?;
    if let Some(hash) = content_sha256 {
        headers.push("x-amz-content-sha256", hash)?;
    }
    if let Some(token) = security_token {
        headers.push("x-amz-security-token", token)?;
    }
    headers.sort();

    // 1. The canonical request, hashed as it is written.
    let mut creq = Tee::new(
        Sha256::new(),
        texts.as_deref_mut().map(|t| &mut t.canonical_request),
    );
    write_canonical_request(
        &CanonicalRequest {
            method: req.method,
            path_and_query: req.path_and_query,
            headers: &headers,
            payload_sha256_hex: req.payload_sha256_hex,
            normalize_path: req.normalize_path,
        },
        &mut creq,
    )?;
    let creq_hex = hex32(&creq.hash.finalize());

    // 3. The signing key (before 2: the string to sign is fed straight into its HMAC).
    let scope = Scope {
        date: &date,
        region: req.region,
        service: req.service,
    };
    let key = signing_key::cached(creds, &date, req.region, req.service);

    // 2. The string to sign, and its HMAC: the signature.
    let mut sts = Tee::new(
        signing_key::keyed(&*key),
        texts.as_deref_mut().map(|t| &mut t.string_to_sign),
    );
    write_string_to_sign(&amz_date, &scope, &creq_hex, &mut sts);
    let signature_hex = hex32(&sts.hash.finalize().into_bytes());

    // 4. The authorization value.
    let authorization = authorization(&creds.access_key, &scope, &headers, &signature_hex);
    if let Some(t) = texts {
        t.signing_key_hex = hex::encode(*key);
        t.signature_hex = String::from_utf8_lossy(&signature_hex).into_owned();
    }
    Ok(Signed {
        amz_date,
        content_sha256,
        security_token,
        authorization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::oracle::reference_headers;
    use proptest::prelude::*;
    use std::time::{Duration, UNIX_EPOCH};

    const TOKEN: &str = "IQoJb3JpZ2luX2VjEA//////////wEaCXVzLWVhc3QtMSJHMEUC";
    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn creds(token: Option<&str>) -> Arc<AwsCredentials> {
        let mut yaml =
            "access_key: AKIDEXAMPLE\nsecret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"
                .to_owned();
        if let Some(t) = token {
            yaml.push_str(&format!("session_token: \"{t}\"\n"));
        }
        Arc::new(AwsCredentials::parse(yaml.as_bytes()).unwrap())
    }

    /// The signer and aws-sigv4 on the same request: the same headers, byte for byte.
    fn cross_check(req: &RequestToSign<'_>, creds: &Arc<AwsCredentials>) {
        let ours = sign(req, creds).unwrap();
        let mut ours: Vec<(String, String)> = ours
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut reference = reference_headers(req, creds);
        ours.sort();
        reference.sort();
        assert_eq!(ours, reference, "{req:?}");
    }

    fn invoke<'a>(path: &'a str, headers: &'a [(&'a str, &'a str)]) -> RequestToSign<'a> {
        RequestToSign {
            method: "POST",
            path_and_query: path,
            headers,
            payload_sha256_hex: EMPTY_SHA,
            send_content_sha256: true,
            region: "us-east-1",
            service: LAMBDA_SERVICE,
            time: UNIX_EPOCH + Duration::from_secs(1_795_598_346),
            normalize_path: true,
        }
    }

    #[test]
    fn matches_aws_sigv4_for_typical_invokes_and_listings() {
        let host = ("host", "lambda.us-east-1.amazonaws.com");
        for path in [
            "/2015-03-31/functions/echo/invocations",
            "/2015-03-31/functions/echo/invocations?Qualifier=live",
            "/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations",
            "/2015-03-31/functions/f%3A7/invocations",
        ] {
            for headers in [
                &[host][..],
                &[host, ("x-amz-invocation-type", "Event")][..],
                &[
                    host,
                    ("x-amz-client-context", "eyJjdXN0b20iOnt9fQ=="),
                    ("x-amz-invocation-type", "Event"),
                    ("x-amz-log-type", "Tail"),
                ][..],
            ] {
                for token in [None, Some(TOKEN)] {
                    cross_check(&invoke(path, headers), &creds(token));
                }
            }
        }
        for path in [
            "/2015-03-31/functions/?MaxItems=50",
            "/2015-03-31/functions/?MaxItems=50&Marker=a%2Bb%2Fc%3D%3D",
            "/2015-03-31/functions/f_1/versions?MaxItems=50&Marker=2",
        ] {
            let get = RequestToSign {
                method: "GET",
                ..invoke(path, &[("host", "127.0.0.1:5000")])
            };
            cross_check(&get, &creds(Some(TOKEN)));
        }
    }

    #[test]
    fn the_signer_adds_exactly_what_it_signed() {
        let c = creds(Some(TOKEN));
        let req = invoke("/f", &[("host", "h")]);
        let signed = sign(&req, &c).unwrap();
        let names: Vec<_> = signed.headers().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-security-token",
                "authorization"
            ]
        );
        assert!(
            signed.authorization().contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
            )
        );
        let no_hash = RequestToSign {
            send_content_sha256: false,
            ..req
        };
        let plain = creds(None);
        let signed = sign(&no_hash, &plain).unwrap();
        let names: Vec<_> = signed.headers().map(|(k, _)| k).collect();
        assert_eq!(names, ["x-amz-date", "authorization"]);
    }

    #[test]
    fn refuses_what_it_cannot_sign_and_says_why() {
        let c = creds(None);
        let bad = |req: RequestToSign<'_>| sign(&req, &c).unwrap_err().to_string();
        assert!(
            bad(invoke("/f", &[("x-amz-date", "x")])).contains("'x-amz-date' is set by the signer")
        );
        assert!(
            bad(RequestToSign {
                method: "post",
                ..invoke("/f", &[])
            })
            .contains("method")
        );
        assert!(bad(invoke("/f", &[("h", "a\r\nb")])).contains("control character"));
    }

    #[test]
    fn debug_hides_the_token_and_the_signature() {
        let c = creds(Some(TOKEN));
        let signed = sign(&invoke("/f", &[("host", "h")]), &c).unwrap();
        let signature = signed
            .authorization()
            .rsplit('=')
            .next()
            .unwrap()
            .to_owned();
        let shown = format!("{signed:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains(&signature), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    /// A path segment as a client may send it: unreserved bytes, `%XX` escapes, dot segments.
    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._~-]{0,8}",
            Just(".".to_owned()),
            Just("..".to_owned()),
            "[A-Za-z0-9]{0,3}%[0-9A-F]{2}[a-z]{0,3}",
        ]
    }

    /// A query name or value: unreserved bytes and escapes of ASCII bytes.
    fn query_part() -> impl Strategy<Value = String> {
        "([A-Za-z0-9._~-]|%[2-7][0-9A-F]){0,6}"
    }

    proptest! {
        /// Any Invoke the filter builds: identical to aws-sigv4.
        #[test]
        fn identical_to_aws_sigv4_for_invokes(
            name in "[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_-]{1,20})?",
            qualifier in proptest::option::of("[A-Za-z0-9_-]{1,20}|\\$LATEST"),
            region in "(us|eu|ap)-(east|west|south)-[1-3]",
            secs in 0u64..4_000_000_000,
            hash in "[0-9a-f]{64}",
            token in proptest::option::of("[A-Za-z0-9/+=]{1,400}"),
            options in proptest::sample::subsequence(
                vec![
                    ("x-amz-client-context", "eyJjdXN0b20iOnt9fQ=="),
                    ("x-amz-invocation-type", "Event"),
                    ("x-amz-log-type", "Tail"),
                ],
                0..=3,
            ),
        ) {
            let f = crate::lambda::FunctionName::parse(&name);
            prop_assume!(f.is_ok());
            let f = f.unwrap();
            let q = qualifier.map(|q| crate::lambda::Qualifier::parse(&q).unwrap());
            let path = crate::lambda::invoke_path(&f, q.as_ref());
            let authority = format!("lambda.{region}.amazonaws.com");
            let mut headers = vec![("host", authority.as_str())];
            headers.extend(options);
            let req = RequestToSign {
                payload_sha256_hex: &hash,
                region: &region,
                time: UNIX_EPOCH + Duration::from_secs(secs),
                ..invoke(&path, &headers)
            };
            cross_check(&req, &creds(token.as_deref()));
        }

        /// Any request of the shapes the signer takes (dot segments, unsorted and repeated
        /// query parameters, mixed-case and repeated header names, padded values).
        #[test]
        fn identical_to_aws_sigv4_for_general_requests(
            method in "GET|POST|PUT|DELETE",
            segments in proptest::collection::vec(segment(), 0..6),
            trailing_slash in any::<bool>(),
            params in proptest::collection::vec((query_part(), proptest::option::of(query_part())), 0..6),
            headers in proptest::collection::vec(
                ("(My-Header|x-custom|Content-Type)[1-3]?", "( |[A-Za-z0-9;=/,.])*"),
                0..6,
            ),
            normalize in any::<bool>(),
            send_content_sha256 in any::<bool>(),
            token in proptest::option::of("[A-Za-z0-9]{1,40}"),
        ) {
            let mut path = String::new();
            for s in &segments {
                path.push('/');
                path.push_str(s);
            }
            if trailing_slash || path.is_empty() {
                path.push('/');
            }
            let query: Vec<String> = params
                .iter()
                .filter(|(k, v)| !k.is_empty() || v.is_some())
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            if !query.is_empty() {
                path.push('?');
                path.push_str(&query.join("&"));
            }
            let mut signed_headers = vec![("Host", "example.amazonaws.com")];
            signed_headers.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let req = RequestToSign {
                method: &method,
                path_and_query: &path,
                headers: &signed_headers,
                payload_sha256_hex: EMPTY_SHA,
                send_content_sha256,
                region: "us-east-1",
                service: "service",
                time: UNIX_EPOCH + Duration::from_secs(1_440_938_160),
                normalize_path: normalize,
            };
            cross_check(&req, &creds(token.as_deref()));
        }
    }
}
