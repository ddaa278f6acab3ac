#!/usr/bin/env bash
# Regenerate include/envoy_lambda.h (cbindgen, from src/abi/hooks.rs and src/abi/ffi.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ENVOY_LAMBDA_WRITE_HEADER=1 cargo build --quiet
echo "include/envoy_lambda.h regenerated"
