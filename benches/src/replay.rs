//! `replay-bench` helpers: engine commands of a generated workload as input-log records.

use tpx_engine::{Command, OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::enums as w;
use tpx_wire::log_record::{Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::{CancelOrder, EnterOrder, ReplaceOrder};

/// The log record that makes the sequencer's applier issue `cmd` (`None`: a command the order
/// entry cannot express, not produced by the order mixes).
pub fn record_of(cmd: &Command, seq: u64, timestamp_ns: u64) -> Option<LogRecord> {
    let (account, input) = match *cmd {
        // The log format has no fields for the order types yet.
        Command::NewOrder(o) if !o.ext.is_plain() => return None,
        Command::NewOrder(o) => (
            o.account,
            Input::EnterOrder(EnterOrder {
                cl_ord_id: o.cl_ord_id,
                price: o.price,
                qty: o.qty,
                instrument: o.instrument,
                side: match o.side {
                    Side::Buy => w::Side::Buy,
                    Side::Sell => w::Side::Sell,
                },
                kind: match o.kind {
                    OrderKind::Limit => w::OrderKind::Limit,
                    OrderKind::Market => w::OrderKind::Market,
                },
                tif: match o.tif {
                    TimeInForce::Gtc => w::TimeInForce::Gtc,
                    TimeInForce::Ioc => w::TimeInForce::Ioc,
                    TimeInForce::Fok => w::TimeInForce::Fok,
                    TimeInForce::Gtd => return None,
                },
                stp: match o.stp {
                    StpMode::None => w::StpMode::None,
                    StpMode::ExpireTaker => w::StpMode::ExpireTaker,
                    StpMode::ExpireMaker => w::StpMode::ExpireMaker,
                    StpMode::ExpireBoth => w::StpMode::ExpireBoth,
                    StpMode::DecrementAndCancel => w::StpMode::DecrementAndCancel,
                },
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
        _ => return None,
    };
    Some(LogRecord {
        meta: RecordMeta {
            seq,
            term: 1,
            timestamp_ns,
            origin: account,
            account,
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
}
