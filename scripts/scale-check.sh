#!/usr/bin/env bash
# scale-check (issue 21): throughput and latency of `tpx node` by shard count. For each count in
# SHARDS it runs
#   1. e2e-bench --shards N: the gateway and sequencer on NODE_CPU, each shard alone on a CPU of
#      its own (the CPUs after NODE_CPU and CLIENT_CPU), one instrument per shard, the
#      throughput run's sessions spread over the instruments; and
#   2. tpx-load against a `tpx node` with the same plan (written by `e2e-bench --write-node`),
#      makers and takers on every instrument at stepped rates;
# and writes $OUT/scale.json: one entry per shard count with the ack latency (p50/p99/p99.9/
# max, µs), e2e-bench's throughput, tpx-load's highest rate held and its corrected latency per
# step. Meant for a machine with 16 or more cores (SHARDS="1 2 4 8 14" spinning on dedicated
# cores, the default); on a smaller one, shards share CPUs and the script says so.
#
# Variables: SHARDS, IDLE (spin | park), NODE_CPU, CLIENT_CPU, BIN (the binaries' folder,
# default target/release), OUT, E2E_ARGS, LOAD_RATES, LOAD_DURATION, LOAD_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release}"
SHARDS="${SHARDS:-1 2 4 8 14}"
IDLE="${IDLE:-spin}"
CPUS="$(nproc)"
CLIENT_CPU="${CLIENT_CPU:-0}"
if [ -z "${NODE_CPU:-}" ]; then
    if [ "$CPUS" -ge 2 ]; then NODE_CPU=1; else NODE_CPU=0; fi
fi
OUT="${OUT:-lab-runs/scale-$(date -u +%Y%m%dT%H%M%SZ)}"
E2E_ARGS="${E2E_ARGS:-}"
LOAD_RATES="${LOAD_RATES:-100000,250000,500000,1000000,2000000,4000000}"
LOAD_DURATION="${LOAD_DURATION:-5}"
LOAD_ARGS="${LOAD_ARGS:-}"
for b in tpx e2e-bench tpx-load; do
    [ -x "$BIN/$b" ] || { echo "scale-check: no $BIN/$b (cargo build --release -p tpx-node --bin tpx -p tpx-benches --bin e2e-bench --bin tpx-load)" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

NODE=""
stop_node() {
    if [ -n "$NODE" ]; then
        kill -TERM "$NODE" 2>/dev/null || true
        wait "$NODE" 2>/dev/null || true
        NODE=""
    fi
}
trap stop_node EXIT

for n in $SHARDS; do
    need=$((n + 2))
    if [ "$CPUS" -lt "$need" ]; then
        echo "scale-check: $n shards want $need CPUs (gateway+sequencer, client, one per shard), this machine has $CPUS: shards share CPUs" >&2
    fi
    sessions=$((2 * n > 8 ? 2 * n : 8))
    [ "$sessions" -le 64 ] || sessions=64
    echo "scale-check: $n shard(s): e2e-bench ..." >&2
    # shellcheck disable=SC2086
    "$BIN/e2e-bench" --json --shards "$n" --sessions "$sessions" --idle "$IDLE" \
        --node-cpu "$NODE_CPU" --client-cpu "$CLIENT_CPU" --tpx "$BIN/tpx" $E2E_ARGS \
        >"$OUT/e2e-$n.json"

    echo "scale-check: $n shard(s): tpx-load ..." >&2
    dir="$OUT/node-$n"
    cfg="$("$BIN/e2e-bench" --write-node "$dir" --shards "$n" --idle "$IDLE" \
        --node-cpu "$NODE_CPU" --client-cpu "$CLIENT_CPU")"
    (cd "$dir" && exec "$BIN/tpx" node --config "$cfg") >"$dir/node.out" 2>&1 &
    NODE=$!
    addr=""
    for _ in $(seq 300); do
        addr="$(sed -n 's/^tpx node: listening on //p' "$dir/node.out" | head -1)"
        [ -n "$addr" ] && grep -q "ROLE primary" "$dir/node.out" && break
        kill -0 "$NODE" 2>/dev/null || { cat "$dir/node.out" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "scale-check: the node did not listen" >&2; exit 1; }
    # shellcheck disable=SC2086
    "$BIN/tpx-load" --addr "$addr" --sessions "$sessions" --accounts "$sessions" \
        --instruments "$(seq -s, 1 "$n")" --rates "$LOAD_RATES" --duration "$LOAD_DURATION" \
        --floor-samples 0 --disk-floor-samples 0 --out "$OUT/load-$n" $LOAD_ARGS \
        || echo "scale-check: tpx-load exited $? (a step not held ends its run)" >&2
    stop_node
done

python3 - "$OUT" "$CPUS" "$IDLE" $SHARDS <<'EOF'
import json, os, sys
out, cpus, idle, shards = sys.argv[1], int(sys.argv[2]), sys.argv[3], [int(s) for s in sys.argv[4:]]
rows = []
for n in shards:
    e2e = json.load(open(os.path.join(out, "e2e-%d.json" % n)))
    load_path = os.path.join(out, "load-%d" % n, "summary.json")
    load = json.load(open(load_path)) if os.path.exists(load_path) else {}
    rows.append({
        "shards": n,
        "dedicated_cpus": cpus >= n + 2,
        "e2e": {
            "ack_us": e2e["ack"],
            "ratio_p50": e2e["ratio_p50"],
            "ratio_p99": e2e["ratio_p99"],
            "throughput_orders_per_sec": e2e["throughput_orders_per_sec"],
        },
        "load": {
            "max_sustainable_rate": load.get("max_sustainable_rate"),
            "steps": [
                {
                    "target_rate": s["target_rate"],
                    "achieved_rate": s["achieved_rate"],
                    "held": s["held"],
                    "latency_corrected_ns": s["latency_corrected_ns"],
                }
                for s in load.get("steps", [])
            ],
        },
    })
summary = {"tool": "scale-check", "cpus": cpus, "idle": idle, "runs": rows}
with open(os.path.join(out, "scale.json"), "w") as f:
    json.dump(summary, f, indent=2)
for r in rows:
    print("shards %2d: e2e ack p50 %.2f us p99 %.2f us, throughput %.0f/s; tpx-load max held %s/s"
          % (r["shards"], r["e2e"]["ack_us"]["p50_us"], r["e2e"]["ack_us"]["p99_us"],
             r["e2e"]["throughput_orders_per_sec"], r["load"]["max_sustainable_rate"]),
          file=sys.stderr)
print(os.path.join(out, "scale.json"))
EOF
