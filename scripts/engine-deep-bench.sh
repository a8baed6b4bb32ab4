#!/usr/bin/env bash
# Issue 21, "Deep books": main's engine-bench against this branch's, alternately, on the same
# machine in the same session, and the `deep` workload.
#
#   scripts/engine-deep-bench.sh BASELINE_BIN NEW_BIN [ROUNDS]
#
# e.g. (build each with the same profile; LTO off is what the numbers in ARCHITECTURE.md used):
#   git stash; cargo build --release -p tpx-benches --bin engine-bench
#   cp target/release/engine-bench /tmp/engine-bench-main; git stash pop
#   cargo build --release -p tpx-benches --bin engine-bench
#   scripts/engine-deep-bench.sh /tmp/engine-bench-main target/release/engine-bench
#
# For `heavy` and `exchange-core-mix` it runs BASELINE then NEW, ROUNDS (default 3) times, each
# a fresh process (`--peers none --json`), and prints ops/s and per-command latency of every
# run, the medians and NEW / BASELINE of the medians. Then `deep` once with NEW. Raw JSON lines
# go to $OUT (default /tmp/engine-deep-bench).
set -euo pipefail
base=${1:?baseline engine-bench binary}
new=${2:?new engine-bench binary}
rounds=${3:-3}
out=${OUT:-/tmp/engine-deep-bench}
mkdir -p "$out"
: >"$out/runs.jsonl"

run() { # label binary workload ops
    local json
    json=$("$2" --workload "$3" --ops "$4" --peers none --json 2>/dev/null | tail -1)
    printf '{"label":"%s","run":%s}\n' "$1" "$json" >>"$out/runs.jsonl"
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
l = r["latency_ns"]
print("%-9s %-18s %6.2f M ops/s  p50 %7.1f  p99 %8.1f  p99.9 %8.1f  max %11.1f ns  hash_ok %s" % (
    sys.argv[2], r["workload"], r["ops_per_sec"] / 1e6, l["p50"], l["p99"], l["p999"], l["max"],
    r["state_hash_ok"]))' "$json" "$1"
}

for workload_ops in heavy:2000000 exchange-core-mix:10000000; do
    w=${workload_ops%%:*}
    ops=${workload_ops##*:}
    for _ in $(seq "$rounds"); do
        run baseline "$base" "$w" "$ops"
        run new "$new" "$w" "$ops"
    done
done
run new "$new" deep 2000000

python3 - "$out/runs.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print()
for w in ["heavy", "exchange-core-mix"]:
    med = {}
    for label in ["baseline", "new"]:
        xs = [r["run"]["ops_per_sec"] for r in runs if r["label"] == label and r["run"]["workload"] == w]
        med[label] = statistics.median(xs)
    print("%s: median baseline %.2f M ops/s, new %.2f M ops/s, new / baseline %.2f" % (
        w, med["baseline"] / 1e6, med["new"] / 1e6, med["new"] / med["baseline"]))
EOF
