#!/usr/bin/env python3
"""Instruction counts per request of the Envoy under test, robust on a loaded machine.

This VM exposes no hardware PMU (`perf stat -e instructions:u` says `<not supported>`), so the
counts come from valgrind's callgrind: it executes the Envoy under test on a synthetic CPU and
counts every user-space instruction (Ir), exactly and independent of other load, by function
and by shared object, with the exact number of calls between functions. That gives, per
request: instructions in all, split by DSO (Envoy, libenvoy_lambda.so, libc …), the calls of
every module hook (`envoy_dynamic_module_on_*`) and every ABI callback the module makes
(`envoy_dynamic_module_callback_*`; Envoy exports them, so they keep their names although the
binary is stripped), and the module's most expensive functions.

Per cell (config × payload): a fresh Envoy under callgrind (`--instr-atstart=no`: start-up and
warm-up run uninstrumented), pinned to core 0, behind the same fake Lambda as bench.py; a curl
check of the answer, a warm-up, then instrumentation on, N requests over one connection (h2load
-c 1: sequential, so the count is the same on every run), dump. Every request must answer 200.
The window also holds Envoy's idle work (timers, stats flush), a few thousand instructions per
second: negligible against the counts here. Time is not measured: callgrind runs ~50× slower.

    .venv/bin/python bench/count.py --configs C,D --payloads get,64k,1m [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import bench as B  # bench/bench.py: configs, fake Lambda, h2load, curl
import envoy_proc  # noqa: E402  (tests/integration, on the path through bench)

DEFAULT_N = {"get": 400, "1k": 400, "64k": 100, "1m": 20, "r1m": 20, "r1m-unwrap": 20}
MODULE_SO = "libenvoy_lambda.so"


def callgrind_launcher(workdir: Path, envoy_bin: str, out_file: Path) -> str:
    p = workdir / "envoy-callgrind.sh"
    p.write_text("#!/bin/sh\n"
                 f'exec taskset -c {B.CORE_UNDER_TEST} valgrind --tool=callgrind -q '
                 f'--instr-atstart=no --callgrind-out-file={out_file} '
                 f'"{envoy_bin}" "$@"\n')
    p.chmod(0o755)
    return str(p)


_NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")


def parse_callgrind(path: Path) -> dict:
    """Self Ir per (object, function), and call counts per (caller object, callee name)."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}

    def name(kind: str, v: str) -> str:
        m = _NAME.match(v.strip())
        if not m:
            return v.strip()
        idx, n = m.groups()
        if n is not None:
            names[kind][idx] = n
        return names[kind].get(idx, f"?{idx}")

    self_ir: dict[tuple[str, str], int] = defaultdict(int)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    call_ir: dict[tuple[str, str], int] = defaultdict(int)  # inclusive Ir of those calls
    ob = fn = cob = cfn = ""
    skip_next_cost = False
    total = 0
    with open(path) as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if skip_next_cost:  # the inclusive cost of a call, not this function's own
                    skip_next_cost = False
                    parts = line.split()
                    if len(parts) > 1:
                        call_ir[(ob, cfn)] += int(parts[1])
                    continue
                parts = line.split()
                if len(parts) > 1:
                    self_ir[(ob, fn)] += int(parts[1])
                continue
            key, _, val = line.rstrip("\n").partition("=")
            if key == "ob":
                ob = name("ob", val)
            elif key == "fn":
                fn = name("fn", val)
                cob = ob
            elif key == "cob":
                cob = name("ob", val)
            elif key == "cfn":
                cfn = name("fn", val)
            elif key == "calls":
                calls[(ob, cfn)] += int(val.split()[0])
                skip_next_cost = True
                cob = ob
            elif key in ("summary", "totals"):
                total = int(val.split()[0]) if val.strip() else total
    if not total:
        total = sum(self_ir.values())
    return {"self_ir": self_ir, "calls": calls, "call_ir": call_ir, "total": total}


def short_ob(ob: str) -> str:
    base = os.path.basename(ob)
    # "???": an anonymous executable mapping, the part of Envoy's text it remaps at start-up
    # (its addresses lie next to the binary's own)
    if base in ("envoy", "???"):
        return "envoy"
    if base.startswith(MODULE_SO.split(".")[0]):
        return MODULE_SO
    return base or "?"


def summarize(parsed: dict, n: int) -> dict:
    by_dso: dict[str, int] = defaultdict(int)
    module_fns: dict[str, int] = defaultdict(int)
    for (ob, fn), ir in parsed["self_ir"].items():
        d = short_ob(ob)
        by_dso[d] += ir
        if d == MODULE_SO:
            module_fns[fn] += ir
    hooks: dict[str, float] = defaultdict(float)
    hooks_ir: dict[str, float] = defaultdict(float)
    abi: dict[str, float] = defaultdict(float)
    abi_ir: dict[str, float] = defaultdict(float)
    calls_of: dict[str, float] = defaultdict(float)  # every callee, by name
    for (ob, cfn), k in parsed["calls"].items():
        ir = parsed["call_ir"][(ob, cfn)]
        calls_of[cfn] += k / n
        if cfn.startswith("envoy_dynamic_module_on_") and short_ob(ob) != MODULE_SO:
            hooks[cfn.removeprefix("envoy_dynamic_module_on_")] += k / n
            hooks_ir[cfn.removeprefix("envoy_dynamic_module_on_")] += ir / n
        if cfn.startswith("envoy_dynamic_module_callback_") and short_ob(ob) == MODULE_SO:
            key = cfn.removeprefix("envoy_dynamic_module_callback_")
            abi[key] += k / n
            abi_ir[key] += ir / n
    total = sum(by_dso.values())
    top = sorted(module_fns.items(), key=lambda kv: -kv[1])[:15]
    return {
        "requests": n,
        "ir_per_req": total / n,
        "ir_per_req_by_dso": {d: v / n for d, v in sorted(by_dso.items(), key=lambda kv: -kv[1])},
        "hook_calls_per_req": dict(sorted(hooks.items())),
        # inclusive: the hook with all it calls (module code and the ABI calls into Envoy)
        "hook_ir_per_req": dict(sorted(hooks_ir.items())),
        "abi_calls_per_req": dict(sorted(abi.items())),
        # inclusive Ir inside Envoy of each kind of ABI call, per request
        "abi_ir_per_req": dict(sorted(abi_ir.items())),
        "calls_per_req": {k: v for k, v in sorted(calls_of.items()) if v >= 0.5},
        "module_top_fns_ir_per_req": [(f, v / n) for f, v in top],
    }


def run_cell(args, cfg: str, cfg_text: str, payload: str, body, workdir: Path) -> dict:
    name = f"{payload}-{cfg}"
    cell_dir = workdir / name
    cell_dir.mkdir(parents=True, exist_ok=True)
    out_file = cell_dir / "callgrind.out"
    launcher = callgrind_launcher(cell_dir, args.envoy_bin, out_file)
    e = envoy_proc.EnvoyProcess(launcher, cfg_text, cell_dir, name=name, log_level="warning",
                                env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(args.module_dir)})
    e.start(timeout=300)
    try:
        pid = e.proc.pid
        url = e.url + B.PAYLOADS[payload]["path"]
        hdrs = B.answer_headers(payload)
        code, got = B.curl(url, body, headers=hdrs, timeout=120)
        if code != 200 or got != B.expected_answer(payload, cfg):
            raise B.BenchError(f"{name}: curl answered {code}: {got[:200]!r}")
        logf = cell_dir / "h2load.log"
        n = args.n[payload]
        B.h2load(url, max(n // 4, 5), 1, body, logf, headers=hdrs)  # warm-up, uninstrumented
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True,
                       capture_output=True)
        B.h2load(url, 5, 1, body, logf, headers=hdrs)  # first instrumented requests: JIT
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        B.h2load(url, n, 1, body, logf, headers=hdrs, timeout=900)
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
        sent = 1 + max(n // 4, 5) + 5 + n
        st = e.stats()
        ok = int(st.get("http.ingress.downstream_rq_2xx", 0))
        if ok != sent:
            raise B.BenchError(f"{name}: {ok} 2xx of {sent} sent")
    finally:
        e.stop(timeout=60)
    dumps = sorted(cell_dir.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
    dumps = [d for d in dumps if d.stat().st_size > 0]
    # the explicit dump (-d) is the one with the most cost; the exit dump holds what came after
    best = max(dumps, key=lambda d: parse_callgrind(d)["total"])
    res = summarize(parse_callgrind(best), n)
    res.update(config=cfg, payload=payload, dump=str(best))
    return res


def perf_cell(args, cfg: str, cfg_text: str, payload: str, body, workdir: Path) -> dict:
    """`perf record` (cpu-clock: the VM has no PMU) of the pinned Envoy, real CPU, closed loop:
    time shares by DSO and by symbol. Shares, not counts: the machine may be loaded."""
    name = f"perf-{payload}-{cfg}"
    cell_dir = workdir / name
    e = envoy_proc.EnvoyProcess(B.pinned_launcher(workdir, args.envoy_bin, B.CORE_UNDER_TEST),
                                cfg_text, cell_dir, name=name, log_level="warning",
                                env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(args.module_dir)})
    e.start(timeout=60)
    data = cell_dir / "perf.data"
    try:
        pid = e.proc.pid
        url = e.url + B.PAYLOADS[payload]["path"]
        hdrs = B.answer_headers(payload)
        logf = cell_dir / "h2load.log"
        n = args.n[payload] * 10
        B.h2load(url, max(n // 4, 8), 8, body, logf, headers=hdrs)
        rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-g",
                                "-p", str(pid), "-o", str(data)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        rate = args.perf_rate
        with B.CpuWindow(pid) as cw:
            if rate:  # open loop, 4 connections at a fixed total rate (as bench.py's p99)
                n = max(n, int(rate * 10)) // 4 * 4
                B.h2load(url, n, 4, body, logf, headers=hdrs, rps_per_client=rate / 4)
            else:
                B.h2load(url, n, 8, body, logf, headers=hdrs)
        rec.send_signal(2)
        rec.wait(timeout=60)
        cpu_us = cw.figures(n)["cpu_us_per_req_schedstat"]
    finally:
        e.stop()

    def report(sort: str) -> list[tuple[float, str]]:
        out = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--stdio",
                              "-g", "none", "--sort", sort, "--percent-limit", "0.5"],
                             capture_output=True, text=True).stdout
        rows = []
        for line in out.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(.*)$", line)
            if m:
                rows.append((float(m.group(1)), " ".join(m.group(2).split())))
        return rows
    return {"config": cfg, "payload": payload, "requests": n, "cpu_us_per_req": cpu_us,
            "dso_shares": report("dso"), "symbol_shares": report("dso,sym")[:25],
            "perf_data": str(data)}


def read_counts(path: Path) -> dict[str, int]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            k, _, v = line.rpartition(" ")
            out[k] = int(v)
    return out


def counters_cell(args, cfg: str, cfg_text: str, payload: str, body, workdir: Path) -> dict:
    """The module built with `--features abi-counters`, at full speed (pinned, 8 connections,
    closed loop like bench.py): hooks, ABI calls and body slices per request as they happen
    when the body streams in at full speed. Snapshots come every 50 streams."""
    name = f"counters-{payload}-{cfg}"
    cell_dir = workdir / name
    counts = cell_dir / "counts.txt"
    cell_dir.mkdir(parents=True, exist_ok=True)
    e = envoy_proc.EnvoyProcess(B.pinned_launcher(workdir, args.envoy_bin, B.CORE_UNDER_TEST),
                                cfg_text, cell_dir, name=name, log_level="warning",
                                env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(args.module_dir),
                                     "ENVOY_LAMBDA_COUNTS": str(counts)})
    e.start(timeout=60)
    try:
        url = e.url + B.PAYLOADS[payload]["path"]
        hdrs = B.answer_headers(payload)
        logf = cell_dir / "h2load.log"
        B.curl(url, body, headers=hdrs)
        B.h2load(url, 199, 1, body, logf, headers=hdrs)  # + curl: 200 streams, a snapshot
        time.sleep(0.5)
        c0 = read_counts(counts)
        n = args.n[payload] * 5 // 50 * 50 or 50
        B.h2load(url, n, 8, body, logf, headers=hdrs)
        time.sleep(0.5)
        c1 = read_counts(counts)
    finally:
        e.stop()
    streams = c1.get("streams_destroyed", 0) - c0.get("streams_destroyed", 0)
    if streams != n:
        raise B.BenchError(f"{name}: snapshots cover {streams} streams, sent {n}")
    per = {k: (v - c0.get(k, 0)) / streams for k, v in c1.items() if k != "streams_destroyed"}
    return {"config": cfg, "payload": payload, "requests": n, "per_request": per}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="C,D")
    ap.add_argument("--payloads", default="get,64k,1m")
    ap.add_argument("--requests", action="append", default=[], metavar="PAYLOAD=N")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--counters", action="store_true",
                    help="instead of callgrind: the module built with --features abi-counters "
                         "(pass it with --module) at full speed: hooks, ABI calls, body slices "
                         "per request")
    ap.add_argument("--perf-rate", type=float, default=0.0, metavar="REQ_PER_S",
                    help="with --perf: record at this fixed total rate (open loop, >= 10 s) "
                         "instead of closed loop, to see what a request pays when it arrives "
                         "at an idle Envoy")
    ap.add_argument("--perf", action="store_true",
                    help="instead of callgrind: perf record (cpu-clock, -g) of the real run, "
                         "10x the requests over 8 connections; time shares by DSO and symbol")
    ap.add_argument("--module", default=str(envoy_proc.MODULE_SO),
                    help="the module .so to load (copied first)")
    args = ap.parse_args(argv)
    args.n = dict(DEFAULT_N)
    for r in args.requests:
        k, _, v = r.partition("=")
        args.n[k] = int(v)
    os.sched_setaffinity(0, {B.CORE_OTHERS})
    args.envoy_bin = envoy_proc.find_envoy()
    workdir = B.BENCH / ".work" / ("count-" + time.strftime("%Y%m%d-%H%M%S"))
    workdir.mkdir(parents=True)
    args.module_dir = workdir / "module"
    args.module_dir.mkdir()
    import shutil
    shutil.copy2(args.module, args.module_dir / MODULE_SO)
    upstream = envoy_proc.EnvoyProcess(B.pinned_launcher(workdir, args.envoy_bin, B.CORE_OTHERS),
                                       B.upstream_config(), workdir / "upstream",
                                       name="upstream", log_level="warning")
    results = []
    try:
        upstream.start(timeout=60)
        B.CpuWindow.upstream_pid = upstream.proc.pid
        lam = int(upstream.listeners["lambda"].rsplit(":", 1)[1])
        plain = int(upstream.listeners["plain"].rsplit(":", 1)[1])
        # E: C without per-function stats and access-log metadata (what observability costs)
        texts = {"A": B.config_a(plain), "B": B.config_b(lam), "C": B.config_c(lam),
                 "D": B.config_d(plain), "E": B.config_c(lam, observability=False)}
        for p in args.payloads.split(","):
            size = B.PAYLOADS[p]["size"]
            body = B.make_payload(workdir / f"body-{p}.json", size) if size else None
            for cfg in args.configs.split(","):
                if args.counters:
                    r = counters_cell(args, cfg, texts[cfg], p, body, workdir)
                    results.append(r)
                    print(f"{p:>10} {cfg}: " + ", ".join(
                        f"{k} {v:g}" for k, v in sorted(r["per_request"].items())), flush=True)
                    continue
                if args.perf:
                    r = perf_cell(args, cfg, texts[cfg], p, body, workdir)
                    results.append(r)
                    print(f"{p:>10} {cfg}: {r['cpu_us_per_req']:.1f} µs/req; " + ", ".join(
                        f"{d} {v:.1f}%" for v, d in r["dso_shares"][:5]), flush=True)
                    continue
                r = run_cell(args, cfg, texts[cfg], p, body, workdir)
                results.append(r)
                dso = ", ".join(f"{d} {v:,.0f}" for d, v in
                                list(r["ir_per_req_by_dso"].items())[:4])
                print(f"{p:>10} {cfg}: {r['ir_per_req']:,.0f} Ir/req ({dso})", flush=True)
    finally:
        upstream.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    for r in results:
        if args.counters:
            continue
        if args.perf:
            print(f"\n== {r['payload']} {r['config']} (perf, {r['cpu_us_per_req']:.1f} µs/req)")
            for v, sym in r["symbol_shares"][:20]:
                print(f"  {v:5.1f}%  {sym}")
            continue
        print(f"\n== {r['payload']} {r['config']}: {r['ir_per_req']:,.0f} Ir/req over "
              f"{r['requests']} requests")
        print("  by DSO:", ", ".join(f"{d} {v:,.0f}" for d, v in r["ir_per_req_by_dso"].items()
                                     if v >= 1))
        if r["hook_calls_per_req"]:
            print("  hooks/req:", ", ".join(f"{k} {v:g}" for k, v in
                                          r["hook_calls_per_req"].items()))
            print("  hook Ir/req (inclusive):", ", ".join(
                f"{k} {v:,.0f}" for k, v in r["hook_ir_per_req"].items()))
            print("  ABI calls/req (Ir inside Envoy per request):", ", ".join(
                f"{k} {v:g} ({r['abi_ir_per_req'][k]:,.0f})"
                for k, v in r["abi_calls_per_req"].items()))
            print("  module top:", ", ".join(f"{f[:60]} {v:,.0f}" for f, v in
                                            r["module_top_fns_ir_per_req"][:8]))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(sys.argv[1:]))
