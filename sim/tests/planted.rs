//! Planted bugs (cargo features of `tpx-sim` forwarding to `tpx-sequencer`'s, and one to
//! `tpx-node`'s session layer): the simulator must catch each within 100 seeds (200 for the two
//! of issue 15), naming the check.
//! `make test` runs `cargo test -p tpx-sim --features planted-... --test planted` once per bug;
//! without a feature this file holds no test.
//!
//! The first two run the model before the client view (`SimConfig::classic`, which the fixed
//! sequencer passes everywhere); the two of issue 15 need what clients see (answers at apply,
//! `Duplicate` answers) and profiles that make their schedule common.
#![cfg(any(
    feature = "planted-ack-before-replication",
    feature = "planted-skip-term-check",
    feature = "planted-apply-uncommitted-on-step-down",
    feature = "planted-duplicate-before-commit",
    feature = "planted-fill-not-journaled-while-away"
))]

#[allow(unused_imports)]
use tpx_sim::{run_seed, AckCheck, SimConfig, Violation};

/// The first of seeds `0..n` that fails, with what failed.
#[allow(dead_code)]
fn first_failure_in(n: u64, cfg: SimConfig) -> Option<(u64, Violation)> {
    (0..n).find_map(|s| run_seed(s, cfg).violation.map(|v| (s, v)))
}

/// The first of seeds `0..100` that fails, with what failed.
#[allow(dead_code)]
fn first_failure(cfg: SimConfig) -> Option<(u64, Violation)> {
    first_failure_in(100, cfg)
}

/// The primary acknowledges what it sequenced at once, before the standby (or its disk) has
/// it: a failover loses acknowledged records.
#[cfg(feature = "planted-ack-before-replication")]
#[test]
fn ack_before_replication_is_caught_within_100_seeds() {
    let (seed, v) = first_failure(SimConfig::classic())
        .expect("acknowledging before replication was not caught in 100 seeds");
    eprintln!("planted-ack-before-replication: caught at seed {seed}: {v}");
    assert_eq!(v.check, "acked-in-later-primary", "seed {seed}: {v}");
}

/// The witness grants a term that is not above the last it granted: two nodes lead one term.
/// Needs a node to ask for a term the witness already gave the other node, which crashed
/// before this one heard of it; the crash-heavy profile (a crash chance of 3% per step
/// instead of 0.15%, and the lagging log) makes that common. Since nodes store their term
/// and the witness checks incarnations (issue 15 items 3, 4) it is rarer: that profile caught
/// only seed 194 of 200; with crashed nodes restarted at once (`max_restart_steps: 20`, a
/// supervisor) it was caught at seeds 52 and 85 of 100. Since the nodes run the node's stages
/// (a restarted node replays its log into its shards before its replica runs) that profile
/// caught it only at seeds 217 and 384 of 400; with process pauses added (0.3% per step) at
/// 8 of the first 200 seeds, the first 11, as `one-primary-per-term` (two nodes primary of
/// one term); since the clients speak the session protocol (other schedules), first at seed
/// 26. Without the feature the profile passes 300 seeds.
#[cfg(feature = "planted-skip-term-check")]
#[test]
fn skip_term_check_is_caught_within_100_seeds() {
    let cfg = SimConfig {
        crash_ppm: 30_000,
        max_lag_polls: 4,
        max_restart_steps: 20,
        pause_ppm: 3_000,
        ..SimConfig::classic()
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

/// Issue 15 item 1: a primary stepping down applies the records it sequenced that the new term
/// may not hold, so its shards answer their clients (`OrderAccepted`, fills) for orders no
/// surviving log has. The profile pauses nodes often (a paused primary resumes, submits its
/// clients' backlog, then learns of the new term) and checks only the shards' answers.
/// (Today's sequencer has this bug without the feature: seeds fail the same way.)
///
/// No longer reached through the clients: a gateway that stops being primary logs every
/// session out (`Logout(Failover)`) before it delivers another report, so the shards' answers
/// of those records reach nobody (200 seeds of this profile pass with the feature on).
/// `make planted` checks the replica's rule instead: `sequencer/tests/safety.rs`
/// `planted_apply_uncommitted_on_step_down_is_caught`.
#[cfg(feature = "planted-apply-uncommitted-on-step-down")]
#[test]
#[ignore = "unreachable through the session layer (see the doc comment)"]
fn apply_uncommitted_on_step_down_is_caught_within_200_seeds() {
    let cfg = SimConfig {
        pause_ppm: 1_000,
        torn_pct: 0,
        witness_loss_pct: 0,
        power_loss_ppm: 0,
        client_reset_ppm: 0,
        client_acks: AckCheck::Replies,
        ..SimConfig::default()
    };
    let (seed, v) = first_failure_in(200, cfg)
        .expect("answering uncommitted records at step-down was not caught in 200 seeds");
    eprintln!("planted-apply-uncommitted-on-step-down: caught at seed {seed}: {v}");
    // Since clients resume their sessions' reply streams, the new primary's inability to
    // resume one past the lost record's reply (`SequenceAhead`) often shows first.
    assert!(
        ["acked-request-lost", "session-reply-missing"].contains(&v.check),
        "seed {seed}: {v}"
    );
}

/// Issue 15 item 2: a re-sent request is answered `DuplicateClientOrderId` ("done") as soon as
/// the primary's log holds it, before it is acknowledgeable; a failover then loses it. The
/// profile resets client connections often (re-sends to the same or the other node) and checks
/// only the duplicate answers. Clients log in asking for no replay (as the model before the
/// session checks: a client that keeps no seq relies on the duplicate answers; one that
/// resumes its stream gets the answers from the replay first). (Today's sequencer has this
/// bug without the feature.)
///
/// Ignored since the simulator drives the node's session layer: a re-send to the same process
/// is answered by the gateway itself (its ownership table: `DuplicateClientOrderId` for a
/// live or in-flight id, else `ClOrdIdNotIncreasing`) and never reaches the stage's
/// de-duplication, and a new primary serves logins only once its term has acknowledged the
/// log it inherited, so a re-send reaches the stage only for records already acknowledgeable.
/// This profile, with every login fresh, and a crash-heavy one (`--crash-ppm 10000
/// --max-restart-steps 20`) passed 200 seeds each with the feature on.
#[cfg(feature = "planted-duplicate-before-commit")]
#[test]
#[ignore = "unreachable through the session layer (see the doc comment)"]
fn duplicate_before_commit_is_caught_within_200_seeds() {
    let cfg = SimConfig {
        pause_ppm: 1_000,
        torn_pct: 0,
        witness_loss_pct: 0,
        power_loss_ppm: 0,
        client_reset_ppm: 3_000,
        fresh_login_pct: 100,
        client_acks: AckCheck::Duplicates,
        ..SimConfig::default()
    };
    let (seed, v) = first_failure_in(200, cfg)
        .expect("answering Duplicate before commit was not caught in 200 seeds");
    eprintln!("planted-duplicate-before-commit: caught at seed {seed}: {v}");
    assert_eq!(v.check, "duplicate-answer-lost", "seed {seed}: {v}");
}

/// Issue 18: a fill of a resting order while its session has no connection (the client away,
/// or any session on the standby) is not journaled: the session's reply stream is no longer a
/// function of the log, and a client resuming after a failover or a reconnect lacks the fill
/// (or finds its numbering moved). Caught by the session checks with the default model.
#[cfg(feature = "planted-fill-not-journaled-while-away")]
#[test]
fn fill_not_journaled_while_away_is_caught_within_100_seeds() {
    let (seed, v) = first_failure(SimConfig::default())
        .expect("a fill dropped while the session was away was not caught in 100 seeds");
    eprintln!("planted-fill-not-journaled-while-away: caught at seed {seed}: {v}");
    assert!(v.check.starts_with("session-reply-"), "seed {seed}: {v}");
}
