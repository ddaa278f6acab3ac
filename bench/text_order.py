#!/usr/bin/env python3
"""Which of the module's functions a running Envoy executes, as a linker script that puts them
first in the module's text (``build/text-order.ld``, used by ``build.rs``).

Why: Envoy maps the module's file and the kernel maps 64 KiB around every page fault
(fault-around), so every 64 KiB stretch of text with one executed function in it becomes
resident. Laid out by the compiler, executed and never-executed code alternate and all of the
text ends up resident. Executed code packed together leaves the rest (discovery, credential
providers, streaming, the backtrace printer of panics, error paths) on disk until used.

How: one Envoy with the bench's config C (bench.py) runs under callgrind from its first
instruction (config load included), answers every bench payload a few times (each checked),
and stops; every function of ``libenvoy_lambda.so`` with a cost is added, the most
instructions first, to the entries the file already has. Symbol names carry a hash that
changes with the build profile and the toolchain, so the script matches
``.text.<name without its hash>*`` (and LLVM's ``.text.unlikely.`` twin): the order survives
rebuilds and edits that keep a function's path.

Known gap: valgrind 3.19 reads the symbols of a library with lld's four load segments only
in part, and which part depends on the layout. The profile is read by instruction address
and by name, and one layout still misses functions another finds (188, 205 and 211 entries
from three layouts, 268 together). Hence the union with the file's entries; `--fresh` starts
over. `perf record -e page-faults -d` of a native Envoy shows the windows still faulted in.

    cargo build --profile profiling
    .venv/bin/python bench/text_order.py [--module target/profiling/libenvoy_lambda.so]

Loopback only; about two minutes (valgrind).
"""

from __future__ import annotations

import argparse
import bisect
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import bench as B  # bench/bench.py: configs, fake Lambda, payloads, curl
import count  # bench/count.py: callgrind's output format
import envoy_proc

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "text-order.ld"
REQUESTS = 3  # per payload: the paths matter, not the counts
# A legacy-mangled Rust symbol ends in `17h<16 hex>E`; thin LTO may append `.llvm.<n>`.
HASH = re.compile(r"17h[0-9a-f]{16}E(\.llvm\.\d+)?$")
LLVM_SUFFIX = re.compile(r"\.llvm\.\d+$")
# LLVM puts a function it deems cold (#[cold], paths to a panic) in `.text.unlikely.<name>`.
PREFIXES = (".text.", ".text.unlikely.")


def executed_addresses(dump: Path) -> dict[int, int]:
    """Ir per instruction address (``--dump-instr=yes``). Addresses, not names: valgrind 3.19
    does not always read the symbols of a library with lld's four load segments, and then
    names some of its functions wrongly or not at all."""
    cost: dict[int, int] = defaultdict(int)
    pos = 0
    call_line = False
    with open(dump) as f:
        for line in f:
            c = line[:1]
            if not (c.isdigit() or c in "+-*"):
                call_line = line.startswith("calls=")
                continue
            parts = line.split()
            sub = parts[0]
            if sub.startswith("0x"):
                pos = int(sub, 16)
            elif sub[0] == "+":
                pos += int(sub[1:], 16) if sub[1:].startswith("0x") else int(sub[1:])
            elif sub[0] == "-":
                pos -= int(sub[1:], 16) if sub[1:].startswith("0x") else int(sub[1:])
            elif sub != "*":
                pos = int(sub)
            if call_line:  # the inclusive cost of a call made here, not this line's own
                call_line = False
                continue
            if len(parts) > 1:
                cost[pos] += int(parts[1])
    return cost


def executed_by_name(dump: Path) -> dict[str, int]:
    """Self Ir per function named like one of ours: a hashed legacy-mangled Rust name, a v0
    ``_R`` name, one of our hooks. Envoy's own code is C++ or unnamed; a Rust name that is not
    ours matches nothing when the module is linked."""
    cost: dict[str, int] = defaultdict(int)
    for (_, fn), ir in count.parse_callgrind(dump)["self_ir"].items():
        fn = fn.split("'")[0]  # `'2`: callgrind's mark of a recursion level
        if HASH.search(fn) or fn.startswith(("_R", "envoy_dynamic_module_on_")):
            cost[fn] += ir
    return cost


def load_base(pid: int, module: Path) -> int:
    """Where the module's file starts in the process (its mapping at file offset 0)."""
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 5 and parts[5] == str(module) and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16)
    raise SystemExit(f"{module} is not mapped in the Envoy under callgrind")


class SymbolTable:
    def __init__(self, entries: list[tuple[int, int, str]]):
        self.entries = sorted(entries)
        self.starts = [a for a, _, _ in self.entries]

    def lookup(self, vaddr: int) -> str | None:
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i >= 0:
            start, size, name = self.entries[i]
            if start <= vaddr < start + max(size, 1):
                return name
        return None


def symbol_table(module: Path) -> SymbolTable:
    """The module's functions (``nm``: address, size, mangled name)."""
    out = subprocess.run(["nm", "-S", "--defined-only", str(module)], check=True,
                         capture_output=True, text=True).stdout
    entries = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            entries.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return SymbolTable(entries)


def pattern(symbol: str) -> str:
    """The input-section name of a function without the parts that change between builds:
    the legacy hash (``17h<16 hex>E``) and thin LTO's ``.llvm.<n>`` suffix."""
    m = HASH.search(symbol)
    if m:
        return symbol[:m.start()] + "17h*"
    m = LLVM_SUFFIX.search(symbol)
    return symbol[:m.start()] + "*" if m else symbol


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", type=Path,
                    default=ROOT / "target" / "profiling" / "libenvoy_lambda.so")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--fresh", action="store_true",
                    help="drop the entries already in --out (by default they are kept: "
                         "valgrind reads a different part of the functions of each layout)")
    ap.add_argument("--keep-dump", type=Path, help="copy callgrind's dumps into this directory")
    args = ap.parse_args(argv)
    module = args.module.resolve()
    if not module.exists():
        raise SystemExit(f"{module} missing: cargo build --profile profiling first")
    envoy_bin = envoy_proc.find_envoy()
    with tempfile.TemporaryDirectory(prefix="text-order-") as tmp:
        work = Path(tmp)
        up = envoy_proc.EnvoyProcess(envoy_bin, B.upstream_config(), work / "upstream",
                                     name="upstream")
        up.start(timeout=60)
        try:
            port = int(up.listeners["lambda"].rsplit(":", 1)[1])
            out_file = work / "callgrind.out"
            launcher = work / "envoy-callgrind.sh"
            launcher.write_text("#!/bin/sh\nexec valgrind --tool=callgrind -q --dump-instr=yes "
                                f'--dump-line=no --callgrind-out-file={out_file} '
                                f'"{envoy_bin}" "$@"\n')
            launcher.chmod(0o755)
            e = envoy_proc.EnvoyProcess(str(launcher), B.config_c(port), work / "C", name="C",
                                        log_level="warning",
                                        env={"ENVOY_DYNAMIC_MODULES_SEARCH_PATH":
                                             str(module.parent)})
            e.start(timeout=300)
            try:
                base = load_base(e.proc.pid, module)
                for payload, spec in B.PAYLOADS.items():
                    body = (B.make_payload(work / f"body-{payload}.json", spec["size"])
                            if spec["size"] else None)
                    for _ in range(REQUESTS):
                        code, got = B.curl(e.url + spec["path"], body,
                                           headers=B.answer_headers(payload), timeout=120)
                        if code != 200 or got != B.expected_answer(payload, "C"):
                            raise B.BenchError(f"{payload}: answered {code}: {got[:200]!r}")
                # Dump while Envoy runs: what its exit leaves is not always complete.
                subprocess.run(["callgrind_control", "-d", str(e.proc.pid)], check=True,
                               capture_output=True, timeout=120)
            finally:
                e.stop(timeout=120)
        finally:
            up.stop()
        symbols = symbol_table(module)
        cost: dict[str, int] = defaultdict(int)
        for dump in work.glob("callgrind.out*"):
            # Both readings, united: each alone has missed functions the other had.
            for addr, ir in executed_addresses(dump).items():
                fn = symbols.lookup(addr - base)
                if fn is not None:
                    cost[fn] += ir
            for fn, ir in executed_by_name(dump).items():
                cost[fn] += ir
        if args.keep_dump:
            for dump in work.glob("callgrind.out*"):
                shutil.copy(dump, args.keep_dump / dump.name)
    seen: set[str] = set()
    lines = []
    if args.out.exists() and not args.fresh:
        for line in args.out.read_text().splitlines():
            m = re.match(r"\s*\*\(\.text\.(\S+) ", line)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                lines.append(line)
    kept = len(lines)
    for symbol, _ in sorted(cost.items(), key=lambda kv: -kv[1]):
        p = pattern(symbol)
        if p not in seen:
            seen.add(p)
            lines.append("    *(" + " ".join(prefix + p for prefix in PREFIXES) + ")")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "/* Generated by bench/text_order.py: the functions Envoy executes with the bench's\n"
        "   config C (load and every bench payload), most instructions first. build.rs links\n"
        "   them at the start of the module's text; see bench/README.md, \"Memory\". */\n"
        "SECTIONS {\n  .text.executed : {\n" + "\n".join(lines) + "\n  }\n}\nINSERT BEFORE .text;\n")
    print(f"{len(cost)} functions of {module.name} executed; {len(lines) - kept} new entries, "
          f"{kept} kept; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
