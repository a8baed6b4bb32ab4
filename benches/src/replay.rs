//! Generated workloads (engine commands) as input-log inputs and records: what the benches
//! feed the node's shard (`shard-risk-bench`) and the sequencer's applier (`replay-bench`).

use tpx_engine::{Command, EngineInput, RiskCommand, TimeInForce};
use tpx_wire::enums as w;
use tpx_wire::log_record::{self as l, Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::{CancelOrder, EnterOrder, MassCancel, ReplaceOrder};

/// The log input that the shard (`tpx_sequencer::apply::engine_input`) turns back into
/// `input`, with the account its record names (the command's; 0 for venue and risk inputs,
/// whose body names the account they act on). The inverse of that one conversion, for
/// workloads generated in the engine's form. `None`: a command the log cannot carry yet (the
/// order types of issue 19, GTD, `Tick`; the plain mixes never generate them).
pub fn log_input_of(input: &EngineInput) -> Option<(u32, Input)> {
    match *input {
        EngineInput::Command(ref c) => command_input(c),
        EngineInput::Risk(r) => Some((0, risk_input(&r))),
    }
}

fn command_input(cmd: &Command) -> Option<(u32, Input)> {
    Some(match *cmd {
        // The log format has no fields for the order types yet.
        Command::NewOrder(o) if !o.ext.is_plain() => return None,
        Command::Tick => return None,
        Command::NewOrder(o) => (
            o.account,
            Input::EnterOrder(EnterOrder {
                cl_ord_id: o.cl_ord_id,
                price: o.price,
                qty: o.qty,
                instrument: o.instrument,
                side: o.side.into(),
                kind: o.kind.into(),
                tif: match o.tif {
                    TimeInForce::Gtc => w::TimeInForce::Gtc,
                    TimeInForce::Ioc => w::TimeInForce::Ioc,
                    TimeInForce::Fok => w::TimeInForce::Fok,
                    TimeInForce::Gtd => return None,
                },
                stp: o.stp.into(),
                post_only: o.post_only,
                reduce_only: o.reduce_only,
            }),
        ),
        Command::Replace(r) => (
            r.account,
            Input::ReplaceOrder(ReplaceOrder {
                orig_cl_ord_id: r.orig_cl_ord_id,
                new_cl_ord_id: r.new_cl_ord_id,
                price: r.price,
                qty: r.qty,
            }),
        ),
        Command::Cancel(c) => (
            c.account,
            Input::CancelOrder(CancelOrder {
                cl_ord_id: c.cl_ord_id,
                remaining_qty: c.remaining_qty,
            }),
        ),
        Command::MassCancel(m) => (
            m.account,
            Input::MassCancel(MassCancel {
                instrument: m.instrument,
            }),
        ),
        Command::Halt { instrument } => (0, Input::Halt(l::Halt { instrument })),
        Command::Resume { instrument } => (0, Input::Resume(l::Resume { instrument })),
        Command::SetReferencePrice {
            instrument,
            price,
            band_bps,
        } => (
            0,
            Input::SetReferencePrice(l::SetReferencePrice {
                instrument,
                price,
                band_bps,
            }),
        ),
    })
}

fn risk_input(r: &RiskCommand) -> Input {
    match *r {
        RiskCommand::Deposit {
            account,
            asset,
            amount,
            request_id,
        } => Input::Deposit(l::Deposit {
            amount,
            request_id,
            account,
            asset,
        }),
        RiskCommand::Withdraw {
            account,
            asset,
            amount,
            request_id,
        } => Input::Withdraw(l::Withdraw {
            amount,
            request_id,
            account,
            asset,
        }),
        RiskCommand::SetMarkPrice { instrument, price } => {
            // The engine's command has no request id: the operator's (0).
            Input::SetMarkPrice(l::SetMarkPrice {
                price,
                instrument,
                request_id: 0,
            })
        }
        RiskCommand::ApplyFunding {
            instrument,
            rate_ppm,
            funding_id,
        } => Input::ApplyFunding(l::ApplyFunding {
            rate_ppm,
            instrument,
            funding_id,
        }),
        RiskCommand::Liquidate {
            account,
            instrument,
            cl_ord_id,
            price,
            request_id,
        } => Input::Liquidate(l::Liquidate {
            cl_ord_id,
            price,
            account,
            instrument,
            request_id,
        }),
        RiskCommand::SetFeeTier { account, tier } => Input::SetFeeTier(l::SetFeeTier {
            account,
            tier,
            request_id: 0,
        }),
    }
}

/// The log record that makes the sequencer's applier issue `cmd` (`None`: see
/// [`log_input_of`]).
pub fn record_of(cmd: &Command, seq: u64, timestamp_ns: u64) -> Option<LogRecord> {
    let (account, input) = command_input(cmd)?;
    Some(LogRecord {
        meta: RecordMeta {
            seq,
            term: 1,
            timestamp_ns,
            origin: account,
            account,
            session: 0,
        },
        input,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_sequencer::apply::command_of;

    #[test]
    fn records_map_back_to_the_same_commands() {
        let s = crate::workload::generate_with(
            crate::workload::Workload::ExchangeCoreMix,
            crate::workload::MixParams {
                resting_target: 50,
                ..crate::workload::Workload::ExchangeCoreMix.params().unwrap()
            },
            3,
            2_000,
        )
        .unwrap();
        let mut n = 0;
        for (i, c) in s.setup.iter().chain(&s.ops).enumerate() {
            let r = record_of(c, i as u64 + 1, 0).unwrap();
            assert_eq!(command_of(&r).as_ref(), Some(c));
            n += 1;
        }
        assert!(n > 2_000);
    }

    #[test]
    fn every_risk_input_maps_back_to_itself() {
        for r in [
            RiskCommand::Deposit {
                account: 7,
                asset: 1,
                amount: 500,
                request_id: 12,
            },
            RiskCommand::Withdraw {
                account: 7,
                asset: 1,
                amount: 500,
                request_id: 13,
            },
            RiskCommand::SetMarkPrice {
                instrument: 3,
                price: 60_000,
            },
            RiskCommand::ApplyFunding {
                instrument: 3,
                rate_ppm: -12,
                funding_id: 5,
            },
            RiskCommand::Liquidate {
                account: 4,
                instrument: 3,
                cl_ord_id: 77,
                price: 59_000,
                request_id: 6,
            },
            RiskCommand::SetFeeTier {
                account: 4,
                tier: 1,
            },
        ] {
            let e = EngineInput::Risk(r);
            let (account, input) = log_input_of(&e).expect("a risk input");
            assert_eq!(tpx_sequencer::apply::engine_input(&input, account), Some(e));
        }
    }
}
