//! Workloads: command streams generated up front from a seed, so that only processing is timed.
//!
//! The generator keeps a shadow book, the [`ReferenceBook`], and applies every command it emits to
//! it, tracking the live orders from the events. Moves and cancels therefore target orders that
//! are live at that point of the stream, crossing orders are priced against the real best
//! prices, and the number of rejects (which should be zero or close to it) is known and reported.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::*;

/// The workloads `engine-bench` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The mix exchange-core publishes: 82% move, 9% GTC place, 6% cancel, 3% IOC, about 1,000
    /// resting orders, 1 instrument, 100 accounts.
    ExchangeCoreMix,
    /// The same mix over 10 instruments with about 1 M resting orders over a wide price range.
    Heavy,
    /// The exchange-core mix with risk on over 4 spot pairs: balance holds, settlement and
    /// fees for 1,000 funded accounts (about 1,000 resting orders per instrument).
    SpotRisk,
    /// The same over 4 linear perpetuals: margin holds, positions, position limits and fees.
    PerpRisk,
    /// The exchange-core mix on one perpetual (risk off) where 20% of the resting orders are
    /// stop / take-profit orders (half on the last price, half on the mark; half stop-market,
    /// half stop-limit), replenished as they fire, and the mark moves every 50 operations.
    Triggers,
    /// One instrument with about 1 M resting orders on a 2 M-tick ladder, half of them within
    /// 2,000 ticks of the touch (~125 orders a level there), the rest spread over 250,000 ticks
    /// behind it; 10,000 accounts; a mix of 40% replace (a random live order moved near the touch), 25% GTC place near the
    /// touch, 25% cancel of a random live order (mostly deep in the book), 10% IOC through the
    /// touch.
    Deep,
}

impl Workload {
    pub const ALL: [Workload; 6] = [
        Workload::ExchangeCoreMix,
        Workload::Heavy,
        Workload::Deep,
        Workload::SpotRisk,
        Workload::PerpRisk,
        Workload::Triggers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::ExchangeCoreMix => "exchange-core-mix",
            Workload::Heavy => "heavy",
            Workload::Deep => "deep",
            Workload::SpotRisk => "spot-risk",
            Workload::PerpRisk => "perp-risk",
            Workload::Triggers => "triggers",
        }
    }

    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The shape of the book and the stream, or why the workload cannot be generated yet.
    pub fn params(self) -> Result<MixParams, String> {
        match self {
            Workload::ExchangeCoreMix => Ok(MixParams {
                instruments: 1,
                accounts: 100,
                resting_target: 1_000,
                center_price: 100_000,
                half_range: 50_000,
                passive_depth: 200,
                max_qty: 1_000_000,
                market: Market::Plain,
            }),
            Workload::Triggers => Ok(MixParams {
                instruments: 1,
                accounts: 100,
                resting_target: 1_000,
                center_price: 100_000,
                half_range: 50_000,
                passive_depth: 200,
                max_qty: 1_000_000,
                market: Market::PlainPerp,
            }),
            Workload::Heavy => Ok(MixParams {
                instruments: 10,
                accounts: 10_000,
                resting_target: 1_000_000,
                center_price: 200_000,
                half_range: 199_999,
                passive_depth: 100_000,
                max_qty: 1_000_000,
                market: Market::Plain,
            }),
            Workload::Deep => Ok(MixParams {
                instruments: 1,
                accounts: 10_000,
                resting_target: 1_000_000,
                center_price: 1_000_000,
                half_range: 999_999,
                passive_depth: 250_000,
                max_qty: 1_000_000,
                market: Market::Plain,
            }),
            Workload::SpotRisk | Workload::PerpRisk => Ok(MixParams {
                instruments: 4,
                accounts: 1_000,
                resting_target: 4_000,
                center_price: 100_000,
                half_range: 50_000,
                passive_depth: 200,
                max_qty: 1_000_000,
                market: if self == Workload::SpotRisk {
                    Market::Spot
                } else {
                    Market::Perp
                },
            }),
        }
    }

    /// Whether the stream runs with risk on (and is also timed with risk off to compare).
    pub fn risk(self) -> bool {
        matches!(self, Workload::SpotRisk | Workload::PerpRisk)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of the exchange-core-style mix.
#[derive(Clone, Copy, Debug)]
pub struct MixParams {
    pub instruments: u32,
    pub accounts: u32,
    /// Resting orders the stream keeps around (in all, over every instrument).
    pub resting_target: usize,
    /// Every instrument's prices are `center_price +- half_range`.
    pub center_price: PriceTicks,
    pub half_range: PriceTicks,
    /// Passive orders are placed up to this many ticks behind the touch.
    pub passive_depth: PriceTicks,
    pub max_qty: QtyLots,
    pub market: Market,
}

/// What the instruments are and whether risk is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Market {
    /// Spot pairs, risk off (no accounts or balances).
    Plain,
    /// Linear perpetuals, risk off (so marks, and mark triggers, exist without accounts).
    PlainPerp,
    /// Spot pairs against [`QUOTE_ASSET`], risk on.
    Spot,
    /// Linear perpetuals settled in [`QUOTE_ASSET`], risk on.
    Perp,
}

/// The quote (spot) and settle (perpetual) asset of the risk workloads.
pub const QUOTE_ASSET: AssetId = 1;
/// What every account is given of every asset before the stream (untimed).
pub const DEPOSIT_PER_ASSET: u64 = 1 << 40;

/// The risk side of a risk workload: the configuration and the untimed setup (deposits and fee
/// tiers) applied before the stream's own setup.
#[derive(Clone, Debug)]
pub struct RiskSetup {
    pub config: RiskConfig,
    pub setup: Vec<RiskCommand>,
}

/// What a peer crate needs to apply one operation (the engine's command names orders by client
/// id and leaves the side implicit on a replace; peers want the side and their own id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerOp {
    pub kind: PeerOpKind,
    pub side: Side,
    pub instrument: InstrumentId,
    /// The order's id in the peer (the engine's client order id: unique in the whole stream).
    pub id: u64,
    pub price: u64,
    pub qty: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerOpKind {
    /// A GTC limit order.
    Place,
    /// An immediate-or-cancel limit order.
    Ioc,
    Cancel,
    /// Move to a new price, same quantity.
    Move,
}

/// The operation mix of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixCounts {
    pub moves: u64,
    pub places: u64,
    pub cancels: u64,
    pub iocs: u64,
}

/// A generated stream: build an engine from `config`, apply `setup` (untimed), then `ops`.
#[derive(Debug)]
pub struct Stream {
    pub workload: Workload,
    pub seed: u64,
    pub config: EngineConfig,
    /// Risk workloads: the risk configuration and its setup (`None`: risk off).
    pub risk: Option<RiskSetup>,
    pub setup: Vec<Command>,
    pub ops: Vec<Command>,
    /// Mark prices set (`RiskCommand::SetMarkPrice`, applied with risk off) before the op of
    /// the given index: `(index, instrument, price)`, ascending index (`triggers` only).
    pub marks: Vec<(usize, InstrumentId, PriceTicks)>,
    /// Trigger orders accepted and fired in the shadow book during `ops` (`triggers` only).
    pub stops_placed: u64,
    pub stops_fired: u64,
    /// `setup` and `ops` for peers, one for one.
    pub peer_setup: Vec<PeerOp>,
    pub peer_ops: Vec<PeerOp>,
    pub mix: MixCounts,
    /// Commands of `ops` the shadow book rejected.
    pub rejects: u64,
    /// Fills and live orders in the shadow book: after `setup` and at the end.
    pub fills: u64,
    pub resting_after_setup: usize,
    pub resting_at_end: usize,
    /// The shadow book's state hash at the end: what every correct engine must reach.
    pub final_hash: u64,
}

/// A live order as the generator sees it.
#[derive(Clone, Copy, Debug)]
struct Live {
    order_id: OrderId,
    account: AccountId,
    cl_ord_id: ClientOrderId,
    instrument: InstrumentId,
    side: Side,
    price: PriceTicks,
    leaves: QtyLots,
}

const NONE: u32 = u32::MAX;

/// `deep`: half the passive prices are within this many ticks of the touch.
const DEEP_NEAR_TICKS: PriceTicks = 2_000;

/// The live orders, in a vector (for picking one at random) indexed by order id.
#[derive(Debug, Default)]
struct LiveSet {
    orders: Vec<Live>,
    /// Order id -> index in `orders` (`NONE` if not live).
    index: Vec<u32>,
}

impl LiveSet {
    fn get_mut(&mut self, order_id: OrderId) -> Option<&mut Live> {
        match self.index.get(order_id as usize) {
            Some(&i) if i != NONE => Some(&mut self.orders[i as usize]),
            _ => None,
        }
    }

    fn insert(&mut self, live: Live) {
        let id = live.order_id as usize;
        if self.index.len() <= id {
            self.index.resize((id + 1).next_power_of_two(), NONE);
        }
        debug_assert_eq!(self.index[id], NONE);
        self.index[id] = self.orders.len() as u32;
        self.orders.push(live);
    }

    fn remove(&mut self, order_id: OrderId) {
        let Some(&i) = self.index.get(order_id as usize) else {
            return;
        };
        if i == NONE {
            return;
        }
        self.index[order_id as usize] = NONE;
        self.orders.swap_remove(i as usize);
        if let Some(moved) = self.orders.get(i as usize) {
            self.index[moved.order_id as usize] = i;
        }
    }
}

/// The shadow book's event sink: keeps [`LiveSet`] up to date and counts fills and rejects.
#[derive(Debug, Default)]
struct Tracker {
    live: LiveSet,
    /// The account and client id of the command being applied (for `BookAdd`).
    pending: (AccountId, ClientOrderId),
    fills: u64,
    rejects: u64,
    triggered: u64,
}

impl EventSink for Tracker {
    fn emit(&mut self, event: Event) {
        match event {
            Event::Rejected { .. } => self.rejects += 1,
            Event::BookAdd {
                instrument,
                order_id,
                side,
                price,
                qty,
            } => self.live.insert(Live {
                order_id,
                account: self.pending.0,
                cl_ord_id: self.pending.1,
                instrument,
                side,
                price,
                leaves: qty,
            }),
            Event::Fill {
                maker_order_id,
                maker_leaves,
                ..
            } => {
                self.fills += 1;
                if maker_leaves == 0 {
                    self.live.remove(maker_order_id);
                } else if let Some(o) = self.live.get_mut(maker_order_id) {
                    o.leaves = maker_leaves;
                }
            }
            Event::Cancelled {
                order_id,
                leaves_qty,
                ..
            } => {
                if leaves_qty == 0 {
                    self.live.remove(order_id);
                } else if let Some(o) = self.live.get_mut(order_id) {
                    o.leaves = leaves_qty;
                }
            }
            Event::BookDelete { order_id, .. } => self.live.remove(order_id),
            Event::BookReduce { order_id, qty, .. } => {
                if let Some(o) = self.live.get_mut(order_id) {
                    o.leaves -= qty;
                }
            }
            Event::BookReplace {
                order_id,
                price,
                qty,
                ..
            } => {
                if let Some(o) = self.live.get_mut(order_id) {
                    o.price = price;
                    o.leaves = qty;
                }
            }
            Event::Replaced {
                order_id,
                new_cl_ord_id,
                ..
            } => {
                if let Some(o) = self.live.get_mut(order_id) {
                    o.cl_ord_id = new_cl_ord_id;
                }
            }
            Event::Triggered {
                account, cl_ord_id, ..
            } => {
                // A fired trigger order's `BookAdd` is its own.
                self.pending = (account, cl_ord_id);
                self.triggered += 1;
            }
            Event::Accepted { .. }
            | Event::TradingStatus { .. }
            | Event::ReferencePrice { .. }
            | Event::Slid { .. }
            | Event::Refilled { .. } => {}
        }
    }
}

/// The engine configuration of a mix: instruments `1..=instruments`, each with a price ladder
/// of `2 * half_range + 1` ticks around the centre. Risk workloads add two venue accounts (the
/// fee and the liquidation account) after the trading accounts.
pub fn mix_config(p: &MixParams) -> EngineConfig {
    let instruments = (1..=p.instruments)
        .map(|id| InstrumentSpec {
            id,
            kind: match p.market {
                Market::Plain => InstrumentKind::Spot { base: id, quote: 0 },
                Market::PlainPerp => InstrumentKind::LinearPerp { settle: 0 },
                Market::Spot => InstrumentKind::Spot {
                    base: base_asset(id),
                    quote: QUOTE_ASSET,
                },
                Market::Perp => InstrumentKind::LinearPerp {
                    settle: QUOTE_ASSET,
                },
            },
            tick_size: 1,
            lot_size: 1,
            min_price: p.center_price - p.half_range,
            max_price: p.center_price + p.half_range,
            min_qty: 1,
            max_qty: p.max_qty,
            min_notional: 0,
        })
        .collect();
    EngineConfig {
        instruments,
        // Room for the resting orders, their drift above the target, and the taker.
        max_orders: (p.resting_target as u32).saturating_mul(2).max(4_096),
        max_accounts: match p.market {
            Market::Plain | Market::PlainPerp => p.accounts,
            Market::Spot | Market::Perp => p.accounts + 2,
        },
    }
}

/// The base asset of spot instrument `id` in the risk workloads.
fn base_asset(id: InstrumentId) -> AssetId {
    QUOTE_ASSET + id
}

/// The risk configuration and setup of a risk workload (`None` for [`Market::Plain`]): every
/// tick-lot worth one minor unit; two fee tiers (tier 0: maker 2 bps, taker 5 bps; tier 1,
/// every fourth account: a 1 bp maker rebate, taker 4 bps); perpetuals with 10% initial and 5%
/// maintenance margin and a position limit of 10 M lots (so the limit check and the open
/// quantities it reads are on the path); the fee account `accounts`, the liquidation account
/// `accounts + 1`; every trading account given [`DEPOSIT_PER_ASSET`] of every asset.
pub fn risk_setup(p: &MixParams) -> Option<RiskSetup> {
    let assets: Vec<AssetId> = match p.market {
        Market::Plain | Market::PlainPerp => return None,
        Market::Spot => std::iter::once(QUOTE_ASSET)
            .chain((1..=p.instruments).map(base_asset))
            .collect(),
        Market::Perp => vec![QUOTE_ASSET],
    };
    let instruments = (1..=p.instruments)
        .map(|id| InstrumentRisk {
            fees: vec![
                FeeRate {
                    maker_ppm: 200,
                    taker_ppm: 500,
                },
                FeeRate {
                    maker_ppm: -100,
                    taker_ppm: 400,
                },
            ],
            max_position: if p.market == Market::Perp {
                10_000_000
            } else {
                0
            },
            ..InstrumentRisk::new(id)
        })
        .collect();
    let config = RiskConfig {
        assets: assets.clone(),
        instruments,
        fee_tiers: 2,
        fee_account: p.accounts,
        liquidation_account: p.accounts + 1,
    };
    let mut setup = Vec::new();
    for account in 0..p.accounts {
        for (i, &asset) in assets.iter().enumerate() {
            setup.push(RiskCommand::Deposit {
                account,
                asset,
                amount: DEPOSIT_PER_ASSET,
                request_id: i as u64 + 1,
            });
        }
        if account % 4 == 3 {
            setup.push(RiskCommand::SetFeeTier { account, tier: 1 });
        }
    }
    Some(RiskSetup { config, setup })
}

struct Generator {
    p: MixParams,
    rng: Xoshiro256PlusPlus,
    book: ReferenceBook,
    tracker: Tracker,
    next_cl_ord_id: ClientOrderId,
    ts_ns: u64,
    mix: MixCounts,
    /// `triggers`: trigger orders to keep pending, and how many were accepted.
    stops_target: usize,
    stops_placed: u64,
    /// `deep`: passive prices crowded near the touch, and the deep mix.
    deep: bool,
}

impl Generator {
    /// Trigger orders waiting (accepted minus fired: the mix never cancels them).
    fn stops_pending(&self) -> usize {
        (self.stops_placed - self.tracker.triggered) as usize
    }

    /// A stop / take-profit on instrument 1: a buy that fires when the price rises
    /// `1..=passive_depth` ticks above the middle or a sell when it falls as far below; on the
    /// last or the mark price; a market order (protection 50 ticks beyond the trigger) or a
    /// limit 5 ticks beyond it.
    fn stop_order(&mut self) -> Command {
        let instrument = 1;
        let side = self.side();
        let mid = self.mid(instrument);
        let away = 1 + self.rng.gen_range(0..self.p.passive_depth);
        let (trigger, direction, sign) = match side {
            Side::Buy => (mid + away, TriggerDirection::RisesTo, 1),
            Side::Sell => (mid - away, TriggerDirection::FallsTo, -1),
        };
        let source = if self.rng.gen_bool(0.5) {
            TriggerSource::Last
        } else {
            TriggerSource::Mark
        };
        let market = self.rng.gen_bool(0.5);
        let price = (trigger + sign * if market { 50 } else { 5 }).clamp(self.lo(), self.hi());
        let cl_ord_id = self.next_cl_ord_id;
        self.next_cl_ord_id += 1;
        let qty = self.qty();
        Command::NewOrder(NewOrder {
            account: self.rng.gen_range(0..self.p.accounts),
            cl_ord_id,
            instrument,
            side,
            kind: if market {
                OrderKind::Market
            } else {
                OrderKind::Limit
            },
            price,
            qty,
            tif: if market {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            },
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
            ext: OrderExt {
                trigger: Some(Trigger {
                    price: trigger.clamp(self.lo(), self.hi()),
                    source,
                    direction,
                }),
                ..OrderExt::NONE
            },
        })
    }

    /// Places a stop on the shadow book, counting it if accepted.
    fn apply_stop(&mut self, cmd: &Command) {
        let rejects = self.tracker.rejects;
        self.apply(cmd);
        if self.tracker.rejects == rejects {
            self.stops_placed += 1;
        }
    }

    /// A mark near the middle of instrument 1 (within 20 ticks).
    fn mark(&mut self) -> PriceTicks {
        let mid = self.mid(1);
        (mid + self.rng.gen_range(-20..=20)).clamp(self.lo(), self.hi())
    }

    fn apply_mark(&mut self, price: PriceTicks) {
        self.tracker.pending = (0, 0);
        self.ts_ns += 1;
        self.book.process_risk(
            self.ts_ns,
            &RiskCommand::SetMarkPrice {
                instrument: 1,
                price,
            },
            &mut self.tracker,
        );
    }

    fn lo(&self) -> PriceTicks {
        self.p.center_price - self.p.half_range
    }

    fn hi(&self) -> PriceTicks {
        self.p.center_price + self.p.half_range
    }

    /// The middle of an instrument's book: between the best bid and ask, or the centre.
    fn mid(&self, instrument: InstrumentId) -> PriceTicks {
        let bid = self.book.best_bid(instrument).map(|b| b.0);
        let ask = self.book.best_ask(instrument).map(|a| a.0);
        match (bid, ask) {
            (Some(b), Some(a)) => (a + b) / 2,
            (Some(b), None) => b + 1,
            (None, Some(a)) => a - 1,
            (None, None) => self.p.center_price,
        }
    }

    /// A passive price on `side`: up to `passive_depth` ticks behind the middle, pulled back
    /// towards the centre when the book has drifted far from it.
    fn passive_price(&mut self, instrument: InstrumentId, side: Side) -> PriceTicks {
        let depth = self.p.passive_depth;
        let mid = self
            .mid(instrument)
            .clamp(self.p.center_price - depth, self.p.center_price + depth);
        let behind = if self.deep && self.rng.gen_bool(0.5) {
            // Half the orders within `DEEP_NEAR_TICKS` of the touch, the rest anywhere.
            1 + self.rng.gen_range(0..DEEP_NEAR_TICKS.min(depth))
        } else {
            1 + self.rng.gen_range(0..depth)
        };
        let price = match side {
            Side::Buy => mid - behind,
            Side::Sell => mid + behind,
        };
        price.clamp(self.lo(), self.hi())
    }

    /// A price that crosses up to a few ticks into the opposite side (or a passive one if that
    /// side is empty).
    fn crossing_price(&mut self, instrument: InstrumentId, side: Side) -> PriceTicks {
        let through = self.rng.gen_range(0..4);
        let price = match side {
            Side::Buy => self.book.best_ask(instrument).map(|a| a.0 + through),
            Side::Sell => self.book.best_bid(instrument).map(|b| b.0 - through),
        };
        match price {
            Some(p) => p.clamp(self.lo(), self.hi()),
            None => self.passive_price(instrument, side),
        }
    }

    fn side(&mut self) -> Side {
        if self.rng.gen_bool(0.5) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn qty(&mut self) -> QtyLots {
        // Mostly small, sometimes larger (exchange-core draws sizes from a skewed distribution).
        if self.rng.gen_bool(0.9) {
            self.rng.gen_range(1..=20)
        } else {
            self.rng.gen_range(20..=500)
        }
    }

    /// A new limit order; an IOC's quantity is drawn from `ioc_qty`.
    fn new_order(
        &mut self,
        tif: TimeInForce,
        crossing: bool,
        ioc_qty: std::ops::RangeInclusive<QtyLots>,
    ) -> (Command, PeerOp) {
        let instrument = self.rng.gen_range(1..=self.p.instruments);
        let side = self.side();
        let price = if crossing {
            self.crossing_price(instrument, side)
        } else {
            self.passive_price(instrument, side)
        };
        let qty = match tif {
            TimeInForce::Ioc => self.rng.gen_range(ioc_qty),
            _ => self.qty(),
        };
        let cl_ord_id = self.next_cl_ord_id;
        self.next_cl_ord_id += 1;
        let account = self.rng.gen_range(0..self.p.accounts);
        let cmd = Command::NewOrder(NewOrder {
            account,
            cl_ord_id,
            instrument,
            side,
            kind: OrderKind::Limit,
            price,
            qty,
            tif,
            post_only: false,
            reduce_only: false,
            stp: StpMode::None,
            ext: OrderExt::NONE,
        });
        let kind = if tif == TimeInForce::Ioc {
            PeerOpKind::Ioc
        } else {
            PeerOpKind::Place
        };
        (cmd, peer_op(kind, side, instrument, cl_ord_id, price, qty))
    }

    fn pick_live(&mut self) -> Live {
        let n = self.tracker.live.orders.len();
        self.tracker.live.orders[self.rng.gen_range(0..n)]
    }

    fn cancel(&mut self) -> (Command, PeerOp) {
        let o = self.pick_live();
        let cmd = Command::Cancel(Cancel {
            account: o.account,
            cl_ord_id: o.cl_ord_id,
            remaining_qty: 0,
        });
        (
            cmd,
            peer_op(
                PeerOpKind::Cancel,
                o.side,
                o.instrument,
                o.cl_ord_id,
                o.price,
                o.leaves,
            ),
        )
    }

    /// A move of a live order to a new price, same quantity: mostly to another passive price,
    /// sometimes through the touch.
    fn move_order(&mut self, cross_probability: f64) -> (Command, PeerOp) {
        let o = self.pick_live();
        let mut price = if self.rng.gen_bool(cross_probability) {
            self.crossing_price(o.instrument, o.side)
        } else {
            self.passive_price(o.instrument, o.side)
        };
        if price == o.price {
            // Same price and quantity would be refused (`InvalidModify`): step one tick away.
            price = match o.side {
                Side::Buy if price > self.lo() => price - 1,
                Side::Sell if price < self.hi() => price + 1,
                Side::Buy => price + 1,
                Side::Sell => price - 1,
            };
        }
        let cmd = Command::Replace(Replace {
            account: o.account,
            orig_cl_ord_id: o.cl_ord_id,
            new_cl_ord_id: o.cl_ord_id,
            price,
            qty: o.leaves,
        });
        (
            cmd,
            peer_op(
                PeerOpKind::Move,
                o.side,
                o.instrument,
                o.cl_ord_id,
                price,
                o.leaves,
            ),
        )
    }

    /// Applies a command to the shadow book.
    fn apply(&mut self, cmd: &Command) {
        self.tracker.pending = match cmd {
            Command::NewOrder(o) => (o.account, o.cl_ord_id),
            Command::Replace(r) => (r.account, r.new_cl_ord_id),
            _ => (0, 0),
        };
        self.ts_ns += 1;
        self.book.process(self.ts_ns, cmd, &mut self.tracker);
    }

    /// One operation of the `deep` mix (see [`Workload::Deep`]), leaning against the distance
    /// from the resting target like [`Generator::mix_op`].
    fn deep_op(&mut self) -> (Command, PeerOp) {
        let live = self.tracker.live.orders.len();
        let target = self.p.resting_target;
        let (cross_place, cross_move, ioc_qty) = if live > target + target / 20 {
            (0.5, 0.04, 200..=2_000)
        } else if live + target / 20 < target {
            (0.0, 0.0, 1..=20)
        } else {
            (0.05, 0.01, 10..=300)
        };
        let r = self.rng.gen_range(0..100u32);
        if live == 0 || (40..65).contains(&r) {
            self.mix.places += 1;
            let crossing = self.rng.gen_bool(cross_place);
            self.new_order(TimeInForce::Gtc, crossing, 0..=0)
        } else if r < 40 {
            self.mix.moves += 1;
            self.move_order(cross_move)
        } else if r < 90 {
            self.mix.cancels += 1;
            self.cancel()
        } else {
            self.mix.iocs += 1;
            self.new_order(TimeInForce::Ioc, true, ioc_qty)
        }
    }

    /// One operation of the mix. The share of crossing places and moves, and the IOC sizes,
    /// lean against the distance from the resting target so the book stays around it.
    fn mix_op(&mut self) -> (Command, PeerOp) {
        let live = self.tracker.live.orders.len();
        let target = self.p.resting_target;
        let (cross_place, cross_move, ioc_qty) = if live > target + target / 20 {
            (0.5, 0.04, 20..=200)
        } else if live + target / 20 < target {
            (0.0, 0.0, 1..=10)
        } else {
            (0.1, 0.01, 5..=60)
        };
        let r = self.rng.gen_range(0..100u32);
        if live == 0 || (82..91).contains(&r) {
            self.mix.places += 1;
            let crossing = self.rng.gen_bool(cross_place);
            self.new_order(TimeInForce::Gtc, crossing, 0..=0)
        } else if r < 82 {
            self.mix.moves += 1;
            self.move_order(cross_move)
        } else if r < 97 {
            self.mix.cancels += 1;
            self.cancel()
        } else {
            self.mix.iocs += 1;
            self.new_order(TimeInForce::Ioc, true, ioc_qty)
        }
    }
}

fn peer_op(
    kind: PeerOpKind,
    side: Side,
    instrument: InstrumentId,
    id: u64,
    price: PriceTicks,
    qty: QtyLots,
) -> PeerOp {
    PeerOp {
        kind,
        side,
        instrument,
        id,
        price: price as u64,
        qty,
    }
}

/// Generates a stream of `ops` operations of `workload` from `seed`.
pub fn generate(workload: Workload, seed: u64, ops: usize) -> Result<Stream, String> {
    generate_with(workload, workload.params()?, seed, ops)
}

/// Generates a stream with the mix of `workload` but the shape `p` (e.g. a scaled-down book
/// for tests).
pub fn generate_with(
    workload: Workload,
    p: MixParams,
    seed: u64,
    ops: usize,
) -> Result<Stream, String> {
    let config = mix_config(&p);
    let book = ReferenceBook::new(config.clone()).map_err(|e| e.to_string())?;
    let mut g = Generator {
        p,
        rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        book,
        tracker: Tracker::default(),
        next_cl_ord_id: 1,
        ts_ns: 0,
        mix: MixCounts::default(),
        stops_target: if workload == Workload::Triggers {
            // 20% of the resting orders: a quarter as many as the plain ones.
            p.resting_target / 4
        } else {
            0
        },
        stops_placed: 0,
        deep: workload == Workload::Deep,
    };

    // Setup: passive GTC orders up to the resting target (untimed when benchmarking).
    let mut setup = Vec::with_capacity(p.resting_target);
    let mut peer_setup = Vec::with_capacity(p.resting_target);
    while g.tracker.live.orders.len() < p.resting_target {
        let (cmd, op) = g.new_order(TimeInForce::Gtc, false, 0..=0);
        g.apply(&cmd);
        setup.push(cmd);
        peer_setup.push(op);
    }
    let mut attempts = 0;
    while g.stops_pending() < g.stops_target && attempts < 100 * g.stops_target {
        attempts += 1;
        let cmd = g.stop_order();
        g.apply_stop(&cmd);
        setup.push(cmd);
        peer_setup.push(peer_op(PeerOpKind::Place, Side::Buy, 1, 0, 0, 0));
    }
    let setup_rejects = g.tracker.rejects;
    let resting_after_setup = g.tracker.live.orders.len();

    let mut cmds = Vec::with_capacity(ops);
    let mut peer_ops = Vec::with_capacity(ops);
    g.mix = MixCounts::default();
    g.tracker.fills = 0;
    let mut marks = Vec::new();
    let (placed_before, fired_before) = (g.stops_placed, g.tracker.triggered);
    for i in 0..ops {
        if g.stops_target > 0 {
            if i % 50 == 0 {
                let price = g.mark();
                g.apply_mark(price);
                marks.push((i, 1, price));
            }
            // Replenish fired stops in place of some of the places.
            if g.stops_pending() < g.stops_target && g.rng.gen_bool(0.3) {
                g.mix.places += 1;
                let cmd = g.stop_order();
                g.apply_stop(&cmd);
                cmds.push(cmd);
                peer_ops.push(peer_op(PeerOpKind::Place, Side::Buy, 1, 0, 0, 0));
                continue;
            }
        }
        let (cmd, op) = if g.deep { g.deep_op() } else { g.mix_op() };
        g.apply(&cmd);
        cmds.push(cmd);
        peer_ops.push(op);
    }
    Ok(Stream {
        workload,
        seed,
        config,
        risk: risk_setup(&p),
        setup,
        ops: cmds,
        marks,
        stops_placed: g.stops_placed - placed_before,
        stops_fired: g.tracker.triggered - fired_before,
        peer_setup,
        peer_ops,
        mix: g.mix,
        rejects: g.tracker.rejects - setup_rejects,
        fills: g.tracker.fills,
        resting_after_setup,
        resting_at_end: g.tracker.live.orders.len(),
        final_hash: g.book.state_hash(),
    })
}
