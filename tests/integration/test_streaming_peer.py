"""Self-tests of the streaming Lambda peer (no Envoy, no module): its bytes are what the AWS
event-stream spec says, as judged by botocore's independent decoder and by boto3's own
InvokeWithResponseStream client; its signature check refuses what AWS refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
import subprocess
import sys
import time
import tracemalloc
import types
import uuid
from pathlib import Path

import boto3
import botocore.config
import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer, ParserError
from botocore.exceptions import ClientError, EventStreamError

import eventstream as es
from streaming_fixtures import call_peer, signed_headers, streaming_lambda  # noqa: F401
from streaming_lambda import StreamingLambda, check_sigv4, AuthError, pattern, pattern_sha256

import chunked_client

CHUNK_HEADERS = {":event-type": "PayloadChunk", ":content-type": "application/octet-stream",
                 ":message-type": "event"}
COMPLETE_HEADERS = {":event-type": "InvokeComplete", ":content-type": "application/json",
                    ":message-type": "event"}
REJECTED = (ParserError, ValueError, KeyError, struct.error)


def decode(data: bytes, splits: list[int] | None = None) -> list[tuple[dict, bytes]]:
    """botocore's decoder fed `data` cut at `splits`; raises if bytes are left over."""
    buf, out, last = EventStreamBuffer(), [], 0
    for cut in [*(splits or []), len(data)]:
        buf.add_data(data[last:cut])
        last = cut
        out += [(m.headers, m.payload) for m in buf]
    assert buf._data == b"", f"{len(buf._data)} bytes left undecoded"
    return out


def client(lam: StreamingLambda, secret: str | None = None, key: str | None = None):
    return boto3.client(
        "lambda", region_name=lam.region, endpoint_url=lam.url,
        aws_access_key_id=key or lam.access_key, aws_secret_access_key=secret or lam.secret_key,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=20))


def events(lam: StreamingLambda, **kw) -> list[dict]:
    r = client(lam).invoke_with_response_stream(FunctionName=kw.pop("FunctionName", "fn"),
                                                Payload=kw.pop("Payload", b"{}"), **kw)
    assert r["StatusCode"] == 200 and r["ResponseStreamContentType"] == es_type()
    return list(r["EventStream"])


def es_type() -> str:
    return "application/vnd.amazon.eventstream"


# -- the encoder, judged by botocore ----------------------------------------------------
def test_every_header_type_decodes_with_botocore():
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = [es.Header("t", es.BOOL_TRUE), es.Header("f", es.BOOL_FALSE),
               es.Header("b", es.BYTE, -7), es.Header("s", es.SHORT, -30000),
               es.Header("i", es.INTEGER, -2_000_000_000), es.Header("l", es.LONG, -(1 << 62)),
               es.Header("ba", es.BYTES, b"\x00\xff"), es.Header("str", es.STRING, "h\u00e9"),
               es.Header("ts", es.TIMESTAMP, 1_700_000_000_123), es.Header("u", es.UUID, u)]
    [(got, payload)] = decode(es.encode_message(headers, b"\x00payload\xff"))
    assert got == {"t": True, "f": False, "b": -7, "s": -30000, "i": -2_000_000_000,
                   "l": -(1 << 62), "ba": b"\x00\xff", "str": "h\u00e9",
                   "ts": 1_700_000_000_123, "u": u.bytes}
    assert payload == b"\x00payload\xff"


def _sample_stream() -> tuple[bytes, list[tuple[dict, bytes]]]:
    payloads = [b"", b"a", b"hello world", bytes(range(256)) * 20, b"\x00" * 8]
    frames = [es.payload_chunk(p) for p in payloads]
    frames.append(es.invoke_complete("Unhandled", '{"errorMessage":"boom"}', "bG9nIHRhaWw="))
    want = [(CHUNK_HEADERS, p) for p in payloads]
    want.append((COMPLETE_HEADERS, b'{"ErrorCode":"Unhandled","ErrorDetails":'
                                   b'"{\\"errorMessage\\":\\"boom\\"}","LogResult":"bG9nIHRhaWw="}'))
    return b"".join(frames), want


def test_events_decode_the_same_in_any_split():
    data, want = _sample_stream()
    assert decode(data) == want
    for cut in range(1, len(data)):  # every two-piece split
        assert decode(data, [cut]) == want, cut
    rng = random.Random(11)
    for _ in range(300):  # many-piece splits, single bytes included
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(2, 40)))
        assert decode(data, cuts) == want, cuts
    assert decode(data, list(range(1, 200))) == want


@pytest.mark.parametrize("how", ["prelude_crc", "message_crc", "payload", "total_length",
                                 "headers_length", "header_type"])
def test_damaged_frames_are_rejected_by_botocore(how):
    good = es.payload_chunk(b"hello world")
    bad = es.corrupt(good, how)
    assert bad != good
    buf = EventStreamBuffer()
    buf.add_data(bad + es.invoke_complete())
    with pytest.raises(ChecksumMismatch if "crc" in how or how == "payload" else REJECTED):
        list(buf)


def test_a_truncated_frame_gives_no_event():
    tail = es.payload_chunk(b"never whole")
    buf = EventStreamBuffer()
    buf.add_data(es.payload_chunk(b"whole") + tail[:-3])
    assert [m.payload for m in buf] == [b"whole"]
    assert len(buf._data) == len(tail) - 3  # waits for bytes that never come


def test_http_prelude_is_json_then_eight_nuls():
    p = es.http_prelude(201, {"content-type": "text/plain"}, ["a=1"])
    doc, sep, rest = p.partition(es.HTTP_PRELUDE_DELIMITER)
    assert json.loads(doc) == {"statusCode": 201, "headers": {"content-type": "text/plain"},
                               "cookies": ["a=1"]}
    assert sep == b"\x00" * 8 and rest == b""


def test_pattern_is_position_dependent():
    assert pattern(0, 300)[251:] == pattern(0, 49)
    assert pattern(10, 5) == bytes([10, 11, 12, 13, 14])
    assert hashlib.sha256(pattern(0, 3_000_000)).hexdigest() == pattern_sha256(3_000_000, 65536)


# -- the peer over HTTP, judged by boto3 --------------------------------------------------
def test_scripted_events_reach_boto3(streaming_lambda):
    lam = streaming_lambda
    lam.script([{"chunk": "hello "}, {"chunk": "world", "split": 5},
                {"complete": {"LogResult": base64.b64encode(b"START\nEND\n").decode()}}])
    got = events(lam, LogType="Tail", Qualifier="live")
    assert got == [{"PayloadChunk": {"Payload": b"hello "}}, {"PayloadChunk": {"Payload": b"world"}},
                   {"InvokeComplete": {"LogResult": base64.b64encode(b"START\nEND\n").decode()}}]
    rec = lam.requests[-1]
    assert rec.auth == "ok" and rec.query() == {"Qualifier": "live"}
    assert rec.header("x-amz-log-type") == "Tail"
    assert len(rec.writes) == 7  # 1 + 5 pieces + 1


def test_mid_stream_function_error_reaches_boto3(streaming_lambda):
    streaming_lambda.script([{"chunk": "partial"},
                             {"complete": {"ErrorCode": "Unhandled",
                                           "ErrorDetails": '{"errorMessage":"boom"}'}}])
    assert events(streaming_lambda) == [
        {"PayloadChunk": {"Payload": b"partial"}},
        {"InvokeComplete": {"ErrorCode": "Unhandled", "ErrorDetails": '{"errorMessage":"boom"}'}}]


def test_exception_and_error_messages_are_errors_for_boto3(streaming_lambda):
    streaming_lambda.script([{"chunk": "x"}, {"exception": "ServiceException",
                                              "message": "stream broke"}])
    with pytest.raises(EventStreamError):  # not a modelled event exception: code unknown
        events(streaming_lambda)
    streaming_lambda.script([{"chunk": "x"}, {"error": "InternalFailure", "message": "oops"}])
    with pytest.raises(EventStreamError) as ei:
        events(streaming_lambda)
    assert ei.value.response["Error"] == {"Code": "InternalFailure", "Message": "oops"}


def test_default_answer_echoes_the_payload(streaming_lambda):
    assert events(streaming_lambda, Payload=b'{"q":1}') == [
        {"PayloadChunk": {"Payload": b'{"q":1}'}}, {"InvokeComplete": {}}]
    r = client(streaming_lambda).invoke(FunctionName="fn", Payload=b'{"q":2}')
    assert r["StatusCode"] == 200 and r["Payload"].read() == b'{"q":2}'
    assert [x.operation for x in streaming_lambda.requests] == ["InvokeWithResponseStream",
                                                                "Invoke"]


def test_buffered_invoke_plays_a_script_at_once(streaming_lambda):
    streaming_lambda.script([{"chunk": "a"}, {"sleep": 0.3}, {"chunk": "b"}, {"complete": {}}],
                            operation="invoke")
    r = call_peer(streaming_lambda, stream=False)
    assert r.status == 200 and r.body == b"ab" and r.first_chunk_after >= 0.3
    assert r.header("content-type") == "application/json"


def test_stream_content_type_is_scripted(streaming_lambda):
    streaming_lambda.script([{"chunk": "x"}, {"complete": {}}], content_type="text/csv")
    r = client(streaming_lambda).invoke_with_response_stream(FunctionName="fn", Payload=b"{}")
    assert r["ResponseStreamContentType"] == "text/csv"
    assert list(r["EventStream"])[0] == {"PayloadChunk": {"Payload": b"x"}}


def test_http_prelude_split_over_frames(streaming_lambda):
    prelude = {"statusCode": 201, "headers": {"content-type": "text/plain"}, "cookies": ["a=1"]}
    raw = es.http_prelude(201, prelude["headers"], prelude["cookies"])
    cut_in_nuls = len(raw) - 5
    streaming_lambda.script([{"prelude": prelude, "body": "body!", "cuts": [7, cut_in_nuls]},
                             {"chunk": " more"}, {"complete": {}}])
    got = events(streaming_lambda)
    chunks = [e["PayloadChunk"]["Payload"] for e in got[:-1]]
    assert chunks == [raw[:7], raw[7:cut_in_nuls], raw[cut_in_nuls:] + b"body!", b" more"]
    assert got[-1] == {"InvokeComplete": {}}


@pytest.mark.parametrize("status,error_type", [(429, "TooManyRequestsException"),
                                               (404, "ResourceNotFoundException"),
                                               (500, "ServiceException"),
                                               (413, "RequestTooLargeException")])
def test_pre_stream_errors_are_lambdas_json(streaming_lambda, status, error_type):
    streaming_lambda.script(status=status, retry_after="3" if status == 429 else None)
    with pytest.raises(ClientError) as ei:
        events(streaming_lambda)
    resp = ei.value.response
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == status
    assert resp["Error"]["Code"] == error_type
    hdrs = resp["ResponseMetadata"]["HTTPHeaders"]
    assert hdrs["x-amzn-errortype"] == error_type and hdrs["x-amzn-requestid"]
    assert hdrs["content-type"] == "application/json"
    if status == 429:
        assert hdrs["retry-after"] == "3"


# -- the signature check ------------------------------------------------------------------
def test_signature_is_checked(streaming_lambda):
    lam = streaming_lambda
    with pytest.raises(ClientError) as ei:
        client(lam, secret="wrong").invoke_with_response_stream(FunctionName="fn", Payload=b"{}")
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as ei:
        client(lam, key="AKIAUNKNOWN000000000").invoke_with_response_stream(FunctionName="fn",
                                                                            Payload=b"{}")
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
    r = chunked_client.request(lam.url + "/2021-11-15/functions/fn/response-streaming-invocations",
                               body=b"{}")
    assert r.status == 403 and r.header("x-amzn-errortype") == "MissingAuthenticationTokenException"
    assert [x.status for x in lam.requests] == [403, 403, 403]
    assert lam.requests[0].auth.startswith("InvalidSignatureException")


def test_content_hash_must_match_the_body(streaming_lambda):
    lam = streaming_lambda
    url = lam.url + "/2021-11-15/functions/fn/response-streaming-invocations"
    # signed correctly over a hash that is not the body's: moto would let this through
    h = signed_headers(url, b"{}", lam.access_key, lam.secret_key,
                       content_sha256=hashlib.sha256(b'{"other":1}').hexdigest())
    h.pop("Content-Length", None)
    r = chunked_client.request(url, body=b"{}", headers=h)
    assert r.status == 403 and "x-amz-content-sha256" in json.loads(r.body)["message"]
    good = call_peer(lam, body=b"{}")
    assert good.status == 200 and good.complete


def test_tampering_after_signing_is_refused(streaming_lambda):
    lam = streaming_lambda
    url = lam.url + "/2021-11-15/functions/fn/response-streaming-invocations"
    h = signed_headers(url, b"{}", lam.access_key, lam.secret_key,
                       extra={"X-Amz-Log-Type": "None"})
    h.pop("Content-Length", None)
    h["X-Amz-Log-Type"] = "Tail"
    assert chunked_client.request(url, body=b"{}", headers=h).status == 403
    assert chunked_client.request(url + "?Qualifier=live", body=b"{}",
                                  headers={**h, "X-Amz-Log-Type": "None"}).status == 403


def test_check_sigv4_scope_date_and_token():
    body = b"{}"
    url = "http://127.0.0.1:1/2021-11-15/functions/fn/response-streaming-invocations"
    keys = {"AKIATOKEN0000000000A": ("s", "tok")}
    h = signed_headers(url, body, "AKIATOKEN0000000000A", "s", session_token="tok")
    path = url[len("http://127.0.0.1:1"):]
    hl = [(k.lower(), v) for k, v in h.items()] + [("host", "127.0.0.1:1")]
    check_sigv4("POST", path, hl, body, keys, "us-east-1")
    for kw, code in [({"region": "eu-west-1"}, "InvalidSignatureException"),
                     ({"now": time.time() + 900}, "InvalidSignatureException")]:
        with pytest.raises(AuthError) as ei:
            check_sigv4("POST", path, hl, body, keys, kw.get("region", "us-east-1"),
                        kw.get("now"))
        assert ei.value.error_type == code
    no_token = [(k, v) for k, v in hl if k != "x-amz-security-token"]
    with pytest.raises(AuthError):  # signed list names the token, the token is gone
        check_sigv4("POST", path, no_token, body, keys, "us-east-1")
    h2 = signed_headers(url, body, "AKIATOKEN0000000000A", "s")  # no token at all
    with pytest.raises(AuthError) as ei:
        check_sigv4("POST", path, [(k.lower(), v) for k, v in h2.items()] +
                    [("host", "127.0.0.1:1")], body, keys, "us-east-1")
    assert ei.value.error_type == "UnrecognizedClientException"


# -- write boundaries, damage, truncation, seen on the raw bytes -----------------------------
def test_splits_and_batches_are_separate_and_joint_writes(streaming_lambda):
    lam = streaming_lambda
    f1, f2, f3 = (es.payload_chunk(b"x" * n) for n in (10, 20, 30))
    lam.script([{"chunk": "x" * 10, "split": [3, 7]},  # one frame over three writes
                {"batch": [{"chunk": "x" * 20}, {"chunk": "x" * 30}, {"complete": {}}]},
                {"chunk": "x" * 20, "split": len(f2), "gap": 0.002}])  # byte by byte
    r = call_peer(lam, timeout=20)
    assert r.status == 200 and r.complete and r.header("content-type") == es_type()
    assert r.chunk_sizes == [3, 7, len(f1) - 10,
                             len(f2) + len(f3) + len(es.invoke_complete())] + [1] * len(f2)
    assert decode(r.body) == [(CHUNK_HEADERS, b"x" * 10), (CHUNK_HEADERS, b"x" * 20),
                              (CHUNK_HEADERS, b"x" * 30), (COMPLETE_HEADERS, b"{}"),
                              (CHUNK_HEADERS, b"x" * 20)]


@pytest.mark.parametrize("how", ["prelude_crc", "message_crc", "total_length"])
def test_corrupt_frame_in_the_stream(streaming_lambda, how):
    streaming_lambda.script([{"chunk": "ok"}, {"chunk": "bad", "corrupt": how},
                             {"complete": {}}])
    r = call_peer(streaming_lambda)
    assert r.status == 200 and r.complete
    buf = EventStreamBuffer()
    buf.add_data(r.body)
    assert next(buf).payload == b"ok"
    with pytest.raises(REJECTED):
        next(buf)


def test_truncated_frame_then_close(streaming_lambda):
    frame = es.payload_chunk(b"cut short")
    streaming_lambda.script([{"chunk": "first"}, {"chunk": "cut short", "truncate": 9},
                             {"close": True}])
    r = call_peer(streaming_lambda)
    assert r.status == 200 and not r.complete and r.cut == "eof"
    assert r.chunk_sizes == [len(es.payload_chunk(b"first")), 9]
    buf = EventStreamBuffer()
    buf.add_data(r.body)
    assert [m.payload for m in buf] == [b"first"] and buf._data == frame[:9]
    assert streaming_lambda.requests[-1].outcome == "closed"


def test_held_back_rest_arrives_later(streaming_lambda):
    streaming_lambda.script([{"chunk": "first"}, {"sleep": 0.6}, {"chunk": "rest"},
                             {"complete": {}}])
    r = call_peer(streaming_lambda)
    assert r.complete
    assert r.first_chunk_after < 0.3 and r.last_chunk_after >= 0.6, r.chunks


def test_large_generated_body_is_never_held(streaming_lambda):
    total = 100 << 20
    streaming_lambda.script([{"generate": total, "frame_size": 65536, "frames_per_write": 4},
                             {"complete": {}}])
    h, seen, frames = hashlib.sha256(), [0], [0]
    buf = EventStreamBuffer()

    def sink(data: bytes) -> None:
        buf.add_data(data)
        for m in buf:
            if m.headers[":event-type"] == "PayloadChunk":
                assert m.headers == CHUNK_HEADERS
                h.update(m.payload)
                seen[0] += len(m.payload)
                frames[0] += 1

    tracemalloc.start()
    try:
        r = call_peer(streaming_lambda, sink=sink, timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status == 200 and r.complete
    assert seen[0] == total and frames[0] == total // 65536
    assert h.hexdigest() == pattern_sha256(total)
    # peer and client share this process: neither kept the body (100 MB) around
    print(f"\n100 MiB through the peer: peak traced allocation {peak / 1e6:.1f} MB")
    assert peak < 8 << 20, f"peak traced allocation {peak / 1e6:.1f} MB"


# -- control API and CLI ----------------------------------------------------------------------
def test_control_api_over_http(streaming_lambda):
    lam = streaming_lambda
    script = {"steps": [{"chunk": "via http"}, {"complete": {"ErrorCode": "Unhandled"}}],
              "function": "other"}
    r = chunked_client.request(lam.url + "/_peer/script", body=json.dumps(script).encode())
    assert r.status == 200
    assert events(lam) == [{"PayloadChunk": {"Payload": b"{}"}}, {"InvokeComplete": {}}]
    assert events(lam, FunctionName="other") == [
        {"PayloadChunk": {"Payload": b"via http"}}, {"InvokeComplete": {"ErrorCode": "Unhandled"}}]
    got = json.loads(chunked_client.request(lam.url + "/_peer/requests", method="GET").body)
    assert [g["function"] for g in got] == ["fn", "other"] and got[1]["auth"] == "ok"
    bad = chunked_client.request(lam.url + "/_peer/script", body=b'{"stepz": []}')
    assert bad.status == 400


def test_cli_serves_ticks_and_stops_on_sigterm():
    script = Path(__file__).resolve().parents[1] / "peers" / "streaming_lambda.py"
    p = subprocess.Popen([sys.executable, str(script), "--port", "0", "--access-key",
                          "AKIACLI0000000000000", "--secret-key", "cli"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = json.loads(p.stdout.readline())
        lam = types.SimpleNamespace(url=info["url"], region="us-east-1", session_token=None,
                                    access_key="AKIACLI0000000000000", secret_key="cli")
        r = call_peer(lam, function="ticks")
        assert r.complete and decode(r.body)[0] == (CHUNK_HEADERS, b"tick 1\n")
        assert r.last_chunk_after - r.first_chunk_after >= 2.0
        p.terminate()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
