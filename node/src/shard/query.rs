//! Queries: a session's question answered from the shard's state, beside the log (never
//! logged, so a standby or a replay never sees one). Order status and open orders read the
//! books (`Engine::l3`: resting orders only; a trigger order not yet fired is not listed),
//! balances and positions the risk state (risk on; with risk off the answers are empty).

use crate::msg::{Query, QueryKind, Report, ReportKind, Stamps, UNSEQUENCED};
use crate::shard::apply::Shard;

/// Answers `q` from `shard`'s state after record `as_of_seq`: its data reports, then one
/// `QueryDone`, to `out`. Returns the reports made.
pub fn answer(shard: &Shard, q: &Query, as_of_seq: u64, mut out: impl FnMut(Report)) -> u32 {
    let report = |kind| Report {
        account: q.account,
        session: q.session,
        seq: UNSEQUENCED,
        ts_ns: 0,
        kind,
        stamps: Stamps::default(),
    };
    let e = &shard.engine;
    let tag = q.tag;
    let mut count = 0u32;
    match q.kind {
        QueryKind::Order { .. } | QueryKind::OpenOrders { .. } => {
            let (only_id, only_instrument) = match q.kind {
                QueryKind::Order { cl_ord_id } => (Some(cl_ord_id), None),
                QueryKind::OpenOrders { instrument } => (None, instrument),
                _ => (None, None),
            };
            let base = shard.order_id_base();
            for &instrument in &shard.instruments {
                if only_instrument.is_some_and(|i| i != instrument) {
                    continue;
                }
                for o in e.l3(instrument) {
                    if o.account != q.account || only_id.is_some_and(|c| c != o.cl_ord_id) {
                        continue;
                    }
                    count += 1;
                    out(report(ReportKind::QueryOrder {
                        tag,
                        cl_ord_id: o.cl_ord_id,
                        order_id: base | o.order_id,
                        instrument,
                        side: o.side.into(),
                        price: o.price,
                        leaves_qty: o.leaves,
                    }));
                }
            }
        }
        QueryKind::Balances => {
            for &asset in e.risk_assets() {
                if let Some(b) = e.balance(q.account, asset) {
                    count += 1;
                    out(report(ReportKind::QueryBalance {
                        tag,
                        asset,
                        available: b.available,
                        held: b.held,
                        shard: shard.id,
                        margin_call: b.margin_call,
                    }));
                }
            }
        }
        QueryKind::Positions => {
            for &instrument in &shard.instruments {
                match e.position(q.account, instrument) {
                    Some(p) if p.size != 0 => {
                        count += 1;
                        out(report(ReportKind::QueryPosition {
                            tag,
                            instrument,
                            size: p.size,
                            entry_price: p.entry_price,
                            realized_pnl: p.realized_pnl,
                        }));
                    }
                    _ => {}
                }
            }
        }
    }
    out(report(ReportKind::QueryDone {
        tag,
        count,
        as_of_seq,
    }));
    count + 1
}
