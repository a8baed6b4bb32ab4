//! Property tests of accounts and risk: random multi-account, multi-instrument streams of every
//! command kind, bad inputs included. After every command:
//!
//! - the engine's own invariants (`check_invariants`: holds, open quantities, lists,
//!   reduce-only, limits, conservation);
//! - independently of the engine's bookkeeping: per asset, all balances plus holds (fees
//!   included: the fee account is an account) equal the deposits minus withdrawals the stream
//!   made; per perpetual, positions add up to zero and realised PnL, fees and funding of every
//!   account plus the venue's add up to zero; positions rebuilt from `Fill` and `Liquidated`
//!   events equal the engine's, and no fill of a reduce-only order ever increased a position;
//! - every deliberately bad input (over-withdrawal, reused request id, unknown instrument,
//!   reduce-only that would increase) gets exactly its typed reject.
//!
//! Then: the same stream gives the same events and hash twice, a snapshot at any point restores
//! to an engine that continues identically, and `apply` never allocates.

mod common;

use std::collections::HashMap;

use proptest::prelude::*;

use common::random::{allocations, Rng};
use common::risk::*;
use tpx_engine::*;

const INSTRUMENTS: [InstrumentId; 4] = [SPOT, SPOT2, PERP, PERP2];
const ASSETS: [AssetId; 3] = [USDT, BTC, ETH];
const PERPS: [InstrumentId; 2] = [PERP, PERP2];

fn mid(instrument: InstrumentId) -> i64 {
    match instrument {
        SPOT => 9_000,
        SPOT2 => 1_000,
        PERP => 1_000,
        _ => 100,
    }
}

/// What a bad input must be answered with.
type Expect = Option<RejectReason>;

/// The generator: reads the engine's state to make inputs that hit (live client ids, existing
/// positions) and to make bad inputs whose reject is certain.
struct Gen {
    rng: Rng,
    step: u64,
}

impl Gen {
    fn account(&mut self) -> AccountId {
        // Mostly traders 0..=7; the venue accounts now and then.
        if self.rng.below(30) == 0 {
            self.rng.pick(&[FEE, LIQ])
        } else {
            self.rng.below(8) as AccountId
        }
    }

    fn price(&mut self, instrument: InstrumentId) -> i64 {
        let m = mid(instrument);
        match self.rng.below(60) {
            0 => 0,
            1 => 20_001,
            _ => m - m / 20 + self.rng.below((m / 10) as u64 + 1) as i64,
        }
    }

    /// A live order's client id of `account` half the time, else a random one.
    fn client_id(&mut self, e: &Engine, account: AccountId) -> u64 {
        if self.rng.below(2) == 0 {
            let live: Vec<u64> = INSTRUMENTS
                .iter()
                .flat_map(|&i| e.l3(i))
                .filter(|o| o.account == account)
                .map(|o| o.cl_ord_id)
                .collect();
            if !live.is_empty() {
                return live[self.rng.below(live.len() as u64) as usize];
            }
        }
        self.rng.below(30)
    }

    fn next_request(&self, e: &Engine, account: AccountId) -> u64 {
        e.account_risk(account).unwrap().1 + 1
    }

    /// One order in four uses the order types: a trigger on the last or the mark price near
    /// the middle, GTD expiring within 40 inputs, an iceberg, a post-only slide,
    /// close-position, an OCO link (many combinations are refused, which is tested too).
    fn order_types(&mut self, instrument: InstrumentId) -> OrderExt {
        if self.rng.below(4) != 0 {
            return OrderExt::NONE;
        }
        let m = mid(instrument);
        let mut x = OrderExt::NONE;
        if self.rng.below(2) == 0 {
            let off = self.rng.below((m / 10).max(2) as u64) as i64 - m / 20;
            x.trigger = Some(Trigger {
                price: (m + off).max(1),
                source: if self.rng.below(2) == 0 {
                    TriggerSource::Last
                } else {
                    TriggerSource::Mark
                },
                direction: if off >= 0 {
                    TriggerDirection::RisesTo
                } else {
                    TriggerDirection::FallsTo
                },
            });
            x.close_position = self.rng.below(6) == 0;
        } else if self.rng.below(2) == 0 {
            x.display_qty = 1 + self.rng.below(3);
        } else {
            x.post_only_slide = true;
        }
        if self.rng.below(3) == 0 {
            x.expire_ts_ns = self.step + 1 + self.rng.below(40);
        }
        if self.rng.below(4) == 0 {
            x.oco_cl_ord_id = self.rng.below(30);
        }
        x
    }

    fn input(&mut self, e: &Engine) -> (EngineInput, Expect) {
        self.step += 1;
        let account = self.account();
        let instrument = if self.rng.below(50) == 0 {
            99
        } else {
            self.rng.pick(&INSTRUMENTS)
        };
        let cl = self.rng.below(30);
        let cmd = |c| (EngineInput::Command(c), None);
        let risk = |c| (EngineInput::Risk(c), None);
        match self.rng.below(1_000) {
            280..=319 => {
                // A reduce-only order its position allows, resting away from the touch.
                let instrument = self.rng.pick(&PERPS);
                let p = e.position(account, instrument).unwrap();
                let (side, cap, open) = if p.size >= 0 {
                    (Side::Sell, p.size as u64, p.reduce_only_sell)
                } else {
                    (Side::Buy, p.size.unsigned_abs(), p.reduce_only_buy)
                };
                let qty = (cap - open).min(1 + self.rng.below(10)).max(1);
                let m = mid(instrument);
                let away = 1 + self.rng.below((m / 20) as u64) as i64;
                let price = if side == Side::Sell {
                    m + away
                } else {
                    m - away
                };
                cmd(Command::NewOrder(NewOrder {
                    reduce_only: true,
                    ..order(account, cl, instrument, side, price, qty)
                }))
            }
            0..=279 => {
                let perp = PERPS.contains(&instrument);
                let mut o = NewOrder {
                    account,
                    cl_ord_id: cl,
                    instrument,
                    side: self.rng.pick(&[Side::Buy, Side::Sell]),
                    kind: if self.rng.below(20) == 0 {
                        OrderKind::Market
                    } else {
                        OrderKind::Limit
                    },
                    price: self.price(instrument),
                    qty: 1 + self.rng.below(if instrument == SPOT { 8 } else { 20 }),
                    tif: self.rng.pick(&[
                        TimeInForce::Gtc,
                        TimeInForce::Gtc,
                        TimeInForce::Gtc,
                        TimeInForce::Ioc,
                        TimeInForce::Fok,
                    ]),
                    post_only: self.rng.below(10) == 0,
                    reduce_only: self.rng.below(if perp { 4 } else { 40 }) == 0,
                    stp: self.rng.pick(&[
                        StpMode::None,
                        StpMode::None,
                        StpMode::ExpireTaker,
                        StpMode::ExpireMaker,
                        StpMode::ExpireBoth,
                        StpMode::DecrementAndCancel,
                    ]),
                    ext: self.order_types(instrument),
                };
                // Mostly what the order types allow.
                if o.ext.expire_ts_ns != 0 && o.kind == OrderKind::Limit {
                    o.tif = TimeInForce::Gtd;
                }
                if o.ext.post_only_slide {
                    o.post_only = o.kind == OrderKind::Limit;
                }
                if o.ext.display_qty != 0 {
                    o.reduce_only = false;
                }
                cmd(Command::NewOrder(o))
            }
            320..=499 => {
                let at = self.rng.pick(&INSTRUMENTS);
                let cl = self.client_id(e, account);
                cmd(Command::Replace(Replace {
                    account,
                    orig_cl_ord_id: cl,
                    new_cl_ord_id: if self.rng.below(3) == 0 {
                        self.rng.below(30)
                    } else {
                        cl
                    },
                    price: self.price(at),
                    qty: 1 + self.rng.below(20),
                }))
            }
            500..=599 => cmd(Command::Cancel(Cancel {
                account,
                cl_ord_id: self.client_id(e, account),
                remaining_qty: if self.rng.below(2) == 0 {
                    0
                } else {
                    self.rng.below(10)
                },
            })),
            600..=619 => cmd(Command::MassCancel(MassCancel {
                account,
                instrument: self.rng.pick(&[None, Some(instrument)]),
            })),
            620..=719 => {
                let asset = if self.rng.below(30) == 0 {
                    42
                } else {
                    self.rng.pick(&ASSETS)
                };
                // Accounts 0-3 are well funded, 4-7 run on thin margin.
                let scale = if account < 4 { 40 } else { 1 };
                let amount = match asset {
                    USDT => 1 + self.rng.below(5_000 * scale),
                    _ => 1 + self.rng.below(50 * scale),
                };
                let request_id = self.next_request(e, account) + self.rng.below(3);
                risk(RiskCommand::Deposit {
                    account,
                    asset,
                    amount: if self.rng.below(50) == 0 { 0 } else { amount },
                    request_id,
                })
            }
            720..=779 => {
                let asset = self.rng.pick(&ASSETS);
                let request_id = self.next_request(e, account);
                risk(RiskCommand::Withdraw {
                    account,
                    asset,
                    amount: 1 + self.rng.below(50_000),
                    request_id,
                })
            }
            780..=819 => {
                let instrument = self.rng.pick(&[PERP, PERP, PERP2, PERP2, SPOT]);
                // Marks move up to 15% away from the middle.
                let m = mid(instrument);
                let price = m - m * 15 / 100 + self.rng.below((m * 30 / 100) as u64 + 1) as i64;
                risk(RiskCommand::SetMarkPrice { instrument, price })
            }
            820..=839 => {
                let instrument = self.rng.pick(&[PERP, PERP2, SPOT]);
                let last = e.last_funding_id(instrument).unwrap_or(0);
                risk(RiskCommand::ApplyFunding {
                    instrument,
                    rate_ppm: self.rng.below(2_001) as i64 - 1_000,
                    funding_id: last + 1 + self.rng.below(3),
                })
            }
            840..=859 => {
                let instrument = self.rng.pick(&PERPS);
                // Half the time, an account below maintenance margin if there is one.
                let flagged: Vec<AccountId> = (0..8)
                    .filter(|&a| e.balance(a, USDT).unwrap().margin_call)
                    .collect();
                let account = if !flagged.is_empty() && self.rng.below(2) == 0 {
                    flagged[self.rng.below(flagged.len() as u64) as usize]
                } else {
                    account
                };
                // Mostly a fresh request id, sometimes one already used.
                let request_id = self.next_request(e, account) - self.rng.below(2);
                risk(RiskCommand::Liquidate {
                    account,
                    instrument,
                    cl_ord_id: 1_000_000 + self.step,
                    price: self.price(instrument),
                    request_id,
                })
            }
            860..=869 => risk(RiskCommand::SetFeeTier {
                account,
                tier: self.rng.below(3) as u8,
            }),
            870..=871 => cmd(Command::Halt {
                instrument: self.rng.pick(&[SPOT, SPOT2, PERP]),
            }),
            872..=889 => cmd(Command::Resume {
                instrument: self.rng.pick(&[SPOT, SPOT2, PERP]),
            }),
            890..=894 => {
                let instrument = self.rng.pick(&[SPOT, SPOT2, PERP]);
                cmd(Command::SetReferencePrice {
                    instrument,
                    price: mid(instrument),
                    band_bps: self.rng.pick(&[0, 0, 2_000]),
                })
            }
            // Bad inputs with a certain reject.
            895..=924 => {
                // Over-withdrawal: more than everything the account has.
                let asset = self.rng.pick(&ASSETS);
                let b = e.balance(account, asset).unwrap();
                let amount = (b.available.max(0) + b.held) as u64 + 1 + self.rng.below(100);
                let request_id = self.next_request(e, account);
                (
                    EngineInput::Risk(RiskCommand::Withdraw {
                        account,
                        asset,
                        amount,
                        request_id,
                    }),
                    Some(RejectReason::InsufficientBalance),
                )
            }
            925..=949 => {
                // A request id already used (or 0).
                let last = e.account_risk(account).unwrap().1;
                let request_id = last - self.rng.below(last.min(3) + 1);
                let deposit = RiskCommand::Deposit {
                    account,
                    asset: self.rng.pick(&ASSETS),
                    amount: 1 + self.rng.below(1_000),
                    request_id,
                };
                let withdraw = RiskCommand::Withdraw {
                    account,
                    asset: USDT,
                    amount: 1,
                    request_id,
                };
                // A funding id already applied to the perpetual (or 0).
                let perp = self.rng.pick(&PERPS);
                let last = e.last_funding_id(perp).unwrap();
                let funding = RiskCommand::ApplyFunding {
                    instrument: perp,
                    rate_ppm: 100,
                    funding_id: last - self.rng.below(last.min(3) + 1),
                };
                let liquidate = RiskCommand::Liquidate {
                    account,
                    instrument: self.rng.pick(&PERPS),
                    cl_ord_id: 1_000_000 + self.step,
                    price: 1,
                    request_id,
                };
                (
                    EngineInput::Risk(self.rng.pick(&[deposit, withdraw, funding, liquidate])),
                    Some(RejectReason::DuplicateRequest),
                )
            }
            950..=969 => (
                EngineInput::Command(Command::NewOrder(order(account, cl, 99, Side::Buy, 100, 1))),
                Some(RejectReason::UnknownInstrument),
            ),
            _ => {
                // Reduce-only that would increase: on PERP2 (never halted or banded here),
                // one lot more than the position lets that side reduce.
                let p = e.position(account, PERP2).unwrap();
                let side = self.rng.pick(&[Side::Buy, Side::Sell]);
                let (cap, open) = match side {
                    Side::Sell => (p.size.max(0) as u64, p.reduce_only_sell),
                    Side::Buy => (p.size.min(0).unsigned_abs(), p.reduce_only_buy),
                };
                let o = NewOrder {
                    reduce_only: true,
                    ..order(
                        account,
                        2_000_000 + self.step,
                        PERP2,
                        side,
                        mid(PERP2) + if side == Side::Sell { 30 } else { -30 },
                        cap - open + 1,
                    )
                };
                (
                    EngineInput::Command(Command::NewOrder(o)),
                    Some(RejectReason::ReduceOnlyWouldIncrease),
                )
            }
        }
    }
}

/// The test's own books: deposits, positions from events, reduce-only order ids.
#[derive(Default)]
struct Ledger {
    net: HashMap<AssetId, i128>,
    pos: HashMap<(AccountId, InstrumentId), i64>,
    /// Order id -> (account, instrument, reduce_only), from `Accepted`.
    orders: HashMap<OrderId, (AccountId, InstrumentId, bool)>,
}

impl Ledger {
    fn apply(&mut self, input: &EngineInput, out: &[EngineOutput]) -> Result<(), String> {
        let rejected = out
            .iter()
            .any(|o| matches!(o, EngineOutput::Event(Event::Rejected { .. })));
        match *input {
            EngineInput::Risk(RiskCommand::Deposit { asset, amount, .. }) if !rejected => {
                *self.net.entry(asset).or_default() += i128::from(amount);
            }
            EngineInput::Risk(RiskCommand::Withdraw { asset, amount, .. }) if !rejected => {
                *self.net.entry(asset).or_default() -= i128::from(amount);
            }
            _ => {}
        }
        // A liquidation's own order is never reduce-only.
        let ro = matches!(input, EngineInput::Command(Command::NewOrder(o)) if o.reduce_only);
        for o in out {
            match *o {
                EngineOutput::Event(Event::Accepted {
                    account,
                    order_id,
                    instrument,
                    ..
                }) => {
                    self.orders.insert(order_id, (account, instrument, ro));
                }
                EngineOutput::Event(Event::Fill {
                    instrument,
                    qty,
                    taker_side,
                    maker_order_id,
                    taker_order_id,
                    ..
                }) if PERPS.contains(&instrument) => {
                    for (id, side) in [
                        (maker_order_id, taker_side.opposite()),
                        (taker_order_id, taker_side),
                    ] {
                        let (account, _, ro) = self.orders[&id];
                        let p = self.pos.entry((account, instrument)).or_default();
                        let before = *p;
                        *p += match side {
                            Side::Buy => qty as i64,
                            Side::Sell => -(qty as i64),
                        };
                        if ro && (p.abs() > before.abs() || p.signum() * before.signum() < 0) {
                            return Err(format!(
                                "reduce-only order {id} of account {account} took the position \
                                 from {before} to {p}"
                            ));
                        }
                    }
                }
                EngineOutput::Risk(RiskEvent::Liquidated {
                    account,
                    instrument,
                    size,
                    ..
                }) => {
                    *self.pos.entry((account, instrument)).or_default() -= size;
                    *self.pos.entry((LIQ, instrument)).or_default() += size;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check(&self, e: &Engine) -> Result<(), String> {
        for asset in ASSETS {
            let total: i128 = (0..ACCOUNTS)
                .map(|a| {
                    let b = e.balance(a, asset).unwrap();
                    i128::from(b.available) + i128::from(b.held)
                })
                .sum();
            let net = self.net.get(&asset).copied().unwrap_or(0);
            if total != net {
                return Err(format!(
                    "asset {asset}: balances and holds add up to {total}, deposits minus \
                     withdrawals are {net}"
                ));
            }
        }
        for instrument in PERPS {
            let (mut size, mut flows) = (0i128, 0i128);
            for a in 0..ACCOUNTS {
                let p = e.position(a, instrument).unwrap();
                size += i128::from(p.size);
                flows += i128::from(p.realized_pnl) + i128::from(p.fees) + i128::from(p.funding);
                let mine = self.pos.get(&(a, instrument)).copied().unwrap_or(0);
                if mine != p.size {
                    return Err(format!(
                        "account {a} on {instrument}: events say {mine}, engine {}",
                        p.size
                    ));
                }
            }
            let v = e.venue_ledger(instrument).unwrap();
            flows += i128::from(v.pnl) + i128::from(v.fees) + i128::from(v.funding);
            if size != 0 || flows != 0 {
                return Err(format!(
                    "perpetual {instrument}: sizes add up to {size}, flows to {flows}"
                ));
            }
        }
        Ok(())
    }
}

fn engine() -> Engine {
    Engine::with_risk(engine_config(4_096), risk_config()).unwrap()
}

/// Runs a generated stream of `n` inputs with every check after every input; returns the
/// inputs, all outputs and the final hash.
fn run(seed: u64, n: usize) -> (Vec<EngineInput>, Vec<EngineOutput>, u64) {
    let mut e = engine();
    let mut gen = Gen {
        rng: Rng(seed | 1),
        step: 0,
    };
    let mut ledger = Ledger::default();
    let mut inputs = Vec::with_capacity(n);
    let mut all = Vec::new();
    let mut counts = [0usize; 4];
    for i in 0..n {
        let (input, expect) = gen.input(&e);
        let mut out = Outputs::default();
        e.apply(i as u64, &input, &mut out);
        let ctx = || format!("input {i}: {input:?}\noutputs: {:#?}", out.0);
        if let Err(err) = e.check_invariants() {
            panic!("engine invariant: {err}\n{}", ctx());
        }
        if let Err(err) = ledger.apply(&input, &out.0).and_then(|_| ledger.check(&e)) {
            panic!("{err}\n{}", ctx());
        }
        if let Some(reason) = expect {
            let want = vec![EngineOutput::Event(Event::Rejected {
                account: match input {
                    EngineInput::Command(Command::NewOrder(o)) => o.account,
                    EngineInput::Risk(
                        RiskCommand::Deposit { account, .. }
                        | RiskCommand::Withdraw { account, .. }
                        | RiskCommand::Liquidate { account, .. },
                    ) => account,
                    EngineInput::Risk(RiskCommand::ApplyFunding { .. }) => 0,
                    _ => unreachable!(),
                },
                cl_ord_id: match input {
                    EngineInput::Command(Command::NewOrder(o)) => o.cl_ord_id,
                    EngineInput::Risk(
                        RiskCommand::Deposit { request_id, .. }
                        | RiskCommand::Withdraw { request_id, .. }
                        | RiskCommand::Liquidate { request_id, .. },
                    ) => request_id,
                    EngineInput::Risk(RiskCommand::ApplyFunding { funding_id, .. }) => funding_id,
                    _ => unreachable!(),
                },
                reason,
            })];
            // GTD expiry (by the input's timestamp) may come first.
            let tail: Vec<EngineOutput> = out
                .0
                .iter()
                .skip_while(|o| {
                    matches!(
                        o,
                        EngineOutput::Event(
                            Event::Cancelled {
                                reason: CancelReason::Expired | CancelReason::Oco,
                                ..
                            } | Event::BookDelete { .. }
                        ) | EngineOutput::Risk(_)
                    )
                })
                .cloned()
                .collect();
            assert_eq!(tail, want, "bad input not rejected as expected\n{}", ctx());
        }
        for o in &out.0 {
            match o {
                EngineOutput::Event(Event::Fill { instrument, .. }) => {
                    counts[usize::from(PERPS.contains(instrument))] += 1
                }
                EngineOutput::Risk(RiskEvent::Liquidated { .. }) => counts[2] += 1,
                EngineOutput::Risk(RiskEvent::MarginCall { .. }) => counts[3] += 1,
                _ => {}
            }
        }
        inputs.push(input);
        all.extend(out.0);
    }
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "spot and perpetual fills: {counts:?}"
    );
    (inputs, all, e.state_hash())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn random_streams_hold_every_invariant(seed in any::<u64>()) {
        run(seed, 1_500);
    }
}

#[test]
fn long_streams_exercise_every_rule() {
    let mut seen = HashMap::<String, usize>::new();
    for seed in 1..=3 {
        let (_, out, _) = run(seed, 6_000);
        for o in &out {
            let key = match o {
                EngineOutput::Event(Event::Rejected { reason, .. }) => format!("{reason:?}"),
                EngineOutput::Event(Event::Cancelled { reason, .. }) => format!("{reason:?}"),
                EngineOutput::Risk(RiskEvent::Balance { reason, .. }) => format!("{reason:?}"),
                EngineOutput::Risk(r) => format!("{r:?}").split([' ', '{']).next().unwrap().into(),
                EngineOutput::Event(
                    e @ (Event::Triggered { .. } | Event::Refilled { .. } | Event::Slid { .. }),
                ) => format!("{e:?}").split([' ', '{']).next().unwrap().into(),
                _ => continue,
            };
            *seen.entry(key).or_default() += 1;
        }
    }
    for key in [
        "Liquidated",
        "MarginCall",
        "MarginRestored",
        "Fees",
        "Funding",
        "MarkPrice",
        "FeeTier",
        "Deposit",
        "Withdrawal",
        "VariationMargin",
        "InsuranceCover",
        "Remainder",
        "ReduceOnly",
        "Liquidation",
        "InsufficientBalance",
        "ReduceOnlyWouldIncrease",
        "MaxPositionExceeded",
        "DuplicateRequest",
        "UnknownAsset",
        "InvalidAmount",
        "NoPosition",
        "NotPerpetual",
        "NotLiquidatable",
        "InvalidFeeTier",
        "UnknownInstrument",
        // The order types with risk on.
        "Triggered",
        "Refilled",
        "Slid",
        "Expired",
        "TriggerRejected",
        "InvalidTrigger",
        "InvalidOcoLink",
    ] {
        assert!(seen.contains_key(key), "never saw {key}: {seen:?}");
    }
}

#[test]
fn a_replayed_log_gives_the_same_events_and_hash() {
    let (inputs, out, hash) = run(77, 3_000);
    let mut e = engine();
    let mut again = Outputs::default();
    for (i, input) in inputs.iter().enumerate() {
        e.apply(i as u64, input, &mut again);
    }
    assert_eq!(again.0, out);
    assert_eq!(e.state_hash(), hash);
}

#[test]
fn snapshots_with_risk_restore_to_an_identical_engine() {
    let (inputs, _, _) = run(5, 2_500);
    for k in [0, 1, 400, 1_333, 2_499] {
        let mut a = engine();
        let mut sink = Outputs::default();
        for (i, input) in inputs[..k].iter().enumerate() {
            a.apply(i as u64, input, &mut sink);
        }
        let snap = a.snapshot();
        assert!(snap.risk.is_some());
        let mut b = Engine::restore_with_risk(engine_config(4_096), risk_config(), &snap).unwrap();
        b.check_invariants().unwrap();
        assert_eq!(a.state_hash(), b.state_hash(), "hash after restore at {k}");
        assert_eq!(b.snapshot(), snap);
        // Into an engine built ahead: the same engine; risk on and off must agree.
        let fresh = FreshEngine::with_risk(engine_config(4_096), risk_config()).unwrap();
        let c = fresh.restore(&snap).unwrap();
        c.check_invariants().unwrap();
        assert_eq!(
            (c.state_hash(), c.snapshot()),
            (b.state_hash(), snap.clone())
        );
        assert!(matches!(
            FreshEngine::new(engine_config(4_096))
                .unwrap()
                .restore(&snap),
            Err(RestoreError::Risk(
                risk::RiskRestoreError::RiskStateWithoutRisk
            ))
        ));
        let mut no_risk = snap.clone();
        no_risk.risk = None;
        assert!(matches!(
            FreshEngine::with_risk(engine_config(4_096), risk_config())
                .unwrap()
                .restore(&no_risk),
            Err(RestoreError::Risk(risk::RiskRestoreError::MissingRiskState))
        ));
        assert!(matches!(
            Engine::restore(engine_config(4_096), &snap),
            Err(RestoreError::Risk(
                risk::RiskRestoreError::RiskStateWithoutRisk
            ))
        ));
        for (i, input) in inputs[k..].iter().enumerate() {
            let (mut ea, mut eb) = (Outputs::default(), Outputs::default());
            a.apply((k + i) as u64, input, &mut ea);
            b.apply((k + i) as u64, input, &mut eb);
            assert_eq!(ea, eb, "outputs of input {} after a snapshot at {k}", k + i);
            assert_eq!(a.state_hash(), b.state_hash());
        }
    }
}

#[test]
fn bad_risk_snapshots_get_typed_errors() {
    use risk::RiskRestoreError as E;
    let (inputs, _, _) = run(9, 1_500);
    let mut a = engine();
    let mut sink = Outputs::default();
    for (i, input) in inputs.iter().enumerate() {
        a.apply(i as u64, input, &mut sink);
    }
    let good = a.snapshot();
    let restore = |f: &dyn Fn(&mut EngineSnapshot)| {
        let mut s = good.clone();
        f(&mut s);
        match Engine::restore_with_risk(engine_config(4_096), risk_config(), &s) {
            Ok(_) => None,
            Err(RestoreError::Risk(e)) => Some(e),
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(restore(&|_| {}), None);
    assert_eq!(restore(&|s| s.risk = None), Some(E::MissingRiskState));
    fn r(s: &mut EngineSnapshot) -> &mut RiskSnapshot {
        s.risk.as_mut().unwrap()
    }
    assert!(matches!(
        restore(&|s| r(s).balances[0].asset = 42),
        Some(E::UnknownAsset { asset: 42 })
    ));
    assert!(matches!(
        restore(&|s| {
            let b = r(s).balances[0];
            r(s).balances.push(b)
        }),
        Some(E::DuplicateBalance { .. })
    ));
    assert!(matches!(
        restore(&|s| r(s).balances[0].account = ACCOUNTS),
        Some(E::UnknownAccount { .. })
    ));
    assert!(matches!(
        restore(&|s| r(s).balances[0].available += 1),
        Some(E::Inconsistent(_))
    ));
    assert!(matches!(
        restore(&|s| r(s).net_deposits[0].1 += 1),
        Some(E::Inconsistent(_))
    ));
    assert!(matches!(
        restore(&|s| {
            let n = r(s).net_deposits[0];
            r(s).net_deposits.push(n)
        }),
        Some(E::DuplicateAsset { .. })
    ));
    assert!(matches!(
        restore(&|s| r(s).perpetuals[0].instrument = SPOT),
        Some(E::UnknownPerpetual { instrument: SPOT })
    ));
    assert!(matches!(
        restore(&|s| {
            r(s).perpetuals.pop();
        }),
        Some(E::MissingPerpetual { .. })
    ));
    assert!(matches!(
        restore(&|s| r(s).perpetuals[0].mark = -1),
        Some(E::InvalidMark { .. })
    ));
    assert!(matches!(
        restore(&|s| r(s).accounts.push(risk::AccountRiskSnapshot {
            account: 3,
            tier: 9,
            last_request_id: 0
        })),
        Some(E::InvalidFeeTier { .. } | E::DuplicateAccount { .. })
    ));
    let with_positions = good
        .risk
        .as_ref()
        .unwrap()
        .perpetuals
        .iter()
        .position(|p| p.positions.len() >= 2)
        .expect("a perpetual with positions");
    assert!(matches!(
        restore(&|s| r(s).perpetuals[with_positions].positions[0].size += 1),
        Some(E::Inconsistent(_))
    ));
    assert!(matches!(
        restore(&|s| {
            let p = r(s).perpetuals[with_positions].positions[0];
            r(s).perpetuals[with_positions].positions.push(p)
        }),
        Some(E::DuplicatePosition { .. })
    ));
    // An order holding less than it should.
    let inst = good
        .instruments
        .iter()
        .position(|i| i.orders.iter().any(|o| o.hold_per_lot > 0))
        .expect("a resting order that holds");
    assert!(matches!(
        restore(&|s| {
            let o = s.instruments[inst]
                .orders
                .iter_mut()
                .find(|o| o.hold_per_lot > 0)
                .unwrap();
            o.hold_per_lot -= 1;
        }),
        Some(E::Inconsistent(_))
    ));
}

#[test]
fn apply_does_not_allocate_with_risk_on() {
    let (inputs, _, _) = run(11, 4_000);
    let mut e = engine();
    let mut sink = Outputs(Vec::with_capacity(1 << 16));
    let before = allocations();
    for (i, input) in inputs.iter().enumerate() {
        if sink.0.len() > (1 << 16) - 4_096 {
            sink.0.clear();
        }
        e.apply(i as u64, input, &mut sink);
    }
    assert_eq!(allocations(), before, "apply allocated");
    e.check_invariants().unwrap();
}
