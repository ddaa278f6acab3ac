#!/usr/bin/env python3
"""A/B/C/D benchmark of one Envoy 1.40 binary in four configurations.

  A  plain router                                   (the floor)
  B  Envoy's built-in envoy.filters.http.aws_lambda (static inline credentials)
  C  our dynamic module envoy_lambda                (static generic secret)
  D  plain router + envoy.filters.http.buffer       (what holding the whole body costs)

All four forward to the same local "Lambda": a separate Envoy (the upstream) whose
``direct_response`` routes answer 200 + a small JSON body. The upstream runs on core 1 with
the load generator (h2load); the Envoy under test runs with ``--concurrency 1`` pinned to core
0, so the CPU read from its /proc/<pid>/stat is the cost of the configuration alone.

Run through ``bench/run.sh`` (it installs h2load, builds the module, bootstraps Envoy).
Configs are built with the integration tests' builders (tests/integration/configs.py).
Only loopback is used.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import configs  # noqa: E402
import envoy_proc  # noqa: E402

import chart  # noqa: E402  (bench/chart.py)

# --- what is measured ----------------------------------------------------------------------
KIB = 1024
MIB = 1024 * KIB
BUFFER_LIMIT = 8 * MIB            # per_connection_buffer_limit_bytes, same in A, B, C and D
CONFIGS = ("A", "B", "C", "D")
CONFIG_NAMES = {"A": "plain router", "B": "native aws_lambda filter", "C": "envoy_lambda module",
                "D": "router + buffer filter"}

# payload key -> request body size (None: a GET without body), the Lambda's answer ("small":
# LAMBDA_BODY; "big": RESPONSE_SIZE bytes of JSON; "bigwrap": the same bytes as the body of an
# API-Gateway-style result, which C unwraps), the client path, and its label in the tables.
PAYLOADS = {
    "get": dict(size=None, answer="small", path="/echo", label="GET, no body"),
    "1k": dict(size=1 * KIB, answer="small", path="/echo", label="POST 1 KiB"),
    "64k": dict(size=64 * KIB, answer="small", path="/echo", label="POST 64 KiB"),
    "1m": dict(size=1 * MIB, answer="small", path="/echo", label="POST 1 MiB"),
    "r1m": dict(size=None, answer="big", path="/echo", label="GET, 1 MiB answer"),
    "r1m-unwrap": dict(size=None, answer="bigwrap", path="/unwrap",
                       label="GET, 1 MiB answer, C unwraps"),
}
DEFAULT_RATES = {"get": 1000, "1k": 1000, "64k": 500, "1m": 100, "r1m": 100, "r1m-unwrap": 100}
WARMUP = {"get": 5000, "1k": 5000, "64k": 2000, "1m": 200, "r1m": 200, "r1m-unwrap": 200}
# --quick: a smoke check of every cell, a few seconds each (the figures are only indicative)
QUICK_WARMUP = {"get": 300, "1k": 300, "64k": 100, "1m": 20, "r1m": 20, "r1m-unwrap": 20}

ACCESS_KEY = "AKIDBENCHEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:echo"
# What the fake Lambda answers (same bytes on both upstream listeners).
LAMBDA_BODY = '{"statusCode":200,"body":"ok","from":"bench-lambda"}'
CLIENT_PATH = "/echo"
RESPONSE_SIZE = 1 * MIB
# The fake Lambda picks its answer by this request header, which every config forwards.
ANSWER_HEADER = "x-bench-answer"

CORE_UNDER_TEST = 0
CORE_OTHERS = 1


def big_answer() -> str:
    """A JSON document of exactly RESPONSE_SIZE bytes (a large function result)."""
    return make_payload_bytes(RESPONSE_SIZE).decode()


def wrapped_answer() -> str:
    """big_answer() as the body of an API-Gateway-style result: C with `unwrap` answers the
    client with exactly big_answer()."""
    return json.dumps({"statusCode": 200, "headers": {"content-type": "application/json"},
                       "body": big_answer()}, separators=(",", ":"))


def expected_answer(payload: str, cfg: str) -> bytes:
    """What the client must get: the Lambda's answer, or (C on an unwrap route) its body."""
    answer = PAYLOADS[payload]["answer"]
    if answer == "small":
        return LAMBDA_BODY.encode()
    if answer == "bigwrap" and cfg not in ("C", "E"):
        return wrapped_answer().encode()
    return big_answer().encode()


class BenchError(RuntimeError):
    """Anything that makes the figures worthless: a non-200, a dead Envoy, a short run."""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- configs ----------------------------------------------------------------------------------
def _strip_access_logs(cfg: dict) -> dict:
    """The test builders log every request to stdout; a benchmark must not pay for that."""
    for lst in cfg["static_resources"]["listeners"]:
        for fc in lst["filter_chains"]:
            for f in fc["filters"]:
                f["typed_config"].pop("access_log", None)
    return cfg


def _set_buffer_limit(cfg: dict, limit: int = BUFFER_LIMIT) -> dict:
    for lst in cfg["static_resources"]["listeners"]:
        lst["per_connection_buffer_limit_bytes"] = limit
    return cfg


def _direct(status: int, body: str) -> dict:
    return {"status": status, "body": {"inline_string": body}}


def upstream_config() -> str:
    """The fake Lambda. Listener ``lambda`` answers 200 only to a SigV4-signed Invoke
    (path /2015-03-31/functions/…, Authorization AWS4-HMAC-SHA256, x-amz-date,
    x-amz-content-sha256) and 403 to anything else, so a 200 through B or C proves the request
    was rewritten and signed. Listener ``plain`` answers 200 to anything (for A). Both buffer
    the whole request body first (the buffer filter), as Lambda reads the whole payload before
    answering."""
    hdrs = [{"header": {"key": "content-type", "value": "application/json"}},
            {"header": {"key": "x-amzn-requestid", "value": "00000000-0000-0000-0000-000000000000"}},
            {"header": {"key": "x-amz-executed-version", "value": "$LATEST"}}]
    signed_invoke = {
        "match": {
            "prefix": "/2015-03-31/functions/",
            "headers": [
                {"name": "authorization",
                 "string_match": {"prefix": "AWS4-HMAC-SHA256 Credential="}},
                {"name": "x-amz-date", "present_match": True},
                {"name": "x-amz-content-sha256", "present_match": True},
            ],
        },
        "direct_response": _direct(200, LAMBDA_BODY),
        "response_headers_to_add": hdrs,
    }
    refuse = {"match": {"prefix": "/"},
              "direct_response": _direct(403, '{"message":"not a SigV4-signed Lambda Invoke"}')}
    anything = {"match": {"prefix": "/"}, "direct_response": _direct(200, LAMBDA_BODY),
                "response_headers_to_add": hdrs}

    def answering(route: dict, answer: str, body: str) -> dict:
        """The same route, for requests that ask (ANSWER_HEADER) for a large answer."""
        r = json.loads(json.dumps(route))
        r["match"].setdefault("headers", []).append(
            {"name": ANSWER_HEADER, "string_match": {"exact": answer}})
        r["direct_response"] = _direct(200, body)
        return r

    large = [("big", big_answer()), ("bigwrap", wrapped_answer())]
    signed_routes = [answering(signed_invoke, a, b) for a, b in large] + [signed_invoke, refuse]
    plain_routes = [answering(anything, a, b) for a, b in large] + [anything]
    buffer_filter = {
        "name": "envoy.filters.http.buffer",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                         "max_request_bytes": BUFFER_LIMIT},
    }
    listeners = [
        configs.http_listener([buffer_filter], signed_routes, name="lambda",
                              buffer_limit=BUFFER_LIMIT),
        configs.http_listener([buffer_filter], plain_routes, name="plain",
                              buffer_limit=BUFFER_LIMIT),
    ]
    for lst in listeners:  # direct_response bodies are capped at 4 KiB by default
        hcm = lst["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["route_config"]["max_direct_response_body_size_bytes"] = 2 * RESPONSE_SIZE
    cfg = configs.bootstrap(listeners, [])
    return configs.dump(_strip_access_logs(cfg))


def config_a(plain_port: int) -> str:
    cfg = configs.bootstrap(
        [configs.http_listener([], [configs.route("/", "lambda")], buffer_limit=BUFFER_LIMIT)],
        [configs.static_cluster("lambda", plain_port)])
    return configs.dump(_strip_access_logs(cfg))


def buffer_filter() -> dict:
    """Envoy's buffer filter holding the whole request, with the same 8 MiB limit."""
    return {"name": "envoy.filters.http.buffer",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http."
                                      "buffer.v3.Buffer",
                             "max_request_bytes": BUFFER_LIMIT}}


def config_d(plain_port: int) -> str:
    """A plus the buffer filter: the body is held whole before it is forwarded, as a signer
    must hold it, but nothing is hashed, signed or rewritten."""
    cfg = configs.bootstrap(
        [configs.http_listener([buffer_filter()], [configs.route("/", "lambda")],
                               buffer_limit=BUFFER_LIMIT)],
        [configs.static_cluster("lambda", plain_port)])
    return configs.dump(_strip_access_logs(cfg))


def config_b(lambda_port: int) -> str:
    cfg = json.loads(configs.native_lambda_config(lambda_port, FUNCTION_ARN, ACCESS_KEY,
                                                  SECRET_KEY))
    # match_excluded_headers is a workaround for moto's botocore check in the tests; here the
    # native filter runs with its defaults, as a user would deploy it.
    for lst in cfg["static_resources"]["listeners"]:
        for fc in lst["filter_chains"]:
            for f in fc["filters"]:
                for hf in f["typed_config"]["http_filters"]:
                    hf["typed_config"].pop("match_excluded_headers", None)
    return configs.dump(_set_buffer_limit(_strip_access_logs(cfg)))


def config_c(lambda_port: int, observability: bool = True) -> str:
    """The module. Without `observability` (bench/count.py's E): no per-function stats and no
    access-log metadata, to show what those cost."""
    extra = {} if observability else {"function_stats": "off", "access_log_metadata": False}
    upstream = configs.aws_upstream("bench-lambda", lambda_port, [configs.fn("echo", "echo")],
                                    **extra)
    text = configs.module_config(
        lambda_port, {"upstreams": [upstream]},
        [("/unwrap", configs.module_per_route("bench-lambda", "echo", response_format="unwrap")),
         ("/", configs.module_per_route("bench-lambda", "echo"))],
        secrets={"aws-creds": configs.seed_secret(ACCESS_KEY, SECRET_KEY)},
        buffer_limit=BUFFER_LIMIT)
    return configs.dump(_strip_access_logs(json.loads(text)))


# --- /proc readings -------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def kernel_counts(pid: int) -> tuple[int, int, int]:
    """(system-time ticks, minor page faults, context switches) of the whole process: the
    kernel's share of a request, which instruction counts (callgrind) never see."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    switches = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        switches += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return int(fields[12]), int(fields[7]), switches  # stime, minflt (proc(5) 15, 10)


def cpu_ns_schedstat(pid: int) -> int:
    """Sum of the threads' on-CPU time in ns (/proc/<pid>/task/*/schedstat): a finer
    cross-check of the tick-based figure."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {field} in /proc/{pid}/status")


def core_ticks(core: int) -> tuple[int, int]:
    """(task time, steal) of one core from /proc/stat, in clock ticks. Task time is
    user+nice+system: what processes run there (interrupt time is left out, since kernels
    with IRQ time accounting charge it to no task)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                return v[0] + v[1] + v[2], v[7]
    return 0, 0


def _own_core1_seconds(upstream_pid: int) -> float:
    """CPU seconds of everything we run on core 1: this script, its finished children (h2load,
    curl) and the upstream Envoy."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + \
        cpu_ticks(upstream_pid) / CLK_TCK


class CpuWindow:
    """CPU of the Envoy under test over a measured window, plus how much of each core went to
    processes that are not ours (another build or test run on the machine): the figures of a
    disturbed window are worth little, so the cell is run again."""

    upstream_pid = 0  # set once the upstream Envoy runs

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self) -> "CpuWindow":
        self.t0 = time.monotonic()
        self.c0 = core_ticks(CORE_UNDER_TEST)
        self.c1 = core_ticks(CORE_OTHERS)
        self.own1 = _own_core1_seconds(self.upstream_pid)
        self.ticks0 = cpu_ticks(self.pid)
        self.ns0 = cpu_ns_schedstat(self.pid)
        self.k0 = kernel_counts(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        self.ticks = cpu_ticks(self.pid) - self.ticks0
        self.ns = cpu_ns_schedstat(self.pid) - self.ns0
        self.k = [b - a for a, b in zip(self.k0, kernel_counts(self.pid))]
        own1 = _own_core1_seconds(self.upstream_pid) - self.own1
        c0, c1 = core_ticks(CORE_UNDER_TEST), core_ticks(CORE_OTHERS)
        self.wall = time.monotonic() - self.t0
        w = max(self.wall, 1e-9)
        self.core0_other = max(0.0, (c0[0] - self.c0[0] - self.ticks) / CLK_TCK) / w
        self.core1_other = max(0.0, (c1[0] - self.c1[0]) / CLK_TCK - own1) / w
        self.steal = ((c0[1] - self.c0[1]) + (c1[1] - self.c1[1])) / CLK_TCK / w

    def figures(self, n: int) -> dict:
        return {"cpu_us_per_req": self.ticks * 1e6 / CLK_TCK / n,
                "cpu_us_per_req_schedstat": self.ns / 1e3 / n,
                "cpu_ticks": self.ticks,
                "system_share": self.k[0] / max(self.ticks, 1),
                "minor_faults_per_req": self.k[1] / n,
                "switches_per_req": self.k[2] / n,
                # fraction of core 0 the Envoy under test used during the window
                "core0_busy": self.ns / 1e9 / max(self.wall, 1e-9),
                "core0_other": self.core0_other, "core1_other": self.core1_other,
                "steal": self.steal}


def machine_quiet(seconds: float = 0.5) -> tuple[float, float]:
    """Task time on cores 0 and 1 over a short idle sample (nothing of ours is loaded)."""
    a0, a1 = core_ticks(CORE_UNDER_TEST)[0], core_ticks(CORE_OTHERS)[0]
    time.sleep(seconds)
    b0, b1 = core_ticks(CORE_UNDER_TEST)[0], core_ticks(CORE_OTHERS)[0]
    return (b0 - a0) / CLK_TCK / seconds, (b1 - a1) / CLK_TCK / seconds


def wait_until_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Before a cell: wait (up to max_wait s) until neither core is busy with someone else's
    work. Returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        b0, b1 = machine_quiet()
        if max(b0, b1) <= threshold or time.monotonic() - t0 >= max_wait:
            return time.monotonic() - t0


# --- load generator -------------------------------------------------------------------------
H2LOAD = shutil.which("h2load") or "h2load"
_REQ_RE = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout")
_STATUS_RE = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_FINISHED_RE = re.compile(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s")


def percentile(sorted_vals: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def h2load(url: str, n: int, conns: int, body: Optional[Path], logfile: Path,
           rps_per_client: Optional[float] = None, timeout: float = 300.0,
           headers: tuple[str, ...] = ()) -> dict:
    """Run h2load over HTTP/1.1 on core 1; every one of the n requests must answer 200."""
    cmd = ["taskset", "-c", str(CORE_OTHERS), H2LOAD, "--h1", "-n", str(n), "-c", str(conns),
           "-m", "1", "--log-file", str(logfile)]
    if rps_per_client:
        cmd += ["--rps", f"{rps_per_client:g}"]
    if body is not None:
        cmd += ["-d", str(body), "-H", "content-type: application/json"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    logfile.unlink(missing_ok=True)
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"h2load did not finish within {timeout}s: {' '.join(cmd)}") from e
    wall = time.monotonic() - t0
    out = r.stdout + r.stderr
    m_req, m_st, m_fin = _REQ_RE.search(out), _STATUS_RE.search(out), _FINISHED_RE.search(out)
    if r.returncode != 0 or not (m_req and m_st and m_fin):
        raise BenchError(f"h2load failed (rc={r.returncode}): {' '.join(cmd)}\n{out}")
    total, _started, done, succeeded, failed, errored, tmo = map(int, m_req.groups())
    s2, s3, s4, s5 = map(int, m_st.groups())
    if done != n or succeeded != n or failed or errored or tmo or s2 != n:
        raise BenchError(f"not every request answered 2xx ({' '.join(cmd)}):\n{out}")
    # The per-request log: start (µs since epoch) \t status \t µs until end of response.
    starts, lat_us, bad = [], [], []
    with open(logfile) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            if parts[1] != "200":
                bad.append(parts[1])
            starts.append(int(parts[0]))
            lat_us.append(int(parts[2]))
    if bad or len(lat_us) != n:
        raise BenchError(f"h2load log {logfile}: {len(lat_us)} requests logged (expected {n}), "
                         f"non-200 statuses: {sorted(set(bad))[:10]}")
    val, unit = float(m_fin.group(1)), m_fin.group(2)
    elapsed = val / {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    lat_us.sort()
    return {
        "n": n, "connections": conns, "elapsed_s": elapsed, "wall_s": wall,
        "rps": n / elapsed if elapsed > 0 else float(m_fin.group(3)),
        # the arrival rate actually achieved (first to last request start)
        "offered_rps": (len(starts) - 1) / ((max(starts) - min(starts)) / 1e6)
        if len(starts) > 1 and max(starts) > min(starts) else float("nan"),
        "p50_ms": percentile(lat_us, 50) / 1e3,
        "p90_ms": percentile(lat_us, 90) / 1e3,
        "p99_ms": percentile(lat_us, 99) / 1e3,
        "max_ms": lat_us[-1] / 1e3,
        "mean_ms": statistics.fmean(lat_us) / 1e3,
    }


# --- processes ------------------------------------------------------------------------------
def pinned_launcher(workdir: Path, envoy_bin: str, core: int) -> str:
    """A tiny exec wrapper so EnvoyProcess starts Envoy under taskset (same pid after exec)."""
    p = workdir / f"envoy-core{core}.sh"
    p.write_text(f'#!/bin/sh\nexec taskset -c {core} "{envoy_bin}" "$@"\n')
    p.chmod(0o755)
    return str(p)


def curl(url: str, body: Optional[Path], timeout: float = 30.0,
         headers: tuple[str, ...] = ()) -> tuple[int, bytes]:
    cmd = ["curl", "-sS", "--noproxy", "*", "-o", "-", "-w", "\n%{http_code}", "--max-time",
           str(timeout), url]
    for h in headers:
        cmd[1:1] = ["-H", h]
    if body is not None:
        cmd[1:1] = ["-H", "content-type: application/json", "--data-binary", f"@{body}"]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
    if r.returncode != 0:
        raise BenchError(f"curl {url} failed: {r.stderr.decode(errors='replace')}")
    body_out, _, code = r.stdout.rpartition(b"\n")
    return int(code), body_out


def make_payload_bytes(size: int) -> bytes:
    """A JSON document of exactly `size` bytes, like a Lambda event."""
    head, tail = b'{"data":"', b'"}'
    filler = (b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[: size - len(head) - len(tail)]
    data = head + filler + tail
    assert len(data) == size
    return data


def make_payload(path: Path, size: int) -> Path:
    path.write_bytes(make_payload_bytes(size))
    return path


def answer_headers(payload: str) -> tuple[str, ...]:
    """The request header that asks the fake Lambda for this payload's answer."""
    answer = PAYLOADS[payload]["answer"]
    return () if answer == "small" else (f"{ANSWER_HEADER}: {answer}",)


# --- one cell: one config x one payload x one round --------------------------------------------
def run_cell(args, envoy_launcher: str, cfg_name: str, cfg_text: str, payload: str,
             body: Optional[Path], workdir: Path, round_no: int) -> dict:
    name = f"r{round_no}-{payload}-{cfg_name}"
    e = envoy_proc.EnvoyProcess(envoy_launcher, cfg_text, workdir / name, name=name,
                                log_level="warning",
                                env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(args.module_dir)})
    e.start(timeout=60)
    try:
        pid = e.proc.pid
        affinity = os.sched_getaffinity(pid)
        if affinity != {CORE_UNDER_TEST}:
            raise BenchError(f"envoy under test not pinned to core {CORE_UNDER_TEST}: {affinity}")
        url = e.url + PAYLOADS[payload]["path"]
        hdrs = answer_headers(payload)
        rss_start = status_kib(pid, "VmRSS")
        # 1. one request by curl: 200 and the Lambda's body (or, unwrapped, its body's body),
        #    or stop here
        code, got = curl(url, body, headers=hdrs)
        if code != 200 or got != expected_answer(payload, cfg_name):
            raise BenchError(f"{name}: curl {url} answered {code}: {got[:300]!r}\n"
                             f"envoy log:\n{e.log_tail(30)}")
        sent = 1
        logf = workdir / name / "h2load.log"
        # 2. warm-up (closed loop), also sizes the measured closed-loop run
        warm = h2load(url, args.warmup[payload], args.connections, body, logf, headers=hdrs)
        sent += warm["n"]
        n_closed = int(min(max(warm["rps"] * args.closed_seconds, args.min_closed),
                           args.max_closed))
        n_closed = max(n_closed - n_closed % args.connections, args.connections)
        # 3. closed loop: throughput at a fixed connection count, and CPU per request
        with CpuWindow(pid) as cw:
            closed = h2load(url, n_closed, args.connections, body, logf, headers=hdrs)
        sent += closed["n"]
        closed.update(cw.figures(closed["n"]))
        # 4. open loop: latency at a fixed moderate rate
        rate = args.rates[payload]
        n_open = int(max(rate * args.open_seconds, args.min_open))
        n_open -= n_open % args.open_connections
        with CpuWindow(pid) as cw:
            open_ = h2load(url, n_open, args.open_connections, body, logf,
                           rps_per_client=rate / args.open_connections, headers=hdrs)
        sent += open_["n"]
        open_.update(target_rps=rate, **cw.figures(open_["n"]))
        if open_["offered_rps"] < 0.9 * rate:
            log(f"WARNING {name}: open-loop rate {open_['offered_rps']:.0f}/s "
                f"< 90% of the target {rate}/s (backlog: latency understated)")
        peak_rss = status_kib(pid, "VmHWM")
        # 5. the Envoy saw exactly what h2load saw, and (C) the module signed each of them
        st = e.stats()
        rq_2xx = int(st.get("http.ingress.downstream_rq_2xx", 0))
        rq_total = int(st.get("http.ingress.downstream_rq_total", 0))
        if rq_2xx != sent or rq_total != sent:
            raise BenchError(f"{name}: envoy counted {rq_total} requests / {rq_2xx} 2xx, "
                             f"sent {sent}")
        if cfg_name == "C":
            inv = e.counter("envoy_lambda.invocations")
            rej = e.counter("envoy_lambda.local_rejections")
            if inv != sent or rej:
                raise BenchError(f"{name}: envoy_lambda.invocations={inv} "
                                 f"local_rejections={rej}, sent {sent}")
        if not e.running:
            raise BenchError(f"{name}: envoy died\n{e.log_tail(30)}")
    except BaseException:
        log(f"{name}: envoy log tail:\n{e.log_tail(30)}")
        raise
    finally:
        e.stop()
    return {"round": round_no, "payload": payload, "config": cfg_name,
            "closed": closed, "open": open_, "peak_rss_kib": peak_rss,
            "start_rss_kib": rss_start, "requests_sent": sent}


class Budget:
    """Bounds what waiting for a quiet machine and rerunning disturbed cells may add to a run."""

    def __init__(self, reruns: int, wait_s: float):
        self.reruns, self.wait_s = reruns, wait_s


def run_cell_undisturbed(args, budget: Budget, *a) -> dict:
    """run_cell, again when another process (a build, a test run) took a noticeable share of
    either core during a measured window; the last attempt is kept and flagged."""
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        w = wait_until_quiet(min(args.quiet_wait, budget.wait_s))
        budget.wait_s -= w
        waited += w
        cell = run_cell(args, *a)
        other0 = max(cell[k]["core0_other"] for k in ("closed", "open"))
        other1 = max(cell[k]["core1_other"] for k in ("closed", "open"))
        cell.update(attempts=attempt, waited_s=round(waited, 1),
                    disturbed=other0 > args.max_other_core0 or other1 > args.max_other_core1)
        if not cell["disturbed"]:
            return cell
        again = attempt < args.max_attempts and budget.reruns > 0
        log(f"  cell disturbed (others used {other0:.2f} of core 0, {other1:.2f} of core 1)"
            + ("; running it again" if again else "; keeping it, flagged"))
        if not again:
            return cell
        budget.reruns -= 1


# --- summary --------------------------------------------------------------------------------
METRICS = {
    # key: (extractor, unit, lower is better)
    "rps": (lambda c: c["closed"]["rps"], "req/s", False),
    "p50_ms": (lambda c: c["open"]["p50_ms"], "ms", True),
    "p99_ms": (lambda c: c["open"]["p99_ms"], "ms", True),
    "cpu_us": (lambda c: c["closed"]["cpu_us_per_req"], "µs/req", True),
    # at the open-loop rate the process is mostly idle: few clock ticks, so the ns schedstat sum
    "cpu_us_open": (lambda c: c["open"]["cpu_us_per_req_schedstat"], "µs/req", True),
    "cpu_us_schedstat": (lambda c: c["closed"]["cpu_us_per_req_schedstat"], "µs/req", True),
    "peak_rss_mib": (lambda c: c["peak_rss_kib"] / 1024, "MiB", True),
    "core0_busy": (lambda c: c["closed"]["core0_busy"], "cores", True),
    "core0_other": (lambda c: c["closed"]["core0_other"], "cores", True),
}


def spread(vals: list[float]) -> dict:
    vals = sorted(v for v in vals if v == v)  # drop NaN
    if not vals:
        return {"median": None, "min": None, "max": None, "q1": None, "q3": None, "n": 0}
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1],
            "q1": q1, "q3": q3, "n": len(vals), "values": vals}


MIN_CLEAN = 3  # rounds: below this many undisturbed ones, the disturbed are used too


def summarize(cells: list[dict], payloads: list[str]) -> dict:
    """Median and spread over rounds. Cells disturbed by other processes (see CpuWindow) are
    left out as long as at least MIN_CLEAN undisturbed rounds remain; ratios come from rounds
    whose A, B and C all ran undisturbed, under the same rule."""
    out: dict = {}
    for p in payloads:
        per_cfg = {}
        for cfg in CONFIGS:
            cs = [c for c in cells if c["payload"] == p and c["config"] == cfg]
            clean = [c for c in cs if not c.get("disturbed")]
            use = clean if len(clean) >= MIN_CLEAN else cs
            per_cfg[cfg] = {m: spread([f(c) for c in use]) for m, (f, _, _) in METRICS.items()}
            per_cfg[cfg]["rounds_used"] = sorted(c["round"] for c in use)
        # Ratios per round (A, B, C of a round ran back to back), then median and spread.
        by_round: dict[int, dict] = {}
        for c in cells:
            if c["payload"] == p:
                by_round.setdefault(c["round"], {})[c["config"]] = c
        full = {r: cs for r, cs in by_round.items() if set(cs) == set(CONFIGS)}
        clean_rounds = [r for r, cs in full.items()
                        if not any(c.get("disturbed") for c in cs.values())]
        use_rounds = sorted(clean_rounds if len(clean_rounds) >= MIN_CLEAN else full)
        ratios: dict[str, list[float]] = {}
        for r in use_rounds:
            cell = full[r]
            for m in ("rps", "p50_ms", "p99_ms", "cpu_us", "peak_rss_mib"):
                f = METRICS[m][0]
                a, b, c, d = f(cell["A"]), f(cell["B"]), f(cell["C"]), f(cell["D"])
                ratios.setdefault(f"{m}:C/A", []).append(c / a if a else float("nan"))
                ratios.setdefault(f"{m}:C/B", []).append(c / b if b else float("nan"))
                if m in ("cpu_us", "p50_ms"):
                    ratios.setdefault(f"{m}:(C-A)/(B-A)", []).append(
                        (c - a) / (b - a) if b != a else float("nan"))
                if m == "cpu_us":
                    ratios.setdefault("cpu_us:B-A", []).append(b - a)
                    ratios.setdefault("cpu_us:C-A", []).append(c - a)
                    # D: what holding the body costs; C−D: the module beyond buffering
                    ratios.setdefault("cpu_us:D-A", []).append(d - a)
                    ratios.setdefault("cpu_us:C-D", []).append(c - d)
        out[p] = {"configs": per_cfg, "ratios": {k: spread(v) for k, v in ratios.items()},
                  "ratio_rounds_used": use_rounds}
    return out


def fmt(s: dict, digits: int = 1) -> str:
    if s["median"] is None:
        return "n/a"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def _digits(v: Optional[float]) -> int:
    if v is None:
        return 1
    v = abs(v)
    return 0 if v >= 1000 else 1 if v >= 10 else 2 if v >= 0.1 else 3


def markdown(result: dict) -> str:
    m = result["machine"]
    s = result["settings"]
    intf = result["interference"]
    lines = [
        "# envoy-lambda benchmark: A plain router / B native aws_lambda / C envoy_lambda module"
        " / D router + buffer filter",
        "",
        f"- date: {result['date']}; machine: {m['cpu_model']}, {m['cores']} cores, "
        f"{m['mem_gib']} GiB; kernel {m['kernel']}; {m['envoy_version']}",
        f"- module: {result['module']['path']} (git {result['module']['git']}, built "
        f"{result['module']['built']}, sha256 {result['module']['sha256'][:16]}…)",
        f"- rounds: {s['rounds']} (A/B/C alternated per payload in every round; fresh Envoy "
        f"per cell); values are the median over rounds with (min–max) in parentheses; "
        f"'rounds' lists the rounds used (a cell disturbed by other processes is left out "
        f"while {MIN_CLEAN} undisturbed rounds remain)",
        f"- closed loop: {s['connections']} HTTP/1.1 connections, ~{s['closed_seconds']} s per "
        f"window; open loop: {s['open_connections']} connections at a fixed total rate "
        f"(below), ~{s['open_seconds']} s (at least {s['min_open']} requests)",
        f"- Envoy under test: --concurrency 1, pinned to core {CORE_UNDER_TEST}; h2load and "
        f"the upstream Envoy on core {CORE_OTHERS}; per_connection_buffer_limit_bytes "
        f"{BUFFER_LIMIT} in all four (D's buffer filter: max_request_bytes {BUFFER_LIMIT})"
        + ("; QUICK MODE (1 round, ~1 s windows): a smoke check, not a measurement"
           if s.get("quick") else ""),
        f"- load average at start / end: {result['loadavg_start']} / {result['loadavg_end']}; "
        f"share of a core used by other processes during the measured windows: core 0 median "
        f"{intf['core0']['median']:.3f} (max {intf['core0']['max']:.3f}), core 1 median "
        f"{intf['core1']['median']:.3f} (max {intf['core1']['max']:.3f}); cells rerun for "
        f"that: {intf['retried_cells']}, kept although disturbed: {intf['disturbed_cells']}",
        "",
        "| payload | config | req/s (closed) | open rate | p50 ms | p99 ms | CPU µs/req | "
        "CPU µs/req at open rate | peak RSS MiB | core-0 busy | rounds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in s["payloads"]:
        sp = result["summary"][p]
        for cfg in CONFIGS:
            c = sp["configs"][cfg]
            lines.append(
                f"| {PAYLOADS[p]['label']} | {cfg} {CONFIG_NAMES[cfg]} | {fmt(c['rps'], 0)} | "
                f"{s['rates'][p]}/s | {fmt(c['p50_ms'], 3)} | {fmt(c['p99_ms'], 3)} | "
                f"{fmt(c['cpu_us'], _digits(c['cpu_us']['median']))} | "
                f"{fmt(c['cpu_us_open'], _digits(c['cpu_us_open']['median']))} | "
                f"{fmt(c['peak_rss_mib'], 1)} | {fmt(c['core0_busy'], 2)} | "
                f"{','.join(map(str, c['rounds_used']))} |")
    lines += [
        "",
        "Ratios, computed per round from the A, B, C and D that ran back to back, then median "
        "(min–max). Added cost = (C−A)/(B−A): 1.0 = the module adds as much CPU per request to "
        "the plain router as the native filter does, < 1 = less. D−A is what buffering the "
        "whole request alone adds; C−D what the module adds beyond it.",
        "",
        "| payload | req/s C/A | req/s C/B | CPU C/A | CPU C/B | added CPU µs B−A | "
        "added CPU µs C−A | added CPU µs D−A | C−D µs | added CPU (C−A)/(B−A) | p50 C/A | "
        "p50 C/B | p99 C/A | p99 C/B | peak RSS C/B | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in s["payloads"]:
        r = result["summary"][p]["ratios"]
        if not r:
            continue
        lines.append(
            f"| {PAYLOADS[p]['label']} | {fmt(r['rps:C/A'], 2)} | {fmt(r['rps:C/B'], 2)} | "
            f"{fmt(r['cpu_us:C/A'], 2)} | {fmt(r['cpu_us:C/B'], 2)} | "
            f"{fmt(r['cpu_us:B-A'], _digits(r['cpu_us:B-A']['median']))} | "
            f"{fmt(r['cpu_us:C-A'], _digits(r['cpu_us:C-A']['median']))} | "
            f"{fmt(r['cpu_us:D-A'], _digits(r['cpu_us:D-A']['median']))} | "
            f"{fmt(r['cpu_us:C-D'], _digits(r['cpu_us:C-D']['median']))} | "
            f"{fmt(r['cpu_us:(C-A)/(B-A)'], 2)} | {fmt(r['p50_ms:C/A'], 2)} | "
            f"{fmt(r['p50_ms:C/B'], 2)} | {fmt(r['p99_ms:C/A'], 2)} | "
            f"{fmt(r['p99_ms:C/B'], 2)} | {fmt(r['peak_rss_mib:C/B'], 2)} | "
            f"{','.join(map(str, result['summary'][p]['ratio_rounds_used']))} |")
    lines += ["", f"Chart: [{s['chart_name']}]({s['chart_name']}). Command: `{result['command']}`",
              ""]
    return "\n".join(lines)


# --- machine --------------------------------------------------------------------------------
def machine_info(envoy_bin: str) -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = line
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    ver = subprocess.run([envoy_bin, "--version"], capture_output=True, text=True).stdout
    ver = " ".join(ver.split())
    m = re.search(r"version: \S+?/(\d+\.\d+\.\d+)/", ver)
    h2 = subprocess.run([H2LOAD, "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu_model": model, "cores": os.cpu_count(), "mem_gib": round(mem_kib / 2**20),
            "kernel": platform.release(), "sha_ni": " sha_ni" in flags,
            "envoy_version": f"Envoy {m.group(1) if m else ver}", "envoy_version_full": ver,
            "h2load_version": h2, "python": platform.python_version()}


def _git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src",
                                "Cargo.toml"], capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- main -----------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 5)))
    ap.add_argument("--payloads", default=",".join(PAYLOADS),
                    help=f"comma-separated subset of {','.join(PAYLOADS)}")
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: 1 round, ~1 s windows, short warm-up, no waiting for "
                         "idle cores (a few seconds per cell; figures only indicative)")
    ap.add_argument("--max-minutes", type=float, default=30.0,
                    help="start no further round when it would end past this many minutes")
    ap.add_argument("--connections", type=int, default=8, help="closed-loop connections")
    ap.add_argument("--closed-seconds", type=float, default=3.0)
    ap.add_argument("--min-closed", type=int, default=200)
    ap.add_argument("--max-closed", type=int, default=200_000)
    ap.add_argument("--open-connections", type=int, default=4)
    ap.add_argument("--open-seconds", type=float, default=4.0)
    ap.add_argument("--min-open", type=int, default=300)
    ap.add_argument("--rate", action="append", default=[], metavar="PAYLOAD=REQ_PER_S",
                    help=f"open-loop rate per payload (default {DEFAULT_RATES})")
    ap.add_argument("--out", default=str(BENCH / "results"))
    ap.add_argument("--name", default="latest", help="results file stem")
    ap.add_argument("--keep-work", action="store_true", help="keep bench/.work/<run> logs")
    ap.add_argument("--max-attempts", type=int, default=3,
                    help="run a cell again (up to this many times in all) when other processes "
                         "used the cores during its measured windows")
    ap.add_argument("--max-other-core0", type=float, default=0.05,
                    help="core-0 share others may use in a window before the cell is rerun")
    ap.add_argument("--max-other-core1", type=float, default=0.15,
                    help="core-1 share others may use in a window before the cell is rerun")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="seconds to wait at most, before a cell, for the cores to be idle")
    ap.add_argument("--rerun-budget", type=int, default=15,
                    help="disturbed cells rerun at most this many times in the whole run")
    ap.add_argument("--quiet-wait-budget", type=float, default=120.0,
                    help="seconds spent waiting for idle cores at most in the whole run")
    a = ap.parse_args(argv)
    a.payloads = [p.strip() for p in a.payloads.split(",") if p.strip()]
    for p in a.payloads:
        if p not in PAYLOADS:
            ap.error(f"unknown payload {p!r}")
    a.rates = dict(DEFAULT_RATES)
    for r in a.rate:
        k, _, v = r.partition("=")
        if k not in PAYLOADS:
            ap.error(f"--rate {r}: unknown payload")
        a.rates[k] = int(v)
    a.warmup = dict(WARMUP)
    if a.quick:
        a.rounds, a.closed_seconds, a.open_seconds, a.min_open = 1, 1.0, 1.0, 50
        a.quiet_wait, a.quiet_wait_budget, a.max_attempts = 0.0, 0.0, 1
        a.warmup = dict(QUICK_WARMUP)
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    return a


def render(json_path: Path) -> int:
    """Summarize a results JSON again and rewrite its .md and .svg (no measurement)."""
    result = json.loads(json_path.read_text())
    result["summary"] = summarize(result["cells"], result["settings"]["payloads"])
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    json_path.with_suffix(".md").write_text(markdown(result))
    json_path.with_suffix(".svg").write_text(chart.svg(result))
    print(markdown(result))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--render"]:
        if len(argv) != 2:
            raise SystemExit("usage: bench.py --render bench/results/latest.json")
        return render(Path(argv[1]))
    args = parse_args(argv)
    if os.cpu_count() < 2:
        raise SystemExit("need at least 2 cores (one for the Envoy under test, one for the rest)")
    # This orchestrator, like the load generator, stays off the core under test.
    os.sched_setaffinity(0, {CORE_OTHERS})
    envoy_bin = envoy_proc.find_envoy()
    if not envoy_proc.MODULE_SO.is_file():
        raise SystemExit(f"{envoy_proc.MODULE_SO} missing: cargo build --release first")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = BENCH / ".work" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info(envoy_bin)
    log(f"{machine['cpu_model']}, {machine['cores']} cores, {machine['envoy_version']}, "
        f"{machine['h2load_version']}; work dir {workdir}")
    # A snapshot of the module: a rebuild of target/release during the run (someone else's
    # cargo build) must not swap the module between cells.
    args.module_dir = workdir / "module"
    args.module_dir.mkdir()
    so = args.module_dir / envoy_proc.MODULE_SO.name
    shutil.copy2(envoy_proc.MODULE_SO, so)
    module_sha = hashlib.sha256(so.read_bytes()).hexdigest()
    module_mtime = _dt.datetime.fromtimestamp(envoy_proc.MODULE_SO.stat().st_mtime,
                                              _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    bodies: dict[str, Optional[Path]] = {}
    for p in args.payloads:
        size = PAYLOADS[p]["size"]
        bodies[p] = make_payload(workdir / f"body-{p}.json", size) if size else None

    started = time.monotonic()
    loadavg_start = _loadavg()
    upstream = envoy_proc.EnvoyProcess(pinned_launcher(workdir, envoy_bin, CORE_OTHERS),
                                       upstream_config(), workdir / "upstream", name="upstream",
                                       log_level="warning")
    launcher = pinned_launcher(workdir, envoy_bin, CORE_UNDER_TEST)
    cells: list[dict] = []
    try:
        upstream.start(timeout=60)
        CpuWindow.upstream_pid = upstream.proc.pid
        lambda_url, plain_url = upstream.listeners["lambda"], upstream.listeners["plain"]
        # The fake Lambda is fair: it refuses what is not a signed Invoke.
        code, _ = curl(lambda_url + "/2015-03-31/functions/echo/invocations", None)
        if code != 403:
            raise BenchError(f"upstream lambda listener answered {code} to an unsigned Invoke")
        code, got = curl(plain_url + CLIENT_PATH, None)
        if code != 200 or got.decode() != LAMBDA_BODY:
            raise BenchError(f"upstream plain listener answered {code}")
        lambda_port = int(lambda_url.rsplit(":", 1)[1])
        plain_port = int(plain_url.rsplit(":", 1)[1])
        cfg_texts = {"A": config_a(plain_port), "B": config_b(lambda_port),
                     "C": config_c(lambda_port), "D": config_d(plain_port)}
        for k, v in cfg_texts.items():
            (workdir / f"config-{k}.json").write_text(v)
        total = args.rounds * len(args.payloads) * len(CONFIGS)
        budget = Budget(args.rerun_budget, args.quiet_wait_budget)
        i = 0
        for rnd in range(1, args.rounds + 1):
            spent = time.monotonic() - started
            per_round = spent / (rnd - 1) if rnd > 1 else 0.0
            if rnd > 1 and spent + per_round > args.max_minutes * 60:
                log(f"stopping after {rnd - 1} rounds: another would pass --max-minutes "
                    f"{args.max_minutes:g} ({per_round:.0f} s per round)")
                break
            for p in args.payloads:
                for cfg in CONFIGS:
                    i += 1
                    cell = run_cell_undisturbed(args, budget, launcher, cfg, cfg_texts[cfg],
                                                p, bodies[p], workdir, rnd)
                    cells.append(cell)
                    log(f"[{i}/{total}] round {rnd} {p:>3} {cfg}: "
                        f"{cell['closed']['rps']:8.0f} req/s, "
                        f"CPU {cell['closed']['cpu_us_per_req']:8.1f} µs/req "
                        f"(schedstat {cell['closed']['cpu_us_per_req_schedstat']:.1f}, "
                        f"core0 {cell['closed']['core0_busy']:.2f}), "
                        f"open {cell['open']['offered_rps']:.0f}/s p50 "
                        f"{cell['open']['p50_ms']:.3f} p99 {cell['open']['p99_ms']:.3f} ms, "
                        f"peak RSS {cell['peak_rss_kib'] / 1024:.1f} MiB"
                        + (f" [attempt {cell['attempts']}]" if cell["attempts"] > 1 else "")
                        + (" [DISTURBED]" if cell["disturbed"] else ""))
    finally:
        upstream.stop()

    elapsed = time.monotonic() - started
    result = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "bench/run.sh " + " ".join(argv) if argv else "bench/run.sh",
        "machine": machine,
        "module": {"path": str(envoy_proc.MODULE_SO.relative_to(REPO)), "git": _git_rev(),
                   "sha256": module_sha, "built": module_mtime},
        "configs": CONFIG_NAMES,
        "settings": {
            "rounds": args.rounds, "payloads": args.payloads, "connections": args.connections,
            "closed_seconds": args.closed_seconds, "open_connections": args.open_connections,
            "open_seconds": args.open_seconds, "min_open": args.min_open, "rates": args.rates,
            "warmup_requests": args.warmup, "buffer_limit_bytes": BUFFER_LIMIT,
            "quick": args.quick, "max_minutes": args.max_minutes,
            "rounds_run": len({c["round"] for c in cells}),
            "core_under_test": CORE_UNDER_TEST, "core_others": CORE_OTHERS,
            "clk_tck": CLK_TCK, "chart_name": f"{args.name}.svg",
            "load_generator": "h2load --h1 (nghttp2-client)",
            "max_attempts": args.max_attempts, "max_other_core0": args.max_other_core0,
            "max_other_core1": args.max_other_core1, "quiet_wait_s": args.quiet_wait,
            "rerun_budget": args.rerun_budget, "quiet_wait_budget_s": args.quiet_wait_budget,
        },
        "duration_s": round(elapsed, 1),
        "loadavg_start": loadavg_start, "loadavg_end": _loadavg(),
        "interference": {
            "core0": spread([c[w]["core0_other"] for c in cells for w in ("closed", "open")]),
            "core1": spread([c[w]["core1_other"] for c in cells for w in ("closed", "open")]),
            "retried_cells": sum(1 for c in cells if c["attempts"] > 1),
            "disturbed_cells": sum(1 for c in cells if c["disturbed"]),
            "waited_s": round(sum(c["waited_s"] for c in cells), 1),
        },
        "summary": summarize(cells, args.payloads),
        "cells": cells,
    }
    (out_dir / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / f"{args.name}.md").write_text(markdown(result))
    (out_dir / f"{args.name}.svg").write_text(chart.svg(result))
    log(f"done in {elapsed:.0f} s: {out_dir / (args.name + '.json')}, .md, .svg")
    print(markdown(result))
    if not args.keep_work:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"\nBENCHMARK FAILED: {e}", file=sys.stderr)
        sys.exit(1)
