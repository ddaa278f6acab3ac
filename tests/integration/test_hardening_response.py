"""Hardening of the response side, through a real Envoy: what a function's `unwrap` answer may
put on the client's connection, and ALB's multi-value mode.

The capture upstream plays Lambda and scripts the function's answer; the client side is a raw
socket (HTTP/1.1, the exact bytes) and curl --http2-prior-knowledge (HTTP/2).
"""

from __future__ import annotations

import json
import select
import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest

import configs

TIMEOUT = 20
pytestmark = pytest.mark.usefixtures("module_so")


routes = configs.echo_routes


UNWRAP_ROUTES = routes(
    v1={"request_format": "apigw_v1", "response_format": "unwrap"},
    v2={"request_format": "apigw_v2", "response_format": "unwrap"},
    alb={"request_format": "alb", "response_format": "unwrap"},
)


@pytest.fixture
def unwrap_envoy(start_envoy, capture):
    fcfg = {"upstreams": [configs.aws_upstream("moto", capture.port, configs.default_functions())]}
    return start_envoy(configs.module_config(
        capture.port, fcfg, UNWRAP_ROUTES, secrets={"aws-creds": configs.seed_secret("AKIAX", "s")}),
        name="hardening-unwrap")


@pytest.fixture
def alb_envoy(start_envoy, capture):
    """/albmv: multi-value set per route on an upstream without it; /albup: set on the
    upstream (spec) and inherited; /albsv: ALB's default single-value mode."""
    fns = configs.default_functions()
    fcfg = {"upstreams": [
        configs.aws_upstream("moto", capture.port, fns),
        configs.aws_upstream("mv", capture.port, fns, request_format="alb_multi_value",
                             response_format="unwrap"),
    ]}
    rts = [
        ("/albmv", configs.module_per_route("moto", "echo", request_format="alb_multi_value",
                                            response_format="unwrap")),
        ("/albup", configs.module_per_route("mv", "echo")),
        ("/albsv", configs.module_per_route("moto", "echo", request_format="alb",
                                            response_format="unwrap")),
    ]
    return start_envoy(configs.module_config(
        capture.port, fcfg, rts, secrets={"aws-creds": configs.seed_secret("AKIAX", "s")}),
        name="hardening-alb")


# -- a raw HTTP/1.1 client ------------------------------------------------------------
def connect(url: str) -> socket.socket:
    u = urlsplit(url)
    return socket.create_connection((u.hostname, u.port), timeout=TIMEOUT)


def send(sock: socket.socket, path: str, headers: list[tuple[str, str]] = ()) -> None:
    head = f"GET {path} HTTP/1.1\r\nhost: test\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    sock.sendall(head.encode("latin-1"))


def read_for(sock: socket.socket, quiet: float = 0.5) -> bytes:
    """Everything the proxy writes until it has been silent for ``quiet`` seconds (after the
    first byte): the exact bytes, including any a well-framed response would not have."""
    out = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], quiet if out else TIMEOUT)
        if not r:
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def split(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, header lines as (lower name, value), everything after the blank line)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, raw[:500]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    hdrs = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs.append((k.lower(), v.strip()))
    return status, hdrs, rest


def get_raw(url: str, path: str, headers: list[tuple[str, str]] = ()) -> bytes:
    with connect(url) as s:
        send(s, path, headers)
        return read_for(s)


def names(hdrs) -> list[str]:
    return [k for k, _ in hdrs]


def values(hdrs, name: str) -> list[str]:
    return [v for k, v in hdrs if k == name]


def curl_h2(url: str) -> subprocess.CompletedProcess:
    """GET over HTTP/2 (prior knowledge, h2c): prints the response head and the body."""
    curl = shutil.which("curl")
    assert curl, "curl is needed for the HTTP/2 checks"
    return subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-i", "--max-time", "10", url],
                          capture_output=True, timeout=30)


def function_answers(capture, answer: dict) -> None:
    capture.push(200, {"content-type": "application/json"}, json.dumps(answer).encode())


def assert_malformed_502(raw: bytes, *forbidden: bytes) -> dict:
    status, hdrs, body = split(raw)
    assert status == 502, raw[:800]
    for f in forbidden:
        assert f.lower() not in raw.lower(), raw[:800]
    assert values(hdrs, "content-length") == [str(len(body))], raw[:800]
    err = json.loads(body)
    assert err["error"] == "malformed_function_response", err
    return err


# -- 1. response splitting through header names and values -----------------------------
INJECTED_NAMES = [
    "X-A: 1\r\nSet-Cookie: session=x\r\nX-B",        # a Set-Cookie of the function's choosing
    "X-A: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-B",          # a second response
    "content-length ",                               # past an exact-name framing filter
    "X-A\r\nContent-Length: 0\r\nX-B",
    ":status",                                       # a pseudo-header
    "x y",
]


@pytest.mark.parametrize("name", INJECTED_NAMES)
@pytest.mark.parametrize("key", ["headers", "multiValueHeaders"])
def test_header_names_that_are_not_tokens_are_502_over_http1(unwrap_envoy, capture, name, key):
    value = ["1"] if key == "multiValueHeaders" else "1"
    function_answers(capture, {"statusCode": 200, key: {name: value}, "body": "hello"})
    raw = get_raw(unwrap_envoy.url, "/v1")
    err = assert_malformed_502(raw, b"set-cookie", b"session=x", b"hello", b"x-b")
    assert "not an HTTP token" in err["message"]
    assert raw.count(b"HTTP/1.1 ") == 1, raw


# (CR, LF and NUL in values were already refused before; the unit tests keep them covered.)
@pytest.mark.parametrize("value", ["a\x01b", "a\x7fb", "a\x1bb", "a\x08b"])
def test_header_values_with_control_bytes_are_502_over_http1(unwrap_envoy, capture, value):
    function_answers(capture, {"statusCode": 200, "headers": {"x-v": value}, "body": "hello"})
    raw = get_raw(unwrap_envoy.url, "/v2")
    assert_malformed_502(raw, b"x-v:", b"hello")


def test_valid_headers_still_pass_and_framing_headers_are_the_proxys(unwrap_envoy, capture):
    function_answers(capture, {
        "statusCode": 201, "body": "hello",
        "headers": {"X-Tab": "a\tb", "X-Trim": "  v  ", "Content-Length": "999",
                    "Connection": "close", "Transfer-Encoding": "chunked", "Keep-Alive": "x",
                    "Upgrade": "h2c"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
    })
    with connect(unwrap_envoy.url) as s:
        send(s, "/v1")
        raw = read_for(s)
        status, hdrs, body = split(raw)
        assert status == 201, raw
        assert body == b"hello"
        assert values(hdrs, "content-length") == ["5"]
        assert values(hdrs, "x-tab") == ["a\tb"]
        assert values(hdrs, "x-trim") == ["v"]
        assert values(hdrs, "set-cookie") == ["a=1", "b=2"]
        for n in ("transfer-encoding", "upgrade", "keep-alive"):
            assert n not in names(hdrs), raw
        assert values(hdrs, "connection") != ["close"], raw
        # The function's `Connection: close` did not close the client's connection.
        function_answers(capture, {"statusCode": 200, "body": "again"})
        send(s, "/v1")
        status, _, body = split(read_for(s))
        assert (status, body) == (200, b"again")


@pytest.mark.parametrize("answer", [
    {"statusCode": 200, "headers": {"X-A: 1\r\nSet-Cookie: session=x\r\nX-B": "1"}, "body": "hi"},
    {"statusCode": 200, "headers": {"content-length ": "0"}, "body": "hi"},
    {"statusCode": 200, "headers": {"x-v": "a\x01b"}, "body": "hi"},
])
def test_malformed_headers_are_a_clean_502_over_http2(unwrap_envoy, capture, answer):
    """Over HTTP/2 the client got PROTOCOL_ERROR (a reset stream) instead of an answer."""
    function_answers(capture, answer)
    r = curl_h2(unwrap_envoy.url + "/v1")
    assert r.returncode == 0, (r.returncode, r.stderr.decode(errors="replace"))
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 502"), r.stdout[:500]
    assert b"set-cookie" not in head.lower()
    assert json.loads(body)["error"] == "malformed_function_response"


def test_more_than_100_headers_are_a_502_over_http1(unwrap_envoy, capture):
    """A client may refuse a response with more headers than it takes (an HTTP/2 client resets
    the stream): 101 of them (Envoy's own default limit is 100) are a 502, none of them sent."""
    headers = {f"X-Fn-{i}": "from-the-function" for i in range(100)}
    function_answers(capture, {"statusCode": 200, "headers": headers, "cookies": ["c=1"],
                               "body": "hello"})
    raw = get_raw(unwrap_envoy.url, "/v2")
    err = assert_malformed_502(raw, b"x-fn-", b"from-the-function", b"c=1", b"hello")
    assert "101 headers" in err["message"] and "at most 100" in err["message"], err
    # Exactly 100 still pass, all of them.
    function_answers(capture, {"statusCode": 200, "headers": headers, "body": "hello"})
    status, hdrs, body = split(get_raw(unwrap_envoy.url, "/v2"))
    assert (status, body) == (200, b"hello")
    assert sum(k.startswith("x-fn-") for k in names(hdrs)) == 100


def test_valid_headers_pass_over_http2(unwrap_envoy, capture):
    """What the checks let through must also be sendable over HTTP/2 (a tab, trimmed spaces,
    UTF-8 bytes, several cookies), not turned into a reset stream."""
    function_answers(capture, {
        "statusCode": 200, "body": "ok",
        "headers": {"X-Tab": "a\tb", "X-Trim": "  v  ", "X-Utf8": "caf\u00e9"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
    })
    r = curl_h2(unwrap_envoy.url + "/v1")
    assert r.returncode == 0, (r.returncode, r.stderr.decode(errors="replace"))
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), r.stdout[:500]
    lines = [ln.split(b":", 1) for ln in head.split(b"\r\n")[1:]]
    got = [(k.strip().lower(), v.strip()) for k, v in lines]
    assert (b"x-tab", b"a\tb") in got, head
    assert (b"x-trim", b"v") in got, head
    assert (b"x-utf8", "caf\u00e9".encode()) in got, head
    assert [v for k, v in got if k == b"set-cookie"] == [b"a=1", b"b=2"], head
    assert body == b"ok"


# -- 2. statuses that break framing --------------------------------------------------
@pytest.mark.parametrize("code", [100, 101, 103, 199])
def test_interim_statuses_are_refused(unwrap_envoy, capture, code):
    function_answers(capture, {"statusCode": code, "body": "not a final answer"})
    with connect(unwrap_envoy.url) as s:
        send(s, "/alb")
        raw = read_for(s)
        err = assert_malformed_502(raw, b"not a final answer")
        assert "interim" in err["message"]
        assert raw.startswith(b"HTTP/1.1 502"), raw[:200]
        # The connection is still usable and in step.
        function_answers(capture, {"statusCode": 200, "body": "next"})
        send(s, "/alb")
        status, _, body = split(read_for(s))
        assert (status, body) == (200, b"next")


FORGED = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged"


@pytest.mark.parametrize("code", [204, 304])
def test_204_and_304_carry_no_body_on_a_kept_alive_connection(unwrap_envoy, capture, code):
    """The body of a 204/304 is dropped and no content-length is sent: the next response on
    the connection is the real one, not bytes the function wrote after the 204."""
    function_answers(capture, {"statusCode": code, "headers": {"ETag": '"v1"'}, "body": FORGED})
    with connect(unwrap_envoy.url) as s:
        send(s, "/v1")
        raw = read_for(s)
        status, hdrs, rest = split(raw)
        assert status == code, raw
        assert rest == b"", raw
        assert "content-length" not in names(hdrs), raw
        assert "transfer-encoding" not in names(hdrs), raw
        assert values(hdrs, "etag") == ['"v1"']
        function_answers(capture, {"statusCode": 200, "body": "the real second answer"})
        send(s, "/v1")
        raw2 = read_for(s)
        status, hdrs, body = split(raw2)
        assert status == 200 and body == b"the real second answer", raw2
        assert b"forged" not in raw + raw2


def test_204_over_http2_has_no_body(unwrap_envoy, capture):
    function_answers(capture, {"statusCode": 204, "body": "dropped"})
    r = curl_h2(unwrap_envoy.url + "/v2")
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 204"), r.stdout[:300]
    assert b"content-length" not in head.lower()
    assert body == b""


# -- 10. ALB multi-value mode ----------------------------------------------------------
REPEATS = [("x-multi", "a"), ("x-multi", "b"), ("cookie", "name1=value1"),
           ("cookie", "name2=value2")]
QUERY = "/p?myKey=val1&myKey=val2&enc=a%20b&myKey=val3"


@pytest.mark.parametrize("route", ["/albmv", "/albup"])
def test_alb_multi_value_event_and_response(alb_envoy, capture, route):
    function_answers(capture, {
        "statusCode": 200, "statusDescription": "200 OK", "isBase64Encoded": False,
        "multiValueHeaders": {"Set-Cookie": ["s1=a; Path=/", "s2=b; HttpOnly", "s3=c"],
                              "X-Multi": ["p", "q"], "Content-Type": ["text/plain"]},
        "body": "ok",
    })
    raw = get_raw(alb_envoy.url, route + QUERY, REPEATS)
    event = json.loads(capture.wait_for(1)[0].body)
    assert event["multiValueQueryStringParameters"] == {
        "myKey": ["val1", "val2", "val3"], "enc": ["a%20b"]}, event
    mvh = event["multiValueHeaders"]
    assert mvh["x-multi"] == ["a", "b"], mvh
    # ALB's documented example: two cookie lines → two values (Envoy keeps them apart on HTTP/1).
    assert mvh["cookie"] == ["name1=value1", "name2=value2"], mvh
    assert "headers" not in event and "queryStringParameters" not in event, event
    assert event["path"] == route + "/p"
    status, hdrs, body = split(raw)
    assert status == 200 and body == b"ok", raw
    assert values(hdrs, "set-cookie") == ["s1=a; Path=/", "s2=b; HttpOnly", "s3=c"], raw
    assert values(hdrs, "x-multi") == ["p", "q"], raw


def test_alb_single_value_mode_keeps_only_the_last_value(alb_envoy, capture):
    """The contrast: on the same Envoy, `alb` still sends ALB's default single-value event."""
    function_answers(capture, {"statusCode": 200, "headers": {"Set-Cookie": "only=1"}, "body": ""})
    raw = get_raw(alb_envoy.url, "/albsv" + QUERY, REPEATS)
    event = json.loads(capture.wait_for(1)[0].body)
    assert event["queryStringParameters"] == {"myKey": "val3", "enc": "a%20b"}, event
    assert event["headers"]["x-multi"] == "b", event
    assert "multiValueHeaders" not in event and "multiValueQueryStringParameters" not in event
    status, hdrs, _ = split(raw)
    assert status == 200 and values(hdrs, "set-cookie") == ["only=1"], raw
    capture.clear()
    function_answers(capture, {"statusCode": 200, "body": ""})
    get_raw(alb_envoy.url, "/albmv" + QUERY, REPEATS)
    event = json.loads(capture.wait_for(1)[0].body)
    assert event["multiValueQueryStringParameters"]["myKey"] == ["val1", "val2", "val3"]


def powertools_function(cookies: list[str]):
    """A Lambda function written with AWS Lambda Powertools' ALBResolver (a widely used
    framework), as the capture upstream's responder: it reads the event it is sent and
    answers the way the framework does. It picks `headers` or `multiValueHeaders` for its
    answer from the event's shape, and in single-value mode drops all cookies but the last."""
    from aws_lambda_powertools.event_handler import ALBResolver, Response
    from capture_upstream import Reply

    app = ALBResolver()

    @app.get("/albmv/p")
    @app.get("/albsv/p")
    def handler():
        ev = app.current_event
        return Response(status_code=200, content_type="application/json", cookies=cookies,
                        body=json.dumps({"myKey": ev.get_multi_value_query_string_values("myKey")}))

    def respond(cap):
        result = app.resolve(json.loads(cap.body), None)
        return Reply(200, {"content-type": "application/json"}, json.dumps(result).encode())

    return respond


@pytest.mark.filterwarnings("ignore:Can't encode more than one cookie")
def test_alb_multi_value_with_a_powertools_function(alb_envoy, capture):
    cookies = ["session=abc; Path=/; HttpOnly", "theme=dark; Path=/", "lang=en"]
    capture.set_default(powertools_function(cookies))
    raw = get_raw(alb_envoy.url, "/albmv" + QUERY, REPEATS)
    status, hdrs, body = split(raw)
    assert status == 200, raw
    assert values(hdrs, "set-cookie") == cookies, raw
    assert json.loads(body)["myKey"] == ["val1", "val2", "val3"], body
    # The same function behind single-value ALB loses cookies (what the framework warns about):
    # the mode is what makes the difference.
    raw = get_raw(alb_envoy.url, "/albsv" + QUERY, REPEATS)
    status, hdrs, body = split(raw)
    assert status == 200 and values(hdrs, "set-cookie") == cookies[-1:], raw


def test_alb_multi_value_over_http2(alb_envoy, capture):
    function_answers(capture, {"statusCode": 200, "body": "h2",
                               "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}})
    r = curl_h2(alb_envoy.url + "/albmv?k=1&k=2")
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), r.stdout[:300]
    cookies = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
               if line.lower().startswith(b"set-cookie:")]
    assert cookies == [b"a=1", b"b=2"]
    assert body == b"h2"
    event = json.loads(capture.wait_for(1)[0].body)
    assert event["multiValueQueryStringParameters"] == {"k": ["1", "2"]}


def test_unknown_alb_mode_is_refused_naming_the_field(envoy_validate):
    fcfg = {"upstreams": [configs.aws_upstream("moto", 5000, configs.default_functions(),
                                               request_format="alb_multivalue")]}
    rc, out = envoy_validate(configs.module_config(
        5000, fcfg, configs.standard_routes(), secrets={"aws-creds": configs.seed_secret("A", "s")}))
    assert rc != 0, out[-2000:]
    assert "spec.request_format" in out and "alb_multi_value" in out, out[-2000:]
