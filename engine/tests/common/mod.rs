//! Shared by the differential, invariant and scenario tests: the instruments under test, the
//! command strategies, a trait over both books, and a market-data replayer that checks every
//! event stream against the properties the contract promises.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};

pub mod book;
pub mod random;
pub mod risk;

use proptest::prelude::*;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;
use tpx_engine::{EngineInput, RiskCommand};

/// The instruments of the random tests. Ids are sparse (2 and 4 are unknown) so unknown
/// instruments are exercised; prices span a handful of ticks so orders cross, queue and meet
/// their own account's orders often.
pub const INST_A: InstrumentId = 1;
pub const INST_B: InstrumentId = 3;
/// A wide ladder (300 000 ticks) where prices spread over many bitmap words and blocks.
pub const INST_C: InstrumentId = 5;
pub const KNOWN: [InstrumentId; 3] = [INST_A, INST_B, INST_C];
/// Every instrument id the strategies name (known and unknown).
pub const NAMED: [InstrumentId; 5] = [INST_A, 2, INST_B, 4, INST_C];
/// Account ids the strategies name; `max_accounts` is 4, so 4 and 9 are unknown.
pub const MAX_ACCOUNTS: u32 = 4;

pub fn spec_a() -> InstrumentSpec {
    InstrumentSpec {
        id: INST_A,
        kind: InstrumentKind::Spot { base: 1, quote: 2 },
        tick_size: 1,
        lot_size: 1,
        min_price: 95,
        max_price: 105,
        min_qty: 1,
        max_qty: 50,
        min_notional: 0,
    }
}

/// A perp with a minimum quantity and a minimum notional, and a price range starting below 1
/// (prices `<= 0` are invalid whatever the range says).
pub fn spec_b() -> InstrumentSpec {
    InstrumentSpec {
        id: INST_B,
        kind: InstrumentKind::LinearPerp { settle: 2 },
        tick_size: 5,
        lot_size: 100,
        min_price: -2,
        max_price: 8,
        min_qty: 2,
        max_qty: 40,
        min_notional: 6,
    }
}

pub fn spec_c() -> InstrumentSpec {
    InstrumentSpec {
        id: INST_C,
        kind: InstrumentKind::Spot { base: 3, quote: 2 },
        tick_size: 1,
        lot_size: 1,
        min_price: 1,
        max_price: 300_000,
        min_qty: 1,
        max_qty: 50,
        min_notional: 0,
    }
}

pub fn config(max_orders: u32) -> EngineConfig {
    EngineConfig {
        // Not sorted by id, on purpose.
        instruments: vec![spec_b(), spec_c(), spec_a()],
        max_orders,
        max_accounts: MAX_ACCOUNTS,
    }
}

/// The public surface both books share.
pub trait Book {
    fn apply(&mut self, ts_ns: u64, cmd: &Command, out: &mut Vec<Event>);
    fn hash(&self) -> u64;
    fn bid(&self, i: InstrumentId) -> Option<(PriceTicks, QtyLots)>;
    fn ask(&self, i: InstrumentId) -> Option<(PriceTicks, QtyLots)>;
    fn levels(&self, i: InstrumentId, side: Side, n: usize) -> Vec<Level>;
    fn orders_l3(&self, i: InstrumentId) -> Vec<L3Order>;
    fn live(&self) -> usize;
    fn pending(&self) -> usize;
    fn invariants(&self) -> Result<(), String>;
}

impl Book for Engine {
    fn apply(&mut self, ts_ns: u64, cmd: &Command, out: &mut Vec<Event>) {
        self.process(ts_ns, cmd, out)
    }
    fn hash(&self) -> u64 {
        self.state_hash()
    }
    fn bid(&self, i: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        self.best_bid(i)
    }
    fn ask(&self, i: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        self.best_ask(i)
    }
    fn levels(&self, i: InstrumentId, side: Side, n: usize) -> Vec<Level> {
        self.depth(i, side, n)
    }
    fn orders_l3(&self, i: InstrumentId) -> Vec<L3Order> {
        self.l3(i)
    }
    fn live(&self) -> usize {
        self.live_orders()
    }
    fn pending(&self) -> usize {
        self.pending_triggers()
    }
    fn invariants(&self) -> Result<(), String> {
        self.check_invariants()
    }
}

impl Book for ReferenceBook {
    fn apply(&mut self, ts_ns: u64, cmd: &Command, out: &mut Vec<Event>) {
        self.process(ts_ns, cmd, out)
    }
    fn hash(&self) -> u64 {
        self.state_hash()
    }
    fn bid(&self, i: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        self.best_bid(i)
    }
    fn ask(&self, i: InstrumentId) -> Option<(PriceTicks, QtyLots)> {
        self.best_ask(i)
    }
    fn levels(&self, i: InstrumentId, side: Side, n: usize) -> Vec<Level> {
        self.depth(i, side, n)
    }
    fn orders_l3(&self, i: InstrumentId) -> Vec<L3Order> {
        self.l3(i)
    }
    fn live(&self) -> usize {
        self.live_orders()
    }
    fn pending(&self) -> usize {
        self.pending_triggers()
    }
    fn invariants(&self) -> Result<(), String> {
        self.check_invariants()
    }
}

/// The number of random cases: `PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn account() -> impl Strategy<Value = AccountId> {
    prop_oneof![
        60 => 0..MAX_ACCOUNTS,
        1 => Just(MAX_ACCOUNTS),
        1 => Just(9u32),
    ]
}

/// Client order ids are "slots": ids `1..=SLOTS_A` are used for instrument A, up to `SLOTS_B`
/// for B and up to `SLOTS` for C, so that a cancel or replace naming a slot finds a live order
/// often and a replace's price is drawn from the right instrument's range.
const SLOTS_A: u64 = 12;
const SLOTS_B: u64 = 20;
const SLOTS: u64 = 26;

fn home(slot: ClientOrderId) -> InstrumentId {
    if slot <= SLOTS_A {
        INST_A
    } else if slot <= SLOTS_B {
        INST_B
    } else {
        INST_C
    }
}

fn slot() -> impl Strategy<Value = ClientOrderId> {
    prop_oneof![40 => 1..=SLOTS, 1 => Just(0u64), 1 => Just(u64::MAX)]
}

/// The instrument a slot's orders go to, occasionally another one (known or not).
fn instrument_of(slot: ClientOrderId, pick: u8) -> InstrumentId {
    match pick {
        0 => 2,
        1 => 4,
        2 => u32::MAX,
        // Another instrument.
        3..=6 => KNOWN[(KNOWN.iter().position(|i| *i == home(slot)).unwrap() + 1) % KNOWN.len()],
        _ => home(slot),
    }
}

/// How a price is chosen: mostly near the middle of the instrument's range (so orders cross and
/// queue), sometimes at or just beyond its edges, rarely absurd.
#[derive(Clone, Copy, Debug)]
enum PricePick {
    /// `d` ticks away from the middle on the order's own side (passive for `d > 0`).
    Middle(i64),
    Edge(u8),
    Absurd(i64),
}

fn price_pick() -> impl Strategy<Value = PricePick> {
    prop_oneof![
        40 => (-1..=4i64).prop_map(PricePick::Middle),
        3 => (0..6u8).prop_map(PricePick::Edge),
        1 => prop_oneof![
            Just(PricePick::Absurd(0)),
            Just(PricePick::Absurd(-1)),
            Just(PricePick::Absurd(i64::MAX)),
            Just(PricePick::Absurd(i64::MIN)),
            Just(PricePick::Absurd(1_000_000)),
        ],
    ]
}

/// The price `pick` stands for on `instrument` and `side`: A is `[95, 105]` around 100, B
/// `[-2, 8]` (valid from 1) around 5.
fn price_of(instrument: InstrumentId, side: Side, pick: PricePick) -> PriceTicks {
    // On C, `d` ticks become `d^3 * 97`: up to ~6 000 ticks, across bitmap words and blocks.
    let (mid, lo, hi, cube) = match instrument {
        INST_B => (5, 1, 8, false),
        INST_C => (150_000, 1, 300_000, true),
        _ => (100, 95, 105, false),
    };
    let scale = |d: i64| if cube { d * d * d * 97 } else { d };
    match pick {
        PricePick::Middle(d) => match side {
            Side::Buy => (mid - scale(d)).clamp(lo, hi),
            Side::Sell => (mid + scale(d)).clamp(lo, hi),
        },
        PricePick::Edge(0) => lo,
        PricePick::Edge(1) => hi,
        PricePick::Edge(2) => lo - 1,
        PricePick::Edge(3) => hi + 1,
        PricePick::Edge(4) => 0,
        PricePick::Edge(_) => -2,
        PricePick::Absurd(p) => p,
    }
}

fn qty() -> impl Strategy<Value = QtyLots> {
    prop_oneof![
        40 => 1..10u64,
        8 => 10..45u64,
        1 => Just(0u64),
        1 => prop_oneof![Just(41u64), Just(50), Just(51), Just(u64::MAX)],
    ]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn tif() -> impl Strategy<Value = TimeInForce> {
    prop_oneof![
        6 => Just(TimeInForce::Gtc),
        2 => Just(TimeInForce::Ioc),
        2 => Just(TimeInForce::Fok),
    ]
}

fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![
        4 => Just(StpMode::None),
        1 => Just(StpMode::ExpireTaker),
        1 => Just(StpMode::ExpireMaker),
        1 => Just(StpMode::ExpireBoth),
        1 => Just(StpMode::DecrementAndCancel),
    ]
}

fn kind() -> impl Strategy<Value = OrderKind> {
    prop_oneof![10 => Just(OrderKind::Limit), 1 => Just(OrderKind::Market)]
}

fn new_order() -> impl Strategy<Value = Command> {
    (
        (account(), slot(), 0..60u8, side(), kind()),
        (
            price_pick(),
            qty(),
            tif(),
            prop::bool::weighted(0.1),
            any::<bool>(),
            stp(),
        ),
    )
        .prop_map(
            |(
                (account, cl_ord_id, pick, side, kind),
                (price, qty, tif, post_only, reduce_only, stp),
            )| {
                let instrument = instrument_of(cl_ord_id, pick);
                // Market orders mostly get a valid time in force.
                let tif = if kind == OrderKind::Market && tif == TimeInForce::Gtc && qty % 4 != 0 {
                    TimeInForce::Ioc
                } else {
                    tif
                };
                Command::NewOrder(NewOrder {
                    account,
                    cl_ord_id,
                    instrument,
                    side,
                    kind,
                    price: price_of(instrument, side, price),
                    qty,
                    tif,
                    post_only,
                    reduce_only,
                    stp,
                    ext: OrderExt::NONE,
                })
            },
        )
}

fn cancel() -> impl Strategy<Value = Command> {
    (
        account(),
        slot(),
        prop_oneof![4 => Just(0u64), 3 => 1..10u64, 1 => Just(u64::MAX)],
    )
        .prop_map(|(account, cl_ord_id, remaining_qty)| {
            Command::Cancel(Cancel {
                account,
                cl_ord_id,
                remaining_qty,
            })
        })
}

fn replace() -> impl Strategy<Value = Command> {
    (
        account(),
        slot(),
        prop::option::weighted(0.3, slot()),
        0..60u8,
        price_pick(),
        prop_oneof![3 => qty(), 1 => Just(0u64).prop_map(|_| 0u64)],
        any::<bool>(),
        side(),
    )
        .prop_map(
            |(account, orig, new, pick, price, qty, keep_qty_hint, side)| {
                let instrument = instrument_of(orig, pick.max(3));
                // `qty == 0` stands for "keep a small quantity" half of the time, so that replaces
                // that keep priority (same price, smaller quantity) are common.
                let qty = if qty == 0 && keep_qty_hint { 1 } else { qty };
                Command::Replace(Replace {
                    account,
                    orig_cl_ord_id: orig,
                    new_cl_ord_id: new.unwrap_or(orig),
                    price: price_of(instrument, side, price),
                    qty,
                })
            },
        )
}

fn instrument() -> impl Strategy<Value = InstrumentId> {
    prop_oneof![
        20 => Just(INST_A),
        20 => Just(INST_B),
        12 => Just(INST_C),
        1 => Just(2u32),
        1 => Just(4u32),
        1 => Just(u32::MAX),
    ]
}

fn mass_cancel() -> impl Strategy<Value = Command> {
    (account(), prop::option::of(instrument())).prop_map(|(account, instrument)| {
        Command::MassCancel(MassCancel {
            account,
            instrument,
        })
    })
}

fn admin() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => (
            instrument(),
            prop_oneof![
                10 => -3..=3i64,
                1 => Just(-100i64),
                1 => Just(-7i64),
                1 => Just(i64::MAX),
            ],
            prop_oneof![
                20 => Just(0u32),
                1 => Just(50u32),
                2 => Just(300u32),
                2 => Just(2_000u32),
                2 => Just(6_000u32),
                1 => Just(10_000u32),
                1 => Just(30_000u32),
                1 => Just(u32::MAX),
            ],
        )
            .prop_map(|(instrument, offset, band_bps)| {
                // Mostly a reference price near the instrument's middle; -100 makes it 0 on A
                // (invalid); i64::MAX stays absurd.
                let mid = match instrument {
                    INST_B => 5,
                    INST_C => 150_000,
                    _ => 100,
                };
                let price = if offset == i64::MAX { offset } else { mid + offset };
                Command::SetReferencePrice {
                    instrument,
                    price,
                    band_bps,
                }
            }),
        1 => instrument().prop_map(|instrument| Command::Halt { instrument }),
        30 => prop_oneof![Just(INST_A), Just(INST_B), Just(INST_C)]
            .prop_map(|instrument| Command::Resume { instrument }),
    ]
}

/// One command, drawn blind: mostly new orders, cancels and replaces (of slots that may or may
/// not hold a live order), some mass cancels and admin commands.
pub fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        90 => new_order(),
        30 => cancel(),
        60 => replace(),
        1 => mass_cancel(),
        5 => admin(),
    ]
}

/// One step of a random stream: a blind command, or a cancel or replace of whichever live order
/// `pick` lands on when the step runs (so that most cancels and replaces find their order).
#[derive(Clone, Copy, Debug)]
pub enum Step {
    Blind(Command),
    CancelLive {
        pick: u16,
        /// 0: whole; otherwise a cancel-down to `leaves * down / 8` (possibly invalid).
        down: u8,
    },
    ReplaceLive {
        pick: u16,
        /// Ticks to move, towards the other side for positive values.
        toward: i64,
        /// The new quantity relative to the leaves: 0 same, 1 smaller, 2 larger, 3 anything.
        qty_rule: u8,
        qty: QtyLots,
        new_id: Option<ClientOrderId>,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        100 => new_order().prop_map(Step::Blind),
        10 => cancel().prop_map(Step::Blind),
        10 => replace().prop_map(Step::Blind),
        1 => mass_cancel().prop_map(Step::Blind),
        5 => admin().prop_map(Step::Blind),
        10 => (any::<u16>(), prop_oneof![3 => Just(0u8), 2 => 1..10u8])
            .prop_map(|(pick, down)| Step::CancelLive { pick, down }),
        55 => (
            any::<u16>(),
            prop_oneof![3 => -2..=-1i64, 1 => Just(0i64), 3 => 1..=4i64],
            prop_oneof![2 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)],
            qty(),
            prop::option::weighted(0.3, slot()),
        )
            .prop_map(|(pick, toward, qty_rule, qty, new_id)| Step::ReplaceLive {
                pick,
                toward,
                qty_rule,
                qty,
                new_id,
            }),
    ]
}

/// A stream of steps.
pub fn steps(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), len)
}

/// The command a step stands for, given the book it is about to be applied to.
pub fn resolve<B: Book>(step: &Step, book: &B) -> Command {
    let live = |pick: u16| {
        let all: Vec<(InstrumentId, L3Order)> = KNOWN
            .iter()
            .flat_map(|i| book.orders_l3(*i).into_iter().map(move |o| (*i, o)))
            .collect();
        (!all.is_empty()).then(|| all[pick as usize % all.len()])
    };
    match *step {
        Step::Blind(cmd) => cmd,
        Step::CancelLive { pick, down } => match live(pick) {
            None => Command::MassCancel(MassCancel {
                account: 0,
                instrument: None,
            }),
            Some((_, o)) => Command::Cancel(Cancel {
                account: o.account,
                cl_ord_id: o.cl_ord_id,
                remaining_qty: o.leaves * u64::from(down) / 8,
            }),
        },
        Step::ReplaceLive {
            pick,
            toward,
            qty_rule,
            qty,
            new_id,
        } => match live(pick) {
            None => Command::MassCancel(MassCancel {
                account: 1,
                instrument: Some(4),
            }),
            Some((instrument, o)) => {
                // On the wide ladder, moves go far.
                let toward = if instrument == INST_C {
                    toward * toward * toward * 97
                } else {
                    toward
                };
                let price = match o.side {
                    Side::Buy => o.price + toward,
                    Side::Sell => o.price - toward,
                };
                let qty = match qty_rule {
                    0 => o.leaves,
                    1 => (o.leaves / 2).max(1),
                    2 => o.leaves + 1 + qty % 5,
                    _ => qty,
                };
                Command::Replace(Replace {
                    account: o.account,
                    orig_cl_ord_id: o.cl_ord_id,
                    new_cl_ord_id: new_id.unwrap_or(o.cl_ord_id),
                    price,
                    qty,
                })
            }
        },
    }
}

/// A configuration's `max_orders`: mostly roomy, sometimes tiny (to reach `BookFull`).
pub fn max_orders() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(512u32), 1 => 0..40u32]
}

// ---------------------------------------------------------------------------------------------
// The market-data replayer: properties of an event stream
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MdOrder {
    order_id: OrderId,
    side: Side,
    price: PriceTicks,
    qty: QtyLots,
}

#[derive(Clone, Debug, Default)]
struct MdBook {
    bids: BTreeMap<PriceTicks, VecDeque<MdOrder>>,
    asks: BTreeMap<PriceTicks, VecDeque<MdOrder>>,
}

impl MdBook {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<PriceTicks, VecDeque<MdOrder>> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The head of the best level of a side (the order that must trade next).
    fn head(&self, side: Side) -> Option<MdOrder> {
        let level = match side {
            Side::Buy => self.bids.values().next_back(),
            Side::Sell => self.asks.values().next(),
        };
        level.and_then(|q| q.front().copied())
    }

    fn find(&self, order_id: OrderId) -> Option<MdOrder> {
        self.bids
            .values()
            .chain(self.asks.values())
            .flat_map(|q| q.iter())
            .find(|o| o.order_id == order_id)
            .copied()
    }

    fn remove(&mut self, order_id: OrderId) -> Result<MdOrder, String> {
        let o = self.find(order_id).ok_or_else(|| {
            format!("market data names order {order_id}, which is not on the book")
        })?;
        let levels = self.side_mut(o.side);
        let q = levels.get_mut(&o.price).expect("level of a found order");
        q.retain(|x| x.order_id != order_id);
        if q.is_empty() {
            levels.remove(&o.price);
        }
        Ok(o)
    }

    fn push(&mut self, o: MdOrder) {
        self.side_mut(o.side)
            .entry(o.price)
            .or_default()
            .push_back(o);
    }

    fn set_qty(&mut self, order_id: OrderId, qty: QtyLots) {
        for q in self.bids.values_mut().chain(self.asks.values_mut()) {
            for o in q.iter_mut() {
                if o.order_id == order_id {
                    o.qty = qty;
                }
            }
        }
    }

    fn as_l3(&self, accounts: &BTreeMap<OrderId, (AccountId, ClientOrderId)>) -> Vec<L3Order> {
        let bids = self.bids.values().rev().flat_map(|q| q.iter());
        let asks = self.asks.values().flat_map(|q| q.iter());
        bids.chain(asks)
            .map(|o| {
                let (account, cl_ord_id) =
                    accounts.get(&o.order_id).copied().unwrap_or((u32::MAX, 0));
                L3Order {
                    order_id: o.order_id,
                    account,
                    cl_ord_id,
                    side: o.side,
                    price: o.price,
                    leaves: o.qty,
                }
            })
            .collect()
    }
}

/// What an order has been through, by its events.
#[derive(Clone, Copy, Debug)]
struct Ledger {
    account: AccountId,
    cl_ord_id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    /// The limit (or protection) price it trades at, as last accepted or replaced.
    price: PriceTicks,
    /// Leaves quantity by the execution reports.
    leaves: QtyLots,
    /// Quantity it was given (at acceptance, then by each replace), and what became of it.
    given: u128,
    filled: u128,
    cancelled: u128,
    /// An iceberg's quantity not on the (market-data) book.
    hidden: QtyLots,
}

/// Rebuilds every book from the events alone (market data and execution reports) and checks,
/// event by event, what the contract promises:
///
/// - order ids are assigned from 1 in order, trade ids likewise;
/// - every fill is at the price of the head of the best opposite level, against that head order
///   (price-then-time priority), at a price the taker accepts;
/// - fills, cancels and replaces carry leaves quantities that agree with the order's history,
///   and per order `given = filled + cancelled + leaves` (quantity is conserved);
/// - the market-data book equals the engine's L3 book after each command, and is never crossed.
#[derive(Debug, Default)]
pub struct Replayer {
    books: BTreeMap<InstrumentId, MdBook>,
    orders: BTreeMap<OrderId, Ledger>,
    next_order_id: OrderId,
    next_trade_id: TradeId,
    /// Net position per (account, instrument) from fills: bought minus sold lots.
    pub positions: BTreeMap<(AccountId, InstrumentId), i128>,
    pub fills: u64,
    pub rejects: u64,
    pub stp_cancels: u64,
    pub triggered: u64,
    pub refills: u64,
}

impl Replayer {
    pub fn new() -> Replayer {
        Replayer {
            next_order_id: 1,
            next_trade_id: 1,
            ..Default::default()
        }
    }

    fn ledger(&mut self, order_id: OrderId) -> Result<&mut Ledger, String> {
        self.orders
            .get_mut(&order_id)
            .ok_or_else(|| format!("event names order {order_id}, never accepted"))
    }

    /// Checks one command's events and then the book against the replayed market data.
    pub fn check<B: Book>(
        &mut self,
        cmd: &Command,
        events: &[Event],
        book: &B,
    ) -> Result<(), String> {
        for (i, ev) in events.iter().enumerate() {
            self.on_event(ev)
                .map_err(|e| format!("event #{i} {ev:?}: {e}\nall events: {events:#?}"))?;
        }
        if let Some(Event::Rejected { .. }) = events.first() {
            if events.len() != 1 {
                return Err("a reject must be the only event".into());
            }
        }
        let _ = cmd;
        for ledger in self.orders.values() {
            let sum = ledger.filled + ledger.cancelled + u128::from(ledger.leaves);
            if sum != ledger.given {
                return Err(format!("quantity not conserved: {ledger:?}"));
            }
        }
        let accounts: BTreeMap<OrderId, (AccountId, ClientOrderId)> = self
            .orders
            .iter()
            .map(|(id, l)| (*id, (l.account, l.cl_ord_id)))
            .collect();
        for inst in NAMED {
            let md = self.books.get(&inst).cloned().unwrap_or_default();
            if let (Some((&bid, _)), Some((&ask, _))) =
                (md.bids.last_key_value(), md.asks.first_key_value())
            {
                if bid >= ask {
                    return Err(format!(
                        "instrument {inst}: crossed, bid {bid} >= ask {ask}"
                    ));
                }
            }
            let l3 = book.orders_l3(inst);
            let replayed = md.as_l3(&accounts);
            if l3 != replayed {
                return Err(format!(
                    "instrument {inst}: book differs from the market data\nbook: {l3:?}\nmarket data: {replayed:?}"
                ));
            }
            for o in &l3 {
                let l = &self.orders[&o.order_id];
                if l.leaves - l.hidden != o.leaves || l.price != o.price || l.side != o.side {
                    return Err(format!(
                        "resting {o:?} disagrees with its execution reports {l:?}"
                    ));
                }
            }
        }
        let resting: usize = self
            .books
            .values()
            .map(|b| {
                b.bids
                    .values()
                    .chain(b.asks.values())
                    .map(VecDeque::len)
                    .sum::<usize>()
            })
            .sum();
        if resting + book.pending() != book.live() {
            return Err(format!(
                "{resting} orders on the market-data books and {} pending triggers, live_orders() says {}",
                book.pending(),
                book.live()
            ));
        }
        // Orders with no leaves are done: forget them so the ledger stays small.
        self.orders.retain(|_, l| l.leaves > 0);
        Ok(())
    }

    fn on_event(&mut self, ev: &Event) -> Result<(), String> {
        match *ev {
            Event::Accepted {
                account,
                cl_ord_id,
                order_id,
                instrument,
                side,
                price,
                qty,
            } => {
                if order_id != self.next_order_id {
                    return Err(format!(
                        "order id {order_id}, expected {}",
                        self.next_order_id
                    ));
                }
                self.next_order_id += 1;
                self.orders.insert(
                    order_id,
                    Ledger {
                        account,
                        cl_ord_id,
                        instrument,
                        side,
                        price,
                        leaves: qty,
                        given: u128::from(qty),
                        filled: 0,
                        cancelled: 0,
                        hidden: 0,
                    },
                );
            }
            Event::Rejected { .. } => self.rejects += 1,
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
                if trade_id != self.next_trade_id {
                    return Err(format!(
                        "trade id {trade_id}, expected {}",
                        self.next_trade_id
                    ));
                }
                self.next_trade_id += 1;
                if qty == 0 {
                    return Err("fill of 0".into());
                }
                let book = self.books.entry(instrument).or_default();
                let head = book
                    .head(taker_side.opposite())
                    .ok_or("fill against an empty side")?;
                if head.order_id != maker_order_id || head.price != price {
                    return Err(format!(
                        "priority: fill against {maker_order_id} at {price}, but the head of the best level is {head:?}"
                    ));
                }
                let hidden = self.orders.get(&maker_order_id).map_or(0, |l| l.hidden);
                let book = self.books.entry(instrument).or_default();
                if head.qty < qty || head.qty - qty + hidden != maker_leaves {
                    return Err(format!(
                        "maker leaves {maker_leaves} after {qty} from {head:?} (hidden {hidden})"
                    ));
                }
                if head.qty == qty {
                    book.remove(maker_order_id)?;
                } else {
                    book.set_qty(maker_order_id, head.qty - qty);
                }
                let maker = self.ledger(maker_order_id)?;
                if (maker.account, maker.cl_ord_id, maker.instrument)
                    != (maker_account, maker_cl_ord_id, instrument)
                    || maker.side != taker_side.opposite()
                {
                    return Err(format!("maker identity {maker:?}"));
                }
                maker.leaves = maker_leaves;
                maker.filled += u128::from(qty);
                let taker = self.ledger(taker_order_id)?;
                if (taker.account, taker.cl_ord_id, taker.instrument, taker.side)
                    != (taker_account, taker_cl_ord_id, instrument, taker_side)
                {
                    return Err(format!("taker identity {taker:?}"));
                }
                let acceptable = match taker_side {
                    Side::Buy => price <= taker.price,
                    Side::Sell => price >= taker.price,
                };
                if !acceptable {
                    return Err(format!(
                        "fill at {price} outside the taker's limit {}",
                        taker.price
                    ));
                }
                if taker.leaves < qty || taker.leaves - qty != taker_leaves {
                    return Err(format!(
                        "taker leaves {taker_leaves} after {qty} from {}",
                        taker.leaves
                    ));
                }
                taker.leaves = taker_leaves;
                taker.filled += u128::from(qty);
                self.fills += 1;
                let signed = match taker_side {
                    Side::Buy => i128::from(qty),
                    Side::Sell => -i128::from(qty),
                };
                *self
                    .positions
                    .entry((taker_account, instrument))
                    .or_default() += signed;
                *self
                    .positions
                    .entry((maker_account, instrument))
                    .or_default() -= signed;
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
                let shown = self
                    .books
                    .get(&instrument)
                    .and_then(|b| b.find(order_id))
                    .map_or(0, |o| o.qty);
                let l = self.ledger(order_id)?;
                if (l.account, l.cl_ord_id, l.instrument) != (account, cl_ord_id, instrument) {
                    return Err(format!("identity {l:?}"));
                }
                if cancelled_qty == 0
                    || l.leaves < cancelled_qty
                    || l.leaves - cancelled_qty != leaves_qty
                {
                    return Err(format!(
                        "cancelled {cancelled_qty} of {}, leaves {leaves_qty}",
                        l.leaves
                    ));
                }
                l.leaves = leaves_qty;
                l.cancelled += u128::from(cancelled_qty);
                // An owner's cancel-down takes from the hidden part first; self-trade
                // prevention decrements the shown part (and takes the hidden part only when
                // the order leaves).
                if l.hidden > 0 && (reason != CancelReason::SelfTradePrevention || leaves_qty == 0)
                {
                    l.hidden = leaves_qty.saturating_sub(shown);
                }
                if reason == CancelReason::SelfTradePrevention {
                    self.stp_cancels += 1;
                }
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
            } => {
                let l = self.ledger(order_id)?;
                if (l.account, l.cl_ord_id, l.instrument) != (account, orig_cl_ord_id, instrument) {
                    return Err(format!("identity {l:?}"));
                }
                if priority_kept && (price != l.price || qty > l.leaves) {
                    return Err(format!("priority kept on a move or an increase from {l:?}"));
                }
                // The old leaves are replaced by the new quantity.
                l.given = l.given - u128::from(l.leaves) + u128::from(qty);
                l.leaves = qty;
                l.price = price;
                l.cl_ord_id = new_cl_ord_id;
            }
            Event::BookAdd {
                instrument,
                order_id,
                side,
                price,
                qty,
            } => {
                let l = self.ledger(order_id)?;
                if l.hidden == 0 && qty < l.leaves {
                    // An iceberg shows part of its quantity.
                    l.hidden = l.leaves - qty;
                }
                if l.leaves - l.hidden != qty
                    || l.price != price
                    || l.side != side
                    || l.instrument != instrument
                {
                    return Err(format!("book add of {qty} at {price} disagrees with {l:?}"));
                }
                let book = self.books.entry(instrument).or_default();
                if book.find(order_id).is_some() {
                    return Err("added twice".into());
                }
                book.push(MdOrder {
                    order_id,
                    side,
                    price,
                    qty,
                });
            }
            Event::BookReduce {
                instrument,
                order_id,
                qty,
            } => {
                let book = self.books.entry(instrument).or_default();
                let o = book
                    .find(order_id)
                    .ok_or("reduce of an order not on the book")?;
                if qty == 0 || qty >= o.qty {
                    return Err(format!("reduce by {qty} of {o:?}"));
                }
                book.set_qty(order_id, o.qty - qty);
                let l = self.ledger(order_id)?;
                if l.leaves - l.hidden != o.qty - qty {
                    return Err(format!(
                        "book reduce to {} but leaves {}",
                        o.qty - qty,
                        l.leaves
                    ));
                }
            }
            Event::BookDelete {
                instrument,
                order_id,
            } => {
                self.books.entry(instrument).or_default().remove(order_id)?;
            }
            Event::BookReplace {
                instrument,
                order_id,
                price,
                qty,
            } => {
                let book = self.books.entry(instrument).or_default();
                let mut o = book.remove(order_id)?;
                o.price = price;
                o.qty = qty;
                book.push(o);
                let l = self.ledger(order_id)?;
                if l.leaves != qty || l.price != price {
                    return Err(format!("book replace disagrees with {l:?}"));
                }
            }
            Event::TradingStatus { .. } | Event::ReferencePrice { .. } => {}
            Event::Triggered {
                account,
                cl_ord_id,
                order_id,
                instrument,
                side,
                ..
            } => {
                let l = self.ledger(order_id)?;
                if (l.account, l.cl_ord_id, l.instrument, l.side)
                    != (account, cl_ord_id, instrument, side)
                {
                    return Err(format!("triggered: identity {l:?}"));
                }
                self.triggered += 1;
            }
            Event::Slid {
                order_id,
                requested_price,
                price,
                ..
            } => {
                let l = self.ledger(order_id)?;
                if l.price != requested_price {
                    return Err(format!("slid from {requested_price}: {l:?}"));
                }
                l.price = price;
            }
            Event::Refilled {
                order_id,
                display_qty,
                hidden_qty,
                ..
            } => {
                let l = self.ledger(order_id)?;
                if display_qty == 0 || display_qty + hidden_qty != l.leaves {
                    return Err(format!("refill {display_qty}+{hidden_qty}: {l:?}"));
                }
                l.hidden = hidden_qty;
                self.refills += 1;
            }
        }
        Ok(())
    }
}

/// Applies `cmd` to `book` and returns its events.
pub fn run<B: Book>(book: &mut B, ts_ns: u64, cmd: &Command) -> Vec<Event> {
    let mut out = Vec::new();
    book.apply(ts_ns, cmd, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// The crypto order types: streams with triggers, marks, GTD expiry, icebergs, slides and OCO
// ---------------------------------------------------------------------------------------------

/// Applies either kind of input to a book.
pub trait TypedBook: Book {
    fn apply_input(&mut self, ts_ns: u64, input: &EngineInput, out: &mut Vec<Event>);
}

impl TypedBook for Engine {
    fn apply_input(&mut self, ts_ns: u64, input: &EngineInput, out: &mut Vec<Event>) {
        self.apply(ts_ns, input, out)
    }
}

impl TypedBook for ReferenceBook {
    fn apply_input(&mut self, ts_ns: u64, input: &EngineInput, out: &mut Vec<Event>) {
        self.apply(ts_ns, input, out)
    }
}

/// One step of an order-type stream, and how far the clock moves before it.
#[derive(Clone, Copy, Debug)]
pub enum TypedStep {
    /// A step of the plain streams (new orders, cancels, replaces, admin).
    Plain(Step),
    /// A new order with order types: `base` (a plain new order) plus the pieces below.
    Typed {
        base: Command,
        /// 0: none; 1: last-price trigger; 2: mark trigger.
        trigger: u8,
        direction: bool,
        /// Trigger price offset from the middle.
        trigger_off: i64,
        /// 0: GTC as drawn; else GTD expiring this far ahead (sometimes 0 or past: invalid).
        expire_in: i64,
        display: QtyLots,
        slide: bool,
        /// An OCO leg by client id (0: none).
        oco: ClientOrderId,
    },
    /// A mark price (mostly on the perpetual B).
    Mark { instrument: InstrumentId, off: i64 },
    /// Nothing but time.
    Tick,
}

fn typed_new_order() -> impl Strategy<Value = TypedStep> {
    (
        new_order(),
        prop_oneof![3 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8)],
        any::<bool>(),
        -4..=4i64,
        prop_oneof![3 => Just(0i64), 3 => 1..12i64, 1 => -1..=0i64],
        prop_oneof![4 => Just(0u64), 2 => 1..4u64, 1 => Just(50u64)],
        prop::bool::weighted(0.5),
        prop_oneof![3 => Just(0u64), 1 => 1..=26u64],
    )
        .prop_map(
            |(base, trigger, direction, trigger_off, expire_in, display, slide, oco)| {
                TypedStep::Typed {
                    base,
                    trigger,
                    direction,
                    trigger_off,
                    expire_in,
                    display,
                    slide,
                    oco,
                }
            },
        )
}

fn typed_step() -> impl Strategy<Value = (u64, TypedStep)> {
    (
        prop_oneof![4 => Just(0u64), 3 => 1..3u64, 1 => 3..15u64],
        prop_oneof![
            60 => step().prop_map(TypedStep::Plain),
            60 => typed_new_order(),
            8 => (
                prop_oneof![6 => Just(INST_B), 1 => Just(INST_A), 1 => Just(4u32)],
                -4..=4i64
            )
                .prop_map(|(instrument, off)| TypedStep::Mark { instrument, off }),
            3 => Just(TypedStep::Tick),
        ],
    )
}

/// A stream of order-type steps, each with the time that passes before it.
pub fn typed_steps(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<(u64, TypedStep)>> {
    prop::collection::vec(typed_step(), len)
}

/// The input a typed step stands for at time `ts_ns`, given the book it is about to go to.
pub fn resolve_typed<B: Book>(step: &TypedStep, ts_ns: u64, book: &B) -> EngineInput {
    match *step {
        TypedStep::Plain(s) => EngineInput::Command(resolve(&s, book)),
        TypedStep::Tick => EngineInput::Command(Command::Tick),
        TypedStep::Mark { instrument, off } => {
            let mid = match instrument {
                INST_B => 5,
                INST_C => 150_000,
                _ => 100,
            };
            EngineInput::Risk(RiskCommand::SetMarkPrice {
                instrument,
                price: mid + off,
            })
        }
        TypedStep::Typed {
            base,
            trigger,
            direction,
            trigger_off,
            expire_in,
            display,
            slide,
            oco,
        } => {
            let Command::NewOrder(mut o) = base else {
                return EngineInput::Command(base);
            };
            let mid = match o.instrument {
                INST_B => 5,
                INST_C => 150_000,
                _ => 100,
            };
            let scale = if o.instrument == INST_C { 97 } else { 1 };
            if trigger > 0 {
                o.ext.trigger = Some(Trigger {
                    price: mid + trigger_off * scale,
                    source: if trigger == 1 {
                        TriggerSource::Last
                    } else {
                        TriggerSource::Mark
                    },
                    direction: if direction {
                        TriggerDirection::RisesTo
                    } else {
                        TriggerDirection::FallsTo
                    },
                });
                // Mostly what a trigger may be.
                if o.tif == TimeInForce::Fok && trigger_off % 2 == 0 {
                    o.tif = TimeInForce::Gtc;
                }
                if trigger_off % 3 != 0 {
                    o.post_only = false;
                }
                if o.kind == OrderKind::Market {
                    o.tif = TimeInForce::Ioc;
                }
            }
            if expire_in != 0 || trigger_off == 4 {
                o.tif = TimeInForce::Gtd;
                o.ext.expire_ts_ns = (ts_ns as i64 + expire_in).max(0) as u64;
            }
            if display > 0 {
                o.ext.display_qty = display;
                if o.kind == OrderKind::Market {
                    o.kind = OrderKind::Limit;
                }
                if trigger_off != 0 {
                    o.ext.trigger = None;
                    o.reduce_only = false;
                }
            }
            if slide {
                o.ext.post_only_slide = true;
                o.post_only = o.ext.trigger.is_none() || trigger_off == 0;
            }
            o.ext.oco_cl_ord_id = oco;
            EngineInput::Command(Command::NewOrder(o))
        }
    }
}
