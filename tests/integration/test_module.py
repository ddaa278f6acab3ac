"""Our module (target/release/libenvoy_lambda.so) inside a real Envoy.

Two peers: moto with signature checking on (a 200 proves the SigV4 signature
was right), and a capture upstream (what exactly Envoy sends upstream, and
scripted replies moto cannot give). Same checks as test_native_filter.py where
they overlap.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import requests

import configs
import rawhttp

TIMEOUT = 20
INVOKE_PATH = "/2015-03-31/functions/{}/invocations"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
LAMBDA_SYNC_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous request payload limit

pytestmark = pytest.mark.usefixtures("module_so")


# -- config helpers -----------------------------------------------------------
def filter_config(port: int, functions=None, **upstream_kw) -> dict:
    return {"upstreams": [configs.aws_upstream("moto", port, functions or
                                               configs.default_functions(), **upstream_kw)]}


def module_yaml(port: int, access_key: str, secret_key: str, routes=None, **kw) -> str:
    return configs.module_config(
        port, filter_config(port, **kw), routes or configs.standard_routes(),
        secrets={"aws-creds": configs.seed_secret(access_key, secret_key)},
    )


@pytest.fixture
def moto_envoy(start_envoy, moto):
    """Envoy + our module → moto, with the right static credentials."""
    i = moto.info
    return start_envoy(module_yaml(moto.port, i.access_key, i.secret_key), name="module-moto")


@pytest.fixture
def capture_envoy(start_envoy, capture):
    """Envoy + our module → the capture upstream (any credentials)."""
    return start_envoy(module_yaml(capture.port, "AKIACAPTURE000000000", "capture-secret"),
                       name="module-capture")


def _auth_ok(req, access_key: str) -> None:
    auths = req.header_all("authorization")
    assert len(auths) == 1, req.headers
    a = auths[0]
    assert a.startswith(f"AWS4-HMAC-SHA256 Credential={access_key}/"), a
    assert "/us-east-1/lambda/aws4_request" in a, a
    signed = a.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert "x-amz-content-sha256" in signed and "x-amz-date" in signed and "host" in signed, a


# -- happy paths against moto (signature checked) --------------------------------
def test_get_without_body_is_signed_and_accepted(moto_envoy):
    r = requests.get(moto_envoy.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.text == "Simple Lambda happy path OK"


def test_post_json_is_echoed(moto_envoy):
    body = {"hello": "world", "n": [1, 2, 3], "nested": {"k": "v"}}
    raw = json.dumps(body).encode()
    r = requests.post(moto_envoy.url + "/echo", data=raw, timeout=TIMEOUT,
                      headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.content == raw
    r = requests.post(moto_envoy.url + "/hello", json={"x": 1}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"x": 1}


def test_alias_route_through_moto(moto_envoy):
    r = requests.post(moto_envoy.url + "/echo-live", json={"q": "live"}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"q": "live"}


def test_wrong_secret_gets_403(start_envoy, moto):
    i = moto.info
    e = start_envoy(module_yaml(moto.port, i.access_key, i.secret_key[:-1] + "X"))
    r = requests.post(e.url + "/echo", json={"a": 1}, timeout=TIMEOUT)
    assert r.status_code == 403, r.text
    r = requests.get(e.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 403, r.text


def test_client_auth_headers_are_replaced(moto_envoy):
    """Client-supplied credentials headers must not break (or ride along with) the signature."""
    r = requests.post(moto_envoy.url + "/echo", json={"a": 1}, timeout=TIMEOUT, headers={
        "Authorization": "Bearer xyz",
        "X-Amz-Date": "20000101T000000Z",
        "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
        "Cookie": "session=abc",
    })
    assert r.status_code == 200, r.text
    assert r.json() == {"a": 1}


# -- what goes on the wire (capture upstream) -----------------------------------------
def test_invoke_request_shape(capture_envoy, capture):
    r = requests.get(capture_envoy.url + "/echo", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    req = capture.wait_for(1)[0]
    assert req.method == "POST"
    assert req.path == INVOKE_PATH.format("echo")
    assert req.body == b""
    assert req.header("x-amz-content-sha256") == EMPTY_SHA256
    _auth_ok(req, "AKIACAPTURE000000000")


def test_alias_route_sends_qualifier(capture_envoy, capture):
    r = requests.post(capture_envoy.url + "/echo-live", data=b'{"q":1}', timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.content == b'{"q":1}'
    req = capture.wait_for(1)[0]
    assert req.method == "POST"
    assert req.path == INVOKE_PATH.format("echo") + "?Qualifier=live"
    assert req.body == b'{"q":1}'
    assert req.header("x-amz-content-sha256") == hashlib.sha256(b'{"q":1}').hexdigest()
    _auth_ok(req, "AKIACAPTURE000000000")


def test_client_credentials_headers_never_reach_upstream(capture_envoy, capture):
    r = requests.post(capture_envoy.url + "/echo", data=b"{}", timeout=TIMEOUT, headers={
        "Authorization": "Bearer xyz",
        "X-Amz-Date": "20000101T000000Z",
        "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
        "Cookie": "session=abc",
    })
    assert r.status_code == 200, r.text
    req = capture.wait_for(1)[0]
    assert "cookie" not in req.header_names(), req.headers
    _auth_ok(req, "AKIACAPTURE000000000")
    assert "Bearer" not in " ".join(req.header_all("authorization"))
    dates = req.header_all("x-amz-date")
    assert len(dates) == 1 and dates[0] != "20000101T000000Z", dates
    assert req.header_all("x-amz-content-sha256") == [hashlib.sha256(b"{}").hexdigest()]


# -- bodies ----------------------------------------------------------------------
def _json_body(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes (moto echoes text payloads)."""
    head, tail = b'{"data":"', b'"}'
    filler = (b"0123456789abcdefghijklmnopqrstuvwxyz" * (size // 36 + 1))
    return head + filler[: size - len(head) - len(tail)] + tail


def _chunks(data: bytes, size: int = 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_one_mib_chunked_body_is_signed_and_echoed(moto_envoy):
    body = _json_body(1024 * 1024)
    r = requests.post(moto_envoy.url + "/echo", data=_chunks(body), timeout=60,
                      headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:500]
    assert len(r.content) == len(body)
    assert r.content == body


def test_chunked_body_hash_matches_bytes_sent(capture_envoy, capture):
    """moto trusts x-amz-content-sha256 when it is signed; check it against the body here."""
    body = _json_body(1024 * 1024)
    r = requests.post(capture_envoy.url + "/echo", data=_chunks(body), timeout=60)
    assert r.status_code == 200, r.text[:500]
    req = capture.wait_for(1)[0]
    assert req.body == body
    assert req.header("x-amz-content-sha256") == hashlib.sha256(body).hexdigest()
    _auth_ok(req, "AKIACAPTURE000000000")


def test_body_under_lambda_limit_goes_through(capture_envoy, capture):
    body = _json_body(5 * 1024 * 1024)
    r = rawhttp.request(capture_envoy.url, "POST", "/echo", chunks=_chunks(body, 64 * 1024),
                        content_length=len(body), timeout=60)
    assert r.status == 200, r.body[:500]
    req = capture.wait_for(1, timeout=30)[0]
    assert len(req.body) == len(body)
    assert req.header("x-amz-content-sha256") == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_lambda_limit_is_413_json_and_never_sent(capture_envoy, capture, framing):
    size = LAMBDA_SYNC_LIMIT + 1024 * 1024
    chunks = rawhttp.repeat(b"x" * 65536, size)
    r = rawhttp.request(capture_envoy.url, "POST", "/echo", chunks=chunks,
                        content_length=size if framing == "content-length" else None,
                        timeout=60)
    assert r.status == 413, (r.status, r.body[:500])
    doc = json.loads(r.body)  # our JSON, not Envoy's plain "Payload Too Large"
    assert isinstance(doc, dict) and doc, doc
    time.sleep(0.3)
    assert capture.requests == [], "the oversized request reached the upstream"
    assert capture_envoy.wait_counter("envoy_lambda.local_rejections", 1) >= 1


# -- responses ---------------------------------------------------------------------
def test_function_error_is_502_with_header(capture_envoy, capture):
    err = b'{"errorMessage":"boom","errorType":"Exception"}'
    capture.push(200, {"X-Amz-Function-Error": "Unhandled", "Content-Type": "application/json"},
                 err)
    before = capture_envoy.counter("envoy_lambda.function_errors")
    r = requests.post(capture_envoy.url + "/echo", json={"a": 1}, timeout=TIMEOUT)
    assert r.status_code == 502, r.text
    assert r.headers.get("x-amz-function-error") == "Unhandled"
    assert capture_envoy.wait_counter("envoy_lambda.function_errors", before + 1) == before + 1


def test_invocations_counter(moto_envoy):
    stats = moto_envoy.stats()
    assert any(k == "envoy_lambda.invocations" or k.startswith("envoy_lambda.invocations.")
               for k in stats), sorted(k for k in stats if k.startswith("envoy_lambda"))
    before = moto_envoy.counter("envoy_lambda.invocations")
    for n in range(3):
        assert requests.post(moto_envoy.url + "/echo", json={"n": n},
                             timeout=TIMEOUT).status_code == 200
    assert moto_envoy.wait_counter("envoy_lambda.invocations", before + 3) == before + 3


# -- credentials from SDS, rotated ----------------------------------------------------------
def _poll_status(url: str, want: int, seconds: float = 10.0) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            seen.append(requests.post(url, json={"p": 1}, timeout=5).status_code)
        except requests.RequestException:  # connection trouble: record it, keep polling
            seen.append(-1)
        if seen[-1] == want:
            break
        time.sleep(0.2)
    return seen


def test_sds_secret_rotation(start_envoy, moto, tmp_path):
    i = moto.info
    sds_dir = tmp_path / "sds"
    sds_dir.mkdir()
    sds = sds_dir / "aws-creds.yaml"
    configs.write_atomically(sds, configs.sds_file_text(
        "aws-creds", configs.seed_secret(i.access_key, i.secret_key[:-1] + "X")))
    cfg = configs.module_config(moto.port, filter_config(moto.port, sds_path=str(sds)),
                                configs.standard_routes())  # no static secret at all
    e = start_envoy(cfg, name="module-sds")

    def sds_stats():
        return {k: v for k, v in e.stats().items() if k.startswith("sds.aws-creds.update")}

    seen = _poll_status(e.url + "/echo", 403)
    assert seen[-1] == 403, f"wrong SDS secret: statuses {seen}, {sds_stats()}"
    assert 200 not in seen

    configs.write_atomically(sds, configs.sds_file_text(
        "aws-creds", configs.seed_secret(i.access_key, i.secret_key)))
    seen = _poll_status(e.url + "/echo", 200)
    assert seen[-1] == 200, f"after rotation to the right secret: statuses {seen}, {sds_stats()}"


# -- config errors (envoy --mode validate) ------------------------------------------------
def _valid_parts():
    return filter_config(5000), configs.standard_routes()


def _validate_module(envoy_validate, fcfg, routes):
    return envoy_validate(configs.module_config(
        5000, fcfg, routes, secrets={"aws-creds": configs.seed_secret("AKIAX", "s")}))


def test_validate_accepts_good_config(envoy_validate):
    rc, out = _validate_module(envoy_validate, *_valid_parts())
    assert rc == 0, out[-3000:]


def test_validate_accepts_several_upstreams_and_sds_source(envoy_validate, tmp_path):
    sds = tmp_path / "aws-creds.yaml"
    configs.write_atomically(sds, configs.sds_file_text("aws-creds",
                                                        configs.seed_secret("AKIAX", "s")))
    fcfg = {"upstreams": [
        configs.aws_upstream("moto", 5000, configs.default_functions(), sds_path=str(sds)),
        configs.aws_upstream("west", 5001, [configs.fn("w", "west-fn", "7")], region="us-west-2",
                             secret_ref="other-creds"),
    ]}
    routes = configs.standard_routes() + [("/w", configs.module_per_route("west", "w"))]
    rc, out = envoy_validate(configs.module_config(
        5000, fcfg, routes, secrets={"other-creds": configs.seed_secret("AKIAY", "t")}))
    assert rc == 0, out[-3000:]


def _mutated(mutate):
    fcfg, routes = _valid_parts()
    routes = mutate(fcfg, routes) or routes
    return fcfg, routes


def _case(case, mutate, needle):
    return pytest.param(case, mutate, needle, id=case.replace(" ", "-"))


@pytest.mark.parametrize("case,mutate,needle", [
    _case("missing region",
          lambda f, r: f["upstreams"][0]["spec"].pop("region") and None, "region"),
    _case("empty function_name",
          lambda f, r: f["upstreams"][0]["functions"][0]["spec"].update(function_name=""),
          "function_name"),
    _case("unknown field in spec",
          lambda f, r: f["upstreams"][0]["spec"].update(bogus_field_xyz=1), "bogus_field_xyz"),
    _case("unknown top-level field",
          lambda f, r: f.update(unexpected_toplevel=True), "unexpected_toplevel"),
    _case("route with an empty upstream",
          lambda f, r: [("/x", configs.module_per_route("", "echo"))] + r,
          "invalid per-route config 'lambda': upstream: must not be empty"),
    _case("route with a bad path_template",
          lambda f, r: [("/x", configs.module_per_route_text(
              '{"upstream": "moto", "path_template": "/lambda/name"}'))] + r,
          "path_template: '/lambda/name' has no {function} segment"),
    _case("ARN in an unknown partition",
          lambda f, r: f["upstreams"][0]["functions"][0]["spec"].update(
              function_name="arn:aws-moon:lambda:us-east-1:123456789012:function:f"),
          "ARN partition 'aws-moon' is not one of aws, aws-cn, aws-eusc, aws-iso"),
    _case("unknown field in route config",
          lambda f, r: [("/x", configs.module_per_route("moto", "echo", bogus_route_xyz=1))] + r,
          "bogus_route_xyz"),
])
def test_validate_rejects_bad_config(envoy_validate, case, mutate, needle):
    fcfg, routes = _mutated(mutate)
    rc, out = _validate_module(envoy_validate, fcfg, routes)
    assert rc != 0, f"{case}: envoy --mode validate accepted it:\n{out[-3000:]}"
    assert "not found in any search path" not in out, out[-3000:]
    # The module must say which field/value is wrong (in its log line, before Envoy's own).
    # (Envoy does not echo the config in this output, so a hit is the module's message.)
    assert needle in out, f"{case}: {needle!r} not in output:\n{out[-3000:]}"


def test_validate_accepts_routes_naming_unknown_targets(envoy_validate):
    """Whether a route's upstream and function exist is known per request only (the route may
    belong to another listener's filter config): a valid config is never refused for it."""
    fcfg, routes = _valid_parts()
    routes = [("/x", configs.module_per_route("no-such-upstream", "echo")),
              ("/y", configs.module_per_route("moto", "no-such-function"))] + routes
    rc, out = _validate_module(envoy_validate, fcfg, routes)
    assert rc == 0, out[-3000:]


def test_struct_configs_work_like_json_strings(start_envoy, moto):
    """filter_config and per-route config as google.protobuf.Struct (Envoy renders it as JSON)."""
    import json as _json
    i = moto.info
    text = module_yaml(moto.port, i.access_key, i.secret_key)
    cfg = _json.loads(text)
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    for f in hcm["http_filters"]:
        fc = f["typed_config"].get("filter_config")
        if fc and fc["@type"].endswith("StringValue"):
            f["typed_config"]["filter_config"] = {
                "@type": "type.googleapis.com/google.protobuf.Struct",
                "value": _json.loads(fc["value"])}
    for vh in hcm["route_config"]["virtual_hosts"]:
        for r in vh["routes"]:
            per = r["typed_per_filter_config"][configs.MODULE_FILTER_NAME]
            per["filter_config"] = {"@type": "type.googleapis.com/google.protobuf.Struct",
                                    "value": _json.loads(per["filter_config"]["value"])}
    e = start_envoy(_json.dumps(cfg), name="module-struct")
    r = requests.post(e.url + "/echo-live", json={"s": 1}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"s": 1}
