//! Property tests of what the contract promises, checked on each book separately from its
//! events alone (see [`common::Replayer`]): never crossed, quantity conserved per order
//! (`given = filled + cancelled + leaves`), fills at the best price against the head of the
//! queue (price-then-time priority) within the taker's limit, ids in sequence, and the
//! market-data events rebuilding exactly the book's L3 view.
//!
//! `PROPTEST_CASES=n` runs `n` cases per test instead of the default.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

fn check_stream<B: Book>(mut book: B, steps: &[Step]) -> Result<Replayer, TestCaseError> {
    let mut replayer = Replayer::new();
    for (i, step) in steps.iter().enumerate() {
        let cmd = &resolve(step, &book);
        let events = run(&mut book, i as u64, cmd);
        if let Err(e) = replayer.check(cmd, &events, &book) {
            return Err(TestCaseError::fail(format!(
                "after command #{i} {cmd:?}: {e}"
            )));
        }
        if let Err(e) = book.invariants() {
            return Err(TestCaseError::fail(format!(
                "invariants after command #{i} {cmd:?}: {e}"
            )));
        }
        for inst in KNOWN {
            if let (Some((bid, _)), Some((ask, _))) = (book.bid(inst), book.ask(inst)) {
                prop_assert!(bid < ask, "crossed after #{}: {} >= {}", i, bid, ask);
            }
            // The aggregated view agrees with the order-by-order one.
            let l3 = book.orders_l3(inst);
            let bid_levels = book.levels(inst, Side::Buy, usize::MAX);
            let total_bids: u64 = l3
                .iter()
                .filter(|o| o.side == Side::Buy)
                .map(|o| o.leaves)
                .sum();
            prop_assert_eq!(bid_levels.iter().map(|l| l.qty).sum::<u64>(), total_bids);
            let orders: u32 = bid_levels.iter().map(|l| l.orders).sum();
            prop_assert_eq!(
                orders as usize,
                l3.iter().filter(|o| o.side == Side::Buy).count()
            );
        }
    }
    // Every lot bought was sold: the accounts' net positions sum to zero.
    prop_assert_eq!(replayer.positions.values().sum::<i128>(), 0);
    Ok(replayer)
}

proptest! {
    #![proptest_config(Config {
        cases: cases(12),
        max_shrink_iters: 10_000,
        ..Config::default()
    })]

    #[test]
    fn engine_keeps_the_contract_properties(
        max_orders in max_orders(),
        steps in steps(500..2_000),
    ) {
        check_stream(Engine::new(config(max_orders)).expect("valid config"), &steps)?;
    }

    #[test]
    fn reference_keeps_the_contract_properties(
        max_orders in max_orders(),
        steps in steps(500..2_000),
    ) {
        check_stream(ReferenceBook::new(config(max_orders)).expect("valid config"), &steps)?;
    }
}

/// The random streams do reach the interesting cases (otherwise the properties are vacuous).
#[test]
fn streams_reach_fills_rejects_and_stp() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};

    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[3u8; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let steps = steps(5_000..5_001)
        .new_tree(&mut runner)
        .expect("stream")
        .current();
    let replayer = check_stream(ReferenceBook::new(config(512)).expect("config"), &steps)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(replayer.fills > 300, "fills: {}", replayer.fills);
    assert!(replayer.rejects > 300, "rejects: {}", replayer.rejects);
    assert!(
        replayer.stp_cancels > 30,
        "STP cancels: {}",
        replayer.stp_cancels
    );
}
