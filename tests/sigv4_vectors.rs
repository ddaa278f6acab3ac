//! The official AWS SigV4 test suite (shipped inside the `aws-sigv4` crate that cargo fetched
//! for this build) run through our signing entry point, plus an independent re-derivation of
//! a Lambda Invoke signature straight from the SigV4 specification.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use envoy_lambda::credentials::AwsCredentials;
use envoy_lambda::sigv4::{sign_invoke, sign_request, InvokeToSign, RequestToSign};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Where cargo unpacked the locked `aws-sigv4` version.
fn suite_dir() -> PathBuf {
    let lock = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"aws-sigv4\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("aws-sigv4 in Cargo.lock");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let src = cargo_home.join("registry/src");
    for index in std::fs::read_dir(&src).expect("cargo registry sources") {
        let dir = index
            .unwrap()
            .path()
            .join(format!("aws-sigv4-{version}/aws-signing-test-suite/v4"));
        if dir.is_dir() {
            return dir;
        }
    }
    panic!(
        "aws-sigv4-{version} test suite not found under {}",
        src.display()
    );
}

struct Case {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_request(text: &str) -> Case {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let uri = rest.rsplit_once(' ').expect("HTTP version").0;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            // obs-fold: RFC 7230 §3.2.4 says a recipient replaces it with a space.
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim_start());
        } else {
            let (k, v) = line.split_once(':').expect("header line");
            headers.push((k.to_owned(), v.to_owned()));
        }
    }
    Case {
        method: method.to_owned(),
        uri: uri.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn field<'a>(json: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    &json[key]
}

#[test]
fn aws_sigv4_test_suite() {
    let dir = suite_dir();
    let mut passed = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case_dir in entries {
        let name = case_dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(ctx) = std::fs::read_to_string(case_dir.join("context.json")) else {
            continue; // not a test case
        };
        let ctx: serde_json::Value = serde_json::from_str(&ctx).unwrap();
        let Ok(expected) = std::fs::read_to_string(case_dir.join("header-signature.txt")) else {
            skipped.push(format!("{name} (no header-signing vector)"));
            continue;
        };
        if name.starts_with("get-space-") {
            // A raw space in the request line is not a valid URI; no HTTP client sends it.
            skipped.push(format!("{name} (unencoded space in the request line)"));
            continue;
        }
        if field(&ctx, "omit_session_token").as_bool() == Some(true) {
            // We always sign the token, as Lambda requires; this vector is for services that don't.
            skipped.push(format!("{name} (omit_session_token)"));
            continue;
        }
        let case = parse_request(&std::fs::read_to_string(case_dir.join("request.txt")).unwrap());
        let creds = field(&ctx, "credentials");
        let mut yaml = format!(
            "access_key: {}\nsecret_key: {}\n",
            creds["access_key_id"].as_str().unwrap(),
            creds["secret_access_key"].as_str().unwrap()
        );
        if let Some(t) = creds["token"].as_str() {
            yaml.push_str(&format!("session_token: \"{t}\"\n"));
        }
        let creds = AwsCredentials::parse(yaml.as_bytes()).unwrap();
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let payload_hash = hex::encode(Sha256::digest(&case.body));
        let signed = sign_request(
            RequestToSign {
                method: &case.method,
                path_and_query: &case.uri,
                headers: &headers,
                payload_sha256_hex: &payload_hash,
                send_content_sha256: field(&ctx, "sign_body").as_bool() == Some(true),
                region: field(&ctx, "region").as_str().unwrap(),
                service: field(&ctx, "service").as_str().unwrap(),
                time: UNIX_EPOCH + Duration::from_secs(1_440_938_160), // 2015-08-30T12:36:00Z
                double_encode_path: true,
                normalize_path: field(&ctx, "normalize").as_bool() != Some(false),
            },
            &creds,
        );
        match signed {
            Ok(s) if s.signature == expected.trim() => passed.push(name),
            Ok(s) => failed.push(format!(
                "{name}: got {} want {}",
                s.signature,
                expected.trim()
            )),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "SigV4 suite: {} passed, {} skipped: {skipped:?}",
        passed.len(),
        skipped.len()
    );
    assert!(failed.is_empty(), "failing vectors: {failed:#?}");
    assert!(passed.len() >= 30, "only {} vectors ran", passed.len());
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The Invoke signature re-derived by hand from the SigV4 spec, including Lambda's double
/// encoding of the function ARN in the canonical URI.
#[test]
fn invoke_signature_matches_a_derivation_from_the_spec() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let creds = AwsCredentials::parse(
        format!("access_key: AKIDEXAMPLE\nsecret_key: {secret}\n").as_bytes(),
    )
    .unwrap();
    let body = br#"{"hello":"world"}"#;
    let payload = hex::encode(Sha256::digest(body));
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations?Qualifier=%24LATEST";
    let time: SystemTime = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let headers = sign_invoke(
        InvokeToSign {
            authority: "lambda.us-east-1.amazonaws.com",
            path_and_query: path,
            payload_sha256_hex: &payload,
            region: "us-east-1",
            time,
            extra_headers: &[],
        },
        &creds,
    )
    .unwrap();
    let auth = &headers
        .iter()
        .find(|(n, _)| *n == "authorization")
        .unwrap()
        .1;

    let canonical_request = format!(
        "POST\n\
         /2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Aecho/invocations\n\
         Qualifier=%24LATEST\n\
         host:lambda.us-east-1.amazonaws.com\n\
         x-amz-content-sha256:{payload}\n\
         x-amz-date:20150830T123600Z\n\
         \n\
         host;x-amz-content-sha256;x-amz-date\n\
         {payload}"
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/lambda/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), "20150830");
    let k_region = hmac(&k_date, "us-east-1");
    let k_service = hmac(&k_region, "lambda");
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex::encode(hmac(&k_signing, &string_to_sign));
    assert_eq!(
        auth,
        &format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
        )
    );
}
