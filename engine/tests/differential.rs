//! Differential tests: the fast [`Engine`] against the [`ReferenceBook`] oracle.
//!
//! Both books get every command of long random streams (small price ranges, few accounts and
//! client ids, so crossing, queueing, self-trade prevention and id collisions happen all the
//! time; plus bad commands of every kind). After every command the event vectors, the state
//! hashes, the L3 books, best prices, depth and live-order counts must be identical, and both
//! books' `check_invariants` must pass.
//!
//! `PROPTEST_CASES=n` runs `n` cases per test instead of the default.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

/// Applies the steps to both books (each resolved against the reference book into a command);
/// the first disagreement is returned as an error naming the command and listing the commands
/// applied so far (proptest then shrinks the stream to a minimal one).
fn compare(max_orders: u32, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut applied = Vec::with_capacity(steps.len());
    compare_steps(max_orders, steps, &mut applied).map_err(|e| {
        TestCaseError::fail(format!(
            "{e}\nmax_orders = {max_orders}; the commands applied, the last one failing:\n{applied:#?}"
        ))
    })
}

fn compare_steps(
    max_orders: u32,
    steps: &[Step],
    applied: &mut Vec<Command>,
) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(config(max_orders)).expect("valid config");
    let mut reference = ReferenceBook::new(config(max_orders)).expect("valid config");
    prop_assert_eq!(engine.state_hash(), reference.state_hash(), "initial hash");
    for (i, step) in steps.iter().enumerate() {
        let cmd = &resolve(step, &reference);
        applied.push(*cmd);
        let ts = 1_000 + i as u64;
        let ev_engine = run(&mut engine, ts, cmd);
        let ev_reference = run(&mut reference, ts, cmd);
        prop_assert_eq!(
            &ev_engine,
            &ev_reference,
            "events of command #{}: {:?}",
            i,
            cmd
        );
        if let Err(e) = engine.check_invariants() {
            return Err(TestCaseError::fail(format!(
                "engine invariants after command #{i} {cmd:?}: {e}"
            )));
        }
        if let Err(e) = reference.check_invariants() {
            return Err(TestCaseError::fail(format!(
                "reference invariants after command #{i} {cmd:?}: {e}"
            )));
        }
        prop_assert_eq!(
            engine.state_hash(),
            reference.state_hash(),
            "hash after command #{}: {:?}",
            i,
            cmd
        );
        prop_assert_eq!(
            engine.live_orders(),
            reference.live_orders(),
            "live orders after #{}",
            i
        );
        for inst in NAMED {
            prop_assert_eq!(
                engine.l3(inst),
                reference.l3(inst),
                "l3 of {} after #{}: {:?}",
                inst,
                i,
                cmd
            );
            prop_assert_eq!(
                engine.best_bid(inst),
                reference.best_bid(inst),
                "best bid of {} after #{}",
                inst,
                i
            );
            prop_assert_eq!(
                engine.best_ask(inst),
                reference.best_ask(inst),
                "best ask of {} after #{}",
                inst,
                i
            );
        }
        // Depth is cheap to compare but not needed every time.
        if i % 16 == 0 {
            for inst in NAMED {
                for side in [Side::Buy, Side::Sell] {
                    for n in [0, 1, 3, 64] {
                        prop_assert_eq!(
                            engine.depth(inst, side, n),
                            reference.depth(inst, side, n)
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config {
        cases: cases(24),
        max_shrink_iters: 20_000,
        ..Config::default()
    })]

    /// Long mixed streams, mostly with room in the order pool.
    #[test]
    fn engine_matches_reference(
        max_orders in max_orders(),
        steps in steps(500..2_500),
    ) {
        compare(max_orders, &steps)?;
    }

    /// Shorter streams with a tiny order pool, where `BookFull` and the last free slot matter.
    #[test]
    fn engine_matches_reference_tiny_pool(
        max_orders in 0..6u32,
        steps in steps(50..400),
    ) {
        compare(max_orders, &steps)?;
    }
}

/// A fixed, long, seeded stream (no shrinking, just reach): 60 000 commands through both books.
#[test]
fn engine_matches_reference_long_seeded_stream() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7u8; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let steps = steps(60_000..60_001)
        .new_tree(&mut runner)
        .expect("stream")
        .current();
    let mut applied = Vec::new();
    if let Err(e) = compare_steps(512, &steps, &mut applied) {
        panic!("{e} (command #{} of the seeded stream)", applied.len() - 1);
    }
}

/// Both books refuse the same configurations with the same error.
#[test]
fn same_config_errors() {
    let mut bad = config(16);
    bad.instruments.push(spec_a());
    assert_eq!(
        Engine::new(bad.clone()).err(),
        ReferenceBook::new(bad).err(),
        "duplicate instrument"
    );
    let mut bad = config(16);
    bad.instruments[0].min_price = 10;
    bad.instruments[0].max_price = 9;
    assert_eq!(
        Engine::new(bad.clone()).err(),
        ReferenceBook::new(bad).err()
    );
    assert!(Engine::new(config(16)).is_ok());
    assert!(ReferenceBook::new(config(16)).is_ok());
}
