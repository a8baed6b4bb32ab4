//! Helpers for the unit tests: a small engine, command builders, expected-event builders, and
//! a harness that checks the invariants after every command.

use tpx_engine::*;

pub const INST: InstrumentId = 7;
pub const OTHER: InstrumentId = 3;

pub fn spec(id: InstrumentId) -> InstrumentSpec {
    InstrumentSpec {
        id,
        kind: InstrumentKind::Spot { base: 1, quote: 2 },
        tick_size: 1,
        lot_size: 1,
        min_price: 1,
        max_price: 1_000,
        min_qty: 1,
        max_qty: 1_000,
        min_notional: 0,
    }
}

pub fn config() -> EngineConfig {
    EngineConfig {
        instruments: vec![spec(INST), spec(OTHER)],
        max_orders: 16,
        max_accounts: 8,
    }
}

/// An engine that checks its invariants after every command.
pub struct H {
    pub e: Engine,
    ts: u64,
}

impl H {
    pub fn new() -> H {
        H::with(config())
    }

    pub fn with(cfg: EngineConfig) -> H {
        H {
            e: Engine::new(cfg).unwrap(),
            ts: 0,
        }
    }

    pub fn run(&mut self, cmd: Command) -> Vec<Event> {
        let mut out = Vec::new();
        self.ts += 1;
        self.e.process(self.ts, &cmd, &mut out);
        if let Err(e) = self.e.check_invariants() {
            panic!("invariant broken after {cmd:?}: {e}\nevents: {out:?}");
        }
        out
    }

    pub fn new_order(&mut self, o: NewOrder) -> Vec<Event> {
        self.run(Command::NewOrder(o))
    }

    /// A GTC limit order on `INST` with no STP.
    pub fn gtc(&mut self, account: u32, cl: u64, side: Side, price: i64, qty: u64) -> Vec<Event> {
        self.new_order(limit(account, cl, side, price, qty))
    }

    pub fn cancel(&mut self, account: u32, cl: u64, remaining_qty: u64) -> Vec<Event> {
        self.run(Command::Cancel(Cancel {
            account,
            cl_ord_id: cl,
            remaining_qty,
        }))
    }

    pub fn replace(
        &mut self,
        account: u32,
        orig: u64,
        new: u64,
        price: i64,
        qty: u64,
    ) -> Vec<Event> {
        self.run(Command::Replace(Replace {
            account,
            orig_cl_ord_id: orig,
            new_cl_ord_id: new,
            price,
            qty,
        }))
    }

    /// `(order_id, account, cl_ord_id, side, price, leaves)` of every order on `INST`.
    pub fn book(&self) -> Vec<(u64, u32, u64, Side, i64, u64)> {
        self.e
            .l3(INST)
            .iter()
            .map(|o| {
                (
                    o.order_id,
                    o.account,
                    o.cl_ord_id,
                    o.side,
                    o.price,
                    o.leaves,
                )
            })
            .collect()
    }
}

/// A GTC limit order on `INST` with no STP.
pub fn limit(account: u32, cl: u64, side: Side, price: i64, qty: u64) -> NewOrder {
    NewOrder {
        account,
        cl_ord_id: cl,
        instrument: INST,
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

pub fn accepted(account: u32, cl: u64, oid: u64, side: Side, price: i64, qty: u64) -> Event {
    Event::Accepted {
        account,
        cl_ord_id: cl,
        order_id: oid,
        instrument: INST,
        side,
        price,
        qty,
    }
}

pub fn rejected(account: u32, cl: u64, reason: RejectReason) -> Event {
    Event::Rejected {
        account,
        cl_ord_id: cl,
        reason,
    }
}

pub fn book_add(oid: u64, side: Side, price: i64, qty: u64) -> Event {
    Event::BookAdd {
        instrument: INST,
        order_id: oid,
        side,
        price,
        qty,
    }
}

pub fn book_delete(oid: u64) -> Event {
    Event::BookDelete {
        instrument: INST,
        order_id: oid,
    }
}

pub fn book_reduce(oid: u64, qty: u64) -> Event {
    Event::BookReduce {
        instrument: INST,
        order_id: oid,
        qty,
    }
}

pub fn cancelled(
    account: u32,
    cl: u64,
    oid: u64,
    cancelled_qty: u64,
    leaves_qty: u64,
    reason: CancelReason,
) -> Event {
    Event::Cancelled {
        account,
        cl_ord_id: cl,
        order_id: oid,
        instrument: INST,
        cancelled_qty,
        leaves_qty,
        reason,
    }
}

/// One side of a fill: `(account, cl_ord_id, order_id, leaves after the fill)`.
pub type Party = (u32, u64, u64, u64);

pub fn fill(
    trade_id: u64,
    price: i64,
    qty: u64,
    taker_side: Side,
    maker: Party,
    taker: Party,
) -> Event {
    Event::Fill {
        instrument: INST,
        trade_id,
        price,
        qty,
        taker_side,
        maker_account: maker.0,
        maker_cl_ord_id: maker.1,
        maker_order_id: maker.2,
        maker_leaves: maker.3,
        taker_account: taker.0,
        taker_cl_ord_id: taker.1,
        taker_order_id: taker.2,
        taker_leaves: taker.3,
    }
}

pub fn replaced(
    account: u32,
    orig: u64,
    new: u64,
    oid: u64,
    price: i64,
    qty: u64,
    priority_kept: bool,
) -> Event {
    Event::Replaced {
        account,
        orig_cl_ord_id: orig,
        new_cl_ord_id: new,
        order_id: oid,
        instrument: INST,
        price,
        qty,
        priority_kept,
    }
}
