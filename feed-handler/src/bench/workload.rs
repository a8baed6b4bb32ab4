//! A seeded order stream for the end-to-end tests and `md-bench`: generated up front against a
//! shadow engine (so cancels and replaces name live orders), then replayed into the engine under
//! test. Market makers quote around a drifting mid, takers cross now and then, with cancels,
//! cancel-downs, replaces (same and new ids), IOC, FOK and market orders, self-trade
//! prevention, post-only, mass cancels and, optionally, halts, resumes and reference prices.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_engine::{
    Cancel, Command, Engine, EngineConfig, Event, EventSink, InstrumentKind, InstrumentSpec,
    MassCancel, NewOrder, OrderKind, Replace, Side, StpMode, TimeInForce,
};

/// The stream's shape.
#[derive(Clone, Debug)]
pub struct WorkloadParams {
    /// Instruments 1..=n.
    pub instruments: u32,
    pub accounts: u32,
    /// Resting orders the makers aim for (per instrument).
    pub resting_target: usize,
    /// Starting mid price (ticks).
    pub mid: i64,
    /// Share of commands (per mille) that take liquidity.
    pub taker_per_mille: u32,
    /// Halts, resumes and reference prices now and then.
    pub admin: bool,
}

impl Default for WorkloadParams {
    fn default() -> Self {
        WorkloadParams {
            instruments: 2,
            accounts: 8,
            resting_target: 200,
            mid: 10_000,
            taker_per_mille: 60,
            admin: true,
        }
    }
}

impl WorkloadParams {
    /// About 1,000 resting orders on one instrument, mostly replaces (an exchange-core-like
    /// mix, as `engine-bench` uses), no admin commands.
    pub fn exchange_core_like() -> WorkloadParams {
        WorkloadParams {
            instruments: 1,
            accounts: 100,
            resting_target: 1_000,
            mid: 100_000,
            taker_per_mille: 30,
            admin: false,
        }
    }

    /// Quotes only (no crossing, no admin): one market-data message per command.
    pub fn passive() -> WorkloadParams {
        WorkloadParams {
            instruments: 1,
            accounts: 16,
            resting_target: 500,
            mid: 100_000,
            taker_per_mille: 0,
            admin: false,
        }
    }

    /// The engine the stream is meant for.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            instruments: (1..=self.instruments)
                .map(|id| InstrumentSpec {
                    id,
                    kind: if id % 2 == 1 {
                        InstrumentKind::Spot { base: 1, quote: 2 }
                    } else {
                        InstrumentKind::LinearPerp { settle: 2 }
                    },
                    tick_size: 1,
                    lot_size: 1,
                    min_price: 1,
                    max_price: self.mid * 2,
                    min_qty: 1,
                    max_qty: 10_000,
                    min_notional: 0,
                })
                .collect(),
            max_orders: (self.resting_target * self.instruments as usize * 4 + 1024) as u32,
            max_accounts: self.accounts + 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct LiveOrder {
    account: u32,
    cl_ord_id: u64,
    instrument: u32,
    side: Side,
}

/// Tracks live orders from the shadow engine's events.
#[derive(Debug, Default)]
struct Tracker {
    /// order id -> its owner and cl_ord_id (accepted orders, until they leave).
    ids: HashMap<u64, LiveOrder>,
    /// Resting order ids (for picking one at random) and their positions.
    live: Vec<u64>,
    pos: HashMap<u64, usize>,
}

impl Tracker {
    fn rest(&mut self, id: u64) {
        if !self.pos.contains_key(&id) {
            self.pos.insert(id, self.live.len());
            self.live.push(id);
        }
    }

    fn gone(&mut self, id: u64) {
        if let Some(i) = self.pos.remove(&id) {
            self.live.swap_remove(i);
            if let Some(&moved) = self.live.get(i) {
                self.pos.insert(moved, i);
            }
        }
    }
}

impl EventSink for Tracker {
    fn emit(&mut self, e: Event) {
        match e {
            Event::Accepted {
                account,
                cl_ord_id,
                order_id,
                instrument,
                side,
                ..
            } => {
                self.ids.insert(
                    order_id,
                    LiveOrder {
                        account,
                        cl_ord_id,
                        instrument,
                        side,
                    },
                );
            }
            Event::Replaced {
                order_id,
                new_cl_ord_id,
                ..
            } => {
                if let Some(o) = self.ids.get_mut(&order_id) {
                    o.cl_ord_id = new_cl_ord_id;
                }
            }
            Event::BookAdd { order_id, .. } => self.rest(order_id),
            Event::BookDelete { order_id, .. } => self.gone(order_id),
            Event::Fill {
                maker_order_id,
                maker_leaves: 0,
                ..
            } => self.gone(maker_order_id),
            Event::Cancelled {
                order_id,
                leaves_qty: 0,
                ..
            } => self.gone(order_id),
            _ => {}
        }
    }
}

/// Generates `n` commands from `seed`.
pub fn generate(p: &WorkloadParams, seed: u64, n: usize) -> Vec<Command> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut shadow = Engine::new(p.engine_config()).expect("workload engine config");
    let mut t = Tracker::default();
    let mut mids: Vec<i64> = vec![p.mid; p.instruments as usize + 1];
    let mut halted = vec![false; p.instruments as usize + 1];
    let mut next_cl: Vec<u64> = vec![1; p.accounts as usize + 1];
    let mut out = Vec::with_capacity(n);
    let target = p.resting_target * p.instruments as usize;
    for i in 0..n {
        let inst = rng.gen_range(1..=p.instruments);
        let account = rng.gen_range(1..=p.accounts);
        if rng.gen_ratio(1, 64) {
            let m = &mut mids[inst as usize];
            *m = (*m + rng.gen_range(-3..=3)).clamp(p.mid / 2, p.mid * 3 / 2);
        }
        let mid = mids[inst as usize];
        let r = rng.gen_range(0..1000u32);
        let cmd = if p.admin && halted[inst as usize] && r < 100 {
            halted[inst as usize] = false;
            Command::Resume { instrument: inst }
        } else if p.admin && r < 2 {
            halted[inst as usize] = true;
            Command::Halt { instrument: inst }
        } else if p.admin && r < 5 {
            Command::SetReferencePrice {
                instrument: inst,
                price: mid,
                band_bps: 0,
            }
        } else if p.admin && r < 6 {
            Command::MassCancel(MassCancel {
                account,
                instrument: if rng.gen_bool(0.5) { Some(inst) } else { None },
            })
        } else if r < 6 + p.taker_per_mille {
            // Takers: IOC, FOK or market, crossing the spread.
            let side = if rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let dist = rng.gen_range(0..25);
            let price = match side {
                Side::Buy => mid + dist,
                Side::Sell => mid - dist,
            };
            let (kind, tif) = match rng.gen_range(0..10) {
                0 => (OrderKind::Limit, TimeInForce::Fok),
                1 => (OrderKind::Market, TimeInForce::Ioc),
                2..=3 => (OrderKind::Limit, TimeInForce::Gtc),
                _ => (OrderKind::Limit, TimeInForce::Ioc),
            };
            new_order(
                &mut rng,
                &mut next_cl,
                account,
                inst,
                side,
                price,
                kind,
                tif,
            )
        } else if t.live.len() < target / 2 || (r < 450 && t.live.len() < target * 2) {
            // Makers: passive quotes a few ticks from the mid.
            let side = if rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let dist = rng.gen_range(1..40);
            let price = match side {
                Side::Buy => mid - dist,
                Side::Sell => mid + dist,
            };
            new_order(
                &mut rng,
                &mut next_cl,
                account,
                inst,
                side,
                price,
                OrderKind::Limit,
                TimeInForce::Gtc,
            )
        } else if let Some(o) = pick(&mut rng, &t) {
            let mid = mids[o.instrument as usize];
            if r < 800 {
                // Replace: a new price on the same side (sometimes crossing), a new quantity,
                // the same or a new cl_ord_id.
                let dist = rng.gen_range(-2..40);
                let price = match o.side {
                    Side::Buy => mid - dist,
                    Side::Sell => mid + dist,
                };
                let new_cl = if rng.gen_bool(0.5) {
                    o.cl_ord_id
                } else {
                    take_cl(&mut next_cl, o.account)
                };
                Command::Replace(Replace {
                    account: o.account,
                    orig_cl_ord_id: o.cl_ord_id,
                    new_cl_ord_id: new_cl,
                    price,
                    qty: rng.gen_range(1..60),
                })
            } else {
                Command::Cancel(Cancel {
                    account: o.account,
                    cl_ord_id: o.cl_ord_id,
                    remaining_qty: if rng.gen_bool(0.3) {
                        rng.gen_range(1..20)
                    } else {
                        0
                    },
                })
            }
        } else {
            continue;
        };
        shadow.process(i as u64, &cmd, &mut t);
        out.push(cmd);
    }
    out
}

fn pick(rng: &mut Xoshiro256PlusPlus, t: &Tracker) -> Option<LiveOrder> {
    if t.live.is_empty() {
        return None;
    }
    let id = t.live[rng.gen_range(0..t.live.len())];
    t.ids.get(&id).copied()
}

fn take_cl(next_cl: &mut [u64], account: u32) -> u64 {
    let c = next_cl[account as usize];
    next_cl[account as usize] += 1;
    c
}

#[allow(clippy::too_many_arguments)]
fn new_order(
    rng: &mut Xoshiro256PlusPlus,
    next_cl: &mut [u64],
    account: u32,
    instrument: u32,
    side: Side,
    price: i64,
    kind: OrderKind,
    tif: TimeInForce,
) -> Command {
    let stp = match rng.gen_range(0..20) {
        0 => StpMode::ExpireTaker,
        1 => StpMode::ExpireMaker,
        2 => StpMode::ExpireBoth,
        3 => StpMode::DecrementAndCancel,
        _ => StpMode::None,
    };
    Command::NewOrder(NewOrder {
        account,
        cl_ord_id: take_cl(next_cl, account),
        instrument,
        side,
        kind,
        price,
        qty: rng.gen_range(1..50),
        tif,
        post_only: kind == OrderKind::Limit && tif == TimeInForce::Gtc && rng.gen_ratio(1, 20),
        reduce_only: false,
        stp,
        ext: tpx_engine::OrderExt::NONE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_busy_and_mostly_accepted() {
        let p = WorkloadParams::default();
        let cmds = generate(&p, 7, 5_000);
        assert!(cmds.len() > 4_900);
        let mut e = Engine::new(p.engine_config()).unwrap();
        let mut ev = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            e.process(i as u64, c, &mut ev);
        }
        let count = |f: &dyn Fn(&Event) -> bool| ev.iter().filter(|e| f(e)).count();
        let rejects = count(&|e| matches!(e, Event::Rejected { .. }));
        let fills = count(&|e| matches!(e, Event::Fill { .. }));
        let replaces = count(&|e| matches!(e, Event::BookReplace { .. }));
        assert!(rejects < cmds.len() / 5, "{rejects} rejects");
        assert!(fills > 100, "{fills} fills");
        assert!(replaces > 100, "{replaces} replaces");
        assert!(e.live_orders() > 100);
    }
}
