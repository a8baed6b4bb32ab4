//! Snapshots: the engine's whole state as plain data ([`EngineSnapshot`]), and a restore that
//! validates it and rebuilds an engine whose state hash and future behaviour equal the
//! original's.
//!
//! What is exported is exactly what behaviour depends on: the id counters; per instrument its
//! trading status, reference price and band and its resting orders in priority order (bids best
//! first with time priority within a level, then asks the same way), each with every field the
//! engine keeps (resting orders are always GTC limit orders, so kind and time in force are not
//! stored); and, with risk on, the risk state ([`RiskSnapshot`]). Slab slots, the client-id
//! index layout and free-list order are not exported: nothing observable depends on them (mass
//! cancel walks an account's orders in ascending order id, which restore rebuilds).
//!
//! `snapshot` and `restore` allocate; they run off the hot path (the sequencer takes snapshots
//! between commands).

use std::collections::HashSet;
use std::fmt;

use crate::config::{ConfigError, EngineConfig};
use crate::engine::Engine;
use crate::ext::{trigger_key, trigger_list, Ext, EXT_GTD, EXT_ICEBERG, EXT_OCO, EXT_PENDING};
use crate::instrument::InstrumentKind;
use crate::ladder::Ladder;
use crate::risk::state::Risk;
use crate::risk::{RiskConfig, RiskConfigError, RiskRestoreError, RiskSnapshot};
use crate::slab::{Order, NIL};
use crate::store::OrderStore;
use crate::triggers::refresh_trigger_cache;
use crate::types::*;

/// The engine's state at one point of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub next_order_id: OrderId,
    pub next_trade_id: TradeId,
    /// Every configured instrument, in ascending id.
    pub instruments: Vec<InstrumentSnapshot>,
    /// The risk state; `None` for an engine with risk off ([`Engine::new`]).
    pub risk: Option<RiskSnapshot>,
}

/// One instrument's trading state and book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentSnapshot {
    pub id: InstrumentId,
    pub halted: bool,
    pub ref_price: PriceTicks,
    pub band_bps: u32,
    /// Bids best price first (time priority within a level), then asks the same way.
    pub orders: Vec<OrderSnapshot>,
    /// The last trade price and the mark price the triggers watch (0: none yet).
    pub last_price: PriceTicks,
    pub mark_price: PriceTicks,
    /// Pending trigger orders: each trigger list (last rises, last falls, mark rises, mark
    /// falls) first to fire first.
    pub triggers: Vec<TriggerOrderSnapshot>,
}

/// A pending trigger order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TriggerOrderSnapshot {
    /// Its fields as a resting order's (`price` is its limit or protection price).
    pub order: OrderSnapshot,
    pub trigger: Trigger,
    pub kind: OrderKind,
    pub tif: TimeInForce,
    pub close_position: bool,
}

/// What an order of the crypto order types keeps beyond a plain order's fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OrderExtSnapshot {
    /// GTD expiry (0: none).
    pub expire_ts_ns: u64,
    /// Iceberg slice and hidden rest (0: not an iceberg).
    pub display_qty: QtyLots,
    pub hidden_qty: QtyLots,
    /// The other OCO leg's order id (0: none).
    pub oco_order_id: OrderId,
}

/// One resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderSnapshot {
    pub order_id: OrderId,
    pub account: AccountId,
    pub cl_ord_id: ClientOrderId,
    pub side: Side,
    pub price: PriceTicks,
    pub leaves: QtyLots,
    pub stp: StpMode,
    pub post_only: bool,
    pub reduce_only: bool,
    /// With risk on: the amount the order holds per lot of leaves (in its hold asset, see
    /// `docs/ARCHITECTURE.md`, "Accounts and risk"); 0 with risk off.
    pub hold_per_lot: u64,
    /// The order types' state (`None`: a plain order).
    pub ext: Option<OrderExtSnapshot>,
}

/// Why an order of a snapshot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderFault {
    /// `account >= max_accounts`.
    UnknownAccount,
    /// `order_id == 0` or `order_id >= next_order_id`.
    IdNotIssued,
    /// Price not positive or outside the instrument's `[min_price, max_price]`.
    InvalidPrice,
    /// Leaves 0 or above the instrument's `max_qty`.
    InvalidQuantity,
    /// A bid after an ask, or prices not in priority order.
    OutOfPriorityOrder,
    /// Order-type state that cannot be: an OCO leg that is not live, on another instrument or
    /// side, or not pointing back; an iceberg showing more than its slice; a trigger price
    /// out of range; a mark trigger on a spot instrument; an expiry on a non-GTD order.
    InvalidOrderType,
}

/// Why a snapshot could not be restored. Restore never panics on a bad snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The configuration itself is invalid.
    Config(ConfigError),
    /// `next_order_id` or `next_trade_id` is 0.
    Counters {
        next_order_id: OrderId,
        next_trade_id: TradeId,
    },
    /// The snapshot names an instrument the configuration lacks.
    UnknownInstrument {
        id: InstrumentId,
    },
    /// The snapshot lists an instrument twice.
    DuplicateInstrument {
        id: InstrumentId,
    },
    /// The configuration has an instrument the snapshot lacks.
    MissingInstrument {
        id: InstrumentId,
    },
    /// More resting orders than `max_orders`.
    TooManyOrders {
        orders: usize,
        max_orders: u32,
    },
    InvalidOrder {
        order_id: OrderId,
        fault: OrderFault,
    },
    DuplicateOrderId {
        order_id: OrderId,
    },
    DuplicateClientOrderId {
        account: AccountId,
        cl_ord_id: ClientOrderId,
    },
    /// Best bid at or above best ask.
    Crossed {
        instrument: InstrumentId,
    },
    /// The risk part: present with risk off, absent with risk on, or invalid.
    Risk(RiskRestoreError),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Config(e) => write!(f, "invalid configuration: {e}"),
            RestoreError::Risk(e) => write!(f, "invalid risk state: {e:?}"),
            other => write!(f, "invalid snapshot: {other:?}"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<ConfigError> for RestoreError {
    fn from(e: ConfigError) -> Self {
        RestoreError::Config(e)
    }
}

/// An engine built and never used ([`Engine::new`]'s or [`Engine::with_risk`]'s), kept only to
/// restore a snapshot into: [`FreshEngine::restore`] is [`Engine::restore`] (or
/// [`Engine::restore_with_risk`]) after the build. Built ahead, on another thread, a restart
/// allocates and touches the engine's memory (most of a restore's time with `max_orders` in the
/// millions) while it reads the snapshot.
#[derive(Debug)]
pub struct FreshEngine(Engine);

impl FreshEngine {
    /// [`Engine::new`].
    pub fn new(cfg: EngineConfig) -> Result<FreshEngine, ConfigError> {
        Engine::new(cfg).map(FreshEngine)
    }

    /// [`Engine::with_risk`].
    pub fn with_risk(cfg: EngineConfig, risk: RiskConfig) -> Result<FreshEngine, RiskConfigError> {
        Engine::with_risk(cfg, risk).map(FreshEngine)
    }

    /// The snapshot restored into this engine, as [`Engine::restore`] (risk off) or
    /// [`Engine::restore_with_risk`] (risk on) would from the same configuration.
    pub fn restore(self, snap: &EngineSnapshot) -> Result<Engine, RestoreError> {
        match (self.0.risk.on(), snap.risk.is_some()) {
            (false, true) => Err(RestoreError::Risk(RiskRestoreError::RiskStateWithoutRisk)),
            (true, false) => Err(RestoreError::Risk(RiskRestoreError::MissingRiskState)),
            _ => self.0.restore_into(snap),
        }
    }
}

impl Engine {
    /// The whole state as plain data (allocates; not for the hot path).
    pub fn snapshot(&self) -> EngineSnapshot {
        let orders = &self.store.slab.orders;
        let instruments = self
            .books
            .iter()
            .map(|book| {
                let mut list = Vec::new();
                for ladder in [&book.bids, &book.asks] {
                    push_side(&mut list, ladder, orders, &self.store, &self.risk);
                }
                let mut triggers = Vec::new();
                for root in book.trg_root {
                    for slot in crate::ext::in_order::<true>(&self.store.ext, root) {
                        let e = &self.store.ext[slot as usize];
                        triggers.push(TriggerOrderSnapshot {
                            order: order_snapshot(&self.store, slot, &self.risk),
                            trigger: Trigger {
                                price: e.trigger_price,
                                source: e.source,
                                direction: e.direction,
                            },
                            kind: e.kind,
                            tif: e.tif,
                            close_position: e.close_position,
                        });
                    }
                }
                InstrumentSnapshot {
                    id: book.id(),
                    halted: book.halted,
                    ref_price: book.ref_price,
                    band_bps: book.band_bps,
                    orders: list,
                    last_price: book.last,
                    mark_price: book.mark,
                    triggers,
                }
            })
            .collect();
        EngineSnapshot {
            next_order_id: self.next_order_id,
            next_trade_id: self.next_trade_id,
            instruments,
            risk: self.risk_snapshot(),
        }
    }

    /// Rebuilds an engine from `cfg` and a snapshot taken from an engine with
    /// the same configuration. The result has the same `state_hash()` and behaves identically.
    pub fn restore(cfg: EngineConfig, snap: &EngineSnapshot) -> Result<Engine, RestoreError> {
        if snap.risk.is_some() {
            return Err(RestoreError::Risk(RiskRestoreError::RiskStateWithoutRisk));
        }
        let engine = Engine::new(cfg)?;
        engine.restore_into(snap)
    }

    /// [`Engine::restore`] for an engine with risk on ([`Engine::with_risk`]).
    pub fn restore_with_risk(
        cfg: EngineConfig,
        risk: RiskConfig,
        snap: &EngineSnapshot,
    ) -> Result<Engine, RestoreError> {
        let engine = Engine::with_risk(cfg, risk).map_err(|e| match e {
            RiskConfigError::Engine(c) => RestoreError::Config(c),
            other => RestoreError::Risk(RiskRestoreError::Config(other)),
        })?;
        if snap.risk.is_none() {
            return Err(RestoreError::Risk(RiskRestoreError::MissingRiskState));
        }
        engine.restore_into(snap)
    }

    fn restore_into(mut self, snap: &EngineSnapshot) -> Result<Engine, RestoreError> {
        debug_assert_eq!(self.store.slab.used, 0, "restored into a used engine");
        if snap.next_order_id == 0 || snap.next_trade_id == 0 {
            return Err(RestoreError::Counters {
                next_order_id: snap.next_order_id,
                next_trade_id: snap.next_trade_id,
            });
        }
        self.next_order_id = snap.next_order_id;
        self.next_trade_id = snap.next_trade_id;
        let total: usize = snap
            .instruments
            .iter()
            .map(|i| i.orders.len() + i.triggers.len())
            .sum();
        let max_orders = self.store.slab.capacity();
        if total > max_orders as usize {
            return Err(RestoreError::TooManyOrders {
                orders: total,
                max_orders,
            });
        }
        let mut seen_books = vec![false; self.books.len()];
        let mut ids = HashSet::with_capacity(total);
        let mut keys = HashSet::with_capacity(total);
        // (order_id, slot) of every order, registered in ascending order id at the end so that
        // account lists come out sorted.
        let mut placed = Vec::with_capacity(total);
        // OCO links (order id, leg's order id, slot) and GTD orders (slot, expiry).
        let mut links = Vec::new();
        let mut expiring = Vec::new();
        for inst in &snap.instruments {
            let bi = self
                .book_index(inst.id)
                .ok_or(RestoreError::UnknownInstrument { id: inst.id })?;
            if std::mem::replace(&mut seen_books[bi], true) {
                return Err(RestoreError::DuplicateInstrument { id: inst.id });
            }
            let book = &mut self.books[bi];
            book.halted = inst.halted;
            book.ref_price = inst.ref_price;
            book.band_bps = inst.band_bps;
            book.last = inst.last_price.max(0);
            book.mark = inst.mark_price.max(0);
            let mut last: Option<(Side, PriceTicks)> = None;
            let resting = inst.orders.iter().map(|o| (o, None));
            let pending = inst.triggers.iter().map(|t| (&t.order, Some(t)));
            for (o, trig) in resting.chain(pending) {
                let book = &mut self.books[bi];
                let fault = |fault| RestoreError::InvalidOrder {
                    order_id: o.order_id,
                    fault,
                };
                if o.account >= self.max_accounts {
                    return Err(fault(OrderFault::UnknownAccount));
                }
                if o.order_id == 0 || o.order_id >= snap.next_order_id {
                    return Err(fault(OrderFault::IdNotIssued));
                }
                if o.price <= 0 || o.price < book.spec.min_price || o.price > book.spec.max_price {
                    return Err(fault(OrderFault::InvalidPrice));
                }
                if o.leaves == 0 || o.leaves > book.spec.max_qty {
                    return Err(fault(OrderFault::InvalidQuantity));
                }
                if !self.risk.on() && o.hold_per_lot != 0 {
                    return Err(RestoreError::Risk(RiskRestoreError::HoldWithoutRisk {
                        order_id: o.order_id,
                    }));
                }
                if trig.is_none() {
                    let in_order = match last {
                        None => true,
                        Some((Side::Buy, p)) => o.side == Side::Sell || o.price <= p,
                        Some((Side::Sell, p)) => o.side == Side::Sell && o.price >= p,
                    };
                    if !in_order {
                        return Err(fault(OrderFault::OutOfPriorityOrder));
                    }
                    last = Some((o.side, o.price));
                }
                if !ids.insert(o.order_id) {
                    return Err(RestoreError::DuplicateOrderId {
                        order_id: o.order_id,
                    });
                }
                if !keys.insert((o.account, o.cl_ord_id)) {
                    return Err(RestoreError::DuplicateClientOrderId {
                        account: o.account,
                        cl_ord_id: o.cl_ord_id,
                    });
                }
                let Some(slot) = self.store.alloc(Order {
                    leaves: o.leaves,
                    price: o.price,
                    order_id: o.order_id,
                    cl_ord_id: o.cl_ord_id,
                    prev: NIL,
                    next: NIL,
                    acct_prev: NIL,
                    acct_next: NIL,
                    account: o.account,
                    book: bi as u32,
                    side: o.side,
                    stp: o.stp,
                    post_only: o.post_only,
                    reduce_only: o.reduce_only,
                    hold_custom: false,
                    ext: 0,
                }) else {
                    return Err(RestoreError::TooManyOrders {
                        orders: total,
                        max_orders,
                    });
                };
                let x = o.ext.unwrap_or_default();
                let mut e = Ext::EMPTY;
                e.order_id = o.order_id;
                e.exp_key = x.expire_ts_ns;
                let mut flags = 0;
                if let Some(t) = trig {
                    let tr = t.trigger;
                    let perp = matches!(book.spec.kind, InstrumentKind::LinearPerp { .. });
                    if tr.price <= 0
                        || tr.price < book.spec.min_price
                        || tr.price > book.spec.max_price
                        || (tr.source == TriggerSource::Mark && !perp)
                        || x.display_qty != 0
                        || (t.tif == TimeInForce::Gtd) != (x.expire_ts_ns != 0)
                    {
                        return Err(fault(OrderFault::InvalidOrderType));
                    }
                    e.trigger_price = tr.price;
                    e.source = tr.source;
                    e.direction = tr.direction;
                    e.trg_key = trigger_key(tr.direction, tr.price);
                    e.kind = t.kind;
                    e.tif = t.tif;
                    e.close_position = t.close_position;
                    flags |= EXT_PENDING;
                } else if x.display_qty != 0 {
                    if o.leaves > x.display_qty {
                        return Err(fault(OrderFault::InvalidOrderType));
                    }
                    e.display = x.display_qty;
                    e.hidden = x.hidden_qty;
                    flags |= EXT_ICEBERG;
                }
                if x.expire_ts_ns != 0 {
                    e.tif = TimeInForce::Gtd;
                }
                self.store.ext[slot as usize] = e;
                self.store.slab.orders[slot as usize].ext = flags;
                if x.oco_order_id != 0 {
                    links.push((o.order_id, x.oco_order_id, slot));
                }
                if let Some(t) = trig {
                    let list = trigger_list(t.trigger.source, t.trigger.direction);
                    crate::ext::insert::<true>(&mut self.store.ext, &mut book.trg_root[list], slot);
                    if self.risk.on() {
                        self.risk.set_hold(slot, 0, true);
                        self.store.slab.orders[slot as usize].hold_custom = true;
                    }
                } else {
                    let idx = book.index_of(o.price);
                    book.side_mut(o.side)
                        .push_back(&mut self.store.slab.orders, slot, idx);
                    if self.risk.on() {
                        let order = self.store.slab.orders[slot as usize];
                        let custom = self.risk.restore_hold(&order, slot, o.hold_per_lot);
                        self.store.slab.orders[slot as usize].hold_custom = custom;
                    }
                }
                if x.expire_ts_ns != 0 {
                    expiring.push((slot, x.expire_ts_ns));
                }
                placed.push((o.order_id, slot));
            }
            let book = &mut self.books[bi];
            refresh_trigger_cache(book, &mut self.store);
            if book.bids.best != NIL && book.asks.best != NIL && book.bids.best >= book.asks.best {
                return Err(RestoreError::Crossed {
                    instrument: inst.id,
                });
            }
        }
        if let Some(bi) = seen_books.iter().position(|seen| !seen) {
            return Err(RestoreError::MissingInstrument {
                id: self.books[bi].id(),
            });
        }
        placed.sort_unstable();
        for &(_, slot) in &placed {
            self.store.register(slot);
        }
        for &(slot, expire_ts_ns) in &expiring {
            self.store.add_expiry(slot, expire_ts_ns);
        }
        for &(order_id, leg_id, slot) in &links {
            let bad = RestoreError::InvalidOrder {
                order_id,
                fault: OrderFault::InvalidOrderType,
            };
            let leg = placed
                .binary_search_by_key(&leg_id, |p| p.0)
                .map_err(|_| bad.clone())?;
            let leg_slot = placed[leg].1;
            let (a, b) = (self.store.order(slot), self.store.order(leg_slot));
            let points_back = links.iter().any(|l| l.0 == leg_id && l.1 == order_id);
            if !points_back || a.book != b.book || a.side != b.side || a.account != b.account {
                return Err(bad);
            }
            self.store.ext[slot as usize].oco = leg_slot;
            self.store.order_mut(slot).ext |= EXT_OCO;
        }
        if let Some(risk) = &snap.risk {
            self.restore_risk(risk).map_err(RestoreError::Risk)?;
        }
        Ok(self)
    }
}

fn order_snapshot(store: &OrderStore, slot: u32, risk: &Risk) -> OrderSnapshot {
    let o = &store.slab.orders[slot as usize];
    let e = &store.ext[slot as usize];
    let ext = (o.ext != 0).then(|| OrderExtSnapshot {
        expire_ts_ns: if o.ext & EXT_GTD != 0 { e.exp_key } else { 0 },
        display_qty: if o.ext & EXT_ICEBERG != 0 {
            e.display
        } else {
            0
        },
        hidden_qty: if o.ext & EXT_ICEBERG != 0 {
            e.hidden
        } else {
            0
        },
        oco_order_id: if o.ext & EXT_OCO != 0 {
            store.slab.orders[e.oco as usize].order_id
        } else {
            0
        },
    });
    OrderSnapshot {
        order_id: o.order_id,
        account: o.account,
        cl_ord_id: o.cl_ord_id,
        side: o.side,
        price: o.price,
        leaves: o.leaves,
        stp: o.stp,
        post_only: o.post_only,
        reduce_only: o.reduce_only,
        hold_per_lot: if risk.on() { risk.hold_of(o, slot) } else { 0 },
        ext,
    }
}

fn push_side(
    out: &mut Vec<OrderSnapshot>,
    ladder: &Ladder,
    orders: &[Order],
    store: &OrderStore,
    risk: &Risk,
) {
    for idx in ladder.iter_levels() {
        for slot in ladder.iter_level_orders(orders, idx) {
            out.push(order_snapshot(store, slot, risk));
        }
    }
}
