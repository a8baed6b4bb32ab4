//! Helpers for the risk tests: a small multi-instrument engine with risk on, and a harness that
//! checks every invariant after every command.

use tpx_engine::*;

pub const BTC: AssetId = 1;
pub const USDT: AssetId = 2;
pub const ETH: AssetId = 3;
/// Spot BTC-USDT: a tick-lot is worth 1/3 USDT unit, a lot is 10 BTC units.
pub const SPOT: InstrumentId = 7;
/// Spot ETH-USDT: a tick-lot is worth 1 unit, a lot 1 unit.
pub const SPOT2: InstrumentId = 3;
/// Perpetual settled in USDT, a tick-lot worth 7/10 unit.
pub const PERP: InstrumentId = 9;
/// Perpetual settled in USDT, a tick-lot worth 1 unit, position limit 50.
pub const PERP2: InstrumentId = 11;
pub const FEE: AccountId = 8;
pub const LIQ: AccountId = 9;
pub const ACCOUNTS: u32 = 10;

pub fn spec(id: InstrumentId, kind: InstrumentKind, lot_size: u64) -> InstrumentSpec {
    InstrumentSpec {
        id,
        kind,
        tick_size: 1,
        lot_size,
        min_price: 1,
        max_price: 20_000,
        min_qty: 1,
        max_qty: 1_000,
        min_notional: 0,
    }
}

pub fn engine_config(max_orders: u32) -> EngineConfig {
    EngineConfig {
        instruments: vec![
            spec(
                SPOT,
                InstrumentKind::Spot {
                    base: BTC,
                    quote: USDT,
                },
                10,
            ),
            spec(
                SPOT2,
                InstrumentKind::Spot {
                    base: ETH,
                    quote: USDT,
                },
                1,
            ),
            spec(PERP, InstrumentKind::LinearPerp { settle: USDT }, 1),
            spec(PERP2, InstrumentKind::LinearPerp { settle: USDT }, 1),
        ],
        max_orders,
        max_accounts: ACCOUNTS,
    }
}

/// Tier 0: maker 0.1%, taker 0.3%; tier 1: maker rebate 0.05%, taker 0.2%.
pub fn fees() -> Vec<FeeRate> {
    vec![
        FeeRate {
            maker_ppm: 1_000,
            taker_ppm: 3_000,
        },
        FeeRate {
            maker_ppm: -500,
            taker_ppm: 2_000,
        },
    ]
}

pub fn risk_config() -> RiskConfig {
    let mut spot = InstrumentRisk::new(SPOT);
    spot.value_num = 1;
    spot.value_den = 3;
    spot.fees = fees();
    let mut spot2 = InstrumentRisk::new(SPOT2);
    spot2.fees = fees();
    let mut perp = InstrumentRisk::new(PERP);
    perp.value_num = 7;
    perp.value_den = 10;
    perp.fees = fees();
    let mut perp2 = InstrumentRisk::new(PERP2);
    perp2.fees = fees();
    perp2.max_position = 50;
    perp2.initial_margin_ppm = 200_000;
    perp2.maintenance_margin_ppm = 100_000;
    RiskConfig {
        assets: vec![USDT, BTC, ETH],
        instruments: vec![spot, spot2, perp, perp2],
        fee_tiers: 2,
        fee_account: FEE,
        liquidation_account: LIQ,
    }
}

/// An engine with risk on that checks its invariants after every command.
pub struct R {
    pub e: Engine,
    ts: u64,
    next_request: [u64; ACCOUNTS as usize],
}

impl R {
    pub fn new() -> R {
        R {
            e: Engine::with_risk(engine_config(256), risk_config()).unwrap(),
            ts: 0,
            next_request: [0; ACCOUNTS as usize],
        }
    }

    pub fn input(&mut self, input: EngineInput) -> Vec<EngineOutput> {
        let mut out = Outputs::default();
        self.ts += 1;
        self.e.apply(self.ts, &input, &mut out);
        if let Err(e) = self.e.check_invariants() {
            panic!(
                "invariant broken after {input:?}: {e}\nevents: {:#?}",
                out.0
            );
        }
        out.0
    }

    pub fn cmd(&mut self, c: Command) -> Vec<EngineOutput> {
        self.input(EngineInput::Command(c))
    }

    pub fn risk(&mut self, c: RiskCommand) -> Vec<EngineOutput> {
        self.input(EngineInput::Risk(c))
    }

    pub fn deposit(&mut self, account: AccountId, asset: AssetId, amount: u64) {
        self.next_request[account as usize] += 1;
        let request_id = self.next_request[account as usize];
        let out = self.risk(RiskCommand::Deposit {
            account,
            asset,
            amount,
            request_id,
        });
        assert!(rejects(&out).is_empty(), "{out:?}");
    }

    pub fn order(&mut self, o: NewOrder) -> Vec<EngineOutput> {
        self.cmd(Command::NewOrder(o))
    }

    pub fn bal(&self, account: AccountId, asset: AssetId) -> (i64, i64) {
        let b = self.e.balance(account, asset).unwrap();
        (b.available, b.held)
    }

    pub fn pos(&self, account: AccountId, instrument: InstrumentId) -> PositionView {
        self.e.position(account, instrument).unwrap()
    }

    pub fn mark(&mut self, instrument: InstrumentId, price: PriceTicks) -> Vec<EngineOutput> {
        self.risk(RiskCommand::SetMarkPrice { instrument, price })
    }
}

pub fn order(
    account: AccountId,
    cl: u64,
    instrument: InstrumentId,
    side: Side,
    price: PriceTicks,
    qty: QtyLots,
) -> NewOrder {
    NewOrder {
        account,
        cl_ord_id: cl,
        instrument,
        side,
        kind: OrderKind::Limit,
        price,
        qty,
        tif: TimeInForce::Gtc,
        post_only: false,
        reduce_only: false,
        stp: StpMode::None,
        ext: OrderExt::NONE,
    }
}

pub fn rejects(out: &[EngineOutput]) -> Vec<RejectReason> {
    out.iter()
        .filter_map(|o| match o {
            EngineOutput::Event(Event::Rejected { reason, .. }) => Some(*reason),
            _ => None,
        })
        .collect()
}

pub fn fills(out: &[EngineOutput]) -> Vec<(PriceTicks, QtyLots)> {
    out.iter()
        .filter_map(|o| match o {
            EngineOutput::Event(Event::Fill { price, qty, .. }) => Some((*price, *qty)),
            _ => None,
        })
        .collect()
}

pub fn risk_events(out: &[EngineOutput]) -> Vec<RiskEvent> {
    out.iter()
        .filter_map(|o| match o {
            EngineOutput::Risk(r) => Some(*r),
            _ => None,
        })
        .collect()
}

pub fn cancels(out: &[EngineOutput]) -> Vec<(ClientOrderId, QtyLots, QtyLots, CancelReason)> {
    out.iter()
        .filter_map(|o| match o {
            EngineOutput::Event(Event::Cancelled {
                cl_ord_id,
                cancelled_qty,
                leaves_qty,
                reason,
                ..
            }) => Some((*cl_ord_id, *cancelled_qty, *leaves_qty, *reason)),
            _ => None,
        })
        .collect()
}
