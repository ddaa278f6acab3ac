"""Response streaming (issue 11) through a real Envoy: `invoke_mode: response_stream` sends
InvokeWithResponseStream to the streaming Lambda peer (tests/peers/streaming_lambda.py, whose
frames test_streaming_peer.py checks against botocore) and forwards the PayloadChunks as they come.

HTTP/1.1 is read on the socket (chunked_client: each chunk's arrival time, whether the zero
chunk came); HTTP/2 through curl --http2-prior-knowledge -N. One Envoy serves the module's tests
(the peer is cleared before each); the timings and Envoy's memory are printed (pytest -s).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import time
from pathlib import Path

import pytest

import chunked_client
import configs
import envoy_proc
import eventstream as es
from streaming_fixtures import streaming_lambda  # noqa: F401
from streaming_lambda import HTTP_INTEGRATION_TYPE, StreamingLambda, pattern_sha256

pytestmark = pytest.mark.usefixtures("module_so")

# x-test-id names the request: the filter rewrites :path to Lambda's.
ACCESS = ("ACCESS %REQ(X-TEST-ID)% %RESPONSE_CODE% flags=%RESPONSE_FLAGS% "
          "details=%RESPONSE_CODE_DETAILS% md=%DYNAMIC_METADATA(envoy_lambda)%")

# Counter names (stream-core's commit 36fe243), under metrics_namespace envoy_lambda; metadata
# keys in namespace envoy_lambda: stream_error (function_error | framing_error),
# stream_error_code, stream_error_details, log_result.
STREAMED = "envoy_lambda.streamed_invocations"
STREAMED_BYTES = "envoy_lambda.streamed_bytes"
STREAM_FUNCTION_ERRORS = "envoy_lambda.stream_function_errors"
STREAM_FRAMING_ERRORS = "envoy_lambda.stream_framing_errors"

STREAM = {"invoke_mode": "response_stream"}
ROUTES = [
    ("/stream-live", configs.module_per_route("stream", "streamer-live", **STREAM)),
    ("/stream", configs.module_per_route("stream", "streamer", **STREAM)),
    ("/unwrap", configs.module_per_route("stream", "streamer", response_format="unwrap",
                                         **STREAM)),
    ("/tail", configs.module_per_route("stream", "streamer", log_type="tail", **STREAM)),
    ("/buffered-unwrap", configs.module_per_route("stream", "streamer",
                                                  response_format="unwrap")),
    ("/buffered", configs.module_per_route("stream", "streamer")),
]  # prefixes: the longer first
FUNCTIONS = [configs.fn("streamer", "streamer"), configs.fn("streamer-live", "streamer", "live")]


class Envoy:
    """One Envoy in front of one peer, for the whole module."""

    def __init__(self, proc: envoy_proc.EnvoyProcess, lam: StreamingLambda, access_log: Path):
        self.proc, self.lam, self.access_log = proc, lam, access_log

    @property
    def url(self) -> str:
        return self.proc.url

    def access_line(self, test_id: str, timeout: float = 8.0) -> str:
        """The access log line of request `test_id`."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [ln for ln in (self.access_log.read_text() if self.access_log.exists()
                                   else "").splitlines() if ln.startswith(f"ACCESS {test_id} ")]
            if lines or time.monotonic() > deadline:
                assert lines, f"no access log line for {test_id}"
                return lines[-1]
            time.sleep(0.1)

    def metadata(self, r) -> dict:
        """The envoy_lambda dynamic metadata of response `r`'s request, from the access log."""
        md = self.access_line(r.test_id).split(" md=", 1)[1]
        return {} if md == "-" else json.loads(md)

    def counter(self, name: str) -> int:
        return self.proc.counter(name)


@pytest.fixture(scope="module")
def envoy(envoy_bin, module_so, tmp_path_factory):
    work = tmp_path_factory.mktemp("streaming")
    with StreamingLambda() as lam:
        cfg = configs.streaming_config(lam.port, lam.access_key, lam.secret_key, FUNCTIONS, ROUTES)
        log = work / "access.log"
        cfg = configs.with_file_access_log(cfg, log, ACCESS)
        # the access log file is flushed every 50 ms, not every 10 s
        proc = envoy_proc.EnvoyProcess(envoy_bin, cfg, work / "envoy", name="streaming",
                                       extra_args=["--file-flush-interval-msec", "50"])
        proc.start()
        try:
            yield Envoy(proc, lam, log)
        finally:
            proc.stop()
            print(f"\n===== streaming envoy log tail =====\n{proc.log_tail(40)}")


@pytest.fixture
def env(envoy):
    envoy.lam.clear()
    return envoy


_ids = itertools.count(1)


def post(env: Envoy, path: str, body: bytes = b"{}", **kw) -> chunked_client.Response:
    test_id = f"t{next(_ids)}"
    r = chunked_client.request(env.url + path, body=body, headers={
        "Content-Type": "application/json", "X-Test-Id": test_id}, **kw)
    r.test_id = test_id  # type: ignore[attr-defined]
    return r


def h2(env: Envoy, path: str, body: bytes = b"{}", **kw) -> chunked_client.CurlResult:
    test_id = f"t{next(_ids)}"
    r = chunked_client.curl_h2(env.url + path, body, headers={"X-Test-Id": test_id}, **kw)
    r.test_id = test_id  # type: ignore[attr-defined]
    return r


def vm(proc: envoy_proc.EnvoyProcess) -> dict[str, int]:
    """VmRSS / VmHWM of the Envoy process in KiB, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


HOLD = 1.0
HELD_SCRIPT = [{"chunk": "first chunk\n"}, {"sleep": HOLD}, {"chunk": "the rest\n"},
               {"complete": {}}]


# -- time to first byte ---------------------------------------------------------------------
def test_first_chunk_arrives_while_the_function_runs_http1(env):
    env.lam.script(HELD_SCRIPT)
    r = post(env, "/stream", b'{"q":1}')
    assert r.status == 200, r.body[:300]
    assert r.complete and r.body == b"first chunk\nthe rest\n"
    assert r.header("content-type") == "application/octet-stream"
    assert r.header("x-amzn-requestid")
    rec = env.lam.requests[-1]
    print(f"\nTTFB http/1.1: first chunk after {r.first_chunk_after * 1000:.0f} ms, "
          f"rest after {r.last_chunk_after * 1000:.0f} ms (peer held it {HOLD} s)")
    assert r.first_chunk_after < HOLD / 2, r.chunks
    assert r.last_chunk_after >= HOLD
    # the first bytes left Envoy before the peer had written the rest
    assert r.chunks[0][0] < rec.writes[1][0], (r.chunks, rec.writes)


def test_first_chunk_arrives_while_the_function_runs_http2(env):
    env.lam.script(HELD_SCRIPT)
    r = h2(env, "/stream", b'{"q":1}')
    assert r.rc == 0 and r.status == 200, (r.rc, r.stderr)
    assert r.body == b"first chunk\nthe rest\n"
    print(f"\nTTFB http/2 (curl, start-up included): first chunk after "
          f"{r.first_chunk_after * 1000:.0f} ms, rest after {r.last_chunk_after * 1000:.0f} ms")
    assert r.last_chunk_after - r.first_chunk_after >= HOLD * 0.8, r.chunks
    assert r.chunks[0][0] < env.lam.requests[-1].writes[1][0]


def test_buffered_invoke_of_the_same_function_waits_for_the_end(env):
    """The comparison: the same function through buffered Invoke sends nothing until it ends."""
    env.lam.script(HELD_SCRIPT, operation="invoke")
    r = post(env, "/buffered", b'{"q":1}')
    assert r.status == 200 and r.body == b"first chunk\nthe rest\n"
    print(f"\nTTFB buffered http/1.1: first byte after {r.first_chunk_after * 1000:.0f} ms")
    assert r.first_chunk_after >= HOLD


# -- the request Lambda gets ---------------------------------------------------------------
def test_request_is_signed_invoke_with_response_stream(env):
    body = json.dumps({"order": 7}).encode()
    assert post(env, "/stream-live", body).complete
    assert post(env, "/tail", body).complete
    live, tail = env.lam.wait_for(2)
    for rec in (live, tail):
        assert rec.auth == "ok", rec.auth  # botocore recomputed the signature
        assert rec.operation == "InvokeWithResponseStream" and rec.function == "streamer"
        assert rec.body == body
        # RequestResponse is Lambda's default: buffered Invoke leaves it out too
        assert rec.header("x-amz-invocation-type") in (None, "RequestResponse")
        assert rec.header("x-amz-content-sha256") == hashlib.sha256(body).hexdigest()
    assert live.query() == {"Qualifier": "live"}
    assert tail.header("x-amz-log-type") == "Tail"
    assert "x-amz-log-type" in tail.header("authorization")


def test_wrong_secret_is_refused_by_the_peer(start_envoy, streaming_lambda):
    lam = streaming_lambda
    cfg = configs.streaming_config(lam.port, lam.access_key, "not-the-secret", FUNCTIONS, ROUTES)
    proc = start_envoy(cfg, name="stream-wrong-key")
    r = chunked_client.request(proc.url + "/stream", body=b"{}")
    assert r.status == 403, r.body[:300]
    assert json.loads(r.body)["error"] == "lambda_access_denied"
    assert lam.requests[-1].auth.startswith("InvalidSignatureException")


# -- 100 MB, Envoy's memory ----------------------------------------------------------------
def test_100_mb_stream_keeps_envoy_memory_flat(env):
    total = 100 << 20
    env.lam.script([{"generate": 16 << 20}, {"complete": {}}])  # warm-up: buffers, pools
    assert post(env, "/stream", timeout=60, sink=lambda _: None).complete
    before = vm(env.proc)
    env.lam.script([{"generate": total, "frame_size": 65536}, {"complete": {}}])
    h = hashlib.sha256()
    t0 = time.monotonic()
    r = post(env, "/stream", timeout=90, sink=h.update)
    took = time.monotonic() - t0
    after = vm(env.proc)
    assert r.status == 200 and r.complete, (r.status, r.cut, r.body_len)
    assert r.body_len == total and h.hexdigest() == pattern_sha256(total)
    growth_kib = after["VmHWM"] - before["VmHWM"]
    print(f"\n100 MiB streamed in {took:.1f} s ({total / took / 1e6:.0f} MB/s, loaded 2-core "
          f"machine); Envoy VmRSS {before['VmRSS']} -> {after['VmRSS']} KiB, VmHWM "
          f"{before['VmHWM']} -> {after['VmHWM']} KiB (peak growth {growth_kib} KiB)")
    assert growth_kib < 8 * 1024, (before, after)


def test_a_stalled_client_holds_the_function_back_not_envoy_memory(env):
    """The client stops reading for 2 s: Envoy's flow control must stop reading Lambda's
    stream (the peer's writes block) instead of buffering what keeps coming."""
    total, stall_at, stall = 100 << 20, 4 << 20, 2.0
    env.lam.script([{"generate": 2 << 20}, {"complete": {}}])  # warm-up
    assert post(env, "/stream", timeout=60, sink=lambda _: None).complete
    before = vm(env.proc)
    env.lam.script([{"generate": total, "frame_size": 65536}, {"complete": {}}])
    seen, stalled = [0], {}

    def slow_sink(data: bytes) -> None:
        seen[0] += len(data)
        if seen[0] >= stall_at and not stalled:
            rec = env.lam.requests[-1]
            start = rec.bytes_sent
            time.sleep(stall)
            stalled.update(sent_during=rec.bytes_sent - start, hwm=vm(env.proc)["VmHWM"])

    r = post(env, "/stream", timeout=90, sink=slow_sink)
    assert r.complete and r.body_len == total, (r.cut, r.body_len)
    growth_kib = stalled["hwm"] - before["VmHWM"]
    print(f"\nstalled client: the peer wrote {stalled['sent_during'] / 2**20:.1f} MiB more during "
          f"the {stall} s stall; Envoy VmHWM grew {growth_kib} KiB")
    assert growth_kib < 8 * 1024, (before, stalled)
    # the peer was held back: socket buffers (loopback autotuning lets them grow to tens of
    # MiB) took some, Envoy's memory did not take the rest
    assert stalled["sent_during"] < total - stall_at - (8 << 20), stalled


# -- the HTTP prelude (unwrap) ------------------------------------------------------------------
PRELUDE = {"statusCode": 201,
           "headers": {"content-type": "text/event-stream", "x-order": "7"},
           "cookies": ["a=1; Path=/", "b=2"]}


def prelude_script(body_pieces: list[str]) -> list[dict]:
    raw = es.http_prelude(201, PRELUDE["headers"], PRELUDE["cookies"])
    # three frames, the last cut falls inside the eight NULs; the body starts in that frame
    steps = [{"prelude": PRELUDE, "body": body_pieces[0], "cuts": [9, len(raw) - 3]}]
    steps += [{"chunk": p} for p in body_pieces[1:]]
    return steps + [{"complete": {}}]


def test_prelude_sets_status_headers_and_cookies_http1(env):
    env.lam.script(prelude_script(["data: 1\n\n", "data: 2\n\n"]),
                   content_type=HTTP_INTEGRATION_TYPE)
    r = post(env, "/unwrap")
    assert r.status == 201, r.body[:300]
    assert r.complete and r.body == b"data: 1\n\ndata: 2\n\n"
    assert r.header("content-type") == "text/event-stream"
    assert r.header("x-order") == "7"
    assert r.header_all("set-cookie") == ["a=1; Path=/", "b=2"]


def test_prelude_sets_status_headers_and_cookies_http2(env):
    env.lam.script(prelude_script(["data: 1\n\n", "data: 2\n\n"]),
                   content_type=HTTP_INTEGRATION_TYPE)
    r = h2(env, "/unwrap")
    assert r.rc == 0 and r.status == 201, (r.rc, r.stderr)
    assert r.body == b"data: 1\n\ndata: 2\n\n"
    assert r.header("content-type") == "text/event-stream"
    assert r.header_all("set-cookie") == ["a=1; Path=/", "b=2"]


def test_prelude_is_validated_like_buffered_unwrap(env):
    bad = {"statusCode": 200, "headers": {"x-a: 1\r\nset-cookie": "x"}}
    env.lam.script([{"prelude": bad, "body": "secret body"}, {"complete": {}}])
    r = post(env, "/unwrap")
    assert r.status == 502, r.body[:300]
    assert json.loads(r.body)["error"] == "malformed_function_response"
    assert b"secret body" not in r.body
    buffered = post(env, "/buffered-unwrap",
                    json.dumps({"statusCode": 200, "headers": bad["headers"], "body": "x"}).encode())
    assert buffered.status == 502 and json.loads(buffered.body)["error"] == json.loads(r.body)["error"]


def test_prelude_that_never_ends_is_a_502(env):
    env.lam.script([{"chunk": '{"statusCode": 201, "headers": {}}'}, {"complete": {}}])
    r = post(env, "/unwrap")
    assert r.status == 502 and r.complete, r
    assert json.loads(r.body)["error"] == "malformed_function_response"
    assert env.metadata(r).get("stream_error_code") == "bad_prelude"


def test_function_error_before_the_prelude_ends_is_a_502(env):
    """Nothing was sent yet, so the error can still be an answer of its own."""
    env.lam.script([{"chunk": '{"statusCode": 2'},
                    {"complete": {"ErrorCode": "Unhandled", "ErrorDetails": "early"}}])
    r = post(env, "/unwrap")
    assert r.status == 502 and r.complete, r
    assert json.loads(r.body)["error"] == "function_error"
    assert b"early" not in r.body and b'statusCode' not in r.body


def test_raw_mode_forwards_the_prelude_bytes_untouched(env):
    env.lam.script(prelude_script(["body"]), content_type=HTTP_INTEGRATION_TYPE)
    r = post(env, "/stream")
    assert r.status == 200 and r.complete
    assert r.header("content-type") == "application/octet-stream"
    raw = es.http_prelude(201, PRELUDE["headers"], PRELUDE["cookies"])
    assert r.body == raw + b"body"


@pytest.mark.parametrize("path", ["/stream", "/unwrap"])
def test_a_content_type_the_function_set_reaches_the_client(env, path):
    """Such a function wrote no prelude: even with unwrap its bytes pass as they are."""
    body = '{"statusCode": 201}' + "\x00" * 8 + "csv,rows\n"
    env.lam.script([{"chunk": body}, {"complete": {}}], content_type="text/csv")
    r = post(env, path)
    assert r.status == 200 and r.complete, r
    assert r.header("content-type") == "text/csv" and r.body == body.encode()


def test_a_200_without_a_body_is_a_502(env):
    env.lam.script([{"no_body": True}])  # Content-Length: 0: not even InvokeComplete
    r = post(env, "/stream")
    assert r.status == 502 and r.complete, r
    assert json.loads(r.body)["error"]


def test_an_empty_chunked_body_is_cut(env):
    env.lam.script([])  # 200 (headers already passed on), then the zero chunk
    r = post(env, "/stream")
    assert r.status == 200 and r.body == b"" and not r.complete, r
    assert env.metadata(r).get("stream_error_code") == "no_invoke_complete"


# -- a function that fails mid-stream ------------------------------------------------------------
MID_ERROR = [{"chunk": "partial "}, {"chunk": "output"},
             {"complete": {"ErrorCode": "Unhandled",
                           "ErrorDetails": '{"errorMessage":"boom","errorType":"Error"}'}}]


@pytest.mark.parametrize("same_write", [True, False], ids=["same_write", "frame_by_frame"])
def test_mid_stream_error_cuts_the_http1_stream_and_is_in_metadata(env, same_write):
    errors = env.counter(STREAM_FUNCTION_ERRORS)
    env.lam.script([{"batch": MID_ERROR}] if same_write else MID_ERROR)
    r = post(env, "/stream")
    assert r.status == 200 and r.body == b"partial output"
    assert not r.complete and r.cut in ("eof", "reset"), r  # no zero chunk: the client can tell
    md = env.metadata(r)
    assert md.get("stream_error") == "function_error", md
    assert md.get("stream_error_code") == "Unhandled", md
    assert "boom" in md.get("stream_error_details", ""), md
    assert env.proc.wait_counter(STREAM_FUNCTION_ERRORS, errors + 1) == errors + 1


# same_write: the error comes in one TCP write with the chunks before it (a function that fails
# at once). The README's known limit: over HTTP/2, what Envoy encoded in the same event-loop turn
# as the reset (the headers included) may be discarded with it, depending on timing. So that
# case asserts what always holds: never a clean end, never a byte beyond the good ones.
def h2_cut(r: chunked_client.CurlResult, good: bytes, same_write: bool) -> None:
    assert r.rc != 0, f"curl saw a cleanly ended stream: {r}"  # 92: RST_STREAM
    if same_write:
        assert r.status in (0, 200) and good.startswith(r.body), (r.rc, r.status, r.body)
    else:
        assert r.status == 200 and r.body == good, (r.rc, r.status, r.body, r.stderr)


@pytest.mark.parametrize("same_write", [True, False], ids=["same_write", "after_100ms"])
def test_mid_stream_error_resets_the_http2_stream(env, same_write):
    env.lam.script([{"batch": MID_ERROR}] if same_write else
                   MID_ERROR[:2] + [{"sleep": 0.1}] + MID_ERROR[2:])
    h2_cut(h2(env, "/stream"), b"partial output", same_write)


@pytest.mark.parametrize("step", [{"exception": "ServiceException", "message": "m"},
                                  {"error": "InternalFailure", "message": "m"}],
                         ids=["exception", "error"])
def test_exception_message_in_the_stream_cuts_it(env, step):
    env.lam.script([{"chunk": "a"}, step, {"chunk": "never"}, {"complete": {}}])
    r = post(env, "/stream")
    assert r.status == 200 and r.body == b"a" and not r.complete, r
    md = env.metadata(r)
    assert md.get("stream_error") == "function_error", md
    assert md.get("stream_error_code") == next(iter(step.values())), md


def test_stream_without_invoke_complete_is_cut(env):
    """A body that just stops (zero chunk, no InvokeComplete) must not look complete."""
    framing = env.counter(STREAM_FRAMING_ERRORS)
    env.lam.script([{"chunk": "a"}, {"chunk": "b"}])
    r = post(env, "/stream")
    assert r.status == 200 and r.body == b"ab" and not r.complete, r
    assert env.metadata(r).get("stream_error") == "framing_error"
    assert env.proc.wait_counter(STREAM_FRAMING_ERRORS, framing + 1) == framing + 1


def test_client_gone_mid_stream_stops_the_function_call(env):
    env.lam.script([{"chunk": "first"}] + [{"sleep": 0.1}, {"chunk": "x" * 1000}] * 50
                   + [{"complete": {}}])
    with socket.create_connection((env.url.split("//")[1].split(":")[0], env.proc.port)) as s:
        s.sendall(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
    rec = env.lam.wait_for(1)[-1]
    assert rec.done.wait(4), "Envoy kept reading Lambda's stream for a client that left"
    assert rec.outcome == "client_gone"
    env.lam.script([{"chunk": "still fine"}, {"complete": {}}])
    assert post(env, "/stream").body == b"still fine"


def test_log_tail_goes_to_metadata(env):
    tail = "START RequestId: 1\nhello from the function\nEND\n"
    env.lam.script([{"chunk": "ok"}, {"complete": {"LogResult": base64.b64encode(
        tail.encode()).decode()}}])
    r = post(env, "/tail")
    assert r.complete and r.body == b"ok"
    md = env.metadata(r)
    assert md.get("log_result") == tail, md


# -- framing errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("damage", [
    {"corrupt": "prelude_crc"}, {"corrupt": "message_crc"}, {"corrupt": "payload"},
    {"corrupt": "total_length"}, {"corrupt": "headers_length"}, {"corrupt": "header_type"},
    {"truncate": 20},  # the body ends (zero chunk) inside a frame
], ids=lambda d: next(iter(d.values())) if "corrupt" in d else "truncated_at_end")
def test_bad_frame_cuts_the_stream(env, damage):
    framing = env.counter(STREAM_FRAMING_ERRORS)
    env.lam.script([{"chunk": "good "}, {"chunk": "GARBAGE", **damage}, {"chunk": "after"},
                    {"complete": {}}] if "corrupt" in damage else
                   [{"chunk": "good "}, {"chunk": "GARBAGE", **damage}])
    r = post(env, "/stream")
    assert r.status == 200
    assert r.body == b"good ", r.body[:200]  # nothing of the bad frame or after it
    assert not r.complete, r
    assert env.proc.wait_counter(STREAM_FRAMING_ERRORS, framing + 1) == framing + 1
    md = env.metadata(r)
    assert md.get("stream_error") == "framing_error" and md.get("stream_error_code"), md


def test_truncated_frame_then_closed_connection(env):
    env.lam.script([{"chunk": "good "}, {"chunk": "never whole", "truncate": 15}, {"close": True}])
    r = post(env, "/stream")
    assert r.status == 200 and r.body == b"good " and not r.complete, r


@pytest.mark.parametrize("same_write", [True, False], ids=["same_write", "after_100ms"])
def test_bad_frame_resets_the_http2_stream(env, same_write):
    bad = base64.b64encode(es.corrupt(es.payload_chunk(b"bad"), "message_crc")).decode()
    steps = [{"chunk": "good "}, {"raw_b64": bad}, {"complete": {}}]
    env.lam.script([{"batch": steps}] if same_write else
                   steps[:1] + [{"sleep": 0.1}] + steps[1:])
    h2_cut(h2(env, "/stream"), b"good ", same_write)


def test_frames_split_and_batched_arrive_whole(env):
    pieces = [f"piece {i};".encode() for i in range(12)]
    env.lam.script([
        {"chunk": pieces[0].decode(), "split": 30, "gap": 0.003},  # byte-ish by byte
        {"batch": [{"chunk": p.decode()} for p in pieces[1:6]]},  # five frames, one write
        {"batch": [{"chunk": p.decode()} for p in pieces[6:11]], "split": [7, 50, 90]},
        {"chunk": pieces[11].decode()}, {"complete": {}}])
    r = post(env, "/stream")
    assert r.complete and r.body == b"".join(pieces), r.body


# -- errors before the stream: as buffered Invoke ------------------------------------------------
@pytest.mark.parametrize("status", [429, 404, 409, 500, 503, 413])
def test_pre_stream_error_maps_like_buffered_invoke(env, status):
    retry = "3" if status in (429, 503, 409) else None
    env.lam.script(status=status, retry_after=retry)
    streamed = post(env, "/stream")
    env.lam.script(status=status, retry_after=retry, operation="invoke")
    buffered = post(env, "/buffered")
    assert [r.operation for r in env.lam.requests] == ["InvokeWithResponseStream", "Invoke"]
    assert streamed.status == buffered.status and streamed.status >= 400, (streamed, buffered)
    s, b = json.loads(streamed.body), json.loads(buffered.body)
    assert s["error"] == b["error"] and s["message"] == b["message"], (s, b)
    assert streamed.header("retry-after") == buffered.header("retry-after")
    assert streamed.header("x-amzn-errortype") == buffered.header("x-amzn-errortype")
    assert s.get("request_id")


# -- stats, and the buffered path beside the streamed one -----------------------------------------
def test_stats_count_streams_and_bytes(env):
    n, nbytes = env.counter(STREAMED), env.counter(STREAMED_BYTES)
    env.lam.script([{"chunks": 3, "size": 1000}, {"complete": {}}])
    assert post(env, "/stream").body_len == 3000
    assert env.proc.wait_counter(STREAMED, n + 1) == n + 1
    assert env.proc.wait_counter(STREAMED_BYTES, nbytes + 3000) == nbytes + 3000


def test_buffered_path_still_works_beside_it(env):
    r = post(env, "/buffered", b'{"echo":true}')
    assert r.status == 200 and r.body == b'{"echo":true}'
    assert r.header("content-type") == "application/json"
    rec = env.lam.requests[-1]
    assert rec.operation == "Invoke" and rec.auth == "ok"
    s = post(env, "/stream", b'{"echo":true}')
    assert s.status == 200 and s.body == b'{"echo":true}' and s.complete


# -- config --------------------------------------------------------------------------------------
def test_invoke_mode_at_upstream_and_function_level(start_envoy, streaming_lambda):
    lam = streaming_lambda
    functions = [configs.fn("fnlevel", "streamer", invoke_mode="response_stream"),
                 configs.fn("buffered", "streamer", invoke_mode="buffered")]
    cfg = configs.streaming_config(
        lam.port, lam.access_key, lam.secret_key, functions,
        [("/fnlevel", configs.module_per_route("stream", "fnlevel")),
         ("/buffered", configs.module_per_route("stream", "buffered")),
         ("/route-buffered", configs.module_per_route("stream", "fnlevel",
                                                      invoke_mode="buffered"))])
    proc = start_envoy(cfg, name="stream-levels")
    for path in ("/fnlevel", "/buffered", "/route-buffered"):
        assert chunked_client.request(proc.url + path, body=b"{}").status == 200
    assert [r.operation for r in lam.requests] == ["InvokeWithResponseStream", "Invoke", "Invoke"]
    lam.clear()
    cfg = configs.streaming_config(lam.port, lam.access_key, lam.secret_key,
                                   [configs.fn("f", "streamer")],
                                   [("/", configs.module_per_route("stream", "f"))],
                                   invoke_mode="response_stream")
    proc = start_envoy(cfg, name="stream-upstream-default")
    assert chunked_client.request(proc.url + "/", body=b"{}").complete
    assert lam.requests[-1].operation == "InvokeWithResponseStream"


@pytest.mark.parametrize("where", ["spec", "route"])
def test_response_stream_with_async_is_refused_at_load(envoy_validate, where):
    functions = [configs.fn("f", "streamer")]
    if where == "spec":
        cfg = configs.streaming_config(5000, "AKIA", "s", functions,
                                       [("/", configs.module_per_route("stream", "f"))],
                                       invoke_mode="response_stream", invocation_type="async")
    else:
        cfg = configs.streaming_config(5000, "AKIA", "s", functions, [(
            "/", configs.module_per_route("stream", "f", invoke_mode="response_stream",
                                          invocation_type="async"))])
    rc, out = envoy_validate(cfg)
    assert rc != 0, out[-2000:]
    assert "invoke_mode" in out, out[-2000:]
