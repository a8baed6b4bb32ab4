//! Planted bugs (cargo features of `tpx-sim` forwarding to `tpx-sequencer`'s): the simulator
//! must catch each within 100 seeds, naming the check. `make test` runs
//! `cargo test -p tpx-sim --features planted-... --test planted` once per bug; without a
//! feature this file holds no test.
#![cfg(any(
    feature = "planted-ack-before-replication",
    feature = "planted-skip-term-check"
))]

use tpx_sim::{run_seed, SimConfig, Violation};

/// The first of seeds `0..100` that fails, with what failed.
fn first_failure(cfg: SimConfig) -> Option<(u64, Violation)> {
    (0..100).find_map(|s| run_seed(s, cfg).violation.map(|v| (s, v)))
}

/// The primary acknowledges what it sequenced at once, before the standby (or its disk) has
/// it: a failover loses acknowledged records.
#[cfg(feature = "planted-ack-before-replication")]
#[test]
fn ack_before_replication_is_caught_within_100_seeds() {
    let (seed, v) = first_failure(SimConfig::default())
        .expect("acknowledging before replication was not caught in 100 seeds");
    eprintln!("planted-ack-before-replication: caught at seed {seed}: {v}");
    assert_eq!(v.check, "acked-in-later-primary", "seed {seed}: {v}");
}

/// The witness grants a term that is not above the last it granted: two nodes lead one term.
/// Needs a node to ask for a term the witness already gave the other node, which crashed
/// before this one heard of it; the crash-heavy profile (a crash chance of 3% per step
/// instead of 0.15%) makes that common enough for 100 seeds (the default run catches it
/// about once in 750 seeds: seeds 303, 892, 1260, 2889 of the first 3,000).
#[cfg(feature = "planted-skip-term-check")]
#[test]
fn skip_term_check_is_caught_within_100_seeds() {
    let cfg = SimConfig {
        crash_ppm: 30_000,
        ..SimConfig::default()
    };
    let (seed, v) = first_failure(cfg).expect("re-granting a term was not caught in 100 seeds");
    eprintln!("planted-skip-term-check: caught at seed {seed}: {v}");
    assert!(
        [
            "one-primary-per-term",
            "state-hash",
            "acked-in-later-primary"
        ]
        .contains(&v.check),
        "seed {seed}: {v}"
    );
}
