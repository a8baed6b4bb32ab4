//! Runs seeds through the simulator: no check may fail, and a replay is identical.

use tpx_sim::{run_seed, SimConfig};

#[test]
fn fifty_seeds_pass_every_check() {
    let cfg = SimConfig::default();
    let mut failed = Vec::new();
    let mut acked = 0;
    for seed in 0..50 {
        let o = run_seed(seed, cfg);
        acked += o.acked;
        if let Some(v) = o.violation {
            failed.push(format!("seed {seed}: {v}"));
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(acked > 0, "the workload acknowledged nothing");
}

#[test]
fn replaying_a_seed_gives_the_same_trace() {
    let cfg = SimConfig::default();
    for seed in [1, 17, 4242] {
        let a = run_seed(seed, cfg);
        let b = run_seed(seed, cfg);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(a.acked, b.acked);
        assert_eq!(a.violation, b.violation);
    }
    assert_ne!(run_seed(1, cfg).trace_hash, run_seed(2, cfg).trace_hash);
}
