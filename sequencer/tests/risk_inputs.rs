//! Risk inputs travel through the log: each encodes as a CRC'd record, decodes to the same
//! input, maps to the engine's `RiskCommand`, and an engine with risk on applies it (a reused
//! idempotency key gets its typed reject).

use tpx_engine::{
    Engine, EngineConfig, EngineInput, Event, InstrumentKind, InstrumentRisk, InstrumentSpec,
    Outputs, RejectReason, RiskCommand, RiskConfig,
};
use tpx_sequencer::apply::{command_of, input_of, risk_command_of};
use tpx_wire::log_record::{
    decode_record, encode_record, ApplyFunding, Deposit, Input, Liquidate, LogRecord, RecordMeta,
    SetFeeTier, SetMarkPrice, Withdraw,
};

fn through_log(seq: u64, input: Input) -> LogRecord {
    let rec = LogRecord {
        meta: RecordMeta {
            seq,
            term: 1,
            timestamp_ns: 1_000 + seq,
            origin: 0,
            account: 0,
            session: 0,
        },
        input,
    };
    let mut buf = [0u8; 256];
    let n = encode_record(&rec, &mut buf).unwrap();
    let (back, len) = decode_record(&buf[..n]).unwrap();
    assert_eq!((back, len), (rec, n));
    back
}

#[test]
fn every_risk_input_maps_to_its_engine_command() {
    let cases = [
        (
            Input::Deposit(Deposit {
                amount: 500,
                request_id: 3,
                account: 2,
                asset: 1,
            }),
            RiskCommand::Deposit {
                account: 2,
                asset: 1,
                amount: 500,
                request_id: 3,
            },
        ),
        (
            Input::Withdraw(Withdraw {
                amount: 7,
                request_id: 4,
                account: 2,
                asset: 1,
            }),
            RiskCommand::Withdraw {
                account: 2,
                asset: 1,
                amount: 7,
                request_id: 4,
            },
        ),
        (
            Input::SetMarkPrice(SetMarkPrice {
                price: 101,
                instrument: 3,
                request_id: 31,
            }),
            RiskCommand::SetMarkPrice {
                instrument: 3,
                price: 101,
            },
        ),
        (
            Input::ApplyFunding(ApplyFunding {
                rate_ppm: -20,
                instrument: 3,
                funding_id: 17,
            }),
            RiskCommand::ApplyFunding {
                instrument: 3,
                rate_ppm: -20,
                funding_id: 17,
            },
        ),
        (
            Input::Liquidate(Liquidate {
                cl_ord_id: 9,
                price: 90,
                account: 2,
                instrument: 3,
                request_id: 5,
            }),
            RiskCommand::Liquidate {
                account: 2,
                instrument: 3,
                cl_ord_id: 9,
                price: 90,
                request_id: 5,
            },
        ),
        (
            Input::SetFeeTier(SetFeeTier {
                account: 2,
                tier: 1,
                request_id: 33,
            }),
            RiskCommand::SetFeeTier {
                account: 2,
                tier: 1,
            },
        ),
    ];
    for (i, (input, want)) in cases.into_iter().enumerate() {
        let rec = through_log(i as u64 + 1, input);
        assert_eq!(risk_command_of(&rec), Some(want), "{input:?}");
        assert_eq!(command_of(&rec), None, "{input:?}");
        assert_eq!(input_of(&rec), Some(EngineInput::Risk(want)));
    }
}

#[test]
fn logged_deposits_apply_once() {
    let spec = InstrumentSpec {
        id: 3,
        kind: InstrumentKind::LinearPerp { settle: 1 },
        tick_size: 1,
        lot_size: 1,
        min_price: 1,
        max_price: 1_000,
        min_qty: 1,
        max_qty: 1_000,
        min_notional: 0,
    };
    let cfg = EngineConfig {
        instruments: vec![spec],
        max_orders: 64,
        max_accounts: 8,
    };
    let risk = RiskConfig {
        assets: vec![1],
        instruments: vec![InstrumentRisk::new(3)],
        fee_tiers: 1,
        fee_account: 6,
        liquidation_account: 7,
    };
    let mut engine = Engine::with_risk(cfg, risk).unwrap();
    let deposit = Input::Deposit(Deposit {
        amount: 500,
        request_id: 1,
        account: 2,
        asset: 1,
    });
    let mut out = Outputs::default();
    for seq in 1..=2 {
        // The same request sequenced twice (a client retrying after a failover).
        let rec = through_log(seq, deposit);
        let input = input_of(&rec).unwrap();
        engine.apply(rec.meta.timestamp_ns, &input, &mut out);
    }
    assert_eq!(engine.balance(2, 1).unwrap().available, 500);
    let rejects: Vec<_> = out
        .0
        .iter()
        .filter_map(|o| match o {
            tpx_engine::EngineOutput::Event(Event::Rejected {
                account,
                cl_ord_id,
                reason,
            }) => Some((*account, *cl_ord_id, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(rejects, vec![(2, 1, RejectReason::DuplicateRequest)]);
    engine.check_invariants().unwrap();
}
