#!/usr/bin/env python3
"""What part of the module's added cost is the module's, and what part is the price of a
signed Invoke itself?

A signed Lambda request carries more than the client's: `authorization` (~200 bytes),
`x-amz-date`, `x-amz-content-sha256`, a rewritten path and a `content-length`. Forwarding
those costs Envoy CPU (header map, HTTP/1 encoding, bytes on the socket) whoever adds them.
This runs, alternated per round, the plain router (A), the plain router with those same
headers added by Envoy's own route config (S: "signed-request floor", no signing at all),
and the module (C), and prints CPU µs/request of the Envoy under test for each.

    .venv/bin/python bench/floor.py [get|1k|64k|1m] [rounds]

Same set-up as bench/bench.py (pinned cores, the fake Lambda, h2load); not part of the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "integration"),
                str(HERE.parent / "tests" / "peers")]

import bench as B  # noqa: E402
import envoy_proc  # noqa: E402

SIGNED_HEADERS = [
    ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/lambda/"
                      "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                      "Signature=" + "a" * 64),
    ("x-amz-date", "20261125T094500Z"),
    ("x-amz-content-sha256", "e" * 64),
]


def config_s(plain_port: int) -> str:
    cfg = json.loads(B.config_a(plain_port))
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    route["request_headers_to_add"] = [
        {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        for k, v in SIGNED_HEADERS]
    route["route"]["prefix_rewrite"] = "/2015-03-31/functions/echo/invocations"
    return json.dumps(cfg)


def main() -> int:
    payload = sys.argv[1] if len(sys.argv) > 1 else "get"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    os.sched_setaffinity(0, {B.CORE_OTHERS})
    envoy_bin = envoy_proc.find_envoy()
    work = HERE / ".work" / f"floor-{payload}-{time.strftime('%Y%m%d-%H%M%S')}"
    mod = work / "module"
    mod.mkdir(parents=True)
    shutil.copy2(envoy_proc.MODULE_SO, mod / envoy_proc.MODULE_SO.name)
    size = B.PAYLOADS[payload]["size"]
    body = B.make_payload(work / "body.json", size) if size else None
    n = 30000 if (size or 0) < 100_000 else 1500
    up = envoy_proc.EnvoyProcess(B.pinned_launcher(work, envoy_bin, B.CORE_OTHERS),
                                 B.upstream_config(), work / "up", name="up",
                                 log_level="warning")
    up.start(timeout=60)
    B.CpuWindow.upstream_pid = up.proc.pid
    lam = int(up.listeners["lambda"].rsplit(":", 1)[1])
    plain = int(up.listeners["plain"].rsplit(":", 1)[1])
    variants = {"A": B.config_a(plain), "S": config_s(plain), "C": B.config_c(lam)}
    launcher = B.pinned_launcher(work, envoy_bin, B.CORE_UNDER_TEST)
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for r in range(rounds):
            for name, text in variants.items():
                e = envoy_proc.EnvoyProcess(launcher, text, work / f"{name}{r}", name=f"{name}{r}",
                                            log_level="warning",
                                            env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(mod)})
                e.start(timeout=60)
                try:
                    url = e.url + B.CLIENT_PATH
                    B.h2load(url, n // 10, 8, body, work / "warm.log")
                    with B.CpuWindow(e.proc.pid) as cw:
                        res = B.h2load(url, n, 8, body, work / "run.log")
                    cpu[name].append(cw.figures(res["n"])["cpu_us_per_req_schedstat"])
                finally:
                    e.stop()
    finally:
        up.stop()
    med = {k: statistics.median(v) for k, v in cpu.items()}
    for k, v in cpu.items():
        print(f"{k}: median {med[k]:.1f} µs/req  (rounds: {', '.join(f'{x:.1f}' for x in v)})")
    print(f"signed-request floor S−A: {med['S'] - med['A']:.1f} µs; "
          f"module beyond it C−S: {med['C'] - med['S']:.1f} µs; C−A: {med['C'] - med['A']:.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
