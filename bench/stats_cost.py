#!/usr/bin/env python3
"""The hot-path cost of the per-function stats, in instructions per request.

The machine is shared, so time is not a fair measure; instruction counts are. The kernel
here exposes no hardware counters to ``perf stat``, so Envoy runs under valgrind's callgrind
with instrumentation off; it is switched on (``callgrind_control -i on``), counts zeroed, and a
fixed number of keep-alive GETs through our module to the capture upstream, after a warm-up
that has created every stat. Total instructions of the Envoy process (all threads) in that
window / requests = instructions per request. Configurations, alternated over the rounds:

* ``no_metadata``   ``function_stats: off`` and ``access_log_metadata: false``
* ``off``           ``function_stats: off`` (the unlabelled counters only)
* ``per_upstream``  ``function_stats: per_upstream`` (labels ``upstream``, ``*``, ``*``)
* ``per_function``  ``function_stats: per_function`` (the default)
* ``per_function_tail``  the default plus ``log_type: tail`` with a REPORT line to parse
* ``before``        with ``--baseline-so DIR``: the module built from the commit before this
                    work (no per-function stats, no access-log metadata but ``log_result``)

Usage: .venv/bin/python bench/stats_cost.py [--requests 2000] [--rounds 2]
(bench/run.sh --stats-cost runs it too). Loopback only; several minutes under valgrind.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests" / "peers"))

import configs  # noqa: E402
import envoy_proc  # noqa: E402
from capture_upstream import CaptureUpstream, Reply  # noqa: E402

REPORT = ("START RequestId: r Version: $LATEST\nEND RequestId: r\nREPORT RequestId: r\t"
          "Duration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t"
          "Max Memory Used: 60 MB\t\n")
MODES = ("no_metadata", "off", "per_upstream", "per_function", "per_function_tail")


def config(port: int, mode: str) -> str:
    stats = {"per_function_tail": {"function_stats": "per_function"},
             "no_metadata": {"function_stats": "off", "access_log_metadata": False},
             "before": {}}.get(mode, {"function_stats": mode})
    fcfg = {"upstreams": [configs.aws_upstream("moto", port, configs.default_functions(),
                                               **stats)]}
    extra = {"log_type": "tail"} if mode == "per_function_tail" else {}
    cfg = json.loads(configs.module_config(
        port, fcfg, [("/", configs.module_per_route("moto", "echo", **extra))],
        secrets={"aws-creds": configs.seed_secret("AKIABENCH", "s")}))
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm.pop("access_log", None)  # the same (none) in every mode
    # No stats flush inside the measured window: its work grows with wall time, not requests.
    cfg["stats_flush_interval"] = "299s"
    return json.dumps(cfg)


def send(conn: http.client.HTTPConnection, n: int) -> None:
    for _ in range(n):
        conn.request("GET", "/", headers={"host": "bench"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}")


def total_ir(out_dir: Path) -> int:
    """Sum of the `totals:` instruction counts of every dump callgrind wrote (the window's
    dump; the one at exit counts nothing, instrumentation being off by then)."""
    total = 0
    for f in out_dir.glob("callgrind.out*"):
        for line in f.read_text(errors="replace").splitlines():
            m = re.match(r"^totals:\s+(\d+)", line)
            if m:
                total += int(m.group(1))
                break
    return total


def measure(envoy_bin: str, upstream_port: int, mode: str, requests: int, work: Path,
            module_dir: Path) -> float:
    out = work / mode
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("callgrind.out*"):
        f.unlink()
    launcher = work / "valgrind-envoy.sh"
    launcher.write_text(
        "#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no "
        f"--callgrind-out-file={out}/callgrind.out.%p \"{envoy_bin}\" \"$@\"\n")
    launcher.chmod(0o755)
    p = envoy_proc.EnvoyProcess(str(launcher), config(upstream_port, mode), out, name="envoy",
                                env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(module_dir)})
    p.start(timeout=300)
    try:
        host, port = p.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        send(conn, 200)  # warm-up: every stat exists, pools and caches are filled
        pid = str(p.proc.pid)
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        send(conn, 20)  # code paths instrumented afresh
        subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
        send(conn, requests)
        subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
        conn.close()
    finally:
        p.stop(timeout=60)
    return total_ir(out) / requests


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--baseline-so", type=Path, default=None,
                    help="libenvoy_lambda.so of the commit before, for mode 'before'")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "stats_cost.json"))
    args = ap.parse_args(argv)
    modes = args.modes.split(",")
    if args.baseline_so and "before" not in modes:
        modes.insert(0, "before")
    envoy_bin = envoy_proc.find_envoy()
    per_mode: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="stats-cost-") as tmp, CaptureUpstream() as up:
        # Copies: a rebuild during the run cannot swap the module between measurements.
        dirs = {}
        for name, so in (("current", envoy_proc.MODULE_SO), ("before", args.baseline_so)):
            if so:
                d = Path(tmp) / "modules" / name
                d.mkdir(parents=True)
                shutil.copy2(so, d / "libenvoy_lambda.so")
                dirs[name] = d
        up.set_default(Reply(200, {"x-amzn-RequestId": "6f8c1a52-1d0c-4b0c-9d8e-0123456789ab",
                                   "X-Amz-Executed-Version": "1",
                                   "X-Amz-Log-Result": base64.b64encode(REPORT.encode()).decode()},
                             b'{"ok":true}'))
        for rnd in range(args.rounds):
            for mode in modes:
                t = time.monotonic()
                module_dir = dirs["before" if mode == "before" else "current"]
                ir = measure(envoy_bin, up.port, mode, args.requests, Path(tmp), module_dir)
                per_mode[mode].append(ir)
                print(f"round {rnd + 1} {mode:>18}: {ir:,.0f} instructions/request "
                      f"({time.monotonic() - t:.0f} s)", flush=True)
    result = {
        "what": "instructions of the Envoy process (callgrind, all threads) per GET through "
                "the module, after a 200-request warm-up; shared 2-core VM",
        "requests_per_window": args.requests,
        "rounds": args.rounds,
        "instructions_per_request": {m: statistics.median(v) for m, v in per_mode.items()},
        "all": per_mode,
    }
    base = result["instructions_per_request"].get("off")
    if base:
        result["over_off"] = {m: v - base for m, v in result["instructions_per_request"].items()}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
