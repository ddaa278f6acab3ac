//! The Invoke signature on the hot path, without allocating and with the signing key cached.
//!
//! `aws-sigv4` derives the signing key (four HMACs) and builds the canonical request as strings
//! on every call (≈3.4 µs). The key only changes with the date, region, service and secret, so
//! it is cached per worker thread; and an Invoke's canonical request has a fixed shape (POST,
//! an already-encoded path, at most one query parameter, our own header set), so it is fed
//! straight into SHA-256 piece by piece. Anything outside that shape is left to `aws-sigv4`
//! (`None`). The unit tests check every output byte against `aws-sigv4` for the same inputs.
//!
//! Spec: `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`,
//! `signature = hex(HMAC(kSigning, "AWS4-HMAC-SHA256\n" + datetime + "\n" + scope + "\n" +
//! hex(SHA256(canonical_request))))`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::signer::InvokeToSign;
use crate::clock::amz_datetime;
use crate::credentials::AwsCredentials;

type HmacSha256 = Hmac<Sha256>;

/// The headers to set, in fixed buffers.
pub struct FastSigned {
    pub amz_date: [u8; 16],
    pub authorization: String,
}

impl FastSigned {
    pub fn amz_date(&self) -> &str {
        // amz_datetime writes ASCII digits, 'T' and 'Z' only.
        std::str::from_utf8(&self.amz_date).unwrap_or_default()
    }
}

struct CachedKey {
    creds: Arc<AwsCredentials>,
    date: [u8; 8],
    region: Box<str>,
    key: Zeroizing<[u8; 32]>,
}

/// Per worker thread: a handful of (credentials, day, region) signing keys.
const KEYS_PER_THREAD: usize = 8;

thread_local! {
    static KEYS: RefCell<Vec<CachedKey>> = const { RefCell::new(Vec::new()) };
    /// The authorization value is built here and copied out once.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().into()
}

fn derive_key(secret: &str, date: &[u8], region: &str, service: &str) -> Zeroizing<[u8; 32]> {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let k_date = Zeroizing::new(hmac(&k_secret, date));
    let k_region = Zeroizing::new(hmac(&*k_date, region.as_bytes()));
    let k_service = Zeroizing::new(hmac(&*k_region, service.as_bytes()));
    Zeroizing::new(hmac(&*k_service, b"aws4_request"))
}

/// The signing key for `creds` on `date` in `region` (service `lambda`), cached.
fn signing_key(creds: &Arc<AwsCredentials>, date: &[u8; 8], region: &str) -> Zeroizing<[u8; 32]> {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys
            .iter()
            .find(|k| Arc::ptr_eq(&k.creds, creds) && k.date == *date && &*k.region == region)
        {
            return k.key.clone();
        }
        let key = derive_key(&creds.secret_key, date, region, super::LAMBDA_SERVICE);
        if keys.len() >= KEYS_PER_THREAD {
            keys.remove(0); // the oldest: rotated secrets and past days age out
        }
        keys.push(CachedKey {
            creds: Arc::clone(creds),
            date: *date,
            region: region.into(),
            key: key.clone(),
        });
        key
    })
}

/// True when `path_and_query` is in the canonical form this signer handles: only unreserved
/// characters, `%XX` escapes and `/` in the path, no `.`/`..` segments, and at most one
/// query parameter made of the same characters.
fn is_simple(path_and_query: &str) -> bool {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let ok_char =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%');
    path.starts_with('/')
        && path.bytes().all(|b| ok_char(b) || b == b'/')
        && !path.split('/').any(|seg| seg == "." || seg == "..")
        && !query.contains('&')
        && query.bytes().all(|b| ok_char(b) || b == b'=')
        && (query.is_empty() || query.contains('='))
}

/// A header value AWS would not need to trim or fold.
fn is_plain_value(v: &str) -> bool {
    !v.starts_with(' ') && !v.ends_with(' ') && !v.contains("  ") && !v.bytes().any(|b| b < 0x20)
}

/// Signs an Invoke call like `aws-sigv4` would (same settings as [`super::sign_invoke`]), or
/// returns `None` when the request is outside the fixed shape handled here.
pub fn sign_invoke_fast(req: &InvokeToSign<'_>, creds: &Arc<AwsCredentials>) -> Option<FastSigned> {
    if !is_simple(req.path_and_query) || req.extra_headers.len() > 4 {
        return None;
    }
    let amz_date = amz_datetime(req.time);
    let date: [u8; 8] = amz_date[..8].try_into().ok()?;
    let amz_date_str = std::str::from_utf8(&amz_date).ok()?;

    // The signed headers, sorted by name (all lower-case).
    let mut headers: [(&str, &str); 8] = [("", ""); 8];
    headers[0] = ("host", req.authority);
    headers[1] = ("x-amz-content-sha256", req.payload_sha256_hex);
    headers[2] = ("x-amz-date", amz_date_str);
    let mut n = 3;
    for (name, value) in req.extra_headers {
        headers[n] = (name, value);
        n += 1;
    }
    if let Some(token) = creds.session_token.as_deref() {
        headers[n] = ("x-amz-security-token", token.as_str());
        n += 1;
    }
    let headers = &mut headers[..n];
    headers.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if headers.windows(2).any(|w| w[0].0 == w[1].0)
        || headers
            .iter()
            .any(|(k, v)| !is_plain_value(v) || k.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return None;
    }

    // Canonical request, hashed as it is produced.
    let (path, query) = req
        .path_and_query
        .split_once('?')
        .unwrap_or((req.path_and_query, ""));
    let mut creq = Sha256::new();
    creq.update(b"POST\n");
    // Lambda (like every service but S3) encodes the already-encoded path once more.
    for piece in path.split_inclusive('%') {
        if let Some(head) = piece.strip_suffix('%') {
            creq.update(head.as_bytes());
            creq.update(b"%25");
        } else {
            creq.update(piece.as_bytes());
        }
    }
    creq.update(b"\n");
    creq.update(query.as_bytes());
    creq.update(b"\n");
    for (k, v) in headers.iter() {
        creq.update(k.as_bytes());
        creq.update(b":");
        creq.update(v.as_bytes());
        creq.update(b"\n");
    }
    creq.update(b"\n");
    for (i, (k, _)) in headers.iter().enumerate() {
        if i > 0 {
            creq.update(b";");
        }
        creq.update(k.as_bytes());
    }
    creq.update(b"\n");
    creq.update(req.payload_sha256_hex.as_bytes());
    let creq_hash = creq.finalize();
    let mut creq_hex = [0u8; 64];
    hex::encode_to_slice(creq_hash, &mut creq_hex).ok()?;

    let key = signing_key(creds, &date, req.region);
    let mut sts = <HmacSha256 as Mac>::new_from_slice(&*key).ok()?;
    sts.update(b"AWS4-HMAC-SHA256\n");
    sts.update(&amz_date);
    sts.update(b"\n");
    sts.update(&date);
    sts.update(b"/");
    sts.update(req.region.as_bytes());
    sts.update(b"/lambda/aws4_request\n");
    sts.update(&creq_hex);
    let signature = sts.finalize().into_bytes();
    let mut sig_hex = [0u8; 64];
    hex::encode_to_slice(signature, &mut sig_hex).ok()?;

    let authorization = SCRATCH.with(|scratch| {
        let mut s = scratch.borrow_mut();
        s.clear();
        s.push_str("AWS4-HMAC-SHA256 Credential=");
        s.push_str(&creds.access_key);
        s.push('/');
        s.push_str(std::str::from_utf8(&date).unwrap_or_default());
        let _ = write!(s, "/{}/lambda/aws4_request, SignedHeaders=", req.region);
        for (i, (k, _)) in headers.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            s.push_str(k);
        }
        s.push_str(", Signature=");
        s.push_str(std::str::from_utf8(&sig_hex).unwrap_or_default());
        s.clone()
    });
    Some(FastSigned {
        amz_date,
        authorization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::sign_invoke;
    use proptest::prelude::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn creds(token: Option<&str>) -> Arc<AwsCredentials> {
        let mut yaml =
            "access_key: AKIDEXAMPLE\nsecret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"
                .to_owned();
        if let Some(t) = token {
            yaml.push_str(&format!("session_token: \"{t}\"\n"));
        }
        Arc::new(AwsCredentials::parse(yaml.as_bytes()).unwrap())
    }

    /// Both signers on the same request; every header must be byte-identical.
    fn cross_check(req: InvokeToSign<'_>, creds: &Arc<AwsCredentials>) {
        let fast = sign_invoke_fast(&req, creds).expect("in the fast shape");
        let reference = sign_invoke(req, creds).unwrap();
        let get = |n: &str| {
            reference
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(Some(fast.authorization.as_str()), get("authorization"));
        assert_eq!(Some(fast.amz_date()), get("x-amz-date"));
    }

    #[test]
    fn matches_aws_sigv4_for_typical_invokes() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_598_346);
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for path in [
            "/2015-03-31/functions/echo/invocations",
            "/2015-03-31/functions/echo/invocations?Qualifier=live",
            "/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations",
            "/2015-03-31/functions/f%3A7/invocations",
        ] {
            for extra in [
                &[][..],
                &[("x-amz-invocation-type", "RequestResponse")][..],
                &[
                    ("x-amz-client-context", "eyJjdXN0b20iOnt9fQ=="),
                    ("x-amz-invocation-type", "Event"),
                    ("x-amz-log-type", "Tail"),
                ][..],
            ] {
                for token in [None, Some("IQoJb3JpZ2luX2VjEA//////////wEaCXVzLWVhc3QtMSJHMEUC")] {
                    cross_check(
                        InvokeToSign {
                            authority: "lambda.us-east-1.amazonaws.com",
                            path_and_query: path,
                            payload_sha256_hex: hash,
                            region: "us-east-1",
                            time: t,
                            extra_headers: extra,
                        },
                        &creds(token),
                    );
                }
            }
        }
    }

    #[test]
    fn the_key_cache_follows_date_region_and_rotation() {
        let a = creds(None);
        let day1 = UNIX_EPOCH + Duration::from_secs(1_795_598_346);
        let day2 = day1 + Duration::from_secs(86_400);
        let req = |time, region| InvokeToSign {
            authority: "127.0.0.1:5000",
            path_and_query: "/2015-03-31/functions/echo/invocations",
            payload_sha256_hex: "00",
            region,
            time,
            extra_headers: &[],
        };
        cross_check(req(day1, "us-east-1"), &a);
        cross_check(req(day2, "us-east-1"), &a);
        cross_check(req(day2, "eu-west-1"), &a);
        let rotated = Arc::new(
            AwsCredentials::parse(b"access_key: AKIDEXAMPLE\nsecret_key: another-secret\n")
                .unwrap(),
        );
        cross_check(req(day2, "eu-west-1"), &rotated);
        for i in 0..20u64 {
            cross_check(req(day1 + Duration::from_secs(86_400 * i), "us-east-1"), &a);
        }
    }

    #[test]
    fn leaves_other_shapes_to_aws_sigv4() {
        let c = creds(None);
        let req = |path| InvokeToSign {
            authority: "h",
            path_and_query: path,
            payload_sha256_hex: "00",
            region: "us-east-1",
            time: UNIX_EPOCH,
            extra_headers: &[],
        };
        assert!(sign_invoke_fast(&req("/a/./b"), &c).is_none());
        assert!(sign_invoke_fast(&req("/a b"), &c).is_none());
        assert!(sign_invoke_fast(&req("/a?x=1&y=2"), &c).is_none());
        assert!(sign_invoke_fast(&req("relative"), &c).is_none());
        let spaced = [("x-amz-client-context", " padded ")];
        assert!(sign_invoke_fast(
            &InvokeToSign {
                extra_headers: &spaced,
                ..req("/a")
            },
            &c
        )
        .is_none());
    }

    proptest! {
        /// Any function name, qualifier, region, time and payload hash: identical to aws-sigv4.
        #[test]
        fn identical_to_aws_sigv4(
            name in "[A-Za-z0-9_.-]{1,64}(:[A-Za-z0-9_-]{1,20})?",
            qualifier in proptest::option::of("[A-Za-z0-9_-]{1,20}|\\$LATEST"),
            region in "(us|eu|ap)-(east|west|south)-[1-3]",
            secs in 0u64..4_000_000_000,
            hash in "[0-9a-f]{64}",
        ) {
            let f = crate::lambda::FunctionName::parse(&name);
            prop_assume!(f.is_ok());
            let f = f.unwrap();
            let q = qualifier.map(|q| crate::lambda::Qualifier::parse(&q).unwrap());
            let path = crate::lambda::invoke_path(&f, q.as_ref());
            let authority = format!("lambda.{region}.amazonaws.com");
            cross_check(
                InvokeToSign {
                    authority: &authority,
                    path_and_query: &path,
                    payload_sha256_hex: &hash,
                    region: &region,
                    time: UNIX_EPOCH + Duration::from_secs(secs),
                    extra_headers: &[("x-amz-invocation-type", "RequestResponse")],
                },
                &creds(None),
            );
        }
    }
}
