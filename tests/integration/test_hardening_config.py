"""Config checks that cannot depend on load order, and the edge conventions (issue 8).

Routes are checked against the filter config of the listener that serves them, per request:
two listeners with different upstreams start, an LDS update that adds a function together with
its route (or renames an upstream) is taken, and a route naming an unknown upstream or
function is answered with a JSON error and logged once. Duplicate JSON keys are refused at
load; a client-chosen function name is capped and escaped in the 404; the shipped configs
take the client address from the connection, not from X-Forwarded-For.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

import configs

TIMEOUT = 20
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("module_so")


def _secrets(access_key: str, secret_key: str) -> list[dict]:
    return [configs.static_secret("aws-creds", configs.seed_secret(access_key, secret_key))]


def _listener(name: str, upstream: dict, routes: list[tuple[str, dict]], **kw) -> dict:
    rts = [configs.route(p, "lambda", per_filter=per) for p, per in routes]
    return configs.http_listener([configs.module_filter({"upstreams": [upstream]})], rts,
                                 name=name, **kw)


# -- routes are checked per request, against their own listener -----------------------------
def test_two_listeners_with_different_upstreams_each_serve_their_own(start_envoy, moto):
    """Before: `'ub' is not an upstream of any envoy-lambda filter config`, Envoy did not start."""
    i = moto.info
    a = _listener("a", configs.aws_upstream("ua", moto.port, [configs.fn("echo", "echo")]),
                  [("/echo", configs.module_per_route("ua", "echo")),
                   ("/other", configs.module_per_route("ub", "hello"))])
    b = _listener("b", configs.aws_upstream("ub", moto.port, [configs.fn("hello", "hello")]),
                  [("/hello", configs.module_per_route("ub", "hello")),
                   ("/other", configs.module_per_route("ua", "echo"))])
    e = start_envoy(configs.dump(configs.bootstrap(
        [a, b], [configs.static_cluster("lambda", moto.port)],
        _secrets(i.access_key, i.secret_key))), name="two-listeners")
    r = requests.post(e.listeners["a"] + "/echo", json={"on": "a"}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"on": "a"}, r.text
    r = requests.post(e.listeners["b"] + "/hello", json={"on": "b"}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"on": "b"}, r.text
    # Each listener only knows its own upstream: the other's is unknown there.
    for lst, other in (("a", "ub"), ("b", "ua")):
        r = requests.get(e.listeners[lst] + "/other", timeout=TIMEOUT)
        assert r.status_code == 500, r.text
        assert r.json()["error"] == "unknown_upstream", r.text
        assert f"'{other}'" in r.json()["message"], r.text


def test_unknown_upstream_or_function_is_a_json_error_counted_and_logged_once(start_envoy,
                                                                              capture):
    """Before: Envoy refused to start. Now it starts; the routes answer 500/404 JSON."""
    upstream = configs.aws_upstream("moto", capture.port, configs.default_functions())
    lst = _listener("main", upstream, [
        ("/no-upstream", configs.module_per_route("no-such-upstream", "echo")),
        ("/no-function", configs.module_per_route("moto", "no-such-function")),
        ("/echo", configs.module_per_route("moto", "echo")),
    ])
    e = start_envoy(configs.dump(configs.bootstrap(
        [lst], [configs.static_cluster("lambda", capture.port)],
        _secrets("AKIACAPTURE000000000", "capture-secret"))), name="unknown-names")
    for _ in range(3):
        r = requests.get(e.url + "/no-upstream", timeout=TIMEOUT)
        assert r.status_code == 500, r.text
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"] == "unknown_upstream"
        assert "'no-such-upstream'" in r.json()["message"]
        r = requests.post(e.url + "/no-function", json={}, timeout=TIMEOUT)
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "unknown_function"
        assert "'no-such-function'" in r.json()["message"]
    assert requests.get(e.url + "/echo", timeout=TIMEOUT).status_code == 200
    assert capture.requests and all("no-such" not in c.path for c in capture.requests)
    assert e.wait_counter("envoy_lambda.local_rejections", 6) == 6
    log = e.log_text()
    assert log.count("upstream 'no-such-upstream', which the filter config") == 1, log[-3000:]
    assert log.count("function 'no-such-function' of upstream 'moto'") == 1, log[-3000:]


# -- LDS updates (file-based dynamic listeners) -------------------------------------------------
def _wait_status(url: str, want: int, method: str = "post", timeout: float = 15.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(requests.request(method, url, json={"p": 1}, timeout=5).status_code)
        except requests.RequestException:
            seen.append(-1)
        if seen[-1] == want:
            break
        time.sleep(0.2)
    return seen


def _lds_envoy(start_envoy, moto, tmp_path, first: dict):
    i = moto.info
    lds = tmp_path / "lds" / "listeners.yaml"
    lds.parent.mkdir()
    configs.write_atomically(lds, configs.lds_file_text([first]))
    e = start_envoy(configs.dump(configs.lds_bootstrap(
        lds, [configs.static_cluster("lambda", moto.port)],
        _secrets(i.access_key, i.secret_key))), name="lds")
    return e, lds


def _lds_update(e, lds, listener: dict) -> None:
    before = e.counter("listener_manager.lds.update_success")
    configs.write_atomically(lds, configs.lds_file_text([listener]))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if e.counter("listener_manager.lds.update_success") > before:
            break
        if e.counter("listener_manager.lds.update_rejected") > 0:
            pytest.fail("Envoy rejected the LDS update:\n" + e.log_tail(40))
        time.sleep(0.1)
    else:
        pytest.fail("the LDS update never arrived:\n" + e.log_tail(40))
    e.listeners = e._read_listeners()


def test_lds_update_adding_a_function_and_its_route_is_served(start_envoy, moto, tmp_path):
    """Before: the new route was checked against the old filter config and the update refused."""
    first = _listener("main", configs.aws_upstream("moto", moto.port, [configs.fn("echo", "echo")]),
                      [("/echo", configs.module_per_route("moto", "echo"))])
    e, lds = _lds_envoy(start_envoy, moto, tmp_path, first)
    assert _wait_status(e.url + "/echo", 200)[-1] == 200
    second = _listener("main", configs.aws_upstream(
        "moto", moto.port, [configs.fn("echo", "echo"), configs.fn("hello", "hello")]),
        [("/echo", configs.module_per_route("moto", "echo")),
         ("/hello", configs.module_per_route("moto", "hello"))])
    _lds_update(e, lds, second)
    seen = _wait_status(e.url + "/hello", 200)
    assert seen[-1] == 200, f"statuses {seen}\n{e.log_tail(30)}"
    assert requests.post(e.url + "/hello", json={"h": 1}, timeout=TIMEOUT).json() == {"h": 1}


def test_lds_update_renaming_an_upstream_is_served(start_envoy, moto, tmp_path):
    """Before: the renamed upstream was unknown to the registry; the old name stayed known."""
    first = _listener("main", configs.aws_upstream("old", moto.port, [configs.fn("echo", "echo")]),
                      [("/echo", configs.module_per_route("old", "echo"))])
    e, lds = _lds_envoy(start_envoy, moto, tmp_path, first)
    assert _wait_status(e.url + "/echo", 200)[-1] == 200
    second = _listener("main", configs.aws_upstream("new", moto.port, [configs.fn("echo", "echo")]),
                       [("/echo", configs.module_per_route("new", "echo")),
                        ("/stale", configs.module_per_route("old", "echo"))])
    _lds_update(e, lds, second)
    r = requests.post(e.url + "/echo", json={"renamed": True}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json() == {"renamed": True}, r.text
    # The removed name is forgotten: a route still naming it is answered as unknown.
    seen = _wait_status(e.url + "/stale", 500, method="get")
    assert seen[-1] == 500, seen


# -- duplicate keys ----------------------------------------------------------------------------
DUP_FILTER = ('{"name": "moto", "spec": {"region": "us-east-1", "secret_ref": "aws-creds",'
              ' "region": "eu-west-1"}, "functions": [{"name": "echo",'
              ' "spec": {"function_name": "echo"}}]}')


@pytest.mark.parametrize("filter_text,route_text,needle", [
    pytest.param(DUP_FILTER, '{"upstream": "moto", "function": "echo"}',
                 "invalid filter config 'lambda': spec.region: duplicate key", id="filter-config"),
    pytest.param(DUP_FILTER.replace(', "region": "eu-west-1"', ""),
                 '{"upstream": "moto", "function": "echo", "function": "other"}',
                 "invalid per-route config 'lambda': function: duplicate key", id="per-route"),
])
def test_duplicate_keys_are_refused_at_load(envoy_validate, filter_text, route_text, needle):
    """Before: serde_json kept the last value silently and Envoy started."""
    text = configs.module_config(5000, filter_text,
                                 [("/echo", configs.module_per_route_text(route_text))],
                                 secrets={"aws-creds": configs.seed_secret("AKIAX", "s")})
    rc, out = envoy_validate(text)
    assert rc != 0, out[-3000:]
    assert needle in out, out[-3000:]


# -- a client-chosen name in the 404 -------------------------------------------------------
def test_client_chosen_function_name_is_capped_and_escaped_in_the_404(start_envoy, capture):
    """Before: the whole name came back, control characters included (as JSON escapes)."""
    upstream = configs.aws_upstream("moto", capture.port, configs.default_functions())
    per = configs.module_per_route_text('{"upstream": "moto", "path_template": "/lambda/{function}"}')
    e = start_envoy(configs.dump(configs.bootstrap(
        [_listener("main", upstream, [("/lambda/", per)])],
        [configs.static_cluster("lambda", capture.port)],
        _secrets("AKIACAPTURE000000000", "capture-secret"))), name="name-cap")
    name = "evil%0D%0Aset-cookie:%20x%1B%5B31m" + "x" * 4000
    r = requests.get(e.url + "/lambda/" + name, timeout=TIMEOUT)
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["error"] == "unknown_function"
    message = body["message"]
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in message), repr(message)
    assert "evil\\r\\nset-cookie: x\\u{1b}[31m" in message, repr(message)
    assert len(message) < 250, len(message)
    assert message.endswith("…'"), repr(message[-20:])
    assert not capture.requests
    # Names from request paths are the client's: the module never logs them (Envoy's access
    # log shows the path, as it does for every request).
    module_lines = [ln for ln in e.log_text().splitlines() if "envoy-lambda:" in ln]
    assert not any("evil" in ln for ln in module_lines), module_lines


def test_request_time_answers_over_http2(start_envoy, capture):
    """The same answers over HTTP/2: an unknown upstream is a 500 JSON (before: Envoy did not
    start), a client-chosen name comes back capped and escaped in the 404."""
    upstream = configs.aws_upstream("moto", capture.port, configs.default_functions())
    per = configs.module_per_route_text('{"upstream": "moto", "path_template": "/lambda/{function}"}')
    e = start_envoy(configs.dump(configs.bootstrap(
        [_listener("main", upstream, [("/lambda/", per),
                                      ("/no-upstream", configs.module_per_route("nope", "echo"))])],
        [configs.static_cluster("lambda", capture.port)],
        _secrets("AKIACAPTURE000000000", "capture-secret"))), name="h2-answers")
    curl = shutil.which("curl")
    assert curl, "curl is needed for the HTTP/2 checks"

    def h2(path: str) -> tuple[bytes, dict]:
        r = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "-i", "--max-time", "10",
                            e.url + path], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        return head, json.loads(body)

    head, body = h2("/no-upstream")
    assert head.startswith(b"HTTP/2 500"), head
    assert body["error"] == "unknown_upstream", body
    head, body = h2("/lambda/evil%0D%0Aset-cookie:%20x" + "x" * 4000)
    assert head.startswith(b"HTTP/2 404"), head
    assert body["error"] == "unknown_function", body
    assert "evil\\r\\nset-cookie: x" in body["message"], body
    assert len(body["message"]) < 250 and body["message"].endswith("…'"), body
    assert not capture.requests
    assert e.wait_counter("envoy_lambda.local_rejections", 2) == 2


# -- the edge: the client address comes from the connection ------------------------------------
def _shipped_hcm_edge_settings(name: str) -> dict:
    doc = yaml.safe_load((ROOT / "envoy" / name).read_text())
    hcms = [f["typed_config"] for lst in doc["static_resources"]["listeners"]
            for ch in lst["filter_chains"] for f in ch["filters"]
            if f["name"] == "envoy.filters.network.http_connection_manager"]
    assert hcms, name
    for hcm in hcms:
        assert hcm.get("use_remote_address") is True, f"{name}: use_remote_address not true"
        assert "xff_num_trusted_hops" in hcm, f"{name}: xff_num_trusted_hops not set"
    return {k: hcms[0][k] for k in ("use_remote_address", "xff_num_trusted_hops")}


@pytest.mark.parametrize("name", ["quickstart.yaml", "aws.yaml"])
def test_shipped_configs_take_the_client_address_from_the_connection(start_envoy, capture, name):
    """With the shipped HCM settings a client cannot choose the event's sourceIp by sending
    X-Forwarded-For. Before: the shipped configs left Envoy's default, which trusts it."""
    edge = _shipped_hcm_edge_settings(name)
    upstream = configs.aws_upstream("moto", capture.port, configs.default_functions())
    lst = _listener("main", upstream,
                    [("/echo", configs.module_per_route("moto", "echo", request_format="apigw_v2"))],
                    hcm_extra=edge)
    e = start_envoy(configs.dump(configs.bootstrap(
        [lst], [configs.static_cluster("lambda", capture.port)],
        _secrets("AKIACAPTURE000000000", "capture-secret"))), name="edge")
    r = requests.get(e.url + "/echo", headers={"x-forwarded-for": "203.0.113.66"},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    event = json.loads(capture.wait_for(1)[0].body)
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1", event["requestContext"]


def test_without_the_edge_settings_x_forwarded_for_decides_the_source_ip(start_envoy, capture):
    """Why the shipped configs set them: Envoy's default believes the client's header."""
    upstream = configs.aws_upstream("moto", capture.port, configs.default_functions())
    lst = _listener("main", upstream,
                    [("/echo", configs.module_per_route("moto", "echo", request_format="apigw_v2"))])
    e = start_envoy(configs.dump(configs.bootstrap(
        [lst], [configs.static_cluster("lambda", capture.port)],
        _secrets("AKIACAPTURE000000000", "capture-secret"))), name="no-edge")
    r = requests.get(e.url + "/echo", headers={"x-forwarded-for": "203.0.113.66"},
                     timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    event = json.loads(capture.wait_for(1)[0].body)
    assert event["requestContext"]["http"]["sourceIp"] == "203.0.113.66", event["requestContext"]
