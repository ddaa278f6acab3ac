//! The module's own hot path, without Envoy: what one request costs in payload hashing and
//! SigV4 signing, for the payload sizes of `bench/run.sh` (0 B, 1 KiB, 64 KiB, 1 MiB).
//!
//! - `sha256_floor`: plain `Sha256::digest` of the whole payload, the physical floor;
//! - `payload_hasher_16k`: `PayloadHasher` fed in 16 KiB chunks, as Envoy delivers the body,
//!   then finished to hex;
//! - `sign_invoke`: one Invoke signature over a precomputed payload hash by the module's signer
//!   (`sigv4::sign`: signing key cached per thread, canonical request streamed into SHA-256);
//! - `hash_and_sign`: hasher + signer, i.e. everything the module computes for one request.
//!
//! Run: `cargo bench --bench hot_path` (about a minute: 2 s of measurement per bench).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envoy_lambda::credentials::AwsCredentials;
use envoy_lambda::sigv4::{LAMBDA_SERVICE, PayloadHasher, RequestToSign, sign};
use sha2::{Digest, Sha256};

const SIZES: [(&str, usize); 4] = [
    ("0B", 0),
    ("1KiB", 1024),
    ("64KiB", 64 * 1024),
    ("1MiB", 1024 * 1024),
];
/// Envoy hands the body to filters in slices of at most 16 KiB (its buffer slice size).
const CHUNK: usize = 16 * 1024;
const AUTHORITY: &str = "lambda.us-east-1.amazonaws.com";
const PATH: &str = "/2015-03-31/functions/echo/invocations";
const REGION: &str = "us-east-1";

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

fn creds() -> AwsCredentials {
    AwsCredentials::parse(b"access_key: AKID\nsecret_key: s\n").expect("valid credentials")
}

fn hash_chunked(body: &[u8]) -> envoy_lambda::sigv4::PayloadDigest {
    let mut h = PayloadHasher::new();
    for chunk in body.chunks(CHUNK) {
        h.update(chunk);
    }
    h.finish()
}

/// `host` and one Invoke option: the bench's input since it began, so numbers compare across
/// versions (the filter itself leaves Lambda's default `RequestResponse` out).
const SIGNED_HEADERS: &[(&str, &str)] = &[
    ("host", AUTHORITY),
    ("x-amz-invocation-type", "RequestResponse"),
];

fn to_sign(hash_hex: &str, time: SystemTime) -> RequestToSign<'_> {
    RequestToSign {
        method: "POST",
        path_and_query: PATH,
        headers: SIGNED_HEADERS,
        payload_sha256_hex: hash_hex,
        send_content_sha256: true,
        region: REGION,
        service: LAMBDA_SERVICE,
        time,
        normalize_path: true,
    }
}

fn sign_invoke(hash_hex: &str, time: SystemTime, creds: &Arc<AwsCredentials>) -> usize {
    let signed = sign(&to_sign(hash_hex, time), creds).expect("signing succeeds");
    signed.authorization().len()
}

fn hot_path(c: &mut Criterion) {
    let shared = Arc::new(creds());
    let time = SystemTime::now();
    let bodies: Vec<(&str, Vec<u8>)> = SIZES.iter().map(|&(n, s)| (n, payload(s))).collect();

    let mut g = c.benchmark_group("sha256_floor");
    for (name, body) in &bodies {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| Sha256::digest(black_box(body.as_slice())))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("payload_hasher_16k");
    for (name, body) in &bodies {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| hash_chunked(black_box(body.as_slice())))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sign_invoke");
    for (name, body) in &bodies {
        let digest = hash_chunked(body);
        g.bench_with_input(BenchmarkId::from_parameter(name), &digest, |b, digest| {
            b.iter(|| sign_invoke(black_box(digest.hex()), time, &shared))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("hash_and_sign");
    for (name, body) in &bodies {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| {
                let digest = hash_chunked(black_box(body.as_slice()));
                sign_invoke(digest.hex(), time, &shared)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_path
}
criterion_main!(benches);
