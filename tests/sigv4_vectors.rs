//! The official AWS SigV4 test suite (shipped inside the `aws-sigv4` crate that cargo fetched
//! for this build) run through the module's own signer, stage by stage: the canonical request,
//! the string to sign, the signature (signing key and HMAC) and the authorization value are
//! each compared with the suite's file for that stage. Plus an independent re-derivation of a
//! Lambda Invoke signature straight from the SigV4 specification.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use envoy_lambda::credentials::AwsCredentials;
use envoy_lambda::sigv4::{LAMBDA_SERVICE, RequestToSign, sign, sign_stages};
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

/// `20150830T123600Z` or `2015-08-30T12:36:00Z` as a time.
fn parse_time(s: &str) -> SystemTime {
    let digits: Vec<u64> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u64::from(b - b'0'))
        .collect();
    let num = |r: std::ops::Range<usize>| digits[r].iter().fold(0, |n, d| n * 10 + d);
    let (y, m, d) = (num(0..4) as i64, num(4..6) as i64, num(6..8) as i64);
    // Days from civil (Howard Hinnant), independent of the crate's own calendar code.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe - 719_468) as u64;
    UNIX_EPOCH
        + Duration::from_secs(days * 86_400 + num(8..10) * 3600 + num(10..12) * 60 + num(12..14))
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The signing key by hand, from the specification.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    hmac(&k_service, "aws4_request")
}

/// Per stage: which vectors matched, and what did not.
#[derive(Default)]
struct Tally {
    passed: BTreeMap<&'static str, Vec<String>>,
    failed: Vec<String>,
    skipped: Vec<String>,
}

impl Tally {
    fn check(&mut self, stage: &'static str, case: &str, got: &str, want: &str) {
        if got == want {
            self.passed.entry(stage).or_default().push(case.to_owned());
        } else {
            self.failed.push(format!(
                "{case} / {stage}:\n--- got\n{got}\n--- want\n{want}"
            ));
        }
    }
}

/// What the suite's context says, with the defaults its context-less Lambda vector implies.
struct Context {
    access_key: String,
    secret_key: String,
    token: Option<String>,
    region: String,
    service: String,
    time: SystemTime,
    sign_body: bool,
    normalize: bool,
}

/// A suite file, without the final newline some of them have.
fn read(dir: &Path, file: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
}

#[test]
fn aws_sigv4_test_suite_stage_by_stage() {
    let dir = suite_dir();
    let mut tally = Tally::default();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case_dir in entries {
        let name = case_dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(request) = read(&case_dir, "request.txt") else {
            continue; // not a test case
        };
        let mut case = parse_request(&request);
        let Some(want_creq) = read(&case_dir, "header-canonical-request.txt") else {
            tally
                .skipped
                .push(format!("{name}: no header-signing vector"));
            continue;
        };
        if name == "get-space-normalized" {
            tally.skipped.push(format!(
                "{name}: expects `%20` in the path kept as is, i.e. single encoding (S3's \
                 mode); every other vector (get-utf8, double-url-encode) encodes the path \
                 once more, as Lambda needs, and that is the only mode the signer has"
            ));
            continue;
        }
        let mut stage_1_only = None;
        let ctx = match read(&case_dir, "context.json") {
            Some(json) => {
                let ctx: serde_json::Value = serde_json::from_str(&json).unwrap();
                if ctx["omit_session_token"].as_bool() == Some(true) {
                    tally.skipped.push(format!(
                        "{name}: omit_session_token (the token is added after signing); the \
                         signer always signs the token, as Lambda requires"
                    ));
                    continue;
                }
                let creds = &ctx["credentials"];
                Context {
                    access_key: creds["access_key_id"].as_str().unwrap().to_owned(),
                    secret_key: creds["secret_access_key"].as_str().unwrap().to_owned(),
                    token: creds["token"].as_str().map(str::to_owned),
                    region: ctx["region"].as_str().unwrap().to_owned(),
                    service: ctx["service"].as_str().unwrap().to_owned(),
                    time: parse_time(ctx["timestamp"].as_str().unwrap()),
                    sign_body: ctx["sign_body"].as_bool() == Some(true),
                    normalize: ctx["normalize"].as_bool() != Some(false),
                }
            }
            None => {
                // No context (two vectors the Rust SDK added). The signer sets X-Amz-Date, so
                // it leaves the request; the time is the expected canonical request's, the
                // access key, region and service are the expected Authorization's, and the
                // secret is the one all 38 contexts of the suite use.
                let Some(at) = case
                    .headers
                    .iter()
                    .position(|(k, _)| k.eq_ignore_ascii_case("x-amz-date"))
                else {
                    tally
                        .skipped
                        .push(format!("{name}: no context.json and no X-Amz-Date"));
                    continue;
                };
                let sent_date = case.headers.remove(at).1;
                let creq_date = want_creq
                    .lines()
                    .find_map(|l| l.strip_prefix("x-amz-date:"))
                    .expect("x-amz-date in the canonical request")
                    .to_owned();
                if creq_date != sent_date {
                    stage_1_only = Some(format!(
                        "{name}: stages 2-4 not checked: its canonical request is dated \
                         {creq_date}, its request and signature {sent_date}"
                    ));
                }
                let auth = read(&case_dir, "header-signed-request.txt")
                    .and_then(|r| {
                        r.lines()
                            .find_map(|l| l.split_once("Credential=").map(|(_, c)| c.to_owned()))
                    })
                    .expect("a signed request with a Credential");
                let credential: Vec<&str> = auth.split([',', '/']).collect();
                Context {
                    access_key: credential[0].to_owned(),
                    secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                    token: None,
                    region: credential[2].to_owned(),
                    service: credential[3].to_owned(),
                    time: parse_time(&creq_date),
                    sign_body: false,
                    normalize: true,
                }
            }
        };
        let mut yaml = format!(
            "access_key: {}\nsecret_key: {}\n",
            ctx.access_key, ctx.secret_key
        );
        if let Some(t) = &ctx.token {
            yaml.push_str(&format!("session_token: \"{t}\"\n"));
        }
        let creds = Arc::new(AwsCredentials::parse(yaml.as_bytes()).unwrap());
        let headers: Vec<(&str, &str)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let payload_hash = hex::encode(Sha256::digest(&case.body));
        let req = RequestToSign {
            method: &case.method,
            path_and_query: &case.uri,
            headers: &headers,
            payload_sha256_hex: &payload_hash,
            send_content_sha256: ctx.sign_body,
            region: &ctx.region,
            service: &ctx.service,
            time: ctx.time,
            normalize_path: ctx.normalize,
        };
        let stages = match sign_stages(&req, &creds) {
            Ok(s) => s,
            Err(e) => {
                tally.failed.push(format!("{name}: {e}"));
                continue;
            }
        };
        tally.check(
            "1 canonical request",
            &name,
            &stages.canonical_request,
            &want_creq,
        );
        if let Some(reason) = stage_1_only {
            tally.skipped.push(reason);
            continue;
        }
        if let Some(want) = read(&case_dir, "header-string-to-sign.txt") {
            tally.check("2 string to sign", &name, &stages.string_to_sign, &want);
        }
        let date = &stages.amz_date[..8];
        tally.check(
            "3a signing key",
            &name,
            &stages.signing_key_hex,
            &hex::encode(signing_key(
                &ctx.secret_key,
                date,
                &ctx.region,
                &ctx.service,
            )),
        );
        if let Some(want) = read(&case_dir, "header-signature.txt") {
            tally.check("3b signature", &name, &stages.signature_hex, want.trim());
        }
        let want_auth = read(&case_dir, "header-signed-request.txt").and_then(|r| {
            r.lines()
                .find_map(|l| l.strip_prefix("Authorization:"))
                .map(|v| v.trim().to_owned())
        });
        if let Some(want) = want_auth {
            tally.check("4 authorization", &name, &stages.authorization, &want);
        }
        // The request path's entry point gives the same answer as the stage-by-stage one.
        let signed = sign(&req, &creds).unwrap();
        assert_eq!(signed.authorization(), stages.authorization, "{name}");
    }
    for (stage, cases) in &tally.passed {
        eprintln!("SigV4 suite, stage {stage}: {} passed", cases.len());
    }
    eprintln!("skipped ({}):", tally.skipped.len());
    for s in &tally.skipped {
        eprintln!("  {s}");
    }
    assert!(
        tally.failed.is_empty(),
        "failing vectors:\n{}",
        tally.failed.join("\n\n")
    );
    // What the suite of aws-sigv4 1.6 has: 40 vectors, 2 skipped, one of them checked at
    // stage 1 only, one without a signature file.
    for (stage, at_least) in [
        ("1 canonical request", 38),
        ("2 string to sign", 37),
        ("3a signing key", 37),
        ("3b signature", 36),
        ("4 authorization", 37),
    ] {
        let n = tally.passed.get(stage).map_or(0, Vec::len);
        assert!(n >= at_least, "stage {stage}: only {n} vectors ran");
    }
}

/// The Invoke signature re-derived by hand from the SigV4 spec, including Lambda's double
/// encoding of the function ARN in the canonical URI.
#[test]
fn invoke_signature_matches_a_derivation_from_the_spec() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let creds = Arc::new(
        AwsCredentials::parse(
            format!("access_key: AKIDEXAMPLE\nsecret_key: {secret}\n").as_bytes(),
        )
        .unwrap(),
    );
    let body = br#"{"hello":"world"}"#;
    let payload = hex::encode(Sha256::digest(body));
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations?Qualifier=%24LATEST";
    let time: SystemTime = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    let req = RequestToSign {
        method: "POST",
        path_and_query: path,
        headers: &[("host", "lambda.us-east-1.amazonaws.com")],
        payload_sha256_hex: &payload,
        send_content_sha256: true,
        region: "us-east-1",
        service: LAMBDA_SERVICE,
        time,
        normalize_path: true,
    };
    let signed = sign(&req, &creds).unwrap();

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
    let k_signing = signing_key(secret, "20150830", "us-east-1", "lambda");
    let signature = hex::encode(hmac(&k_signing, &string_to_sign));
    assert_eq!(
        signed.authorization(),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
        )
    );
}
