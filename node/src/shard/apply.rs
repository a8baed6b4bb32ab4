//! A matching shard: an [`Engine`] holding the shard's instruments, and the pure mapping from
//! engine events to per-account [`Report`]s.
//!
//! The request path's two conversions both happen here: a record's log input becomes the
//! engine's input once, in [`ReportMapper::new`] (`tpx_sequencer::apply::engine_input`), and
//! each engine event becomes a wire report once, in the mapper's [`EventSink`].

use tpx_engine::{
    BalanceReason as EBalance, CancelReason as ECancel, Command, Engine, EngineConfig, EngineInput,
    Event, EventSink, InstrumentId, RejectReason as EReject, RiskCommand, RiskConfig, RiskEvent,
};
use tpx_sequencer::apply::engine_input;
use tpx_wire::enums::{BalanceReason, CancelReason, Liquidity, RejectReason, RequestKind, Side};

use crate::msg::{Report, ReportKind, Sequenced, NO_SESSION};
use crate::shard::md::ShardMd;

/// Order ids are unique per engine; the shard puts its id in the top 16 bits so that they are
/// unique across the node (shard 0's ids are the engine's).
pub const SHARD_ORDER_ID_SHIFT: u32 = 48;

/// The account a risk command acts on (0 for mark price and funding).
pub fn risk_target(r: &RiskCommand) -> u32 {
    match *r {
        RiskCommand::Deposit { account, .. }
        | RiskCommand::Withdraw { account, .. }
        | RiskCommand::SetFeeTier { account, .. }
        | RiskCommand::Liquidate { account, .. } => account,
        RiskCommand::SetMarkPrice { .. } | RiskCommand::ApplyFunding { .. } => 0,
    }
}

/// A fill's two executions, held until the fill's `RiskEvent::Fees` (which follows it with risk
/// on) gives them their fees, or the next event flushes them (risk off: fee 0).
#[derive(Clone, Copy, Debug)]
struct PendingFill {
    maker_account: u32,
    maker: ReportKind,
    taker_account: u32,
    taker: ReportKind,
}

fn set_fee(kind: &mut ReportKind, value: i64) {
    if let ReportKind::Executed { fee, .. } = kind {
        *fee = value;
    }
}

/// Turns the events of one sequenced request into reports (an [`EventSink`]).
///
/// Order-entry requests: answers (accepted, rejected, replaced) to the requesting session,
/// reports about orders (fills, cancels) to the session owning the order ([`NO_SESSION`]).
/// Admin requests (risk commands): the engine's reject of the command, or after it an
/// `AdminAccepted`, naming the request id the record carries, to the admin session the record
/// names (on every node; nothing for an operator's record, which names none); every balance
/// change to its account
/// (`BalanceUpdate`, [`NO_SESSION`]); a liquidation's cancels and its closing order's reports
/// like any other order's.
#[derive(Debug)]
pub struct ReportMapper<'a, F: FnMut(Report)> {
    pub entry: &'a Sequenced,
    /// The entry's input in the engine's form (the one wire → engine conversion).
    pub input: EngineInput,
    pub order_id_base: u64,
    /// The shard's id (in admin answers and balance updates).
    pub shard: u16,
    pub out: F,
    pending: Option<PendingFill>,
    /// The admin command was rejected.
    risk_rejected: bool,
    /// Deposit / withdrawal: the target's balance after it.
    balance_after: (i64, i64),
    /// Orders cancelled by this request with reason `MassCancel`.
    pub mass_cancelled: u32,
    /// Fills seen.
    pub fills: u32,
    /// The last instrument whose book changed (for top-of-book publishing).
    pub touched: Option<InstrumentId>,
    /// Raw TSC of the first report (the `matched` stamp), 0 before it.
    pub matched_tsc: u64,
    /// The request was rejected by the engine (its reason), for the shard's counters.
    pub rejected: Option<RejectReason>,
    /// Margin calls the request caused (an account fell below maintenance margin).
    pub margin_calls: u32,
}

impl<'a, F: FnMut(Report)> ReportMapper<'a, F> {
    /// The mapper of `entry`, whose input in the engine's form is `input`
    /// (`tpx_sequencer::apply::engine_input`).
    pub fn new(entry: &'a Sequenced, input: EngineInput, order_id_base: u64, out: F) -> Self {
        ReportMapper {
            entry,
            input,
            order_id_base,
            shard: (order_id_base >> SHARD_ORDER_ID_SHIFT) as u16,
            out,
            pending: None,
            risk_rejected: false,
            balance_after: (0, 0),
            mass_cancelled: 0,
            fills: 0,
            touched: None,
            matched_tsc: 0,
            rejected: None,
            margin_calls: 0,
        }
    }

    #[inline]
    fn send(&mut self, account: u32, session: u32, kind: ReportKind) {
        if self.matched_tsc == 0 && self.entry.req.stamps.rx != 0 {
            self.matched_tsc = crate::runtime::clock::tsc();
        }
        if let ReportKind::Rejected { reason, .. } = kind {
            self.rejected = Some(reason);
        }
        let mut stamps = self.entry.req.stamps;
        stamps.matched = self.matched_tsc;
        (self.out)(Report {
            account,
            session,
            seq: self.entry.seq,
            ts_ns: self.entry.ts_ns,
            kind,
            stamps,
        });
    }

    #[inline]
    fn flush_fill(&mut self) {
        if let Some(p) = self.pending.take() {
            self.send(p.maker_account, NO_SESSION, p.maker);
            self.send(p.taker_account, NO_SESSION, p.taker);
        }
    }

    /// Call after `Engine::apply`: the per-shard completion of a mass cancel, the answer to an
    /// admin request.
    pub fn finish(&mut self) {
        self.flush_fill();
        match self.input {
            EngineInput::Command(Command::MassCancel(m)) => {
                let kind = ReportKind::MassCancelDone {
                    tag: self.entry.req.tag,
                    instrument: m.instrument,
                    cancelled: self.mass_cancelled,
                };
                self.send(m.account, self.entry.req.session, kind);
            }
            EngineInput::Risk(r) if !self.risk_rejected && self.entry.req.session != NO_SESSION => {
                let (available, held) = match r {
                    RiskCommand::Deposit { .. } | RiskCommand::Withdraw { .. } => {
                        self.balance_after
                    }
                    _ => (0, 0),
                };
                let Some(request) = crate::msg::admin_kind(&self.entry.req.input) else {
                    return;
                };
                let kind = ReportKind::AdminAccepted {
                    request_id: self.entry.req.admin_request_id(),
                    available,
                    held,
                    target: risk_target(&r),
                    shard: self.shard,
                    request,
                };
                self.send(self.entry.req.account, self.entry.req.session, kind);
            }
            _ => {}
        }
    }

    /// A reject during a risk command: the command's own (to the admin session), or one of the
    /// liquidation account's closing order (to that account, like any order reject).
    fn risk_reject(&mut self, r: RiskCommand, account: u32, cl_ord_id: u64, reason: EReject) {
        let own = match r {
            RiskCommand::Liquidate {
                account: target, ..
            } => account == target,
            _ => true,
        };
        if own {
            self.risk_rejected = true;
            // An admin request's reject names its request id.
            let subject = self.entry.req.reject_subject();
            if let (true, Some((request, request_id))) =
                (self.entry.req.session != NO_SESSION, subject)
            {
                let kind = ReportKind::Rejected {
                    cl_ord_id: request_id,
                    reason: RejectReason::from(reason),
                    request,
                };
                self.send(self.entry.req.account, self.entry.req.session, kind);
            }
        } else {
            let kind = ReportKind::Rejected {
                cl_ord_id,
                reason: RejectReason::from(reason),
                request: RequestKind::EnterOrder,
            };
            self.send(account, NO_SESSION, kind);
        }
    }
}

impl<F: FnMut(Report)> EventSink for ReportMapper<'_, F> {
    #[inline]
    fn emit(&mut self, event: Event) {
        if self.pending.is_some() {
            self.flush_fill();
        }
        let base = self.order_id_base;
        // Answers go to the requesting session; a risk command's orders (a liquidation's
        // closing IOC) belong to the liquidation account, not to the admin's session.
        let (session, risk) = match self.input {
            EngineInput::Command(_) => (self.entry.req.session, None),
            EngineInput::Risk(r) => (NO_SESSION, Some(r)),
        };
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
                    side: Side::from(side),
                    price,
                    qty,
                },
            ),
            Event::Rejected {
                account,
                reason,
                cl_ord_id,
            } => {
                if let Some(r) = risk {
                    return self.risk_reject(r, account, cl_ord_id, reason);
                }
                if matches!(self.input, EngineInput::Command(Command::MassCancel(_))) {
                    // A mass cancel is answered once per request by the gateway after every shard
                    // is done; a shard-level reject (only `UnknownAccount`, which the node's
                    // account table rules out) counts as "nothing cancelled here".
                    return;
                }
                let (request, cl_ord_id) = self
                    .entry
                    .req
                    .reject_subject()
                    .unwrap_or((RequestKind::EnterOrder, cl_ord_id));
                self.send(
                    account,
                    session,
                    ReportKind::Rejected {
                        cl_ord_id,
                        reason: RejectReason::from(reason),
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
                self.pending = Some(PendingFill {
                    maker_account,
                    maker: ReportKind::Executed {
                        cl_ord_id: maker_cl_ord_id,
                        order_id: base | maker_order_id,
                        trade_id: base | trade_id,
                        instrument,
                        side: Side::from(taker_side.opposite()),
                        liquidity: Liquidity::Maker,
                        price,
                        qty,
                        leaves_qty: maker_leaves,
                        fee: 0,
                    },
                    taker_account,
                    taker: ReportKind::Executed {
                        cl_ord_id: taker_cl_ord_id,
                        order_id: base | taker_order_id,
                        trade_id: base | trade_id,
                        instrument,
                        side: Side::from(taker_side),
                        liquidity: Liquidity::Taker,
                        price,
                        qty,
                        leaves_qty: taker_leaves,
                        fee: 0,
                    },
                });
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
                        reason: CancelReason::from(reason),
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
            // The order types' own reports, to the session owning the order (a trigger fires
            // and an iceberg refills during another account's request; a slide follows its
            // own `Accepted`, so it goes where that went).
            Event::Triggered {
                account,
                cl_ord_id,
                order_id,
                instrument,
                side,
                trigger_price,
                price,
            } => self.send(
                account,
                NO_SESSION,
                ReportKind::Triggered {
                    cl_ord_id,
                    order_id: base | order_id,
                    instrument,
                    side: Side::from(side),
                    trigger_price,
                    price,
                },
            ),
            Event::Slid {
                account,
                cl_ord_id,
                order_id,
                instrument,
                requested_price,
                price,
            } => self.send(
                account,
                session,
                ReportKind::Slid {
                    cl_ord_id,
                    order_id: base | order_id,
                    instrument,
                    requested_price,
                    price,
                },
            ),
            Event::Refilled {
                account,
                cl_ord_id,
                order_id,
                instrument,
                display_qty,
                hidden_qty,
            } => self.send(
                account,
                NO_SESSION,
                ReportKind::Refilled {
                    cl_ord_id,
                    order_id: base | order_id,
                    instrument,
                    display_qty,
                    hidden_qty,
                },
            ),
        }
    }

    #[inline]
    fn emit_risk(&mut self, event: RiskEvent) {
        if let RiskEvent::Fees {
            maker_fee,
            taker_fee,
            ..
        } = event
        {
            if let Some(p) = self.pending.as_mut() {
                set_fee(&mut p.maker, maker_fee);
                set_fee(&mut p.taker, taker_fee);
            }
            return self.flush_fill();
        }
        self.flush_fill();
        if let RiskEvent::MarginCall { .. } = event {
            self.margin_calls += 1;
        }
        if let RiskEvent::Balance {
            account,
            asset,
            reason,
            delta,
            available,
            held,
        } = event
        {
            if let EngineInput::Risk(
                RiskCommand::Deposit { account: t, .. } | RiskCommand::Withdraw { account: t, .. },
            ) = self.input
            {
                if t == account && matches!(reason, EBalance::Deposit | EBalance::Withdrawal) {
                    self.balance_after = (available, held);
                }
            }
            let kind = ReportKind::BalanceUpdate {
                delta,
                available,
                held,
                asset,
                shard: self.shard,
                reason: BalanceReason::from(reason),
            };
            self.send(account, NO_SESSION, kind);
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
    /// The publisher state of the image the shard was restored from: the publisher
    /// [`Shard::with_md`] attaches goes on from it.
    md_from_image: Option<tpx_md::MdState>,
    /// Rejects by reason and margin calls so far (the stage publishes them for Prometheus).
    pub counts: ShardCounts,
}

/// What a shard counts of the requests it applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardCounts {
    /// By `RejectReason` wire code.
    pub rejects: [u64; REJECT_CODES],
    pub margin_calls: u64,
    /// Bumped at every change (the stage publishes when it moved).
    pub version: u64,
}

pub use crate::runtime::state::REJECT_CODES;

impl Default for ShardCounts {
    fn default() -> Self {
        ShardCounts {
            rejects: [0; REJECT_CODES],
            margin_calls: 0,
            version: 0,
        }
    }
}

impl Shard {
    /// A shard with risk off (`risk` `None`: `Engine::new`) or on (`Engine::with_risk`).
    pub fn new(id: u16, cfg: EngineConfig, risk: Option<RiskConfig>) -> Result<Shard, String> {
        let instruments = cfg.instruments.iter().map(|i| i.id).collect();
        let engine = match risk {
            None => Engine::new(cfg).map_err(|e| format!("shard {id}: {e}"))?,
            Some(r) => Engine::with_risk(cfg, r).map_err(|e| format!("shard {id}: {e}"))?,
        };
        Ok(Shard {
            id,
            engine,
            instruments,
            order_id_base: u64::from(id) << SHARD_ORDER_ID_SHIFT,
            md: None,
            md_from_image: None,
            counts: ShardCounts::default(),
        })
    }

    /// A shard over an engine restored from a snapshot (`shard/snapshot.rs`), built with `cfg`.
    pub fn from_engine(id: u16, engine: Engine, cfg: &EngineConfig) -> Shard {
        Shard {
            id,
            engine,
            instruments: cfg.instruments.iter().map(|i| i.id).collect(),
            order_id_base: u64::from(id) << SHARD_ORDER_ID_SHIFT,
            md: None,
            md_from_image: None,
            counts: ShardCounts::default(),
        }
    }

    /// Publishes the shard's market data through `md` (see `crate::shard::md`), going on from
    /// the numbering of the image the shard was restored from, if it has one.
    pub fn with_md(mut self, mut md: Option<ShardMd>) -> Shard {
        if let (Some(md), Some(state)) = (md.as_mut(), self.md_from_image.as_ref()) {
            md.restore(state);
        }
        self.md = md;
        self
    }

    /// Restored from an image whose market-data numbering was `state` (see [`Shard::with_md`]).
    pub fn with_md_from_image(mut self, state: Option<tpx_md::MdState>) -> Shard {
        self.md_from_image = state;
        self
    }

    /// The publisher's state (`None` without `[md]`): what an image of the shard keeps.
    pub fn md_state(&self) -> Option<tpx_md::MdState> {
        self.md.as_ref().map(ShardMd::state)
    }

    /// What the shard ORs into the engine's order and trade ids.
    pub fn order_id_base(&self) -> u64 {
        self.order_id_base
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
        let Some(input) = engine_input(&entry.req.input, entry.req.account) else {
            // No engine input (a `TermStart`; the feed keeps those from the shards).
            return (0, None);
        };
        let mut mapper = ReportMapper::new(entry, input, self.order_id_base, out);
        match self.md.as_mut() {
            // Committed entries only reach a shard, so everything published is durable.
            Some(md) => md.process(&mut self.engine, entry.ts_ns, &input, &mut mapper),
            None => self.engine.apply(entry.ts_ns, &input, &mut mapper),
        }
        mapper.finish();
        if let Some(r) = mapper.rejected {
            self.counts.rejects[usize::from(r.as_u8()).min(REJECT_CODES - 1)] += 1;
            self.counts.version += 1;
        }
        if mapper.margin_calls > 0 {
            self.counts.margin_calls += u64::from(mapper.margin_calls);
            self.counts.version += 1;
        }
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

    fn input_of(e: &Sequenced) -> EngineInput {
        engine_input(&e.req.input, e.req.account).expect("an engine input")
    }
    use crate::msg::Request;
    use tpx_engine::Side as ESide;
    use tpx_wire::enums::{BalanceReason, OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::{self as l, Input};
    use tpx_wire::order_entry::{CancelOrder, EnterOrder, MassCancel};

    fn entry(account: u32, input: Input, session: u32, tag: u32) -> Sequenced {
        Sequenced {
            seq: 1,
            ts_ns: 42,
            req: Request {
                tag,
                ..Request::new(session, 0, account, input)
            },
        }
    }

    /// An admin request of account 50 from session 6 (`NO_SESSION`: a record from elsewhere).
    fn admin(input: Input, session: u32) -> Sequenced {
        Sequenced {
            seq: 1,
            ts_ns: 42,
            req: Request::new(session, 1, 50, input),
        }
    }

    /// Shard 1 with the built-in BTC-USDT (1) and BTC-PERP (3), risk on.
    fn risk_shard() -> Shard {
        let all = crate::config::builtin_instruments();
        let ics: Vec<&crate::config::InstrumentConfig> =
            all.iter().filter(|i| i.id == 1 || i.id == 3).collect();
        let cfg = EngineConfig {
            instruments: ics.iter().map(|i| i.spec().unwrap()).collect(),
            max_orders: 64,
            max_accounts: 1000,
        };
        let risk = crate::config::builtin_risk().for_shard(&ics, 1000).unwrap();
        Shard::new(1, cfg, Some(risk)).unwrap()
    }

    fn run(shard: &mut Shard, e: &Sequenced) -> Vec<Report> {
        let mut out = Vec::new();
        shard.apply(e, |r| out.push(r));
        out
    }

    fn deposit(account: u32, asset: u32, amount: u64, request_id: u64) -> Input {
        Input::Deposit(l::Deposit {
            account,
            asset,
            amount,
            request_id,
        })
    }

    fn limit(cl: u64, instrument: u32, side: Side, price: i64, qty: u64) -> Input {
        Input::EnterOrder(EnterOrder {
            cl_ord_id: cl,
            instrument,
            side,
            kind: OrderKind::Limit,
            price,
            qty,
            tif: TimeInForce::Gtc,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
        })
    }

    #[test]
    fn a_deposit_is_a_balance_update_to_the_account_and_accepted_to_the_admin() {
        let mut shard = risk_shard();
        let out = run(&mut shard, &admin(deposit(7, 1, 1_000, 3), 6));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[0].account, out[0].session), (7, NO_SESSION));
        assert_eq!(
            out[0].kind,
            ReportKind::BalanceUpdate {
                delta: 1_000,
                available: 1_000,
                held: 0,
                asset: 1,
                shard: 1,
                reason: BalanceReason::Deposit
            }
        );
        assert_eq!((out[1].account, out[1].session), (50, 6));
        assert_eq!(
            out[1].kind,
            ReportKind::AdminAccepted {
                request_id: 3,
                available: 1_000,
                held: 0,
                target: 7,
                shard: 1,
                request: RequestKind::AdminDeposit
            }
        );
        // The same id again: the engine's DuplicateRequest, to the admin, with the request id.
        let out = run(&mut shard, &admin(deposit(7, 1, 1_000, 3), 6));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].account, out[0].session), (50, 6));
        assert_eq!(
            out[0].kind,
            ReportKind::Rejected {
                cl_ord_id: 3,
                reason: RejectReason::DuplicateRequest,
                request: RequestKind::AdminDeposit
            }
        );
        // A record from elsewhere: the balance update goes out, no answer.
        let out = run(&mut shard, &admin(deposit(7, 1, 5, 4), NO_SESSION));
        assert_eq!(out.len(), 1);
        assert!(matches!(
            out[0].kind,
            ReportKind::BalanceUpdate { delta: 5, .. }
        ));
        // A mark price: accepted, no account named.
        let mark = Input::SetMarkPrice(l::SetMarkPrice {
            instrument: 3,
            price: 60_000,
            request_id: 9,
        });
        let out = run(&mut shard, &admin(mark, 6));
        assert_eq!(
            out.last().unwrap().kind,
            ReportKind::AdminAccepted {
                request_id: 9,
                available: 0,
                held: 0,
                target: 0,
                shard: 1,
                request: RequestKind::AdminSetMarkPrice
            }
        );
        // Funding on an instrument that is not a perpetual: the engine's reject.
        let funding = Input::ApplyFunding(l::ApplyFunding {
            instrument: 1,
            rate_ppm: 10,
            funding_id: 10,
        });
        let out = run(&mut shard, &admin(funding, 6));
        assert!(matches!(
            out[0].kind,
            ReportKind::Rejected {
                cl_ord_id: 10,
                request: RequestKind::AdminApplyFunding,
                ..
            }
        ));
    }

    #[test]
    fn fills_carry_their_fees_and_balance_rejects_reach_the_wire() {
        let mut shard = risk_shard();
        // Account 1 sells 0.0010 BTC (10 lots), account 2 buys at 60,000 USDT.
        run(&mut shard, &admin(deposit(1, 2, 100_000, 1), 6));
        run(&mut shard, &admin(deposit(2, 1, 1_000_000_000, 1), 6));
        let sell = entry(1, limit(11, 1, Side::Sell, 60_000, 10), 1, 0);
        assert!(matches!(
            run(&mut shard, &sell)[0].kind,
            ReportKind::Accepted { .. }
        ));
        let buy = entry(2, limit(21, 1, Side::Buy, 60_000, 10), 2, 0);
        let out = run(&mut shard, &buy);
        let fees: Vec<(u32, Liquidity, i64)> = out
            .iter()
            .filter_map(|r| match r.kind {
                ReportKind::Executed { liquidity, fee, .. } => Some((r.account, liquidity, fee)),
                _ => None,
            })
            .collect();
        // Notional 60,000 * 10 * 100 = 60,000,000 minor units (60 USDT): maker 2 bps, taker 5.
        assert_eq!(
            fees,
            vec![(1, Liquidity::Maker, 12_000), (2, Liquidity::Taker, 30_000)]
        );
        // Beyond its balance: InsufficientBalance on the wire, to the requesting session.
        let big = entry(2, limit(22, 1, Side::Buy, 60_000, 1_000_000), 2, 0);
        let out = run(&mut shard, &big);
        assert_eq!(
            out[0].kind,
            ReportKind::Rejected {
                cl_ord_id: 22,
                reason: RejectReason::InsufficientBalance,
                request: RequestKind::EnterOrder
            }
        );
        assert_eq!(out[0].session, 2);
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

    /// The order types' events become reports: a slide to the requesting session after its
    /// acceptance; a refill and a trigger to the order's owner (no session: the gateway finds
    /// it), with the shard's id in the order id; the hidden quantity only in the private report.
    #[test]
    fn order_type_events_become_reports() {
        use tpx_wire::enums::TriggerType;
        use tpx_wire::order_entry::EnterOrderExt;
        let mut shard = Shard::new(
            1,
            EngineConfig {
                instruments: vec![crate::config::builtin_instruments()[0].spec().unwrap()],
                max_orders: 64,
                max_accounts: 16,
            },
            None,
        )
        .unwrap();
        let base = 1u64 << SHARD_ORDER_ID_SHIFT;
        let ext = |cl, side, price, qty| {
            let Input::EnterOrder(m) = limit(cl, 1, side, price, qty) else {
                unreachable!()
            };
            EnterOrderExt::plain(&m)
        };
        // An iceberg sell of 10 showing 4, and a sell stop below the market.
        let ice = EnterOrderExt {
            display_qty: 4,
            ..ext(1, Side::Sell, 60_000, 10)
        };
        let out = run(&mut shard, &entry(1, Input::EnterOrderExt(ice), 3, 0));
        assert!(matches!(
            out[..],
            [Report {
                kind: ReportKind::Accepted { .. },
                ..
            }]
        ));
        let stop = EnterOrderExt {
            trigger: TriggerType::LastRisesTo,
            trigger_price: 60_000,
            kind: OrderKind::Market,
            tif: TimeInForce::Ioc,
            ..ext(2, Side::Buy, 61_000, 1)
        };
        run(&mut shard, &entry(1, Input::EnterOrderExt(stop), 3, 0));
        // A post-only-slide buy at the ask slides to 59,999.
        let slide = EnterOrderExt {
            post_only: true,
            post_only_slide: true,
            ..ext(1, Side::Buy, 60_000, 1)
        };
        let out = run(&mut shard, &entry(2, Input::EnterOrderExt(slide), 4, 0));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((out[1].account, out[1].session), (2, 4));
        assert_eq!(
            out[1].kind,
            ReportKind::Slid {
                cl_ord_id: 1,
                order_id: base | 3,
                instrument: 1,
                requested_price: 60_000,
                price: 59_999
            }
        );
        // A buy of 4 takes the slice: the iceberg refills (private: hidden 2), and the trade at
        // 60,000 fires account 1's buy stop, which takes the refilled slice.
        let out = run(
            &mut shard,
            &entry(2, limit(2, 1, Side::Buy, 60_000, 4), 4, 0),
        );
        let refill = out
            .iter()
            .find(|r| matches!(r.kind, ReportKind::Refilled { .. }))
            .expect("a refill");
        assert_eq!((refill.account, refill.session), (1, NO_SESSION));
        assert_eq!(
            refill.kind,
            ReportKind::Refilled {
                cl_ord_id: 1,
                order_id: base | 1,
                instrument: 1,
                display_qty: 4,
                hidden_qty: 2
            }
        );
        let fired = out
            .iter()
            .find(|r| matches!(r.kind, ReportKind::Triggered { .. }))
            .expect("a trigger");
        assert_eq!((fired.account, fired.session), (1, NO_SESSION));
        assert_eq!(
            fired.kind,
            ReportKind::Triggered {
                cl_ord_id: 2,
                order_id: base | 2,
                instrument: 1,
                side: Side::Buy,
                trigger_price: 60_000,
                price: 60_000
            }
        );
        // The gateway's wire form of each.
        assert!(matches!(
            fired.kind.order_type_reply(7, 42),
            Some(tpx_wire::replies::ServerMessage::OrderTriggered(t)) if t.seq == 7 && t.trigger_price == 60_000
        ));
        assert_eq!(out[0].kind.order_type_reply(1, 1), None);
    }

    #[test]
    fn a_fill_is_two_executions_with_the_shard_in_the_ids() {
        let e = entry(2, limit(22, 1, Side::Buy, 100, 3), 7, 0);
        let mut out = Vec::new();
        let mut m = ReportMapper::new(&e, input_of(&e), 3 << SHARD_ORDER_ID_SHIFT, |r| out.push(r));
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
            2,
            Input::CancelOrder(CancelOrder {
                cl_ord_id: 5,
                remaining_qty: 0,
            }),
            4,
            0,
        );
        let mut out = Vec::new();
        let mut m = ReportMapper::new(&cancel, input_of(&cancel), 0, |r| out.push(r));
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
        let mass = entry(2, Input::MassCancel(MassCancel { instrument: None }), 4, 77);
        let mut out = Vec::new();
        let mut m = ReportMapper::new(&mass, input_of(&mass), 0, |r| out.push(r));
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

    /// A session's replies are a function of the log: an admin record this node did not submit
    /// (a standby's, one replayed at start: no local request id) is answered with the request
    /// id the log carries, as on the node that took it. (Found by `tpx-sim` seed 1 for
    /// deposits: the admin session's `AdminAccepted` said `request_id` 0 after a failover; for
    /// marks, liquidations and fee tiers by `node/tests/risk.rs`, whose log records did not
    /// carry it.)
    #[test]
    fn an_admin_record_from_elsewhere_is_answered_with_the_logs_request_id() {
        let mut shard = risk_shard();
        let out = run(&mut shard, &admin(deposit(7, 1, 1_000, 3), 6));
        assert!(
            matches!(
                out.last().unwrap().kind,
                ReportKind::AdminAccepted { request_id: 3, .. }
            ),
            "{out:?}"
        );
        let out = run(&mut shard, &admin(deposit(7, 1, 1_000, 3), 6));
        assert_eq!(
            out[0].kind,
            ReportKind::Rejected {
                cl_ord_id: 3,
                reason: RejectReason::DuplicateRequest,
                request: RequestKind::AdminDeposit
            }
        );
        let mark = Input::SetMarkPrice(l::SetMarkPrice {
            instrument: 3,
            price: 60_000,
            request_id: 41,
        });
        let out = run(&mut shard, &admin(mark, 6));
        assert!(
            matches!(
                out.last().unwrap().kind,
                ReportKind::AdminAccepted { request_id: 41, .. }
            ),
            "{out:?}"
        );
        let tier = Input::SetFeeTier(l::SetFeeTier {
            account: 7,
            tier: 1,
            request_id: 42,
        });
        let out = run(&mut shard, &admin(tier, 6));
        assert!(
            matches!(
                out.last().unwrap().kind,
                ReportKind::AdminAccepted { request_id: 42, .. }
            ),
            "{out:?}"
        );
        // Account 7 holds no position: the engine's reject names the logged id.
        let liq = Input::Liquidate(l::Liquidate {
            cl_ord_id: 9,
            price: 50_000,
            account: 7,
            instrument: 3,
            request_id: 43,
        });
        let out = run(&mut shard, &admin(liq, 6));
        assert_eq!(
            out[0].kind,
            ReportKind::Rejected {
                cl_ord_id: 43,
                reason: RejectReason::NoPosition,
                request: RequestKind::AdminLiquidate
            }
        );
    }
}
