//! The reference book: a deliberately simple, obviously correct implementation of the engine
//! contract ("Engine semantics" in `docs/ARCHITECTURE.md`), used as the test oracle for
//! [`crate::Engine`] and as a baseline in the benchmarks.
//!
//! It is written for clarity, not speed: a `BTreeMap<price, VecDeque<order id>>` per side, a
//! `BTreeMap` from `(account, cl_ord_id)` to the order id, one `BTreeMap` of live orders, and naive
//! loops. Every rule is written out in the order the contract lists it, so a reviewer can check
//! the two side by side. It has the same public methods as [`crate::Engine`], and its
//! [`ReferenceBook::state_hash`] follows the canonical definition, so differential tests compare
//! events, hashes and L3 books command by command.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::command::{Cancel, Command, MassCancel, NewOrder, Replace};
use crate::config::{ConfigError, EngineConfig};
use crate::event::{CancelReason, Event, EventSink, RejectReason};
use crate::hash::StateHasher;
use crate::instrument::InstrumentKind;
use crate::instrument::InstrumentSpec;
use crate::risk::{EngineInput, RiskCommand};
use crate::types::*;
use crate::{L3Order, Level};

/// A live (resting) order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RefOrder {
    order_id: OrderId,
    account: AccountId,
    cl_ord_id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    price: PriceTicks,
    leaves: QtyLots,
    stp: StpMode,
    post_only: bool,
    // The order types (see `OrderExt`).
    /// Iceberg: the quantity not shown (`leaves` is the shown part) and the slice size (0: not
    /// an iceberg).
    hidden: QtyLots,
    display: QtyLots,
    /// GTD expiry (0: none).
    expire_ts_ns: u64,
    /// The other leg of its OCO pair.
    oco: Option<OrderId>,
    /// A trigger order: its trigger, and whether it is still waiting (not on the book).
    trigger: Option<Trigger>,
    pending: bool,
    /// Taken out of the trigger book, about to fire.
    firing: bool,
    kind: OrderKind,
    tif: TimeInForce,
    reduce_only: bool,
}

impl RefOrder {
    /// Shown plus hidden.
    fn total(&self) -> QtyLots {
        self.leaves + self.hidden
    }
}

/// One instrument: its static spec, its admin state and its two sides.
#[derive(Clone, Debug)]
struct RefInstrument {
    spec: InstrumentSpec,
    halted: bool,
    ref_price: PriceTicks,
    band_bps: u32,
    /// Price -> order ids in time priority (front = oldest). Levels are never left empty.
    bids: BTreeMap<PriceTicks, VecDeque<OrderId>>,
    asks: BTreeMap<PriceTicks, VecDeque<OrderId>>,
    /// Last trade price and mark price (0: none yet).
    last: PriceTicks,
    mark: PriceTicks,
}

impl RefInstrument {
    fn side(&self, side: Side) -> &BTreeMap<PriceTicks, VecDeque<OrderId>> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<PriceTicks, VecDeque<OrderId>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The best price of a side: the highest bid or the lowest ask.
    fn best_price(&self, side: Side) -> Option<PriceTicks> {
        match side {
            Side::Buy => self.bids.keys().next_back().copied(),
            Side::Sell => self.asks.keys().next().copied(),
        }
    }

    /// A side's levels, best first.
    fn levels_best_first(
        &self,
        side: Side,
    ) -> Box<dyn Iterator<Item = (PriceTicks, &VecDeque<OrderId>)> + '_> {
        let levels = self.side(side).iter().map(|(p, q)| (*p, q));
        match side {
            Side::Buy => Box::new(levels.rev()),
            Side::Sell => Box::new(levels),
        }
    }

    /// The order ids of a side, best price first, time priority within a level.
    fn ids_in_priority(&self, side: Side) -> impl Iterator<Item = OrderId> + '_ {
        self.levels_best_first(side)
            .flat_map(|(_, queue)| queue.iter().copied())
    }

    /// Whether an order on `side` at `price` may trade with a resting order at `resting`.
    fn acceptable(side: Side, price: PriceTicks, resting: PriceTicks) -> bool {
        match side {
            Side::Buy => resting <= price,
            Side::Sell => resting >= price,
        }
    }

    /// Whether an order on `side` at `price` would cross the opposite side.
    fn would_cross(&self, side: Side, price: PriceTicks) -> bool {
        match self.best_price(side.opposite()) {
            Some(best) => Self::acceptable(side, price, best),
            None => false,
        }
    }

    /// Steps 4 and 5 of the validation: price (range and band) and quantity (range and notional).
    fn check_price_qty(&self, price: PriceTicks, qty: QtyLots) -> Result<(), RejectReason> {
        self.check_price(price)?;
        self.check_qty(price, qty)
    }

    /// Step 4: price range, then band.
    fn check_price(&self, price: PriceTicks) -> Result<(), RejectReason> {
        if price <= 0 || price < self.spec.min_price || price > self.spec.max_price {
            return Err(RejectReason::InvalidPrice);
        }
        if self.band_bps > 0 {
            let r = i128::from(self.ref_price);
            let width = r * i128::from(self.band_bps) / 10_000;
            let p = i128::from(price);
            if p < r - width || p > r + width {
                return Err(RejectReason::PriceOutsideBand);
            }
        }
        Ok(())
    }

    /// Step 5: quantity range, then notional.
    fn check_qty(&self, price: PriceTicks, qty: QtyLots) -> Result<(), RejectReason> {
        if qty == 0 || qty < self.spec.min_qty || qty > self.spec.max_qty {
            return Err(RejectReason::InvalidQuantity);
        }
        if (price as u128) * u128::from(qty) < self.spec.min_notional {
            return Err(RejectReason::BelowMinNotional);
        }
        Ok(())
    }
}

/// The taker while it matches: a new order, or a replaced order that crossed.
#[derive(Clone, Copy, Debug)]
struct Taker {
    order_id: OrderId,
    account: AccountId,
    cl_ord_id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    price: PriceTicks,
    remaining: QtyLots,
    stp: StpMode,
    /// Its OCO leg, cancelled at its first fill.
    oco: Option<OrderId>,
}

/// The reference implementation of the engine contract. See the module documentation.
#[derive(Clone, Debug)]
pub struct ReferenceBook {
    max_orders: u32,
    max_accounts: u32,
    instruments: BTreeMap<InstrumentId, RefInstrument>,
    /// Every live order by order id (ascending order id = acceptance order).
    orders: BTreeMap<OrderId, RefOrder>,
    /// `(account, cl_ord_id)` of every live order.
    by_client: BTreeMap<(AccountId, ClientOrderId), OrderId>,
    next_order_id: OrderId,
    next_trade_id: TradeId,
    /// The lowest and highest trade price of the instrument traded since the last trigger
    /// pass (one instrument per command).
    traded: Option<(InstrumentId, PriceTicks, PriceTicks)>,
    /// Every GTD order accepted, by `(expiry, order id)`, and every trigger order accepted:
    /// kept lazily (an entry whose order is gone or no longer pending is skipped and dropped),
    /// only so that plain streams do not pay a scan of every order per command.
    expiries: BTreeSet<(u64, OrderId)>,
    triggers: BTreeSet<OrderId>,
}

impl ReferenceBook {
    /// Builds an empty book for `cfg` (validated exactly as [`crate::Engine::new`] does).
    pub fn new(cfg: EngineConfig) -> Result<ReferenceBook, ConfigError> {
        cfg.validate()?;
        let instruments = cfg
            .instruments
            .iter()
            .map(|spec| {
                (
                    spec.id,
                    RefInstrument {
                        spec: *spec,
                        halted: false,
                        ref_price: 0,
                        band_bps: 0,
                        bids: BTreeMap::new(),
                        asks: BTreeMap::new(),
                        last: 0,
                        mark: 0,
                    },
                )
            })
            .collect();
        Ok(ReferenceBook {
            max_orders: cfg.max_orders,
            max_accounts: cfg.max_accounts,
            instruments,
            orders: BTreeMap::new(),
            by_client: BTreeMap::new(),
            next_order_id: 1,
            next_trade_id: 1,
            traded: None,
            expiries: BTreeSet::new(),
            triggers: BTreeSet::new(),
        })
    }

    /// Applies either kind of input. Risk commands: only `SetMarkPrice` (risk off, as
    /// [`crate::Engine::process_risk`] applies it without risk); the others are rejected with
    /// `RiskDisabled`.
    pub fn apply<S: EventSink>(&mut self, ts_ns: u64, input: &EngineInput, sink: &mut S) {
        match input {
            EngineInput::Command(c) => self.process(ts_ns, c, sink),
            EngineInput::Risk(r) => self.process_risk(ts_ns, r, sink),
        }
    }

    /// A risk command on a risk-off book: expiry first; `SetMarkPrice` on a perpetual moves the
    /// mark and fires the mark triggers it reaches (then the last-price cascade).
    pub fn process_risk<S: EventSink>(&mut self, ts_ns: u64, cmd: &RiskCommand, sink: &mut S) {
        self.expire(ts_ns, sink);
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
        let RiskCommand::SetMarkPrice { instrument, price } = *cmd else {
            return reject(sink, account, id, RejectReason::RiskDisabled);
        };
        let Some(inst) = self.instruments.get_mut(&instrument) else {
            return reject(sink, 0, 0, RejectReason::UnknownInstrument);
        };
        if !matches!(inst.spec.kind, InstrumentKind::LinearPerp { .. }) {
            return reject(sink, 0, 0, RejectReason::NotPerpetual);
        }
        if price <= 0 || price < inst.spec.min_price || price > inst.spec.max_price {
            return reject(sink, 0, 0, RejectReason::InvalidPrice);
        }
        inst.mark = price;
        self.mark_pass(instrument, sink);
        self.trigger_passes(sink);
    }

    /// Fires the mark-price triggers of `instrument` its mark reaches (not while halted).
    fn mark_pass<S: EventSink>(&mut self, instrument: InstrumentId, sink: &mut S) {
        let inst = &self.instruments[&instrument];
        if inst.halted {
            return;
        }
        let mark = inst.mark;
        let queue = self.reached(instrument, TriggerSource::Mark, mark, mark);
        self.fire_all(queue, sink);
    }

    /// The pending triggers of `instrument` watching `source` that trade prices `lo..=hi`
    /// reach, in firing order: rising ones (trigger price `<= hi`) by ascending trigger price,
    /// then falling ones (`>= lo`) by descending trigger price, each then by order id; with
    /// the price that fired them. They are marked firing.
    fn reached(
        &mut self,
        instrument: InstrumentId,
        source: TriggerSource,
        lo: PriceTicks,
        hi: PriceTicks,
    ) -> Vec<(OrderId, PriceTicks)> {
        let mut rises: Vec<(PriceTicks, OrderId)> = Vec::new();
        let mut falls: Vec<(PriceTicks, OrderId)> = Vec::new();
        let orders = &self.orders;
        self.triggers
            .retain(|id| orders.get(id).is_some_and(|o| o.pending));
        for o in self.triggers.iter().map(|id| &self.orders[id]) {
            let Some(t) = o.trigger else { continue };
            if o.instrument != instrument || t.source != source {
                continue;
            }
            match t.direction {
                TriggerDirection::RisesTo if t.price <= hi => rises.push((t.price, o.order_id)),
                TriggerDirection::FallsTo if t.price >= lo => falls.push((-t.price, o.order_id)),
                _ => {}
            }
        }
        rises.sort();
        falls.sort();
        let queue: Vec<(OrderId, PriceTicks)> = rises
            .into_iter()
            .map(|(_, id)| (id, hi))
            .chain(falls.into_iter().map(|(_, id)| (id, lo)))
            .collect();
        for (id, _) in &queue {
            let o = self.orders.get_mut(id).expect("live");
            o.pending = false;
            o.firing = true;
        }
        queue
    }

    /// The last-price trigger passes: while the command's trades (and then the fired orders'
    /// trades) reach pending triggers, fire them.
    fn trigger_passes<S: EventSink>(&mut self, sink: &mut S) {
        while let Some((instrument, lo, hi)) = self.traded.take() {
            if self.instruments[&instrument].halted {
                continue;
            }
            let queue = self.reached(instrument, TriggerSource::Last, lo, hi);
            if queue.is_empty() {
                break;
            }
            self.fire_all(queue, sink);
        }
    }

    fn fire_all<S: EventSink>(&mut self, queue: Vec<(OrderId, PriceTicks)>, sink: &mut S) {
        for (id, price) in queue {
            // An earlier firing may have cancelled it (its OCO pair).
            if self.orders.get(&id).is_some_and(|o| o.firing) {
                self.fire(id, price, sink);
            }
        }
    }

    /// One trigger order fires: `Triggered`, its OCO leg cancelled, the band re-checked, then it
    /// enters as a taker.
    fn fire<S: EventSink>(&mut self, order_id: OrderId, price: PriceTicks, sink: &mut S) {
        let o = {
            let o = self.orders.get_mut(&order_id).expect("live");
            o.firing = false;
            *o
        };
        let t = o.trigger.expect("a trigger order");
        sink.emit(Event::Triggered {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id,
            instrument: o.instrument,
            side: o.side,
            trigger_price: t.price,
            price,
        });
        if let Some(leg) = o.oco {
            self.unpair(order_id);
            self.remove_order(leg, CancelReason::Oco, sink);
        }
        if self.instruments[&o.instrument]
            .check_price(o.price)
            .is_err()
        {
            self.forget(order_id);
            sink.emit(Event::Cancelled {
                account: o.account,
                cl_ord_id: o.cl_ord_id,
                order_id,
                instrument: o.instrument,
                cancelled_qty: o.leaves,
                leaves_qty: 0,
                reason: CancelReason::TriggerRejected,
            });
            return;
        }
        let mut taker = Taker {
            order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            side: o.side,
            price: o.price,
            remaining: o.leaves,
            stp: o.stp,
            oco: None,
        };
        self.enter(&mut taker, sink);
    }

    /// GTD expiry at `ts_ns`: every order whose expiry is at or before it, earliest first (then
    /// by order id), is cancelled (`Expired`), its OCO leg after it (`Oco`).
    fn expire<S: EventSink>(&mut self, ts_ns: u64, sink: &mut S) {
        while let Some(&(expiry, id)) = self.expiries.first() {
            if expiry > ts_ns {
                break;
            }
            self.expiries.pop_first();
            if self.orders.contains_key(&id) {
                self.remove_with_oco(id, CancelReason::Expired, sink);
            }
        }
    }

    /// Dissolves the OCO pair of `order_id`.
    fn unpair(&mut self, order_id: OrderId) {
        if let Some(leg) = self.orders.get_mut(&order_id).and_then(|o| o.oco.take()) {
            if let Some(l) = self.orders.get_mut(&leg) {
                l.oco = None;
            }
        }
    }

    /// Removes a live order from every index (and its level if it rests); dissolves its pair.
    fn forget(&mut self, order_id: OrderId) -> RefOrder {
        self.unpair(order_id);
        if self.rests(order_id) {
            self.remove_resting(order_id)
        } else {
            let o = self.orders.remove(&order_id).expect("live");
            if self.by_client.get(&(o.account, o.cl_ord_id)) == Some(&order_id) {
                self.by_client.remove(&(o.account, o.cl_ord_id));
            }
            o
        }
    }

    /// Whether the order is on a level.
    fn rests(&self, order_id: OrderId) -> bool {
        let o = &self.orders[&order_id];
        self.instruments[&o.instrument]
            .side(o.side)
            .get(&o.price)
            .is_some_and(|q| q.contains(&order_id))
    }

    /// Removes a live order whole for `reason`: `Cancelled` (shown plus hidden), `BookDelete`
    /// if it rested. Its pair dissolves.
    fn remove_order<S: EventSink>(
        &mut self,
        order_id: OrderId,
        reason: CancelReason,
        sink: &mut S,
    ) {
        let rested = self.rests(order_id);
        let o = self.forget(order_id);
        sink.emit(Event::Cancelled {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id,
            instrument: o.instrument,
            cancelled_qty: o.total(),
            leaves_qty: 0,
            reason,
        });
        if rested {
            sink.emit(Event::BookDelete {
                instrument: o.instrument,
                order_id,
            });
        }
    }

    /// [`ReferenceBook::remove_order`], then its OCO leg (`Oco`).
    fn remove_with_oco<S: EventSink>(
        &mut self,
        order_id: OrderId,
        reason: CancelReason,
        sink: &mut S,
    ) {
        let leg = self.orders[&order_id].oco;
        self.remove_order(order_id, reason, sink);
        if let Some(leg) = leg {
            self.remove_order(leg, CancelReason::Oco, sink);
        }
    }

    /// The number of trigger orders waiting for their trigger.
    pub fn pending_triggers(&self) -> usize {
        self.triggers
            .iter()
            .filter(|id| self.orders.get(id).is_some_and(|o| o.pending))
            .count()
    }

    /// Applies one command, emitting its events to `sink` in order.
    pub fn process<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        self.expire(ts_ns, sink);
        self.command(ts_ns, cmd, sink);
        self.trigger_passes(sink);
    }

    fn command<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        match cmd {
            Command::NewOrder(o) => self.new_order(ts_ns, o, sink),
            Command::Cancel(c) => self.cancel(c, sink),
            Command::Replace(r) => self.replace(r, sink),
            Command::MassCancel(m) => self.mass_cancel(m, sink),
            Command::SetReferencePrice {
                instrument,
                price,
                band_bps,
            } => match self.instruments.get_mut(instrument) {
                None => reject(sink, 0, 0, RejectReason::UnknownInstrument),
                Some(_) if *price <= 0 => reject(sink, 0, 0, RejectReason::InvalidPrice),
                Some(inst) => {
                    inst.ref_price = *price;
                    inst.band_bps = *band_bps;
                    sink.emit(Event::ReferencePrice {
                        instrument: *instrument,
                        price: *price,
                        band_bps: *band_bps,
                    });
                }
            },
            Command::Halt { instrument } => self.set_halted(*instrument, true, sink),
            Command::Resume { instrument } => self.set_halted(*instrument, false, sink),
            Command::Tick => {}
        }
    }

    fn set_halted<S: EventSink>(&mut self, instrument: InstrumentId, halted: bool, sink: &mut S) {
        match self.instruments.get_mut(&instrument) {
            None => reject(sink, 0, 0, RejectReason::UnknownInstrument),
            Some(inst) => {
                inst.halted = halted;
                sink.emit(Event::TradingStatus { instrument, halted });
                if !halted && inst.mark > 0 {
                    self.mark_pass(instrument, sink);
                }
            }
        }
    }

    fn new_order<S: EventSink>(&mut self, ts_ns: u64, o: &NewOrder, sink: &mut S) {
        let rej = |sink: &mut S, reason| reject(sink, o.account, o.cl_ord_id, reason);
        // 1. account
        if o.account >= self.max_accounts {
            return rej(sink, RejectReason::UnknownAccount);
        }
        // 2. instrument
        let Some(inst) = self.instruments.get(&o.instrument) else {
            return rej(sink, RejectReason::UnknownInstrument);
        };
        if inst.halted {
            return rej(sink, RejectReason::InstrumentHalted);
        }
        // 3. order type
        if o.kind == OrderKind::Market
            && (matches!(o.tif, TimeInForce::Gtc | TimeInForce::Gtd) || o.post_only)
        {
            return rej(sink, RejectReason::InvalidOrderType);
        }
        // 4. and 5. price and quantity
        if let Err(reason) = inst.check_price_qty(o.price, o.qty) {
            return rej(sink, reason);
        }
        // 6. duplicate client order id among the account's live orders
        if self.by_client.contains_key(&(o.account, o.cl_ord_id)) {
            return rej(sink, RejectReason::DuplicateClientOrderId);
        }
        // 6a. the order types
        let x = &o.ext;
        let mut oco = None;
        if !x.is_plain() || o.tif == TimeInForce::Gtd {
            match self.check_ext(ts_ns, inst, o) {
                Ok(leg) => oco = leg,
                Err(reason) => return rej(sink, reason),
            }
        }
        let mut price = o.price;
        if x.trigger.is_none() {
            // 7. post-only: reject, or slide one tick behind the opposite best
            if o.post_only && inst.would_cross(o.side, o.price) {
                if !x.post_only_slide {
                    return rej(sink, RejectReason::PostOnlyWouldTake);
                }
                let best = inst.best_price(o.side.opposite()).expect("crossed");
                price = match o.side {
                    Side::Buy => best - 1,
                    Side::Sell => best + 1,
                };
                if inst.check_price(price).is_err() {
                    return rej(sink, RejectReason::PostOnlyWouldTake);
                }
                if let Err(reason) = inst.check_qty(price, o.qty) {
                    return rej(sink, reason);
                }
            }
        }
        // 8. a free slot for the order being applied
        if self.orders.len() >= self.max_orders as usize {
            return rej(sink, RejectReason::BookFull);
        }
        // 9. fill-or-kill: walk the opposite side in priority order
        if o.tif == TimeInForce::Fok && x.trigger.is_none() {
            let mut found: u128 = 0;
            for id in inst.ids_in_priority(o.side.opposite()) {
                let maker = &self.orders[&id];
                if !RefInstrument::acceptable(o.side, price, maker.price) {
                    break;
                }
                if maker.account == o.account && o.stp != StpMode::None {
                    if o.stp == StpMode::ExpireMaker {
                        continue;
                    }
                    break;
                }
                found += u128::from(maker.leaves);
            }
            if found < u128::from(o.qty) {
                return rej(sink, RejectReason::FokNotFillable);
            }
        }

        let order_id = self.next_order_id;
        self.next_order_id += 1;
        sink.emit(Event::Accepted {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            order_id,
            instrument: o.instrument,
            side: o.side,
            price: o.price,
            qty: o.qty,
        });
        let order = RefOrder {
            order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            side: o.side,
            price,
            leaves: o.qty,
            stp: o.stp,
            post_only: o.post_only,
            hidden: 0,
            display: x.display_qty,
            expire_ts_ns: x.expire_ts_ns,
            oco,
            trigger: x.trigger,
            pending: x.trigger.is_some(),
            firing: false,
            kind: o.kind,
            tif: o.tif,
            reduce_only: o.reduce_only,
        };
        if let Some(leg) = oco {
            self.orders.get_mut(&leg).expect("live").oco = Some(order_id);
        }
        if order.expire_ts_ns != 0 {
            self.expiries.insert((order.expire_ts_ns, order_id));
        }
        if order.pending {
            self.triggers.insert(order_id);
        }
        if order.pending {
            // Waits in the trigger book: indexed by client id, on no level.
            self.by_client.insert((o.account, o.cl_ord_id), order_id);
            self.orders.insert(order_id, order);
            return;
        }
        if price != o.price {
            sink.emit(Event::Slid {
                account: o.account,
                cl_ord_id: o.cl_ord_id,
                order_id,
                instrument: o.instrument,
                requested_price: o.price,
                price,
            });
        }
        // The taker is live (its OCO leg points at it) but on no level and not yet indexed by
        // client id while it trades.
        self.orders.insert(order_id, order);
        let mut taker = Taker {
            order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            side: o.side,
            price,
            remaining: o.qty,
            stp: o.stp,
            oco,
        };
        self.enter(&mut taker, sink);
    }

    /// The order-type checks, in the engine's order. Returns the OCO leg.
    fn check_ext(
        &self,
        ts_ns: u64,
        inst: &RefInstrument,
        o: &NewOrder,
    ) -> Result<Option<OrderId>, RejectReason> {
        let x = &o.ext;
        let gtd = o.tif == TimeInForce::Gtd;
        if gtd != (x.expire_ts_ns != 0) || (x.expire_ts_ns != 0 && x.expire_ts_ns <= ts_ns) {
            return Err(RejectReason::InvalidExpireTime);
        }
        if x.display_qty != 0 {
            if o.kind != OrderKind::Limit
                || !(o.tif == TimeInForce::Gtc || gtd)
                || o.reduce_only
                || x.trigger.is_some()
            {
                return Err(RejectReason::InvalidOrderType);
            }
            if x.display_qty >= o.qty || x.display_qty < inst.spec.min_qty {
                return Err(RejectReason::InvalidQuantity);
            }
        }
        if x.post_only_slide && !o.post_only {
            return Err(RejectReason::InvalidOrderType);
        }
        let perp = matches!(inst.spec.kind, InstrumentKind::LinearPerp { .. });
        if let Some(t) = x.trigger {
            if o.post_only || o.tif == TimeInForce::Fok {
                return Err(RejectReason::InvalidTrigger);
            }
            if t.price <= 0 || t.price < inst.spec.min_price || t.price > inst.spec.max_price {
                return Err(RejectReason::InvalidTrigger);
            }
            if t.source == TriggerSource::Mark && !perp {
                return Err(RejectReason::NotPerpetual);
            }
            let watched = match t.source {
                TriggerSource::Last => inst.last,
                TriggerSource::Mark => inst.mark,
            };
            let reached = watched > 0
                && match t.direction {
                    TriggerDirection::RisesTo => watched >= t.price,
                    TriggerDirection::FallsTo => watched <= t.price,
                };
            if reached {
                return Err(RejectReason::InvalidTrigger);
            }
        }
        // Close-position needs risk, which the reference does not have.
        if x.close_position {
            return Err(RejectReason::InvalidOrderType);
        }
        if x.oco_cl_ord_id == 0 {
            return Ok(None);
        }
        let leg = self
            .by_client
            .get(&(o.account, x.oco_cl_ord_id))
            .ok_or(RejectReason::InvalidOcoLink)?;
        let l = &self.orders[leg];
        if l.instrument != o.instrument || l.oco.is_some() || l.side != o.side {
            return Err(RejectReason::InvalidOcoLink);
        }
        Ok(Some(*leg))
    }

    /// An accepted order (live in `orders`, on no level) enters as a taker: matching, then its
    /// remainder rests (GTC, GTD) or is cancelled (market: `MarketProtection`; IOC, FOK:
    /// `ImmediateOrCancel`).
    fn enter<S: EventSink>(&mut self, taker: &mut Taker, sink: &mut S) {
        self.match_taker(taker, sink);
        let order = self.orders[&taker.order_id];
        let reason = if taker.remaining == 0 {
            None
        } else if order.kind == OrderKind::Market {
            Some(CancelReason::MarketProtection)
        } else if matches!(order.tif, TimeInForce::Ioc | TimeInForce::Fok) {
            Some(CancelReason::ImmediateOrCancel)
        } else {
            let shown = if order.display > 0 {
                order.display.min(taker.remaining)
            } else {
                taker.remaining
            };
            let resting = RefOrder {
                leaves: shown,
                hidden: taker.remaining - shown,
                ..order
            };
            self.insert_resting(resting);
            sink.emit(Event::BookAdd {
                instrument: order.instrument,
                order_id: order.order_id,
                side: order.side,
                price: order.price,
                qty: shown,
            });
            return;
        };
        // It does not rest: it leaves (its OCO pair dissolves).
        self.forget(taker.order_id);
        if let Some(reason) = reason {
            sink.emit(Event::Cancelled {
                account: taker.account,
                cl_ord_id: taker.cl_ord_id,
                order_id: taker.order_id,
                instrument: taker.instrument,
                cancelled_qty: taker.remaining,
                leaves_qty: 0,
                reason,
            });
        }
    }

    fn insert_resting(&mut self, order: RefOrder) {
        let inst = self
            .instruments
            .get_mut(&order.instrument)
            .expect("known instrument");
        inst.side_mut(order.side)
            .entry(order.price)
            .or_default()
            .push_back(order.order_id);
        self.by_client
            .insert((order.account, order.cl_ord_id), order.order_id);
        self.orders.insert(order.order_id, order);
    }

    /// Takes a live order off its level and out of every index; returns it.
    fn remove_resting(&mut self, order_id: OrderId) -> RefOrder {
        let order = self.orders.remove(&order_id).expect("live order");
        self.by_client.remove(&(order.account, order.cl_ord_id));
        let inst = self
            .instruments
            .get_mut(&order.instrument)
            .expect("known instrument");
        let levels = inst.side_mut(order.side);
        let queue = levels.get_mut(&order.price).expect("order's level");
        let pos = queue
            .iter()
            .position(|id| *id == order_id)
            .expect("in level");
        queue.remove(pos);
        if queue.is_empty() {
            levels.remove(&order.price);
        }
        order
    }

    /// The matching loop of the contract.
    fn match_taker<S: EventSink>(&mut self, taker: &mut Taker, sink: &mut S) {
        while taker.remaining > 0 {
            let inst = &self.instruments[&taker.instrument];
            let Some(best) = inst.best_price(taker.side.opposite()) else {
                break;
            };
            if !RefInstrument::acceptable(taker.side, taker.price, best) {
                break;
            }
            let maker_id = inst.side(taker.side.opposite())[&best][0];
            let maker = self.orders[&maker_id];

            if maker.account == taker.account && taker.stp != StpMode::None {
                match taker.stp {
                    StpMode::ExpireTaker => {
                        self.expire_taker(taker, sink);
                        return;
                    }
                    StpMode::ExpireMaker => {
                        self.expire_maker(maker_id, sink);
                    }
                    StpMode::ExpireBoth => {
                        self.expire_maker(maker_id, sink);
                        self.expire_taker(taker, sink);
                        return;
                    }
                    StpMode::DecrementAndCancel => {
                        // On an iceberg, the shown part; if that is all gone, so is the hidden.
                        let d = maker.leaves.min(taker.remaining);
                        let maker_left = maker.leaves - d;
                        if maker_left == 0 {
                            self.unpair(maker_id);
                            self.remove_resting(maker_id);
                            sink.emit(Event::Cancelled {
                                account: maker.account,
                                cl_ord_id: maker.cl_ord_id,
                                order_id: maker.order_id,
                                instrument: maker.instrument,
                                cancelled_qty: d + maker.hidden,
                                leaves_qty: 0,
                                reason: CancelReason::SelfTradePrevention,
                            });
                            sink.emit(Event::BookDelete {
                                instrument: maker.instrument,
                                order_id: maker.order_id,
                            });
                        } else {
                            self.orders.get_mut(&maker_id).expect("live").leaves = maker_left;
                            sink.emit(Event::Cancelled {
                                account: maker.account,
                                cl_ord_id: maker.cl_ord_id,
                                order_id: maker.order_id,
                                instrument: maker.instrument,
                                cancelled_qty: d,
                                leaves_qty: maker_left + maker.hidden,
                                reason: CancelReason::SelfTradePrevention,
                            });
                            sink.emit(Event::BookReduce {
                                instrument: maker.instrument,
                                order_id: maker.order_id,
                                qty: d,
                            });
                        }
                        taker.remaining -= d;
                        sink.emit(Event::Cancelled {
                            account: taker.account,
                            cl_ord_id: taker.cl_ord_id,
                            order_id: taker.order_id,
                            instrument: taker.instrument,
                            cancelled_qty: d,
                            leaves_qty: taker.remaining,
                            reason: CancelReason::SelfTradePrevention,
                        });
                    }
                    StpMode::None => unreachable!("checked above"),
                }
                continue;
            }

            let qty = maker.leaves.min(taker.remaining);
            let maker_left = maker.leaves - qty;
            taker.remaining -= qty;
            let trade_id = self.next_trade_id;
            self.next_trade_id += 1;
            self.note_trade(taker.instrument, maker.price);
            sink.emit(Event::Fill {
                instrument: taker.instrument,
                trade_id,
                price: maker.price,
                qty,
                taker_side: taker.side,
                maker_account: maker.account,
                maker_cl_ord_id: maker.cl_ord_id,
                maker_order_id: maker.order_id,
                maker_leaves: maker_left + maker.hidden,
                taker_account: taker.account,
                taker_cl_ord_id: taker.cl_ord_id,
                taker_order_id: taker.order_id,
                taker_leaves: taker.remaining,
            });
            self.orders.get_mut(&maker_id).expect("live").leaves = maker_left;
            // An OCO leg's first fill cancels the other leg.
            if let Some(leg) = maker.oco {
                self.unpair(maker_id);
                self.remove_order(leg, CancelReason::Oco, sink);
            }
            if maker_left == 0 {
                if maker.hidden == 0 {
                    self.remove_resting(maker_id);
                } else {
                    // Iceberg refill: the next slice at the back of the level.
                    let mut m = self.remove_resting(maker_id);
                    m.leaves = m.display.min(m.hidden);
                    m.hidden -= m.leaves;
                    self.insert_resting(m);
                    sink.emit(Event::Refilled {
                        account: m.account,
                        cl_ord_id: m.cl_ord_id,
                        order_id: m.order_id,
                        instrument: m.instrument,
                        display_qty: m.leaves,
                        hidden_qty: m.hidden,
                    });
                    sink.emit(Event::BookAdd {
                        instrument: m.instrument,
                        order_id: m.order_id,
                        side: m.side,
                        price: m.price,
                        qty: m.leaves,
                    });
                }
            }
            if taker.oco.take().is_some() {
                // Unless the pair dissolved meanwhile (its leg left by STP).
                if let Some(leg) = self.orders[&taker.order_id].oco {
                    self.unpair(taker.order_id);
                    self.remove_order(leg, CancelReason::Oco, sink);
                }
            }
        }
    }

    /// A trade at `price`: the last price, and the range the next trigger pass looks at.
    fn note_trade(&mut self, instrument: InstrumentId, price: PriceTicks) {
        self.instruments.get_mut(&instrument).expect("known").last = price;
        self.traded = Some(match self.traded {
            Some((i, lo, hi)) if i == instrument => (i, lo.min(price), hi.max(price)),
            _ => (instrument, price, price),
        });
    }

    /// STP: the taker's remainder is cancelled.
    fn expire_taker<S: EventSink>(&mut self, taker: &mut Taker, sink: &mut S) {
        sink.emit(Event::Cancelled {
            account: taker.account,
            cl_ord_id: taker.cl_ord_id,
            order_id: taker.order_id,
            instrument: taker.instrument,
            cancelled_qty: taker.remaining,
            leaves_qty: 0,
            reason: CancelReason::SelfTradePrevention,
        });
        taker.remaining = 0;
    }

    /// STP: the resting maker is cancelled whole (an iceberg's hidden part too).
    fn expire_maker<S: EventSink>(&mut self, maker_id: OrderId, sink: &mut S) {
        self.unpair(maker_id);
        let maker = self.remove_resting(maker_id);
        sink.emit(Event::Cancelled {
            account: maker.account,
            cl_ord_id: maker.cl_ord_id,
            order_id: maker.order_id,
            instrument: maker.instrument,
            cancelled_qty: maker.total(),
            leaves_qty: 0,
            reason: CancelReason::SelfTradePrevention,
        });
        sink.emit(Event::BookDelete {
            instrument: maker.instrument,
            order_id: maker.order_id,
        });
    }

    fn cancel<S: EventSink>(&mut self, c: &Cancel, sink: &mut S) {
        let rej = |sink: &mut S, reason| reject(sink, c.account, c.cl_ord_id, reason);
        if c.account >= self.max_accounts {
            return rej(sink, RejectReason::UnknownAccount);
        }
        let Some(&order_id) = self.by_client.get(&(c.account, c.cl_ord_id)) else {
            return rej(sink, RejectReason::UnknownOrder);
        };
        let order = self.orders[&order_id];
        // The whole quantity: shown plus hidden.
        if c.remaining_qty >= order.total() {
            return rej(sink, RejectReason::InvalidModify);
        }
        if c.remaining_qty == 0 {
            // An OCO leg's other leg follows it.
            return self.remove_with_oco(order_id, CancelReason::UserRequested, sink);
        }
        let cancelled = order.total() - c.remaining_qty;
        sink.emit(Event::Cancelled {
            account: order.account,
            cl_ord_id: order.cl_ord_id,
            order_id,
            instrument: order.instrument,
            cancelled_qty: cancelled,
            leaves_qty: c.remaining_qty,
            reason: CancelReason::UserRequested,
        });
        let live = self.orders.get_mut(&order_id).expect("live");
        if live.pending {
            live.leaves = c.remaining_qty;
            return;
        }
        // From the hidden part first; the shown part keeps its priority.
        let shown_cut = order.leaves.saturating_sub(c.remaining_qty);
        live.hidden = c.remaining_qty.saturating_sub(order.leaves);
        live.leaves -= shown_cut;
        if shown_cut > 0 {
            sink.emit(Event::BookReduce {
                instrument: order.instrument,
                order_id,
                qty: shown_cut,
            });
        }
    }

    fn replace<S: EventSink>(&mut self, r: &Replace, sink: &mut S) {
        // The contract's "the one the command named" is read as the order it names: the original id.
        let rej = |sink: &mut S, reason| reject(sink, r.account, r.orig_cl_ord_id, reason);
        if r.account >= self.max_accounts {
            return rej(sink, RejectReason::UnknownAccount);
        }
        let Some(&order_id) = self.by_client.get(&(r.account, r.orig_cl_ord_id)) else {
            return rej(sink, RejectReason::UnknownOrder);
        };
        let order = self.orders[&order_id];
        let inst = &self.instruments[&order.instrument];
        if inst.halted {
            return rej(sink, RejectReason::InstrumentHalted);
        }
        // Pending trigger orders and icebergs are cancelled, not replaced.
        if order.pending || order.display > 0 {
            return rej(sink, RejectReason::InvalidModify);
        }
        if r.new_cl_ord_id != r.orig_cl_ord_id
            && self.by_client.contains_key(&(r.account, r.new_cl_ord_id))
        {
            return rej(sink, RejectReason::DuplicateClientOrderId);
        }
        if let Err(reason) = inst.check_price_qty(r.price, r.qty) {
            return rej(sink, reason);
        }
        if r.price == order.price && r.qty == order.leaves && r.new_cl_ord_id == r.orig_cl_ord_id {
            return rej(sink, RejectReason::InvalidModify);
        }
        let crosses = inst.would_cross(order.side, r.price);
        if order.post_only && crosses {
            return rej(sink, RejectReason::PostOnlyWouldTake);
        }

        let replaced = |priority_kept| Event::Replaced {
            account: r.account,
            orig_cl_ord_id: r.orig_cl_ord_id,
            new_cl_ord_id: r.new_cl_ord_id,
            order_id,
            instrument: order.instrument,
            price: r.price,
            qty: r.qty,
            priority_kept,
        };

        if r.price == order.price && r.qty <= order.leaves {
            // Keeps its place: only the client id and (maybe) the quantity change.
            self.by_client.remove(&(r.account, r.orig_cl_ord_id));
            self.by_client
                .insert((r.account, r.new_cl_ord_id), order_id);
            let live = self.orders.get_mut(&order_id).expect("live");
            live.cl_ord_id = r.new_cl_ord_id;
            live.leaves = r.qty;
            sink.emit(replaced(true));
            if r.qty < order.leaves {
                sink.emit(Event::BookReduce {
                    instrument: order.instrument,
                    order_id,
                    qty: order.leaves - r.qty,
                });
            }
            return;
        }

        let mut moved = self.remove_resting(order_id);
        moved.cl_ord_id = r.new_cl_ord_id;
        moved.price = r.price;
        moved.leaves = r.qty;
        if !crosses {
            self.insert_resting(moved);
            sink.emit(replaced(false));
            sink.emit(Event::BookReplace {
                instrument: order.instrument,
                order_id,
                price: r.price,
                qty: r.qty,
            });
            return;
        }

        sink.emit(replaced(false));
        sink.emit(Event::BookDelete {
            instrument: order.instrument,
            order_id,
        });
        // It trades as a taker, still live and indexed by its (new) client id.
        self.orders.insert(order_id, moved);
        self.by_client
            .insert((moved.account, moved.cl_ord_id), order_id);
        let mut taker = Taker {
            order_id,
            account: moved.account,
            cl_ord_id: moved.cl_ord_id,
            instrument: moved.instrument,
            side: moved.side,
            price: moved.price,
            remaining: moved.leaves,
            stp: moved.stp,
            oco: moved.oco,
        };
        self.enter(&mut taker, sink);
    }

    fn mass_cancel<S: EventSink>(&mut self, m: &MassCancel, sink: &mut S) {
        if m.account >= self.max_accounts {
            return reject(sink, m.account, 0, RejectReason::UnknownAccount);
        }
        let victims: Vec<OrderId> = self
            .orders
            .values()
            .filter(|o| o.account == m.account && m.instrument.is_none_or(|i| i == o.instrument))
            .map(|o| o.order_id)
            .collect();
        for order_id in victims {
            // An OCO pair just dissolves (both legs match the same filter).
            self.remove_order(order_id, CancelReason::MassCancel, sink);
        }
    }

    /// The canonical state hash (see "State hash" in `docs/ARCHITECTURE.md`).
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.word(self.next_order_id);
        h.word(self.next_trade_id);
        for (id, inst) in &self.instruments {
            h.word(u64::from(*id));
            h.word(u64::from(inst.halted));
            h.signed(inst.ref_price);
            h.word(u64::from(inst.band_bps));
            for side in [Side::Buy, Side::Sell] {
                let ids: Vec<OrderId> = inst.ids_in_priority(side).collect();
                h.word(ids.len() as u64);
                for order_id in ids {
                    self.hash_order(&mut h, &self.orders[&order_id]);
                }
            }
            h.signed(inst.last);
            h.signed(inst.mark);
            // Pending triggers: each list (last rises, last falls, mark rises, mark falls) in
            // firing order.
            let mut pending: Vec<(u8, i64, OrderId)> = self
                .orders
                .values()
                .filter(|o| o.pending && o.instrument == *id)
                .map(|o| {
                    let t = o.trigger.expect("trigger");
                    let list = (t.source as u8 - 1) * 2 + (t.direction as u8 - 1);
                    let key = match t.direction {
                        TriggerDirection::RisesTo => t.price,
                        TriggerDirection::FallsTo => -t.price,
                    };
                    (list, key, o.order_id)
                })
                .collect();
            pending.sort();
            h.word(pending.len() as u64);
            for (_, _, order_id) in pending {
                let o = &self.orders[&order_id];
                let t = o.trigger.expect("trigger");
                self.hash_order(&mut h, o);
                h.signed(t.price);
                h.word(t.source as u64);
                h.word(t.direction as u64);
                h.word(o.kind as u64);
                h.word(o.tif as u64);
                // Reduce-only as given; close-position needs risk, which the reference lacks.
                h.word(u64::from(o.reduce_only));
                h.word(0);
            }
        }
        h.finish()
    }

    fn hash_order(&self, h: &mut StateHasher, o: &RefOrder) {
        h.word(o.order_id);
        h.word(u64::from(o.account));
        h.word(o.cl_ord_id);
        h.word(o.side as u8 as u64);
        h.signed(o.price);
        h.word(o.leaves);
        h.word(o.stp as u8 as u64);
        h.word(u64::from(o.post_only));
        // The engine's flag bits: pending 1, GTD 2, iceberg 4, OCO 8.
        let flags = u64::from(o.pending)
            | u64::from(o.expire_ts_ns != 0) << 1
            | u64::from(o.display != 0) << 2
            | u64::from(o.oco.is_some()) << 3;
        if flags != 0 {
            h.word(flags);
            h.word(o.hidden);
            h.word(o.display);
            h.word(o.expire_ts_ns);
            h.word(o.oco.unwrap_or(0));
        }
    }

    /// The best bid: price and total quantity of the level.
    pub fn best_bid(&self, instrument: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        self.depth(instrument, Side::Buy, 1)
            .first()
            .map(|l| (l.price, l.qty))
    }

    /// The best ask: price and total quantity of the level.
    pub fn best_ask(&self, instrument: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        self.depth(instrument, Side::Sell, 1)
            .first()
            .map(|l| (l.price, l.qty))
    }

    /// Up to `levels` price levels of one side, best first (empty for an unknown instrument).
    pub fn depth(&self, instrument: InstrumentId, side: Side, levels: usize) -> Vec<Level> {
        let Some(inst) = self.instruments.get(&instrument) else {
            return Vec::new();
        };
        inst.levels_best_first(side)
            .take(levels)
            .map(|(price, queue)| Level {
                price,
                qty: queue.iter().map(|id| self.orders[id].leaves).sum(),
                orders: queue.len() as u32,
            })
            .collect()
    }

    /// Every resting order of an instrument: bids best first in time priority, then asks.
    pub fn l3(&self, instrument: InstrumentId) -> Vec<L3Order> {
        let Some(inst) = self.instruments.get(&instrument) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for side in [Side::Buy, Side::Sell] {
            for id in inst.ids_in_priority(side) {
                let o = &self.orders[&id];
                out.push(L3Order {
                    order_id: o.order_id,
                    account: o.account,
                    cl_ord_id: o.cl_ord_id,
                    side: o.side,
                    price: o.price,
                    leaves: o.leaves,
                });
            }
        }
        out
    }

    /// The number of live (resting) orders.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }

    /// Checks the book's own consistency (indexes agree, levels non-empty, never crossed).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for (id, inst) in &self.instruments {
            for side in [Side::Buy, Side::Sell] {
                for (price, queue) in inst.side(side) {
                    if queue.is_empty() {
                        return Err(format!("instrument {id}: empty level {price}"));
                    }
                    for order_id in queue {
                        let Some(o) = self.orders.get(order_id) else {
                            return Err(format!("order {order_id} in a level but not live"));
                        };
                        if o.price != *price || o.side != side || o.instrument != *id {
                            return Err(format!("order {order_id} in the wrong level"));
                        }
                        if o.leaves == 0 {
                            return Err(format!("order {order_id} rests with 0 leaves"));
                        }
                        if self.by_client.get(&(o.account, o.cl_ord_id)) != Some(order_id) {
                            return Err(format!("order {order_id} missing from the client index"));
                        }
                        seen += 1;
                    }
                }
            }
            if let (Some(bid), Some(ask)) =
                (inst.best_price(Side::Buy), inst.best_price(Side::Sell))
            {
                if bid >= ask {
                    return Err(format!("instrument {id}: crossed book {bid} >= {ask}"));
                }
            }
        }
        for o in self.orders.values() {
            if o.pending {
                if self.by_client.get(&(o.account, o.cl_ord_id)) != Some(&o.order_id) {
                    return Err(format!(
                        "pending {} missing from the client index",
                        o.order_id
                    ));
                }
                seen += 1;
            }
            if o.firing {
                return Err(format!("order {} left firing", o.order_id));
            }
            if let Some(leg) = o.oco {
                if self.orders.get(&leg).and_then(|l| l.oco) != Some(o.order_id) {
                    return Err(format!(
                        "order {}: OCO leg {leg} does not point back",
                        o.order_id
                    ));
                }
            }
            if o.display > 0 && o.leaves > o.display {
                return Err(format!(
                    "iceberg {} shows more than its display",
                    o.order_id
                ));
            }
        }
        if seen != self.orders.len() || seen != self.by_client.len() {
            return Err(format!(
                "{seen} orders in levels, {} live, {} in the client index",
                self.orders.len(),
                self.by_client.len()
            ));
        }
        if self.orders.len() > self.max_orders as usize {
            return Err("more live orders than max_orders".into());
        }
        Ok(())
    }
}

fn reject<S: EventSink>(
    sink: &mut S,
    account: AccountId,
    cl_ord_id: ClientOrderId,
    reason: RejectReason,
) {
    sink.emit(Event::Rejected {
        account,
        cl_ord_id,
        reason,
    });
}
