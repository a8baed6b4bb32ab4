#!/usr/bin/env bash
# `make bench`: the latency lab's stepped-rate run. Starts `tpx up` (release) on its own port,
# runs `tpx-load` at stepped rates against it, writes a run folder, stops `tpx up` (its own pid
# only). Variables: BENCH_RATES, BENCH_DURATION, BENCH_PORT, BENCH_OUT, BENCH_ARGS (to tpx-load),
# BENCH_UP_ARGS (to `tpx up`), BENCH_BIN (the folder holding `tpx` and `tpx-load`; default the
# release build), BENCH_NICE (a niceness for both, e.g. 19 on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release}"
NICE=(nice -n "${BENCH_NICE:-0}")
RATES="${BENCH_RATES:-100000,250000,500000,1000000,2000000}"
DURATION="${BENCH_DURATION:-5}"
PORT="${BENCH_PORT:-9107}"
OUT="${BENCH_OUT:-lab-runs/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
# shellcheck disable=SC2086
"${NICE[@]}" "$BIN/tpx" up --listen "127.0.0.1:$PORT" ${BENCH_UP_ARGS:-} >"$OUT/tpx-up.log" 2>&1 &
UP=$!
stop_up() {
    kill -TERM "$UP" 2>/dev/null || true
    wait "$UP" 2>/dev/null || true
}
trap stop_up EXIT
for _ in $(seq 300); do
    # Printed once a primary serves and (risk on) the demo accounts are funded.
    grep -qE "tpx up: ready" "$OUT/tpx-up.log" && break
    kill -0 "$UP" 2>/dev/null || { cat "$OUT/tpx-up.log"; exit 1; }
    sleep 0.1
done
# shellcheck disable=SC2086
"${NICE[@]}" "$BIN/tpx-load" --addr "127.0.0.1:$PORT" --rates "$RATES" --duration "$DURATION" \
    --out "$OUT" ${BENCH_ARGS:-}
echo "make bench: run folder $OUT"
