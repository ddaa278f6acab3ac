"""What the client gets when Lambda answers with an error, or when Envoy cannot reach Lambda.

The capture upstream plays AWS's real error answers (their text quotes the canonical request
with the session token, the Authorization header's key id and signature, account ids); the
client must get our code, our message and Lambda's request id only, with an allow-list of
headers, and Envoy's log one redacted first line per (upstream, error) and period. Envoy's own
failures (connection refused, route timeout) are told apart from Lambda's 503/504.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest
import requests

import configs
from capture_upstream import Reply

TIMEOUT = 20
pytestmark = pytest.mark.usefixtures("module_so")

KEY_ID = "ASIAQWERTYUIOPASDFGH"
TOKEN = ("IQoJb3JpZ2luX2VjEHAaCXVzLWVhc3QtMSJHMEUCIQDkR2Pq8vJ0dW5Wm7W0Xy+Hh0k5QZq4Q3lJ8VVe0Zsx"
         "GgIgSf0Yh5m1n4JmQ1hJ7mX0r0pE3aW5yq3y5cQ2rUqJd0IqnQIIxf//////////ARAAGgw0NTY3ODkwMTIzND")
SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
CONTENT_SHA = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
SECRETS = (KEY_ID, TOKEN[:40], SIGNATURE, CONTENT_SHA, "aws4_request")

INVALID_SIGNATURE = {
    "message": "The request signature we calculated does not match the signature you provided. "
               "Check your AWS Secret Access Key and signing method. Consult the service "
               "documentation for details.\n\nThe Canonical String for this request should have "
               "been\n'POST\n/2015-03-31/functions/echo/invocations\n\n"
               "host:lambda.us-east-1.amazonaws.com\n"
               f"x-amz-content-sha256:{CONTENT_SHA}\nx-amz-date:20261201T120000Z\n"
               f"x-amz-security-token:{TOKEN}\n\n"
               "host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n"
               f"{CONTENT_SHA}'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n"
               "20261201T120000Z\n20261201/us-east-1/lambda/aws4_request\n"
               "9e0e6f8b1c9a7a3e1e0d3f6b2b7c4a3e5d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b'\n",
}
INVALID_SIGNATURE_FIRST_LINE = ("The request signature we calculated does not match the signature "
                                "you provided. Check your AWS Secret Access Key and signing "
                                "method. Consult the service documentation for details.")
INCOMPLETE_SIGNATURE = {
    "message": "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
               f"header. Authorization=AWS4-HMAC-SHA256 Credential={KEY_ID}/20261201/us-east-1/"
               "lambda/aws4_request, SignedHeaders=host;x-amz-content-sha256, "
               f"Signature={SIGNATURE}",
}
ACCESS_DENIED = {
    "Type": "User",
    "Message": "User: arn:aws:sts::123456789012:assumed-role/gateway-role/i-0abc is not "
               "authorized to perform: lambda:InvokeFunction on resource: "
               "arn:aws:lambda:us-east-1:123456789012:function:echo because no identity-based "
               "policy allows the lambda:InvokeFunction action",
}

# Headers Lambda (and AWS's front ends) send with errors; only the first two may pass.
LAMBDA_HEADERS = {
    "x-amzn-RequestId": "6f8c1a52-1d0c-4b0c-9d8e-0123456789ab",
    "X-Amzn-ErrorType": "",
    "x-amz-apigw-id": "internal-apigw-id",
    "x-amzn-Remapped-Host": "internal.lambda.host",
    "X-Amzn-Trace-Id": "Root=1-internal",
    "x-amz-id-2": "internal-host-id",
}
# What any Envoy answer has; everything else must be on the allow-list.
ENVOY_HEADERS = {"content-type", "content-length", "date", "server", "connection"}
ALLOWED = {"x-amzn-requestid", "x-amzn-errortype", "retry-after"}


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_config(port: int, expose: bool = False) -> str:
    """/echo → capture; /closed → a cluster on a closed port; /slow → capture, 0.3 s timeout."""
    extra = {"expose_aws_error_message": True} if expose else {}
    fcfg = {"upstreams": [configs.aws_upstream("moto", port, configs.default_functions(), **extra)]}
    cfg = json.loads(configs.module_config(
        port, fcfg, [("/echo", configs.module_per_route("moto", "echo"))],
        secrets={"aws-creds": configs.seed_secret("AKIACAPTURE", "s")}))
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    per = configs.module_per_route("moto", "echo")
    routes.insert(0, configs.route("/closed", "closed", per_filter=per))
    routes.insert(0, configs.route("/slow", "lambda", timeout="0.3s", per_filter=per))
    cfg["static_resources"]["clusters"].append(
        configs.static_cluster("closed", closed_port(), connect_timeout="1s"))
    return json.dumps(cfg)


@pytest.fixture
def envoy(start_envoy, capture):
    return start_envoy(error_config(capture.port), name="errors")


def lambda_error(capture, status: int, error_type: str, body: dict) -> None:
    capture.push(status, {**LAMBDA_HEADERS, "X-Amzn-ErrorType": error_type,
                          "content-type": "application/json"},
                 json.dumps(body).encode())


def assert_nothing_of_aws(r: requests.Response) -> dict:
    body = r.json()
    text = r.text
    for needle in (*SECRETS, "signature we calculated", "Canonical", "123456789012",
                   "gateway-role", "Authorization header", "internal"):
        assert needle not in text, f"{needle!r} in {text}"
    extra = {k.lower() for k in r.headers} - ENVOY_HEADERS - ALLOWED
    assert not extra, f"headers beyond the allow-list: {extra}"
    for v in r.headers.values():
        assert "internal" not in v, r.headers
    assert set(body) == {"error", "message", "request_id"}, body
    assert body["request_id"] == LAMBDA_HEADERS["x-amzn-RequestId"]
    assert r.headers["x-amzn-requestid"] == LAMBDA_HEADERS["x-amzn-RequestId"]
    return body


def warning_lines(envoy, needle: str, want: int = 1, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in envoy.log_text().splitlines()
                 if "[warning]" in ln and needle in ln]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.mark.parametrize("status,error_type,body,code", [
    (403, "InvalidSignatureException", INVALID_SIGNATURE, "lambda_access_denied"),
    (403, "IncompleteSignatureException", INCOMPLETE_SIGNATURE, "lambda_access_denied"),
    (403, "AccessDeniedException", ACCESS_DENIED, "lambda_access_denied"),
])
def test_client_gets_no_aws_text_and_envoy_logs_one_redacted_line(envoy, capture, status,
                                                                   error_type, body, code):
    for _ in range(4):
        lambda_error(capture, status, error_type + ":http://internal.amazon.com/coral/", body)
        r = requests.post(envoy.url + "/echo", json={}, timeout=TIMEOUT)
        assert r.status_code == 403, r.text
        got = assert_nothing_of_aws(r)
        assert got["error"] == code
        assert got["message"] == f"AWS refused the gateway's credentials or policy (403 {error_type})"
        assert r.headers["x-amzn-errortype"] == error_type
    # Four answers, one line: the first line of AWS's message, redacted.
    lines = warning_lines(envoy, "Lambda answered 403")
    time.sleep(0.3)
    lines = warning_lines(envoy, "Lambda answered 403")
    assert len(lines) == 1, lines
    line = lines[0]
    assert f"upstream 'moto': Lambda answered 403 -> {code}" in line, line
    assert f"request id {LAMBDA_HEADERS['x-amzn-RequestId']}" in line, line
    for secret in SECRETS:
        assert secret not in envoy.log_text(), secret
    if error_type == "InvalidSignatureException":
        assert line.endswith(f"{error_type}: {INVALID_SIGNATURE_FIRST_LINE}"), line
    if error_type == "IncompleteSignatureException":
        assert "Credential=[redacted]" in line and "Signature=[redacted]" in line, line
    if error_type == "AccessDeniedException":
        assert "arn:aws:sts::123456789012:assumed-role/gateway-role/i-0abc" in line, line
    assert envoy.counter("envoy_lambda.api_errors") == 4
    assert envoy.counter("envoy_lambda.upstream_failures") == 0


def test_pacing_is_per_error_code(envoy, capture):
    lambda_error(capture, 429, "TooManyRequestsException", {"message": "Rate Exceeded."})
    lambda_error(capture, 404, "ResourceNotFoundException", {"Message": "Function not found: "
                 "arn:aws:lambda:us-east-1:123456789012:function:echo"})
    lambda_error(capture, 429, "TooManyRequestsException", {"message": "Rate Exceeded."})
    for want in (429, 404, 429):
        r = requests.post(envoy.url + "/echo", json={}, timeout=TIMEOUT)
        assert r.status_code == want, r.text
        assert_nothing_of_aws(r)
    assert len(warning_lines(envoy, "-> throttled")) == 1
    assert len(warning_lines(envoy, "-> function_not_found")) == 1


def test_opt_in_shows_the_redacted_message(start_envoy, capture):
    envoy = start_envoy(error_config(capture.port, expose=True), name="errors-expose")
    lambda_error(capture, 403, "IncompleteSignatureException", INCOMPLETE_SIGNATURE)
    r = requests.post(envoy.url + "/echo", json={}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "lambda_access_denied"
    assert body["aws_message"].startswith("Authorization header requires existence"), body
    assert "Credential=[redacted]" in body["aws_message"], body
    assert "Signature=[redacted]" in body["aws_message"], body
    for secret in SECRETS:
        assert secret not in r.text, secret
    lambda_error(capture, 403, "InvalidSignatureException", INVALID_SIGNATURE)
    r = requests.post(envoy.url + "/echo", json={}, timeout=TIMEOUT)
    assert r.json()["aws_message"] == INVALID_SIGNATURE_FIRST_LINE
    assert "Canonical" not in r.text and TOKEN[:20] not in r.text


# -- Envoy's own failures ----------------------------------------------------------------
def test_connection_refused_is_not_lambda_unavailable(envoy):
    r = requests.get(envoy.url + "/closed", timeout=TIMEOUT)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "upstream_unreachable", body
    assert "request_id" not in body
    assert r.headers["retry-after"] == "1"
    assert "upstream connect error" not in r.text
    assert envoy.counter("envoy_lambda.upstream_failures") == 1
    assert envoy.counter("envoy_lambda.api_errors") == 0


def test_route_timeout_is_not_lambda_timeout(envoy, capture):
    capture.push(200, {"x-amzn-RequestId": "late"}, b"{}", delay=1.5)
    r = requests.get(envoy.url + "/slow", timeout=TIMEOUT)
    assert r.status_code == 504, r.text
    body = r.json()
    assert body["error"] == "upstream_timeout", body
    assert "request_id" not in body
    assert "upstream request timeout" not in r.text
    assert envoy.counter("envoy_lambda.upstream_failures") == 1
    assert envoy.counter("envoy_lambda.api_errors") == 0


@pytest.mark.parametrize("status,code,retry_after", [
    (503, "lambda_unavailable", "1"),
    (504, "lambda_timeout", None),
])
def test_lambdas_own_503_and_504_stay_lambda_errors(envoy, capture, status, code, retry_after):
    lambda_error(capture, status, "ServiceException", {"Message": "Lambda is overloaded"})
    r = requests.post(envoy.url + "/echo", json={}, timeout=TIMEOUT)
    assert r.status_code == status, r.text
    body = assert_nothing_of_aws(r)
    assert body["error"] == code
    assert r.headers.get("retry-after") == retry_after
    assert envoy.counter("envoy_lambda.api_errors") == 1
    assert envoy.counter("envoy_lambda.upstream_failures") == 0


# -- the same over HTTP/2 -------------------------------------------------------------------
def curl_h2(url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    """A request over HTTP/2 (h2c, prior knowledge): (status, headers, body)."""
    curl = shutil.which("curl")
    assert curl, "curl is needed for the HTTP/2 checks"
    r = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-i", "--max-time", "10",
                        *args, url], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/2 "), r.stdout[:300]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


def test_over_http2_no_aws_text_and_envoys_failures_told_apart(envoy, capture):
    lambda_error(capture, 403, "InvalidSignatureException:http://internal.amazon.com/coral/",
                 INVALID_SIGNATURE)
    status, headers, body = curl_h2(envoy.url + "/echo", "-X", "POST", "-H",
                                    "content-type: application/json", "--data", "{}")
    assert status == 403, body
    text = body.decode()
    for needle in (*SECRETS, "signature we calculated", "Canonical", "internal"):
        assert needle not in text, f"{needle!r} in {text}"
    extra = set(headers) - ENVOY_HEADERS - ALLOWED
    assert not extra, f"headers beyond the allow-list: {extra}"
    got = json.loads(body)
    assert set(got) == {"error", "message", "request_id"}, got
    assert got["error"] == "lambda_access_denied"
    assert got["request_id"] == LAMBDA_HEADERS["x-amzn-RequestId"]
    assert headers["x-amzn-errortype"] == "InvalidSignatureException"
    status, headers, body = curl_h2(envoy.url + "/closed")
    assert status == 503, body
    assert json.loads(body)["error"] == "upstream_unreachable", body
    assert headers["retry-after"] == "1"
    assert envoy.counter("envoy_lambda.api_errors") == 1
    assert envoy.counter("envoy_lambda.upstream_failures") == 1


# -- discovery reads AWS's errors the same way ---------------------------------------------
@pytest.mark.parametrize("error_type,body,want", [
    ("InvalidSignatureException", INVALID_SIGNATURE, INVALID_SIGNATURE_FIRST_LINE),
    ("IncompleteSignatureException", INCOMPLETE_SIGNATURE,
     "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
     "Authorization=AWS4-HMAC-SHA256 Credential=[redacted], "
     "SignedHeaders=host;x-amz-content-sha256, Signature=[redacted]"),
])
def test_discovery_logs_the_same_redacted_first_line(start_envoy, capture, error_type, body,
                                                     want):
    """A refused ListFunctions: the warning has AWS's first line, redacted. (The callout path
    hands discovery the status and body only, so the error's name comes from the body when
    it has one.)"""
    capture.set_default(lambda cap: Reply(
        403, {**LAMBDA_HEADERS, "X-Amzn-ErrorType": error_type}, json.dumps(body).encode()))
    settings = {"enabled": True, "cluster": "lambda", "refresh_interval": "1s"}
    fcfg = {"upstreams": [configs.aws_upstream("acct", capture.port, [], discovery=settings)]}
    envoy = start_envoy(configs.module_config(
        capture.port, fcfg, [("/echo", None)],
        secrets={"aws-creds": configs.seed_secret("AKIACAPTURE", "s")}), name="errors-discovery")
    lines = warning_lines(envoy, "discovery for upstream 'acct' failed", timeout=10)
    assert len(lines) == 1, envoy.log_tail()
    assert f"ListFunctions answered 403: {want}; the previous function list" in lines[0], lines[0]
    for secret in SECRETS:
        assert secret not in envoy.log_text(), secret
