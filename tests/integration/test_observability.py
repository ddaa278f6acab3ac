"""Observability through real Envoy: per-function stats (``fn_*``), access-log metadata under
``envoy_lambda``, cold starts from the REPORT line of a ``log_type: tail`` log, and the
``X-Amzn-Trace-Id`` derived from ``traceparent``.

The capture upstream plays Lambda (scripted headers, log tails, errors); moto checks that a
request carrying the derived trace header still passes its signature check.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests

import configs
from test_error_answers import curl_h2

TIMEOUT = 20
pytestmark = pytest.mark.usefixtures("module_so")

REQUEST_ID = "6f8c1a52-1d0c-4b0c-9d8e-0123456789ab"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY_FROM_TRACEPARENT = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
CLIENT_TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

LOG_FIELDS = ("function", "qualifier", "invocation_type", "request_id", "executed_version",
              "function_error", "error_code", "request_bytes", "response_bytes", "cold_start",
              "init_duration_ms", "billed_duration_ms")
ACCESS_LOG_FORMAT = " ".join(f"{k}=%DYNAMIC_METADATA(envoy_lambda:{k})%" for k in LOG_FIELDS) + "\n"


def report(request_id: str, init_ms: str | None, billed: int = 4) -> str:
    line = (f"REPORT RequestId: {request_id}\tDuration: 3.10 ms\tBilled Duration: {billed} ms\t"
            "Memory Size: 128 MB\tMax Memory Used: 60 MB\t")
    if init_ms is not None:
        line += f"Init Duration: {init_ms} ms\t"
    return f"START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n" \
           f"{line}\n"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def obs_config(port: int, access_log: str, creds=("AKIACAPTURE", "s"), **spec_extra) -> str:
    """/echo, /echo-live (capture or moto), /tail (log_type tail), file access log."""
    fcfg = {"upstreams": [configs.aws_upstream("moto", port, configs.default_functions(),
                                               **spec_extra)]}
    routes = [
        ("/echo-live", configs.module_per_route("moto", "echo-live")),
        ("/echo", configs.module_per_route("moto", "echo")),
        ("/tail", configs.module_per_route("moto", "echo", log_type="tail")),
    ]
    cfg = json.loads(configs.module_config(
        port, fcfg, routes, secrets={"aws-creds": configs.seed_secret(*creds)}))
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"] = [{
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": access_log,
            "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
        },
    }]
    # Histograms reach /stats only when merged, at each flush.
    cfg["stats_flush_interval"] = "0.2s"
    return json.dumps(cfg)


def access_lines(path, want: int, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = [ln for ln in open(path).read().splitlines() if ln.strip()]
        except FileNotFoundError:
            lines = []
        if len(lines) >= want or time.monotonic() > deadline:
            return [dict(kv.split("=", 1) for kv in ln.split(" ")) for ln in lines]
        time.sleep(0.1)


def prometheus(envoy) -> str:
    code, body = envoy.admin("/stats/prometheus")
    assert code == 200, body[:300]
    return body


def labelled(text: str, metric: str) -> dict[tuple, float]:
    """{(upstream, function, qualifier, extra…): value} of one metric in /stats/prometheus."""
    out = {}
    for m in re.finditer(r"^(\w+)\{([^}]*)\} (\S+)$", text, re.M):
        if not m.group(1).endswith(metric):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = (labels.get("upstream"), labels.get("function"), labels.get("qualifier"),
               labels.get("type") or labels.get("class") or labels.get("reason"))
        out[tuple(k for k in key if k is not None)] = float(m.group(3))
    return out


# Per-function counters are summed in the module and published once a second.
COUNTER_FLUSH = 1.0


def settled(envoy, metric: str, want: dict, timeout: float = 5.0) -> str:
    """/stats/prometheus once `metric` reads `want` (a flush has published it), or at the
    timeout. For an empty `want`, after two flush periods: a late count would show by then."""
    if not want:
        time.sleep(2 * COUNTER_FLUSH)
        return prometheus(envoy)
    deadline = time.monotonic() + timeout
    while True:
        text = prometheus(envoy)
        if labelled(text, metric) == want or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def wait_histogram(envoy, metric: str, key: tuple, count: int, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = labelled(prometheus(envoy), metric + "_count")
        if got.get(key, 0) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.fixture
def obs_envoy(start_envoy, capture, tmp_path):
    log = tmp_path / "access.log"
    # Envoy writes file access logs every 10 s by default.
    e = start_envoy(obs_config(capture.port, str(log)), name="obs",
                    extra_args=["--file-flush-interval-msec", "100"])
    e.access_log = log
    return e


ECHO = ("moto", "echo", "$LATEST")
LIVE = ("moto", "echo", "live")


def test_per_function_counters_and_round_trip_histogram_move_for_the_right_function_only(
        obs_envoy, capture):
    for _ in range(3):
        r = requests.post(obs_envoy.url + "/echo-live", data=b"0123456789", timeout=TIMEOUT)
        assert r.status_code == 200, r.text
    capture.push(200, {"X-Amz-Function-Error": "Handled"}, b'{"errorMessage":"no"}')
    assert requests.get(obs_envoy.url + "/echo", timeout=TIMEOUT).status_code == 502
    capture.push(429, {"x-amzn-RequestId": REQUEST_ID,
                       "X-Amzn-ErrorType": "TooManyRequestsException"},
                 b'{"message":"Rate exceeded"}')
    assert requests.get(obs_envoy.url + "/echo", timeout=TIMEOUT).status_code == 429

    text = settled(obs_envoy, "fn_invocations", {LIVE: 3, ECHO: 2})
    assert labelled(text, "fn_invocations") == {LIVE: 3, ECHO: 2}
    assert labelled(text, "fn_payload_bytes_in") == {LIVE: 30}  # GETs add nothing
    assert labelled(text, "fn_payload_bytes_out")[LIVE] == 30
    assert labelled(text, "fn_function_errors") == {ECHO + ("Handled",): 1}
    assert labelled(text, "fn_api_errors") == {ECHO + ("throttled",): 1}
    # The unlabelled counters still count everything.
    assert obs_envoy.counter("envoy_lambda.invocations") == 5
    wait_histogram(obs_envoy, "fn_round_trip_ms", LIVE, 3)
    hist = wait_histogram(obs_envoy, "fn_round_trip_ms", ECHO, 2)
    assert hist == {LIVE: 3, ECHO: 2}, hist


def test_per_upstream_switch_folds_the_function_labels(start_envoy, capture, tmp_path):
    e = start_envoy(obs_config(capture.port, str(tmp_path / "a.log"),
                               function_stats="per_upstream"))
    requests.get(e.url + "/echo-live", timeout=TIMEOUT)
    requests.get(e.url + "/echo", timeout=TIMEOUT)
    want = {("moto", "*", "*"): 2}
    assert labelled(settled(e, "fn_invocations", want), "fn_invocations") == want


def test_stats_off_defines_nothing_per_function_that_moves(start_envoy, capture, tmp_path):
    e = start_envoy(obs_config(capture.port, str(tmp_path / "a.log"), function_stats="off"))
    requests.get(e.url + "/echo", timeout=TIMEOUT)
    assert labelled(settled(e, "fn_invocations", {}), "fn_invocations") == {}
    assert e.counter("envoy_lambda.invocations") == 1


def test_access_log_carries_request_id_executed_version_and_error_type(obs_envoy, capture):
    capture.push(200, {"x-amzn-RequestId": REQUEST_ID, "X-Amz-Executed-Version": "7"},
                 b'{"ok":true}')
    capture.push(200, {"x-amzn-RequestId": "req-2", "X-Amz-Executed-Version": "7",
                       "X-Amz-Function-Error": "Unhandled"}, b'{"errorMessage":"boom"}')
    assert requests.post(obs_envoy.url + "/echo-live", data=b"abc",
                         timeout=TIMEOUT).status_code == 200
    assert requests.get(obs_envoy.url + "/echo", timeout=TIMEOUT).status_code == 502
    ok, failed = access_lines(obs_envoy.access_log, 2)
    assert ok["function"] == "echo" and ok["qualifier"] == "live", ok
    assert ok["invocation_type"] == "RequestResponse"
    assert ok["request_id"] == REQUEST_ID
    assert ok["executed_version"] == "7"
    assert ok["request_bytes"] == "3" and ok["response_bytes"] == "11", ok
    assert ok["function_error"] == "-" and ok["error_code"] == "-", ok
    assert failed["request_id"] == "req-2"
    assert failed["qualifier"] == "$LATEST"
    assert failed["function_error"] == "Unhandled"
    assert failed["error_code"] == "function_error"


def test_metadata_switch_off_leaves_the_keys_unset(start_envoy, capture, tmp_path):
    log = tmp_path / "off.log"
    e = start_envoy(obs_config(capture.port, str(log), access_log_metadata=False),
                    extra_args=["--file-flush-interval-msec", "100"])
    capture.push(200, {"x-amzn-RequestId": REQUEST_ID, "X-Amz-Function-Error": "Handled"}, b"{}")
    assert requests.get(e.url + "/echo", timeout=TIMEOUT).status_code == 502
    [line] = access_lines(log, 1)
    assert set(line.values()) == {"-"}, line
    # The stats still count.
    want = {ECHO + ("Handled",): 1}
    assert labelled(settled(e, "fn_function_errors", want), "fn_function_errors") == want


def test_a_cold_start_is_counted_exactly_once_and_a_truncated_report_is_ignored(
        obs_envoy, capture):
    cold = report("r1", "155.60", billed=160)
    warm = report("r2", None)
    truncated = report("r3", "155.60")
    truncated = truncated[:truncated.index("Init Dur") + 8]
    for log in (cold, warm, truncated):
        capture.push(200, {"X-Amz-Log-Result": b64(log)}, b"{}")
        r = requests.get(obs_envoy.url + "/tail", timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert "x-amz-log-result" not in {k.lower() for k in r.headers}
    # Without log_type tail, a log header is not read at all.
    capture.push(200, {"X-Amz-Log-Result": b64(cold)}, b"{}")
    assert requests.get(obs_envoy.url + "/echo", timeout=TIMEOUT).status_code == 200

    text = settled(obs_envoy, "fn_cold_starts", {ECHO: 1})
    assert labelled(text, "fn_cold_starts") == {ECHO: 1}
    assert wait_histogram(obs_envoy, "fn_billed_duration_ms", ECHO, 2)[ECHO] == 2
    assert wait_histogram(obs_envoy, "fn_init_duration_ms", ECHO, 1)[ECHO] == 1
    lines = access_lines(obs_envoy.access_log, 4)
    assert [ln["cold_start"] for ln in lines] == ["true", "false", "-", "-"], lines
    assert lines[0]["init_duration_ms"] == "155.6"
    assert lines[0]["billed_duration_ms"] == "160"
    assert lines[1]["init_duration_ms"] == "-"
    assert "panic" not in obs_envoy.log_text().lower()


def trace_headers(cap) -> list[str]:
    return cap.header_all("x-amzn-trace-id")


@pytest.mark.parametrize("h2", [False, True], ids=["http1", "http2"])
def test_traceparent_becomes_x_amzn_trace_id_and_the_clients_never_passes(
        start_envoy, capture, tmp_path, h2):
    e = start_envoy(obs_config(capture.port, str(tmp_path / "a.log"), trace_propagation=True))

    def get(headers: dict) -> int:
        if h2:
            args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
            return curl_h2(e.url + "/echo", *args)[0]
        return requests.get(e.url + "/echo", headers=headers, timeout=TIMEOUT).status_code

    assert get({"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": CLIENT_TRACE}) == 200
    assert get({"X-Amzn-Trace-Id": CLIENT_TRACE}) == 200
    first, second = capture.wait_for(2)
    assert trace_headers(first) == [XRAY_FROM_TRACEPARENT]
    assert "x-amzn-trace-id" not in first.header("authorization")
    # No traceparent: derived from Envoy's request id, never the client's value.
    [derived] = trace_headers(second)
    rid = second.header("x-request-id").replace("-", "")
    assert derived.startswith(f"Root=1-{rid[:8]}-{rid[8:]};Parent="), derived
    assert CLIENT_TRACE not in derived


def test_without_the_switch_the_clients_trace_header_is_dropped(obs_envoy, capture):
    requests.get(obs_envoy.url + "/echo", headers={"X-Amzn-Trace-Id": CLIENT_TRACE,
                                                   "traceparent": TRACEPARENT}, timeout=TIMEOUT)
    [cap] = capture.wait_for(1)
    assert trace_headers(cap) == []


def test_moto_accepts_the_request_with_the_derived_trace_header(start_envoy, moto, tmp_path):
    i = moto.info
    e = start_envoy(obs_config(moto.port, str(tmp_path / "a.log"),
                               creds=(i.access_key, i.secret_key), trace_propagation=True))
    r = requests.post(e.url + "/echo", data=b'{"x":1}',
                      headers={"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": CLIENT_TRACE},
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json() == {"x": 1}
