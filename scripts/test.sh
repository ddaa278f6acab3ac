#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs Envoy 1.40.0, moto and pytest into
# .venv, checks formatting and lints, builds the module, runs the Rust tests (unit, AWS SigV4
# test suite, ABI symbols vs. the real Envoy binary, header freshness), every fuzz target for a
# bounded time, and the integration tests (real Envoy + moto + the native aws_lambda filter as reference).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "install test peers (scripts/bootstrap.sh)"
scripts/bootstrap.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo build --release"
cargo build --release --quiet

step "cargo test (unit, SigV4 vectors, ABI symbols, header)"
cargo test --quiet

step "fuzz targets, ${FUZZ_SECONDS:-30} s each (scripts/fuzz.sh)"
scripts/fuzz.sh

step "integration tests (real Envoy 1.40.0 + moto)"
.venv/bin/python -m pytest tests/integration -q -p no:cacheprovider
