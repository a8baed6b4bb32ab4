//! Queries from a session (order status, open orders, balances, positions): checked like a
//! request (throttle), left in the inbox of each shard that may know the answer, never logged;
//! the shards' answers come back on the report rings, unsequenced, and the session gets them
//! with the query's `request_id`, then one `QueryDone` once every shard asked has answered.

use tpx_wire::enums::{RejectReason, RequestKind};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::query::{BalanceStatus, OrderStatus, PositionStatus, QueryDone};
use tpx_wire::replies::ServerMessage;

use super::{emit_unsequenced, rejected, Outbox, SessionTable};
use crate::msg::{Query, QueryKind, Report, ReportKind, ALL_SHARDS};

/// A query asked of one or more shards, waiting for their `QueryDone`s.
#[derive(Clone, Copy, Debug)]
pub(super) struct PendingQuery {
    slot: u32,
    request_id: u64,
    request: RequestKind,
    /// Shards still to answer.
    remaining: u16,
    /// Data messages sent so far.
    count: u32,
    /// The lowest `as_of_seq` of the shards that answered.
    as_of_seq: u64,
    /// A shard refused it (its inbox was full): the end is `Backpressure`, not `QueryDone`.
    refused: bool,
}

/// The query a client message asks: `(request_id, kind, request kind)`; `None`: not a query.
pub fn query_of(msg: &ClientMessage) -> Option<(u64, QueryKind, RequestKind)> {
    Some(match *msg {
        ClientMessage::QueryOrder(m) => (
            m.request_id,
            QueryKind::Order {
                cl_ord_id: m.cl_ord_id,
            },
            RequestKind::QueryOrder,
        ),
        ClientMessage::QueryOpenOrders(m) => (
            m.request_id,
            QueryKind::OpenOrders {
                instrument: m.instrument,
            },
            RequestKind::QueryOpenOrders,
        ),
        ClientMessage::QueryBalances(m) => (
            m.request_id,
            QueryKind::Balances,
            RequestKind::QueryBalances,
        ),
        ClientMessage::QueryPositions(m) => (
            m.request_id,
            QueryKind::Positions,
            RequestKind::QueryPositions,
        ),
        _ => return None,
    })
}

impl SessionTable {
    /// A query from session `slot`: throttled like a request, then left for the shard that
    /// holds the order or instrument it names (an order this gateway does not know as live,
    /// balances and positions: every shard). `ask(shard, query)` leaves it in that shard's
    /// inbox (false: full). Refused by every shard: `OrderRejected(Backpressure)` at once.
    pub fn on_query(
        &mut self,
        slot: u32,
        msg: &ClientMessage,
        now_ns: u64,
        unix_ns: u64,
        outbox: &mut impl Outbox,
        mut ask: impl FnMut(u16, Query) -> bool,
    ) {
        let Some((request_id, kind, request)) = query_of(msg) else {
            return;
        };
        if self
            .admit(slot, now_ns, unix_ns, request_id, request, outbox)
            .is_err()
        {
            return;
        }
        let s = &self.sessions[slot as usize];
        let (account, session) = (s.account, s.session_id);
        let target = match kind {
            QueryKind::Order { cl_ord_id } => self
                .owners
                .get(&(account, cl_ord_id))
                .map_or(ALL_SHARDS, |o| o.shard),
            QueryKind::OpenOrders {
                instrument: Some(i),
            } => self.routing.shard_of(i),
            _ => ALL_SHARDS,
        };
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let q = Query {
            account,
            session,
            tag,
            kind,
        };
        let shards = match target {
            ALL_SHARDS => 0..self.routing.shard_count,
            s => s..s + 1,
        };
        let (mut asked, mut refused) = (0u16, false);
        for shard in shards {
            if ask(shard, q) {
                asked += 1;
            } else {
                refused = true;
            }
        }
        if asked == 0 {
            self.counters.rejects_backpressure += 1;
            return self.reject(
                slot,
                unix_ns,
                request_id,
                RejectReason::Backpressure,
                request,
                outbox,
            );
        }
        self.queries.insert(
            tag,
            PendingQuery {
                slot,
                request_id,
                request,
                remaining: asked,
                count: 0,
                as_of_seq: u64::MAX,
                refused,
            },
        );
    }

    /// A shard's answer to a query (`None`: not one): delivered to the asking session's
    /// connection, unsequenced; after the last shard's `QueryDone`, the session's. Returns
    /// whether the query was known.
    pub(super) fn on_query_answer(&mut self, r: &Report, outbox: &mut impl Outbox) -> Option<bool> {
        let tag = match r.kind {
            ReportKind::QueryOrder { tag, .. }
            | ReportKind::QueryBalance { tag, .. }
            | ReportKind::QueryPosition { tag, .. }
            | ReportKind::QueryDone { tag, .. } => tag,
            _ => return None,
        };
        let Some(p) = self.queries.get_mut(&tag) else {
            return Some(false);
        };
        let request_id = p.request_id;
        let msg = match r.kind {
            ReportKind::QueryOrder {
                cl_ord_id,
                order_id,
                instrument,
                side,
                price,
                leaves_qty,
                ..
            } => ServerMessage::OrderStatus(OrderStatus {
                seq: 0,
                request_id,
                cl_ord_id,
                order_id,
                price,
                leaves_qty,
                instrument,
                side,
            }),
            ReportKind::QueryBalance {
                asset,
                available,
                held,
                shard,
                margin_call,
                ..
            } => ServerMessage::BalanceStatus(BalanceStatus {
                seq: 0,
                request_id,
                available,
                held,
                asset,
                shard,
                margin_call,
            }),
            ReportKind::QueryPosition {
                instrument,
                size,
                entry_price,
                realized_pnl,
                ..
            } => ServerMessage::PositionStatus(PositionStatus {
                seq: 0,
                request_id,
                size,
                entry_price,
                realized_pnl,
                instrument,
            }),
            ReportKind::QueryDone { as_of_seq, .. } => {
                p.remaining = p.remaining.saturating_sub(1);
                p.as_of_seq = p.as_of_seq.min(as_of_seq);
                if p.remaining > 0 {
                    return Some(true);
                }
                let p = self.queries.remove(&tag)?;
                let end = if p.refused {
                    rejected(r.ts_ns, p.request_id, RejectReason::Backpressure, p.request)
                } else {
                    ServerMessage::QueryDone(QueryDone {
                        seq: 0,
                        request_id,
                        as_of_seq: p.as_of_seq,
                        count: p.count,
                        request: p.request,
                    })
                };
                emit_unsequenced(&self.sessions[p.slot as usize], end, outbox);
                return Some(true);
            }
            _ => return None,
        };
        p.count += 1;
        let slot = p.slot;
        emit_unsequenced(&self.sessions[slot as usize], msg, outbox);
        Some(true)
    }
}
