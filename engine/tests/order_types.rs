//! The crypto order types against the reference book: long random streams mixing plain orders
//! with stop / stop-limit / take-profit orders on the last and the mark price, marks, GTD
//! expiry driven by the command timestamps and ticks, icebergs, post-only slides and OCO
//! pairs. After every input the events, state hashes, L3 books, live and pending counts must
//! be identical, both books' invariants must hold, and the events must pass the market-data
//! replayer (quantities conserved, priority, and the public book rebuilt from the public
//! events alone: an iceberg's hidden quantity never appears in them). Snapshots taken along
//! the way restore to an engine with the same hash and the same future.
//!
//! `PROPTEST_CASES=n` runs `n` cases per test instead of the default.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

fn compare(max_orders: u32, steps: &[(u64, TypedStep)]) -> Result<Counts, TestCaseError> {
    let mut applied = Vec::with_capacity(steps.len());
    compare_steps(max_orders, steps, &mut applied).map_err(|e| {
        TestCaseError::fail(format!(
            "{e}\nmax_orders = {max_orders}; the inputs applied (ts, input), the last one failing:\n{applied:#?}"
        ))
    })
}

/// What a stream exercised.
#[derive(Debug, Default)]
struct Counts {
    triggered: u64,
    refills: u64,
    slid: u64,
    expired: u64,
    oco: u64,
    cascades: u64,
}

fn compare_steps(
    max_orders: u32,
    steps: &[(u64, TypedStep)],
    applied: &mut Vec<(u64, EngineInput)>,
) -> Result<Counts, TestCaseError> {
    let mut engine = Engine::new(config(max_orders)).expect("valid config");
    let mut reference = ReferenceBook::new(config(max_orders)).expect("valid config");
    let mut replayer = Replayer::new();
    let mut counts = Counts::default();
    let mut ts = 1_000u64;
    for (i, (dt, step)) in steps.iter().enumerate() {
        ts += dt;
        let input = resolve_typed(step, ts, &reference);
        applied.push((ts, input));
        let (mut ev_engine, mut ev_reference) = (Vec::new(), Vec::new());
        engine.apply_input(ts, &input, &mut ev_engine);
        reference.apply_input(ts, &input, &mut ev_reference);
        prop_assert_eq!(
            &ev_engine,
            &ev_reference,
            "events of input #{}: {:?}",
            i,
            input
        );
        let cmd = match input {
            EngineInput::Command(c) => c,
            EngineInput::Risk(_) => Command::Tick,
        };
        if let Err(e) = replayer.check(&cmd, &ev_engine, &engine) {
            return Err(TestCaseError::fail(format!("market data after #{i}: {e}")));
        }
        engine
            .check_invariants()
            .map_err(|e| TestCaseError::fail(format!("engine invariants after #{i}: {e}")))?;
        reference
            .check_invariants()
            .map_err(|e| TestCaseError::fail(format!("reference invariants after #{i}: {e}")))?;
        prop_assert_eq!(
            engine.state_hash(),
            reference.state_hash(),
            "hash after #{}",
            i
        );
        prop_assert_eq!(engine.live_orders(), reference.live_orders());
        prop_assert_eq!(engine.pending_triggers(), reference.pending_triggers());
        for inst in NAMED {
            prop_assert_eq!(
                engine.l3(inst),
                reference.l3(inst),
                "l3 of {} after #{}",
                inst,
                i
            );
        }
        let mut triggered_here = 0;
        for ev in &ev_engine {
            match ev {
                Event::Triggered { .. } => {
                    counts.triggered += 1;
                    triggered_here += 1;
                }
                Event::Refilled { .. } => counts.refills += 1,
                Event::Slid { .. } => counts.slid += 1,
                Event::Cancelled {
                    reason: CancelReason::Expired,
                    ..
                } => counts.expired += 1,
                Event::Cancelled {
                    reason: CancelReason::Oco,
                    ..
                } => counts.oco += 1,
                _ => {}
            }
        }
        if triggered_here > 1 {
            counts.cascades += 1;
        }
        // Now and then: a snapshot restores to the same state and the same future.
        if i % 97 == 0 {
            let snap = engine.snapshot();
            let restored = Engine::restore(config(max_orders), &snap)
                .map_err(|e| TestCaseError::fail(format!("restore after #{i}: {e}")))?;
            prop_assert_eq!(
                restored.state_hash(),
                engine.state_hash(),
                "restored hash #{}",
                i
            );
            prop_assert_eq!(restored.snapshot(), snap);
            engine = restored;
        }
    }
    Ok(counts)
}

proptest! {
    #![proptest_config(Config {
        cases: cases(16),
        max_shrink_iters: 20_000,
        ..Config::default()
    })]

    #[test]
    fn order_types_match_reference(
        max_orders in max_orders(),
        steps in typed_steps(300..1_500),
    ) {
        compare(max_orders, &steps)?;
    }
}

/// A long seeded stream, and proof that it reaches every order type (including cascades).
#[test]
fn order_types_long_seeded_stream_reaches_every_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[11u8; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let steps = typed_steps(30_000..30_001)
        .new_tree(&mut runner)
        .expect("stream")
        .current();
    let mut applied = Vec::new();
    let counts = match compare_steps(512, &steps, &mut applied) {
        Ok(c) => c,
        Err(e) => panic!("{e} (input #{} of the seeded stream)", applied.len() - 1),
    };
    eprintln!("{counts:?}");
    assert!(counts.triggered > 50, "{counts:?}");
    assert!(counts.cascades > 0, "{counts:?}");
    assert!(counts.refills > 10, "{counts:?}");
    assert!(counts.slid > 10, "{counts:?}");
    assert!(counts.expired > 10, "{counts:?}");
    assert!(counts.oco > 10, "{counts:?}");
}
