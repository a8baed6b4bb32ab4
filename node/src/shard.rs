//! A matching shard: an [`Engine`] holding the shard's instruments, and the pure mapping from
//! engine events to per-account [`Report`]s.

use tpx_engine::{
    CancelReason as ECancel, Command, Engine, EngineConfig, Event, EventSink, InstrumentId,
    RejectReason as EReject, Side as ESide,
};
use tpx_wire::enums::{CancelReason, Liquidity, RejectReason, RequestKind, Side};

use crate::md::ShardMd;
use crate::msg::{Report, ReportKind, Sequenced, NO_SESSION};

/// Order ids are unique per engine; the shard puts its id in the top 16 bits so that they are
/// unique across the node (shard 0's ids are the engine's).
pub const SHARD_ORDER_ID_SHIFT: u32 = 48;

pub fn side_to_wire(s: ESide) -> Side {
    match s {
        ESide::Buy => Side::Buy,
        ESide::Sell => Side::Sell,
    }
}

pub fn side_from_wire(s: Side) -> ESide {
    match s {
        Side::Buy => ESide::Buy,
        Side::Sell => ESide::Sell,
    }
}

/// The wire's reject reason for an engine reason: the wire uses the engine's values (1..=31 are
/// kept for engine reasons). An engine reason the wire does not define yet (the engine is ahead
/// of the schema) is sent as `InvalidOrderType`, the closest generic "refused as asked".
pub fn reject_to_wire(r: EReject) -> RejectReason {
    RejectReason::from_u8(r as u8).unwrap_or(RejectReason::InvalidOrderType)
}

/// The wire's cancel reason for an engine reason (same values). One the wire does not define
/// yet is sent as `UserRequested`.
pub fn cancel_to_wire(r: ECancel) -> CancelReason {
    CancelReason::from_u8(r as u8).unwrap_or(CancelReason::UserRequested)
}

/// The request kind and the `cl_ord_id` a reject names, as the wire wants them.
pub fn reject_subject(cmd: &Command) -> (RequestKind, u64) {
    match cmd {
        Command::NewOrder(o) => (RequestKind::EnterOrder, o.cl_ord_id),
        Command::Replace(r) => (RequestKind::ReplaceOrder, r.new_cl_ord_id),
        Command::Cancel(c) => (RequestKind::CancelOrder, c.cl_ord_id),
        _ => (RequestKind::MassCancel, 0),
    }
}

/// Turns the events of one sequenced request into reports (an [`EventSink`]).
#[derive(Debug)]
pub struct ReportMapper<'a, F: FnMut(Report)> {
    pub entry: &'a Sequenced,
    pub order_id_base: u64,
    pub out: F,
    /// Orders cancelled by this request with reason `MassCancel`.
    pub mass_cancelled: u32,
    /// Fills seen.
    pub fills: u32,
    /// The last instrument whose book changed (for top-of-book publishing).
    pub touched: Option<InstrumentId>,
    /// Raw TSC of the first report (the `matched` stamp), 0 before it.
    pub matched_tsc: u64,
}

impl<'a, F: FnMut(Report)> ReportMapper<'a, F> {
    pub fn new(entry: &'a Sequenced, order_id_base: u64, out: F) -> Self {
        ReportMapper {
            entry,
            order_id_base,
            out,
            mass_cancelled: 0,
            fills: 0,
            touched: None,
            matched_tsc: 0,
        }
    }

    #[inline]
    fn send(&mut self, account: u32, session: u32, kind: ReportKind) {
        if self.matched_tsc == 0 && self.entry.req.stamps.rx != 0 {
            self.matched_tsc = crate::stats::tsc();
        }
        let mut stamps = self.entry.req.stamps;
        stamps.matched = self.matched_tsc;
        (self.out)(Report {
            account,
            session,
            ts_ns: self.entry.ts_ns,
            kind,
            stamps,
        });
    }

    /// Call after `Engine::process`: the per-shard completion of a mass cancel.
    pub fn finish(&mut self) {
        if let Command::MassCancel(m) = self.entry.req.cmd {
            let kind = ReportKind::MassCancelDone {
                tag: self.entry.req.tag,
                instrument: m.instrument,
                cancelled: self.mass_cancelled,
            };
            self.send(m.account, self.entry.req.session, kind);
        }
    }
}

impl<F: FnMut(Report)> EventSink for ReportMapper<'_, F> {
    #[inline]
    fn emit(&mut self, event: Event) {
        let base = self.order_id_base;
        let session = self.entry.req.session;
        match event {
            Event::Accepted {
                account,
                cl_ord_id,
                order_id,
                instrument,
                side,
                price,
                qty,
            } => self.send(
                account,
                session,
                ReportKind::Accepted {
                    cl_ord_id,
                    order_id: base | order_id,
                    instrument,
                    side: side_to_wire(side),
                    price,
                    qty,
                },
            ),
            Event::Rejected {
                account, reason, ..
            } => {
                if matches!(self.entry.req.cmd, Command::MassCancel(_)) {
                    // A mass cancel is answered once per request by the gateway after every shard
                    // is done; a shard-level reject (only `UnknownAccount`, which the node's
                    // account table rules out) counts as "nothing cancelled here".
                    return;
                }
                let (request, cl_ord_id) = reject_subject(&self.entry.req.cmd);
                self.send(
                    account,
                    session,
                    ReportKind::Rejected {
                        cl_ord_id,
                        reason: reject_to_wire(reason),
                        request,
                    },
                );
            }
            Event::Fill {
                instrument,
                trade_id,
                price,
                qty,
                taker_side,
                maker_account,
                maker_cl_ord_id,
                maker_order_id,
                maker_leaves,
                taker_account,
                taker_cl_ord_id,
                taker_order_id,
                taker_leaves,
            } => {
                self.fills += 1;
                self.touched = Some(instrument);
                self.send(
                    maker_account,
                    NO_SESSION,
                    ReportKind::Executed {
                        cl_ord_id: maker_cl_ord_id,
                        order_id: base | maker_order_id,
                        trade_id: base | trade_id,
                        instrument,
                        side: side_to_wire(taker_side.opposite()),
                        liquidity: Liquidity::Maker,
                        price,
                        qty,
                        leaves_qty: maker_leaves,
                    },
                );
                self.send(
                    taker_account,
                    NO_SESSION,
                    ReportKind::Executed {
                        cl_ord_id: taker_cl_ord_id,
                        order_id: base | taker_order_id,
                        trade_id: base | trade_id,
                        instrument,
                        side: side_to_wire(taker_side),
                        liquidity: Liquidity::Taker,
                        price,
                        qty,
                        leaves_qty: taker_leaves,
                    },
                );
            }
            Event::Cancelled {
                account,
                cl_ord_id,
                order_id,
                instrument,
                cancelled_qty,
                leaves_qty,
                reason,
            } => {
                if matches!(reason, ECancel::MassCancel) {
                    self.mass_cancelled += 1;
                }
                self.send(
                    account,
                    NO_SESSION,
                    ReportKind::Cancelled {
                        cl_ord_id,
                        order_id: base | order_id,
                        instrument,
                        cancelled_qty,
                        leaves_qty,
                        reason: cancel_to_wire(reason),
                    },
                );
            }
            Event::Replaced {
                account,
                orig_cl_ord_id,
                new_cl_ord_id,
                order_id,
                instrument,
                price,
                qty,
                priority_kept,
            } => self.send(
                account,
                session,
                ReportKind::Replaced {
                    orig_cl_ord_id,
                    new_cl_ord_id,
                    order_id: base | order_id,
                    instrument,
                    price,
                    qty,
                    priority_kept,
                },
            ),
            Event::BookAdd { instrument, .. }
            | Event::BookReduce { instrument, .. }
            | Event::BookDelete { instrument, .. }
            | Event::BookReplace { instrument, .. } => self.touched = Some(instrument),
            // Market data and admin events: no execution report.
            Event::TradingStatus { .. } | Event::ReferencePrice { .. } => {}
        }
    }
}

/// One matching shard.
#[derive(Debug)]
pub struct Shard {
    pub id: u16,
    pub engine: Engine,
    pub instruments: Vec<InstrumentId>,
    order_id_base: u64,
    /// Its market-data publisher (`[md]` configured).
    md: Option<ShardMd>,
}

impl Shard {
    pub fn new(id: u16, cfg: EngineConfig) -> Result<Shard, String> {
        let instruments = cfg.instruments.iter().map(|i| i.id).collect();
        let engine = Engine::new(cfg).map_err(|e| format!("shard {id}: {e}"))?;
        Ok(Shard {
            id,
            engine,
            instruments,
            order_id_base: u64::from(id) << SHARD_ORDER_ID_SHIFT,
            md: None,
        })
    }

    /// Publishes the shard's market data through `md` (see `crate::md`).
    pub fn with_md(mut self, md: Option<ShardMd>) -> Shard {
        self.md = md;
        self
    }

    pub fn has_md(&self) -> bool {
        self.md.is_some()
    }

    /// Switches the publisher between sending and numbering only (a no-op without `[md]`).
    #[inline]
    pub fn md_set_active(&mut self, active: bool) {
        if let Some(md) = self.md.as_mut() {
            md.set_active(active);
        }
    }

    /// Market-data work between commands (heartbeats, the snapshot loop, following the node's
    /// role: `active` false = standby, numbering without sending). Returns packets sent.
    #[inline]
    pub fn md_work(&mut self, now_ns: u64, active: bool) -> usize {
        match self.md.as_mut() {
            Some(md) => md.work(now_ns, active, &self.engine),
            None => 0,
        }
    }

    /// The market-data publisher, if any.
    pub fn md(&self) -> Option<&ShardMd> {
        self.md.as_ref()
    }

    /// Applies one sequenced request; reports go to `out`. Returns (fills, touched instrument).
    #[inline]
    pub fn apply(
        &mut self,
        entry: &Sequenced,
        out: impl FnMut(Report),
    ) -> (u32, Option<InstrumentId>) {
        let mut mapper = ReportMapper::new(entry, self.order_id_base, out);
        match self.md.as_mut() {
            // Committed entries only reach a shard, so everything published is durable.
            Some(md) => md.process(&mut self.engine, entry.ts_ns, &entry.req.cmd, &mut mapper),
            None => self
                .engine
                .process(entry.ts_ns, &entry.req.cmd, &mut mapper),
        }
        mapper.finish();
        (mapper.fills, mapper.touched)
    }
}

impl Drop for Shard {
    /// A publishing shard leaves its books behind for `NodeMd::final_books` (tests compare a
    /// subscriber's books with them).
    fn drop(&mut self) {
        if let Some(md) = &self.md {
            md.record_books(&self.engine, &self.instruments, self.order_id_base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Request;
    use tpx_engine::{Cancel, MassCancel, NewOrder, OrderKind, StpMode, TimeInForce};

    fn entry(cmd: Command, session: u32, tag: u32) -> Sequenced {
        Sequenced {
            seq: 1,
            ts_ns: 42,
            req: Request {
                stamps: Default::default(),
                session,
                shard: 0,
                tag,
                cmd,
            },
        }
    }

    fn fill() -> Event {
        Event::Fill {
            instrument: 1,
            trade_id: 9,
            price: 100,
            qty: 3,
            taker_side: ESide::Buy,
            maker_account: 1,
            maker_cl_ord_id: 11,
            maker_order_id: 5,
            maker_leaves: 2,
            taker_account: 2,
            taker_cl_ord_id: 22,
            taker_order_id: 6,
            taker_leaves: 0,
        }
    }

    fn new_order() -> Command {
        Command::NewOrder(NewOrder {
            account: 2,
            cl_ord_id: 22,
            instrument: 1,
            side: ESide::Buy,
            kind: OrderKind::Limit,
            price: 100,
            qty: 3,
            tif: TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
        })
    }

    #[test]
    fn engine_reasons_keep_their_values_on_the_wire() {
        assert_eq!(
            reject_to_wire(EReject::UnknownOrder),
            RejectReason::UnknownOrder
        );
        assert_eq!(
            reject_to_wire(EReject::InvalidOrderType),
            RejectReason::InvalidOrderType
        );
        assert_eq!(
            cancel_to_wire(ECancel::MassCancel),
            CancelReason::MassCancel
        );
        assert_eq!(
            cancel_to_wire(ECancel::ImmediateOrCancel),
            CancelReason::ImmediateOrCancel
        );
    }

    #[test]
    fn a_fill_is_two_executions_with_the_shard_in_the_ids() {
        let e = entry(new_order(), 7, 0);
        let mut out = Vec::new();
        let mut m = ReportMapper::new(&e, 3 << SHARD_ORDER_ID_SHIFT, |r| out.push(r));
        m.emit(fill());
        m.finish();
        assert_eq!((m.fills, m.touched), (1, Some(1)));
        assert_eq!(out.len(), 2);
        let base = 3u64 << SHARD_ORDER_ID_SHIFT;
        match (out[0].kind, out[1].kind) {
            (
                ReportKind::Executed {
                    cl_ord_id: 11,
                    order_id: mo,
                    trade_id: mt,
                    side: Side::Sell,
                    liquidity: Liquidity::Maker,
                    leaves_qty: 2,
                    ..
                },
                ReportKind::Executed {
                    cl_ord_id: 22,
                    order_id: to,
                    trade_id: tt,
                    side: Side::Buy,
                    liquidity: Liquidity::Taker,
                    leaves_qty: 0,
                    ..
                },
            ) => {
                assert_eq!((mo, to), (base | 5, base | 6));
                assert_eq!(mt, tt);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            (out[0].account, out[0].session, out[0].ts_ns),
            (1, NO_SESSION, 42)
        );
        assert_eq!(out[1].account, 2);
    }

    #[test]
    fn rejects_name_the_request_and_mass_cancels_report_done() {
        let cancel = entry(
            Command::Cancel(Cancel {
                account: 2,
                cl_ord_id: 5,
                remaining_qty: 0,
            }),
            4,
            0,
        );
        let mut out = Vec::new();
        let mut m = ReportMapper::new(&cancel, 0, |r| out.push(r));
        m.emit(Event::Rejected {
            account: 2,
            cl_ord_id: 5,
            reason: EReject::UnknownOrder,
        });
        m.finish();
        assert_eq!(
            out[0].kind,
            ReportKind::Rejected {
                cl_ord_id: 5,
                reason: RejectReason::UnknownOrder,
                request: RequestKind::CancelOrder
            }
        );
        assert_eq!(out[0].session, 4);
        let mass = entry(
            Command::MassCancel(MassCancel {
                account: 2,
                instrument: None,
            }),
            4,
            77,
        );
        let mut out = Vec::new();
        let mut m = ReportMapper::new(&mass, 0, |r| out.push(r));
        m.emit(Event::Cancelled {
            account: 2,
            cl_ord_id: 1,
            order_id: 1,
            instrument: 1,
            cancelled_qty: 1,
            leaves_qty: 0,
            reason: ECancel::MassCancel,
        });
        m.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].kind,
            ReportKind::MassCancelDone {
                tag: 77,
                instrument: None,
                cancelled: 1
            }
        );
    }
}
