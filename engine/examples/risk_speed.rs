//! What pre-trade risk costs: the same exchange-core-like stream (82% move = replace to a new
//! price, 9% GTC place some crossing, 6% cancel, 3% IOC; ~1,000 resting orders per instrument)
//! through an engine with risk off (`Engine::new`) and one with risk on (`Engine::with_risk`,
//! every account funded so that risk rejects nothing), in ns per command on-CPU.
//!
//! ```sh
//! cargo run --release -p tpx-engine --example risk_speed -- [commands] [spot|perp|mixed] [accounts]
//! ```
//!
//! `spot`: one spot pair; `perp`: one linear perpetual (margin, positions); `mixed`: two spot
//! pairs and two perpetuals, commands spread over them. Default 3 M commands, `mixed`, 1,000
//! accounts. Both engines run the stream alternately three times; the best run of each is
//! reported (the machine is shared). Fees: maker 2 bps, taker 5 bps.

use std::collections::HashMap;
use std::time::Instant;

use tpx_engine::*;

const MID: PriceTicks = 100_000;
const USDT: AssetId = 1;
const BASES: [AssetId; 2] = [2, 3];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn instruments(kind: &str) -> Vec<InstrumentSpec> {
    let spec = |id, kind| InstrumentSpec {
        id,
        kind,
        tick_size: 1,
        lot_size: 1,
        min_price: 1,
        max_price: 2 * MID,
        min_qty: 1,
        max_qty: 1_000_000,
        min_notional: 0,
    };
    let spot = |id, base| spec(id, InstrumentKind::Spot { base, quote: USDT });
    let perp = |id| spec(id, InstrumentKind::LinearPerp { settle: USDT });
    match kind {
        "spot" => vec![spot(1, BASES[0])],
        "perp" => vec![perp(1)],
        _ => vec![spot(1, BASES[0]), spot(2, BASES[1]), perp(3), perp(4)],
    }
}

fn config(kind: &str, accounts: u32) -> EngineConfig {
    EngineConfig {
        instruments: instruments(kind),
        max_orders: 1 << 16,
        max_accounts: accounts + 2,
    }
}

fn risk_config(kind: &str, accounts: u32) -> RiskConfig {
    RiskConfig {
        assets: vec![USDT, BASES[0], BASES[1]],
        instruments: instruments(kind)
            .iter()
            .map(|s| InstrumentRisk {
                fees: vec![FeeRate {
                    maker_ppm: 200,
                    taker_ppm: 500,
                }],
                ..InstrumentRisk::new(s.id)
            })
            .collect(),
        fee_tiers: 1,
        fee_account: accounts,
        liquidation_account: accounts + 1,
    }
}

/// Deposits that fund every account far beyond what the stream can use.
fn funding(accounts: u32) -> Vec<RiskCommand> {
    let mut out = Vec::new();
    for account in 0..accounts {
        for (i, asset) in [USDT, BASES[0], BASES[1]].into_iter().enumerate() {
            out.push(RiskCommand::Deposit {
                account,
                asset,
                amount: 1 << 50,
                request_id: i as u64 + 1,
            });
        }
    }
    out
}

/// Live orders as the generator sees them, per instrument.
#[derive(Default)]
struct Live {
    list: Vec<(AccountId, ClientOrderId, Side)>,
    at: HashMap<(AccountId, ClientOrderId), usize>,
}

impl Live {
    fn remove(&mut self, key: (AccountId, ClientOrderId)) {
        if let Some(i) = self.at.remove(&key) {
            self.list.swap_remove(i);
            if let Some(&(a, c, _)) = self.list.get(i) {
                self.at.insert((a, c), i);
            }
        }
    }
}

/// The mix, generated against a shadow engine (risk off) so that moves and cancels name live
/// orders. Client ids are unique per account across instruments.
fn generate(kind: &str, accounts: u32, n: usize) -> Vec<Command> {
    let specs = instruments(kind);
    let mut shadow = Engine::new(config(kind, accounts)).unwrap();
    let mut rng = Rng(0x5eed);
    let mut live: Vec<Live> = specs.iter().map(|_| Live::default()).collect();
    let mut by_id: HashMap<OrderId, (usize, AccountId, ClientOrderId, Side)> = HashMap::new();
    let mut next_cl = vec![1u64; accounts as usize];
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let k = rng.below(specs.len() as u64) as usize;
        let instrument = specs[k].id;
        let lv = &live[k];
        let r = rng.below(100);
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        let away = 1 + rng.below(400) as i64;
        let resting = |side| {
            if side == Side::Buy {
                MID - away
            } else {
                MID + away
            }
        };
        let mut new = |account: u32, side, price, qty, tif| {
            let cl = next_cl[account as usize];
            next_cl[account as usize] += 1;
            Command::NewOrder(NewOrder {
                account,
                cl_ord_id: cl,
                instrument,
                side,
                kind: OrderKind::Limit,
                price,
                qty,
                tif,
                post_only: false,
                reduce_only: false,
                stp: StpMode::None,
            })
        };
        let cmd = if lv.list.len() < 1_000 || (82..91).contains(&r) {
            let account = rng.below(u64::from(accounts)) as u32;
            let mut price = resting(side);
            if rng.below(10) == 0 {
                price = if side == Side::Buy { MID + 5 } else { MID - 5 };
            }
            new(account, side, price, 1 + rng.below(100), TimeInForce::Gtc)
        } else if r < 82 {
            let (account, cl, side) = lv.list[rng.below(lv.list.len() as u64) as usize];
            let mut price = resting(side);
            if rng.below(100) < 3 {
                price = if side == Side::Buy { MID + 2 } else { MID - 2 };
            }
            Command::Replace(Replace {
                account,
                orig_cl_ord_id: cl,
                new_cl_ord_id: cl,
                price,
                qty: 1 + rng.below(100),
            })
        } else if r < 97 {
            let (account, cl, _) = lv.list[rng.below(lv.list.len() as u64) as usize];
            Command::Cancel(Cancel {
                account,
                cl_ord_id: cl,
                remaining_qty: 0,
            })
        } else {
            let account = rng.below(u64::from(accounts)) as u32;
            let price = if side == Side::Buy {
                MID + 30
            } else {
                MID - 30
            };
            new(account, side, price, 1 + rng.below(50), TimeInForce::Ioc)
        };
        events.clear();
        shadow.process(0, &cmd, &mut events);
        for e in &events {
            match *e {
                Event::Accepted {
                    account,
                    cl_ord_id,
                    order_id,
                    side,
                    ..
                } => {
                    by_id.insert(order_id, (k, account, cl_ord_id, side));
                }
                Event::BookAdd { order_id, .. } => {
                    let (k, a, c, s) = by_id[&order_id];
                    if !live[k].at.contains_key(&(a, c)) {
                        let len = live[k].list.len();
                        live[k].at.insert((a, c), len);
                        live[k].list.push((a, c, s));
                    }
                }
                Event::Fill {
                    maker_order_id,
                    maker_leaves,
                    taker_order_id,
                    taker_leaves,
                    ..
                } => {
                    for (id, leaves) in [
                        (maker_order_id, maker_leaves),
                        (taker_order_id, taker_leaves),
                    ] {
                        if let (0, Some(&(k, a, c, _))) = (leaves, by_id.get(&id)) {
                            live[k].remove((a, c));
                        }
                    }
                }
                Event::Cancelled {
                    order_id,
                    leaves_qty: 0,
                    ..
                } => {
                    if let Some(&(k, a, c, _)) = by_id.get(&order_id) {
                        live[k].remove((a, c));
                    }
                }
                _ => {}
            }
        }
        out.push(cmd);
    }
    out
}

/// This thread's time on a CPU so far (Linux schedstat; 0 elsewhere).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Counts events and folds a field of each into a checksum, so nothing is optimised away.
#[derive(Default)]
struct Count {
    events: u64,
    risk_events: u64,
    fills: u64,
    rejects: u64,
    checksum: u64,
}

impl EventSink for Count {
    #[inline(always)]
    fn emit(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Fill { trade_id, qty, .. } => {
                self.fills += 1;
                self.checksum ^= trade_id ^ qty;
            }
            Event::Rejected { reason, .. } => {
                self.rejects += 1;
                self.checksum ^= reason as u64;
            }
            Event::Accepted { order_id, .. } => self.checksum ^= order_id,
            _ => {}
        }
    }

    #[inline(always)]
    fn emit_risk(&mut self, event: RiskEvent) {
        self.risk_events += 1;
        if let RiskEvent::Fees { taker_fee, .. } = event {
            self.checksum ^= taker_fee as u64;
        }
    }
}

/// One timed pass: (on-CPU ns per command, wall ns per command, sink).
fn pass(engine: &mut Engine, commands: &[Command]) -> (f64, f64, Count) {
    let mut sink = Count::default();
    let cpu = cpu_ns();
    let start = Instant::now();
    for (i, cmd) in commands.iter().enumerate() {
        engine.process(i as u64, cmd, &mut sink);
    }
    let wall = start.elapsed().as_nanos() as f64 / commands.len() as f64;
    let cpu = cpu_ns().saturating_sub(cpu) as f64 / commands.len() as f64;
    (if cpu > 0.0 { cpu } else { wall }, wall, sink)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(3_000_000, |a| a.parse().expect("a number of commands"));
    let kind = args.next().unwrap_or_else(|| "mixed".into());
    let accounts: u32 = args
        .next()
        .map_or(1_000, |a| a.parse().expect("a number of accounts"));
    let commands = generate(&kind, accounts, n);
    let deposits = funding(accounts);
    let off = || Engine::new(config(&kind, accounts)).unwrap();
    let on = || {
        let mut e =
            Engine::with_risk(config(&kind, accounts), risk_config(&kind, accounts)).unwrap();
        let mut sink = Count::default();
        for d in &deposits {
            e.process_risk(0, d, &mut sink);
        }
        assert_eq!(sink.rejects, 0);
        e
    };
    // For profiling one side alone: RISK_SPEED_ONLY=on|off runs only that engine, 5 times.
    if let Ok(only) = std::env::var("RISK_SPEED_ONLY") {
        for _ in 0..5 {
            let mut engine = if only == "on" { on() } else { off() };
            let (cpu, _, _) = pass(&mut engine, &commands);
            println!("risk {only}: {cpu:.1} ns/command");
        }
        return;
    }
    let (mut best_off, mut best_on) = (f64::MAX, f64::MAX);
    let mut last = None;
    for _ in 0..3 {
        let (cpu_off, _, s_off) = pass(&mut off(), &commands);
        let mut engine = on();
        let (cpu_on, _, s_on) = pass(&mut engine, &commands);
        assert_eq!(s_off.fills, s_on.fills, "risk changed the matching");
        assert_eq!(s_off.rejects, s_on.rejects, "risk rejected something");
        engine.check_invariants().expect("invariants hold");
        best_off = best_off.min(cpu_off);
        best_on = best_on.min(cpu_on);
        last = Some((s_off, s_on));
    }
    let (s_off, s_on) = last.expect("three runs");
    println!(
        "{kind}: {n} commands, {accounts} accounts, {} fills, {} events (+{} risk events)",
        s_off.fills, s_off.events, s_on.risk_events
    );
    println!(
        "risk off: {best_off:.1} ns/command ({:.1} M/s); risk on: {best_on:.1} ns/command \
         ({:.1} M/s); risk costs {:+.1}% time, {:.1}% of risk-off throughput",
        1e3 / best_off,
        1e3 / best_on,
        (best_on / best_off - 1.0) * 100.0,
        (1.0 - best_off / best_on) * 100.0
    );
}
