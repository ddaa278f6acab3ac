#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (or those named as arguments) for FUZZ_SECONDS each
# (default 30), one after another, from a temporary copy of the checked-in seeds, so that
# nothing the fuzzer finds to keep ends up in the tree. A crash, leak, timeout or out-of-memory
# leaves its input in fuzz/artifacts/<target>/ and makes this script exit non-zero.
#
#   scripts/fuzz.sh                          # all targets, 30 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh unwrap  # one target, longer
#
# Needs a nightly toolchain (libFuzzer's sanitizer flags); installs cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-2048}"
# An input that runs longer than this is a hang: it is reported like a crash.
INPUT_TIMEOUT_S="${FUZZ_INPUT_TIMEOUT:-10}"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: no nightly Rust toolchain (rustup toolchain list); cargo fuzz needs one" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

echo "fuzz.sh: building the fuzz targets"
cargo +nightly fuzz build --fuzz-dir fuzz

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
for target in "${targets[@]}"; do
    if ! compgen -G "fuzz/corpus/$target/seed-*" >/dev/null; then
        echo "fuzz.sh: no target '$target' with seeds in fuzz/corpus/$target/" >&2
        exit 1
    fi
    corpus="$work/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    cp fuzz/corpus/"$target"/seed-* "$corpus"/
    log="$work/$target.log"
    status=0
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout="$INPUT_TIMEOUT_S" -artifact_prefix="fuzz/artifacts/$target/" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    if [ "$status" -eq 0 ]; then
        echo "fuzz.sh: $target: ${runs:-?} runs in ${SECONDS_PER_TARGET} s, no crash"
    else
        failed=1
        # The panic message (or the sanitizer's verdict), not the whole backtrace.
        grep -A1 'panicked at' "$log" >&2 || true
        grep -E '^==[0-9]+== ?ERROR|^SUMMARY:' "$log" >&2 || true
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)"
        echo "fuzz.sh: $target FAILED (exit $status); input: ${artifact:-see the log above}" >&2
        echo "fuzz.sh: reproduce with: cargo +nightly fuzz run --fuzz-dir fuzz $target ${artifact:-<input>}" >&2
    fi
done
exit "$failed"
