#!/usr/bin/env bash
# Runs every fuzz target (the tpx-wire decoders, the replication stream and engine_vs_reference) for a bounded time (FUZZ_SECS, default 10 s each), seeded
# with the canonical examples. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a
# C++ compiler; runs on the stable toolchain through RUSTC_BOOTSTRAP=1 (see fuzz/README.md).
# Exits 0 without fuzzing if cargo-fuzz is missing (set FUZZ_REQUIRED=1 to fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${FUZZ_SECS:-10}"
TARGETS=(order_entry_frame log_record md_packet framing engine_vs_reference peer_stream)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz-smoke: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
  [ "${FUZZ_REQUIRED:-0}" = 1 ] && exit 1
  echo "fuzz-smoke: skipped"
  exit 0
fi

export RUSTC_BOOTSTRAP=1
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/fuzz/target}"
CORPUS="$PWD/fuzz/corpus"
mkdir -p "$CORPUS"
TPX_WRITE_CORPUS="$CORPUS" cargo test -q -p tpx-wire --test fuzz_seeds >/dev/null

mkdir -p "$CORPUS/engine_vs_reference" "$CORPUS/peer_stream"
cd fuzz
cargo fuzz build -s none --target-dir "$TARGET_DIR/fuzz"
LOG_DIR="$(mktemp -d)"
for t in "${TARGETS[@]}"; do
  log="$LOG_DIR/$t.log"
  if ! cargo fuzz run -s none --target-dir "$TARGET_DIR/fuzz" "$t" "$CORPUS/$t" -- \
      -max_total_time="$SECS" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz-smoke: $t FAILED (the crashing input is under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  echo "fuzz-smoke: $t ok, $(grep -Eo 'number_of_executed_units: [0-9]+' "$log" | grep -Eo '[0-9]+') runs in ${SECS}s"
done
rm -rf "$LOG_DIR"
echo "fuzz-smoke: ok"
