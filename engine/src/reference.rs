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

use std::collections::{BTreeMap, VecDeque};

use crate::command::{Cancel, Command, MassCancel, NewOrder, Replace};
use crate::config::{ConfigError, EngineConfig};
use crate::event::{CancelReason, Event, EventSink, RejectReason};
use crate::hash::StateHasher;
use crate::instrument::InstrumentSpec;
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
        })
    }

    /// Applies one command, emitting its events to `sink` in order.
    pub fn process<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        let _ = ts_ns;
        match cmd {
            Command::NewOrder(o) => self.new_order(o, sink),
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
        }
    }

    fn set_halted<S: EventSink>(&mut self, instrument: InstrumentId, halted: bool, sink: &mut S) {
        match self.instruments.get_mut(&instrument) {
            None => reject(sink, 0, 0, RejectReason::UnknownInstrument),
            Some(inst) => {
                inst.halted = halted;
                sink.emit(Event::TradingStatus { instrument, halted });
            }
        }
    }

    fn new_order<S: EventSink>(&mut self, o: &NewOrder, sink: &mut S) {
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
        if o.kind == OrderKind::Market && (o.tif == TimeInForce::Gtc || o.post_only) {
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
        // 7. post-only
        if o.post_only && inst.would_cross(o.side, o.price) {
            return rej(sink, RejectReason::PostOnlyWouldTake);
        }
        // 8. a free slot for the order being applied
        if self.orders.len() >= self.max_orders as usize {
            return rej(sink, RejectReason::BookFull);
        }
        // 9. fill-or-kill: walk the opposite side in priority order
        if o.tif == TimeInForce::Fok {
            let mut found: u128 = 0;
            for id in inst.ids_in_priority(o.side.opposite()) {
                let maker = &self.orders[&id];
                if !RefInstrument::acceptable(o.side, o.price, maker.price) {
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
        let mut taker = Taker {
            order_id,
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            instrument: o.instrument,
            side: o.side,
            price: o.price,
            remaining: o.qty,
            stp: o.stp,
        };
        self.match_taker(&mut taker, sink);
        if taker.remaining == 0 {
            return;
        }
        let reason = if o.kind == OrderKind::Market {
            Some(CancelReason::MarketProtection)
        } else if o.tif != TimeInForce::Gtc {
            Some(CancelReason::ImmediateOrCancel)
        } else {
            None
        };
        match reason {
            Some(reason) => sink.emit(Event::Cancelled {
                account: taker.account,
                cl_ord_id: taker.cl_ord_id,
                order_id,
                instrument: taker.instrument,
                cancelled_qty: taker.remaining,
                leaves_qty: 0,
                reason,
            }),
            None => self.rest(&taker, o.post_only, sink),
        }
    }

    /// Puts the taker's remainder at the back of its level and says `BookAdd`.
    fn rest<S: EventSink>(&mut self, taker: &Taker, post_only: bool, sink: &mut S) {
        let order = RefOrder {
            order_id: taker.order_id,
            account: taker.account,
            cl_ord_id: taker.cl_ord_id,
            instrument: taker.instrument,
            side: taker.side,
            price: taker.price,
            leaves: taker.remaining,
            stp: taker.stp,
            post_only,
        };
        self.insert_resting(order);
        sink.emit(Event::BookAdd {
            instrument: order.instrument,
            order_id: order.order_id,
            side: order.side,
            price: order.price,
            qty: order.leaves,
        });
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
                        let d = maker.leaves.min(taker.remaining);
                        let maker_left = maker.leaves - d;
                        sink.emit(Event::Cancelled {
                            account: maker.account,
                            cl_ord_id: maker.cl_ord_id,
                            order_id: maker.order_id,
                            instrument: maker.instrument,
                            cancelled_qty: d,
                            leaves_qty: maker_left,
                            reason: CancelReason::SelfTradePrevention,
                        });
                        if maker_left == 0 {
                            self.remove_resting(maker_id);
                            sink.emit(Event::BookDelete {
                                instrument: maker.instrument,
                                order_id: maker.order_id,
                            });
                        } else {
                            self.orders.get_mut(&maker_id).expect("live").leaves = maker_left;
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
            if maker_left == 0 {
                self.remove_resting(maker_id);
            } else {
                self.orders.get_mut(&maker_id).expect("live").leaves = maker_left;
            }
            sink.emit(Event::Fill {
                instrument: taker.instrument,
                trade_id,
                price: maker.price,
                qty,
                taker_side: taker.side,
                maker_account: maker.account,
                maker_cl_ord_id: maker.cl_ord_id,
                maker_order_id: maker.order_id,
                maker_leaves: maker_left,
                taker_account: taker.account,
                taker_cl_ord_id: taker.cl_ord_id,
                taker_order_id: taker.order_id,
                taker_leaves: taker.remaining,
            });
        }
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

    /// STP: the resting maker is cancelled whole.
    fn expire_maker<S: EventSink>(&mut self, maker_id: OrderId, sink: &mut S) {
        let maker = self.remove_resting(maker_id);
        sink.emit(Event::Cancelled {
            account: maker.account,
            cl_ord_id: maker.cl_ord_id,
            order_id: maker.order_id,
            instrument: maker.instrument,
            cancelled_qty: maker.leaves,
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
        if c.remaining_qty >= order.leaves {
            return rej(sink, RejectReason::InvalidModify);
        }
        if c.remaining_qty == 0 {
            self.remove_resting(order_id);
            sink.emit(Event::Cancelled {
                account: order.account,
                cl_ord_id: order.cl_ord_id,
                order_id,
                instrument: order.instrument,
                cancelled_qty: order.leaves,
                leaves_qty: 0,
                reason: CancelReason::UserRequested,
            });
            sink.emit(Event::BookDelete {
                instrument: order.instrument,
                order_id,
            });
        } else {
            let cancelled = order.leaves - c.remaining_qty;
            self.orders.get_mut(&order_id).expect("live").leaves = c.remaining_qty;
            sink.emit(Event::Cancelled {
                account: order.account,
                cl_ord_id: order.cl_ord_id,
                order_id,
                instrument: order.instrument,
                cancelled_qty: cancelled,
                leaves_qty: c.remaining_qty,
                reason: CancelReason::UserRequested,
            });
            sink.emit(Event::BookReduce {
                instrument: order.instrument,
                order_id,
                qty: cancelled,
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
        let mut taker = Taker {
            order_id,
            account: moved.account,
            cl_ord_id: moved.cl_ord_id,
            instrument: moved.instrument,
            side: moved.side,
            price: moved.price,
            remaining: moved.leaves,
            stp: moved.stp,
        };
        self.match_taker(&mut taker, sink);
        if taker.remaining > 0 {
            self.rest(&taker, moved.post_only, sink);
        }
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
            let order = self.remove_resting(order_id);
            sink.emit(Event::Cancelled {
                account: order.account,
                cl_ord_id: order.cl_ord_id,
                order_id,
                instrument: order.instrument,
                cancelled_qty: order.leaves,
                leaves_qty: 0,
                reason: CancelReason::MassCancel,
            });
            sink.emit(Event::BookDelete {
                instrument: order.instrument,
                order_id,
            });
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
                    let o = &self.orders[&order_id];
                    h.word(o.order_id);
                    h.word(u64::from(o.account));
                    h.word(o.cl_ord_id);
                    h.word(o.side as u8 as u64);
                    h.signed(o.price);
                    h.word(o.leaves);
                    h.word(o.stp as u8 as u64);
                    h.word(u64::from(o.post_only));
                }
            }
        }
        h.finish()
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
