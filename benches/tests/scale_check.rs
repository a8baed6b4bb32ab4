//! `scripts/scale-check.sh` (issue 21) on 1 and 2 shards, parked, short runs: on this 2-vCPU
//! machine the shards share a CPU (the script says so); on 16 cores the same script runs 1, 2,
//! 4, 8 and 14 shards spinning on dedicated cores. Checks the JSON it writes.

use std::path::Path;
use std::process::Command;

#[test]
fn the_scale_script_writes_throughput_and_latency_per_shard_count() {
    let bin = Path::new(env!("CARGO_BIN_EXE_e2e-bench"))
        .parent()
        .unwrap()
        .to_path_buf();
    if !bin.join("tpx").exists() {
        // `cargo test --workspace` (make test) builds it; alone: cargo build -p tpx-node --bin tpx.
        panic!("no tpx binary next to {}", bin.display());
    }
    let out = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let o = Command::new("bash")
        .arg(repo.join("scripts/scale-check.sh"))
        .env("BIN", &bin)
        .env("SHARDS", "1 2")
        .env("IDLE", "park")
        .env("OUT", out.path())
        .env(
            "E2E_ARGS",
            "--log in-process --floor-samples 2000 --ack-samples 2000 --warmup 200 \
             --throughput-secs 0.5 --disk-samples 0",
        )
        .env("LOAD_RATES", "2000")
        .env("LOAD_DURATION", "1")
        .env("LOAD_ARGS", "--warmup 0.2 --drain 0.5")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "scale-check failed:\n{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("scale.json")).unwrap())
            .unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{v}");
    for (r, n) in runs.iter().zip([1, 2]) {
        assert_eq!(r["shards"], n);
        assert!(
            r["e2e"]["throughput_orders_per_sec"].as_f64().unwrap() > 0.0,
            "{r}"
        );
        assert!(r["e2e"]["ack_us"]["p50_us"].as_f64().unwrap() > 0.0, "{r}");
        let steps = r["load"]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 1, "{r}");
        assert!(steps[0]["achieved_rate"].as_f64().unwrap() > 0.0, "{r}");
    }
    // Two shards: the e2e node's plan put each on the CPUs after the gateway's.
    let cfg = std::fs::read_to_string(out.path().join("node-2/node.toml")).unwrap();
    assert!(
        cfg.contains("shards = [0, 1]") || cfg.matches("shards = [").count() == 2,
        "{cfg}"
    );
    assert!(cfg.contains("symbol = \"BENCH-2\""), "{cfg}");
}
