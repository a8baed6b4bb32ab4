//! Clients as `FailoverClient` (client/src/failover.rs) behaves: each is logged in to one node
//! (a connection id), keeps every request without an answer, and after its connection fails
//! (the node crashed or restarted, the connection reset, a request refused as `Unavailable`)
//! logs in to whichever node is primary and re-sends every unanswered request with the same
//! `cl_ord_id`, in order. A re-sent request the new node already sequenced is answered
//! `DuplicateClientOrderId`, which the client reads as "done" (`AlreadySequenced`).
//!
//! Requests: orders (limit, GTC or IOC, on every instrument, so on every shard) and cancels of
//! the client's own earlier orders; an admin client deposits every asset to every account on
//! every shard first (risk is on: without balances the orders would all be rejected).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::{Deposit, Input};
use tpx_wire::order_entry::{CancelOrder, EnterOrder};

use crate::shards::{origin_of, ShardPlan, INSTRUMENTS, QUOTE_ASSET};

/// The admin account deposits come from.
pub const ADMIN_ACCOUNT: u32 = 50;

/// One request as the client keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    /// The client's request number (unique per client).
    pub no: u64,
    pub origin: u32,
    pub account: u32,
    pub input: Input,
}

impl Req {
    /// The `(origin, cl_ord_id)` the sequencer de-duplicates by (`Dedup::key`), if any.
    pub fn dedup_key(&self) -> Option<(u32, u64)> {
        match self.input {
            Input::EnterOrder(m) => Some((self.origin, m.cl_ord_id)),
            _ => None,
        }
    }
}

/// A client's login: the node and a connection id unique in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    pub node: usize,
    pub id: u64,
}

#[derive(Debug)]
pub struct Client {
    pub account: u32,
    pub conn: Option<Conn>,
    next_cl_ord_id: u64,
    next_no: u64,
    /// Requests without an answer, by request number.
    pub unanswered: BTreeMap<u64, Req>,
    /// Requests re-sent at the last failover.
    pub resent: BTreeSet<u64>,
    /// The client's recent orders `(cl_ord_id, origin)`, to cancel.
    orders: VecDeque<(u64, u32)>,
    /// Admin: deposits still to send.
    pending: VecDeque<(u32, Input)>,
    pub admin: bool,
}

impl Client {
    pub fn new(account: u32) -> Client {
        Client {
            account,
            conn: None,
            next_cl_ord_id: 1,
            next_no: 1,
            unanswered: BTreeMap::new(),
            resent: BTreeSet::new(),
            orders: VecDeque::new(),
            pending: VecDeque::new(),
            admin: false,
        }
    }

    /// The admin client: deposits of every asset to each of `accounts` on every shard.
    pub fn admin(plan: &ShardPlan, accounts: &[u32], amount: u64) -> Client {
        let mut c = Client::new(ADMIN_ACCOUNT);
        c.admin = true;
        let mut request_id = 1;
        for &a in accounts {
            for s in 0..plan.shards {
                let mut assets = vec![QUOTE_ASSET];
                assets.extend(
                    (1..=INSTRUMENTS)
                        .filter(|&i| plan.shard(i) == s)
                        .map(|i| i + 1),
                );
                for asset in assets {
                    c.pending.push_back((
                        s,
                        Input::Deposit(Deposit {
                            amount,
                            request_id,
                            account: a,
                            asset,
                        }),
                    ));
                    request_id += 1;
                }
            }
        }
        c
    }

    /// Whether the client has something to send now.
    pub fn idle(&self) -> bool {
        self.admin && self.pending.is_empty()
    }

    /// The next new request (kept as unanswered).
    pub fn next_request(&mut self, plan: &ShardPlan, rng: &mut Xoshiro256PlusPlus) -> Option<Req> {
        let no = self.next_no;
        let (origin, account, input) = if self.admin {
            let (shard, input) = self.pending.pop_front()?;
            (origin_of(shard, ADMIN_ACCOUNT), ADMIN_ACCOUNT, input)
        } else if rng.gen_range(0..5) == 0 && !self.orders.is_empty() {
            let k = rng.gen_range(0..self.orders.len());
            let (id, origin) = self.orders.remove(k)?;
            (
                origin,
                self.account,
                Input::CancelOrder(CancelOrder {
                    cl_ord_id: id,
                    remaining_qty: 0,
                }),
            )
        } else {
            let id = self.next_cl_ord_id;
            self.next_cl_ord_id += 1;
            let instrument = rng.gen_range(1..=INSTRUMENTS);
            let side = if rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let off = rng.gen_range(-20i64..20);
            let price = 100_000 + if side == Side::Buy { off - 5 } else { off + 5 };
            let origin = origin_of(plan.shard(instrument), self.account);
            self.orders.push_back((id, origin));
            if self.orders.len() > 32 {
                self.orders.pop_front();
            }
            (
                origin,
                self.account,
                Input::EnterOrder(EnterOrder {
                    cl_ord_id: id,
                    price,
                    qty: rng.gen_range(1..=10),
                    instrument,
                    side,
                    kind: OrderKind::Limit,
                    tif: if rng.gen_range(0..4) == 0 {
                        TimeInForce::Ioc
                    } else {
                        TimeInForce::Gtc
                    },
                    stp: StpMode::None,
                    post_only: false,
                    reduce_only: false,
                }),
            )
        };
        self.next_no += 1;
        let r = Req {
            no,
            origin,
            account,
            input,
        };
        self.unanswered.insert(no, r);
        Some(r)
    }
}
