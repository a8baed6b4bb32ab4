//! A quick, throwaway speed check of the engine on an exchange-core-like mix (82% move =
//! replace to a new price, 9% GTC place some crossing, 6% cancel, 3% IOC; ~1,000 resting
//! orders, one instrument, 100 accounts). The real benchmark is `engine-bench` in `benches/`.
//!
//! ```sh
//! cargo run --release -p tpx-engine --example speed -- [commands] [new-ids]
//! ```
//!
//! Commands are generated first against a shadow engine, then replayed on a fresh engine:
//! once untimed per command (throughput) and once timing every command (latency).

use std::collections::HashMap;
use std::time::Instant;

use tpx_engine::*;

const MID: PriceTicks = 100_000;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        instruments: vec![InstrumentSpec {
            id: 1,
            kind: InstrumentKind::Spot { base: 1, quote: 2 },
            tick_size: 1,
            lot_size: 1,
            min_price: 1,
            max_price: 2 * MID,
            min_qty: 1,
            max_qty: 1_000_000,
            min_notional: 0,
        }],
        max_orders: std::env::var("MAX_ORDERS").map_or(1 << 16, |v| v.parse().unwrap()),
        max_accounts: 100,
    }
}

/// Live orders as the generator sees them, kept up to date from the shadow engine's events.
#[derive(Default)]
struct Live {
    list: Vec<(AccountId, ClientOrderId, Side)>,
    at: HashMap<(AccountId, ClientOrderId), usize>,
    by_id: HashMap<OrderId, (AccountId, ClientOrderId, Side)>,
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

    fn apply(&mut self, events: &[Event]) {
        for e in events {
            match *e {
                Event::Accepted {
                    account,
                    cl_ord_id,
                    order_id,
                    side,
                    ..
                } => {
                    self.by_id.insert(order_id, (account, cl_ord_id, side));
                }
                Event::Replaced {
                    account,
                    orig_cl_ord_id,
                    new_cl_ord_id,
                    order_id,
                    ..
                } => {
                    let side = self.by_id[&order_id].2;
                    self.by_id.insert(order_id, (account, new_cl_ord_id, side));
                    if let Some(i) = self.at.remove(&(account, orig_cl_ord_id)) {
                        self.list[i].1 = new_cl_ord_id;
                        self.at.insert((account, new_cl_ord_id), i);
                    }
                }
                Event::BookAdd { order_id, .. } => {
                    let o = self.by_id[&order_id];
                    if !self.at.contains_key(&(o.0, o.1)) {
                        self.at.insert((o.0, o.1), self.list.len());
                        self.list.push(o);
                    }
                }
                Event::Fill {
                    maker_account,
                    maker_cl_ord_id,
                    maker_leaves,
                    taker_account,
                    taker_cl_ord_id,
                    taker_leaves,
                    ..
                } => {
                    if maker_leaves == 0 {
                        self.remove((maker_account, maker_cl_ord_id));
                    }
                    if taker_leaves == 0 {
                        self.remove((taker_account, taker_cl_ord_id));
                    }
                }
                Event::Cancelled {
                    account,
                    cl_ord_id,
                    leaves_qty: 0,
                    ..
                } => {
                    self.remove((account, cl_ord_id));
                }
                _ => {}
            }
        }
    }
}

fn generate(n: usize, new_ids: bool) -> Vec<Command> {
    let mut shadow = Engine::new(config()).unwrap();
    let mut rng = Rng(0x5eed);
    let mut live = Live::default();
    let mut next_cl = vec![1u64; 100];
    let mut events = Vec::new();
    let mut out = Vec::with_capacity(n);
    let limit = |account: u32, cl, side, price, qty, tif| NewOrder {
        account,
        cl_ord_id: cl,
        instrument: 1,
        side,
        kind: OrderKind::Limit,
        price,
        qty,
        tif,
        post_only: false,
        reduce_only: false,
        stp: StpMode::None,
    };
    while out.len() < n {
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
        let cmd = if live.list.len() < 1_000 || (82..91).contains(&r) {
            let account = rng.below(100) as u32;
            let cl = next_cl[account as usize];
            next_cl[account as usize] += 1;
            let mut price = resting(side);
            if rng.below(10) == 0 {
                price = if side == Side::Buy { MID + 5 } else { MID - 5 };
            }
            Command::NewOrder(limit(
                account,
                cl,
                side,
                price,
                1 + rng.below(100),
                TimeInForce::Gtc,
            ))
        } else if r < 82 {
            let (account, cl, side) = live.list[rng.below(live.list.len() as u64) as usize];
            let mut price = resting(side);
            if rng.below(100) < 3 {
                price = if side == Side::Buy { MID + 2 } else { MID - 2 };
            }
            let new = if new_ids {
                let c = next_cl[account as usize];
                next_cl[account as usize] += 1;
                c
            } else {
                cl
            };
            Command::Replace(Replace {
                account,
                orig_cl_ord_id: cl,
                new_cl_ord_id: new,
                price,
                qty: 1 + rng.below(100),
            })
        } else if r < 97 {
            let (account, cl, _) = live.list[rng.below(live.list.len() as u64) as usize];
            Command::Cancel(Cancel {
                account,
                cl_ord_id: cl,
                remaining_qty: 0,
            })
        } else {
            let account = rng.below(100) as u32;
            let cl = next_cl[account as usize];
            next_cl[account as usize] += 1;
            let price = if side == Side::Buy {
                MID + 30
            } else {
                MID - 30
            };
            Command::NewOrder(limit(
                account,
                cl,
                side,
                price,
                1 + rng.below(50),
                TimeInForce::Ioc,
            ))
        };
        events.clear();
        shadow.process(0, &cmd, &mut events);
        live.apply(&events);
        out.push(cmd);
    }
    eprintln!(
        "generated {n} commands; {} live at the end",
        shadow.live_orders()
    );
    out
}

/// This thread's time on a CPU so far (Linux schedstat; 0 elsewhere): unlike wall time, it
/// leaves out the time other processes had the core.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(5_000_000, |a| a.parse().expect("a number of commands"));
    let new_ids = args.next().is_some_and(|a| a == "new-ids");
    let commands = generate(n, new_ids);
    let mut sink: Vec<Event> = Vec::with_capacity(1_024);

    let mut engine = Engine::new(config()).unwrap();
    let mut events = 0usize;
    let cpu_start = cpu_ns();
    let start = Instant::now();
    for (i, cmd) in commands.iter().enumerate() {
        sink.clear();
        engine.process(i as u64, cmd, &mut sink);
        events += sink.len();
    }
    let elapsed = start.elapsed();
    let cpu = cpu_ns().saturating_sub(cpu_start);
    let ns_per_op = elapsed.as_nanos() as f64 / n as f64;
    let cpu_ns_per_op = cpu as f64 / n as f64;
    println!(
        "throughput: {n} commands, {events} events in {:.3} s wall: {ns_per_op:.1} ns/command; \
         on-CPU {cpu_ns_per_op:.1} ns/command = {:.1} M commands/s",
        elapsed.as_secs_f64(),
        1e3 / cpu_ns_per_op
    );

    let mut engine = Engine::new(config()).unwrap();
    let mut lat = Vec::with_capacity(n);
    for (i, cmd) in commands.iter().enumerate() {
        sink.clear();
        let t = Instant::now();
        engine.process(i as u64, cmd, &mut sink);
        lat.push(t.elapsed().as_nanos() as u32);
    }
    let mut empty = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        let t = Instant::now();
        empty.push(t.elapsed().as_nanos() as u32);
    }
    let p = |v: &[u32], q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    let mut by_kind: [Vec<u32>; 4] = Default::default();
    for (cmd, &ns) in commands.iter().zip(&lat) {
        let k = match cmd {
            Command::Replace(_) => 0,
            Command::NewOrder(o) if o.tif == TimeInForce::Gtc => 1,
            Command::NewOrder(_) => 2,
            _ => 3,
        };
        by_kind[k].push(ns);
    }
    for (name, v) in ["replace", "gtc", "ioc", "cancel"].iter().zip(&mut by_kind) {
        v.sort_unstable();
        println!(
            "  {name}: {} commands, p50 {} p99 {} p99.9 {}",
            v.len(),
            p(v, 0.5),
            p(v, 0.99),
            p(v, 0.999)
        );
    }
    lat.sort_unstable();
    empty.sort_unstable();
    println!(
        "latency ns (timer overhead p50 {}): p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}",
        p(&empty, 0.5),
        p(&lat, 0.5),
        p(&lat, 0.9),
        p(&lat, 0.99),
        p(&lat, 0.999),
        p(&lat, 0.9999),
        lat[lat.len() - 1]
    );
    println!("state hash {:#018x}", engine.state_hash());
}
