#!/usr/bin/env python3
"""What the module costs in memory, idle and after a few requests, against the native filter.

One fresh Envoy per configuration, each behind the bench's upstream Envoy (bench.py):

* ``A``  the plain router (how much Envoy itself moves from process to process)
* ``B``  the native ``aws_lambda`` filter
* ``C``  the module signing with an Envoy secret (the bench's config C)
* ``P``  the module signing with a credential provider (``credentials: {source: env}``, the
         keys in the Envoy's environment): the SDK library is loaded and fetches once

For each: ``VmRSS`` idle, ``VmHWM`` after ``--requests`` GETs (every one must answer 200), the
threads, and per library of ours (``/proc/<pid>/smaps``) the resident kB of each mapping:
read-only (relocations, rodata, unwind tables), text, relocated data, data; and the whole
process's resident kB by kind of mapping (Envoy's executable, our libraries, other files,
anonymous). Rounds alternate A, B, C, P; the tables give each figure's median.

    .venv/bin/python bench/memory.py [--rounds 3] [--module-dir target/release] [--drop-caches]

``--drop-caches`` (root) empties the page cache first, so every library is read fresh: how
much of a file's text becomes resident depends on how its pages sit in the cache.
Loopback only; about ten seconds per Envoy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench as B  # bench/bench.py: configs, upstream, curl
import configs
import envoy_proc

OURS = ("libenvoy_lambda.so", "libenvoy_lambda_credentials_sdk.so")


def config_p(lambda_port: int) -> str:
    upstream = configs.aws_upstream("bench-lambda", lambda_port, [configs.fn("echo", "echo")],
                                    credentials={"source": "env"})
    del upstream["spec"]["secret_ref"]
    text = configs.module_config(lambda_port, {"upstreams": [upstream]},
                                 [("/", configs.module_per_route("bench-lambda", "echo"))],
                                 buffer_limit=B.BUFFER_LIMIT)
    return configs.dump(B._strip_access_logs(json.loads(text)))


def our_mappings(pid: int) -> dict[str, list[tuple[str, int]]]:
    """Per library of ours: (permissions, resident kB) of each of its mappings."""
    out: dict[str, list[tuple[str, int]]] = {}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                name = os.path.basename(parts[5]) if len(parts) > 5 else ""
                current = (name, parts[1]) if name in OURS else None
            elif current and parts[0] == "Rss:":
                out.setdefault(current[0], []).append((current[1], int(parts[1])))
    return out


def rss_by_kind(pid: int) -> dict[str, int]:
    """Resident kB of the whole process by kind of mapping: Envoy's executable, our libraries,
    other files (libc, …), anonymous memory (heap, stacks, tcmalloc's spans)."""
    kinds = {"envoy": 0, "ours": 0, "files": 0, "anon": 0}
    exe = os.path.realpath(f"/proc/{pid}/exe")
    kind = "anon"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and "-" in parts[0] and not parts[0].endswith(":"):
                path = parts[5] if len(parts) > 5 else ""
                if path == exe:
                    kind = "envoy"
                elif os.path.basename(path) in OURS:
                    kind = "ours"
                elif path.startswith("/"):
                    kind = "files"
                else:
                    kind = "anon"
            elif parts and parts[0] == "Rss:":
                kinds[kind] += int(parts[1])
    return kinds


def measure(envoy_bin: str, name: str, text: str, module_dir: Path, work: Path,
            requests: int) -> dict:
    env = {"ENVOY_DYNAMIC_MODULES_SEARCH_PATH": str(module_dir),
           "AWS_ACCESS_KEY_ID": B.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": B.SECRET_KEY,
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}
    e = envoy_proc.EnvoyProcess(envoy_bin, text, work / name, name=name, log_level="warning",
                                env=env)
    e.start(timeout=60)
    try:
        pid = e.proc.pid
        time.sleep(1)
        idle = B.status_kib(pid, "VmRSS")
        for i in range(requests):
            code, _ = B.curl(e.url + "/", None)
            if code != 200:
                raise B.BenchError(f"{name}: request {i} answered {code}\n{e.log_tail(20)}")
        time.sleep(1)
        return {"idle_kib": idle, "peak_kib": B.status_kib(pid, "VmHWM"),
                "threads": len(os.listdir(f"/proc/{pid}/task")), "mappings": our_mappings(pid),
                "kinds": rss_by_kind(pid)}
    finally:
        e.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--module-dir", type=Path, default=envoy_proc.MODULE_DIR)
    ap.add_argument("--drop-caches", action="store_true")
    args = ap.parse_args(argv)
    module_dir = args.module_dir.resolve()
    if args.drop_caches:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    envoy_bin = envoy_proc.find_envoy()
    runs: dict[str, list[dict]] = {"A": [], "B": [], "C": [], "P": []}
    with tempfile.TemporaryDirectory(prefix="memory-") as tmp:
        work = Path(tmp)
        up = envoy_proc.EnvoyProcess(envoy_bin, B.upstream_config(), work / "upstream",
                                     name="upstream")
        up.start(timeout=60)
        try:
            port = int(up.listeners["lambda"].rsplit(":", 1)[1])
            plain = int(up.listeners["plain"].rsplit(":", 1)[1])
            texts = {"A": B.config_a(plain), "B": B.config_b(port), "C": B.config_c(port),
                     "P": config_p(port)}
            for rnd in range(args.rounds):
                for name, text in texts.items():
                    runs[name].append(measure(envoy_bin, f"r{rnd}-{name}", text, module_dir,
                                              work, args.requests))
        finally:
            up.stop()
    med = statistics.median
    base_idle = med(r["idle_kib"] for r in runs["B"])
    base_peak = med(r["peak_kib"] for r in runs["B"])
    print(f"module dir {module_dir}; {args.rounds} rounds, {args.requests} GETs each; medians")
    print("| config | idle RSS kB | − B | peak RSS kB | − B | threads | our mappings resident kB |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, rs in runs.items():
        idle, peak = med(r["idle_kib"] for r in rs), med(r["peak_kib"] for r in rs)
        libs = []
        for lib in OURS:
            per = [r["mappings"].get(lib) for r in rs if r["mappings"].get(lib)]
            if per:
                segs = " ".join(f"{p} {med(m[i][1] for m in per):.0f}"
                                for i, (p, _) in enumerate(per[0]))
                total = med(sum(k for _, k in m) for m in per)
                libs.append(f"{lib}: {total:.0f} ({segs})")
        print(f"| {name} | {idle:.0f} | {idle - base_idle:+.0f} | {peak:.0f} | "
              f"{peak - base_peak:+.0f} | {med(r['threads'] for r in rs):.0f} | "
              f"{'; '.join(libs) or '—'} |")
    print()
    print("Resident kB by kind of mapping at the end (medians; − B in parentheses):")
    print("| config | Envoy's executable | our libraries | other files | anonymous |")
    print("|---|---:|---:|---:|---:|")
    kinds = ("envoy", "ours", "files", "anon")
    base = {k: med(r["kinds"][k] for r in runs["B"]) for k in kinds}
    for name, rs in runs.items():
        cells = []
        for k in kinds:
            v = med(r["kinds"][k] for r in rs)
            cells.append(f"{v:.0f} ({v - base[k]:+.0f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
