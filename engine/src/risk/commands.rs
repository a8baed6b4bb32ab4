//! The engine's side of the risk stage: construction with risk on, `process_risk`, the
//! liquidation command and reduce-only trimming (both touch the books).

use crate::command::NewOrder;
use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::event::{CancelReason, Event, EventSink, RejectReason};
use crate::slab::NIL;
use crate::types::*;

use super::config::{RiskConfig, RiskConfigError};
use super::state::{Kind, Risk};
use super::types::{EngineInput, RiskCommand};

impl Engine {
    /// Builds an engine with accounts and pre-trade risk (`Engine::new` is risk off). Every
    /// table is allocated here (see [`crate::risk::config`] for the sizing rule).
    pub fn with_risk(cfg: EngineConfig, risk: RiskConfig) -> Result<Engine, RiskConfigError> {
        cfg.validate()?;
        let state = Risk::new(&cfg, &risk)?;
        let mut engine = Engine::new(cfg)?;
        engine.risk = state;
        Ok(engine)
    }

    /// Whether this engine was built with risk on.
    pub fn risk_enabled(&self) -> bool {
        self.risk.on()
    }

    /// Applies either kind of input.
    #[inline]
    pub fn apply<S: EventSink>(&mut self, ts_ns: u64, input: &EngineInput, sink: &mut S) {
        match input {
            EngineInput::Command(c) => self.process(ts_ns, c, sink),
            EngineInput::Risk(r) => self.process_risk(ts_ns, r, sink),
        }
    }

    /// Applies one sequenced risk command (deposits, withdrawals, fee tiers, marks, funding,
    /// liquidations), emitting its events in order. Never allocates, never panics.
    ///
    /// Like [`Engine::process`], its `ts_ns` first expires the GTD orders due, and the trigger
    /// orders its trades or mark reach fire before reduce-only orders are trimmed. With risk
    /// off, `SetMarkPrice` on a perpetual is still applied to the mark the triggers watch (and
    /// emits nothing of its own); every other risk command is rejected with `RiskDisabled`.
    pub fn process_risk<S: EventSink>(&mut self, ts_ns: u64, cmd: &RiskCommand, sink: &mut S) {
        if ts_ns >= self.store.next_expiry {
            self.expire_due(ts_ns, sink);
        }
        let (account, id) = match *cmd {
            RiskCommand::Deposit {
                account,
                request_id,
                ..
            }
            | RiskCommand::Withdraw {
                account,
                request_id,
                ..
            } => (account, request_id),
            RiskCommand::SetFeeTier { account, .. } => (account, 0),
            RiskCommand::Liquidate {
                account,
                request_id,
                ..
            } => (account, request_id),
            RiskCommand::ApplyFunding { funding_id, .. } => (0, funding_id),
            RiskCommand::SetMarkPrice { .. } => (0, 0),
        };
        if let Err(reason) = self.risk_command(ts_ns, cmd, sink) {
            sink.emit(Event::Rejected {
                account,
                cl_ord_id: id,
                reason,
            });
        }
        if self.trig_book != NIL {
            self.run_triggers(sink);
        }
        if !self.risk.trim.is_empty() {
            self.drain_trims(sink);
        }
    }

    /// A mark must be a price book `bi` can trade at (`min_price..=max_price`, as an order's):
    /// one far outside settled variation margin at it (a mark of `i64::MAX` was accepted).
    fn check_mark(&self, bi: usize, price: PriceTicks) -> Result<(), RejectReason> {
        let spec = &self.books[bi].spec;
        if price <= 0 || price < spec.min_price || price > spec.max_price {
            return Err(RejectReason::InvalidPrice);
        }
        Ok(())
    }

    fn risk_command<S: EventSink>(
        &mut self,
        ts_ns: u64,
        cmd: &RiskCommand,
        sink: &mut S,
    ) -> Result<(), RejectReason> {
        if !self.risk.on() {
            if let RiskCommand::SetMarkPrice { instrument, price } = *cmd {
                let bi = self
                    .book_index(instrument)
                    .ok_or(RejectReason::UnknownInstrument)?;
                if !matches!(
                    self.books[bi].spec.kind,
                    crate::instrument::InstrumentKind::LinearPerp { .. }
                ) {
                    return Err(RejectReason::NotPerpetual);
                }
                self.check_mark(bi, price)?;
                self.on_mark(bi, price, sink);
                return Ok(());
            }
            return Err(RejectReason::RiskDisabled);
        }
        let known = |account: AccountId| {
            if account < self.max_accounts {
                Ok(())
            } else {
                Err(RejectReason::UnknownAccount)
            }
        };
        match *cmd {
            RiskCommand::Deposit {
                account,
                asset,
                amount,
                request_id,
            } => {
                known(account)?;
                self.risk.deposit(account, asset, amount, request_id, sink)
            }
            RiskCommand::Withdraw {
                account,
                asset,
                amount,
                request_id,
            } => {
                known(account)?;
                self.risk.withdraw(account, asset, amount, request_id, sink)
            }
            RiskCommand::SetFeeTier { account, tier } => {
                known(account)?;
                self.risk.set_fee_tier(account, tier, sink)
            }
            RiskCommand::SetMarkPrice { instrument, price } => {
                let perp = self.perp_of(instrument)?;
                let bi = self.risk.perps[perp as usize].book as usize;
                self.check_mark(bi, price)?;
                self.risk.set_mark(perp, price, sink);
                self.on_mark(bi, price, sink);
                Ok(())
            }
            RiskCommand::ApplyFunding {
                instrument,
                rate_ppm,
                funding_id,
            } => {
                let perp = self.perp_of(instrument)?;
                if funding_id <= self.risk.perps[perp as usize].last_funding_id {
                    return Err(RejectReason::DuplicateRequest);
                }
                if rate_ppm.unsigned_abs() > 1_000_000 {
                    return Err(RejectReason::InvalidAmount);
                }
                if self.risk.perps[perp as usize].mark == 0 {
                    return Err(RejectReason::NoMarkPrice);
                }
                self.risk.apply_funding(perp, rate_ppm, sink);
                self.risk.perps[perp as usize].last_funding_id = funding_id;
                Ok(())
            }
            RiskCommand::Liquidate {
                account,
                instrument,
                cl_ord_id,
                price,
                request_id,
            } => {
                known(account)?;
                self.risk.check_request(account, request_id)?;
                if account == self.risk.fee_account || account == self.risk.liq_account {
                    return Err(RejectReason::NotLiquidatable);
                }
                let perp = self.perp_of(instrument)?;
                if self.risk.perps[perp as usize].mark == 0 {
                    return Err(RejectReason::NoMarkPrice);
                }
                if self.risk.size(account, perp) == 0 {
                    return Err(RejectReason::NoPosition);
                }
                self.risk.accounts[account as usize].last_request_id = request_id;
                self.liquidate(ts_ns, account, instrument, perp, cl_ord_id, price, sink);
                Ok(())
            }
        }
    }

    /// The perpetual index of an instrument.
    fn perp_of(&self, instrument: InstrumentId) -> Result<u32, RejectReason> {
        let bi = self
            .book_index(instrument)
            .ok_or(RejectReason::UnknownInstrument)?;
        match self.risk.inst[bi].kind {
            Kind::Perp { perp, .. } => Ok(perp),
            Kind::Spot { .. } => Err(RejectReason::NotPerpetual),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn liquidate<S: EventSink>(
        &mut self,
        ts_ns: u64,
        account: AccountId,
        instrument: InstrumentId,
        perp: u32,
        cl_ord_id: ClientOrderId,
        price: PriceTicks,
        sink: &mut S,
    ) {
        // 1. Every order of the account, in ascending order id.
        let mut slot = self.store.acct_head[account as usize];
        while slot != NIL {
            let o = *self.store.order(slot);
            let next = o.acct_next;
            if o.ext != 0 {
                self.remove_order(slot, CancelReason::Liquidation, sink);
            } else {
                self.remove_resting(slot, o.leaves, CancelReason::Liquidation, sink);
            }
            slot = next;
        }
        // 2. Settle the instrument at its mark, so the position moves at the mark with no
        //    cash changing hands; 3. move it; 4. cover a deficit; 5. re-check margin.
        self.risk.settle_to_mark(perp, sink);
        let size = self.risk.take_over(account, perp, sink);
        let settle = self.risk.perps[perp as usize].settle;
        self.risk.cover_deficit(account, settle, sink);
        self.risk.check_margin(account, settle, sink);
        // 6. The liquidation account closes what it took over.
        let bi = self.risk.perps[perp as usize].book as usize;
        let qty = size.unsigned_abs().min(self.books[bi].spec.max_qty);
        let order = NewOrder {
            account: self.risk.liq_account,
            cl_ord_id,
            instrument,
            side: if size > 0 { Side::Sell } else { Side::Buy },
            kind: OrderKind::Limit,
            price,
            qty,
            tif: TimeInForce::Ioc,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
            ext: crate::command::OrderExt::NONE,
        };
        self.on_new_order::<true, S>(ts_ns, &order, sink);
    }

    /// Cuts `cut` lots off a resting order (all of it: it leaves the book) for `reason`,
    /// releasing their hold: `Cancelled`, then `BookDelete` or `BookReduce`.
    fn remove_resting<S: EventSink>(
        &mut self,
        slot: u32,
        cut: QtyLots,
        reason: CancelReason,
        sink: &mut S,
    ) {
        let o = *self.store.order(slot);
        let bi = o.book as usize;
        let book = &mut self.books[bi];
        let instrument = book.id();
        let left = o.leaves - cut;
        sink.emit(Event::Cancelled {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id: o.order_id,
            instrument,
            cancelled_qty: cut,
            leaves_qty: left,
            reason,
        });
        self.risk.release(bi, self.risk.leg(&o, slot), cut);
        let idx = book.index_of(o.price);
        let ladder = book.side_mut(o.side);
        if left == 0 {
            sink.emit(Event::BookDelete {
                instrument,
                order_id: o.order_id,
            });
            ladder.unlink(&mut self.store.slab.orders, slot, idx);
            self.store.release(slot);
        } else {
            sink.emit(Event::BookReduce {
                instrument,
                order_id: o.order_id,
                qty: cut,
            });
            ladder.reduce(idx, cut);
            self.store.order_mut(slot).leaves = left;
        }
    }

    /// Trims the reduce-only orders of every queued position down to what the position lets
    /// them reduce, newest order first (`Cancelled(ReduceOnly)` + `BookReduce` / `BookDelete`).
    #[cold]
    #[inline(never)]
    pub(crate) fn drain_trims<S: EventSink>(&mut self, sink: &mut S) {
        let n_perps = self.risk.n_perps.max(1);
        for k in 0..self.risk.trim.len() {
            let pi = self.risk.trim[k] as usize;
            self.risk.positions[pi].queued = false;
            let account = (pi / n_perps) as AccountId;
            let perp = pi % n_perps;
            let bi = self.risk.perps[perp].book;
            let mut slot = self.store.acct_tail[account as usize];
            while slot != NIL {
                let o = *self.store.order(slot);
                let prev = o.acct_prev;
                // Pending trigger orders hold and reduce nothing until they fire.
                if o.book == bi && o.reduce_only && o.ext & crate::ext::EXT_PENDING == 0 {
                    let p = &self.risk.positions[pi];
                    let open = match o.side {
                        Side::Buy => p.ro_buy,
                        Side::Sell => p.ro_sell,
                    };
                    let cap = self.risk.ro_capacity(bi as usize, account, o.side);
                    if open > cap {
                        let cut = (open - cap).min(o.leaves);
                        self.remove_resting(slot, cut, CancelReason::ReduceOnly, sink);
                    }
                }
                slot = prev;
            }
        }
        self.risk.trim.clear();
    }
}
