//! The eventstream decoder choice, measured: the module's own incremental decoder
//! (`lambda::eventstream`) against AWS's (`aws-smithy-eventstream`'s `MessageFrameDecoder`),
//! over the same 4 MiB response made of PayloadChunk events, delivered as Envoy delivers a
//! response body (16 KiB slices that cut messages anywhere).
//!
//! Envoy's slices are only borrowed for the hook, so smithy's decoder, which wants a `Buf` it
//! can keep across calls, gets each slice copied into a `BytesMut` first (what the filter would
//! have to do). Both sides end with the payload bytes in one output buffer, as the filter
//! appends them to Envoy's body.
//!
//! Before measuring, the allocations per message of each are printed (counted with
//! `stats_alloc` over one whole response).
//!
//! Run: `cargo bench --bench eventstream` (about 20 s).

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::{Buf, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envoy_lambda::lambda::eventstream::{Decoder, invoke_complete, payload_chunk};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RESPONSE: usize = 4 * 1024 * 1024;
const SLICE: usize = 16 * 1024;

/// A response of `RESPONSE` payload bytes in messages of `payload` bytes, then InvokeComplete.
fn response(payload: usize) -> (Vec<u8>, usize) {
    let chunk: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
    let mut s = Vec::new();
    let n = RESPONSE / payload;
    for _ in 0..n {
        s.extend(payload_chunk(&chunk));
    }
    s.extend(invoke_complete("{}"));
    (s, n + 1)
}

fn ours(stream: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut d = Decoder::new();
    for slice in stream.chunks(SLICE) {
        d.feed(slice, &mut |m| {
            if m.str_header(":event-type") == Some("PayloadChunk") {
                out.extend_from_slice(m.payload);
            }
        })
        .expect("valid stream");
    }
    d.finish().expect("complete stream");
}

fn smithy(stream: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut d = MessageFrameDecoder::new();
    let mut buf = BytesMut::new();
    for slice in stream.chunks(SLICE) {
        buf.extend_from_slice(slice);
        while let DecodedFrame::Complete(m) = d.decode_frame(&mut buf).expect("valid stream") {
            let payload_chunk = m.headers().iter().any(|h| {
                h.name().as_str() == ":event-type"
                    && h.value().as_string().ok().map(|s| s.as_str()) == Some("PayloadChunk")
            });
            if payload_chunk {
                out.extend_from_slice(m.payload());
            }
        }
    }
    assert!(!buf.has_remaining(), "complete stream");
}

fn allocations(name: &str, payload: usize, f: fn(&[u8], &mut Vec<u8>)) {
    let (stream, messages) = response(payload);
    let mut out = Vec::with_capacity(RESPONSE * 2);
    f(&stream, &mut out); // warm up
    let region = Region::new(GLOBAL);
    f(&stream, &mut out);
    let stats = region.change();
    println!(
        "{name:>6} payload {payload:>6} B: {:.2} allocations/message, {:.1} bytes allocated/message",
        stats.allocations as f64 / messages as f64,
        stats.bytes_allocated as f64 / messages as f64
    );
}

fn bench(c: &mut Criterion) {
    for payload in [64, 1024, 16 * 1024] {
        allocations("ours", payload, ours);
        allocations("smithy", payload, smithy);
    }
    let mut g = c.benchmark_group("eventstream_decode");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    for payload in [64, 1024, 16 * 1024] {
        let (stream, _) = response(payload);
        let mut out = Vec::with_capacity(RESPONSE * 2);
        g.throughput(Throughput::Bytes(stream.len() as u64));
        g.bench_with_input(BenchmarkId::new("ours", payload), &stream, |b, s| {
            b.iter(|| ours(black_box(s), &mut out))
        });
        g.bench_with_input(BenchmarkId::new("smithy", payload), &stream, |b, s| {
            b.iter(|| smithy(black_box(s), &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
