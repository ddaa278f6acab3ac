"""HTTP ↔ Lambda semantics through a real Envoy: invocation types, API Gateway/ALB events,
response unwrapping, Lambda API error mapping, log tail and client context.

moto (signature checking on) proves the event bodies are signed right; the capture upstream
shows exactly what is sent and plays the Lambda answers moto cannot script (status, headers).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import requests

import configs

TIMEOUT = 20
pytestmark = pytest.mark.usefixtures("module_so")


routes = configs.echo_routes


ROUTES = routes(
    sync={},
    event={"invocation_type": "async"},
    dryrun={"invocation_type": "dry_run"},
    v2={"request_format": "apigw_v2", "response_format": "unwrap"},
    v2raw={"request_format": "apigw_v2"},
    v1={"request_format": "apigw_v1", "response_format": "unwrap"},
    alb={"request_format": "alb", "response_format": "unwrap"},
    tail={"log_type": "tail"},
    ctx={"client_context": {"custom": {"tenant": "acme"}}},
)


def with_log_format(cfg_text: str) -> str:
    """Adds the log tail (dynamic metadata) to the access log line."""
    cfg = json.loads(cfg_text)
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"][0]["typed_config"]["log_format"] = {"text_format_source": {
        "inline_string": "ACCESS %REQ(:PATH)% %RESPONSE_CODE% "
                         "log_result=[%DYNAMIC_METADATA(envoy_lambda:log_result)%]\n"}}
    return json.dumps(cfg)


@pytest.fixture
def moto_envoy(start_envoy, moto):
    i = moto.info
    fcfg = {"upstreams": [configs.aws_upstream("moto", moto.port, configs.default_functions())]}
    return start_envoy(configs.module_config(
        moto.port, fcfg, ROUTES, secrets={"aws-creds": configs.seed_secret(i.access_key, i.secret_key)}),
        name="semantics-moto")


@pytest.fixture
def capture_envoy(start_envoy, capture):
    fcfg = {"upstreams": [configs.aws_upstream("moto", capture.port, configs.default_functions())]}
    return start_envoy(with_log_format(configs.module_config(
        capture.port, fcfg, ROUTES, secrets={"aws-creds": configs.seed_secret("AKIACAPTURE", "s")})),
        name="semantics-capture")


# -- invocation types (moto) ----------------------------------------------------------
def test_async_gets_202_with_the_request_id(moto_envoy):
    r = requests.post(moto_envoy.url + "/event", json={"job": 1}, timeout=TIMEOUT)
    assert r.status_code == 202, r.text
    assert r.headers.get("x-amzn-requestid")


def test_dry_run_gets_204(moto_envoy):
    r = requests.post(moto_envoy.url + "/dryrun", json={"job": 1}, timeout=TIMEOUT)
    assert r.status_code == 204, r.text


def test_async_payload_limit_is_checked_before_calling(capture_envoy, capture):
    r = requests.post(capture_envoy.url + "/event", data=b"x" * (1024 * 1024 + 1),
                      headers={"content-type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "payload_too_large"
    assert capture.requests == []


def test_invocation_headers_on_the_wire(capture_envoy, capture):
    requests.post(capture_envoy.url + "/event", json={}, timeout=TIMEOUT)
    requests.post(capture_envoy.url + "/ctx", json={}, timeout=TIMEOUT)
    ev, ctx = capture.wait_for(2)
    assert ev.header("x-amz-invocation-type") == "Event"
    assert "x-amz-invocation-type" in ev.header("authorization")
    decoded = json.loads(base64.b64decode(ctx.header("x-amz-client-context")))
    assert decoded == {"custom": {"tenant": "acme"}}
    assert "x-amz-client-context" in ctx.header("authorization")


# -- events (moto verifies the signature over the event body) ---------------------------
def test_apigw_v2_event_is_signed_and_echoed_by_moto(moto_envoy):
    r = requests.post(moto_envoy.url + "/v2raw/orders?id=7&id=8", json={"qty": 2}, timeout=TIMEOUT,
                      headers={"Cookie": "session=abc; theme=dark", "X-Custom": "yes"})
    assert r.status_code == 200, r.text
    event = r.json()  # moto echoes the payload: the event itself
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/v2raw/orders"
    assert event["queryStringParameters"] == {"id": "7,8"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-custom"] == "yes"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"]
    assert json.loads(event["body"]) == {"qty": 2}
    assert event["isBase64Encoded"] is False


def test_apigw_v2_unwrap_round_trip_through_moto(moto_envoy, moto):
    moto.queue_results([json.dumps({
        "statusCode": 201,
        "headers": {"content-type": "text/plain", "x-order": "8"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": "created",
    })])
    r = requests.post(moto_envoy.url + "/v2", json={"qty": 2}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.text == "created"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-order"] == "8"
    assert r.raw.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]


def test_binary_body_round_trip(capture_envoy, capture):
    blob = bytes(range(256)) * 40
    capture.push(200, {"content-type": "application/json"}, json.dumps({
        "statusCode": 200, "headers": {"content-type": "application/octet-stream"},
        "body": base64.b64encode(blob[::-1]).decode(), "isBase64Encoded": True}).encode())
    r = requests.post(capture_envoy.url + "/v2/upload", data=blob, timeout=TIMEOUT,
                      headers={"content-type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.content == blob[::-1]
    assert r.headers["content-type"] == "application/octet-stream"
    sent = capture.wait_for(1)[0]
    event = json.loads(sent.body)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == blob
    assert sent.header("x-amz-content-sha256") == hashlib.sha256(sent.body).hexdigest()
    assert sent.header("content-type") == "application/json"


def test_apigw_v1_and_alb_events(capture_envoy, capture):
    for path, check in [
        ("/v1/a?x=1&x=2", lambda e: (e["httpMethod"], e["multiValueQueryStringParameters"]["x"],
                                     e["requestContext"]["identity"]["sourceIp"])
         == ("PUT", ["1", "2"], "127.0.0.1")),
        ("/alb/a?x=a%20b", lambda e: (e["httpMethod"], e["queryStringParameters"]["x"],
                                      "elb" in e["requestContext"]) == ("PUT", "a%20b", True)),
    ]:
        capture.clear()
        capture.push(200, {}, json.dumps({"statusCode": 204, "statusDescription": "204 No Content"}).encode())
        r = requests.put(capture_envoy.url + path, data="hi", timeout=TIMEOUT,
                         headers={"content-type": "text/plain"})
        assert r.status_code == 204, (path, r.text)
        event = json.loads(capture.wait_for(1)[0].body)
        assert check(event), event
        assert event["body"] == "hi"


def test_malformed_unwrap_result_is_502_json(capture_envoy, capture):
    capture.push(200, {}, b'"just a string"')
    r = requests.get(capture_envoy.url + "/v1", timeout=TIMEOUT)
    assert r.status_code == 502, r.text
    assert r.json()["error"] == "malformed_function_response"


# -- Lambda API errors, mapped --------------------------------------------------------
@pytest.mark.parametrize("status,error_type,headers,want,code", [
    (404, "ResourceNotFoundException", {}, 404, "function_not_found"),
    (429, "TooManyRequestsException", {"Retry-After": "4"}, 429, "throttled"),
    (409, "ResourceConflictException", {}, 503, "function_not_ready"),
    (413, "RequestTooLargeException", {}, 413, "payload_too_large"),
    (400, "InvalidRequestContentException", {}, 400, "invalid_request_content"),
    (403, "AccessDeniedException", {}, 403, "lambda_access_denied"),
    (500, "ServiceException", {}, 502, "lambda_service_error"),
    (502, "EC2UnexpectedException", {}, 502, "lambda_bad_gateway"),
    (503, None, {}, 503, "lambda_unavailable"),
    (504, None, {}, 504, "lambda_timeout"),
])
def test_lambda_api_errors_are_mapped(capture_envoy, capture, status, error_type, headers, want,
                                      code):
    h = {"content-type": "application/json", "x-amzn-RequestId": "rid", **headers}
    if error_type:
        h["x-amzn-ErrorType"] = error_type
    capture.push(status, h, json.dumps({"Type": "User", "Message": "details from Lambda"}).encode())
    r = requests.post(capture_envoy.url + "/sync", json={}, timeout=TIMEOUT)
    assert r.status_code == want, r.text
    body = r.json()
    assert body["error"] == code
    # Our words and Lambda's request id; AWS's text only goes to Envoy's log.
    assert "details from Lambda" not in r.text
    assert body["message"].endswith(f"({status} {error_type})" if error_type else f"({status})")
    assert body["request_id"] == "rid"
    assert r.headers.get("x-amzn-requestid") == "rid"
    if want in (429, 503):
        assert r.headers["retry-after"] == headers.get("Retry-After", "5" if status == 409 else "1")
    assert capture_envoy.counter("envoy_lambda.api_errors") == 1
    assert capture_envoy.counter("envoy_lambda.upstream_failures") == 0


def test_function_error_keeps_payload(capture_envoy, capture):
    payload = json.dumps({"errorMessage": "boom", "errorType": "ValueError"}).encode()
    capture.push(200, {"X-Amz-Function-Error": "Unhandled"}, payload)
    r = requests.post(capture_envoy.url + "/sync", json={}, timeout=TIMEOUT)
    assert r.status_code == 502
    assert r.content == payload
    assert r.headers["x-amz-function-error"] == "Unhandled"


# -- log tail -----------------------------------------------------------------------
def test_log_tail_goes_to_metadata_not_the_client(capture_envoy, capture):
    log = "START RequestId: abc\nhello from the function\nEND RequestId: abc\n"
    capture.push(200, {"X-Amz-Log-Result": base64.b64encode(log.encode()).decode()}, b"{}")
    r = requests.post(capture_envoy.url + "/tail", json={}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert "x-amz-log-result" not in r.headers
    assert capture.wait_for(1)[0].header("x-amz-log-type") == "Tail"
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "hello from the function" not in capture_envoy.log_text():
        time.sleep(0.1)
    assert "hello from the function" in capture_envoy.log_text()


# -- config errors ------------------------------------------------------------------
@pytest.mark.parametrize("extra,needle", [
    ({"invocation_type": "sometimes"}, "invocation_type"),
    ({"request_format": "soap"}, "request_format"),
    ({"invocation_type": "async", "response_format": "unwrap"}, "response_format"),
    ({"client_context": "not-an-object"}, "client_context"),
])
def test_bad_invocation_options_are_refused(envoy_validate, extra, needle):
    fcfg = {"upstreams": [configs.aws_upstream("moto", 5000, configs.default_functions(), **extra)]}
    rc, out = envoy_validate(configs.module_config(
        5000, fcfg, configs.standard_routes(), secrets={"aws-creds": configs.seed_secret("A", "s")}))
    assert rc != 0, out[-2000:]
    assert needle in out, out[-2000:]


def test_unwrap_of_a_large_result(capture_envoy, capture):
    """Lambda results reach 6 MB; Envoy's default 1 MiB buffer must not cut them off."""
    big = "x" * (3 * 1024 * 1024)
    capture.push(200, {}, json.dumps({"statusCode": 200, "body": big}).encode())
    r = requests.get(capture_envoy.url + "/v2", timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    assert len(r.content) == len(big)


def test_large_api_error_body_is_still_mapped(capture_envoy, capture):
    capture.push(500, {"x-amzn-ErrorType": "ServiceException"}, b"{" + b" " * (2 * 1024 * 1024) + b"}")
    r = requests.get(capture_envoy.url + "/sync", timeout=TIMEOUT)
    assert r.status_code == 502, r.text[:300]
    assert r.json()["error"] == "lambda_service_error"
